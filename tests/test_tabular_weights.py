"""Sample weights (a spec's ``weight_column``): a row of weight 2 is that row twice, in every loss.

The loss is the weighted mean over each task's labelled rows; data without
weights trains exactly as before; a population with weights equals its
separate runs.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.tasks import TaskSpec, task_loss
from sharesearch.training import TrainConfig, train, train_population

NAN = float("nan")


@pytest.mark.parametrize("spec", [TaskSpec("b", "binary"), TaskSpec("m", "multiclass", n_classes=3),
                                  TaskSpec("r", "regression")], ids=["binary", "multiclass", "regression"])
def test_weight_two_equals_the_row_duplicated(spec):
    g = torch.Generator().manual_seed(0)
    out = torch.randn(5, spec.out_dim, generator=g)  # [5, out_dim]
    y = torch.tensor([0.0, 1.0, NAN, 2.0, 1.0]) if spec.kind == "multiclass" else torch.tensor([0.0, 1.0, NAN, 1.0, 0.0])
    w = torch.tensor([2.0, 1.0, 5.0, 0.0, 1.0])  # row 2 is unlabelled: its weight counts for nothing
    weighted = task_loss(spec, out, y, weights=w)
    # row 0 twice, row 3 (weight 0) dropped
    dup = [0, 0, 1, 2, 4]
    plain = task_loss(spec, out[dup], y[dup])
    torch.testing.assert_close(weighted, plain)
    assert not torch.isclose(weighted, task_loss(spec, out, y))  # the weights did change the loss


def test_unit_weights_equal_no_weights_and_zero_weights_give_zero():
    spec = TaskSpec("b", "binary")
    out, y = torch.randn(6, 1, generator=torch.Generator().manual_seed(1)), torch.tensor([0.0, 1, 1, 0, NAN, 1])
    torch.testing.assert_close(task_loss(spec, out, y, weights=torch.ones(6)), task_loss(spec, out, y))
    assert float(task_loss(spec, out, y, weights=torch.zeros(6))) == 0.0
    dense_y = torch.tensor([0.0, 1, 1, 0, 0, 1])
    torch.testing.assert_close(task_loss(spec, out, dense_y, dense=True, weights=torch.full((6,), 3.0)),
                               task_loss(spec, out, dense_y, dense=True))


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-planted", n=300, seed=2)


def _graph(d):
    return SharingGraph.shared_bottom(d.tasks, {"name": "mlp", "input_shape": list(d.input_shape), "widths": [8]})


CFG = dict(max_steps=12, eval_every=6, batch_size=32, device="cpu")


def test_weights_change_training_and_ones_do_not(data):
    g, cfg = _graph(data), TrainConfig(seed=0, **CFG)
    base = train(g, data, cfg)
    ones = train(g, dataclasses.replace(data, weights=torch.ones(data.n)), cfg)
    assert ones.val_metrics == base.val_metrics  # weight 1 everywhere: the same training
    w = torch.rand(data.n, generator=torch.Generator().manual_seed(3)) * 3  # [N]
    other = train(g, dataclasses.replace(data, weights=w), cfg)
    assert other.val_metrics != base.val_metrics


def test_population_with_weights_equals_separate_runs(data):
    w = torch.rand(data.n, generator=torch.Generator().manual_seed(4)) * 2  # [N]
    d = dataclasses.replace(data, weights=w)
    g = _graph(d)
    cfgs = [TrainConfig(seed=s, lr=1e-3 * (1 + s), **CFG) for s in range(2)]
    for pop, cfg in zip(train_population(g, d, cfgs), cfgs):
        alone = train(g, d, cfg)
        for t, metrics in alone.val_metrics.items():
            for m, v in metrics.items():
                assert pop.val_metrics[t][m] == pytest.approx(v, rel=2e-5, abs=2e-5, nan_ok=True), (t, m)

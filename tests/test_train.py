"""The trainer: one-pass baselines, weighting methods, selection, failure status."""

from __future__ import annotations

import math

import pytest
import torch

from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.train import ConfigError, TrainConfig, evaluate, train
from sharesearch.weighting import WEIGHTINGS

BB = {"name": "mlp", "input_shape": [8], "widths": [16, 8]}


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-mmoe", n=600, d=8, seed=3, clusters=[[0, 1], [2]])


def test_one_pass_baselines_equal_separate_runs(data):
    """The independent graph trained at once == each task trained alone (same seed)."""
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=7)
    together = train(SharingGraph.independent(data.tasks, BB), data, cfg)
    for name in data.task_names:
        alone_data = data.subset_tasks([name])
        alone = train(SharingGraph.independent(alone_data.tasks, BB), alone_data, cfg)
        assert alone.best_epoch[name] == together.best_epoch[name]
        for metric, v in alone.val_metrics[name].items():
            assert together.val_metrics[name][metric] == pytest.approx(v, rel=1e-5, abs=1e-6)
        test_alone = alone.evaluate(alone_data, "test")[name]
        test_together = together.evaluate(data, "test")[name]
        for metric, v in test_alone.items():
            assert test_together[metric] == pytest.approx(v, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("method", sorted(WEIGHTINGS))
def test_every_weighting_method_trains(data, method):
    g = SharingGraph.shared_bottom(data.tasks, BB, 1)
    res = train(g, data, TrainConfig(epochs=2, batch_size=64, weighting=method))
    assert res.status == "ok"
    for name in data.task_names:
        assert math.isfinite(res.val_metrics[name]["rmse"])


def test_training_improves_over_initialisation(data):
    g = SharingGraph.shared_bottom(data.tasks, BB)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=3e-3)
    res = train(g, data, cfg)
    from sharesearch.network import compile_graph

    untrained = evaluate(compile_graph(g, seed=0), data, "val")
    for name in data.task_names:
        assert res.val_metrics[name]["rmse"] < untrained[name]["rmse"]


def test_divergence_ends_with_a_status_not_an_exception(data):
    g = SharingGraph.shared_bottom(data.tasks, BB)
    res = train(g, data, TrainConfig(epochs=3, optimizer="sgd", lr=1e12))
    assert res.status == "diverged"
    assert "non-finite" in res.message


def test_model_selection_is_per_task_and_restores_weights(data):
    g = SharingGraph.shared_bottom(data.tasks, BB, 1)
    res = train(g, data, TrainConfig(epochs=4, batch_size=64))
    assert set(res.best_epoch) == set(data.task_names)
    assert len(res.history) == 4
    for name, ep in res.best_epoch.items():  # the kept epoch is the best of the history
        prim = [h[name] for h in res.history]
        assert prim[ep] == pytest.approx(min(prim))
    before = {k: v.clone() for k, v in res.model.state_dict().items()}
    val = res.evaluate(data, "val")
    for name in data.task_names:
        assert val[name]["rmse"] == pytest.approx(res.val_metrics[name]["rmse"], rel=1e-5)
    after = res.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_callback_sees_every_epoch_and_can_stop(data):
    seen = []

    class Stop(Exception):
        pass

    def cb(epoch, primary):
        seen.append((epoch, sorted(primary)))
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(SharingGraph.independent(data.tasks, BB), data, TrainConfig(epochs=5), callback=cb)
    assert seen == [(0, sorted(data.task_names)), (1, sorted(data.task_names))]


def test_missing_labels_train_and_score_on_labelled_rows(data):
    y = data.y.clone()
    y[::2, 0] = float("nan")  # half the labels of task 0 are missing
    sparse = type(data)(**{**data.__dict__, "y": y})
    res = train(SharingGraph.shared_bottom(sparse.tasks, BB), sparse, TrainConfig(epochs=2, batch_size=64))
    assert res.status == "ok"
    assert all(math.isfinite(v["rmse"]) for v in res.val_metrics.values())


def test_seeded_runs_are_identical(data):
    g = SharingGraph.mmoe(data.tasks, BB, experts=2)
    a = train(g, data, TrainConfig(epochs=2, seed=5))
    b = train(g, data, TrainConfig(epochs=2, seed=5))
    assert a.val_metrics == b.val_metrics


def test_bad_config_names_field_and_value():
    with pytest.raises(ConfigError, match="'lr'.*-1"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="unknown field 'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="'sampling'"):
        TrainConfig(sampling="random")


def test_joint_state_keeps_one_consistent_model(data):
    g = SharingGraph.shared_bottom(data.tasks, BB)
    scores = []

    def score(primary):
        s = -sum(primary.values())
        scores.append(s)
        return s

    res = train(g, data, TrainConfig(epochs=3), joint_score=score)
    assert len(scores) == 3 and set(res.joint_state) == set(res.model.state_dict())


def test_cnn_backbone_trains_on_images_with_multiclass_tasks():
    from sharesearch.data import MultiTaskData, make_split
    from sharesearch.tasks import TaskSpec

    g = torch.Generator().manual_seed(0)
    n = 240
    x = torch.rand(n, 1, 12, 12, generator=g)
    left = (x[:, 0, :, :6].mean(dim=(1, 2)) > x[:, 0, :, 6:].mean(dim=(1, 2))).float()  # a learnable label
    y = torch.stack([left, torch.randint(0, 3, (n,), generator=g).float()], dim=1)
    data = MultiTaskData("images", [TaskSpec("left", "multiclass", n_classes=2), TaskSpec("noise", "multiclass", n_classes=3)],
                         x, y, make_split(n, 0))
    assert data.backbone_hint == "cnn"
    graph = SharingGraph.shared_bottom(data.tasks, {"name": "cnn", "input_shape": [1, 12, 12], "widths": [4, 8]}, 1)
    res = train(graph, data, TrainConfig(epochs=3, batch_size=32, lr=1e-2))
    assert res.status == "ok"
    assert 0.0 <= res.val_metrics["left"]["accuracy"] <= 1.0 and math.isfinite(res.val_metrics["noise"]["macro_f1"])

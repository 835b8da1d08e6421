"""Metrics: each equals scikit-learn's on the labelled rows, and a population's members scored at once
(``metric_values``) get exactly what each gets alone (``compute_metric``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from sharesearch.names import METRICS
from sharesearch.tasks import TASK_KINDS, TaskSpec, compute_metric, metric_values

PAIRS = [(kind, m) for kind in TASK_KINDS for m in METRICS if kind in METRICS[m].kinds]


def _case(kind: str, members: int, rows: int, missing: float, ties: bool, seed: int):
    g = torch.Generator().manual_seed(seed)
    spec = TaskSpec("t", kind, n_classes=3, target_mean=1.5, target_std=2.0) if kind == "multiclass" else \
        TaskSpec("t", kind, target_mean=1.5, target_std=2.0)
    out = torch.randn(members, rows, spec.out_dim, generator=g)  # [M, N, out_dim]
    if ties:  # scores on a coarse grid: AUC's average ranks and argmax's ties are met
        out = out.round()
    if kind == "regression":
        y = torch.randn(rows, generator=g)
    else:
        y = torch.randint(0, spec.out_dim if kind == "multiclass" else 2, (rows,), generator=g).float()
    y[torch.rand(rows, generator=g) < missing] = float("nan")
    return spec, out, y


def _reference(spec: TaskSpec, metric: str, out: torch.Tensor, y: torch.Tensor) -> float:
    """scikit-learn's metric on the labelled rows of one slice ``out [N, out_dim]`` (NaN where undefined)."""
    keep = ~torch.isnan(y)
    o, t = out[keep].double().numpy(), y[keep].double().numpy()
    if len(t) == 0:
        return math.nan
    if spec.kind == "regression":
        p, t = o[:, 0] * spec.target_std + spec.target_mean, t * spec.target_std + spec.target_mean
        if metric == "r2":
            return skm.r2_score(t, p) if np.ptp(t) > 0 else math.nan
        return {"rmse": lambda: math.sqrt(skm.mean_squared_error(t, p)),
                "mae": lambda: skm.mean_absolute_error(t, p)}[metric]()
    if spec.kind == "binary":
        s, t = o[:, 0], t.astype(int)
        both = 0 < t.sum() < len(t)
        return {"auc": lambda: skm.roc_auc_score(t, s) if both else math.nan,
                "accuracy": lambda: skm.accuracy_score(t, s > 0),
                "f1": lambda: skm.f1_score(t, s > 0, zero_division=0.0) if (t.any() or (s > 0).any()) else math.nan,
                "macro_f1": lambda: skm.f1_score(t, s > 0, average="macro", zero_division=0.0),
                "average_precision": lambda: skm.average_precision_score(t, s) if t.any() else math.nan,
                "logloss": lambda: skm.log_loss(t, np.clip(1 / (1 + np.exp(-s)), 1e-7, 1 - 1e-7), labels=[0, 1]),
                }[metric]()
    t = t.astype(int)
    probs = np.exp(o - o.max(axis=1, keepdims=True))
    return {"accuracy": lambda: skm.accuracy_score(t, o.argmax(axis=1)),
            "macro_f1": lambda: skm.f1_score(t, o.argmax(axis=1), average="macro", zero_division=0.0),
            "logloss": lambda: skm.log_loss(t, probs / probs.sum(axis=1, keepdims=True), labels=[0, 1, 2]),
            }[metric]()


def _same(a: float, b: float, rel: float = 0.0) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=rel, abs=rel)


@pytest.mark.parametrize(("kind", "metric"), PAIRS)
@settings(max_examples=20, deadline=None)
@given(members=st.integers(2, 4), rows=st.integers(1, 30), missing=st.sampled_from([0.0, 0.3, 1.0]),
       ties=st.booleans(), seed=st.integers(0, 999))
def test_members_scored_at_once_get_what_each_gets_alone_and_what_sklearn_gives(kind, metric, members, rows, missing,
                                                                                  ties, seed):
    spec, out, y = _case(kind, members, rows, missing, ties, seed)
    together = metric_values(spec, metric, out, y)
    assert together.shape == (members,)
    for i in range(members):
        alone = compute_metric(spec, metric, out[i], y)
        assert _same(float(together[i]), alone), (i, float(together[i]), alone)  # to the bit
        assert _same(alone, _reference(spec, metric, out[i], y), rel=1e-5), (i, alone)


def test_leading_axes_of_any_depth_keep_their_shape():
    spec, out, y = _case("binary", 6, 20, 0.2, False, 0)
    grid = metric_values(spec, "auc", out.view(2, 3, 20, 1), y)
    assert grid.shape == (2, 3)
    np.testing.assert_array_equal(grid.reshape(-1), metric_values(spec, "auc", out, y))

"""Tests of the harder synthetic recipe: per-task kinds and missingness, nonlinear targets, the presets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from sharesearch.data import SOURCES, load_data
from sharesearch.data.synthetic import PLANTED_OPTIONS, make_synthetic_mmoe, make_synthetic_planted
from sharesearch.errors import SharesearchError

MIXED = ["regression", "binary", "regression", "binary", "regression", "regression"]


def _labelled_frac_ok(y: torch.Tensor, frac: float) -> bool:
    """The labelled count of a column lies inside the binomial's central 99.98%."""
    n, k = len(y), int((~torch.isnan(y)).sum())
    lo, hi = stats.binom.interval(0.9998, n, frac)
    return lo <= k <= hi


def _linear_r2(d) -> list[float]:
    """Least-squares R^2 of each task on [x, 1] (all rows labelled)."""
    x = np.c_[d.x.numpy(), np.ones(d.n)].astype(float)  # [n, d+1]
    y = d.y.numpy().astype(float)  # [n, T]
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)  # [d+1, T]
    return (1.0 - ((y - x @ beta) ** 2).mean(0) / y.var(0)).tolist()


def _cluster_corr(d) -> tuple[list[float], list[float]]:
    """Within- and across-cluster label correlations (pairwise over rows where both are labelled)."""
    corr = pd.DataFrame(d.y.numpy(), columns=d.task_names).corr()
    cluster_of = {t: k for k, c in enumerate(d.meta["clusters"]) for t in c}
    names = d.task_names
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    within = [corr.loc[a, b] for a, b in pairs if cluster_of[a] == cluster_of[b]]
    across = [corr.loc[a, b] for a, b in pairs if cluster_of[a] != cluster_of[b]]
    return within, across


def test_kinds_and_labelled_per_task():
    fracs = [1.0, 0.3, 0.6, 0.9, 0.5, 0.2]
    d = make_synthetic_mmoe(n=4000, kind=MIXED, labelled=fracs, seed=2)
    assert [t.kind for t in d.tasks] == MIXED
    for t, (spec, f) in enumerate(zip(d.tasks, fracs)):
        col = d.y[:, t]
        seen = col[~torch.isnan(col)]
        if spec.kind == "binary":
            assert set(seen.unique().tolist()) == {0.0, 1.0}
        else:
            assert len(seen.unique()) > 100 and spec.target_std > 0
        assert _labelled_frac_ok(col, f), (spec.name, f)
    assert not torch.isnan(d.y[:, 0]).any()
    assert d.meta["options"]["kind"] == MIXED and d.meta["options"]["labelled"] == fracs


def test_per_task_lists_equal_to_one_value():
    """A list of equal entries is the same data as the one value (the per-task paths add no draws)."""
    a = make_synthetic_mmoe(n=500, kind="binary", labelled=0.5, seed=7)
    b = make_synthetic_mmoe(n=500, kind=["binary"] * 6, labelled=[0.5] * 6, seed=7)
    assert a.fingerprint() == b.fingerprint()
    assert make_synthetic_mmoe(n=500, seed=7, nonlinear=0.0).fingerprint() == make_synthetic_mmoe(n=500, seed=7).fingerprint()


def test_cluster_structure_exact_with_nonlinear_and_mixed_kinds():
    d = make_synthetic_mmoe(n=20_000, kind=MIXED, nonlinear=1.0, noise=0.1, seed=5)
    within, across = _cluster_corr(d)
    assert len(within) == 4 and len(across) == 11
    bound = 4.0 / np.sqrt(d.n)  # 4 standard errors of a zero correlation
    assert max(abs(c) for c in across) < bound, across
    assert min(within) > 0.5, within


def test_nonlinear_defeats_a_linear_fit():
    base = _linear_r2(make_synthetic_mmoe(n=4000, noise=0.0, seed=1))
    hard = _linear_r2(make_synthetic_mmoe(n=4000, noise=0.0, seed=1, nonlinear=1.0))
    half = _linear_r2(make_synthetic_mmoe(n=4000, noise=0.0, seed=1, nonlinear=0.5))
    assert min(base) > 0.6, base
    assert max(hard) < 0.15, hard
    assert all(h < m < b for h, m, b in zip(hard, half, base)), (hard, half, base)


def test_planted_preset():
    assert {"synthetic-planted", "synthetic-null"} <= set(SOURCES)
    d = load_data("synthetic-planted", seed=0)
    assert d.name == "synthetic-planted" and d.n == 1500 and d.meta["source"] == "synthetic-planted"
    assert d.meta["clusters"] == [["t0", "t1", "t2"], ["t3", "t4"], ["t5"]]
    assert [t.kind for t in d.tasks] == MIXED
    assert d.meta["options"]["nonlinear"] == PLANTED_OPTIONS["nonlinear"] > 0
    for t in range(6):
        assert _labelled_frac_ok(d.y[:, t], PLANTED_OPTIONS["labelled"])
    # every option overridable
    small = load_data("synthetic-planted", n=300, labelled=1.0, kind="regression", seed=0)
    assert small.n == 300 and not torch.isnan(small.y).any() and {t.kind for t in small.tasks} == {"regression"}
    with pytest.raises(TypeError, match=r"^synthetic-planted\(\) got an unexpected keyword argument 'bogus'$"):
        make_synthetic_planted(bogus=1)
    with pytest.raises((TypeError, SharesearchError), match="synthetic-planted.*bogus"):  # load_data may re-raise
        load_data("synthetic-planted", bogus=1)


def test_planted_and_null_cluster_structure():
    planted = load_data("synthetic-planted", n=12_000, labelled=1.0, seed=1)
    within, across = _cluster_corr(planted)
    assert min(within) > 0.3 and max(abs(c) for c in across) < 4.0 / np.sqrt(planted.n), (within, across)
    null = load_data("synthetic-null", n=12_000, labelled=1.0, seed=1)
    assert null.meta["clusters"] == [[f"t{i}"] for i in range(6)] and null.name == "synthetic-null"
    assert [t.kind for t in null.tasks] == MIXED
    # each task keeps its planted noise level
    noise = dict(zip(planted.task_names, [0.5, 0.5, 0.5, 0.5, 0.5, 0.3]))
    assert null.meta["options"]["noise"] == [noise[t] for t in null.task_names]
    within, across = _cluster_corr(null)
    assert within == [] and max(abs(c) for c in across) < 4.0 / np.sqrt(null.n), across


def _fitted_weights(d) -> np.ndarray:
    """Least-squares weights ``[T, d]`` of every (noise-free, linear) task on ``[x, 1]``."""
    x = np.c_[d.x.numpy(), np.ones(d.n)].astype(float)  # [n, d+1]
    beta, *_ = np.linalg.lstsq(x, d.y.numpy().astype(float), rcond=None)  # [d+1, T]
    return beta[:-1].T


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_rank_is_the_dimension_a_cluster_shares(rank):
    """With p = 1 (no own directions), a cluster's weights span exactly ``rank`` directions, every task
    weighs each of them (cosines positive) and clusters stay orthogonal."""
    d = make_synthetic_mmoe(n=2000, d=3 * rank + 5, p=1.0, m=0, noise=0.0, rank=rank, seed=4,
                            clusters=[[0, 1, 2], [3, 4], [5]])
    w = _fitted_weights(d)  # [T, d]
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    for c in ([0, 1, 2], [3, 4]):
        sv = np.linalg.svd(w[c], compute_uv=False)
        assert (sv > 1e-3 * sv[0]).sum() == min(rank, len(c)), (c, sv)
        cos = unit[c] @ unit[c].T
        assert cos.min() > 0.2, cos
    assert abs(unit[:3] @ unit[3:].T).max() < 1e-6 and abs(unit[3:5] @ unit[5]).max() < 1e-6
    assert d.meta["options"]["rank"] == rank


def test_rank_one_is_the_papers_recipe_and_ranks_per_cluster():
    base = make_synthetic_mmoe(n=300, seed=6, nonlinear=0.5)
    assert make_synthetic_mmoe(n=300, seed=6, nonlinear=0.5, rank=1).fingerprint() == base.fingerprint()
    assert make_synthetic_mmoe(n=300, seed=6, nonlinear=0.5, rank=[1, 1, 1]).fingerprint() == base.fingerprint()
    mixed = make_synthetic_mmoe(n=300, d=10, seed=6, rank=[3, 1, 2])  # 3 + 3, 2 and 2 directions
    assert mixed.meta["options"]["rank"] == [3, 1, 2]
    with pytest.raises(SharesearchError, match=r"d=9 is too small; .* need d >= 10"):
        make_synthetic_mmoe(n=300, d=9, seed=6, rank=[3, 1, 2])


@pytest.mark.parametrize("source", ["synthetic-planted", "synthetic-null", "synthetic-mmoe"])
def test_deterministic_in_seed(source):
    a = load_data(source, n=400, seed=3, nonlinear=1.0)
    b = load_data(source, n=400, seed=3, nonlinear=1.0)
    c = load_data(source, n=400, seed=4, nonlinear=1.0)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert torch.equal(torch.isnan(a.y), torch.isnan(b.y))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"kind": "multiclass"}, r"synthetic-mmoe: kind must be .*'multiclass'"),
        ({"kind": ["regression"] * 5}, r"kind must be one value or a list of one per task \(6\)"),
        ({"labelled": [0.5] * 5}, r"labelled must be one value or a list of one per task \(6\), got \[0.5"),
        ({"labelled": [0.5, 0, 1, 1, 1, 1]}, r"labelled must be in \(0, 1\].*\[0.5, 0, 1"),
        ({"nonlinear": 1.5}, r"nonlinear must be in \[0, 1\], got 1.5"),
        ({"noise": [1.0, 2.0]}, r"noise must be one value or a list of one per cluster \(3\)"),
        ({"n": "abc"}, r"n must be a number, got 'abc'"),
        ({"rank": 0}, r"rank must be an integer >= 1 \(one per cluster if a list\), got 0"),
        ({"rank": [2, 2]}, r"rank must be one value or a list of one per cluster \(3\)"),
        ({"rank": 1.5}, r"rank must be an integer, got 1.5"),
        ({"label_regions": 1.5}, r"^synthetic-mmoe: label_regions must be in \[0, 1\], got 1.5"),
        ({"label_regions": "half"}, r"^synthetic-mmoe: label_regions must be a number, got 'half'"),
        ({"shared_inputs": "yes", "nonlinear": 1.0}, r"^synthetic-mmoe: shared_inputs must be true or false, got 'yes'"),
        ({"shared_inputs": 0.5, "nonlinear": 1.0}, r"shared_inputs must be true or false, got 0.5"),
        ({"shared_inputs": True}, r"^synthetic-mmoe: shared_inputs needs nonlinear > 0 .*got nonlinear=0.0"),
        ({"shared_inputs": True, "nonlinear": 1.0, "p": 1.5}, r"^synthetic-mmoe: p=1.5 must be in \[0, 1\]"),
    ],
)
def test_option_errors_name_option_and_value(options, match):
    with pytest.raises(SharesearchError, match=match) as err:
        make_synthetic_mmoe(**{"n": 100, **options})
    assert "\n" not in str(err.value)


def test_preset_errors_name_the_preset():
    with pytest.raises(SharesearchError, match=r"^synthetic-null: nonlinear must be in \[0, 1\], got -1"):
        load_data("synthetic-null", nonlinear=-1)
    with pytest.raises(SharesearchError, match=r"^synthetic-planted: noise must be one value or a list of one per cluster \(2\)"):
        load_data("synthetic-planted", clusters=[[0, 1, 2], [3, 4, 5]])


def _binned_fit(d, direction: np.ndarray, bins: int = 40) -> tuple[np.ndarray, list[float]]:
    """Each task fitted as a step function of the projection ``x @ direction`` (quantile bins): the fitted
    bin means ``[T, bins]`` and each task's R^2 (all rows labelled)."""
    s = d.x.numpy().astype(float) @ direction
    edges = np.quantile(s, np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, s)  # [n] bin of each row
    y = d.y.numpy().astype(float)  # [n, T]
    means = np.stack([y[which == b].mean(0) for b in range(bins)], axis=1)  # [T, bins]
    fitted = means[:, which].T  # [n, T]
    return means, (1.0 - ((y - fitted) ** 2).mean(0) / y.var(0)).tolist()


def _stein_direction(d, task: int) -> np.ndarray:
    """The input direction a task of one direction ``y = f(u^T x)`` reads: the top eigenvector of
    ``E[y (x x^T - I)] = E[f''] u u^T`` (Stein's lemma, ``x`` isotropic Gaussian)."""
    x, y = d.x.numpy().astype(float), d.y.numpy()[:, task].astype(float)
    m = (x * y[:, None]).T @ x / len(y) - y.mean() * np.eye(x.shape[1])
    vals, vecs = np.linalg.eigh(m)
    return vecs[:, int(np.argmax(abs(vals)))]


@pytest.mark.parametrize("shared", [False, True])
def test_shared_inputs_make_clusters_conflict_on_one_input(shared):
    """shared_inputs: both clusters' targets are functions of the same input direction (the other cluster's
    target is fitted as well as the own one's by that projection alone), through maps that conflict: the
    fitted maps agree within a cluster (cosine ~ 1) and are orthogonal across clusters (cosine ~ 0), and the
    labels are uncorrelated across clusters. Off, the other cluster's target does not depend on it."""
    d = make_synthetic_mmoe(n=60_000, d=4, p=1.0, m=0, noise=0.0, nonlinear=1.0, clusters=[[0, 1], [2, 3]],
                            seed=3, shared_inputs=shared)
    within, across = _cluster_corr(d)
    assert min(within) > 0.999 and max(abs(c) for c in across) < 4.0 / np.sqrt(d.n), (within, across)
    maps, r2 = _binned_fit(d, _stein_direction(d, 0))
    unit = maps / np.linalg.norm(maps, axis=1, keepdims=True)
    cos = unit @ unit.T  # [T, T] the fitted maps of the one direction
    assert min(r2[:2]) > 0.9 and cos[0, 1] > 0.99, (r2, cos)
    if shared:
        assert min(r2[2:]) > 0.9 and cos[2, 3] > 0.99, (r2, cos)
        assert abs(cos[:2, 2:]).max() < 0.05, cos  # same input, conflicting maps
        assert d.meta["options"]["shared_inputs"] is True
    else:
        assert max(r2[2:]) < 0.01, r2
        assert "shared_inputs" not in d.meta["options"]


def test_shared_inputs_off_is_the_recipe_and_needs_fewer_directions():
    """shared_inputs=False draws exactly what the recipe draws (the presets' data unchanged); on, the clusters'
    shared directions are one, so d may be smaller: the preset's 3 clusters need 1 + 3 + 1 = 5, not 7."""
    for source in ("synthetic-mmoe", "synthetic-planted", "synthetic-null"):
        base = load_data(source, n=300, seed=5, nonlinear=0.7)
        assert load_data(source, n=300, seed=5, nonlinear=0.7, shared_inputs=False).fingerprint() == base.fingerprint()
    on = load_data("synthetic-planted", n=300, seed=5, d=5, shared_inputs=True)
    assert on.fingerprint() != load_data("synthetic-planted", n=300, seed=5, shared_inputs=True).fingerprint()
    with pytest.raises(SharesearchError, match=r"^synthetic-planted: d=4 is too small; .* with shared_inputs need d >= 5"):
        load_data("synthetic-planted", n=300, seed=5, d=4, shared_inputs=True)
    # rank r: the r shared directions are common too (3, then 3 + 2 own ones; 14 without shared_inputs)
    assert make_synthetic_mmoe(n=300, d=8, seed=5, nonlinear=1.0, rank=3, shared_inputs=True).n == 300
    with pytest.raises(SharesearchError, match=r"d=7 is too small"):
        make_synthetic_mmoe(n=300, d=7, seed=5, nonlinear=1.0, rank=3, shared_inputs=True)


@pytest.mark.parametrize("shared", [False, True])
def test_label_regions_give_each_member_its_band_of_training_rows(shared):
    """label_regions=1: member i of a pair keeps training labels only where the pair's shared input falls in
    its half, as many as at random (labelled of the rows); validation and test labels stay at random, and the
    unrelated task is untouched. The pair's shared input is read off a clean linear twin of the data."""
    opts = dict(n=20_000, d=4, p=1.0, m=0, noise=0.0, clusters=[[0, 1], [2]], seed=8, shared_inputs=shared,
                nonlinear=1e-9 if shared else 0.0)  # near-linear, so the shared input is the fitted direction
    twin = make_synthetic_mmoe(labelled=1.0, **opts)
    u = _fitted_weights(twin)[0]
    half = (twin.x.numpy().astype(float) @ u > 0).astype(int)  # [n] the band of each row (k = 2: the median 0)
    d = make_synthetic_mmoe(labelled=0.4, label_regions=1.0, **opts)
    assert torch.equal(d.x, twin.x)
    split = d.split.numpy()
    seen = ~np.isnan(d.y.numpy())  # [n, T]
    for t, band in ((0, 0), (1, 1)):
        train = seen[split == 0, t]
        assert (half[split == 0][train] == band).all(), t
        assert _labelled_frac_ok(d.y[torch.from_numpy(split == 0), t], 0.4), t
        for part in (1, 2):  # validation, test: at random, half of them in each band
            rows = seen[split == part, t]
            assert _labelled_frac_ok(d.y[torch.from_numpy(split == part), t], 0.4)
            assert abs(half[split == part][rows].mean() - 0.5) < 0.06, (t, part)
    assert abs(half[split == 0][seen[split == 0, 2]].mean() - 0.5) < 0.04  # t2 alone: at random
    assert d.meta["options"]["label_regions"] == 1.0
    # half way: the member's own band holds (1 + rho) / 2 of its training labels
    mid = make_synthetic_mmoe(labelled=0.4, label_regions=0.5, **opts)
    own = (half[split == 0][~np.isnan(mid.y.numpy()[split == 0, 0])] == 0).mean()
    assert abs(own - 0.75) < 0.03, own


def test_label_regions_off_is_the_recipe():
    base = load_data("synthetic-planted", n=400, seed=2)
    assert load_data("synthetic-planted", n=400, seed=2, label_regions=0).fingerprint() == base.fingerprint()
    assert "label_regions" not in base.meta["options"]
    on = load_data("synthetic-planted", n=400, seed=2, label_regions=1.0)
    assert torch.equal(on.x, base.x) and on.fingerprint() != base.fingerprint()
    for t in range(6):  # still labelled (0.3) of the rows per task
        assert _labelled_frac_ok(on.y[:, t], PLANTED_OPTIONS["labelled"]), t

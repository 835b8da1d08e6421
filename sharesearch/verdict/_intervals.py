"""The Δm interval from whole runs, and the bootstraps over runs and test rows.

**Whole runs.** Each run of an arm gets one priority-weighted score, its Δm
against the baseline means, ``d_j = sum_t w_t Δ(x_tj, mean b_t) / sum_t w_t``.
Δ is linear in the run's metric, so the candidate scores average to Δm and the
baseline scores to 0: Δm is a difference of two means of per-run scores, and
its interval is Welch's t-interval on them. The tasks of one run stay
together, so their correlation (a lucky seed helps every task of a shared
network) is in the variance -- resampling seeds separately per task ignored
it and covered a true Δm of 0 too rarely. The baseline means in the
denominators are treated as fixed (their relative error is second order).

**Test rows.** The arms are scored on the same test rows, so the test set's
sampling variance is shared: :func:`hierarchical_bootstrap_delta_m`
resamples rows *paired across arms, seeds and tasks*, then (optionally)
whole runs per arm. :func:`delta_m_interval` adds the row variance with the
seeds held fixed to the whole-run variance (seeds by t, rows by bootstrap):
a two-level percentile bootstrap with 3 seeds per arm is too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import SharesearchError
from ._delta import direction_sign, lookup, relative_change, task_weights
from ._runs import Arm, make_arm

__all__ = ["RowPredictions", "DeltaMInterval", "delta_m_interval", "bootstrap_delta_m",
           "hierarchical_bootstrap_delta_m", "interval_from_arms"]


@dataclass(frozen=True)
class RowPredictions:
    """Per-row test predictions of both arms, for the test-set part of the Δm interval.

    Row ``i`` of every array is the same test example (the arms share the test
    split); seed ``j`` of each task is run ``j`` of that arm, in the order of
    the per-run metric values handed to :func:`sharesearch.verdict.task_verdicts`.
    """

    y_true: Mapping[str, np.ndarray]  # task -> labels of the test rows, axis 0 = row (NaN = missing, if the metric allows)
    candidate: Mapping[str, Sequence[np.ndarray]]  # task -> one prediction array per candidate run, axis 0 = row
    baseline: Mapping[str, Sequence[np.ndarray]]  # task -> one prediction array per baseline run, axis 0 = row
    metric: Callable[[str, np.ndarray, np.ndarray], float]  # metric(task, y_true, y_pred) -> the task's primary metric
    n_resamples: int = 1000  # row resamples (each scores every run of every task once)


@dataclass(frozen=True)
class DeltaMInterval:
    """An interval for Δm and how it was made."""

    low: float  # lower end (NaN when there is no interval)
    high: float  # upper end
    se: float  # standard error of Δm (NaN when unknown)
    df: float  # degrees of freedom of the t quantile (inf: normal)
    method: str  # in words, for the report


def _scores(runs: np.ndarray, signs: np.ndarray, w: np.ndarray, base_means: np.ndarray) -> np.ndarray:
    """Per-run priority-weighted Δm against the baseline means: ``[n_runs]`` from ``[n_runs, T]``."""
    return relative_change(signs, runs, base_means) @ w / w.sum()


def _row_var(rows: RowPredictions, tasks: list[str], signs: np.ndarray, w: np.ndarray,
             keep_c: np.ndarray, keep_b: np.ndarray, seed: int | None) -> float:
    """Variance of Δm over row resamples with the (kept) runs fixed."""
    reps = hierarchical_bootstrap_delta_m(rows, dict(zip(tasks, ["maximize" if s > 0 else "minimize" for s in signs])),
                                          dict(zip(tasks, w)), seed=seed, resample_seeds=False,
                                          runs=(keep_c, keep_b))
    return float(np.nanvar(reps, ddof=1))


def interval_from_arms(signs: np.ndarray, w: np.ndarray, cand: Arm, base: Arm, point: float, confidence: float,
                       rows: RowPredictions | None = None, tasks: list[str] | None = None,
                       seed: int | None = 0) -> DeltaMInterval:
    """The Δm interval around ``point`` from the runs of both arms (see the module docstring)."""
    if not math.isfinite(point):
        return DeltaMInterval(math.nan, math.nan, math.nan, math.nan, "no interval: Δm is not finite")
    base_means = np.array([np.mean(base.finite(i)) if base.finite(i).size else np.nan for i in range(len(w))])
    if cand.aligned and base.aligned:
        sc = _scores(cand.run_matrix(), signs, w, base_means)
        sb = _scores(base.run_matrix(), signs, w, base_means)
        if sc.size < 2 or sb.size < 2:
            return DeltaMInterval(math.nan, math.nan, math.nan, math.nan, "no interval: an arm has < 2 whole runs")
        parts = [(np.var(sc, ddof=1) / sc.size, sc.size), (np.var(sb, ddof=1) / sb.size, sb.size)]
        method = "Welch t over whole runs (each run's priority-weighted Δm; tasks of a run kept together)"
    else:
        parts = []
        for i in range(len(w)):
            c, b = cand.finite(i), base.finite(i)
            if c.size < 2 or b.size < 2:
                return DeltaMInterval(math.nan, math.nan, math.nan, math.nan, "no interval: a task has < 2 runs")
            scale = (w[i] / w.sum() / abs(base_means[i])) ** 2
            parts += [(scale * np.var(c, ddof=1) / c.size, c.size), (scale * np.var(b, ddof=1) / b.size, b.size)]
        method = "Welch t over runs, tasks treated as independent (runs not aligned across tasks)"
    var_runs = float(sum(v for v, _ in parts))
    var_rows = 0.0
    if rows is not None:
        if not (cand.aligned and base.aligned):
            raise SharesearchError("rows: per-row predictions need the same runs for every task of an arm")
        var_rows = _row_var(rows, tasks, signs, w, cand.whole_runs, base.whole_runs, seed)
        method += f" + test-row bootstrap paired across arms ({rows.n_resamples} resamples)"
    else:
        method += "; seeds only (test rows not resampled)"
    se2 = var_runs + var_rows
    if not se2 > 0:
        return DeltaMInterval(math.nan, math.nan, 0.0, math.nan, "no interval: zero spread in both arms")
    den = sum(v * v / (n - 1) for v, n in parts if v > 0)
    df = se2 * se2 / den if den > 0 else math.inf
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * math.sqrt(se2)
    return DeltaMInterval(point - half, point + half, math.sqrt(se2), df, method)


def _setup(candidate, baseline, directions, weights):
    tasks = list(directions)
    w = task_weights(directions, weights)
    signs = np.array([direction_sign(directions[t], t) for t in tasks])
    return tasks, w, signs, make_arm(candidate, tasks, "candidate"), make_arm(baseline, tasks, "baseline")


def _point(signs, w, cand: Arm, base: Arm) -> float:
    mc = np.array([np.mean(cand.finite(i)) if cand.finite(i).size else np.nan for i in range(len(w))])
    mb = np.array([np.mean(base.finite(i)) if base.finite(i).size else np.nan for i in range(len(w))])
    return float(relative_change(signs, mc, mb) @ w / w.sum())


def delta_m_interval(candidate: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                     directions: Mapping[str, str], weights: Mapping[str, float] | None = None, *,
                     confidence: float = 0.95, rows: RowPredictions | None = None,
                     seed: int | None = 0) -> DeltaMInterval:
    """The Δm interval of :func:`sharesearch.verdict.task_verdicts`, on its own.

    Parameters
    ----------
    candidate, baseline : Mapping[str, Sequence[float]]
        Per-task test metric per run (non-finite: a diverged run, left out).
    directions, weights
        As in :func:`sharesearch.verdict.delta_m`.
    confidence : float
        Interval level.
    rows : RowPredictions, optional
        Per-row predictions: adds the test-set variance (else seeds only).
    seed : int or None
        Seed of the row bootstrap.

    Examples
    --------
    >>> iv = delta_m_interval({"a": [0.90, 0.92, 0.91]}, {"a": [0.80, 0.81, 0.82]}, {"a": "maximize"})
    >>> round(iv.low, 3), round(iv.high, 3), iv.method.startswith("Welch t over whole runs")
    (0.095, 0.151, True)
    """
    tasks, w, signs, cand, base = _setup(candidate, baseline, directions, weights)
    return interval_from_arms(signs, w, cand, base, _point(signs, w, cand, base), confidence, rows, tasks, seed)


def bootstrap_delta_m(candidate: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                      directions: Mapping[str, str], weights: Mapping[str, float] | None = None, *,
                      n_resamples: int = 10_000, confidence: float = 0.95,
                      seed: int | None = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for Δm, resampling whole runs per arm.

    Each resample draws ``n`` runs with replacement from each arm's ``n``
    whole finite runs (every task of a drawn run comes along), recomputes the
    arms' per-task means and Δm. When an arm's runs are not aligned across
    tasks, its tasks are resampled separately. Seeded and reproducible.

    Descriptive with few runs: with ``n = 3`` the bootstrap distribution is
    discrete and understates the variance by ``(n - 1)/n``; the verdict's own
    interval is :func:`delta_m_interval`.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` when an arm has fewer than 2 runs.

    Examples
    --------
    >>> lo, hi = bootstrap_delta_m({"a": [0.9, 0.91, 0.89]}, {"a": [0.8, 0.82, 0.78]},
    ...                            {"a": "maximize"}, seed=1)
    >>> lo < 0.125 < hi
    True
    """
    if not (0.0 < confidence < 1.0):
        raise SharesearchError(f"confidence must lie in (0, 1), got {confidence!r}")
    if int(n_resamples) < 1:
        raise SharesearchError(f"n_resamples must be >= 1, got {n_resamples!r}")
    _, w, signs, cand, base = _setup(candidate, baseline, directions, weights)
    rng = np.random.default_rng(seed)
    means = []
    for arm in (cand, base):
        if arm.aligned:
            runs = arm.run_matrix()
            if runs.shape[0] < 2:
                return (math.nan, math.nan)
            means.append(runs[rng.integers(0, runs.shape[0], size=(int(n_resamples), runs.shape[0]))].mean(axis=1))
        else:
            cols = [arm.finite(i) for i in range(len(w))]
            if min(c.size for c in cols) < 2:
                return (math.nan, math.nan)
            means.append(np.stack([c[rng.integers(0, c.size, size=(int(n_resamples), c.size))].mean(axis=1)
                                   for c in cols], axis=1))
    total = relative_change(signs, means[0], means[1]) @ w / w.sum()  # [n_resamples]
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(total, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def hierarchical_bootstrap_delta_m(rows: RowPredictions, directions: Mapping[str, str],
                                   weights: Mapping[str, float] | None = None, *, n_resamples: int | None = None,
                                   seed: int | None = 0, resample_seeds: bool = True,
                                   runs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Bootstrap replicates of Δm over test rows (paired across arms) and, optionally, whole runs.

    Each replicate draws the test rows with replacement *once* and scores
    every run of both arms on those rows with ``rows.metric``, so the row
    noise the arms share cancels as it does in the real comparison; with
    ``resample_seeds`` it then draws whole runs per arm with replacement.
    Replicates whose metric is not finite (say AUC on rows of one class) are NaN.

    Parameters
    ----------
    rows : RowPredictions
    directions, weights
        As in :func:`sharesearch.verdict.delta_m`.
    n_resamples : int, optional
        Replicates; default ``rows.n_resamples``.
    seed : int or None
        Seed of :func:`numpy.random.default_rng`.
    resample_seeds : bool
        Also resample runs (the two-level bootstrap); False holds them fixed.
    runs : (mask, mask), optional
        Boolean masks of the candidate and baseline runs to use (e.g. not diverged).

    Returns
    -------
    numpy.ndarray
        ``[n_resamples]`` Δm replicates.

    Examples
    --------
    >>> y = np.arange(20) % 2 * 1.0
    >>> acc = lambda task, t, p: float(np.mean(t == p))
    >>> r = RowPredictions({"a": y}, {"a": [y, y]}, {"a": [1 - y, y]}, acc, n_resamples=50)
    >>> reps = hierarchical_bootstrap_delta_m(r, {"a": "maximize"}, seed=0)
    >>> reps.shape, bool(np.all(reps >= 0))
    ((50,), True)
    """
    tasks = list(directions)
    w = task_weights(directions, weights)
    signs = np.array([direction_sign(directions[t], t) for t in tasks])
    y = [np.asarray(lookup(rows.y_true, t, "rows.y_true")) for t in tasks]
    preds = [[[np.asarray(p) for p in lookup(arm, t, f"rows.{name}")] for t in tasks]
             for arm, name in ((rows.candidate, "candidate"), (rows.baseline, "baseline"))]
    n_rows = y[0].shape[0]
    if any(a.shape[0] != n_rows for a in y) or any(p.shape[0] != n_rows for arm in preds for ps in arm for p in ps):
        raise SharesearchError("rows: every label and prediction array must have the same number of test rows")
    keep = [np.ones(len(arm[0]), bool) for arm in preds] if runs is None else list(runs)
    for arm, mask, name in zip(preds, keep, ("candidate", "baseline")):
        if any(len(ps) != mask.size for ps in arm):
            raise SharesearchError(f"rows.{name}: need one prediction array per run for every task ({mask.size})")
    rng = np.random.default_rng(seed)
    n_res = int(rows.n_resamples if n_resamples is None else n_resamples)
    out = np.empty(n_res)
    for r in range(n_res):
        idx = rng.integers(0, n_rows, n_rows)  # the same rows for both arms, every run and every task
        means = []
        for arm, mask in zip(preds, keep):
            m = np.array([[rows.metric(t, y[i][idx], arm[i][j][idx]) for i, t in enumerate(tasks)]
                          for j in np.flatnonzero(mask)])  # [n_runs, T]
            if resample_seeds:
                m = m[rng.integers(0, m.shape[0], m.shape[0])]
            means.append(m.mean(axis=0))
        out[r] = relative_change(signs, means[0], means[1]) @ w / w.sum()
    return out

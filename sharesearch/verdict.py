"""Negative-transfer verdicts: Δm, per-task intervals, Welch tests with Holm.

Pure statistics (numpy, scipy.stats, pandas); no torch, optuna or plotly.

Protocol
--------
The numbers this module turns into a verdict must come from the following
protocol, which is what makes the verdict a fair comparison:

1. **Selection on validation.** The search maximises :func:`delta_m` of a
   candidate's *validation* metrics against the independent single-task
   baselines' *validation* metrics (one primary metric per task; see
   :mod:`sharesearch.tasks` for metric directions).
2. **Test used once.** Only the chosen candidate (and the baselines) are then
   retrained with ``n`` seeds (default 3) and evaluated once on the *test*
   split. No decision is taken on test data before the verdict, so the test
   metrics carry no selection bias.
3. **Seeds, unpaired.** Candidate and baseline runs are independent samples of
   a random training procedure; a candidate seed and a baseline seed share no
   unit of observation, so the comparison is *unpaired*.
4. **Welch + Holm.** Per task, Welch's unequal-variance two-sided t-test of
   mean(candidate) vs mean(baseline) (:func:`scipy.stats.ttest_ind_from_stats`
   with ``equal_var=False``), then Holm's step-down correction across the tasks
   of one verdict (:func:`holm`). Holm controls the family-wise error rate at
   ``alpha`` under *any* dependence between the tests -- needed here because the
   tasks share one network, so their test metrics are correlated (the
   Benjamini-Hochberg FDR procedure would need positive dependence, and
   controls a weaker error rate).
5. **Relative effect.** Δ_t is the relative change of :func:`relative_delta`
   (Maninis et al., CVPR 2019), positive when sharing helps. Its interval is
   Fieller's interval for the ratio of two independent means (see
   :func:`task_verdicts`): it accounts for the estimated denominator, and unlike
   the delta method it is asymmetric, or unbounded, when the baseline mean is
   imprecise -- which matters with 3 seeds.
6. **Bootstrap Δm.** The overall Δm gets a percentile bootstrap interval from
   resampling seeds with replacement within each task and each arm
   (:func:`bootstrap_delta_m`, seeded, so it is reproducible).

All intervals are marginal ``1 - alpha`` intervals (95 % by default) and are
*not* multiplicity-adjusted; the verdict strings are (Holm).

Example
-------
>>> v = task_verdicts(
...     {"clicked": [0.70, 0.71, 0.69], "price": [10.2, 10.0, 10.1]},
...     {"clicked": [0.80, 0.81, 0.79], "price": [10.1, 10.3, 10.2]},
...     {"clicked": "maximize", "price": "minimize"},
... )
>>> [(t.task, t.verdict) for t in v.tasks]
[('clicked', 'negative transfer'), ('price', 'no significant difference')]
>>> round(v.get("clicked").delta, 3)
-0.125
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "DIRECTIONS",
    "VERDICTS",
    "relative_delta",
    "delta_m",
    "holm",
    "bootstrap_delta_m",
    "task_verdicts",
    "TaskVerdict",
    "Verdict",
]

#: Valid metric directions (the strings :func:`sharesearch.tasks.metric_direction` returns).
DIRECTIONS = ("maximize", "minimize")

#: The three verdict strings, in the order (negative, neutral, positive).
VERDICTS = ("negative transfer", "no significant difference", "gain")

_NAN_PAIR = (math.nan, math.nan)


# --------------------------------------------------------------------------- helpers


def _check_direction(direction: str, task: str | None = None) -> float:
    """Return +1 (maximize) or -1 (minimize); ValueError otherwise."""
    if direction == "maximize":
        return 1.0
    if direction == "minimize":
        return -1.0
    where = f"task {task!r}: " if task is not None else ""
    raise ValueError(f"{where}direction must be one of {list(DIRECTIONS)}, got {direction!r}")


def _lookup(mapping: Mapping, task: str, what: str):
    try:
        return mapping[task]
    except KeyError:
        raise KeyError(f"task {task!r} missing from {what}") from None


def _task_weights(directions: Mapping[str, str], weights: Mapping[str, float] | None) -> np.ndarray:
    tasks = list(directions)
    if not tasks:
        raise ValueError("directions is empty: need at least one task")
    if weights is None:
        return np.ones(len(tasks))
    w = np.empty(len(tasks))
    for i, t in enumerate(tasks):
        wi = _lookup(weights, t, "weights")
        if not (isinstance(wi, (int, float, np.integer, np.floating)) and math.isfinite(wi) and wi > 0):
            raise ValueError(f"task {t!r}: weight must be a positive finite number, got {wi!r}")
        w[i] = float(wi)
    return w


def _seeds(values, task: str, arm: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim != 1:
        raise ValueError(f"task {task!r}: {arm} values must be a 1-D sequence over seeds, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"task {task!r}: {arm} has no values (need at least one seed)")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"task {task!r}: {arm} values must be finite, got {x.tolist()}")
    return x


def _var(x: np.ndarray) -> float:
    """Sample variance (ddof=1); exactly 0 for identical seeds (no round-off), NaN for n=1."""
    if x.size < 2:
        return math.nan
    if np.ptp(x) == 0:
        return 0.0
    return float(np.var(x, ddof=1))


def _mean_ci(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student-t interval for the mean; NaN for n=1, degenerate for zero variance."""
    m = float(np.mean(x))
    v = _var(x)
    if math.isnan(v):
        return _NAN_PAIR
    if v == 0.0:
        return (m, m)
    lo, hi = stats.t.interval(confidence, df=x.size - 1, loc=m, scale=math.sqrt(v / x.size))
    return (float(lo), float(hi))


def _welch_df(v1: float, n1: int, v2: float, n2: int) -> float:
    """Welch-Satterthwaite degrees of freedom for var(mean1 - mean2) with v = s^2/n."""
    a, b = v1 / n1, v2 / n2
    return (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))


def _fieller(a: float, va: float, b: float, vb: float, tq: float) -> tuple[float, float]:
    """Fieller interval for R = mu_a / mu_b from independent means.

    ``a``, ``b``: the means; ``va``, ``vb``: their squared standard errors;
    ``tq``: the t quantile. Solves (a - R b)^2 <= tq^2 (va + R^2 vb). Returns
    (-inf, inf) when ``b`` is not significantly different from 0
    (b^2 <= tq^2 vb), where the confidence set is unbounded.
    """
    den = b * b - tq * tq * vb
    if den <= 0:
        return (-math.inf, math.inf)
    half = tq * math.sqrt(a * a * vb + va * den)
    return ((a * b - half) / den, (a * b + half) / den)


# --------------------------------------------------------------------------- public API


def relative_delta(multi: float, single: float, direction: str) -> float:
    """Relative change of a multi-task metric against its single-task baseline.

    ``(-1)^[lower is better] * (multi - single) / |single|`` (Maninis et al.,
    CVPR 2019). Positive means the multi-task model is better than the
    independent one, whatever the metric's direction. A fraction, not a
    percentage.

    Parameters
    ----------
    multi : float
        The metric of the multi-task (shared) model.
    single : float
        The metric of the independent single-task baseline; must be non-zero.
    direction : {"maximize", "minimize"}
        The metric's direction (:func:`sharesearch.tasks.metric_direction`).

    Returns
    -------
    float
        The signed relative change.

    Raises
    ------
    ValueError
        If ``single`` is 0 (the relative change is undefined), a value is not
        finite, or ``direction`` is unknown.

    Examples
    --------
    >>> relative_delta(0.75, 0.5, "maximize")   # accuracy up 50 %
    0.5
    >>> relative_delta(0.75, 1.0, "minimize")   # RMSE down 25 %: a gain
    0.25
    >>> round(relative_delta(0.9, 0.8, "minimize"), 6)   # error up 12.5 %: a loss
    -0.125
    """
    s = _check_direction(direction)
    multi, single = float(multi), float(single)
    if not (math.isfinite(multi) and math.isfinite(single)):
        raise ValueError(f"relative_delta needs finite values, got multi={multi!r}, single={single!r}")
    if single == 0.0:
        raise ValueError(
            "relative_delta is undefined for single == 0 (the baseline metric is the denominator); "
            f"got multi={multi!r}, single={single!r}"
        )
    return s * (multi - single) / abs(single)


def delta_m(
    multi: Mapping[str, float],
    single: Mapping[str, float],
    directions: Mapping[str, str],
    weights: Mapping[str, float] | None = None,
) -> float:
    """Δm: the (priority-weighted) mean over tasks of :func:`relative_delta`.

    ``Δm = sum_t w_t Δ_t / sum_t w_t``, with ``w_t = 1`` when ``weights`` is
    None. The tasks are the keys of ``directions``; extra keys in the other
    mappings are ignored. Used as the search objective on validation
    (maximise).

    Parameters
    ----------
    multi, single : Mapping[str, float]
        Per-task metric of the multi-task model and of the single-task baselines.
    directions : Mapping[str, str]
        Per-task direction, ``"maximize"`` or ``"minimize"``.
    weights : Mapping[str, float], optional
        Positive per-task priority weights (``TaskSpec.weight``).

    Returns
    -------
    float

    Raises
    ------
    KeyError
        If a task of ``directions`` is missing from another mapping (the
        message names it).
    ValueError
        For an empty task set, a zero baseline, or a non-positive weight.

    Examples
    --------
    >>> d = {"a": "maximize", "b": "minimize"}
    >>> round(delta_m({"a": 0.9, "b": 1.1}, {"a": 0.8, "b": 1.0}, d), 4)   # (0.125 - 0.1) / 2
    0.0125
    >>> round(delta_m({"a": 0.9, "b": 1.1}, {"a": 0.8, "b": 1.0}, d, {"a": 3, "b": 1}), 6)   # (3 * 0.125 - 0.1) / 4
    0.06875
    """
    w = _task_weights(directions, weights)
    deltas = np.empty(len(w))
    for i, (t, direction) in enumerate(directions.items()):
        _check_direction(direction, t)
        m, s = _lookup(multi, t, "multi"), _lookup(single, t, "single")
        try:
            deltas[i] = relative_delta(m, s, direction)
        except ValueError as e:
            raise ValueError(f"task {t!r}: {e}") from None
    return float(np.sum(w * deltas) / np.sum(w))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    With the ``m`` p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the
    adjusted value is ``max_{j<=i} min(1, (m - j + 1) p_(j))``, returned in the
    input order. Rejecting where ``adjusted <= alpha`` is Holm's procedure.
    NaN entries (tests that could not be run) stay NaN and are not counted in
    ``m``.

    Parameters
    ----------
    p_values : Sequence[float]
        Raw p-values in [0, 1] (or NaN).

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same order and length.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(6).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float).reshape(-1)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def _prepare(candidate, baseline, directions):
    tasks = list(directions)
    if not tasks:
        raise ValueError("directions is empty: need at least one task")
    signs, cs, bs = [], [], []
    for t in tasks:
        signs.append(_check_direction(directions[t], t))
        cs.append(_seeds(_lookup(candidate, t, "candidate"), t, "candidate"))
        bs.append(_seeds(_lookup(baseline, t, "baseline"), t, "baseline"))
    return tasks, np.array(signs), cs, bs


def _combine(signs, w, mcs, mbs):
    """Δm from per-task arm means (each an array over resamples); one code path for
    the point estimate and the bootstrap, so a degenerate bootstrap reproduces the
    point estimate bit for bit."""
    total = np.zeros_like(np.asarray(mcs[0], dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        for s, wt, mc, mb in zip(signs, w, mcs, mbs):
            total = total + wt * (s * (mc - mb) / np.abs(mb))
    return total / np.sum(w)


def _bootstrap(signs, w, cs, bs, n_resamples, confidence, seed) -> tuple[float, float]:
    if any(x.size < 2 for x in cs + bs):
        return _NAN_PAIR
    rng = np.random.default_rng(seed)
    mcs, mbs = [], []
    for c, b in zip(cs, bs):
        # resample seeds with replacement, independently per task and per arm (unpaired)
        mcs.append(c[rng.integers(0, c.size, size=(n_resamples, c.size))].mean(axis=1))
        mbs.append(b[rng.integers(0, b.size, size=(n_resamples, b.size))].mean(axis=1))
    total = _combine(signs, w, mcs, mbs)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(total, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def bootstrap_delta_m(
    candidate: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]],
    directions: Mapping[str, str],
    weights: Mapping[str, float] | None = None,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for Δm of the per-seed means.

    Each resample draws, for every task and each arm separately, ``n`` seeds
    with replacement from that arm's ``n`` seeds (a stratified, unpaired
    bootstrap matching the independent design), recomputes both arms' means
    and Δm; the interval is the ``(1 - confidence)/2`` and
    ``(1 + confidence)/2`` quantiles of the resampled Δm.

    Why a hand-written resampler rather than :func:`scipy.stats.bootstrap`:
    the scipy function refuses samples of one seed and its default BCa method
    needs a jackknife that is unstable with 3 seeds (and warns on identical
    seeds). The percentile method respects the ratio's asymmetry. With ``n = 3``
    seeds the bootstrap distribution is discrete (10 distinct resamples per
    arm) and understates the variance by a factor ``(n - 1)/n``, so read the
    interval as descriptive; the per-task inference is Welch + Holm.

    Parameters
    ----------
    candidate, baseline : Mapping[str, Sequence[float]]
        Per-task metric values over seeds.
    directions : Mapping[str, str]
        Per-task direction; its keys are the task set.
    weights : Mapping[str, float], optional
        Positive priority weights, as in :func:`delta_m`.
    n_resamples : int
        Number of bootstrap resamples.
    confidence : float
        Interval level in (0, 1).
    seed : int or None
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same
        interval.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` when some arm has fewer than 2 seeds
        (nothing to resample: a fixed single seed would fake precision).
        Resamples whose baseline mean is 0 give ±inf/NaN; NaNs are dropped and
        infinities widen the interval.

    Examples
    --------
    >>> lo, hi = bootstrap_delta_m({"a": [0.9, 0.91, 0.89]}, {"a": [0.8, 0.82, 0.78]},
    ...                            {"a": "maximize"}, seed=1)
    >>> lo < delta_m({"a": 0.9}, {"a": 0.8}, {"a": "maximize"}) < hi
    True
    """
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    _, signs, cs, bs = _prepare(candidate, baseline, directions)
    w = _task_weights(directions, weights)
    return _bootstrap(signs, w, cs, bs, int(n_resamples), confidence, seed)


@dataclass(frozen=True)
class TaskVerdict:
    """The comparison of one task's candidate runs with its baseline runs.

    Attributes
    ----------
    task, direction : str
        Task name and metric direction.
    n_candidate, n_baseline : int
        Number of seeds per arm.
    candidate_mean, baseline_mean : float
        Means over seeds.
    candidate_ci, baseline_ci : tuple of float
        ``1 - alpha`` Student-t intervals for the means (NaN for one seed).
    delta : float
        :func:`relative_delta` of the means (positive = sharing helps).
    delta_ci : tuple of float
        Fieller interval for ``delta`` (NaN for one seed; ``(-inf, inf)`` when
        the baseline mean is indistinguishable from 0).
    p_value, p_holm : float
        Welch two-sided p-value and its Holm-adjusted value (NaN when untested).
    verdict : str
        One of :data:`VERDICTS`.
    note : str
        Caveats (few seeds, zero variance, unbounded interval); ``""`` if none.
    """

    task: str
    direction: str
    n_candidate: int
    n_baseline: int
    candidate_mean: float
    candidate_ci: tuple[float, float]
    baseline_mean: float
    baseline_ci: tuple[float, float]
    delta: float
    delta_ci: tuple[float, float]
    p_value: float
    p_holm: float
    verdict: str
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN -> None, ±inf -> "inf"/"-inf")."""
        return {
            "task": self.task,
            "direction": self.direction,
            "n_candidate": self.n_candidate,
            "n_baseline": self.n_baseline,
            "candidate_mean": _enc(self.candidate_mean),
            "candidate_ci": [_enc(x) for x in self.candidate_ci],
            "baseline_mean": _enc(self.baseline_mean),
            "baseline_ci": [_enc(x) for x in self.baseline_ci],
            "delta": _enc(self.delta),
            "delta_ci": [_enc(x) for x in self.delta_ci],
            "p_value": _enc(self.p_value),
            "p_holm": _enc(self.p_holm),
            "verdict": self.verdict,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "TaskVerdict":
        """Inverse of :meth:`to_dict`."""
        return cls(
            task=d["task"],
            direction=d["direction"],
            n_candidate=int(d["n_candidate"]),
            n_baseline=int(d["n_baseline"]),
            candidate_mean=_dec(d["candidate_mean"]),
            candidate_ci=tuple(_dec(x) for x in d["candidate_ci"]),
            baseline_mean=_dec(d["baseline_mean"]),
            baseline_ci=tuple(_dec(x) for x in d["baseline_ci"]),
            delta=_dec(d["delta"]),
            delta_ci=tuple(_dec(x) for x in d["delta_ci"]),
            p_value=_dec(d["p_value"]),
            p_holm=_dec(d["p_holm"]),
            verdict=d["verdict"],
            note=d.get("note", ""),
        )


def _enc(x: float):
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _dec(x) -> float:
    return math.nan if x is None else float(x)


def _fmt(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{100 * x:+.2f}%" if pct else f"{x:.4g}"


def _fmt_ci(ci: tuple[float, float], pct: bool = False) -> str:
    if all(isinstance(c, float) and math.isnan(c) for c in ci):
        return ""
    return f" [{_fmt(ci[0], pct)}, {_fmt(ci[1], pct)}]"


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "–"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


@dataclass(frozen=True)
class Verdict:
    """Per-task verdicts plus Δm with its bootstrap interval.

    Attributes
    ----------
    tasks : list of TaskVerdict
        One entry per task, in the order of ``directions``.
    delta_m : float
        Weighted mean of the tasks' ``delta``.
    delta_m_ci : tuple of float
        Percentile bootstrap interval (:func:`bootstrap_delta_m`).
    alpha : float
        Family-wise error rate of the Holm-corrected verdicts; intervals are
        ``1 - alpha``.
    n_resamples, seed : int
        Bootstrap settings, kept so the interval can be reproduced.
    weights : dict
        The per-task weights used for Δm.
    """

    tasks: list[TaskVerdict]
    delta_m: float
    delta_m_ci: tuple[float, float]
    alpha: float = 0.05
    n_resamples: int = 10_000
    seed: int | None = 0
    weights: dict[str, float] = field(default_factory=dict)

    def get(self, task: str) -> TaskVerdict:
        """The :class:`TaskVerdict` of ``task`` (KeyError naming it if absent)."""
        for tv in self.tasks:
            if tv.task == task:
                return tv
        raise KeyError(f"task {task!r} not in verdict; tasks: {[tv.task for tv in self.tasks]}")

    @property
    def negative_transfer(self) -> list[str]:
        """Names of the tasks with a significant (Holm) loss from sharing."""
        return [tv.task for tv in self.tasks if tv.verdict == "negative transfer"]

    def to_dict(self) -> dict:
        """JSON-ready dict (strict JSON: NaN -> None, ±inf -> "inf"/"-inf").

        Examples
        --------
        >>> import json
        >>> v = task_verdicts({"a": [1.0, 1.1, 1.2]}, {"a": [1.0, 1.05, 1.1]}, {"a": "maximize"})
        >>> Verdict.from_dict(json.loads(json.dumps(v.to_dict()))).to_dict() == v.to_dict()
        True
        """
        return {
            "version": 1,
            "tasks": [tv.to_dict() for tv in self.tasks],
            "delta_m": _enc(self.delta_m),
            "delta_m_ci": [_enc(x) for x in self.delta_m_ci],
            "alpha": self.alpha,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "weights": dict(self.weights),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "Verdict":
        """Inverse of :meth:`to_dict`."""
        return cls(
            tasks=[TaskVerdict.from_dict(t) for t in d["tasks"]],
            delta_m=_dec(d["delta_m"]),
            delta_m_ci=tuple(_dec(x) for x in d["delta_m_ci"]),
            alpha=float(d.get("alpha", 0.05)),
            n_resamples=int(d.get("n_resamples", 10_000)),
            seed=d.get("seed", 0),
            weights={k: float(v) for k, v in d.get("weights", {}).items()},
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per task; intervals split into ``*_low``/``*_high`` columns.

        Δm, its interval and alpha are in ``frame.attrs``.

        Examples
        --------
        >>> v = task_verdicts({"a": [1.0, 1.1, 1.2]}, {"a": [1.0, 1.05, 1.1]}, {"a": "maximize"})
        >>> v.to_frame()[["task", "verdict"]].values.tolist()
        [['a', 'no significant difference']]
        """
        rows = []
        for tv in self.tasks:
            rows.append(
                {
                    "task": tv.task,
                    "direction": tv.direction,
                    "n_candidate": tv.n_candidate,
                    "n_baseline": tv.n_baseline,
                    "candidate_mean": tv.candidate_mean,
                    "candidate_ci_low": tv.candidate_ci[0],
                    "candidate_ci_high": tv.candidate_ci[1],
                    "baseline_mean": tv.baseline_mean,
                    "baseline_ci_low": tv.baseline_ci[0],
                    "baseline_ci_high": tv.baseline_ci[1],
                    "delta": tv.delta,
                    "delta_ci_low": tv.delta_ci[0],
                    "delta_ci_high": tv.delta_ci[1],
                    "p_value": tv.p_value,
                    "p_holm": tv.p_holm,
                    "verdict": tv.verdict,
                    "note": tv.note,
                }
            )
        df = pd.DataFrame(rows)
        df.attrs.update({"delta_m": self.delta_m, "delta_m_ci": tuple(self.delta_m_ci), "alpha": self.alpha})
        return df

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table plus a Δm line and notes (no dependencies).

        Examples
        --------
        >>> v = task_verdicts({"a": [1.0, 1.1, 1.2]}, {"a": [1.0, 1.05, 1.1]}, {"a": "maximize"})
        >>> [c.strip() for c in v.to_markdown().splitlines()[0].strip("|").split("|")]
        ['task', 'n (cand/base)', 'candidate', 'baseline', 'Δ', 'p', 'p (Holm)', 'verdict']
        >>> v.to_markdown().splitlines()[2].split("|")[-2].strip()
        'no significant difference'
        """
        level = f"{100 * (1 - self.alpha):g}%"
        header = ["task", "n (cand/base)", "candidate", "baseline", "Δ", "p", "p (Holm)", "verdict"]
        rows = []
        notes = []
        for tv in self.tasks:
            arrow = "↑" if tv.direction == "maximize" else "↓"
            verdict = tv.verdict
            if tv.note:
                notes.append(tv.note if tv.note.startswith(f"{tv.task}:") else f"{tv.task}: {tv.note}")
                verdict += f" [{len(notes)}]"
            rows.append(
                [
                    f"{tv.task} {arrow}",
                    f"{tv.n_candidate}/{tv.n_baseline}",
                    _fmt(tv.candidate_mean) + _fmt_ci(tv.candidate_ci),
                    _fmt(tv.baseline_mean) + _fmt_ci(tv.baseline_ci),
                    _fmt(tv.delta, pct=True) + _fmt_ci(tv.delta_ci, pct=True),
                    _fmt_p(tv.p_value),
                    _fmt_p(tv.p_holm),
                    verdict,
                ]
            )
        cells = [[str(c).replace("|", "\\|") for c in r] for r in [header, *rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

        def line(r):
            return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

        out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(r) for r in cells[1:]]
        out.append("")
        dm_ci = _fmt_ci(self.delta_m_ci, pct=True)
        out.append(
            f"Δm = {_fmt(self.delta_m, pct=True)}"
            + (f"{dm_ci} ({level} percentile bootstrap over seeds)" if dm_ci else " (no interval: an arm has < 2 seeds)")
            + f". Means with {level} t-intervals; "
            f"Δ with {level} Fieller intervals; Welch t-tests, Holm-corrected at alpha = {self.alpha:g}."
        )
        out += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
        return "\n".join(out)


def task_verdicts(
    candidate: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]],
    directions: Mapping[str, str],
    *,
    alpha: float = 0.05,
    weights: Mapping[str, float] | None = None,
    n_resamples: int = 10_000,
    seed: int | None = 0,
) -> Verdict:
    """Say per task whether sharing helped, hurt, or made no detectable difference.

    For each task (the keys of ``directions``, in order):

    * **means** of each arm with ``1 - alpha`` Student-t intervals
      (:func:`scipy.stats.t.interval`, ``n - 1`` df);
    * **Δ_t** = :func:`relative_delta` of the two means, with a **Fieller**
      interval for the ratio ``R = mean_c / mean_b`` of independent means,
      mapped through ``Δ = sign * sgn(mean_b) * (R - 1)``. The t quantile uses
      the Welch-Satterthwaite df of the difference, so a bounded interval
      excludes 0 exactly when the unadjusted Welch test rejects at ``alpha``
      (test and interval agree). Fieller, not the delta method: with 3 seeds the delta
      method's symmetric normal interval ignores that the denominator is
      estimated; Fieller's is asymmetric and becomes unbounded when the
      baseline mean is not distinguishable from 0 -- reported as its hull
      ``(-inf, inf)`` with a note;
    * **Welch** two-sided p-value (:func:`scipy.stats.ttest_ind_from_stats`,
      ``equal_var=False``; candidate and baseline runs are unpaired);
    * **Holm** adjustment across the tested tasks (:func:`holm`) and the
      verdict: ``"negative transfer"`` if ``p_holm <= alpha`` and Δ_t < 0,
      ``"gain"`` if ``p_holm <= alpha`` and Δ_t > 0, otherwise
      ``"no significant difference"``.

    Edge cases:

    * **Zero variance in both arms** (identical seeds, e.g. deterministic
      training): if the means are equal the p-value is 1.0; if they differ it
      is 0.0 -- the limit of Welch's test as the variances shrink: every run
      of one arm beats every run of the other by the same margin. A note flags
      it, because identical seeds usually mean the seed is not reaching the
      training. The Δ interval is then the point ``(Δ, Δ)``. Zero variance in
      one arm only is ordinary Welch (df from the other arm).
    * **One seed** in an arm: no interval (NaN), no test (p NaN, excluded from
      Holm's family), verdict ``"no significant difference"`` with a note.
    * A **missing task** raises KeyError naming it; a baseline mean of 0
      raises ValueError naming the task (Δ is undefined).

    Parameters
    ----------
    candidate, baseline : Mapping[str, Sequence[float]]
        Per-task primary-metric values on the test split, one per seed
        (independent runs; lengths may differ between arms).
    directions : Mapping[str, str]
        Per-task ``"maximize"``/``"minimize"``; its keys are the task set.
    alpha : float
        Family-wise error rate for Holm; intervals are ``1 - alpha``.
    weights : Mapping[str, float], optional
        Priority weights for Δm (``TaskSpec.weight``).
    n_resamples : int
        Bootstrap resamples for the Δm interval.
    seed : int or None
        Bootstrap seed (reproducible interval).

    Returns
    -------
    Verdict

    Examples
    --------
    >>> v = task_verdicts({"rmse": [0.80, 0.81, 0.79]}, {"rmse": [1.00, 1.01, 0.99]},
    ...                   {"rmse": "minimize"})
    >>> tv = v.tasks[0]
    >>> tv.verdict, round(tv.delta, 2), tv.delta_ci[0] < tv.delta < tv.delta_ci[1]
    ('gain', 0.2, True)
    """
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    tasks, signs, cs, bs = _prepare(candidate, baseline, directions)
    w = _task_weights(directions, weights)
    confidence = 1.0 - alpha

    partial = []
    for t, s, c, b in zip(tasks, signs, cs, bs):
        mc, mb = float(np.mean(c)), float(np.mean(b))
        if mb == 0.0:
            raise ValueError(
                f"task {t!r}: baseline mean is 0, so the relative change Δ is undefined "
                "(use a metric that is non-zero for the baseline)"
            )
        delta = s * (mc - mb) / abs(mb)
        k = s * math.copysign(1.0, mb)  # Δ = k (R - 1), R = mc / mb
        vc, vb = _var(c), _var(b)
        notes = []
        if c.size < 2 or b.size < 2:
            notes.append(
                f"too few seeds (n_candidate={c.size}, n_baseline={b.size}): "
                "need at least 2 per arm for intervals and a test"
            )
            p, dci = math.nan, _NAN_PAIR
        elif vc == 0.0 and vb == 0.0:
            p = 1.0 if mc == mb else 0.0
            dci = (delta, delta)
            notes.append(
                "zero variance in both arms (identical seeds): "
                + ("equal means, p = 1" if mc == mb else "every run differs by the same margin, p = 0 (limit)")
                + "; check that seeds reach training"
            )
        else:
            p = float(
                stats.ttest_ind_from_stats(
                    mc, math.sqrt(vc), c.size, mb, math.sqrt(vb), b.size, equal_var=False
                ).pvalue
            )
            df = _welch_df(vc, c.size, vb, b.size)
            tq = float(stats.t.ppf(1.0 - alpha / 2.0, df))
            r_lo, r_hi = _fieller(mc, vc / c.size, mb, vb / b.size, tq)
            if math.isinf(r_lo):
                dci = (-math.inf, math.inf)
                notes.append("baseline mean not distinguishable from 0: Δ interval unbounded")
            else:
                dci = (k * (r_lo - 1.0), k * (r_hi - 1.0)) if k > 0 else (k * (r_hi - 1.0), k * (r_lo - 1.0))
        partial.append((t, c, b, mc, mb, delta, dci, p, "; ".join(notes)))

    p_holm = holm([row[7] for row in partial])
    out = []
    for (t, c, b, mc, mb, delta, dci, p, note), ph in zip(partial, p_holm):
        ph = float(ph)
        if not math.isnan(ph) and ph <= alpha and delta != 0.0:
            verdict = "gain" if delta > 0 else "negative transfer"
        else:
            verdict = "no significant difference"
        out.append(
            TaskVerdict(
                task=t,
                direction=directions[t],
                n_candidate=int(c.size),
                n_baseline=int(b.size),
                candidate_mean=mc,
                candidate_ci=_mean_ci(c, confidence),
                baseline_mean=mb,
                baseline_ci=_mean_ci(b, confidence),
                delta=float(delta),
                delta_ci=(float(dci[0]), float(dci[1])),
                p_value=float(p),
                p_holm=ph,
                verdict=verdict,
                note=note,
            )
        )
    dm = float(_combine(signs, w, [np.array([tv.candidate_mean]) for tv in out],
                        [np.array([tv.baseline_mean]) for tv in out])[0])
    ci = _bootstrap(signs, w, cs, bs, int(n_resamples), confidence, seed)
    return Verdict(
        tasks=out,
        delta_m=dm,
        delta_m_ci=ci,
        alpha=float(alpha),
        n_resamples=int(n_resamples),
        seed=seed,
        weights={t: float(x) for t, x in zip(tasks, w)},
    )

"""task_verdicts: per task, did sharing help, hurt, change nothing that matters, or can we not tell?"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SharesearchError
from ._delta import relative_change
from ._intervals import RowPredictions, interval_from_arms, _setup
from ._records import TaskVerdict, Verdict
from ._tests import NAN_PAIR, Sample, fieller, holm, mean_ci, minimum_detectable_effect, tost_p, welch_p

__all__ = ["task_verdicts"]


@dataclass(frozen=True)
class _TaskTest:
    """One task's statistics before Holm's correction."""

    c: np.ndarray  # finite candidate values
    b: np.ndarray  # finite baseline values
    delta: float  # relative change of the means
    delta_ci: tuple[float, float]  # Fieller interval (NaN pair when untested)
    p: float  # Welch two-sided p (NaN: untestable)
    p_equivalence: float  # TOST p (NaN: untestable)
    notes: tuple[str, ...]  # caveats


def _test_task(task: str, sign: float, c: np.ndarray, b: np.ndarray, confidence: float, margin: float,
               n_div: tuple[int, int]) -> _TaskTest:
    notes = []
    if n_div[0] or n_div[1]:
        notes.append(f"diverged runs left out: {n_div[0]} candidate, {n_div[1]} baseline")
    if c.size == 0 or b.size == 0:
        notes.append("every run of an arm diverged: nothing to compare")
        return _TaskTest(c, b, math.nan, NAN_PAIR, math.nan, math.nan, tuple(notes))
    sc, sb = Sample.of(c), Sample.of(b)
    if sb.mean == 0.0:
        raise SharesearchError(f"task {task!r}: baseline mean is 0, so the relative change Δ is undefined "
                               "(use a metric that is non-zero for the baseline)")
    delta = float(relative_change(sign, sc.mean, sb.mean))
    if c.size < 2 or b.size < 2:
        notes.append(f"too few seeds (n_candidate={c.size}, n_baseline={b.size}): "
                     "need at least 2 per arm for intervals and a test; untestable")
        return _TaskTest(c, b, delta, NAN_PAIR, math.nan, math.nan, tuple(notes))
    if sc.var == 0.0 and sb.var == 0.0:
        notes.append("zero variance in both arms (identical seeds): untestable, not p = 0; "
                     "check that seeds reach training")
        return _TaskTest(c, b, delta, NAN_PAIR, math.nan, math.nan, tuple(notes))
    dci = fieller(sc, sb, sign, confidence)
    if math.isinf(dci[0]):
        notes.append("baseline mean not distinguishable from 0: Δ interval unbounded")
    return _TaskTest(c, b, delta, dci, welch_p(sc, sb), tost_p(sc, sb, sign, margin), tuple(notes))


def _label(t: _TaskTest, p_holm: float, p_eq_holm: float, alpha: float) -> str:
    if math.isnan(p_holm):
        return "untestable"
    if p_holm <= alpha and t.delta != 0.0:
        return "positive transfer" if t.delta > 0 else "negative transfer"
    return "equivalent" if p_eq_holm <= alpha else "inconclusive"


def task_verdicts(
    candidate: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]],
    directions: Mapping[str, str],
    *,
    alpha: float = 0.05,
    weights: Mapping[str, float] | None = None,
    n_resamples: int | None = None,
    seed: int | None = 0,
    margin: float = 0.05,
    power: float = 0.80,
    rows: RowPredictions | None = None,
    arm: str = "the candidate",
) -> Verdict:
    """Say per task whether sharing helped, hurt, changed nothing that matters, or cannot be told.

    Per task (the keys of ``directions``, in order), on the finite runs:

    * **means** of each arm with ``1 - alpha`` Student-t intervals;
    * **Δ_t** = :func:`relative_delta` of the means with a **Fieller** interval
      (asymmetric, unbounded when the baseline is not distinguishable from 0);
    * **Welch** two-sided p-value and its **Holm** adjustment across the
      tested tasks of this arm (one family per arm, named in ``holm_family``);
    * **TOST** p-value for ``|Δ_t| < margin``, Holm-adjusted the same way;
    * **MDE**: the smallest ``|Δ_t|`` Welch detects with ``power`` at ``alpha / m``
      (m tested tasks) from the observed spread and run counts.

    The label: ``"negative transfer"`` / ``"positive transfer"`` when the Holm
    p-value is ``<= alpha``; else ``"equivalent"`` (within ±margin) when the
    Holm TOST p-value is; else ``"inconclusive"`` (with its MDE); and
    ``"untestable"`` (p = NaN, outside Holm's family) for fewer than 2 runs in
    an arm or zero spread in both arms. A non-finite value is a **diverged
    run**: left out of the statistics and counted in ``n_diverged_*``.

    Δm is the weighted mean of Δ_t; its interval comes from whole runs
    (:func:`delta_m_interval`): seeds only by default, plus the test-row
    sampling variance when ``rows`` holds per-row predictions.

    Parameters
    ----------
    candidate, baseline : Mapping[str, Sequence[float]]
        Per-task primary-metric values on the test split, one per run; value
        ``j`` of every task is run ``j`` of that arm.
    directions : Mapping[str, str]
        Per-task ``"maximize"``/``"minimize"``; its keys are the task set.
    alpha : float
        Family-wise error rate for Holm; intervals are ``1 - alpha``.
    weights : Mapping[str, float], optional
        Priority weights for Δm (``TaskSpec.weight``).
    n_resamples : int, optional
        Row-bootstrap resamples (default ``rows.n_resamples``); unused without rows.
    seed : int or None
        Row-bootstrap seed.
    margin : float
        Equivalence margin on the relative change (0.05: ±5 %).
    power : float
        Power at which the MDE is computed.
    rows : RowPredictions, optional
        Per-row test predictions and labels with a metric function.
    arm : str
        Name of the compared arm, for the Holm family statement.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> v = task_verdicts({"rmse": [0.80, 0.81, 0.79]}, {"rmse": [1.00, 1.01, 0.99]}, {"rmse": "minimize"})
    >>> tv = v.tasks[0]
    >>> tv.verdict, round(tv.delta, 2), tv.delta_ci[0] < tv.delta < tv.delta_ci[1]
    ('positive transfer', 0.2, True)
    """
    if not (0.0 < alpha < 1.0):
        raise SharesearchError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not (0.0 < margin < 1.0) or not (0.0 < power < 1.0):
        raise SharesearchError(f"margin and power must lie in (0, 1), got margin={margin!r}, power={power!r}")
    tasks, w, signs, cand, base = _setup(candidate, baseline, directions, weights)
    if rows is not None and n_resamples is not None:
        rows = RowPredictions(rows.y_true, rows.candidate, rows.baseline, rows.metric, int(n_resamples))
    confidence = 1.0 - alpha
    tested = [_test_task(t, s, cand.finite(i), base.finite(i), confidence, margin,
                         (cand.n_diverged(i), base.n_diverged(i)))
              for i, (t, s) in enumerate(zip(tasks, signs))]
    p_holm = holm([x.p for x in tested])
    p_eq_holm = holm([x.p_equivalence for x in tested])
    m = int(np.sum(~np.isnan(p_holm)))
    out = []
    for i, (t, x) in enumerate(zip(tasks, tested)):
        label = _label(x, float(p_holm[i]), float(p_eq_holm[i]), alpha)
        testable = label != "untestable"
        out.append(TaskVerdict(
            task=t, direction=directions[t], n_candidate=int(x.c.size), n_baseline=int(x.b.size),
            candidate_mean=float(np.mean(x.c)) if x.c.size else math.nan,
            candidate_ci=mean_ci(x.c, confidence) if x.c.size else NAN_PAIR,
            baseline_mean=float(np.mean(x.b)) if x.b.size else math.nan,
            baseline_ci=mean_ci(x.b, confidence) if x.b.size else NAN_PAIR,
            delta=x.delta, delta_ci=(float(x.delta_ci[0]), float(x.delta_ci[1])),
            p_value=x.p, p_holm=float(p_holm[i]), verdict=label, note="; ".join(x.notes),
            mde=minimum_detectable_effect(Sample.of(x.c), Sample.of(x.b), alpha=alpha / m, power=power)
            if testable else math.nan,
            margin=float(margin), p_equivalence=x.p_equivalence, p_equivalence_holm=float(p_eq_holm[i]),
            equivalent=bool(p_eq_holm[i] <= alpha) if testable else None,
            n_diverged_candidate=cand.n_diverged(i), n_diverged_baseline=base.n_diverged(i),
        ))
    means = [(tv.candidate_mean, tv.baseline_mean) for tv in out]
    dm = float(relative_change(signs, *np.array(means).T) @ w / w.sum())
    iv = interval_from_arms(signs, w, cand, base, dm, confidence, rows, tasks, seed)
    family = (f"the {m} tested task{'s' if m != 1 else ''} of {arm} against the independent baselines "
              "(one family per compared arm; arms are not corrected against each other)")
    return Verdict(
        tasks=out, delta_m=dm, delta_m_ci=(iv.low, iv.high), alpha=float(alpha),
        n_resamples=rows.n_resamples if rows is not None else 0, seed=seed,
        weights={t: float(x) for t, x in zip(tasks, w)}, delta_m_method=iv.method, holm_family=family,
        margin=float(margin), power=float(power),
        n_diverged_candidate=cand.n_diverged_runs, n_diverged_baseline=base.n_diverged_runs,
    )

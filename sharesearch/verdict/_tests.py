"""Per-task tests on two independent samples of runs: Welch, Fieller, Holm, TOST and power.

Pure functions of numbers (numpy, scipy.stats). The relative change is
``Δ = s (c - b) / |b|`` with ``s`` = +1 (maximize) or -1 (minimize), ``c`` and
``b`` the candidate and baseline means. Every bound ``Δ > L`` is the linear
statement ``s c - (s + L sgn b) b > 0``, so the tests against 0 (Welch), the
interval (Fieller) and the tests against ±margin (TOST) are one family of
Welch-type t statistics with Welch-Satterthwaite degrees of freedom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = [
    "Sample",
    "sample_var",
    "mean_ci",
    "welch_p",
    "fieller",
    "holm",
    "bound_p",
    "tost_p",
    "welch_power",
    "minimum_detectable_effect",
    "seeds_for_power",
]

NAN_PAIR = (math.nan, math.nan)


@dataclass(frozen=True)
class Sample:
    """Summary of one arm's finite runs of one task."""

    mean: float  # mean over runs
    var: float  # sample variance (ddof=1); 0 for identical runs, NaN for one run
    n: int  # number of runs

    @classmethod
    def of(cls, x: np.ndarray) -> "Sample":
        """The summary of the values ``x`` (1-D, finite, at least one)."""
        return cls(float(np.mean(x)), sample_var(x), int(x.size))

    @property
    def se2(self) -> float:
        """Squared standard error of the mean."""
        return self.var / self.n


def sample_var(x: np.ndarray) -> float:
    """Sample variance (ddof=1); exactly 0 for identical values (no round-off), NaN for one value.

    >>> sample_var(np.array([1.0, 1.0])), sample_var(np.array([1.0, 3.0]))
    (0.0, 2.0)
    """
    if x.size < 2:
        return math.nan
    if np.ptp(x) == 0:
        return 0.0
    return float(np.var(x, ddof=1))


def mean_ci(x: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student-t interval for the mean; NaN for one value, the point for zero variance.

    >>> [round(v, 3) for v in mean_ci(np.array([1.0, 2.0, 3.0]), 0.95)]
    [-0.484, 4.484]
    """
    s = Sample.of(x)
    if math.isnan(s.var):
        return NAN_PAIR
    if s.var == 0.0:
        return (s.mean, s.mean)
    lo, hi = stats.t.interval(confidence, df=s.n - 1, loc=s.mean, scale=math.sqrt(s.se2))
    return (float(lo), float(hi))


def _welch_df(a: float, na: int, b: float, nb: int) -> float:
    """Welch-Satterthwaite df of ``a + b``, with ``a``, ``b`` squared standard errors of ``na``, ``nb`` runs."""
    den = (a * a / (na - 1) if a else 0.0) + (b * b / (nb - 1) if b else 0.0)
    return (a + b) ** 2 / den if den > 0 else math.inf


def welch_p(c: Sample, b: Sample) -> float:
    """Two-sided Welch p-value for equal means (:func:`scipy.stats.ttest_ind_from_stats`).

    >>> round(welch_p(Sample(1.0, 0.01, 3), Sample(1.2, 0.01, 3)), 3)
    0.07
    """
    return float(
        stats.ttest_ind_from_stats(
            c.mean, math.sqrt(c.var), c.n, b.mean, math.sqrt(b.var), b.n, equal_var=False
        ).pvalue
    )


def fieller(c: Sample, b: Sample, sign: float, confidence: float) -> tuple[float, float]:
    """Fieller interval for ``Δ = sign (c - b)/|b|`` from independent means.

    Solves ``(c - R b)^2 <= t^2 (se_c^2 + R^2 se_b^2)`` for the ratio ``R = c/b``
    with the Welch df of the difference (so a bounded interval excludes 0
    exactly when :func:`welch_p` rejects), then maps ``Δ = sign sgn(b) (R - 1)``.
    ``(-inf, inf)`` when ``b`` is not distinguishable from 0 (unbounded set).

    >>> [round(x, 3) for x in fieller(Sample(0.9, 1e-4, 3), Sample(0.8, 1e-4, 3), 1.0, 0.95)]
    [0.095, 0.156]
    """
    va, vb = c.se2, b.se2
    tq = float(stats.t.ppf(0.5 + confidence / 2.0, _welch_df(va, c.n, vb, b.n)))
    den = b.mean * b.mean - tq * tq * vb
    if den <= 0:
        return (-math.inf, math.inf)
    half = tq * math.sqrt(c.mean * c.mean * vb + va * den)
    r_lo, r_hi = (c.mean * b.mean - half) / den, (c.mean * b.mean + half) / den
    k = sign * math.copysign(1.0, b.mean)
    return (k * (r_lo - 1.0), k * (r_hi - 1.0)) if k > 0 else (k * (r_hi - 1.0), k * (r_lo - 1.0))


def holm(p_values) -> np.ndarray:
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


def bound_p(c: Sample, b: Sample, sign: float, bound: float, alternative: str) -> float:
    """One-sided p-value for ``Δ > bound`` (``"greater"``) or ``Δ < bound`` (``"less"``).

    The statistic is ``(s c - k b) / sqrt(se_c^2 + k^2 se_b^2)`` with
    ``k = s + bound sgn(b)`` (a Fieller-type test of a ratio against a margin,
    as in Hauschke et al., *J. Biopharm. Stat.* 1999), Welch-Satterthwaite df.

    >>> round(bound_p(Sample(0.8, 1e-4, 5), Sample(0.8, 1e-4, 5), 1.0, -0.05, "greater"), 4)
    0.0001
    """
    k = sign + bound * math.copysign(1.0, b.mean)
    a, v = c.se2, k * k * b.se2
    t = (sign * c.mean - k * b.mean) / math.sqrt(a + v)
    df = _welch_df(a, c.n, v, b.n)
    return float(stats.t.sf(t, df) if alternative == "greater" else stats.t.cdf(t, df))


def tost_p(c: Sample, b: Sample, sign: float, margin: float) -> float:
    """Two one-sided tests (Schuirmann 1987) of ``-margin < Δ < margin``: the larger one-sided p-value.

    A small value says the relative change lies within ±``margin``.

    >>> tost_p(Sample(0.8, 1e-4, 5), Sample(0.8, 1e-4, 5), 1.0, 0.05) < 0.001
    True
    """
    return max(bound_p(c, b, sign, -margin, "greater"), bound_p(c, b, sign, margin, "less"))


def welch_power(noncentrality: float, df: float, alpha: float) -> float:
    """Power of a two-sided t-test at level ``alpha`` (noncentral t, :data:`scipy.stats.nct`).

    >>> round(welch_power(3.0, 10, 0.05), 3)
    0.771
    """
    tq = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    upper = float(stats.nct.sf(tq, df, noncentrality))
    lower = float(stats.nct.cdf(-tq, df, noncentrality))  # far tails can come back NaN: they are ~0
    if math.isnan(upper):
        upper = 1.0 if noncentrality > tq else 0.0
    return upper + (0.0 if math.isnan(lower) else lower)


def _noncentrality_for_power(df: float, alpha: float, power: float) -> float:
    """The noncentrality at which :func:`welch_power` reaches ``power``."""
    hi = 1.0
    while welch_power(hi, df, alpha) < power:
        hi *= 2.0
    return float(optimize.brentq(lambda lam: welch_power(lam, df, alpha) - power, 0.0, hi, xtol=1e-5))


def minimum_detectable_effect(c: Sample, b: Sample, *, alpha: float, power: float = 0.80) -> float:
    """Smallest relative change ``|Δ|`` detected with ``power`` at the achieved runs and spread.

    The noncentral t power of Welch's two-sided test at level ``alpha`` (pass
    ``alpha / m`` for Holm over ``m`` tasks: Holm's first, strictest step), the
    observed standard errors and their Welch df; relative to ``|b|``. NaN when
    an arm has one run or both arms have zero spread.

    >>> round(minimum_detectable_effect(Sample(0.8, 0.056**2, 3), Sample(0.8, 0.056**2, 3), alpha=0.05), 3)
    0.215
    """
    if c.n < 2 or b.n < 2 or (c.var == 0.0 and b.var == 0.0) or b.mean == 0.0:
        return math.nan
    se2 = c.se2 + b.se2
    df = _welch_df(c.se2, c.n, b.se2, b.n)
    return _noncentrality_for_power(df, alpha, power) * math.sqrt(se2) / abs(b.mean)


def seeds_for_power(cv: float, effect: float = 0.10, n_tasks: int = 1, alpha: float = 0.05,
                    power: float = 0.80) -> int:
    """Seeds per arm needed to detect a relative loss ``effect`` with ``power`` after Holm over ``n_tasks``.

    Both arms have the seed-to-seed standard deviation ``cv * |baseline mean|``
    and ``n`` seeds; the test is Welch's two-sided test at ``alpha / n_tasks``
    (Holm's first step, which a lone effect among ``n_tasks`` tests must
    pass), whose df for equal spreads and sizes is ``2 (n - 1)``. Power is the
    noncentral t (:data:`scipy.stats.nct`) with noncentrality
    ``effect / (cv sqrt(2 / n))``. Returns the smallest ``n >= 2``.

    Parameters
    ----------
    cv : float
        Coefficient of variation of a task's metric over seeds (> 0).
    effect : float
        Relative change to detect (> 0), e.g. 0.10 for a 10 % loss.
    n_tasks : int
        Size of the Holm family (tasks tested together).
    alpha, power : float
        Family-wise error rate and the power wanted.

    Examples
    --------
    >>> seeds_for_power(0.07, 0.10, n_tasks=1), seeds_for_power(0.07, 0.10, n_tasks=6)
    (9, 14)
    """
    if not (cv > 0 and effect > 0 and n_tasks >= 1 and 0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"seeds_for_power needs cv > 0, effect > 0, n_tasks >= 1, alpha and power in (0, 1); "
                         f"got cv={cv!r}, effect={effect!r}, n_tasks={n_tasks!r}, alpha={alpha!r}, power={power!r}")
    level = alpha / n_tasks
    n = 2
    while welch_power(effect / (cv * math.sqrt(2.0 / n)), 2.0 * (n - 1), level) < power:
        n += 1
        if n > 100_000:
            raise ValueError(f"more than 100000 seeds needed for cv={cv!r}, effect={effect!r}")
    return n

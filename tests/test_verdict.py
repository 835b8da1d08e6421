"""Tests for sharesearch.verdict: Δm, Holm, Welch/Fieller intervals, bootstrap, serialisation."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from sharesearch.errors import SharesearchError

from sharesearch.verdict import (
    VERDICTS,
    RowPredictions,
    TaskVerdict,
    Verdict,
    bootstrap_delta_m,
    delta_m,
    delta_m_interval,
    hierarchical_bootstrap_delta_m,
    holm,
    relative_delta,
    seeds_for_power,
    task_verdicts,
)

FAST = settings(max_examples=60, deadline=None)

# metric-like values bounded away from 0 (AUC, accuracy, RMSE ...)
metric = st.floats(min_value=0.5, max_value=2.0, allow_nan=False, allow_infinity=False)
seeds = st.lists(metric, min_size=2, max_size=6)
direction = st.sampled_from(["maximize", "minimize"])


def nan_equal(a, b) -> bool:
    """Field-wise equality where NaN == NaN."""
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(nan_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def task_equal(a: TaskVerdict, b: TaskVerdict) -> bool:
    return all(nan_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)


# --------------------------------------------------------------------------- relative_delta


class TestRelativeDelta:
    def test_maximize_hand_computed(self):
        assert relative_delta(0.9, 0.8, "maximize") == pytest.approx(0.125)
        assert relative_delta(0.6, 0.8, "maximize") == pytest.approx(-0.25)

    def test_minimize_hand_computed(self):
        # lower RMSE is better: 1.2 -> 0.9 is a 25 % gain, 1.0 -> 1.1 a 10 % loss
        assert relative_delta(0.9, 1.2, "minimize") == pytest.approx(0.25)
        assert relative_delta(1.1, 1.0, "minimize") == pytest.approx(-0.1)

    def test_negative_baseline_uses_absolute_value(self):
        # R² of -0.5 improved to -0.25 is better: +50 %, not -50 %
        assert relative_delta(-0.25, -0.5, "maximize") == pytest.approx(0.5)

    def test_equal_is_zero(self):
        assert relative_delta(0.7, 0.7, "maximize") == 0.0
        assert relative_delta(0.7, 0.7, "minimize") == 0.0

    def test_zero_single_raises_naming_it(self):
        with pytest.raises(ValueError, match="single == 0"):
            relative_delta(0.3, 0.0, "maximize")

    def test_bad_direction_and_nan(self):
        with pytest.raises(ValueError, match="direction"):
            relative_delta(1.0, 2.0, "max")
        with pytest.raises(ValueError, match="finite"):
            relative_delta(float("nan"), 2.0, "maximize")

    @FAST
    @given(metric, metric)
    def test_directions_are_opposite(self, m, s):
        assert relative_delta(m, s, "maximize") == -relative_delta(m, s, "minimize")


# --------------------------------------------------------------------------- delta_m


class TestDeltaM:
    dirs = {"a": "maximize", "b": "minimize"}
    multi = {"a": 0.9, "b": 1.1}
    single = {"a": 0.8, "b": 1.0}

    def test_unweighted_mean(self):
        # Δ_a = +0.125, Δ_b = -0.1
        assert delta_m(self.multi, self.single, self.dirs) == pytest.approx((0.125 - 0.1) / 2)

    def test_weighted_mean(self):
        got = delta_m(self.multi, self.single, self.dirs, {"a": 3.0, "b": 1.0})
        assert got == pytest.approx((3 * 0.125 - 0.1) / 4)
        # only relative weights matter
        assert delta_m(self.multi, self.single, self.dirs, {"a": 6, "b": 2}) == pytest.approx(got)
        # equal weights = unweighted
        assert delta_m(self.multi, self.single, self.dirs, {"a": 2, "b": 2}) == pytest.approx(
            delta_m(self.multi, self.single, self.dirs)
        )

    def test_extra_keys_ignored(self):
        got = delta_m({**self.multi, "zzz": 5.0}, {**self.single, "zzz": 1.0}, self.dirs)
        assert got == pytest.approx(0.0125)

    @pytest.mark.parametrize("which", ["multi", "single", "weights"])
    def test_missing_task_names_it(self, which):
        multi, single, weights = dict(self.multi), dict(self.single), {"a": 1.0, "b": 1.0}
        {"multi": multi, "single": single, "weights": weights}[which].pop("b")
        with pytest.raises(KeyError, match="'b'"):
            delta_m(multi, single, self.dirs, weights)

    def test_invalid_inputs(self):
        with pytest.raises(ValueError, match="empty"):
            delta_m({}, {}, {})
        with pytest.raises(ValueError, match="'a'.*weight"):
            delta_m(self.multi, self.single, self.dirs, {"a": 0.0, "b": 1.0})
        with pytest.raises(ValueError, match="'b'"):
            delta_m(self.multi, {"a": 0.8, "b": 0.0}, self.dirs)


# --------------------------------------------------------------------------- Holm


def holm_reject_reference(p, alpha):
    """Holm's procedure straight from its definition (no adjusted p-values)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    reject = np.zeros(m, bool)
    for i, j in enumerate(order):
        if p[j] <= alpha / (m - i):
            reject[j] = True
        else:
            break
    return reject


class TestHolm:
    def test_hand_computed(self):
        # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(1*0.04, 0.06)
        np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])

    def test_hand_computed_four(self):
        # sorted 0.001, 0.01, 0.04, 0.2 -> 0.004, 0.03, 0.08, 0.2
        np.testing.assert_allclose(holm([0.001, 0.2, 0.01, 0.04]), [0.004, 0.2, 0.03, 0.08])

    def test_capped_at_one_and_single(self):
        np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
        np.testing.assert_allclose(holm([0.02]), [0.02])

    def test_nan_excluded_from_family(self):
        out = holm([0.01, float("nan"), 0.04])
        assert math.isnan(out[1])
        np.testing.assert_allclose(out[[0, 2]], [0.02, 0.04])  # m = 2, not 3

    def test_rejects_out_of_range(self):
        with pytest.raises(ValueError):
            holm([0.1, 1.5])

    @FAST
    @given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
    def test_bounds_and_monotone(self, p):
        p = np.array(p)
        adj = holm(p)
        assert np.all(adj >= p - 1e-15)
        assert np.all(adj <= 1.0)
        assert np.all(adj <= np.minimum(1.0, len(p) * p) + 1e-15)  # never worse than Bonferroni
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adj[order]) >= 0)  # same order as the raw p-values

    @FAST
    @given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
    def test_matches_step_down_definition(self, p, alpha):
        p = np.array(p)
        assume(np.all(np.abs(p[:, None] * np.arange(1, len(p) + 1) - alpha) > 1e-12))
        np.testing.assert_array_equal(holm(p) <= alpha, holm_reject_reference(p, alpha))


# --------------------------------------------------------------------------- verdicts


def planted(effect, noise=0.005, n=3, base=0.8, seed=0):
    rng = np.random.default_rng(seed)
    return (base + effect + noise * rng.standard_normal(n)).tolist(), (base + noise * rng.standard_normal(n)).tolist()


class TestPlanted:
    def test_negative_transfer(self):
        c, b = planted(-0.1)
        v = task_verdicts({"auc": c}, {"auc": b}, {"auc": "maximize"})
        tv = v.tasks[0]
        assert tv.verdict == "negative transfer"
        assert tv.delta < 0 and tv.delta_ci[1] < 0 and tv.p_holm <= 0.05
        assert v.negative_transfer == ["auc"]

    def test_negative_transfer_minimize(self):
        c, b = planted(+0.1)  # RMSE went up: worse
        v = task_verdicts({"rmse": c}, {"rmse": b}, {"rmse": "minimize"})
        assert v.tasks[0].verdict == "negative transfer"

    def test_gain(self):
        c, b = planted(+0.1)
        v = task_verdicts({"auc": c}, {"auc": b}, {"auc": "maximize"})
        assert v.tasks[0].verdict == "positive transfer"
        assert v.tasks[0].delta_ci[0] > 0
        assert v.delta_m > 0 and v.delta_m_ci[0] > 0

    def test_equal_distributions(self):
        c, b = planted(0.0, noise=0.02, n=5, seed=3)
        v = task_verdicts({"auc": c}, {"auc": b}, {"auc": "maximize"})
        # 5 seeds at a 2.5 % spread cannot show |Δ| < 5 %: not significant, not equivalent either
        tv = v.tasks[0]
        assert tv.verdict == "inconclusive" and tv.equivalent is False and tv.p_equivalence > 0.05
        assert tv.mde > tv.margin and tv.label == f"inconclusive (MDE {100 * tv.mde:.3g}%)"
        assert v.tasks[0].delta_ci[0] < 0 < v.tasks[0].delta_ci[1]
        same = task_verdicts({"auc": c}, {"auc": c}, {"auc": "maximize"}).tasks[0]
        assert same.p_value == pytest.approx(1.0) and same.delta == 0.0
        assert same.verdict == "inconclusive"
        # with 40 seeds the same null spread is shown to be within ±5 %
        c40, b40 = planted(0.0, noise=0.02, n=40, seed=3)
        many = task_verdicts({"auc": c40}, {"auc": b40}, {"auc": "maximize"}).tasks[0]
        assert many.verdict == "equivalent" and many.equivalent is True and many.label == "equivalent within ±5%"
        assert many.mde < tv.mde

    def test_mixed_tasks_in_order(self):
        cg, bg = planted(+0.1, seed=1)
        cn, bn = planted(-0.1, seed=2)
        c0, b0 = planted(0.0, noise=0.02, seed=4)
        v = task_verdicts(
            {"g": cg, "n": cn, "z": c0}, {"g": bg, "n": bn, "z": b0}, {"z": "maximize", "g": "maximize", "n": "maximize"}
        )
        assert [(t.task, t.verdict) for t in v.tasks] == [
            ("z", "inconclusive"),
            ("g", "positive transfer"),
            ("n", "negative transfer"),
        ]
        assert set(VERDICTS) >= {t.verdict for t in v.tasks}

    def test_holm_can_remove_significance(self):
        # a moderate effect is significant alone but not among 3 tested tasks
        b = [1.0, 1.1, 1.2]
        c = [x + 0.25 for x in b]
        alone = task_verdicts({"a": c}, {"a": b}, {"a": "maximize"}).tasks[0]
        assert 0.05 / 3 < alone.p_value < 0.05  # precondition of the example
        assert alone.verdict == "positive transfer" and alone.p_holm == alone.p_value
        dirs = {"a": "maximize", "b": "maximize", "c": "maximize"}
        v = task_verdicts({"a": c, "b": b, "c": b}, {"a": b, "b": b, "c": b}, dirs)
        assert v.get("a").p_value == pytest.approx(alone.p_value)
        assert v.get("a").p_holm == pytest.approx(3 * alone.p_value)
        assert v.get("a").verdict == "inconclusive"
        assert v.get("a").mde > alone.mde  # alpha / 3 needs a larger effect
        assert "the 3 tested tasks" in v.holm_family and "the 3 tested tasks" in v.to_markdown()

    def test_alpha_changes_interval_level(self):
        c, b = planted(0.01, noise=0.01, n=4)
        wide = task_verdicts({"a": c}, {"a": b}, {"a": "maximize"}, alpha=0.01).tasks[0]
        narrow = task_verdicts({"a": c}, {"a": b}, {"a": "maximize"}, alpha=0.2).tasks[0]
        assert wide.delta_ci[0] < narrow.delta_ci[0] < narrow.delta_ci[1] < wide.delta_ci[1]
        assert wide.candidate_ci[0] < narrow.candidate_ci[0]


class TestAgainstScipy:
    @FAST
    @given(seeds, seeds, direction)
    def test_welch_p_and_mean_intervals(self, c, b, d):
        assume(np.ptp(c) > 1e-6 and np.ptp(b) > 1e-6)
        tv = task_verdicts({"t": c}, {"t": b}, {"t": d}).tasks[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = stats.ttest_ind(c, b, equal_var=False)
        assert tv.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
        for x, ci in ((c, tv.candidate_ci), (b, tv.baseline_ci)):
            lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
            assert ci == pytest.approx((lo, hi), rel=1e-9)

    @FAST
    @given(seeds, seeds, direction)
    def test_fieller_interval(self, c, b, d):
        assume(np.ptp(c) > 1e-6 and np.ptp(b) > 1e-6)
        tv = task_verdicts({"t": c}, {"t": b}, {"t": d}).tasks[0]
        lo, hi = tv.delta_ci
        assume(math.isfinite(lo) and math.isfinite(hi))
        assert lo <= tv.delta <= hi
        # endpoints solve Fieller's equation (a - R b)^2 = t^2 (va + R^2 vb), R = mc/mb
        a, bm = np.mean(c), np.mean(b)
        va, vb = np.var(c, ddof=1) / len(c), np.var(b, ddof=1) / len(b)
        df = (va + vb) ** 2 / (va**2 / (len(c) - 1) + vb**2 / (len(b) - 1))
        tq = stats.t.ppf(0.975, df)
        s = 1.0 if d == "maximize" else -1.0
        for delta_end in (lo, hi):
            r = 1.0 + delta_end / s  # bm > 0 here
            assert (a - r * bm) ** 2 == pytest.approx(tq**2 * (va + r**2 * vb), rel=1e-6, abs=1e-12)
        # test/interval duality: the interval excludes 0 exactly when Welch rejects at alpha
        assume(abs(tv.p_value - 0.05) > 1e-6)
        assert (lo > 0 or hi < 0) == (tv.p_value <= 0.05)

    def test_unbounded_fieller_when_baseline_near_zero(self):
        v = task_verdicts({"r2": [0.5, 0.52, 0.51]}, {"r2": [-0.3, 0.05, 0.4]}, {"r2": "maximize"})
        tv = v.tasks[0]
        assert tv.delta_ci == (-math.inf, math.inf)
        assert "unbounded" in tv.note

    def test_negative_baseline_interval(self):
        # maximise R²: baseline ~ -0.5, candidate ~ -0.25 -> +50 %, interval around it
        tv = task_verdicts({"r2": [-0.26, -0.25, -0.24]}, {"r2": [-0.51, -0.5, -0.49]}, {"r2": "maximize"}).tasks[0]
        assert tv.delta == pytest.approx(0.5)
        assert 0 < tv.delta_ci[0] < 0.5 < tv.delta_ci[1]
        assert tv.verdict == "positive transfer"


class TestSwap:
    @FAST
    @given(seeds, seeds, direction)
    def test_swap_flips_delta_keeps_p(self, c, b, d):
        fwd = task_verdicts({"t": c}, {"t": b}, {"t": d}).tasks[0]
        bwd = task_verdicts({"t": b}, {"t": c}, {"t": d}).tasks[0]
        # exact identity: Δ(c,b)·|mean b| = -Δ(b,c)·|mean c|
        assert fwd.delta * abs(fwd.baseline_mean) == pytest.approx(-bwd.delta * abs(bwd.baseline_mean), abs=1e-12)
        if abs(fwd.delta) > 1e-9:
            assert np.sign(fwd.delta) == -np.sign(bwd.delta)
        # and approximately -Δ when the effect is small
        if abs(fwd.delta) < 0.01:
            assert bwd.delta == pytest.approx(-fwd.delta, abs=2e-4)
        assert nan_equal(bwd.p_value, fwd.p_value) or bwd.p_value == pytest.approx(fwd.p_value, rel=1e-9, abs=1e-15)
        flip = {"positive transfer": "negative transfer", "negative transfer": "positive transfer"}
        if fwd.verdict in flip or fwd.verdict == "untestable":
            assert bwd.verdict == flip.get(fwd.verdict, fwd.verdict)
        else:  # the ±margin is relative to the baseline, so equivalence is not exactly symmetric
            assert bwd.verdict in ("equivalent", "inconclusive")


# --------------------------------------------------------------------------- bootstrap


class TestBootstrap:
    @FAST
    @given(st.lists(st.tuples(seeds, seeds, direction, st.floats(0.5, 3)), min_size=1, max_size=3))
    def test_contains_point_and_reproducible(self, rows):
        cand = {f"t{i}": r[0] for i, r in enumerate(rows)}
        base = {f"t{i}": r[1] for i, r in enumerate(rows)}
        dirs = {f"t{i}": r[2] for i, r in enumerate(rows)}
        w = {f"t{i}": r[3] for i, r in enumerate(rows)}
        v = task_verdicts(cand, base, dirs, weights=w, n_resamples=2000, seed=7)
        lo, hi = v.delta_m_ci
        assert (lo - 1e-12 <= v.delta_m <= hi + 1e-12) or (math.isnan(lo) and "no interval" in v.delta_m_method)
        assert v.delta_m == pytest.approx(
            delta_m({k: np.mean(x) for k, x in cand.items()}, {k: np.mean(x) for k, x in base.items()}, dirs, w)
        )
        iv = delta_m_interval(cand, base, dirs, w)
        assert (iv.low, iv.high) == v.delta_m_ci and iv.method == v.delta_m_method
        boot = bootstrap_delta_m(cand, base, dirs, w, n_resamples=2000, seed=7)
        assert boot[0] - 1e-12 <= v.delta_m <= boot[1] + 1e-12
        assert bootstrap_delta_m(cand, base, dirs, w, n_resamples=2000, seed=7) == boot  # bit-for-bit

    def test_seed_matters_and_confidence_nests(self):
        c, b = planted(0.02, noise=0.02, n=5)
        args = ({"a": c}, {"a": b}, {"a": "maximize"})
        assert bootstrap_delta_m(*args, seed=1) != bootstrap_delta_m(*args, seed=2)
        lo90, hi90 = bootstrap_delta_m(*args, confidence=0.9, seed=1)
        lo99, hi99 = bootstrap_delta_m(*args, confidence=0.99, seed=1)
        assert lo99 < lo90 < hi90 < hi99

    def test_agrees_with_scipy_bootstrap(self):
        c, b = planted(0.03, noise=0.02, n=6, seed=11)

        def stat(x, y, axis=-1):
            my = np.mean(y, axis=axis)
            return (np.mean(x, axis=axis) - my) / np.abs(my)

        ref = stats.bootstrap(
            (np.array(c), np.array(b)), stat, method="percentile", n_resamples=20000, rng=np.random.default_rng(0)
        ).confidence_interval
        lo, hi = bootstrap_delta_m({"a": c}, {"a": b}, {"a": "maximize"}, n_resamples=20000, seed=5)
        width = ref.high - ref.low
        assert lo == pytest.approx(ref.low, abs=0.05 * width)
        assert hi == pytest.approx(ref.high, abs=0.05 * width)

    def test_weights_shift_delta_m(self):
        cg, bg = planted(+0.1, seed=1)
        cn, bn = planted(-0.1, seed=2)
        dirs = {"g": "maximize", "n": "maximize"}
        hi_g = task_verdicts({"g": cg, "n": cn}, {"g": bg, "n": bn}, dirs, weights={"g": 9, "n": 1})
        hi_n = task_verdicts({"g": cg, "n": cn}, {"g": bg, "n": bn}, dirs, weights={"g": 1, "n": 9})
        assert hi_g.delta_m > 0 > hi_n.delta_m
        assert hi_g.delta_m_ci[0] > 0 and hi_n.delta_m_ci[1] < 0
        # per-task verdicts do not depend on the weights
        assert [t.verdict for t in hi_g.tasks] == [t.verdict for t in hi_n.tasks]


# --------------------------------------------------------------------------- edge cases


class TestEdgeCases:
    def test_zero_variance_equal_means_is_untestable(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            v = task_verdicts({"a": [0.8] * 3}, {"a": [0.8] * 3}, {"a": "maximize"})
        tv = v.tasks[0]
        assert math.isnan(tv.p_value) and math.isnan(tv.p_holm) and math.isnan(tv.mde)
        assert tv.delta == 0.0 and all(math.isnan(x) for x in tv.delta_ci)
        assert tv.candidate_ci == (tv.candidate_mean, tv.candidate_mean)
        assert tv.verdict == "untestable" and tv.equivalent is None
        assert "zero variance" in tv.note and "not p = 0" in tv.note

    @pytest.mark.parametrize("d", ["maximize", "minimize"])
    def test_zero_variance_different_means_is_untestable_not_p0(self, d):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            v = task_verdicts({"a": [0.8] * 3}, {"a": [0.7] * 3}, {"a": d})
        tv = v.tasks[0]
        assert math.isnan(tv.p_value) and tv.verdict == "untestable"
        assert all(math.isnan(x) for x in v.delta_m_ci) and "zero spread" in v.delta_m_method
        assert not any(math.isnan(x) for x in (tv.delta, tv.candidate_mean, tv.baseline_mean, v.delta_m))
        assert "untestable" in v.to_markdown()

    def test_zero_variance_one_arm_is_plain_welch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tv = task_verdicts({"a": [0.8] * 3}, {"a": [0.7, 0.72, 0.74]}, {"a": "maximize"}).tasks[0]
        ref = stats.ttest_ind_from_stats(0.8, 0.0, 3, 0.72, 0.02, 3, equal_var=False).pvalue
        assert tv.p_value == pytest.approx(ref)
        assert tv.note == ""

    def test_one_seed(self):
        v = task_verdicts(
            {"a": [0.9], "b": [0.9, 0.91, 0.89]},
            {"a": [0.8, 0.81, 0.79], "b": [0.8, 0.81, 0.79]},
            {"a": "maximize", "b": "maximize"},
        )
        a, b = v.get("a"), v.get("b")
        assert a.n_candidate == 1 and a.n_baseline == 3
        assert math.isnan(a.candidate_ci[0]) and math.isnan(a.delta_ci[1])
        assert math.isnan(a.p_value) and math.isnan(a.p_holm)
        assert not math.isnan(a.baseline_ci[0])  # the arm with 3 seeds keeps its interval
        assert a.delta == pytest.approx(0.125)
        assert a.verdict == "untestable" and "too few seeds" in a.note
        assert b.p_holm == b.p_value  # the untested task is not in Holm's family
        assert b.verdict == "positive transfer"
        assert "the 1 tested task of" in v.holm_family
        assert all(math.isnan(x) for x in v.delta_m_ci)
        assert "too few seeds" in v.to_markdown()

    def test_scalar_single_seed_accepted(self):
        tv = task_verdicts({"a": 0.9}, {"a": 0.8}, {"a": "maximize"}).tasks[0]
        assert tv.n_candidate == tv.n_baseline == 1 and tv.verdict == "untestable"

    def test_diverged_runs_are_counted_not_dropped_silently(self):
        nan = float("nan")
        cand = {"a": [0.9, nan, 0.91, 0.89], "b": [1.0, float("inf"), 1.01, 0.99]}
        base = {"a": [0.8, 0.81, 0.79, 0.8], "b": [1.0, 1.02, 0.98, nan]}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            v = task_verdicts(cand, base, {"a": "maximize", "b": "minimize"})
        a, b = v.get("a"), v.get("b")
        assert (a.n_candidate, a.n_diverged_candidate, a.n_baseline, a.n_diverged_baseline) == (3, 1, 4, 0)
        assert (b.n_diverged_candidate, b.n_diverged_baseline) == (1, 1)
        assert a.candidate_mean == pytest.approx(0.9) and a.verdict == "positive transfer"
        assert "diverged" in a.note
        assert (v.n_diverged_candidate, v.n_diverged_baseline) == (1, 1)  # whole runs with a diverged task
        assert math.isfinite(v.delta_m_ci[0])  # the interval uses the 3 whole finite runs of each arm
        md = v.to_markdown()
        assert "3/4 (+1/+0 diverged)" in md and "Diverged runs" in md
        back = Verdict.from_dict(json.loads(json.dumps(v.to_dict(), allow_nan=False)))
        assert back.get("b").n_diverged_baseline == 1 and back.n_diverged_candidate == 1

    def test_every_run_diverged_is_untestable(self):
        v = task_verdicts({"a": [float("nan")] * 3}, {"a": [0.8, 0.81, 0.79]}, {"a": "maximize"})
        tv = v.tasks[0]
        assert tv.verdict == "untestable" and tv.n_candidate == 0 and tv.n_diverged_candidate == 3
        assert math.isnan(v.delta_m) and "diverged" in tv.note

    @pytest.mark.parametrize("arm", ["candidate", "baseline"])
    def test_missing_task_names_it(self, arm):
        full = {"a": [1.0, 1.1], "b": [1.0, 1.2]}
        part = {"a": [1.0, 1.1]}
        args = (part, full) if arm == "candidate" else (full, part)
        with pytest.raises(KeyError, match=rf"'b'.*{arm}"):
            task_verdicts(*args, {"a": "maximize", "b": "maximize"})

    def test_invalid_inputs(self):
        d = {"a": "maximize"}
        with pytest.raises(SharesearchError, match="'a'.*baseline mean is 0"):
            task_verdicts({"a": [1.0, 2.0]}, {"a": [-1.0, 1.0]}, d)
        with pytest.raises(SharesearchError, match="'a'.*no values"):
            task_verdicts({"a": []}, {"a": [1.0, 2.0]}, d)
        with pytest.raises(SharesearchError, match="'a'.*direction"):
            task_verdicts({"a": [1.0]}, {"a": [1.0]}, {"a": "up"})
        with pytest.raises(SharesearchError, match="alpha"):
            task_verdicts({"a": [1.0]}, {"a": [1.0]}, d, alpha=1.5)
        with pytest.raises(SharesearchError, match="margin"):
            task_verdicts({"a": [1.0]}, {"a": [1.0]}, d, margin=0.0)
        with pytest.raises(KeyError, match="'zz'"):
            task_verdicts({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}, d).get("zz")


# --------------------------------------------------------------------------- serialisation / output


def sample_verdict() -> Verdict:
    return task_verdicts(
        {"g": [0.9, 0.91, 0.89], "one": [0.5], "r2": [0.5, 0.52, 0.51], "z": [0.8] * 3},
        {"g": [0.8, 0.81, 0.79], "one": [0.4, 0.5], "r2": [-0.3, 0.05, 0.4], "z": [0.8] * 3},
        {"g": "maximize", "one": "minimize", "r2": "maximize", "z": "maximize"},
        weights={"g": 2.0, "one": 1.0, "r2": 1.0, "z": 1.0},
        n_resamples=500,
        seed=3,
    )


class TestSerialisation:
    def test_round_trip_strict_json(self):
        v = sample_verdict()
        d = v.to_dict()
        text = json.dumps(d, allow_nan=False)  # strict JSON despite NaN / inf fields
        back = Verdict.from_dict(json.loads(text))
        assert back.to_dict() == d
        assert len(back.tasks) == len(v.tasks)
        assert all(task_equal(x, y) for x, y in zip(back.tasks, v.tasks))
        assert back.get("r2").delta_ci == (-math.inf, math.inf)
        assert math.isnan(back.get("one").p_value)
        for f in ("delta_m", "delta_m_ci", "alpha", "n_resamples", "seed", "weights"):
            assert nan_equal(getattr(back, f), getattr(v, f))
        assert isinstance(back.tasks[0].delta_ci, tuple)

    def test_frame(self):
        v = sample_verdict()
        df = v.to_frame()
        assert isinstance(df, pd.DataFrame)
        assert df["task"].tolist() == ["g", "one", "r2", "z"]
        assert df.loc[0, "verdict"] == "positive transfer" and df.loc[0, "label"] == "positive transfer"
        assert df.loc[0, "delta_ci_low"] == v.tasks[0].delta_ci[0]
        assert df.attrs["delta_m"] == v.delta_m and df.attrs["alpha"] == 0.05
        assert {"p_holm", "candidate_ci_high", "note"} <= set(df.columns)

    def test_markdown(self):
        v = sample_verdict()
        md = v.to_markdown()
        lines = md.splitlines()
        table = [ln for ln in lines if ln.startswith("|")]
        assert len(table) == 2 + len(v.tasks)
        assert len({len(ln) for ln in table}) == 1  # aligned columns
        assert "| g ↑" in md and "| one ↓" in md and "gain" in md
        assert "Δm = " in md and "Holm" in md
        assert "∞" in md  # the unbounded r2 interval
        assert any(ln.startswith("[1] ") for ln in lines)

    def test_frozen(self):
        v = sample_verdict()
        with pytest.raises(Exception):
            v.delta_m = 0.0  # type: ignore[misc]
        with pytest.raises(Exception):
            v.tasks[0].verdict = "gain"  # type: ignore[misc]


def test_no_heavy_imports():
    code = (
        "import sys, sharesearch.verdict; "
        "bad = [m for m in ('torch', 'optuna', 'plotly') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- equivalence, power, rows


class TestEquivalenceAndPower:
    @FAST
    @given(seeds, seeds, st.sampled_from([0.02, 0.05, 0.1]))
    def test_tost_matches_two_scipy_welch_tests(self, c, b, m):
        assume(np.ptp(c) > 1e-6 and np.ptp(b) > 1e-6)
        tv = task_verdicts({"t": c}, {"t": b}, {"t": "maximize"}, margin=m).tasks[0]
        # Δ > -m  <=>  c - (1 - m) b > 0 ; Δ < m  <=>  c - (1 + m) b < 0   (b > 0 here)
        lo = stats.ttest_ind(c, (1 - m) * np.array(b), equal_var=False, alternative="greater").pvalue
        hi = stats.ttest_ind(c, (1 + m) * np.array(b), equal_var=False, alternative="less").pvalue
        assert tv.p_equivalence == pytest.approx(max(lo, hi), rel=1e-6, abs=1e-12)
        assert tv.equivalent == (tv.p_equivalence_holm <= 0.05)

    @pytest.mark.parametrize("cv, n_tasks", [(0.07, 6), (0.03, 1), (0.15, 3)])
    def test_seeds_for_power_agrees_with_the_mde(self, cv, n_tasks):
        n = seeds_for_power(cv, 0.10, n_tasks)
        from sharesearch.verdict import minimum_detectable_effect
        from sharesearch.verdict._tests import Sample

        def mde(k):  # both arms with the exact spread cv around a mean of 1
            s = Sample(1.0, cv**2, k)
            return minimum_detectable_effect(s, s, alpha=0.05 / n_tasks)

        assert mde(n) <= 0.10 < mde(n - 1)

    def test_seeds_for_power_is_monotone(self):
        assert seeds_for_power(0.05) < seeds_for_power(0.07) < seeds_for_power(0.10)
        assert seeds_for_power(0.07, n_tasks=1) < seeds_for_power(0.07, n_tasks=6)
        assert seeds_for_power(0.07, effect=0.2) < seeds_for_power(0.07, effect=0.1)
        with pytest.raises(ValueError, match="cv"):
            seeds_for_power(0.0)

    def test_markdown_shows_mde_equivalence_and_family(self):
        v = sample_verdict()
        md = v.to_markdown()
        header = [c.strip() for c in md.splitlines()[0].strip("|").split("|")]
        assert header[-3:] == ["MDE", "TOST p (Holm)", "verdict"]
        assert "Holm family: the 2 tested tasks of the candidate" in md
        assert "within ±5%" in md and "80% power" in md


def _runs(rng, means, n, cv, rho=0.6, shift=None):
    """[n, T] run metrics: a run-level effect shared by the tasks of a run (correlation rho)."""
    z = rng.standard_normal((n, 1)) * math.sqrt(rho) + rng.standard_normal((n, len(means))) * math.sqrt(1 - rho)
    mu = np.asarray(means) * (1.0 if shift is None else (1.0 + np.asarray(shift)))
    return mu * (1.0 + cv * z) if shift is None else mu + np.asarray(means) * cv * z


def _arm(runs, names):
    return {t: runs[:, i].tolist() for i, t in enumerate(names)}


class TestCalibration:
    """Simulated arms (pure numpy): the verdict's error rates at its nominal levels."""

    names = [f"t{i}" for i in range(6)]
    means = [0.6, 0.75, 0.8, 0.9, 1.1, 1.2]
    dirs = {t: "maximize" if i % 2 else "minimize" for i, t in enumerate(names)}

    def test_no_true_difference(self):
        rng = np.random.default_rng(2024)
        n_sims, alpha = 200, 0.05
        covered, sims_with_false_loss = 0, 0
        for _ in range(n_sims):
            v = task_verdicts(_arm(_runs(rng, self.means, 5, 0.07), self.names),
                              _arm(_runs(rng, self.means, 5, 0.07), self.names), self.dirs, alpha=alpha)
            covered += v.delta_m_ci[0] <= 0.0 <= v.delta_m_ci[1]
            sims_with_false_loss += bool(v.negative_transfer)
        assert covered / n_sims >= 0.90  # nominal 95 %: whole runs keep the tasks' correlation
        # Holm bounds the chance of any false "negative transfer" by alpha; the count over independent
        # simulations is then at most Binomial(n_sims, alpha): allow its 99.9 % quantile
        assert sims_with_false_loss <= stats.binom.ppf(0.999, n_sims, alpha)

    def test_power_for_a_ten_percent_loss(self):
        cv, n_tasks = 0.07, 6
        n = seeds_for_power(cv, 0.10, n_tasks)
        rng = np.random.default_rng(7)
        n_sims, detected = 300, 0
        loss = np.zeros(n_tasks)
        loss[0] = -0.10 if self.dirs["t0"] == "maximize" else 0.10  # worse by 10 % in t0's direction
        for _ in range(n_sims):
            cand = _runs(rng, self.means, n, cv, rho=0.0, shift=loss)
            base = _runs(rng, self.means, n, cv, rho=0.0, shift=np.zeros(n_tasks))
            v = task_verdicts(_arm(cand, self.names), _arm(base, self.names), self.dirs)
            detected += v.get("t0").verdict == "negative transfer"
        # power >= 0.8 is rejected only below the 0.1 % binomial quantile of Binomial(n_sims, 0.8)
        # (a vectorised check with 40,000 simulations gives 0.807 for Welch at 14 seeds and alpha / 6)
        assert detected >= stats.binom.ppf(0.001, n_sims, 0.8)


class TestRows:
    def rows(self, same=False, n_rows=300, seeds=3):
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, n_rows).astype(float)
        flip = lambda p: np.where(rng.random(n_rows) < p, 1 - y, y)  # noqa: E731
        cand = [flip(0.2) for _ in range(seeds)]
        base = cand if same else [flip(0.25) for _ in range(seeds)]
        calls = []

        def accuracy(task, t, p):
            calls.append(task)
            return float(np.mean(t == p))

        r = RowPredictions({"a": y, "b": y}, {"a": cand, "b": cand}, {"a": base, "b": base}, accuracy,
                           n_resamples=100)
        values = {arm: {t: [accuracy(t, y, p) for p in ps] for t in ("a", "b")}
                  for arm, ps in (("candidate", cand), ("baseline", base))}
        calls.clear()
        return r, values, calls

    def test_rows_are_paired_across_arms(self):
        r, _, calls = self.rows(same=True)
        reps = hierarchical_bootstrap_delta_m(r, {"a": "maximize", "b": "maximize"}, seed=1, resample_seeds=False)
        assert reps.shape == (100,) and np.all(reps == 0.0)  # the same rows cancel exactly
        assert set(calls) == {"a", "b"}  # the metric is told the task

    def test_rows_widen_the_interval(self):
        r, values, _ = self.rows()
        dirs = {"a": "maximize", "b": "maximize"}
        seeds_only = task_verdicts(values["candidate"], values["baseline"], dirs)
        with_rows = task_verdicts(values["candidate"], values["baseline"], dirs, rows=r, seed=3)
        assert with_rows.delta_m == seeds_only.delta_m
        assert with_rows.delta_m_ci[0] < seeds_only.delta_m_ci[0] and with_rows.delta_m_ci[1] > seeds_only.delta_m_ci[1]
        assert "test-row bootstrap" in with_rows.delta_m_method and "seeds only" in seeds_only.delta_m_method
        assert with_rows.n_resamples == 100
        two_level = hierarchical_bootstrap_delta_m(r, dirs, seed=3)
        assert np.quantile(two_level, 0.025) < with_rows.delta_m < np.quantile(two_level, 0.975)

    def test_row_count_mismatch_names_it(self):
        r, values, _ = self.rows()
        bad = RowPredictions({"a": r.y_true["a"][:10], "b": r.y_true["b"]}, r.candidate, r.baseline, r.metric)
        with pytest.raises(SharesearchError, match="rows"):
            task_verdicts(values["candidate"], values["baseline"], {"a": "maximize", "b": "maximize"}, rows=bad)


def test_reads_version_1_dicts():
    v1 = {"version": 1, "delta_m": 0.1, "delta_m_ci": [0.0, "inf"], "alpha": 0.05, "n_resamples": 10000, "seed": 0,
          "weights": {"a": 1.0},
          "tasks": [{"task": "a", "direction": "maximize", "n_candidate": 3, "n_baseline": 3, "candidate_mean": 0.9,
                     "candidate_ci": [0.8, 1.0], "baseline_mean": 0.8, "baseline_ci": [0.7, 0.9], "delta": 0.125,
                     "delta_ci": [0.05, 0.2], "p_value": 0.01, "p_holm": 0.01, "verdict": "gain", "note": ""}]}
    v = Verdict.from_dict(v1)
    assert v.tasks[0].verdict == "positive transfer" and math.isnan(v.tasks[0].mde)
    assert v.delta_m_ci == (0.0, math.inf) and v.tasks[0].equivalent is None

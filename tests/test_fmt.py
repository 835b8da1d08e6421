"""Tests for sharesearch.fmt: one text for each number, parseable back within its precision."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharesearch import fmt

FAST = settings(max_examples=200, deadline=None)
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


def parse(text: str) -> float:
    """The number a formatted string stands for (the inverse the conventions promise)."""
    text = text.rstrip("%").replace(fmt.INFINITY, "inf")
    return float(text)


class TestDelta:
    @FAST
    @given(st.floats(min_value=-100, max_value=100, allow_nan=False))
    def test_round_trips_to_two_decimals_of_a_percent(self, x):
        text = fmt.delta(x)
        assert text.endswith("%")
        assert parse(text) == pytest.approx(100 * x, abs=0.005 + 1e-9)
        assert not text.startswith("-0.00") and not text.startswith("+0.00")

    @FAST
    @given(st.floats(min_value=-100, max_value=100, allow_nan=False))
    def test_sign_convention(self, x):
        text = fmt.delta(x)
        if round(100 * x, 2) > 0:
            assert text.startswith("+")
        elif round(100 * x, 2) < 0:
            assert text.startswith("-")  # ASCII hyphen-minus, never U+2212
        assert "\u2212" not in text

    def test_special_values(self):
        assert fmt.delta(float("inf")) == "+∞" and fmt.delta(float("-inf")) == "-∞"
        assert fmt.delta("-inf") == "-∞"  # as JSON hands it back
        assert fmt.delta(None) == fmt.delta(float("nan")) == fmt.MISSING
        assert fmt.delta(0.0487) == "+4.87%" and fmt.delta(-1.46) == "-146.00%"


class TestValues:
    @FAST
    @given(finite)
    def test_value_keeps_four_significant_digits(self, x):
        text = fmt.value(x)
        assert parse(text) == pytest.approx(x, rel=5e-4, abs=1e-300)
        digits = text.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
        if 1e4 <= abs(x) < 1e6:  # read whole ("12346", not "1.235e+04")
            assert "." not in text and "e" not in text
        else:
            assert len(digits) <= 4

    @FAST
    @given(st.floats(min_value=1e-8, max_value=10.0))
    def test_config_value_three_significant_digits(self, x):
        text = fmt.config_value(x)
        assert parse(text) == pytest.approx(x, rel=5e-3)
        assert len(text) <= 9  # never 0.009639164281266792

    def test_learning_rate_example(self):
        assert fmt.config_value(0.009639164281266792) == "0.00964"
        assert fmt.config({"lr": 3.0000000000000004e-4, "width": 64, "amp": False}) == "lr=0.0003, width=64, amp=false"

    def test_value_special(self):
        assert fmt.value(float("inf")) == "∞" and fmt.value("-inf") == "-∞" and fmt.value(None) == "–"
        assert fmt.value("not a number") == "–"

    def test_percent_and_margin(self):
        assert fmt.percent(0.1234) == "12.3%" and fmt.percent(0.05) == "5%"
        assert fmt.margin(0.05) == fmt.margin(-0.05) == "±5%"


class TestIntervalsAndP:
    @FAST
    @given(finite, finite)
    def test_interval_formats_each_end(self, a, b):
        lo, hi = min(a, b), max(a, b)
        assert fmt.interval(lo, hi) == f"[{fmt.value(lo)}, {fmt.value(hi)}]"
        assert fmt.interval(lo, hi, fmt.delta) == f"[{fmt.delta(lo)}, {fmt.delta(hi)}]"

    def test_missing_interval_is_empty(self):
        assert fmt.interval(None, None) == "" and fmt.interval(float("nan"), float("nan")) == ""
        assert fmt.interval(float("-inf"), float("inf"), fmt.delta) == "[-∞, +∞]"

    @FAST
    @given(st.floats(0, 1), st.floats(0, 1))
    def test_p_value_is_monotone(self, p, q):
        assert fmt.p_value(p) == fmt.p_value(q) or (p < q) == (parse_p(fmt.p_value(p)) < parse_p(fmt.p_value(q)))

    def test_p_value_cases(self):
        assert fmt.p_value(0.0) == "<0.0001" and fmt.p_value(1.0) == "1.0000" and fmt.p_value(None) == "–"


def parse_p(text: str) -> float:
    return 0.0 if text.startswith("<") else float(text)


def test_no_heavy_imports():
    code = (
        "import sys, sharesearch.fmt; "
        "bad = [m for m in ('torch', 'optuna', 'plotly', 'numpy') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert math.isnan(fmt.as_float(True))  # a bool is not a number to show

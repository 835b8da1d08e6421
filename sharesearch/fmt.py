"""The one place where numbers become text (torch-free, plotly-free).

Every report, summary, figure label and command-line table formats its
numbers here, so the same Δ reads the same everywhere. The conventions,
chosen once:

* **Δ** (a relative change, stored as a fraction) is always a *signed
  percentage with two decimals*: ``+4.87%``, ``-4.87%``; a value that rounds
  to zero is ``0.00%`` (never ``-0.00%``).
* **Signs** are ASCII: ``+`` and ``-`` (hyphen-minus), also before infinity
  (``-∞``), so that copied numbers parse back.
* **Missing** values (``None``, NaN) are an en dash ``–``.
* **Intervals** are ``[low, high]`` with each end formatted like the point;
  an interval with both ends missing is the empty string.
* **p-values** have four decimals, ``<0.0001`` below that.
* **Metric values** have four significant digits; **configuration values**
  (learning rates, weight decay, widths) three, so a tuned
  ``0.009639164281266792`` reads ``0.00964``.

The functions accept what JSON hands back as well as floats: ``None`` for
NaN and the strings ``"inf"`` / ``"-inf"`` (see :func:`as_float`).

Example
-------
>>> delta(0.0487), delta(-0.1), interval(-0.02, float("inf"), delta)
('+4.87%', '-10.00%', '[-2.00%, +∞]')
>>> p_value(3e-6), value(0.812345), config_value(0.009639164281266792)
('<0.0001', '0.8123', '0.00964')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "MISSING",
    "INFINITY",
    "as_float",
    "delta",
    "percent",
    "margin",
    "interval",
    "p_value",
    "value",
    "config_value",
    "config",
    "metric",
]

#: how a metric's registry name reads in a sentence (others: underscores as spaces)
_METRIC_NAMES = {"auc": "AUC", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "logloss": "log loss",
                 "macro_f1": "macro F1", "f1": "F1", "average_precision": "average precision"}

#: shown for a missing value (None or NaN)
MISSING = "–"
#: the infinity sign; negative infinity is ``"-" + INFINITY``
INFINITY = "∞"


def as_float(x: Any) -> float:
    """A float from a number, a JSON ``"inf"``/``"-inf"`` string or ``None`` (NaN).

    Anything that is not a number becomes NaN, so a formatter never raises.

    >>> as_float(None), as_float("-inf"), as_float(2), as_float("abc")
    (nan, -inf, 2.0, nan)
    """
    if x is None or isinstance(x, bool):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _special(v: float, signed: bool) -> str | None:
    """The text of NaN or ±inf, None for a finite number."""
    if math.isnan(v):
        return MISSING
    if math.isinf(v):
        return ("+" if signed else "") + INFINITY if v > 0 else "-" + INFINITY
    return None


def _significant(v: float, digits: int) -> str:
    """``v`` to ``digits`` significant digits, plain notation from 1e-4 up to 1e6."""
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 10**digits:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
        text = f"{v:.{decimals}f}"
        # rounding can carry into a new digit (9.995 -> 10.00): one decimal too many, then
        if decimals and len(text.replace("-", "").replace(".", "").lstrip("0")) > digits:
            text = f"{v:.{decimals - 1}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if 10**digits <= abs(v) < 1e6:
        return f"{v:.0f}"
    mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
    return (mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa) + "e" + exponent


def delta(x: Any, decimals: int = 2) -> str:
    """A relative change (a fraction) as a signed percentage.

    Parameters
    ----------
    x : float, None or "inf"/"-inf"
        The change as a fraction (``0.05`` is five percent).
    decimals : int
        Decimals of the percentage.

    Examples
    --------
    >>> delta(0.05), delta(-0.00001), delta(float("-inf")), delta(None)
    ('+5.00%', '0.00%', '-∞', '–')
    """
    v = as_float(x)
    special = _special(v, signed=True)
    if special is not None:
        return special
    text = f"{100 * v:+.{decimals}f}"
    if float(text) == 0:
        text = text[1:]  # neither +0.00 nor -0.00
    return text + "%"


def percent(x: Any, digits: int = 3) -> str:
    """An unsigned share or size (a fraction) as a percentage with ``digits`` significant digits.

    For magnitudes such as a minimum detectable effect or a margin.

    >>> percent(0.123456), percent(0.05), percent(1.5), percent(float("inf"))
    ('12.3%', '5%', '150%', '∞')
    """
    v = as_float(x)
    special = _special(v, signed=False)
    if special is not None:
        return special
    return _significant(100 * v, digits) + "%"


def margin(x: Any) -> str:
    """A symmetric equivalence margin: ``±`` and :func:`percent`.

    >>> margin(0.05)
    '±5%'
    """
    return "±" + percent(abs(as_float(x)))


def interval(low: Any, high: Any, fmt: Callable[[Any], str] | None = None) -> str:
    """``[low, high]`` with each end formatted by ``fmt`` (default :func:`value`).

    Both ends missing gives ``""`` (no interval to show).

    >>> interval(0.81, 0.83), interval(None, None), interval(-0.1, 0.02, delta)
    ('[0.81, 0.83]', '', '[-10.00%, +2.00%]')
    """
    fmt = value if fmt is None else fmt
    if math.isnan(as_float(low)) and math.isnan(as_float(high)):
        return ""
    return f"[{fmt(low)}, {fmt(high)}]"


def p_value(p: Any) -> str:
    """A p-value with four decimals; ``<0.0001`` below that; ``–`` when untested.

    >>> p_value(0.031234), p_value(0.00002), p_value(None), p_value(1.0)
    ('0.0312', '<0.0001', '–', '1.0000')
    """
    v = as_float(p)
    if math.isnan(v):
        return MISSING
    return "<0.0001" if v < 1e-4 else f"{v:.4f}"


def value(x: Any, digits: int = 4) -> str:
    """A metric value (accuracy, RMSE, a count) with ``digits`` significant digits.

    >>> value(0.812345), value(1234567.0), value(-2.5), value(float("-inf"))
    ('0.8123', '1.235e+06', '-2.5', '-∞')
    """
    v = as_float(x)
    special = _special(v, signed=False)
    if special is not None:
        return special
    return _significant(v, digits)


def config_value(x: Any, digits: int = 3) -> str:
    """A configuration value: floats to ``digits`` significant digits, the rest as written.

    >>> config_value(0.009639164281266792), config_value(1e-5), config_value(64), config_value("film")
    ('0.00964', '1e-05', '64', 'film')
    >>> config_value([0.5, 0.123456]), config_value(True), config_value(None)
    ('[0.5, 0.123]', 'true', 'none')
    """
    if x is None:
        return "none"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        special = _special(x, signed=False)
        return _significant(x, digits) if special is None else special
    if isinstance(x, Mapping):
        return "{" + config(x) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(config_value(v, digits) for v in x) + "]"
    return str(x)


def config(d: Mapping[str, Any], digits: int = 3) -> str:
    """A configuration as ``key=value`` pairs in their order, values by :func:`config_value`.

    >>> config({"lr": 0.009639164281266792, "batch_size": 64, "weighting": "equal"})
    'lr=0.00964, batch_size=64, weighting=equal'
    """
    return ", ".join(f"{k}={config_value(v, digits)}" for k, v in d.items())


def metric(name: Any, direction: Any = None) -> str:
    """A metric's name with its direction: ``"RMSE, lower is better"``.

    >>> metric("rmse", "minimize"), metric("auc", "maximize"), metric("macro_f1")
    ('RMSE, lower is better', 'AUC, higher is better', 'macro F1')
    """
    text = _METRIC_NAMES.get(str(name), str(name).replace("_", " "))
    way = {"minimize": "lower is better", "maximize": "higher is better"}.get(str(direction))
    return f"{text}, {way}" if way else text

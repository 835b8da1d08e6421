"""Each head's Δ_t as a bar beside it: length ∝ Δ in percent, green for a gain, red for negative transfer.

The bars stand in one column right of the head labels, one per task lane,
all from one zero line; the value is written at the end of each bar with
:func:`sharesearch.fmt.delta`, and the column's title names the split the
Δ were measured on ("Δ_t on test"). The space left of the zero line is
reserved only when some Δ is negative, the space right of it only when
some Δ is positive, each wide enough for the longest bar and its value.

Example
-------
>>> col = delta_bars({"a": 0.1, "b": -0.05, "c": None}, {"a": 0.0, "b": -1.0, "c": -2.0},
...                  x_start=3.0, col_px=150.0, font=12)
>>> [(b.task, b.text, b.colour) for b in col.bars]
[('a', '+10.00%', 'rgb(44,160,44)'), ('b', '-5.00%', 'rgb(214,39,40)'), ('c', '–', 'rgb(170,170,170)')]
>>> round((col.bars[0].x1 - col.zero) / (col.zero - col.bars[1].x1), 9)   # length ∝ Δ
2.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import fmt
from ._common import UNKNOWN_COLOUR, _num, delta_colour, esc, text_px

#: the longest bar, in pixels (the largest |Δ|)
BAR_PX = 70.0


@dataclass(frozen=True)
class DeltaBar:
    """One head's Δ_t bar."""

    task: str
    y: float  # the task's lane, data coordinates
    x1: float  # the end of the bar (the zero line is the column's ``zero``); equal to zero when Δ is unknown
    delta: float | None  # Δ_t as a fraction; None when unknown
    text: str  # the value written beside the bar (fmt.delta; "–" when unknown)
    text_x: float  # where the value is anchored: right of a gain's bar, left of a loss's
    text_side: str  # "right" (the text starts at text_x) or "left" (it ends there)
    colour: str  # green gain, red loss, grey unknown
    hover: str  # escaped HTML: task, Δ_t, its interval and split


@dataclass(frozen=True)
class BarColumn:
    """The bars of all heads and the column they stand in."""

    bars: list[DeltaBar]
    zero: float  # x of the zero line, data coordinates
    x_end: float  # right edge of the column (values included)
    title: str  # "Δ<sub>t</sub> on validation" / "... on test" (plotly HTML)
    thickness: float  # bar thickness, in lanes


def delta_bars(
    deltas: Mapping[str, float | None],
    lanes: Mapping[str, float],
    *,
    x_start: float,
    col_px: float,
    font: int,
    delta_ci: Mapping[str, Sequence[float] | None] | None = None,
    split: str = "validation",
    bar_px: float = BAR_PX,
) -> BarColumn:
    """Lay out one bar per task of ``lanes`` (task -> y), the column starting at ``x_start``.

    ``col_px`` is the pixel width of one unit of x; the longest bar is
    ``bar_px`` pixels long. Tasks without a finite Δ get no bar and a grey
    "–".
    """
    vals = {t: _num(deltas.get(t)) for t in lanes}
    known = [abs(v) for v in vals.values() if v is not None]
    scale = max(known, default=0.0) or 1.0
    texts = {t: fmt.delta(v) for t, v in vals.items()}
    text_w = max(text_px(s, font)[0] for s in texts.values()) + 6
    left = (bar_px + text_w) if any(v is not None and v < 0 for v in vals.values()) else 8.0
    right = (bar_px + text_w) if any(v is None or v >= 0 for v in vals.values()) else 8.0
    zero = x_start + left / col_px
    bars = []
    for t, y in lanes.items():
        v = vals[t]
        x1 = zero + (v / scale) * bar_px / col_px if v is not None else zero
        neg = v is not None and v < 0
        tx = x1 + (-4 if neg else 4) / col_px
        ci = (delta_ci or {}).get(t)
        ci_txt = f" {fmt.interval(ci[0], ci[1], fmt.delta)}" if ci is not None and len(ci) == 2 else ""
        hover = f"<b>{esc(t)}</b><br>Δ_t on {esc(split)} = {texts[t]}{ci_txt}"
        colour = UNKNOWN_COLOUR if v is None else delta_colour(-1.0 if neg else 1.0 if v > 0 else 0.0)
        bars.append(DeltaBar(t, y, x1, v, texts[t], tx, "left" if neg else "right", colour, hover))
    return BarColumn(bars, zero, zero + right / col_px, f"Δ<sub>t</sub> on {esc(split)}", 0.5)

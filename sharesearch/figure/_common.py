"""What every figure shares: escaping user text for plotly, the colours, the diverging Δ colour scale."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Any

from .. import fmt

#: node colour by conditioning (blocks) -- kept away from the red/green of the Δ scale.
CONDITIONING_COLOURS = {"none": "#4C78A8", "concat": "#F58518", "film": "#B279A2", "gate": "#17BECF"}
MOE_COLOUR = "#8C564B"
INPUT_COLOUR = "#555555"
UNKNOWN_COLOUR = "rgb(170,170,170)"
_NEG = (214, 39, 40)  # red: negative transfer
_MID = (200, 200, 200)  # grey: no change
_POS = (44, 160, 44)  # green: gain
_SYMBOL = {"input": "diamond", "block": "circle", "moe": "square", "head": "triangle-right"}
_DASH = {"flow": "solid", "l2": "dash", "stitch": "dot"}


def esc(s: Any) -> str:
    """Escape a user string for plotly text (``<``, ``>``, ``&``).

    Plotly decodes ``&lt;``/``&gt;``/``&amp;`` back to characters when it
    draws, so the name shows literally and never becomes markup.

    >>> esc("<b>x</b> & y")
    '&lt;b&gt;x&lt;/b&gt; &amp; y'
    """
    return html.escape(str(s), quote=False)


def _short(name: str, n: int = 14) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _abbrev(tasks: Sequence[str], all_tasks: Sequence[str], compact: bool = False) -> str:
    """Label of a node: its tasks, abbreviated when long (escaped)."""
    if (len(all_tasks) > 3 or compact) and len(tasks) == len(all_tasks) and len(tasks) > 1:
        return f"all {len(tasks)}"
    if compact:
        return esc(_short(tasks[0], 10) + (f" +{len(tasks) - 1}" if len(tasks) > 1 else ""))
    if len(tasks) <= 3:
        return esc(", ".join(_short(t, 10 if len(tasks) > 1 else 14) for t in tasks))
    return esc(f"{_short(tasks[0], 10)}, {_short(tasks[1], 10)} +{len(tasks) - 2}")


def _full_list(tasks: Sequence[str], per_line: int = 4) -> str:
    rows = [", ".join(esc(t) for t in tasks[i: i + per_line]) for i in range(0, len(tasks), per_line)]
    return "<br>".join(rows)


def delta_colour(delta: float | None, scale: float = 1.0) -> str:
    """Diverging colour of a Δ: red below 0, green above, grey at 0 or unknown.

    ``scale`` is the |Δ| that gets the full colour (clipped beyond).

    >>> delta_colour(-1.0), delta_colour(1.0), delta_colour(None)
    ('rgb(214,39,40)', 'rgb(44,160,44)', 'rgb(170,170,170)')
    """
    if delta is None or not isinstance(delta, (int, float)) or not math.isfinite(delta):
        return UNKNOWN_COLOUR
    f = min(1.0, abs(delta) / scale) if scale > 0 else 1.0
    end = _POS if delta > 0 else _NEG
    r, g, b = (round(m + (e - m) * f) for m, e in zip(_MID, end))
    return f"rgb({r},{g},{b})"


def _num(x: Any) -> float | None:
    """A finite float, or None (missing, NaN, ±inf, not a number)."""
    v = fmt.as_float(x)
    return v if math.isfinite(v) else None




#: average glyph width of the figure's sans-serif font, in font sizes (a little above Helvetica's, to be safe)
CHAR_EM = 0.6


def text_px(text: str, font: float) -> tuple[float, float]:
    """Estimated (width, height) in pixels of escaped plotly ``text`` (``<br>`` breaks lines).

    Entities count as one glyph and tags as none; used to lay labels out so
    they do not overlap, and by the tests that check it.

    >>> text_px("a&amp;b<br>cd", 10)
    (18.0, 25.0)
    """
    lines = [html.unescape(re.sub(r"<[^>]+>", "", ln)) for ln in text.split("<br>")]
    return CHAR_EM * font * max((len(ln) for ln in lines), default=0), 1.25 * font * len(lines)

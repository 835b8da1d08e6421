"""Helpers every part of the report uses: escaping, strict JSON, reading the results dict, embedding a figure."""

from __future__ import annotations

import html
import json
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import plotly.graph_objects as go

from .. import fmt
from ..graph import SharingGraph
from ..verdict import Verdict

SCHEMA_VERSION = 1
HTML_FILE, JSON_FILE, MD_FILE = "report.html", "report.json", "summary.md"
#: row colour of each verdict category (sharesearch.verdict.VERDICTS)
_VERDICT_CLASS = {"negative transfer": "neg", "positive transfer": "pos", "equivalent": "eq",
                  "inconclusive": "neu", "untestable": "unt"}


# ------------------------------------------------------------------ helpers
def _h(x: Any) -> str:
    """HTML-escape any value for the page (quotes too: safe in attributes)."""
    return html.escape(str(x), quote=True)


def jsonable(obj: Any) -> Any:
    """A strict-JSON copy: NaN -> None, ±inf -> "inf"/"-inf", tuples -> lists, other objects -> str.

    >>> jsonable({"a": (1.0, float("nan")), "b": float("-inf")})
    {'a': [1.0, None], 'b': '-inf'}
    """
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    return str(obj)


def _script_json(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&``, U+2028/9 as \\u escapes."""
    text = obj if isinstance(obj, str) else json.dumps(jsonable(obj), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _ci(ci: Any, fn: Callable[[Any], str] = fmt.value) -> str:
    """An interval from a JSON pair (anything else is no interval), through :func:`sharesearch.fmt.interval`."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return ""
    return fmt.interval(ci[0], ci[1], fn)


def _verdict_record(d: Mapping | None) -> Verdict | None:
    """The typed :class:`Verdict` of a stored verdict dict (any version), None if it is not one."""
    try:
        return Verdict.from_dict(d) if d else None
    except (KeyError, TypeError, ValueError):
        return None


def _complete(results: Mapping) -> list[dict]:
    return [t for t in results.get("trials") or [] if t.get("state") == "COMPLETE" and t.get("values")]


def _graph(d: Mapping | None) -> SharingGraph | None:
    if not d:
        return None
    try:
        return SharingGraph.from_dict(d)
    except ValueError:
        return None


def _trial(results: Mapping, number: Any) -> dict | None:
    for t in results.get("trials") or []:
        if t.get("number") == number:
            return t
    return None


def best_candidate(results: Mapping) -> tuple[dict | None, dict | None]:
    """``(verdict candidate, trial)`` of the best architecture, chosen on validation.

    The verdict's sharing arm with the largest ``val_delta_m`` (its mean
    validation Δm over the verdict's seeds: the arm the recommendation judges
    on test); for a verdict stored before arms carried it, the searched trial
    with the best objective-0 value among the verdict's candidates (references
    only if no searched trial was verified); without a verdict, the best of
    ``best_trials``. Either element may be ``None``.
    """
    sign = -1.0 if (results.get("directions") or ["maximize"])[0] == "minimize" else 1.0

    def val(t: Mapping | None) -> float:
        v = fmt.as_float((t or {}).get("values", [None])[0] if (t or {}).get("values") else None)
        return -math.inf if math.isnan(v) else sign * v

    verdict = results.get("verdict") or {}
    cands = list(verdict.get("candidates") or [])
    scored = [c for c in cands if c.get("name") != "independent" and math.isfinite(fmt.as_float(c.get("val_delta_m")))]
    if scored:
        best = max(scored, key=lambda c: (fmt.as_float(c["val_delta_m"]), -scored.index(c)))
        return best, _trial(results, best.get("trial"))
    if cands:
        searched = [c for c in cands if c.get("trial") is not None
                    and not (_trial(results, c["trial"]) or {}).get("reference")]
        pool = searched or cands
        best = max(pool, key=lambda c: val(_trial(results, c.get("trial"))))
        return best, _trial(results, best.get("trial"))
    best_nums = results.get("best_trials") or []
    pool = [t for t in _complete(results) if t.get("number") in best_nums] or _complete(results)
    if not pool:
        return None, None
    return None, max(pool, key=val)


# ------------------------------------------------------------------ figures
def figure_html(fig: go.Figure, *, div_id: str | None = None, include_plotlyjs: bool = False) -> str:
    """An HTML fragment that draws ``fig``: a ``<div>`` plus a ``<script>`` calling ``Plotly.newPlot``.

    The figure's JSON is embedded with ``<``, ``>`` and ``&`` as ``\\u`` escapes,
    so user strings cannot close the script. With ``include_plotlyjs=True`` the
    fragment inlines plotly.js (about 4.8 MB) and works on its own, offline
    (e.g. for a dashboard note); otherwise the page must load plotly.js once.

    >>> frag = figure_html(go.Figure(go.Bar(x=["</script><b>"], y=[1])), div_id="f1")
    >>> "</script><b>" in frag, frag.count("</script>")
    (False, 1)
    """
    div_id = div_id or f"fig-{uuid.uuid4().hex[:12]}"
    payload = _script_json(fig.to_json())
    js = ""
    if include_plotlyjs:
        from plotly.offline import get_plotlyjs

        js = f"<script>{get_plotlyjs()}</script>\n"
    h = fig.layout.height
    style = f"width:100%;height:{int(h)}px" if h else "width:100%"
    return (f'{js}<div id="{_h(div_id)}" class="ss-figure" style="{style}"></div>\n'
            f'<script>(function(){{var f={payload};'
            f'Plotly.newPlot({_script_json(json.dumps(div_id))},f.data,f.layout,'
            f'{{responsive:true,displaylogo:false}});}})();</script>')



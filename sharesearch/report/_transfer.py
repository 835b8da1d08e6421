"""The report's transfer section (issue 15): gain vs k per topology and task, and a Markdown table.

Reads ``results["transfer"]`` (``TransferResult.to_dict()``, stored by
:func:`sharesearch.search._transfer_study.run_transfer`). :func:`transfer_info`
is pure data; :func:`transfer_figure` draws it (plotly: one panel per mode,
one line per topology and task, gain against k on a log axis, the
seed-paired intervals as error bars); :func:`transfer_section_html` and
:func:`transfer_markdown` are what the report and the summary add. A results
dict without a transfer run gives an empty section and no lines.

Example
-------
>>> pts = [{"topology": "chosen", "task": "t1", "k": k, "n_rows": k, "mode": "frozen", "metric": "auc",
...         "direction": "maximize", "transfer": [0.8], "scratch": [0.6], "gain": 0.3, "low": 0.2, "high": 0.4,
...         "p": 0.01, "p_holm": 0.02} for k in (10, 30)]
>>> info = transfer_info({"transfer": {"points": pts, "scores": [], "seeds": [0, 1], "curves": []}})
>>> [(s.topology, s.task, s.ks) for s in info.series]
[('chosen', 't1', (10, 30))]
>>> transfer_markdown({})
[]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import fmt
from ._common import _h, figure_html

__all__ = ["TransferSeries", "TransferInfo", "transfer_info", "transfer_figure", "transfer_section_html",
           "transfer_markdown"]


def _f(x: Any) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class TransferSeries:
    """One curve: a topology's gain on one held-out task at each k, in one mode."""

    topology: str  # "chosen", "shared-bottom", "mmoe", ...
    task: str  # the held-out (or new) task
    mode: str  # "frozen" | "finetune"
    ks: tuple[int | None, ...]  # labelled rows asked for (None: all)
    n_rows: tuple[int, ...]  # labelled rows used (the x axis)
    gain: tuple[float, ...]  # seed-paired mean relative gain over scratch
    low: tuple[float, ...]  # its interval
    high: tuple[float, ...]
    p_holm: tuple[float, ...]  # Holm-adjusted p-values


@dataclass(frozen=True)
class TransferInfo:
    """What the transfer section shows."""

    series: tuple[TransferSeries, ...]  # every curve, ordered by mode, topology, task
    scores: tuple[tuple[str, str, float], ...]  # (topology, mode, transferability)
    seeds: tuple[int, ...]  # the paired seeds
    attach: tuple[tuple[str, str, str, str], ...]  # (topology, task, attach node, rule)


def transfer_info(results: Mapping[str, Any]) -> TransferInfo | None:
    """The section's data, or ``None`` when the results hold no transfer run."""
    tr = results.get("transfer")
    if not tr or not tr.get("points"):
        return None
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for p in tr["points"]:
        groups.setdefault((p["mode"], p["topology"], p["task"]), []).append(p)
    series = []
    for (mode, topo, task), pts in sorted(groups.items()):
        pts = sorted(pts, key=lambda p: p["n_rows"])
        series.append(TransferSeries(topo, task, mode, tuple(p["k"] for p in pts), tuple(p["n_rows"] for p in pts),
                                     tuple(_f(p["gain"]) for p in pts), tuple(_f(p["low"]) for p in pts),
                                     tuple(_f(p["high"]) for p in pts), tuple(_f(p.get("p_holm")) for p in pts)))
    scores = tuple((s["topology"], s["mode"], _f(s["score"])) for s in tr.get("scores", []))
    attach = tuple((c["topology"], c["task"], c["attach_node"], c["attach_rule"]) for c in tr.get("curves", []))
    return TransferInfo(tuple(series), scores, tuple(tr.get("seeds", ())), attach)


def transfer_figure(info: TransferInfo) -> go.Figure:
    """Gain vs k (log axis), one panel per mode, one line per (topology, task), intervals as error bars."""
    modes = sorted({s.mode for s in info.series})
    fig = make_subplots(rows=1, cols=len(modes), subplot_titles=[f"{m} trunk" if m == "frozen" else "fine-tuned"
                                                                  for m in modes], shared_yaxes=True)
    topologies = sorted({s.topology for s in info.series})
    dash = ["solid", "dash", "dot", "dashdot", "longdash"]
    for s in info.series:
        col = modes.index(s.mode) + 1
        err_hi = [h - g if math.isfinite(h) else None for g, h in zip(s.gain, s.high)]
        err_lo = [g - lo if math.isfinite(lo) else None for g, lo in zip(s.gain, s.low)]
        hover = [f"{_h(s.topology)} · {_h(s.task)} · k={_h(k if k is not None else 'all')} ({n} rows)<br>"
                 f"gain {fmt.delta(g)} {fmt.interval(lo, hi, fmt.delta)}, Holm p {fmt.p_value(p)}"
                 for k, n, g, lo, hi, p in zip(s.ks, s.n_rows, s.gain, s.low, s.high, s.p_holm)]
        fig.add_trace(go.Scatter(
            x=list(s.n_rows), y=list(s.gain), mode="lines+markers", name=_h(f"{s.topology} · {s.task}"),
            legendgroup=_h(s.topology), showlegend=col == 1,
            line={"dash": dash[topologies.index(s.topology) % len(dash)]},
            error_y={"type": "data", "symmetric": False, "array": err_hi, "arrayminus": err_lo},
            hovertext=hover, hoverinfo="text"), row=1, col=col)
    fig.update_xaxes(type="log", title_text="labelled training rows k")
    fig.update_yaxes(tickformat="+.0%", zeroline=True, zerolinewidth=2, title_text="gain over scratch", col=1)
    fig.update_layout(height=420, margin={"l": 60, "r": 20, "t": 40, "b": 50}, legend={"orientation": "h", "y": -0.25})
    return fig


def _score_text(info: TransferInfo) -> str:
    if not info.scores:
        return ""
    return "; ".join(f"{topo} ({mode}) {fmt.delta(score)}" for topo, mode, score in info.scores)


def transfer_section_html(results: Mapping[str, Any]) -> str:
    """The report's ``<section>``: how it was measured, the transferability scores, the figure; ``""`` without a run."""
    info = transfer_info(results)
    if info is None:
        return ""
    rules = ", ".join(sorted({f"{_h(t)} → {_h(n)} ({_h(r)})" for _, t, n, r in info.attach}))
    return (
        '<section id="transfer"><h2>A new task from a few examples</h2>\n'
        "<p>Each task held out in turn (or a new column): each topology trained without it, then the task "
        "joins the trunk with k labelled training rows, its own layers trained on a frozen trunk or the whole "
        "path fine-tuned, against a single-task network from scratch on the same rows (same learning-rate grid, "
        f"steps and seeds {_h(list(info.seeds))}). Gain = relative improvement of the test metric, seed-paired; "
        "bars are 95% intervals.</p>\n"
        f"<p>Transferability (mean gain over log k): {_h(_score_text(info))}</p>\n"
        f"<p>Where the task joined: {rules}</p>\n"
        f"{figure_html(transfer_figure(info), div_id='transfer-curves')}\n</section>")


def _md(x: Any) -> str:
    return "`" + str(x).replace("`", "'").replace("|", "\\|") + "`"


def transfer_markdown(results: Mapping[str, Any]) -> list[str]:
    """The summary's table: per topology, task and mode, the gain and interval at each k; ``[]`` without a run."""
    info = transfer_info(results)
    if info is None:
        return []
    ks = sorted({(n if k is None else k, k) for s in info.series for k, n in zip(s.ks, s.n_rows)},
                key=lambda kn: (kn[1] is None, kn[0]))
    labels = list(dict.fromkeys("all" if k is None else str(k) for _, k in ks))
    lines = ["## Transfer to a new task from k examples", "",
             "| topology | task | mode | " + " | ".join(f"k={k}" for k in labels) + " |",
             "|---|---|---|" + "---|" * len(labels)]
    for s in info.series:
        cell = {("all" if k is None else str(k)): f"{fmt.delta(g)} {fmt.interval(lo, hi, fmt.delta)}"
                for k, g, lo, hi in zip(s.ks, s.gain, s.low, s.high)}
        lines.append(f"| {_md(s.topology)} | {_md(s.task)} | {s.mode} | "
                     + " | ".join(cell.get(k, fmt.MISSING) for k in labels) + " |")
    if info.scores:
        lines += ["", "Transferability (mean gain over log k): " + _score_text(info)]
    return lines

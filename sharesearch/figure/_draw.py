"""The topology figure drawn: plotly traces of a :class:`~._info.TopologyInfo`, one figure or small multiples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..graph import SharingGraph
from ._common import _SYMBOL, MOE_COLOUR, esc
from ._info import TopologyInfo, topology_info
from ._soft import SOFT_NAMES


def _soft_traces(info: TopologyInfo, show_legend: bool) -> list[go.BaseTraceType]:
    """One band and one footer label per stage of soft links (every pair's value in the label's hover)."""
    tr: list[go.BaseTraceType] = []
    shown: set[str] = set()
    for s in info.soft:
        name = SOFT_NAMES[s.kind]
        tr.append(go.Scatter(x=s.band_xs, y=s.band_ys, mode="lines", fill="toself", fillcolor=_rgba(s.colour, 0.13),
                             line=dict(color=s.colour, width=s.width, dash=s.dash), hoverinfo="skip", name=name,
                             legendgroup=s.kind, showlegend=show_legend and s.kind not in shown))
        shown.add(s.kind)
        tr.append(go.Scatter(x=[s.label_x], y=[s.label_y], mode="text", text=[s.label],
                             textposition="bottom center", textfont=dict(size=info.soft_font, color=s.colour),
                             hovertext=[s.hover], hoverinfo="text", cliponaxis=False, showlegend=False,
                             name=f"{name} stage {s.stage}"))
    return tr


def _bar_traces(info: TopologyInfo) -> list[go.BaseTraceType]:
    """The heads' Δ_t bars from one zero line, each value beside its bar, the column titled with the split."""
    col = info.bars
    if col is None:
        return []
    bars = col.bars
    top, bottom = max(b.y for b in bars) + 0.45, min(b.y for b in bars) - 0.45
    tr: list[go.BaseTraceType] = [
        go.Scatter(x=[col.zero, col.zero], y=[top, bottom], mode="lines", line=dict(color="#888888", width=1),
                   hoverinfo="skip", showlegend=False, name="Δ_t zero"),
        go.Bar(x=[b.x1 - col.zero for b in bars], y=[b.y for b in bars], base=[col.zero] * len(bars),
               orientation="h", width=col.thickness, marker=dict(color=[b.colour for b in bars], line=dict(width=0)),
               hovertext=[b.hover for b in bars], hoverinfo="text", showlegend=False, name="Δ_t")]
    for side in ("right", "left"):
        bs = [b for b in bars if b.text_side == side]
        if bs:
            tr.append(go.Scatter(x=[b.text_x for b in bs], y=[b.y for b in bs], mode="text", text=[b.text for b in bs],
                                 textposition=f"middle {side}", textfont=dict(size=info.font_size,
                                                                              color=[b.colour for b in bs]),
                                 hovertext=[b.hover for b in bs], hoverinfo="text", cliponaxis=False,
                                 showlegend=False, name="Δ_t value"))
    tr.append(go.Scatter(x=[col.zero], y=[info.bar_title_y], mode="text", text=[col.title],
                         textposition="middle center", textfont=dict(size=info.font_size), hoverinfo="skip",
                         cliponaxis=False, showlegend=False, name="Δ_t title"))
    return tr


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i: i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _traces(info: TopologyInfo, *, show_legend: bool = True) -> list[go.BaseTraceType]:
    """The plotly traces of a topology (shared by the figure and the small multiples)."""
    tr: list[go.BaseTraceType] = _soft_traces(info, show_legend)
    fx: list[float | None] = []
    fy: list[float | None] = []
    for e in info.edges_of("flow"):
        fx += e.xs + [None]
        fy += e.ys + [None]
    tr.append(go.Scatter(x=fx, y=fy, mode="lines", line=dict(color="#9a9a9a", width=1.5), hoverinfo="skip",
                         showlegend=False, name="flow"))
    if info.experts:
        tr.append(go.Scatter(x=[x.x for x in info.experts], y=[x.y for x in info.experts], mode="markers",
                             marker=dict(symbol="square", size=7, color=MOE_COLOUR, opacity=0.55,
                                         line=dict(width=0.5, color="white")),
                             hovertext=[x.hover for x in info.experts], hoverinfo="text", showlegend=False,
                             name="experts"))
    for kind, pos_text in (("input", "top center"), ("block", "top center"), ("moe", "top center"),
                           ("head", "middle right")):
        ns = [n for n in info.nodes if n.kind == kind]
        if not ns:
            continue
        tr.append(go.Scatter(
            x=[n.x for n in ns], y=[n.y for n in ns], mode="markers+text", text=[n.label for n in ns],
            textposition=pos_text, textfont=dict(size=info.font_size), hovertext=[n.hover for n in ns],
            hoverinfo="text", cliponaxis=False, showlegend=False, name=kind,
            marker=dict(size=[n.size for n in ns], color=[n.colour for n in ns], symbol=_SYMBOL[kind],
                        line=dict(width=1, color="#333333"), opacity=0.95)))
    tr += _bar_traces(info)
    if show_legend:
        for name, colour, symbol in info.legend:
            tr.append(go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgroup="nodes",
                                 marker=dict(size=10, color=colour, symbol=symbol)))
    return tr


#: pixels right of the plot for the legend
_LEGEND_PX = 150


def _axis(r: tuple[float, float]) -> dict:
    return dict(visible=False, range=list(r), fixedrange=False, zeroline=False, showgrid=False)


def topology_figure(
    graph: SharingGraph,
    deltas: Mapping[str, float | None] | None = None,
    *,
    delta_ci: Mapping[str, Sequence[float] | None] | None = None,
    gates: Mapping[str, Sequence[Sequence[float]]] | None = None,
    stitch: Mapping[str, Any] | None = None,
    title: str | None = None,
    delta_split: str = "validation",
) -> go.Figure:
    """Draw ``graph`` (see :func:`topology_info` for the arguments).

    ``title`` is user text and is escaped.

    >>> g = SharingGraph.independent({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> fig = topology_figure(g, title="<i>x</i>")
    >>> fig.layout.title.text
    '&lt;i&gt;x&lt;/i&gt;'
    """
    info = topology_info(graph, deltas=deltas, delta_ci=delta_ci, gates=gates, stitch=stitch, delta_split=delta_split)
    fig = go.Figure(_traces(info))
    fig.update_layout(
        title=dict(text=esc(title) if title else None),
        width=info.width + _LEGEND_PX, height=info.height,
        margin={**info.margin, "r": info.margin["r"] + _LEGEND_PX},  # the plot area stays the info's
        xaxis=_axis(info.x_range), yaxis=_axis(info.y_range),
        plot_bgcolor="white", paper_bgcolor="white", hovermode="closest",
        font=dict(size=info.font_size), legend=dict(font=dict(size=max(9, info.font_size - 1))))
    return fig


def small_multiples(
    named_graphs: Sequence[tuple[str, SharingGraph, Mapping[str, Any] | None]],
    cols: int = 3,
    *,
    title: str | None = None,
) -> go.Figure:
    """Several topologies side by side (e.g. the top candidates beside the reference architectures).

    Parameters
    ----------
    named_graphs : [(name, graph, options)]
        ``options`` are keyword arguments of :func:`topology_info`
        (``deltas``, ``delta_ci``, ``gates``, ``stitch``) or ``None``.
        Names are user text and are escaped.
    cols : int
        Subplots per row.

    >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8, 8]}
    >>> t = {"a": 1, "b": 1}
    >>> fig = small_multiples([("shared", SharingGraph.shared_bottom(t, bb), None),
    ...                        ("independent", SharingGraph.independent(t, bb), {"deltas": {"a": 0.1}})])
    >>> len(fig.layout.annotations)
    2
    """
    from plotly.subplots import make_subplots

    if not named_graphs:
        raise ValueError("small_multiples: no graphs given")
    n = len(named_graphs)
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    infos = [topology_info(g, compact=True, **dict(opts or {})) for _, g, opts in named_graphs]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[esc(name) for name, _, _ in named_graphs],
                        horizontal_spacing=0.03, vertical_spacing=min(0.12, 0.3 / rows))
    legend_done = False
    for i, info in enumerate(infos):
        r, c = divmod(i, cols)
        show = not legend_done
        for t in _traces(info, show_legend=show):
            fig.add_trace(t, row=r + 1, col=c + 1)
        legend_done = True
        fig.update_xaxes(_axis(info.x_range), row=r + 1, col=c + 1)
        fig.update_yaxes(_axis(info.y_range), row=r + 1, col=c + 1)
    row_h = max(info.height for info in infos)
    col_w = max(info.width for info in infos)
    fig.update_layout(title=dict(text=esc(title) if title else None), height=int(row_h * rows + 60),
                      width=int(min(1800, col_w * cols + 160)), plot_bgcolor="white", paper_bgcolor="white",
                      margin=dict(l=20, r=20, t=60, b=20), hovermode="closest",
                      font=dict(size=min(i.font_size for i in infos)))
    return fig



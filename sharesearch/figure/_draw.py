"""The topology figure drawn: plotly traces of a :class:`~._info.TopologyInfo`, one figure or small multiples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..graph import SharingGraph
from ._common import _SYMBOL, MOE_COLOUR, delta_colour, esc
from ._info import TopologyInfo, topology_info


def _traces(info: TopologyInfo, *, show_legend: bool = True, edge_labels: bool = True) -> list[go.BaseTraceType]:
    """The plotly traces of a topology (shared by the figure and the small multiples)."""
    tr: list[go.BaseTraceType] = []
    fx: list[float | None] = []
    fy: list[float | None] = []
    for e in info.edges_of("flow"):
        fx += e.xs + [None]
        fy += e.ys + [None]
    tr.append(go.Scatter(x=fx, y=fy, mode="lines", line=dict(color="#9a9a9a", width=1.5), hoverinfo="skip",
                         showlegend=False, name="flow"))
    soft = [e for e in info.edges if e.kind != "flow"]
    crowded = len(soft) > 8
    shown_kind: set[str] = set()
    for e in soft:
        colour = "#7f7f7f" if e.kind == "l2" else "#9467bd"
        name = "L2 soft sharing" if e.kind == "l2" else "cross-stitch"
        tr.append(go.Scatter(x=e.xs, y=e.ys, mode="lines", line=dict(color=colour, width=e.width, dash=e.dash),
                             hoverinfo="skip", name=name, legendgroup=e.kind,
                             showlegend=show_legend and e.kind not in shown_kind))
        shown_kind.add(e.kind)
        mid = len(e.xs) // 2
        tr.append(go.Scatter(x=[e.xs[mid]], y=[e.ys[mid]], mode="markers+text" if edge_labels and not crowded
                             else "markers", marker=dict(size=6, color=colour, opacity=0.6),
                             text=[e.label], textposition="middle right", textfont=dict(size=info.font_size - 2),
                             hovertext=[e.hover], hoverinfo="text", showlegend=False, name=name))
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
    if show_legend:
        for name, colour, symbol in info.legend:
            tr.append(go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgroup="nodes",
                                 marker=dict(size=10, color=colour, symbol=symbol)))
        if info.delta_scale is not None:
            s = info.delta_scale
            tr.append(go.Scatter(
                x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip", name="Δ_t",
                marker=dict(size=0, color=[-s, s], cmin=-s, cmax=s, showscale=True,
                            colorscale=[[0, delta_colour(-1)], [0.5, delta_colour(0.0)], [1, delta_colour(1)]],
                            colorbar=dict(title=dict(text=f"head Δ_t ({esc(info.delta_split)})"), thickness=12, len=0.5))))
    return tr


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
        width=info.width + (140 if info.delta_scale is not None or info.legend else 0), height=info.height,
        margin=info.margin, xaxis=_axis(info.x_range), yaxis=_axis(info.y_range),
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
        for t in _traces(info, show_legend=show, edge_labels=False):
            if show and getattr(t.marker, "showscale", None):
                t.marker.colorbar.update(len=min(0.5, 1.0 / rows))
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



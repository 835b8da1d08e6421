"""The task-affinity figure: dendrogram, cosine and lookahead heatmaps, share importances."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from .. import fmt
from ._common import esc

# ------------------------------------------------------------------ affinity
def _pair_matrix(tasks: Sequence[str], importances: Mapping[str, Any]) -> list[list[float | None]] | None:
    """``[T][T]`` importance of each pair's ``share[a~b]`` (``trunk[t]``: the min of both tasks'); None if none."""
    if not importances:
        return None
    m: list[list[float | None]] = [[None] * len(tasks) for _ in tasks]
    for i, a in enumerate(tasks):
        for j, b in enumerate(tasks):
            key = "share[{}~{}]".format(*sorted((a, b)))
            v = importances.get(key)
            if v is None and f"trunk[{a}]" in importances and f"trunk[{b}]" in importances:
                v = min(fmt.as_float(importances[f"trunk[{a}]"]), fmt.as_float(importances[f"trunk[{b}]"]))
            m[i][j] = None if i == j or v is None else fmt.as_float(v)
    return m


def affinity_figure(affinity: Mapping[str, Any]) -> go.Figure:
    """The affinity's dendrogram, its cosine and lookahead heatmaps and the share parameters' importances.

    ``affinity`` is the results dict's ``"affinity"`` entry
    (:class:`~sharesearch.search._records.AffinityRecord` as stored, with
    ``dendrogram`` and ``share_importances``). Tasks are in the dendrogram's
    leaf order in every panel, so clusters read as blocks.

    >>> aff = {"tasks": ["a", "b"], "cosine": [[1, .5], [.5, 1]], "lookahead": [[.01, None], [.002, .02]],
    ...        "dendrogram": {"icoord": [[5, 5, 15, 15]], "dcoord": [[0, .5, .5, 0]], "leaves": ["b", "a"]},
    ...        "share_importances": {"share[a~b]": 1.0}, "kind": "cosine"}
    >>> [t.type for t in affinity_figure(aff).data]
    ['scatter', 'heatmap', 'heatmap', 'heatmap']
    """
    from plotly.subplots import make_subplots

    tasks = list(affinity["tasks"])
    dn = affinity.get("dendrogram") or {}
    order = list(dn.get("leaves") or tasks)
    ix = [tasks.index(t) for t in order]
    labels = [esc(t) for t in order]

    def reorder(m: Sequence[Sequence[Any]], scale: float = 1.0) -> list[list[float | None]]:
        return [[None if m[i][j] is None or math.isnan(fmt.as_float(m[i][j])) else fmt.as_float(m[i][j]) * scale
                 for j in ix] for i in ix]

    imp = _pair_matrix(tasks, affinity.get("share_importances") or {})
    titles = ["dendrogram (" + esc(affinity.get("kind", "cosine")) + ")", "gradient cosine",
              "lookahead Z[row→col] ×1000", "importance of share[a~b]" if imp else "share importances: too few trials"]
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles, horizontal_spacing=0.07)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for xc, yc in zip(dn.get("icoord", []), dn.get("dcoord", [])):
        xs += [*xc, None]
        ys += [*yc, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#4C78A8"), hoverinfo="skip",
                             showlegend=False), row=1, col=1)
    fig.update_xaxes(tickvals=[5 + 10 * k for k in range(len(order))], ticktext=labels, row=1, col=1)
    fig.update_yaxes(title_text="distance", row=1, col=1)
    panels = [(reorder(affinity["cosine"]), "RdBu", 0.0), (reorder(affinity["lookahead"], 1e3), "RdBu", 0.0),
              ([[imp[i][j] for j in ix] for i in ix] if imp else [[None] * len(ix)] * len(ix), "Blues", None)]
    for col, (z, scale, mid) in enumerate(panels, start=2):
        text = [[fmt.value(v, 2) if v is not None else "—" for v in row] for row in z]
        fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, colorscale=scale, zmid=mid, text=text,
                                 texttemplate="%{text}", showscale=False, hoverongaps=False), row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_layout(height=360, width=1300, margin=dict(l=30, r=20, t=60, b=40), plot_bgcolor="white",
                      paper_bgcolor="white", title=dict(text="Task affinity (one shared-bottom pass) beside the "
                                                             "search's importance of each pair's share depth"))
    return fig

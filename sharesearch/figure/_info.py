"""The topology figure's pure info: :func:`topology_info` computes every position, size, colour and label."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import fmt
from ..graph import SharingGraph
from ._bars import BAR_PX, delta_bars
from ._common import (_DASH, CONDITIONING_COLOURS, INPUT_COLOUR, MOE_COLOUR, _abbrev, _full_list, _num, _short,
                      delta_colour, esc, text_px)
from ._edges import _as_matrix, _curve, _lam_width, _stitch_lookup
from ._records import EdgeInfo, ExpertInfo, NodeInfo, TopologyInfo
from ._soft import soft_stage_infos

__all__ = ["EdgeInfo", "ExpertInfo", "NodeInfo", "TopologyInfo", "task_order", "topology_info"]

def task_order(graph: SharingGraph) -> list[str]:
    """Tasks in the leaf order of a depth-first walk over the flow tree.

    The tasks of every node are contiguous in this order, so drawing each
    node at the centre of its tasks' lanes makes no flow edges cross.

    >>> g = SharingGraph.from_partitions({"a": 1, "b": 1, "c": 1},
    ...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, ["a,b,c", "a,c|b"])
    >>> task_order(g)
    ['a', 'c', 'b']
    """
    g, pos = graph.g, {t: i for i, t in enumerate(graph.tasks)}
    children: dict[str, list[str]] = {}
    for u, v, k in g.edges(data="kind"):
        if k == "flow":
            children.setdefault(u, []).append(v)

    def first_task(n: str) -> int:
        d = g.nodes[n]
        return pos[d["task"]] if d["kind"] == "head" else min(pos[t] for t in d["tasks"])

    out: list[str] = []
    stack = ["input"]
    while stack:
        n = stack.pop()
        if g.nodes[n]["kind"] == "head":
            out.append(g.nodes[n]["task"])
        stack.extend(sorted(children.get(n, []), key=first_task, reverse=True))
    return out


@dataclass(frozen=True)
class _Scale:
    """Pixel sizes of one drawing, from the task count (smaller fonts and lanes for many tasks)."""

    font: int  # node and head labels
    lane_px: float  # vertical pixels between two adjacent task lanes (before the minimum height)
    max_size: float  # diameter of the node with the most parameters
    min_size: float
    col_px: float  # horizontal pixels of one stage column
    margin: dict[str, int]
    pad: float  # lanes of room above the first and below the last lane

    @staticmethod
    def of(T: int, compact: bool) -> "_Scale":
        font = int(max(9, min(13, round(14 - 0.3 * (T - 2)))))
        if compact:
            font = max(8, font - 2)
        lane = float(max(3.4 * font, 44 - 0.6 * T)) if not compact else float(max(2.8 * font, 30 - 0.5 * T))
        return _Scale(font, lane, max(10.0, min(44.0 if not compact else 30.0, lane - 1.5 * font)),
                      9.0 if not compact else 7.0, 150.0 if not compact else 95.0,
                      {"l": 20, "r": 20, "t": 50 if not compact else 30, "b": 20}, 0.9)


def _fit(labels: Sequence[str], font: int, limit: float) -> str:
    """The first label narrower than ``limit`` pixels (the last one when none is)."""
    return next((s for s in labels if text_px(s, font)[0] <= limit), labels[-1])


def _block_label(ts: Sequence[str], tasks: Sequence[str], sc: _Scale, suffix: str = "") -> str:
    """A block's label that fits its column, so the labels of neighbouring stages never touch."""
    tight = esc(_short(ts[0], 6) + (f" +{len(ts) - 1}" if len(ts) > 1 else ""))
    return _fit([_abbrev(ts, tasks) + suffix, _abbrev(ts, tasks, True) + suffix, tight + suffix, tight],
                sc.font, sc.col_px - 14)


def _moe_node(graph: SharingGraph, n: str, ts: tuple[str, ...], xy: tuple[float, float], size: float,
              gates: Mapping[str, Any], sc: _Scale, head: str) -> tuple[NodeInfo, list[ExpertInfo]]:
    """An MoE node and its experts (small squares left of it, with their mean gate weights)."""
    d, (x, y) = graph.g.nodes[n], xy
    E, params = int(d["experts"]), graph.node_params(n)
    gw = _as_matrix(gates[n]) if n in gates else None
    node_tasks = list(d["tasks"])
    if gw is not None and (len(gw) != len(node_tasks) or any(len(r) != E for r in gw)):
        gw = None  # wrong shape: do not guess
    gate_txt = ""
    if gw is not None:
        gate_txt = "<br>mean gate weight per expert:<br>" + "<br>".join(
            f"{esc(_short(t, 18))}: " + " ".join(fmt.value(w) for w in row) for t, row in zip(node_tasks, gw))
    p_drop = fmt.config_value(d.get("expert_dropout", 0.0))
    hover = (head + f"<br>MoE: {E} experts, expert dropout {p_drop}<br>params {params:,}"
             f"<br>tasks ({len(ts)}):<br>{_full_list(ts)}" + gate_txt)
    node = NodeInfo(n, "moe", x, y, size, params, _block_label(ts, graph.tasks, sc, f" · MoE×{E}"), MOE_COLOUR,
                    hover, d["stage"], ts, None)
    span = min(0.35, 0.12 * (E - 1)) if E > 1 else 0.0
    experts = []
    for e in range(E):
        ey = y + (span * (1 - 2 * e / (E - 1)) if E > 1 else 0.0)
        mg, eh = None, f"expert {e} of {esc(n)}"
        if gw is not None:
            col = [row[e] for row in gw]
            mg = sum(col) / len(col)
            eh += "<br>" + "<br>".join(f"{esc(_short(t, 18))}: {fmt.value(w)}" for t, w in zip(node_tasks, col))
        experts.append(ExpertInfo(n, e, x - 0.22, ey, eh, mg))
    return node, experts


def _stage_nodes(graph: SharingGraph, lane: Mapping[str, int], sc: _Scale, gates: Mapping[str, Any],
                 compact: bool) -> tuple[list[NodeInfo], list[ExpertInfo], set[str]]:
    """The input, block and MoE nodes (area ∝ parameters), their experts, and the legend kinds present."""
    g, bb, order = graph.g, graph.backbone, sorted(lane, key=lane.__getitem__)
    params = {n: graph.node_params(n) for n in g.nodes}
    pmax = max([p for p in params.values() if p > 0], default=1)

    def size_of(p: int) -> float:
        return max(sc.min_size, sc.max_size * math.sqrt(p / pmax)) if p > 0 else sc.min_size

    def y_of(ts: Sequence[str]) -> float:
        ls = [lane[t] for t in ts]
        return -(min(ls) + max(ls)) / 2

    nodes = [NodeInfo("input", "input", 0.0, y_of(order), 10.0 if not compact else 8.0, 0, "input", INPUT_COLOUR,
                      f"input<br>shape {list(bb.input_shape)}<br>backbone {esc(bb.name)}")]
    experts: list[ExpertInfo] = []
    present = {"input"}
    for s in range(graph.n_stages):
        for n in graph.nodes_at(s):
            d = g.nodes[n]
            ts = tuple(sorted(d["tasks"], key=lane.__getitem__))
            x, y = float(s + 1), y_of(ts)
            head = f"<b>{esc(n)}</b><br>stage {s} ({esc(bb.name)} {bb.in_features(s)}→{bb.out_features(s)})"
            if d["kind"] == "moe":
                node, ex = _moe_node(graph, n, ts, (x, y), size_of(params[n]), gates, sc, head)
                nodes.append(node)
                experts += ex
                present.add("moe")
                continue
            c = d.get("conditioning", "none") if len(ts) > 1 else "none"
            present.add(c)
            hover = head + f"<br>conditioning: {c}<br>params {params[n]:,}<br>tasks ({len(ts)}):<br>{_full_list(ts)}"
            nodes.append(NodeInfo(n, "block", x, y, size_of(params[n]), params[n], _block_label(ts, graph.tasks, sc),
                                  CONDITIONING_COLOURS.get(c, CONDITIONING_COLOURS["none"]), hover, s, ts, c))
    heads = [_head_node(graph, t, lane, size_of(params[graph.head(t)])) for t in order]
    return nodes + heads, experts, present


def _head_node(graph: SharingGraph, t: str, lane: Mapping[str, int], size: float) -> NodeInfo:
    n = graph.head(t)
    d = graph.g.nodes[n]
    hover = f"<b>head of {esc(t)}</b><br>out_dim {d['out_dim']}<br>params {graph.node_params(n):,}"
    return NodeInfo(n, "head", float(graph.n_stages + 1), -float(lane[t]), size, graph.node_params(n),
                    esc(_short(t, 18)), delta_colour(None), hover, None, (t,), None, None)


def _colour_heads(heads: Sequence[NodeInfo], deltas: Mapping[str, Any], delta_ci: Mapping[str, Any],
                  split: str) -> float | None:
    """Colour each head by its Δ_t and say it on hover; returns the |Δ| of the full colour (None: none known)."""
    known = [abs(v) for v in (_num(deltas.get(h.tasks[0])) for h in heads) if v is not None]
    scale = max(known) if known and max(known) > 0 else (1.0 if known else None)
    for h in heads:
        dv = _num(deltas.get(h.tasks[0]))
        ci = delta_ci.get(h.tasks[0])
        ci_txt = fmt.interval(ci[0], ci[1], fmt.delta) if ci is not None and len(ci) == 2 else ""
        dtxt = f"Δ_t ({esc(split)}) = {fmt.delta(dv)} {ci_txt}".rstrip() if dv is not None else "Δ_t unknown"
        verdict = "" if dv is None else (" (gain)" if dv > 0 else " (negative transfer)" if dv < 0 else "")
        first, rest = h.hover.split("<br>", 1)
        h.hover = f"{first}<br>{dtxt}{verdict}<br>{rest}"
        h.colour, h.delta = delta_colour(dv, scale or 1.0), dv
    return scale


def _edges(graph: SharingGraph, pos: Mapping[str, tuple[float, float]],
           sw: Mapping[tuple[str, str], list[float]]) -> list[EdgeInfo]:
    """Flow edges (straight) and every soft pair (a curve; the figure draws them aggregated per stage)."""
    edges: list[EdgeInfo] = []
    for u, v, d in graph.g.edges(data=True):
        if d["kind"] == "flow":
            (x0, y0), (x1, y1) = pos[u], pos[v]
            edges.append(EdgeInfo(u, v, "flow", "solid", 1.5, "", f"{esc(u)} → {esc(v)}", [x0, x1], [y0, y1]))
    for u, v, d in graph.g.edges(data=True):
        if d["kind"] == "flow":
            continue
        (x0, y0), (_, y1) = pos[u], pos[v]
        xs, ys = _curve(x0, y0, y1, min(0.42, 0.18 + 0.06 * abs(y1 - y0)))
        if d["kind"] == "l2":
            lam = float(d["lam"])
            edges.append(EdgeInfo(u, v, "l2", _DASH["l2"], _lam_width(lam), f"λ={fmt.config_value(lam, 2)}",
                                  f"L2 soft sharing<br>{esc(u)} ~ {esc(v)}<br>λ = {fmt.config_value(lam)}", xs, ys,
                                  lam=lam))
            continue
        w = sw.get((u, v))
        if w is not None:
            lab = "α " + "/".join(fmt.value(x, 2) for x in w)
            hov = f"cross-stitch<br>{esc(u)} ↔ {esc(v)}<br>learned weights: " + ", ".join(fmt.value(x) for x in w)
        else:
            lab, hov = "stitch", f"cross-stitch<br>{esc(u)} ↔ {esc(v)}<br>(weights not given)"
        edges.append(EdgeInfo(u, v, "stitch", _DASH["stitch"], 1.5, lab, hov, xs, ys, weights=w))
    return edges


def topology_info(
    graph: SharingGraph,
    *,
    deltas: Mapping[str, float | None] | None = None,
    delta_ci: Mapping[str, Sequence[float] | None] | None = None,
    gates: Mapping[str, Sequence[Sequence[float]]] | None = None,
    stitch: Mapping[str, Any] | None = None,
    compact: bool = False,
    delta_split: str = "validation",
) -> TopologyInfo:
    """Compute the drawing of ``graph``: node positions, sizes, colours, labels, edges, Δ bars, soft links.

    Parameters
    ----------
    graph : SharingGraph
    deltas : {task: Δ_t}, optional
        Per-task relative change against the single-task baseline
        (:func:`sharesearch.verdict.relative_delta`; positive: sharing helped).
        Each head gets a bar of length ∝ Δ_t in percent with its value
        (:mod:`._bars`) and is coloured by it; missing/None/NaN: grey, no bar.
        Without ``deltas`` there are no bars.
    delta_ci : {task: (lo, hi)}, optional
        Interval of Δ_t, shown on hover.
    gates : {node_id: [[weight per expert] per task of the node]}, optional
        Mean MoE gate weights (``net.gate_values(x)``), shown on the experts.
    stitch : mapping, optional
        Learned cross-stitch matrices keyed by unit name,
        :func:`sharesearch.plan.stitch_key` (``net.stitch_weights()``); each
        stage's label gives their mean off-diagonal weight and its hover
        every pair's weights; see :func:`._edges._stitch_lookup`.
    compact : bool
        Smaller pixel sizes, for subplots.
    delta_split : str
        The split ``deltas`` were measured on (``"validation"`` or
        ``"test"``), named in the bars' title and the hover.

    Returns
    -------
    TopologyInfo
        Soft links are in ``edges`` pair by pair (data) and in ``soft`` once
        per stage (what is drawn); ``text_boxes()`` says where each text goes.

    Examples
    --------
    >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8, 8]}
    >>> info = topology_info(SharingGraph.l2_soft({"a": 1, "b": 1}, bb, lam=0.1), deltas={"a": 0.02})
    >>> [(s.stage, s.label) for s in info.soft]
    [(0, 'L2 pull λ=0.1<br>1 pair'), (1, 'L2 pull λ=0.1<br>1 pair')]
    >>> [(b.task, b.text) for b in info.bars.bars], info.bars.title
    ([('a', '+2.00%'), ('b', '–')], 'Δ<sub>t</sub> on validation')
    """
    tasks, L = list(graph.tasks), graph.n_stages
    T, order = len(tasks), task_order(graph)
    lane = {t: i for i, t in enumerate(order)}
    sc = _Scale.of(T, compact)
    nodes, experts, present = _stage_nodes(graph, lane, sc, dict(gates or {}), compact)
    heads = [n for n in nodes if n.kind == "head"]
    scale = _colour_heads(heads, dict(deltas or {}), dict(delta_ci or {}), delta_split)
    pos = {n.id: (n.x, n.y) for n in nodes}
    sw = _stitch_lookup(graph, stitch) if stitch else {}
    edges = _edges(graph, pos, sw)

    names_end = L + 1 + (max(h.size for h in heads) / 2 + 4 + max(text_px(h.label, sc.font)[0] for h in heads)
                         + 16) / sc.col_px
    bars = None
    if deltas:
        bars = delta_bars(deltas, {h.tasks[0]: h.y for h in heads}, x_start=names_end, col_px=sc.col_px,
                          font=sc.font, delta_ci=delta_ci, split=delta_split,
                          bar_px=BAR_PX if not compact else 0.6 * BAR_PX)
    x_range = (-0.4, (bars.x_end if bars else names_end) + 8 / sc.col_px)

    soft_font = max(8, sc.font - 1)
    label_y = -(T - 1) - 0.55
    top_pad = sc.pad + (0.25 if any(k != "flow" for *_, k in graph.g.edges(data="kind")) else 0.0)
    top = min(top_pad - 0.05, (max(n.size for n in nodes) / 2 + 1.25 * sc.font + 4) / sc.lane_px)  # over the label
    half = {s: min(0.45, max([0.3] + [(text_px(n.label, sc.font)[0] / 2 + 6) / sc.col_px
                                      for n in nodes if n.stage == s])) for s in range(L)}  # bands frame labels
    soft = soft_stage_infos(graph, pos, sw, label_y=label_y, half_width=half, top=top, lam_width=_lam_width,
                            compact=compact)
    footer_px = max((len(s.lines) for s in soft), default=0) * 1.25 * soft_font + (10 if soft else 0)
    inner_h = sc.lane_px * (T - 1 + sc.pad + top_pad) + footer_px
    height = int(max(300 if not compact else 220, inner_h + sc.margin["t"] + sc.margin["b"]))
    lane_px = (height - sc.margin["t"] - sc.margin["b"] - footer_px) / (T - 1 + sc.pad + top_pad)  # after the minimum
    y_range = (-(T - 1) - sc.pad - footer_px / lane_px, top_pad)
    width = int(sc.col_px * (x_range[1] - x_range[0]) + sc.margin["l"] + sc.margin["r"])

    legend = [(f"block: {c}" if c != "none" else "block", CONDITIONING_COLOURS[c], "circle")
              for c in CONDITIONING_COLOURS if c in present]
    if "moe" in present:
        legend.append(("MoE", MOE_COLOUR, "square"))
    return TopologyInfo(nodes, edges, experts, order, sc.font, lane_px, width, height, x_range, y_range, sc.margin,
                        legend, scale, delta_split, soft, bars, sc.col_px, soft_font)

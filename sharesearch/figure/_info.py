"""The topology figure's pure info: :func:`topology_info` computes every position, size, colour and label."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import fmt
from ..graph import SharingGraph
from ._common import (_DASH, CONDITIONING_COLOURS, INPUT_COLOUR, MOE_COLOUR, _abbrev, _full_list, _num, _short,
                      delta_colour, esc)
from ._edges import _as_matrix, _curve, _lam_width, _stitch_lookup

@dataclass
class NodeInfo:
    """One drawn node (input, block, MoE or head)."""

    id: str
    kind: str
    x: float
    y: float
    size: float  # marker diameter in px; area ∝ params
    params: int
    label: str  # escaped
    colour: str
    hover: str  # escaped HTML
    stage: int | None = None
    tasks: tuple[str, ...] = ()
    conditioning: str | None = None
    delta: float | None = None


@dataclass
class EdgeInfo:
    """One drawn edge: ``flow`` (solid), ``l2`` (dashed, width ~ log λ) or ``stitch`` (dotted)."""

    source: str
    target: str
    kind: str
    dash: str
    width: float
    label: str  # escaped; "" for flow edges
    hover: str
    xs: list[float] = field(default_factory=list)  # polyline (curved for soft edges)
    ys: list[float] = field(default_factory=list)
    lam: float | None = None
    weights: list[float] | None = None  # cross-stitch: learned mixing weights shown


@dataclass
class ExpertInfo:
    """One expert of an MoE node (a small square next to it)."""

    node: str
    index: int
    x: float
    y: float
    hover: str
    mean_gate: float | None  # mean over the node's tasks of this expert's gate weight


@dataclass
class TopologyInfo:
    """Everything :func:`topology_figure` draws, in data coordinates plus pixel sizes."""

    nodes: list[NodeInfo]
    edges: list[EdgeInfo]
    experts: list[ExpertInfo]
    task_order: list[str]
    font_size: int
    lane_px: float  # vertical pixels between two adjacent task lanes
    width: int
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    margin: dict[str, int]
    legend: list[tuple[str, str, str]]  # (name, colour, symbol) of the node kinds present
    delta_scale: float | None  # |Δ| for the full red/green; None when no Δ is known
    delta_split: str = "validation"  # the split the heads' Δ_t were measured on ("validation" or "test")

    def node(self, node_id: str) -> NodeInfo:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def edges_of(self, kind: str) -> list[EdgeInfo]:
        return [e for e in self.edges if e.kind == kind]

    def y_px(self, y: float) -> float:
        """Pixel row (from the figure's top) of data coordinate ``y``."""
        lo, hi = self.y_range
        inner = self.height - self.margin["t"] - self.margin["b"]
        return self.margin["t"] + (hi - y) / (hi - lo) * inner


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
    """Compute the drawing of ``graph``: node positions, sizes, colours, labels, edges.

    Parameters
    ----------
    graph : SharingGraph
    deltas : {task: Δ_t}, optional
        Per-task relative change against the single-task baseline
        (:func:`sharesearch.verdict.relative_delta`; positive: sharing helped;
        shown as a percentage). Heads are coloured by it; missing/None/NaN: grey.
    delta_ci : {task: (lo, hi)}, optional
        Interval of Δ_t, shown on hover.
    gates : {node_id: [[weight per expert] per task of the node]}, optional
        Mean MoE gate weights (``net.gate_values(x)``), shown on the experts.
    stitch : mapping, optional
        Learned cross-stitch matrices keyed by unit name,
        :func:`sharesearch.plan.stitch_key` (``net.stitch_weights()``), shown
        on the stitch links; see :func:`_stitch_lookup`.
    compact : bool
        Smaller pixel sizes, for subplots.
    delta_split : str
        The split ``deltas`` were measured on (``"validation"`` or
        ``"test"``), named in the hover and the colour bar.

    Returns
    -------
    TopologyInfo

    Examples
    --------
    >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8, 8]}
    >>> info = topology_info(SharingGraph.l2_soft({"a": 1, "b": 1}, bb, lam=0.1))
    >>> [(e.kind, e.dash) for e in info.edges_of("l2")]
    [('l2', 'dash'), ('l2', 'dash')]
    """
    g, tasks = graph.g, list(graph.tasks)
    T, L = len(tasks), graph.n_stages
    order = task_order(graph)
    lane = {t: i for i, t in enumerate(order)}
    deltas = dict(deltas or {})
    delta_ci = dict(delta_ci or {})
    gates = dict(gates or {})

    # --------------------------------------------------------------- sizing
    font = int(max(9, min(13, round(14 - 0.3 * (T - 2)))))
    if compact:
        font = max(8, font - 2)
    lane_px = float(max(3.4 * font, 44 - 0.6 * T)) if not compact else float(max(2.8 * font, 30 - 0.5 * T))
    max_size = max(10.0, min(44.0 if not compact else 30.0, lane_px - 1.5 * font))
    min_size = 9.0 if not compact else 7.0
    col_px = 150 if not compact else 95
    margin = {"l": 20, "r": 20, "t": 50 if not compact else 30, "b": 20}
    pad = 0.9  # lanes of room above the first and below the last lane
    y_range = (-(T - 1) - pad, pad)
    x_range = (-0.4, L + 1 + (1.6 if not compact else 1.2))  # room for the head labels
    inner_h = lane_px * (T - 1 + 2 * pad)
    height = int(max(300 if not compact else 220, inner_h + margin["t"] + margin["b"]))
    lane_px = (height - margin["t"] - margin["b"]) / (T - 1 + 2 * pad)  # actual, after the minimum height
    width = int(col_px * (x_range[1] - x_range[0]) + margin["l"] + margin["r"])

    params = {n: graph.node_params(n) for n in g.nodes}
    pmax = max([p for p in params.values() if p > 0], default=1)

    def size_of(p: int) -> float:
        return max(min_size, max_size * math.sqrt(p / pmax)) if p > 0 else min_size

    def y_of(ts: Sequence[str]) -> float:
        ls = [lane[t] for t in ts]
        return -(min(ls) + max(ls)) / 2

    known = [abs(v) for v in (_num(deltas.get(t)) for t in tasks) if v is not None]
    scale = max(known) if known and max(known) > 0 else (1.0 if known else None)

    nodes: list[NodeInfo] = []
    experts: list[ExpertInfo] = []
    pos: dict[str, tuple[float, float]] = {}
    nodes.append(NodeInfo("input", "input", 0.0, y_of(order), 10.0 if not compact else 8.0, 0, "input",
                          INPUT_COLOUR, f"input<br>shape {list(graph.backbone.input_shape)}<br>"
                                        f"backbone {esc(graph.backbone.name)}"))
    pos["input"] = (0.0, y_of(order))
    bb = graph.backbone
    present = {"input"}
    for s in range(L):
        for n in graph.nodes_at(s):
            d = g.nodes[n]
            ts = tuple(sorted(d["tasks"], key=lane.__getitem__))
            x, y = float(s + 1), y_of(ts)
            pos[n] = (x, y)
            head = f"<b>{esc(n)}</b><br>stage {s} ({esc(bb.name)} {bb.in_features(s)}→{bb.out_features(s)})"
            tl = f"<br>tasks ({len(ts)}):<br>{_full_list(ts)}"
            if d["kind"] == "moe":
                E = int(d["experts"])
                gw = _as_matrix(gates[n]) if n in gates else None
                node_tasks = list(d["tasks"])
                if gw is not None and (len(gw) != len(node_tasks) or any(len(r) != E for r in gw)):
                    gw = None  # wrong shape: do not guess
                gate_txt = ""
                if gw is not None:
                    gate_txt = "<br>mean gate weight per expert:<br>" + "<br>".join(
                        f"{esc(_short(t, 18))}: " + " ".join(fmt.value(w) for w in row)
                        for t, row in zip(node_tasks, gw))
                p_drop = fmt.config_value(d.get("expert_dropout", 0.0))
                hover = (head + f"<br>MoE: {E} experts, expert dropout {p_drop}"
                         f"<br>params {params[n]:,}" + tl + gate_txt)
                nodes.append(NodeInfo(n, "moe", x, y, size_of(params[n]), params[n],
                                      _abbrev(ts, tasks, compact) + f" · MoE×{E}", MOE_COLOUR, hover, s, ts, None))
                present.add("moe")
                span = min(0.35, 0.12 * (E - 1)) if E > 1 else 0.0
                for e in range(E):
                    ey = y + (span * (1 - 2 * e / (E - 1)) if E > 1 else 0.0) * 1.0
                    mg = None
                    eh = f"expert {e} of {esc(n)}"
                    if gw is not None:
                        col = [row[e] for row in gw]
                        mg = sum(col) / len(col)
                        eh += "<br>" + "<br>".join(f"{esc(_short(t, 18))}: {fmt.value(w)}"
                                                   for t, w in zip(node_tasks, col))
                    experts.append(ExpertInfo(n, e, x - 0.22, ey, eh, mg))
            else:
                c = d.get("conditioning", "none") if len(ts) > 1 else "none"
                present.add(c)
                hover = head + f"<br>conditioning: {c}<br>params {params[n]:,}" + tl
                nodes.append(NodeInfo(n, "block", x, y, size_of(params[n]), params[n], _abbrev(ts, tasks, compact),
                                      CONDITIONING_COLOURS.get(c, CONDITIONING_COLOURS["none"]), hover, s, ts, c))
    for t in order:
        n = graph.head(t)
        d = g.nodes[n]
        x, y = float(L + 1), -float(lane[t])
        pos[n] = (x, y)
        dv = _num(deltas.get(t))
        ci = delta_ci.get(t)
        ci_txt = fmt.interval(ci[0], ci[1], fmt.delta) if ci is not None and len(ci) == 2 else ""
        dtxt = (f"Δ_t ({esc(delta_split)}) = {fmt.delta(dv)} {ci_txt}".rstrip() if dv is not None
                else "Δ_t unknown")
        verdict = "" if dv is None else (" (gain)" if dv > 0 else " (negative transfer)" if dv < 0 else "")
        hover = f"<b>head of {esc(t)}</b><br>{dtxt}{verdict}<br>out_dim {d['out_dim']}<br>params {params[n]:,}"
        label = esc(_short(t, 18)) + (f"  {fmt.delta(dv)}" if dv is not None else "")
        nodes.append(NodeInfo(n, "head", x, y, size_of(params[n]), params[n], label,
                              delta_colour(dv, scale or 1.0), hover, None, (t,), None, dv))

    # ---------------------------------------------------------------- edges
    edges: list[EdgeInfo] = []
    for u, v, d in g.edges(data=True):
        if d["kind"] != "flow":
            continue
        (x0, y0), (x1, y1) = pos[u], pos[v]
        edges.append(EdgeInfo(u, v, "flow", "solid", 1.5, "", f"{esc(u)} → {esc(v)}", [x0, x1], [y0, y1]))
    sw = _stitch_lookup(graph, stitch) if stitch else {}
    for u, v, d in g.edges(data=True):
        k = d["kind"]
        if k == "flow":
            continue
        (x0, y0), (_, y1) = pos[u], pos[v]
        bulge = min(0.42, 0.18 + 0.06 * abs(y1 - y0))
        xs, ys = _curve(x0, y0, y1, bulge)
        if k == "l2":
            lam = float(d["lam"])
            edges.append(EdgeInfo(u, v, "l2", _DASH["l2"], _lam_width(lam), f"λ={fmt.config_value(lam, 2)}",
                                  f"L2 soft sharing<br>{esc(u)} ~ {esc(v)}<br>λ = {fmt.config_value(lam)}", xs, ys,
                                  lam=lam))
        else:
            w = sw.get((u, v))
            if w is not None:
                lab = "α " + "/".join(fmt.value(x, 2) for x in w)
                hov = (f"cross-stitch<br>{esc(u)} ↔ {esc(v)}<br>learned weights: "
                       + ", ".join(fmt.value(x) for x in w))
            else:
                lab, hov = "stitch", f"cross-stitch<br>{esc(u)} ↔ {esc(v)}<br>(weights not given)"
            edges.append(EdgeInfo(u, v, "stitch", _DASH["stitch"], 1.5, lab, hov, xs, ys, weights=w))

    legend = [(f"block: {c}" if c != "none" else "block", CONDITIONING_COLOURS[c], "circle")
              for c in CONDITIONING_COLOURS if c in present]
    if "moe" in present:
        legend.append(("MoE", MOE_COLOUR, "square"))
    return TopologyInfo(nodes, edges, experts, order, font, lane_px, width, height, x_range, y_range, margin,
                        legend, scale, delta_split)


"""The topology figure: a sharing graph drawn so a person sees what is shared.

Following Optuna's visualisation pattern, a pure *info* function computes
everything the figure shows (positions, sizes, colours, labels, hover text)
and a thin figure function turns it into plotly traces; tests assert on the
info.

Layout: one column per stage between the input (left) and the heads (right).
Every task owns a horizontal *lane*; lanes are ordered by a depth-first walk
over the flow tree, so the tasks of every node are contiguous, siblings sit
together and no two flow edges cross. A node sits at the centre of its tasks'
lanes, its marker *area* is proportional to its trainable parameters
(:meth:`SharingGraph.node_params`), its colour says how it is conditioned on
the task (none / concat / film / gate, or MoE) and its label lists the tasks
that share it (abbreviated, full list on hover). Soft-sharing L2 links are
dashed with a width that grows with log λ, cross-stitch links are dotted and
carry their learned weights when given. Each head is coloured by its task's
Δ_t on a diverging scale (red: negative transfer, green: gain, grey: unknown).

Numbers are written by :mod:`sharesearch.fmt` (Δ as a signed percentage,
weights and λ with a few significant digits), as everywhere else; stitch
weights are looked up by the compiler's one unit name,
:func:`sharesearch.plan.stitch_key`.

Every string that comes from users (task names, hence node ids) is escaped
with :func:`html.escape` before it reaches plotly, which renders a subset of
HTML in labels and hover text; plain ``text``/``hovertext`` are used instead
of templates so ``%{...}`` in a name is not interpreted either.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 1},
...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, 1)
>>> info = topology_info(g, deltas={"a": 1.5, "b": -2.0})
>>> [n.kind for n in info.nodes]
['input', 'block', 'block', 'block', 'head', 'head']
>>> info.node("head:b").colour == info.node("head:a").colour
False
>>> type(topology_figure(g)).__name__
'Figure'
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from . import fmt
from .graph import SharingGraph
from .plan import stitch_units

__all__ = [
    "CONDITIONING_COLOURS",
    "MOE_COLOUR",
    "NodeInfo",
    "EdgeInfo",
    "ExpertInfo",
    "TopologyInfo",
    "topology_info",
    "topology_figure",
    "small_multiples",
    "affinity_figure",
    "delta_colour",
    "esc",
    "task_order",
]

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


def _lam_width(lam: float) -> float:
    """Line width of an L2 link: grows with log10 λ (1e-6 -> 0.75, 1e-3 -> 2.55, 1 -> 4.35, max 5).

    >>> _lam_width(1e-3) < _lam_width(1e-2) < _lam_width(1.0)
    True
    """
    if lam <= 0:
        return 0.75
    return float(min(5.0, max(0.75, 0.75 + 0.6 * (math.log10(lam) + 6.0))))


def _curve(x: float, y0: float, y1: float, bulge: float, n: int = 16) -> tuple[list[float], list[float]]:
    """Quadratic Bézier between two nodes of one column, bulging to the right."""
    cx, cy = x + bulge, (y0 + y1) / 2
    xs, ys = [], []
    for i in range(n + 1):
        t = i / n
        xs.append((1 - t) ** 2 * x + 2 * (1 - t) * t * cx + t**2 * x)
        ys.append((1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1)
    return xs, ys


def _as_matrix(v: Any) -> list[list[float]] | None:
    """Tensor / array / nested list -> list of rows of floats (a scalar becomes [[v]])."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().tolist()
    elif hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, (int, float)):
        return [[float(v)]]
    try:
        rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in v]
        return [[float(x) for x in r] for r in rows]
    except (TypeError, ValueError):
        return None


def _stitch_lookup(graph: SharingGraph, stitch: Mapping[str, Any]) -> dict[tuple[str, str], list[float]]:
    """Learned cross-stitch weights ``[α(u<-v), α(v<-u)]`` of each stitch edge ``(u, v)``.

    ``stitch`` maps a unit's name, :func:`sharesearch.plan.stitch_key`
    (``"stage<l>:<task>+<task>..."``, the keys of
    :meth:`MultiTaskNet.stitch_weights`), to its ``n x n`` matrix over the
    unit's tasks (a tensor, array or nested list). An edge's weight is how much
    of one block's activation flows into the other, averaged over the tasks of
    the two blocks. A name the graph has no unit for, or a matrix of the wrong
    size, is an error (``ValueError``): the keys have one producer.
    """
    units = {u.key: u for u in stitch_units(graph)}
    unknown = sorted(str(k) for k in stitch if k not in units)
    if unknown:
        raise ValueError(f"stitch weights for {unknown}: the graph's cross-stitch units are {sorted(units)}")
    g, out = graph.g, {}
    for key, val in stitch.items():
        unit, m = units[key], _as_matrix(val)
        n = len(unit.tasks)
        if m is None or len(m) != n or any(len(r) != n for r in m):
            raise ValueError(f"stitch weights {key!r}: expected a {n}x{n} matrix, got {val!r}")
        for u, v, kind in g.edges(data="kind"):
            if kind != "stitch" or g.nodes[u]["stage"] != unit.stage or g.nodes[u]["tasks"][0] not in unit.tasks:
                continue
            iu = [unit.tasks.index(t) for t in g.nodes[u]["tasks"]]
            iv = [unit.tasks.index(t) for t in g.nodes[v]["tasks"]]
            out[(u, v)] = [sum(m[i][j] for i in iu for j in iv) / (len(iu) * len(iv)),
                           sum(m[j][i] for i in iu for j in iv) / (len(iu) * len(iv))]
    return out


def topology_info(
    graph: SharingGraph,
    *,
    deltas: Mapping[str, float | None] | None = None,
    delta_ci: Mapping[str, Sequence[float] | None] | None = None,
    gates: Mapping[str, Sequence[Sequence[float]]] | None = None,
    stitch: Mapping[str, Any] | None = None,
    compact: bool = False,
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
        dtxt = f"Δ_t = {fmt.delta(dv)} {ci_txt}".rstrip() if dv is not None else "Δ_t unknown"
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
                        legend, scale)


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
                            colorbar=dict(title=dict(text="head Δ_t"), thickness=12, len=0.5))))
    return tr


def _axis(r: tuple[float, float]) -> dict:
    return dict(visible=False, range=list(r), fixedrange=False, zeroline=False, showgrid=False)


def topology_figure(
    graph: SharingGraph,
    *,
    deltas: Mapping[str, float | None] | None = None,
    delta_ci: Mapping[str, Sequence[float] | None] | None = None,
    gates: Mapping[str, Sequence[Sequence[float]]] | None = None,
    stitch: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Draw ``graph`` (see :func:`topology_info` for the arguments).

    ``title`` is user text and is escaped.

    >>> g = SharingGraph.independent({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> fig = topology_figure(g, title="<i>x</i>")
    >>> fig.layout.title.text
    '&lt;i&gt;x&lt;/i&gt;'
    """
    info = topology_info(graph, deltas=deltas, delta_ci=delta_ci, gates=gates, stitch=stitch)
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

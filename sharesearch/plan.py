"""The compiler's plan of a sharing graph: what each stage computes, as typed records (torch-free).

:class:`~sharesearch.network.MultiTaskNet` runs a graph stage by stage on
*stream tensors* ``[S, B, *features]`` (see :mod:`sharesearch.network`). This
module decides, for the tasks asked for, which block *applications* each stage
runs, which stream rows they read, how their results become the stage's
output rows (copied, FiLM- or gate-modulated, mixed by an MoE gate, mixed by a
cross-stitch unit) and which parameter *owners* every task's output depends
on. It is pure Python over the graph, so it also names the cross-stitch units
for code that must not import torch (the figure): :func:`stitch_units` and
:func:`stitch_key` are the one definition of a stitch unit's name.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> bb = {"name": "mlp", "input_shape": [4], "widths": [8, 8]}
>>> g = SharingGraph.branched({"a": 1, "b": 1, "c": 1}, bb, ["a,b,c"], cross_stitch=[False, True])
>>> [u.key for u in stitch_units(g)]
['stage1:a+b+c']
>>> p = plan_streams(g, ["a"])
>>> [(len(s.plain.apps), s.n_out) for s in p.stages]    # the stitch at stage 1 needs b and c too
[(1, 1), (3, 3)]
>>> sorted(o.kind for o in p.owners["a"])
['head', 'node', 'node', 'node', 'node', 'stitch']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import networkx as nx

from .errors import SharesearchError
from .graph import SharingGraph

__all__ = ["StitchUnit", "stitch_key", "stitch_units", "block_nodes", "Owner", "BankPlan", "Modulation",
           "Mixture", "StitchMix", "StagePlan", "HeadRead", "Plan", "plan_streams", "SoftGroup", "soft_groups"]


# ------------------------------------------------------------ stitch names
def stitch_key(stage: int, tasks: Sequence[str]) -> str:
    """The name of the cross-stitch unit of ``stage`` over ``tasks``: ``"stage<l>:<task>+<task>..."``.

    ``tasks`` are in the graph's task order. This is the key of
    :meth:`MultiTaskNet.stitch_weights` and the one the figure reads.

    >>> stitch_key(1, ("a", "b.x"))
    'stage1:a+b.x'
    """
    return f"stage{int(stage)}:" + "+".join(tasks)


@dataclass(frozen=True)
class StitchUnit:
    """One cross-stitch unit: a connected group of ``stitch`` edges at one stage."""

    stage: int  # the stage whose block outputs the unit mixes
    tasks: tuple[str, ...]  # the tasks whose streams it mixes, in the graph's task order

    @property
    def key(self) -> str:
        """Its name, :func:`stitch_key`."""
        return stitch_key(self.stage, self.tasks)


def stitch_units(graph: SharingGraph) -> list[StitchUnit]:
    """The graph's cross-stitch units, in the order of :meth:`SharingGraph.stitch_components`
    (the order of ``MultiTaskNet.stitches``).

    Raises :class:`~sharesearch.errors.SharesearchError` when two units would
    get one name (only possible with task names that contain ``+``).

    >>> g = SharingGraph.cross_stitch({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [3, 3]})
    >>> stitch_units(g)
    [StitchUnit(stage=0, tasks=('a', 'b')), StitchUnit(stage=1, tasks=('a', 'b'))]
    """
    stages = []
    for s in range(graph.n_stages):
        h = nx.Graph([(u, v) for u, v, _ in graph.soft_edges("stitch") if graph.g.nodes[u]["stage"] == s])
        stages.extend([s] * nx.number_connected_components(h))
    units = [StitchUnit(s, tuple(comp)) for s, comp in zip(stages, graph.stitch_components(), strict=True)]
    keys = [u.key for u in units]
    if len(set(keys)) != len(keys):
        raise SharesearchError(f"graph: field 'tasks': task names containing '+' make the cross-stitch names "
                               f"{keys} ambiguous; rename the tasks")
    return units


def block_nodes(graph: SharingGraph) -> list[str]:
    """Block and MoE nodes stage by stage: the order of ``MultiTaskNet.nodes``.

    >>> block_nodes(SharingGraph.shared_bottom({"a": 1, "b": 1},
    ...     {"name": "mlp", "input_shape": [2], "widths": [3, 3]}, 1))
    ['s0:a+b', 's1:a', 's1:b']
    """
    return [n for s in range(graph.n_stages) for n in graph.nodes_at(s)]


# ------------------------------------------------------------------ records
@dataclass(frozen=True)
class Owner:
    """A holder of parameters that a task's output can depend on."""

    kind: str  # "node" (a block, or an MoE node's experts), "gate" (one task's MoE gate), "stitch" or "head"
    index: int  # its position in MultiTaskNet.nodes / .stitches / .heads
    local: int = -1  # "gate" only: the task's position in the MoE node's task list


@dataclass(frozen=True)
class BankPlan:
    """Block applications of one stage that share an input width: one backbone call."""

    apps: tuple[tuple[int, int], ...] = ()  # (node index, expert index or -1 for a block) per application
    in_rows: tuple[int, ...] = ()  # the input stream row each application reads
    z_rows: tuple[int, ...] = ()  # concat bank only: the task whose descriptor widens each application's input


@dataclass(frozen=True)
class Modulation:
    """One task's FiLM or gate modulation of a block application."""

    node: int  # the block's index in MultiTaskNet.nodes
    app: int  # the application's row in the stage's stack (plain applications first, then concat)
    task: int  # the task's index (its row of the descriptors z)


@dataclass(frozen=True)
class Mixture:
    """One task's softmax mixture of an MoE node's experts."""

    node: int  # the MoE node's index in MultiTaskNet.nodes
    local: int  # the task's position in the node's task list (which gate)
    gate_row: int  # the input stream row its gate reads
    expert_apps: tuple[int, ...]  # the E application rows of the experts it mixes


@dataclass(frozen=True)
class StitchMix:
    """One cross-stitch unit applied to a stage's output rows."""

    unit: int  # its index in MultiTaskNet.stitches
    rows: tuple[int, ...]  # the output rows it mixes, in the unit's task order


@dataclass(frozen=True)
class StagePlan:
    """What one stage computes; output rows are ``select``, then ``film``, ``gate``, ``moe`` in order."""

    plain: BankPlan  # applications reading their input stream as is (blocks, film/gate blocks, experts)
    concat: BankPlan  # applications reading their input widened by the task descriptor
    select: tuple[int, ...]  # application rows copied (activated) to output rows
    film: tuple[Modulation, ...]  # outputs relu((1 + gamma) * pre-activation + beta), one per task
    gate: tuple[Modulation, ...]  # outputs activation * sigmoid gate, one per task
    moe: tuple[Mixture, ...]  # outputs mixing activated experts, grouped by number of experts
    stitch: tuple[StitchMix, ...]  # cross-stitch units mixing output rows afterwards
    n_in: int  # input stream rows
    n_out: int  # output stream rows


@dataclass(frozen=True)
class HeadRead:
    """The stream row one task's head reads."""

    head: int  # the task's index (= its head's index in MultiTaskNet.heads)
    row: int  # the output row of the last stage it reads


@dataclass(frozen=True)
class Plan:
    """Everything the network computes for the tasks asked for."""

    tasks: tuple[str, ...]  # the tasks asked for, in the asked order
    stages: tuple[StagePlan, ...]  # one per stage
    heads: tuple[HeadRead, ...]  # one per asked task, in the asked order
    owners: Mapping[str, frozenset[Owner]]  # per asked task: every owner its output depends on


# ------------------------------------------------------------------ planning
@dataclass(frozen=True)
class _Graph:
    """Facts of the graph the planner reads at every stage."""

    graph: SharingGraph  # the graph
    index: dict[str, int]  # node id -> index in MultiTaskNet.nodes
    tix: dict[str, int]  # task -> index
    k_in: dict[str, int]  # input streams of each node (graph._streams_in, the model of flops)
    per_task_out: dict[str, bool]  # whether a node writes one output row per task
    units: dict[int, list[tuple[int, StitchUnit]]]  # stage -> (unit index, unit)


@dataclass
class _Scratch:
    """One stage while it is planned (mutable; frozen into a StagePlan by :func:`_freeze`)."""

    apps: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: {"plain": [], "concat": []})
    in_rows: dict[str, list[int]] = field(default_factory=lambda: {"plain": [], "concat": []})
    owners: dict[str, list[frozenset[Owner]]] = field(default_factory=lambda: {"plain": [], "concat": []})
    z_rows: list[int] = field(default_factory=list)
    select: list[tuple[str, int, list[str]]] = field(default_factory=list)  # (bank, application, tasks served)
    scaled: dict[str, list[tuple[str, Modulation, frozenset[Owner]]]] = field(
        default_factory=lambda: {"film": [], "gate": []})  # (task, entry, owners)
    moe: list[tuple[str, Mixture, frozenset[Owner]]] = field(default_factory=list)

    def add(self, bank: str, node: int, expert: int, row: int, own_in: list[frozenset[Owner]]) -> int:
        self.apps[bank].append((node, expert))
        self.in_rows[bank].append(row)
        self.owners[bank].append(own_in[row] | {Owner("node", node)})
        return len(self.apps[bank]) - 1


def plan_streams(graph: SharingGraph, tasks: Sequence[str]) -> Plan:
    """Plan the stages computing only what ``tasks`` need (backwards from their heads).

    >>> g = SharingGraph.independent({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [3]})
    >>> p = plan_streams(g, ["b"])
    >>> p.stages[0].plain.apps, p.heads
    (((1, -1),), (HeadRead(head=1, row=0),))
    """
    tasks = tuple(tasks)
    k_in = graph._streams_in()
    stitched = {n for u, v, _ in graph.soft_edges("stitch") for n in (u, v)}
    units: dict[int, list[tuple[int, StitchUnit]]] = {s: [] for s in range(graph.n_stages)}
    for i, u in enumerate(stitch_units(graph)):
        units[u.stage].append((i, u))
    ctx = _Graph(graph, {n: i for i, n in enumerate(block_nodes(graph))}, {t: i for i, t in enumerate(graph.tasks)},
                 k_in, {n: k_in[n] > 1 or n in stitched for n in k_in}, units)
    need, active = set(tasks), [frozenset()] * graph.n_stages
    for s in reversed(range(graph.n_stages)):  # a stitch needs every task of its unit
        for _, unit in units[s]:
            if need & set(unit.tasks):
                need |= set(unit.tasks)
        active[s] = frozenset(need)
    rows_in = {t: 0 for t in graph.tasks}  # the input is one stream
    own_in: list[frozenset[Owner]] = [frozenset()]
    stages = []
    for s in range(graph.n_stages):
        stage, rows_in, own_in = _plan_stage(ctx, s, active[s], rows_in, own_in)
        stages.append(stage)
    heads = tuple(HeadRead(ctx.tix[t], rows_in[t]) for t in tasks)
    owners = {t: own_in[rows_in[t]] | {Owner("head", ctx.tix[t])} for t in tasks}
    return Plan(tasks, tuple(stages), heads, owners)


def _plan_stage(ctx: _Graph, s: int, active: frozenset[str], rows_in: dict[str, int],
                own_in: list[frozenset[Owner]]) -> tuple[StagePlan, dict[str, int], list[frozenset[Owner]]]:
    """One stage: its plan, each active task's output row and each output row's owners."""
    g, sc = ctx.graph.g, _Scratch()
    for n in ctx.graph.nodes_at(s):
        d, m = g.nodes[n], ctx.index[n]
        act = [t for t in d["tasks"] if t in active]
        if not act:
            continue
        streams = [rows_in[act[0]]] if ctx.k_in[n] == 1 else [rows_in[t] for t in act]
        if d["kind"] == "moe":  # every expert on every input stream
            E = d["experts"]
            first = [sc.add("plain", m, e, r, own_in) for r in streams for e in range(E)][0]
            for j, t in enumerate(act):
                a = first + (0 if len(streams) == 1 else j) * E
                li = d["tasks"].index(t)
                own = frozenset().union(*sc.owners["plain"][a:a + E]) | {Owner("gate", m, li)}
                sc.moe.append((t, Mixture(m, li, rows_in[t], tuple(range(a, a + E))), own))
            continue
        cond = d.get("conditioning", "none")
        bank = "concat" if cond == "concat" else "plain"
        if cond == "concat":  # the input differs per task: one application per task
            streams = [streams[0]] * len(act) if len(streams) == 1 else streams
            sc.z_rows.extend(ctx.tix[t] for t in act)
        first = [sc.add(bank, m, -1, r, own_in) for r in streams][0]
        if len(streams) == 1 and not ctx.per_task_out[n] and cond in ("none", "concat"):
            sc.select.append((bank, first, act))  # one stream for all its tasks
            continue
        for j, t in enumerate(act):
            a = first + (0 if len(streams) == 1 else j)
            if cond in ("film", "gate"):
                sc.scaled[cond].append((t, Modulation(m, a, ctx.tix[t]), sc.owners[bank][a]))
            else:
                sc.select.append((bank, a, [t]))
    return _freeze(ctx, s, active, sc, len(own_in))


def _freeze(ctx: _Graph, s: int, active: frozenset[str], sc: _Scratch,
            n_in: int) -> tuple[StagePlan, dict[str, int], list[frozenset[Owner]]]:
    """Number the output rows (select, film, gate, moe), add the stitches, freeze the plan."""
    n_plain = len(sc.apps["plain"])  # concat applications follow the plain ones in the stack
    rows_out: dict[str, int] = {}
    own_out: list[frozenset[Owner]] = []
    select = []
    for bank, a, ts in sc.select:
        select.append(a if bank == "plain" else n_plain + a)
        for t in ts:
            rows_out[t] = len(own_out)
        own_out.append(sc.owners[bank][a])
    by_experts: dict[int, list[tuple[str, Mixture, frozenset[Owner]]]] = {}
    for ent in sc.moe:  # the network mixes all MoE nodes with E experts at once
        by_experts.setdefault(len(ent[1].expert_apps), []).append(ent)
    moe = [ent for ents in by_experts.values() for ent in ents]
    for t, _, own in [*sc.scaled["film"], *sc.scaled["gate"], *moe]:
        rows_out[t] = len(own_out)
        own_out.append(own)
    stitch = []
    for ui, unit in ctx.units[s]:
        if unit.tasks[0] in active:
            rows = tuple(rows_out[t] for t in unit.tasks)
            stitch.append(StitchMix(ui, rows))
            mixed = frozenset().union(*(own_out[r] for r in rows)) | {Owner("stitch", ui)}
            for r in rows:
                own_out[r] = mixed
    banks = {b: BankPlan(tuple(sc.apps[b]), tuple(sc.in_rows[b]), tuple(sc.z_rows) if b == "concat" else ())
             for b in ("plain", "concat")}
    plan = StagePlan(banks["plain"], banks["concat"], tuple(select),
                     tuple(e for _, e, _ in sc.scaled["film"]), tuple(e for _, e, _ in sc.scaled["gate"]),
                     tuple(e for _, e, _ in moe), tuple(stitch), n_in, len(own_out))
    return plan, rows_out, own_out


# ------------------------------------------------------------ soft links
@dataclass(frozen=True)
class SoftGroup:
    """The soft links of one kind at one stage."""

    stage: int  # the stage of the linked blocks
    kind: str  # "stitch" or "l2" (one kind per stage: the graph refuses both)
    blocks: tuple[str, ...]  # the linked block ids, in the graph's order of the stage
    pairs: tuple[tuple[str, str], ...]  # every linked (source, target) pair, in edge order
    lams: tuple[float, ...]  # l2: the distinct λ of the pairs, ascending; () for cross-stitch


def soft_groups(graph: SharingGraph) -> list[SoftGroup]:
    """The graph's soft links grouped by (stage, kind), in stage order.

    >>> from sharesearch.graph import SharingGraph
    >>> g = SharingGraph.l2_soft({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [3, 3]}, lam=0.1)
    >>> [(s.stage, s.kind, s.pairs, s.lams) for s in soft_groups(g)]
    [(0, 'l2', (('s0:a', 's0:b'),), (0.1,)), (1, 'l2', (('s1:a', 's1:b'),), (0.1,))]
    """
    out = []
    for s in range(graph.n_stages):
        column = graph.nodes_at(s)
        for kind in ("stitch", "l2"):
            edges = [(u, v, d) for u, v, d in graph.soft_edges(kind) if graph.g.nodes[u]["stage"] == s]
            if not edges:
                continue
            linked = {n for u, v, _ in edges for n in (u, v)}
            lams = tuple(sorted({float(d["lam"]) for *_, d in edges})) if kind == "l2" else ()
            out.append(SoftGroup(s, kind, tuple(n for n in column if n in linked),
                                 tuple((u, v) for u, v, _ in edges), lams))
    return out

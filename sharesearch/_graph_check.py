"""What a valid sharing graph is: its vocabulary, :class:`GraphError` and the checks.

:class:`~sharesearch.graph.SharingGraph` validates itself with
:func:`check_graph` when it is built; the error, the node and edge kinds and
the conditionings live here, below ``graph``, so that the construction and
checking modules can raise and name them without importing ``graph``
(``sharesearch.graph`` re-exports :class:`GraphError` and ``CONDITIONINGS``).

The checks run in a fixed order and stop at the first problem: the task list
and its embedding, then each node's fields, then the edges and the acyclicity
of the flow edges, then the tree (a head per task, each stage partitions the
tasks, each node follows one parent of the stage before that it refines).

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
>>> g.g.nodes["s0:a+b"]["conditioning"] = "loud"
>>> check_graph(g)
Traceback (most recent call last):
...
sharesearch.graph.GraphError: node 's0:a+b': unknown conditioning 'loud'; valid: ['none', 'concat', 'film', 'gate']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx

from sharesearch.errors import SharesearchError

if TYPE_CHECKING:  # annotations only: graph imports this module
    from sharesearch.graph import SharingGraph

__all__ = ["GraphError", "CONDITIONINGS", "NODE_KINDS", "EDGE_KINDS", "check_graph"]

CONDITIONINGS = ("none", "concat", "film", "gate")
NODE_KINDS = ("input", "block", "moe", "head")
EDGE_KINDS = ("flow", "l2", "stitch")


class GraphError(SharesearchError):
    """A malformed sharing graph; the message names the node, edge or field."""

    __module__ = "sharesearch.graph"  # tracebacks name it where users import it


def check_graph(graph: SharingGraph) -> None:
    """Raise :class:`GraphError` naming the first problem of ``graph``.

    Parameters
    ----------
    graph : SharingGraph
        The graph to check; its ``g`` (a networkx ``DiGraph``) is read, never changed.

    Examples
    --------
    >>> from sharesearch.graph import SharingGraph
    >>> check_graph(SharingGraph.independent({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]}))
    """
    g, tasks = graph.g, graph.tasks
    _check_tasks(g, tasks)
    _check_nodes(g, tasks, graph.n_stages)
    _check_edges(g)
    _check_tree(graph)


def _check_tasks(g: nx.DiGraph, tasks: Sequence[str]) -> None:
    """The task names are distinct and the embedding gives each one finite vector of one length."""
    if len(set(tasks)) != len(tasks):
        raise GraphError(f"field 'tasks': duplicate task names in {list(tasks)}")
    if len(tasks) == 0:
        raise GraphError("field 'tasks': at least one task is needed")
    emb = g.graph.get("task_embedding", "onehot")
    if emb == "onehot":
        return
    if not isinstance(emb, Mapping) or set(emb) != set(tasks):
        raise GraphError(f"field 'task_embedding': needs one vector per task {list(tasks)}, got {emb!r}")
    lens = {len(v) for v in emb.values()}
    if len(lens) != 1 or 0 in lens:
        raise GraphError("field 'task_embedding': vectors must share one non-zero length")
    for t, v in emb.items():
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            raise GraphError(f"field 'task_embedding': task {t!r} has a non-finite value in {list(v)}")


def _check_nodes(g: nx.DiGraph, tasks: Sequence[str], n_stages: int) -> None:
    """Every node's kind and fields, then exactly one input node."""
    for n, d in g.nodes(data=True):
        _check_node(n, d, tasks, n_stages)
    inputs = [n for n, k in g.nodes(data="kind") if k == "input"]
    if len(inputs) != 1:
        raise GraphError(f"graph must have exactly one input node, found {inputs}")


def _check_node(n: str, d: Mapping[str, Any], tasks: Sequence[str], L: int) -> None:
    """One node's fields: kind; stage and tasks (block, moe); conditioning; experts; head task and size."""
    kind = d.get("kind")
    if kind not in NODE_KINDS:
        raise GraphError(f"node {n!r}: unknown kind {kind!r}; valid kinds: {list(NODE_KINDS)}")
    if kind in ("block", "moe"):
        st = d.get("stage")
        if not isinstance(st, int) or not 0 <= st < L:
            raise GraphError(f"node {n!r}: field 'stage' must be an integer in [0, {L}), got {st!r}")
        ts = d.get("tasks")
        if not ts or any(t not in tasks for t in ts) or len(set(ts)) != len(ts):
            raise GraphError(f"node {n!r}: field 'tasks' must list distinct known tasks, got {ts!r}")
    if kind == "block":
        c = d.get("conditioning", "none")
        if c not in CONDITIONINGS:
            raise GraphError(f"node {n!r}: unknown conditioning {c!r}; valid: {list(CONDITIONINGS)}")
    if kind == "moe":
        e = d.get("experts")
        if not isinstance(e, int) or e < 1:
            raise GraphError(f"node {n!r}: an MoE needs at least one expert, field 'experts' is {e!r}")
        p = d.get("expert_dropout", 0.0)
        if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise GraphError(f"node {n!r}: field 'expert_dropout' must be in [0, 1), got {p!r}")
    if kind == "head":
        if d.get("task") not in tasks:
            raise GraphError(f"node {n!r}: head of unknown task {d.get('task')!r}")
        od = d.get("out_dim")
        if not isinstance(od, int) or od < 1:
            raise GraphError(f"node {n!r}: field 'out_dim' must be a positive integer, got {od!r}")


def _check_edges(g: nx.DiGraph) -> None:
    """Edge kinds; soft edges join two blocks of one stage (l2: a finite λ >= 0, one conditioning);
    the flow edges have no cycle."""
    for u, v, d in g.edges(data=True):
        k = d.get("kind")
        if k not in EDGE_KINDS:
            raise GraphError(f"edge ({u!r}, {v!r}): unknown kind {k!r}; valid kinds: {list(EDGE_KINDS)}")
        if k in ("l2", "stitch"):
            du, dv = g.nodes[u], g.nodes[v]
            if du["kind"] != "block" or dv["kind"] != "block" or du["stage"] != dv["stage"]:
                raise GraphError(f"edge ({u!r}, {v!r}): a {k} edge must join two blocks of one stage")
        if k == "l2":
            lam = d.get("lam")
            if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
                raise GraphError(f"edge ({u!r}, {v!r}): field 'lam' must be a finite number >= 0, got {lam!r}")
            if g.nodes[u].get("conditioning", "none") != g.nodes[v].get("conditioning", "none"):
                raise GraphError(f"edge ({u!r}, {v!r}): an l2 edge needs blocks of the same conditioning")
    flow = nx.DiGraph([(u, v) for u, v, k in g.edges(data="kind") if k == "flow"])
    flow.add_nodes_from(g.nodes)
    if not nx.is_directed_acyclic_graph(flow):
        cyc = nx.find_cycle(flow)
        raise GraphError(f"flow edges form a cycle: {cyc}")


def _check_tree(graph: SharingGraph) -> None:
    """A head per task; each stage's nodes partition the tasks; each node has one flow parent
    of the stage before (the input at stage 0, the task's last-stage node for a head) and
    serves a subset of its parent's tasks."""
    g, tasks, L = graph.g, graph.tasks, graph.n_stages
    for t in tasks:
        if not g.has_node(graph.head(t)) or g.nodes[graph.head(t)].get("kind") != "head":
            raise GraphError(f"task {t!r} has no head (node {graph.head(t)!r} missing)")
    for s in range(L):
        seen: list[str] = []
        for n in graph.nodes_at(s):
            seen.extend(g.nodes[n]["tasks"])
        if sorted(seen) != sorted(tasks):
            raise GraphError(f"stage {s}: blocks must partition the tasks {list(tasks)}, they cover {seen}")
    for n, d in g.nodes(data=True):
        if d["kind"] == "input":
            continue
        parents = [u for u, _, k in g.in_edges(n, data="kind") if k == "flow"]
        if len(parents) != 1:
            raise GraphError(f"node {n!r}: needs exactly one flow parent, has {parents}")
        p, pd = parents[0], g.nodes[parents[0]]
        if d["kind"] == "head":
            want = graph.node_of(d["task"], L - 1)
            if p != want:
                raise GraphError(f"node {n!r}: a head must follow its task's last-stage block {want!r}, not {p!r}")
            continue
        if d["stage"] == 0:
            if pd["kind"] != "input":
                raise GraphError(f"node {n!r}: a stage-0 node must follow the input, not {p!r}")
        elif pd["kind"] not in ("block", "moe") or pd["stage"] != d["stage"] - 1:
            raise GraphError(f"node {n!r}: parent {p!r} is not a node of stage {d['stage'] - 1}")
        elif not set(d["tasks"]) <= set(pd["tasks"]):
            raise GraphError(
                f"node {n!r}: stage {d['stage']} does not refine stage {d['stage'] - 1}: tasks "
                f"{list(d['tasks'])} are not all in parent {p!r} {list(pd['tasks'])}")

"""SharingGraph: the one representation of a multi-task architecture.

A sharing graph lays ``T`` tasks over a backbone of ``L`` stages. At its core
is a :class:`networkx.DiGraph` with four node kinds:

``input``
    the single source node (id ``"input"``).
``block``
    one parameter block of stage ``l`` used by a set of tasks. Attributes:
    ``stage``, ``tasks`` (tuple, in graph task order) and ``conditioning``
    (``none`` | ``concat`` | ``film`` | ``gate``; only meaningful when the
    block serves more than one task).
``moe``
    a mixture-of-experts stage block (MMoE, Ma et al. 2018): ``experts``
    shared experts of the stage's block shape and one softmax gate per task
    of ``tasks``; ``expert_dropout`` drops whole experts in training.
``head``
    the output head of one task (attributes ``task`` and ``out_dim``).

and three edge kinds (attribute ``kind``):

``flow``
    data flows parent -> child: ``input`` -> stage-0 nodes, stage ``l-1`` ->
    stage ``l`` nodes, last stage -> heads. Each stage's nodes partition the
    tasks and every partition refines the one before it: any tree of nested
    task partitions, from one shared trunk to independent networks.
``l2``
    soft sharing between two sibling blocks of one stage: the loss gains
    ``lam * ||theta_a - theta_b||^2`` (Duong et al. 2015).
``stitch``
    a cross-stitch unit (Misra et al. 2016) mixes the per-task activations of
    the two blocks after their stage with a learned matrix initialised near
    the identity.

Soft edges join nodes of one stage and are stored once (``a -> b`` with
``a < b``); acyclicity is a property of the flow edges.

Every node carries, for each task it serves, an activation. The compiler
keeps one *stream* per node while the activation is the same for all its
tasks and one stream per task once conditioning, an MoE gate or a
cross-stitch makes them differ; :meth:`SharingGraph.flops` counts the same way.

Example
-------
>>> g = SharingGraph.from_partitions(
...     {"a": 1, "b": 1, "c": 3},
...     {"name": "mlp", "input_shape": [8], "widths": [16, 16, 8]},
...     ["a,b,c", "a,b|c", "a|b|c"])
>>> g.partitions()[1]
(('a', 'b'), ('c',))
>>> g.share_depth("a", "b"), g.share_depth("a", "c")
(2, 1)
>>> SharingGraph.from_json(g.to_json()) == g
True
"""

from __future__ import annotations

from sharesearch.errors import SharesearchError

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import networkx as nx

from .backbones import Backbone, make_backbone

__all__ = ["SharingGraph", "GraphError", "CONDITIONINGS", "LINKAGES", "parse_partition", "share_partitions"]

CONDITIONINGS = ("none", "concat", "film", "gate")
_NODE_KINDS = ("input", "block", "moe", "head")
_EDGE_KINDS = ("flow", "l2", "stitch")


class GraphError(SharesearchError):
    """A malformed sharing graph; the message names the node, edge or field."""


def parse_partition(spec: str | Sequence[Sequence[str]], tasks: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Parse ``"a,b|c"`` (or ``[["a","b"],["c"]]``) into groups in task order.

    >>> parse_partition("c|a,b", ["a", "b", "c"])
    (('a', 'b'), ('c',))
    """
    if isinstance(spec, str):
        groups = [[t.strip() for t in grp.split(",") if t.strip()] for grp in spec.split("|")]
    else:
        groups = [list(grp) for grp in spec]
    order = {t: i for i, t in enumerate(tasks)}
    for grp in groups:
        for t in grp:
            if t not in order:
                raise GraphError(f"partition {spec!r}: unknown task {t!r}; tasks are {list(tasks)}")
    out = [tuple(sorted(grp, key=order.__getitem__)) for grp in groups if grp]
    return tuple(sorted(out, key=lambda g: order[g[0]]))


def _task_dims(tasks: Mapping[str, int] | Sequence[Any]) -> dict[str, int]:
    """Accept ``{name: out_dim}`` or a sequence of objects with ``name``/``out_dim``."""
    if isinstance(tasks, Mapping):
        dims = {str(k): int(v) for k, v in tasks.items()}
    else:
        dims = {t.name: int(t.out_dim) for t in tasks}
    if len(dims) < 1:
        raise GraphError("tasks: at least one task is needed")
    return dims


def _per_stage(value: Any, n: int, field: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise GraphError(f"field {field!r}: expected {n} per-stage values, got {len(value)}")
        return list(value)
    return [value] * n


LINKAGES = ("average", "single")


def share_partitions(tasks: Sequence[str], depths: Mapping[tuple[str, str], int], n_stages: int,
                     linkage: str = "average") -> list[list[list[str]]]:
    """Nested task partitions (one per stage) nearest to pairwise share requests.

    Tasks ``a`` and ``b`` ask to share ``depths[(a, b)]`` leading stages
    (missing pairs ask for 0). Their distance is ``n_stages - depth``; a
    hierarchical clustering of the distances (scipy's ``linkage``) is cut at
    ``n_stages - l - 1/2`` for stage ``l``: a group shares stage ``l`` when its
    (average, or single-link) request exceeds ``l``. Cuts of one dendrogram
    are nested, and requests that already form a tree come back unchanged.

    ``"average"`` (UPGMA, the default) groups tasks by their *mean* request,
    so one pair asking to share does not chain whole groups together;
    ``"single"`` joins any two tasks linked by a chain of deep requests (the
    subdominant ultrametric: depths are only ever raised).

    >>> share_partitions(["a", "b", "c", "d"], {("a", "b"): 2, ("c", "d"): 1, ("b", "c"): 1}, 2)
    [[['a', 'b'], ['c', 'd']], [['a', 'b'], ['c'], ['d']]]
    >>> share_partitions(["a", "b", "c", "d"], {("a", "b"): 2, ("c", "d"): 1, ("b", "c"): 1}, 2, "single")
    [[['a', 'b', 'c', 'd']], [['a', 'b'], ['c'], ['d']]]
    """
    if linkage not in LINKAGES:
        raise GraphError(f"field 'linkage': unknown linkage {linkage!r}; valid: {list(LINKAGES)}")
    names = list(tasks)
    if len(names) == 1:
        return [[names] for _ in range(n_stages)]
    from scipy.cluster.hierarchy import fcluster, linkage as _linkage
    from scipy.spatial.distance import squareform

    index = {t: i for i, t in enumerate(names)}
    dist = [[0.0] * len(names) for _ in names]
    for a, b in itertools.combinations(names, 2):
        d = depths.get((a, b), depths.get((b, a), 0))
        dist[index[a]][index[b]] = dist[index[b]][index[a]] = float(n_stages - min(max(int(d), 0), n_stages))
    z = _linkage(squareform(dist, checks=False), method=linkage)
    parts = []
    for stage in range(n_stages):
        labels = fcluster(z, t=n_stages - stage - 0.5, criterion="distance")
        groups: dict[int, list[str]] = {}
        for t, lab in zip(names, labels):
            groups.setdefault(int(lab), []).append(t)
        parts.append(sorted(groups.values(), key=lambda g: index[g[0]]))
    return parts


class SharingGraph:
    """A multi-task architecture as a validated networkx ``DiGraph``.

    Build one with a constructor (:meth:`independent`, :meth:`shared_bottom`,
    :meth:`mmoe`, :meth:`cross_stitch`, :meth:`l2_soft`, :meth:`branched`,
    :meth:`from_partitions`, :meth:`from_share_depths`) or from JSON; the
    constructor validates and raises :class:`GraphError` naming the problem.

    Attributes
    ----------
    g : networkx.DiGraph
        The graph; ``g.graph`` holds ``tasks``, ``backbone`` and
        ``task_embedding`` (``"onehot"`` or ``{task: [floats]}``).
    """

    def __init__(self, g: nx.DiGraph, *, validate: bool = True) -> None:
        self.g = g
        self.backbone: Backbone = make_backbone(g.graph["backbone"])
        if validate:
            self.validate()

    # ------------------------------------------------------------------ basics
    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.g.graph["tasks"])

    @property
    def n_stages(self) -> int:
        return self.backbone.n_stages

    @property
    def z_dim(self) -> int:
        """Size of the task descriptor z (T for one-hot, else the metadata length)."""
        emb = self.g.graph.get("task_embedding", "onehot")
        if emb == "onehot":
            return len(self.tasks)
        return len(next(iter(emb.values())))

    def task_embedding(self) -> list[list[float]]:
        """z for every task, in task order (rows of the identity for one-hot)."""
        emb = self.g.graph.get("task_embedding", "onehot")
        if emb == "onehot":
            n = len(self.tasks)
            return [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
        return [list(map(float, emb[t])) for t in self.tasks]

    def nodes_at(self, stage: int) -> list[str]:
        """Block/MoE node ids of ``stage``, ordered by their first task."""
        order = {t: i for i, t in enumerate(self.tasks)}
        ids = [n for n, d in self.g.nodes(data=True) if d["kind"] in ("block", "moe") and d["stage"] == stage]
        return sorted(ids, key=lambda n: order[self.g.nodes[n]["tasks"][0]])

    def head(self, task: str) -> str:
        return f"head:{task}"

    def flow_parent(self, node: str) -> str:
        (p,) = [u for u, _, k in self.g.in_edges(node, data="kind") if k == "flow"]
        return p

    def soft_edges(self, kind: str) -> list[tuple[str, str, dict]]:
        return [(u, v, d) for u, v, d in self.g.edges(data=True) if d["kind"] == kind]

    def partitions(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """The task partition of every stage (groups in task order)."""
        return tuple(tuple(self.g.nodes[n]["tasks"] for n in self.nodes_at(s)) for s in range(self.n_stages))

    def node_of(self, task: str, stage: int) -> str:
        """The node of ``stage`` that serves ``task``."""
        for n in self.nodes_at(stage):
            if task in self.g.nodes[n]["tasks"]:
                return n
        raise GraphError(f"task {task!r} has no node at stage {stage}")

    def share_depth(self, a: str, b: str) -> int:
        """Number of leading stages whose block tasks ``a`` and ``b`` share."""
        d = 0
        for s in range(self.n_stages):
            if self.node_of(a, s) != self.node_of(b, s):
                break
            d += 1
        return d

    # ---------------------------------------------------------------- validate
    def validate(self) -> None:
        """Raise :class:`GraphError` naming the first problem found."""
        g, tasks = self.g, self.tasks
        if len(set(tasks)) != len(tasks):
            raise GraphError(f"field 'tasks': duplicate task names in {list(tasks)}")
        if len(tasks) == 0:
            raise GraphError("field 'tasks': at least one task is needed")
        emb = g.graph.get("task_embedding", "onehot")
        if emb != "onehot":
            if not isinstance(emb, Mapping) or set(emb) != set(tasks):
                raise GraphError(f"field 'task_embedding': needs one vector per task {list(tasks)}, got {emb!r}")
            lens = {len(v) for v in emb.values()}
            if len(lens) != 1 or 0 in lens:
                raise GraphError("field 'task_embedding': vectors must share one non-zero length")
            for t, v in emb.items():
                if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
                    raise GraphError(f"field 'task_embedding': task {t!r} has a non-finite value in {list(v)}")
        L = self.n_stages
        for n, d in g.nodes(data=True):
            kind = d.get("kind")
            if kind not in _NODE_KINDS:
                raise GraphError(f"node {n!r}: unknown kind {kind!r}; valid kinds: {list(_NODE_KINDS)}")
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
        inputs = [n for n, k in g.nodes(data="kind") if k == "input"]
        if len(inputs) != 1:
            raise GraphError(f"graph must have exactly one input node, found {inputs}")
        for u, v, d in g.edges(data=True):
            k = d.get("kind")
            if k not in _EDGE_KINDS:
                raise GraphError(f"edge ({u!r}, {v!r}): unknown kind {k!r}; valid kinds: {list(_EDGE_KINDS)}")
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
        for t in tasks:
            if not g.has_node(self.head(t)) or g.nodes[self.head(t)].get("kind") != "head":
                raise GraphError(f"task {t!r} has no head (node {self.head(t)!r} missing)")
        for s in range(L):
            seen: list[str] = []
            for n in self.nodes_at(s):
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
                want = self.node_of(d["task"], L - 1)
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

    # ------------------------------------------------------------ construction
    @classmethod
    def from_partitions(
        cls,
        tasks: Mapping[str, int] | Sequence[Any],
        backbone: dict | Backbone,
        partitions: Sequence[str | Sequence[Sequence[str]]],
        *,
        conditioning: str | Sequence[str] = "none",
        l2: float | Sequence[float] = 0.0,
        cross_stitch: bool | Sequence[bool] = False,
        moe: int | Sequence[int] = 0,
        expert_dropout: float = 0.0,
        task_embedding: str | Mapping[str, Sequence[float]] = "onehot",
    ) -> "SharingGraph":
        """Build a graph from one task partition per stage.

        Parameters
        ----------
        tasks : mapping of task name to head output size, or TaskSpecs
        backbone : backbone dict (``{"name": "mlp", ...}``) or :class:`Backbone`
        partitions : one per stage, ``"a,b|c"`` strings or lists of groups;
            missing trailing stages are fully task-specific.
        conditioning : per-stage conditioning of blocks shared by >1 task.
        l2 : per-stage λ of the L2 pull between the stage's sibling blocks (0: off).
        cross_stitch : per-stage: mix the sibling blocks' activations.
        moe : per-stage expert count; groups of >1 task at such a stage are MMoE nodes.
        expert_dropout : probability of dropping an expert in training.
        task_embedding : ``"onehot"`` or ``{task: metadata vector}``.
        """
        dims = _task_dims(tasks)
        names = list(dims)
        bb = make_backbone(backbone)
        L = bb.n_stages
        if len(partitions) > L:
            raise GraphError(f"field 'partitions': {len(partitions)} partitions for a backbone of {L} stages")
        parts = [parse_partition(p, names) for p in partitions]
        parts += [tuple((t,) for t in names)] * (L - len(parts))
        cond = _per_stage(conditioning, L, "conditioning")
        lams = _per_stage(l2, L, "l2")
        stitch = _per_stage(cross_stitch, L, "cross_stitch")
        experts = _per_stage(moe, L, "moe")
        for s_, (lam_, st_) in enumerate(zip(lams, stitch)):
            if lam_ and st_:
                raise GraphError(f"stage {s_}: l2 soft sharing and cross_stitch cannot join the same blocks; "
                                 "choose one per stage")
        emb = task_embedding if task_embedding == "onehot" else {k: list(v) for k, v in task_embedding.items()}
        g = nx.DiGraph(tasks=names, backbone=bb.to_dict(), task_embedding=emb)
        g.add_node("input", kind="input")
        prev: dict[str, str] = {t: "input" for t in names}
        for s, part in enumerate(parts):
            ids = []
            for grp in part:
                nid = cls.node_id(s, grp)
                if experts[s] and len(grp) > 1:
                    g.add_node(nid, kind="moe", stage=s, tasks=tuple(grp), experts=int(experts[s]),
                               expert_dropout=float(expert_dropout))
                else:
                    g.add_node(nid, kind="block", stage=s, tasks=tuple(grp),
                               conditioning=cond[s] if len(grp) > 1 else "none")
                parents = {prev[t] for t in grp}
                if len(parents) != 1:
                    raise GraphError(f"stage {s}: group {list(grp)} does not refine stage {s - 1}: "
                                     f"its tasks come from {sorted(parents)}")
                g.add_edge(parents.pop(), nid, kind="flow")
                ids.append(nid)
            blocks = [n for n in ids if g.nodes[n]["kind"] == "block"]
            for a, b in itertools.combinations(blocks, 2):
                if lams[s] and g.nodes[a]["conditioning"] == g.nodes[b]["conditioning"]:
                    g.add_edge(a, b, kind="l2", lam=float(lams[s]))
                if stitch[s]:
                    g.add_edge(a, b, kind="stitch")
            for grp, nid in zip(part, ids):
                for t in grp:
                    prev[t] = nid
        for t in names:
            g.add_node(f"head:{t}", kind="head", task=t, out_dim=dims[t])
            g.add_edge(prev[t], f"head:{t}", kind="flow")
        return cls(g)

    @staticmethod
    def node_id(stage: int, tasks: Iterable[str]) -> str:
        """Canonical id of the node of ``stage`` serving ``tasks``."""
        return f"s{stage}:" + "+".join(tasks)

    @classmethod
    def independent(cls, tasks, backbone, **kw) -> "SharingGraph":
        """One separate network per task (the single-task baselines)."""
        return cls.from_partitions(tasks, backbone, [], **kw)

    @classmethod
    def shared_bottom(cls, tasks, backbone, shared_stages: int | None = None, **kw) -> "SharingGraph":
        """Hard parameter sharing (Caruana 1997): one trunk for the first
        ``shared_stages`` stages (default: all), task-specific after."""
        names = list(_task_dims(tasks))
        L = make_backbone(backbone).n_stages
        k = L if shared_stages is None else shared_stages
        return cls.from_partitions(tasks, backbone, [[names]] * k, **kw)

    @classmethod
    def mmoe(cls, tasks, backbone, experts: int = 4, moe_stages: int = 1, expert_dropout: float = 0.0,
             **kw) -> "SharingGraph":
        """Multi-gate mixture of experts (Ma et al., KDD 2018): the first
        ``moe_stages`` stages are shared experts with a softmax gate per task."""
        names = list(_task_dims(tasks))
        moe = [experts] * moe_stages + [0] * (make_backbone(backbone).n_stages - moe_stages)
        return cls.from_partitions(tasks, backbone, [[names]] * moe_stages, moe=moe,
                                   expert_dropout=expert_dropout, **kw)

    @classmethod
    def cross_stitch(cls, tasks, backbone, **kw) -> "SharingGraph":
        """Cross-stitch networks (Misra et al., CVPR 2016): one network per
        task, activations mixed after every stage."""
        return cls.from_partitions(tasks, backbone, [], cross_stitch=True, **kw)

    @classmethod
    def l2_soft(cls, tasks, backbone, lam: float = 1e-3, **kw) -> "SharingGraph":
        """Soft parameter sharing (Duong et al., ACL 2015): one network per
        task, an L2 pull of strength ``lam`` between the copies at every stage."""
        return cls.from_partitions(tasks, backbone, [], l2=lam, **kw)

    @classmethod
    def branched(cls, tasks, backbone, partitions, **kw) -> "SharingGraph":
        """Branched multi-task network (Vandenhende et al. 2019; Lu et al. 2017):
        groups of tasks split off at different depths, one partition per stage.

        >>> g = SharingGraph.branched({"a": 1, "b": 1, "c": 1},
        ...     {"name": "mlp", "input_shape": [4], "widths": [8, 8, 8]}, ["a,b,c", "a,b|c"])
        >>> [len(p) for p in g.partitions()]
        [1, 2, 3]
        """
        return cls.from_partitions(tasks, backbone, partitions, **kw)

    @classmethod
    def from_share_depths(cls, tasks, backbone, depths: Mapping[tuple[str, str], int], *,
                          linkage: str = "average", **kw) -> "SharingGraph":
        """Build the branched graph closest to pairwise share depths.

        ``depths[(a, b)]`` asks tasks ``a`` and ``b`` to share the first
        ``depths[(a, b)]`` stages (missing pairs: 0). Any set of requests maps
        to a valid tree by :func:`share_partitions` (hierarchical clustering of
        the distances ``L - depth``, cut once per stage, so partitions are
        nested by construction and a valid tree maps to itself).

        >>> g = SharingGraph.from_share_depths({"a": 1, "b": 1, "c": 1},
        ...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, {("a", "b"): 2, ("b", "c"): 1})
        >>> g.partitions()
        ((('a', 'b', 'c'),), (('a', 'b'), ('c',)))
        """
        names = list(_task_dims(tasks))
        parts = share_partitions(names, depths, make_backbone(backbone).n_stages, linkage=linkage)
        return cls.from_partitions(tasks, backbone, parts, **kw)

    # -------------------------------------------------------- canonical / json
    def canonical(self) -> "SharingGraph":
        """The same graph with node ids derived from (stage, tasks) alone."""
        mapping = {}
        for n, d in self.g.nodes(data=True):
            if d["kind"] in ("block", "moe"):
                order = {t: i for i, t in enumerate(self.tasks)}
                mapping[n] = self.node_id(d["stage"], sorted(d["tasks"], key=order.__getitem__))
            elif d["kind"] == "head":
                mapping[n] = f"head:{d['task']}"
            else:
                mapping[n] = "input"
        h = nx.relabel_nodes(self.g, mapping, copy=True)
        out = nx.DiGraph(**h.graph)
        for n in sorted(h.nodes):
            d = dict(h.nodes[n])
            if "tasks" in d:
                order = {t: i for i, t in enumerate(self.tasks)}
                d["tasks"] = tuple(sorted(d["tasks"], key=order.__getitem__))
            out.add_node(n, **d)
        oriented = []
        for u, v, d in h.edges(data=True):
            a, b = (u, v) if d["kind"] == "flow" else tuple(sorted((u, v)))
            oriented.append((a, b, dict(d)))
        for a, b, d in sorted(oriented, key=lambda e: (e[0], e[1])):
            out.add_edge(a, b, **d)
        return SharingGraph(out, validate=False)

    def to_dict(self) -> dict[str, Any]:
        """networkx node-link data of the canonical graph (JSON-ready)."""
        data = nx.node_link_data(self.canonical().g, edges="edges")
        for n in data["nodes"]:
            if "tasks" in n:
                n["tasks"] = list(n["tasks"])
        data["graph"] = {**data["graph"], "tasks": list(self.tasks)}
        return data

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SharingGraph":
        try:
            g = nx.node_link_graph(dict(data), directed=True, multigraph=False, edges="edges")
        except (KeyError, TypeError, nx.NetworkXError) as e:
            raise GraphError(f"not a sharing graph in node-link form: {e!r}") from None
        for field in ("tasks", "backbone"):
            if field not in g.graph:
                raise GraphError(f"graph field {field!r} is missing")
        for n, d in g.nodes(data=True):
            if "tasks" in d and isinstance(d["tasks"], list):
                d["tasks"] = tuple(d["tasks"])
        try:
            return cls(g)
        except (KeyError, TypeError) as e:
            raise GraphError(f"malformed sharing graph: missing or bad field {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "SharingGraph":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise GraphError(f"not valid JSON: {e}") from None
        except RecursionError:  # json nests Python calls: a hostile file nested thousands deep
            raise GraphError("not a sharing graph: JSON nested too deeply") from None

    def key(self) -> str:
        """Hash of the canonical form: equal for graphs equal up to group labels/order."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:20]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharingGraph) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.key())

    # ------------------------------------------------------------ cost model
    def _streams_in(self) -> dict[str, int]:
        """Streams entering each node (1 when all its tasks see the same input)."""
        out_streams: dict[str, int] = {"input": 1}
        per_task_after: set[str] = set()  # tasks whose activation is per-task after a stage
        k_in: dict[str, int] = {}
        stitched = {n for u, v, _ in self.soft_edges("stitch") for n in (u, v)}
        for s in range(self.n_stages):
            for n in self.nodes_at(s):
                d = self.g.nodes[n]
                p = self.flow_parent(n)
                split = out_streams[p] > 1 or any(t in per_task_after for t in d["tasks"])
                k_in[n] = len(d["tasks"]) if split and len(d["tasks"]) > 1 else 1
                cond = d["kind"] == "moe" or d.get("conditioning", "none") != "none" or n in stitched
                out_streams[n] = len(d["tasks"]) if (k_in[n] > 1 or cond) else 1
            per_task_after = {t for n in self.nodes_at(s) if out_streams[n] > 1 for t in self.g.nodes[n]["tasks"]}
        return k_in

    def n_params(self) -> int:
        """Trainable parameters of the compiled network (heads included).

        >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8]}
        >>> SharingGraph.shared_bottom({"a": 1, "b": 1}, bb).n_params()  # (4*8+8) + 2*(8+1)
        58
        """
        total = sum(self.node_params(n) for n in self.g.nodes)
        for comp in self.stitch_components():
            total += len(comp) ** 2
        return total

    def node_params(self, node: str) -> int:
        """Trainable parameters of one node (0 for the input; cross-stitch units not included).

        >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8]}
        >>> SharingGraph.shared_bottom({"a": 1, "b": 1}, bb).node_params("s0:a+b")
        40
        """
        bb, z, d = self.backbone, self.z_dim, self.g.nodes[node]
        if d["kind"] == "block":
            s, c = d["stage"], d.get("conditioning", "none")
            w = bb.out_features(s)
            extra = {"film": z * 2 * w + 2 * w, "gate": z * w + w}.get(c, 0)
            return bb.block_params(s, z if c == "concat" else 0) + extra
        if d["kind"] == "moe":
            s = d["stage"]
            return d["experts"] * bb.block_params(s) + len(d["tasks"]) * (bb.in_features(s) * d["experts"] + d["experts"])
        if d["kind"] == "head":
            return bb.head_in * d["out_dim"] + d["out_dim"]
        return 0

    def stitch_components(self) -> list[tuple[str, ...]]:
        """Tasks mixed together by cross-stitch units, one tuple per (stage, component), in stage order."""
        out = []
        for s in range(self.n_stages):
            h = nx.Graph([(u, v) for u, v, _ in self.soft_edges("stitch") if self.g.nodes[u]["stage"] == s])
            order = {t: i for i, t in enumerate(self.tasks)}
            for comp in sorted(nx.connected_components(h), key=lambda c: min(c)):
                ts = sorted((t for n in comp for t in self.g.nodes[n]["tasks"]), key=order.__getitem__)
                out.append(tuple(ts))
        return out

    def flops(self) -> int:
        """FLOPs (2 x multiply-accumulates) of one forward pass for one example."""
        bb, z = self.backbone, self.z_dim
        k_in = self._streams_in()
        total = 0
        for n, d in self.g.nodes(data=True):
            if d["kind"] == "block":
                s, c = d["stage"], d.get("conditioning", "none")
                # film/gate scale the block output per task: the block itself runs once per input stream
                k = len(d["tasks"]) if c == "concat" else k_in[n]
                total += k * bb.block_flops(s, z if c == "concat" else 0)
                if c in ("film", "gate"):
                    total += len(d["tasks"]) * bb.out_features(s) * bb.spatial(s) * 2
            elif d["kind"] == "moe":
                s = d["stage"]
                total += k_in[n] * d["experts"] * bb.block_flops(s)
                total += len(d["tasks"]) * 2 * bb.in_features(s) * d["experts"]
                total += len(d["tasks"]) * 2 * d["experts"] * bb.out_features(s) * bb.spatial(s)
            elif d["kind"] == "head":
                total += 2 * bb.head_in * d["out_dim"]
        for comp in self.stitch_components():
            total += 2 * len(comp) ** 2  # per feature is negligible; count the mixing matrix
        return total

    # ---------------------------------------------------------------- display
    def describe(self) -> str:
        """A few lines a person can read: one line per stage.

        >>> print(SharingGraph.shared_bottom({"a": 1, "b": 1},
        ...       {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, 1).describe())
        stage 0 (mlp 4->8): [a b]
        stage 1 (mlp 8->8): [a] [b]
        heads: a(1) b(1)
        """
        lines = []
        for s in range(self.n_stages):
            parts = []
            for n in self.nodes_at(s):
                d = self.g.nodes[n]
                tag = " ".join(d["tasks"])
                if d["kind"] == "moe":
                    tag += f" | moe x{d['experts']}"
                elif d.get("conditioning", "none") != "none":
                    tag += f" | {d['conditioning']}"
                parts.append(f"[{tag}]")
            soft = []
            l2 = [d["lam"] for u, v, d in self.soft_edges("l2") if self.g.nodes[u]["stage"] == s]
            if l2:
                soft.append(f"l2 λ={max(l2):g}")
            if any(self.g.nodes[u]["stage"] == s for u, _, _ in self.soft_edges("stitch")):
                soft.append("cross-stitch")
            bb = self.backbone
            line = f"stage {s} ({bb.name} {bb.in_features(s)}->{bb.out_features(s)}): " + " ".join(parts)
            lines.append(line + (f"  ~ {', '.join(soft)}" if soft else ""))
        heads = " ".join(f"{t}({self.g.nodes[self.head(t)]['out_dim']})" for t in self.tasks)
        lines.append(f"heads: {heads}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SharingGraph(tasks={list(self.tasks)}, partitions={self.partitions()}, key={self.key()!r})"

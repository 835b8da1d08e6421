"""Building a sharing graph: task partitions and share depths -> a networkx ``DiGraph``.

Every reference constructor of :class:`~sharesearch.graph.SharingGraph` comes
down to :func:`from_partitions` (bound there as the classmethod
``SharingGraph.from_partitions``): one task partition per stage (each
refining the one before), per-stage conditioning, L2 pull, cross-stitch and
MoE experts. Pairwise share-depth requests become such partitions through
:func:`share_partitions`. ``sharesearch.graph`` re-exports
:func:`parse_partition`, :func:`share_partitions` and ``LINKAGES``.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.from_partitions({"a": 1, "b": 2}, {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, ["a,b"])
>>> sorted(g.g.nodes)
['head:a', 'head:b', 'input', 's0:a+b', 's1:a', 's1:b']
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx

from ._graph_check import GraphError
from .backbones import Backbone, make_backbone

if TYPE_CHECKING:  # annotations only: graph imports this module
    from sharesearch.graph import SharingGraph

__all__ = ["LINKAGES", "parse_partition", "share_partitions", "task_dims", "node_id", "from_partitions"]

LINKAGES = ("average", "single")


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


def task_dims(tasks: Mapping[str, int] | Sequence[Any]) -> dict[str, int]:
    """Accept ``{name: out_dim}`` or a sequence of objects with ``name``/``out_dim``.

    >>> task_dims({"a": 1, "b": "3"})
    {'a': 1, 'b': 3}
    """
    if isinstance(tasks, Mapping):
        dims = {str(k): int(v) for k, v in tasks.items()}
    else:
        dims = {t.name: int(t.out_dim) for t in tasks}
    if len(dims) < 1:
        raise GraphError("tasks: at least one task is needed")
    return dims


def _per_stage(value: Any, n: int, field: str) -> list[Any]:
    """``value`` repeated for ``n`` stages, or a list of ``n`` per-stage values checked for its length."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise GraphError(f"field {field!r}: expected {n} per-stage values, got {len(value)}")
        return list(value)
    return [value] * n


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


def node_id(stage: int, tasks: Iterable[str]) -> str:
    """Canonical id of the node of ``stage`` serving ``tasks``.

    >>> node_id(1, ["a", "b.x"])
    's1:a+b.x'
    """
    return f"s{stage}:" + "+".join(tasks)


def from_partitions(
    cls: type[SharingGraph],
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
) -> SharingGraph:
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

    Returns
    -------
    SharingGraph
        ``cls`` of the built ``DiGraph``, validated by its constructor.

    Raises :class:`GraphError` for too many partitions, a per-stage list of
    the wrong length, l2 and cross-stitch at one stage, or a partition that
    does not refine the one before.

    >>> from sharesearch.graph import SharingGraph
    >>> SharingGraph.from_partitions({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [4], "widths": [8]}, [],
    ...                              l2=0.5).soft_edges("l2")
    [('s0:a', 's0:b', {'kind': 'l2', 'lam': 0.5})]
    """
    dims = task_dims(tasks)
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
    prev: dict[str, str] = {t: "input" for t in names}  # task -> its node of the stage before
    for s, part in enumerate(parts):
        _add_stage(g, s, part, prev, cond[s], lams[s], stitch[s], experts[s], expert_dropout)
    for t in names:
        g.add_node(f"head:{t}", kind="head", task=t, out_dim=dims[t])
        g.add_edge(prev[t], f"head:{t}", kind="flow")
    return cls(g)


def _add_stage(g: nx.DiGraph, s: int, part: Sequence[tuple[str, ...]], prev: dict[str, str], cond: str,
               lam: float, stitch: bool, experts: int, expert_dropout: float) -> None:
    """Add stage ``s``'s nodes (MoE for a group of >1 task when ``experts``), their flow edges
    from ``prev`` and the soft edges between its blocks; move ``prev`` to this stage."""
    ids = []
    for grp in part:
        nid = node_id(s, grp)
        if experts and len(grp) > 1:
            g.add_node(nid, kind="moe", stage=s, tasks=tuple(grp), experts=int(experts),
                       expert_dropout=float(expert_dropout))
        else:
            g.add_node(nid, kind="block", stage=s, tasks=tuple(grp), conditioning=cond if len(grp) > 1 else "none")
        parents = {prev[t] for t in grp}
        if len(parents) != 1:
            raise GraphError(f"stage {s}: group {list(grp)} does not refine stage {s - 1}: "
                             f"its tasks come from {sorted(parents)}")
        g.add_edge(parents.pop(), nid, kind="flow")
        ids.append(nid)
    blocks = [n for n in ids if g.nodes[n]["kind"] == "block"]
    for a, b in itertools.combinations(blocks, 2):
        if lam and g.nodes[a]["conditioning"] == g.nodes[b]["conditioning"]:
            g.add_edge(a, b, kind="l2", lam=float(lam))
        if stitch:
            g.add_edge(a, b, kind="stitch")
    for grp, nid in zip(part, ids):
        for t in grp:
            prev[t] = nid

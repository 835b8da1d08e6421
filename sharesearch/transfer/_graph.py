"""Graph surgery for transfer: a sharing graph without one task, and with a new task attached.

Torch-free. :func:`drop_task` removes a task from every block it served (a
block left with no task disappears, and with it its soft edges and, since
partitions are nested, its whole subtree) and removes its head. The rest of
the graph -- conditioning, MoE experts, L2 and cross-stitch edges, the task
descriptors of the remaining tasks -- is kept, so the reduced graph is the
same architecture over ``T - 1`` tasks.

:func:`attach_point` chooses where a new task joins a trained graph, and
:func:`with_task` builds the graph with the new task on that path: it joins
every block from stage 0 down to the attach node and has blocks of its own
(plain, unconditioned) after it, then its head.

**The attach rule.** In this order:

1. *closeness* given (e.g. one row of the study's symmetrised affinity,
   ``{task: closeness}``; missing or non-finite entries count 0): the
   deepest *shared* node (serving two or more tasks) of highest mean
   closeness to its tasks, if that mean is above 0;
2. else, when the held-out task's *full graph* is given: where that topology
   put it -- its deepest share depth ``D`` with any other task
   (:meth:`SharingGraph.share_depth`), the node of stage ``D - 1`` it shared
   with them (so shared-bottom joins the whole trunk, MMoE its MoE stage);
3. else (or when ``D`` is 0, or no shared node has a positive mean) the
   **trunk root**: the deepest node serving every remaining task, or, when no
   node does, the stage-0 node serving the most tasks.

Example
-------
>>> g = SharingGraph.from_partitions({"a": 1, "b": 1, "c": 1},
...     {"name": "mlp", "input_shape": [4], "widths": [8, 8, 8]}, ["a,b,c", "a,b|c"])
>>> r = drop_task(g, "b")
>>> r.tasks, r.partitions()
(('a', 'c'), ((('a', 'c'),), (('a',), ('c',)), (('a',), ('c',))))
>>> attach_point(r, full=g, task="b")
AttachPoint(node='s1:a', stage=1, tasks=('a',), rule='topology')
>>> attach_point(r, closeness={"a": 2.0, "c": 1.0})
AttachPoint(node='s0:a+c', stage=0, tasks=('a', 'c'), rule='closeness')
>>> with_task(r, "b", 1, attach_point(r)).partitions()[0]
(('a', 'c', 'b'),)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..graph import GraphError, SharingGraph

__all__ = ["AttachPoint", "drop_task", "attach_point", "with_task"]


@dataclass(frozen=True)
class AttachPoint:
    """Where a new task joins a trained graph."""

    node: str  # id of the block/MoE node of the reduced graph the new task joins (its last shared node)
    stage: int  # that node's stage: the new task has blocks of its own after it
    tasks: tuple[str, ...]  # the node's tasks in the reduced graph
    rule: str  # "closeness" (rule 1) | "topology" (rule 2) | "trunk root" (rule 3)


def drop_task(graph: SharingGraph, task: str) -> SharingGraph:
    """``graph`` without ``task``: removed from every block, empty blocks and its head dropped.

    Raises :class:`~sharesearch.graph.GraphError` for an unknown task or the last task.

    >>> g = SharingGraph.mmoe({"a": 1, "b": 1, "c": 2}, {"name": "mlp", "input_shape": [4], "widths": [8, 8]})
    >>> drop_task(g, "c").describe().splitlines()[0]
    'stage 0 (mlp 4->8): [a b | moe x4]'
    """
    if task not in graph.tasks:
        raise GraphError(f"drop_task: unknown task {task!r}; tasks are {list(graph.tasks)}")
    if len(graph.tasks) == 1:
        raise GraphError(f"drop_task: {task!r} is the graph's only task")
    h = graph.canonical().g.copy()
    h.remove_node(graph.head(task))
    for n in [n for n, d in h.nodes(data=True) if d["kind"] in ("block", "moe") and task in d["tasks"]]:
        rest = tuple(t for t in h.nodes[n]["tasks"] if t != task)
        if rest:
            h.nodes[n]["tasks"] = rest
        else:
            h.remove_node(n)  # its soft edges go with it
    h.graph["tasks"] = [t for t in graph.tasks if t != task]
    emb = h.graph.get("task_embedding", "onehot")
    if emb != "onehot":
        h.graph["task_embedding"] = {t: list(v) for t, v in emb.items() if t != task}
    return SharingGraph(h).canonical()


def attach_point(reduced: SharingGraph, closeness: Mapping[str, float] | None = None, *,
                 full: SharingGraph | None = None, task: str | None = None) -> AttachPoint:
    """The node a new task joins (the module docstring states the rule).

    ``closeness`` maps tasks of ``reduced`` to how close the new task is to
    them (higher: closer); ``full`` and ``task`` name the topology the task
    was held out of and the task (rule 2).

    >>> g = SharingGraph.from_partitions({"a": 1, "b": 1, "c": 1},
    ...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, ["a,b|c"])
    >>> attach_point(g).node, attach_point(g, {"c": 0.5}).rule
    ('s0:a+b', 'trunk root')
    """
    data = reduced.g.nodes
    nodes = [n for s in range(reduced.n_stages) for n in reduced.nodes_at(s)]
    if closeness:
        best, best_score = None, 0.0
        for n in nodes:  # stage by stage: a deeper node wins a tie
            ts = data[n]["tasks"]
            if len(ts) < 2:
                continue
            vals = [float(closeness.get(t, 0.0)) for t in ts]
            score = sum(v for v in vals if math.isfinite(v)) / len(ts)
            if score > 0 and score >= best_score - 1e-9:
                best, best_score = n, max(score, best_score)
        if best is not None:
            return _point(reduced, best, "closeness")
    elif full is not None and task is not None:
        depth = {t: full.share_depth(task, t) for t in full.tasks if t != task}
        near = max(depth, key=depth.__getitem__)
        if depth[near] > 0:
            return _point(reduced, reduced.node_of(near, depth[near] - 1), "topology")
    every = [n for n in nodes if len(data[n]["tasks"]) == len(reduced.tasks)]
    root = every[-1] if every else max(reduced.nodes_at(0), key=lambda n: len(data[n]["tasks"]))
    return _point(reduced, root, "trunk root")


def _point(graph: SharingGraph, node: str, rule: str) -> AttachPoint:
    d = graph.g.nodes[node]
    return AttachPoint(node=node, stage=int(d["stage"]), tasks=tuple(d["tasks"]), rule=rule)


def with_task(reduced: SharingGraph, task: str, out_dim: int, attach: AttachPoint) -> SharingGraph:
    """``reduced`` with a new ``task`` (last in task order) joining ``attach``'s path.

    Existing node ids are kept, so a network compiled from the result can take
    the reduced network's weights node by node. The task descriptors become
    explicit vectors of the reduced graph's size (one-hot rows for one-hot
    graphs), the new task's the mean of the attach node's tasks': every
    conditioned block keeps its shape, and the new descriptor can be learned.
    """
    if task in reduced.tasks:
        raise GraphError(f"with_task: task {task!r} is already in the graph")
    h = reduced.g.copy()
    path, n = [], attach.node
    while n != "input":
        path.append(n)
        n = reduced.flow_parent(n)
    for n in path:
        h.nodes[n]["tasks"] = tuple(h.nodes[n]["tasks"]) + (task,)
    prev = attach.node
    for s in range(attach.stage + 1, reduced.n_stages):
        nid = SharingGraph.node_id(s, [task])
        h.add_node(nid, kind="block", stage=s, tasks=(task,), conditioning="none")
        h.add_edge(prev, nid, kind="flow")
        prev = nid
    h.add_node(f"head:{task}", kind="head", task=task, out_dim=int(out_dim))
    h.add_edge(prev, f"head:{task}", kind="flow")
    rows = dict(zip(reduced.tasks, reduced.task_embedding()))
    anchor = [rows[t] for t in attach.tasks]
    new = [sum(col) / len(anchor) for col in zip(*anchor)]
    h.graph["tasks"] = list(reduced.tasks) + [task]
    h.graph["task_embedding"] = {**{t: list(v) for t, v in rows.items()}, task: new}
    return SharingGraph(h)

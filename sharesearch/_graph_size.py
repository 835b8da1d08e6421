"""The cost model of a sharing graph: trainable parameters, forward FLOPs and streams.

Each function takes the :class:`~sharesearch.graph.SharingGraph` and reads its
backbone's arithmetic (``block_params``, ``block_flops``, feature sizes); the
graph's methods ``n_params``, ``node_params``, ``flops``,
``stitch_components`` and ``_streams_in`` delegate here. The compiler
(``sharesearch.plan``) keeps one stream per node while the activation is the
same for all its tasks and one stream per task once conditioning, an MoE gate
or a cross-stitch makes them differ; :func:`streams_in` is that rule, and
:func:`flops` counts by it.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [4], "widths": [8, 8, 8]}, 2,
...                                conditioning="film")
>>> streams_in(g)  # FiLM makes stage 0's output per task: stage 1 runs once per task
{'s0:a+b': 1, 's1:a+b': 2, 's2:a': 1, 's2:b': 1}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:  # annotations only: graph imports this module
    from sharesearch.graph import SharingGraph

__all__ = ["streams_in", "node_params", "n_params", "stitch_components", "flops"]


def streams_in(graph: SharingGraph) -> dict[str, int]:
    """Streams entering each block/MoE node (1 when all its tasks see the same input)."""
    out_streams: dict[str, int] = {"input": 1}
    per_task_after: set[str] = set()  # tasks whose activation is per-task after a stage
    k_in: dict[str, int] = {}
    stitched = {n for u, v, _ in graph.soft_edges("stitch") for n in (u, v)}
    for s in range(graph.n_stages):
        for n in graph.nodes_at(s):
            d = graph.g.nodes[n]
            p = graph.flow_parent(n)
            split = out_streams[p] > 1 or any(t in per_task_after for t in d["tasks"])
            k_in[n] = len(d["tasks"]) if split and len(d["tasks"]) > 1 else 1
            cond = d["kind"] == "moe" or d.get("conditioning", "none") != "none" or n in stitched
            out_streams[n] = len(d["tasks"]) if (k_in[n] > 1 or cond) else 1
        per_task_after = {t for n in graph.nodes_at(s) if out_streams[n] > 1 for t in graph.g.nodes[n]["tasks"]}
    return k_in


def n_params(graph: SharingGraph) -> int:
    """Trainable parameters of the compiled network: every node, plus a T x T matrix per cross-stitch unit."""
    total = sum(node_params(graph, n) for n in graph.g.nodes)
    for comp in stitch_components(graph):
        total += len(comp) ** 2
    return total


def node_params(graph: SharingGraph, node: str) -> int:
    """Trainable parameters of one node (0 for the input; cross-stitch units not included).

    A block holds its backbone stage (wider by ``z`` inputs under concat) plus
    the FiLM (scale and shift) or gate generator from ``z``; an MoE holds its
    experts and one softmax gate per task; a head is a linear layer.
    """
    bb, z, d = graph.backbone, graph.z_dim, graph.g.nodes[node]
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


def stitch_components(graph: SharingGraph) -> list[tuple[str, ...]]:
    """Tasks mixed together by cross-stitch units, one tuple per (stage, component), in stage order."""
    out = []
    for s in range(graph.n_stages):
        h = nx.Graph([(u, v) for u, v, _ in graph.soft_edges("stitch") if graph.g.nodes[u]["stage"] == s])
        order = {t: i for i, t in enumerate(graph.tasks)}
        for comp in sorted(nx.connected_components(h), key=lambda c: min(c)):
            ts = sorted((t for n in comp for t in graph.g.nodes[n]["tasks"]), key=order.__getitem__)
            out.append(tuple(ts))
    return out


def flops(graph: SharingGraph) -> int:
    """FLOPs (2 x multiply-accumulates) of one forward pass for one example.

    A block runs once per input stream (once per task under concat, whose
    input differs per task); FiLM and gate add a per-task scaling of its
    output; an MoE runs every expert per input stream and mixes them per task.
    """
    bb, z = graph.backbone, graph.z_dim
    k_in = streams_in(graph)
    total = 0
    for n, d in graph.g.nodes(data=True):
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
    for comp in stitch_components(graph):
        total += 2 * len(comp) ** 2  # per feature is negligible; count the mixing matrix
    return total

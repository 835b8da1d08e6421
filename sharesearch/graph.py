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

The class is the front; three private modules do the long work: the checks
and :class:`GraphError` in ``_graph_check``, the construction from partitions
and share depths in ``_graph_build``, parameter and FLOP counting in ``_graph_size``.

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

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from . import _graph_build, _graph_size
from ._graph_build import LINKAGES, node_id, parse_partition, share_partitions, task_dims
from ._graph_check import CONDITIONINGS, GraphError, check_graph
from .backbones import Backbone, make_backbone

__all__ = ["SharingGraph", "GraphError", "CONDITIONINGS", "LINKAGES", "parse_partition", "share_partitions"]


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
        """Raise :class:`GraphError` naming the first problem found (see :mod:`sharesearch._graph_check`)."""
        check_graph(self)

    # ------------------------------------------------------------ construction
    # from_partitions(tasks, backbone, partitions, *, conditioning, l2, cross_stitch, moe, expert_dropout,
    # task_embedding): one task partition per stage; every constructor below comes down to it.
    from_partitions = classmethod(_graph_build.from_partitions)

    @staticmethod
    def node_id(stage: int, tasks: Iterable[str]) -> str:
        """Canonical id of the node of ``stage`` serving ``tasks``."""
        return node_id(stage, tasks)

    @classmethod
    def independent(cls, tasks, backbone, **kw) -> "SharingGraph":
        """One separate network per task (the single-task baselines)."""
        return cls.from_partitions(tasks, backbone, [], **kw)

    @classmethod
    def shared_bottom(cls, tasks, backbone, shared_stages: int | None = None, **kw) -> "SharingGraph":
        """Hard parameter sharing (Caruana 1997): one trunk for the first
        ``shared_stages`` stages (default: all), task-specific after."""
        names = list(task_dims(tasks))
        L = make_backbone(backbone).n_stages
        k = L if shared_stages is None else shared_stages
        return cls.from_partitions(tasks, backbone, [[names]] * k, **kw)

    @classmethod
    def mmoe(cls, tasks, backbone, experts: int = 4, moe_stages: int = 1, expert_dropout: float = 0.0,
             **kw) -> "SharingGraph":
        """Multi-gate mixture of experts (Ma et al., KDD 2018): the first
        ``moe_stages`` stages are shared experts with a softmax gate per task."""
        names = list(task_dims(tasks))
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
        names = list(task_dims(tasks))
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
        return _graph_size.streams_in(self)

    def n_params(self) -> int:
        """Trainable parameters of the compiled network (heads included).

        >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8]}
        >>> SharingGraph.shared_bottom({"a": 1, "b": 1}, bb).n_params()  # (4*8+8) + 2*(8+1)
        58
        """
        return _graph_size.n_params(self)

    def node_params(self, node: str) -> int:
        """Trainable parameters of one node (0 for the input; cross-stitch units not included).

        >>> bb = {"name": "mlp", "input_shape": [4], "widths": [8]}
        >>> SharingGraph.shared_bottom({"a": 1, "b": 1}, bb).node_params("s0:a+b")
        40
        """
        return _graph_size.node_params(self, node)

    def stitch_components(self) -> list[tuple[str, ...]]:
        """Tasks mixed together by cross-stitch units, one tuple per (stage, component), in stage order."""
        return _graph_size.stitch_components(self)

    def flops(self) -> int:
        """FLOPs (2 x multiply-accumulates) of one forward pass for one example."""
        return _graph_size.flops(self)

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

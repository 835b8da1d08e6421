"""Exports: a sharing graph as JSON / GraphML / DOT / Mermaid, and a trained model.

Graph formats
-------------
* :func:`to_json` -- the graph's own canonical node-link JSON
  (:meth:`SharingGraph.to_json`), readable back with
  :meth:`SharingGraph.from_json`.
* :func:`to_graphml` -- written by networkx's own writer; tuple, list and dict
  attributes (task tuples, the backbone, the task embedding) are stored as
  JSON strings, since GraphML holds scalars only.
* :func:`to_dot` -- Graphviz DOT text (written here; pydot is not needed):
  every id and label is a double-quoted string with ``\\`` and ``"`` escaped.
  DOT and Mermaid draw soft links (cross-stitch, L2) as one labelled note
  per stage tied to the linked blocks, not one labelled edge per pair.
* :func:`to_mermaid` -- a Mermaid ``flowchart LR`` with generated safe node
  ids (``n0``, ``n1``, ...) and quoted labels whose special characters are
  Mermaid entity codes (``#quot;``, ``#lt;`` ...).

Models
------
The model folder lives in :mod:`sharesearch.model_folder` (its files are
listed there); :func:`save_model`, :func:`load_model`, :func:`predict`,
:class:`LoadedModel` and the folder's errors are importable from here too.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, 1)
>>> print(to_mermaid(g).splitlines()[0])
flowchart LR
>>> '"s0:a+b" -> "s1:a"' in to_dot(g)
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from .graph import SharingGraph
from .plan import soft_groups
from .model_folder import (GRAPH_FILE, MODEL_FILE, PREPROCESSING_FILE, PROVENANCE_FILE, TASKS_FILE, LoadedModel,
                           ModelFileMissingError, ModelFolderError, load_model, predict, save_model)

__all__ = ["to_json", "to_graphml", "to_dot", "to_mermaid", "save_model", "load_model", "predict", "LoadedModel",
           "ModelFolderError", "ModelFileMissingError", "MODEL_FILE", "GRAPH_FILE", "TASKS_FILE",
           "PREPROCESSING_FILE", "PROVENANCE_FILE"]


# ------------------------------------------------------------------ graphs
def to_json(graph: SharingGraph) -> str:
    """The canonical JSON of ``graph`` (indented); :meth:`SharingGraph.from_json` reads it back.

    >>> g = SharingGraph.independent({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> SharingGraph.from_json(to_json(g)) == g
    True
    """
    return graph.to_json(indent=2)


def _scalar(v: Any) -> Any:
    """A GraphML-storable value: scalars stay, everything else becomes JSON text."""
    if isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def to_graphml(graph: SharingGraph, path: str | Path) -> Path:
    """Write ``graph`` as GraphML with :func:`networkx.write_graphml`.

    Non-scalar attributes (``tasks`` tuples, ``backbone``, ``task_embedding``)
    are JSON strings. Returns the path.

    >>> import tempfile, os
    >>> g = SharingGraph.independent({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> p = to_graphml(g, os.path.join(tempfile.mkdtemp(), "g.graphml"))
    >>> sorted(nx.read_graphml(p).nodes)
    ['head:a', 'input', 's0:a']
    """
    g = graph.canonical().g
    h = nx.DiGraph()
    h.graph.update({k: _scalar(v) for k, v in g.graph.items()})
    for n, d in g.nodes(data=True):
        h.add_node(n, **{k: _scalar(v) for k, v in d.items() if v is not None})
    for u, v, d in g.edges(data=True):
        h.add_edge(u, v, **{k: _scalar(x) for k, x in d.items() if x is not None})
    path = Path(path)
    nx.write_graphml(h, path)
    return path


def _dq(s: Any) -> str:
    """A DOT double-quoted string: backslash and quote escaped, newlines as ``\\n``."""
    s = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{s}"'


def _node_label(graph: SharingGraph, n: str) -> str:
    d = graph.g.nodes[n]
    if d["kind"] == "input":
        return f"input {list(graph.backbone.input_shape)}"
    if d["kind"] == "head":
        return f"head {d['task']} ({d['out_dim']})"
    tag = f"stage {d['stage']}: " + ", ".join(d["tasks"])
    if d["kind"] == "moe":
        tag += f" | MoE x{d['experts']}"
    elif d.get("conditioning", "none") != "none":
        tag += f" | {d['conditioning']}"
    return tag


def _soft_notes(graph: SharingGraph) -> list[tuple[int, str, list[str]]]:
    """One note per stage with soft links: ``(stage, label, linked blocks)``.

    Cross-stitch and L2 join every pair of sibling blocks, T(T-1)/2 links a
    stage; DOT and Mermaid draw one labelled note per stage tied to each
    linked block instead (GraphML keeps every edge: it is data). The graph
    refuses both kinds at one stage. The figure groups the same way
    (:func:`sharesearch.plan.soft_groups`).

    >>> g = SharingGraph.cross_stitch({"a": 1, "b": 1, "c": 1}, {"name": "mlp", "input_shape": [2], "widths": [3]})
    >>> _soft_notes(g)
    [(0, 'cross-stitch (3 blocks, 3 pairs)', ['s0:a', 's0:b', 's0:c'])]
    """
    out = []
    for grp in soft_groups(graph):
        pairs = f"({len(grp.blocks)} blocks, {len(grp.pairs)} pair" + ("s)" if len(grp.pairs) != 1 else ")")
        if grp.kind == "l2":
            lam = f"{grp.lams[0]:g}" if len(grp.lams) == 1 else f"{grp.lams[0]:g}..{grp.lams[-1]:g}"
            out.append((grp.stage, f"l2 λ={lam} {pairs}", list(grp.blocks)))
        else:
            out.append((grp.stage, f"cross-stitch {pairs}", list(grp.blocks)))
    return out


def to_dot(graph: SharingGraph) -> str:
    """Graphviz DOT text of ``graph``: one rank per stage; soft links as one labelled note per stage.

    The note (``"soft links stage <s>"``, a dashed note for L2, a dotted one
    for cross-stitch) sits in its stage's rank, tied by an undirected edge of
    the same style to each linked block.

    >>> g = SharingGraph.independent({'say "hi"': 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> '"head:say \\\\"hi\\\\""' in to_dot(g)
    True
    """
    g = graph.g
    lines = ["digraph sharing_graph {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    shape = {"input": "diamond", "block": "box", "moe": "box3d", "head": "ellipse"}
    lines.append(f"  {_dq('input')} [label={_dq(_node_label(graph, 'input'))}, shape=diamond];")
    notes = {s: (label, blocks) for s, label, blocks in _soft_notes(graph)}
    style = {s: "dashed" if label.startswith("l2") else "dotted" for s, (label, _) in notes.items()}
    for s in range(graph.n_stages):
        lines.append(f"  subgraph {_dq(f'stage_{s}')} {{")
        lines.append("    rank=same;")
        for n in graph.nodes_at(s):
            d = g.nodes[n]
            lines.append(f"    {_dq(n)} [label={_dq(_node_label(graph, n))}, shape={shape[d['kind']]}];")
        if s in notes:
            lines.append(f"    {_dq(f'soft links stage {s}')} [label={_dq(notes[s][0])}, shape=note, "
                         f"style={style[s]}];")
        lines.append("  }")
    lines.append(f"  subgraph {_dq('heads')} {{")
    lines.append("    rank=same;")
    for t in graph.tasks:
        n = graph.head(t)
        lines.append(f"    {_dq(n)} [label={_dq(_node_label(graph, n))}, shape=ellipse];")
    lines.append("  }")
    for u, v, d in g.edges(data=True):
        if d["kind"] == "flow":
            lines.append(f"  {_dq(u)} -> {_dq(v)};")
    for s, (_, blocks) in notes.items():
        for n in blocks:
            lines.append(f"  {_dq(f'soft links stage {s}')} -> {_dq(n)} [dir=none, style={style[s]}, "
                         "constraint=false];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_ENT = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;",
                "|": "#124;", "\n": " ", "\r": " "}


def _mq(s: Any) -> str:
    """A Mermaid quoted label: specials as entity codes (``#quot;`` ...), so nothing is parsed as markup."""
    return '"' + "".join(_MERMAID_ENT.get(c, c) for c in str(s)) + '"'


def to_mermaid(graph: SharingGraph) -> str:
    """A Mermaid ``flowchart LR`` of ``graph``; node ids are ``n0, n1, ...`` and labels are quoted.

    Soft links are one flag-shaped note per stage (ids ``soft0, soft1, ...``,
    by stage) tied with ``-.-`` to each linked block.

    >>> g = SharingGraph.independent({"a<b": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> print(to_mermaid(g))
    flowchart LR
      n0{"input [2]"}
      n1["stage 0: a#lt;b"]
      n2(["head a#lt;b (1)"])
      n0 --> n1
      n1 --> n2
    <BLANKLINE>
    """
    g = graph.g
    order = ["input"] + [n for s in range(graph.n_stages) for n in graph.nodes_at(s)] + \
        [graph.head(t) for t in graph.tasks]
    ids = {n: f"n{i}" for i, n in enumerate(order)}
    lines = ["flowchart LR"]
    for n in order:
        kind = g.nodes[n]["kind"]
        lab = _mq(_node_label(graph, n))
        if kind == "input":
            lines.append(f"  {ids[n]}{{{lab}}}")
        elif kind == "head":
            lines.append(f"  {ids[n]}([{lab}])")
        elif kind == "moe":
            lines.append(f"  {ids[n]}[[{lab}]]")
        else:
            lines.append(f"  {ids[n]}[{lab}]")
    for u, v, d in g.edges(data=True):
        if d["kind"] == "flow":
            lines.append(f"  {ids[u]} --> {ids[v]}")
    for s, label, blocks in _soft_notes(graph):
        lines.append(f"  soft{s}>{_mq(f'stage {s}: {label}')}]")
        lines += [f"  soft{s} -.- {ids[n]}" for n in blocks]
    return "\n".join(lines) + "\n"

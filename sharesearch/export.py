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


def _edge_label(d: dict) -> str:
    if d["kind"] == "l2":
        return f"l2 λ={d['lam']:g}"
    if d["kind"] == "stitch":
        return "cross-stitch"
    return ""


def to_dot(graph: SharingGraph) -> str:
    """Graphviz DOT text of ``graph``: one rank per stage, soft links undirected and dashed/dotted.

    >>> g = SharingGraph.independent({'say "hi"': 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
    >>> '"head:say \\\\"hi\\\\""' in to_dot(g)
    True
    """
    g = graph.g
    lines = ["digraph sharing_graph {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    shape = {"input": "diamond", "block": "box", "moe": "box3d", "head": "ellipse"}
    lines.append(f"  {_dq('input')} [label={_dq(_node_label(graph, 'input'))}, shape=diamond];")
    for s in range(graph.n_stages):
        lines.append(f"  subgraph {_dq(f'stage_{s}')} {{")
        lines.append("    rank=same;")
        for n in graph.nodes_at(s):
            d = g.nodes[n]
            lines.append(f"    {_dq(n)} [label={_dq(_node_label(graph, n))}, shape={shape[d['kind']]}];")
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
        else:
            style = "dashed" if d["kind"] == "l2" else "dotted"
            lines.append(f"  {_dq(u)} -> {_dq(v)} [dir=none, style={style}, constraint=false, "
                         f"label={_dq(_edge_label(d))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_ENT = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;",
                "|": "#124;", "\n": " ", "\r": " "}


def _mq(s: Any) -> str:
    """A Mermaid quoted label: specials as entity codes (``#quot;`` ...), so nothing is parsed as markup."""
    return '"' + "".join(_MERMAID_ENT.get(c, c) for c in str(s)) + '"'


def to_mermaid(graph: SharingGraph) -> str:
    """A Mermaid ``flowchart LR`` of ``graph``; node ids are ``n0, n1, ...`` and labels are quoted.

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
        else:
            lines.append(f"  {ids[u]} -.-|{_mq(_edge_label(d))}| {ids[v]}")
    return "\n".join(lines) + "\n"

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
:func:`save_model` writes a folder holding ``model.pt`` (a ``state_dict`` of
tensors only, :func:`torch.save`), ``graph.json`` and, when task specs are
given, ``tasks.json``. :func:`load_model` reads it back with
``torch.load(..., weights_only=True)`` -- nothing but tensors is unpickled --
and :func:`sharesearch.network.compile_graph`; it imports no search code.
:func:`predict` turns head outputs into predictions (probabilities, or values
in the target's original units).

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

from sharesearch.errors import SharesearchError

import json
from pathlib import Path
from typing import Any

import networkx as nx

from .graph import SharingGraph

__all__ = ["to_json", "to_graphml", "to_dot", "to_mermaid", "save_model", "load_model", "predict",
           "ModelFolderError", "ModelFileMissingError", "MODEL_FILE", "GRAPH_FILE", "TASKS_FILE"]

MODEL_FILE = "model.pt"
GRAPH_FILE = "graph.json"
TASKS_FILE = "tasks.json"


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


# ------------------------------------------------------------------ models
def save_model(net_or_state: Any, graph: SharingGraph, path_dir: str | Path, *, tasks=None) -> Path:
    """Write ``model.pt`` (tensors only), ``graph.json`` and optionally ``tasks.json`` into ``path_dir``.

    Parameters
    ----------
    net_or_state : torch.nn.Module or dict of str -> Tensor
        The compiled network of ``graph`` or its ``state_dict``.
    graph : SharingGraph
    path_dir : folder, created if missing
    tasks : list of TaskSpec, optional
        Stored so :func:`predict` can apply each task's output transform.

    Returns
    -------
    Path
        The folder.
    """
    import torch

    state = net_or_state.state_dict() if isinstance(net_or_state, torch.nn.Module) else dict(net_or_state)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"save_model: state entries must be tensors; not tensors: {bad[:5]}")
    out = Path(path_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, out / MODEL_FILE)
    (out / GRAPH_FILE).write_text(graph.to_json(indent=2))
    if tasks is not None:
        names = set(graph.tasks)
        specs = [t.to_dict() for t in tasks if t.name in names]
        missing = names - {s["name"] for s in specs}
        if missing:
            raise SharesearchError(f"save_model: no TaskSpec for tasks {sorted(missing)}")
        (out / TASKS_FILE).write_text(json.dumps(specs, indent=2))
    elif (out / TASKS_FILE).exists():
        (out / TASKS_FILE).unlink()  # do not leave specs of an older model beside this one
    return out


class ModelFolderError(SharesearchError):
    """A folder :func:`load_model` cannot use; one line naming the file and what is wrong with it."""


class ModelFileMissingError(ModelFolderError, FileNotFoundError):
    """The folder lacks ``model.pt`` or ``graph.json`` (also a :class:`FileNotFoundError`)."""


def load_model(path_dir: str | Path, map_location: Any = "cpu"):
    """Load a model written by :func:`save_model`, in eval mode, ready for :func:`predict`.

    Only tensors are unpickled (``torch.load(weights_only=True)``); a file
    holding anything else is refused. The folder is checked before a network
    is built: both files present and readable, the graph's parameters exactly
    the weights' names and shapes, every weight finite. Any damage raises
    :class:`ModelFolderError` (:class:`ModelFileMissingError` for a missing
    file). The task specs of ``tasks.json``, when present, are attached as
    ``net.task_specs``.

    Returns
    -------
    sharesearch.network.MultiTaskNet

    Examples
    --------
    >>> import tempfile
    >>> load_model(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sharesearch.export.ModelFileMissingError: load_model: .../model.pt is missing (expected a folder written by save_model)
    """
    import torch

    from .network import compile_graph

    d = Path(path_dir)
    for f in (MODEL_FILE, GRAPH_FILE):
        if not (d / f).is_file():
            raise ModelFileMissingError(f"load_model: {d / f} is missing (expected a folder written by save_model)")
    graph = _read_graph(d / GRAPH_FILE)
    state = _read_weights(d / MODEL_FILE, map_location)
    net = compile_graph(graph, seed=0)
    _check_weights_fit(net.state_dict(), state, d)
    net.load_state_dict(state, strict=True)
    net.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    net.eval()
    net.task_specs = _read_tasks(d / TASKS_FILE) if (d / TASKS_FILE).is_file() else None
    return net


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text if len(text) <= limit else text[:limit] + "..."


def _read_graph(path: Path) -> SharingGraph:
    try:
        return SharingGraph.from_dict(json.loads(path.read_bytes()))
    except RecursionError:
        raise ModelFolderError(f"load_model: {path}: JSON nested too deeply to be a sharing graph") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError and GraphError are ValueErrors
        raise ModelFolderError(f"load_model: {path}: not a sharing graph ({_first_line(e)})") from None


def _read_weights(path: Path, map_location: Any) -> dict:
    """The state_dict in ``path``: tensors only (``weights_only``), every floating one finite."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise ModelFolderError(f"load_model: {path}: cannot read the weights as tensors only "
                               f"({_first_line(e)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFolderError(f"load_model: {path} is not a state_dict of tensors")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelFolderError(f"load_model: {path}: weights {bad[0]!r} hold NaN or infinite values "
                               f"({len(bad)} of {len(state)} tensors)")
    return state


def _check_weights_fit(expected: dict, state: dict, d: Path) -> None:
    """The graph's parameters and buffers are exactly the weights' names and shapes."""
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)]
    if missing or extra or shapes:
        what = (f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}" if extra else
                f"{shapes[0]!r} is {list(state[shapes[0]].shape)} in the weights, {list(expected[shapes[0]].shape)} "
                "in the graph")
        raise ModelFolderError(f"load_model: {d / GRAPH_FILE} does not match {d / MODEL_FILE}: {what} "
                               f"({len(missing)} missing, {len(extra)} unexpected, {len(shapes)} of another shape)")


def _read_tasks(path: Path) -> list:
    from .tasks import TaskSpec

    try:
        return [TaskSpec.from_dict(s) for s in json.loads(path.read_bytes())]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"load_model: {path}: not a list of task specs ({_first_line(e)})") from None


def predict(net, x, tasks=None) -> dict:
    """Predictions of every task in the units a person expects.

    * binary: ``P(y = 1)``, shape ``[B]`` (sigmoid of the logit);
    * multiclass: class probabilities, shape ``[B, n_classes]`` (softmax);
    * regression: the value in the target's original units, shape ``[B]``
      (``out * target_std + target_mean``).

    Parameters
    ----------
    net : MultiTaskNet
    x : Tensor
    tasks : list of TaskSpec, optional
        Defaults to ``net.task_specs`` (set by :func:`load_model` from ``tasks.json``).

    >>> import torch
    >>> from sharesearch.tasks import TaskSpec
    >>> class Fake(torch.nn.Module):
    ...     def forward(self, x):
    ...         return {"p": torch.zeros(2, 1), "y": torch.ones(2, 1)}
    >>> out = predict(Fake(), torch.zeros(2, 3),
    ...               [TaskSpec("p", "binary"), TaskSpec("y", "regression", target_mean=10.0, target_std=2.0)])
    >>> out["p"].tolist(), out["y"].tolist()
    ([0.5, 0.5], [12.0, 12.0])
    """
    import torch

    specs = tasks if tasks is not None else getattr(net, "task_specs", None)
    if not specs:
        raise SharesearchError("predict: task specs are needed to transform the outputs; pass tasks=[TaskSpec...] "
                         "or load a model saved with save_model(..., tasks=...)")
    by_name = {s.name: s for s in specs}
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        net.train(was_training)
    res = {}
    for t, o in out.items():
        s = by_name.get(t)
        if s is None:
            raise SharesearchError(f"predict: no TaskSpec for task {t!r}; specs given for {sorted(by_name)}")
        if s.kind == "binary":
            res[t] = torch.sigmoid(o[:, 0])
        elif s.kind == "multiclass":
            res[t] = torch.softmax(o, dim=1)
        else:
            res[t] = o[:, 0] * s.target_std + s.target_mean
    return res

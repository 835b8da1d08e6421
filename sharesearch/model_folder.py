"""A trained model as a folder of tensors and JSON that predicts on raw rows.

:func:`save_model` writes, and :func:`load_model` reads back:

=====================  ==========================================================================
``model.pt``           the network's ``state_dict``: tensors only (``torch.load(weights_only=True)``)
``graph.json``         the :class:`~sharesearch.graph.SharingGraph` the weights belong to
``tasks.json``         the tasks in order: kind, class names in label order, metrics, weight and a
                       regression target's ``target_mean`` / ``target_std`` (original units)
``preprocessing.json`` the fitted encoding of the raw feature columns
                       (:class:`~sharesearch.data._preprocess.Preprocessing`): column order,
                       scalers, categories, missing indicators. Absent for built-in data.
``provenance.json``    :class:`~sharesearch.provenance.Provenance`: study, arm, seed, whether these
                       weights are the verdict's run or a retraining, and the figures quoted for
                       them with the split they are on
=====================  ==========================================================================

Nothing is pickled but tensors; every JSON file is data. :func:`load_model`
returns a :class:`LoadedModel`: ``model.predict(frame)`` takes a DataFrame of
raw rows with the training columns and returns one row of predictions per
row -- a regression task in its original units, a binary or multiclass task as
its class name plus ``<task>_proba`` (binary: the positive class's
probability) or ``<task>_proba=<class>`` columns (multiclass). The tensor path
:func:`predict` (``predict(model, x)``) works on a loaded model and on any
compiled network. Loading imports no search or training code.

Example
-------
>>> import tempfile, numpy as np, pandas as pd
>>> from sharesearch.data._preprocess import Preprocessing
>>> from sharesearch.graph import SharingGraph
>>> from sharesearch.network import compile_graph
>>> from sharesearch.tasks import TaskSpec
>>> raw = pd.DataFrame({"age": [20.0, 30.0, 40.0], "city": ["a", "b", "a"]})
>>> pre = Preprocessing.fit(raw, ["age", "city"], None, np.ones(3, bool), where="t.csv")
>>> tasks = [TaskSpec("buys", "binary", classes=("no", "yes")), TaskSpec("spend", "regression", target_mean=9.0)]
>>> g = SharingGraph.shared_bottom(tasks, {"name": "mlp", "input_shape": [pre.n_features], "widths": [8]}, 1)
>>> d = save_model(compile_graph(g, seed=0), g, tempfile.mkdtemp(), tasks=tasks, preprocessing=pre)
>>> list(load_model(d).predict(raw).columns)
['buys', 'buys_proba', 'spend']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharesearch.data._preprocess import Preprocessing
from sharesearch.errors import SharesearchError
from sharesearch.graph import SharingGraph
from sharesearch.provenance import Provenance

if TYPE_CHECKING:  # pragma: no cover
    from .model_group import ModelGroup

__all__ = ["save_model", "load_model", "predict", "LoadedModel", "ModelFolderError", "ModelFileMissingError",
           "MODEL_FILE", "GRAPH_FILE", "TASKS_FILE", "PREPROCESSING_FILE", "PROVENANCE_FILE"]

MODEL_FILE = "model.pt"
GRAPH_FILE = "graph.json"
TASKS_FILE = "tasks.json"
PREPROCESSING_FILE = "preprocessing.json"
PROVENANCE_FILE = "provenance.json"
_BATCH = 65536  # rows per forward pass in LoadedModel.predict


class ModelFolderError(SharesearchError):
    """A folder :func:`load_model` cannot use; one line naming the file and what is wrong with it."""


class ModelFileMissingError(ModelFolderError, FileNotFoundError):
    """The folder lacks ``model.pt`` or ``graph.json`` (also a :class:`FileNotFoundError`)."""


# ------------------------------------------------------------------ saving
def save_model(net_or_state: Any, graph: SharingGraph, path_dir: str | Path, *, tasks=None,
               preprocessing: Preprocessing | None = None,
               provenance: Provenance | Mapping[str, Any] | None = None) -> Path:
    """Write a model folder (the files of the module docstring) into ``path_dir``.

    Parameters
    ----------
    net_or_state : torch.nn.Module or dict of str -> Tensor
        The compiled network of ``graph`` or its ``state_dict``.
    graph : SharingGraph
    path_dir : folder, created if missing
    tasks : list of TaskSpec, optional
        Stored so predictions come back as class names and original units.
    preprocessing : Preprocessing, optional
        The data's fitted encoding (``data.preprocessing``); its width must be
        the graph's input width. Needed by :meth:`LoadedModel.predict`.
    provenance : Provenance or dict, optional
        Where the weights come from and which split the quoted figures are on.

    Everything is checked before anything is written; a file of an older
    model that this call does not write is removed. Returns the folder.
    """
    import torch

    state = net_or_state.state_dict() if isinstance(net_or_state, torch.nn.Module) else dict(net_or_state)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"save_model: state entries must be tensors; not tensors: {bad[:5]}")
    texts: dict[str, str | None] = {TASKS_FILE: None, PREPROCESSING_FILE: None, PROVENANCE_FILE: None}
    if tasks is not None:
        names = set(graph.tasks)
        specs = [t.to_dict() for t in tasks if t.name in names]
        missing = names - {s["name"] for s in specs}
        if missing:
            raise SharesearchError(f"save_model: no TaskSpec for tasks {sorted(missing)}")
        texts[TASKS_FILE] = json.dumps(specs, indent=2)
    if preprocessing is not None:
        width = list(graph.backbone.input_shape)
        if width != [preprocessing.n_features]:
            raise SharesearchError(f"save_model: preprocessing gives {preprocessing.n_features} features but the "
                                   f"graph's input shape is {width}")
        texts[PREPROCESSING_FILE] = json.dumps(preprocessing.to_dict(), indent=2)
    if provenance is not None:
        prov = provenance if isinstance(provenance, Provenance) else Provenance.from_dict(provenance)
        texts[PROVENANCE_FILE] = json.dumps(prov.to_dict(), indent=2, ensure_ascii=False)
    out = Path(path_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, out / MODEL_FILE)
    (out / GRAPH_FILE).write_text(graph.to_json(indent=2))
    for name, text in texts.items():
        if text is not None:
            (out / name).write_text(text, encoding="utf-8")
        elif (out / name).exists():
            (out / name).unlink()  # do not leave files of an older model beside this one
    return out


# ------------------------------------------------------------------ the loaded model
@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model folder read back: the network in eval mode and what it needs to predict on raw rows."""

    net: Any                                # sharesearch.network.MultiTaskNet, in eval mode
    graph: SharingGraph                     # the graph the weights belong to
    tasks: tuple | None                     # the TaskSpecs of tasks.json, None when the folder has none
    preprocessing: Preprocessing | None     # preprocessing.json, None for tensors-only folders
    provenance: Provenance | None           # provenance.json, None when not recorded
    path: Path                              # the folder it was read from

    def __call__(self, x):
        """The raw head outputs ``{task: [B, out_dim]}`` of the encoded inputs ``x``."""
        return self.net(x)

    @property
    def training(self) -> bool:
        """Whether the network is in training mode (False after :func:`load_model`)."""
        return self.net.training

    def eval(self) -> LoadedModel:
        self.net.eval()
        return self

    def train(self, mode: bool = True) -> LoadedModel:
        self.net.train(mode)
        return self

    @property
    def task_specs(self) -> list | None:
        """The task specs as a list (what :func:`predict` reads), or None."""
        return list(self.tasks) if self.tasks is not None else None

    def predict(self, frame):
        """Predictions for raw rows: a DataFrame with ``frame``'s index (see the module docstring).

        ``frame`` holds the training's feature columns by name (any order;
        extra columns are ignored). A missing column, a non-number in a
        numeric column or a folder without ``preprocessing.json`` raises one
        line saying so.
        """
        import pandas as pd
        import torch

        if self.preprocessing is None:
            raise ModelFolderError(f"predict: {self.path} has no {PREPROCESSING_FILE} (it was saved without the "
                                   "data's preprocessing); pass encoded tensors: predict(model, x)")
        if not isinstance(frame, pd.DataFrame):
            raise SharesearchError(f"predict: expected a pandas DataFrame of raw rows with the columns "
                                   f"{', '.join(self.preprocessing.feature_columns)}; got {type(frame).__name__}")
        if self.tasks is None:
            raise ModelFolderError(f"predict: {self.path} has no {TASKS_FILE}; cannot name the predictions")
        x = torch.from_numpy(self.preprocessing.transform(frame, where="predict"))  # [n, n_features]
        device = next(self.net.parameters()).device
        parts = []
        with torch.no_grad():
            for start in range(0, max(len(x), 1), _BATCH):
                out = self.net(x[start:start + _BATCH].to(device))
                parts.append({t: o.cpu() for t, o in out.items()})
        out = {t: torch.cat([p[t] for p in parts]) for t in parts[0]}
        return _frame_of_outputs(out, self.tasks, frame.index)


def _class_names(spec) -> list[str]:
    """A task's class names in label order ("0", "1", ... when the data gave none)."""
    n = 2 if spec.kind == "binary" else spec.n_classes
    return list(spec.classes) if len(spec.classes) == n else [str(i) for i in range(n)]


def _frame_of_outputs(out: dict, tasks, index):
    """Head outputs as a DataFrame: values in original units, class names and probabilities."""
    import numpy as np
    import pandas as pd
    import torch

    cols: dict[str, Any] = {}
    for spec in tasks:
        o = out[spec.name]  # [n, out_dim]
        if spec.kind == "regression":
            cols[spec.name] = (o[:, 0] * spec.target_std + spec.target_mean).numpy()  # as predict() computes it
        elif spec.kind == "binary":
            names = np.array(_class_names(spec), dtype=object)
            cols[spec.name] = names[(o[:, 0] > 0).long().numpy()]  # logit > 0: the positive class
            cols[f"{spec.name}_proba"] = torch.sigmoid(o[:, 0]).numpy()
        else:
            names = _class_names(spec)
            cols[spec.name] = np.array(names, dtype=object)[o.argmax(dim=1).numpy()]
            proba = torch.softmax(o, dim=1).numpy()  # [n, n_classes]
            for j, c in enumerate(names):
                cols[f"{spec.name}_proba={c}"] = proba[:, j]
    return pd.DataFrame(cols, index=index)


# ------------------------------------------------------------------ loading
def load_model(path_dir: str | Path, map_location: Any = "cpu") -> "LoadedModel | ModelGroup":
    """Load a folder written by :func:`save_model`, in eval mode, ready for prediction.

    Only tensors are unpickled (``torch.load(weights_only=True)``); a file
    holding anything else is refused. The folder is checked before a network
    is built: both files present and readable, the graph's parameters exactly
    the weights' names and shapes, every weight finite, each JSON file what
    it should be. Any damage raises :class:`ModelFolderError`
    (:class:`ModelFileMissingError` for a missing file). A folder written
    before ``preprocessing.json`` existed still loads (``preprocessing`` None).

    Returns
    -------
    LoadedModel, or a :class:`~sharesearch.model_group.ModelGroup` for a
    folder of ``group-N/`` model folders (the verdict's independent networks
    with several configurations), whose ``predict(frame)`` joins theirs.

    Examples
    --------
    >>> import tempfile
    >>> load_model(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sharesearch.model_folder.ModelFileMissingError: load_model: .../model.pt is missing (expected a folder written by save_model)
    """
    import torch

    from .network import compile_graph

    d = Path(path_dir)
    if not (d / MODEL_FILE).is_file():  # the verdict's "keep independent models": one folder per configuration
        from .model_group import load_group

        group = load_group(d, map_location)
        if group is not None:
            return group
    for f in (MODEL_FILE, GRAPH_FILE):
        if not (d / f).is_file():
            raise ModelFileMissingError(f"load_model: {d / f} is missing (expected a folder written by save_model)")
    graph = _read_graph(d / GRAPH_FILE)
    state = _read_weights(d / MODEL_FILE, map_location)
    tasks = _read_tasks(d / TASKS_FILE) if (d / TASKS_FILE).is_file() else None
    pre = _read_json(d / PREPROCESSING_FILE, Preprocessing.from_dict)
    prov = _read_json(d / PROVENANCE_FILE, Provenance.from_dict)
    if pre is not None and list(graph.backbone.input_shape) != [pre.n_features]:
        raise ModelFolderError(f"load_model: {d / PREPROCESSING_FILE} gives {pre.n_features} features but "
                               f"{d / GRAPH_FILE} reads {list(graph.backbone.input_shape)}")
    net = compile_graph(graph, seed=0)
    _check_weights_fit(net.state_dict(), state, d)
    net.load_state_dict(state, strict=True)
    net.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    net.eval()
    return LoadedModel(net=net, graph=graph, tasks=None if tasks is None else tuple(tasks),
                       preprocessing=pre, provenance=prov, path=d)


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text if len(text) <= limit else text[:limit] + "..."


def _read_json(path: Path, parse):
    """``parse`` of the JSON in ``path``, None when the file is absent; damage is a :class:`ModelFolderError`."""
    if not path.is_file():
        return None
    try:
        return parse(json.loads(path.read_bytes()))
    except (ValueError, TypeError, KeyError, RecursionError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"load_model: {path}: {_first_line(e)}") from None


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


# ------------------------------------------------------------------ tensors
def predict(net, x, tasks=None) -> dict:
    """Predictions of every task from encoded inputs ``x``, in the units a person expects.

    * binary: ``P(y = 1)``, shape ``[B]`` (sigmoid of the logit);
    * multiclass: class probabilities, shape ``[B, n_classes]`` (softmax);
    * regression: the value in the target's original units, shape ``[B]``
      (``out * target_std + target_mean``).

    Parameters
    ----------
    net : LoadedModel or MultiTaskNet
    x : Tensor
    tasks : list of TaskSpec, optional
        Defaults to the loaded model's ``tasks.json`` (``net.task_specs``).

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
    if isinstance(net, LoadedModel):
        net = net.net
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

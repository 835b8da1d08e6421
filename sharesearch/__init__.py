"""sharesearch: find out what the tasks of a multi-task network should share.

The package's top level is its front door: everything a user needs is here,
loaded lazily so that ``import sharesearch`` is cheap and torch-free modules
(:mod:`sharesearch.graph`, :mod:`sharesearch.names`, :mod:`sharesearch.errors`)
stay importable without torch or optuna.

Example
-------
>>> import sharesearch as ss
>>> data = ss.load_data("synthetic-mmoe", n=200, d=8, seed=0)
>>> g = ss.SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": [8], "widths": [16, 8]})
>>> res = ss.train(g, data, ss.TrainConfig(epochs=1, batch_size=64))
>>> res.status
'ok'
"""

from __future__ import annotations

import importlib
from importlib import metadata as _metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = _metadata.version("sharesearch")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# public name -> the module that defines it (the one list of the front door)
_API: dict[str, str] = {
    "SharesearchError": "sharesearch.errors",
    "SharingGraph": "sharesearch.graph",
    "TaskSpec": "sharesearch.tasks",
    "compile_graph": "sharesearch.network",
    "MultiTaskData": "sharesearch.data",
    "load_data": "sharesearch.data",
    "register_source": "sharesearch.data",
    "SearchSpace": "sharesearch.space",
    "load_space": "sharesearch.space",
    "TrainConfig": "sharesearch.training",
    "TrainResult": "sharesearch.training",
    "train": "sharesearch.training",
    "evaluate": "sharesearch.training",
    "compare_topology": "sharesearch.compare",
    "SearchConfig": "sharesearch.search",
    "run_search": "sharesearch.search",
    "run_worker": "sharesearch.search",
    "compute_verdict": "sharesearch.search",
    "load_results": "sharesearch.search",
    "Verdict": "sharesearch.verdict",
    "task_verdicts": "sharesearch.verdict",
    "run_transfer": "sharesearch.search",
    "save_model": "sharesearch.model_folder",
    "load_model": "sharesearch.model_folder",
    "predict": "sharesearch.model_folder",
    "LoadedModel": "sharesearch.model_folder",
    "write_report": "sharesearch.report",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'sharesearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .compare import compare_topology
    from .data import MultiTaskData, load_data, register_source
    from .errors import SharesearchError
    from .model_folder import LoadedModel, load_model, predict, save_model
    from .graph import SharingGraph
    from .network import compile_graph
    from .report import write_report
    from .search import SearchConfig, compute_verdict, load_results, run_search, run_transfer, run_worker
    from .space import SearchSpace, load_space
    from .tasks import TaskSpec
    from .training import TrainConfig, TrainResult, evaluate, train
    from .verdict import Verdict, task_verdicts

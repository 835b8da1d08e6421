"""Training logs in the run folder: one CSV per run, TensorBoard event files where the package is installed.

Every evaluation of a trial (each ``eval_every`` optimizer steps) appends one
row to ``<run folder>/logs/trial-00023.csv``; each task of a baseline run to
``logs/baseline-<task>-00004.csv`` (the baseline study's trial number). One
file per run, so workers that run at once never write the same file; each row
is written and the file closed at once, so ``tail -f`` follows a running
search and a killed worker leaves every row it evaluated. The columns:

``step``        optimizer steps done (Optuna's step for the trial's reports)
``epoch``       the same in passes over the training rows (``step`` / steps per epoch)
``lr``          the learning rate of the next step
``seconds``     wall seconds since the run's first evaluation began its log
``<task>/train_loss``, ``<task>/val_loss``
                the task's mean training loss since the last evaluation and its
                validation loss (:class:`~sharesearch.training.Progress`'s
                ``train_loss`` / ``val_loss``); empty where one is NaN (no
                labelled row of the task in that window or split)
``<task>/val_<metric>``  the task's primary validation metric
``<task>/delta``  its validation Δ against the tuned baseline (trials only)
``delta_m``     the priority-weighted mean Δ, the trial's objective (trials only)

Where ``tensorboard`` is importable (it is not a dependency), the same
scalars also go to ``<run folder>/tb/trial-00023`` (tags as the column names),
readable with ``tensorboard --logdir runs/<study>/tb``.

The run folder is :func:`run_folder` of the storage: ``runs/<study>/`` for the
default local file. A worker whose storage is a database server (another
machine, no run folder) or in memory logs nowhere, silently.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> from sharesearch.tasks import TaskSpec
>>> from sharesearch.training import Progress
>>> folder = Path(tempfile.mkdtemp())
>>> log = EvalLog(folder, "trial-00007", [TaskSpec("a", "binary")], steps_per_epoch=4, deltas=True,
...               tensorboard=False)
>>> log(1, {"a": 0.75}, Progress(epoch=1, step=8, examples=512, evaluation=0, lr=0.01, total_steps=40),
...     deltas={"a": 0.5}, delta_m=0.5)
>>> print((folder / "logs" / "trial-00007.csv").read_text())  # doctest: +ELLIPSIS
step,epoch,lr,seconds,a/train_loss,a/val_loss,a/val_auc,a/delta,delta_m
8,2.0,0.01,...,,,0.75,0.5,0.5
<BLANKLINE>
"""

from __future__ import annotations

import csv
import importlib.util
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from ..data import MultiTaskData
from ..tasks import TaskSpec
from ..training import Progress, TrainConfig, step_budget

__all__ = ["EvalLog", "trial_log", "baseline_log", "run_folder", "trial_log_name", "baseline_log_name",
           "tensorboard_available", "LOGS_DIR", "TB_DIR"]

#: the CSV logs' folder inside the run folder
LOGS_DIR = "logs"
#: the TensorBoard event files' folder inside the run folder
TB_DIR = "tb"


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write event files (the ``tensorboard`` package is importable)."""
    return importlib.util.find_spec("tensorboard") is not None


def trial_log_name(number: int) -> str:
    """The log name of search trial ``number``.

    >>> trial_log_name(23)
    'trial-00023'
    """
    return f"trial-{number:05d}"


def baseline_log_name(task: str, number: int) -> str:
    """The log name of ``task`` in baseline run ``number``; characters a file name cannot hold become ``_``.

    >>> baseline_log_name("watch time/s", 4)
    'baseline-watch_time_s-00004'
    """
    return f"baseline-{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}-{number:05d}"


def run_folder(storage: str | optuna.storages.BaseStorage | None, study_name: str) -> Path | None:
    """The run folder of ``study_name`` in ``storage``: where its logs go (``None``: nowhere).

    A local file (``sqlite:///`` or ``journal:``) in a folder named after the
    study is the default layout, ``runs/<study>/study.db``: that folder. A local
    file elsewhere, which may hold several studies, gets a folder named after
    the study beside it. A database server or an in-memory storage has no run
    folder.

    >>> str(run_folder("sqlite:///runs/s/study.db", "s")), str(run_folder("journal:/tmp/all.log", "s"))
    ('runs/s', '/tmp/s')
    >>> run_folder("postgresql://u@host/db", "s") is None
    True
    """
    if storage is not None and not isinstance(storage, str):
        from ._storage import is_shareable, storage_url

        storage = storage_url(storage) if is_shareable(storage) else None
    if storage is None:
        return None
    for prefix in ("sqlite:///", "journal:"):
        if storage.startswith(prefix):
            parent = Path(storage[len(prefix):]).parent
            return parent if parent.name == study_name else parent / study_name
    return None


def _finite(x: float | None) -> str:
    """A CSV cell: the number, or empty when it is missing or not finite."""
    return "" if x is None or not math.isfinite(x) else repr(float(x))


class EvalLog:
    """One run's evaluations: CSV rows under ``<folder>/logs`` and TensorBoard scalars under ``<folder>/tb``.

    Parameters
    ----------
    folder : the run folder.
    name : the log's name (:func:`trial_log_name`); with ``per_task``, the
        function of the task that names each task's log (:func:`baseline_log_name`).
    tasks : the run's tasks (their primary metrics name the columns).
    steps_per_epoch : optimizer steps in one pass over the training rows (for ``epoch``).
    deltas : whether the rows carry Δ per task and Δm (trials; baselines have none).
    per_task : one file per task (a baseline run trains every task's own network at once).
    tensorboard : write event files too; ``None``: when :func:`tensorboard_available`.

    Calling it logs one evaluation: ``log(epoch, primary, progress, deltas=, delta_m=)``
    (the first three are a training callback's arguments). :meth:`close`
    closes the event files; the CSV needs no closing.
    """

    def __init__(self, folder: str | Path, name: str | Callable[[str], str], tasks: Sequence[TaskSpec],
                 steps_per_epoch: int, *, deltas: bool = False, per_task: bool = False,
                 tensorboard: bool | None = None) -> None:
        self.tasks, self.deltas = list(tasks), deltas
        self.steps_per_epoch = max(1, steps_per_epoch)
        groups = [[t] for t in self.tasks] if per_task else [self.tasks]
        names = [name(g[0].name) for g in groups] if per_task else [name]
        self.files = [(Path(folder) / LOGS_DIR / f"{n}.csv", g) for n, g in zip(names, groups)]
        tb = tensorboard_available() if tensorboard is None else tensorboard
        self.tb_dirs = [Path(folder) / TB_DIR / n for n in names] if tb else []
        self.writers: list[Any] | None = None  # SummaryWriters, opened at the first row
        self.t0 = time.perf_counter()

    def _header(self, tasks: Sequence[TaskSpec]) -> list[str]:
        cols = ["step", "epoch", "lr", "seconds"]
        for t in tasks:
            cols += [f"{t.name}/train_loss", f"{t.name}/val_loss", f"{t.name}/val_{t.primary_metric}"]
            cols += [f"{t.name}/delta"] if self.deltas else []
        return cols + (["delta_m"] if self.deltas else [])

    def _open(self) -> None:
        """Write each file's header (a file of an earlier run of this number is replaced), open event files."""
        for path, tasks in self.files:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerow(self._header(tasks))
        self.writers = []
        if self.tb_dirs:
            from torch.utils.tensorboard import SummaryWriter

            self.writers = [SummaryWriter(log_dir=str(d)) for d in self.tb_dirs]

    def __call__(self, epoch: int, primary: Mapping[str, float], progress: Progress, *,
                 deltas: Mapping[str, float] | None = None, delta_m: float | None = None) -> None:
        """Append one evaluation's row to each file (and its scalars to the event files)."""
        if self.writers is None:
            self._open()
        train_loss, val_loss = progress.train_loss, progress.val_loss  # empty: a Progress made without them
        deltas = deltas or {}
        head = [progress.step, round(progress.step / self.steps_per_epoch, 4), _finite(progress.lr),
                round(time.perf_counter() - self.t0, 3)]
        for k, (path, tasks) in enumerate(self.files):
            values: dict[str, float | None] = {}
            for t in tasks:
                values[f"{t.name}/train_loss"] = train_loss.get(t.name)
                values[f"{t.name}/val_loss"] = val_loss.get(t.name)
                values[f"{t.name}/val_{t.primary_metric}"] = primary.get(t.name)
                if self.deltas:
                    values[f"{t.name}/delta"] = deltas.get(t.name)
            if self.deltas:
                values["delta_m"] = delta_m
            with path.open("a", newline="", encoding="utf-8") as f:
                csv.writer(f, lineterminator="\n").writerow(head + [_finite(v) for v in values.values()])
            if self.writers:
                self._scalars(self.writers[k], progress, values)

    @staticmethod
    def _scalars(writer: Any, progress: Progress, values: Mapping[str, float | None]) -> None:
        writer.add_scalar("lr", progress.lr, progress.step)
        for tag, v in values.items():
            if v is not None and math.isfinite(v):
                writer.add_scalar(tag, v, progress.step)
        writer.flush()

    def close(self) -> None:
        """Close the event files (the CSV files are closed after every row)."""
        for w in self.writers or []:
            w.close()
        if self.writers:
            self.writers = []


def _steps_per_epoch(data: MultiTaskData, config: TrainConfig, tasks: Sequence[str]) -> int:
    return step_budget(config.updated(epochs=1, max_steps=None), data, list(tasks))


def trial_log(run_dir: str | Path | None, number: int, data: MultiTaskData, config: TrainConfig,
              tasks: Sequence[str]) -> EvalLog | None:
    """Search trial ``number``'s log (Δ and Δm columns), for the graph's ``tasks``; ``None`` without a run folder."""
    if run_dir is None:
        return None
    specs = [t for t in data.tasks if t.name in set(tasks)]
    return EvalLog(run_dir, trial_log_name(number), specs, _steps_per_epoch(data, config, tasks), deltas=True)


def baseline_log(run_dir: str | Path | None, number: int, data: MultiTaskData, config: TrainConfig
                 ) -> EvalLog | None:
    """Baseline run ``number``'s log, one file per task (:func:`baseline_log_name`); ``None`` without a run folder.

    It is a training callback: ``train(..., callback=log)`` or one of
    ``train_population``'s ``callbacks``; :meth:`EvalLog.close` it after the run.
    """
    if run_dir is None:
        return None
    return EvalLog(run_dir, lambda task: baseline_log_name(task, number), data.tasks,
                   _steps_per_epoch(data, config, data.task_names), per_task=True)

"""Transfer for a finished study: each task held out in turn, or a new column on the study's trunks (issue 15).

:func:`run_transfer` reads the study's topology -- the verdict's
recommendation when there is one (``results["recommendation"]["graph"]``),
else the best trial's graph -- with the training configuration that trial
was trained with, and the shared-bottom and MMoE references over the same
backbone. Then either

* **leave one task out** (``new_task=None``): every study task (or those of
  ``tasks``) is held out of each topology in turn
  (:func:`sharesearch.transfer.transfer_curve`); it rejoins where the study's
  affinity puts it when the study measured one (the held-out task's row of
  the symmetrised cosine affinity), else where the topology put it; or
* **a new column** (``new_task="col"``, ``data`` the study's inputs with that
  extra target): each topology is trained once per seed on the study's tasks
  and the new task joins its trunk root (:func:`sharesearch.transfer.new_task_curve`).
  Nothing of the search is retrained.

The scratch arm is trained once per (task, k, seed) and shared by every
topology. The result is stored in the study as a JSON user attribute
(``transfer`` for leave-one-out, ``transfer:<task>`` for a new task) and
:func:`read_transfer` combines them for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from ..data import MultiTaskData
from ..graph import SharingGraph
from ..names import reference
from ..training import TrainConfig
from ..transfer import (DEFAULT_KS, MODES, TransferConfig, TransferResult, new_task_curve, transfer_curve)
from ._config import SearchError
from ._records import AffinityRecord, StudyContext, TrialRecord, read_transfers, write_transfer
from ._results import study_results
from ._storage import load_study

__all__ = ["TRANSFER_REFERENCES", "run_transfer", "read_transfer", "study_topologies"]

#: the reference architectures every transfer run compares with the study's topology
TRANSFER_REFERENCES: tuple[str, ...] = ("shared-bottom", "mmoe")


def study_topologies(study: optuna.Study, data: MultiTaskData) -> tuple[dict[str, SharingGraph], TrainConfig]:
    """``{"chosen": ..., "shared-bottom": ..., "mmoe": ...}`` over the study's tasks, and the chosen trial's config."""
    ctx = StudyContext.from_study(study)
    results = study_results(study)
    rec_graph = (results.get("recommendation") or {}).get("graph")
    best = [t for t in study.best_trials if TrialRecord.from_trial(t).graph] if results["best_trials"] else []
    if rec_graph is None and not best:
        raise SearchError(f"study {study.study_name!r}: no finished trial with a graph; run the search first")
    train = ctx.train
    if best:
        rec = TrialRecord.from_trial(best[0])
        train = ctx.train.updated(**(rec.train or {}))
        rec_graph = rec_graph or rec.graph
    chosen = SharingGraph.from_dict(rec_graph)
    specs = [s for s in data.tasks if s.name in chosen.tasks]
    tops = {"chosen": chosen}
    for name in TRANSFER_REFERENCES:
        tops[name] = reference(name).graph(specs, chosen.g.graph["backbone"])
    return tops, train


def _closeness(study: optuna.Study, task: str) -> dict[str, float] | None:
    rec = AffinityRecord.from_study(study)
    if rec is None or task not in rec.affinity.tasks:
        return None
    names = list(rec.affinity.tasks)
    row = rec.affinity.symmetric("cosine")[names.index(task)]
    return {t: float(v) for t, v in zip(names, row) if t != task}


def run_transfer(storage: str | optuna.storages.BaseStorage, study_name: str, *, tasks: Sequence[str] | None = None,
                 ks: Sequence[int | None] = DEFAULT_KS, seeds: Sequence[int] = (0, 1, 2), new_task: str | None = None,
                 data: MultiTaskData | None = None, mode: Sequence[str] = MODES,
                 config: TransferConfig = TransferConfig(), device: str | None = None) -> TransferResult:
    """Measure how each topology of a finished study transfers to a held-out or new task; store and return it.

    Parameters
    ----------
    storage, study_name : the study (a URL or an open storage).
    tasks : the study tasks to hold out (default: every task); ignored with ``new_task``.
    ks : labelled training rows of the held-out task (None: all of them).
    seeds : paired seeds (at least 2).
    new_task : a target column of ``data`` that the study does not have: trained on the study's trunks.
    data : the data; default the study's own (required with ``new_task``: the same inputs plus that target).
    mode : ``"frozen"`` and/or ``"finetune"``.
    config : the few-shot protocol, equal for the transferred and the scratch networks.
    device : where to train (default: the study's training device).

    Returns
    -------
    TransferResult
    """
    study = load_study(storage, study_name)
    ctx = StudyContext.from_study(study)
    study_tasks = [t["name"] for t in ctx.data.tasks]
    if new_task is not None:
        data = _new_task_data(data, ctx, study_name, study_tasks, new_task)
    elif data is None:
        data = ctx.data.load(study_name)
    else:
        ctx.data.check(data, study_name)
    tops, train = study_topologies(study, data)
    if device is not None:
        train = train.updated(device=device)
    cache: dict = {}
    kw = dict(ks=tuple(ks), seeds=tuple(seeds), train_config=train, mode=tuple(mode), config=config, cache=cache)
    parts = []
    if new_task is not None:
        for name, g in tops.items():
            parts.append(new_task_curve(g, data, new_task, topology=name, **kw))
    else:
        held = list(tasks) if tasks else study_tasks
        unknown = [t for t in held if t not in study_tasks]
        if unknown:
            raise SearchError(f"transfer: parameter 'tasks': {unknown[0]!r} is not a task of study "
                              f"{study_name!r} {study_tasks}")
        for t in held:
            for name, g in tops.items():
                parts.append(transfer_curve(g, data, t, topology=name, closeness=_closeness(study, t), **kw))
    result = TransferResult.combine(parts)
    write_transfer(study, result.to_dict(), new_task)
    return result


def _new_task_data(data: MultiTaskData | None, ctx: StudyContext, study_name: str, study_tasks: list[str],
                   new_task: str) -> MultiTaskData:
    """``data`` checked: it has ``new_task``, and without it is the study's data (same inputs, split and labels)."""
    if data is None:
        raise SearchError("transfer: parameter 'data' is needed with 'new_task' (the study's inputs plus that target)")
    if new_task in study_tasks:
        raise SearchError(f"transfer: new task {new_task!r} is already a task of study {study_name!r}")
    if new_task not in data.task_names:
        raise SearchError(f"transfer: new task {new_task!r} is not a target of data {data.name!r} {data.task_names}")
    missing = [t for t in study_tasks if t not in data.task_names]
    if missing:
        raise SearchError(f"transfer: data {data.name!r} lacks the study's task {missing[0]!r}")
    if data.subset_tasks(study_tasks).fingerprint() != ctx.data.fingerprint:
        raise SearchError(f"transfer: data {data.name!r} without {new_task!r} is not study {study_name!r}'s data "
                          "(inputs, split or labels differ); list the study's features explicitly so that the new "
                          "target column is not one of them")
    return data


def read_transfer(study: optuna.Study) -> dict[str, Any] | None:
    """Every stored transfer result of ``study`` combined (``TransferResult.to_dict()``), or ``None``."""
    stored = [TransferResult.from_dict(v) for v in read_transfers(study)]
    return TransferResult.combine(stored).to_dict() if stored else None

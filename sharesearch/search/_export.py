"""Exporting a study's best model: retrain its graph and save the weights with the graph."""

from __future__ import annotations

from pathlib import Path

import optuna

from ..data import MultiTaskData
from ..training import train
from ._baselines import ensure_baselines
from ._config import SearchError
from ._objective import task_deltas, weighted_mean
from ._records import StudyContext, TrialRecord
from ._storage import load_study

__all__ = ["export_best_model"]


def _chosen_trial(study: optuna.Study, trial: int | None) -> TrialRecord:
    """The record of trial number ``trial``, or of the best trial (highest Δm on the front)."""
    if trial is None:
        best = study.best_trials
        if not best:
            raise SearchError(f"study {study.study_name!r} has no completed trial to export")
        return TrialRecord.from_trial(max(best, key=lambda t: t.values[0]))
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if t.number == trial and rec.trained:
            return rec
    raise SearchError(f"trial: no trained trial {trial} in study {study.study_name!r}")


def export_best_model(storage: str | optuna.storages.BaseStorage, study_name: str, out_dir: str | Path, *,
                      trial: int | None = None, data: MultiTaskData | None = None) -> Path:
    """Retrain the best (or a given) trial's graph and save it with its weights.

    The saved weights are those of the epoch with the best validation Δm,
    with the graph (:func:`sharesearch.export.save_model`): one consistent
    model for prediction. ``storage`` is a URL or an open storage; ``data``
    defaults to the study's recorded source. Returns the output folder.
    """
    from ..export import save_model

    study = load_study(storage, study_name)
    ctx = StudyContext.from_study(study)
    rec = _chosen_trial(study, trial)
    if data is None:
        data = ctx.data.load(study_name)
    baselines = ensure_baselines(study, data, ctx.search_space(), ctx.train)
    graph = rec.sharing_graph()
    res = train(graph, data, ctx.train.updated(**rec.train),
                joint_score=lambda p: weighted_mean(data, task_deltas(data, p, baselines)))
    model = res.model
    if res.joint_state:
        model.load_state_dict(res.joint_state)
    return save_model(model.cpu(), graph, out_dir, tasks=data.tasks)

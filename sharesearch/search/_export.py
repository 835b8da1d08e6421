"""Exporting a study's model: the verdict's recommended network, or a trial retrained.

:func:`export_best_model` writes a model folder (:mod:`sharesearch.model_folder`)
that predicts on raw rows:

1. With ``trial=None`` and a verdict that saved its recommended arm's seed-0
   network (``results["recommendation"]["model_dir"]``), that folder is
   copied: it is the very network the verdict evaluated on test. Its
   ``provenance.json`` says so (split ``test``); ``preprocessing.json`` is
   added from the study's data when the verdict did not write it.
2. Otherwise the recommended trial (or ``trial``, or, before a verdict, the
   best trial on validation) is trained again with its sampled parameters and
   saved with the weights of its best validation Δm; its provenance says
   ``retrained`` and quotes its validation figures (split ``val``).

The data is loaded again from the study's recorded source (its fingerprint
checked), for its preprocessing and, when retraining, for training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import optuna

from ..data import MultiTaskData
from ..graph import SharingGraph
from ..model_folder import GRAPH_FILE, MODEL_FILE, PREPROCESSING_FILE, PROVENANCE_FILE, TASKS_FILE, save_model
from ..provenance import Provenance
from ..training import evaluate, train
from ._baselines import ensure_baselines
from ._catalog import recommendation_of
from ._config import SearchError
from ._objective import task_deltas, weighted_mean
from ._records import StudyContext, TrialRecord
from ._storage import load_study

__all__ = ["export_best_model"]


def _chosen_trial(study: optuna.Study, trial: int | None) -> tuple[int, TrialRecord]:
    """The number and record of trial ``trial``, or of the best trial (highest Δm on the front)."""
    if trial is None:
        best = study.best_trials
        if not best:
            raise SearchError(f"study {study.study_name!r} has no completed trial to export")
        t = max(best, key=lambda t: t.values[0])
        return t.number, TrialRecord.from_trial(t)
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if t.number == trial and rec.trained:
            return t.number, rec
    raise SearchError(f"trial: no trained trial {trial} in study {study.study_name!r}")


def export_best_model(storage: str | optuna.storages.BaseStorage, study_name: str, out_dir: str | Path, *,
                      trial: int | None = None, data: MultiTaskData | None = None) -> Path:
    """Write the study's recommended model (or trial ``trial`` retrained) as a model folder.

    Parameters
    ----------
    storage : a storage URL or an open storage
    study_name : the study
    out_dir : the model folder to write (created)
    trial : int, optional
        Export this trial, retrained, instead of the recommendation.
    data : MultiTaskData, optional
        Defaults to the study's recorded source, loaded again.

    Returns the output folder; see the module docstring for what it holds.
    """
    study = load_study(storage, study_name)
    ctx = StudyContext.from_study(study)
    rec = recommendation_of(study) if trial is None else None
    if data is None:
        data = ctx.data.load(study_name)
    pre = getattr(data, "preprocessing", None)
    shipped = Path(rec["model_dir"]) if rec and rec.get("model_dir") else None
    if shipped is not None and shipped.is_dir():
        return _copy_verdict_model(shipped, Path(out_dir), rec, study_name, pre)
    number, record = _chosen_trial(study, trial if trial is not None else (rec or {}).get("trial"))
    baselines = ensure_baselines(study, data, ctx.search_space(), ctx.train)
    graph = record.sharing_graph()
    config = ctx.train.updated(**record.train)
    res = train(graph, data, config, joint_score=lambda p: weighted_mean(data, task_deltas(data, p, baselines)))
    model = res.model
    if res.joint_state:
        model.load_state_dict(res.joint_state)
    val = evaluate(model, data, "val")
    primary = {s.name: val[s.name][s.primary_metric] for s in data.tasks if s.name in val}
    deltas = task_deltas(data, primary, baselines)
    prov = Provenance(arm=f"trial {number}" + (f" ({record.reference})" if record.reference else ""),
                      split="val", source="retrained", study=study_name, trial=number, seed=config.seed,
                      figures=tuple(_figures(val)), deltas=dict(deltas))
    return save_model(model.cpu(), graph, out_dir, tasks=data.tasks, preprocessing=pre, provenance=prov)


def _figures(metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    return [{"task": t, "metric": m, "value": v} for t, ms in metrics.items() for m, v in ms.items()]


def _copy_verdict_model(src: Path, out: Path, rec: dict[str, Any], study_name: str, pre) -> Path:
    """Copy the verdict's model folder (or its ``group-N`` folders) and complete each with preprocessing
    and provenance where the verdict did not write them."""
    folders = [Path()] if (src / MODEL_FILE).is_file() else sorted(
        p.relative_to(src) for p in src.iterdir() if (p / MODEL_FILE).is_file())
    if not folders:
        raise SearchError(f"recommendation: model_dir {str(src)!r} holds no model folder (no {MODEL_FILE})")
    for rel in folders:  # check before anything is written
        width = list(SharingGraph.from_json((src / rel / GRAPH_FILE).read_text()).backbone.input_shape)
        if pre is not None and not (src / rel / PREPROCESSING_FILE).exists() and width != [pre.n_features]:
            raise SearchError(f"data: the study's data encodes {pre.n_features} features but the verdict's model "
                              f"{src / rel} reads {width}; was the data file changed?")
    for rel in folders:  # no file of an older export may stay beside the copied weights
        for name in (TASKS_FILE, PREPROCESSING_FILE, PROVENANCE_FILE):
            (out / rel / name).unlink(missing_ok=True)
    shutil.copytree(src, out, dirs_exist_ok=True)
    prov = Provenance(arm=str(rec.get("arm") or "recommended"), split="test", source="verdict", study=study_name,
                      trial=rec.get("trial"), seed=0, deltas=dict(rec.get("test_deltas") or {}))
    for rel in folders:
        if pre is not None and not (out / rel / PREPROCESSING_FILE).exists():
            (out / rel / PREPROCESSING_FILE).write_text(json.dumps(pre.to_dict(), indent=2))
        if not (out / rel / PROVENANCE_FILE).exists():
            (out / rel / PROVENANCE_FILE).write_text(json.dumps(prov.to_dict(), indent=2, ensure_ascii=False))
    return out

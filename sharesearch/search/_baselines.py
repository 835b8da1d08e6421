"""The tuned single-task baselines every Δ is measured against.

The independent single-task networks get their own small tuning (learning
rate, width, weight decay) on the validation split in a companion study
``<study>.baselines`` of the same storage, so parallel workers share it.
Each baseline trial trains all tasks in one pass (the independent graph) and
each task keeps its own best trial. The result is stored in the main study
(:class:`BaselineSet`), keyed by data fingerprint, space, budget and seed,
and every worker reuses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import optuna

from ..data import MultiTaskData
from ..space import SearchSpace
from ..tasks import sign
from ..training import TrainConfig, train
from ._config import SearchError
from ._records import (
    BaselineSet,
    BaselineTrialRecord,
    StudyContext,
    TaskBaseline,
    baseline_default_enqueued,
    mark_baseline_default_enqueued,
)
from ._study import FINISHED, finished_count

__all__ = ["ensure_baselines", "baseline_study_name"]


def baseline_study_name(study_name: str) -> str:
    """Name of the companion study that tunes the baselines of ``study_name``.

    >>> baseline_study_name("s")
    's.baselines'
    """
    return f"{study_name}.baselines"


def _baseline_key(data: MultiTaskData, space: SearchSpace, budget: Mapping[str, Any], seed: int) -> str:
    return json.dumps({"data": data.fingerprint(), "space": space.fingerprint(), "budget": budget, "seed": seed},
                      sort_keys=True)


def _width_scale(space: SearchSpace, params: Mapping[str, Any]) -> float:
    """The ``baseline_width_mult`` a baseline trial used: its parameter, or the space's fixed value."""
    f = space.fields.get("baseline.width_mult")
    if f is None:
        return 1.0
    return float(params.get(f.param, f.default))


def ensure_baselines(study: optuna.Study, data: MultiTaskData, space: SearchSpace, train_base: TrainConfig
                     ) -> dict[str, TaskBaseline]:
    """Tune (once) and return each task's best single-task baseline on validation.

    Returns ``{task: TaskBaseline}``; raises :class:`SearchError` when some
    task got no finite validation metric from any baseline trial.
    """
    StudyContext.from_study(study)  # a sharesearch study, or a clear error
    cand0 = space.sample_baseline(optuna.trial.FixedTrial(space.baseline_default_params()), data.tasks,
                                  data.input_shape)
    budget = {k: cand0.train.get(k) for k in ("epochs", "batch_size")}
    key = _baseline_key(data, space, budget, train_base.seed)
    stored = BaselineSet.from_study(study)
    if stored is not None and stored.key == key:
        return stored.tasks
    bstudy = optuna.create_study(study_name=baseline_study_name(study.study_name), storage=study._storage,
                                 direction="maximize", load_if_exists=True,
                                 sampler=optuna.samplers.TPESampler(seed=train_base.seed, n_startup_trials=4))
    if not baseline_default_enqueued(bstudy):
        bstudy.enqueue_trial(space.baseline_default_params())
        mark_baseline_default_enqueued(bstudy)

    def objective(trial: optuna.Trial) -> float:
        cand = space.sample_baseline(trial, data.tasks, data.input_shape)
        res = train(cand.graph, data, train_base.updated(**cand.train), keep_model=False)
        BaselineTrialRecord(train=cand.train, width_scale=_width_scale(space, trial.params),
                            graph=cand.graph.to_dict(), val_metrics=res.val_metrics, status=res.status).write(trial)
        if res.status != "ok":
            return float("nan")
        # the trial value only guides the sampler: the mean signed primary metric
        signed = [sign(t.primary_metric) * v if math.isfinite(v := res.val_metrics[t.name][t.primary_metric])
                  else 0.0 for t in data.tasks]
        return float(sum(signed) / len(signed))

    n = space.baseline_trials
    done = finished_count(bstudy)
    if done < n:
        bstudy.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(n, states=FINISHED)],
                        n_trials=n - done, show_progress_bar=False)
    best = _best_per_task(bstudy, data)
    BaselineSet(key=key, tasks=best).save(study)
    return best


def _best_per_task(bstudy: optuna.Study, data: MultiTaskData) -> dict[str, TaskBaseline]:
    """Each task's best completed baseline trial by its primary validation metric."""
    best: dict[str, TaskBaseline] = {}
    for tr in bstudy.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        rec = BaselineTrialRecord.from_trial(tr)
        for spec in data.tasks:
            v = rec.val_metrics[spec.name][spec.primary_metric]
            if not math.isfinite(v):
                continue
            cur = best.get(spec.name)
            if cur is None or sign(spec.primary_metric) * (v - cur.val_metric) > 0:
                best[spec.name] = TaskBaseline(val_metric=v, val_metrics=rec.val_metrics[spec.name],
                                               config=rec.train, graph=rec.graph, trial=tr.number,
                                               metric=spec.primary_metric, width_scale=rec.width_scale)
    missing = [t.name for t in data.tasks if t.name not in best]
    if missing:
        raise SearchError(f"baseline tuning produced no finite validation metric for task(s) {missing}")
    return best

"""Creating or resuming a study: its context, sampler, pruner, and the data it was made for.

Example
-------
>>> from sharesearch.data import load_data
>>> from sharesearch.space import load_space
>>> data = load_data("synthetic-mmoe", n=200, d=8, seed=0)
>>> study = prepare_study(optuna.storages.InMemoryStorage(), "doc", data,
...                       {"source": "synthetic-mmoe", "options": {"n": 200, "d": 8, "seed": 0}},
...                       load_space("tiny"), SearchConfig(n_trials=3), TrainConfig(device="cpu"))
>>> ctx = StudyContext.from_study(study)
>>> ctx.search.n_trials, sorted(ctx.references)
(3, ['cross-stitch', 'independent', 'mmoe', 'shared-bottom'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import optuna
from optuna.trial import TrialState

from ..data import MultiTaskData
from ..space import SearchSpace
from ..training import TrainConfig
from ._config import SearchConfig, SearchError
from ._records import StudyContext, StudyData
from ._storage import study_names

__all__ = ["prepare_study", "default_study_name", "load_study_data", "make_sampler", "make_pruner",
           "finished_count", "FINISHED"]

#: trial states that count towards a study's target number of trials
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def finished_count(study: optuna.Study) -> int:
    """Trials of ``study`` that finished (complete, pruned or failed)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def default_study_name(data: MultiTaskData, space: SearchSpace) -> str:
    """A name that resumes the same search: data source, data and space fingerprints."""
    return f"{data.name}-{data.fingerprint()[:8]}-{space.fingerprint()[:8]}"


def make_sampler(cfg: SearchConfig) -> optuna.samplers.BaseSampler:
    """The sampler ``cfg`` names, seeded with ``cfg.seed``."""
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    # Optuna's default TPE: on the planted-cluster proxy of benchmarks/bench_sampler.py it needed a
    # median 10 trials against 21 for multivariate TPE with 8 start-up trials (5 seeds).
    return optuna.samplers.TPESampler(seed=cfg.seed)


def make_pruner(cfg: SearchConfig, space: SearchSpace, train_base: TrainConfig) -> optuna.pruners.BasePruner:
    """The pruner ``cfg`` names; none for multi-objective studies, which Optuna cannot prune."""
    if cfg.multi_objective or cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    f = space.fields.get("train.epochs")
    max_epochs = int(f.max) if f is not None else train_base.epochs
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 2), reduction_factor=3)


def prepare_study(storage, study_name: str, data: MultiTaskData, data_source: Mapping[str, Any],
                  space: SearchSpace, cfg: SearchConfig, train_base: TrainConfig) -> optuna.Study:
    """Create the study (recording its :class:`StudyContext`) or check and load it.

    A study that already exists must have been made for the same data
    (fingerprint) and search space; otherwise :class:`SearchError`. Resuming
    with another ``cfg.n_trials`` makes that the study's new target.
    """
    if study_name in study_names(storage):
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=make_sampler(cfg))
        ctx = StudyContext.from_study(study)
        ctx.data.check(data, study_name)
        if ctx.space_fingerprint != space.fingerprint():
            raise SearchError(f"study {study_name!r} was made with another search space "
                              f"({ctx.space_source or '?'}); use another study_name")
        if ctx.search.n_trials != cfg.n_trials:  # resuming with a new target: workers follow it
            replace(ctx, search=replace(ctx.search, n_trials=cfg.n_trials)).save(study)
        return study
    study = optuna.create_study(study_name=study_name, storage=storage, directions=cfg.directions,
                                sampler=make_sampler(cfg))
    references = {}
    for name in cfg.references:
        if name not in space.reference_names():
            continue
        params = space.reference_params(name, data.tasks)
        references[name] = space.sample(optuna.trial.FixedTrial(params), data.tasks, data.input_shape).graph.key()
    StudyContext(data=StudyData.of(data, data_source), space=space.to_dict(), space_text=space.text,
                 space_fingerprint=space.fingerprint(), search=cfg, train=train_base,
                 references=references).save(study)
    study.set_metric_names(list(cfg.objectives))
    return study


def load_study_data(study: optuna.Study) -> MultiTaskData:
    """Load the study's data from its recorded source and check its fingerprint."""
    return StudyContext.from_study(study).data.load(study.study_name)

"""The Optuna search over sharing graphs, the tuned baselines, and the verdict.

This is the only package that imports optuna. One study holds everything a
worker needs (search space, data source and fingerprint, training and search
configuration) in a typed :class:`StudyContext`, so
``run_worker(storage, study_name)`` joins from another process or machine
with nothing else.

Protocol, and the module of each step
-------------------------------------
1. **Baselines first** (``_baselines``): the independent single-task
   networks are tuned (learning rate, width, weight decay) on validation in
   a companion study ``<study>.baselines``; each task keeps its best trial.
2. **Reference points** (``_references``): a new study enqueues the
   reference architectures first, trained with the baselines' tuned
   configuration, so they are compared like with like.
3. **Objective** (``_objective``): validation Δm (Maninis et al. 2019);
   multi-objective mode adds parameters, FLOPs and/or the worst task's Δ.
   Budgets are constraints checked before any training; single-objective
   studies are pruned (Hyperband by default); an identical candidate reuses
   the earlier training.
4. **Workers** (``_workers``): any number of processes join the study.
5. **Verdict** (``_verdict_runs``): the top-k candidates, the references
   and the baselines are retrained with fresh seeds and tested once.

Also: ``_config`` (:class:`SearchConfig`), ``_records`` (the typed study and
trial records, the only code that knows Optuna attribute keys),
``_storage`` (opening storages, loading studies), ``_study`` (creating or
resuming a study), ``_results`` (the report's results dict),
``_dashboard`` (optuna-dashboard notes), ``_export`` (the best model),
``_validate`` (the front door: study names, storages, devices, numbers and
data rows checked before anything is written; absurd baselines).
"""

from __future__ import annotations

import warnings

import optuna

# RDB heartbeats and metric names are stable enough for us; their "experimental" notices are noise to users.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

from ._baselines import baseline_study_name, ensure_baselines  # noqa: E402
from ._catalog import (Chosen, StudyRef, StudySummary, chosen_architecture, default_name,  # noqa: E402
                       format_studies, list_studies, new_report_dir, recommendation_of, report_dir, resolve_study)
from ._config import DEFAULT_REFERENCES, OBJECTIVES, SearchConfig, SearchError  # noqa: E402
from ._dashboard import annotate_for_dashboard  # noqa: E402
from ._export import export_best_model  # noqa: E402
from ._objective import PendingTrial, TrialRunner, make_objective  # noqa: E402
from ._populations import member_params, optimize_in_populations, trial_population  # noqa: E402
from ._records import BaselineSet, StudyContext, StudyData, TaskBaseline, TrialRecord  # noqa: E402
from ._references import enqueue_references, enqueue_tuned_references, enqueue_tuned_trees  # noqa: E402
from ._results import load_results, study_results  # noqa: E402
from ._storage import load_study, open_storage, storage_url, study_names  # noqa: E402
from ._study import (default_study_name, load_study_data, make_pruner, make_sampler, prepare_study,  # noqa: E402
                     worker_seed)
from ._transfer_study import read_transfer, run_transfer  # noqa: E402
from ._verdict_runs import compute_verdict, run_verdict  # noqa: E402
from ._workers import run_search, run_worker, sweep_dead_trials  # noqa: E402
from ._validate import (check_baseline_sane, check_data_rows, check_device, check_float, check_int,  # noqa: E402
                        check_runs_dir, check_storage_url, check_study_name, mean_predictor_metric)


__all__ = [
    "SearchConfig",
    "SearchError",
    "OBJECTIVES",
    "DEFAULT_REFERENCES",
    "open_storage",
    "storage_url",
    "load_study",
    "study_names",
    "prepare_study",
    "default_study_name",
    "load_study_data",
    "make_sampler",
    "make_pruner",
    "worker_seed",
    "ensure_baselines",
    "baseline_study_name",
    "enqueue_references",
    "enqueue_tuned_trees",
    "enqueue_tuned_references",
    "make_objective",
    "TrialRunner",
    "PendingTrial",
    "trial_population",
    "member_params",
    "optimize_in_populations",
    "run_worker",
    "run_search",
    "sweep_dead_trials",
    "compute_verdict",
    "run_verdict",
    "run_transfer",
    "read_transfer",
    "StudyRef",
    "StudySummary",
    "Chosen",
    "resolve_study",
    "list_studies",
    "format_studies",
    "default_name",
    "recommendation_of",
    "report_dir",
    "new_report_dir",
    "chosen_architecture",
    "load_results",
    "study_results",
    "annotate_for_dashboard",
    "export_best_model",
    "StudyContext",
    "StudyData",
    "TrialRecord",
    "TaskBaseline",
    "BaselineSet",
    "check_study_name",
    "check_int",
    "check_float",
    "check_device",
    "check_storage_url",
    "check_runs_dir",
    "check_data_rows",
    "check_baseline_sane",
    "mean_predictor_metric",
]

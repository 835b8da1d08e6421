"""Running the search: workers that join a study, dead-worker sweeping, progress, the whole run.

A worker needs nothing but the storage and the study name: the space, data
source, budgets and configurations come from the study's
:class:`StudyContext`, so ``run_worker(storage, study_name)`` joins from
another process or machine.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..data import MultiTaskData, RowSample
from ..space import SearchSpace
from ..training import TrainConfig, resolve_device
from ._baselines import ensure_baselines
from ._config import SearchConfig, SearchError
from ._dashboard import annotate_for_dashboard
from ._objective import make_objective
from ._populations import optimize_in_populations, trial_population
from ._records import StudyContext, TrialRecord
from ._references import enqueue_references
from ._storage import load_study, open_storage, storage_url
from ._study import FINISHED, default_study_name, finished_count, make_pruner, make_sampler, prepare_study
from ._verdict_runs import compute_verdict

__all__ = ["run_worker", "run_search", "sweep_dead_trials"]


def sweep_dead_trials(study: optuna.Study) -> int:
    """Fail RUNNING trials whose worker process on this host is gone; returns how many.

    The journal storage has no heartbeat, so a killed worker's trial would
    stay RUNNING forever; RDB storages also fail stale trials by heartbeat.
    """
    host, n = socket.gethostname(), 0
    for tr in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        h, _, pid = (TrialRecord.from_trial(tr).worker or "").rpartition(":")
        if h == host and pid.isdigit() and not _alive(int(pid)):
            study._storage.set_trial_state_values(tr._trial_id, TrialState.FAIL)
            n += 1
    return n


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_worker(storage: str | optuna.storages.BaseStorage, study_name: str, *, device: str | None = None,
               n_trials: int | None = None, data: MultiTaskData | None = None,
               callbacks: Sequence[Callable] = ()) -> None:
    """Join a study and run trials until it has ``n_trials`` finished trials.

    Everything else (space, data, budgets) comes from the study itself;
    ``data``, when given, must match the study's fingerprint. Baselines and
    trials train on the rows the study records for its search phase
    (:class:`~sharesearch.data.RowSample`; every row when none is recorded).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(storage, study_name)
    ctx = StudyContext.from_study(study)
    cfg = ctx.search
    study.sampler = make_sampler(cfg)
    space = ctx.search_space()
    if data is None:
        data = ctx.data.load(study_name)
    else:
        ctx.data.check(data, study_name)
    data = _search_rows(ctx.data.source, data, study_name)  # the search phase's sample; the verdict uses all rows
    train_base = ctx.train if device is None else ctx.train.updated(device=device)
    data = data.to(resolve_device(train_base.device))
    sweep_dead_trials(study)
    baselines = ensure_baselines(study, data, space, train_base)
    enqueue_references(study, data, space, baselines)
    study.pruner = make_pruner(cfg, space, train_base, data)
    target = n_trials if n_trials is not None else cfg.n_trials
    remaining = target - finished_count(study)
    if remaining <= 0:
        return
    objective = make_objective(study, data, space, cfg, train_base, baselines)
    k = trial_population(train_base.device, cfg.population)
    if k > 1:  # a topology and its companions train as one population (ask-and-tell)
        optimize_in_populations(study, objective, space, population=k, target=target, timeout=cfg.timeout,
                                callbacks=callbacks)
        return
    study.optimize(objective, n_trials=remaining, timeout=cfg.timeout, catch=(),
                   callbacks=[optuna.study.MaxTrialsCallback(target, states=FINISHED), *callbacks],
                   gc_after_trial=False)


def _search_rows(source: Mapping[str, Any], data: MultiTaskData, study_name: str,
                 asked: RowSample | None = None) -> MultiTaskData:
    """The rows of ``data`` the study's search phase uses: its recorded sample, or every row.

    ``asked`` (the rows this run asked for) must be the study's record when it has one.
    """
    if source.get("rows") is None:  # RowSample.to_dict(), stored with the data source by run_search
        return data
    record = RowSample.from_dict(source["rows"])
    if asked is not None and asked != record:
        raise SearchError(f"study {study_name!r} searches on other rows ({record.summary()}) than this data's "
                          f"search_rows={asked.search_rows!r} ({asked.summary()}); use another study_name")
    return record.apply(data, f"study {study_name!r}")


class _Progress:
    """A tqdm bar of finished trials with the best Δm; polls the storage."""

    def __init__(self, study: optuna.Study, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.study, self.total = study, total
        self.bar = tqdm(total=total, initial=min(finished_count(study), total), desc="trials", unit="trial",
                        disable=not enabled, dynamic_ncols=True)

    def __call__(self, study: optuna.Study | None = None, trial: Any = None) -> None:
        done = min(finished_count(self.study), self.total)
        self.bar.update(done - self.bar.n)
        vals = [t.values[0] for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if vals:
            self.bar.set_postfix_str(f"best Δm {max(vals):+.4f}")

    def close(self) -> None:
        self()
        self.bar.close()


def _run_local_workers(st: optuna.storages.BaseStorage, study: optuna.Study, data: MultiTaskData,
                       space: SearchSpace, train_base: TrainConfig, config: SearchConfig, workers: int,
                       bar: _Progress) -> None:
    """``workers`` spawned processes join the study (one per GPU, round robin, when there are GPUs)."""
    import multiprocessing as mp

    import torch

    enqueue_references(study, data, space,  # once, before the workers start
                       ensure_baselines(study, data, space, train_base))
    url = storage_url(st)
    n_gpu = torch.cuda.device_count()
    ctxmp = mp.get_context("spawn")
    procs = [ctxmp.Process(target=run_worker, args=(url, study.study_name),
                           kwargs={"device": f"cuda:{i % n_gpu}" if n_gpu else None, "n_trials": config.n_trials})
             for i in range(workers)]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        time.sleep(1.0)
        bar()
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise SearchError(f"{len(bad)} worker process(es) failed (exit codes {bad})")


def run_search(data: MultiTaskData, data_source: Mapping[str, Any], space: SearchSpace, *,
               storage: str | None = None, study_name: str | None = None, runs_dir: str | Path = "runs",
               config: SearchConfig = SearchConfig(), train_base: TrainConfig = TrainConfig(),
               workers: int = 1, progress: bool = True, verdict: bool = True) -> optuna.Study:
    """Run (or resume) a whole search: baselines, trials, then the verdict.

    With ``workers > 1``, that many local worker processes join the study
    (one per GPU when there are several GPUs). Returns the study; read it
    back with :func:`study_results`.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_data, rows = data.search_view()  # data.search_rows: search on a sample, verify on every row
    study_name = study_name or default_study_name(search_data, space)
    st = open_storage(storage, study_name, runs_dir, workers)
    study = prepare_study(st, study_name, data, {**data_source, "rows": rows.to_dict()}, space, config, train_base)
    search_data = _search_rows(StudyContext.from_study(study).data.source, data, study_name, asked=rows)
    sweep_dead_trials(study)
    bar = _Progress(study, config.n_trials, progress)
    try:
        if workers <= 1:
            run_worker(st, study_name, data=data, n_trials=config.n_trials, callbacks=[bar])
        else:
            _run_local_workers(st, study, search_data, space, train_base, config, workers, bar)
    finally:
        bar.close()
    if verdict:
        compute_verdict(study, data, progress=progress)
    annotate_for_dashboard(study)
    return study

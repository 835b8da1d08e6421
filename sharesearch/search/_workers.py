"""Running the search: workers that join a study, dead-worker sweeping, progress, the whole run.

A worker needs nothing but the storage and the study name: the space, data
source, budgets and configurations come from the study's
:class:`StudyContext`, so ``run_worker(storage, study_name)`` joins from
another process or machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .. import fmt
from ..data import MultiTaskData, RowSample
from ..space import SearchSpace
from ..training import TrainConfig, resolve_device
from ._baselines import ensure_baselines
from ._config import SearchConfig, SearchError
from ._dashboard import annotate_for_dashboard
from ._liveness import sweep_dead_trials
from ._log import run_folder
from ._objective import make_objective
from ._populations import optimize_in_populations, trial_population
from ._records import StudyContext, TaskBaseline
from ._references import enqueue_references
from ._storage import HEARTBEAT_S, load_study, open_storage, storage_url
from ._study import default_study_name, finished_count, make_pruner, make_sampler, prepare_study, worker_seed
from ._validate import check_device, check_float, check_int, check_runs_dir, check_storage_url, check_study_name
from ._verdict_runs import compute_verdict

__all__ = ["run_worker", "run_search", "sweep_dead_trials"]


def run_worker(storage: str | optuna.storages.BaseStorage, study_name: str, *, device: str | None = None,
               n_trials: int | None = None, data: MultiTaskData | None = None,
               callbacks: Sequence[Callable] = (), timeout: float | None = None, worker: int | None = None,
               heartbeat: int = HEARTBEAT_S, threads: int | None = None, run_dir: str | Path | None = None) -> None:
    """Join a study and run trials until it has ``n_trials`` counted trials (the study's own number by default).

    Everything about the search (space, data, budgets) comes from the study
    itself; ``data``, when given, must match the study's fingerprint. Baselines and
    trials train on the rows the study records for its search phase
    (:class:`~sharesearch.data.RowSample`; every row when none is recorded).

    What belongs to this process and never to the study: ``device`` (``None``:
    ``auto``; a device stored by an older version is ignored), ``timeout``
    (seconds this worker runs, ``None``: no limit), ``worker`` (its number:
    the sampler's seed is :func:`~sharesearch.search._study.worker_seed` of the
    study's seed and this number; ``None``: a number from the process id, so
    workers that join by hand differ), ``heartbeat`` (seconds between a
    database trial's heartbeats, see :func:`~sharesearch.search.open_storage`)
    and ``threads`` (torch's CPU threads in this process; ``None``: torch's
    default; local workers sharing a CPU split its cores, as oversubscribed
    threads slowed 4 workers on 2 cores several-fold) and ``run_dir`` (the run
    folder where each trial this worker trains writes its training log,
    :mod:`sharesearch.search._log`; ``None``: :func:`~sharesearch.search._log.run_folder`
    of the storage, so a worker on a database server's storage logs nowhere).
    However many workers join, the study stops at exactly ``n_trials`` counted
    trials, no two workers train the same candidate, and a dead worker's trial
    is failed with the reason and retried once (:mod:`sharesearch.search._liveness`).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    run_dir = Path(run_dir) if run_dir is not None else run_folder(storage, study_name)
    if isinstance(storage, str):
        storage = open_storage(storage, must_exist=True, heartbeat=heartbeat)
    study = load_study(storage, study_name)
    ctx = StudyContext.from_study(study)
    cfg = ctx.search
    number = os.getpid() if worker is None else worker
    study.sampler = make_sampler(cfg, number)
    space = ctx.search_space()
    if data is None:
        data = ctx.data.load(study_name)
    else:
        ctx.data.check(data, study_name)
    data = _search_rows(ctx.data.source, data, study_name)  # the search phase's sample; the verdict uses all rows
    train_base = ctx.train.updated(device=device or "auto")
    data = data.to(resolve_device(train_base.device))
    sweep_dead_trials(study)
    baselines = ensure_baselines(study, data, space, train_base, worker=number, run_dir=run_dir)
    enqueue_references(study, data, space, baselines)
    study.pruner = make_pruner(cfg, space, train_base, data)
    target = n_trials if n_trials is not None else cfg.n_trials
    if finished_count(study) >= target:
        return
    objective = make_objective(study, data, space, cfg, train_base, baselines, worker_seed(cfg.seed, number),
                               run_dir=run_dir)
    k = trial_population(train_base.device, cfg.population)
    optimize_in_populations(study, objective, space, population=k, target=target, timeout=timeout,
                            callbacks=callbacks)


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
            self.bar.set_postfix_str(f"best validation Δm {fmt.delta(max(vals))}")

    def close(self) -> None:
        self()
        self.bar.close()


def _run_local_workers(st: optuna.storages.BaseStorage, study: optuna.Study, data: MultiTaskData,
                       space: SearchSpace, baselines: Mapping[str, TaskBaseline], train_base: TrainConfig,
                       config: SearchConfig, workers: int, timeout: float | None, bar: _Progress,
                       run_dir: Path | None) -> None:
    """``workers`` spawned processes (numbers 0 .. workers-1) join the study (one per GPU, round robin), after
    the references are enqueued once against the tuned ``baselines``."""
    import multiprocessing as mp

    import torch

    enqueue_references(study, data, space, baselines)  # once, before the workers start
    url = storage_url(st)
    n_gpu = torch.cuda.device_count() if train_base.device in ("auto", "cuda") else 0
    threads = None if n_gpu else max(1, (os.cpu_count() or 1) // workers)  # CPU workers split the cores
    ctxmp = mp.get_context("spawn")
    procs = [ctxmp.Process(target=run_worker, args=(url, study.study_name),
                           kwargs={"device": f"cuda:{i % n_gpu}" if n_gpu else train_base.device,
                                   "n_trials": config.n_trials, "timeout": timeout, "worker": i, "threads": threads,
                                   "run_dir": run_dir})
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

    The study name, storage, runs folder, worker count, time limit and device
    are checked before anything is written (:mod:`sharesearch.search._validate`).
    The device (``train_base.device``), ``config.timeout`` and ``workers``
    belong to this run, not to the study: the study stores ``auto`` and no
    time limit, so a later run or worker chooses its own. Training logs go to
    the run folder of a local storage file (``runs_dir/<study>`` by default,
    :func:`~sharesearch.search._log.run_folder`), else to ``runs_dir/<study>``.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if study_name is not None:
        check_study_name(study_name)
    check_storage_url(storage)
    check_runs_dir(runs_dir)
    check_int("workers", workers)
    timeout = check_float("timeout", config.timeout, optional=True)
    device = check_device(train_base.device) or "auto"
    search_data, rows = data.search_view()  # data.search_rows: search on a sample, verify on every row
    study_name = study_name or check_study_name(default_study_name(search_data, space))
    stored_config, stored_train = replace(config, timeout=None), train_base.updated(device="auto")
    st = open_storage(storage, study_name, runs_dir, workers)
    study = prepare_study(st, study_name, data, {**data_source, "rows": rows.to_dict()}, space, stored_config,
                          stored_train)
    search_data = _search_rows(StudyContext.from_study(study).data.source, data, study_name, asked=rows)
    sweep_dead_trials(study)
    run_dir = run_folder(st, study_name) or Path(runs_dir) / study_name
    # the baseline phase first, under its own bar (``progress``: shown or not, like the trials' bar); the workers
    # then find the baselines stored, and the trials' bar starts with the trials rather than sitting at 0
    baselines = ensure_baselines(study, search_data.to(resolve_device(device)), space,
                                 stored_train.updated(device=device), progress=progress, run_dir=run_dir)
    bar = _Progress(study, config.n_trials, progress)
    try:
        if workers <= 1:
            run_worker(st, study_name, data=data, n_trials=config.n_trials, callbacks=[bar], device=device,
                       timeout=timeout, worker=0, run_dir=run_dir)
        else:
            _run_local_workers(st, study, search_data, space, baselines, stored_train.updated(device=device),
                               config, workers, timeout, bar, run_dir)
    finally:
        bar.close()
    if verdict:
        compute_verdict(study, data, progress=progress, device=train_base.device, model_dir=Path(run_dir) / "model")
    annotate_for_dashboard(study)
    return study

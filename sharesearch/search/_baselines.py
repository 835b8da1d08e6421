"""The control: tuned single-task baselines, chosen per task on the mean of several seeds.

The independent single-task networks are tuned over the candidates' own
training settings (learning rate, weight decay, batch size, width multiplier)
under the same step budget and schedule (the space's fixed ``[train]``
budget keys), in a companion study ``<study>.baselines`` of the same storage
so parallel workers share it. Each tuning trial trains all tasks in one pass
(the independent graph) with the search's seed.

One seed per configuration would pick each task's luckiest run (the winner's
curse), so each task's ``confirm_top`` best tuning configurations are
retrained with ``confirm_seeds`` more seeds (one pass per configuration and
seed, enqueued in the same study; the runs of one network, every configuration
and seed, train as populations, :func:`~sharesearch.training.train_population`)
and the task keeps the configuration with the best **mean over the
confirmation seeds** -- the selection seed is left out of the mean, which
would otherwise be biased upwards. A confirmation run trains only the tasks
that shortlisted its configuration, on their independent network, drawing the
batches of the network of every task (``TrainConfig.batch_tasks``): that is
how the verdict's control trains each configuration's tasks
(:func:`~sharesearch.search._verdict_arms.train_control_runs`), a task's run
equals its part of the all-task run, and no step goes to a task that will
never read the run. The chosen mean is
the denominator of the task's Δ; the seeds' spread (``val_sd``, ``val_cv``) is
recorded for sizing the verdict. The result is stored in the main study
(:class:`BaselineSet`), keyed by data, space, budget and seed.

Example
-------
>>> confirmation_seeds(3)
[500, 501, 502]
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..data import MultiTaskData
from ..space import SearchSpace
from ..tasks import sign
from ..training import TrainConfig, TrainResult, train, train_population
from ._config import SearchError
from ._records import (
    BaselineSet,
    BaselineTrialRecord,
    StudyContext,
    TaskBaseline,
    baseline_default_enqueued,
    confirmation_attrs,
    confirmation_of,
    confirmation_tasks,
    confirmations_enqueued,
    mark_baseline_default_enqueued,
    mark_confirmations_enqueued,
)
from ._liveness import Heartbeats, mark_worker, superseded, sweep_dead_trials, wait_until
from ._log import baseline_log
from ._study import FINISHED, ask, worker_seed
from ._validate import check_baseline_sane, mean_predictor_metric

__all__ = ["ensure_baselines", "baseline_study_name", "confirmation_seeds", "CONFIRM_SEED_OFFSET"]

#: confirmation seeds are CONFIRM_SEED_OFFSET + i: never the search's seed, never a verdict seed (1000 + i)
CONFIRM_SEED_OFFSET = 500


def baseline_study_name(study_name: str) -> str:
    """Name of the companion study that tunes the baselines of ``study_name``.

    >>> baseline_study_name("s")
    's.baselines'
    """
    return f"{study_name}.baselines"


def confirmation_seeds(n: int) -> list[int]:
    """The ``n`` seeds each shortlisted configuration is retrained with."""
    return [CONFIRM_SEED_OFFSET + i for i in range(n)]


def _baseline_key(data: MultiTaskData, space: SearchSpace, budget: Mapping[str, Any], seed: int) -> str:
    return json.dumps({"data": data.fingerprint(), "space": space.fingerprint(), "budget": budget, "seed": seed},
                      sort_keys=True)


def _width_scale(space: SearchSpace, params: Mapping[str, Any]) -> float:
    """The ``baseline_width_mult`` a baseline trial used: its parameter, or the space's fixed value."""
    f = space.fields.get("baseline.width_mult")
    if f is None:
        return 1.0
    return float(params.get(f.param, f.default))


class _Runs:
    """The baseline study's runs: a tuning trial (search seed) or a confirmation run (its own seed).

    Calling it is the one-trial Optuna objective; :meth:`confirm_waiting` trains
    the queued confirmation runs of each configuration (its seeds) as one
    population.
    """

    def __init__(self, data: MultiTaskData, space: SearchSpace, train_base: TrainConfig,
                 run_dir: Path | None = None) -> None:
        self.data, self.space, self.train_base = data, space, train_base
        self.run_dir = run_dir  # where each run's training log goes (None: no logs)

    def _begin(self, trial: optuna.Trial):
        confirm = confirmation_of(trial)
        seed, confirms = confirm if confirm is not None else (self.train_base.seed, None)
        only = confirmation_tasks(trial)  # a confirmation run trains the tasks that shortlisted it
        tasks = [s for s in self.data.tasks if only is None or s.name in only]
        cand = self.space.sample_baseline(trial, tasks, self.data.input_shape)
        # batches over every task: a task in a confirmation run sees what it saw in the tuning trial's network
        return cand, seed, confirms, self.train_base.updated(**cand.train, seed=seed,
                                                             batch_tasks=self.data.task_names)

    def _finish(self, trial: optuna.Trial, cand, seed: int, confirms: int | None, res: TrainResult) -> float:
        BaselineTrialRecord(train=cand.train, width_scale=_width_scale(self.space, trial.params),
                            graph=cand.graph.to_dict(), val_metrics=res.val_metrics, status=res.status,
                            seed=seed if confirms is not None else None, confirms=confirms,
                            best_step=res.best_step, steps_run=res.steps_run).write(trial)
        if res.status != "ok":
            return float("nan")
        # the trial value only guides the sampler: the mean signed primary metric
        signed = [sign(t.primary_metric) * v if math.isfinite(v := res.val_metrics[t.name][t.primary_metric])
                  else 0.0 for t in self.data.tasks if t.name in res.val_metrics]
        return float(sum(signed) / len(signed))

    def __call__(self, trial: optuna.Trial) -> float:
        mark_worker(trial)  # so a sweep on this host finds the trial if this worker dies
        cand, seed, confirms, cfg = self._begin(trial)
        log = baseline_log(self.run_dir, trial.number, self.data, cfg)
        try:
            res = train(cand.graph, self.data, cfg, callback=log, keep_model=False)
        finally:
            if log is not None:
                log.close()
        return self._finish(trial, cand, seed, confirms, res)

    def confirm_waiting(self, bstudy: optuna.Study, tick) -> None:
        """Ask every queued confirmation run, train those of one network together, tell each."""
        asked = []
        with Heartbeats(bstudy._storage) as beats:
            while bstudy.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                trial = ask(bstudy, beats)
                asked.append((trial, *self._begin(trial)))
            self._train_asked(bstudy, asked, tick)

    def _train_asked(self, bstudy: optuna.Study, asked: list, tick) -> None:
        """Train the asked confirmation runs and tell each: the runs of one network (every configuration and seed
        of it) go to one :func:`~sharesearch.training.train_population` call, which stacks those that can train
        together (configurations differing in learning rate or weight decay, up to its population size)."""
        try:
            by_graph: dict[str, list] = {}
            for run in asked:
                by_graph.setdefault(run[1].graph.key(), []).append(run)
            for runs in by_graph.values():
                logs = [baseline_log(self.run_dir, r[0].number, self.data, r[4]) for r in runs]
                try:
                    results = train_population(runs[0][1].graph, self.data, [r[4] for r in runs], callbacks=logs,
                                               keep_model=False)
                finally:
                    for log in logs:
                        if log is not None:
                            log.close()
                for (trial, cand, seed, confirms, _), res in zip(runs, results):
                    bstudy.tell(trial, self._finish(trial, cand, seed, confirms, res))
                    tick()
        except BaseException:
            for trial, *_ in asked:  # a crash: fail what was asked and not told, then raise
                if bstudy._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                    bstudy.tell(trial, state=TrialState.FAIL)
            raise


def _trials(bstudy: optuna.Study, confirmations: bool, states=None) -> list[optuna.trial.FrozenTrial]:
    """The tuning trials (``confirmations=False``) or the confirmation runs of ``bstudy``."""
    return [t for t in bstudy.get_trials(deepcopy=False, states=states)
            if (confirmation_of(t) is not None) == confirmations]


class _Bar:
    """The baseline phase's tqdm bar: finished tuning trials, then confirmation runs, with an ETA.

    It polls the baseline study (other workers' runs count too). Its total is
    the tuning trials plus the confirmation runs planned: at most
    ``min(trials, confirm_top * tasks) * confirm_seeds`` until the shortlist
    is known, then exactly the runs enqueued. ``enabled=None`` shows it only
    when stderr is a terminal (tqdm's ``disable=None``).
    """

    def __init__(self, bstudy: optuna.Study, space: SearchSpace, n_tasks: int, enabled: bool | None) -> None:
        from tqdm.auto import tqdm

        self.bstudy = bstudy
        most = min(space.baseline_trials, space.baseline_confirm_top * n_tasks) * space.baseline_confirm_seeds
        self.bar = tqdm(total=space.baseline_trials + most, desc="baselines", unit="run", dynamic_ncols=True,
                        disable=None if enabled is None else not enabled)
        self()

    def __call__(self, study: Any = None, trial: Any = None) -> None:
        """Count the finished runs (an Optuna callback: ``(study, trial)``, both ignored)."""
        if self.bar.disable:
            return
        tuning = len(_trials(self.bstudy, False, FINISHED))
        confirming = len(_trials(self.bstudy, True, FINISHED))
        if confirmations_enqueued(self.bstudy):
            self.bar.total = tuning + len(_trials(self.bstudy, True))
        self.bar.set_postfix_str("confirming seeds" if confirmations_enqueued(self.bstudy) else "tuning",
                                 refresh=False)
        self.bar.update(tuning + confirming - self.bar.n)

    def close(self) -> None:
        self()
        self.bar.close()


def _wait_running(bstudy: optuna.Study, tick=None) -> None:
    """Wait until no trial of ``bstudy`` runs (other workers finish theirs first); ``tick()`` each second.

    A dead worker's trial is failed and queued again by the sweep
    (:func:`~sharesearch.search._liveness.sweep_dead_trials`), so the wait ends.
    """
    def idle() -> bool:
        if tick is not None:
            tick()
        return not bstudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))

    sweep_dead_trials(bstudy)
    wait_until(idle, poll=1.0, sweep=bstudy)


def ensure_baselines(study: optuna.Study, data: MultiTaskData, space: SearchSpace, train_base: TrainConfig,
                     *, progress: bool | None = None, worker: int = 0,
                     run_dir: str | Path | None = None) -> dict[str, TaskBaseline]:
    """Tune (once) and return each task's baseline, chosen on the mean of the confirmation seeds.

    Returns ``{task: TaskBaseline}``; raises :class:`SearchError` when some
    task got no finite validation metric from any baseline trial. While it
    tunes, a ``baselines`` progress bar counts the tuning trials, then the
    confirmation runs, with an ETA on stderr: ``progress=None`` shows it only
    when stderr is a terminal, ``True`` always, ``False`` never. ``worker``
    seeds this worker's tuning sampler (:func:`~sharesearch.search._study.worker_seed`),
    so workers tuning at once try different configurations. A tuning or
    confirmation run whose worker died is failed and run again. A task whose
    chosen baseline is absurd (:func:`~sharesearch.search._validate.check_baseline_sane`:
    not finite, or far worse than predicting the training mean) stops the
    search with :class:`SearchError` before it becomes the control. With a
    ``run_dir``, each run's evaluations go to its training log there, one
    file per task (:func:`~sharesearch.search._log.baseline_log`).
    """
    StudyContext.from_study(study)  # a sharesearch study, or a clear error
    cand0 = space.sample_baseline(optuna.trial.FixedTrial(space.baseline_default_params()), data.tasks,
                                  data.input_shape)
    budget = {k: v for k, v in cand0.train.items() if k not in ("lr", "weight_decay", "batch_size")}
    budget.update(trials=space.baseline_trials, confirm_seeds=space.baseline_confirm_seeds,
                  confirm_top=space.baseline_confirm_top)
    key = _baseline_key(data, space, budget, train_base.seed)
    stored = BaselineSet.from_study(study)
    if stored is not None and stored.key == key:
        return stored.tasks
    bstudy = optuna.create_study(study_name=baseline_study_name(study.study_name), storage=study._storage,
                                 direction="maximize", load_if_exists=True,
                                 sampler=optuna.samplers.TPESampler(seed=worker_seed(train_base.seed, worker),
                                                                    n_startup_trials=4))
    if not baseline_default_enqueued(bstudy):
        bstudy.enqueue_trial(space.baseline_default_params())
        mark_baseline_default_enqueued(bstudy)
    bar = _Bar(bstudy, space, len(data.tasks), progress)
    try:
        _run(bstudy, data, space, _Runs(data, space, train_base, Path(run_dir) if run_dir is not None else None), bar)
    finally:
        bar.close()
    stored = BaselineSet.from_study(study)  # another worker may have chosen meanwhile: all use one choice
    if stored is not None and stored.key == key:
        return stored.tasks
    best = _choose(bstudy, data, space.baseline_confirm_top)
    for spec in data.tasks:
        value = best[spec.name].val_metric
        check_baseline_sane(spec.name, spec.primary_metric, value,
                            mean_predictor_metric(data, spec.name, spec.primary_metric))
    BaselineSet(key=key, tasks=best).save(study)
    return best


def _run(bstudy: optuna.Study, data: MultiTaskData, space: SearchSpace, objective: _Runs, bar: _Bar) -> None:
    """Run the tuning trials still due, enqueue the confirmation runs (once), run those still waiting.

    Loops until nothing waits or runs: a run whose worker died comes back as a
    WAITING retry (a failed tuning trial that was retried no longer counts).
    """
    n = space.baseline_trials
    while (done := _counted(bstudy, False)) < n and not confirmations_enqueued(bstudy):
        bstudy.optimize(objective, n_trials=n - done, show_progress_bar=False, callbacks=[bar])
        _wait_running(bstudy, bar)
    _wait_running(bstudy, bar)
    seeds = confirmation_seeds(space.baseline_confirm_seeds)
    if seeds and not confirmations_enqueued(bstudy):
        shortlisted_by: dict[int, list[str]] = {}  # tuning trial -> the tasks that shortlisted it, in data order
        for task, numbers in _shortlist(bstudy, data, space.baseline_confirm_top).items():
            for number in numbers:
                shortlisted_by.setdefault(number, []).append(task)
        for number in sorted(shortlisted_by):
            params = bstudy.trials[number].params
            for s in seeds:
                bstudy.enqueue_trial(params, user_attrs=confirmation_attrs(s, number, shortlisted_by[number]))
        mark_confirmations_enqueued(bstudy)
        bar()
    while True:
        objective.confirm_waiting(bstudy, bar)
        _wait_running(bstudy, bar)
        if not bstudy.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return


def _counted(bstudy: optuna.Study, confirmations: bool) -> int:
    """Counted finished tuning trials (``confirmations=False``) or confirmation runs (retried failures left out)."""
    gone = superseded(bstudy.get_trials(deepcopy=False))
    return sum(1 for t in _trials(bstudy, confirmations, FINISHED) if t.number not in gone)


def _primary(rec: BaselineTrialRecord, spec) -> float:
    return rec.val_metrics.get(spec.name, {}).get(spec.primary_metric, float("nan"))


def _shortlist(bstudy: optuna.Study, data: MultiTaskData, top: int) -> dict[str, list[int]]:
    """Each task's ``top`` completed tuning trials, best single-seed primary validation metric first."""
    recs = [(t.number, BaselineTrialRecord.from_trial(t))
            for t in _trials(bstudy, False, (TrialState.COMPLETE,))]
    out = {}
    for spec in data.tasks:
        ok = [(n, v) for n, r in recs if math.isfinite(v := _primary(r, spec))]
        ok.sort(key=lambda nv: (-sign(spec.primary_metric) * nv[1], nv[0]))
        out[spec.name] = [n for n, _ in ok[:top]]
    return out


def _choose(bstudy: optuna.Study, data: MultiTaskData, top: int) -> dict[str, TaskBaseline]:
    """Each task's shortlisted configuration with the best mean over its confirmation seeds.

    Without confirmation runs (``confirm_seeds = 0``) the best single-seed
    tuning trial is kept, as one value with no spread.
    """
    tuning = {t.number: BaselineTrialRecord.from_trial(t) for t in _trials(bstudy, False, (TrialState.COMPLETE,))}
    runs: dict[int, dict[int, BaselineTrialRecord]] = {}  # tuning trial -> seed -> run (duplicates dropped)
    for t in sorted(_trials(bstudy, True, (TrialState.COMPLETE,)), key=lambda t: t.number):
        seed, number = confirmation_of(t)
        runs.setdefault(number, {}).setdefault(seed, BaselineTrialRecord.from_trial(t))
    shortlist = _shortlist(bstudy, data, top)
    best: dict[str, TaskBaseline] = {}
    for spec in data.tasks:
        for number in shortlist[spec.name]:
            by_seed = runs.get(number) or {None: tuning[number]}
            cand = _task_baseline(spec, number, tuning[number], by_seed)
            cur = best.get(spec.name)
            if cand is not None and (cur is None or sign(spec.primary_metric) * (cand.val_metric - cur.val_metric) > 0):
                best[spec.name] = cand
    missing = [t.name for t in data.tasks if t.name not in best]
    if missing:
        raise SearchError(f"baseline tuning produced no finite validation metric for task(s) {missing}")
    return best


def _task_baseline(spec, number: int, rec: BaselineTrialRecord, by_seed: Mapping[int | None, BaselineTrialRecord]
                   ) -> TaskBaseline | None:
    """The task's baseline from one configuration's runs (``None`` if a seed gave no finite metric)."""
    seeds = sorted(by_seed, key=lambda s: -1 if s is None else s)
    values = [_primary(by_seed[s], spec) for s in seeds]
    if not values or not all(math.isfinite(v) for v in values):
        return None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else None
    metrics = {m: statistics.fmean(by_seed[s].val_metrics[spec.name][m] for s in seeds)
               for m in by_seed[seeds[0]].val_metrics[spec.name]}
    return TaskBaseline(val_metric=mean, val_metrics=metrics, config=rec.train, graph=rec.graph, trial=number,
                        metric=spec.primary_metric, width_scale=rec.width_scale,
                        tuning_val_metric=_primary(rec, spec), seed_values=tuple(values),
                        seeds=tuple(s for s in seeds if s is not None), val_sd=sd,
                        val_cv=sd / abs(mean) if sd is not None and mean != 0 else None,
                        best_steps=tuple(int((by_seed[s].best_step or {}).get(spec.name, -1)) for s in seeds))

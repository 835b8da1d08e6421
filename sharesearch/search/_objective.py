"""The objective every worker optimises: validation Δm against the tuned baselines.

Validation Δm (Maninis et al. 2019) is the priority-weighted mean over tasks
of the signed relative difference to the tuned baseline; positive is better
than independent. Multi-objective mode adds parameter count, FLOPs and/or the
worst task's Δ and yields a Pareto front. Budgets (``max_params`` /
``max_flops``) are constraints (``trial.set_constraint``) checked before any
training. Single-objective studies report Δm at every evaluation with the
optimizer steps done as Optuna's step (the pruner's resource, so batch sizes
are compared at equal updates); reference architectures report but are never
pruned. A candidate whose canonical graph and training parameters were
already trained reuses that result instead of training again; one that
another worker is training now waits for that result (a candidate pruned in
training is pruned again, one whose worker died is trained here), so no two
workers ever train the same candidate. The enqueued
``independent`` reference is the control itself (each task's own tuned
baseline configuration): it is recorded with ``control=True`` and Δ = 0 per
task, not trained here (one network cannot hold per-task batch sizes).

Example
-------
>>> from sharesearch.data import load_data
>>> data = load_data("synthetic-mmoe", n=200, d=4, seed=0, clusters=[[0, 1]])
>>> base = {t: TaskBaseline(val_metric=1.0, val_metrics={}, config={}, graph={}, trial=0,
...                         metric="rmse", width_scale=1.0) for t in data.task_names}
>>> d = task_deltas(data, {"t0": 0.9, "t1": 1.2}, base)
>>> [round(v, 2) for v in d.values()], round(weighted_mean(data, d), 2)
([0.1, -0.2], -0.05)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .. import fmt
from ..data import MultiTaskData
from ..space import Candidate, SearchSpace
from ..tasks import metric_direction
from ..training import Progress, TrainConfig, TrainResult, train_population
from ..verdict import relative_delta
from ._config import SearchConfig
from ._liveness import wait_until, worker_id
from ._log import EvalLog, trial_log
from ._records import StudyContext, TaskBaseline, TrialRecord
from ._study import prune_steps

__all__ = ["make_objective", "TrialRunner", "PendingTrial", "task_deltas", "weighted_mean", "objective_values",
           "close_logs"]


def task_deltas(data: MultiTaskData, primary: Mapping[str, float], baselines: Mapping[str, TaskBaseline]
                ) -> dict[str, float]:
    """Each task's signed relative difference to its baseline (NaN where undefined)."""
    out = {}
    for spec in data.tasks:
        m, s = primary.get(spec.name, float("nan")), baselines[spec.name].val_metric
        ok = math.isfinite(m) and s != 0
        out[spec.name] = relative_delta(m, s, metric_direction(spec.primary_metric)) if ok else float("nan")
    return out


def weighted_mean(data: MultiTaskData, deltas: Mapping[str, float]) -> float:
    """Δm: the priority-weighted mean of ``deltas`` (NaN if any is not finite)."""
    w = {t.name: t.weight for t in data.tasks}
    vals = [(w[t], d) for t, d in deltas.items()]
    if any(not math.isfinite(d) for _, d in vals):
        return float("nan")
    return sum(wi * d for wi, d in vals) / sum(wi for wi, _ in vals)


def objective_values(cfg: SearchConfig, dm: float, deltas: Mapping[str, float], n_params: int, flops: int
                     ) -> list[float]:
    """The trial's values, one per objective of ``cfg``."""
    available = {"delta_m": dm, "params": float(n_params), "flops": float(flops),
                 "worst_delta": min(deltas.values()) if deltas else float("nan")}
    return [available[o] for o in cfg.objectives]


def _candidate_record(rec: TrialRecord, cand: Candidate, ref_by_key: Mapping[str, str]) -> TrialRecord:
    graph = cand.graph
    key = graph.key()
    return replace(rec, graph=graph.to_dict(), graph_key=key, train=cand.train,
                   cache_key=key + ":" + json.dumps(cand.train, sort_keys=True),
                   n_params=graph.n_params(), flops=graph.flops(), reference=ref_by_key.get(key, rec.reference))


def _over_budget(trial: optuna.Trial, rec: TrialRecord, cfg: SearchConfig) -> str | None:
    """Set the budget constraints; the reason the candidate is over budget, or ``None``."""
    if cfg.max_params is not None:
        trial.set_constraint("max_params", rec.n_params - cfg.max_params)
    if cfg.max_flops is not None:
        trial.set_constraint("max_flops", rec.flops - cfg.max_flops)
    for name, v, b in (("parameters", rec.n_params, cfg.max_params), ("FLOPs", rec.flops, cfg.max_flops)):
        if b is not None and v > b:
            return f"over budget: {v} {name} > {b}"
    return None


def _twins(study: optuna.Study, number: int, cache_key: str) -> list[optuna.trial.FrozenTrial]:
    """Other trials of the same canonical candidate (graph and training settings), not the control."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)):
        rec = TrialRecord.from_trial(t)
        if t.number != number and rec.cache_key == cache_key and not rec.control:
            out.append(t)
    return out


def _order(t: optuna.trial.FrozenTrial) -> tuple:
    """The order in which trials claim a candidate: when they started, then their number."""
    return (t.datetime_start or datetime.max, t.number)


def _first_claim(study: optuna.Study, trial: optuna.Trial, cache_key: str
                 ) -> optuna.trial.FrozenTrial | None:
    """The trial this one must wait for or reuse: a twin that finished, or one that started first; ``None``: train.

    Every worker writes a trial's candidate (its ``cache_key``) before it
    looks for twins, and a RUNNING trial that started earlier and has not
    written its candidate yet is waited for, so of two trials of one candidate
    that run at once, the later one always sees the earlier one (stored
    start time, then number, is a total order every worker reads alike; across
    machines it needs their clocks to agree to well under a trial's sampling
    time, as NTP does). A pruned twin is reused too: the same candidate with
    the same seed would be pruned (or diverge) again.
    """
    me = study._storage.get_trial(trial._trial_id)

    def sampling() -> bool:  # an earlier trial is still sampling: its candidate may be this one
        return any(_order(t) < _order(me) and TrialRecord.from_trial(t).cache_key is None
                   for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    wait_until(lambda: not sampling(), poll=0.2, sweep=study)
    twins = _twins(study, trial.number, cache_key)
    done = [t for t in twins if t.state != TrialState.RUNNING]
    if done:
        return min(done, key=lambda t: t.number)
    earlier = [t for t in twins if _order(t) < _order(me)]
    return min(earlier, key=_order) if earlier else None


def _reuse(study: optuna.Study, trial: optuna.Trial, rec: TrialRecord, twin: optuna.trial.FrozenTrial,
           t0: float) -> optuna.trial.FrozenTrial:
    """Wait for ``twin`` to finish (sweeping dead workers' trials); its final state. Records the wait."""
    if twin.state == TrialState.RUNNING:
        replace(rec, status=f"waiting for trial {twin.number}, the same candidate").write(trial, since=rec)
        wait_until(lambda: study._storage.get_trial(twin._trial_id).state.is_finished(), sweep=study)
    return study._storage.get_trial(twin._trial_id)


def _control(trial: optuna.Trial, rec: TrialRecord, data: MultiTaskData, cfg: SearchConfig,
             baselines: Mapping[str, TaskBaseline], t0: float) -> float | list[float]:
    """Record the ``independent`` reference as the control: the baselines' means, Δ = 0 for every task."""
    primary = {t: b.val_metric for t, b in baselines.items()}
    deltas = task_deltas(data, primary, baselines)
    replace(rec, control=True, val_metrics=primary, val_deltas=deltas,
            best_step={t: int(max(b.best_steps, default=-1)) for t, b in baselines.items()},
            status="control", duration_s=time.perf_counter() - t0).write(trial, since=rec)
    vals = objective_values(cfg, weighted_mean(data, deltas), deltas, rec.n_params, rec.flops)
    return vals if cfg.multi_objective else vals[0]


@dataclass
class PendingTrial:
    """A sampled trial waiting to be trained (by itself or in a population)."""

    trial: optuna.Trial
    rec: TrialRecord  # what is recorded so far
    config: TrainConfig  # the training configuration of its run
    t0: float  # when the trial began (perf_counter)
    log: EvalLog | None = None  # its training log (TrialRunner.reporter opens it; finish closes it)


class TrialRunner:
    """The objective every worker optimises, in two halves around the training (see the module docstring).

    :meth:`begin` samples a candidate, records it (:class:`TrialRecord`) as soon
    as it is known, prunes it when over budget, returns the control's or an
    identical trained candidate's values, and otherwise returns a
    :class:`PendingTrial`; :meth:`finish` records a finished run and returns
    the trial's values. Between them the caller trains one pending trial or a
    population of them, each with its own :meth:`reporter` (which reports Δm at
    every evaluation and prunes). Calling the runner is the one-trial objective.
    With a ``run_dir``, each trained trial's evaluations also go to its log
    there (:mod:`sharesearch.search._log`); ``None``: no logs.
    """

    def __init__(self, study: optuna.Study, data: MultiTaskData, space: SearchSpace, cfg: SearchConfig,
                 train_base: TrainConfig, baselines: Mapping[str, TaskBaseline],
                 sampler_seed: int | None = None, run_dir: str | Path | None = None) -> None:
        self.study, self.data, self.space, self.cfg = study, data, space, cfg
        self.sampler_seed = sampler_seed  # recorded on every trial this worker proposes
        self.run_dir = run_dir  # the run folder its trials log to (None: no logs)
        self.train_base, self.baselines = train_base, baselines
        self.ref_by_key = {v: k for k, v in StudyContext.from_study(study).references.items()}

    def begin(self, trial: optuna.Trial) -> PendingTrial | float | list[float]:
        """Sample and record the candidate; its values when there is nothing to train (raises TrialPruned
        when it is over budget)."""
        t0, data, cfg = time.perf_counter(), self.data, self.cfg
        enqueued = TrialRecord.from_attrs(trial.user_attrs)  # what enqueueing recorded (an affinity tree's index)
        rec = TrialRecord(worker=worker_id(), sampler_seed=self.sampler_seed, affinity_tree=enqueued.affinity_tree,
                          tuned_from=enqueued.tuned_from, reference=enqueued.reference)
        rec.write(trial, since=enqueued)
        sampled = _candidate_record(rec, self.space.sample(trial, data.tasks, data.input_shape), self.ref_by_key)
        sampled.write(trial, since=rec)
        rec = sampled
        over = _over_budget(trial, rec, cfg)
        if over:
            replace(rec, status=over).write(trial, since=rec)
            raise optuna.TrialPruned(over)
        if TrialRecord.from_attrs(trial.user_attrs).reference == "independent" and rec.reference == "independent":
            return _control(trial, rec, data, cfg, self.baselines, t0)
        while (twin := _first_claim(self.study, trial, rec.cache_key)) is not None:
            prev = _reuse(self.study, trial, rec, twin, t0)
            if prev.state in (TrialState.COMPLETE, TrialState.PRUNED):  # else it failed: look again
                return self._reused(trial, rec, prev, t0)
        return PendingTrial(trial, rec, self.train_base.updated(**rec.train, seed=cfg.seed), t0)

    def _reused(self, trial: optuna.Trial, rec: TrialRecord, prev: optuna.trial.FrozenTrial, t0: float
                ) -> float | list[float]:
        """Record ``prev``'s outcome as this trial's (a pruned twin prunes this trial too)."""
        prec = TrialRecord.from_trial(prev)
        if prev.state == TrialState.PRUNED:
            why = f"pruned: trial {prev.number}, the same candidate, was {prec.status}"
            replace(rec, reused_from=prev.number, status=why, steps_run=prec.steps_run,
                    duration_s=time.perf_counter() - t0).write(trial, since=rec)
            raise optuna.TrialPruned(why)
        replace(rec, val_metrics=prec.val_metrics, val_deltas=prec.val_deltas, best_epoch=prec.best_epoch,
                best_step=prec.best_step, steps_run=prec.steps_run, reused_from=prev.number, status="reused",
                duration_s=time.perf_counter() - t0).write(trial, since=rec)
        return prev.values if self.cfg.multi_objective else prev.value

    def open_log(self, p: PendingTrial) -> EvalLog | None:
        """The trial's training log in the run folder (``None`` without one); closed by :meth:`finish`."""
        if self.run_dir is None:
            return None
        return trial_log(self.run_dir, p.trial.number, self.data, p.config, p.rec.sharing_graph().tasks)

    def reporter(self, p: PendingTrial) -> Callable[[int, dict[str, float], Progress], None]:
        """The trial's evaluation callback: log the evaluation, report Δm, raise TrialPruned when pruned."""
        data, cfg, trial, rec = self.data, self.cfg, p.trial, p.rec
        p.log = self.open_log(p)
        # references and the affinity's trees are prior choices, trained to the end: a quarter-budget, one-seed
        # Δm is too noisy to drop the data's own answer (the planted tree was pruned so in one search)
        prunable = rec.reference is None and rec.affinity_tree is None
        steps, asked = prune_steps(self.study.pruner), -1  # the pruner is asked only where it can decide

        def report(epoch: int, primary: dict[str, float], progress: Progress) -> None:
            nonlocal asked
            deltas = task_deltas(data, primary, self.baselines)
            dm = weighted_mean(data, deltas)
            if p.log is not None:
                p.log(epoch, primary, progress, deltas=deltas, delta_m=dm)
            if cfg.multi_objective:
                return
            if math.isfinite(dm):
                trial.report(dm, progress.step)  # the resource is optimizer steps, not epochs
                if prunable and steps.due(asked, progress.step):
                    asked = progress.step
                    if trial.should_prune():
                        replace(rec, status=f"pruned at step {progress.step}", steps_run=progress.step,
                                duration_s=time.perf_counter() - p.t0).write(trial, since=rec)
                        raise optuna.TrialPruned(f"pruned at step {progress.step} with validation Δm "
                                                 f"{fmt.delta(dm)}")

        return report

    def finish(self, p: PendingTrial, res: TrainResult) -> float | list[float]:
        """Record the trained run; the trial's values (re-raises a pruning, raises TrialPruned on divergence)."""
        data, cfg, rec = self.data, self.cfg, p.rec
        if p.log is not None:
            p.log.close()
        if res.status == "stopped" and res.interrupted is not None:
            raise res.interrupted
        done = replace(rec, duration_s=time.perf_counter() - p.t0,
                       status="trained" if res.status == "ok" else res.status)
        if res.status != "ok":
            replace(done, message=res.message).write(p.trial, since=rec)
            raise optuna.TrialPruned(f"{res.status}: {res.message}")
        primary = res.primary(data.tasks)
        deltas = task_deltas(data, primary, self.baselines)
        replace(done, val_metrics=primary, val_deltas=deltas, best_epoch=res.best_epoch, best_step=res.best_step,
                steps_run=res.steps_run).write(p.trial, since=rec)
        vals = objective_values(cfg, weighted_mean(data, deltas), deltas, rec.n_params, rec.flops)
        return vals if cfg.multi_objective else vals[0]

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        """The one-trial objective: begin, train alone, finish."""
        p = self.begin(trial)
        if not isinstance(p, PendingTrial):
            return p
        try:
            (res,) = train_population(p.rec.sharing_graph(), self.data, [p.config], callbacks=[self.reporter(p)],
                                      keep_model=False)
        finally:
            close_logs([p])
        return self.finish(p, res)


def close_logs(pending: Sequence[PendingTrial]) -> None:
    """Close the training logs of ``pending`` (after their training, whatever happened)."""
    for p in pending:
        if p.log is not None:
            p.log.close()


def make_objective(study: optuna.Study, data: MultiTaskData, space: SearchSpace, cfg: SearchConfig,
                   train_base: TrainConfig, baselines: Mapping[str, TaskBaseline],
                   sampler_seed: int | None = None, run_dir: str | Path | None = None) -> TrialRunner:
    """The objective every worker optimises: a :class:`TrialRunner` (callable on one trial)."""
    return TrialRunner(study, data, space, cfg, train_base, baselines, sampler_seed, run_dir)

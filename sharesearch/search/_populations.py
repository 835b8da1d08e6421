"""Trials in populations: a topology asked of the sampler, and companions that train with it.

A small candidate leaves a CPU or GPU mostly idle. With ``population`` k > 1
a worker asks the sampler for one trial (ask-and-tell), then enqueues k - 1
*companions*: trials whose parameters are the first trial's except the
training settings a population's members may differ in (learning rate and
weight decay, :data:`sharesearch.training.MEMBER_FIELDS`), which the sampler
chooses for each. The k trials share one topology, width, batch size and
budget, so they train as one population
(:func:`sharesearch.training.train_population`) for little more than the
price of one; each is still its own Optuna trial, reported, pruned (a pruned
member leaves the population) and told on its own. A search of N trials so
evaluates N / k topologies, each with k learning rates.

Companions are made only where a population can form (equal loss
weighting, not a reference architecture). k comes from the worker's device
(:func:`trial_population`), or from ``SearchConfig.population``; it never
makes the study overshoot its number of trials.

Example
-------
>>> trial_population("cpu"), trial_population("cpu", requested=4)
(1, 4)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import TrialState

from ..space import SearchSpace
from ..training import MEMBER_FIELDS, TrainConfig, population_groups, resolve_device, train_population
from ._objective import PendingTrial, TrialRunner
from ._study import ask, finished_count

__all__ = ["trial_population", "member_params", "optimize_in_populations"]


def trial_population(device: str, requested: int | None = None) -> int:
    """Trials trained together on ``device``: ``requested``, else 8 on a GPU and 1 (no companions) on a CPU.

    Measured on one CPU thread (``benchmarks/bench_population.py --sweep``,
    width-64 shared-bottom, 6 tasks): a member of a population of 2, 4, 8, 16
    costs 1/1.3, 1/2.3, 1/3.8, 1/5.4 of a run alone, and at width 256 a
    population of 8 only 1/1.14. So on a CPU k companions buy k learning
    rates of one topology for the price of about k/2.3 trials: more trials, but
    fewer topologies per hour than training each sampled topology alone, and
    the default leaves them off. On a GPU a small network leaves the device
    idle and the members come nearly free; 8 is a guess until measured on a
    GPU (none was lent when this was written).
    """
    if requested is not None:
        return requested
    return 8 if resolve_device(device).type == "cuda" else 1


def member_params(space: SearchSpace) -> set[str]:
    """The Optuna parameters of the training settings in which a population's members may differ."""
    out: set[str] = set()
    for key in MEMBER_FIELDS:
        f = space.fields.get(f"train.{key}")
        if f is not None and f.mode != "fixed":
            out |= {f.param} | ({f.off_param} if f.off_param else set())
    return out


def _poolable(cfg: TrainConfig) -> bool:
    """Whether runs of ``cfg`` with other learning rates can form one population."""
    return len(population_groups([cfg, cfg.updated(lr=cfg.lr * 2)])) == 1


def optimize_in_populations(study: optuna.Study, runner: TrialRunner, space: SearchSpace, *, population: int,
                            target: int, timeout: float | None = None,
                            callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = ()
                            ) -> None:
    """Run trials until the study has ``target`` finished ones (or ``timeout`` seconds passed), ``population``
    at a time (see the module docstring). An unexpected error fails the batch's trials and is raised."""
    t0, member = time.monotonic(), member_params(space)
    told: set[int] = set()  # trial numbers told (the rest of a crashed batch is failed)
    while (timeout is None or time.monotonic() - t0 < timeout):
        left = target - finished_count(study)
        if left <= 0:
            return
        batch: list[PendingTrial] = []
        try:
            lead = _begin(study, runner, ask(study), batch, told, callbacks)
            if lead is not None and population > 1 and lead.rec.reference is None and _poolable(lead.config):
                fixed = {k: v for k, v in lead.trial.params.items() if k not in member}
                for _ in range(min(population, left) - 1):
                    study.enqueue_trial(fixed, skip_if_exists=False)
                    _begin(study, runner, ask(study), batch, told, callbacks)
            _train(study, runner, batch, told, callbacks)
        except BaseException:
            for p in batch:  # a crash: fail whatever the batch left unfinished, then raise
                if p.trial.number not in told:
                    study.tell(p.trial, state=TrialState.FAIL)
            raise


def _begin(study: optuna.Study, runner: TrialRunner, trial: optuna.Trial, batch: list[PendingTrial],
           told: set[int], callbacks: Sequence[Callable]) -> PendingTrial | None:
    """Begin ``trial``: queue it in ``batch`` when it must train, else tell its outcome now."""
    try:
        out = runner.begin(trial)
    except optuna.TrialPruned:
        _tell(study, trial, None, told, callbacks)
        return None
    if isinstance(out, PendingTrial):
        batch.append(out)
        return out
    _tell(study, trial, out, told, callbacks)
    return None


def _train(study: optuna.Study, runner: TrialRunner, batch: list[PendingTrial], told: set[int],
           callbacks: Sequence[Callable]) -> None:
    by_graph: dict[str, list[PendingTrial]] = {}
    for p in batch:
        by_graph.setdefault(p.rec.graph_key, []).append(p)
    for group in by_graph.values():
        results = train_population(group[0].rec.sharing_graph(), runner.data, [p.config for p in group],
                                   callbacks=[runner.reporter(p) for p in group], keep_model=False)
        for p, res in zip(group, results):
            try:
                values = runner.finish(p, res)
            except optuna.TrialPruned:
                _tell(study, p.trial, None, told, callbacks)
            else:
                _tell(study, p.trial, values, told, callbacks)


def _tell(study: optuna.Study, trial: optuna.Trial, values: float | list[float] | None, told: set[int],
          callbacks: Sequence[Callable]) -> None:
    """Tell ``trial``'s values (``None``: pruned) and run the study callbacks, as ``study.optimize`` does."""
    frozen = (study.tell(trial, state=TrialState.PRUNED) if values is None else study.tell(trial, values))
    told.add(trial.number)
    for cb in callbacks:
        cb(study, frozen)

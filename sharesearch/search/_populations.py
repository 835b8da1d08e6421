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

Companions are made only where a population can form (every shipped loss
weighting can; not a reference architecture). k comes from the worker's device
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
from datetime import datetime

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from ..space import SearchSpace
from ..training import MEMBER_FIELDS, TrainConfig, population_groups, resolve_device, train_population
from ._liveness import Heartbeats, retry, sweep_dead_trials
from ._objective import PendingTrial, TrialRunner, close_logs
from ._records import TrialRecord
from ._references import enqueue_tuned_references, enqueue_tuned_trees
from ._study import ask, finished_count

_log = optuna.logging.get_logger(__name__)

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


#: seconds a worker waits, when the last trials run elsewhere, before it looks again
POLL_S = 1.0


def _earlier(t: optuna.trial.FrozenTrial, me: optuna.trial.FrozenTrial) -> bool:
    return (t.datetime_start or datetime.max, t.number) < (me.datetime_start or datetime.max, me.number)


def _admit(study: optuna.Study, trial: optuna.Trial, target: int) -> bool:
    """Whether ``trial`` (just asked) is within ``target``; if not, it goes back to the queue untouched.

    Within: the counted finished trials plus the RUNNING ones that started
    before it are fewer than ``target``. Every worker reads the same start
    order, so however many ask at once, at most ``target`` trials ever count;
    a trial asked beyond that returns to WAITING (as it came, with no
    parameters of its own unless it was enqueued with them) and trains nothing.
    """
    me = study._storage.get_trial(trial._trial_id)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ahead = sum(1 for t in running if t.number != me.number and _earlier(t, me))
    if finished_count(study) + ahead < target:
        return True
    study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
    return False


def _room(study: optuna.Study, target: int) -> int:
    """Trials still to ask for: ``target`` less the counted finished trials and the RUNNING ones."""
    return target - finished_count(study) - len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def optimize_in_populations(study: optuna.Study, runner: TrialRunner, space: SearchSpace, *, population: int,
                            target: int, timeout: float | None = None,
                            callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = ()
                            ) -> None:
    """Run trials until the study has ``target`` counted trials (or ``timeout`` seconds passed), ``population``
    at a time (see the module docstring). This is every worker's loop (``population=1``: one trial at a time).

    Exactly ``target``, however many workers join: a trial is asked only while
    finished plus running trials are fewer than ``target``, and kept only if
    it is within the target in start order (:func:`_admit`); when the last
    trials run elsewhere the worker waits (one of them may die, be failed and
    retried, and need a worker). Optuna's ``study.optimize`` with
    ``MaxTrialsCallback`` counts finished trials only, so parallel workers
    overshoot; this loop asks and tells itself, beating for its trials on
    databases (:class:`~sharesearch.search._liveness.Heartbeats`). An
    unexpected error fails the batch's unfinished trials with its message and
    is raised; an interruption (Ctrl-C) fails them too and queues them again,
    so a resumed search runs them.
    """
    t0, member = time.monotonic(), member_params(space)
    told: set[int] = set()  # trial numbers told (the rest of a crashed batch is failed)
    with Heartbeats(study._storage) as beats:
        while timeout is None or time.monotonic() - t0 < timeout:
            sweep_dead_trials(study)
            finished = finished_count(study)
            if finished >= target:
                return
            enqueue_tuned_trees(study, runner.data, space, target, finished)  # once, at half the budget
            enqueue_tuned_references(study, runner.data, space, target, finished)  # after the trees, same time
            left = _room(study, target)
            if left <= 0:
                time.sleep(POLL_S)
                continue
            batch: list[PendingTrial] = []
            asked: list[optuna.Trial] = []  # every trial this batch asked and kept
            try:
                trial = ask(study, beats)
                if not _admit(study, trial, target):
                    beats.discard(trial._trial_id)
                    time.sleep(POLL_S)
                    continue
                asked.append(trial)
                lead = _begin(study, runner, trial, batch, told, callbacks)
                if lead is not None and population > 1 and lead.rec.reference is None and _poolable(lead.config):
                    _companions(study, runner, lead, member, min(population, left) - 1, target, beats, batch, asked,
                                told, callbacks)
                _train(study, runner, batch, told, callbacks)
            except BaseException as e:
                _fail_unfinished(study, asked, told, e)
                raise
            finally:
                for t in asked:
                    beats.discard(t._trial_id)


def _companions(study: optuna.Study, runner: TrialRunner, lead: PendingTrial, member: set[str], n: int,
                target: int, beats: Heartbeats, batch: list[PendingTrial], asked: list[optuna.Trial], told: set[int],
                callbacks: Sequence[Callable]) -> None:
    """Enqueue and ask ``n`` companions of ``lead`` (each admitted like any trial)."""
    fixed = {k: v for k, v in lead.trial.params.items() if k not in member}
    for _ in range(n):
        study.enqueue_trial(fixed, user_attrs=TrialRecord(companion_of=lead.trial.number).to_attrs(),
                            skip_if_exists=False)
        trial = ask(study, beats)  # another worker may take this companion, and this worker another trial
        if not _admit(study, trial, target):
            beats.discard(trial._trial_id)
            return
        asked.append(trial)
        _begin(study, runner, trial, batch, told, callbacks)


def _fail_unfinished(study: optuna.Study, asked: list[optuna.Trial], told: set[int], err: BaseException) -> None:
    """Fail the untold ``asked`` trials with ``err`` as the reason; queue them again after an interruption."""
    interrupted = not isinstance(err, Exception)  # KeyboardInterrupt, SystemExit
    why = TrialRecord(status="interrupted" if interrupted else "error", message=f"{type(err).__name__}: {err}")
    for trial in asked:
        if trial.number in told or study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
            continue
        why.write(trial)
        study.tell(trial, state=TrialState.FAIL)
        if interrupted:
            retry(study, study._storage.get_trial(trial._trial_id))


def _begin(study: optuna.Study, runner: TrialRunner, trial: optuna.Trial, batch: list[PendingTrial],
           told: set[int], callbacks: Sequence[Callable]) -> PendingTrial | None:
    """Begin ``trial``: queue it in ``batch`` when it must train, else tell its outcome now."""
    try:
        out = runner.begin(trial)
    except optuna.TrialPruned:
        _tell_unless_swept(study, trial, None, told, callbacks)
        return None
    if isinstance(out, PendingTrial):
        batch.append(out)
        return out
    _tell_unless_swept(study, trial, out, told, callbacks)  # trained here already (e.g. the control)
    return None


def _train(study: optuna.Study, runner: TrialRunner, batch: list[PendingTrial], told: set[int],
           callbacks: Sequence[Callable]) -> None:
    by_graph: dict[str, list[PendingTrial]] = {}
    for p in batch:
        by_graph.setdefault(p.rec.graph_key, []).append(p)
    for group in by_graph.values():
        try:
            results = train_population(group[0].rec.sharing_graph(), runner.data, [p.config for p in group],
                                       callbacks=[runner.reporter(p) for p in group], keep_model=False)
        finally:
            close_logs(group)
        for p, res in zip(group, results):
            try:
                values = runner.finish(p, res)  # raises what stopped the run: a report to a swept trial does
            except optuna.TrialPruned:
                values = None
            except UpdateFinishedTrialError:
                _dropped(p.trial)
                continue
            _tell_unless_swept(study, p.trial, values, told, callbacks)


def _tell_unless_swept(study: optuna.Study, trial: optuna.Trial, values: float | list[float] | None, told: set[int],
                       callbacks: Sequence[Callable]) -> None:
    """:func:`_tell`, unless another worker's sweep failed ``trial`` while this one trained it: then its retry
    stands, and this result is dropped with a warning."""
    if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:  # Optuna refuses to tell it
        _dropped(trial)
        return
    try:
        _tell(study, trial, values, told, callbacks)
    except UpdateFinishedTrialError:  # a cached RUNNING state: the database knew better
        _dropped(trial)


def _dropped(trial: optuna.Trial) -> None:
    _log.warning("trial %d was marked failed by another worker's heartbeat sweep while this worker "
                 "trained it (a stalled heartbeat); its retry stands and this result is dropped", trial.number)


def _tell(study: optuna.Study, trial: optuna.Trial, values: float | list[float] | None, told: set[int],
          callbacks: Sequence[Callable]) -> None:
    """Tell ``trial``'s values (``None``: pruned) and run the study callbacks, as ``study.optimize`` does."""
    frozen = (study.tell(trial, state=TrialState.PRUNED) if values is None else study.tell(trial, values))
    told.add(trial.number)
    for cb in callbacks:
        cb(study, frozen)

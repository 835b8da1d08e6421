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

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import optuna

from ..data import MultiTaskData
from ..space import SearchSpace
from ..training import TrainConfig, step_budget
from ._config import SearchConfig, SearchError
from ._liveness import FINISHED, Heartbeats, counted_trials, local_lock, mark_worker
from ._records import StudyContext, StudyData
from ._storage import study_names

__all__ = ["prepare_study", "default_study_name", "legacy_study_name", "load_study_data", "make_sampler",
           "make_pruner", "PruneSteps", "prune_steps", "step_cap", "finished_count", "FINISHED", "ask", "worker_seed"]


def finished_count(study: optuna.Study) -> int:
    """Trials of ``study`` that count towards its target: finished (complete, pruned or failed), less the
    failed trials of dead workers that were retried (their retry counts instead)."""
    return counted_trials(study)


def default_study_name(data: MultiTaskData, space: SearchSpace, existing: Collection[str] = ()) -> str:
    """A readable name that resumes the same search: ``<data>-<space>-<6 hex digits>``.

    The digits hash the data's and the space's fingerprints together, so the
    same data and space give the same name (and resume the study) and any other
    pair gives another. A study made before names were readable
    (``<data>-<8 hex>-<8 hex>``, :func:`legacy_study_name`) keeps its name: when
    it is among ``existing`` (the studies already there) and the readable one
    is not, that old name is returned.

    >>> from sharesearch.data import load_data
    >>> from sharesearch.space import load_space
    >>> data, space = load_data("synthetic-mmoe", n=200, seed=0), load_space("tiny")
    >>> name = default_study_name(data, space)
    >>> name.startswith("synthetic-mmoe-tiny-"), len(name.rsplit("-", 1)[1])
    (True, 6)
    >>> old = legacy_study_name(data, space)
    >>> default_study_name(data, space, existing=[old]) == old
    True
    """
    digest = hashlib.sha256(f"{data.fingerprint()}:{space.fingerprint()}".encode()).hexdigest()[:6]
    readable = f"{_slug(data.name, 48)}-{_slug(space.name, 32)}-{digest}"
    legacy = legacy_study_name(data, space)
    return legacy if legacy in existing and readable not in existing else readable


def legacy_study_name(data: MultiTaskData, space: SearchSpace) -> str:
    """The default name of studies made before readable names (data name and two fingerprints)."""
    return f"{data.name}-{data.fingerprint()[:8]}-{space.fingerprint()[:8]}"


def _slug(text: str, most: int) -> str:
    """``text`` in the characters a study name allows (others become ``-``), at most ``most`` long."""
    slug = re.sub(r"[^A-Za-z0-9._+=-]+", "-", str(text)).strip("-._+=")[:most].rstrip("-._+=")
    return slug or "x"


def worker_seed(seed: int, worker: int = 0) -> int:
    """The sampler seed of worker number ``worker`` of a study seeded ``seed``: ``seed`` itself for worker 0.

    Workers that share a study must not share a sampler seed: their random
    start-up trials would be the same candidates. Each other worker number
    gets its own seed, the same on every run (NumPy's ``SeedSequence``).

    >>> worker_seed(7), worker_seed(7, 1) == worker_seed(7, 1) != worker_seed(7, 2)
    (7, True)
    """
    if worker == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def make_sampler(cfg: SearchConfig, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler ``cfg`` names, seeded for worker number ``worker`` (:func:`worker_seed`).

    TPE is Optuna's default with ``constant_liar=True``: the trials other
    workers are running count as bad results while it samples, so parallel
    workers do not all propose the same promising region (with one worker
    nothing is running while it samples, and the sampler is Optuna's default).
    """
    seed = worker_seed(cfg.seed, worker)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna's default TPE: on the planted-cluster proxy of benchmarks/bench_sampler.py it needed a
    # median 10 trials against 21 for multivariate TPE with 8 start-up trials (5 seeds).
    import warnings

    with warnings.catch_warnings():  # constant_liar is experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


#: share of the step cap a trial runs before its first pruning decision
FIRST_RUNG_SHARE = 0.25


def step_cap(space: SearchSpace, train_base: TrainConfig, data: MultiTaskData | None = None) -> int:
    """The largest number of optimizer steps a trial may take: the pruners' resource.

    The space's fixed ``max_steps`` (or the base config's); a space that still
    gives ``epochs`` needs ``data``: its largest epochs at its smallest batch size.

    >>> from sharesearch.space import load_space
    >>> step_cap(load_space("default"), TrainConfig())
    3000
    """
    f = space.fields.get("train.max_steps")
    if f is not None:
        return int(f.value)
    if train_base.max_steps is not None:
        return train_base.max_steps
    if data is None:
        raise SearchError(f"{space.source}: train.max_steps: the space gives no step budget; set it "
                          "(or pass the data to count epochs in steps)")
    ep, bs = space.fields.get("train.epochs"), space.fields.get("train.batch_size")
    return step_budget(train_base.updated(epochs=int(ep.max) if ep else train_base.epochs, max_steps=None,
                                          batch_size=int(bs.min) if bs else train_base.batch_size), data)


def make_pruner(cfg: SearchConfig, space: SearchSpace, train_base: TrainConfig,
                data: MultiTaskData | None = None) -> optuna.pruners.BasePruner:
    """The pruner ``cfg`` names; none for multi-objective studies, which Optuna cannot prune.

    Its resource is optimizer steps (the objective reports Δm at each
    evaluation under the step count), its maximum the step cap, and no trial
    is judged before :data:`FIRST_RUNG_SHARE` of the cap. On
    ``synthetic-planted`` (24 runs of the default space's budget: 2 seeds, lr
    1e-3..1e-2, batch 64/256, independent and shared-bottom) the slowest
    task's best step was 300-1500 (median 875) of the 3000 cap: a first rung
    at 750 steps falls before most runs peak but after ~20 epochs of batch 64,
    where the old rung (2 epochs) cut slow starters such as MMoE. Hyperband
    with ``reduction_factor=3`` from 1/4 of the cap has rungs at 1/4 and 3/4.

    >>> from sharesearch.space import load_space
    >>> p = make_pruner(SearchConfig(), load_space("default"), TrainConfig())
    >>> p._min_resource, p._max_resource
    (750, 3000)
    """
    if cfg.multi_objective or cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    cap = step_cap(space, train_base, data)
    first = max(1, int(cap * FIRST_RUNG_SHARE))
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=first - 1)
    return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=max(cap, first + 1), reduction_factor=3)


@dataclass(frozen=True)
class PruneSteps:
    """The reports at which a pruner can decide; asking it at any other only costs storage reads.

    Optuna's ``Trial.should_prune`` reads storage at every call (the study, the
    trial's completed rungs): ~3 ms on a local SQLite file, against a trial's
    ~60 evaluations of ~8 s in all. Hyperband (successive halving in each
    bracket) decides only at the first report at or past each rung
    ``min_resource * reduction_factor**j``; the median pruner at every report
    from its warm-up on. At every other report both return False without
    writing anything, so asking only when :meth:`due` gives the same decisions,
    recorded at the same steps (``tests/test_prune_steps.py`` checks it).

    >>> s = prune_steps(optuna.pruners.HyperbandPruner(min_resource=750, max_resource=3000, reduction_factor=3))
    >>> [step for step in range(50, 3001, 50) if s.due(-1 if step <= 750 else 750 if step <= 2250 else 2250, step)]
    [750, 2250]
    """

    first: int = 0  # no report before this step is judged (the median pruner's warm-up)
    base: int | None = None  # decisions only at rungs base * factor**j; None: at every report from ``first`` on
    factor: int = 2  # the rungs' ratio (Hyperband's reduction factor)
    never: bool = False  # the pruner never prunes (NopPruner)

    def due(self, asked: int, step: int) -> bool:
        """Whether a report at ``step`` can be judged, the pruner last asked at step ``asked`` (-1: never)."""
        if self.never or step < self.first:
            return False
        if self.base is None:
            return True
        rung = self.base  # the first rung not yet asked about
        while rung <= asked:
            rung *= self.factor
        return rung <= step


def prune_steps(pruner: optuna.pruners.BasePruner) -> PruneSteps:
    """When ``pruner`` can decide: exact for the pruners :func:`make_pruner` builds, every report for others.

    >>> prune_steps(optuna.pruners.MedianPruner(n_warmup_steps=749)).due(-1, 700)
    False
    >>> prune_steps(optuna.pruners.ThresholdPruner(lower=0.0)).due(-1, 50)  # any other pruner: every report
    True
    """
    kind = type(pruner)  # a subclass may decide elsewhere: it is asked at every report
    if kind is optuna.pruners.NopPruner:
        return PruneSteps(never=True)
    if kind is optuna.pruners.HyperbandPruner:
        base, factor = getattr(pruner, "_min_resource", None), getattr(pruner, "_reduction_factor", None)
        top = getattr(pruner, "_max_resource", None)  # "auto": the brackets are set at the first ask, from the
        # trials finished by then -- asking later could set others
        if all(isinstance(v, int) for v in (base, factor, top)) and base >= 1 and factor >= 2:
            return PruneSteps(base=base, factor=factor)  # no rung before base: ``due`` needs no ``first``
    if kind in (optuna.pruners.MedianPruner, optuna.pruners.PercentilePruner):
        warmup = getattr(pruner, "_n_warmup_steps", None)
        if isinstance(warmup, int):
            return PruneSteps(first=warmup)
    return PruneSteps()


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


def ask(study: optuna.Study, heartbeats: Heartbeats | None = None) -> optuna.Trial:
    """``study.ask()`` for trials trained in populations (ask-and-tell), marked with this worker.

    The trial records this worker (``host:pid``) at once, so a sweep finds it
    if the worker dies, and ``heartbeats`` (a running :class:`Heartbeats`)
    beats for it on a database. Without ``heartbeats`` an asked trial on a
    database sends none: only its own host's sweep can then find it dead.
    An RDB storage with heartbeats warns that heartbeats need
    ``Study.optimize``; the warning is silenced here, where it is handled,
    and nowhere else.
    """
    import warnings

    with warnings.catch_warnings(), local_lock(study._storage, "ask"):  # one enqueued trial, one worker
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        trial = study.ask()
    if heartbeats is not None:
        heartbeats.add(trial._trial_id)
    mark_worker(trial)
    return trial

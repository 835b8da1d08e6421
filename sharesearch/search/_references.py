"""The reference architectures, enqueued first and trained like the tuned baselines.

A new study enqueues the field's reference architectures (the names of
:data:`sharesearch.names.REFERENCES` the search config asks for and the space
can express) before anything is sampled, trained with the baselines' tuned
configuration (lr, weight decay, batch size) under the space's one step budget,
so that they are compared like with like. They are never pruned.

The ``independent`` reference is the control itself, not a network trained
with one shared configuration: the objective records it (``control=True``)
with each task's own baseline configuration and mean validation metric.

Right after the references come the sharing trees the data proposes: once per
study (when the space's ``branching.affinity`` is on, the default) a short
shared-bottom pass with the baselines' tuned training measures inter-task
affinity (:func:`sharesearch.affinity.measure_affinity`), its dendrogram is
cut into nested trees (:func:`~sharesearch.affinity.affinity_trees`), and
those the space expresses (and that are not a reference) are enqueued in the
space's own parameters, trained like the references and, like them, never
pruned; TPE learns on from there.
The pass and its trees are stored in the study (:class:`AffinityRecord`).

Those first trials give each tree every mechanism off and the baselines'
training, while the search's own trials tune width, conditioning, loss
weighting and training. On ``synthetic-planted`` that handicap was worth 5
points of validation Δm: the planted tree scored +4.0% with the reference
settings and +9.5% with the settings the search found. So once
:data:`TUNED_TREES_AT` of the trial budget has finished, each proposed tree is
enqueued once more on the settings of the best trial so far
(:func:`enqueue_tuned_trees`, ``TrialRecord.tuned_from``): the data proposes
the topology, the search the rest. These trials are not pruned either, and
the verdict retrains each tree in the version that scored higher (the tuned
settings are not always better for a tree: on ``synthetic-planted`` data seed
1, the planted tree's verdict arm scored +14.9% on validation as first
enqueued in one recovery run, and +6.8% on the best trial's settings in another).

The references get the same second chance (:func:`enqueue_tuned_references`):
at the same point each one but the control is enqueued again with the best
trial's training and width (lr, weight decay, batch size, loss weighting, task
sampling, width multiplier), its topology and mechanisms its own, so that a
reference is not judged on settings no candidate was held to. The verdict
retrains each in its better version. The ``independent`` reference keeps the
baselines' tuning: it is the control.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import optuna

from ..affinity import affinity_for_space
from ..data import MultiTaskData
from ..space import SearchSpace
from ._records import (AffinityRecord, StudyContext, TaskBaseline, TrialRecord, mark_references_enqueued,
                       mark_references_tuned, references_enqueued, references_tuned_from)
from ._study import finished_count

__all__ = ["enqueue_references", "reference_training", "ensure_affinity", "enqueue_tuned_trees",
           "enqueue_tuned_references", "TUNED_TREES_AT"]

#: the most trees enqueued from the affinity
AFFINITY_TREES = 4
#: share of the trial budget finished before the affinity's trees are tried again on the best trial's settings
TUNED_TREES_AT = 0.5


def _tuned_config(baselines: Mapping[str, TaskBaseline]) -> dict[str, Any]:
    """The most common tuned baseline configuration (TrainConfig field -> value)."""
    configs = Counter(json.dumps(b.config, sort_keys=True) for b in baselines.values())
    return json.loads(configs.most_common(1)[0][0])


def reference_training(space: SearchSpace, baselines: Mapping[str, TaskBaseline]) -> dict[str, Any]:
    """Trial parameters giving the reference architectures the baselines' tuned training.

    The most common tuned baseline configuration (lr, weight decay, batch
    size), clipped into the candidates' ranges: a reference is then compared
    with baselines trained the same way, not with defaults. The step budget
    (``max_steps``, ``patience``, ...) is the space's fixed value for every run.
    """
    config = _tuned_config(baselines)
    out: dict[str, Any] = {}
    for key in ("lr", "weight_decay", "epochs", "batch_size"):
        f = space.fields.get(f"train.{key}")
        if f is None or key not in config:
            continue
        value = config[key]
        if f.mode == "range" and value != 0:
            value = min(max(value, f.low), f.high)
        if f.can_be(value):
            out.update(f.params_for(value))
    return out


def enqueue_references(study: optuna.Study, data: MultiTaskData, space: SearchSpace,
                       baselines: Mapping[str, TaskBaseline]) -> list[str]:
    """Enqueue the reference architectures (once per study), trained like the tuned baselines.

    Returns the names enqueued now (empty when they already were).
    """
    if references_enqueued(study):
        return []
    ctx = StudyContext.from_study(study)
    names = list(ctx.references)
    training = reference_training(space, baselines)
    room = ctx.search.n_trials - len(names)  # trees beyond the trial budget would never run
    # measured before enqueueing anything, so a worker killed in the pass never enqueues the references twice
    affinity = ensure_affinity(study, data, space, baselines, room) if room > 0 else None
    for name in names:
        params = {**space.reference_params(name, data.tasks), **training}
        study.enqueue_trial(params, user_attrs=TrialRecord(reference=name).to_attrs())
    for i in affinity.enqueued if affinity is not None else ():
        params = {**space.tree_params(affinity.trees[i], data.tasks, data.input_shape), **training}
        study.enqueue_trial(params, user_attrs=TrialRecord(affinity_tree=i).to_attrs())
    mark_references_enqueued(study)
    return names


def ensure_affinity(study: optuna.Study, data: MultiTaskData, space: SearchSpace,
                    baselines: Mapping[str, TaskBaseline], room: int = AFFINITY_TREES) -> AffinityRecord | None:
    """The study's affinity record: measured once (and stored), then read back.

    At most ``room`` (and :data:`AFFINITY_TREES`) trees are marked to enqueue.
    ``None`` when the space turns it off (``branching.affinity = false``),
    fixes the task tree, or there are fewer than 3 tasks. The pass trains the
    shared-bottom graph of the space's default backbone with the baselines'
    tuned lr, weight decay and batch size and the search's seed.
    """
    if not space.affinity or not space.branch_params(data.tasks) or len(data.tasks) < 3:
        return None
    stored = AffinityRecord.from_study(study)
    if stored is not None:
        return stored
    ctx = StudyContext.from_study(study)
    tuned = {k: v for k, v in _tuned_config(baselines).items() if k in ("lr", "weight_decay", "batch_size")}
    config = ctx.train.updated(**tuned, seed=ctx.search.seed)
    aff, trees = affinity_for_space(data, space, config, max_trees=AFFINITY_TREES)
    refs = set(ctx.references.values())
    enqueued = []
    for i, tree in enumerate(trees):
        params = space.tree_params(tree, data.tasks, data.input_shape)
        if params is not None and space.build(params, data.tasks, data.input_shape).graph.key() not in refs:
            enqueued.append(i)
    enqueued = enqueued[:room]
    record = AffinityRecord(affinity=aff, kind="cosine", trees=tuple(trees), enqueued=tuple(enqueued),
                            config={k: getattr(config, k) for k in ("lr", "weight_decay", "batch_size", "seed")})
    record.save(study)
    return record


def _room(study: optuna.Study, target: int, done: int, *also: optuna.trial.TrialState) -> int:
    """Trials the budget ``target`` has left after ``done`` finished ones, the running ones and any in ``also``."""
    states = (optuna.trial.TrialState.RUNNING, *also)
    return target - done - len(study.get_trials(deepcopy=False, states=states))


def _best_sampled(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The completed trial with the best first objective among those the sampler chose (no reference,
    no affinity tree, no control); None when there is none yet."""
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    best = None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        rec = TrialRecord.from_trial(t)
        if rec.reference is not None or rec.affinity_tree is not None or not math.isfinite(t.values[0]):
            continue
        if best is None or sign * t.values[0] > sign * best.values[0]:
            best = t
    return best


def enqueue_tuned_trees(study: optuna.Study, data: MultiTaskData, space: SearchSpace, target: int,
                        finished: int | None = None) -> list[int]:
    """Enqueue the affinity's trees again on the best trial's settings, once, after :data:`TUNED_TREES_AT`
    of the ``target`` trials finished (see the module docstring).

    Returns the indices of the trees enqueued now (empty when it is too early, it already happened, there
    is no affinity record or no completed sampled trial, or no room is left in the budget). A tree whose
    tuned parameters the space cannot build (see :meth:`SearchSpace.tree_params`) is left out; the record
    says which trees were enqueued and from which trial. ``finished``: the study's finished count when the
    caller has just read it (the trial loop), so that before half the budget nothing more is read.
    """
    done = finished_count(study) if finished is None else finished
    if done < math.ceil(TUNED_TREES_AT * target):
        return []
    record = AffinityRecord.from_study(study)
    if record is None or not record.enqueued or record.tuned_from is not None:
        return []
    best = _best_sampled(study)
    room = _room(study, target, done)
    if best is None or room <= 0:
        return []
    tuned = []
    for i in record.enqueued[:room]:
        params = space.tree_params(record.trees[i], data.tasks, data.input_shape, base=best.params)
        if params is None:
            continue
        study.enqueue_trial(params, user_attrs=TrialRecord(affinity_tree=i, tuned_from=best.number).to_attrs(),
                            skip_if_exists=True)
        tuned.append(i)
    replace(record, tuned_from=best.number, tuned=tuple(tuned)).save(study)
    return tuned


def enqueue_tuned_references(study: optuna.Study, data: MultiTaskData, space: SearchSpace, target: int,
                             finished: int | None = None) -> list[str]:
    """Enqueue the reference architectures again on the best trial's training and width, once, after
    :data:`TUNED_TREES_AT` of the ``target`` trials finished (see the module docstring).

    A reference as first enqueued trains with the baselines' most common configuration at the space's
    default width, while every sampled trial tunes its own; this second version gives it the tuning effort
    the search spent (the best trial's lr, weight decay, batch size, loss weighting, task sampling and
    width), its topology and mechanisms kept (:meth:`SearchSpace.reference_params`). The ``independent``
    reference is the control and keeps the baselines' own tuning. The verdict retrains each reference in
    the version with the higher value. Returns the names enqueued now (empty when it is too early, it
    already happened, no sampled trial has completed, or no room is left in the budget).
    """
    done = finished_count(study) if finished is None else finished
    if done < math.ceil(TUNED_TREES_AT * target) or references_tuned_from(study) is not None:
        return []
    best = _best_sampled(study)
    if best is None:
        return []
    room = _room(study, target, done, optuna.trial.TrialState.WAITING)  # the trees just enqueued come first
    names = [n for n in StudyContext.from_study(study).references if n != "independent"][:max(room, 0)]
    for name in names:
        study.enqueue_trial(space.reference_params(name, data.tasks, base=best.params),
                            user_attrs=TrialRecord(reference=name, tuned_from=best.number).to_attrs(),
                            skip_if_exists=True)
    mark_references_tuned(study, best.number)
    return names

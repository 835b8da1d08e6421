"""The reference architectures, enqueued first and trained like the tuned baselines.

A new study enqueues the field's reference architectures (the names of
:data:`sharesearch.names.REFERENCES` the search config asks for and the space
can express) before anything is sampled, trained with the baselines' tuned
configuration (lr, weight decay, batch size) under the space's one step budget,
so that they are compared like with like. They are never pruned.

The ``independent`` reference is the control itself, not a network trained
with one shared configuration: the objective records it (``control=True``)
with each task's own baseline configuration and mean validation metric.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import optuna

from ..data import MultiTaskData
from ..space import SearchSpace
from ._records import StudyContext, TaskBaseline, TrialRecord, mark_references_enqueued, references_enqueued

__all__ = ["enqueue_references", "reference_training"]


def reference_training(space: SearchSpace, baselines: Mapping[str, TaskBaseline]) -> dict[str, Any]:
    """Trial parameters giving the reference architectures the baselines' tuned training.

    The most common tuned baseline configuration (lr, weight decay, batch
    size), clipped into the candidates' ranges: a reference is then compared
    with baselines trained the same way, not with defaults. The step budget
    (``max_steps``, ``patience``, ...) is the space's fixed value for every run.
    """
    configs = Counter(json.dumps(b.config, sort_keys=True) for b in baselines.values())
    config = json.loads(configs.most_common(1)[0][0])
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
    names = list(StudyContext.from_study(study).references)
    training = reference_training(space, baselines)
    for name in names:
        params = {**space.reference_params(name, data.tasks), **training}
        study.enqueue_trial(params, user_attrs=TrialRecord(reference=name).to_attrs())
    mark_references_enqueued(study)
    return names

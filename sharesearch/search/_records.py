"""Typed records of what a study stores, and the one place that knows Optuna's attribute keys.

A study's state lives in Optuna user attributes (JSON values), so any worker
on any machine reads the same thing. Each record below owns its conversion
to and from those attributes; no other module reads an attribute key.

* :class:`StudyContext` -- the study attribute ``sharesearch``: everything a
  worker needs (data source and fingerprint, space, configurations).
* :class:`TrialRecord` -- a search trial's user attributes.
* :class:`BaselineTrialRecord` -- a trial of the baseline-tuning study.
* :class:`TaskBaseline` / :class:`BaselineSet` -- each task's tuned
  baseline, stored in the study attribute ``baselines``.
* :class:`AffinityRecord` -- the inter-task affinity measured once per study
  and the sharing trees it proposed, stored in the study attribute ``affinity``.

Example
-------
>>> rec = TrialRecord(graph_key="abc", n_params=120, status="trained")
>>> rec.to_attrs()
{'graph_key': 'abc', 'n_params': 120, 'status': 'trained'}
>>> TrialRecord.from_attrs(rec.to_attrs()) == rec
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import optuna

from ..affinity import Affinity, Tree
from ..data import MultiTaskData, load_data
from ..graph import SharingGraph
from ..space import SearchSpace
from ..training import TrainConfig
from ._config import SearchConfig, SearchError

__all__ = ["StudyContext", "StudyData", "TrialRecord", "BaselineTrialRecord", "TaskBaseline", "BaselineSet",
           "AffinityRecord",
           "read_verdict", "write_verdict", "references_enqueued", "mark_references_enqueued",
           "references_tuned_from", "mark_references_tuned"]

_CONTEXT = "sharesearch"  # study attribute: StudyContext
_BASELINES = "baselines"  # study attribute: BaselineSet
_VERDICT = "verdict"  # study attribute: the verdict dict (schema in sharesearch.report)
_AFFINITY = "affinity"  # study attribute: AffinityRecord
_TRANSFER = "transfer"  # study attribute: a TransferResult dict ("transfer:<task>": a new task's)
_REFERENCES_ENQUEUED = "references_enqueued"  # study attribute: the references were enqueued
_REFERENCES_TUNED = "references_tuned_from"  # study attribute: the trial whose settings the references took
_BASELINE_ENQUEUED = "enqueued"  # attribute of <study>.baselines: its default trial was enqueued
_CONFIRM_ENQUEUED = "confirm_enqueued"  # attribute of <study>.baselines: its confirmation runs were enqueued


def _drop_none(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record) if getattr(record, f.name) is not None}


def _pick(cls: type, attrs: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in attrs.items() if k in names}


# ------------------------------------------------------------------ study
@dataclass(frozen=True)
class StudyData:
    """Where a study's data comes from and what it must be."""

    source: dict[str, Any]  # {"source": ..., "options": {...}}: the arguments of sharesearch.data.load_data
    name: str  # MultiTaskData.name
    fingerprint: str  # MultiTaskData.fingerprint(): every worker's data must match it
    tasks: tuple[dict[str, Any], ...]  # TaskSpec.to_dict() of each task, in order
    input_shape: tuple[int, ...]  # shape of one example
    split_seed: int  # seed of the train/val/test split

    @classmethod
    def of(cls, data: MultiTaskData, source: Mapping[str, Any]) -> "StudyData":
        """The record of ``data`` loaded from ``source``."""
        return cls(source=dict(source), name=data.name, fingerprint=data.fingerprint(),
                   tasks=tuple(t.to_dict() for t in data.tasks), input_shape=tuple(data.input_shape),
                   split_seed=data.split_seed)

    def check(self, data: MultiTaskData, study_name: str) -> None:
        """Raise :class:`SearchError` unless ``data`` is the study's data (same fingerprint)."""
        if data.fingerprint() != self.fingerprint:
            raise SearchError(
                f"refusing to join study {study_name!r}: the data here has fingerprint {data.fingerprint()[:12]} "
                f"but the study was made with {self.fingerprint[:12]} ({self.source}); the same data must be "
                "reachable from every worker")

    def load(self, study_name: str) -> MultiTaskData:
        """Load the data from the recorded source and check its fingerprint."""
        data = load_data(self.source["source"], **self.source.get("options", {}))
        self.check(data, study_name)
        return data


@dataclass(frozen=True)
class StudyContext:
    """Everything a worker needs, stored as the study attribute ``sharesearch``."""

    data: StudyData  # the data the study was made for
    space: dict[str, Any]  # SearchSpace.to_dict() (its "source" names the file)
    space_text: str  # the search-space file as the user wrote it
    space_fingerprint: str  # SearchSpace.fingerprint(): a study serves one space
    search: SearchConfig  # how the search runs
    train: TrainConfig  # the base training configuration every candidate updates
    references: dict[str, str] = field(default_factory=dict)  # reference name -> its graph key
    version: int = 2  # layout of this record

    @property
    def objective_names(self) -> list[str]:
        """The objectives, in the order of the trial values."""
        return list(self.search.objectives)

    @property
    def space_source(self) -> str:
        """The search-space file name (for messages and the report)."""
        return self.space.get("source", "")

    def search_space(self) -> SearchSpace:
        """The study's :class:`SearchSpace`."""
        return SearchSpace.from_dict(self.space, source=self.space.get("source", "<study>"))

    def to_attr(self) -> dict[str, Any]:
        """The JSON value of the study attribute."""
        data = {f.name: getattr(self.data, f.name) for f in fields(self.data)}
        data.update(tasks=list(self.data.tasks), input_shape=list(self.data.input_shape))
        return {"version": self.version, "data": data,
                "space": self.space, "space_text": self.space_text, "space_fingerprint": self.space_fingerprint,
                "search": self.search.to_dict(), "train": self.train.to_dict(), "references": dict(self.references)}

    @classmethod
    def from_attr(cls, d: Mapping[str, Any]) -> "StudyContext":
        """The inverse of :meth:`to_attr`."""
        data = d["data"]
        return cls(data=StudyData(source=dict(data["source"]), name=data["name"], fingerprint=data["fingerprint"],
                                  tasks=tuple(data["tasks"]), input_shape=tuple(data["input_shape"]),
                                  split_seed=data["split_seed"]),
                   space=dict(d["space"]), space_text=d["space_text"], space_fingerprint=d["space_fingerprint"],
                   search=SearchConfig.from_dict(d["search"]), train=TrainConfig.from_dict(d["train"]),
                   references=dict(d.get("references", {})), version=d.get("version", 2))

    @classmethod
    def from_study(cls, study: optuna.Study) -> "StudyContext":
        """The context of ``study``; :class:`SearchError` if sharesearch did not make it."""
        d = study.user_attrs.get(_CONTEXT)
        if d is None:
            raise SearchError(f"study {study.study_name!r} was not created by sharesearch "
                              f"(no {_CONTEXT!r} attribute)")
        try:
            return cls.from_attr(d)
        except (KeyError, TypeError) as e:
            raise SearchError(f"study {study.study_name!r} was made by another sharesearch version "
                              f"(its context lacks {e}); start a new study") from None

    def save(self, study: optuna.Study) -> None:
        """Store this context as the study's attribute."""
        study.set_user_attr(_CONTEXT, self.to_attr())


# ------------------------------------------------------------------ trials
@dataclass(frozen=True)
class TrialRecord:
    """What a search trial's user attributes hold; ``None`` means not (yet) recorded."""

    worker: str | None = None  # "host:pid" of the worker running it (to sweep trials of dead workers)
    sampler_seed: int | None = None  # the seed of the sampler that proposed it (worker_seed of the study's seed)
    reference: str | None = None  # reference architecture name, when the trial is one
    graph: dict[str, Any] | None = None  # SharingGraph.to_dict() of the sampled candidate
    graph_key: str | None = None  # SharingGraph.key(): canonical hash of the topology
    cache_key: str | None = None  # graph key + training parameters: equal keys reuse one training
    train: dict[str, Any] | None = None  # sampled training parameters (TrainConfig field -> value)
    n_params: int | None = None  # trainable parameters of the graph
    flops: int | None = None  # FLOPs per example of the graph
    status: str | None = None  # "trained" | "reused" | "diverged" | "pruned at epoch N" | "over budget: ..."
    message: str | None = None  # why training did not end "ok"
    reused_from: int | None = None  # number of the trial whose result this one reused
    val_metrics: dict[str, float] | None = None  # task -> primary validation metric
    val_deltas: dict[str, float] | None = None  # task -> validation Δ against its tuned baseline
    best_epoch: dict[str, int] | None = None  # task -> epoch of its best validation metric
    duration_s: float | None = None  # seconds from sampling to the result
    best_step: dict[str, int] | None = None  # task -> optimizer steps at its best validation metric
    steps_run: int | None = None  # optimizer steps the run took (< the cap: it stopped early)
    affinity_tree: int | None = None  # index into AffinityRecord.trees when the affinity proposed this trial
    tuned_from: int | None = None  # an affinity tree or a reference tried again mid-search: the best trial whose
    # settings it took (a reference takes only its training and width, see SearchSpace.reference_params)
    control: bool | None = None  # True: this trial IS the control (the independent reference with each
    # task's own baseline configuration, TaskBaseline.config); it is not trained in the search, its
    # validation Δ is 0 by definition, and verdict runs retrain it per task as the baselines
    companion_of: int | None = None  # a companion: the number of the topology trial it was enqueued to train
    # beside (its learning rate and weight decay its own; set at enqueueing, kept on retry)

    def to_attrs(self) -> dict[str, Any]:
        """The recorded fields as user attributes (JSON values)."""
        return _drop_none(self)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "TrialRecord":
        """The record of a user-attribute dict; other attributes are ignored."""
        return cls(**_pick(cls, attrs))

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial) -> "TrialRecord":
        """The record of a (frozen) trial."""
        return cls.from_attrs(trial.user_attrs)

    def write(self, trial: optuna.Trial, since: "TrialRecord | None" = None) -> None:
        """Store the fields that differ from ``since`` (all recorded fields without it)."""
        old = since.to_attrs() if since is not None else {}
        for k, v in self.to_attrs().items():
            if k not in old or old[k] != v:
                trial.set_user_attr(k, v)

    @property
    def trained(self) -> bool:
        """Whether a graph was sampled and recorded."""
        return self.graph is not None

    def sharing_graph(self) -> SharingGraph:
        """The trial's :class:`SharingGraph`."""
        if self.graph is None:
            raise RuntimeError("this trial recorded no graph")
        return SharingGraph.from_dict(self.graph)


# --------------------------------------------------------------- baselines
@dataclass(frozen=True)
class BaselineTrialRecord:
    """What a trial of the baseline-tuning study ``<study>.baselines`` records."""

    train: dict[str, Any]  # sampled training parameters (lr, weight_decay, epochs, ...)
    width_scale: float  # the baseline_width_mult the default widths were multiplied by
    graph: dict[str, Any]  # SharingGraph.to_dict() of the independent networks
    val_metrics: dict[str, dict[str, float]]  # task -> metric -> validation value at its best epoch
    status: str  # TrainResult.status: "ok" | "diverged"
    seed: int | None = None  # training seed (None: the search's seed, a tuning trial)
    confirms: int | None = None  # a confirmation run: the number of the tuning trial whose config it retrains
    best_step: dict[str, int] | None = None  # task -> optimizer steps at its best validation metric
    steps_run: int | None = None  # optimizer steps the run took

    def to_attrs(self) -> dict[str, Any]:
        """The fields as user attributes (JSON values)."""
        return _drop_none(self)

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial) -> "BaselineTrialRecord":
        """The record of a finished baseline trial."""
        return cls(**_pick(cls, trial.user_attrs))

    def write(self, trial: optuna.Trial) -> None:
        """Store every field on ``trial``."""
        for k, v in self.to_attrs().items():
            trial.set_user_attr(k, v)


@dataclass(frozen=True)
class TaskBaseline:
    """One task's tuned single-task baseline: its best baseline trial on validation."""

    val_metric: float  # primary validation metric (the denominator of the task's Δ)
    val_metrics: dict[str, float]  # every validation metric of the task
    config: dict[str, Any]  # training parameters of the best trial (TrainConfig field -> value)
    graph: dict[str, Any]  # SharingGraph.to_dict() of that trial's independent networks
    trial: int  # number of that trial in <study>.baselines
    metric: str  # name of the primary metric
    width_scale: float  # baseline_width_mult of that trial
    tuning_val_metric: float | None = None  # the single-seed value the config was shortlisted on
    seed_values: tuple[float, ...] = ()  # primary validation metric of each confirmation seed
    seeds: tuple[int, ...] = ()  # the confirmation seeds, in the order of seed_values
    val_sd: float | None = None  # sample sd of seed_values (seed-to-seed spread; None: < 2 seeds)
    val_cv: float | None = None  # val_sd / |val_metric|: the relative spread (seeds_for_power's input)
    best_steps: tuple[int, ...] = ()  # optimizer steps at the best evaluation of each confirmation seed


@dataclass(frozen=True)
class BaselineSet:
    """Every task's tuned baseline, stored as the study attribute ``baselines``."""

    key: str  # data, space, budget and seed the tuning was made for; another key means tune again
    tasks: dict[str, TaskBaseline]  # task name -> its baseline

    def to_attr(self) -> dict[str, Any]:
        """The JSON value of the study attribute."""
        return {"key": self.key, "tasks": {t: _drop_none(b) for t, b in self.tasks.items()}}

    @classmethod
    def from_study(cls, study: optuna.Study) -> "BaselineSet | None":
        """The stored baselines of ``study``, or ``None`` before they were tuned."""
        d = study.user_attrs.get(_BASELINES)
        if not d:
            return None
        return cls(key=d["key"], tasks={t: _task_baseline(b) for t, b in d["tasks"].items()})

    def save(self, study: optuna.Study) -> None:
        """Store these baselines as the study's attribute."""
        study.set_user_attr(_BASELINES, self.to_attr())


def _task_baseline(b: Mapping[str, Any]) -> TaskBaseline:
    """A stored :class:`TaskBaseline` (JSON lists back to tuples)."""
    b = dict(b)
    for k in ("seed_values", "seeds", "best_steps"):
        if k in b:
            b[k] = tuple(b[k])
    return TaskBaseline(**b)


def baseline_default_enqueued(bstudy: optuna.Study) -> bool:
    """Whether the baseline study's all-defaults trial was enqueued."""
    return bool(bstudy.user_attrs.get(_BASELINE_ENQUEUED))


def mark_baseline_default_enqueued(bstudy: optuna.Study) -> None:
    """Record that the baseline study's all-defaults trial was enqueued."""
    bstudy.set_user_attr(_BASELINE_ENQUEUED, True)


def confirmation_attrs(seed: int, confirms: int, tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """User attributes to enqueue a confirmation run: tuning trial ``confirms`` retrained with ``seed``,
    on the tasks that shortlisted it (``None``: every task)."""
    attrs: dict[str, Any] = {"seed": seed, "confirms": confirms}
    if tasks is not None:
        attrs["tasks"] = list(tasks)
    return attrs


def confirmation_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> tuple[int, int] | None:
    """``(seed, tuning trial number)`` of a confirmation run, ``None`` for a tuning trial."""
    a = trial.user_attrs
    return None if a.get("confirms") is None else (int(a["seed"]), int(a["confirms"]))


def confirmation_tasks(trial: optuna.Trial | optuna.trial.FrozenTrial) -> tuple[str, ...] | None:
    """The tasks a confirmation run trains (those that shortlisted its configuration); ``None``: every task
    (a tuning trial, or a confirmation run enqueued before runs named their tasks)."""
    tasks = trial.user_attrs.get("tasks")
    return None if confirmation_of(trial) is None or tasks is None else tuple(str(t) for t in tasks)


def confirmations_enqueued(bstudy: optuna.Study) -> bool:
    """Whether the baseline study's confirmation runs (more seeds of the top configurations) were enqueued."""
    return bool(bstudy.user_attrs.get(_CONFIRM_ENQUEUED))


def mark_confirmations_enqueued(bstudy: optuna.Study) -> None:
    """Record that the baseline study's confirmation runs were enqueued."""
    bstudy.set_user_attr(_CONFIRM_ENQUEUED, True)


# ------------------------------------------------------------- affinity
@dataclass(frozen=True)
class AffinityRecord:
    """The study's inter-task affinity pass and the trees it proposed, stored as the study attribute ``affinity``."""

    affinity: Affinity  # the measured matrices (sharesearch.affinity.measure_affinity)
    kind: str  # the matrix the trees were cut from: "cosine" | "lookahead"
    trees: tuple[Tree, ...]  # proposed sharing trees, most promising first (stage 0 coarsest)
    enqueued: tuple[int, ...]  # indices of the trees enqueued as trials (others: a reference, or not in the space)
    config: dict[str, Any]  # training parameters of the pass (TrainConfig field -> value)
    tuned_from: int | None = None  # the best trial whose settings the trees took when tried again (None: not yet)
    tuned: tuple[int, ...] = ()  # indices of the trees enqueued again with those settings

    def to_attr(self) -> dict[str, Any]:
        """The JSON value of the study attribute."""
        return {"affinity": self.affinity.to_dict(), "kind": self.kind,
                "trees": [[[list(g) for g in part] for part in t] for t in self.trees],
                "enqueued": list(self.enqueued), "config": dict(self.config), "tuned_from": self.tuned_from,
                "tuned": list(self.tuned)}

    @classmethod
    def from_attr(cls, d: Mapping[str, Any]) -> "AffinityRecord":
        """The inverse of :meth:`to_attr`."""
        trees = tuple(tuple(tuple(tuple(g) for g in part) for part in t) for t in d["trees"])
        return cls(affinity=Affinity.from_dict(d["affinity"]), kind=d["kind"], trees=trees,
                   enqueued=tuple(d["enqueued"]), config=dict(d["config"]), tuned_from=d.get("tuned_from"),
                   tuned=tuple(d.get("tuned") or ()))

    @classmethod
    def from_study(cls, study: optuna.Study) -> "AffinityRecord | None":
        """The stored record of ``study``, or ``None`` when no affinity pass ran."""
        d = study.user_attrs.get(_AFFINITY)
        return cls.from_attr(d) if d else None

    def save(self, study: optuna.Study) -> None:
        """Store this record as the study's attribute."""
        study.set_user_attr(_AFFINITY, self.to_attr())


# ------------------------------------------------------- study-level flags
def references_enqueued(study: optuna.Study) -> bool:
    """Whether the reference architectures were enqueued in ``study``."""
    return bool(study.user_attrs.get(_REFERENCES_ENQUEUED))


def mark_references_enqueued(study: optuna.Study) -> None:
    """Record that the reference architectures were enqueued."""
    study.set_user_attr(_REFERENCES_ENQUEUED, True)


def references_tuned_from(study: optuna.Study) -> int | None:
    """The trial whose settings the reference architectures were enqueued again on, or None (not yet)."""
    value = study.user_attrs.get(_REFERENCES_TUNED)
    return None if value is None else int(value)


def mark_references_tuned(study: optuna.Study, number: int) -> None:
    """Record that the references were enqueued again on trial ``number``'s settings."""
    study.set_user_attr(_REFERENCES_TUNED, int(number))


def read_verdict(study: optuna.Study) -> dict[str, Any] | None:
    """The stored verdict of ``study`` (schema in :mod:`sharesearch.report`), or ``None``."""
    return study.user_attrs.get(_VERDICT)


def write_verdict(study: optuna.Study, verdict: Mapping[str, Any]) -> None:
    """Store the verdict as the study's attribute."""
    study.set_user_attr(_VERDICT, dict(verdict))


def write_transfer(study: optuna.Study, result: Mapping[str, Any], new_task: str | None = None) -> None:
    """Store a transfer run (``TransferResult.to_dict()``): the leave-one-out run, or ``new_task``'s."""
    study.set_user_attr(_TRANSFER if new_task is None else f"{_TRANSFER}:{new_task}", dict(result))


def read_transfers(study: optuna.Study) -> list[dict[str, Any]]:
    """Every stored transfer run of ``study``, in attribute-name order."""
    return [v for k, v in sorted(study.user_attrs.items()) if k == _TRANSFER or k.startswith(_TRANSFER + ":")]

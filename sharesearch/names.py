"""The one place for every list of names (torch-free, optuna-free).

Reference architectures, loss-weighting methods, task-sampling modes and
metrics are named here once; every other module imports them from here.

* **Reference architectures** are :class:`Reference` records: the
  :class:`~sharesearch.graph.SharingGraph` constructor, the keyword options it
  takes from a search space's defaults, and where the architecture sits in a
  space (:class:`ReferencePoint`). :func:`reference` looks one up.
* **Weighting methods** form a registry that :mod:`sharesearch.weighting`
  registers its classes into (:func:`register_weighting`); a search space
  accepts every registered name, so registering a method makes it selectable
  without editing the space code. The built-in names are known here without
  importing torch.
* **Sampling modes** of the batcher and **metrics** (:class:`Metric`: direction
  and the task kinds it applies to).

Unknown names raise :class:`~sharesearch.errors.SharesearchError` listing the
valid ones.

Example
-------
>>> REFERENCES
('independent', 'shared-bottom', 'mmoe', 'cross-stitch', 'l2-soft')
>>> reference("mmoe").options(SpaceDefaults(stages=3, moe_experts=4, moe_stages=5))
{'experts': 4, 'moe_stages': 3, 'expert_dropout': 0.0}
>>> METRICS["rmse"].direction, "equal" in weighting_names()
('minimize', True)
>>> reference("mmo")
Traceback (most recent call last):
...
sharesearch.errors.SharesearchError: unknown reference architecture 'mmo'; valid: independent, shared-bottom, mmoe, cross-stitch, l2-soft
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SharesearchError
from .graph import SharingGraph

__all__ = [
    "REFERENCES",
    "WEIGHTINGS",
    "SAMPLINGS",
    "METRICS",
    "REFERENCE_ARCHITECTURES",
    "Metric",
    "metric_names",
    "Pref",
    "ReferencePoint",
    "SpaceDefaults",
    "Reference",
    "NotExpressible",
    "ANY",
    "check_name",
    "reference",
    "register_weighting",
    "weighting_names",
]


def check_name(what: str, name: Any, valid: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``valid``, else raise a one-line error.

    >>> check_name("sampling mode", "uniform", SAMPLINGS)
    'uniform'
    >>> check_name("sampling mode", "rr", SAMPLINGS)
    Traceback (most recent call last):
    ...
    sharesearch.errors.SharesearchError: unknown sampling mode 'rr'; valid: uniform, proportional
    """
    valid = list(valid)
    if name not in valid:
        raise SharesearchError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name


# ------------------------------------------------------------ sampling modes
#: task-sampling modes of the batcher (the trainer's ``sampling``)
SAMPLINGS: tuple[str, ...] = ("uniform", "proportional")


# ------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metric:
    """A metric a task may report."""

    name: str  # registry name, e.g. "auc"
    direction: str  # "maximize" or "minimize"
    kinds: tuple[str, ...]  # task kinds it applies to ("binary", "multiclass", "regression")


def metric_names(kind: str) -> tuple[str, ...]:
    """The metrics that apply to a task of ``kind``, in registry order.

    >>> metric_names("binary")
    ('auc', 'accuracy', 'macro_f1', 'f1', 'average_precision', 'logloss')
    """
    return tuple(m.name for m in METRICS.values() if kind in m.kinds)


#: metric name -> record, in the order reports list them
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("auc", "maximize", ("binary",)),
        Metric("accuracy", "maximize", ("binary", "multiclass")),
        Metric("macro_f1", "maximize", ("binary", "multiclass")),
        Metric("f1", "maximize", ("binary",)),  # F1 of the positive class
        Metric("average_precision", "maximize", ("binary",)),  # area under the precision-recall curve
        Metric("logloss", "minimize", ("binary", "multiclass")),
        Metric("rmse", "minimize", ("regression",)),
        Metric("mae", "minimize", ("regression",)),
        Metric("r2", "maximize", ("regression",)),
    )
}


# ---------------------------------------------------------- weighting methods
_weightings: list[str] = ["equal", "uncertainty", "dwa", "gradnorm", "pcgrad"]
#: loss-weighting methods a space may choose from (the trainer's ``weighting``); rebound by
#: :func:`register_weighting`, so read it as ``names.WEIGHTINGS`` or call :func:`weighting_names`
WEIGHTINGS: tuple[str, ...] = tuple(_weightings)


def weighting_names() -> tuple[str, ...]:
    """The registered weighting methods, built-ins first, then in registration order.

    >>> weighting_names()[:2]
    ('equal', 'uncertainty')
    """
    return tuple(_weightings)


def register_weighting(name: str) -> None:
    """Make weighting method ``name`` selectable (idempotent).

    :func:`sharesearch.weighting.register_weighting` calls this for every
    class it registers; search spaces validate ``train.weighting`` against
    :func:`weighting_names` when they are loaded.
    """
    global WEIGHTINGS
    if not isinstance(name, str) or not name or name != name.strip():
        raise SharesearchError(f"a weighting method needs a non-empty name without spaces, got {name!r}")
    if name not in _weightings:
        _weightings.append(name)
        WEIGHTINGS = tuple(_weightings)


# ------------------------------------------------------ reference architectures
class NotExpressible(SharesearchError):
    """A search space cannot express a reference architecture (the message says why)."""


@dataclass(frozen=True)
class Pref:
    """A value a reference architecture wants a space field to take."""

    value: Any = None  # the wanted value; None: no wish, the field's default
    required: bool = True  # True: the space must be able to take it; False: else the default


#: no wish: the field keeps its default
ANY = Pref(None, False)


@dataclass(frozen=True)
class ReferencePoint:
    """Where a reference architecture sits in a search space (each field a :class:`Pref`)."""

    share: Pref  # leading stages every task pair shares
    moe_experts: Pref = ANY  # experts of the MoE stages (0: no MoE)
    cross_stitch: Pref = ANY  # cross-stitch units between sibling blocks
    l2_lambda: Pref = ANY  # L2 soft-sharing strength between sibling blocks (0: none)
    conditioning: Pref = ANY  # task conditioning of shared blocks


@dataclass(frozen=True)
class SpaceDefaults:
    """The defaults of a search space that references take their settings from."""

    stages: int  # default stage count of the backbone
    moe_experts: int = 0  # experts when MoE is switched on (0: the space has no MoE)
    moe_stages: int = 1  # default count of leading MoE stages
    expert_dropout: float = 0.0  # default expert dropout
    l2_lambda: float = 0.0  # λ when L2 soft sharing is switched on (0: the space has none)


def _no_options(d: SpaceDefaults) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Reference:
    """A reference architecture of the field: how to build it and where a space holds it."""

    name: str  # registry name, e.g. "shared-bottom"
    citation: str  # where it comes from
    constructor: Callable[..., SharingGraph]  # ``(tasks, backbone, **options) -> SharingGraph``
    point: Callable[[SpaceDefaults], ReferencePoint]  # raises NotExpressible when a space lacks it
    options: Callable[[SpaceDefaults], dict[str, Any]] = field(default=_no_options)  # constructor options

    def graph(self, tasks: Any, backbone: Any, defaults: SpaceDefaults | None = None) -> SharingGraph:
        """The constructor's graph; with ``defaults``, its options taken from a space.

        >>> bb = {"name": "mlp", "input_shape": [3], "widths": [4]}
        >>> print(reference("l2-soft").graph({"a": 1, "b": 1}, bb, SpaceDefaults(stages=1, l2_lambda=0.5)).describe())
        stage 0 (mlp 3->4): [a] [b]  ~ l2 λ=0.5
        heads: a(1) b(1)
        """
        return self.constructor(tasks, backbone, **(self.options(defaults) if defaults else {}))


def _independent(d: SpaceDefaults) -> ReferencePoint:
    return ReferencePoint(share=Pref(0), cross_stitch=Pref(False), l2_lambda=Pref(0.0), moe_experts=Pref(0, False))


def _shared_bottom(d: SpaceDefaults) -> ReferencePoint:
    return ReferencePoint(share=Pref(d.stages), conditioning=Pref("none"), moe_experts=Pref(0),
                          cross_stitch=Pref(False, False), l2_lambda=Pref(0.0, False))


def _mmoe_stages(d: SpaceDefaults) -> int:
    return min(d.stages, d.moe_stages)


def _mmoe(d: SpaceDefaults) -> ReferencePoint:
    if not d.moe_experts:
        raise NotExpressible("mechanisms.moe_experts is off")
    k = _mmoe_stages(d)
    soft_off = k < d.stages  # unshared stages follow the experts: no soft sharing between them
    return ReferencePoint(share=Pref(k), moe_experts=Pref(d.moe_experts),
                          cross_stitch=Pref(False, soft_off), l2_lambda=Pref(0.0, soft_off))


def _mmoe_options(d: SpaceDefaults) -> dict[str, Any]:
    return {"experts": d.moe_experts, "moe_stages": _mmoe_stages(d), "expert_dropout": d.expert_dropout}


def _cross_stitch(d: SpaceDefaults) -> ReferencePoint:
    return ReferencePoint(share=Pref(0), cross_stitch=Pref(True), moe_experts=Pref(0, False))


def _l2_soft(d: SpaceDefaults) -> ReferencePoint:
    if not d.l2_lambda:
        raise NotExpressible("mechanisms.l2_lambda is off")
    return ReferencePoint(share=Pref(0), cross_stitch=Pref(False), l2_lambda=Pref(d.l2_lambda),
                          moe_experts=Pref(0, False))


def _l2_options(d: SpaceDefaults) -> dict[str, Any]:
    return {"lam": d.l2_lambda}


#: reference name -> record, in the order reports list them; "independent" is the control
REFERENCE_ARCHITECTURES: Mapping[str, Reference] = {
    r.name: r
    for r in (
        Reference("independent", "one network per task (the single-task baselines)",
                  SharingGraph.independent, _independent),
        Reference("shared-bottom", "hard parameter sharing, Caruana 1997", SharingGraph.shared_bottom,
                  _shared_bottom),
        Reference("mmoe", "multi-gate mixture of experts, Ma et al. KDD 2018", SharingGraph.mmoe, _mmoe,
                  _mmoe_options),
        Reference("cross-stitch", "cross-stitch networks, Misra et al. CVPR 2016", SharingGraph.cross_stitch,
                  _cross_stitch),
        Reference("l2-soft", "soft parameter sharing, Duong et al. ACL 2015", SharingGraph.l2_soft, _l2_soft,
                  _l2_options),
    )
}
#: reference architectures, in the order reports list them
REFERENCES: tuple[str, ...] = tuple(REFERENCE_ARCHITECTURES)


def reference(name: str) -> Reference:
    """The record of reference architecture ``name``.

    >>> reference("cross-stitch").constructor.__name__
    'cross_stitch'
    """
    return REFERENCE_ARCHITECTURES[check_name("reference architecture", name, REFERENCES)]

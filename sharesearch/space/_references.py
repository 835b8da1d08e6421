"""The reference architectures as points of a search space.

:mod:`sharesearch.names` says, per reference, which constructor builds it and
where it sits (:class:`~sharesearch.names.ReferencePoint`); this module maps
that onto the space's fields, finds the parameters that reproduce it (to
``study.enqueue_trial``) and builds the constructor's graph on the space's
default backbone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import names
from ..errors import SharesearchError
from ..graph import SharingGraph
from ..names import NotExpressible, Pref, ReferencePoint, SpaceDefaults
from ._fields import SpaceError
from ._sampling import backbone, build
from ._trial import Picker, default

if TYPE_CHECKING:
    from ._space import SearchSpace

__all__ = ["reference_params", "reference_names", "reference_graph", "space_defaults", "SETTINGS_FIELDS"]

#: what a reference takes from a trial's parameters when laid on its settings (``reference_params(base=...)``):
#: the training and the width a candidate tunes; its topology and mechanisms stay the reference's
SETTINGS_FIELDS = ("train.lr", "train.weight_decay", "train.batch_size", "train.weighting", "train.sampling",
                   "backbone.width_mult")

#: ReferencePoint attribute -> the dotted key of the space field it sets
_FIELD_OF = {
    "share": "branching.share",
    "moe_experts": "mechanisms.moe_experts",
    "cross_stitch": "mechanisms.cross_stitch",
    "l2_lambda": "mechanisms.l2_lambda",
    "conditioning": "mechanisms.conditioning",
}


def space_defaults(space: SearchSpace) -> SpaceDefaults:
    """The defaults of ``space`` that references take their settings from."""
    f = space.fields
    return SpaceDefaults(
        stages=int(f["backbone.stages"].default),
        moe_experts=int(f["mechanisms.moe_experts"].on_default),
        moe_stages=int(f["mechanisms.moe_stages"].default),
        expert_dropout=float(f["mechanisms.expert_dropout"].default),
        l2_lambda=float(f["mechanisms.l2_lambda"].on_default),
    )


def _prefs(point: ReferencePoint) -> dict[str, Pref]:
    return {_FIELD_OF[a.name]: getattr(point, a.name) for a in dataclasses.fields(point)}


def _probe_shape(space: SearchSpace) -> tuple[int, ...]:
    """An input shape the space's backbone accepts (the parameters do not depend on it)."""
    return (1, 4, 4) if space.backbone_name == "cnn" else (1,)


def reference_params(space: SearchSpace, name: str, tasks: Mapping[str, int] | Sequence[Any],
                     base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parameters to ``study.enqueue_trial`` for reference ``name`` (see the method's docstring)."""
    try:
        ref = names.reference(name)
    except SharesearchError as e:
        raise SpaceError(f"{space.source}: {e}") from None
    try:
        pick = Picker(prefs=_prefs(ref.point(space_defaults(space))))
        build(space, pick, tasks, _probe_shape(space))
    except NotExpressible as e:
        raise SpaceError(f"{space.source}: reference {name!r} is not in this space: {e}") from None
    params = pick.params
    for key in SETTINGS_FIELDS if base is not None else ():
        f = space.fields.get(key)
        if f is None or f.mode == "fixed":
            continue
        if f.off_param and f.off_param in base:
            params[f.off_param] = base[f.off_param]
            if not base[f.off_param]:  # off in the base: the reference's value of it would be stale
                params.pop(f.param, None)
                continue
        if f.param in base:
            params[f.param] = base[f.param]
    return params


def reference_names(space: SearchSpace) -> list[str]:
    """The reference architectures ``space`` can express, in :data:`~sharesearch.names.REFERENCES` order."""
    out = []
    for name in names.REFERENCES:
        try:
            reference_params(space, name, {"t0": 1, "t1": 1, "t2": 1})
        except SpaceError:
            continue
        out.append(name)
    return out


def reference_graph(space: SearchSpace, name: str, tasks: Mapping[str, int] | Sequence[Any],
                    input_shape: Sequence[int]) -> SharingGraph:
    """The constructor's graph of reference ``name`` with the space's defaults."""
    reference_params(space, name, tasks)  # raises when the space cannot express it
    bb = backbone(space, default, input_shape)
    return names.reference(name).graph(tasks, bb, space_defaults(space))

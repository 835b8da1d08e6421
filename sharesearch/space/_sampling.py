"""Sampling: a trial's parameters become a candidate (graph and training settings).

Every function reads field values through a picker -- ``pick(field)`` or
``pick(field, param)`` -- so the same code samples a trial define-by-run,
rebuilds a stored trial (:class:`~sharesearch.space.ParamsTrial`), finds the
parameters of a reference architecture (a :class:`Picker` with preferences)
or takes every default (:func:`~sharesearch.space._trial.default`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..graph import SharingGraph
from ._fields import Field, SpaceError
from ._projection import pair
from ._schema import BUDGET_KEYS, TRAIN_KEYS
from ._trial import default, task_names

if TYPE_CHECKING:
    from ._space import SearchSpace

__all__ = ["Candidate", "backbone", "build", "baseline"]

#: a picker: the value of a field, under an optional parameter name
Pick = Callable[..., Any]


@dataclass(frozen=True)
class Candidate:
    """One sampled point: a sharing graph and its training hyper-parameters."""

    graph: SharingGraph  # the multi-task architecture
    # those of lr, weight_decay, epochs, batch_size, weighting, sampling that the space samples
    # or fixes (the names of the trainer's TrainConfig fields)
    train: dict[str, Any] = field(default_factory=dict)


def backbone(space: SearchSpace, val: Callable[[Field], Any], input_shape: Sequence[int],
             extra_mult: float = 1.0) -> dict[str, Any]:
    """The backbone dict; ``val(field)`` gives each backbone field's value."""
    f = space.fields
    shape = [int(s) for s in input_shape]
    name = space.backbone_name
    if name == "auto":
        if len(shape) not in (1, 3):
            raise SpaceError(f"{space.source}: backbone.name: 'auto' needs an input shape [n] or [C, H, W], "
                             f"got {shape}")
        name = "mlp" if len(shape) == 1 else "cnn"
    n_stages = int(val(f["backbone.stages"]))
    widths = [int(val(w)) for w in space.width_fields[:n_stages]]
    mult = float(val(f["backbone.width_mult"])) if "backbone.width_mult" in f else 1.0
    mult *= extra_mult
    widths = [max(1, int(math.floor(w * mult + 0.5))) for w in widths]
    bb: dict[str, Any] = {"name": name, "input_shape": shape, "widths": widths}
    if "backbone.dropout" in f:
        bb["dropout"] = float(val(f["backbone.dropout"]))
    if name == "cnn" and "backbone.kernel" in f:
        bb["kernel"] = int(val(f["backbone.kernel"]))
    return bb


def _depths(space: SearchSpace, pick: Pick, names: list[str]) -> dict[tuple[str, str], int]:
    """Share request of every task pair: fixed, pairwise ``share[a~b]`` or ``min`` of ``trunk[t]``."""
    share = space.fields["branching.share"]
    if share.mode == "fixed":
        d = int(pick(share))
        return {pair(a, b): d for a, b in itertools.combinations(names, 2)}
    if space.encoding_for(len(names)) == "trunk":
        trunk = {t: int(pick(share, f"trunk[{t}]")) for t in names}
        return {pair(a, b): min(trunk[a], trunk[b]) for a, b in itertools.combinations(names, 2)}
    out = {}
    for a, b in itertools.combinations(names, 2):
        a, b = pair(a, b)
        out[(a, b)] = int(pick(share, f"share[{a}~{b}]"))
    return out


def _mechanisms(space: SearchSpace, pick: Pick, n_stages: int) -> dict[str, Any]:
    """Keyword options of :meth:`SharingGraph.from_share_depths` for the mechanisms."""
    f = space.fields
    kw: dict[str, Any] = {"conditioning": pick(f["mechanisms.conditioning"])}
    kw["cross_stitch"] = stitch = bool(pick(f["mechanisms.cross_stitch"]))
    # l2 and cross-stitch would join the same pair of blocks: l2 only without cross-stitch
    kw["l2"] = 0.0 if stitch else float(pick(f["mechanisms.l2_lambda"]))
    experts = int(pick(f["mechanisms.moe_experts"]))
    if experts:
        k = min(n_stages, int(pick(f["mechanisms.moe_stages"])))
        kw["moe"] = [experts] * k + [0] * (n_stages - k)
        kw["expert_dropout"] = float(pick(f["mechanisms.expert_dropout"]))
    return kw


def build(space: SearchSpace, pick: Pick, tasks: Mapping[str, int] | Sequence[Any],
          input_shape: Sequence[int]) -> Candidate:
    """The candidate whose field values ``pick`` chooses."""
    names = task_names(tasks)
    bb = backbone(space, pick, input_shape)
    depths = _depths(space, pick, names)
    mech = _mechanisms(space, pick, len(bb["widths"]))
    graph = SharingGraph.from_share_depths(tasks, bb, depths, linkage=space.linkage, **mech)
    train = {k: pick(space.fields[f"train.{k}"]) for k in TRAIN_KEYS if f"train.{k}" in space.fields}
    return Candidate(graph, train)


def baseline(space: SearchSpace, pick: Pick, tasks: Mapping[str, int] | Sequence[Any],
             input_shape: Sequence[int]) -> Candidate:
    """The independent baselines' candidate whose baseline field values ``pick`` chooses.

    The budget matches the candidates' (see
    :meth:`~sharesearch.space.SearchSpace.sample_baseline`): the same fixed
    ``[train]`` budget keys (``max_steps``, ``patience``, ...) and the same
    tuned settings (lr, weight decay, batch size, width multiplier).
    """
    f = space.fields
    mult = float(pick(f["baseline.width_mult"])) if "baseline.width_mult" in f else 1.0
    # the backbone's own width_mult is what baseline_width_mult replaces, not a second factor
    bb = backbone(space, lambda fl: 1.0 if fl.key == "backbone.width_mult" else default(fl), input_shape, mult)
    train: dict[str, Any] = {}
    for k in ("lr", "weight_decay", "batch_size"):
        if f"baseline.{k}" in f:
            train[k] = pick(f[f"baseline.{k}"])
    if "train.epochs" in f:
        ep = f["train.epochs"]
        train["epochs"] = ep.max if space.baseline_budget == "max" else ep.default
    for k in BUDGET_KEYS:
        if f"train.{k}" in f:
            train[k] = f[f"train.{k}"].value
    if "train.weighting" in f:
        train["weighting"] = "equal"
    if "train.sampling" in f:
        train["sampling"] = f["train.sampling"].default
    return Candidate(SharingGraph.independent(tasks, bb), train)

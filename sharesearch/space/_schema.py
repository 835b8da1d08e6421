"""The schema of a search-space file and its validation, section by section.

:data:`SCHEMA` lists the sampled (or fixed) fields of every section with
their :class:`~sharesearch.space._fields.Spec`; :data:`EXTRA_KEYS` the keys
that configure rather than sample. :func:`parse_space` checks raw data
against both, including the checks between fields (widths per stage, share
depth and MoE stages within the stage count), and returns a
:class:`ParsedSpace`.

>>> p = parse_space({"backbone": {"widths": [8, {"low": 4, "high": 16}]}}, "x.toml")
>>> p.max_stages, p.fields["backbone.widths[1]"].param, p.fields["branching.share"].high
(2, 'width[1]', 2)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import names
from ..graph import CONDITIONINGS, LINKAGES
from ._fields import Field, Parser, Spec, fmt

__all__ = ["SCHEMA", "EXTRA_KEYS", "TOP_KEYS", "TRAIN_KEYS", "ParsedSpace", "parse_space", "section_keys"]

#: backbone names; "auto" picks by input rank
BACKBONE_NAMES = ("auto", "mlp", "cnn")
#: task-tree encodings (see "Parameters and the task-tree encoding")
ENCODINGS = ("auto", "pairwise", "trunk")
#: baseline epoch budgets
BUDGETS = ("max", "default")
#: learning-rate schedules of the trainer (sharesearch.training.LR_SCHEDULES; repeated here because the
#: space layer sits below the trainer and must not import torch -- tests/test_space.py checks they agree)
LR_SCHEDULES = ("constant", "cosine", "plateau")
#: ``[train]`` keys of the one budget every run shares (candidates, references, baselines): fixed values only
BUDGET_KEYS = ("max_steps", "eval_every", "patience", "min_delta", "lr_schedule", "warmup_steps")

_INT_POS = dict(kind="int", minimum=1)
#: section -> key -> spec of every field that may be sampled (or fixed)
SCHEMA: dict[str, dict[str, Spec]] = {
    "backbone": {
        "stages": Spec(param="stages", **_INT_POS),
        "width": Spec(param="width", **_INT_POS),
        "width_mult": Spec("float", "width_mult", minimum=0.0, min_open=True),
        "dropout": Spec("float", "dropout", minimum=0.0, maximum=1.0, max_open=True),
        "kernel": Spec("int", "kernel", minimum=1, odd=True),
    },
    "branching": {
        "share": Spec("int", "share", minimum=0, choices=False),
    },
    "mechanisms": {
        "conditioning": Spec("str", "conditioning", names=CONDITIONINGS),
        "l2_lambda": Spec("float", "l2_lambda", minimum=0.0, off_param="l2_on"),
        "cross_stitch": Spec("bool", "cross_stitch"),
        "moe_experts": Spec("int", "moe_experts", minimum=1, off_param="moe",
                            why=" (at least one expert; moe_experts = 0 or off = true for no MoE)"),
        "moe_stages": Spec(param="moe_stages", **_INT_POS),
        "expert_dropout": Spec("float", "expert_dropout", minimum=0.0, maximum=1.0, max_open=True),
    },
    "train": {
        "lr": Spec("float", "lr", minimum=0.0, min_open=True),
        "weight_decay": Spec("float", "weight_decay", minimum=0.0, off_param="weight_decay_on"),
        "epochs": Spec(param="epochs", **_INT_POS),
        "batch_size": Spec(param="batch_size", **_INT_POS),
        "weighting": Spec("str", "weighting", names=names.weighting_names),
        "sampling": Spec("str", "sampling", names=names.SAMPLINGS),
        # the budget (BUDGET_KEYS): one value for every run, so never sampled
        "max_steps": Spec("int", "max_steps", minimum=1, ranges=False, choices=False),
        "eval_every": Spec("int", "eval_every", minimum=1, ranges=False, choices=False),
        "patience": Spec("int", "patience", minimum=0, ranges=False, choices=False),
        "min_delta": Spec("float", "min_delta", minimum=0.0, ranges=False, choices=False),
        "lr_schedule": Spec("str", "lr_schedule", names=LR_SCHEDULES, ranges=False, choices=False),
        "warmup_steps": Spec("int", "warmup_steps", minimum=0, ranges=False, choices=False),
    },
    "baseline": {
        "lr": Spec("float", "baseline_lr", minimum=0.0, min_open=True),
        "width_mult": Spec("float", "baseline_width_mult", minimum=0.0, min_open=True),
        "weight_decay": Spec("float", "baseline_weight_decay", minimum=0.0, off_param="baseline_weight_decay_on"),
        "batch_size": Spec(param="baseline_batch_size", **_INT_POS),
    },
}
#: section -> keys that configure the section rather than sample a parameter
EXTRA_KEYS = {
    "backbone": ("name", "widths"),
    "branching": ("encoding", "max_pairwise_tasks", "linkage", "affinity"),
    "mechanisms": (),
    "train": (),
    "baseline": ("trials", "budget", "confirm_seeds", "confirm_top"),
}
#: keys of the top level
TOP_KEYS = ("name", "description", "backbone", "branching", "mechanisms", "train", "baseline")
#: ``[train]`` keys, the names of the trainer's TrainConfig fields they set
TRAIN_KEYS = tuple(SCHEMA["train"])


def section_keys(section: str) -> list[str]:
    """Every key section ``section`` may hold."""
    return list(SCHEMA[section]) + list(EXTRA_KEYS[section])


@dataclass(frozen=True)
class ParsedSpace:
    """A validated search space file, as :class:`~sharesearch.space.SearchSpace` holds it."""

    data: dict[str, Any]  # the validated raw data (a deep copy), for to_dict and the fingerprint
    name: str  # the file's ``name``, else the file stem
    description: str  # the file's ``description`` ("" when absent)
    fields: dict[str, Field]  # every sampled or fixed field by dotted key
    width_fields: list[Field]  # one field per stage, up to the largest stage count
    max_stages: int  # largest stage count
    backbone_name: str  # "auto" | "mlp" | "cnn"
    encoding: str  # task-tree encoding: "auto" | "pairwise" | "trunk"
    max_pairwise_tasks: int  # above this many tasks "auto" uses the trunk encoding
    linkage: str  # how share requests become a tree: "average" | "single"
    affinity: bool  # a search measures task affinity once and enqueues the trees it proposes
    baseline_trials: int  # tuning trials of the independent baselines (one pass trains every task)
    baseline_budget: str  # epochs of a baseline: "max" | "default" (spaces that still give epochs)
    baseline_confirm_seeds: int  # more seeds each task's top configurations are retrained with
    baseline_confirm_top: int  # configurations per task (best single-seed first) retrained with them


def parse_space(data: Mapping[str, Any], source: str) -> ParsedSpace:
    """Validate raw space data; every error is one :class:`SpaceError` line naming ``source``."""
    p = Parser(source)
    top = p.table(data, "", TOP_KEYS)
    for k in ("name", "description"):
        if k in top and not isinstance(top[k], str):
            raise p.err(k, f"expected a string, got {fmt(top[k])}")
    fields: dict[str, Field] = {}
    sec = {s: p.table(top.get(s), s, section_keys(s)) for s in SCHEMA}
    for s, raw in sec.items():
        for k, spec in SCHEMA[s].items():
            if k in raw and not (s == "backbone" and k == "width"):
                fields[f"{s}.{k}"] = p.field(raw[k], f"{s}.{k}", spec)
    backbone_name, widths = _parse_backbone(p, sec["backbone"], fields)
    max_stages = int(fields["backbone.stages"].max)
    encoding, max_pairwise, linkage, affinity = _parse_branching(p, sec["branching"], fields, max_stages)
    _parse_mechanisms(p, fields, max_stages)
    trials, budget, confirm_seeds, confirm_top = _parse_baseline(p, sec["baseline"], fields)
    return ParsedSpace(
        data=copy.deepcopy(top), name=top.get("name", Path(source).stem if source else "space"),
        description=top.get("description", ""), fields=fields, width_fields=widths, max_stages=max_stages,
        backbone_name=backbone_name, encoding=encoding, max_pairwise_tasks=max_pairwise, linkage=linkage,
        affinity=affinity,
        baseline_trials=trials, baseline_budget=budget, baseline_confirm_seeds=confirm_seeds,
        baseline_confirm_top=confirm_top)


def _parse_backbone(p: Parser, raw: dict, fields: dict[str, Field]) -> tuple[str, list[Field]]:
    """The backbone name and one width field per stage (also added to ``fields``)."""
    name = raw.get("name", "auto")
    if isinstance(name, (list, Mapping)):
        raise p.err("backbone.name", f"must be fixed, got {fmt(name)}")
    name = p.scalar(name, "backbone.name", Spec("str", "", names=BACKBONE_NAMES))
    if "kernel" in raw and name == "mlp":
        raise p.err("backbone.kernel", "only a cnn backbone has a kernel")
    if ("width" in raw) == ("widths" in raw):
        raise p.err("backbone.widths" if "width" not in raw else "backbone.width",
                    "give exactly one of 'widths' (one spec per stage) or 'width' (one spec for every stage)")
    wspec = SCHEMA["backbone"]["width"]
    stages = fields.get("backbone.stages")
    if "widths" in raw:
        ws = raw["widths"]
        if not isinstance(ws, (list, tuple)) or not ws:
            raise p.err("backbone.widths", f"expected a non-empty list with one spec per stage, got {fmt(ws)}")
        if stages is None:
            stages = fields["backbone.stages"] = Field("backbone.stages", "stages", "int", value=len(ws))
        if len(ws) != stages.max:
            raise p.err("backbone.widths", f"{len(ws)} entries for at most {stages.max} stages "
                                           "(give one spec per stage)")
        widths = [p.field(w, f"backbone.widths[{i}]", wspec, f"width[{i}]") for i, w in enumerate(ws)]
    else:
        if stages is None:
            raise p.err("backbone.stages", "missing; 'width' needs a stage count")
        widths = [p.field(raw["width"], "backbone.width", wspec, f"width[{i}]") for i in range(stages.max)]
    for i, w in enumerate(widths):
        fields[f"backbone.widths[{i}]"] = w
    return name, widths


def _parse_branching(p: Parser, raw: dict, fields: dict[str, Field], max_stages: int
                     ) -> tuple[str, int, str, bool]:
    """Encoding, max pairwise tasks, linkage and the affinity warm start (default on); an omitted share is the
    range 0..max stages."""
    share = fields.get("branching.share")
    if share is None:
        share = fields["branching.share"] = Field("branching.share", "share", "int", mode="range",
                                                  low=0, high=max_stages)
    if share.max > max_stages:
        raise p.err("branching.share", f"{share.max} > the largest stage count {max_stages}")
    encoding = p.scalar(raw.get("encoding", "auto"), "branching.encoding", Spec("str", "", names=ENCODINGS))
    mpt = p.scalar(raw.get("max_pairwise_tasks", 8), "branching.max_pairwise_tasks", Spec("int", "", minimum=2))
    linkage = p.scalar(raw.get("linkage", "average"), "branching.linkage", Spec("str", "", names=LINKAGES))
    affinity = p.scalar(raw.get("affinity", True), "branching.affinity", Spec("bool", ""))
    return encoding, mpt, linkage, affinity


def _parse_mechanisms(p: Parser, fields: dict[str, Field], max_stages: int) -> None:
    """Fix every omitted mechanism off (so references can check it)."""
    for k, v in (("conditioning", "none"), ("cross_stitch", False), ("l2_lambda", 0.0),
                 ("moe_experts", 0), ("moe_stages", 1), ("expert_dropout", 0.0)):
        spec = SCHEMA["mechanisms"][k]
        fields.setdefault(f"mechanisms.{k}", Field(f"mechanisms.{k}", spec.param, spec.kind, value=v))
    ms = fields["mechanisms.moe_stages"]
    if ms.max > max_stages:
        raise p.err("mechanisms.moe_stages", f"{ms.max} > the largest stage count {max_stages}")


def _parse_baseline(p: Parser, raw: dict, fields: dict[str, Field]) -> tuple[int, str, int, int]:
    """Trials, budget and confirmation; an omitted baseline field reuses the candidates' field.

    The control searches the candidates' training settings (lr, weight decay,
    batch size; width multiplier from ``backbone.width_mult``) with a
    comparable number of trials (default 12), and each task's top
    ``confirm_top`` configurations are retrained with ``confirm_seeds`` seeds.
    """
    trials = p.scalar(raw.get("trials", 12), "baseline.trials", Spec("int", "", minimum=0))
    budget = p.scalar(raw.get("budget", "max"), "baseline.budget", Spec("str", "", names=BUDGETS))
    seeds = p.scalar(raw.get("confirm_seeds", 3), "baseline.confirm_seeds", Spec("int", "", minimum=0))
    top = p.scalar(raw.get("confirm_top", 2), "baseline.confirm_top", Spec("int", "", minimum=1))
    if "baseline.width_mult" not in fields and "backbone.width_mult" in fields:
        spec, mult = SCHEMA["baseline"]["width_mult"], fields["backbone.width_mult"]
        fields["baseline.width_mult"] = replace(mult, key="baseline.width_mult", param=spec.param)
    if "baseline.batch_size" not in fields and "train.batch_size" in fields:
        spec, bs = SCHEMA["baseline"]["batch_size"], fields["train.batch_size"]
        fields["baseline.batch_size"] = replace(bs, key="baseline.batch_size", param=spec.param)
    for k in ("lr", "weight_decay"):
        if f"baseline.{k}" not in fields and f"train.{k}" in fields:
            spec, train = SCHEMA["baseline"][k], fields[f"train.{k}"]
            fields[f"baseline.{k}"] = replace(train, key=f"baseline.{k}", param=spec.param,
                                              off_param=spec.off_param if train.off_param else None)
    return trials, budget, seeds, top

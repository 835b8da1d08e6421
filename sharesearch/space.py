"""Declarative search-space files and define-by-run sampling of candidates.

A *search space* says which multi-task architectures (sharing graphs) and
training hyper-parameters a study may try. It is a TOML file (YAML is
accepted too) that is read as data -- never evaluated -- and validated
against a fixed schema; :meth:`SearchSpace.sample` turns one Optuna trial
into a :class:`Candidate` ``(graph, train)``. This module never imports
Optuna: ``trial`` is any object with ``suggest_int``, ``suggest_float`` and
``suggest_categorical`` (an ``optuna.trial.Trial``, ``optuna.trial.FixedTrial``,
or :class:`ParamsTrial`).

File format
-----------
Every field is either **fixed** (a scalar: no parameter is sampled), a
**choice list** (``suggest_categorical``; the first entry is the default,
or write ``{choices = [...], default = ...}``) or a **range**
``{low, high, log = false, step = ..., default = ...}`` (``suggest_int`` for
integer fields, ``suggest_float`` otherwise; the default is ``default`` or the
midpoint -- in log space for ``log = true`` -- rounded onto the step grid).
Prefer ranges where order means something (widths, epochs, rates): TPE then
models them as ordered. Fields marked *off-able* accept ``off = true`` in a
range: a boolean parameter switches the field off (value 0) before the
value is sampled; ``default = 0`` makes "off" the default. An annotated
example (the shipped ``default.toml`` is the full one)::

    name = "example"                    # optional
    description = "what this space is"  # optional

    [backbone]
    name = "mlp"            # "mlp" | "cnn" | "auto" (by input rank: 1 -> mlp, 3 -> cnn); fixed only
    stages = {low = 2, high = 3, default = 3}  # stage count            param: stages
    widths = [64, 64, 32]   # one spec per stage (up to the max stage count); each entry may be
                            # fixed, a choice list or a range          params: width[0], width[1], ...
    # width = {low = 16, high = 64, step = 16}  # or: one spec for every stage (needs `stages`)
    width_mult = {low = 0.5, high = 1.0, default = 1.0}  # x every width  param: width_mult
    dropout = 0.0           # in [0, 1)                                param: dropout
    # kernel = 3            # cnn only, odd                            param: kernel

    [branching]             # the task tree
    share = {low = 0, high = 3}  # leading stages a task pair shares (0..max stages; a scalar fixes
                                 # every pair)                        params: share[a~b]
    encoding = "auto"       # "pairwise" | "trunk" | "auto" (pairwise up to max_pairwise_tasks)
    max_pairwise_tasks = 8  # above this many tasks, auto uses the per-task trunk encoding
    linkage = "average"     # how requests become a tree: "average" | "single"

    [mechanisms]
    conditioning = ["none", "concat", "film", "gate"]  # of shared blocks  param: conditioning
    l2_lambda = {low = 1e-4, high = 1e-1, log = true, off = true}  # soft sharing λ (off-able)
                                                       #  params: l2_on, l2_lambda
    cross_stitch = [false, true]                       #  param: cross_stitch
    moe_experts = {low = 2, high = 6, default = 4, off = true}  # 0 = no MoE (off-able)
                                                       #  params: moe, moe_experts
    moe_stages = {low = 1, high = 2, default = 1}      # leading stages that are MoE  param: moe_stages
    expert_dropout = {low = 0.0, high = 0.3, default = 0.0}    #  param: expert_dropout

    [train]                 # keys of the trainer's TrainConfig
    lr = {low = 3e-4, high = 1e-2, log = true}                         # param: lr
    weight_decay = {low = 1e-6, high = 1e-3, log = true, off = true}   # weight_decay_on, weight_decay
    epochs = {low = 8, high = 12, default = 10}                        # param: epochs
    batch_size = {choices = [64, 128, 256], default = 128}             # param: batch_size
    weighting = ["equal", "uncertainty", "dwa", "gradnorm", "pcgrad"]  # param: weighting
    sampling = ["uniform", "proportional"]                             # param: sampling

    [baseline]              # the independent single-task baselines' own small tuning space
    trials = 8              # tuning trials per baseline (fixed only)
    lr = {low = 3e-4, high = 1e-2, log = true}       # param: baseline_lr
    width_mult = {low = 0.5, high = 1.0, default = 1.0}  # x the default widths  param: baseline_width_mult
    weight_decay = 0.0      # off-able                 params: baseline_weight_decay(_on)
    budget = "max"          # epochs of a baseline: "max" (the candidates' largest) or "default"

Omitted ``[train]`` keys are left out of ``Candidate.train`` (the trainer's
defaults apply); omitted mechanisms are fixed off (conditioning ``none``, no
cross-stitch, λ 0, no MoE); an omitted ``branching.share`` is the range
``0..max stages``; an omitted ``[baseline]`` field reuses the ``[train]`` field
(lr, weight_decay; width_mult is then 1). Validation raises
:class:`SpaceError` with one line ``<file>: <dotted.key>: <problem with the
value>`` (e.g. ``tiny.toml: train.lr: low 0.1 > high 0.01``); unknown names
list the valid ones.

Parameters and the task-tree encoding
-------------------------------------
The same parameter names are used in every trial (a parameter keeps one
distribution, so Optuna 5 never sees a categorical's choices change).
Conditional parameters are only suggested when they matter:

* ``stages``, ``width[l]`` (for ``l < stages``), ``width_mult``, ``dropout``, ``kernel``;
* ``share[a~b]`` for each unordered task pair, task names sorted (pairwise encoding) or
  ``trunk[t]`` per task (trunk encoding);
* ``conditioning``; ``cross_stitch``; ``l2_on`` / ``l2_lambda`` (only without cross-stitch:
  the two would join the same pair of blocks); ``moe`` / ``moe_experts`` / ``moe_stages``
  / ``expert_dropout``;
* ``lr``, ``weight_decay_on`` / ``weight_decay``, ``epochs``, ``batch_size``, ``weighting``,
  ``sampling``; baselines: ``baseline_lr``, ``baseline_width_mult``, ``baseline_weight_decay(_on)``.

**Pairwise encoding.** ``share[a~b]`` is an integer in ``0..max stages``: how
many leading stages tasks ``a`` and ``b`` should share. An arbitrary matrix of
requests need not be a tree, so it is projected onto one
(:func:`project_share_depths`, which is what
:meth:`SharingGraph.from_share_depths` builds): one hierarchical clustering of
the distances ``L - share`` is cut once per stage, so the partitions are
nested by construction and requests that already form a tree (ultrametrics)
come back unchanged. ``branching.linkage = "average"`` (the default) groups
tasks by their mean request, so one stray pair cannot chain two groups
together; ``"single"`` joins tasks linked by any chain of deep requests (it
only ever *raises* depths, and with random parameters nearly always yields
one trunk, which is why it is not the default).
Why this encoding: each parameter means one thing about two tasks, so TPE's
per-parameter Parzen estimators learn per-pair marginals ("x and y like to
share deep"), and parameter importances rank which task pairs should share;
the ordered int range never changes within a study, so Optuna accepts it and
neighbouring depths are modelled as similar. It takes ``T(T-1)/2``
parameters. **Trunk encoding** (more than ``max_pairwise_tasks`` tasks):
``trunk[t]`` in the same range is how long task ``t`` stays on one common
trunk, and ``share(a, b) = min(trunk[a], trunk[b])`` -- ``T`` parameters, always
a tree, but only "peel-off" trees (one trunk that tasks leave one by one).

Mechanisms apply to the sampled tree: ``conditioning`` to every shared block;
``cross_stitch``/``l2`` between the sibling blocks of every stage; ``moe``
turns shared groups of the first ``moe_stages`` stages into MMoE nodes.
So the reference architectures are points of the space
(:meth:`SearchSpace.reference_params`): independent (all shares 0),
shared-bottom (all shares = stages), MMoE (shares = moe_stages, moe on),
cross-stitch and L2 soft sharing (shares 0 plus the mechanism).

Example
-------
>>> space = load_space("tiny")
>>> tasks = {"a": 1, "b": 1, "c": 3}
>>> space.reference_names()
['independent', 'shared-bottom', 'mmoe', 'cross-stitch', 'l2-soft']
>>> params = space.reference_params("shared-bottom", tasks)
>>> params["share[a~b]"], params["moe"]
(2, False)
>>> cand = space.sample(ParamsTrial(params), tasks, (8,))
>>> cand.graph.partitions()[1]
(('a', 'b', 'c'),)
>>> sorted(cand.train)
['batch_size', 'epochs', 'lr', 'sampling', 'weight_decay', 'weighting']
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .graph import CONDITIONINGS, LINKAGES, SharingGraph, share_partitions

__all__ = [
    "SpaceError",
    "Candidate",
    "Field",
    "SearchSpace",
    "ParamsTrial",
    "load_space",
    "shipped_spaces",
    "project_share_depths",
    "WEIGHTINGS",
    "SAMPLINGS",
    "REFERENCES",
]

#: loss-weighting methods a space may choose from (the trainer's ``weighting``)
WEIGHTINGS = ("equal", "uncertainty", "dwa", "gradnorm", "pcgrad")
#: task-sampling schemes (the trainer's ``sampling``)
SAMPLINGS = ("uniform", "proportional")
#: reference architectures, in the order :meth:`SearchSpace.reference_names` lists them
REFERENCES = ("independent", "shared-bottom", "mmoe", "cross-stitch", "l2-soft")
BACKBONE_NAMES = ("auto", "mlp", "cnn")
ENCODINGS = ("auto", "pairwise", "trunk")
BUDGETS = ("max", "default")


class SpaceError(ValueError):
    """A bad search space; one line ``<file>: <dotted.key>: <problem>``."""


@dataclass(frozen=True)
class Candidate:
    """One sampled point: a sharing graph and its training hyper-parameters.

    ``train`` holds those of ``lr, weight_decay, epochs, batch_size,
    weighting, sampling`` that the space samples or fixes (the names of the
    trainer's ``TrainConfig`` fields).
    """

    graph: SharingGraph
    train: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------- fields
@dataclass(frozen=True)
class _Spec:
    """Schema of one field: its type and allowed values."""

    kind: str  # "int" | "float" | "bool" | "str"
    param: str  # Optuna parameter name
    names: tuple[str, ...] = ()  # valid strings (kind "str")
    minimum: float | None = None
    min_open: bool = False  # minimum is exclusive
    maximum: float | None = None
    max_open: bool = False
    odd: bool = False
    ranges: bool = True  # a {low, high} range is allowed
    choices: bool = True  # a choice list is allowed
    off_param: str | None = None  # off-able: this bool param switches it off (value 0)
    why: str = ""  # hint appended to a minimum violation


@dataclass(frozen=True)
class Field:
    """A parsed field: fixed value, choice list or range (see module docstring).

    >>> f = Field("train.epochs", "epochs", "int", mode="range", low=8, high=12)
    >>> f.default, f.can_be(13), f.params_for(9)
    (10, False, {'epochs': 9})
    """

    key: str  # dotted key, for messages
    param: str
    kind: str
    mode: str = "fixed"  # "fixed" | "choice" | "range"
    value: Any = None  # fixed value
    choices: tuple = ()
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    default_value: Any = None  # explicit default (None: first choice / midpoint)
    off_param: str | None = None  # set when the field may be switched off

    # ------------------------------------------------------------ values
    @property
    def on_default(self) -> Any:
        """Default value when the field is on (ignores ``default = 0`` of off-able fields)."""
        if self.mode == "fixed":
            return self.value
        dv = self.default_value
        if dv is not None and not (self.off_param and dv == 0):
            return dv
        if self.mode == "choice":
            return self.choices[0]
        if self.log:
            mid = math.sqrt(self.low * self.high)
        else:
            mid = (self.low + self.high) / 2
        if self.step:
            mid = self.low + math.floor((mid - self.low) / self.step + 0.5) * self.step
        if self.kind == "int":
            return min(self.high, int(math.floor(mid + 0.5)))
        return float(min(self.high, mid))

    @property
    def default(self) -> Any:
        """The default value (0 for an off-able field whose ``default`` is 0)."""
        if self.off_param and self.default_value == 0 and self.mode != "fixed":
            return self.zero
        return self.on_default

    @property
    def zero(self) -> Any:
        return 0 if self.kind == "int" else 0.0

    @property
    def max(self) -> Any:
        """Largest value the field can take."""
        if self.mode == "fixed":
            return self.value
        if self.mode == "choice":
            return max(self.choices)
        return self.high

    @property
    def min(self) -> Any:
        """Smallest value the field can take (0 when it can be switched off)."""
        if self.off_param:
            return self.zero
        if self.mode == "fixed":
            return self.value
        if self.mode == "choice":
            return min(self.choices)
        return self.low

    def can_be(self, value: Any) -> bool:
        """Whether some parameter values make this field equal ``value``."""
        if self.mode == "fixed":
            return _same(value, self.value)
        if self.off_param and value == 0 and not isinstance(value, bool):
            return True
        if self.mode == "choice":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.kind == "int":
            return value == int(value) and (int(value) - self.low) % (self.step or 1) == 0
        return True

    def params_for(self, value: Any, param: str | None = None) -> dict[str, Any]:
        """Parameters that make this field equal ``value`` (raises :class:`SpaceError` if none do)."""
        if not self.can_be(value):
            raise SpaceError(f"{self.key}: the space cannot take the value {value!r}")
        name = param or self.param
        if self.mode == "fixed":
            return {}
        if self.off_param:
            if value == 0:
                return {self.off_param: False}
            return {self.off_param: True, name: self._cast(value)}
        return {name: self._cast(value)}

    def _cast(self, value: Any) -> Any:
        if self.kind == "int":
            return int(value)
        if self.kind == "float":
            return float(value)
        return value

    def sample(self, trial: Any, param: str | None = None) -> Any:
        """Suggest this field's value on ``trial`` (fixed fields suggest nothing)."""
        name = param or self.param
        if self.mode == "fixed":
            return self.value
        if self.off_param and not trial.suggest_categorical(self.off_param, [False, True]):
            return self.zero
        if self.mode == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return int(trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log))
        kw: dict[str, Any] = {"log": self.log}
        if self.step:
            kw["step"] = self.step
        return float(trial.suggest_float(name, self.low, self.high, **kw))


def _same(a: Any, b: Any) -> bool:
    """Equal, and a bool only equals a bool."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else json.dumps(v) if isinstance(v, bool) else str(v)


def _kind_word(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "a boolean", "str": "a string"}[kind]


class _Parser:
    """Validates raw data section by section; every error names source and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, key: str, msg: str) -> SpaceError:
        return SpaceError(f"{self.source}: {key}: {msg}")

    def table(self, raw: Any, key: str, allowed: Sequence[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.err(key, f"expected a table, got {_fmt(raw)}")
        for k in raw:
            if not isinstance(k, str) or k not in allowed:
                raise self.err(f"{key}.{k}" if key else str(k), f"unknown key; valid keys: {', '.join(allowed)}")
        return dict(raw)

    def scalar(self, v: Any, key: str, spec: _Spec, *, zero_is_off: bool = False) -> Any:
        """Check one value's type and bounds; returns it cast (ints stay int, floats float)."""
        k = spec.kind
        if k == "bool":
            if not isinstance(v, bool):
                raise self.err(key, f"expected {_kind_word(k)}, got {_fmt(v)}")
            return v
        if k == "str":
            if not isinstance(v, str):
                raise self.err(key, f"expected {_kind_word(k)}, got {_fmt(v)}")
            if v not in spec.names:
                raise self.err(key, f"unknown choice {v!r}; valid: {', '.join(spec.names)}")
            return v
        ok = isinstance(v, int) if k == "int" else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            raise self.err(key, f"expected {_kind_word(k)}, got {_fmt(v)}")
        if not math.isfinite(v):
            raise self.err(key, f"must be finite, got {v}")
        v = int(v) if k == "int" else float(v)
        if zero_is_off and v == 0:
            return v
        if spec.minimum is not None and (v < spec.minimum or (spec.min_open and v == spec.minimum)):
            op = ">" if spec.min_open else ">="
            raise self.err(key, f"must be {op} {_fmt(spec.minimum)}, got {_fmt(v)}{spec.why}")
        if spec.maximum is not None and (v > spec.maximum or (spec.max_open and v == spec.maximum)):
            op = "<" if spec.max_open else "<="
            raise self.err(key, f"must be {op} {_fmt(spec.maximum)}, got {_fmt(v)}")
        if spec.odd and v % 2 == 0:
            raise self.err(key, f"must be odd, got {v}")
        return v

    def field(self, raw: Any, key: str, spec: _Spec, param: str | None = None) -> Field:
        """Parse a fixed scalar, a choice list or a range table into a :class:`Field`."""
        param = param or spec.param
        if isinstance(raw, (list, tuple)):
            return self._choices(list(raw), key, spec, param, None)
        if isinstance(raw, Mapping):
            allowed = ["choices", "default"] if "choices" in raw else ["low", "high", "log", "step", "default"]
            if "choices" not in raw and spec.off_param:
                allowed.append("off")
            self.table(raw, key, allowed)
            if "choices" in raw:
                if not isinstance(raw["choices"], (list, tuple)):
                    raise self.err(f"{key}.choices", f"expected a list, got {_fmt(raw['choices'])}")
                return self._choices(list(raw["choices"]), key, spec, param, raw.get("default"))
            return self._range(raw, key, spec, param)
        v = self.scalar(raw, key, spec, zero_is_off=spec.off_param is not None)
        return Field(key, param, spec.kind, mode="fixed", value=v)

    def _choices(self, items: list, key: str, spec: _Spec, param: str, default: Any) -> Field:
        if not spec.choices:
            raise self.err(key, f"a choice list is not allowed here, got {_fmt(items)}; "
                                f"give a fixed value{' or a {low, high} range' if spec.ranges else ''}")
        if not items:
            raise self.err(key, "empty choice list")
        vals = [self.scalar(v, key, spec) for v in items]
        if len(set(map(repr, vals))) != len(vals):
            raise self.err(key, f"duplicate choices in {_fmt(vals)}")
        if default is not None:
            default = self.scalar(default, f"{key}.default", spec)
            if not any(_same(default, v) for v in vals):
                raise self.err(f"{key}.default", f"{_fmt(default)} is not one of the choices {_fmt(vals)}")
        return Field(key, param, spec.kind, mode="choice", choices=tuple(vals),
                     default_value=default)

    def _range(self, raw: Mapping, key: str, spec: _Spec, param: str) -> Field:
        if not spec.ranges or spec.kind in ("bool", "str"):
            raise self.err(key, f"a range is not allowed here, got {_fmt(dict(raw))}")
        for k in ("low", "high"):
            if k not in raw:
                raise self.err(key, f"a range needs '{k}', got {_fmt(dict(raw))}")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise self.err(f"{key}.log", f"expected a boolean, got {_fmt(log)}")
        off = raw.get("off", False)
        if not isinstance(off, bool):
            raise self.err(f"{key}.off", f"expected a boolean, got {_fmt(off)}")
        low = self.scalar(raw["low"], f"{key}.low", spec)
        high = self.scalar(raw["high"], f"{key}.high", spec)
        if low > high:
            raise self.err(key, f"low {_fmt(low)} > high {_fmt(high)}")
        if log and low <= 0:
            raise self.err(key, f"a log range needs low > 0, got low {_fmt(low)}")
        step = raw.get("step")
        if step is not None:
            ok = isinstance(step, int) if spec.kind == "int" else isinstance(step, (int, float))
            if isinstance(step, bool) or not ok or not step > 0:
                raise self.err(f"{key}.step", f"expected a positive {spec.kind}, got {_fmt(step)}")
            if log and not (spec.kind == "int" and step == 1):
                raise self.err(key, f"step {_fmt(step)} cannot be combined with log = true")
            if spec.kind == "int" and (high - low) % step:
                raise self.err(key, f"high {high} is not on the step grid low {low} + k * {step}")
            step = int(step) if spec.kind == "int" else float(step)
            if step == 1 and spec.kind == "int":
                step = None
        f = Field(key, param, spec.kind, mode="range", low=low, high=high, step=step, log=log,
                  off_param=spec.off_param if off else None)
        if "default" in raw:
            d = raw["default"]
            if f.off_param and d == 0 and not isinstance(d, bool):
                return replace(f, default_value=f.zero)
            d = self.scalar(d, f"{key}.default", spec)
            if not f.can_be(d):
                raise self.err(f"{key}.default", f"{_fmt(d)} is outside the range [{_fmt(low)}, {_fmt(high)}]"
                                                 + (f" step {step}" if step else ""))
            f = replace(f, default_value=d)
        return f


# --------------------------------------------------------------- schema
_INT_POS = dict(kind="int", minimum=1)
_SCHEMA: dict[str, dict[str, _Spec]] = {
    "backbone": {
        "stages": _Spec(param="stages", **_INT_POS),
        "width": _Spec(param="width", **_INT_POS),
        "width_mult": _Spec("float", "width_mult", minimum=0.0, min_open=True),
        "dropout": _Spec("float", "dropout", minimum=0.0, maximum=1.0, max_open=True),
        "kernel": _Spec("int", "kernel", minimum=1, odd=True),
    },
    "branching": {
        "share": _Spec("int", "share", minimum=0, choices=False),
    },
    "mechanisms": {
        "conditioning": _Spec("str", "conditioning", names=CONDITIONINGS),
        "l2_lambda": _Spec("float", "l2_lambda", minimum=0.0, off_param="l2_on"),
        "cross_stitch": _Spec("bool", "cross_stitch"),
        "moe_experts": _Spec("int", "moe_experts", minimum=1, off_param="moe",
                             why=" (at least one expert; moe_experts = 0 or off = true for no MoE)"),
        "moe_stages": _Spec(param="moe_stages", **_INT_POS),
        "expert_dropout": _Spec("float", "expert_dropout", minimum=0.0, maximum=1.0, max_open=True),
    },
    "train": {
        "lr": _Spec("float", "lr", minimum=0.0, min_open=True),
        "weight_decay": _Spec("float", "weight_decay", minimum=0.0, off_param="weight_decay_on"),
        "epochs": _Spec(param="epochs", **_INT_POS),
        "batch_size": _Spec(param="batch_size", **_INT_POS),
        "weighting": _Spec("str", "weighting", names=WEIGHTINGS),
        "sampling": _Spec("str", "sampling", names=SAMPLINGS),
    },
    "baseline": {
        "lr": _Spec("float", "baseline_lr", minimum=0.0, min_open=True),
        "width_mult": _Spec("float", "baseline_width_mult", minimum=0.0, min_open=True),
        "weight_decay": _Spec("float", "baseline_weight_decay", minimum=0.0, off_param="baseline_weight_decay_on"),
    },
}
_EXTRA_KEYS = {
    "backbone": ("name", "widths"),
    "branching": ("encoding", "max_pairwise_tasks", "linkage"),
    "mechanisms": (),
    "train": (),
    "baseline": ("trials", "budget"),
}
_TOP_KEYS = ("name", "description", "backbone", "branching", "mechanisms", "train", "baseline")
TRAIN_KEYS = tuple(_SCHEMA["train"])


def _keys(section: str) -> list[str]:
    return list(_SCHEMA[section]) + list(_EXTRA_KEYS[section])


# ------------------------------------------------------------- projection
def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def project_share_depths(tasks: Sequence[str], depths: Mapping[tuple[str, str], int],
                         n_stages: int, linkage: str = "average") -> dict[tuple[str, str], int]:
    """Projection of pairwise share requests onto a task tree.

    Returns, for every pair ``(a, b)`` with ``a < b``, the number of leading
    stages the two share in :meth:`SharingGraph.from_share_depths` of the same
    requests (:func:`sharesearch.graph.share_partitions`). With
    ``linkage="single"`` this is the subdominant ultrametric: the largest
    ``l <= n_stages`` such that ``a`` and ``b`` are joined by a chain of pairs
    each requesting at least ``l``. Missing pairs request 0.

    >>> project_share_depths("abc", {("a", "b"): 2, ("b", "c"): 3}, 3, linkage="single")
    {('a', 'b'): 2, ('a', 'c'): 2, ('b', 'c'): 3}
    >>> project_share_depths("abc", {("a", "b"): 2, ("b", "c"): 3}, 3)
    {('a', 'b'): 1, ('a', 'c'): 1, ('b', 'c'): 3}
    """
    names = list(tasks)
    parts = share_partitions(names, depths, n_stages, linkage=linkage)
    out = {}
    for a, b in itertools.combinations(names, 2):
        d = 0
        while d < n_stages and any(a in grp and b in grp for grp in parts[d]):
            d += 1
        out[_pair(a, b)] = d
    return out


# ---------------------------------------------------------------- trials
class ParamsTrial:
    """A duck-typed trial answering from a parameter dict (no Optuna needed).

    Use it to rebuild a trial's candidate from its stored ``params``; a
    missing parameter raises :class:`SpaceError`.

    >>> ParamsTrial({"lr": 0.01}).suggest_float("lr", 1e-4, 1e-1, log=True)
    0.01
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)
        self.used: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise SpaceError(f"parameter {name!r} is missing; given: {sorted(self.params)}")
        self.used[name] = self.params[name]
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._get(name))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._get(name))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get(name)


class _Picker:
    """Chooses field values: from a trial, or (for reference params) by preference."""

    def __init__(self, trial: Any = None, prefs: Mapping[str, tuple[Any, bool]] | None = None) -> None:
        self.trial = trial
        self.prefs = dict(prefs or {})
        self.params: dict[str, Any] = {}

    def __call__(self, f: Field, param: str | None = None) -> Any:
        if self.trial is not None:
            return f.sample(self.trial, param)
        value, required = self.prefs.get(f.key, (None, False))
        if value is None or not f.can_be(value):
            if required and value is not None:
                raise _NotExpressible(f"{f.key} cannot be {value!r}")
            value = f.default
        self.params.update(f.params_for(value, param))
        return value


class _NotExpressible(Exception):
    pass


def _default(f: Field) -> Any:
    return f.default


def _task_names(tasks: Mapping[str, int] | Sequence[Any]) -> list[str]:
    if isinstance(tasks, Mapping):
        return [str(k) for k in tasks]
    return [t if isinstance(t, str) else t.name for t in tasks]


# ----------------------------------------------------------- the space
class SearchSpace:
    """A validated search space; see the module docstring for the file format.

    Attributes
    ----------
    name, description : str
    source : str
        File name (or the ``source`` given to :meth:`from_dict`); used in messages.
    text : str
        The original file text (TOML rendered from the data for :meth:`from_dict`).
    fields : dict[str, Field]
        Every sampled or fixed field by dotted key (``"train.lr"``, ``"backbone.widths[0]"``).
    baseline_trials : int
        Tuning trials of each independent baseline.
    """

    def __init__(self, data: Mapping[str, Any], source: str = "<space>", text: str | None = None) -> None:
        self.source = source
        p = _Parser(source)
        top = p.table(data, "", _TOP_KEYS)
        self._data = copy.deepcopy(top)
        for k in ("name", "description"):
            if k in top and not isinstance(top[k], str):
                raise p.err(k, f"expected a string, got {_fmt(top[k])}")
        self.name = top.get("name", Path(source).stem if source else "space")
        self.description = top.get("description", "")
        self.fields: dict[str, Field] = {}
        sec = {s: p.table(top.get(s), s, _keys(s)) for s in _SCHEMA}
        for s, raw in sec.items():
            for k, spec in _SCHEMA[s].items():
                if k in raw and not (s == "backbone" and k == "width"):
                    self.fields[f"{s}.{k}"] = p.field(raw[k], f"{s}.{k}", spec)
        self._parse_backbone(p, sec["backbone"])
        self._parse_branching(p, sec["branching"])
        self._parse_mechanisms(p)
        self._parse_baseline(p, sec["baseline"])
        self.text = text if text is not None else _to_toml(self._data)

    # -------------------------------------------------------------- parse
    def _parse_backbone(self, p: _Parser, raw: dict) -> None:
        name = raw.get("name", "auto")
        if isinstance(name, (list, Mapping)):
            raise p.err("backbone.name", f"must be fixed, got {_fmt(name)}")
        self.backbone_name = p.scalar(name, "backbone.name", _Spec("str", "", names=BACKBONE_NAMES))
        if "kernel" in raw and self.backbone_name == "mlp":
            raise p.err("backbone.kernel", "only a cnn backbone has a kernel")
        if ("width" in raw) == ("widths" in raw):
            raise p.err("backbone.widths" if "width" not in raw else "backbone.width",
                        "give exactly one of 'widths' (one spec per stage) or 'width' (one spec for every stage)")
        wspec = _SCHEMA["backbone"]["width"]
        stages = self.fields.get("backbone.stages")
        if "widths" in raw:
            ws = raw["widths"]
            if not isinstance(ws, (list, tuple)) or not ws:
                raise p.err("backbone.widths", f"expected a non-empty list with one spec per stage, got {_fmt(ws)}")
            if stages is None:
                stages = self.fields["backbone.stages"] = Field("backbone.stages", "stages", "int", value=len(ws))
            if len(ws) != stages.max:
                raise p.err("backbone.widths", f"{len(ws)} entries for at most {stages.max} stages "
                                               "(give one spec per stage)")
            self.width_fields = [p.field(w, f"backbone.widths[{i}]", wspec, f"width[{i}]") for i, w in enumerate(ws)]
        else:
            if stages is None:
                raise p.err("backbone.stages", "missing; 'width' needs a stage count")
            self.width_fields = [p.field(raw["width"], "backbone.width", wspec, f"width[{i}]")
                                 for i in range(stages.max)]
        for i, w in enumerate(self.width_fields):
            self.fields[f"backbone.widths[{i}]"] = w
        self.max_stages = int(stages.max)

    def _parse_branching(self, p: _Parser, raw: dict) -> None:
        L = self.max_stages
        share = self.fields.get("branching.share")
        if share is None:
            share = self.fields["branching.share"] = Field("branching.share", "share", "int", mode="range",
                                                           low=0, high=L)
        if share.max > L:
            raise p.err("branching.share", f"{share.max} > the largest stage count {L}")
        enc = raw.get("encoding", "auto")
        self.encoding = p.scalar(enc, "branching.encoding", _Spec("str", "", names=ENCODINGS))
        mpt = raw.get("max_pairwise_tasks", 8)
        self.max_pairwise_tasks = p.scalar(mpt, "branching.max_pairwise_tasks", _Spec("int", "", minimum=2))
        self.linkage = p.scalar(raw.get("linkage", "average"), "branching.linkage", _Spec("str", "", names=LINKAGES))

    def _parse_mechanisms(self, p: _Parser) -> None:
        # an omitted mechanism is fixed off (so references can check it)
        for k, v in (("conditioning", "none"), ("cross_stitch", False), ("l2_lambda", 0.0),
                     ("moe_experts", 0), ("moe_stages", 1), ("expert_dropout", 0.0)):
            spec = _SCHEMA["mechanisms"][k]
            self.fields.setdefault(f"mechanisms.{k}", Field(f"mechanisms.{k}", spec.param, spec.kind, value=v))
        ms = self.fields.get("mechanisms.moe_stages")
        if ms is not None and ms.max > self.max_stages:
            raise p.err("mechanisms.moe_stages", f"{ms.max} > the largest stage count {self.max_stages}")

    def _parse_baseline(self, p: _Parser, raw: dict) -> None:
        trials = raw.get("trials", 8)
        self.baseline_trials = p.scalar(trials, "baseline.trials", _Spec("int", "", minimum=0))
        self.baseline_budget = p.scalar(raw.get("budget", "max"), "baseline.budget", _Spec("str", "", names=BUDGETS))
        for k in ("lr", "weight_decay"):
            if f"baseline.{k}" not in self.fields and f"train.{k}" in self.fields:
                spec = _SCHEMA["baseline"][k]
                self.fields[f"baseline.{k}"] = replace(
                    self.fields[f"train.{k}"], key=f"baseline.{k}", param=spec.param,
                    off_param=spec.off_param if self.fields[f"train.{k}"].off_param else None)

    # ------------------------------------------------------- constructors
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> "SearchSpace":
        """Validate ``d`` (the parsed file) and build the space.

        >>> SearchSpace.from_dict({"backbone": {"widths": [8, 8]}, "mechanisms": {"conditioning": "flim"}},
        ...                       source="x.toml")
        Traceback (most recent call last):
        ...
        sharesearch.space.SpaceError: x.toml: mechanisms.conditioning: unknown choice 'flim'; valid: none, concat, film, gate
        """
        return cls(d, source)

    @classmethod
    def from_text(cls, text: str, source: str = "<text>", fmt: str | None = None) -> "SearchSpace":
        """Parse TOML (``fmt="toml"``) or YAML/JSON (``fmt="yaml"``); ``None`` tries TOML, then YAML."""
        if fmt not in (None, "toml", "yaml"):
            raise SpaceError(f"{source}: unknown format {fmt!r}; valid: toml, yaml")
        if fmt in (None, "toml"):
            try:
                return cls(tomllib.loads(text), source, text)
            except tomllib.TOMLDecodeError as e:
                if fmt == "toml":
                    raise SpaceError(f"{source}: not valid TOML: {e}") from None
                toml_err = e
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            what = "YAML" if fmt == "yaml" else f"TOML ({toml_err}) or YAML"
            raise SpaceError(f"{source}: not valid {what}: {' '.join(str(e).split())}") from None
        return cls(_yaml_numbers({} if data is None else data), source, text)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "SearchSpace":
        """Load a ``.toml`` file (``.yaml``/``.yml``/``.json`` are read as YAML)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpaceError(f"{path.name}: cannot read {str(path)!r}: {e.strerror or e}") from None
        fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml", ".json") else "toml"
        return cls.from_text(text, path.name, fmt)

    # ----------------------------------------------------------- accessors
    def to_dict(self) -> dict[str, Any]:
        """The validated data (``SearchSpace.from_dict(s.to_dict())`` rebuilds it)."""
        return copy.deepcopy(self._data)

    def fingerprint(self) -> str:
        """Hash of the data (not of comments or formatting)."""
        return hashlib.sha256(json.dumps(self._data, sort_keys=True).encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, source={self.source!r}, fingerprint={self.fingerprint()!r})"

    def field(self, key: str) -> Field | None:
        """The field of dotted ``key`` or None when the file leaves it out."""
        return self.fields.get(key)

    def encoding_for(self, n_tasks: int) -> str:
        """``"pairwise"`` or ``"trunk"`` for ``n_tasks`` tasks."""
        if self.encoding != "auto":
            return self.encoding
        return "pairwise" if n_tasks <= self.max_pairwise_tasks else "trunk"

    def branch_params(self, tasks: Mapping[str, int] | Sequence[Any]) -> list[str]:
        """Names of the task-tree parameters for ``tasks`` (empty when ``share`` is fixed).

        >>> load_space("tiny").branch_params(["b", "a", "c"])
        ['share[a~b]', 'share[b~c]', 'share[a~c]']
        """
        if self.fields["branching.share"].mode == "fixed":
            return []
        names = _task_names(tasks)
        if self.encoding_for(len(names)) == "trunk":
            return [f"trunk[{t}]" for t in names]
        return ["share[{}~{}]".format(*_pair(a, b)) for a, b in itertools.combinations(names, 2)]

    # ---------------------------------------------------------- sampling
    def _backbone(self, val: Any, input_shape: Sequence[int], extra_mult: float = 1.0) -> dict[str, Any]:
        """Backbone dict; ``val(field)`` gives each backbone field's value."""
        f = self.fields
        shape = [int(s) for s in input_shape]
        name = self.backbone_name
        if name == "auto":
            if len(shape) not in (1, 3):
                raise SpaceError(f"{self.source}: backbone.name: 'auto' needs an input shape [n] or [C, H, W], "
                                 f"got {shape}")
            name = "mlp" if len(shape) == 1 else "cnn"
        L = int(val(f["backbone.stages"]))
        widths = [int(val(w)) for w in self.width_fields[:L]]
        mult = float(val(f["backbone.width_mult"])) if "backbone.width_mult" in f else 1.0
        mult *= extra_mult
        widths = [max(1, int(math.floor(w * mult + 0.5))) for w in widths]
        bb: dict[str, Any] = {"name": name, "input_shape": shape, "widths": widths}
        if "backbone.dropout" in f:
            bb["dropout"] = float(val(f["backbone.dropout"]))
        if name == "cnn" and "backbone.kernel" in f:
            bb["kernel"] = int(val(f["backbone.kernel"]))
        return bb

    def default_backbone(self, input_shape: Sequence[int]) -> dict[str, Any]:
        """The backbone dict with every backbone field at its default.

        >>> load_space("tiny").default_backbone((8,))["widths"]
        [32, 32]
        """
        return self._backbone(_default, input_shape)

    def _depths(self, pick: _Picker, names: list[str], L: int) -> dict[tuple[str, str], int]:
        share = self.fields["branching.share"]
        if share.mode == "fixed":
            d = int(pick(share))
            return {_pair(a, b): d for a, b in itertools.combinations(names, 2)}
        if self.encoding_for(len(names)) == "trunk":
            trunk = {t: int(pick(share, f"trunk[{t}]")) for t in names}
            return {_pair(a, b): min(trunk[a], trunk[b]) for a, b in itertools.combinations(names, 2)}
        out = {}
        for a, b in itertools.combinations(names, 2):
            a, b = _pair(a, b)
            out[(a, b)] = int(pick(share, f"share[{a}~{b}]"))
        return out

    def _mechanisms(self, pick: _Picker, L: int) -> dict[str, Any]:
        f = self.fields
        kw: dict[str, Any] = {"conditioning": pick(f["mechanisms.conditioning"])}
        kw["cross_stitch"] = stitch = bool(pick(f["mechanisms.cross_stitch"]))
        # l2 and cross-stitch would join the same pair of blocks: l2 only without cross-stitch
        kw["l2"] = 0.0 if stitch else float(pick(f["mechanisms.l2_lambda"]))
        experts = int(pick(f["mechanisms.moe_experts"]))
        if experts:
            k = min(L, int(pick(f["mechanisms.moe_stages"])))
            kw["moe"] = [experts] * k + [0] * (L - k)
            kw["expert_dropout"] = float(pick(f["mechanisms.expert_dropout"]))
        return kw

    def _train(self, pick: _Picker) -> dict[str, Any]:
        return {k: pick(self.fields[f"train.{k}"]) for k in TRAIN_KEYS if f"train.{k}" in self.fields}

    def _build(self, pick: _Picker, tasks, input_shape) -> Candidate:
        names = _task_names(tasks)
        bb = self._backbone(pick, input_shape)
        L = len(bb["widths"])
        depths = self._depths(pick, names, L)
        mech = self._mechanisms(pick, L)
        graph = SharingGraph.from_share_depths(tasks, bb, depths, linkage=self.linkage, **mech)
        return Candidate(graph, self._train(pick))

    def sample(self, trial: Any, tasks: Mapping[str, int] | Sequence[Any], input_shape: Sequence[int]) -> Candidate:
        """Sample a candidate define-by-run (``trial.suggest_*`` only).

        Parameters
        ----------
        trial : an Optuna trial or anything with its ``suggest_int/float/categorical``
        tasks : TaskSpecs (or ``{name: out_dim}``) in graph task order
        input_shape : one example's shape, e.g. ``(n_features,)`` or ``(1, 28, 28)``

        >>> space = load_space("branching")
        >>> p = {"share[a~b]": 1, "share[a~c]": 0, "share[b~c]": 3, "lr": 1e-3}
        >>> space.sample(ParamsTrial(p), {"a": 1, "b": 1, "c": 1}, (5,)).graph.partitions()[0]
        (('a', 'b', 'c'),)
        """
        return self._build(_Picker(trial), tasks, input_shape)

    def build(self, params: Mapping[str, Any], tasks, input_shape) -> Candidate:
        """Rebuild the candidate of a trial from its ``params`` (no Optuna needed)."""
        return self.sample(ParamsTrial(params), tasks, input_shape)

    # --------------------------------------------------------- references
    def _reference_prefs(self, name: str) -> dict[str, tuple[Any, bool]]:
        f = self.fields
        L = int(f["backbone.stages"].default)
        off = {"mechanisms.cross_stitch": (False, True), "mechanisms.l2_lambda": (0.0, True)}
        soft_pref = {k: (v, False) for k, v in off.items()}
        if name == "independent":
            return {"branching.share": (0, True), **off, "mechanisms.moe_experts": (0, False)}
        if name == "shared-bottom":
            return {"branching.share": (L, True), "mechanisms.conditioning": ("none", True),
                    "mechanisms.moe_experts": (0, True), **soft_pref}
        if name == "mmoe":
            e = f["mechanisms.moe_experts"]
            if not e.on_default:
                raise _NotExpressible("mechanisms.moe_experts is off")
            k = min(L, int(f["mechanisms.moe_stages"].default))
            return {"branching.share": (k, True), "mechanisms.moe_experts": (e.on_default, True),
                    **(off if k < L else soft_pref)}
        if name == "cross-stitch":
            return {"branching.share": (0, True), "mechanisms.cross_stitch": (True, True),
                    "mechanisms.moe_experts": (0, False)}
        if name == "l2-soft":
            lam = f["mechanisms.l2_lambda"]
            if not lam.on_default:
                raise _NotExpressible("mechanisms.l2_lambda is off")
            return {"branching.share": (0, True), "mechanisms.cross_stitch": (False, True),
                    "mechanisms.l2_lambda": (lam.on_default, True), "mechanisms.moe_experts": (0, False)}
        raise SpaceError(f"{self.source}: unknown reference architecture {name!r}; valid: {', '.join(REFERENCES)}")

    def reference_params(self, name: str, tasks: Mapping[str, int] | Sequence[Any]) -> dict[str, Any]:
        """Parameters to ``study.enqueue_trial`` for a reference architecture.

        Sampling with them gives the graph of the matching constructor
        (``SharingGraph.independent / shared_bottom / mmoe / cross_stitch /
        l2_soft``) on :meth:`default_backbone`, with the space's default
        experts, MoE stages, expert dropout and λ; training parameters take
        their defaults. Raises :class:`SpaceError` when the space cannot
        express it (see :meth:`reference_names`).

        >>> p = load_space("tiny").reference_params("mmoe", {"a": 1, "b": 1})
        >>> {k: p[k] for k in ("share[a~b]", "moe", "moe_experts", "cross_stitch", "l2_on", "epochs")}
        {'share[a~b]': 1, 'moe': True, 'moe_experts': 2, 'cross_stitch': False, 'l2_on': False, 'epochs': 2}
        """
        try:
            pick = _Picker(prefs=self._reference_prefs(name))
            self._build(pick, tasks, (1,) if self.backbone_name != "cnn" else (1, 4, 4))
        except _NotExpressible as e:
            raise SpaceError(f"{self.source}: reference {name!r} is not in this space: {e}") from None
        return pick.params

    def reference_names(self) -> list[str]:
        """The reference architectures this space can express, in :data:`REFERENCES` order."""
        out = []
        for name in REFERENCES:
            try:
                self.reference_params(name, {"t0": 1, "t1": 1, "t2": 1})
            except SpaceError:
                continue
            out.append(name)
        return out

    def reference_graph(self, name: str, tasks, input_shape: Sequence[int]) -> SharingGraph:
        """The constructor's graph that :meth:`reference_params` reproduces.

        >>> space = load_space("tiny")
        >>> p = space.reference_params("l2-soft", {"a": 1, "b": 1})
        >>> space.sample(ParamsTrial(p), {"a": 1, "b": 1}, (3,)).graph == space.reference_graph(
        ...     "l2-soft", {"a": 1, "b": 1}, (3,))
        True
        """
        self.reference_params(name, tasks)  # raises when the space cannot express it
        bb = self.default_backbone(input_shape)
        f = self.fields
        if name not in REFERENCES:
            raise SpaceError(f"{self.source}: unknown reference architecture {name!r}; valid: {', '.join(REFERENCES)}")
        if name == "independent":
            return SharingGraph.independent(tasks, bb)
        if name == "shared-bottom":
            return SharingGraph.shared_bottom(tasks, bb)
        if name == "cross-stitch":
            return SharingGraph.cross_stitch(tasks, bb)
        if name == "l2-soft":
            return SharingGraph.l2_soft(tasks, bb, lam=f["mechanisms.l2_lambda"].on_default)
        k = min(len(bb["widths"]), int(f["mechanisms.moe_stages"].default))
        p = float(f["mechanisms.expert_dropout"].default)
        return SharingGraph.mmoe(tasks, bb, experts=int(f["mechanisms.moe_experts"].on_default), moe_stages=k,
                                 expert_dropout=p)

    # ---------------------------------------------------------- baselines
    def _baseline(self, pick: _Picker, tasks, input_shape) -> Candidate:
        f = self.fields
        mult = float(pick(f["baseline.width_mult"])) if "baseline.width_mult" in f else 1.0
        bb = self._backbone(_default, input_shape, mult)
        train: dict[str, Any] = {}
        if "baseline.lr" in f:
            train["lr"] = pick(f["baseline.lr"])
        if "baseline.weight_decay" in f:
            train["weight_decay"] = pick(f["baseline.weight_decay"])
        if "train.epochs" in f:
            ep = f["train.epochs"]
            train["epochs"] = ep.max if self.baseline_budget == "max" else ep.default
        if "train.batch_size" in f:
            train["batch_size"] = f["train.batch_size"].default
        if "train.weighting" in f:
            train["weighting"] = "equal"
        if "train.sampling" in f:
            train["sampling"] = f["train.sampling"].default
        return Candidate(SharingGraph.independent(tasks, bb), train)

    def sample_baseline(self, trial: Any, tasks, input_shape: Sequence[int]) -> Candidate:
        """Sample a tuning trial of the independent single-task baselines.

        The graph is :meth:`SharingGraph.independent` on the default backbone
        with its widths times ``baseline_width_mult``; ``baseline_lr`` and
        ``baseline_weight_decay`` are sampled. The budget matches the
        candidates': epochs are the ``[train]`` maximum (``budget = "max"``,
        so a baseline never trains less than a candidate may) or default,
        the batch size and task sampling are the ``[train]`` defaults, and
        weighting is ``equal`` (the networks share nothing).

        >>> t = ParamsTrial({"baseline_width_mult": 0.5, "baseline_lr": 1e-3})
        >>> c = load_space("tiny").sample_baseline(t, {"a": 1}, (4,))
        >>> c.graph.backbone.widths, c.train["epochs"], c.train["lr"]
        ((16, 16), 3, 0.001)
        """
        return self._baseline(_Picker(trial), tasks, input_shape)

    def baseline_default_params(self) -> dict[str, Any]:
        """Parameters of the baseline trial with every baseline field at its default."""
        pick = _Picker(prefs={})
        self._baseline(pick, {"t0": 1}, (1,) if self.backbone_name != "cnn" else (1, 4, 4))
        return pick.params


# ------------------------------------------------------------- loading
def shipped_spaces() -> list[str]:
    """Names of the spaces shipped with the package.

    >>> shipped_spaces()
    ['branching', 'default', 'image', 'tiny']
    """
    d = resources.files("sharesearch").joinpath("spaces")
    return sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml"))


def load_space(name_or_path: str | os.PathLike) -> SearchSpace:
    """Load a shipped space by name (``"default"``, ``"tiny"``, ...) or a file by path.

    >>> load_space("default").name
    'default'
    """
    s = os.fspath(name_or_path)
    if os.path.exists(s) or os.sep in s or "/" in s or Path(s).suffix.lower() in (".toml", ".yaml", ".yml", ".json"):
        return SearchSpace.from_file(s)
    if s not in shipped_spaces():
        raise SpaceError(f"{s}: no such search space; shipped spaces: {', '.join(shipped_spaces())} "
                         "(or give a file path)")
    res = resources.files("sharesearch").joinpath("spaces", f"{s}.toml")
    return SearchSpace.from_text(res.read_text(encoding="utf-8"), f"{s}.toml", "toml")


# --------------------------------------------------------------- helpers
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)$")


def _yaml_numbers(x: Any) -> Any:
    """PyYAML reads ``1e-4`` as a string (YAML 1.1); read such strings as floats."""
    if isinstance(x, dict):
        return {k: _yaml_numbers(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_yaml_numbers(v) for v in x]
    if isinstance(x, str) and _FLOAT_RE.match(x):
        return float(x)
    return x


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _to_toml(d: Mapping[str, Any]) -> str:
    """Render validated space data as TOML (scalars first, then one table per section)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, Mapping)]
    for k, v in d.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{_toml_key(k)}]"] + [f"{_toml_key(a)} = {_toml_value(b)}" for a, b in v.items()]
    return "\n".join(lines).lstrip("\n") + "\n"

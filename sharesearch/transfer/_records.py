"""Typed records of a transfer run, their statistics and their JSON form (torch-free).

One :class:`TransferPoint` is one (topology, held-out task, k, mode): the
held-out task's primary *test* metric per seed for the transferred network and
for the single-task network trained from scratch on the same k rows, and the
gain. Seeds pair the arms (the same seed draws the same k rows, the same batch
order and the same head initialisation), so the gain is the mean of the
per-seed relative changes (:func:`sharesearch.verdict._delta.relative_change`,
positive = transfer helps, whatever the metric's direction) with a Student-t
interval and a one-sample t-test; Holm's correction runs over every point of
one (topology, mode) (:func:`sharesearch.verdict.holm`).

The **transferability score** of a curve is the area under gain vs
``log10(k)`` divided by the width of the ``log10(k)`` range: the mean gain over
the log-k range (a single k: its gain). A topology's score is the mean
over its held-out tasks.

Example
-------
>>> pts = [TransferPoint.of("sb", "t1", k, k, "frozen", "rmse", "minimize", [0.9, 0.8, 0.85], [1.0, 1.0, 1.0])
...        for k in (10, 100)]
>>> round(pts[0].gain, 3), pts[0].low > 0
(0.15, True)
>>> round(transferability(pts), 3)
0.15
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from ..errors import SharesearchError
from ..verdict import holm
from ..verdict._delta import direction_sign, relative_change
from ..verdict._tests import mean_ci

__all__ = ["MODES", "TransferConfig", "TransferPoint", "TransferCurve", "TransferResult", "transferability",
           "with_holm"]

#: how the transferred network is trained on the k rows
MODES: tuple[str, ...] = ("frozen", "finetune")


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class TransferConfig:
    """How every few-shot network (transferred and from scratch alike) is trained: one protocol, one effort."""

    steps: int = 200  # optimizer steps per training (the budget, equal for every arm)
    eval_every: int = 20  # validate every this many steps; each arm keeps its best validation step
    batch_size: int = 32  # rows per step (at most k)
    lr_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2)  # Adam learning rates tried per arm; the best on validation wins
    confidence: float = 0.95  # level of the seed-paired intervals

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SharesearchError(f"transfer config: field {name!r} must be an integer >= 1, got {v!r}")
        if not self.lr_grid or not all(isinstance(v, (int, float)) and 0 < v < math.inf for v in self.lr_grid):
            raise SharesearchError(f"transfer config: field 'lr_grid' must list positive numbers, got {self.lr_grid!r}")
        if not 0 < self.confidence < 1:
            raise SharesearchError(f"transfer config: field 'confidence' must be in (0, 1), got {self.confidence!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "eval_every": self.eval_every, "batch_size": self.batch_size,
                "lr_grid": list(self.lr_grid), "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransferConfig":
        return cls(**{**d, "lr_grid": tuple(d.get("lr_grid", cls.lr_grid))})


@dataclass(frozen=True)
class TransferPoint:
    """One (topology, held-out task, k, mode): both arms' test metric per seed and the seed-paired gain."""

    topology: str  # name of the topology ("chosen", "shared-bottom", "mmoe", ...)
    task: str  # the held-out (or new) task
    k: int | None  # labelled training rows asked for (None: all of them)
    n_rows: int  # labelled training rows used
    mode: str  # "frozen" (new parts only) | "finetune" (the whole path)
    metric: str  # the task's primary metric
    direction: str  # "maximize" | "minimize"
    transfer: tuple[float, ...]  # test metric of the transferred network, per seed
    scratch: tuple[float, ...]  # test metric of the from-scratch network, per seed (same seeds, same rows)
    gain: float  # mean per-seed relative change (positive: transfer helps)
    low: float  # the gain's interval (seed-paired, Student t)
    high: float
    p: float  # two-sided one-sample t-test of the per-seed gains against 0
    p_holm: float = float("nan")  # Holm-adjusted over the points of one (topology, mode)

    @classmethod
    def of(cls, topology: str, task: str, k: int | None, n_rows: int, mode: str, metric: str, direction: str,
           transfer: Sequence[float], scratch: Sequence[float], confidence: float = 0.95) -> "TransferPoint":
        """A point with its gain, interval and p-value computed from the two arms' per-seed metrics."""
        a, b = np.asarray(transfer, float), np.asarray(scratch, float)
        per_seed = relative_change(direction_sign(direction, task), a, b)  # [seeds]
        ok = per_seed[np.isfinite(per_seed)]  # a diverged run is left out, never a crash
        gain = float(ok.mean()) if ok.size else math.nan
        low, high = mean_ci(ok, confidence) if ok.size else (math.nan, math.nan)
        p = math.nan
        if ok.size >= 2 and np.ptp(ok) > 0:
            p = float(stats.ttest_1samp(ok, 0.0).pvalue)
        return cls(topology, task, k, int(n_rows), mode, metric, direction, tuple(map(float, a)),
                   tuple(map(float, b)), gain, float(low), float(high), p)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("topology", "task", "k", "n_rows", "mode", "metric", "direction")}
        d.update(transfer=[_json(v) for v in self.transfer], scratch=[_json(v) for v in self.scratch])
        d.update({k: _json(getattr(self, k)) for k in ("gain", "low", "high", "p", "p_holm")})
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransferPoint":
        f = dict(d)
        f["transfer"] = tuple(_nan(v) for v in f["transfer"])
        f["scratch"] = tuple(_nan(v) for v in f["scratch"])
        for k in ("gain", "low", "high", "p", "p_holm"):
            f[k] = _nan(f.get(k))
        return cls(**f)


def transferability(points: Sequence[TransferPoint]) -> float:
    """Area under gain vs ``log10(k)`` over the width of the range (the mean gain over log k).

    ``k = None`` (all rows) sits at its ``n_rows``. NaN gains are left out.

    >>> p = lambda k, t: TransferPoint.of("x", "t", k, k, "frozen", "auc", "maximize", [t], [0.5])
    >>> transferability([p(10, 1.0), p(1000, 0.5)])   # gains 1.0 and 0.0
    0.5
    """
    xy = sorted((math.log10(max(p.n_rows, 1)), p.gain) for p in points if math.isfinite(p.gain))
    if not xy:
        return math.nan
    if len(xy) == 1 or xy[-1][0] == xy[0][0]:
        return float(np.mean([g for _, g in xy]))
    x, y = np.array(xy).T
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))


def with_holm(points: Sequence[TransferPoint]) -> tuple[TransferPoint, ...]:
    """The points with Holm-adjusted p-values, one family per (topology, mode)."""
    out = list(points)
    families: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(out):
        families.setdefault((p.topology, p.mode), []).append(i)
    for idx in families.values():
        adj = holm([out[i].p for i in idx])
        for i, a in zip(idx, adj):
            out[i] = replace(out[i], p_holm=float(a))
    return tuple(out)


@dataclass(frozen=True)
class TransferCurve:
    """Where one held-out task joined one topology, and its points (every k and mode)."""

    topology: str  # name of the topology
    task: str  # the held-out (or new) task
    graph_key: str  # SharingGraph.key() of the full topology (with the task)
    attach_node: str  # node of the reduced graph the task joined
    attach_stage: int  # its stage
    attach_rule: str  # "closeness" | "topology" | "trunk root" (sharesearch.transfer._graph)
    descriptor: bool  # the task's descriptor was learned (a conditioned block on its path)
    trunk_val: dict[str, float]  # the reduced graph's mean primary validation metric per remaining task
    seconds: float  # wall time of the trunks and the few-shot runs

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransferCurve":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TransferResult:
    """Every curve and point of a transfer run; Holm applied over each (topology, mode)."""

    curves: tuple[TransferCurve, ...]  # one per (topology, task)
    points: tuple[TransferPoint, ...]  # one per (topology, task, k, mode)
    seeds: tuple[int, ...]  # the paired seeds
    config: TransferConfig = field(default_factory=TransferConfig)  # the few-shot protocol

    @classmethod
    def combine(cls, results: Sequence["TransferResult"]) -> "TransferResult":
        """One result from several (e.g. one per held-out task), Holm recomputed over the union."""
        if not results:
            raise ValueError("combine: no results")
        curves = tuple(c for r in results for c in r.curves)
        points = with_holm([p for r in results for p in r.points])
        return cls(curves, points, results[0].seeds, results[0].config)

    def curve_points(self, topology: str, task: str, mode: str) -> list[TransferPoint]:
        """The points of one curve, in the order of k."""
        return [p for p in self.points if (p.topology, p.task, p.mode) == (topology, task, mode)]

    def scores(self) -> dict[tuple[str, str], float]:
        """Transferability per (topology, mode): the mean over tasks of each curve's score."""
        per: dict[tuple[str, str], list[float]] = {}
        for c in self.curves:
            for mode in sorted({p.mode for p in self.points}):
                s = transferability(self.curve_points(c.topology, c.task, mode))
                if math.isfinite(s):
                    per.setdefault((c.topology, mode), []).append(s)
        return {k: float(np.mean(v)) for k, v in per.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as null); what the study stores and the report reads."""
        return {"version": 1, "seeds": list(self.seeds), "config": self.config.to_dict(),
                "curves": [c.to_dict() for c in self.curves], "points": [p.to_dict() for p in self.points],
                "scores": [{"topology": t, "mode": m, "score": _json(s)} for (t, m), s in self.scores().items()]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TransferResult":
        return cls(tuple(TransferCurve.from_dict(c) for c in d["curves"]),
                   tuple(TransferPoint.from_dict(p) for p in d["points"]), tuple(d["seeds"]),
                   TransferConfig.from_dict(d.get("config", {})))

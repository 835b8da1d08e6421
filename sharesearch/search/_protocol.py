"""The verdict's protocol record: how many seeds and why, the budget, and how often the test split was seen.

:class:`SeedPlan` says where the seed count comes from: an explicit number,
or the power analysis :func:`sharesearch.verdict.seeds_for_power` at the
control's largest seed-to-seed coefficient of variation (a ``relative`` 10 %
loss, 80 % power after Holm over the tasks), clipped to :data:`SEED_RANGE`.
:class:`VerdictProtocol` is what the verdict stores under ``"protocol"``;
``test_looks`` counts the distinct verdict designs (seeds, arms, budget)
evaluated on the test split, so a recomputation with other seeds or top-k is
recorded as a second look and ``test_used_once`` turns False.

Example
-------
>>> plan = plan_seeds(None, {"a": 0.07, "b": 0.02}, alpha=0.05, source="pilot of 3 control seeds")
>>> plan.n_seeds, plan.cv, plan.cv_task, plan.rule
(11, 0.07, 'a', 'power')
>>> plan_seeds(4, {}, alpha=0.05).n_seeds
4
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..verdict import seeds_for_power

__all__ = ["SeedPlan", "VerdictProtocol", "plan_seeds", "count_looks", "SEED_RANGE", "EFFECT", "POWER"]

SEED_RANGE = (5, 20)  # the power rule's seed count is clipped to this range (cost vs. power)
EFFECT = 0.10  # relative loss the default seed count is sized to detect
POWER = 0.80  # power wanted for that loss, after Holm over the tasks


@dataclass(frozen=True)
class SeedPlan:
    """How many seeds every arm gets, and the justification."""

    n_seeds: int  # seeds per arm (candidates, references, control)
    rule: str  # "explicit" (given) | "power" (seeds_for_power at the control's spread)
    cv: float | None = None  # the largest per-task coefficient of variation of the control (power rule)
    cv_task: str | None = None  # the task it belongs to
    cv_by_task: dict[str, float] = field(default_factory=dict)  # task -> control's validation cv
    cv_source: str = ""  # "baseline record" | "pilot of 3 control seeds"
    effect: float = EFFECT  # relative loss to detect
    power: float = POWER  # power wanted
    alpha: float = 0.05  # family-wise error rate (Holm over n_tasks)
    n_tasks: int = 1  # size of the Holm family
    n_required: int | None = None  # seeds_for_power's answer before clipping
    seed_range: tuple[int, int] = SEED_RANGE  # clip range of the power rule

    def describe(self) -> str:
        """One line for the report.

        >>> SeedPlan(4, "explicit").describe()
        '4 seeds per arm (given explicitly; no power analysis)'
        """
        if self.rule != "power":
            return f"{self.n_seeds} seeds per arm (given explicitly; no power analysis)"
        if self.n_required is None:
            return (f"{self.n_seeds} seeds per arm: the control's spread was zero or unmeasured "
                    f"({self.cv_source}); the lower end of {list(self.seed_range)} was used")
        clip = "" if self.n_required == self.n_seeds else f", clipped to {list(self.seed_range)}"
        return (f"{self.n_seeds} seeds per arm: seeds_for_power(cv={self.cv:.3g} [task {self.cv_task}, "
                f"{self.cv_source}], effect={self.effect:.0%}, power={self.power:.0%}, alpha={self.alpha:g} "
                f"Holm over {self.n_tasks} tasks) = {self.n_required}{clip}")


def plan_seeds(n_seeds: int | None, cv_by_task: Mapping[str, float], *, alpha: float, source: str = "",
               effect: float = EFFECT, power: float = POWER,
               seed_range: tuple[int, int] = SEED_RANGE) -> SeedPlan:
    """The seed plan: ``n_seeds`` when given, else the power rule at the largest finite ``cv_by_task``."""
    if n_seeds is not None:
        return SeedPlan(int(n_seeds), "explicit", alpha=alpha, n_tasks=max(1, len(cv_by_task)))
    cvs = {t: float(c) for t, c in cv_by_task.items() if c is not None and math.isfinite(c) and c > 0}
    n_tasks = max(1, len(cv_by_task))
    if not cvs:
        return SeedPlan(seed_range[0], "power", cv_by_task=dict(cv_by_task), cv_source=source, effect=effect,
                        power=power, alpha=alpha, n_tasks=n_tasks, seed_range=seed_range)
    task = max(cvs, key=cvs.get)
    need = seeds_for_power(cvs[task], effect, n_tasks=n_tasks, alpha=alpha, power=power)
    return SeedPlan(min(max(need, seed_range[0]), seed_range[1]), "power", cv=cvs[task], cv_task=task,
                    cv_by_task=dict(cv_by_task), cv_source=source, effect=effect, power=power, alpha=alpha,
                    n_tasks=n_tasks, n_required=need, seed_range=seed_range)


@dataclass(frozen=True)
class VerdictProtocol:
    """What the verdict did, stored under the verdict's ``"protocol"``."""

    seeds: tuple[int, ...]  # seeds of every arm and of the control (the same seeds: runs matched by seed)
    independent_seeds: tuple[int, ...]  # seeds of the `independent` reference: the control again, disjoint seeds
    seed_plan: SeedPlan  # how many seeds and why
    top_k: int  # searched candidates retrained
    alpha: float  # family-wise error rate of the per-task tests
    budget: dict[str, Any]  # TrainConfig budget fields every arm and the control share (max_steps, patience, ...)
    metric: dict[str, str]  # task -> primary metric
    design: str  # hash of seeds, arms and budget: equal designs repeat the same look
    test_looks: int  # distinct verdict designs evaluated on the test split so far, this one included
    computations: int  # verdict computations so far, this one included
    row_resamples: int  # test-row bootstrap resamples in each Δm interval
    selection: str = "validation"  # split the candidates were chosen on
    test: str = "Welch t-test per task, Holm across the tasks of each arm; TOST within the margin"
    delta_m_interval: str = "Welch t over whole runs + test-row bootstrap paired across arms"
    baselines: str = ("control: the tuned independent networks (each task its own configuration), "
                      "retrained with the arms' seeds and budget")

    @property
    def test_used_once(self) -> bool:
        """True while only one verdict design has looked at the test split."""
        return self.test_looks == 1

    @property
    def n_seeds(self) -> int:
        """Seeds per arm."""
        return len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``test_used_once``, ``n_seeds`` and ``seeds_why`` are added for readers."""
        d = asdict(self)
        d.update(seeds=list(self.seeds), independent_seeds=list(self.independent_seeds),
                 test_used_once=self.test_used_once, n_seeds=self.n_seeds, seeds_why=self.seed_plan.describe())
        d["seed_plan"]["seed_range"] = list(self.seed_plan.seed_range)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "VerdictProtocol":
        """The inverse of :meth:`to_dict`."""
        sp = dict(d["seed_plan"])
        sp["seed_range"] = tuple(sp.get("seed_range", SEED_RANGE))
        kw = {k: d[k] for k in ("top_k", "alpha", "budget", "metric", "design", "test_looks", "computations",
                                "row_resamples", "selection", "test", "delta_m_interval", "baselines") if k in d}
        return cls(seeds=tuple(d["seeds"]), independent_seeds=tuple(d["independent_seeds"]),
                   seed_plan=SeedPlan(**sp), **kw)


def design_key(seeds: Sequence[int], independent_seeds: Sequence[int], arms: Sequence[tuple[str, int | None]],
               budget: Mapping[str, Any]) -> str:
    """A short hash of what a verdict evaluates on test: seeds, arms (name, trial) and budget.

    >>> design_key([1], [2], [("a", 1)], {}) == design_key([1], [2], [("a", 1)], {})
    True
    """
    text = json.dumps({"seeds": list(seeds), "aa": list(independent_seeds), "arms": [list(a) for a in arms],
                       "budget": dict(budget)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def count_looks(history: Sequence[Mapping[str, Any]], design: str) -> int:
    """Distinct designs among the previous verdicts and this one (a verdict without a design counts as one).

    >>> count_looks([{"protocol": {"design": "x"}}, {"protocol": {}}], "x")
    2
    """
    seen = {design}
    for i, prev in enumerate(history):
        seen.add((prev.get("protocol") or {}).get("design") or f"<unrecorded {i}>")
    return len(seen)

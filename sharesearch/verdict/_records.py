"""The verdict's typed records, :class:`TaskVerdict` and :class:`Verdict`, and their JSON form.

``to_dict`` writes strict JSON (NaN -> ``None``, ±inf -> ``"inf"``/``"-inf"``);
``from_dict`` reads it back, including version-1 dicts written before the
equivalence tests existed (their ``"gain"`` reads as ``"positive transfer"``,
``"no significant difference"`` as ``"inconclusive"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from .. import fmt
from ._markdown import verdict_markdown

__all__ = ["VERDICTS", "TaskVerdict", "Verdict"]

#: The verdict categories: a significant loss or gain (Holm), equivalence
#: within the margin (TOST, Holm), neither, or no test possible.
VERDICTS = ("negative transfer", "positive transfer", "equivalent", "inconclusive", "untestable")

_LEGACY = {"gain": "positive transfer", "no significant difference": "inconclusive"}
_PAIRS = ("candidate_ci", "baseline_ci", "delta_ci", "delta_m_ci")


def _enc(x: float) -> float | str | None:
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _encode(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return _enc(value)
    if isinstance(value, tuple):
        return [_enc(x) for x in value]
    if isinstance(value, dict):
        return dict(value)
    return value


@dataclass(frozen=True)
class TaskVerdict:
    """The comparison of one task's candidate runs with its baseline runs."""

    task: str  # task name
    direction: str  # "maximize" or "minimize"
    n_candidate: int  # candidate runs used (finite)
    n_baseline: int  # baseline runs used (finite)
    candidate_mean: float  # mean over the candidate runs
    candidate_ci: tuple[float, float]  # 1 - alpha Student-t interval of that mean (NaN for one run)
    baseline_mean: float  # mean over the baseline runs
    baseline_ci: tuple[float, float]  # 1 - alpha Student-t interval of that mean
    delta: float  # relative_delta of the means (positive: sharing helps)
    delta_ci: tuple[float, float]  # 1 - alpha Fieller interval of delta; (-inf, inf) if the baseline is ~0
    p_value: float  # Welch two-sided p-value (NaN: untestable)
    p_holm: float  # its Holm-adjusted value within the arm's family
    verdict: str  # one of VERDICTS
    note: str = ""  # caveats (few runs, zero spread, diverged runs, unbounded interval); "" if none
    mde: float = math.nan  # minimum detectable |delta| at 80 % power, alpha / family size (NaN: untestable)
    margin: float = 0.05  # equivalence margin: |delta| < margin is "no meaningful change"
    p_equivalence: float = math.nan  # TOST p-value for -margin < delta < margin
    p_equivalence_holm: float = math.nan  # its Holm-adjusted value
    equivalent: bool | None = None  # TOST rejects after Holm; None when untestable
    n_diverged_candidate: int = 0  # candidate runs whose metric was not finite (left out, counted here)
    n_diverged_baseline: int = 0  # baseline runs whose metric was not finite

    @property
    def label(self) -> str:
        """The verdict as shown: ``"equivalent within ±5%"``, ``"inconclusive (MDE 12.3%)"``, ...

        >>> TaskVerdict("a", "maximize", 3, 3, 1.0, (0.9, 1.1), 1.0, (0.9, 1.1), 0.0, (-0.2, 0.2),
        ...             0.9, 0.9, "inconclusive", mde=0.123).label
        'inconclusive (MDE 12.3%)'
        """
        if self.verdict == "equivalent":
            return f"equivalent within {fmt.margin(self.margin)}"
        if self.verdict == "inconclusive":
            return f"inconclusive (MDE {fmt.percent(self.mde)})"
        return self.verdict

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN -> None, ±inf -> "inf"/"-inf"), with the ``label`` added."""
        out = {f.name: _encode(getattr(self, f.name)) for f in fields(self)}
        out["label"] = self.label
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> "TaskVerdict":
        """Inverse of :meth:`to_dict` (also reads version-1 dicts)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.name in _PAIRS:
                v = tuple(fmt.as_float(x) for x in v)
            elif f.type in ("float",):
                v = fmt.as_float(v)
            elif f.type == "int":
                v = int(v)
            kwargs[f.name] = v
        kwargs["verdict"] = _LEGACY.get(kwargs["verdict"], kwargs["verdict"])
        return cls(**kwargs)


@dataclass(frozen=True)
class Verdict:
    """Per-task verdicts of one arm against the baselines, plus Δm with its interval."""

    tasks: list[TaskVerdict]  # one per task, in the order of ``directions``
    delta_m: float  # priority-weighted mean of the tasks' delta
    delta_m_ci: tuple[float, float]  # 1 - alpha interval of delta_m (see delta_m_method)
    alpha: float = 0.05  # family-wise error rate of the Holm-corrected verdicts; intervals are 1 - alpha
    n_resamples: int = 10_000  # bootstrap resamples (kept for reproducibility)
    seed: int | None = 0  # bootstrap seed
    weights: dict[str, float] = field(default_factory=dict)  # task -> priority weight used for delta_m
    delta_m_method: str = ""  # how delta_m_ci was made, in words
    holm_family: str = ""  # which tests Holm's correction covers, in words
    margin: float = 0.05  # equivalence margin (relative)
    power: float = 0.80  # power at which each task's mde is computed
    n_diverged_candidate: int = 0  # candidate runs with a diverged task (left out of the statistics)
    n_diverged_baseline: int = 0  # baseline runs with a diverged task

    def get(self, task: str) -> TaskVerdict:
        """The :class:`TaskVerdict` of ``task`` (KeyError naming it if absent)."""
        for tv in self.tasks:
            if tv.task == task:
                return tv
        raise KeyError(f"task {task!r} not in verdict; tasks: {[tv.task for tv in self.tasks]}")

    @property
    def negative_transfer(self) -> list[str]:
        """Names of the tasks with a significant (Holm) loss from sharing."""
        return [tv.task for tv in self.tasks if tv.verdict == "negative transfer"]

    def to_dict(self) -> dict:
        """JSON-ready dict (strict JSON: NaN -> None, ±inf -> "inf"/"-inf").

        Examples
        --------
        >>> import json
        >>> from sharesearch.verdict import task_verdicts
        >>> v = task_verdicts({"a": [1.0, 1.1, 1.2]}, {"a": [1.0, 1.05, 1.1]}, {"a": "maximize"})
        >>> Verdict.from_dict(json.loads(json.dumps(v.to_dict()))).to_dict() == v.to_dict()
        True
        """
        out = {f.name: _encode(getattr(self, f.name)) for f in fields(self)}
        out["tasks"] = [tv.to_dict() for tv in self.tasks]
        return {"version": 2, **out}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Verdict":
        """Inverse of :meth:`to_dict` (also reads version-1 dicts)."""
        kwargs: dict[str, Any] = {k: d[k] for k in ("delta_m_method", "holm_family") if k in d}
        for k in ("alpha", "margin", "power"):
            if k in d:
                kwargs[k] = float(d[k])
        for k in ("n_resamples", "n_diverged_candidate", "n_diverged_baseline"):
            if k in d:
                kwargs[k] = int(d[k])
        return cls(
            tasks=[TaskVerdict.from_dict(t) for t in d["tasks"]],
            delta_m=fmt.as_float(d["delta_m"]),
            delta_m_ci=tuple(fmt.as_float(x) for x in d["delta_m_ci"]),
            seed=d.get("seed", 0),
            weights={k: float(v) for k, v in d.get("weights", {}).items()},
            **kwargs,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per task; intervals split into ``*_low``/``*_high`` columns; ``label`` added.

        Δm, its interval, alpha and the Holm family are in ``frame.attrs``.

        Examples
        --------
        >>> from sharesearch.verdict import task_verdicts
        >>> v = task_verdicts({"a": [1.0, 1.1, 1.2]}, {"a": [1.0, 1.05, 1.1]}, {"a": "maximize"})
        >>> v.to_frame()[["task", "verdict"]].values.tolist()
        [['a', 'inconclusive']]
        """
        rows = []
        for tv in self.tasks:
            row: dict[str, Any] = {}
            for f in fields(tv):
                value = getattr(tv, f.name)
                if f.name in _PAIRS:
                    row[f"{f.name[:-3]}_ci_low"], row[f"{f.name[:-3]}_ci_high"] = value
                else:
                    row[f.name] = value
            row["label"] = tv.label
            rows.append(row)
        df = pd.DataFrame(rows)
        df.attrs.update({"delta_m": self.delta_m, "delta_m_ci": tuple(self.delta_m_ci), "alpha": self.alpha,
                         "holm_family": self.holm_family})
        return df

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table plus the Δm line, the Holm family and notes.

        Examples
        --------
        >>> from sharesearch.verdict import task_verdicts
        >>> v = task_verdicts({"a": [1.0, 1.1, 1.2]}, {"a": [1.0, 1.05, 1.1]}, {"a": "maximize"})
        >>> [c.strip() for c in v.to_markdown().splitlines()[0].strip("|").split("|")]
        ['task', 'n (cand/base)', 'candidate', 'baseline', 'Δ', 'p', 'p (Holm)', 'MDE', 'TOST p (Holm)', 'verdict']
        >>> v.to_markdown().splitlines()[2].split("|")[-2].strip()
        'inconclusive (MDE 26.4%)'
        """
        return verdict_markdown(self)

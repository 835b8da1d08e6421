"""What to ship: one recommendation per task and overall, from the verdict's test results.

:func:`recommend` reads the verdict's arms (the top-k candidates and the
reference architectures, each a :class:`~._records.Verdict` against the
matched control) and names what the test results support:
``"share as in trial 23"``, ``"share as in trial 23; keep task u independent"``
or ``"keep independent models"``.

The rule
--------
1. **The control check first.** The ``independent`` arm is the control
   trained again (an A/A comparison). When its Δm interval excludes 0, or
   any of its tasks is flagged negative or positive transfer, the protocol
   disagrees with itself by up to the larger end of that interval, |Δm|
   of the A/A arm: no gain smaller than this *margin* can be trusted, and
   per-task flags are not either. An arm then counts as helping only when
   the lower end of its Δm interval clears the margin (the report says so);
   otherwise keep independent models.
2. **The arm is chosen on validation, never on test.** Among the sharing
   arms (the top-k candidates and the references), the one with the largest
   ``val_delta_m``: the mean, over the verdict's seeds, of its validation Δm
   against the control's validation metrics. Choosing the largest *test* Δm
   of several arms and then quoting it would be the winner's curse on the
   test split; here the test split only judges the one arm chosen. The
   arms it cannot tell apart on validation are named in ``notes``: those
   whose validation Δm, paired with the chosen arm's by seed
   (``val_delta_m_runs``), differs by a 95% t-interval that contains 0. Among
   them the data does not settle the topology (the validation rows are the
   same for every arm, so this interval holds seed noise only).
3. **Its test result decides what ships.** It *credibly helps* when the
   lower end of its Δm interval is above 0, or at least one of its tasks is
   flagged positive transfer (Holm). If it helps and flags no task negative
   transfer: share as in it, every task. If it helps and flags some tasks
   negative transfer: share as in it, and keep each flagged task independent
   (the shipped Δm counts them as 0). Otherwise keep independent models.

A verdict stored before arms carried ``val_delta_m`` falls back to the
largest test Δm among the arms that credibly help (and says so in
``notes``).

Ties go to the arm listed first. "Share" on a task whose own Δ is
inconclusive or equivalent means the arm's overall gain carries it: the
per-task ``why`` says so with the task's own label.

Example
-------
>>> from sharesearch.verdict import task_verdicts
>>> dirs = {"a": "maximize", "b": "maximize"}
>>> base = {"a": [0.80, 0.81, 0.79], "b": [0.70, 0.71, 0.69]}
>>> up = task_verdicts({"a": [0.88, 0.89, 0.87], "b": [0.77, 0.78, 0.76]}, base, dirs, n_resamples=200)
>>> r = recommend([{"name": "trial 23", "trial": 23, "graph": None, "verdict": up.to_dict()}])
>>> r.overall, r.per_task["a"].choice
('share as in trial 23', 'share')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import fmt
from ._records import TaskVerdict, Verdict
from ._tests import mean_ci

__all__ = ["CONTROL_ARM", "RULE", "TaskChoice", "Recommendation", "recommend"]

#: the name of the arm that is the control trained again (the A/A check)
CONTROL_ARM = "independent"
#: the rule in one sentence (stored with the recommendation)
RULE = ("control check first (the independent arm's Δm interval must contain 0 and flag no task; when it does not, "
        "only a Δm interval above its larger end counts); then the sharing "
        "arm with the largest validation Δm (mean over the verdict's seeds) is judged once on test: shared if its Δm "
        "interval lies above 0 or it flags a task positive transfer, tasks it flags negative transfer kept "
        "independent; else independent models")


@dataclass(frozen=True)
class TaskChoice:
    """What to ship for one task."""

    choice: str  # "share" (the recommended arm's head) or "independent" (the task's own tuned network)
    why: str  # one line: the test result that supports it


@dataclass(frozen=True)
class Recommendation:
    """What the verdict's test results support shipping, per task and overall."""

    overall: str  # one line: "share as in trial 23", "... ; keep task u independent", "keep independent models"
    kind: str  # "share" | "share-partly" | "independent"
    arm: str  # the recommended arm's name ("independent" when no sharing is supported)
    trial: int | None  # its trial number in the study (None: not a trial)
    graph: dict | None  # its SharingGraph.to_dict() (None: not stored)
    per_task: dict[str, TaskChoice]  # task -> what to ship for it and why
    test_deltas: dict[str, float]  # task -> the recommended arm's test Δ_t (the A/A arm's for independent)
    delta_m: float  # the shipped Δm on test: the arm's Δm, flagged tasks counted as 0 (NaN: none)
    control_ok: bool | None  # the A/A check passed (None: no independent arm in the verdict)
    control_note: str  # the A/A check in words ("" when there is none)
    rule: str = RULE  # the rule that chose it, in words
    model_dir: str | None = None  # folder the recommended arm's seed-0 network was saved to (None: not saved)
    notes: tuple[str, ...] = field(default_factory=tuple)  # further caveats, one line each

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None); ``per_task`` as ``{task: {"choice", "why"}}``."""
        return {"overall": self.overall, "kind": self.kind, "arm": self.arm, "trial": self.trial,
                "graph": self.graph, "per_task": {t: {"choice": c.choice, "why": c.why}
                                                  for t, c in self.per_task.items()},
                "test_deltas": {t: _enc(v) for t, v in self.test_deltas.items()}, "delta_m": _enc(self.delta_m),
                "control_ok": self.control_ok, "control_note": self.control_note, "rule": self.rule,
                "model_dir": self.model_dir, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recommendation":
        """Inverse of :meth:`to_dict`."""
        return cls(overall=d["overall"], kind=d["kind"], arm=d["arm"], trial=d.get("trial"), graph=d.get("graph"),
                   per_task={t: TaskChoice(c["choice"], c["why"]) for t, c in (d.get("per_task") or {}).items()},
                   test_deltas={t: fmt.as_float(v) for t, v in (d.get("test_deltas") or {}).items()},
                   delta_m=fmt.as_float(d.get("delta_m")), control_ok=d.get("control_ok"),
                   control_note=d.get("control_note", ""), rule=d.get("rule", RULE), model_dir=d.get("model_dir"),
                   notes=tuple(d.get("notes") or ()))

    def with_model_dir(self, path: str | None) -> "Recommendation":
        """The same recommendation with the folder its model was saved to."""
        return replace(self, model_dir=None if path is None else str(path))


def _enc(x: float) -> float | None:
    return None if not math.isfinite(fmt.as_float(x)) else float(x)


def _verdict(arm: Mapping) -> Verdict | None:
    try:
        return Verdict.from_dict(arm["verdict"]) if arm.get("verdict") else None
    except (KeyError, TypeError, ValueError):
        return None


def _task_line(tv: TaskVerdict) -> str:
    """``"positive transfer: Δ +3.10% [+1.00%, +5.20%], Holm p 0.0100"``."""
    ci = fmt.interval(*tv.delta_ci, fmt.delta)
    return f"{tv.label}: Δ {fmt.delta(tv.delta)} {ci}".rstrip() + f", Holm p {fmt.p_value(tv.p_holm)}"


def _control_check(arms: Sequence[tuple[Mapping, Verdict]]) -> tuple[bool | None, str]:
    """Whether the A/A arm agrees with the control, and the check in words."""
    for arm, v in arms:
        if arm.get("name") != CONTROL_ARM:
            continue
        flagged = [tv.task for tv in v.tasks if tv.verdict in ("negative transfer", "positive transfer")]
        lo, hi = v.delta_m_ci
        dm = f"Δm {fmt.delta(v.delta_m)} {fmt.interval(lo, hi, fmt.delta)}"
        if not (lo <= 0.0 <= hi) or flagged:
            why = f"flags {', '.join(flagged)}" if flagged else "its interval excludes 0"
            return False, (f"control check failed: the independent arm (the control trained again) scored {dm}; "
                           f"{why}")
        return True, f"control check passed: the independent arm (the control trained again) scored {dm}"
    return None, ""


def _margin(aa: tuple[Mapping, Verdict] | None, control_ok: bool | None) -> float:
    """How far the protocol disagrees with itself: the A/A arm's larger |Δm| end when the check failed, else 0."""
    if control_ok is not False or aa is None:
        return 0.0
    ends = [abs(x) for x in aa[1].delta_m_ci if math.isfinite(x)]
    return max(ends) if ends else math.inf


def _helps(v: Verdict, margin: float = 0.0) -> bool:
    """Δm interval above ``margin``; with a trusted control (margin 0), or a task flagged positive transfer."""
    if margin > 0.0:
        return v.delta_m_ci[0] > margin
    return v.delta_m_ci[0] > 0.0 or any(tv.verdict == "positive transfer" for tv in v.tasks)


def _shipped_dm(v: Verdict) -> float:
    """Δm with the tasks flagged negative transfer counted as 0 (they keep their independent network)."""
    w = {tv.task: v.weights.get(tv.task, 1.0) for tv in v.tasks}
    total = sum(w.values())
    if total <= 0:
        return math.nan
    return sum(w[tv.task] * (0.0 if tv.verdict == "negative transfer" else tv.delta) for tv in v.tasks) / total


def _arm_name(arm: Mapping) -> str:
    name, trial = str(arm.get("name", "?")), arm.get("trial")
    return name if trial is None or name == f"trial {trial}" else f"{name} (trial {trial})"


def recommend(arms: Sequence[Mapping[str, Any]]) -> Recommendation:
    """The recommendation the verdict's arms support (the rule is in the module docstring).

    Parameters
    ----------
    arms : sequence of the verdict's arm dicts
        ``{"name", "trial", "graph", "verdict": Verdict.to_dict()}`` as
        :func:`sharesearch.search.compute_verdict` stores them under
        ``"candidates"``; the arm named ``"independent"`` is the A/A check.
        An arm whose verdict cannot be read is skipped.

    Returns
    -------
    Recommendation
    """
    read = [(a, v) for a in arms if (v := _verdict(a)) is not None]
    control_ok, control_note = _control_check(read)
    aa = next(((a, v) for a, v in read if a.get("name") == CONTROL_ARM), None)
    margin = _margin(aa, control_ok)
    beyond = (f" by more than the control's disagreement with itself ({fmt.delta(margin)})" if margin > 0 else "")
    sharing = [(a, v) for a, v in read if a.get("name") != CONTROL_ARM]
    ranked = [(a, v) for a, v in sharing if math.isfinite(_val_dm(a))]
    notes: tuple[str, ...] = ()
    if margin > 0:
        notes = (f"{control_note}: only a Δm interval above {fmt.delta(margin)} counts as a gain",)
    if ranked:  # chosen on validation; the test split judges this one arm only
        arm, v = max(ranked, key=lambda av: (_val_dm(av[0]), -ranked.index(av)))
        if not _helps(v, margin):
            return _independent(read, aa, control_ok, control_note,
                                f"{_arm_name(arm)}, the best arm on validation (Δm {fmt.delta(_val_dm(arm))}), "
                                f"did not credibly beat the control on test{beyond}")
    else:  # an older verdict without validation scores: the largest test Δm among the arms that help
        shared = [(a, v) for a, v in sharing if _helps(v, margin)]
        clean = [(a, v) for a, v in shared if not v.negative_transfer]
        notes += ("chosen on test: this verdict's arms carry no validation Δm (recompute the verdict to choose on "
                  "validation)",)
        if clean:
            arm, v = max(clean, key=lambda av: (av[1].delta_m, -clean.index(av)))
        elif shared:
            arm, v = max(shared, key=lambda av: (_shipped_dm(av[1]), -shared.index(av)))
        else:
            return _independent(read, aa, control_ok, control_note,
                                f"no arm credibly beat the control on test{beyond}")
    name = _arm_name(arm)
    if ranked:
        notes += _validation_ties(arm, [a for a, _ in ranked])
    per_task = {}
    for tv in v.tasks:
        if tv.verdict == "negative transfer":
            per_task[tv.task] = TaskChoice("independent", f"{_task_line(tv)} under {name}")
        elif tv.verdict == "positive transfer":
            per_task[tv.task] = TaskChoice("share", _task_line(tv))
        else:
            per_task[tv.task] = TaskChoice("share", f"{_task_line(tv)}; shared for the arm's overall gain "
                                                    f"(Δm {fmt.delta(v.delta_m)})")
    keep = v.negative_transfer
    overall = f"share as in {name}" + (f"; keep task{'s' if len(keep) > 1 else ''} {', '.join(keep)} independent"
                                       if keep else "")
    return Recommendation(overall, "share-partly" if keep else "share", str(arm.get("name")), arm.get("trial"),
                          arm.get("graph"), per_task, {tv.task: tv.delta for tv in v.tasks}, _shipped_dm(v),
                          control_ok, control_note, notes=notes)


def _paired_val(a: Mapping, b: Mapping) -> list[float]:
    """``a``'s per-seed validation Δm less ``b``'s, over the seeds where both are finite."""
    def by_seed(arm: Mapping) -> dict[Any, float]:
        seeds = (arm.get("runs") or {}).get("seeds") or []
        return {s: fmt.as_float(x) for s, x in zip(seeds, arm.get("val_delta_m_runs") or [])
                if math.isfinite(fmt.as_float(x))}

    sa, sb = by_seed(a), by_seed(b)
    return [sa[s] - sb[s] for s in sa if s in sb]


def _validation_ties(chosen: Mapping, ranked: Sequence[Mapping], alpha: float = 0.05) -> tuple[str, ...]:
    """One note naming the arms the chosen one is not distinguishable from on validation (none: no note).

    >>> a = {"name": "trial 3", "trial": 3, "runs": {"seeds": [0, 1, 2]}, "val_delta_m_runs": [0.10, 0.12, 0.08]}
    >>> b = {"name": "trial 5", "trial": 5, "runs": {"seeds": [0, 1, 2]}, "val_delta_m_runs": [0.09, 0.13, 0.07]}
    >>> c = {"name": "trial 7", "trial": 7, "runs": {"seeds": [0, 1, 2]}, "val_delta_m_runs": [0.01, 0.02, 0.0]}
    >>> note = _validation_ties(a, [a, b, c])[0]
    >>> note.split(" (")[0], "trial 7" in note
    ('on validation trial 3 is not distinguishable from trial 5', False)
    """
    ties = []
    for other in ranked:
        if other is chosen:
            continue
        diff = np.asarray(_paired_val(chosen, other))
        if diff.size < 2:
            continue
        mean, (lo, hi) = float(diff.mean()), mean_ci(diff, 1 - alpha)
        if lo <= 0.0:
            ties.append((mean, f"{_arm_name(other)} ({fmt.delta(mean)} {fmt.interval(lo, hi, fmt.delta)})"))
    if not ties:
        return ()
    ties.sort(key=lambda t: t[0])
    return (f"on validation {_arm_name(chosen)} is not distinguishable from {', '.join(t for _, t in ties)} "
            f"(validation Δm difference paired by seed, {100 * (1 - alpha):.0f}% interval; same validation rows "
            "for every arm): the data does not settle the topology among them, and the test split judged only "
            f"{_arm_name(chosen)}",)


def _val_dm(arm: Mapping) -> float:
    """The arm's validation Δm (mean over the verdict's seeds); NaN when the arm does not carry one."""
    return fmt.as_float(arm.get("val_delta_m"))


def _independent(read: Sequence[tuple[Mapping, Verdict]], aa: tuple[Mapping, Verdict] | None,
                 control_ok: bool | None, control_note: str, reason: str) -> Recommendation:
    """Keep independent models: per task, the best Δ any sharing arm reached and why it was not enough."""
    per_task: dict[str, TaskChoice] = {}
    tasks = [tv.task for tv in read[0][1].tasks] if read else []
    for t in tasks:
        seen = [(a, v.get(t)) for a, v in read if a.get("name") != CONTROL_ARM and t in {x.task for x in v.tasks}]
        if not seen:
            per_task[t] = TaskChoice("independent", reason)
            continue
        arm, tv = max(seen, key=lambda av: fmt.as_float(av[1].delta) if math.isfinite(av[1].delta) else -math.inf)
        per_task[t] = TaskChoice("independent", f"{reason}; best arm on it: {_arm_name(arm)}, {_task_line(tv)}")
    deltas = {tv.task: tv.delta for tv in aa[1].tasks} if aa else {}
    return Recommendation(f"keep independent models: {reason}", "independent", CONTROL_ARM,
                          aa[0].get("trial") if aa else None, aa[0].get("graph") if aa else None, per_task, deltas,
                          0.0, control_ok, control_note)

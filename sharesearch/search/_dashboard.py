"""Annotations that make a study read well in optuna-dashboard (when it is installed).

``optuna-dashboard sqlite:///runs/<study>/study.db`` opens a study; this
module writes what it shows beside Optuna's own plots (``docs/dashboard.md``):

* the **study note**: the recommendation line (what the verdict's test
  results support shipping) and the per-task transfer table, tasks x
  verified architectures, each cell the test Δ with its interval and a mark
  (▲ positive transfer, ▼ negative transfer, = equivalent within the margin,
  ? inconclusive, – untestable); before a verdict, the best trial's
  validation Δm and why there is no test result yet (:func:`study_note`);
* a **note on every trained trial** saying what it is: a reference
  architecture, a tree cut from the task-affinity dendrogram, a candidate the
  sampler proposed, a companion (another learning rate for a topology another
  trial proposed) or the control, with its status, validation Δ per task and
  topology (:func:`trial_note`);
* the best trials' **topology figures** as graph objects.

The notes are Markdown built from plain records (the results dict,
:class:`TrialRecord`), so they are tested without a dashboard.

Example
-------
>>> r = {"tasks": [{"name": "a", "kind": "binary"}], "directions": ["maximize"],
...      "trials": [{"number": 4, "state": "COMPLETE", "values": [0.0123], "reference": None}]}
>>> print(study_note(r).splitlines()[2])
No verdict yet: the best trial on validation is trial 4 (validation Δm +1.23%).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from .. import fmt
from ..tasks import TaskSpec, metric_direction
from ._records import TrialRecord

__all__ = ["annotate_for_dashboard", "study_note", "trial_note", "trial_kind", "MARKS"]

#: the mark of each verdict category in the transfer table
MARKS = {"positive transfer": "▲", "negative transfer": "▼", "equivalent": "=", "inconclusive": "?",
         "untestable": "–"}


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _recommendation(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The verdict's recommendation (D4's ``results["recommendation"]``, else the verdict's own copy)."""
    rec = results.get("recommendation") or (results.get("verdict") or {}).get("recommendation")
    return rec if isinstance(rec, Mapping) else ({"overall": rec} if isinstance(rec, str) else None)


def _best_trial(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    sign = -1.0 if (results.get("directions") or ["maximize"])[0] == "minimize" else 1.0
    done = [t for t in results.get("trials") or [] if t.get("state") == "COMPLETE" and t.get("values")
            and fmt.as_float(t["values"][0]) == fmt.as_float(t["values"][0])]
    return max(done, key=lambda t: sign * fmt.as_float(t["values"][0])) if done else None


def _task_header(spec: TaskSpec) -> str:
    arrow = "↑" if metric_direction(spec.primary_metric) == "maximize" else "↓"
    return f"{_md(spec.name)} ({spec.primary_metric} {arrow})"


def _transfer_table(tasks: Sequence[TaskSpec], candidates: Sequence[Mapping[str, Any]]) -> list[str]:
    """Tasks x architectures: test Δ [interval] and the verdict's mark; Δm in the last row."""
    cols = [c for c in candidates if c.get("verdict")]
    head = ["task (metric: ↑ higher, ↓ lower is better)"] + [_md(c.get("name", "?")) for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by_arm = [{tv["task"]: tv for tv in c["verdict"].get("tasks") or []} for c in cols]
    for spec in tasks:
        cells = [_task_header(spec)]
        for tvs in by_arm:
            tv = tvs.get(spec.name)
            if tv is None:
                cells.append(fmt.MISSING)
                continue
            ci = fmt.interval(*(tv.get("delta_ci") or (None, None)), fmt.delta)
            cells.append(f"{fmt.delta(tv.get('delta'))} {ci} {MARKS.get(tv.get('verdict'), '')}".replace("  ", " "))
        lines.append("| " + " | ".join(cells) + " |")
    dm = [f"**{fmt.delta(v.get('delta_m'))}** {fmt.interval(*(v.get('delta_m_ci') or (None, None)), fmt.delta)}".strip()
          for v in (c["verdict"] for c in cols)]
    lines.append("| " + " | ".join(["**Δm** (weighted mean)"] + dm) + " |")
    return lines


def study_note(results: Mapping[str, Any]) -> str:
    """The study note: the recommendation, then the per-task transfer table on test (Markdown).

    ``results`` is :func:`~sharesearch.search.study_results`'s dict. Without a
    verdict the note says so and gives the best trial's validation Δm.
    """
    tasks = [TaskSpec.from_dict(t) for t in results.get("tasks") or []]
    verdict = results.get("verdict") or {}
    cands = verdict.get("candidates") or []
    lines = ["## Recommendation", ""]
    rec, best = _recommendation(results), _best_trial(results)
    if not cands:
        lines.append(f"No verdict yet: the best trial on validation is trial {best['number']} (validation Δm "
                     f"{fmt.delta(best['values'][0])})." if best else "No verdict yet and no complete trial.")
        lines += ["", "Run `sharesearch verdict` to test the best candidates once, on the test split, "
                      "against the independent baselines."]
        return "\n".join(lines) + "\n"
    if rec and rec.get("overall"):
        shipped = fmt.as_float(rec.get("delta_m"))
        lines.append(f"**{_md(rec['overall'])}**" + (f" (test Δm {fmt.delta(shipped)})" if shipped == shipped else ""))
        per_task = rec.get("per_task") or {}
        if per_task:
            lines += ["", "| task | ship | why |", "|---|---|---|"]
            lines += [f"| {_md(t)} | {_md(c.get('choice', ''))} | {_md(c.get('why', ''))} |"
                      for t, c in per_task.items()]
    elif best:
        lines.append(f"Best trial on validation: trial {best['number']} (validation Δm "
                     f"{fmt.delta(best['values'][0])}); the verdict below says whether the test split confirms it.")
    seeds = (verdict.get("protocol") or {}).get("seeds") or []
    lines += ["", "## Transfer per task (test split)", "",
              f"Test Δ of each task against its tuned independent baseline, mean of {len(seeds)} seeds, with its "
              "interval; positive is better than independent.", ""]
    lines += _transfer_table(tasks, cands)
    lines += ["", "Marks: " + ", ".join(f"{m} {k}" for k, m in MARKS.items()) + " (Holm-corrected tests). "
              "\"trial N\" is Optuna's trial number in this study; named columns are reference architectures."]
    return "\n".join(lines) + "\n"


def trial_kind(rec: TrialRecord, trial: optuna.trial.FrozenTrial) -> str:
    """What a trial is, in words: the control, a reference, an affinity tree, a companion or a sampled candidate."""
    if rec.control:
        return "the control: each task's own tuned independent baseline (Δ = 0 by definition)"
    if rec.reference is not None and rec.tuned_from is not None:
        return (f"reference architecture `{rec.reference}` tried again with the training and width of trial "
                f"{rec.tuned_from}, the best when half the trial budget had run")
    if rec.reference is not None:
        return f"reference architecture `{rec.reference}`, enqueued before the search"
    if rec.affinity_tree is not None and rec.tuned_from is not None:
        return (f"affinity tree {rec.affinity_tree} tried again with the settings of trial {rec.tuned_from}, the best "
                "when half the trial budget had run")
    if rec.affinity_tree is not None:
        return f"affinity tree {rec.affinity_tree}: a cut of the task-affinity dendrogram, enqueued before the search"
    companion_of = getattr(rec, "companion_of", None)
    if companion_of is not None or "fixed_params" in trial.system_attrs and "failed_trial" not in trial.system_attrs:
        of = f" of trial {companion_of}" if companion_of is not None else ""
        return (f"companion{of}: the same topology, batch size and budget as the trial it trains beside, with "
                "its own learning rate and weight decay")
    seed = f" (sampler seed {rec.sampler_seed})" if rec.sampler_seed is not None else ""
    return f"sampled: a candidate the sampler proposed{seed}"


def trial_note(rec: TrialRecord, trial: optuna.trial.FrozenTrial) -> str:
    """A trial's note: what it is, its status, validation Δ per task and its topology (Markdown)."""
    value = trial.values[0] if trial.values else None
    lines = [f"## Trial {trial.number}: {trial_kind(rec, trial)}", "",
             f"Status: {_md(rec.status or trial.state.name.lower())}"
             + (f" (the result of trial {rec.reused_from}, the same candidate)" if rec.reused_from is not None else "")
             + (f" (a retry of trial {trial.system_attrs['failed_trial']}, whose worker died)"
                if "failed_trial" in trial.system_attrs else "")
             + f"; validation Δm {fmt.delta(value)}."]
    if rec.val_deltas:
        lines += ["", "| task | validation Δ |", "|---|---|"]
        lines += [f"| {_md(t)} | {fmt.delta(d)} |" for t, d in rec.val_deltas.items()]
    if rec.graph is not None:
        lines += ["", "```", rec.sharing_graph().describe(), "```"]
    return "\n".join(lines) + "\n"


def annotate_for_dashboard(study: optuna.Study, top: int = 3) -> bool:
    """Write the study note, every trained trial's note and the best trials' topology figures.

    Returns whether they were written (``False`` without optuna-dashboard).
    Called after the search and after each verdict; writing again replaces
    the notes (optuna-dashboard keeps one version of each). The objective
    names are set when the study is made.
    """
    try:
        import optuna_dashboard
    except ImportError:
        return False
    from ..figure import topology_figure
    from ._results import study_results

    optuna_dashboard.save_note(study, study_note(study_results(study)))
    done = [(t, TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False)]
    ranked = sorted([(t, r) for t, r in done if t.state == TrialState.COMPLETE and r.trained],
                    key=lambda tr: -tr[0].values[0])
    drawn = {t.number for t, _ in ranked[:top]}
    for t, rec in ranked[:top]:
        fig = topology_figure(rec.sharing_graph(), deltas=rec.val_deltas or {},
                              title=f"trial {t.number}: validation Δm {fmt.delta(t.values[0])}")
        optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id=f"topology-trial-{t.number}")
    for t, rec in done:
        if rec.graph is not None or rec.control:
            figure = (f"\nIts topology figure is the study's graph object `topology-trial-{t.number}`.\n"
                      if t.number in drawn else "")
            optuna_dashboard.save_note(optuna.trial.Trial(study, t._trial_id), trial_note(rec, t) + figure)
    return True

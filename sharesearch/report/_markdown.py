"""The Markdown summary: :func:`markdown_summary`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import fmt
from ._common import _ci, _graph, _verdict_record, best_candidate
from ._answer import answer_markdown
from ._tables import _trials_line, _control_warning, _looks_warning, _methods, _protocol_line, _rows_line, _runs_note
from ._transfer import transfer_markdown

# ----------------------------------------------------------------- markdown
def _md(s: Any) -> str:
    """A user string as a Markdown code span, safe in a table cell (no HTML, no cell split).

    >>> print(_md("a|b"), _md("x`y"))
    `a\\|b` ``x`y``
    """
    s = str(s).replace("\n", " ").replace("\r", " ").replace("|", "\\|")
    ticks = "`" * (1 + max((len(x) for x in _backtick_runs(s)), default=0))
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


def _backtick_runs(s: str) -> list[str]:
    runs, cur = [], ""
    for c in s:
        if c == "`":
            cur += c
        elif cur:
            runs.append(cur)
            cur = ""
    if cur:
        runs.append(cur)
    return runs


def _fence(text: str) -> str:
    n = max(3, 1 + max((len(r) for r in _backtick_runs(text)), default=0))
    return f"{'`' * n}text\n{text}\n{'`' * n}"


def _markdown_verdict(best_c: Mapping, results: Mapping) -> list[str]:
    """The summary's verdict section for the best candidate: Δm, the per-task table, the methods."""
    proto = (results.get("verdict") or {}).get("protocol") or {}
    v = _verdict_record(best_c.get("verdict"))
    verdict = results.get("verdict") or {}
    lines = [f"## Verdict: {_md(best_c.get('name', ''))} (best on validation; test, seeds "
             f"{proto.get('seeds', '?')}, α = {v.alpha if v else proto.get('alpha', '?')})", ""]
    for warning in (_looks_warning(verdict), _control_warning(verdict.get("candidates") or [])):
        if warning:
            lines += [f"> {warning}", ""]
    lines += [_protocol_line(verdict), ""]
    if _runs_note(best_c):
        lines += [f"Runs: {_runs_note(best_c)}", ""]
    if v is None:
        return lines + ["The verdict could not be read."]
    lines += [f"**Δm = {fmt.delta(v.delta_m)}** {fmt.interval(*v.delta_m_ci, fmt.delta)}", "",
              "| task | baseline mean [CI] | candidate mean [CI] | Δ_t [CI] | p | p (Holm) | MDE | TOST p (Holm) "
              "| verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for t in v.tasks:
        lines.append(f"| {_md(t.task)} | {fmt.value(t.baseline_mean)} {fmt.interval(*t.baseline_ci)} | "
                     f"{fmt.value(t.candidate_mean)} {fmt.interval(*t.candidate_ci)} | {fmt.delta(t.delta)} "
                     f"{fmt.interval(*t.delta_ci, fmt.delta)} | {fmt.p_value(t.p_value)} | {fmt.p_value(t.p_holm)} | "
                     f"{fmt.percent(t.mde)} | {fmt.p_value(t.p_equivalence_holm)} | **{t.label}** |")
    lines += ["", _methods(v)]
    if v.negative_transfer:
        lines += ["", "Negative transfer on: " + ", ".join(_md(t) for t in v.negative_transfer)]
    return lines


def markdown_summary(results: Mapping, files: Mapping[str, Path | str] | None = None) -> str:
    """A Markdown summary: verdict table, Δm, the best topology and (when given) the files.

    Task names are code spans with ``|`` escaped, so they render literally
    and never break the table.
    """
    lines = [f"# sharesearch report: {_md(results.get('study', ''))}", ""]  # the name as a code span: literal
    lines += answer_markdown(results, _md)  # the answer first: what to ship and the transfer table
    data = results.get("data") or {}
    lines.append(f"data {_md(data.get('name', ''))} (fingerprint {_md(data.get('fingerprint', ''))}), "
                 f"{len(results.get('tasks') or [])} tasks; {_trials_line(results)}")
    lines += [_rows_line(data)] if _rows_line(data) else []
    lines.append("")
    best_c, best_t = best_candidate(results)
    if best_c:
        lines += _markdown_verdict(best_c, results)
        others = [c for c in (results.get("verdict") or {}).get("candidates") or [] if c is not best_c]
        if others:
            lines.append("")
            lines.append("Other verified architectures (test Δm): " + "; ".join(
                f"{_md(c.get('name', ''))} {fmt.delta((c.get('verdict') or {}).get('delta_m'))} "
                f"{_ci((c.get('verdict') or {}).get('delta_m_ci'), fmt.delta)}" for c in others))
            notes = [f"- {_md(c.get('name', ''))}: {_runs_note(c)}" for c in others if _runs_note(c)]
            if notes:
                lines += ["", "Runs of each arm:", ""] + notes
    else:
        lines.append("## No verdict yet")
        lines.append("")
        lines.append("Run `sharesearch verdict` to test the best candidates once against the baselines.")
        if best_t and best_t.get("val_deltas"):
            lines.append("")
            lines.append(f"Validation Δ_t of trial {best_t['number']} (Δm {fmt.delta((best_t.get('values') or [None])[0])}):")
            lines.append("")
            lines.append("| task | Δ_t (validation) |")
            lines.append("|---|---|")
            for k, val in best_t["val_deltas"].items():
                lines.append(f"| {_md(k)} | {fmt.delta(val)} |")
    g = _graph((best_c or {}).get("graph") or (best_t or {}).get("graph"))
    if g is not None:
        lines += ["", "## Best topology" + (f" (trial {best_t['number']})" if best_t else ""), "",
                  _fence(g.describe())]
    lines += transfer_markdown(results)  # few-shot transfer (issue 15); nothing without a run
    if files:
        lines += ["", "## Files", ""]
        lines += [f"- {k}: {_md(p)}" for k, p in files.items()]
    return "\n".join(lines) + "\n"



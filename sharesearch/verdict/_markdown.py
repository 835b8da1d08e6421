"""The verdict as a GitHub-flavoured Markdown table (numbers through :mod:`sharesearch.fmt`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import fmt

if TYPE_CHECKING:
    from ._records import Verdict

__all__ = ["verdict_markdown", "HEADER"]

#: the table's columns
HEADER = ("task", "n (cand/base)", "candidate", "baseline", "Δ", "p", "p (Holm)", "MDE", "TOST p (Holm)", "verdict")


def _table(rows: list[list[str]]) -> list[str]:
    """Aligned Markdown table lines; ``|`` inside a cell is escaped."""
    cells = [[str(c).replace("|", "\\|") for c in r] for r in [list(HEADER), *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADER))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    return [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells[1:])]


def verdict_markdown(v: "Verdict") -> str:
    """The table of :meth:`Verdict.to_markdown`, then Δm, the methods, diverged runs and numbered notes."""
    level = f"{100 * (1 - v.alpha):g}%"
    rows, notes = [], []
    for tv in v.tasks:
        label = tv.label
        if tv.note:
            notes.append(tv.note if tv.note.startswith(f"{tv.task}:") else f"{tv.task}: {tv.note}")
            label += f" [{len(notes)}]"
        n = f"{tv.n_candidate}/{tv.n_baseline}"
        if tv.n_diverged_candidate or tv.n_diverged_baseline:
            n += f" (+{tv.n_diverged_candidate}/+{tv.n_diverged_baseline} diverged)"
        rows.append([
            f"{tv.task} {'↑' if tv.direction == 'maximize' else '↓'}",
            n,
            f"{fmt.value(tv.candidate_mean)} {fmt.interval(*tv.candidate_ci)}".strip(),
            f"{fmt.value(tv.baseline_mean)} {fmt.interval(*tv.baseline_ci)}".strip(),
            f"{fmt.delta(tv.delta)} {fmt.interval(*tv.delta_ci, fmt.delta)}".strip(),
            fmt.p_value(tv.p_value),
            fmt.p_value(tv.p_holm),
            fmt.percent(tv.mde),
            fmt.p_value(tv.p_equivalence_holm),
            label,
        ])
    out = _table(rows)
    ci = fmt.interval(*v.delta_m_ci, fmt.delta)
    out += ["", f"Δm = {fmt.delta(v.delta_m)}" + (f" {ci} ({level}; {v.delta_m_method})." if ci
                                                   else f" ({v.delta_m_method or 'no interval'}).")]
    out.append(
        f"Means with {level} t-intervals; Δ with {level} Fieller intervals; Welch t-tests, Holm-corrected at "
        f"α = {v.alpha:g}. Holm family: {v.holm_family or 'the tested tasks of this verdict'}. "
        f"MDE: the smallest |Δ| found with {fmt.percent(v.power)} power at these runs and spread. "
        f"Equivalence: two one-sided tests within {fmt.margin(v.margin)}, Holm-corrected."
    )
    if v.n_diverged_candidate or v.n_diverged_baseline:
        out.append(f"Diverged runs (left out of the statistics): {v.n_diverged_candidate} candidate, "
                   f"{v.n_diverged_baseline} baseline.")
    out += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(out)

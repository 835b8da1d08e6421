"""The report's HTML tables and lines in words: verdicts, warnings, runs, protocol, affinity, trials; the CSS."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .. import fmt
from ..figure import affinity_figure
from ..verdict import TaskVerdict, Verdict
from ._common import _VERDICT_CLASS, _complete, _graph, _h, _verdict_record, jsonable

def _rows_line(data: Mapping) -> str:
    """The rows each phase used (``sharesearch.data.RowSample`` stored with the data source), or ``""``."""
    source = (data.get("meta") or {}).get("source")  # {"source": ..., "options": ..., "rows": {...}} from a study
    rows = source.get("rows") if isinstance(source, Mapping) else None
    return str(rows.get("summary", "")) if isinstance(rows, Mapping) else ""


def _n_runs(tv: TaskVerdict) -> str:
    """``base / cand`` run counts, with the diverged runs that were left out."""
    text = f"{tv.n_baseline} / {tv.n_candidate}"
    if tv.n_diverged_baseline or tv.n_diverged_candidate:
        text += f" (+{tv.n_diverged_baseline} / +{tv.n_diverged_candidate} diverged)"
    return text


def _methods(v: Verdict) -> str:
    """One sentence on the Δm interval, the Holm family, the MDE and the equivalence margin."""
    level = f"{100 * (1 - v.alpha):g}%"
    return (f"Δm interval: {level}, {v.delta_m_method or 'bootstrap over seeds'}. Welch tests Holm-corrected at "
            f"α = {v.alpha:g} over {v.holm_family or 'the tested tasks of this arm'}. MDE: the smallest |Δ| found "
            f"with {fmt.percent(v.power)} power at these runs; equivalence: two one-sided tests within "
            f"{fmt.margin(v.margin)}, Holm-corrected."
            + (f" Diverged runs left out: {v.n_diverged_candidate} candidate, {v.n_diverged_baseline} baseline."
               if v.n_diverged_candidate or v.n_diverged_baseline else ""))


def _trials_line(results: Mapping) -> str:
    """The trials in words: ``"24 trials: 10 completed, 14 stopped early by the pruner, ..."``."""
    states: dict[str, int] = {}
    for t in results.get("trials") or []:
        states[str(t.get("state"))] = states.get(str(t.get("state")), 0) + 1
    words = {"COMPLETE": "completed", "PRUNED": "stopped early by the pruner (not worth finishing)",
             "FAIL": "failed", "RUNNING": "still running", "WAITING": "queued"}
    parts = [f"{n} {words.get(s, s.lower())}" for s, n in states.items() if n]
    total = sum(states.values())
    return (f"{total} trial{'s' if total != 1 else ''}" + (": " + ", ".join(parts) if parts else "")
            + ". A trial is one architecture the search proposed and trained, numbered from 0 in the order tried.")


def _verdict_table(d: Mapping, metrics: Mapping[str, str] | None = None) -> str:
    """One arm's verdict table; each task names its primary metric and direction (``metrics``)."""
    metrics = metrics or {}
    v = _verdict_record(d)
    if v is None:
        return '<p class="muted">This verdict could not be read.</p>'
    rows = []
    for tv in v.tasks:
        rows.append(
            f'<tr class="{_VERDICT_CLASS.get(tv.verdict, "neu")}"><td class="task">{_h(tv.task)}</td>'
            f'<td>{_h(metrics.get(tv.task) or fmt.metric("", tv.direction).lstrip(", "))}</td>'
            f'<td>{_h(_n_runs(tv))}</td>'
            f'<td>{fmt.value(tv.baseline_mean)} <span class="ci">{fmt.interval(*tv.baseline_ci)}</span></td>'
            f'<td>{fmt.value(tv.candidate_mean)} <span class="ci">{fmt.interval(*tv.candidate_ci)}</span></td>'
            f'<td>{fmt.delta(tv.delta)} <span class="ci">{fmt.interval(*tv.delta_ci, fmt.delta)}</span></td>'
            f'<td>{fmt.p_value(tv.p_value)}</td><td>{fmt.p_value(tv.p_holm)}</td><td>{fmt.percent(tv.mde)}</td>'
            f'<td>{fmt.p_value(tv.p_equivalence_holm)}</td>'
            f'<td class="verdict">{_h(tv.label)}</td><td class="note">{_h(tv.note)}</td></tr>')
    head = ("<tr><th>task</th><th>metric</th><th>n (base / cand)</th><th>baseline mean [CI]</th>"
            "<th>candidate mean [CI]</th><th>Δ<sub>t</sub> [CI]</th><th>p (Welch)</th><th>p (Holm)</th>"
            "<th>MDE</th><th>TOST p (Holm)</th><th>verdict</th><th>note</th></tr>")
    dm = (f'<p class="dm">Δm = <b>{fmt.delta(v.delta_m)}</b> <span class="ci">'
          f'{fmt.interval(*v.delta_m_ci, fmt.delta)}</span></p><p class="muted">{_h(_methods(v))}</p>')
    return dm + f'<table class="verdict-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _control_warning(candidates: list[Mapping]) -> str:
    """A warning when the ``independent`` reference, the control trained again, disagrees with the baselines."""
    for c in candidates:
        v = _verdict_record(c.get("verdict")) if c.get("name") == "independent" else None
        if v is not None and not (v.delta_m_ci[0] <= 0.0 <= v.delta_m_ci[1]):
            return (f"Warning: the independent reference (the control trained again) scored Δm = "
                    f"{fmt.delta(v.delta_m)} {fmt.interval(*v.delta_m_ci, fmt.delta)} against the baselines; its "
                    "interval should contain 0, so every Δ below may be shifted by the difference in protocol.")
    return ""


def _looks(verdict: Mapping) -> int:
    """How many verdict designs have looked at the test split (1 for verdicts that did not count)."""
    proto = verdict.get("protocol") or {}
    return int(proto.get("test_looks") or (1 if proto.get("test_used_once", True) else 2))


def _looks_warning(verdict: Mapping) -> str:
    """A warning when the test split was looked at more than once (a recomputed verdict)."""
    n = _looks(verdict)
    if n <= 1:
        return ""
    return (f"Warning: this study has looked at the test split {n} times (verdicts recomputed with other seeds "
            "or top-k), so the test split is no longer an untouched hold-out: a verdict chosen after seeing an "
            "earlier one is optimistic. The earlier verdicts are kept under verdict.history in report.json.")


def _runs_note(c: Mapping) -> str:
    """An arm's runs in words: seeds, diverged runs and runs still improving at the budget's end."""
    runs = c.get("runs") or {}
    if not runs:
        return ""
    n = runs.get("n_runs", 0)
    parts = [f"{n} runs (seeds {runs.get('seeds', [])})"]
    if runs.get("n_diverged"):
        parts.append(f"{runs['n_diverged']} of {n} runs diverged (counted, left out of the statistics)")
    if runs.get("n_still_learning"):
        tasks = ", ".join(f"{t} ×{k}" for t, k in (runs.get("still_learning_tasks") or {}).items())
        parts.append(f"{runs['n_still_learning']} of {n} runs still improving at the budget's end: raise "
                     f"max_steps (best evaluation was the last one: {tasks})")
    return "; ".join(parts) + "."


def _protocol_line(verdict: Mapping) -> str:
    """The verdict protocol in one sentence: looks at test, seeds and why, α."""
    proto = verdict.get("protocol") or {}
    n = _looks(verdict)
    looks = "Test split used once" if n == 1 else f"Test split looked at {n} times"
    why = proto.get("seeds_why") or f"seeds {proto.get('seeds', '')}"
    return (f"{looks}, after selection on {proto.get('selection', 'validation')}; {why}; "
            f"α = {proto.get('alpha', '')}; every arm and the control (the tuned independent networks) trained "
            f"with the same seeds and budget {jsonable(proto.get('budget', {}))}.")


def _kv_table(d: Mapping, cls: str = "kv") -> str:
    rows = "".join(f"<tr><th>{_h(k)}</th><td>{_h(v if isinstance(v, str) else json.dumps(jsonable(v)))}</td></tr>"
                   for k, v in d.items())
    return f'<table class="{cls}"><tbody>{rows}</tbody></table>'


def _pre(text: Any) -> str:
    if not isinstance(text, str):
        text = json.dumps(jsonable(text), indent=2, sort_keys=True)
    return f"<pre>{_h(text)}</pre>"


def _affinity_section(results: Mapping, fig_block: Callable[[Any, str], str]) -> list[str]:
    """The affinity heatmaps and dendrogram beside the share importances, and the trees it proposed."""
    aff = results["affinity"]
    a = aff.get("affinity") or {}
    by_tree: dict[int, list[Mapping]] = {}  # tree index -> its trials: as first enqueued, then on tuned settings
    for t in results.get("trials") or []:
        if t.get("affinity_tree") is not None:
            by_tree.setdefault(t["affinity_tree"], []).append(t)

    def outcome(t: Mapping) -> str:
        how = f" (settings of trial {t['tuned_from']})" if t.get("tuned_from") is not None else ""
        return f"trial {t['number']}{how}: " + (f"Δm {fmt.delta((t.get('values') or [None])[0])}" if t.get("values")
                                                 else str(t.get("state", "")).lower())

    rows = []
    for i, tree in enumerate(aff.get("trees") or []):
        text = " > ".join("|".join(",".join(g) for g in part) for part in tree)  # as sharesearch.affinity.tree_text
        if i not in by_tree:
            ran = "not enqueued (a reference, or not in the space)" if i not in (aff.get("enqueued") or []) else "queued"
        else:
            ran = "; ".join(outcome(t) for t in by_tree[i])
        rows.append(f"<tr><td>{i + 1}</td><td><code>{_h(text)}</code></td><td>{_h(ran)}</td></tr>")
    return ['<section id="affinity"><h2>Task affinity and the trees it proposed</h2>',
            f'<p class="muted">One pass of the shared-bottom network ({_h(a.get("steps"))} steps, '
            f'{_h(fmt.value(a.get("seconds"), 3))} s) before the search: how much a step on one task lowers another '
            f'task\'s loss (lookahead, Fifty et al. 2021) and how well their gradients align (cosine). The search '
            f'tried the trees cut from its dendrogram first, and once more on its best settings when half its trials '
            f'had run; where the search and the affinity agree, pairs with a high affinity also have important '
            f'share depths.</p>',
            fig_block(affinity_figure({**a, **{k: v for k, v in aff.items() if k != "affinity"}}), ""),
            '<table><thead><tr><th>#</th><th>tree (stage 0 first; groups split by |)</th><th>trial</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>', "</section>"]


def _trials_table(results: Mapping, n: int = 15) -> str:
    sign = -1.0 if (results.get("directions") or ["maximize"])[0] == "minimize" else 1.0
    trials = sorted(_complete(results), key=lambda t: -sign * fmt.as_float(t["values"][0]))[:n]
    names = list(results.get("objective_names") or ["objective 0"])
    if not trials:
        return "<p>No complete trials.</p>"
    best = set(results.get("best_trials") or [])
    multi = len(results.get("directions") or []) > 1
    head = ("<tr><th>trial</th>" + "".join(f"<th>{_h(x)}</th>" for x in names)
            + "<th>params</th><th>FLOPs</th><th>reference</th><th>topology</th></tr>")
    rows = []
    for t in trials:
        g = _graph(t.get("graph"))
        vals = "".join(f"<td>{fmt.value(v)}</td>" for v in t["values"])
        star = " ★" if t["number"] in best and multi else ""
        rows.append(f"<tr><td>{_h(t['number'])}{star}</td>{vals}<td>{_h(t.get('n_params', ''))}</td>"
                    f"<td>{_h(t.get('flops', ''))}</td><td>{_h(t.get('reference') or '')}</td>"
                    f"<td><pre class=\"small\">{_h(g.describe() if g else '')}</pre></td></tr>")
    return (f'<table class="trials"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            f"<p class=\"muted\">Top {len(trials)} completed trials by {_h(names[0])} on validation"
            + ("; ★ Pareto-optimal." if multi else ".") + "</p>")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1400px;
padding:1rem 2rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}thead th{background:#f4f4f4}
tr.neg td{background:#fde0dd}tr.pos td{background:#e5f5e0}tr.eq td{background:#e0ecf8}tr.neu td{background:#fafafa}
tr.unt td{background:#eeeeee;color:#555}.warning{background:#fff3cd;border:1px solid #e0c36a;padding:.5rem}
td.verdict{font-weight:600}.ci{color:#555;font-size:.85em}.muted{color:#666;font-size:.85rem}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6rem;overflow:auto;max-height:32rem;font-size:.8rem}
pre.small{margin:0;padding:.2rem;max-height:none;border:none;background:none}
.answer{font-size:1.15rem;margin:.4rem 0}.answer strong{color:#0b5394}td.choice{font-weight:600}
nav a{margin-right:1rem}.dm{font-size:1.05rem}.ss-figure{margin:.5rem 0 1rem 0}
"""



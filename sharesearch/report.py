"""The comparison report: one offline HTML page, ``report.json`` and ``summary.md``.

:func:`write_report` turns the *results dict* the search layer hands over
(:func:`sharesearch.search.load_results`; this module never opens a study and
does not import optuna) into three files:

``report.html``
    A self-contained page that opens offline: plotly.js is inlined once (no
    CDN, no external fetch). It holds the verdict table per candidate
    (baseline mean ± CI, candidate mean ± CI, Δ_t with CI, p, Holm p, verdict,
    coloured), Δm with its bootstrap interval, the best topology figure, the
    optimisation history, parameter importances, the Pareto front (two or more
    objectives), the candidates and reference architectures side by side, and
    the reproducibility record (versions, seeds, data fingerprint, selection
    protocol, the search-space file). Every user string is escaped with
    :func:`html.escape` -- in the page, in plotly labels and hover text
    (:func:`sharesearch.figure.esc`) and inside embedded JSON, where ``<``,
    ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` so no ``</script>``
    can close the script element.
``report.json``
    The results dict itself plus ``"schema_version"``; strict JSON (NaN ->
    ``null``, ±inf -> ``"inf"``/``"-inf"``, as ``Verdict.to_dict`` does).
``summary.md``
    :func:`markdown_summary`: the verdict table, Δm, the best topology's
    :meth:`SharingGraph.describe` and where the files are (the CLI prints it).

Results schema (``schema_version`` 1)
-------------------------------------
::

    {"study": str, "storage": str,
     "directions": ["maximize" | "minimize", ...],      # one per objective
     "objective_names": ["delta_m", ...],               # objective 0 is Δm (validation)
     "tasks": [TaskSpec.to_dict(), ...],
     "data": {"name": str, "fingerprint": str, "meta": {...}},
     "space": {"path": str, "text": str},               # the search-space file and its text
     "train_config": {...}, "search_config": {...} (optional),
     "trials": [{"number": int, "state": "COMPLETE" | "PRUNED" | "FAIL" | ...,
                 "values": [float, ...] | None, "params": {...},
                 "graph": SharingGraph.to_dict() | None, "graph_key": str | None,
                 "n_params": int | None, "flops": int | None,
                 "val_metrics": {task: float}, "val_deltas": {task: float},   # relative Δ_t on validation
                 "reference": str | None,                   # name of a reference architecture
                 "affinity_tree": int | None,               # index into affinity.trees when it proposed the trial
                 "duration_s": float | None, ...}],          # further keys are kept, not read
     "best_trials": [int, ...],                          # numbers of the Pareto-optimal trials
     "importances": {param: float},
     "baselines": {task: {"val_metric": float, "config": {...}}},
     "verdict": None | {
         "protocol": VerdictProtocol.to_dict() (sharesearch.search._protocol): {"seeds": [...],
                      "independent_seeds": [...], "n_seeds": int, "seeds_why": str, "seed_plan": {...},
                      "test_looks": int, "test_used_once": bool, "computations": int, "budget": {...},
                      "alpha": float, "selection": "validation", ...},
         "candidates": [{"name": str, "trial": int | None, "graph": SharingGraph.to_dict(),
                         "verdict": Verdict.to_dict(),   # tasks[], delta_m, delta_m_ci, alpha
                         "test_metrics": {task: [per seed]},
                         "runs": {"seeds": [...], "n_runs": int, "n_diverged": int,      # optional
                                  "n_still_learning": int, "still_learning_tasks": {task: int}},
                         "gates": {moe node: [[per expert] per task]} | None,
                         "stitch": {"stage<l>:<tasks>": [[...]]} | None}],
         "baseline_test_metrics": {task: [per seed]},
         "control": {"seeds": [...], "n_runs": int, ...},        # the control's runs, as "runs" above
         "history": [older verdict dicts, oldest first]},        # earlier looks at the test split
     "affinity": None | {"affinity": Affinity.to_dict(),  # sharesearch.affinity: tasks, lookahead, cosine, ...
                         "kind": str, "trees": [[[[task, ...], ...] per stage] per tree], "enqueued": [int, ...],
                         "config": {...}, "dendrogram": {"icoord", "dcoord", "leaves"},
                         "share_importances": {param: float}},   # importances of share[a~b] / trunk[t] alone
     "reproducibility": {"versions": {pkg: version}, "seeds": [...] | {...},
                         "data_fingerprint": str, "selection_protocol": str,
                         "search_space_file": str},
     "schema_version": 1}                                # added by write_report

The *best* candidate is chosen on validation, never on test: the verdict
candidate of the searched trial with the best objective-0 value (references
only when no searched trial was verified).

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
>>> r = {"study": "demo", "directions": ["maximize"], "objective_names": ["delta_m"],
...      "tasks": [{"name": "a", "kind": "binary"}], "trials": [{"number": 0, "state": "COMPLETE",
...      "values": [0.01], "graph": g.to_dict(), "val_deltas": {"a": 0.01}}], "best_trials": [0]}
>>> print(markdown_summary(r).splitlines()[0])
# sharesearch report: `demo`
"""

from __future__ import annotations

import html
import json
import math
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from . import fmt
from .figure import affinity_figure, esc, small_multiples, topology_figure
from .graph import SharingGraph
from .verdict import TaskVerdict, Verdict

__all__ = [
    "SCHEMA_VERSION",
    "write_report",
    "report_html",
    "markdown_summary",
    "figure_html",
    "history_figure",
    "importance_figure",
    "pareto_figure",
    "best_candidate",
    "jsonable",
]

SCHEMA_VERSION = 1
HTML_FILE, JSON_FILE, MD_FILE = "report.html", "report.json", "summary.md"
#: row colour of each verdict category (sharesearch.verdict.VERDICTS)
_VERDICT_CLASS = {"negative transfer": "neg", "positive transfer": "pos", "equivalent": "eq",
                  "inconclusive": "neu", "untestable": "unt"}


# ------------------------------------------------------------------ helpers
def _h(x: Any) -> str:
    """HTML-escape any value for the page (quotes too: safe in attributes)."""
    return html.escape(str(x), quote=True)


def jsonable(obj: Any) -> Any:
    """A strict-JSON copy: NaN -> None, ±inf -> "inf"/"-inf", tuples -> lists, other objects -> str.

    >>> jsonable({"a": (1.0, float("nan")), "b": float("-inf")})
    {'a': [1.0, None], 'b': '-inf'}
    """
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    return str(obj)


def _script_json(obj: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>``, ``&``, U+2028/9 as \\u escapes."""
    text = obj if isinstance(obj, str) else json.dumps(jsonable(obj), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _ci(ci: Any, fn: Callable[[Any], str] = fmt.value) -> str:
    """An interval from a JSON pair (anything else is no interval), through :func:`sharesearch.fmt.interval`."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return ""
    return fmt.interval(ci[0], ci[1], fn)


def _verdict_record(d: Mapping | None) -> Verdict | None:
    """The typed :class:`Verdict` of a stored verdict dict (any version), None if it is not one."""
    try:
        return Verdict.from_dict(d) if d else None
    except (KeyError, TypeError, ValueError):
        return None


def _complete(results: Mapping) -> list[dict]:
    return [t for t in results.get("trials") or [] if t.get("state") == "COMPLETE" and t.get("values")]


def _graph(d: Mapping | None) -> SharingGraph | None:
    if not d:
        return None
    try:
        return SharingGraph.from_dict(d)
    except ValueError:
        return None


def _trial(results: Mapping, number: Any) -> dict | None:
    for t in results.get("trials") or []:
        if t.get("number") == number:
            return t
    return None


def best_candidate(results: Mapping) -> tuple[dict | None, dict | None]:
    """``(verdict candidate, trial)`` of the best architecture, chosen on validation.

    The searched trial with the best objective-0 value among the verdict's
    candidates (references only if no searched trial was verified); without a
    verdict, the best of ``best_trials``. Either element may be ``None``.
    """
    sign = -1.0 if (results.get("directions") or ["maximize"])[0] == "minimize" else 1.0

    def val(t: Mapping | None) -> float:
        v = fmt.as_float((t or {}).get("values", [None])[0] if (t or {}).get("values") else None)
        return -math.inf if math.isnan(v) else sign * v

    verdict = results.get("verdict") or {}
    cands = list(verdict.get("candidates") or [])
    if cands:
        searched = [c for c in cands if c.get("trial") is not None
                    and not (_trial(results, c["trial"]) or {}).get("reference")]
        pool = searched or cands
        best = max(pool, key=lambda c: val(_trial(results, c.get("trial"))))
        return best, _trial(results, best.get("trial"))
    best_nums = results.get("best_trials") or []
    pool = [t for t in _complete(results) if t.get("number") in best_nums] or _complete(results)
    if not pool:
        return None, None
    return None, max(pool, key=val)


# ------------------------------------------------------------------ figures
def figure_html(fig: go.Figure, *, div_id: str | None = None, include_plotlyjs: bool = False) -> str:
    """An HTML fragment that draws ``fig``: a ``<div>`` plus a ``<script>`` calling ``Plotly.newPlot``.

    The figure's JSON is embedded with ``<``, ``>`` and ``&`` as ``\\u`` escapes,
    so user strings cannot close the script. With ``include_plotlyjs=True`` the
    fragment inlines plotly.js (about 4.8 MB) and works on its own, offline
    (e.g. for a dashboard note); otherwise the page must load plotly.js once.

    >>> frag = figure_html(go.Figure(go.Bar(x=["</script><b>"], y=[1])), div_id="f1")
    >>> "</script><b>" in frag, frag.count("</script>")
    (False, 1)
    """
    div_id = div_id or f"fig-{uuid.uuid4().hex[:12]}"
    payload = _script_json(fig.to_json())
    js = ""
    if include_plotlyjs:
        from plotly.offline import get_plotlyjs

        js = f"<script>{get_plotlyjs()}</script>\n"
    h = fig.layout.height
    style = f"width:100%;height:{int(h)}px" if h else "width:100%"
    return (f'{js}<div id="{_h(div_id)}" class="ss-figure" style="{style}"></div>\n'
            f'<script>(function(){{var f={payload};'
            f'Plotly.newPlot({_script_json(json.dumps(div_id))},f.data,f.layout,'
            f'{{responsive:true,displaylogo:false}});}})();</script>')


def history_figure(results: Mapping) -> go.Figure | None:
    """Objective values by trial number with the best-so-far line (one row per objective)."""
    from plotly.subplots import make_subplots

    trials = sorted(_complete(results), key=lambda t: t.get("number", 0))
    if not trials:
        return None
    names = list(results.get("objective_names") or [])
    dirs = list(results.get("directions") or ["maximize"])
    k = len(dirs)
    names += [f"objective {i}" for i in range(len(names), k)]
    fig = make_subplots(rows=k, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[esc(n) for n in names[:k]])
    for i in range(k):
        xs = [t["number"] for t in trials if len(t["values"]) > i]
        ys = [fmt.as_float(t["values"][i]) for t in trials if len(t["values"]) > i]
        ref = [bool(t.get("reference")) for t in trials if len(t["values"]) > i]
        hover = [f"trial {t['number']}" + (f" ({esc(t['reference'])})" if t.get("reference") else "")
                 + f"<br>{esc(names[i])} = {fmt.value(t['values'][i])}"
                 + (f"<br>params {t['n_params']:,}" if isinstance(t.get("n_params"), int) else "")
                 for t in trials if len(t["values"]) > i]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="trial", showlegend=i == 0,
                                 marker=dict(color=["#F58518" if r else "#4C78A8" for r in ref], size=8),
                                 hovertext=hover, hoverinfo="text"), row=i + 1, col=1)
        best, line = None, []
        for y in ys:
            if not math.isnan(y):
                best = y if best is None else (max(best, y) if dirs[i] == "maximize" else min(best, y))
            line.append(best)
        fig.add_trace(go.Scatter(x=xs, y=line, mode="lines", line=dict(color="#E45756", shape="hv"),
                                 name="best so far", showlegend=i == 0, hoverinfo="skip"), row=i + 1, col=1)
        fig.update_yaxes(title_text=esc(names[i]), row=i + 1, col=1)
    fig.update_xaxes(title_text="trial", row=k, col=1)
    n_pruned = sum(1 for t in results.get("trials") or [] if t.get("state") == "PRUNED")
    n_fail = sum(1 for t in results.get("trials") or [] if t.get("state") == "FAIL")
    fig.update_layout(title=dict(text=f"Optimisation history: {len(trials)} complete, {n_pruned} pruned, "
                                      f"{n_fail} failed (orange: reference architectures)"),
                      height=320 * k + 80, margin=dict(l=60, r=20, t=70, b=40), plot_bgcolor="white")
    return fig


def importance_figure(results: Mapping) -> go.Figure | None:
    """Horizontal bars of the parameter importances, largest on top (None when there are none)."""
    imp = {k: fmt.as_float(v) for k, v in (results.get("importances") or {}).items() if not math.isnan(fmt.as_float(v))}
    if not imp:
        return None
    items = sorted(imp.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[esc(k) for k, _ in items], orientation="h",
                           marker_color="#4C78A8", hovertext=[f"{esc(k)}: {v:.3f}" for k, v in items],
                           hoverinfo="text"))
    fig.update_layout(title=dict(text="Hyperparameter importances (objective 0)"), xaxis_title="importance",
                      height=max(260, 28 * len(items) + 120), margin=dict(l=20, r=20, t=60, b=40),
                      plot_bgcolor="white")
    fig.update_yaxes(automargin=True)
    return fig


def pareto_figure(results: Mapping) -> go.Figure | None:
    """Objective 0 against objective 1 of the complete trials, Pareto-optimal ones highlighted.

    None when there are fewer than two objectives.
    """
    dirs = list(results.get("directions") or [])
    if len(dirs) < 2:
        return None
    names = list(results.get("objective_names") or [])
    names += [f"objective {i}" for i in range(len(names), len(dirs))]
    best = set(results.get("best_trials") or [])
    trials = [t for t in _complete(results) if len(t["values"]) >= 2]
    fig = go.Figure()
    for on_front, colour, label in ((False, "#9ecae1", "trial"), (True, "#E45756", "Pareto-optimal")):
        ts = [t for t in trials if (t["number"] in best) == on_front]
        if on_front:
            ts.sort(key=lambda t: fmt.as_float(t["values"][0]))
        fig.add_trace(go.Scatter(
            x=[fmt.as_float(t["values"][0]) for t in ts], y=[fmt.as_float(t["values"][1]) for t in ts],
            mode="markers+lines" if on_front and len(ts) > 1 else "markers", name=label,
            line=dict(color=colour, dash="dot"), marker=dict(color=colour, size=10 if on_front else 7),
            hovertext=[f"trial {t['number']}" + (f" ({esc(t['reference'])})" if t.get("reference") else "")
                       + "".join(f"<br>{esc(n)} = {fmt.value(v)}" for n, v in zip(names, t["values"])) for t in ts],
            hoverinfo="text"))
    arrows = {"maximize": "↑ better", "minimize": "↓ better"}
    extra = f" (first two of {len(dirs)} objectives)" if len(dirs) > 2 else ""
    fig.update_layout(title=dict(text="Pareto front" + extra), height=460, plot_bgcolor="white",
                      xaxis_title=f"{esc(names[0])} ({arrows.get(dirs[0], dirs[0])})".replace("↑", "→")
                      .replace("↓", "←"),
                      yaxis_title=f"{esc(names[1])} ({arrows.get(dirs[1], dirs[1])})")
    return fig


def _topology_options(cand: Mapping | None, trial: Mapping | None) -> dict[str, Any]:
    if cand and cand.get("verdict"):
        tv = cand["verdict"].get("tasks") or []
        return {"deltas": {t["task"]: fmt.as_float(t.get("delta")) for t in tv},
                "delta_ci": {t["task"]: t.get("delta_ci") for t in tv},
                "gates": cand.get("gates") or None, "stitch": cand.get("stitch") or None}
    if trial and trial.get("val_deltas"):
        return {"deltas": {k: fmt.as_float(v) for k, v in trial["val_deltas"].items()}}
    return {}


def _multiples(results: Mapping, top_k: int = 3) -> go.Figure | None:
    """The verified candidates (or the best trials) beside the reference architectures."""
    named: list[tuple[str, SharingGraph, dict]] = []
    verdict = results.get("verdict") or {}
    if verdict.get("candidates"):
        for c in verdict["candidates"]:
            g = _graph(c.get("graph"))
            if g is not None:
                dm = fmt.delta((c.get("verdict") or {}).get("delta_m"))
                named.append((f"{c.get('name', '?')}  (test Δm {dm})", g, _topology_options(c, None)))
    else:
        refs: dict[str, dict] = {}
        for t in _complete(results):
            if t.get("reference") and t["reference"] not in refs and t.get("graph"):
                refs[t["reference"]] = t
        sign = -1.0 if (results.get("directions") or ["maximize"])[0] == "minimize" else 1.0
        top = sorted((t for t in _complete(results) if not t.get("reference") and t.get("graph")),
                     key=lambda t: -sign * fmt.as_float(t["values"][0]))[:top_k]
        for name, t in list(refs.items()) + [(f"trial {t['number']}", t) for t in top]:
            g = _graph(t.get("graph"))
            if g is not None:
                named.append((f"{name}  (val Δm {fmt.delta(t['values'][0])})", g, _topology_options(None, t)))
    if not named:
        return None
    return small_multiples(named, cols=3, title="Candidates and reference architectures")


# ------------------------------------------------------------------- tables
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


def _verdict_table(d: Mapping) -> str:
    v = _verdict_record(d)
    if v is None:
        return '<p class="muted">This verdict could not be read.</p>'
    rows = []
    for tv in v.tasks:
        rows.append(
            f'<tr class="{_VERDICT_CLASS.get(tv.verdict, "neu")}"><td class="task">{_h(tv.task)}</td>'
            f'<td>{_h(tv.direction)}</td><td>{_h(_n_runs(tv))}</td>'
            f'<td>{fmt.value(tv.baseline_mean)} <span class="ci">{fmt.interval(*tv.baseline_ci)}</span></td>'
            f'<td>{fmt.value(tv.candidate_mean)} <span class="ci">{fmt.interval(*tv.candidate_ci)}</span></td>'
            f'<td>{fmt.delta(tv.delta)} <span class="ci">{fmt.interval(*tv.delta_ci, fmt.delta)}</span></td>'
            f'<td>{fmt.p_value(tv.p_value)}</td><td>{fmt.p_value(tv.p_holm)}</td><td>{fmt.percent(tv.mde)}</td>'
            f'<td>{fmt.p_value(tv.p_equivalence_holm)}</td>'
            f'<td class="verdict">{_h(tv.label)}</td><td class="note">{_h(tv.note)}</td></tr>')
    head = ("<tr><th>task</th><th>direction</th><th>n (base / cand)</th><th>baseline mean [CI]</th>"
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
    by_tree = {t.get("affinity_tree"): t for t in results.get("trials") or [] if t.get("affinity_tree") is not None}
    rows = []
    for i, tree in enumerate(aff.get("trees") or []):
        text = " > ".join("|".join(",".join(g) for g in part) for part in tree)  # as sharesearch.affinity.tree_text
        t = by_tree.get(i)
        if t is None:
            ran = "not enqueued (a reference, or not in the space)" if i not in (aff.get("enqueued") or []) else "queued"
        else:
            ran = f"trial {t['number']}: " + (f"Δm {fmt.delta((t.get('values') or [None])[0])}" if t.get("values")
                                              else str(t.get("state", "")).lower())
        rows.append(f"<tr><td>{i + 1}</td><td><code>{_h(text)}</code></td><td>{_h(ran)}</td></tr>")
    return ['<section id="affinity"><h2>Task affinity and the trees it proposed</h2>',
            f'<p class="muted">One pass of the shared-bottom network ({_h(a.get("steps"))} steps, '
            f'{_h(fmt.value(a.get("seconds"), 3))} s) before the search: how much a step on one task lowers another '
            f'task\'s loss (lookahead, Fifty et al. 2021) and how well their gradients align (cosine). The search '
            f'tried the trees cut from its dendrogram first; where the search and the affinity agree, pairs with a '
            f'high affinity also have important share depths.</p>',
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
    head = ("<tr><th>trial</th>" + "".join(f"<th>{_h(x)}</th>" for x in names)
            + "<th>params</th><th>FLOPs</th><th>reference</th><th>topology</th></tr>")
    rows = []
    for t in trials:
        g = _graph(t.get("graph"))
        vals = "".join(f"<td>{fmt.value(v)}</td>" for v in t["values"])
        star = " ★" if t["number"] in best else ""
        rows.append(f"<tr><td>{_h(t['number'])}{star}</td>{vals}<td>{_h(t.get('n_params', ''))}</td>"
                    f"<td>{_h(t.get('flops', ''))}</td><td>{_h(t.get('reference') or '')}</td>"
                    f"<td><pre class=\"small\">{_h(g.describe() if g else '')}</pre></td></tr>")
    return (f'<table class="trials"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            f"<p class=\"muted\">Top {len(trials)} complete trials by {_h(names[0])} on validation; "
            f"★ Pareto-optimal.</p>")


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
nav a{margin-right:1rem}.dm{font-size:1.05rem}.ss-figure{margin:.5rem 0 1rem 0}
"""


def report_html(results: Mapping) -> str:
    """The report page as one HTML string (plotly.js inlined; opens offline)."""
    from plotly.offline import get_plotlyjs

    study = results.get("study", "")
    data = results.get("data") or {}
    tasks = results.get("tasks") or []
    verdict = results.get("verdict") or {}
    counter = iter(range(1, 10_000))
    parts: list[str] = []

    def fig_block(fig: go.Figure | None, missing: str) -> str:
        if fig is None:
            return f'<p class="muted">{_h(missing)}</p>'
        fig.update_layout(width=None, autosize=True)  # fill the page's column, whatever the figure asked
        return figure_html(fig, div_id=f"ss-fig-{next(counter)}")

    n_trials = len(results.get("trials") or [])
    parts.append(f"<h1>sharesearch report: {_h(study)}</h1>")
    parts.append(f'<p class="muted">data <b>{_h(data.get("name", ""))}</b> (fingerprint '
                 f'<code>{_h(data.get("fingerprint", ""))}</code>), {len(tasks)} tasks, {n_trials} trials; '
                 f'objectives: {_h(", ".join(f"{n} ({d})" for n, d in zip(results.get("objective_names") or [], results.get("directions") or [])))}</p>')
    if _rows_line(data):
        parts.append(f'<p class="muted">{_h(_rows_line(data))}</p>')
    parts.append('<nav><a href="#verdict">verdict</a><a href="#topology">best topology</a>'
                 '<a href="#history">history</a><a href="#importances">importances</a>'
                 + ('<a href="#affinity">affinity</a>' if results.get("affinity") else "")
                 + ('<a href="#pareto">Pareto front</a>' if len(results.get("directions") or []) >= 2 else "")
                 + '<a href="#architectures">architectures</a><a href="#trials">trials</a>'
                 '<a href="#reproducibility">reproducibility</a></nav>')

    # ---- verdict
    parts.append('<section id="verdict"><h2>Verdict: did sharing help each task?</h2>')
    best_c, best_t = best_candidate(results)
    if verdict.get("candidates"):
        proto = verdict.get("protocol") or {}
        for warning in (_looks_warning(verdict), _control_warning(verdict["candidates"])):
            if warning:
                parts.append(f'<p class="warning">{_h(warning)}</p>')
        parts.append(f'<p class="muted">{_h(_protocol_line(verdict))} Δ<sub>t</sub> is the relative change against the '
                     f'independent single-task baseline (positive: sharing helped). Red: negative transfer, '
                     f'green: positive transfer (Holm-corrected), blue: equivalent within the margin (TOST), '
                     f'grey: inconclusive (see its minimum detectable effect) or untestable. '
                     f'“No significant difference” is not “no negative transfer”: only “equivalent” says that.</p>')
        if _runs_note({"runs": verdict.get("control")}):
            parts.append(f'<p class="muted">Control: {_h(_runs_note({"runs": verdict.get("control")}))}</p>')
        ordered = [best_c] + [c for c in verdict["candidates"] if c is not best_c]
        for c in ordered:
            tag = " (best on validation)" if c is best_c else ""
            trial = (f", trial {_h(c['trial'])}" if c.get("trial") is not None
                     and c.get("name") != f"trial {c['trial']}" else "")
            parts.append(f'<h3 class="candidate">{_h(c.get("name", ""))}{trial}{tag}</h3>')
            if _runs_note(c):
                cls = "warning" if (c.get("runs") or {}).get("n_still_learning") else "muted"
                parts.append(f'<p class="{cls}">{_h(_runs_note(c))}</p>')
            parts.append(_verdict_table(c.get("verdict") or {}))
    else:
        parts.append('<p>No verdict yet: run <code>sharesearch verdict</code> to retrain the best candidates '
                     'and the baselines with fresh seeds and test them once. Validation numbers only below.</p>')
        if best_t and best_t.get("val_deltas"):
            rows = "".join(f'<tr class="{"pos" if fmt.as_float(v) > 0 else "neg" if fmt.as_float(v) < 0 else "neu"}">'
                           f'<td class="task">{_h(k)}</td><td>{fmt.delta(v)}</td></tr>'
                           for k, v in best_t["val_deltas"].items())
            parts.append(f'<h3>Trial {_h(best_t["number"])}: validation Δ<sub>t</sub></h3><table><thead><tr>'
                         f'<th>task</th><th>Δ<sub>t</sub> (validation)</th></tr></thead><tbody>{rows}</tbody>'
                         f'</table>')
    parts.append("</section>")

    # ---- best topology
    parts.append('<section id="topology"><h2>Best topology</h2>')
    g = _graph((best_c or {}).get("graph") or (best_t or {}).get("graph"))
    if g is not None:
        name = (best_c or {}).get("name") or (f"trial {best_t['number']}" if best_t else "")
        src = "test Δ_t (verdict)" if best_c else "validation Δ_t"
        fig = topology_figure(g, title=f"{name}: heads coloured by {src}", **_topology_options(best_c, best_t))
        parts.append(fig_block(fig, ""))
        parts.append(_pre(g.describe()))
    else:
        parts.append('<p class="muted">No trained architecture yet.</p>')
    parts.append("</section>")

    parts.append('<section id="history"><h2>Optimisation history</h2>')
    parts.append(fig_block(history_figure(results), "No complete trials yet."))
    parts.append("</section>")
    parts.append('<section id="importances"><h2>Parameter importances</h2>')
    parts.append(fig_block(importance_figure(results), "Importances not available (too few trials)."))
    parts.append("</section>")
    if results.get("affinity"):
        parts += _affinity_section(results, fig_block)
    if len(results.get("directions") or []) >= 2:
        parts.append('<section id="pareto"><h2>Pareto front</h2>')
        parts.append(fig_block(pareto_figure(results), "No complete trials yet."))
        parts.append("</section>")
    parts.append('<section id="architectures"><h2>Candidates beside the reference architectures</h2>')
    parts.append(fig_block(_multiples(results), "No architectures to compare yet."))
    parts.append("</section>")

    parts.append('<section id="trials"><h2>Trials</h2>')
    parts.append(_trials_table(results))
    if results.get("baselines"):
        rows = "".join(f'<tr><td class="task">{_h(t)}</td><td>{fmt.value(b.get("val_metric"))}</td>'
                       f'<td><code>{_h(fmt.config(b.get("config") or {}))}</code></td></tr>'
                       for t, b in results["baselines"].items())
        parts.append("<h3>Single-task baselines (validation)</h3><table><thead><tr><th>task</th><th>primary metric"
                     f"</th><th>configuration</th></tr></thead><tbody>{rows}</tbody></table>")
    if tasks:
        rows = "".join(f'<tr><td class="task">{_h(t.get("name"))}</td><td>{_h(t.get("kind", ""))}</td>'
                       f'<td>{_h(", ".join(t.get("metrics") or []))}</td><td>{_h(t.get("weight", 1.0))}</td></tr>'
                       for t in tasks)
        parts.append("<h3>Tasks</h3><table><thead><tr><th>task</th><th>kind</th><th>metrics (first: primary)</th>"
                     f"<th>weight</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append("</section>")

    # ---- reproducibility
    rep = results.get("reproducibility") or {}
    space = results.get("space") or {}
    parts.append('<section id="reproducibility"><h2>Reproducibility</h2>')
    parts.append(_kv_table({"study": study, "storage": results.get("storage", ""),
                            "data fingerprint": rep.get("data_fingerprint", data.get("fingerprint", "")),
                            "selection protocol": rep.get("selection_protocol", ""),
                            "seeds": rep.get("seeds", ""), "search-space file": space.get("path", "")}))
    if rep.get("versions"):
        parts.append("<h3>Versions</h3>" + _kv_table(rep["versions"], "versions"))
    if verdict.get("protocol"):
        parts.append("<h3>Verdict protocol</h3>" + _pre(verdict["protocol"]))
    if results.get("train_config"):
        parts.append("<h3>Training configuration</h3>" + _pre(results["train_config"]))
    if data.get("meta"):
        parts.append("<h3>Data</h3>" + _pre(data["meta"]))
    text = space.get("text") or rep.get("search_space_file") or ""
    parts.append(f'<h3>Search-space file <code>{_h(space.get("path", ""))}</code></h3>' + _pre(text))
    parts.append("</section>")
    parts.append(f'<section id="files"><h2>Files</h2><p>{HTML_FILE} (this page), {JSON_FILE} (all numbers, '
                 f'schema version {SCHEMA_VERSION}), {MD_FILE} (summary)</p></section>')

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>sharesearch report: {_h(study)}</title><style>{_CSS}</style>\n"
            f"<script>{get_plotlyjs()}</script>\n</head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


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
    data = results.get("data") or {}
    n_complete = len(_complete(results))
    lines.append(f"data {_md(data.get('name', ''))} (fingerprint {_md(data.get('fingerprint', ''))}), "
                 f"{len(results.get('tasks') or [])} tasks, {len(results.get('trials') or [])} trials "
                 f"({n_complete} complete)")
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
    if files:
        lines += ["", "## Files", ""]
        lines += [f"- {k}: {_md(p)}" for k, p in files.items()]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------- write
def write_report(results: Mapping, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.json`` and ``summary.md`` into ``out_dir``.

    Returns ``{"html": path, "json": path, "markdown": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / HTML_FILE, "json": out / JSON_FILE, "markdown": out / MD_FILE}
    doc = {**jsonable(dict(results)), "schema_version": SCHEMA_VERSION}
    paths["json"].write_text(json.dumps(doc, indent=2, allow_nan=False), encoding="utf-8")
    paths["html"].write_text(report_html(results), encoding="utf-8")
    paths["markdown"].write_text(markdown_summary(results, files=paths), encoding="utf-8")
    return paths

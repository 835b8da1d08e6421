"""The report's plotly figures drawn from the results dict: history, importances, Pareto front, topologies."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from .. import fmt
from ..figure import esc, small_multiples
from ..graph import SharingGraph
from ._common import _complete, _graph

#: objective names as a person reads them (others as stored)
_OBJECTIVE_LABELS = {"delta_m": "validation Δm", "params": "parameters", "n_params": "parameters", "flops": "FLOPs"}


def _label(name: str) -> str:
    """An objective's name as shown: ``delta_m`` -> ``validation Δm``."""
    return _OBJECTIVE_LABELS.get(name, name)


def _is_delta(name: str) -> bool:
    return name == "delta_m" or name.startswith("delta")


def _shown(name: str):
    """The formatter of an objective's values: Δ in percent, the rest as metric values."""
    return fmt.delta if _is_delta(name) else fmt.value


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
                        subplot_titles=[esc(_label(n)) for n in names[:k]])
    for i in range(k):
        xs = [t["number"] for t in trials if len(t["values"]) > i]
        ys = [fmt.as_float(t["values"][i]) for t in trials if len(t["values"]) > i]
        ref = [bool(t.get("reference")) for t in trials if len(t["values"]) > i]
        show = _shown(names[i])
        hover = [f"trial {t['number']}" + (f" ({esc(t['reference'])})" if t.get("reference") else "")
                 + f"<br>{esc(_label(names[i]))} = {show(t['values'][i])}"
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
        fig.update_yaxes(title_text=esc(_label(names[i])), row=i + 1, col=1,
                         tickformat="+.1%" if _is_delta(names[i]) else None)
    fig.update_xaxes(title_text="trial", row=k, col=1)
    n_pruned = sum(1 for t in results.get("trials") or [] if t.get("state") == "PRUNED")
    n_fail = sum(1 for t in results.get("trials") or [] if t.get("state") == "FAIL")
    left = f" (not plotted: {n_pruned} stopped early by the pruner, {n_fail} failed)" if n_pruned + n_fail else ""
    fig.update_layout(title=dict(text=f"Optimisation history: the {len(trials)} completed trials{left}; "
                                      "orange: reference architectures"),
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
    first = esc(_label((list(results.get("objective_names") or []) or ["the objective"])[0]))
    fig.update_layout(title=dict(text=f"Hyperparameter importances for {first}"), xaxis_title="importance",
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
                       + "".join(f"<br>{esc(_label(n))} = {_shown(n)(v)}" for n, v in zip(names, t["values"])) for t in ts],
            hoverinfo="text"))
    arrows = {"maximize": "↑ better", "minimize": "↓ better"}
    extra = f" (first two of {len(dirs)} objectives)" if len(dirs) > 2 else ""
    fig.update_layout(title=dict(text="Pareto front" + extra), height=460, plot_bgcolor="white",
                      xaxis_title=f"{esc(_label(names[0]))} ({arrows.get(dirs[0], dirs[0])})".replace("↑", "→")
                      .replace("↓", "←"),
                      yaxis_title=f"{esc(_label(names[1]))} ({arrows.get(dirs[1], dirs[1])})")
    return fig


def _topology_options(cand: Mapping | None, trial: Mapping | None) -> dict[str, Any]:
    if cand and cand.get("verdict"):
        tv = cand["verdict"].get("tasks") or []
        return {"deltas": {t["task"]: fmt.as_float(t.get("delta")) for t in tv},
                "delta_ci": {t["task"]: t.get("delta_ci") for t in tv},
                "gates": cand.get("gates") or None, "stitch": cand.get("stitch") or None, "delta_split": "test"}
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
        sign = -1.0 if (results.get("directions") or ["maximize"])[0] == "minimize" else 1.0
        for t in _complete(results):  # a reference tried again on the best trial's training: its better version
            name = t.get("reference")
            if name and t.get("graph") and (name not in refs or sign * fmt.as_float(t["values"][0])
                                            > sign * fmt.as_float(refs[name]["values"][0])):
                refs[name] = t
        top = sorted((t for t in _complete(results) if not t.get("reference") and t.get("graph")),
                     key=lambda t: -sign * fmt.as_float(t["values"][0]))[:top_k]
        for name, t in list(refs.items()) + [(f"trial {t['number']}", t) for t in top]:
            g = _graph(t.get("graph"))
            if g is not None:
                named.append((f"{name}  (val Δm {fmt.delta(t['values'][0])})", g, _topology_options(None, t)))
    if not named:
        return None
    return small_multiples(named, cols=3, title="Candidates and reference architectures")



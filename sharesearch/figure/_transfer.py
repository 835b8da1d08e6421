"""The transfer matrix: every task against every architecture the verdict tested, coloured by test Δ_t.

One heatmap, tasks as rows and arms as columns (the recommended arm first,
then the searched candidates, then the reference architectures, the
``independent`` control check last). Each cell holds Δ_t in percent with a
significance mark (▲ positive transfer, ▼ negative transfer, Holm; ``=``
equivalent within the margin); the hover gives the interval, the Holm
p-value and the verdict. The colour scale is diverging and centred at 0
(red: sharing hurt, green: it helped), symmetric around the largest |Δ|.

As for the topology, a pure *info* function (:func:`transfer_info`) computes
what the figure shows and :func:`transfer_figure` draws it.

Example
-------
>>> from sharesearch.verdict import task_verdicts
>>> v = task_verdicts({"a": [0.9, 0.91, 0.89]}, {"a": [0.8, 0.81, 0.79]}, {"a": "maximize"}, n_resamples=100)
>>> info = transfer_info([{"name": "trial 3", "trial": 3, "verdict": v.to_dict()}], recommended="trial 3")
>>> info.cell("a", "trial 3").text, info.arms
('+12.50% ▲', ['trial 3 (recommended)'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from .. import fmt
from ..verdict import Verdict
from ._common import delta_colour, esc

__all__ = ["MARKS", "TransferCell", "TransferInfo", "transfer_info", "transfer_figure"]

#: the mark of each verdict in a cell ("" for inconclusive and untestable)
MARKS = {"positive transfer": "▲", "negative transfer": "▼", "equivalent": "="}
_CONTROL = "independent"


@dataclass(frozen=True)
class TransferCell:
    """One task under one arm."""

    task: str  # the task (row)
    arm: str  # the arm's name as stored in the verdict (column)
    delta: float | None  # test Δ_t as a fraction (None: unknown)
    ci: tuple[float, float] | None  # its interval (None: unknown)
    p_holm: float | None  # Holm-adjusted Welch p-value (None: untested)
    verdict: str  # the verdict's label ("negative transfer", "equivalent within ±5%", ...)
    mark: str  # MARKS of the verdict category, "" when none
    text: str  # what the cell shows: Δ in percent and the mark
    hover: str  # escaped hover text: task, arm, Δ, interval, Holm p, verdict


@dataclass(frozen=True)
class TransferInfo:
    """Everything :func:`transfer_figure` draws."""

    tasks: list[str]  # row order (the verdict's task order)
    arms: list[str]  # column labels, escaped ("trial 23 (recommended)", "mmoe", "independent (control check)")
    arm_names: list[str]  # the arms' stored names, in column order
    cells: list[list[TransferCell]]  # [row][column]
    z: list[list[float | None]]  # Δ_t in percent, [row][column] (None: unknown)
    zmax: float  # half-width of the symmetric colour range, in percent
    row_labels: list[str]  # escaped row labels: the task and its metric with direction

    def cell(self, task: str, arm: str) -> TransferCell:
        """The cell of ``task`` under the arm stored as ``arm``."""
        return self.cells[self.tasks.index(task)][self.arm_names.index(arm)]


def _order(arms: Sequence[Mapping], recommended: str | None) -> list[Mapping]:
    """Recommended first, then searched trials, then references, the control check last (stable otherwise)."""
    def rank(a: Mapping) -> int:
        name = a.get("name")
        if name == recommended:
            return 0
        if name == _CONTROL:
            return 3
        return 1 if name == f"trial {a.get('trial')}" else 2
    return sorted(arms, key=rank)


def _cell(task: str, arm: str, label: str, v: Verdict) -> TransferCell:
    tv = next((t for t in v.tasks if t.task == task), None)
    if tv is None:
        return TransferCell(task, arm, None, None, None, "not tested", "", "–", f"{esc(task)} · {label}: not tested")
    d = tv.delta if math.isfinite(tv.delta) else None
    ci = tuple(tv.delta_ci) if not all(math.isnan(x) for x in tv.delta_ci) else None
    p = tv.p_holm if math.isfinite(tv.p_holm) else None
    mark = MARKS.get(tv.verdict, "")
    text = (fmt.delta(d) + (f" {mark}" if mark else "")) if d is not None else "–"
    hover = (f"<b>{esc(task)}</b> · {label}<br>Δ_t = {fmt.delta(tv.delta)} "
             f"{fmt.interval(*tv.delta_ci, fmt.delta)}<br>Holm p = {fmt.p_value(tv.p_holm)}<br>{esc(tv.label)}")
    return TransferCell(task, arm, d, ci, p, tv.label, mark, text, hover)


def transfer_info(arms: Sequence[Mapping], *, recommended: str | None = None,
                  metrics: Mapping[str, str] | None = None) -> TransferInfo:
    """The transfer matrix of the verdict's arms.

    Parameters
    ----------
    arms : sequence of the verdict's arm dicts
        ``{"name", "trial", "verdict": Verdict.to_dict()}`` (the results
        dict's ``verdict["candidates"]``); an unreadable verdict is left out.
    recommended : str, optional
        The recommended arm's name: its column comes first and says so.
    metrics : {task: "RMSE, lower is better"}, optional
        Each task's primary metric with its direction, shown in the row label.

    Returns
    -------
    TransferInfo
    """
    read: list[tuple[Mapping, Verdict]] = []
    for a in _order(arms, recommended):
        try:
            read.append((a, Verdict.from_dict(a["verdict"])))
        except (KeyError, TypeError, ValueError):
            continue
    tasks = [tv.task for tv in read[0][1].tasks] if read else []
    labels = []
    for a, _ in read:
        name, trial = str(a.get("name", "?")), a.get("trial")
        label = esc(name) + (f" (trial {trial})" if trial is not None and name != f"trial {trial}" else "")
        labels.append(label + (" (recommended)" if name == recommended else " (control check)" if name == _CONTROL
                               else ""))
    cells = [[_cell(t, str(a.get("name")), lab, v) for (a, v), lab in zip(read, labels)] for t in tasks]
    z = [[None if c.delta is None else 100 * c.delta for c in row] for row in cells]
    finite = [abs(x) for row in z for x in row if x is not None]
    metrics = dict(metrics or {})
    rows = [esc(t) + (f" ({esc(metrics[t])})" if metrics.get(t) else "") for t in tasks]
    return TransferInfo(tasks, labels, [str(a.get("name")) for a, _ in read], cells, z,
                        max(finite, default=1.0) or 1.0, rows)


def transfer_figure(info: TransferInfo, *, title: str | None = None) -> go.Figure:
    """Draw a :func:`transfer_info` as one heatmap (responsive width; height by the number of tasks).

    >>> from sharesearch.verdict import task_verdicts
    >>> v = task_verdicts({"a": [0.7, 0.71, 0.69]}, {"a": [0.8, 0.81, 0.79]}, {"a": "maximize"}, n_resamples=100)
    >>> fig = transfer_figure(transfer_info([{"name": "mmoe", "trial": 2, "verdict": v.to_dict()}]))
    >>> fig.data[0].type, fig.data[0].zmid, fig.data[0].text[0][0]
    ('heatmap', 0, '-12.50% ▼')
    """
    colours = [[0.0, delta_colour(-1.0)], [0.5, delta_colour(0.0)], [1.0, delta_colour(1.0)]]
    fig = go.Figure(go.Heatmap(
        z=info.z, x=info.arms, y=info.row_labels, zmid=0, zmin=-info.zmax, zmax=info.zmax, colorscale=colours,
        text=[[c.text for c in row] for row in info.cells], texttemplate="%{text}", textfont=dict(size=13),
        hovertext=[[c.hover for c in row] for row in info.cells], hoverinfo="text", hoverongaps=False, xgap=2, ygap=2,
        colorbar=dict(title=dict(text="test Δ<sub>t</sub> (%)"), thickness=12, ticksuffix="%")))
    fig.update_layout(
        title=dict(text=esc(title) if title else "Transfer matrix: test Δ<sub>t</sub> of each task under each "
                   "architecture (▲ positive, ▼ negative transfer, = equivalent; Holm)", font=dict(size=14)),
        height=int(150 + 42 * max(1, len(info.tasks))), autosize=True, plot_bgcolor="white",
        margin=dict(l=10, r=10, t=50, b=10), xaxis=dict(tickangle=0, automargin=True),
        yaxis=dict(autorange="reversed", automargin=True))
    return fig


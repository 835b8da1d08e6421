"""Soft links aggregated per stage: one band and one label per stage instead of a curve per sibling pair.

Cross-stitch and L2 links join every pair of sibling blocks of a stage, so
six tasks make fifteen links a stage. They are drawn as one translucent
*band* behind the linked blocks of the stage (one rectangle per run of
adjacent linked blocks) and one label in a footer under the stage's column
("cross-stitch, 15 pairs" / "mean off-diagonal 0.05", or "L2 λ=0.01, 15
pairs"), where it covers no block label. Every pair's value is in the
label's hover.

:func:`~sharesearch.plan.soft_groups` is the pure grouping of the graph
(no plotly, no torch; the DOT and Mermaid exports use it too);
:func:`soft_stage_infos` places the bands and labels of a drawing.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.cross_stitch({"a": 1, "b": 1, "c": 1}, {"name": "mlp", "input_shape": [2], "widths": [3]})
>>> [(s.stage, s.kind, len(s.blocks), len(s.pairs)) for s in soft_groups(g)]
[(0, 'stitch', 3, 3)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import fmt
from ..graph import SharingGraph
from ..plan import SoftGroup, soft_groups
from ._common import _DASH, esc

#: colours of the soft-link bands and labels
SOFT_COLOURS = {"stitch": "#9467bd", "l2": "#7f7f7f"}
SOFT_NAMES = {"stitch": "cross-stitch", "l2": "L2 soft sharing"}


def lam_text(lams: Sequence[float]) -> str:
    """``λ=0.01`` or, when the pairs differ, ``λ=0.001…0.01``.

    >>> lam_text([0.01]), lam_text([0.001, 0.01])
    ('λ=0.01', 'λ=0.001…0.01')
    """
    if len(lams) == 1:
        return f"λ={fmt.config_value(lams[0], 2)}"
    return f"λ={fmt.config_value(min(lams), 2)}…{fmt.config_value(max(lams), 2)}"


@dataclass
class SoftStageInfo:
    """One stage's soft links as drawn: bands behind the linked blocks and a label in the footer."""

    stage: int
    kind: str  # "stitch" or "l2"
    n_pairs: int  # sibling pairs linked at this stage (T(T-1)/2 for a full stage of T blocks)
    lines: list[str]  # the footer label, one escaped string per line
    hover: str  # every pair with its value (escaped HTML)
    band_xs: list[float | None]  # rectangles behind runs of adjacent linked blocks, None between rectangles
    band_ys: list[float | None]
    label_x: float  # where the footer label hangs from (its top centre), data coordinates
    label_y: float
    colour: str
    dash: str  # the line style of the kind, as the legend shows it
    width: float  # band outline width (L2: grows with log λ)
    lam: float | None = None  # l2: the largest λ of the stage
    mean_off_diagonal: float | None = None  # cross-stitch: mean learned weight between two blocks, when given

    @property
    def label(self) -> str:
        return "<br>".join(self.lines)


def _runs(blocks: Sequence[str], column: Sequence[str]) -> list[list[str]]:
    """Linked blocks cut into runs of blocks adjacent in the column (a non-linked block breaks a run)."""
    runs: list[list[str]] = []
    prev = -2
    for i, n in enumerate(column):
        if n not in blocks:
            continue
        if i == prev + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
        prev = i
    return runs


def _pair_hover(graph: SharingGraph, grp: SoftGroup, weights: Mapping[tuple[str, str], list[float]],
                per_line: int) -> str:
    """Every pair by its blocks' tasks, with its learned weights ``α(u←v)/α(v←u)`` when given."""
    def name(n: str) -> str:
        return esc("+".join(graph.g.nodes[n]["tasks"]))

    parts = []
    for u, v in grp.pairs:
        w = weights.get((u, v))
        val = ("α " + "/".join(fmt.value(x, 2) for x in w)) if w is not None else ""
        parts.append(f"{name(u)} ↔ {name(v)} {val}".rstrip())
    rows = ["; ".join(parts[i: i + per_line]) for i in range(0, len(parts), per_line)]
    return "<br>".join(rows)


def soft_stage_infos(
    graph: SharingGraph,
    pos: Mapping[str, tuple[float, float]],
    stitch_weights: Mapping[tuple[str, str], list[float]],
    *,
    label_y: float,
    half_width: Mapping[int, float],
    top: float,
    lam_width,
    compact: bool = False,
) -> list[SoftStageInfo]:
    """Place every stage's soft links: bands around the linked blocks, a label at ``label_y``.

    ``pos`` maps node ids to data coordinates; ``stitch_weights`` are the
    learned ``[α(u<-v), α(v<-u)]`` of each stitch pair (empty when not
    given); ``half_width`` is half a band's width in columns, by stage, ``top`` how far
    (in lanes) a band reaches above its top block's centre, so it frames the
    block's label too; ``lam_width`` maps λ to a line width.
    """
    out, top_pad = [], top
    for grp in soft_groups(graph):
        column = graph.nodes_at(grp.stage)
        xs: list[float | None] = []
        ys: list[float | None] = []
        for run in _runs(grp.blocks, column):
            x = pos[run[0]][0]
            top, bottom = max(pos[n][1] for n in run) + top_pad, min(pos[n][1] for n in run) - 0.42
            hw = half_width[grp.stage]
            xs += [x - hw, x + hw, x + hw, x - hw, x - hw, None]
            ys += [top, top, bottom, bottom, top, None]
        n = len(grp.pairs)
        pairs = f"{n} pair" + ("s" if n != 1 else "")
        ws = [stitch_weights[p] for p in grp.pairs if p in stitch_weights]
        mean_off = sum(sum(w) / len(w) for w in ws) / len(ws) if ws else None
        if grp.kind == "stitch":
            name = "cross-stitch"
            lines = [name, pairs]
            if mean_off is not None:
                lines.append(f"mean α {fmt.value(mean_off, 2)}" if compact
                             else f"mean off-diag. {fmt.value(mean_off, 2)}")
            head = "cross-stitch units mix the blocks' activations"
            width, lam = 1.5, None
        else:
            lines = [f"L2 pull {lam_text(grp.lams)}", pairs]
            head = f"L2 pull between the blocks' weights, {lam_text(grp.lams)}"
            width, lam = lam_width(max(grp.lams)), max(grp.lams)
        explain = ("<br>α u↔v: the share of u's input taken from v / of v's from u" if ws else "")
        hover = (f"<b>stage {grp.stage}: {head}</b><br>{len(grp.blocks)} blocks, {pairs}"
                 + (f", mean off-diagonal weight {fmt.value(mean_off)}" if mean_off is not None else "")
                 + explain + "<br>" + _pair_hover(graph, grp, stitch_weights, 3))
        x = pos[grp.blocks[0]][0]
        out.append(SoftStageInfo(grp.stage, grp.kind, n, lines, hover, xs, ys, x, label_y,
                                 SOFT_COLOURS[grp.kind], _DASH[grp.kind], width, lam, mean_off))
    return out

"""The topology figure: a sharing graph drawn so a person sees what is shared.

Following Optuna's visualisation pattern, a pure *info* function computes
everything the figure shows (positions, sizes, colours, labels, hover text)
and a thin figure function turns it into plotly traces; tests assert on the
info.

Layout: one column per stage between the input (left) and the heads (right).
Every task owns a horizontal *lane*; lanes are ordered by a depth-first walk
over the flow tree, so the tasks of every node are contiguous, siblings sit
together and no two flow edges cross. A node sits at the centre of its tasks'
lanes, its marker *area* is proportional to its trainable parameters
(:meth:`SharingGraph.node_params`), its colour says how it is conditioned on
the task (none / concat / film / gate, or MoE) and its label lists the tasks
that share it (abbreviated to fit its column, full list on hover). Soft
sharing is drawn once per stage (:mod:`._soft`): a band behind the stage's
linked blocks (L2 dashed, its outline growing with log λ; cross-stitch
dotted) and a label under the column ("cross-stitch / 15 pairs / mean
off-diagonal 0.05"), every pair's value on its hover. Each head carries its
task's Δ_t as a bar (:mod:`._bars`; length ∝ Δ in percent, green gain, red
negative transfer, the value beside it, the column titled with the split)
and is coloured on the same diverging scale (grey: unknown).
``TopologyInfo.text_boxes()`` gives the estimated box of every text, so
tests check that no two overlap.

Numbers are written by :mod:`sharesearch.fmt` (Δ as a signed percentage,
weights and λ with a few significant digits), as everywhere else; stitch
weights are looked up by the compiler's one unit name,
:func:`sharesearch.plan.stitch_key`.

Every string that comes from users (task names, hence node ids) is escaped
with :func:`html.escape` before it reaches plotly, which renders a subset of
HTML in labels and hover text; plain ``text``/``hovertext`` are used instead
of templates so ``%{...}`` in a name is not interpreted either.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 1},
...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, 1)
>>> info = topology_info(g, deltas={"a": 1.5, "b": -2.0})
>>> [n.kind for n in info.nodes]
['input', 'block', 'block', 'block', 'head', 'head']
>>> info.node("head:b").colour == info.node("head:a").colour
False
>>> type(topology_figure(g)).__name__
'Figure'
"""

from __future__ import annotations

from ._affinity import affinity_figure
from ._bars import BarColumn, DeltaBar
from ._common import CONDITIONING_COLOURS, MOE_COLOUR, delta_colour, esc
from ._draw import small_multiples, topology_figure
from ._info import EdgeInfo, ExpertInfo, NodeInfo, TopologyInfo, task_order, topology_info
from ._records import TextBox
from ._soft import SoftGroup, SoftStageInfo, soft_groups
from ._transfer import TransferCell, TransferInfo, transfer_figure, transfer_info

__all__ = [
    "CONDITIONING_COLOURS",
    "MOE_COLOUR",
    "NodeInfo",
    "EdgeInfo",
    "ExpertInfo",
    "TopologyInfo",
    "TextBox",
    "DeltaBar",
    "BarColumn",
    "SoftGroup",
    "SoftStageInfo",
    "soft_groups",
    "topology_info",
    "topology_figure",
    "small_multiples",
    "affinity_figure",
    "delta_colour",
    "esc",
    "task_order",
    "TransferCell",
    "TransferInfo",
    "transfer_info",
    "transfer_figure",
]

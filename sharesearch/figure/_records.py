"""The records of the topology figure: what ``topology_info`` computes and ``topology_figure`` draws."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._bars import BarColumn
from ._common import text_px
from ._soft import SoftStageInfo


@dataclass(frozen=True)
class TextBox:
    """The estimated pixel box of one drawn text (from the figure's top-left corner)."""

    kind: str  # what the text labels: "input", "block", "moe", "head", "value", "bar title", "soft"
    text: str  # the escaped text
    x0: float
    x1: float
    y0: float  # top
    y1: float  # bottom

    def overlaps(self, other: "TextBox") -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1


@dataclass
class NodeInfo:
    """One drawn node (input, block, MoE or head)."""

    id: str
    kind: str
    x: float
    y: float
    size: float  # marker diameter in px; area ∝ params
    params: int
    label: str  # escaped
    colour: str
    hover: str  # escaped HTML
    stage: int | None = None
    tasks: tuple[str, ...] = ()
    conditioning: str | None = None
    delta: float | None = None


@dataclass
class EdgeInfo:
    """One drawn edge: ``flow`` (solid), ``l2`` (dashed, width ~ log λ) or ``stitch`` (dotted)."""

    source: str
    target: str
    kind: str
    dash: str
    width: float
    label: str  # escaped; "" for flow edges
    hover: str
    xs: list[float] = field(default_factory=list)  # polyline (curved for soft edges)
    ys: list[float] = field(default_factory=list)
    lam: float | None = None
    weights: list[float] | None = None  # cross-stitch: learned mixing weights shown


@dataclass
class ExpertInfo:
    """One expert of an MoE node (a small square next to it)."""

    node: str
    index: int
    x: float
    y: float
    hover: str
    mean_gate: float | None  # mean over the node's tasks of this expert's gate weight


@dataclass
class TopologyInfo:
    """Everything :func:`topology_figure` draws, in data coordinates plus pixel sizes."""

    nodes: list[NodeInfo]
    edges: list[EdgeInfo]
    experts: list[ExpertInfo]
    task_order: list[str]
    font_size: int
    lane_px: float  # vertical pixels between two adjacent task lanes
    width: int
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    margin: dict[str, int]
    legend: list[tuple[str, str, str]]  # (name, colour, symbol) of the node kinds present
    delta_scale: float | None  # |Δ| for the full red/green; None when no Δ is known
    delta_split: str = "validation"  # the split the heads' Δ_t were measured on ("validation" or "test")
    soft: list[SoftStageInfo] = field(default_factory=list)  # soft links, one entry per stage that has them
    bars: BarColumn | None = None  # the heads' Δ_t bars; None when no Δ was given
    col_px: float = 150.0  # horizontal pixels per unit of x (one stage column)
    soft_font: int = 11  # font size of the soft-link labels

    def node(self, node_id: str) -> NodeInfo:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def edges_of(self, kind: str) -> list[EdgeInfo]:
        return [e for e in self.edges if e.kind == kind]

    def y_px(self, y: float) -> float:
        """Pixel row (from the figure's top) of data coordinate ``y``."""
        lo, hi = self.y_range
        inner = self.height - self.margin["t"] - self.margin["b"]
        return self.margin["t"] + (hi - y) / (hi - lo) * inner

    def x_px(self, x: float) -> float:
        """Pixel column (from the figure's left) of data coordinate ``x``."""
        lo, hi = self.x_range
        inner = self.width - self.margin["l"] - self.margin["r"]
        return self.margin["l"] + (x - lo) / (hi - lo) * inner

    def text_boxes(self) -> list[TextBox]:
        """Where every label, value and caption is drawn (estimated with :func:`~._common.text_px`).

        Plotly puts ``top center`` text above the marker and ``middle right``
        text right of it, a few pixels away; these boxes follow that rule, so
        a test can check that no two texts overlap.
        """
        out = []
        for n in self.nodes:
            w, h = text_px(n.label, self.font_size)
            x, y = self.x_px(n.x), self.y_px(n.y)
            if n.kind == "head":
                out.append(TextBox(n.kind, n.label, x + n.size / 2 + 2, x + n.size / 2 + 2 + w, y - h / 2, y + h / 2))
            else:
                out.append(TextBox(n.kind, n.label, x - w / 2, x + w / 2, y - n.size / 2 - h, y - n.size / 2))
        if self.bars is not None:
            for b in self.bars.bars:
                w, h = text_px(b.text, self.font_size)
                x, y = self.x_px(b.text_x), self.y_px(b.y)
                x0 = x if b.text_side == "right" else x - w
                out.append(TextBox("value", b.text, x0, x0 + w, y - h / 2, y + h / 2))
            w, h = text_px(self.bars.title, self.font_size)
            x, y = self.x_px(self.bars.zero), self.y_px(self.bar_title_y)
            out.append(TextBox("bar title", self.bars.title, x - w / 2, x + w / 2, y - h / 2, y + h / 2))
        for s in self.soft:
            w, h = text_px(s.label, self.soft_font)
            x, y = self.x_px(s.label_x), self.y_px(s.label_y)
            out.append(TextBox("soft", s.label, x - w / 2, x + w / 2, y, y + h))
        return out

    @property
    def bar_title_y(self) -> float:
        """The y of the bars' title: half-way between the first lane and the top of the plot."""
        return self.y_range[1] / 2 + 0.1


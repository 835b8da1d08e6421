"""The topology figure stays readable: Δ bars on the heads, soft links once per stage, no overlapping text."""

from __future__ import annotations

import itertools

import pytest

from sharesearch.figure import soft_groups, topology_figure, topology_info
from sharesearch.graph import SharingGraph
from sharesearch.plan import stitch_key, stitch_units

WIDTHS = [16, 12, 8, 8]
NAMES = ["click", "watch_time", "a_rather_long_task_name", "rating", "share", "comment", "x", "dwell_seconds",
         "skip", "like", "subscribe", "report_abuse"]


def bb(stages: int) -> dict:
    return {"name": "mlp", "input_shape": [6], "widths": WIDTHS[:stages]}


def tasks(n: int) -> dict[str, int]:
    return {t: 1 for t in NAMES[:n]}


def halves(ts: list[str]) -> str:
    h = len(ts) // 2
    return ",".join(ts[:h]) + "|" + ",".join(ts[h:])


def shapes():
    """(id, graph): 2..12 tasks, 1..4 stages, every kind of node and soft link."""
    out = []
    for n, stages in [(2, 1), (3, 2), (6, 3), (12, 4)]:
        t, ts = tasks(n), list(tasks(n))
        out += [(f"stitch-{n}x{stages}", SharingGraph.cross_stitch(t, bb(stages))),
                (f"l2-{n}x{stages}", SharingGraph.l2_soft(t, bb(stages), lam=0.01)),
                (f"shared-{n}x{stages}", SharingGraph.shared_bottom(t, bb(stages), max(1, stages - 1))),
                (f"mmoe-{n}x{stages}", SharingGraph.mmoe(t, bb(stages), experts=3))]
        if stages >= 2 and n >= 3:
            out.append((f"branched-{n}x{stages}", SharingGraph.from_partitions(
                t, bb(stages), [",".join(ts), halves(ts)], conditioning="film",
                l2=[0.0, 1e-3] + [0.0] * (stages - 2))))
    return out


SHAPES = shapes()


def deltas_of(graph: SharingGraph) -> dict[str, float | None]:
    """Gains, losses, a zero and an unknown: every kind of bar."""
    vals = [0.052, -0.031, None, -0.12, 0.0, 0.08, 0.5, -0.9, 0.011, -0.004, 0.2, -0.25]
    return dict(zip(graph.tasks, vals))


@pytest.mark.parametrize("gid,graph", SHAPES, ids=[s[0] for s in SHAPES])
@pytest.mark.parametrize("with_deltas,compact", [(True, False), (False, False), (True, True)],
                         ids=["deltas", "no-deltas", "compact"])
def test_no_two_texts_overlap(gid, graph, with_deltas, compact):
    stitch = {u.key: [[0.8 if i == j else 0.123 for j in u.tasks] for i in u.tasks] for u in stitch_units(graph)}
    info = topology_info(graph, deltas=deltas_of(graph) if with_deltas else None, delta_split="test", compact=compact,
                         stitch=stitch if with_deltas else None)
    boxes = info.text_boxes()
    kinds = {b.kind for b in boxes}
    assert {"input", "head"} <= kinds
    assert ("value" in kinds) == with_deltas and ("soft" in kinds) == bool(soft_groups(graph))
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    for b in boxes:  # every text inside the figure, clear of the title
        assert 0 <= b.x0 and b.x1 <= info.width and info.margin["t"] - 10 <= b.y0 and b.y1 <= info.height, b


@pytest.mark.parametrize("n", [2, 4, 6, 12])
def test_soft_links_are_one_trace_per_stage_not_per_pair(n):
    stages = 3
    g = SharingGraph.cross_stitch(tasks(n), bb(stages))
    info = topology_info(g)
    assert len(info.edges_of("stitch")) == stages * n * (n - 1) // 2  # every pair is still data
    assert [(s.stage, s.kind, s.n_pairs) for s in info.soft] == [(s, "stitch", n * (n - 1) // 2)
                                                                for s in range(stages)]
    fig = topology_figure(g)
    soft = [t for t in fig.data if t.name.startswith("cross-stitch")]
    assert len(soft) == 2 * stages  # a band and a label per stage, whatever the number of pairs
    bands = [t for t in soft if t.fill == "toself"]
    assert len(bands) == stages and all(t.line.dash == "dot" for t in bands)
    # the label is under the column, below every block: it covers no block label
    lowest = min(x.y for x in info.nodes if x.kind == "block")
    for s in info.soft:
        assert s.label_y < lowest and s.label_x == s.stage + 1
        assert s.lines[:2] == ["cross-stitch", f"{n * (n - 1) // 2} pair" + ("s" if n > 2 else "")]
        # the band frames exactly the stage's blocks (one rectangle: they are adjacent)
        ys = [y for y in s.band_ys if y is not None]
        assert s.band_xs.count(None) == 1 and min(ys) < lowest < max(ys)


def test_soft_label_and_hover_carry_the_values():
    t = tasks(4)
    g = SharingGraph.cross_stitch(t, bb(2))
    names = list(t)
    m = [[0.7, 0.1, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0], [0.3, 0.3, 0.3, 0.1]]
    info = topology_info(g, stitch={stitch_key(0, names): m})
    s0, s1 = info.soft
    off = [m[i][j] for i in range(4) for j in range(4) if i != j]
    assert s0.mean_off_diagonal == pytest.approx(sum(off) / len(off))
    assert s0.lines[-1] == "mean off-diag. 0.13" and s1.mean_off_diagonal is None and len(s1.lines) == 2
    pairs = [h for h in s0.hover.split("<br>")[3:]]  # title, counts, what α means, then the pairs
    assert sum(x.count("↔") for x in pairs) == 6 and "click ↔ watch_time α 0.1/0.2" in s0.hover
    # L2: λ in the label; differing λ within a stage shown as a range
    g2 = SharingGraph.from_partitions(t, bb(3), [], l2=[1e-3, 0.0, 0.1])
    info2 = topology_info(g2)
    assert [(s.stage, s.label) for s in info2.soft] == [(0, "L2 pull λ=0.001<br>6 pairs"),
                                                        (2, "L2 pull λ=0.1<br>6 pairs")]
    assert info2.soft[0].width < info2.soft[1].width  # outline grows with log λ


def test_soft_band_skips_a_block_that_is_not_linked():
    """L2 joins siblings of equal conditioning only: a single-task block between two FiLM blocks is left out."""
    t = {x: 1 for x in "abcde"}
    g = SharingGraph.from_partitions(t, bb(2), ["a,b,c,d,e", "a,b|c|d,e"], conditioning="film", l2=[0.0, 0.1])
    (grp,) = soft_groups(g)
    assert grp.blocks == ("s1:a+b", "s1:d+e") and grp.pairs == (("s1:a+b", "s1:d+e"),)
    (s,) = topology_info(g).soft
    assert s.band_xs.count(None) == 2  # two rectangles, none behind s1:c


def test_bars_follow_delta_and_name_the_split():
    g = SharingGraph.shared_bottom(tasks(4), bb(2), 1)
    d = {"click": 0.1, "watch_time": -0.05, "a_rather_long_task_name": None, "rating": 0.0}
    info = topology_info(g, deltas=d, delta_split="test")
    col = info.bars
    assert col.title == "Δ<sub>t</sub> on test"
    by = {b.task: b for b in col.bars}
    assert set(by) == set(g.tasks)
    length = {t: b.x1 - col.zero for t, b in by.items()}
    assert length["click"] == pytest.approx(-2 * length["watch_time"]) and length["click"] > 0
    assert length["a_rather_long_task_name"] == 0 == length["rating"]
    assert by["click"].colour == "rgb(44,160,44)" and by["watch_time"].colour == "rgb(214,39,40)"
    assert [by[t].text for t in d] == ["+10.00%", "-5.00%", "–", "0.00%"]
    # aligned with the heads, right of every head label
    heads = {x.tasks[0]: x for x in info.nodes if x.kind == "head"}
    assert all(by[t].y == heads[t].y for t in d)
    boxes = info.text_boxes()
    assert max(b.x1 for b in boxes if b.kind == "head") < info.x_px(col.zero) - 70  # a loss's bar and value fit
    assert "Δ_t on test = -5.00%" in by["watch_time"].hover
    # all gains: no room is kept left of the zero line
    gains = topology_info(g, deltas={t: 0.1 for t in g.tasks})
    assert gains.bars.zero < info.bars.zero and gains.width < info.width
    # no deltas: no bars, in the info or in the figure
    assert topology_info(g).bars is None
    assert not [t for t in topology_figure(g).data if t.type == "bar"]
    fig = topology_figure(g, d, delta_split="test")
    (bar,) = [t for t in fig.data if t.type == "bar"]
    assert bar.orientation == "h" and list(bar.base) == [col.zero] * 4

"""Tests of the topology figure's info function (positions, sizes, colours, labels)."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from sharesearch.figure import (
    CONDITIONING_COLOURS,
    MOE_COLOUR,
    delta_colour,
    small_multiples,
    task_order,
    topology_figure,
    topology_info,
)
from sharesearch.graph import SharingGraph
from sharesearch.network import compile_graph
from sharesearch.plan import stitch_key, stitch_units

BB = {"name": "mlp", "input_shape": [6], "widths": [16, 12, 8]}
HOSTILE = "<script>alert(1)</script>&\"'"


def rgb(c: str) -> tuple[int, int, int]:
    r, g, b = map(int, re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", c).groups())
    return r, g, b


def tasks(n: int) -> dict[str, int]:
    return {f"task_{i:02d}": 1 for i in range(n)}


def test_node_count_blocks_moe_heads_input():
    t = {"a": 1, "b": 3, "c": 1, "d": 2}
    g = SharingGraph.from_partitions(t, BB, ["a,b,c,d", "a,b|c,d"], moe=[3, 0, 0])
    info = topology_info(g)
    kinds = [n.kind for n in info.nodes]
    n_blocks = sum(1 for _, d in g.g.nodes(data=True) if d["kind"] == "block")
    n_moe = sum(1 for _, d in g.g.nodes(data=True) if d["kind"] == "moe")
    assert n_moe == 1 and n_blocks == 2 + 4
    assert kinds.count("block") == n_blocks and kinds.count("moe") == n_moe
    assert kinds.count("head") == 4 and kinds.count("input") == 1
    assert len(info.nodes) == g.g.number_of_nodes()
    assert len(info.experts) == 3  # the MoE's experts are drawn beside it, not as graph nodes
    assert len(info.edges_of("flow")) == sum(1 for *_, k in g.g.edges(data="kind") if k == "flow")


def test_node_sizes_monotone_in_parameters():
    bb = {"name": "mlp", "input_shape": [64], "widths": [128, 32, 4]}
    g = SharingGraph.from_partitions(tasks(3), bb, ["task_00,task_01,task_02"], conditioning="film")
    info = topology_info(g)
    ns = sorted((n for n in info.nodes if n.kind != "input"), key=lambda n: n.params)
    for a, b in itertools.pairwise(ns):
        assert a.size <= b.size
    # area ∝ params above the minimum size: the biggest node is strictly bigger than a stage-2 block
    big = max(ns, key=lambda n: n.params)
    small = info.node(g.node_of("task_00", 2))
    assert big.size > small.size
    assert big.params == g.node_params(big.id)
    assert big.size / info.node(g.node_of("task_00", 1)).size == pytest.approx(
        (big.params / g.node_params(g.node_of("task_00", 1))) ** 0.5, rel=1e-6)


@pytest.mark.parametrize("cond", ["none", "concat", "film", "gate"])
def test_colours_by_conditioning(cond):
    g = SharingGraph.from_partitions(tasks(3), BB, ["task_00,task_01,task_02", "task_00,task_01|task_02"],
                                     conditioning=cond)
    info = topology_info(g)
    shared = [n for n in info.nodes if n.kind == "block" and len(n.tasks) > 1]
    single = [n for n in info.nodes if n.kind == "block" and len(n.tasks) == 1]
    assert shared and all(n.colour == CONDITIONING_COLOURS[cond] for n in shared)
    assert all(n.colour == CONDITIONING_COLOURS["none"] for n in single)
    assert any(name.endswith(cond) or (cond == "none" and name == "block") for name, _, _ in info.legend)


def test_moe_colour_and_gate_weights():
    t = {"a": 1, "b": 1}
    g = SharingGraph.mmoe(t, BB, experts=2, moe_stages=1)
    (moe,) = [n for n in g.g.nodes if g.g.nodes[n]["kind"] == "moe"]
    info = topology_info(g, gates={moe: [[0.9, 0.1], [0.25, 0.75]]})
    node = info.node(moe)
    assert node.colour == MOE_COLOUR and "MoE×2" in node.label
    assert "a: 0.9 0.1<br>b: 0.25 0.75" in node.hover
    e0, e1 = sorted(info.experts, key=lambda e: e.index)
    assert e0.mean_gate == pytest.approx(0.575) and e1.mean_gate == pytest.approx(0.425)
    assert "a: 0.9" in e0.hover and "b: 0.25" in e0.hover
    # a gate matrix of the wrong shape is not guessed at
    bad = topology_info(g, gates={moe: [[1.0, 0.0, 0.0]]})
    assert all(e.mean_gate is None for e in bad.experts)


def test_l2_edges_dashed_and_width_grows_with_lambda():
    widths = []
    for lam in (1e-5, 1e-3, 1e-1, 10.0):
        info = topology_info(SharingGraph.l2_soft({"a": 1, "b": 1}, BB, lam=lam))
        l2 = info.edges_of("l2")
        assert len(l2) == 3  # one per stage
        assert all(e.dash == "dash" and e.lam == lam for e in l2)
        assert all(f"{lam:g}" in e.hover for e in l2)
        widths.append(l2[0].width)
    assert all(a < b for a, b in itertools.pairwise(widths)), widths
    assert all(e.dash == "solid" for e in info.edges_of("flow"))
    # soft edges are curves that leave the column (no straight line through the nodes in between)
    e = info.edges_of("l2")[0]
    assert max(e.xs) > e.xs[0]


def test_stitch_labels_show_given_weights():
    g = SharingGraph.cross_stitch({"a": 1, "b": 1, "c": 1}, BB)
    plain = topology_info(g)
    assert all(e.dash == "dot" and e.weights is None and e.label == "stitch" for e in plain.edges_of("stitch"))
    # one matrix per unit over the unit's tasks, keyed by the compiler's name (tensors or lists)
    sw = compile_graph(g, seed=0).stitch_weights()
    assert set(sw) == {stitch_key(s, ("a", "b", "c")) for s in range(3)}
    m0 = [[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]]
    sw[stitch_key(1, ("a", "b", "c"))] = m0
    info = topology_info(g, stitch=sw)
    assert all(e.weights is not None for e in info.edges_of("stitch"))
    e = next(e for e in info.edges_of("stitch") if (e.source, e.target) == ("s1:a", "s1:b"))
    assert e.weights == pytest.approx([0.15, 0.1])  # [α(a<-b), α(b<-a)]
    assert e.label == "α 0.15/0.1" and "learned weights: 0.15, 0.1" in e.hover
    e = next(e for e in info.edges_of("stitch") if (e.source, e.target) == ("s0:b", "s0:c"))
    assert e.weights == pytest.approx([0.05, 0.05])  # the compiler's initial off-diagonal 0.1 / (3 - 1)
    # only those names: anything else (an index, an edge, a guessable name) or a wrong size is an error
    for bad in ({0: m0}, {("s1:b", "s1:c"): [0.33, 0.44]}, {"stitch_2": m0}, {"stage1:a+b": m0}):
        with pytest.raises(ValueError, match="cross-stitch units are"):
            topology_info(g, stitch=bad)
    with pytest.raises(ValueError, match="3x3"):
        topology_info(g, stitch={stitch_key(2, ("a", "b", "c")): [[1.0, 0.0], [0.0, 1.0]]})


@pytest.mark.parametrize("seed", range(4))
def test_every_stitch_of_a_graph_is_found(seed):
    """Units of several stages, several units per stage, blocks that serve several tasks: every
    stitch edge gets the weights of its own unit, read straight from MultiTaskNet.stitch_weights()."""
    import torch

    t = {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
    full = SharingGraph.from_partitions(t, BB, ["a,b|c,d,e", "a|b|c,d|e", "a|b|c|d|e"],
                                        cross_stitch=[True, True, True])
    side = {"a": 0, "b": 0, "c": 1, "d": 1, "e": 1}
    d = json.loads(full.to_json())  # from stage 1 on, stitch only within {a, b} and within {c, d, e}
    d["edges"] = [e for e in d["edges"] if e["kind"] != "stitch" or e["source"].startswith("s0:")
                  or side[e["source"].split(":")[1][0]] == side[e["target"].split(":")[1][0]]]
    g = SharingGraph.from_json(json.dumps(d))
    net = compile_graph(g, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.stitches:
            m.alpha.copy_(torch.rand(m.alpha.shape, generator=gen))
    sw = net.stitch_weights()
    assert len(sw) == len(stitch_units(g)) == 5  # 1 unit at stage 0, 2 at stages 1 and 2
    info = topology_info(g, stitch=sw)
    stitches = info.edges_of("stitch")
    assert len(stitches) == sum(1 for *_, k in g.g.edges(data="kind") if k == "stitch") > 0
    for e in stitches:  # recompute each edge's weights from its unit's matrix
        (unit,) = [u for u in stitch_units(g) if u.stage == g.g.nodes[e.source]["stage"]
                   and g.g.nodes[e.source]["tasks"][0] in u.tasks]
        m = sw[unit.key]
        iu = [unit.tasks.index(x) for x in g.g.nodes[e.source]["tasks"]]
        iv = [unit.tasks.index(x) for x in g.g.nodes[e.target]["tasks"]]
        want = [float(m[iu][:, iv].mean()), float(m[iv][:, iu].mean())]
        assert e.weights == pytest.approx(want), (e.source, e.target)


def test_head_colours_follow_delta_with_interval_in_hover():
    g = SharingGraph.shared_bottom({"up": 1, "down": 1, "unk": 1}, BB, 2)
    info = topology_info(g, deltas={"up": 0.05, "down": -0.10, "unk": None},
                         delta_ci={"up": (0.01, 0.09), "down": (-0.2, "-inf")})
    up, down, unk = info.node("head:up"), info.node("head:down"), info.node("head:unk")
    r, gr, b = rgb(up.colour)
    assert gr > r and gr > b  # green: a gain
    r, gr, b = rgb(down.colour)
    assert r > gr and r > b  # red: negative transfer
    r, gr, b = rgb(unk.colour)
    assert r == gr == b  # grey: unknown
    # Δ as sharesearch.fmt writes it everywhere: signed percentage, two decimals, ASCII signs
    assert "Δ_t (validation) = +5.00% [+1.00%, +9.00%]" in up.hover and "gain" in up.hover and up.label == "up"
    bars = {b.task: b for b in info.bars.bars}  # the value is written beside each head's bar
    assert (bars["up"].text, bars["down"].text, bars["unk"].text) == ("+5.00%", "-10.00%", "–")
    assert "Δ_t (validation) = -10.00% [-20.00%, -∞]" in down.hover and "negative transfer" in down.hover
    assert "unknown" in unk.hover
    fig = topology_figure(g, {"up": 0.05}, delta_split="test")  # the split the Δ were measured on is named
    head = next(t for t in fig.data if t.name == "head")
    assert any("Δ_t (test) = +5.00%" in h for h in head.hovertext)
    assert [t.text for t in fig.data if t.name == "Δ_t title"] == [("Δ<sub>t</sub> on test",)]
    assert delta_colour(0.0) == delta_colour(0.0, 5.0) and rgb(delta_colour(0.0))[0] == rgb(delta_colour(0.0))[1]
    # the stronger effect gets the stronger colour
    assert rgb(delta_colour(-0.5, 1.0))[0] < rgb(delta_colour(-1.0, 1.0))[0] or \
        rgb(delta_colour(-0.5, 1.0))[1] > rgb(delta_colour(-1.0, 1.0))[1]


def test_task_order_keeps_siblings_together_and_flow_edges_do_not_cross():
    t = {x: 1 for x in "abcdef"}
    g = SharingGraph.from_partitions(t, BB, ["a,b,c,d,e,f", "a,d,f|b,e|c", "a,f|d|b,e|c"])
    order = task_order(g)
    pos = {x: i for i, x in enumerate(order)}
    for p in g.partitions():
        for grp in p:
            ls = sorted(pos[x] for x in grp)
            assert ls == list(range(ls[0], ls[0] + len(ls)))  # contiguous
    info = topology_info(g)
    flow = info.edges_of("flow")
    for e1, e2 in itertools.combinations(flow, 2):
        if e1.xs[0] != e2.xs[0] or e1.source == e2.source:
            continue
        assert (e1.ys[0] - e2.ys[0]) * (e1.ys[1] - e2.ys[1]) > 0, (e1.source, e1.target, e2.source, e2.target)


@pytest.mark.parametrize("n", [2, 20])
def test_readable_from_2_to_20_tasks(n):
    g = SharingGraph.from_partitions(tasks(n), BB, [",".join(tasks(n))], l2=[0.0, 1e-3, 0.0])
    info = topology_info(g, deltas={t: (i - n / 2) / n for i, t in enumerate(tasks(n))})
    heads = sorted((x for x in info.nodes if x.kind == "head"), key=lambda x: -x.y)
    assert len({(h.x, h.y) for h in heads}) == n
    px = [info.y_px(h.y) for h in heads]
    gaps = [b - a for a, b in itertools.pairwise(px)]
    # head labels sit beside their marker: a lane must fit the text and the marker
    assert min(gaps) >= 1.2 * info.font_size
    assert min(gaps) >= max(h.size for h in heads)
    assert 9 <= info.font_size <= 13
    # labels stay short whatever the task count: a 20-task trunk says "all 20"
    trunk = info.node(g.node_of("task_00", 0))
    assert len(trunk.label) <= 20
    if n == 20:
        assert trunk.label == "all 20" and "task_19" in trunk.hover
        assert info.font_size < topology_info(SharingGraph.independent(tasks(2), BB)).font_size
        # blocks of one column do not overlap either: markers plus label above them fit in a lane
        col = sorted((x for x in info.nodes if x.kind == "block" and x.stage == 2), key=lambda x: -x.y)
        gaps = [info.y_px(b.y) - info.y_px(a.y) for a, b in itertools.pairwise(col)]
        assert min(gaps) >= max(x.size for x in col) / 2 + 1.2 * info.font_size
    fig = topology_figure(g)
    assert fig.layout.height == info.height and fig.layout.height >= 300


def test_figure_traces_carry_info():
    g = SharingGraph.l2_soft({"a": 1, "b": 1}, BB, lam=0.01)
    info = topology_info(g)
    fig = topology_figure(g, deltas={"a": 0.1, "b": -0.1}, title="T")
    heads = next(t for t in fig.data if t.name == "head")
    assert list(heads.text)[0].startswith("a")
    dashed = [t for t in fig.data if t.type == "scatter" and t.mode == "lines" and t.line.dash == "dash"]
    assert len(dashed) == len(info.soft) == g.n_stages  # one L2 band per stage
    (bar,) = [t for t in fig.data if t.type == "bar"]  # Δ as bars, green gain / red loss
    assert list(bar.y) == [0, -1] and list(bar.marker.color) == [delta_colour(1.0), delta_colour(-1.0)]
    # no template: hover text is plain text, not a hovertemplate that could interpret %{...}
    assert all(t.hovertemplate is None for t in fig.data)


def test_small_multiples_one_subplot_per_graph():
    t = {"a": 1, "b": 1, "c": 1}
    named = [("shared bottom", SharingGraph.shared_bottom(t, BB), None),
             ("independent", SharingGraph.independent(t, BB), {"deltas": {"a": 0.0}}),
             ("mmoe", SharingGraph.mmoe(t, BB), None),
             ("cross-stitch", SharingGraph.cross_stitch(t, BB), None),
             (HOSTILE, SharingGraph.l2_soft(t, BB), None)]
    fig = small_multiples(named, cols=3)
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == 5
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;\"'" in titles
    xaxes = {t.xaxis for t in fig.data}
    assert len(xaxes) == 5
    assert sum(1 for t in fig.data if t.showlegend is not False and t.x == (None,)) >= 1
    with pytest.raises(ValueError):
        small_multiples([])


def test_task_names_are_escaped_in_labels_and_hover():
    g = SharingGraph.shared_bottom({HOSTILE: 1, "b&b": 1}, BB, 1)
    info = topology_info(g, deltas={HOSTILE: -0.2}, delta_ci={HOSTILE: (-0.3, -0.1)})
    texts = [n.label for n in info.nodes] + [n.hover for n in info.nodes] + [e.hover for e in info.edges]
    assert not any("<script" in s or "b&b" in s for s in texts)
    head = info.node(f"head:{HOSTILE}")
    assert head.hover.startswith("<b>head of &lt;script&gt;alert(1)&lt;/script&gt;&amp;\"'</b>")
    assert "b&amp;b" in info.node("head:b&b").label
    fig = topology_figure(g, title=HOSTILE)
    for tr in fig.data:
        for s in list(tr.text or ()) + list(tr.hovertext or ()):
            assert "<script" not in s
    assert "<script" not in fig.layout.title.text


def test_figure_imports_no_torch():
    """The figure reads stitch names from the torch-free plan module, so drawing needs no torch."""
    import subprocess
    import sys

    code = "import sys, sharesearch.figure; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0

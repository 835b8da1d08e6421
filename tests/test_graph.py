"""SharingGraph: hand-counted parameters, JSON/canonical identity, rejected graphs.

``graphs()`` is the hypothesis strategy of valid sharing graphs across every
mechanism; tests/test_network.py reuses it to compile them.
"""

from __future__ import annotations

import copy

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharesearch.graph import CONDITIONINGS, GraphError, SharingGraph

NAMES = ["a", "b.x", "c", "d"]  # a dotted name: nothing may assume names are identifiers


@st.composite
def nested_partitions(draw, tasks: list[str], n_stages: int) -> list[list[list[str]]]:
    """A random tree of task partitions, each stage refining the one before."""
    groups = [list(tasks)]
    out = []
    for _ in range(n_stages):
        new = []
        for grp in groups:
            labels = [draw(st.integers(0, 2)) for _ in grp]
            for lab in sorted(set(labels)):
                new.append([t for t, x in zip(grp, labels) if x == lab])
        groups = new
        out.append(groups)
    return out


@st.composite
def graphs(draw, max_tasks: int = 4) -> SharingGraph:
    """Valid graphs: nested partitions, per-stage conditioning / l2 / cross-stitch / MoE,
    MLP or CNN, one-hot or metadata z, 1-4 tasks with mixed out_dims."""
    n = draw(st.integers(1, max_tasks))
    tasks = {NAMES[i]: draw(st.integers(1, 3)) for i in range(n)}
    L = draw(st.integers(1, 3))
    if draw(st.booleans()):
        bb = {"name": "mlp", "input_shape": [draw(st.integers(2, 5))],
              "widths": [draw(st.integers(2, 5)) for _ in range(L)], "dropout": draw(st.sampled_from([0.0, 0.2]))}
    else:
        bb = {"name": "cnn", "input_shape": [draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(2, 5))],
              "widths": [draw(st.integers(2, 4)) for _ in range(L)], "kernel": draw(st.sampled_from([1, 3]))}
    parts = draw(nested_partitions(list(tasks), L))
    emb = "onehot"
    if draw(st.booleans()):
        k = draw(st.integers(1, 3))
        emb = {t: [draw(st.floats(-2, 2)) for _ in range(k)] for t in tasks}
    soft = [draw(st.sampled_from(["none", "l2", "stitch"])) for _ in range(L)]  # one soft link kind per stage
    return SharingGraph.from_partitions(
        tasks, bb, parts,
        conditioning=[draw(st.sampled_from(CONDITIONINGS)) for _ in range(L)],
        l2=[0.1 if k == "l2" else 0.0 for k in soft],
        cross_stitch=[k == "stitch" for k in soft],
        moe=[draw(st.sampled_from([0, 0, 1, 2, 3])) for _ in range(L)],
        expert_dropout=draw(st.sampled_from([0.0, 0.5])),
        task_embedding=emb,
    )


MLP = {"name": "mlp", "input_shape": [4], "widths": [8, 2]}
TASKS = {"a": 1, "b": 3}


# ------------------------------------------------------------ hand counts
def test_n_params_hand_counts_mlp():
    heads = (2 * 1 + 1) + (2 * 3 + 3)  # a: Linear(2->1); b: Linear(2->3)   = 12
    stage0 = 4 * 8 + 8  # Linear(4->8)                                      = 40
    stage1 = 8 * 2 + 2  # Linear(8->2)                                      = 18
    assert SharingGraph.shared_bottom(TASKS, MLP, 1).n_params() == stage0 + 2 * stage1 + heads == 88
    assert SharingGraph.independent(TASKS, MLP).n_params() == 2 * stage0 + 2 * stage1 + heads == 128
    z = 2  # one-hot descriptor of 2 tasks
    film = z * 2 * 8 + 2 * 8  # Linear(z -> 2*width)                        = 48
    gate = z * 8 + 8  # Linear(z -> width)                                  = 24
    concat = (4 + z) * 8 + 8 - stage0  # wider input                        = 16
    for cond, extra in (("film", film), ("gate", gate), ("concat", concat), ("none", 0)):
        g = SharingGraph.shared_bottom(TASKS, MLP, 1, conditioning=cond)
        assert g.n_params() == 88 + extra, cond
    moe = 3 * stage0 + 2 * (4 * 3 + 3)  # 3 experts + a gate Linear(4->3) per task = 150
    assert SharingGraph.mmoe(TASKS, MLP, experts=3).n_params() == moe + 2 * stage1 + heads == 198
    stitch = 2 * 2**2  # a 2x2 matrix after each of the 2 stages
    assert SharingGraph.cross_stitch(TASKS, MLP).n_params() == 128 + stitch == 136
    assert SharingGraph.l2_soft(TASKS, MLP, lam=0.1).n_params() == 128  # l2 adds a loss, no parameters


def test_n_params_hand_counts_cnn():
    cnn = {"name": "cnn", "input_shape": [3, 8, 8], "widths": [4, 6], "kernel": 3}
    conv0 = 3 * 4 * 3 * 3 + 4  # Conv(3->4, 3x3)   = 112
    conv1 = 4 * 6 * 3 * 3 + 6  # Conv(4->6, 3x3)   = 222
    head = 6 * 1 + 1  # Linear(6 pooled channels -> 1) = 7
    assert SharingGraph.shared_bottom({"a": 1, "b": 1}, cnn, 1).n_params() == conv0 + 2 * conv1 + 2 * head == 570
    concat0 = (3 + 2) * 4 * 9 + 4  # z broadcast as 2 extra input channels = 184
    g = SharingGraph.shared_bottom({"a": 1, "b": 1}, cnn, 1, conditioning="concat")
    assert g.n_params() == concat0 + 2 * conv1 + 2 * head == 642


def test_flops_film_block_runs_once_per_stream():
    """A film block whose tasks share one input computes the block once."""
    bb = {"name": "mlp", "input_shape": [4], "widths": [8]}
    plain = SharingGraph.shared_bottom(TASKS, bb).flops()
    film = SharingGraph.shared_bottom(TASKS, bb, conditioning="film").flops()
    assert film - plain == 2 * 8 * 2  # only the per-task scale-and-shift of 8 features, for 2 tasks
    concat = SharingGraph.shared_bottom(TASKS, bb, conditioning="concat").flops()
    # concat inputs differ: the (wider) block runs once per task instead of once
    assert concat - plain == 2 * (2 * (4 + 2) * 8) - 2 * 4 * 8


# ------------------------------------------------------------ identity
@settings(max_examples=30, deadline=None)
@given(graphs())
def test_json_round_trip_is_identity(g):
    back = SharingGraph.from_json(g.to_json())
    assert back == g and back.key() == g.key() and back.to_json() == g.to_json()
    assert back.n_params() == g.n_params() and back.flops() == g.flops()
    assert back.partitions() == g.partitions()


@settings(max_examples=30, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_relabelled_graph_is_canonically_equal(g, rnd):
    ids = [n for n in g.g.nodes if g.g.nodes[n]["kind"] in ("block", "moe")]
    new = [f"node{i}" for i in range(len(ids))]
    rnd.shuffle(new)
    h = nx.relabel_nodes(g.g, dict(zip(ids, new)), copy=True)
    shuffled = nx.DiGraph(**h.graph)  # also another insertion order of nodes and edges
    nodes = list(h.nodes(data=True))
    rnd.shuffle(nodes)
    shuffled.add_nodes_from(nodes)
    edges = list(h.edges(data=True))
    rnd.shuffle(edges)
    shuffled.add_edges_from(edges)
    other = SharingGraph(shuffled)
    assert other == g and other.key() == g.key() and hash(other) == hash(g)
    assert other.canonical().to_json() == g.to_json()


def test_group_order_does_not_matter():
    tasks = {"a": 1, "b": 1, "c": 2}
    bb = {"name": "mlp", "input_shape": [4], "widths": [4, 4]}
    g1 = SharingGraph.from_partitions(tasks, bb, ["a,b|c", "a|b|c"], l2=0.1)
    g2 = SharingGraph.from_partitions(tasks, bb, ["c|b,a", "c|b|a"], l2=0.1)
    assert g1 == g2 and g1.key() == g2.key() and hash(g1) == hash(g2)
    g3 = SharingGraph.from_partitions(tasks, bb, ["a,c|b", "a|b|c"], l2=0.1)
    assert g3 != g1 and g3.key() != g1.key()


# ------------------------------------------------------------ rejection
def _graph(**kw) -> nx.DiGraph:
    bb = {"name": "mlp", "input_shape": [4], "widths": [4, 4]}
    return copy.deepcopy(SharingGraph.from_partitions({"a": 1, "b": 1}, bb, ["a,b"], **kw).g)


def test_rejects_cycle():
    g = _graph()
    g.add_edge("head:a", "s0:a+b", kind="flow")
    with pytest.raises(GraphError, match="cycle"):
        SharingGraph(g)


def test_rejects_task_without_head():
    g = _graph()
    g.remove_node("head:b")
    with pytest.raises(GraphError, match="'b' has no head"):
        SharingGraph(g)


def test_rejects_partition_that_does_not_refine():
    bb = {"name": "mlp", "input_shape": [4], "widths": [4, 4]}
    with pytest.raises(GraphError, match="does not refine"):
        SharingGraph.from_partitions({"a": 1, "b": 1, "c": 1}, bb, ["a|b,c", "a,b|c"])
    g = SharingGraph.from_partitions({"a": 1, "b": 1, "c": 1}, bb, ["a|b,c", "a|b,c"]).g
    g = copy.deepcopy(g)  # move b's stage-1 block under a's stage-0 block
    g.remove_edge("s0:b+c", "s1:b+c")
    g.add_edge("s0:a", "s1:b+c", kind="flow")
    with pytest.raises(GraphError, match="does not refine"):
        SharingGraph(g)


def test_rejects_negative_lambda():
    bb = {"name": "mlp", "input_shape": [4], "widths": [4]}
    g = copy.deepcopy(SharingGraph.l2_soft({"a": 1, "b": 1}, bb, lam=0.1).g)
    g.edges["s0:a", "s0:b"]["lam"] = -0.5
    with pytest.raises(GraphError, match="'lam' must be a finite number >= 0"):
        SharingGraph(g)


def test_rejects_unknown_conditioning():
    with pytest.raises(GraphError, match="unknown conditioning 'xfilm'"):
        _graph(conditioning="xfilm")


def test_rejects_moe_without_experts():
    g = _graph(moe=[2, 0])
    g.nodes["s0:a+b"]["experts"] = 0
    with pytest.raises(GraphError, match="at least one expert"):
        SharingGraph(g)


def test_deeply_nested_json_is_a_graph_error_not_a_recursion_error():
    with pytest.raises(GraphError, match="nested too deeply"):
        SharingGraph.from_json("[" * 100_000 + "]" * 100_000)

"""Leave-one-task-out transfer (issue 15): graph surgery, frozen trunks, k rows, and the planted gain."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sharesearch.data import load_data
from sharesearch.errors import SharesearchError
from sharesearch.graph import GraphError, SharingGraph, share_partitions
from sharesearch.training import TrainConfig
from sharesearch.transfer import (TransferConfig, TransferPoint, TransferResult, attach_point, drop_task,
                                  few_shot_view, fit, k_rows, train_trunk, transfer_curve, transferability,
                                  warm_network, with_task)

BB = {"name": "mlp", "input_shape": [6], "widths": [8, 8, 4]}


def _groups(parts):
    return [{frozenset(g) for g in p} for p in parts]


@st.composite
def trees(draw):
    n = draw(st.integers(2, 6))
    tasks = [f"t{i}" for i in range(n)]
    depths = {(a, b): draw(st.integers(0, 3)) for i, a in enumerate(tasks) for b in tasks[i + 1:]}
    parts = share_partitions(tasks, depths, 3)
    kw = draw(st.sampled_from([{}, {"moe": [3, 0, 0]}, {"conditioning": "film"}, {"l2": 0.1}, {"cross_stitch": True}]))
    return SharingGraph.from_partitions({t: 1 + i % 2 for i, t in enumerate(tasks)}, BB, parts, **kw), draw(
        st.sampled_from(tasks))


@settings(max_examples=60, deadline=None)
@given(trees())
def test_drop_task_removes_the_task_and_its_empty_blocks_only(case):
    g, task = case
    r = drop_task(g, task)
    assert r.tasks == tuple(t for t in g.tasks if t != task)
    want = [{frozenset(grp - {task}) for grp in p if grp - {task}} for p in _groups(g.partitions())]
    assert _groups(r.partitions()) == want
    assert r.n_params() == g.n_params() - sum(g.node_params(n) for n in g.g if g.g.nodes[n].get("tasks") == (task,)) \
        - g.node_params(g.head(task)) - _gate_params(g, task) - _z_params(g, r) - _stitch_params(g, r)
    at = attach_point(r, full=g, task=task)
    back = with_task(r, task, g.g.nodes[g.head(task)]["out_dim"], at)
    if at.rule == "topology":  # the task shared a stage: it goes back to the topology's own position
        assert _groups(back.partitions()) == _groups(g.partitions())
    else:  # it shared nothing: it joins the trunk root
        assert max(g.share_depth(task, t) for t in g.tasks if t != task) == 0 and at.rule == "trunk root"


def _gate_params(g, task):
    """Parameters of ``task``'s MMoE gates (they go with the task)."""
    bb = g.backbone
    return sum(bb.in_features(d["stage"]) * d["experts"] + d["experts"]
               for _, d in g.g.nodes(data=True) if d["kind"] == "moe" and task in d["tasks"] and len(d["tasks"]) > 1)


def _z_params(g, r):
    """FiLM maps shrink with the one-hot descriptor (z_dim T -> T-1)."""
    films = [d for _, d in r.g.nodes(data=True) if d.get("conditioning") == "film"]
    return sum(2 * g.backbone.out_features(d["stage"]) for d in films) * (g.z_dim - r.z_dim)


def _stitch_params(g, r):
    return sum(len(c) ** 2 for c in g.stitch_components()) - sum(len(c) ** 2 for c in r.stitch_components())


def test_drop_task_refuses_unknown_and_last_tasks():
    g = SharingGraph.shared_bottom({"a": 1, "b": 1}, BB)
    with pytest.raises(GraphError, match="unknown task 'z'"):
        drop_task(g, "z")
    with pytest.raises(GraphError, match="only task"):
        drop_task(drop_task(g, "a"), "b")


def test_attach_rule_closeness_then_topology_then_root():
    g = SharingGraph.from_partitions({t: 1 for t in "abcde"}, BB, ["a,b,c|d,e", "a,b|c|d,e"])
    r = drop_task(g, "c")
    assert attach_point(r, full=g, task="c").node == "s0:a+b"  # c shared one stage with a and b
    assert attach_point(r, {"d": 1.0, "e": 0.5}).node == "s1:d+e"  # the deepest shared node of the closest group (stage 2 is per task)
    root = attach_point(r, {"a": -1.0})
    assert (root.rule, root.node) == ("trunk root", "s0:a+b")  # no node serves all: the largest stage-0 node
    assert attach_point(SharingGraph.shared_bottom({t: 1 for t in "ab"}, BB)).node == "s2:a+b"


@pytest.fixture(scope="module")
def small():
    return load_data("synthetic-mmoe", n=300, d=6, seed=0, clusters=[[0, 1], [2]], kind=["regression", "binary", "regression"])


def test_k_rows_are_seeded_labelled_training_rows(small):
    d = load_data("synthetic-mmoe", n=400, d=8, seed=1, labelled=0.5)
    rows = k_rows(d, "t1", 30, seed=3)
    assert len(rows) == 30 and len(set(rows.tolist())) == 30
    assert bool((d.split[rows] == 0).all()) and not bool(torch.isnan(d.y[rows, 1]).any())
    assert torch.equal(rows, k_rows(d, "t1", 30, seed=3)) and not torch.equal(rows, k_rows(d, "t1", 30, seed=4))
    everything = k_rows(d, "t1", None, seed=0)
    assert len(everything) == d.labelled_counts("train")["t1"] and torch.equal(k_rows(d, "t1", 10**6, 0), everything)
    view = few_shot_view(d, "t1", rows)
    assert view.labelled_counts("train") == {"t1": 30}
    assert view.labelled_counts("val") == {"t1": d.labelled_counts("val")["t1"]}
    with pytest.raises(SharesearchError, match="'ks'"):
        k_rows(d, "t1", 0, seed=0)


@pytest.mark.parametrize("kw", [{}, {"moe": [3, 0, 0]}, {"conditioning": "film"}])
def test_frozen_trunk_stays_frozen_and_starts_as_trained(small, kw):
    g = SharingGraph.from_partitions(small.tasks, BB, ["t0,t1,t2", "t0,t1|t2"], **kw)
    r = drop_task(g, "t1")
    trunk, _ = train_trunk(r, small, TrainConfig(max_steps=10, batch_size=64, seed=0))
    w = warm_network(with_task(r, "t1", 1, attach_point(r, full=g, task="t1")), trunk, "t1", "frozen", seed=0)
    x = small.x[:16]
    with torch.no_grad():
        old, new = trunk(x), w.net(x, tasks=r.tasks)
    assert all(torch.allclose(old[t], new[t]) for t in r.tasks)  # the trunk's weights were copied in
    assert w.descriptor == ("conditioning" in kw)
    before = {n: p.detach().clone() for n, p in w.net.named_parameters()}
    trained = {id(p) for p in w.params}
    view = few_shot_view(small, "t1", k_rows(small, "t1", 20, 0))
    fit(lambda: (w.net, w.params), view, "t1", TransferConfig(steps=5, eval_every=5, lr_grid=(1e-2,)), seed=0)
    after = dict(w.net.named_parameters())
    frozen = [n for n, p in after.items() if id(p) not in trained]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)
    assert any(not torch.equal(before[n], after[n]) for n, p in after.items() if id(p) in trained)
    with torch.no_grad():
        assert all(torch.allclose(old[t], w.net(x, tasks=r.tasks)[t]) for t in r.tasks)  # old tasks untouched
    if w.descriptor:  # only the new task's descriptor row learned
        z = after["z"]
        assert torch.equal(z[:-1], before["z"][:-1]) and not torch.equal(z[-1], before["z"][-1])


def test_points_records_holm_and_score_round_trip():
    pts = [TransferPoint.of("sb", "t", k, k, "frozen", "auc", "maximize", [0.8, 0.82, 0.79], [0.6, 0.61, 0.6])
           for k in (10, 100)]
    assert all(p.low > 0 and p.p < 0.05 for p in pts)
    res = TransferResult.combine([TransferResult((), tuple(pts), (0, 1, 2))])
    assert all(p.p_holm >= p.p for p in res.points)
    assert TransferResult.from_dict(res.to_dict()) == res
    tie = TransferPoint.of("sb", "t", 10, 10, "frozen", "rmse", "minimize", [1.0, 1.0], [1.0, 1.0])
    assert tie.gain == 0 and math.isnan(tie.p)
    assert transferability(pts) == pytest.approx(pts[0].gain / 2 + pts[1].gain / 2)


def test_a_cluster_task_gains_from_its_cluster_trunk_and_the_unrelated_task_does_not():
    """Planted clusters [t0 t1 t2] [t3 t4] [t5]: t1 held out of the planted tree joins its cluster's block and
    gains at k = 30 (interval above 0); t5 joins at the trunk root and does not (interval reaches 0 or below)."""
    d = load_data("synthetic-planted", seed=0)
    bb = {"name": "mlp", "input_shape": list(d.input_shape), "widths": [32, 32, 16]}
    g = SharingGraph.from_partitions(d.tasks, bb, ["t0,t1,t2|t3,t4|t5"] * 2)
    tc = TrainConfig(max_steps=300, eval_every=50, batch_size=64, lr=3e-3, device="cpu")
    cfg = TransferConfig(steps=100, eval_every=20, lr_grid=(3e-3, 1e-2))
    res = TransferResult.combine([transfer_curve(g, d, t, ks=(30,), seeds=(0, 1, 2), train_config=tc,
                                                 mode=("frozen",), config=cfg, cache={}) for t in ("t1", "t5")])
    (cluster,) = res.curve_points("topology", "t1", "frozen")
    (unrelated,) = res.curve_points("topology", "t5", "frozen")
    assert [c.attach_rule for c in res.curves] == ["topology", "trunk root"]
    assert cluster.low > 0, cluster
    assert unrelated.low <= 0, unrelated

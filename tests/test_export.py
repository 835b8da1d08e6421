"""Tests of the graph exports (GraphML, DOT, Mermaid) and the model save/load round trip."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import networkx as nx
import pytest
import torch

from sharesearch.export import (
    GRAPH_FILE,
    MODEL_FILE,
    TASKS_FILE,
    ModelFolderError,
    load_model,
    predict,
    save_model,
    to_dot,
    to_graphml,
    to_json,
    to_mermaid,
)
from sharesearch.graph import SharingGraph
from sharesearch.tasks import TaskSpec

BB = {"name": "mlp", "input_shape": [5], "widths": [8, 6]}
ODD = 'we"ird <n>&a|m#e`\\x'
TASKS = {"a": 1, ODD: 3, "c": 1}


def graphs() -> list[SharingGraph]:
    return [
        SharingGraph.from_partitions(TASKS, BB, [[["a", ODD, "c"]], [["a", ODD], ["c"]]], conditioning="film"),
        SharingGraph.mmoe(TASKS, BB, experts=3),
        SharingGraph.cross_stitch(TASKS, BB),
        SharingGraph.l2_soft(TASKS, BB, lam=0.01),
    ]


@pytest.mark.parametrize("g", graphs(), ids=["branched", "mmoe", "stitch", "l2"])
def test_graphml_reads_back_with_same_nodes_and_edges(g, tmp_path):
    p = to_graphml(g, tmp_path / "g.graphml")
    h = nx.read_graphml(p)
    assert set(h.nodes) == set(g.g.nodes)
    assert {(u, v) for u, v in h.edges} == {(u, v) for u, v in g.canonical().g.edges}
    for n, d in g.g.nodes(data=True):
        assert h.nodes[n]["kind"] == d["kind"]
        if "tasks" in d:
            assert json.loads(h.nodes[n]["tasks"]) == list(d["tasks"])
    for u, v, d in g.canonical().g.edges(data=True):
        assert h.edges[u, v]["kind"] == d["kind"]
        if d["kind"] == "l2":
            assert h.edges[u, v]["lam"] == pytest.approx(d["lam"])
    assert json.loads(h.graph["backbone"]) == g.backbone.to_dict()
    back = SharingGraph.from_json(to_json(g))
    assert dict(back.g.nodes(data=True)) == dict(g.canonical().g.nodes(data=True))
    assert {(u, v, d["kind"]) for u, v, d in back.g.edges(data=True)} == \
        {(u, v, d["kind"]) for u, v, d in g.canonical().g.edges(data=True)}


def _dot_unquote(s: str) -> str:
    return re.sub(r'\\(.)', r"\1", s)


@pytest.mark.parametrize("g", graphs(), ids=["branched", "mmoe", "stitch", "l2"])
def test_dot_has_every_node_and_edge_quoted(g):
    dot = to_dot(g)
    assert dot.startswith("digraph sharing_graph {") and dot.rstrip().endswith("}")
    # every quoted string is well formed: drop them all and no quote is left over
    quoted = re.findall(r'"((?:[^"\\]|\\.)*)"', dot)
    assert '"' not in re.sub(r'"(?:[^"\\]|\\.)*"', "", dot)
    ids = {_dot_unquote(q) for q in quoted}
    assert set(g.g.nodes) <= ids
    edges = re.findall(r'"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)"', dot)
    got = {(_dot_unquote(u), _dot_unquote(v)) for u, v in edges}
    flows = {(u, v) for u, v, k in g.g.edges(data="kind") if k == "flow"}
    # soft links: one labelled note per stage, tied to each linked block, instead of a labelled edge per pair
    notes = {}
    for s in range(g.n_stages):
        linked = {n for u, v, d in g.g.edges(data=True) if d["kind"] != "flow" and g.g.nodes[u]["stage"] == s
                  for n in (u, v)}
        if linked:
            notes[f"soft links stage {s}"] = linked
    assert got == flows | {(note, n) for note, linked in notes.items() for n in linked}
    assert len(edges) == len(got) and len(notes) == (g.n_stages if g.soft_edges("l2") or g.soft_edges("stitch")
                                                     else 0)
    assert dot.count("shape=note") == len(notes) and len(re.findall(r"\d+ pairs?\)", dot)) == len(notes)
    assert '"head:we\\"ird <n>&a|m#e`\\\\x"' in dot  # quote and backslash escaped
    if g.soft_edges("l2"):
        assert "style=dashed" in dot and "l2 λ=0.01 (3 blocks, 3 pairs)" in dot
    if g.soft_edges("stitch"):
        assert "style=dotted" in dot and "cross-stitch (3 blocks, 3 pairs)" in dot


@pytest.mark.parametrize("g", graphs(), ids=["branched", "mmoe", "stitch", "l2"])
def test_mermaid_has_every_node_and_edge_with_safe_ids(g):
    mm = to_mermaid(g)
    lines = mm.splitlines()
    assert lines[0] == "flowchart LR"
    node_lines = [ln for ln in lines[1:] if re.match(r"\s+n\d+[\[\(\{]", ln)]
    edge_lines = [ln for ln in lines[1:] if re.match(r"\s+n\d+ -->", ln)]
    note_lines = [ln for ln in lines[1:] if re.match(r"\s+soft\d+>", ln)]
    tie_lines = [ln for ln in lines[1:] if re.match(r"\s+soft\d+ -\.- n\d+$", ln)]
    assert len(node_lines) == g.g.number_of_nodes()
    assert len(edge_lines) == sum(1 for *_, k in g.g.edges(data="kind") if k == "flow")
    # soft links: one note per stage tied to its linked blocks, not one labelled edge per pair
    soft = g.soft_edges("l2") + g.soft_edges("stitch")
    assert len(note_lines) == (g.n_stages if soft else 0)
    assert len(tie_lines) == len({(g.g.nodes[u]["stage"], n) for u, v, _ in soft for n in (u, v)})
    assert all(re.search(r'"stage \d+: (cross-stitch|l2 λ=0.01) \(3 blocks, 3 pairs\)"', ln) for ln in note_lines)
    assert len(node_lines) + len(edge_lines) + len(note_lines) + len(tie_lines) == len(lines) - 1
    # the hostile name appears only as entity codes inside quoted labels
    for ln in node_lines + edge_lines + note_lines + tie_lines:
        labels = re.findall(r'"([^"]*)"', ln)
        rest = re.sub(r'"[^"]*"', "", ln).replace("-->", "").replace("-.-", "")
        rest = re.sub(r"^\s+soft\d+>", "", rest)  # the note's own flag shape
        assert not re.search(r"[<>&`#]", rest), ln
        for lab in labels:
            assert not re.search(r"[<>`|]", lab)
            assert "&" not in lab
    assert "we#quot;ird #lt;n#gt;#amp;a#124;m#35;e#96;" in mm
    flows = sum(1 for *_, k in g.g.edges(data="kind") if k == "flow")
    assert sum(1 for ln in edge_lines if "-->" in ln) == flows


# ---------------------------------------------------------------- models
SPECS = [TaskSpec("a", "binary"), TaskSpec(ODD, "multiclass", n_classes=3),
         TaskSpec("c", "regression", target_mean=50.0, target_std=4.0)]


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    from sharesearch.network import compile_graph

    g = SharingGraph.from_partitions(SPECS, BB, [[["a", ODD, "c"]]], conditioning="film")
    net = compile_graph(g, seed=3)
    with torch.no_grad():  # move away from the initialisation so a re-init would not match by accident
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(7, 5)
    before = predict(net, x, SPECS)
    d = save_model(net, g, tmp_path / "m", tasks=SPECS)
    assert sorted(p.name for p in d.iterdir()) == sorted([MODEL_FILE, GRAPH_FILE, TASKS_FILE])
    loaded = load_model(d)
    assert not loaded.training
    after = predict(loaded, x)  # task specs come from tasks.json
    assert set(after) == set(before) == set(g.tasks)
    for t in g.tasks:
        assert torch.equal(before[t], after[t])
    assert after["a"].shape == (7,) and ((after["a"] > 0) & (after["a"] < 1)).all()
    assert after[ODD].shape == (7, 3) and torch.allclose(after[ODD].sum(1), torch.ones(7))
    raw = loaded(x)["c"][:, 0]
    assert torch.allclose(after["c"], raw * 4.0 + 50.0)
    # the state alone works too, and without specs predict says what it needs
    d2 = save_model(net.state_dict(), g, tmp_path / "m2")
    assert not (d2 / TASKS_FILE).exists()
    with pytest.raises(ValueError, match="task specs"):
        predict(load_model(d2), x)


def test_load_path_imports_no_search_code(tmp_path):
    """One call, no search code: loading a model must not import optuna or the search layer."""
    from sharesearch.network import compile_graph

    g = SharingGraph.shared_bottom({"a": 1}, BB)
    save_model(compile_graph(g, seed=0), g, tmp_path / "m", tasks=[TaskSpec("a", "binary")])
    code = ("import sys, torch; from sharesearch.export import load_model, predict; "
            f"net = load_model({str(tmp_path / 'm')!r}); predict(net, torch.zeros(2, 5)); "
            "bad = [m for m in sys.modules if m == 'optuna' or m.startswith('sharesearch.search') "
            "or m.startswith('sharesearch.train')]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


class _Evil:
    ran = False

    def __reduce__(self):
        return (_Evil._boom, ())

    @staticmethod
    def _boom():  # would run on unpickling if pickle were allowed
        _Evil.ran = True
        return "pwned"


def test_load_model_refuses_non_tensor_pickles(tmp_path):
    g = SharingGraph.shared_bottom({"a": 1}, BB)
    d = tmp_path / "m"
    d.mkdir()
    (d / GRAPH_FILE).write_text(g.to_json())
    torch.save({"w": torch.zeros(1), "evil": _Evil()}, d / MODEL_FILE)
    with pytest.raises(ModelFolderError, match="tensors only"):  # weights_only refuses it; one error type
        load_model(d)
    assert not _Evil.ran
    # plain Python values pass weights_only but are not a state_dict of tensors
    torch.save({"w": [1, 2, 3]}, d / MODEL_FILE)
    with pytest.raises(ValueError, match="tensors"):
        load_model(d)
    with pytest.raises(TypeError, match="tensors"):
        save_model({"w": [1.0]}, g, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_model(tmp_path / "nothing")

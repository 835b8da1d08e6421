"""Stored studies name graphs by ``key()``: graphs written before graph.py was split keep their JSON and key.

``tests/old_graphs.json`` holds the JSON text and key of two graphs as the single-file ``graph.py``
wrote them (every mechanism between them: MoE with expert dropout, FiLM, gate, cross-stitch, L2,
metadata task embedding, MLP and CNN, a dotted task name).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharesearch.graph import GraphError, SharingGraph

OLD = json.loads((Path(__file__).parent / "old_graphs.json").read_text())
TASKS = {"a": 1, "b.x": 3, "c": 2}


def _rebuilt() -> list[SharingGraph]:
    """The same two graphs, built again by today's constructors."""
    g1 = SharingGraph.from_partitions(
        TASKS, {"name": "mlp", "input_shape": [5], "widths": [8, 6, 4], "dropout": 0.1}, ["a,b.x,c", "a,b.x|c"],
        conditioning=["none", "film", "none"], moe=[2, 0, 0], expert_dropout=0.25, cross_stitch=[False, False, True],
        task_embedding={"a": [1.0, 0.5], "b.x": [0.0, -1.0], "c": [0.25, 2.0]})
    g2 = SharingGraph.from_partitions(
        TASKS, {"name": "cnn", "input_shape": [1, 6, 6], "widths": [4, 4], "kernel": 3}, ["a|b.x,c"],
        conditioning="gate", l2=[0.01, 0.5])
    return [g1, g2]


@pytest.mark.parametrize("i", range(len(OLD)))
def test_old_json_loads_with_its_key_and_text(i):
    old = OLD[i]
    g = SharingGraph.from_json(old["json"])
    assert g.key() == old["key"] and hash(g) == hash(old["key"])
    assert g.to_json() == old["json"]


@pytest.mark.parametrize("i", range(len(OLD)))
def test_constructors_build_the_old_graph_again(i):
    g = _rebuilt()[i]
    assert g.key() == OLD[i]["key"] and g == SharingGraph.from_json(OLD[i]["json"])


def test_old_json_with_a_broken_field_is_still_refused():
    data = json.loads(OLD[0]["json"])
    moe = next(n for n in data["nodes"] if n.get("kind") == "moe")
    moe["experts"] = 0
    with pytest.raises(GraphError, match=r"node 's0:a\+b\.x\+c': an MoE needs at least one expert"):
        SharingGraph.from_dict(data)

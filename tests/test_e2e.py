"""End to end on planted-cluster data: the search finds the planted grouping, the verdict the planted harm.

The data plant both effects at once (``synthetic-mmoe`` with per-cluster noise): tasks t0, t1
and t2 are one noisy function (pooling them helps), t3 is an unrelated, nearly noiseless task
(a narrow trunk shared with the others hurts it). Seeds are fixed, so the run is deterministic
on a given machine; the assertions are about rankings and verdicts, not about exact numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.search import SearchConfig, run_search
from sharesearch.space import load_space
from sharesearch.training import TrainConfig

OPTIONS = {"n": 1000, "d": 8, "p": [1.0, 0.0], "noise": [2.0, 0.05], "clusters": [[0, 1, 2], [3]], "seed": 0}
RELATED, UNRELATED = ("t0", "t1", "t2"), "t3"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    data = load_data("synthetic-mmoe", **OPTIONS)
    space = load_space(Path(__file__).parent / "spaces" / "planted.toml")
    db = tmp_path_factory.mktemp("e2e") / "study.db"
    return run_search(data, {"source": "synthetic-mmoe", "options": OPTIONS}, space, storage=f"sqlite:///{db}",
                      study_name="planted", config=SearchConfig(n_trials=40, n_seeds=4, top_k=2, seed=0),
                      train_base=TrainConfig(device="cpu"), progress=False)


def _groups_related(graph: SharingGraph) -> bool:
    """Related tasks share (at least one pair of them), and the unrelated task shares with none."""
    related_share = any(graph.share_depth(a, b) >= 1 for i, a in enumerate(RELATED) for b in RELATED[i + 1:])
    apart = all(graph.share_depth(UNRELATED, t) == 0 for t in RELATED)
    return related_share and apart


def test_search_ranks_the_planted_grouping_above_shared_bottom_and_independent(study):
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(done, key=lambda t: t.value)
    assert _groups_related(SharingGraph.from_dict(best.user_attrs["graph"])), best.user_attrs["graph"]
    for ref in ("independent", "shared-bottom"):
        ref_values = [t.value for t in study.get_trials(deepcopy=False)
                      if t.user_attrs.get("reference") == ref and t.value is not None]
        assert ref_values and best.value > max(ref_values), ref


def test_verdict_reports_the_unrelated_tasks_negative_transfer_under_shared_bottom(study):
    verdict = study.user_attrs["verdict"]
    assert verdict["protocol"]["n_seeds"] == 4 and verdict["protocol"]["test_used_once"]
    sb = next(c for c in verdict["candidates"] if c["name"] == "shared-bottom")
    by_task = {tv["task"]: tv for tv in sb["verdict"]["tasks"]}
    assert by_task[UNRELATED]["verdict"] == "negative transfer"
    assert by_task[UNRELATED]["delta"] < 0 and by_task[UNRELATED]["p_holm"] <= 0.05
    lo, hi = by_task[UNRELATED]["delta_ci"]
    assert hi < 0  # the interval excludes "no change"

"""Issue 12: inter-task affinity in one pass, the trees it proposes, and the search's warm start."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from sharesearch.affinity import (Affinity, affinity_distance, affinity_for_space, affinity_trees, format_affinity,
                                  measure_affinity)
from sharesearch.data import MultiTaskData, load_data
from sharesearch.report import report_html
from sharesearch.search import SearchConfig, ensure_baselines, enqueue_references, prepare_study, study_results
from sharesearch.search._records import AffinityRecord, StudyContext, TrialRecord
from sharesearch.space import SearchSpace, load_space
from sharesearch.training import TrainConfig

_spec = importlib.util.spec_from_file_location("sharesearch_root_cli_affinity",
                                              Path(__file__).resolve().parents[1] / "cli.py")
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)
BB = {"name": "mlp", "input_shape": [8], "widths": [16, 16]}
SOURCE = {"source": "synthetic-mmoe", "options": {"n": 500, "d": 8, "seed": 1, "clusters": [[0, 1], [2]]}}


def _groups(partition) -> set[frozenset[str]]:
    return {frozenset(g) for g in partition}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_affinity_of_two_planted_clusters_groups_them(seed):
    """Two clusters of two tasks (cosine 0.95 within, orthogonal across): the 2-group cut is the planted one."""
    torch.set_num_threads(1)
    data = load_data("synthetic-mmoe", n=1000, d=8, seed=seed, clusters=[[0, 1], [2, 3]], p=0.95)
    aff = measure_affinity(data, BB, TrainConfig(batch_size=64, lr=3e-3, seed=0), steps=100)
    cos = aff.symmetric("cosine")
    assert min(cos[0, 1], cos[2, 3]) > max(cos[0, 2], cos[0, 3], cos[1, 2], cos[1, 3])
    trees = affinity_trees(aff, 2)
    two = [t for t in trees if len(t[0]) == 2 and t[0] == t[1]]
    assert two and _groups(two[0][0]) == {frozenset({"t0", "t1"}), frozenset({"t2", "t3"})}


def test_a_pair_never_labelled_together_is_nan_not_a_crash():
    """t0 is labelled only on rows where t1 is not: the pair is never scored; every other pair is."""
    base = load_data("synthetic-mmoe", n=400, d=8, seed=0, clusters=[[0, 1], [2]])
    y = base.y.clone()  # [N, 3]
    even = torch.arange(len(y)) % 2 == 0
    y[even, 0] = float("nan")
    y[~even, 1] = float("nan")
    data = MultiTaskData(name="disjoint", tasks=base.tasks, x=base.x, y=y, split=base.split,
                         split_seed=base.split_seed, meta={})
    aff = measure_affinity(data, BB, TrainConfig(batch_size=32, lr=3e-3), steps=6, every=1)
    z, c = aff.matrix("lookahead"), aff.matrix("cosine")
    assert math.isnan(z[0, 1]) and math.isnan(z[1, 0]) and math.isnan(c[0, 1])
    assert aff.counts[0][1] == 0 and aff.counts[0][2] == 6
    assert np.isfinite(z[0, 2]) and np.isfinite(c[1, 2]) and np.isfinite(z[2, 2])
    d = affinity_distance(aff)  # the unscored pair is the farthest, not NaN
    assert np.isfinite(d).all() and d[0, 1] == d.max()
    assert Affinity.from_dict(aff.to_dict()).counts == aff.counts  # NaN survives JSON as None
    assert "—" in format_affinity(aff)


def test_sample_weights_weigh_the_pass_as_they_weigh_training():
    """A constant weight changes nothing (a weighted mean); uneven weights change what the pass measures."""
    base = load_data("synthetic-mmoe", n=400, d=8, seed=0, clusters=[[0, 1], [2]])

    def run(weights):
        data = MultiTaskData(name="w", tasks=base.tasks, x=base.x, y=base.y, split=base.split,
                             split_seed=base.split_seed, meta={}, weights=weights)
        aff = measure_affinity(data, BB, TrainConfig(batch_size=32, lr=3e-3), steps=6, every=1)
        return aff.matrix("lookahead"), aff.matrix("cosine")

    plain = run(None)
    constant = run(torch.full((base.n,), 3.0))
    uneven = run(torch.rand(base.n, generator=torch.Generator().manual_seed(0)) * 4)
    for a, b in zip(plain, constant):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    assert not np.allclose(plain[0], uneven[0], rtol=1e-3, atol=1e-6)


def _affinity(cos: list[list[float]]) -> Affinity:
    n = len(cos)
    return Affinity(tuple(f"t{i}" for i in range(n)), tuple(tuple(1.0 for _ in r) for r in cos),
                    tuple(tuple(r) for r in cos), tuple(tuple(1 for _ in r) for r in cos), 1, 1, 1e-3, 0.0)


def test_trees_are_nested_and_rebuild_through_the_space_params():
    cos = np.full((6, 6), 0.0)
    for grp in ([0, 1, 2], [3, 4]):
        for a in grp:
            for b in grp:
                cos[a, b] = 0.6
    np.fill_diagonal(cos, 1.0)
    trees = affinity_trees(_affinity(cos.tolist()), 3, max_trees=10)
    assert _groups(trees[0][0]) == {frozenset({"t0", "t1", "t2"}), frozenset({"t3", "t4"}), frozenset({"t5"})}
    assert len(set(trees)) == len(trees) >= 4
    space = load_space("default")
    tasks = {f"t{i}": 1 for i in range(6)}
    for tree in trees:
        for coarse, fine in zip(tree, tree[1:]):  # every group of a stage lies inside one group of the stage before
            assert all(any(set(g) <= set(h) for h in coarse) for g in fine)
        params = space.tree_params(tree, tasks, (8,))
        assert params is not None
        built = space.build(params, tasks, (8,)).graph
        assert [_groups(p) for p in built.partitions()] == [_groups(p) for p in tree]
        assert built.n_stages == 3 and not any(built.g.nodes[n]["kind"] == "moe" for n in built.g)
    two_stage = load_space("tiny")
    assert two_stage.tree_params(trees[0], tasks, (8,)) is None  # 3 stages do not fit a 2-stage space


def _study(space: SearchSpace, data, n_trials: int = 12):
    tb = TrainConfig(device="cpu")
    study = prepare_study(optuna.storages.InMemoryStorage(), "a", data, SOURCE, space, SearchConfig(n_trials=n_trials),
                          tb)
    baselines = ensure_baselines(study, data, space, tb)
    enqueue_references(study, data, space, baselines)
    return study


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-mmoe", n=500, d=8, seed=1, clusters=[[0, 1], [2]])


def test_search_enqueues_affinity_trees_after_the_references_and_stores_them(data):
    space = load_space("tiny")
    study = _study(space, data)
    rec = AffinityRecord.from_study(study)
    assert rec is not None and rec.affinity.tasks == tuple(data.task_names) and rec.enqueued
    trials = study.get_trials(deepcopy=False)
    kinds = ["ref" if t.user_attrs.get("reference") else "tree" if "affinity_tree" in t.user_attrs else "?"
             for t in trials]
    n_refs = len(StudyContext.from_study(study).references)
    assert kinds == ["ref"] * n_refs + ["tree"] * len(rec.enqueued)
    lr = rec.config["lr"]
    for t, i in zip(trials[n_refs:], rec.enqueued):
        params = t.system_attrs["fixed_params"]
        assert t.user_attrs["affinity_tree"] == i and params["lr"] == pytest.approx(lr)
        built = space.build(params, data.tasks, data.input_shape).graph
        assert [_groups(p) for p in built.partitions()] == [_groups(p) for p in rec.trees[i]]
    enqueue_references(study, data, space, {})  # a second call (a resumed worker) enqueues nothing
    assert len(study.get_trials(deepcopy=False)) == len(trials)
    small = _study(space, data, n_trials=n_refs + 1)  # no more trees than the trial budget leaves room for
    assert len(AffinityRecord.from_study(small).enqueued) == 1 and len(small.get_trials()) == n_refs + 1
    assert AffinityRecord.from_study(_study(space, data, n_trials=n_refs)) is None  # no room: no pass


def test_trees_are_tried_again_on_the_best_trials_settings_once_half_the_budget_has_run(data):
    """enqueue_tuned_trees: nothing before half the budget; then each enqueued tree once, built on the best
    sampled trial's parameters (not a reference's or a tree's), its partitions kept; never a second time."""
    from sharesearch.search import enqueue_tuned_trees

    space = load_space("tiny")
    study = _study(space, data, n_trials=12)
    rec = AffinityRecord.from_study(study)
    first = len(study.get_trials(deepcopy=False))
    assert enqueue_tuned_trees(study, data, space, target=12) == []  # nothing has finished

    def objective(trial):  # stand-in values: the sampled trial with the highest lr is the best
        space.sample(trial, data.tasks, data.input_shape)
        return 0.0 if trial.user_attrs.get("reference") or "affinity_tree" in trial.user_attrs else trial.params["lr"]

    study.optimize(objective, n_trials=5)
    assert enqueue_tuned_trees(study, data, space, target=12) == []  # 5 of 12 finished: too early
    study.optimize(objective, n_trials=first - 5 + 2)  # the rest of the queue, then two sampled trials
    sampled = [t for t in study.trials if t.number >= first]
    best = max(sampled, key=lambda t: t.value)
    tuned = enqueue_tuned_trees(study, data, space, target=12)
    assert tuned == list(rec.enqueued)
    again = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["affinity_tree"] for t in again] == tuned
    for t, i in zip(again, tuned):
        params = t.system_attrs["fixed_params"]
        assert t.user_attrs["tuned_from"] == best.number and params["lr"] == pytest.approx(best.params["lr"])
        built = space.build(params, data.tasks, data.input_shape).graph
        assert [_groups(p) for p in built.partitions()] == [_groups(p) for p in rec.trees[i]]
    stored = AffinityRecord.from_study(study)
    assert stored.tuned_from == best.number and list(stored.tuned) == tuned
    assert enqueue_tuned_trees(study, data, space, target=12) == []  # once per study


def test_references_are_tried_again_on_the_best_trials_training_and_width_once(data):
    """enqueue_tuned_references: nothing before half the budget; then every reference but the control once,
    with the best sampled trial's lr, weight decay, batch size, weighting, sampling and width but its own
    topology and mechanisms; never a second time; the objective keeps it a (never pruned) reference."""
    from sharesearch.search import enqueue_tuned_references
    from sharesearch.search._dashboard import trial_kind

    space = load_space("tiny")
    study = _study(space, data, n_trials=20)
    names = [n for n in StudyContext.from_study(study).references if n != "independent"]
    assert names  # the tiny space expresses some reference besides the control
    first = len(study.get_trials(deepcopy=False))

    def objective(trial):  # stand-in values: the sampled trial with the highest lr is the best
        space.sample(trial, data.tasks, data.input_shape)
        return 0.0 if trial.user_attrs.get("reference") or "affinity_tree" in trial.user_attrs else trial.params["lr"]

    study.optimize(objective, n_trials=first)
    assert enqueue_tuned_references(study, data, space, target=20) == []  # 8 or so of 20: too early
    study.optimize(objective, n_trials=10 - first + 1)
    best = max((t for t in study.trials if t.number >= first), key=lambda t: t.value)
    assert enqueue_tuned_references(study, data, space, target=20) == names
    again = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["reference"] for t in again] == names
    for t, name in zip(again, names):
        params, own = t.system_attrs["fixed_params"], space.reference_params(name, data.tasks)
        assert t.user_attrs["tuned_from"] == best.number
        for key in ("lr", "batch_size", "weighting", "width_mult"):
            if key in best.params:
                assert params[key] == best.params[key], key
        assert space.build(params, data.tasks, data.input_shape).graph.partitions() == \
            space.build(own, data.tasks, data.input_shape).graph.partitions()
        assert {k: params[k] for k in ("moe", "cross_stitch")} == {k: own[k] for k in ("moe", "cross_stitch")}
        rec = TrialRecord.from_trial(t)
        assert "tried again with the training and width of trial" in trial_kind(rec, t)
    assert enqueue_tuned_references(study, data, space, target=20) == []  # once per study


def test_tree_params_on_a_trials_settings_takes_the_stages_the_tree_needs():
    """A base trial with 2 stages still gives a 3-stage tree on the default space, with the base's width and lr."""
    space, tasks = load_space("default"), {f"t{i}": 1 for i in range(4)}
    tree = [[["t0", "t1"], ["t2", "t3"]], [["t0", "t1"], ["t2"], ["t3"]], [["t0"], ["t1"], ["t2"], ["t3"]]]
    plain = space.tree_params(tree, tasks, (8,))
    wide = space.fields["backbone.width_mult"].max
    base = {**plain, "stages": 2, "lr": 0.0123, "width_mult": wide, "conditioning": "film"}
    params = space.tree_params(tree, tasks, (8,), base=base)
    assert params["stages"] == 3 and params["lr"] == pytest.approx(0.0123) and params["width_mult"] == wide
    assert params["conditioning"] == "film"
    built = space.build(params, tasks, (8,)).graph
    assert [_groups(p) for p in built.partitions()] == [_groups(p) for p in tree]


def test_no_affinity_pass_when_the_space_turns_it_off(data):
    d = load_space("tiny").to_dict()
    d["branching"]["affinity"] = False
    study = _study(SearchSpace.from_dict(d, source="off.toml"), data)
    assert AffinityRecord.from_study(study) is None
    assert not any("affinity_tree" in t.user_attrs for t in study.get_trials(deepcopy=False))


def test_report_shows_the_affinity_heatmap_and_its_trees(data):
    space = load_space("tiny")
    study = _study(space, data)

    def objective(trial):  # a stand-in value that depends on one share depth (no training needed here)
        return float(space.sample(trial, data.tasks, data.input_shape).graph.share_depth("t0", "t1"))

    study.optimize(objective, n_trials=len(study.get_trials()) + 2)
    from sharesearch.search import enqueue_tuned_trees

    assert len(enqueue_tuned_trees(study, data, space, target=len(study.trials) + 1)) == 1  # room for one tree
    study.optimize(objective, n_trials=1)
    results = study_results(study)
    aff = results["affinity"]
    assert aff["dendrogram"]["leaves"] and sorted(aff["dendrogram"]["leaves"]) == sorted(data.task_names)
    firsts = [t["affinity_tree"] for t in results["trials"]
              if t["affinity_tree"] is not None and t["tuned_from"] is None]
    assert firsts == list(aff["enqueued"])
    page = report_html(results)
    assert 'id="affinity"' in page and "gradient cosine" in page and "importance of share" in page
    imp = aff["share_importances"]
    assert set(imp) == {"share[t0~t1]", "share[t0~t2]", "share[t1~t2]"} and max(imp, key=imp.get) == "share[t0~t1]"
    tree_trial = next(t for t in results["trials"] if t["affinity_tree"] is not None)
    tuned = next(t for t in results["trials"] if t["tuned_from"] is not None)
    assert f"trial {tree_trial['number']}: Δm" in page
    assert f"trial {tuned['number']} (settings of trial {tuned['tuned_from']}): Δm" in page


def test_cli_prints_the_matrix_and_the_trees(capsys):
    rc = cli.main(["affinity", "--data", "synthetic-mmoe", "--data-option", "n=300", "--data-option", "d=8",
                   "--space", "tiny", "--steps", "8", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0 and "gradient cosine" in out and "proposed sharing trees" in out and " > " in out
    rc = cli.main(["affinity", "--data", "synthetic-mmoe", "--space", "nope"])
    assert rc == 2


def test_affinity_for_space_uses_the_space_defaults(data):
    aff, trees = affinity_for_space(data, load_space("tiny"), steps=5)
    assert aff.steps == 5 and aff.lookahead_lr == pytest.approx(load_space("tiny").fields["train.lr"].default)
    assert all(len(t) == 2 for t in trees)

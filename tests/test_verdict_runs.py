"""The verdict's runs: seeds by power, matched seeds, test looks, diverged and still-learning runs."""

from __future__ import annotations

import math

import pytest

from sharesearch.data import load_data
from sharesearch.report import markdown_summary, report_html
from sharesearch.search import BaselineSet, SearchConfig, compute_verdict, load_results, run_search
from sharesearch.search import _verdict_arms, _verdict_runs
from sharesearch.search._protocol import SEED_RANGE, VerdictProtocol, plan_seeds
from sharesearch.space import load_space
from sharesearch.training import TrainConfig
from sharesearch.verdict import seeds_for_power

SOURCE = {"source": "synthetic-mmoe", "options": {"n": 300, "d": 6, "seed": 2, "clusters": [[0, 1], [2]]}}


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-mmoe", n=300, d=6, seed=2, clusters=[[0, 1], [2]])


@pytest.fixture(scope="module")
def study(tmp_path_factory, data):
    tmp_path = tmp_path_factory.mktemp("verdict")
    cfg = SearchConfig(n_trials=3, n_seeds=2, top_k=1, references=("independent", "shared-bottom"))
    return run_search(data, SOURCE, load_space("tiny"), storage=f"sqlite:///{tmp_path / 'v.db'}", study_name="v",
                      config=cfg, train_base=TrainConfig(device="cpu", max_steps=4, eval_every=2), progress=False)


@pytest.mark.parametrize("cv", [0.02, 0.07, 0.3])
def test_seed_count_follows_seeds_for_power_from_the_spread(cv):
    plan = plan_seeds(None, {"a": cv / 2, "b": cv, "c": math.nan}, alpha=0.05, source="pilot")
    need = seeds_for_power(cv, 0.10, n_tasks=3, alpha=0.05, power=0.80)
    assert (plan.rule, plan.cv, plan.cv_task, plan.n_required) == ("power", cv, "b", need)
    assert plan.n_seeds == min(max(need, SEED_RANGE[0]), SEED_RANGE[1])
    assert str(plan.n_seeds) in plan.describe() and "effect=10%" in plan.describe()
    assert plan_seeds(7, {"a": cv}, alpha=0.05).n_seeds == 7


def test_auto_seeds_come_from_a_pilot_of_the_control(study, data, monkeypatch):
    v = compute_verdict(study, data, row_resamples=0, top_k=0)  # SearchConfig(n_seeds=2): explicit
    assert v["protocol"]["seed_plan"]["rule"] == "explicit" and v["protocol"]["n_seeds"] == 2
    monkeypatch.setattr(_verdict_runs, "plan_seeds",  # a small clip range keeps the test fast
                        lambda n, cv, **kw: plan_seeds(n, cv, seed_range=(2, 3), **kw))
    ctx = study.user_attrs["sharesearch"]
    study.set_user_attr("sharesearch", {**ctx, "search": {**ctx["search"], "n_seeds": None}})  # the default: power rule
    try:
        recorded = compute_verdict(study, data, row_resamples=0, top_k=0)["protocol"]["seed_plan"]
        monkeypatch.setattr(_verdict_runs, "_recorded_cv", lambda baselines: {})  # a control without confirmations
        v = compute_verdict(study, data, row_resamples=0, top_k=0)
    finally:
        study.set_user_attr("sharesearch", ctx)
    baselines = BaselineSet.from_study(study).tasks
    assert recorded["rule"] == "power" and recorded["cv_source"] == "baseline record"
    assert recorded["cv"] == max(b.val_cv for b in baselines.values())
    plan = v["protocol"]["seed_plan"]
    assert plan["rule"] == "power" and plan["cv_source"] == "pilot of 3 control seeds"
    need = seeds_for_power(plan["cv"], 0.10, n_tasks=len(data.tasks), alpha=0.05, power=0.80)
    assert plan["n_required"] == need and v["protocol"]["n_seeds"] == min(max(need, 2), 3)
    assert plan["cv"] == max(c for c in plan["cv_by_task"].values() if c is not None and math.isfinite(c))


def test_arms_and_control_share_seeds_and_the_aa_arm_gets_disjoint_ones(study, data, monkeypatch):
    seen: list[tuple[str, int, int | None]] = []
    calls: list[list[int]] = []
    cadence: set[tuple[int | None, int]] = set()
    real = _verdict_arms.train_population

    def spy(graph, d, configs, **kw):
        calls.append([c.seed for c in configs])
        seen.extend((graph.key(), c.seed, c.max_steps) for c in configs)
        cadence.update((c.eval_every, c.patience) for c in configs)
        return real(graph, d, configs, **kw)

    monkeypatch.setattr(_verdict_arms, "train_population", spy)
    v = compute_verdict(study, data, n_seeds=2, row_resamples=20)
    proto = VerdictProtocol.from_dict(v["protocol"])
    assert set(proto.seeds).isdisjoint(proto.independent_seeds) and len(proto.independent_seeds) == 2
    runs = {c["name"]: c["runs"]["seeds"] for c in v["candidates"]}
    assert runs.pop("independent") == list(proto.independent_seeds)
    assert runs and all(s == list(proto.seeds) for s in runs.values())
    assert v["control"]["seeds"] == list(proto.seeds)
    assert {s for _, s, _ in seen} == set(proto.seeds) | set(proto.independent_seeds)
    assert {m for _, _, m in seen} == {proto.budget["max_steps"]} == {4}  # one budget for every training
    f = load_space("tiny").fields  # ... with the evaluation cadence and early stopping the search used
    assert cadence == {(f["train.eval_every"].value, f["train.patience"].value)}
    # each arm's seeds, and each control configuration's, are one population
    assert all(c in (list(proto.seeds), list(proto.independent_seeds)) for c in calls)
    for c in v["candidates"]:
        assert "test-row bootstrap" in c["verdict"]["delta_m_method"]
        assert all(tv["n_candidate"] == 2 and tv["n_baseline"] == 2 for tv in c["verdict"]["tasks"])


def test_a_second_verdict_is_a_second_look_and_keeps_the_first(study, data):
    study.set_user_attr("verdict", None)  # forget the other tests' verdicts
    first = compute_verdict(study, data, n_seeds=2, row_resamples=0, top_k=0)
    assert first["protocol"]["test_used_once"] and first["protocol"]["test_looks"] == 1 and not first["history"]
    same = compute_verdict(study, data, n_seeds=2, row_resamples=0, top_k=0)  # same design: same look
    assert same["protocol"]["test_looks"] == 1 and same["protocol"]["computations"] == 2
    second = compute_verdict(study, data, n_seeds=3, row_resamples=0, top_k=0)
    assert second["protocol"]["test_looks"] == 2 and second["protocol"]["test_used_once"] is False
    assert [h["protocol"]["n_seeds"] for h in second["history"]] == [2, 2]
    assert second["history"][0]["candidates"] == first["candidates"]
    results = load_results(study._storage, "v")
    assert "looked at the test split 2 times" in markdown_summary(results)
    assert "looked at the test split 2 times" in report_html(results)


def test_a_diverged_arm_is_reported_with_its_count(study, data, monkeypatch):
    real = _verdict_arms.train_population

    def diverge_shared_bottom(graph, d, configs, **kw):
        out = real(graph, d, configs, **kw)
        first = graph.partitions()[0]
        for res, config in zip(out, configs):
            if len(first) == 1 and len(first[0]) > 1 and config.seed == 1000:  # shared-bottom, first seed
                res.status = "diverged"
        return out

    monkeypatch.setattr(_verdict_arms, "train_population", diverge_shared_bottom)
    v = compute_verdict(study, data, n_seeds=3, row_resamples=20, top_k=0)
    sb = next(c for c in v["candidates"] if c["name"] == "shared-bottom")
    assert sb["runs"]["n_diverged"] == 1 and sb["verdict"]["n_diverged_candidate"] == 1
    assert all(math.isnan(x) for x in (sb["test_metrics"][t][0] for t in data.task_names))
    assert "diverged" in markdown_summary(load_results(study._storage, "v"))


def test_still_learning_runs_are_flagged_when_the_budget_is_cut_short(study, data):
    v = compute_verdict(study, data, n_seeds=2, row_resamples=0, top_k=0)  # 4 steps: nothing converges
    flagged = [c for c in v["candidates"] if c["runs"]["n_still_learning"]]
    assert flagged and all(set(c["runs"]["still_learning_tasks"]) <= set(data.task_names) for c in flagged)
    html = report_html(load_results(study._storage, "v"))
    assert "still improving at the budget&#x27;s end: raise max_steps" in html  # html-escaped apostrophe


def test_the_recommended_model_is_saved_beside_never_over_an_earlier_one(study, data, tmp_path):
    from sharesearch.export import load_model

    folder = tmp_path / "run" / "model"
    first = compute_verdict(study, data, n_seeds=2, row_resamples=0, top_k=0, model_dir=folder)
    second = compute_verdict(study, data, n_seeds=2, row_resamples=0, top_k=0, model_dir=folder)
    rec1, rec2 = first["recommendation"], second["recommendation"]
    assert rec1["model_dir"] == str(folder) and rec2["model_dir"] == str(folder.parent / "model-2")
    assert {"overall", "arm", "trial", "graph", "per_task", "test_deltas"} <= set(rec2)
    assert set(rec2["per_task"]) == set(data.task_names)
    results = load_results(study._storage, "v")
    assert results["recommendation"] == rec2
    kept = [p for p in folder.parent.rglob("graph.json")]
    assert kept and all(p.is_relative_to(folder) or p.is_relative_to(folder.parent / "model-2") for p in kept)
    model = load_model(kept[0].parent)  # a model folder load_model reads back, weights and graph together
    assert set(model.graph.tasks) <= set(data.task_names)
    assert model.provenance.split == "test" and model.provenance.source == "verdict"
    assert model.provenance.arm == rec1["arm"] and model.provenance.seed == first["protocol"]["seeds"][0]


def test_every_sharing_arm_carries_its_validation_delta_m_and_the_choice_follows_it(study, data):
    v = compute_verdict(study, data, n_seeds=2, row_resamples=0, top_k=1)
    sharing = [c for c in v["candidates"] if c["name"] != "independent"]
    assert sharing and all(isinstance(c["val_delta_m"], float) and math.isfinite(c["val_delta_m"]) for c in sharing)
    for c in sharing:  # one validation Δm per seed, in the seeds' order, that the recommendation pairs across arms
        assert len(c["val_delta_m_runs"]) == len(c["runs"]["seeds"]) == 2
        assert math.isclose(sum(c["val_delta_m_runs"]) / 2, c["val_delta_m"], rel_tol=1e-9)
    rec = v["recommendation"]
    if rec["kind"] != "independent" or "best arm on validation" in rec["overall"]:
        best = max(sharing, key=lambda c: c["val_delta_m"])
        assert best["name"] in rec["overall"]


def test_the_verdict_retrains_the_k_best_and_every_tree_the_affinity_proposed(data):
    """Arms: the k best distinct topologies by value, then each completed affinity tree not among them (in the
    order proposed); none of the affinity's trees with k = 0 (references only); never a reference twice."""
    import optuna

    from sharesearch.graph import SharingGraph
    from sharesearch.search._records import TrialRecord

    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [8, 8]}
    trees = {p: SharingGraph.branched(data.tasks, bb, [p, p]) for p in ("t0,t1|t2", "t0,t2|t1", "t1,t2|t0")}
    trees["sb"] = SharingGraph.shared_bottom(data.tasks, bb)
    trees["ind"] = SharingGraph.independent(data.tasks, bb)
    study = optuna.create_study(direction="maximize")
    rows = [  # (value, graph, reference, affinity tree index)
        (0.00, "ind", "independent", None), (0.05, "sb", "shared-bottom", None),
        (0.02, "t0,t1|t2", None, 1), (0.01, "t1,t2|t0", None, 0), (0.09, "t0,t2|t1", None, None),
        (0.08, "t0,t2|t1", None, None), (0.07, "sb", None, None), (0.03, "t0,t1|t2", None, None)]
    for value, name, ref, tree in rows:
        g = trees[name]
        rec = TrialRecord(reference=ref, graph=g.to_dict(), graph_key=g.key(), train={"lr": 1e-3}, affinity_tree=tree)
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=rec.to_attrs()))
    skip = {trees["ind"].key(), trees["sb"].key()}

    def picked(k):
        return [run.name for run in _verdict_runs._top_candidates(study, k, skip)]

    assert picked(1) == ["trial 4", "trial 3", "trial 2"]  # best; then affinity trees 0 and 1
    assert picked(2) == ["trial 4", "trial 7", "trial 3"]  # trial 7 is tree 1's topology: not twice
    assert picked(0) == []


def test_the_verdict_retrains_each_affinity_tree_once_in_its_better_version(data):
    """A tree tried again on the best trial's settings (tuned_from) is retrained once: in the version with the
    higher value in the search, tuned or not."""
    import optuna

    from sharesearch.graph import SharingGraph
    from sharesearch.search._records import TrialRecord

    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [8, 8]}
    wide = {**bb, "widths": [16, 16]}
    first = SharingGraph.branched(data.tasks, bb, ["t0,t1|t2"] * 2)
    tuned = SharingGraph.branched(data.tasks, wide, ["t0,t1|t2"] * 2)
    other = SharingGraph.branched(data.tasks, bb, ["t0,t2|t1"] * 2)
    study = optuna.create_study(direction="maximize")
    third = SharingGraph.branched(data.tasks, bb, ["t1,t2|t0"] * 2)
    third_wide = SharingGraph.branched(data.tasks, wide, ["t1,t2|t0"] * 2)
    rows = [(0.02, first, 0, None, 1e-3), (0.01, third, 1, None, 1e-3), (0.09, other, None, None, 3e-3),
            (0.04, tuned, 0, 2, 3e-3), (0.005, third_wide, 1, 2, 3e-3)]
    for value, g, tree, tuned_from, lr in rows:
        rec = TrialRecord(graph=g.to_dict(), graph_key=g.key(), train={"lr": lr}, affinity_tree=tree,
                          tuned_from=tuned_from)
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=rec.to_attrs()))
    runs = _verdict_runs._top_candidates(study, 1, set())
    assert [r.name for r in runs] == ["trial 2", "trial 3", "trial 1"]  # tree 0: tuned is better; tree 1: first
    assert runs[1].graph.key() == tuned.key() and runs[1].train == {"lr": 3e-3}
    assert runs[2].graph.key() == third.key() and runs[2].train == {"lr": 1e-3}


def test_the_verdict_retrains_each_reference_in_its_better_version(data):
    """A reference tried again on the best trial's training (tuned_from) is retrained once, in the version with
    the higher value; a failed version never wins over a completed one; a reference with no completed
    version falls back to its first trained trial."""
    import optuna

    from sharesearch.graph import SharingGraph
    from sharesearch.search._records import TrialRecord

    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [8, 8]}
    sb, mmoe = SharingGraph.shared_bottom(data.tasks, bb), SharingGraph.mmoe(data.tasks, bb, experts=2)
    study = optuna.create_study(direction="maximize")
    rows = [("shared-bottom", None, 0.01, 1e-3, "complete"), ("mmoe", None, 0.03, 1e-3, "complete"),
            ("shared-bottom", 1, 0.05, 3e-3, "complete"), ("mmoe", 1, 0.02, 3e-3, "complete"),
            ("mmoe", 1, None, 5e-3, "fail"), ("cross-stitch", None, None, 1e-3, "fail")]
    for name, tuned_from, value, lr, state in rows:
        g = mmoe if name == "mmoe" else sb
        rec = TrialRecord(reference=name, graph=g.to_dict(), graph_key=g.key(), train={"lr": lr},
                          tuned_from=tuned_from)
        state = optuna.trial.TrialState.COMPLETE if state == "complete" else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(value=value, state=state, user_attrs=rec.to_attrs()))
    refs = _verdict_runs._reference_runs(study)
    assert {k: (r.trial, r.train["lr"]) for k, r in refs.items()} == {
        "shared-bottom": (2, 3e-3), "mmoe": (1, 1e-3), "cross-stitch": (5, 1e-3)}


def test_a_search_trains_the_tuned_references_as_references(data, tmp_path):
    """Through run_search: at half the budget shared-bottom is enqueued again on the best sampled trial's
    training; it completes (never pruned) and stays recorded as the reference, not as a sampled candidate."""
    import optuna

    from sharesearch.search._records import TrialRecord

    # 10 trials: the 2 references and 3 affinity trees, then sampled ones; at 6 finished the 3 trees and
    # shared-bottom are enqueued again (the room left: 4)
    cfg = SearchConfig(n_trials=10, n_seeds=2, top_k=1, references=("independent", "shared-bottom"))
    study = run_search(data, SOURCE, load_space("tiny"), storage=f"sqlite:///{tmp_path / 't.db'}", study_name="t",
                       config=cfg, train_base=TrainConfig(device="cpu", max_steps=4, eval_every=2), progress=False,
                       verdict=False)
    recs = {t.number: (t, TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False)}
    tuned = [(t, r) for t, r in recs.values() if r.reference == "shared-bottom" and r.tuned_from is not None]
    assert len(tuned) == 1
    t, r = tuned[0]
    best = recs[r.tuned_from][0]
    assert recs[r.tuned_from][1].reference is None and recs[r.tuned_from][1].affinity_tree is None
    assert t.state == optuna.trial.TrialState.COMPLETE and r.train["lr"] == pytest.approx(best.params["lr"])
    firsts = [n for n, (_, q) in recs.items() if q.reference == "shared-bottom" and q.tuned_from is None]
    assert len(firsts) == 1 and firsts[0] < r.tuned_from < t.number


def test_the_control_trains_each_task_as_in_the_independent_network_of_every_task(data):
    """With sparse labels, a task whose configuration no other task shares still gets the batches of the
    all-task independent network: the control's run of each task equals its part of that network's run
    with the task's configuration (so the control does not depend on which tasks share a configuration)."""
    from sharesearch.graph import SharingGraph
    from sharesearch.search._records import TaskBaseline
    from sharesearch.training import train

    y = data.y.clone()
    y[::2, 0] = float("nan")
    y[1::3, 1] = float("nan")
    y[::4, 2] = float("nan")
    sparse = type(data)(**{**data.__dict__, "y": y})
    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [8, 8]}
    graph = SharingGraph.independent(sparse.tasks, bb).to_dict()
    configs = {"t0": {"lr": 3e-3, "batch_size": 32}, "t1": {"lr": 3e-3, "batch_size": 32},
               "t2": {"lr": 1e-2, "batch_size": 32}}
    baselines = {t: TaskBaseline(val_metric=1.0, val_metrics={}, config=c, graph=graph, trial=0, metric="rmse",
                                 width_scale=1.0) for t, c in configs.items()}
    assert sorted(len(tasks) for _, tasks in _verdict_arms.control_groups(baselines)) == [1, 2]
    base, budget = TrainConfig(device="cpu"), {"max_steps": 24, "eval_every": 6, "patience": 0}
    (run,) = _verdict_arms.train_control_runs(sparse, baselines, base, budget, [5])
    for t, c in configs.items():
        every = train(SharingGraph.independent(sparse.tasks, bb), sparse, base.updated(**c, **budget, seed=5),
                      keep_model=False)
        assert run.val[t] == pytest.approx(every.val_metrics[t]["rmse"], rel=1e-5)

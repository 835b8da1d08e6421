"""The Optuna search: references, cache, budgets, resume, workers, verdict."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.search import (
    SearchConfig,
    enqueue_references,
    make_pruner,
    SearchError,
    TrialRecord,
    baseline_study_name,
    compute_verdict,
    ensure_baselines,
    load_results,
    make_objective,
    open_storage,
    prepare_study,
    run_search,
    run_verdict,
    run_worker,
    study_results,
)
from sharesearch.search._baselines import confirmation_seeds
from sharesearch.search._liveness import worker_id
from sharesearch.search._records import BaselineTrialRecord, confirmation_of, confirmation_tasks
from sharesearch.search._study import step_cap
from sharesearch.space import SearchSpace, load_space
from sharesearch.space._schema import BUDGET_KEYS
from sharesearch.tasks import sign
from sharesearch.training import TrainConfig
from sharesearch.verdict import VERDICTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-mmoe", n=500, d=8, seed=1, clusters=[[0, 1], [2]])


SOURCE = {"source": "synthetic-mmoe", "options": {"n": 500, "d": 8, "seed": 1, "clusters": [[0, 1], [2]]}}


def _search(tmp_path, data, **cfg):
    space = load_space("tiny")
    kw = dict(n_trials=6, n_seeds=2, top_k=1)
    kw.update(cfg)
    return run_search(data, SOURCE, space, storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s",
                      config=SearchConfig(**kw), train_base=TrainConfig(device="cpu"), progress=False)


def test_local_worker_processes_share_the_baselines_tuned_once_and_finish_the_trials(tmp_path, data):
    # run_search(workers=2): the baselines are tuned in this process, then two spawned workers run the trials
    study = run_search(data, SOURCE, load_space("tiny"), storage=f"sqlite:///{tmp_path / 'w.db'}", study_name="w",
                       config=SearchConfig(n_trials=4, references=()), train_base=TrainConfig(device="cpu"),
                       workers=2, progress=False, verdict=False)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(done) >= 4
    here = worker_id()
    assert all(t.user_attrs["worker"] != here for t in done)  # the trials ran in the spawned workers
    bstudy = optuna.load_study(study_name=baseline_study_name("w"), storage=f"sqlite:///{tmp_path / 'w.db'}")
    runs = bstudy.get_trials(deepcopy=False)
    assert runs and all(t.state == TrialState.COMPLETE and t.user_attrs["worker"] == here for t in runs)


def test_search_enqueues_references_first_and_stores_a_verdict(tmp_path, data):
    study = _search(tmp_path, data)
    trials = study.get_trials(deepcopy=False)
    refs = [t.user_attrs.get("reference") for t in trials[:4]]
    assert refs == ["independent", "shared-bottom", "mmoe", "cross-stitch"]
    assert len([t for t in trials if t.state.is_finished()]) >= 6
    verdict = study.user_attrs["verdict"]
    assert verdict["protocol"]["test_used_once"] and len(verdict["protocol"]["seeds"]) == 2
    names = [c["name"] for c in verdict["candidates"]]
    assert {"independent", "shared-bottom", "mmoe", "cross-stitch"} <= set(names)
    for cand in verdict["candidates"]:
        for tv in cand["verdict"]["tasks"]:
            assert tv["verdict"] in VERDICTS
            assert tv["n_candidate"] == 2 and tv["n_baseline"] == 2
    results = load_results(study._storage, "s")
    assert results["verdict"] == verdict and len(results["trials"]) == len(trials)
    assert set(results["baselines"]) == set(data.task_names)


def test_identical_candidate_is_not_trained_twice(tmp_path, data):
    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}")
    space = load_space("tiny")
    cfg = SearchConfig(n_trials=2, references=())
    study = prepare_study(storage, "c", data, SOURCE, space, cfg, TrainConfig(device="cpu"))
    baselines = ensure_baselines(study, data, space, TrainConfig(device="cpu"))
    params = space.reference_params("shared-bottom", data.tasks)
    study.enqueue_trial(params)
    study.enqueue_trial(params)
    study.optimize(make_objective(study, data, space, cfg, TrainConfig(device="cpu"), baselines), n_trials=2)
    first, second = study.get_trials(deepcopy=False)
    assert first.state == second.state == TrialState.COMPLETE
    assert second.user_attrs["status"] == "reused" and second.user_attrs["reused_from"] == first.number
    assert second.value == first.value
    assert second.user_attrs["duration_s"] < first.user_attrs["duration_s"]


def test_baseline_records_the_tuned_width_scale(tmp_path, data):
    storage = open_storage(f"sqlite:///{tmp_path / 'b.db'}")
    space = load_space("tiny")  # baseline width_mult in [0.5, 1.0], 2 tuning trials
    study = prepare_study(storage, "b", data, SOURCE, space, SearchConfig(n_trials=1, references=()),
                          TrainConfig(device="cpu"))
    baselines = ensure_baselines(study, data, space, TrainConfig(device="cpu"))
    tuning = {t.number: t for t in optuna.load_study(study_name=baseline_study_name("b"), storage=storage).trials}
    assert len({t.params["baseline_width_mult"] for t in tuning.values()}) == 2  # two different widths tried
    for task, b in baselines.items():
        mult = tuning[b.trial].params["baseline_width_mult"]
        assert b.width_scale == mult


def test_trial_record_round_trips_through_optuna_user_attributes(tmp_path, data):
    storage = open_storage(f"journal:{tmp_path / 'r.log'}")  # JSON-encoded, like a file shared by workers
    study = optuna.create_study(storage=storage)
    rec = TrialRecord(worker="h:1", graph_key="k", train={"lr": 0.01}, n_params=10, flops=20, status="trained",
                      val_metrics={"t0": 0.5}, val_deltas={"t0": float("nan")}, best_epoch={"t0": 2},
                      duration_s=0.25, reused_from=3)
    trial = study.ask()
    rec.write(trial)
    study.tell(trial, 1.0)
    back = TrialRecord.from_trial(study.trials[0])
    assert back.val_deltas["t0"] != back.val_deltas["t0"]  # NaN survives the storage
    assert back == replace(rec, val_deltas=back.val_deltas)


def test_library_reads_a_study_by_storage_url_and_speaks_of_parameters(tmp_path, data):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    study = prepare_study(open_storage(url), "u", data, SOURCE, load_space("tiny"), SearchConfig(n_trials=2),
                          TrainConfig(device="cpu"))
    results = load_results(url, "u")
    assert results == study_results(study)
    assert results["trials"] == [] and results["storage"] == url and results["objective_names"] == ["delta_m"]
    with pytest.raises(SearchError, match=r"study_name: no study 'nope'.*\['u'\]") as e:
        run_verdict(url, "nope")
    assert "--" not in str(e.value)
    with pytest.raises(SearchError, match="storage: no such file") as e:
        run_verdict(f"sqlite:///{tmp_path / 'typo.db'}", "u")
    assert "--" not in str(e.value) and not (tmp_path / "typo.db").exists()


def test_search_config_rejects_unknown_names():
    with pytest.raises(SearchError, match="references.*'mmeo'"):
        SearchConfig(references=("mmeo",))
    with pytest.raises(SearchError, match="unknown field 'n_trial'"):
        SearchConfig.from_dict({"n_trial": 3})


def test_budget_is_a_constraint_checked_before_training(tmp_path, data):
    study = _search(tmp_path, data, n_trials=4, max_params=10, top_k=0, n_seeds=1)
    for t in study.get_trials(deepcopy=False):
        assert t.state == TrialState.PRUNED
        assert t.user_attrs["status"].startswith("over budget")
        assert "val_metrics" not in t.user_attrs  # nothing was trained
        assert t.system_attrs["constraints:max_params"] > 0 if "constraints:max_params" in t.system_attrs else True


def test_multi_objective_search_gives_a_pareto_front(tmp_path, data):
    study = _search(tmp_path, data, n_trials=5, objectives=("delta_m", "params"), top_k=1, n_seeds=2)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    front = study.best_trials
    assert front
    for t in front:  # nothing on the front is dominated by a completed trial
        for u in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            assert not (u.values[0] > t.values[0] and u.values[1] < t.values[1])
    assert all(not t.intermediate_values for t in study.get_trials(deepcopy=False))  # no pruning reports


def test_worker_with_other_data_is_refused(tmp_path, data):
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    space = load_space("tiny")
    prepare_study(open_storage(storage), "w", data, SOURCE, space, SearchConfig(n_trials=1),
                  TrainConfig(device="cpu"))
    other = load_data("synthetic-mmoe", n=500, d=8, seed=2, clusters=[[0, 1], [2]])
    with pytest.raises(SearchError, match="refusing to join study 'w'"):
        run_worker(storage, "w", data=other)


def test_worker_joins_with_nothing_but_storage_and_name(tmp_path, data):
    storage = f"sqlite:///{tmp_path / 'j.db'}"
    space = load_space("tiny")
    prepare_study(open_storage(storage), "j", data, SOURCE, space, SearchConfig(n_trials=3, references=()),
                  TrainConfig(device="cpu"))
    run_worker(storage, "j")  # loads the data from the recorded source and checks its fingerprint
    study = optuna.load_study(study_name="j", storage=open_storage(storage))
    assert len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]) == 3


def test_resuming_a_killed_study_keeps_every_completed_trial(tmp_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, str(ROOT / "cli.py"), "search", "--space", "tiny", "--data-option", "n=400",
           "--data-option", "d=8", "--runs", str(runs), "--study", "k", "--quiet", "--no-verdict",
           "--device", "cpu"]
    proc = subprocess.Popen(cmd + ["--n-trials", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    db = runs / "k" / "study.db"
    storage = None
    deadline = time.time() + 120
    done_before: dict[int, float] = {}
    while time.time() < deadline:
        time.sleep(1.0)
        if db.exists():
            try:
                storage = storage or open_storage(f"sqlite:///{db}")
                study = optuna.load_study(study_name="k", storage=storage)
                done_before = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
            except (KeyError, optuna.exceptions.StorageInternalError, SearchError):  # created, schema not yet
                continue
            if len(done_before) >= 3:
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done_before) >= 3, "the search did not complete 3 trials in time"
    study = optuna.load_study(study_name="k", storage=storage)
    n_finished = len([t for t in study.get_trials() if t.state.is_finished()])
    rc = subprocess.run(cmd + ["--n-trials", str(n_finished + 2)], capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr[-2000:]
    study = optuna.load_study(study_name="k", storage=open_storage(f"sqlite:///{db}"))
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    for number, value in done_before.items():
        assert after[number] == value
    assert not study.get_trials(states=(TrialState.RUNNING,)), "the killed trial must be swept, not left RUNNING"
    assert len([t for t in study.get_trials() if t.state.is_finished()]) >= n_finished + 2


def test_verdict_recomputes_from_the_study_alone(tmp_path, data):
    study = _search(tmp_path, data, n_trials=5, top_k=0, n_seeds=2)
    first = study.user_attrs["verdict"]
    again = compute_verdict(optuna.load_study(study_name="s", storage=study._storage))
    assert [c["name"] for c in again["candidates"]] == [c["name"] for c in first["candidates"]]
    for a, b in zip(again["candidates"], first["candidates"]):  # seeded: the same numbers
        for t in data.task_names:
            assert a["test_metrics"][t] == pytest.approx(b["test_metrics"][t], rel=1e-5)


def test_bad_search_space_writes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "search_spaces" / "tiny.toml").read_text().replace('["none", "film"]', '["none", "flim"]'))
    runs = tmp_path / "runs"
    rc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "search", "--space", str(bad), "--runs", str(runs)],
                        capture_output=True, text=True, timeout=120)
    assert rc.returncode == 2
    lines = [ln for ln in rc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.toml" in lines[0] and "conditioning" in lines[0] and "flim" in lines[0]
    assert not runs.exists()


def test_bad_data_spec_writes_nothing(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y1,y2\n1,2,0,1.5\n3,x,1,2.5\n5,6,0,\n")
    spec = tmp_path / "t.toml"
    spec.write_text('path = "t.csv"\n[[targets]]\ncolumn = "y1"\nkind = "binary"\n'
                    '[[targets]]\ncolumn = "y3"\nkind = "regression"\n')
    runs = tmp_path / "runs"
    rc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "search", "--data", str(spec), "--runs", str(runs)],
                        capture_output=True, text=True, timeout=120)
    assert rc.returncode == 2
    lines = [ln for ln in rc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "t.toml" in lines[0] and "y3" in lines[0]
    assert not runs.exists()


def test_finite_objective_values(tmp_path, data):
    study = _search(tmp_path, data, n_trials=4, top_k=0, n_seeds=1)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        assert math.isfinite(t.value)
        assert set(t.user_attrs["val_deltas"]) == set(data.task_names)


def test_best_trials_carry_their_topology_for_optuna_dashboard(tmp_path, data):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is a test dependency; install .[test]")
    study = _search(tmp_path, data, n_trials=5, top_k=0, n_seeds=1)
    assert study.metric_names == ["delta_m"]
    attrs = study._storage.get_study_system_attrs(study._study_id)
    best = max(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    assert any(f"topology-trial-{best.number}" in k for k in attrs), sorted(attrs)[:10]
    notes = [v for k, v in attrs.items() if "note" in k and isinstance(v, str)]
    assert any(f"Trial {best.number}" in v for v in notes)


# ------------------------------------------------- matched control, budget, pruning
class _PruneAll(optuna.pruners.BasePruner):
    """The most aggressive pruner: every trial that reported anything is pruned."""

    def prune(self, study, trial) -> bool:
        return bool(trial.intermediate_values)


def _confirming_space() -> SearchSpace:
    d = load_space("tiny").to_dict()
    d["baseline"].update(trials=3, confirm_seeds=2, confirm_top=2)
    return SearchSpace.from_dict(d, source="confirm.toml")


@pytest.fixture(scope="module")
def pruned_study(data):
    """References first, then sampled candidates, all under a pruner that prunes at the first report."""
    space = _confirming_space()
    cfg, tb = SearchConfig(n_trials=10), TrainConfig(device="cpu")  # 4 references, up to 4 affinity trees, others
    study = prepare_study(optuna.storages.InMemoryStorage(), "p", data, SOURCE, space, cfg, tb)
    baselines = ensure_baselines(study, data, space, tb)
    enqueue_references(study, data, space, baselines)
    study.pruner = _PruneAll()
    study.optimize(make_objective(study, data, space, cfg, tb, baselines), n_trials=10)
    return study, space, baselines


def test_references_and_affinity_trees_are_never_pruned_and_the_independent_one_is_the_control(pruned_study):
    study, _, baselines = pruned_study
    trials = study.get_trials(deepcopy=False)
    refs = [t for t in trials if t.user_attrs.get("reference")]
    assert {t.user_attrs["reference"] for t in refs} == {"independent", "shared-bottom", "mmoe", "cross-stitch"}
    assert all(t.state == TrialState.COMPLETE for t in refs)
    trained = [t for t in refs if not t.user_attrs.get("control")]
    assert trained and all(len(t.intermediate_values) >= 2 for t in trained)  # reported, yet not pruned
    control = [t for t in refs if t.user_attrs.get("control")]
    assert [t.user_attrs["reference"] for t in control] == ["independent"]
    assert control[0].value == 0.0 and set(control[0].user_attrs["val_deltas"].values()) == {0.0}
    assert control[0].user_attrs["val_metrics"] == {k: b.val_metric for k, b in baselines.items()}
    proposed = [t for t in trials if t.user_attrs.get("affinity_tree") is not None]
    assert proposed and all(t.state == TrialState.COMPLETE and len(t.intermediate_values) >= 2 for t in proposed)
    others = [t for t in trials if not t.user_attrs.get("reference") and t not in proposed]
    assert others and all(t.state == TrialState.PRUNED for t in others)
    assert all(t.user_attrs["status"] == "pruned at step 10" for t in others)


def test_intermediate_values_are_keyed_by_optimizer_steps(pruned_study, data):
    study, space, _ = pruned_study
    cap, every = space.fields["train.max_steps"].value, space.fields["train.eval_every"].value
    reported = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    assert reported
    for t in reported:
        steps = sorted(t.intermediate_values)
        assert all(s % every == 0 and s <= cap for s in steps), steps
        if t.state == TrialState.COMPLETE:  # early stopping or the cap ends it where the record says
            assert steps[-1] == t.user_attrs["steps_run"]
    pruner = make_pruner(SearchConfig(), space, TrainConfig())
    assert (pruner._min_resource, pruner._max_resource) == (cap // 4, cap) == (15, step_cap(space, TrainConfig()))
    median = make_pruner(SearchConfig(pruner="median"), space, TrainConfig())
    assert median._n_warmup_steps == cap // 4 - 1


def test_the_objective_asks_hyperband_only_at_its_rungs(data, monkeypatch):
    """Each ask reads storage (~3 ms): a sampled trial asks at the first report past each rung, not at every one."""
    space = _confirming_space()
    cfg, tb = SearchConfig(n_trials=9), TrainConfig(device="cpu")
    study = prepare_study(optuna.storages.InMemoryStorage(), "asks", data, SOURCE, space, cfg, tb)
    baselines = ensure_baselines(study, data, space, tb)
    enqueue_references(study, data, space, baselines)
    study.pruner = make_pruner(cfg, space, tb, data)
    asks, should_prune = [], optuna.Trial.should_prune

    def spy(trial):
        asks.append((trial.number, max(study._storage.get_trial(trial._trial_id).intermediate_values)))
        return should_prune(trial)

    monkeypatch.setattr(optuna.Trial, "should_prune", spy)
    study.optimize(make_objective(study, data, space, cfg, tb, baselines), n_trials=9)
    first, every = study.pruner._min_resource, space.fields["train.eval_every"].value
    rungs = [first * 3**j for j in range(3)]  # 15, 45, 135 on the tiny space's 60-step cap
    asked = {n: [s for m, s in asks if m == n] for n, _ in asks}
    assert asked, "no sampled trial reached the first rung"
    for n, steps in asked.items():
        expected = [min(s for s in range(every, 10**4, every) if s >= r) for r in rungs]
        assert steps == expected[:len(steps)], (n, steps)  # the first report at or past each rung, in order
        reports = study.trials[n].intermediate_values
        assert len(steps) < len(reports)  # fewer asks than reports


def test_every_candidate_reference_and_baseline_run_has_one_budget(pruned_study, data):
    study, space, _ = pruned_study
    budget = {k: space.fields[f"train.{k}"].value for k in BUDGET_KEYS if f"train.{k}" in space.fields}
    assert budget["max_steps"] == 60 and budget["patience"] == 3
    runs = [t.user_attrs["train"] for t in study.get_trials(deepcopy=False)]
    bstudy = optuna.load_study(study_name=baseline_study_name("p"), storage=study._storage)
    runs += [BaselineTrialRecord.from_trial(t).train for t in bstudy.get_trials(deepcopy=False)]
    assert len(runs) >= 7 + 3
    for train in runs:
        assert {k: train.get(k) for k in budget} == budget


def test_baselines_choose_per_task_on_the_mean_of_confirmation_seeds(pruned_study, data):
    study, space, baselines = pruned_study
    bstudy = optuna.load_study(study_name=baseline_study_name("p"), storage=study._storage)
    tuning = [t for t in bstudy.trials if confirmation_of(t) is None]
    confirm = [t for t in bstudy.trials if confirmation_of(t) is not None]
    assert len(tuning) == 3 and confirm and all(t.state == TrialState.COMPLETE for t in confirm)
    seeds = tuple(confirmation_seeds(2))
    shortlisted = {}  # tuning trial -> the tasks whose two best single-seed runs it holds
    for spec in data.tasks:
        better = sign(spec.primary_metric)
        ranked = sorted((t for t in tuning if t.state == TrialState.COMPLETE),
                        key=lambda t: (-better * t.user_attrs["val_metrics"][spec.name][spec.primary_metric], t.number))
        for t in ranked[:2]:
            shortlisted.setdefault(t.number, []).append(spec.name)
    assert {confirmation_of(t)[1] for t in confirm} == set(shortlisted)
    for t in confirm:  # a confirmation run trains the tasks that shortlisted its configuration, no other
        assert list(confirmation_tasks(t)) == shortlisted[confirmation_of(t)[1]]
        assert sorted(t.user_attrs["val_metrics"]) == sorted(shortlisted[confirmation_of(t)[1]])
    means = {}  # (tuning trial, task) -> mean over the confirmation seeds
    for number, tasks in shortlisted.items():
        for name in tasks:
            spec = next(s for s in data.tasks if s.name == name)
            vals = [t.user_attrs["val_metrics"][name][spec.primary_metric] for t in confirm
                    if confirmation_of(t)[1] == number]
            assert len(vals) == len(seeds)
            means[number, name] = sum(vals) / len(vals)
    for spec in data.tasks:
        b = baselines[spec.name]
        assert b.seeds == seeds and len(b.seed_values) == 2
        assert b.val_metric == pytest.approx(means[b.trial, spec.name])
        assert b.val_sd == pytest.approx(abs(b.seed_values[0] - b.seed_values[1]) / math.sqrt(2))
        assert b.val_cv == pytest.approx(b.val_sd / abs(b.val_metric))
        assert b.tuning_val_metric == bstudy.trials[b.trial].user_attrs["val_metrics"][spec.name][spec.primary_metric]
        assert b.width_scale == bstudy.trials[b.trial].params.get("baseline_width_mult", 1.0)
        # the task's two best single-seed configurations were confirmed; it keeps the better mean
        better = sign(spec.primary_metric)  # +1: higher is better
        ranked = sorted((t for t in tuning if t.state == TrialState.COMPLETE),
                        key=lambda t: -better * t.user_attrs["val_metrics"][spec.name][spec.primary_metric])[:2]
        best_mean = max((means[t.number, spec.name] for t in ranked), key=lambda m: better * m)
        assert b.trial in {t.number for t in ranked} and b.val_metric == pytest.approx(best_mean)


def test_confirmation_runs_of_one_network_train_together_and_equal_their_part_of_the_all_task_run(data, monkeypatch):
    from sharesearch.search import _baselines
    from sharesearch.training import train, train_population

    d = _confirming_space().to_dict()
    d["baseline"]["width_mult"] = 1.0  # every configuration is one network; only the learning rate differs
    d["train"]["patience"] = 0  # no early stop: a task's run then cannot depend on the tasks beside it
    space, tb = SearchSpace.from_dict(d, source="one-net.toml"), TrainConfig(device="cpu")
    calls = []

    def spy(graph, data_, configs, **kw):
        calls.append(len(configs))
        return train_population(graph, data_, configs, **kw)

    monkeypatch.setattr(_baselines, "train_population", spy)
    study = prepare_study(optuna.storages.InMemoryStorage(), "one", data, SOURCE, space,
                          SearchConfig(n_trials=1, references=()), tb)
    ensure_baselines(study, data, space, tb, progress=False)
    bstudy = optuna.load_study(study_name=baseline_study_name("one"), storage=study._storage)
    confirm = [t for t in bstudy.trials if confirmation_of(t) is not None]
    configs = {confirmation_of(t)[1] for t in confirm}
    networks = {}  # the tasks a confirmation run trains -> its runs (every configuration and seed)
    for t in confirm:
        networks.setdefault(confirmation_tasks(t), []).append(t)
    assert len(configs) >= 2 and sorted(calls) == sorted(len(v) for v in networks.values())  # one call per network
    for t in confirm:
        rec = BaselineTrialRecord.from_trial(t)
        every = train(SharingGraph.independent(data.tasks, SharingGraph.from_dict(rec.graph).backbone), data,
                      tb.updated(**rec.train, seed=rec.seed), keep_model=False)
        assert sorted(rec.val_metrics) == sorted(confirmation_tasks(t))
        for name in confirmation_tasks(t):
            spec = next(s for s in data.tasks if s.name == name)
            assert rec.val_metrics[name][spec.primary_metric] == pytest.approx(
                every.val_metrics[name][spec.primary_metric], rel=1e-4)


# ------------------------------------------------- the baseline phase's progress bar
def _bar_counts(err: str) -> list[tuple[int, int]]:
    """Every ``done/total`` a ``baselines`` tqdm bar printed (carriage returns split its updates)."""
    import re

    return [(int(n), int(t)) for n, t in re.findall(r"baselines:[^\r\n]*?(\d+)/(\d+) \[", err)]


def test_baseline_phase_bar_counts_every_planned_run_to_its_end(data, capsys):
    space, tb = _confirming_space(), TrainConfig(device="cpu")  # 3 tuning trials, 2 seeds x top 2 to confirm
    study = prepare_study(optuna.storages.InMemoryStorage(), "bar", data, SOURCE, space,
                          SearchConfig(n_trials=1, references=()), tb)
    ensure_baselines(study, data, space, tb, progress=True)
    counts = _bar_counts(capsys.readouterr().err)
    bstudy = optuna.load_study(study_name=baseline_study_name("bar"), storage=study._storage)
    planned = len(bstudy.trials)  # tuning trials + the confirmation runs enqueued
    assert planned > space.baseline_trials and len(counts) >= 2
    assert counts[-1] == (planned, planned)
    assert counts[0][0] == 0 and all(a[0] <= b[0] for a, b in zip(counts, counts[1:]))  # counts up from 0
    assert all(t >= planned for _, t in counts)  # before the shortlist, the plan's upper bound


def test_a_search_shows_the_baseline_bar_before_the_trials_bar_and_neither_when_quiet(tmp_path, data, capsys):
    # the trials' bar used to sit at 0 through the baseline phase, whose own bar showed only on a terminal
    for name, progress in (("shown", True), ("quiet", False)):
        run_search(data, SOURCE, load_space("tiny"), runs_dir=tmp_path, study_name=name, verdict=False,
                   config=SearchConfig(n_trials=1, references=()), train_base=TrainConfig(device="cpu"),
                   progress=progress)
        err = capsys.readouterr().err
        if not progress:
            assert "baselines:" not in err and "trials:" not in err
            continue
        assert _bar_counts(err)[-1][0] == _bar_counts(err)[-1][1] > 0  # the baseline phase, counted to its end
        assert err.rindex("baselines:") < err.index("trials:")  # the trials' bar starts after it


def test_baseline_phase_bar_is_hidden_off_a_terminal_unless_asked(data, capsys):
    space, tb = load_space("tiny"), TrainConfig(device="cpu")
    for name, progress in (("quiet", None), ("off", False)):
        study = prepare_study(optuna.storages.InMemoryStorage(), name, data, SOURCE, space,
                              SearchConfig(n_trials=1, references=()), tb)
        assert set(ensure_baselines(study, data, space, tb, progress=progress)) == set(data.task_names)
        assert "baselines" not in capsys.readouterr().err  # captured stderr is not a terminal

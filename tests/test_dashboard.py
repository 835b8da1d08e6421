"""optuna-dashboard notes: the study note carries the verdict, each trial's note says what the trial is."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from sharesearch import fmt
from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.search import (SearchConfig, TrialRecord, annotate_for_dashboard, ensure_baselines, make_objective,
                                open_storage, optimize_in_populations, prepare_study, study_results)
from sharesearch.search._dashboard import study_note
from sharesearch.search._records import write_verdict
from sharesearch.space import SearchSpace, load_space
from sharesearch.training import TrainConfig
from sharesearch.verdict import task_verdicts

optuna_dashboard = pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is a test dependency")

OPTIONS = {"n": 200, "d": 4, "seed": 0, "clusters": [[0, 1]]}


def _study(tmp_path) -> optuna.Study:
    """A SQLite study with a control, a reference, a sampled trial, its companion and a retry (no training)."""
    data = load_data("synthetic-mmoe", **OPTIONS)
    study = prepare_study(open_storage(f"sqlite:///{tmp_path / 'study.db'}"), "s", data,
                          {"source": "synthetic-mmoe", "options": OPTIONS}, load_space("tiny"),
                          SearchConfig(n_trials=4), TrainConfig(device="cpu"))
    backbone = {"name": "mlp", "input_shape": [4], "widths": [8, 4]}
    ind = SharingGraph.independent(data.tasks, backbone).to_dict()
    shared = SharingGraph.shared_bottom(data.tasks, backbone).to_dict()
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    for value, rec, system in [
        (0.0, TrialRecord(reference="independent", control=True, graph=ind, status="control"), {}),
        (0.02, TrialRecord(reference="shared-bottom", graph=shared, status="trained",
                           val_deltas={"t0": 0.03, "t1": 0.01}), {}),
        (0.05, TrialRecord(graph=shared, sampler_seed=7, status="trained", val_deltas={"t0": 0.06, "t1": 0.04}), {}),
        (0.04, TrialRecord(graph=shared, status="trained", val_deltas={"t0": 0.05, "t1": 0.03}, companion_of=2),
         {"fixed_params": {"lr": 0.01}}),
        (0.03, TrialRecord(graph=shared, status="trained", val_deltas={"t0": 0.04, "t1": 0.02}),
         {"fixed_params": {"lr": 0.01}, "failed_trial": 2, "retry_history": [2]}),
    ]:
        study.add_trial(optuna.create_trial(state=TrialState.COMPLETE, value=value, params={"lr": 0.01},
                                            distributions=dist, user_attrs=rec.to_attrs(), system_attrs=system))
    return study


def _verdict(recommend: bool) -> dict:
    v = task_verdicts({"t0": [0.80, 0.81, 0.79], "t1": [1.20, 1.25, 1.22]},
                      {"t0": [1.00, 1.01, 0.99], "t1": [1.00, 1.02, 0.98]}, {"t0": "minimize", "t1": "minimize"})
    out = {"protocol": {"seeds": [1000, 1001, 1002]},
           "candidates": [{"name": "trial 2", "trial": 2, "graph": None, "verdict": v.to_dict()}]}
    if recommend:
        out["recommendation"] = {"overall": "share as in trial 2; keep task t1 independent", "delta_m": 0.1,
                                 "per_task": {"t0": {"choice": "trial 2", "why": "positive transfer"},
                                              "t1": {"choice": "independent", "why": "negative transfer"}}}
    return out


def test_the_study_note_carries_the_verdict(tmp_path):
    study = _study(tmp_path)
    verdict = _verdict(recommend=True)
    write_verdict(study, verdict)
    assert annotate_for_dashboard(study)
    note = optuna_dashboard.get_note(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}"))
    assert "**share as in trial 2; keep task t1 independent** (test Δm +10.00%)" in note
    assert "| t1 | independent | negative transfer |" in note
    rows = {line.split(" | ")[0]: line for line in note.splitlines() if line.startswith("| t")}
    for tv in verdict["candidates"][0]["verdict"]["tasks"]:
        mark = {"positive transfer": "▲", "negative transfer": "▼"}[tv["verdict"]]
        cell = f"{fmt.delta(tv['delta'])} {fmt.interval(*tv['delta_ci'], fmt.delta)} {mark}"
        assert cell in rows[f"| {tv['task']} (rmse ↓)"]  # the metric and its direction name each row
    assert fmt.delta(verdict["candidates"][0]["verdict"]["delta_m"]) in note


def test_without_a_recommendation_the_note_falls_back_to_the_best_trial(tmp_path):
    study = _study(tmp_path)
    assert study_note({"tasks": [], "trials": []}).startswith("## Recommendation\n\nNo verdict yet and no")
    annotate_for_dashboard(study)
    assert "No verdict yet: the best trial on validation is trial 2 (validation Δm +5.00%)" in \
        optuna_dashboard.get_note(study)
    write_verdict(study, _verdict(recommend=False))
    results = study_results(study)
    results.pop("recommendation", None)  # a verdict of an older version: no recommendation stored
    note = study_note(results)
    assert "Best trial on validation: trial 2 (validation Δm +5.00%)" in note and "No verdict yet" not in note
    annotate_for_dashboard(study)  # a new verdict replaces the note
    assert "No verdict yet" not in optuna_dashboard.get_note(study)


def test_each_trial_note_says_what_the_trial_is(tmp_path):
    study = _study(tmp_path)
    annotate_for_dashboard(study, top=1)
    notes = [optuna_dashboard.get_note(optuna.trial.Trial(study, t._trial_id)) for t in study.trials]
    assert notes[0].startswith("## Trial 0: the control")
    assert notes[1].startswith("## Trial 1: reference architecture `shared-bottom`")
    assert notes[2].startswith("## Trial 2: sampled: a candidate the sampler proposed (sampler seed 7)")
    assert notes[3].startswith("## Trial 3: companion of trial 2: the same topology")
    assert notes[4].startswith("## Trial 4: sampled") and "a retry of trial 2, whose worker died" in notes[4]
    assert "| t0 | +6.00% |" in notes[2] and "stage 0" in notes[2]
    assert "graph object `topology-trial-2`" in notes[2] and "graph object" not in notes[3]  # top=1: the best only


def test_a_search_names_the_trial_each_companion_trains_beside(tmp_path):
    """optimize_in_populations records companion_of on the companions it enqueues; their notes name that trial."""
    data = load_data("synthetic-mmoe", **OPTIONS)
    d = load_space("tiny").to_dict()
    d["train"]["weighting"] = "equal"  # companions need a weighting a population can share
    space = SearchSpace.from_dict(d, source="pop.toml")
    cfg, tb = SearchConfig(n_trials=3, references=(), population=3), TrainConfig(device="cpu", max_steps=20)
    study = prepare_study(open_storage(f"sqlite:///{tmp_path / 'study.db'}"), "s", data,
                          {"source": "synthetic-mmoe", "options": OPTIONS}, space, cfg, tb)
    runner = make_objective(study, data, space, cfg, tb, ensure_baselines(study, data, space, tb, progress=False))
    optimize_in_populations(study, runner, space, population=3, target=3)
    lead, *companions = study.get_trials(deepcopy=False)
    assert TrialRecord.from_trial(lead).companion_of is None and len(companions) == 2
    assert [TrialRecord.from_trial(t).companion_of for t in companions] == [lead.number] * 2
    annotate_for_dashboard(study)
    for t in companions:
        note = optuna_dashboard.get_note(optuna.trial.Trial(study, t._trial_id))
        assert note.startswith(f"## Trial {t.number}: companion of trial {lead.number}: the same topology")


def test_an_affinity_tree_tried_again_names_the_trial_whose_settings_it_took():
    from sharesearch.search._dashboard import trial_kind
    from sharesearch.search._records import TrialRecord

    trial = optuna.trial.create_trial(value=0.1)
    assert trial_kind(TrialRecord(affinity_tree=1), trial).startswith("affinity tree 1: a cut of the task-affinity")
    assert trial_kind(TrialRecord(affinity_tree=1, tuned_from=7), trial).startswith(
        "affinity tree 1 tried again with the settings of trial 7")

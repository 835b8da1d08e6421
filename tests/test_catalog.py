"""Finding studies: run folders, names and prefixes, readable default names, report folders, the chosen graph."""

from __future__ import annotations

import json

import optuna
import pytest

from sharesearch.data import load_data
from sharesearch.search import SearchError, default_study_name, open_storage
from sharesearch.search._catalog import (chosen_architecture, default_name, latest_report_dir, new_report_dir,
                                         report_dir, resolve_study, run_folders)
from sharesearch.search._study import legacy_study_name
from sharesearch.space import load_space


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs/ with three empty studies, each in its own run folder, and a folder that holds no study (read only)."""
    root = tmp_path_factory.mktemp("catalog") / "runs"
    for name in ("planted-tiny-a1b2c3", "planted-default-d4e5f6", "null-tiny-000111"):
        optuna.create_study(study_name=name, storage=open_storage(None, name, root))
    (root / "notes").mkdir()
    return root


def test_run_folders_are_the_folders_holding_a_study(runs):
    assert [f.name for f in run_folders(runs)] == ["null-tiny-000111", "planted-default-d4e5f6",
                                                   "planted-tiny-a1b2c3"]
    assert run_folders(runs / "missing") == []


@pytest.mark.parametrize("ref, name", [("null-tiny-000111", "null-tiny-000111"), ("null", "null-tiny-000111"),
                                       ("planted-t", "planted-tiny-a1b2c3"), ("planted-d", "planted-default-d4e5f6")])
def test_a_name_or_unique_prefix_finds_the_study(runs, ref, name):
    ref = resolve_study(runs, ref)
    assert (ref.study_name, ref.run_dir) == (name, runs / name)
    assert ref.storage_url == f"sqlite:///{runs / name / 'study.db'}"


def test_a_run_folder_or_the_start_of_its_path_finds_the_study(runs):
    assert resolve_study("elsewhere", str(runs / "null-tiny-000111")).study_name == "null-tiny-000111"
    assert resolve_study("elsewhere", str(runs / "planted-t")).run_dir == runs / "planted-tiny-a1b2c3"


@pytest.mark.parametrize("ref, culprits", [
    ("planted", ["'planted'", "matches 2", "planted-default-d4e5f6, planted-tiny-a1b2c3"]),
    ("nope", ["no study 'nope'", "null-tiny-000111"]),
    (None, ["give a run folder", "planted-tiny-a1b2c3"]),
    ("notes", ["no study 'notes'"]),
])
def test_an_ambiguous_or_unknown_reference_is_one_line_naming_the_choices(runs, ref, culprits):
    with pytest.raises(SearchError) as e:
        resolve_study(runs, ref)
    assert "\n" not in str(e.value) and all(c in str(e.value) for c in culprits)


def test_a_folder_without_a_study_and_a_missing_path_are_refused(runs):
    with pytest.raises(SearchError, match="not a run folder"):
        resolve_study(runs, str(runs / "notes"))
    with pytest.raises(SearchError, match="no such run folder"):
        resolve_study(runs, str(runs / "zzz" / "x"))


def test_a_storage_url_takes_a_prefix_among_its_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'many.db'}"
    for name in ("alpha-1", "alpha-2", "beta", "beta.baselines"):
        optuna.create_study(study_name=name, storage=url)
    assert resolve_study(tmp_path / "runs", "b", storage=url).study_name == "beta"  # the companion is not a study
    assert resolve_study(tmp_path / "runs", "alpha-1", storage=url).run_dir == tmp_path / "runs" / "alpha-1"
    assert resolve_study(tmp_path, "gamma", storage=url).study_name == "gamma"  # not there yet: loading says so
    with pytest.raises(SearchError, match="alpha-1, alpha-2"):
        resolve_study(tmp_path, "alpha", storage=url)


def test_default_names_are_readable_unique_and_keep_an_old_study(tmp_path):
    data, tiny, default = load_data("synthetic-mmoe", n=200, seed=0), load_space("tiny"), load_space("default")
    name = default_study_name(data, tiny)
    assert name.startswith("synthetic-mmoe-tiny-") and name != default_study_name(data, default)
    assert name != default_study_name(load_data("synthetic-mmoe", n=200, seed=1), tiny)
    assert default_name(data, tiny, tmp_path / "runs") == name
    (tmp_path / "runs" / legacy_study_name(data, tiny)).mkdir(parents=True)  # a study from before readable names
    assert default_name(data, tiny, tmp_path / "runs") == legacy_study_name(data, tiny)


def test_each_verdict_report_goes_beside_the_earlier_ones(tmp_path):
    base = tmp_path / "run"
    assert new_report_dir(base) == base and latest_report_dir(base) == base
    base.mkdir()
    (base / "report.json").write_text('{"verdict": null}')  # a search without a verdict: nothing to keep
    assert new_report_dir(base) == base
    (base / "report.json").write_text('{"verdict": {"arms": []}}')
    assert new_report_dir(base) == base / "verdict-2"
    (base / "verdict-2").mkdir()
    assert new_report_dir(base) == base / "verdict-3" and latest_report_dir(base) == base / "verdict-2"
    (base / "verdict-10").mkdir()
    assert new_report_dir(base) == base / "verdict-11" and latest_report_dir(base) == base / "verdict-10"
    (base / "report.json").write_text("{not json")  # unreadable: kept, never overwritten
    assert new_report_dir(tmp_path / "run") != base


def test_a_report_goes_to_the_folder_of_its_own_verdict(tmp_path):
    base = tmp_path / "run"
    v1, v2, v3 = ({"computed_at": f"2025-01-01T1{i}:00:00", "protocol": {"seeds": [1, 2]}} for i in range(3))
    assert report_dir(base, None) == base and report_dir(base, v1) == base
    base.mkdir()
    (base / "report.json").write_text(json.dumps({"verdict": v1}))
    (base / "verdict-2").mkdir()
    (base / "verdict-2" / "report.json").write_text(json.dumps({"verdict": v2}))
    assert report_dir(base, v1) == base and report_dir(base, v2) == base / "verdict-2"  # rewritten in place
    assert report_dir(base, v3) == base / "verdict-3"  # a verdict not written yet: beside the others
    assert report_dir(base, {**v1, "protocol": {"seeds": [3, 4]}}) == base / "verdict-3"
    assert report_dir(base, {"arms": []}) == base / "verdict-2"  # no time stamp (older verdicts): the latest


def _results(recommendation=None):
    g = {"graph": {"tasks": ["a", "b"]}}
    return {"study": "s", "best_trials": [1], "recommendation": recommendation, "trials": [
        {"number": 0, "reference": "independent", "graph": {"kind": "independent"}, "val_deltas": {"a": 0.0}},
        {"number": 1, "reference": None, "graph": g, "val_deltas": {"a": 0.1, "b": -0.02}},
        {"number": 2, "reference": None, "graph": None, "val_deltas": None}]}


def test_the_chosen_architecture_is_the_recommendation_on_test():
    rec = {"overall": "share as in trial 1", "arm": "trial 1", "trial": 1, "graph": {"tasks": ["x"]},
           "test_deltas": {"a": 0.05, "b": 0.01}}
    chosen = chosen_architecture(_results(rec))
    assert (chosen.graph, chosen.deltas, chosen.delta_split, chosen.trial) == (
        {"tasks": ["x"]}, {"a": 0.05, "b": 0.01}, "test", 1)
    assert "share as in trial 1" in chosen.note
    keep = chosen_architecture(_results({**rec, "arm": "independent", "trial": None, "graph": None}))
    assert (keep.graph, keep.delta_split) == ({"kind": "independent"}, "test")


def test_a_trial_is_drawn_on_validation_and_no_verdict_falls_back_to_the_best_trial():
    chosen = chosen_architecture(_results({"overall": "x", "graph": {"t": 1}, "test_deltas": {}}), trial=0)
    assert (chosen.graph, chosen.delta_split, chosen.deltas) == ({"kind": "independent"}, "validation", {"a": 0.0})
    best = chosen_architecture(_results(None))
    assert (best.trial, best.delta_split) == (1, "validation") and "no verdict yet" in best.note
    with pytest.raises(SearchError, match="no trained trial 2"):
        chosen_architecture(_results(None), trial=2)

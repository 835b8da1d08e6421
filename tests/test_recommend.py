"""The recommendation rule on hand-built verdicts: share, keep one task independent, keep independent models,
and a control that disagrees with itself."""

from __future__ import annotations

import json

from sharesearch.verdict import Recommendation, recommend, task_verdicts

DIRS = {"a": "maximize", "b": "maximize", "c": "minimize"}
BASE = {"a": [0.80, 0.81, 0.79, 0.80], "b": [0.70, 0.71, 0.69, 0.70], "c": [10.0, 10.1, 9.9, 10.0]}


def arm(name: str, trial: int | None, shift: dict[str, float], val: float | None = None) -> dict:
    """An arm dict as compute_verdict stores it: candidate = baseline + shift per task (tiny jitter);
    ``val`` its validation Δm (None: a verdict stored before arms carried one)."""
    jit = [0.0, 0.002, -0.002, 0.001]
    cand = {t: [x + shift.get(t, 0.0) + j for x, j in zip(v, jit)] for t, v in BASE.items()}
    v = task_verdicts(cand, BASE, DIRS, n_resamples=200)
    out = {"name": name, "trial": trial, "graph": {"tag": name}, "verdict": v.to_dict()}
    return out if val is None else {**out, "val_delta_m": val}


AA = arm("independent", 0, {})


def test_share_the_arm_with_the_largest_gain_and_no_harm():
    small = arm("shared-bottom", 1, {"a": 0.03})
    big = arm("trial 23", 23, {"a": 0.08, "b": 0.07})
    harmful = arm("trial 9", 9, {"a": 0.2, "c": 3.0})  # larger Δm on a but harms c: not preferred
    r = recommend([AA, small, big, harmful])
    assert r.overall == "share as in trial 23" and r.kind == "share"
    assert (r.arm, r.trial, r.graph) == ("trial 23", 23, {"tag": "trial 23"})
    assert {t: c.choice for t, c in r.per_task.items()} == {"a": "share", "b": "share", "c": "share"}
    assert r.per_task["a"].why.startswith("positive transfer: Δ +")
    assert "overall gain" in r.per_task["c"].why
    assert r.test_deltas["a"] > 0.09 and r.control_ok is True


def test_keep_one_task_independent_when_the_best_arm_harms_it():
    r = recommend([AA, arm("mmoe", 2, {"a": 0.1, "b": 0.08, "c": 2.0}), arm("trial 4", 4, {"a": 0.02, "c": 3.0})])
    assert r.overall == "share as in mmoe (trial 2); keep task c independent"
    assert r.kind == "share-partly" and r.arm == "mmoe"
    assert r.per_task["c"].choice == "independent" and "negative transfer" in r.per_task["c"].why
    assert r.per_task["a"].choice == "share"
    # the shipped Δm counts the independent task as 0: the mean of a's and b's gains over three tasks
    assert abs(r.delta_m - (r.test_deltas["a"] + r.test_deltas["b"]) / 3) < 1e-12


def test_keep_independent_models_when_nothing_credibly_helps():
    r = recommend([AA, arm("shared-bottom", 1, {"a": -0.1}), arm("trial 3", 3, {})])
    assert r.overall.startswith("keep independent models") and r.kind == "independent"
    assert r.arm == "independent" and r.trial == 0
    assert all(c.choice == "independent" for c in r.per_task.values())
    assert "best arm on it" in r.per_task["a"].why
    assert set(r.test_deltas) == set(DIRS)


def test_a_control_that_disagrees_with_itself_keeps_only_gains_beyond_that_disagreement():
    bad_aa = arm("independent", 0, {"a": 0.05, "b": 0.05})  # the control trained again "gains" ~4.5%
    small = recommend([bad_aa, arm("trial 23", 23, {"a": 0.07, "b": 0.07}, val=0.1)])  # Δm interval ~[5.3, 7.2]%
    assert small.control_ok is False and small.kind == "independent"
    assert "control check failed" in small.control_note and "disagreement with itself" in small.overall
    big = recommend([bad_aa, arm("trial 23", 23, {"a": 0.3, "b": 0.3}, val=0.1)])  # ~26%: far beyond it
    assert big.control_ok is False and big.overall == "share as in trial 23"
    assert any("control check failed" in n and "only a Δm interval above" in n for n in big.notes)


def test_without_an_independent_arm_the_check_is_unknown_and_round_trips_through_json():
    r = recommend([arm("trial 5", 5, {"b": 0.1})])
    assert r.control_ok is None and r.overall == "share as in trial 5"
    r = r.with_model_dir("runs/s/model")
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert {"overall", "arm", "trial", "graph", "per_task", "test_deltas", "model_dir"} <= set(d)
    assert Recommendation.from_dict(d) == r


def test_unreadable_arms_are_skipped():
    r = recommend([{"name": "trial 1", "trial": 1, "verdict": {"broken": True}}, arm("trial 2", 2, {"a": 0.1})])
    assert r.arm == "trial 2"


def test_the_arm_is_chosen_on_validation_and_the_test_judges_only_that_one():
    test_winner = arm("trial 9", 9, {"a": 0.15, "b": 0.1}, val=0.01)  # largest test gain, weak on validation
    val_winner = arm("trial 23", 23, {"a": 0.05}, val=0.06)
    r = recommend([AA, test_winner, val_winner])
    assert r.overall == "share as in trial 23" and r.trial == 23 and not r.notes


def test_a_validation_choice_that_does_not_help_on_test_keeps_independent_models():
    r = recommend([AA, arm("trial 9", 9, {"a": 0.15}, val=0.01), arm("trial 23", 23, {}, val=0.06)])
    assert r.kind == "independent" and "best arm on validation" in r.overall and "trial 23" in r.overall


def test_the_validation_choice_keeps_the_tasks_it_harms_on_test_independent():
    r = recommend([AA, arm("trial 4", 4, {"a": 0.1, "c": 3.0}, val=0.05), arm("mmoe", 2, {"a": 0.02}, val=0.01)])
    assert r.overall == "share as in trial 4; keep task c independent" and r.per_task["c"].choice == "independent"


def test_a_verdict_without_validation_scores_says_it_chose_on_test():
    r = recommend([AA, arm("trial 23", 23, {"a": 0.08})])
    assert r.arm == "trial 23" and any("chosen on test" in n for n in r.notes)


def _runs(out: dict, per_seed: list[float], seeds=(100, 101, 102, 103)) -> dict:
    """``out`` with per-seed validation Δm (as compute_verdict stores it) and their mean as ``val_delta_m``."""
    return {**out, "runs": {"seeds": list(seeds)}, "val_delta_m_runs": per_seed,
            "val_delta_m": sum(per_seed) / len(per_seed)}


def test_the_arms_the_chosen_one_cannot_be_told_apart_from_on_validation_are_named():
    """Paired by seed: a runner-up within seed noise is named with its interval; a clearly worse arm is not;
    an arm with fewer than two paired seeds (or none stored) cannot be compared and is not named."""
    best = _runs(arm("trial 23", 23, {"a": 0.08, "b": 0.07}), [0.100, 0.120, 0.080, 0.110])
    close = _runs(arm("trial 9", 9, {"a": 0.07}), [0.095, 0.125, 0.070, 0.105])
    worse = _runs(arm("shared-bottom", 1, {"a": 0.02}), [0.020, 0.030, 0.010, 0.020])
    other_seeds = _runs(arm("trial 4", 4, {"a": 0.07}), [0.09, 0.1, 0.1, 0.1], seeds=(7, 8, 9, 103))
    old = arm("mmoe", 2, {"a": 0.07}, val=0.09)  # a verdict stored before per-seed values
    r = recommend([AA, best, close, worse, other_seeds, old])
    assert r.overall == "share as in trial 23"
    ties = [n for n in r.notes if n.startswith("on validation trial 23 is not distinguishable from")]
    assert len(ties) == 1 and "trial 9 (+" in ties[0] and "%]" in ties[0]
    assert all(x not in ties[0] for x in ("shared-bottom", "trial 4", "mmoe"))
    clear = recommend([AA, best, worse])
    assert not any(n.startswith("on validation") for n in clear.notes)
    assert Recommendation.from_dict(json.loads(json.dumps(r.to_dict()))).notes == r.notes

"""Training logs in the run folder: one CSV per trial, TensorBoard files only where the package is installed."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sharesearch.data import load_data
from sharesearch.search import SearchConfig, TrialRecord, baseline_study_name, run_search
from sharesearch.search._log import (LOGS_DIR, TB_DIR, EvalLog, baseline_log_name, run_folder,
                                     tensorboard_available, trial_log_name)
from sharesearch.space import load_space
from sharesearch.tasks import TaskSpec
from sharesearch.training import Progress, TrainConfig

SOURCE = {"source": "synthetic-mmoe", "options": {"n": 400, "d": 8, "seed": 1, "clusters": [[0, 1], [2]]}}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _progress(step: int, lr: float = 0.01, **losses) -> Progress:
    return Progress(epoch=0, step=step, examples=step * 32, evaluation=step // 4 - 1, lr=lr, total_steps=40,
                    **losses)


def test_each_evaluation_is_one_row_on_disk_at_once(tmp_path):
    tasks = [TaskSpec("a", "binary"), TaskSpec("b", "regression")]
    log = EvalLog(tmp_path, trial_log_name(3), tasks, steps_per_epoch=8, deltas=True)
    path = tmp_path / LOGS_DIR / "trial-00003.csv"
    log(0, {"a": 0.7, "b": 1.5}, _progress(4), deltas={"a": 0.1, "b": -0.2}, delta_m=-0.05)
    assert len(_rows(path)) == 1  # readable (tail -f) before the run ends, without close()
    log(0, {"a": 0.8, "b": float("nan")}, _progress(8, train_loss={"a": 0.4, "b": 0.9}, val_loss={"a": 0.5}),
        deltas={"a": 0.2, "b": float("nan")}, delta_m=float("nan"))
    log.close()
    first, second = _rows(path)
    assert list(first) == ["step", "epoch", "lr", "seconds", "a/train_loss", "a/val_loss", "a/val_auc", "a/delta",
                           "b/train_loss", "b/val_loss", "b/val_rmse", "b/delta", "delta_m"]
    assert (first["step"], float(first["epoch"]), float(first["a/val_auc"])) == ("4", 0.5, 0.7)
    assert float(first["delta_m"]) == -0.05 and first["a/train_loss"] == ""  # no losses handed over: empty
    assert float(second["epoch"]) == 1.0 and float(second["a/train_loss"]) == 0.4
    assert float(second["a/val_loss"]) == 0.5 and second["b/val_loss"] == ""
    assert second["b/val_rmse"] == "" and second["delta_m"] == ""  # not finite: empty, never "nan"
    tb = tmp_path / TB_DIR / "trial-00003"
    if tensorboard_available():
        assert any(f.name.startswith("events.out.tfevents") for f in tb.iterdir())
    else:
        assert not (tmp_path / TB_DIR).exists()


def test_a_baseline_run_logs_each_task_to_its_own_file(tmp_path):
    tasks = [TaskSpec("watch time", "regression"), TaskSpec("c", "binary")]
    log = EvalLog(tmp_path, lambda t: baseline_log_name(t, 4), tasks, steps_per_epoch=4, per_task=True,
                  tensorboard=False)
    log(0, {"watch time": 2.0, "c": 0.6}, _progress(4))
    (w,) = _rows(tmp_path / LOGS_DIR / "baseline-watch_time-00004.csv")
    (c,) = _rows(tmp_path / LOGS_DIR / "baseline-c-00004.csv")
    assert list(w) == ["step", "epoch", "lr", "seconds", "watch time/train_loss", "watch time/val_loss",
                       "watch time/val_rmse"]  # no Δ: a baseline is what Δ is measured against
    assert float(w["watch time/val_rmse"]) == 2.0 and float(c["c/val_auc"]) == 0.6


def test_run_folder_follows_the_storage():
    assert run_folder("sqlite:///runs/s/study.db", "s") == Path("runs/s")
    assert run_folder("sqlite:///studies/all.db", "s") == Path("studies/s")
    assert run_folder("journal:runs/s/journal.log", "s") == Path("runs/s")
    assert run_folder("mysql://u@h/db", "s") is None and run_folder(None, "s") is None


def test_a_search_logs_every_trained_trial_as_optuna_saw_it(tmp_path):
    data = load_data("synthetic-mmoe", **SOURCE["options"])
    study = run_search(data, SOURCE, load_space("tiny"), storage=f"sqlite:///{tmp_path / 'all.db'}",
                       study_name="s", config=SearchConfig(n_trials=5, top_k=1), verdict=False,
                       train_base=TrainConfig(device="cpu"), progress=False)
    logs = tmp_path / "s" / LOGS_DIR
    trained = [t for t in study.get_trials(deepcopy=False)
               if TrialRecord.from_trial(t).status in ("trained",) or t.state == TrialState.PRUNED
               and t.intermediate_values]
    assert trained
    for t in trained:
        rows = _rows(logs / f"{trial_log_name(t.number)}.csv")
        assert {int(r["step"]): float(r["delta_m"]) for r in rows} == pytest.approx(t.intermediate_values)
        assert all(math.isfinite(float(r["lr"])) and float(r["epoch"]) > 0 for r in rows)
        tasks = TrialRecord.from_trial(t).sharing_graph().tasks
        losses = [float(r[f"{task}/{kind}"]) for r in rows for task in tasks for kind in ("train_loss", "val_loss")]
        assert all(math.isfinite(v) and v > 0 for v in losses)  # every label is present: each loss is a number
    control = [t for t in study.get_trials(deepcopy=False) if TrialRecord.from_trial(t).control]
    assert control and not (logs / f"{trial_log_name(control[0].number)}.csv").exists()  # nothing trained
    assert (tmp_path / "s" / TB_DIR).exists() == tensorboard_available()


def test_baseline_runs_log_each_task_to_its_own_file(tmp_path):
    data = load_data("synthetic-mmoe", **SOURCE["options"])
    run_search(data, SOURCE, load_space("tiny"), runs_dir=tmp_path, study_name="s", config=SearchConfig(n_trials=1),
               verdict=False, train_base=TrainConfig(device="cpu"), progress=False)
    logs = tmp_path / "s" / LOGS_DIR
    url = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    bstudy = optuna.load_study(study_name=baseline_study_name("s"), storage=url)
    runs = [t for t in bstudy.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert runs  # tuning runs and confirmation runs (trained as populations) alike
    for t in runs:
        for spec in data.tasks:
            rows = _rows(logs / f"{baseline_log_name(spec.name, t.number)}.csv")
            assert rows and "delta_m" not in rows[0]
            assert all(math.isfinite(float(r[f"{spec.name}/{k}"])) for r in rows for k in ("train_loss", "val_loss"))
            best = max if spec.primary_metric == "auc" else min
            logged = best(float(r[f"{spec.name}/val_{spec.primary_metric}"]) for r in rows)
            assert logged == pytest.approx(t.user_attrs["val_metrics"][spec.name][spec.primary_metric])

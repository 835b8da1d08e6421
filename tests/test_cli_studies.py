"""The command line finds studies: ``studies``, run folders and prefixes, verdict history, data options, help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest

from sharesearch_cli import cli  # the installed command: cli.py at the root


DATA = ["--data", "synthetic-mmoe", "--data-option", "n=300", "--data-option", "d=8",
        "--data-option", "clusters=[[0,1],[2]]"]
FAST = ["--seeds", "2", "--top-k", "0", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs/ with one small searched and judged study under its default name (a few seconds)."""
    root = tmp_path_factory.mktemp("cli-studies") / "runs"
    assert cli.main(["search", *DATA, "--space", "tiny", "--runs", str(root), "--n-trials", "2", *FAST]) == 0
    return root


def _name(runs: Path) -> str:
    (folder,) = [p for p in runs.iterdir() if (p / "study.db").exists() and not p.name.endswith("-copy")]
    return folder.name


def _one_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sharesearch: error: "), captured.err
    return lines[0]


def test_the_default_study_name_is_readable(runs):
    assert re.fullmatch(r"synthetic-mmoe-tiny-[0-9a-f]{6}", _name(runs))


def test_studies_lists_name_data_trials_best_verdict_and_storage(runs, capsys):
    assert cli.main(["studies", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(line for line in out if line.startswith(_name(runs)))
    assert out[0].split()[:4] == ["study", "data", "space", "trials"]
    assert "synthetic-mmoe" in row and " tiny " in row and "2/2 (" in row and " yes " in row
    assert re.search(r"[+-]?\d+\.\d\d% \(#\d+\)", row) and row.endswith("study.db")
    rec = json.loads((runs / _name(runs) / "report.json").read_text()).get("recommendation")
    if rec:  # the verdict's one-line answer, below the table
        assert f"{_name(runs)}: {rec['overall']}" in out
    assert cli.main(["studies", "--runs", str(runs.parent / "none")]) == 0
    assert "no studies" in capsys.readouterr().out


def test_report_takes_a_run_folder_a_prefix_or_storage_and_study(runs, tmp_path, capsys):
    name = _name(runs)
    assert cli.main(["report", str(runs / name), "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["report", "synthetic-mmoe-t", "--runs", str(runs), "--out", str(tmp_path / "b")]) == 0
    assert cli.main(["report", "--study", "synth", "--runs", str(runs), "--out", str(tmp_path / "c")]) == 0
    url = f"sqlite:///{runs / name / 'study.db'}"
    assert cli.main(["report", "--storage", url, "--study", name, "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    reports = [json.loads((tmp_path / d / "report.json").read_text()) for d in "abcd"]
    assert {r["study"] for r in reports} == {name}


def test_an_ambiguous_or_unknown_study_is_one_line(runs, capsys):
    name = _name(runs)
    copy = runs / "synthetic-mmoe-tiny-copy"
    copy.mkdir()
    optuna.copy_study(from_study_name=name, from_storage=f"sqlite:///{runs / name / 'study.db'}",
                      to_storage=f"sqlite:///{copy / 'study.db'}", to_study_name="synthetic-mmoe-tiny-copy")
    try:
        assert cli.main(["report", "synthetic-mmoe-tiny", "--runs", str(runs), "--out", str(copy / "r")]) == 2
        err = _one_error(capsys)
        assert "'synthetic-mmoe-tiny' matches 2" in err and name in err and copy.name in err
        assert cli.main(["verdict", "zzz", "--runs", str(runs)]) == 2
        err = _one_error(capsys)
        assert "no study 'zzz'" in err and name in err
        assert cli.main(["show", "synth", "--study", "synth", "--runs", str(runs)]) == 2
        assert "give the study once" in _one_error(capsys)
        assert not (copy / "r").exists()
    finally:
        import shutil

        shutil.rmtree(copy)


def test_a_new_verdict_goes_beside_the_old_one_and_report_writes_the_latest(runs, capsys):
    name = _name(runs)
    run = runs / name
    first = (run / "report.json").read_bytes()
    assert cli.main(["verdict", name, "--runs", str(runs), *FAST[:-2]]) == 0
    out = capsys.readouterr().out
    assert f"wrote json: {run / 'verdict-2' / 'report.json'}" in out and str(run / "verdict-2") in out
    assert (run / "report.json").read_bytes() == first  # the first verdict's report is kept as it was
    second = json.loads((run / "verdict-2" / "report.json").read_text())
    assert second["verdict"]["protocol"] and second["study"] == name
    assert cli.main(["verdict", str(run), *FAST[:-2]]) == 0
    assert (run / "verdict-3" / "report.json").exists() and (run / "verdict-2" / "report.json").exists()
    capsys.readouterr()
    assert cli.main(["report", name, "--runs", str(runs)]) == 0
    assert f"wrote html: {run / 'verdict-3' / 'report.html'}" in capsys.readouterr().out
    assert not (run / "verdict-4").exists()


def test_show_draws_the_recommendation_on_test_and_a_trial_on_validation(runs, tmp_path, monkeypatch, capsys):
    import sharesearch.figure

    seen = []

    class Fig:
        def write_html(self, path, **kw):
            Path(path).write_text("figure")

    monkeypatch.setattr(sharesearch.figure, "topology_figure", lambda g, **kw: seen.append(kw) or Fig())
    name = _name(runs)
    rec = json.loads((runs / name / "report.json").read_text())["recommendation"]
    assert cli.main(["show", name, "--runs", str(runs), "--out", str(tmp_path / "t.html")]) == 0
    assert seen[-1] == {"deltas": rec["test_deltas"], "delta_split": "test"}
    assert "recommended" in capsys.readouterr().out
    assert cli.main(["show", name, "--runs", str(runs), "--trial", "1", "--out", str(tmp_path / "t.html")]) == 0
    assert seen[-1]["delta_split"] == "validation"


def test_export_without_a_verdict_says_it_falls_back_to_the_best_trial(runs, tmp_path, monkeypatch, capsys):
    import sharesearch.search

    name = _name(runs)
    url = f"sqlite:///{tmp_path / 'copy.db'}"
    optuna.copy_study(from_study_name=name, from_storage=f"sqlite:///{runs / name / 'study.db'}",
                      to_storage=url, to_study_name=name)
    optuna.load_study(study_name=name, storage=url).set_user_attr("verdict", None)
    calls = []
    monkeypatch.setattr(sharesearch.search, "export_best_model", lambda *a, **kw: calls.append((a, kw)) or a[2])
    assert cli.main(["export", "--format", "model", "--storage", url, "--study", "synth",
                     "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "no verdict yet: exporting the best trial" in out
    assert calls[0][0][:2] == (url, name) and calls[0][1] == {"trial": None}


@pytest.mark.parametrize("source, valid", [("multifashion", "n_train"), ("synthetic-mmoe", "clusters"),
                                           ("synthetic-planted", "clusters"), ("synthetic-null", "labelled")])
def test_a_bad_builtin_option_names_the_valid_options(source, valid, capsys):
    assert cli.main(["train", "--data", source, "--data-option", "n_rows=500", "--graph", "shared-bottom"]) == 2
    err = _one_error(capsys)
    assert source in err and "'n_rows'" in err and "valid options:" in err and valid in err


def test_train_shows_progress_unless_quiet_and_reports_validation(capsys):
    argv = ["train", *DATA, "--graph", "shared-bottom", "--widths", "8", "--max-steps", "4", "--eval-every", "2"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "split: val" in captured.out and "2/2" in captured.err and "run" in captured.err
    assert cli.main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_help_lists_every_command_in_one_line_and_the_version(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert set(helps) == set(sub.choices) and "studies" in helps
    assert all(h and "\n" not in h for h in helps.values())
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert re.fullmatch(r"sharesearch \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "multifashion: root, n_train" in " ".join(capsys.readouterr().out.split())


def test_transfer_holds_a_task_out_stores_the_curves_and_the_report_shows_them(runs, tmp_path, capsys):
    import shutil

    mine = tmp_path / "runs"
    shutil.copytree(runs, mine)  # the module's study stays as it was for the other tests
    name = _name(mine)
    assert cli.main(["transfer", name[:20], "--runs", str(mine), "--tasks", "t0", "--ks", "10,all",
                     "--seeds", "0,1", "--mode", "frozen", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "transfer: 3 curves stored" in out  # the chosen topology, shared-bottom and MMoE
    wrote = {k: Path(p) for k, p in re.findall(r"^wrote (html|markdown): (.+)$", out, flags=re.M)}
    assert wrote["markdown"].is_relative_to(mine / name)  # the latest verdict's folder of this study
    summary = wrote["markdown"].read_text()
    assert "## Transfer to a new task from k examples" in summary and "| k=10 | k=all |" in summary
    assert '<section id="transfer"><h2>A new task from a few examples</h2>' in wrote["html"].read_text()


@pytest.mark.parametrize("flag, value, says", [("--ks", "10,x", "--ks: expected integers"),
                                               ("--seeds", "0,-1", "--seeds: expected integers"),
                                               ("--tasks", "t0,", "--tasks: an empty item")])
def test_transfer_bad_lists_are_one_line(runs, capsys, flag, value, says):
    assert cli.main(["transfer", _name(runs), "--runs", str(runs), flag, value]) == 2
    assert says in _one_error(capsys)

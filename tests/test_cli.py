"""The command line: each command parses, calls the library and reports; bad input is one line."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest
import torch

from sharesearch_cli import cli  # the installed command: cli.py at the root

ROOT = Path(__file__).resolve().parents[1]

DATA = ["--data", "synthetic-mmoe", "--data-option", "n=300", "--data-option", "d=8",
        "--data-option", "clusters=[[0,1],[2]]"]


def test_train_prints_a_per_task_table_against_independent(capsys):
    rc = cli.main(["train", *DATA, "--graph", "shared-bottom", "--widths", "16,8", "--epochs", "2", "--seeds", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "stage 0 (mlp 8->16): [t0 t1 t2]" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("task"))
    assert header.split()[:5] == ["task", "metric", "topology", "independent", "relative_diff"]
    rows = [line.split() for line in out.splitlines() if re.match(r"\s*t[0-2]\s+rmse", line)]
    assert [r[0] for r in rows] == ["t0", "t1", "t2"]
    assert all(r[4].endswith("%") for r in rows)


def test_train_takes_the_step_budget_and_early_stopping(monkeypatch, capsys):
    import sharesearch.compare as compare

    seen = []
    real = compare.train
    monkeypatch.setattr(compare, "train", lambda g, d, cfg, **kw: seen.append(cfg) or real(g, d, cfg, **kw))
    rc = cli.main(["train", *DATA, "--graph", "shared-bottom", "--widths", "16,8", "--max-steps", "12",
                   "--eval-every", "4", "--patience", "1", "--lr-schedule", "cosine"])
    assert rc == 0 and "relative_diff" in capsys.readouterr().out
    assert seen and all((c.max_steps, c.eval_every, c.patience, c.lr_schedule) == (12, 4, 1, "cosine") for c in seen)


def test_bad_step_budget_is_one_line_and_exit_2(capsys):
    rc = cli.main(["train", *DATA, "--graph", "shared-bottom", "--max-steps", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "max_steps" in err[0]


def test_unknown_architecture_is_one_line_and_exit_2(capsys):
    rc = cli.main(["train", *DATA, "--graph", "shared-botom"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "shared-botom" in err[0] and "shared-bottom" in err[0]


def test_malformed_graph_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "g.json"
    bad.write_text('{"directed": true, "nodes": [], "edges": [], "graph": {"tasks": ["a"]}}')
    rc = cli.main(["show", "--graph", str(bad), "--out", str(tmp_path / "x.html")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "g.json" in err[0] and "backbone" in err[0]
    assert not (tmp_path / "x.html").exists()


@pytest.fixture()
def graph_file(tmp_path):
    from sharesearch.graph import SharingGraph

    g = SharingGraph.branched({"a": 1, "b": 1, "c": 3}, {"name": "mlp", "input_shape": [4], "widths": [8, 8]},
                              ["a,b,c", "a,b|c"], l2=[0.0, 0.0])
    path = tmp_path / "graph.json"
    path.write_text(g.to_json())
    return g, path


def test_show_and_export_a_graph_file(tmp_path, graph_file, capsys):
    g, path = graph_file
    assert cli.main(["show", "--graph", str(path), "--out", str(tmp_path / "t.html")]) == 0
    assert "plotly" in (tmp_path / "t.html").read_text()[:100000].lower()
    for fmt, name in (("graphml", "g.graphml"), ("dot", "g.dot"), ("mermaid", "g.mmd"), ("json", "g2.json")):
        assert cli.main(["export", "--format", fmt, "--graph", str(path), "--out", str(tmp_path / name)]) == 0
    assert set(nx.read_graphml(tmp_path / "g.graphml").nodes) == set(g.g.nodes)
    assert "digraph" in (tmp_path / "g.dot").read_text()
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart")
    from sharesearch.graph import SharingGraph

    assert SharingGraph.from_json((tmp_path / "g2.json").read_text()) == g


def test_search_report_and_model_export_from_the_study(tmp_path, capsys):
    runs = tmp_path / "runs"
    rc = cli.main(["search", *DATA, "--space", "tiny", "--runs", str(runs), "--study", "s", "--n-trials", "5",
                   "--seeds", "2", "--top-k", "1", "--quiet", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "## Verdict" in out and "wrote html:" in out
    for name in ("report.html", "report.json", "summary.md"):
        assert (runs / "s" / name).exists()
    url = f"sqlite:///{runs / 's' / 'study.db'}"
    assert cli.main(["report", "--storage", url, "--study", "s", "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").exists()
    assert cli.main(["export", "--format", "model", "--storage", url, "--study", "s",
                     "--out", str(tmp_path / "best")]) == 0
    from sharesearch.data import load_data
    from sharesearch.export import load_model, predict

    net = load_model(tmp_path / "best")
    data = load_data("synthetic-mmoe", n=300, d=8, clusters=[[0, 1], [2]])
    preds = predict(net, data.x[:5])
    assert set(preds) == {"t0", "t1", "t2"} and all(torch.isfinite(v).all() for v in preds.values())


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    setup = [b.strip() for b in blocks[:2]]
    assert setup[0].endswith("sharesearch search")
    pytest_cmd = setup[1].split("&&")[-1].strip()
    assert pytest_cmd.startswith("python -m pytest")
    assert pytest_cmd.replace("python -m", "python3 -m") in ci
    assert "pip install -q torch==2.13.0" in ci and ci.index("torch==2.13.0") < ci.index('-e ".[test]"')


def test_joining_a_missing_storage_file_creates_nothing(tmp_path, capsys):
    db = tmp_path / "typo.db"
    rc = cli.main(["worker", "--storage", f"sqlite:///{db}", "--study", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "typo.db" in err[0]
    assert not db.exists()


def test_bad_builtin_data_option_names_the_option(tmp_path, capsys):
    rc = cli.main(["search", "--data-option", "n=abc", "--runs", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "n='abc'" in err[0] and "synthetic-mmoe" in err[0]
    assert not (tmp_path / "runs").exists()


def test_worker_index_and_timeout_belong_to_the_worker_process(tmp_path, monkeypatch):
    import sharesearch.search as search

    db = tmp_path / "s.db"
    search.open_storage(f"sqlite:///{db}")  # an existing storage to join
    seen = {}
    monkeypatch.setattr(search, "run_worker", lambda storage, study, **kw: seen.update(kw))
    rc = cli.main(["worker", "--storage", f"sqlite:///{db}", "--study", "s", "--worker-index", "3",
                   "--timeout", "90"])
    assert rc == 0 and seen["worker"] == 3 and seen["timeout"] == 90.0 and seen["device"] is None

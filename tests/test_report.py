"""Tests of the comparison report (HTML, report.json, summary.md) from hand-built results dicts."""

from __future__ import annotations

import copy
import json
from html import escape as html_escape
import math
import re

import pytest
from plotly.offline import get_plotlyjs

from sharesearch import fmt
from sharesearch.graph import SharingGraph
from sharesearch.report import (
    SCHEMA_VERSION,
    best_candidate,
    figure_html,
    history_figure,
    importance_figure,
    jsonable,
    markdown_summary,
    pareto_figure,
    report_html,
    write_report,
)
from sharesearch.tasks import TaskSpec
from sharesearch.verdict import VERDICTS, task_verdicts

HOSTILE = "<script>alert(1)</script>&\"'"
HOSTILE_HTML = "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#x27;"
BB = {"name": "mlp", "input_shape": [6], "widths": [16, 8]}
SPECS = [TaskSpec(HOSTILE, "binary"), TaskSpec("price", "regression"), TaskSpec("digit", "multiclass", n_classes=4)]
NAMES = [s.name for s in SPECS]


def _verdict(shift: dict[str, float], jitter: dict[str, list[float]] | None = None) -> dict:
    """A real Verdict dict: baseline seeds vs candidate seeds shifted (and jittered; NaN: diverged) per task."""
    base = {HOSTILE: [0.80, 0.81, 0.79], "price": [10.0, 10.2, 10.1], "digit": [0.70, 0.71, 0.69]}
    jitter = jitter or {}
    cand = {t: [x + shift[t] + j for x, j in zip(v, jitter.get(t, [0.0] * 3))] for t, v in base.items()}
    dirs = {HOSTILE: "maximize", "price": "minimize", "digit": "maximize"}
    return task_verdicts(cand, base, dirs, n_resamples=200).to_dict()


def make_results(n_objectives: int = 1, *, verdict: bool = True) -> dict:
    """A results dict as the search layer hands it over, built from real graphs."""
    refs = {
        "independent": SharingGraph.independent(SPECS, BB),
        "shared-bottom": SharingGraph.shared_bottom(SPECS, BB),
        "mmoe": SharingGraph.mmoe(SPECS, BB, experts=3),
        "cross-stitch": SharingGraph.cross_stitch(SPECS, BB),
    }
    searched = [
        SharingGraph.from_partitions(SPECS, BB, [[NAMES], [[HOSTILE, "digit"], ["price"]]]),
        SharingGraph.from_partitions(SPECS, BB, [[NAMES]], conditioning="film"),
        SharingGraph.l2_soft(SPECS, BB, lam=1e-3),
        SharingGraph.from_partitions(SPECS, BB, [[[HOSTILE, "price"], ["digit"]]]),
    ]
    trials = []
    vals = [0.0, 0.012, 0.02, 0.005, 0.031, 0.018, 0.009, 0.025]
    for i, (name, g) in enumerate(list(refs.items()) + [(None, g) for g in searched]):
        v = [vals[i]] + ([float(g.n_params())] if n_objectives > 1 else [])
        trials.append({
            "number": i, "state": "COMPLETE", "values": v, "params": {"partition_0": "x", "lr": 1e-3 * (i + 1)},
            "graph": g.to_dict(), "graph_key": g.key(), "n_params": g.n_params(), "flops": g.flops(),
            "val_metrics": {t: 0.5 for t in NAMES},
            "val_deltas": {HOSTILE: vals[i] - 0.01, "price": vals[i], "digit": vals[i] + 0.01},
            "reference": name, "duration_s": 1.5,
        })
    trials.append({"number": 8, "state": "PRUNED", "values": None, "params": {}, "graph": None,
                   "graph_key": None, "n_params": None, "flops": None, "val_metrics": None, "val_deltas": None,
                   "reference": None, "duration_s": 0.3})
    trials.append({"number": 9, "state": "FAIL", "values": None, "params": {}, "graph": None, "graph_key": None,
                   "n_params": None, "flops": None, "val_metrics": None, "val_deltas": None, "reference": None,
                   "duration_s": 0.1})
    done = [t for t in trials if t["values"]]
    if n_objectives > 1:  # the true front: maximise Δm, minimise parameters
        best = [t["number"] for t in done if not any(
            o["values"][0] >= t["values"][0] and o["values"][1] <= t["values"][1] and o["values"] != t["values"]
            for o in done)]
    else:
        best = [max(done, key=lambda t: t["values"][0])["number"]]
    mmoe_node = next(n for n, d in refs["mmoe"].g.nodes(data=True) if d["kind"] == "moe")
    results = {
        "study": "study <b>one</b>", "storage": "sqlite:///runs/x.db",
        "directions": ["maximize"] + (["minimize"] if n_objectives > 1 else []),
        "objective_names": ["delta_m"] + (["n_params"] if n_objectives > 1 else []),
        "tasks": [s.to_dict() for s in SPECS],
        "data": {"name": "synthetic & co", "fingerprint": "abc123", "meta": {"source": "synthetic"}},
        "space": {"path": "spaces/default.toml", "text": "[stages]\n# a <comment> & </pre> here\nmax = 3\n"},
        "train_config": {"epochs": 3, "lr": 0.001},
        "trials": trials, "best_trials": best,
        "importances": {"lr": 0.6, "partition_0": 0.3, "<i>odd</i>": 0.1},
        "baselines": {t: {"val_metric": 0.7, "config": {"lr": 0.001}} for t in NAMES},
        "verdict": None,
        "reproducibility": {"versions": {"torch": "2.13", "plotly": "7.1.0"}, "seeds": {"search": 0, "verdict": [
            1000, 1001, 1002]}, "data_fingerprint": "abc123",
            "selection_protocol": "selected on validation; test used once", "search_space_file": "max = 3"},
    }
    if verdict:
        results["verdict"] = {
            "protocol": {"selection": "validation", "test_used_once": True, "seeds": [1000, 1001, 1002],
                         "alpha": 0.05},
            "candidates": [
                # the reference has the best *test* Δm but must not be called best: selection is on validation
                {"name": "shared-bottom", "trial": 1, "graph": refs["shared-bottom"].to_dict(),
                 "verdict": _verdict({HOSTILE: 0.05, "price": -1.0, "digit": 0.05}), "test_metrics": {},
                 "gates": None, "stitch": None},
                {"name": "mmoe", "trial": 2, "graph": refs["mmoe"].to_dict(),
                 "verdict": _verdict({HOSTILE: 0.0, "price": 0.0, "digit": 0.0},
                                     {HOSTILE: [math.nan, math.nan, 0.0]}), "test_metrics": {},
                 "gates": {mmoe_node: [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]}, "stitch": None},
                {"name": "cross-stitch", "trial": 3, "graph": refs["cross-stitch"].to_dict(),
                 "verdict": _verdict({HOSTILE: 0.0, "price": 0.0, "digit": 0.0}, {"digit": [0.1, -0.1, 0.0]}),
                 "test_metrics": {}, "gates": None, "stitch": {f"stage0:{'+'.join(NAMES)}": [[0.8, 0.1, 0.1]] * 3}},
                {"name": "trial 5", "trial": 5, "graph": searched[1].to_dict(),
                 "verdict": _verdict({HOSTILE: 0.08, "price": 0.0, "digit": 0.0}), "test_metrics": {},
                 "gates": None, "stitch": None},
                {"name": "trial 4", "trial": 4, "graph": searched[0].to_dict(),
                 "verdict": _verdict({HOSTILE: -0.10, "price": -0.4, "digit": 0.0}), "test_metrics": {},
                 "gates": None, "stitch": None},
            ],
            "baseline_test_metrics": {t: [0.8, 0.81, 0.79] for t in NAMES},
        }
    return results


def test_verdict_fixture_has_every_verdict():
    v = make_results()["verdict"]["candidates"]
    got = {t["verdict"] for c in v for t in c["verdict"]["tasks"]}
    assert got == set(VERDICTS)


@pytest.mark.parametrize("n_obj", [1, 2])
def test_write_report_writes_three_files(tmp_path, n_obj):
    results = make_results(n_obj)
    paths = write_report(results, tmp_path / "out")
    assert set(paths) == {"html", "json", "markdown"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    html = paths["html"].read_text(encoding="utf-8")
    # self-contained: plotly.js inline, nothing fetched
    assert get_plotlyjs()[:300] in html
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    page = html.replace(get_plotlyjs(), "")  # the bundle's own config defaults name URLs it never fetches here
    assert len(page) < len(html) - 4_000_000
    assert "cdn.plot.ly" not in page and "http" not in page.replace("sqlite:///", "")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I)
    # sections
    for sec in ("verdict", "topology", "history", "importances", "architectures", "reproducibility"):
        assert f'<section id="{sec}">' in html
    assert ('<section id="pareto">' in html) == (n_obj == 2)
    # one script element for plotly.js plus one per figure, and nothing else
    n_fig = html.count('class="ss-figure"')
    assert n_fig == (6 if n_obj == 2 else 5)  # the transfer matrix on top of the others
    assert html.count("<script") == html.count("</script>") == 1 + n_fig


def test_html_verdict_tables_rows_and_colours():
    results = make_results()
    html = report_html(results)
    tables = re.findall(r'<table class="verdict-table">(.*?)</table>', html, re.S)
    cands = results["verdict"]["candidates"]
    assert len(tables) == len(cands)
    # best (on validation) first: trial 4 has the best validation Δm of the searched trials
    first = re.search(r'<h3 class="candidate">(.*?)</h3>', html).group(1)
    assert first.startswith("trial 4") and "best on validation" in first
    by_name = {c["name"]: c for c in cands}
    heads = re.findall(r'<h3 class="candidate">(.*?)(?:, trial \d+)?(?: \(best on validation\))?</h3>', html)
    for name, table in zip(heads, tables):
        rows = re.findall(r'<tr class="(\w+)"><td class="task">(.*?)</td>(.*?)</tr>', table, re.S)
        tv = by_name[name]["verdict"]["tasks"]
        assert len(rows) == len(tv) == 3
        for (cls, task, rest), t in zip(rows, tv):
            assert cls == {"negative transfer": "neg", "positive transfer": "pos", "equivalent": "eq",
                           "untestable": "unt"}.get(t["verdict"], "neu")
            assert f'<td class="verdict">{html_escape(t["label"])}</td>' in rest  # the label, with MDE / margin
            assert fmt.delta(t["delta"]) in rest  # Δ_t shown as a percentage
            if t["verdict"] == "inconclusive":
                assert f"<td>{fmt.percent(t['mde'])}</td>" in rest and "MDE" in t["label"]
            assert re.search(r"\[[^\]]+, [^\]]+\]", rest)  # intervals are shown
    assert "Δm = <b>" in html and "Welch t over whole runs" in html
    assert "Holm-corrected at α = 0.05 over the 3 tested tasks of the candidate" in html  # the Holm family
    assert "(+0 / +2 diverged)" in html and "Diverged runs left out: 2 candidate" in html  # mmoe's diverged runs
    assert "class=\"warning\"" not in html
    # trial 4's verdict: negative transfer on the hostile task, shown as escaped text in a red row
    assert re.search(r'<tr class="neg"><td class="task">' + re.escape(HOSTILE_HTML) + "</td>", tables[0])


def test_hostile_names_are_escaped_everywhere():
    html = report_html(make_results(2))
    assert HOSTILE_HTML in html
    assert "<script>alert" not in html
    assert "<b>one</b>" not in html and "study &lt;b&gt;one&lt;/b&gt;" in html
    assert "</pre> here" not in html and "&lt;/pre&gt; here" in html  # the space file stays inside its <pre>
    # inside the embedded figure JSON no '<' survives at all (so no '</script>' can close the element)
    for script in re.findall(r"<script>(\(function\(\)\{var f=.*?)</script>", html, re.S):
        assert "<" not in script and ">" not in script.replace("=>", "")
    # and the names did reach the figures, escaped for plotly
    assert "\\u0026lt;script\\u0026gt;alert(1)" in html


def test_report_json_round_trips(tmp_path):
    results = make_results(2)
    results["trials"][0]["val_metrics"]["price"] = float("nan")
    paths = write_report(results, tmp_path)
    text = paths["json"].read_text(encoding="utf-8")
    assert "NaN" not in text
    doc = json.loads(text)
    assert doc.pop("schema_version") == SCHEMA_VERSION
    assert doc == jsonable(results)
    assert doc["trials"][0]["val_metrics"]["price"] is None
    clean = make_results(1)
    doc = json.loads(write_report(clean, tmp_path / "b")["json"].read_text())
    doc.pop("schema_version")
    assert doc == clean  # a JSON-ready dict comes back unchanged


def test_summary_markdown_has_table(tmp_path):
    results = make_results()
    paths = write_report(results, tmp_path)
    md = paths["markdown"].read_text(encoding="utf-8")
    assert md == markdown_summary(results, files=paths)
    lines = md.splitlines()
    i = lines.index("| task | baseline mean [CI] | candidate mean [CI] | Δ_t [CI] | p | p (Holm) | MDE | "
                    "TOST p (Holm) | verdict |")
    rows = lines[i + 2: i + 5]
    assert len(rows) == 3
    for row in rows:  # the hostile name's characters never split the cells
        assert len(re.findall(r"(?<!\\)\|", row)) == 10
    assert rows[0].startswith("| `<script>alert(1)</script>&\"'`") and "**negative transfer**" in rows[0]
    assert "**Δm = " in md and "Negative transfer on:" in md
    assert "## Best topology (trial 4)" in md
    g = SharingGraph.from_dict(results["trials"][4]["graph"])
    assert g.describe() in md
    assert str(paths["html"]) in md and "## Files" in md


def test_single_objective_and_no_verdict(tmp_path):
    results = make_results(1, verdict=False)
    paths = write_report(results, tmp_path)
    html = paths["html"].read_text(encoding="utf-8")
    assert "No verdict yet" in html and "verdict-table" not in html
    assert '<section id="pareto">' not in html and pareto_figure(results) is None
    md = paths["markdown"].read_text()
    assert "## No verdict yet" in md and "| task | Δ_t (validation) |" in md
    _, best = best_candidate(results)
    assert best["number"] == 4


def test_best_candidate_is_chosen_on_validation_not_test():
    results = make_results()
    cand, trial = best_candidate(results)
    assert cand["name"] == "trial 4" and trial["number"] == 4
    dms = {c["name"]: c["verdict"]["delta_m"] for c in results["verdict"]["candidates"]}
    assert dms["trial 4"] < max(dms.values())  # a better test Δm elsewhere does not change the choice
    # minimising objective 0 flips the choice
    r = copy.deepcopy(results)
    r["directions"][0] = "minimize"
    assert best_candidate(r)[0]["name"] == "trial 5"


def test_pareto_figure_highlights_best_trials():
    results = make_results(2)
    fig = pareto_figure(results)
    front = next(t for t in fig.data if t.name == "Pareto-optimal")
    rest = next(t for t in fig.data if t.name == "trial")
    assert len(front.x) == len(results["best_trials"]) and len(rest.x) == 8 - len(results["best_trials"])
    assert list(front.x) == sorted(front.x)


def test_history_best_so_far_and_importances():
    results = make_results(2)
    fig = history_figure(results)
    best = [t for t in fig.data if t.name == "best so far"]
    assert len(best) == 2
    y0 = list(best[0].y)
    assert all(b >= a for a, b in zip(y0, y0[1:])) and y0[-1] == pytest.approx(0.031)  # maximise
    y1 = list(best[1].y)
    assert all(b <= a for a, b in zip(y1, y1[1:]))  # minimise n_params
    assert len(best[0].x) == 8  # pruned and failed trials have no values
    imp = importance_figure(results)
    assert list(imp.data[0].y) == ["&lt;i&gt;odd&lt;/i&gt;", "partition_0", "lr"]
    assert importance_figure({"importances": {}}) is None


def test_figure_html_escapes_and_optionally_inlines_plotlyjs():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1], y=[2], name="</script><script>alert(2)</script>"))
    frag = figure_html(fig, div_id="x")
    assert "alert(2)" in frag and "<script>alert(2)" not in frag and frag.count("</script>") == 1
    assert 'id="x"' in frag and "Plotly.newPlot" in frag
    full = figure_html(fig, include_plotlyjs=True)
    assert full.count("<script>") == 2 and get_plotlyjs()[:200] in full
    assert not math.isnan(len(full))


def test_warns_when_the_independent_reference_disagrees_with_the_control():
    results = make_results()
    ok = copy.deepcopy(results)
    ok["verdict"]["candidates"].append({"name": "independent", "trial": 0, "graph": None, "test_metrics": {},
                                        "verdict": _verdict({HOSTILE: 0.0, "price": 0.0, "digit": 0.0})})
    assert 'class="warning"' not in report_html(ok) and "> Warning" not in markdown_summary(ok)
    bad = copy.deepcopy(results)  # the retrained control beats its own baselines by ~5 %: a protocol offset
    bad["verdict"]["candidates"].append({"name": "independent", "trial": 0, "graph": None, "test_metrics": {},
                                         "verdict": _verdict({HOSTILE: 0.04, "price": -0.5, "digit": 0.035})})
    page = report_html(bad)
    assert 'class="warning"' in page and "independent reference" in page
    assert "> Warning: the independent reference" in markdown_summary(bad)


def test_config_values_and_old_verdicts_render():
    results = make_results()
    results["baselines"][NAMES[1]]["config"] = {"lr": 0.009639164281266792, "batch_size": 64}
    page = report_html(results)
    assert "lr=0.00964, batch_size=64" in page and "0.009639164281266792" not in page
    # a version-1 verdict dict (before equivalence tests) still renders, its "gain" read as "positive transfer"
    old = copy.deepcopy(results)
    v1 = old["verdict"]["candidates"][-1]["verdict"]
    v1["version"] = 1
    for t in v1["tasks"]:
        t["verdict"] = {"positive transfer": "gain", "negative transfer": "negative transfer"}.get(
            t["verdict"], "no significant difference")
        for k in ("mde", "margin", "p_equivalence", "p_equivalence_holm", "equivalent", "label"):
            t.pop(k)
    md = markdown_summary(old)
    assert "**negative transfer**" in md and "**positive transfer**" in md and "**inconclusive (MDE –)**" in md


def test_second_look_at_test_and_still_learning_arms_are_flagged(tmp_path):
    results = make_results()
    v = results["verdict"]
    assert not _looks_flagged(results)  # the fixture's verdict: one look, no run summaries
    v["protocol"].update(test_looks=2, test_used_once=False, seeds_why="5 seeds per arm: seeds_for_power(...)")
    v["candidates"][0]["runs"] = {"seeds": [1000, 1001], "n_runs": 2, "n_diverged": 1, "n_still_learning": 2,
                                  "still_learning_tasks": {"price": 2}}
    v["history"] = [{"protocol": {"test_looks": 1}, "candidates": []}]
    paths = write_report(results, tmp_path / "out")
    for text in (paths["html"].read_text(encoding="utf-8"), paths["markdown"].read_text(encoding="utf-8")):
        assert "looked at the test split 2 times" in text and "Test split looked at 2 times" in text
        assert "still improving at the budget&#x27;s end: raise max_steps" in text or \
            "still improving at the budget's end: raise max_steps" in text
        assert "1 of 2 runs diverged" in text and "seeds_for_power" in text
    assert "Test split used once" not in paths["html"].read_text(encoding="utf-8")
    assert json.loads(paths["json"].read_text())["verdict"]["history"][0]["protocol"]["test_looks"] == 1


def _looks_flagged(results) -> bool:
    return "looked at the test split" in markdown_summary(results)


def test_the_best_candidate_is_the_arm_with_the_best_validation_delta_m_over_the_verdicts_seeds():
    from sharesearch.report import best_candidate

    cands = [{"name": "independent", "trial": 0, "val_delta_m": 0.5}, {"name": "trial 7", "trial": 7, "val_delta_m": 0.01},
             {"name": "shared-bottom", "trial": 1, "val_delta_m": 0.03}]
    results = {"directions": ["maximize"], "verdict": {"candidates": cands},
               "trials": [{"number": 7, "values": [0.9], "state": "COMPLETE"}]}  # best in the search, not over seeds
    best, _ = best_candidate(results)
    assert best["name"] == "shared-bottom"  # the control (independent) is never the best candidate


def test_before_a_verdict_the_topology_figure_shows_each_reference_in_its_better_version():
    """A reference tried again on the best trial's training is a second trial of the same name: the figure of
    candidates and references draws the one with the higher validation Δm, once."""
    from sharesearch.report._figures import _multiples

    tasks = {"a": 1, "b": 1}
    sb = SharingGraph.shared_bottom(tasks, BB).to_dict()
    ind = SharingGraph.independent(tasks, BB).to_dict()
    trials = [{"number": 1, "state": "COMPLETE", "values": [-0.02], "reference": "shared-bottom", "graph": sb},
              {"number": 2, "state": "COMPLETE", "values": [0.03], "reference": None, "graph": ind},
              {"number": 3, "state": "COMPLETE", "values": [0.01], "reference": "shared-bottom", "graph": sb}]
    titles = [a.text for a in _multiples({"trials": trials, "directions": ["maximize"]}).layout.annotations]
    assert [t for t in titles if t.startswith("shared-bottom")] == [f"shared-bottom  (val Δm {fmt.delta(0.01)})"]

"""The transfer matrix's pure info: order of the arms, Δ in percent, marks, hover, colour range, escaping."""

from __future__ import annotations

from sharesearch.figure import transfer_figure, transfer_info
from sharesearch.verdict import task_verdicts

DIRS = {"a": "maximize", "<b>c</b>": "minimize"}
BASE = {"a": [0.80, 0.81, 0.79], "<b>c</b>": [10.0, 10.1, 9.9]}


def arm(name, trial, shift):
    cand = {t: [x + shift.get(t, 0.0) for x in v] for t, v in BASE.items()}
    return {"name": name, "trial": trial, "verdict": task_verdicts(cand, BASE, DIRS, n_resamples=100).to_dict()}


def test_arms_order_marks_percent_and_hover():
    arms = [arm("independent", 0, {}), arm("mmoe", 2, {"<b>c</b>": 2.0}), arm("trial 7", 7, {"a": 0.08}),
            arm("trial 9", 9, {"a": -0.1})]
    info = transfer_info(arms, recommended="trial 9", metrics={"a": "AUC, higher is better"})
    assert info.arm_names == ["trial 9", "trial 7", "mmoe", "independent"]  # recommended, trials, refs, control
    assert info.arms[0].endswith("(recommended)") and info.arms[-1].endswith("(control check)")
    assert info.arms[2] == "mmoe (trial 2)"
    up, down = info.cell("a", "trial 7"), info.cell("<b>c</b>", "mmoe")
    assert up.mark == "▲" and up.text == "+10.00% ▲" and abs(info.z[0][1] - 10.0) < 1e-9
    assert down.mark == "▼" and down.text.startswith("-") and "Holm p" in down.hover and "[" in down.hover
    assert info.cell("a", "independent").mark in ("", "=")
    assert info.zmax == max(abs(x) for row in info.z for x in row if x is not None)
    assert info.row_labels == ["a (AUC, higher is better)", "&lt;b&gt;c&lt;/b&gt;"]  # escaped for plotly
    fig = transfer_figure(info)
    hm = fig.data[0]
    assert hm.zmid == 0 and hm.zmin == -info.zmax and hm.zmax == info.zmax and hm.hoverinfo == "text"
    assert fig.layout.width is None  # responsive: the page's column decides


def test_unreadable_arms_are_left_out():
    info = transfer_info([{"name": "x", "verdict": {"nope": 1}}, arm("trial 1", 1, {})])
    assert info.arm_names == ["trial 1"] and info.tasks == list(DIRS)

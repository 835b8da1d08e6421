"""The comparison report: one offline HTML page, ``report.json`` and ``summary.md``.

:func:`write_report` turns the *results dict* the search layer hands over
(:func:`sharesearch.search.load_results`; this module never opens a study and
does not import optuna) into three files:

``report.html``
    A self-contained page that opens offline: plotly.js is inlined once (no
    CDN, no external fetch). It holds the verdict table per candidate
    (baseline mean ± CI, candidate mean ± CI, Δ_t with CI, p, Holm p, verdict,
    coloured), Δm with its bootstrap interval, the best topology figure, the
    optimisation history, parameter importances, the Pareto front (two or more
    objectives), the candidates and reference architectures side by side, and
    the reproducibility record (versions, seeds, data fingerprint, selection
    protocol, the search-space file). Every user string is escaped with
    :func:`html.escape` -- in the page, in plotly labels and hover text
    (:func:`sharesearch.figure.esc`) and inside embedded JSON, where ``<``,
    ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` so no ``</script>``
    can close the script element.
``report.json``
    The results dict itself plus ``"schema_version"``; strict JSON (NaN ->
    ``null``, ±inf -> ``"inf"``/``"-inf"``, as ``Verdict.to_dict`` does).
``summary.md``
    :func:`markdown_summary`: the verdict table, Δm, the best topology's
    :meth:`SharingGraph.describe` and where the files are (the CLI prints it).

Results schema (``schema_version`` 1)
-------------------------------------
::

    {"study": str, "storage": str,
     "directions": ["maximize" | "minimize", ...],      # one per objective
     "objective_names": ["delta_m", ...],               # objective 0 is Δm (validation)
     "tasks": [TaskSpec.to_dict(), ...],
     "data": {"name": str, "fingerprint": str, "meta": {...}},
     "space": {"path": str, "text": str},               # the search-space file and its text
     "train_config": {...}, "search_config": {...} (optional),
     "trials": [{"number": int, "state": "COMPLETE" | "PRUNED" | "FAIL" | ...,
                 "values": [float, ...] | None, "params": {...},
                 "graph": SharingGraph.to_dict() | None, "graph_key": str | None,
                 "n_params": int | None, "flops": int | None,
                 "val_metrics": {task: float}, "val_deltas": {task: float},   # relative Δ_t on validation
                 "reference": str | None,                   # name of a reference architecture
                 "affinity_tree": int | None,               # index into affinity.trees when it proposed the trial
                 "tuned_from": int | None,                  # that tree tried again with this trial's settings
                 "duration_s": float | None, ...}],          # further keys are kept, not read
     "best_trials": [int, ...],                          # numbers of the Pareto-optimal trials
     "importances": {param: float},
     "baselines": {task: {"val_metric": float, "config": {...}}},
     "verdict": None | {
         "protocol": VerdictProtocol.to_dict() (sharesearch.search._protocol): {"seeds": [...],
                      "independent_seeds": [...], "n_seeds": int, "seeds_why": str, "seed_plan": {...},
                      "test_looks": int, "test_used_once": bool, "computations": int, "budget": {...},
                      "alpha": float, "selection": "validation", ...},
         "candidates": [{"name": str, "trial": int | None, "graph": SharingGraph.to_dict(),
                         "verdict": Verdict.to_dict(),   # tasks[], delta_m, delta_m_ci, alpha
                         "test_metrics": {task: [per seed]},
                         "val_delta_m": float | None,              # validation Δm, mean over the seeds
                         "val_delta_m_runs": [float | None per seed],   # in the order of runs.seeds
                         "runs": {"seeds": [...], "n_runs": int, "n_diverged": int,      # optional
                                  "n_still_learning": int, "still_learning_tasks": {task: int}},
                         "gates": {moe node: [[per expert] per task]} | None,
                         "stitch": {"stage<l>:<tasks>": [[...]]} | None}],
         "baseline_test_metrics": {task: [per seed]},
         "control": {"seeds": [...], "n_runs": int, ...},        # the control's runs, as "runs" above
         "history": [older verdict dicts, oldest first]},        # earlier looks at the test split
     "affinity": None | {"affinity": Affinity.to_dict(),  # sharesearch.affinity: tasks, lookahead, cosine, ...
                         "kind": str, "trees": [[[[task, ...], ...] per stage] per tree], "enqueued": [int, ...],
                         "config": {...}, "tuned_from": int | None, "tuned": [int, ...],  # trees tried again
                         "dendrogram": {"icoord", "dcoord", "leaves"},
                         "share_importances": {param: float}},   # importances of share[a~b] / trunk[t] alone
     "reproducibility": {"versions": {pkg: version}, "seeds": [...] | {...},
                         "data_fingerprint": str, "selection_protocol": str,
                         "search_space_file": str},
     "schema_version": 1}                                # added by write_report

The *best* candidate is chosen on validation, never on test: the verdict
candidate of the searched trial with the best objective-0 value (references
only when no searched trial was verified).

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1}, {"name": "mlp", "input_shape": [2], "widths": [4]})
>>> r = {"study": "demo", "directions": ["maximize"], "objective_names": ["delta_m"],
...      "tasks": [{"name": "a", "kind": "binary"}], "trials": [{"number": 0, "state": "COMPLETE",
...      "values": [0.01], "graph": g.to_dict(), "val_deltas": {"a": 0.01}}], "best_trials": [0]}
>>> print(markdown_summary(r).splitlines()[0])
# sharesearch report: `demo`
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ._common import (_VERDICT_CLASS, HTML_FILE, JSON_FILE, MD_FILE, SCHEMA_VERSION, best_candidate, figure_html,
                      jsonable)
from ._figures import history_figure, importance_figure, pareto_figure
from ._html import report_html
from ._markdown import markdown_summary
from ._transfer import TransferInfo, transfer_figure, transfer_info, transfer_markdown, transfer_section_html

__all__ = [
    "SCHEMA_VERSION",
    "write_report",
    "report_html",
    "markdown_summary",
    "figure_html",
    "history_figure",
    "importance_figure",
    "pareto_figure",
    "best_candidate",
    "jsonable",
    "TransferInfo",
    "transfer_info",
    "transfer_figure",
    "transfer_section_html",
    "transfer_markdown",
]


# -------------------------------------------------------------------- write
def write_report(results: Mapping, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.json`` and ``summary.md`` into ``out_dir``.

    Returns ``{"html": path, "json": path, "markdown": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / HTML_FILE, "json": out / JSON_FILE, "markdown": out / MD_FILE}
    doc = {**jsonable(dict(results)), "schema_version": SCHEMA_VERSION}
    paths["json"].write_text(json.dumps(doc, indent=2, allow_nan=False), encoding="utf-8")
    paths["html"].write_text(report_html(results), encoding="utf-8")
    paths["markdown"].write_text(markdown_summary(results, files=paths), encoding="utf-8")
    return paths

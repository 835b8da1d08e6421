"""The report page: :func:`report_html`."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from .. import fmt
from ..figure import topology_figure
from ._answer import answer_html, metric_labels
from ._common import HTML_FILE, JSON_FILE, MD_FILE, SCHEMA_VERSION, _graph, _h, best_candidate, figure_html
from ._figures import _multiples, _topology_options, history_figure, importance_figure, pareto_figure
from ._transfer import transfer_section_html
from ._tables import (_CSS, _affinity_section, _control_warning, _kv_table, _looks_warning, _pre, _protocol_line,
                      _rows_line, _runs_note, _trials_line, _trials_table, _verdict_table)

def report_html(results: Mapping) -> str:
    """The report page as one HTML string (plotly.js inlined; opens offline)."""
    from plotly.offline import get_plotlyjs

    study = results.get("study", "")
    data = results.get("data") or {}
    tasks = results.get("tasks") or []
    verdict = results.get("verdict") or {}
    counter = iter(range(1, 10_000))
    parts: list[str] = []

    def fig_block(fig: go.Figure | None, missing: str) -> str:
        if fig is None:
            return f'<p class="muted">{_h(missing)}</p>'
        fig.update_layout(width=None, autosize=True)  # fill the page's column, whatever the figure asked
        return figure_html(fig, div_id=f"ss-fig-{next(counter)}")

    parts.append(f"<h1>sharesearch report: {_h(study)}</h1>")
    parts += answer_html(results, fig_block)  # the answer first: what to ship, and the transfer matrix
    parts.append(f'<p class="muted">{_h(_trials_line(results))}</p>')
    parts.append(f'<p class="muted">data <b>{_h(data.get("name", ""))}</b> (fingerprint '
                 f'<code>{_h(data.get("fingerprint", ""))}</code>), {len(tasks)} tasks; '
                 f'objectives: {_h(", ".join(f"{n} ({d})" for n, d in zip(results.get("objective_names") or [], results.get("directions") or [])))}</p>')
    if _rows_line(data):
        parts.append(f'<p class="muted">{_h(_rows_line(data))}</p>')
    parts.append('<nav><a href="#verdict">verdict</a><a href="#topology">best topology</a>'
                 '<a href="#history">history</a><a href="#importances">importances</a>'
                 + ('<a href="#affinity">affinity</a>' if results.get("affinity") else "")
                 + ('<a href="#pareto">Pareto front</a>' if len(results.get("directions") or []) >= 2 else "")
                 + '<a href="#architectures">architectures</a><a href="#trials">trials</a>'
                 '<a href="#reproducibility">reproducibility</a></nav>')

    # ---- verdict
    parts.append('<section id="verdict"><h2>Verdict: did sharing help each task?</h2>')
    best_c, best_t = best_candidate(results)
    if verdict.get("candidates"):
        for warning in (_looks_warning(verdict), _control_warning(verdict["candidates"])):
            if warning:
                parts.append(f'<p class="warning">{_h(warning)}</p>')
        parts.append(f'<p class="muted">{_h(_protocol_line(verdict))} Δ<sub>t</sub> is the relative change against the '
                     f'independent single-task baseline (positive: sharing helped). Red: negative transfer, '
                     f'green: positive transfer (Holm-corrected), blue: equivalent within the margin (TOST), '
                     f'grey: inconclusive (see its minimum detectable effect) or untestable. '
                     f'“No significant difference” is not “no negative transfer”: only “equivalent” says that.</p>')
        if _runs_note({"runs": verdict.get("control")}):
            parts.append(f'<p class="muted">Control: {_h(_runs_note({"runs": verdict.get("control")}))}</p>')
        ordered = [best_c] + [c for c in verdict["candidates"] if c is not best_c]
        for c in ordered:
            tag = " (best on validation)" if c is best_c else ""
            trial = (f", trial {_h(c['trial'])}" if c.get("trial") is not None
                     and c.get("name") != f"trial {c['trial']}" else "")
            parts.append(f'<h3 class="candidate">{_h(c.get("name", ""))}{trial}{tag}</h3>')
            if _runs_note(c):
                cls = "warning" if (c.get("runs") or {}).get("n_still_learning") else "muted"
                parts.append(f'<p class="{cls}">{_h(_runs_note(c))}</p>')
            parts.append(_verdict_table(c.get("verdict") or {}, metric_labels(results)))
    else:
        parts.append('<p>No verdict yet: run <code>sharesearch verdict</code> to retrain the best candidates '
                     'and the baselines with fresh seeds and test them once. Validation numbers only below.</p>')
        if best_t and best_t.get("val_deltas"):
            rows = "".join(f'<tr class="{"pos" if fmt.as_float(v) > 0 else "neg" if fmt.as_float(v) < 0 else "neu"}">'
                           f'<td class="task">{_h(k)}</td><td>{fmt.delta(v)}</td></tr>'
                           for k, v in best_t["val_deltas"].items())
            parts.append(f'<h3>Trial {_h(best_t["number"])}: validation Δ<sub>t</sub></h3><table><thead><tr>'
                         f'<th>task</th><th>Δ<sub>t</sub> (validation)</th></tr></thead><tbody>{rows}</tbody>'
                         f'</table>')
    parts.append("</section>")

    # ---- best topology
    parts.append('<section id="topology"><h2>Best topology</h2>')
    g = _graph((best_c or {}).get("graph") or (best_t or {}).get("graph"))
    if g is not None:
        name = (best_c or {}).get("name") or (f"trial {best_t['number']}" if best_t else "")
        src = "on test (verdict)" if best_c else "on validation"
        fig = topology_figure(g, title=f"{name}: each head's Δ_t {src}", **_topology_options(best_c, best_t))
        parts.append(fig_block(fig, ""))
        parts.append(_pre(g.describe()))
    else:
        parts.append('<p class="muted">No trained architecture yet.</p>')
    parts.append("</section>")

    def fig_section(sid: str, title: str, fig, empty: str) -> None:
        parts.extend([f'<section id="{sid}"><h2>{title}</h2>', fig_block(fig, empty), "</section>"])

    fig_section("history", "Optimisation history", history_figure(results), "No complete trials yet.")
    fig_section("importances", "Parameter importances", importance_figure(results),
                "Importances not available (too few trials).")
    if results.get("affinity"):
        parts += _affinity_section(results, fig_block)
    parts.append(transfer_section_html(results))  # few-shot transfer (issue 15); "" without a run
    if len(results.get("directions") or []) >= 2:
        fig_section("pareto", "Pareto front", pareto_figure(results), "No complete trials yet.")
    fig_section("architectures", "Candidates beside the reference architectures", _multiples(results),
                "No architectures to compare yet.")

    parts.append('<section id="trials"><h2>Trials</h2>')
    parts.append(_trials_table(results))
    if results.get("baselines"):
        rows = "".join(f'<tr><td class="task">{_h(t)}</td><td>{fmt.value(b.get("val_metric"))}</td>'
                       f'<td><code>{_h(fmt.config(b.get("config") or {}))}</code></td></tr>'
                       for t, b in results["baselines"].items())
        parts.append("<h3>Single-task baselines (validation)</h3><table><thead><tr><th>task</th><th>primary metric"
                     f"</th><th>configuration</th></tr></thead><tbody>{rows}</tbody></table>")
    if tasks:
        rows = "".join(f'<tr><td class="task">{_h(t.get("name"))}</td><td>{_h(t.get("kind", ""))}</td>'
                       f'<td>{_h(", ".join(t.get("metrics") or []))}</td><td>{_h(t.get("weight", 1.0))}</td></tr>'
                       for t in tasks)
        parts.append("<h3>Tasks</h3><table><thead><tr><th>task</th><th>kind</th><th>metrics (first: primary)</th>"
                     f"<th>weight</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append("</section>")

    # ---- reproducibility
    rep = results.get("reproducibility") or {}
    space = results.get("space") or {}
    parts.append('<section id="reproducibility"><h2>Reproducibility</h2>')
    parts.append(_kv_table({"study": study, "storage": results.get("storage", ""),
                            "data fingerprint": rep.get("data_fingerprint", data.get("fingerprint", "")),
                            "selection protocol": rep.get("selection_protocol", ""),
                            "seeds": rep.get("seeds", ""), "search-space file": space.get("path", "")}))
    if rep.get("versions"):
        parts.append("<h3>Versions</h3>" + _kv_table(rep["versions"], "versions"))
    if verdict.get("protocol"):
        parts.append("<h3>Verdict protocol</h3>" + _pre(verdict["protocol"]))
    if results.get("train_config"):
        parts.append("<h3>Training configuration</h3>" + _pre(results["train_config"]))
    if data.get("meta"):
        parts.append("<h3>Data</h3>" + _pre(data["meta"]))
    text = space.get("text") or rep.get("search_space_file") or ""
    parts.append(f'<h3>Search-space file <code>{_h(space.get("path", ""))}</code></h3>' + _pre(text))
    parts.append("</section>")
    parts.append(f'<section id="files"><h2>Files</h2><p>{HTML_FILE} (this page), {JSON_FILE} (all numbers, '
                 f'schema version {SCHEMA_VERSION}), {MD_FILE} (summary)</p></section>')

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>sharesearch report: {_h(study)}</title><style>{_CSS}</style>\n"
            f"<script>{get_plotlyjs()}</script>\n</head><body>\n" + "\n".join(parts) + "\n</body></html>\n")



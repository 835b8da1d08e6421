"""The answer at the top of the report: what to ship (the recommendation) and the transfer matrix under it.

The recommendation is the verdict's stored one (``results["recommendation"]``,
:func:`sharesearch.verdict.recommend`); a results dict without it (an older
verdict, a hand-built dict) gets it computed from the verdict's arms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import fmt
from ..figure import transfer_figure, transfer_info
from ..names import METRICS
from ..verdict import recommend
from ._common import _h

__all__ = ["recommendation_of", "metric_labels", "answer_html", "answer_markdown"]


def recommendation_of(results: Mapping) -> dict[str, Any] | None:
    """The results' recommendation dict (stored, else computed from the verdict's arms); None without a verdict.

    >>> recommendation_of({"verdict": None}) is None
    True
    """
    rec = results.get("recommendation")
    if rec:
        return dict(rec)
    arms = (results.get("verdict") or {}).get("candidates") or []
    return recommend(arms).to_dict() if arms else None


def metric_labels(results: Mapping) -> dict[str, str]:
    """Each task's primary metric with its direction, ``{task: "RMSE, lower is better"}``.

    The verdict protocol's metric when recorded, else the task's first metric.

    >>> metric_labels({"tasks": [{"name": "p", "kind": "regression", "metrics": ["rmse", "mae"]}]})
    {'p': 'RMSE, lower is better'}
    """
    recorded = ((results.get("verdict") or {}).get("protocol") or {}).get("metric") or {}
    out = {}
    for t in results.get("tasks") or []:
        name = recorded.get(t.get("name")) or (t.get("metrics") or [None])[0]
        if name:
            m = METRICS.get(name)
            out[t["name"]] = fmt.metric(name, m.direction if m else None)
    return out


def _per_task_rows(rec: Mapping) -> str:
    rows = "".join(f'<tr class="{"pos" if c.get("choice") == "share" else "neu"}"><td class="task">{_h(t)}</td>'
                   f'<td class="choice">{_h(c.get("choice", ""))}</td><td>{_h(c.get("why", ""))}</td></tr>'
                   for t, c in (rec.get("per_task") or {}).items())
    return (f'<table class="answer-table"><thead><tr><th>task</th><th>ship</th><th>why (test split)</th></tr>'
            f'</thead><tbody>{rows}</tbody></table>')


def answer_html(results: Mapping, fig_block: Callable[[Any, str], str]) -> list[str]:
    """The answer section: the recommendation line, the transfer matrix, then what to ship per task."""
    rec = recommendation_of(results)
    arms = (results.get("verdict") or {}).get("candidates") or []
    if rec is None:
        return ['<section id="answer"><p class="answer">No recommendation yet: the verdict (<code>sharesearch '
                'verdict</code>) tests the chosen architectures once on the test split and names what to ship.'
                '</p></section>']
    where = f' The recommended model is saved in <code>{_h(rec["model_dir"])}</code>.' if rec.get("model_dir") else ""
    dm = fmt.as_float(rec.get("delta_m"))
    dm_txt = f" Shipped test Δm {fmt.delta(dm)}." if rec.get("kind") != "independent" else ""
    out = ['<section id="answer">',
           f'<p class="answer">Recommendation: <strong class="overall">{_h(rec.get("overall", ""))}</strong>.'
           f'{_h(dm_txt)}{where}</p>']
    if rec.get("control_note"):
        cls = "warning" if rec.get("control_ok") is False else "muted"
        out.append(f'<p class="{cls}">{_h(rec["control_note"])}.</p>')
    info = transfer_info(arms, recommended=rec.get("arm") if rec.get("kind") != "independent" else None,
                         metrics=metric_labels(results))
    out.append(fig_block(transfer_figure(info), "No readable verdict to draw."))
    out.append(_per_task_rows(rec))
    out.append(f'<p class="muted">Rule: {_h(rec.get("rule", ""))}. Δ<sub>t</sub> is the relative change of the '
               f'task\'s primary metric against its tuned independent network, in percent (positive: sharing '
               f'helped).</p>')
    out += [f'<p class="muted">{_h(n)}.</p>' for n in rec.get("notes") or []]
    out.append("</section>")
    return out


def answer_markdown(results: Mapping, md: Callable[[Any], str]) -> list[str]:
    """The summary's first lines: the recommendation and a compact transfer table (Δ_t on test, marks)."""
    rec = recommendation_of(results)
    if rec is None:
        return ["**No recommendation yet**: run `sharesearch verdict` to test the chosen architectures once.", ""]
    lines = [f"**Recommendation: {rec.get('overall', '')}**" + (f" (model in {md(rec['model_dir'])})"
                                                                if rec.get("model_dir") else ""), ""]
    if rec.get("control_ok") is False:
        lines += [f"> {rec.get('control_note', '')}", ""]
    lines += [f"- {n}" for n in rec.get("notes") or []] + ([""] if rec.get("notes") else [])
    arms = (results.get("verdict") or {}).get("candidates") or []
    info = transfer_info(arms, recommended=rec.get("arm") if rec.get("kind") != "independent" else None)
    if not info.tasks:
        return lines
    metrics = metric_labels(results)
    heads = [a.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") for a in info.arms]
    lines += ["| task (metric) | ship | " + " | ".join(md(a) for a in heads) + " |",
              "|---|---|" + "---|" * len(heads)]
    per_task = rec.get("per_task") or {}
    for task, row in zip(info.tasks, info.cells):
        label = md(task) + (f" ({metrics[task]})" if task in metrics else "")
        lines.append(f"| {label} | {(per_task.get(task) or {}).get('choice', '')} | "
                     + " | ".join(c.text for c in row) + " |")
    lines += ["", "Test Δ_t in percent against the tuned independent networks; ▲ positive, ▼ negative transfer, "
                  "= equivalent (Holm).", ""]
    return lines

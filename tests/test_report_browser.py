"""The HTML report as a person sees it: opened offline in headless Chromium.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and Playwright for
Python (``pip install playwright``; no browser download: Playwright drives
``/usr/bin/chromium`` through ``executable_path``). Skipped, with the reason,
only when one of the two is absent.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    for cand in (os.environ.get("SHARESEARCH_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _report_fixtures():
    """``make_results`` and the hostile name from tests/test_report.py (importlib import mode)."""
    path = Path(__file__).with_name("test_report.py")
    spec = importlib.util.spec_from_file_location("_sharesearch_test_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium not found (apt-get install -y chromium, or set SHARESEARCH_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_report_renders_offline_and_runs_no_user_script(browser, tmp_path):
    fx = _report_fixtures()
    from sharesearch.report import write_report

    results = fx.make_results(2)
    paths = write_report(results, tmp_path)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    page = ctx.new_page()
    dialogs: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    # hook every way a script could announce itself before the page's own scripts run
    page.add_init_script("""
        window.__fired = [];
        for (const k of ['alert', 'confirm', 'prompt']) {
            const orig = window[k];
            window[k] = function (...a) { window.__fired.push(k + ':' + a.join(',')); };
        }
    """)
    page.goto(paths["html"].as_uri(), wait_until="load", timeout=60_000)
    n_fig = page.locator(".ss-figure").count()
    assert n_fig == 6  # transfer matrix, topology, history, importances, Pareto front, small multiples
    page.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= n", arg=n_fig, timeout=60_000)
    # every figure div became a plotly plot with SVG and drawn marks inside
    plots = page.evaluate("""() => Array.from(document.querySelectorAll('.ss-figure')).map(d => ({
        plotly: d.classList.contains('js-plotly-plot'),
        svg: d.querySelectorAll('svg.main-svg').length,
        points: d.querySelectorAll('.scatterlayer .point, .barlayer .point, .heatmaplayer image').length,
        h: d.getBoundingClientRect().height}))""")
    assert all(p["plotly"] and p["svg"] >= 1 and p["points"] > 0 and p["h"] > 100 for p in plots), plots

    # the answer is in the first screen as a person sees it: the recommendation line, the transfer matrix
    # (drawn, with its cells' Δ and marks) and the metric names, each box inside the viewport and readable
    first = page.evaluate("""() => {
        const vh = window.innerHeight, vw = window.innerWidth;
        const box = e => { const r = e.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, w: r.width, h: r.height}; };
        const rec = document.querySelector('#answer .answer strong.overall');
        const mx = document.querySelector('#answer .ss-figure');
        const cells = Array.from(mx.querySelectorAll('text')).map(t => t.textContent);
        const ticks = Array.from(mx.querySelectorAll('.ytick text')).map(t => t.textContent);
        return {vh, vw, rec: box(rec), recText: rec.innerText, recFont: parseFloat(getComputedStyle(rec).fontSize),
                mx: box(mx), cells, ticks, svgW: mx.querySelector('svg.main-svg').getBoundingClientRect().width};
    }""")
    for key in ("rec", "mx"):
        b = first[key]
        assert b["top"] >= 0 and b["bottom"] <= first["vh"] and b["left"] >= 0 and b["right"] <= first["vw"], (key, b)
        assert b["w"] > 100 and b["h"] > 20, (key, b)
    assert first["svgW"] <= first["mx"]["w"] + 1  # the figure does not overflow its card
    assert first["recText"].startswith("share as in") and first["recFont"] >= 14
    assert any("▲" in c for c in first["cells"]) and any("▼" in c for c in first["cells"])
    assert any("%" in c for c in first["cells"])
    assert any("RMSE, lower is better" in t for t in first["ticks"])
    assert any("accuracy, higher is better" in t for t in first["ticks"])

    # the verdict tables render: one per candidate, three task rows each, visible
    rows = page.locator("table.verdict-table tbody tr")
    assert rows.count() == 3 * len(results["verdict"]["candidates"])
    assert rows.first.is_visible()
    colours = page.evaluate("""() => Array.from(document.querySelectorAll('table.verdict-table tbody tr'))
        .map(r => [r.className, getComputedStyle(r.cells[0]).backgroundColor])""")
    from sharesearch.report import _VERDICT_CLASS

    labels = {tv["verdict"] for c in results["verdict"]["candidates"] for tv in c["verdict"]["tasks"]}
    assert {c for c, _ in colours} == {_VERDICT_CLASS[v] for v in labels}
    assert {"neg", "pos"} <= {c for c, _ in colours}
    bg = {c: col for c, col in colours}
    assert len(set(bg.values())) == len(bg)  # every verdict class has its own colour

    # the hostile task name shows as text and ran nothing
    hostile = fx.HOSTILE
    body = page.evaluate("() => document.body.innerText")
    assert hostile in body
    assert page.evaluate("() => window.__fired") == []
    assert dialogs == []
    # it also shows, literally, inside the plotly figures (SVG text), not as markup
    svg_text = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot text'))"
                             ".map(t => t.textContent).join('\\n')")
    assert "<script>alert(1)<…" in svg_text  # the head label, abbreviated, drawn as literal text
    # hovering the head shows the full name, still as text
    hover = page.evaluate("""() => {
        const gd = document.querySelector('#topology .js-plotly-plot');
        const i = gd.data.findIndex(t => t.name === 'head');
        const j = gd.data[i].hovertext.findIndex(h => h.includes('alert'));
        Plotly.Fx.hover(gd, [{curveNumber: i, pointNumber: j}]);
        return Array.from(gd.querySelectorAll('.hoverlayer text')).map(t => t.textContent).join('\\n');
    }""")
    assert f"head of {hostile}" in hover and "Δ_t (test) = -12.50%" in hover
    assert page.evaluate("() => window.__fired") == []
    # no element came from user text: the only scripts are plotly.js and one per figure
    assert page.evaluate("() => document.scripts.length") == 1 + n_fig
    assert page.evaluate("() => document.querySelectorAll('b').length") == \
        len(results["verdict"]["candidates"]) + 1  # Δm in bold per candidate + the data name, none from names
    assert page.evaluate("() => document.querySelectorAll('strong').length") == 1  # the recommendation
    assert console_errors == [] and page_errors == []
    assert all(u.startswith("file://") or u.startswith("data:") or u == "about:blank" for u in requests), requests
    ctx.close()

"""Smoke test of the benchmarks: each module imports and its smallest configuration prints a ratio line.

No timing is asserted -- only that every benchmark runs and reports ``... -> N.NNx``.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
RATIO = re.compile(r": .+ vs .+ -> [0-9.]+x$")


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("SHARESEARCH_BENCH_THREADS", "1")

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def _smallest(mod, monkeypatch):
    name = mod.__name__
    if name == "bench_e2e":
        monkeypatch.setitem(mod.QUICK, "n", 300)
        monkeypatch.setitem(mod.QUICK, "n_trials", 3)
        monkeypatch.setitem(mod.QUICK, "max_steps", 20)
        monkeypatch.setitem(mod.QUICK, "baseline_trials", 1)
    elif name == "bench_sampler":
        monkeypatch.setattr(mod, "QUICK", {"seeds": 1, "cap": 5})
    elif name == "bench_scale":
        monkeypatch.setattr(mod, "QUICK", {"n": 200, "repeats": 1, "tasks": (2, 3), "stages": (2, 3),
                                           "study": (3, 3), "n_trials": 2, "rounds": 1})
    elif name == "bench_train":
        monkeypatch.setattr(mod, "EPOCHS", 1)
    elif name == "bench_verdict":
        monkeypatch.setattr(mod, "QUICK", {**mod.QUICK, "calibration_seeds": 1, "power_seeds": 1, "n": 200,
                                           "row_resamples": 5})
        monkeypatch.setattr(mod, "QUICK_PROTOCOL", mod.QUICK_PROTOCOL.updated(max_steps=4, eval_every=2))
    elif name == "bench_affinity":
        monkeypatch.setattr(mod, "QUICK", {**mod.QUICK, "data_seeds": 1, "steps": 10, "n": 300, "trial_steps": 10})
    elif name == "bench_population":
        monkeypatch.setattr(mod, "K", 2)
    elif name == "bench_transfer":
        monkeypatch.setattr(mod, "QUICK", {**mod.QUICK, "n": 300, "tasks": ("t1",), "seeds": 2, "ks": (10,),
                                           "trunk_steps": 20, "steps": 10, "lr_grid": (1e-2,)})
    elif name == "bench_baselines":
        monkeypatch.setattr(mod, "QUICK", {"n": 200, "max_steps": 20, "baseline_trials": 2})
    elif name == "bench_overhead":
        monkeypatch.setattr(mod, "QUICK", {**mod.QUICK, "n": 200, "n_trials": 2, "max_steps": 20, "eval_every": 10,
                                           "baseline": {"trials": 1, "confirm_seeds": 1, "confirm_top": 1}})


@pytest.mark.parametrize("name", ["bench_network", "bench_batching", "bench_train", "bench_e2e",
                                  "bench_sampler", "bench_scale", "bench_gpu", "bench_verdict",
                                  "bench_overhead", "bench_affinity", "bench_population", "bench_transfer",
                                  "bench_baselines"])
def test_benchmark_prints_a_ratio(name, bench, monkeypatch, capsys):
    mod = bench(name)
    _smallest(mod, monkeypatch)
    lines = mod.main(quick=True, device="cpu")
    out = capsys.readouterr().out
    if name == "bench_gpu":  # CUDA only: without a GPU it must skip cleanly
        import torch

        if not torch.cuda.is_available():
            assert lines == [] and "skipped" in out
            return
    assert lines, f"{name} reported no figure"
    for line in lines:
        assert RATIO.search(line), line
        assert line in out


def test_population_cap_prints_the_rule_against_the_one_before(bench, capsys):
    lines = bench("bench_population").main(quick=True, device="cpu", with_cap=True)
    out = capsys.readouterr().out
    cap = [line for line in lines if "16 + 4 (the rule before)" in line]
    assert len(cap) == 2  # shared-bottom and independent at width 64 (quick)
    for line in cap:
        assert RATIO.search(line) and line in out


def test_population_candidates_differ_where_companions_may_and_print_a_ratio(bench, monkeypatch, capsys):
    mod = bench("bench_population")
    cfgs = mod.candidate_configs(16, 10, "cpu")
    assert len({c.lr for c in cfgs}) == 16 and {c.weight_decay for c in cfgs} == {0.0, 1e-4}
    assert {c.lr_schedule for c in cfgs} == {"cosine", "constant"}
    from sharesearch.training import population_groups

    assert len(population_groups(cfgs)) == 1  # they can train as one population
    monkeypatch.setattr(mod, "N_CANDIDATES", 3)
    lines = mod.main(quick=True, device="cpu", only_candidates=True)
    out = capsys.readouterr().out
    assert len(lines) == 1 and "3 candidates width 64" in lines[0]
    assert RATIO.search(lines[0]) and lines[0] in out


def test_verdict_benchmark_lays_data_options_over_the_preset(bench):
    """``--data-option`` reaches every part's data set and the search's provenance record."""
    mod = bench("bench_verdict")
    p = {**mod.QUICK, "data_options": {"rank": 2, "d": 11, "n": 999}}
    data = mod._data("synthetic-planted", p, 3)
    assert data.meta["options"]["rank"] == 2 and data.meta["options"]["d"] == 11 and data.meta["options"]["seed"] == 3
    assert data.n == 999  # an option beats the part's row count
    assert mod._record("synthetic-planted", p, 3) == {"source": "synthetic-planted",
                                                      "options": {"n": 999, "rank": 2, "d": 11, "seed": 3}}
    assert mod._data("synthetic-null", {**mod.QUICK}, 3).meta["options"]["rank"] == 1


def test_run_all_parses_and_writes(bench, tmp_path, monkeypatch):
    run_all = bench("run_all")
    d = run_all.parse_line("x: ours 1.00 ms vs theirs 2.00 ms -> 2.00x")
    assert d["ratio"] == 2.0 and d["what"] == "x"
    out = tmp_path / "b.txt"
    assert run_all.main(["--quick", "--only", "batching", "--out", str(out)]) == 0
    assert "-> " in out.read_text() and out.with_suffix(".json").exists()
    assert run_all.main(["--only", "gpu"]) == 0  # skipped without --device cuda

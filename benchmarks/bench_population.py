"""Population training benchmarks, each a ratio measured side by side in this run.

1. k = 8 seeds of one shared-bottom graph (6 tasks, MLP width 64, then 256) as
   one population (``train_population``) against 8 separate ``train`` runs with
   the same configurations; five rounds of each, in turn, and their medians;
   then the same at width 64 under DWA, uncertainty, PCGrad and GradNorm loss
   weighting.
   Goal on 2 CPU cores: population / sequential <= 0.35 at width 64 (printed
   as sequential / population >= 2.86x).
2. The sweep behind the population size rule: time per member for P = 1, 2,
   4, 8, 16, 32 (and 64 on a GPU) at width 64 (``--sweep``).
3. The rule itself (``--cap``): 20 seeds (the verdict's most) trained as
   ``train_population`` cuts them now (at most ``population_size`` members, in
   populations of near-equal size) against the rule before (at most 16, the
   remainder last: 16 + 4), shared-bottom and independent at width 64 and 256.
4. Candidates (``--candidates``): 16 configurations of one graph that differ
   where a search's companions do (learning rate, weight decay, schedule,
   seed) trained as one population against one at a time, at width 64 and 256.
   Goal where a GPU is lent: throughput >= 10x (``benchmarks/gpu_check.sh``
   runs it with ``--device cuda``); on a CPU it is printed for reference.

    python benchmarks/bench_population.py [--quick] [--sweep] [--cap] [--candidates] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.training import TrainConfig, population_size, train, train_population  # noqa: E402

K = 8
#: candidates in part 4 (the issue's GPU figure: 16 in one population)
N_CANDIDATES = 16


def _setup(width: int, n: int, steps: int, device: str, weighting: str = "equal"):
    data = load_data("synthetic-planted", n=n, seed=0)
    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [width, width]}
    graph = SharingGraph.shared_bottom(data.tasks, bb)
    cfgs = [TrainConfig(max_steps=steps, eval_every=50, batch_size=64, seed=s, device=device, weighting=weighting)
            for s in range(K)]
    return data, graph, cfgs


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _side_by_side(graph, data, cfgs: list[TrainConfig], rounds: int, what: str) -> tuple[float, float]:
    """Medians of ``rounds`` timings of each side, taken in turn (population, sequential, population, ...):
    a shared machine's speed drifts between runs by more than a single pair of timings can tell apart."""
    train_population(graph, data, cfgs[:2], keep_model=False)  # warm-up (allocator, vmap's first trace)
    train(graph, data, cfgs[0], keep_model=False)
    pops, seqs = [], []
    for _ in range(rounds):
        pops.append(_timed(lambda: train_population(graph, data, cfgs, keep_model=False)))
        seqs.append(_timed(lambda: [train(graph, data, c, keep_model=False) for c in cfgs]))
    print(f"# {what}: population {', '.join(f'{t:.2f}' for t in pops)} s; "
          f"sequential {', '.join(f'{t:.2f}' for t in seqs)} s (rounds in turn; medians below)", flush=True)
    return statistics.median(pops), statistics.median(seqs)


def seeds_vs_sequential(width: int, quick: bool, device: str, rounds: int = 5, weighting: str = "equal") -> str:
    """Part 1: ``K`` seeds of one configuration as one population against ``K`` separate runs."""
    data, graph, cfgs = _setup(width, 1500, 100 if quick else 400, device, weighting)
    what = f"width {width}" + ("" if weighting == "equal" else f", {weighting}")
    pop, seq = _side_by_side(graph, data, cfgs, 1 if quick else rounds, what)
    return report(f"{K} seeds shared-bottom T=6 {what} {cfgs[0].max_steps} steps (goal >= 2.86x at width 64)",
                  "one population", pop, f"{K} sequential runs", seq)


def candidate_configs(n: int, steps: int, device: str) -> list[TrainConfig]:
    """``n`` configurations that differ only where a search's companions may (``MEMBER_FIELDS``): learning rates
    log-spaced over 1e-4 .. 1e-2, weight decay 0 or 1e-4, a cosine or constant schedule, and the seed.

    >>> from sharesearch.training import population_groups
    >>> cs = candidate_configs(4, 10, "cpu")
    >>> [round(c.lr, 5) for c in cs], len(population_groups(cs))  # one population
    ([0.0001, 0.00046, 0.00215, 0.01], 1)
    """
    lrs = torch.logspace(-4, -2, n, dtype=torch.float64).tolist()
    return [TrainConfig(max_steps=steps, eval_every=50, batch_size=64, device=device, seed=i, lr=lr,
                        weight_decay=1e-4 if i % 2 else 0.0, lr_schedule="cosine" if i % 4 < 2 else "constant")
            for i, lr in enumerate(lrs)]


def candidates(quick: bool, device: str, rounds: int = 3) -> list[str]:
    """Part 4: ``N_CANDIDATES`` candidates of one shared-bottom graph as one population against one at a time."""
    lines = []
    for width in (64,) if quick else (64, 256):
        data, graph, _ = _setup(width, 1500, 1, device)
        cfgs = candidate_configs(N_CANDIDATES, 60 if quick else 400, device)
        what = f"{N_CANDIDATES} candidates width {width}"
        pop, seq = _side_by_side(graph, data, cfgs, 1 if quick else rounds, what)
        lines.append(report(f"{what} shared-bottom T=6 {cfgs[0].max_steps} steps, throughput (goal >= 10x on a "
                            f"GPU)", "one population", pop, "one at a time", seq))
    return lines


def sweep(quick: bool, device: str) -> list[str]:
    data, graph, cfgs = _setup(64, 1500, 60 if quick else 200, device)
    train_population(graph, data, cfgs[:2], keep_model=False)  # warm-up (a GPU's context and kernels, vmap's trace)
    one = _timed(lambda: train(graph, data, cfgs[0], keep_model=False))
    lines = []
    for p in (2, 4, 8, 16, 32) + ((64,) if torch.device(device).type == "cuda" else ()):  # a GPU has room for 64
        cs = [cfgs[0].updated(seed=s) for s in range(p)]
        t = _timed(lambda: train_population(graph, data, cs, keep_model=False))
        lines.append(report(f"population P={p} width 64: time per member", "population", t / p, "one run", one))
    return lines


def cap(quick: bool, device: str) -> list[str]:
    data = load_data("synthetic-mmoe", n=4000, seed=0)
    cfgs = [TrainConfig(max_steps=40 if quick else 200, eval_every=50, batch_size=128, lr_schedule="cosine",
                        patience=0, seed=s, device=device) for s in range(20)]
    lines = []
    for width in (64,) if quick else (64, 256):
        bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [width, width, width // 2]}
        for make in (SharingGraph.shared_bottom, SharingGraph.independent):
            graph = make(data.tasks, bb)
            train_population(graph, data, cfgs[:2], keep_model=False)  # warm-up
            now = _timed(lambda: train_population(graph, data, cfgs, keep_model=False))
            before = _timed(lambda: [train_population(graph, data, c, keep_model=False, max_members=16)
                                     for c in (cfgs[:16], cfgs[16:])])
            lines.append(report(f"20 seeds {make.__name__} T=6 width {width} {cfgs[0].max_steps} steps: populations "
                                f"as cut now (at most {population_size(device)}, near-equal)", "now", now,
                                "16 + 4 (the rule before)", before))
    return lines


def main(quick: bool = False, device: str = "cpu", with_sweep: bool = False, with_cap: bool = False,
         only_candidates: bool = False, rounds: int = 3) -> list[str]:
    setup_threads()
    if only_candidates:  # part 4, and the sweep when asked (the GPU check's population figures)
        return candidates(quick, device, rounds) + (sweep(quick, device) if with_sweep else [])
    lines = [seeds_vs_sequential(64, quick, device)]
    if not quick:
        lines.append(seeds_vs_sequential(256, quick, device))
    for weighting in ("dwa", "uncertainty", "pcgrad", "gradnorm"):  # their seeds train as one population too
        lines.append(seeds_vs_sequential(64, quick, device, weighting=weighting))
    if with_sweep:
        lines += sweep(quick, device)
    if with_cap:
        lines += cap(quick, device)
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--cap", action="store_true", help="the population size rule against the one before")
    ap.add_argument("--candidates", action="store_true", help="only part 4: 16 candidates as one population")
    ap.add_argument("--rounds", type=int, default=3, help="part 4's rounds of each side in turn (default 3)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    main(a.quick, a.device, a.sweep, a.cap, a.candidates, a.rounds)

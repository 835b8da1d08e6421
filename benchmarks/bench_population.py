"""Population training benchmarks, each a ratio measured side by side in this run.

1. k = 8 seeds of one shared-bottom graph (6 tasks, MLP width 64, then 256) as
   one population (``train_population``) against 8 separate ``train`` runs with
   the same configurations. Goal on 2 CPU cores: population / sequential <= 0.35
   at width 64 (printed as sequential / population >= 2.86x).
2. The sweep behind the population size rule: time per member for P = 1, 2,
   4, 8, 16 at width 64 (``--sweep``).

    python benchmarks/bench_population.py [--quick] [--sweep] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.training import TrainConfig, train, train_population  # noqa: E402

K = 8


def _setup(width: int, n: int, steps: int, device: str):
    data = load_data("synthetic-planted", n=n, seed=0)
    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [width, width]}
    graph = SharingGraph.shared_bottom(data.tasks, bb)
    cfgs = [TrainConfig(max_steps=steps, eval_every=50, batch_size=64, seed=s, device=device) for s in range(K)]
    return data, graph, cfgs


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def seeds_vs_sequential(width: int, quick: bool, device: str) -> str:
    data, graph, cfgs = _setup(width, 1500, 100 if quick else 400, device)
    train_population(graph, data, cfgs[:2], keep_model=False)  # warm-up (allocator, vmap's first trace)
    pop = _timed(lambda: train_population(graph, data, cfgs, keep_model=False))
    seq = _timed(lambda: [train(graph, data, c, keep_model=False) for c in cfgs])
    return report(f"{K} seeds shared-bottom T=6 width {width} {cfgs[0].max_steps} steps (goal >= 2.86x at width 64)",
                  "one population", pop, f"{K} sequential runs", seq)


def sweep(quick: bool, device: str) -> list[str]:
    data, graph, cfgs = _setup(64, 1500, 60 if quick else 200, device)
    one = _timed(lambda: train(graph, data, cfgs[0], keep_model=False))
    lines = []
    for p in (2, 4, 8, 16):
        cs = [cfgs[0].updated(seed=s) for s in range(p)]
        t = _timed(lambda: train_population(graph, data, cs, keep_model=False))
        lines.append(report(f"population P={p} width 64: time per member", "population", t / p, "one run", one))
    return lines


def main(quick: bool = False, device: str = "cpu", with_sweep: bool = False) -> list[str]:
    setup_threads()
    lines = [seeds_vs_sequential(64, quick, device)]
    if not quick:
        lines.append(seeds_vs_sequential(256, quick, device))
    if with_sweep:
        lines += sweep(quick, device)
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    main(a.quick, a.device, a.sweep)

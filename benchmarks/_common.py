"""Small shared helpers for the benchmarks: timing, the one-line report format, the command line."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch


def run_quick_device(main: Callable[[bool, str], object], doc: str, device: str = "cpu") -> None:
    """The command line of a benchmark whose only options are ``--quick`` and ``--device`` (default
    ``device``): parse, call ``main(quick, device)``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default=device)
    a = ap.parse_args()
    main(a.quick, a.device)


def setup_threads() -> None:
    """Benchmarks run on the 2 cores a laptop-class CI machine has, unless told otherwise."""
    torch.set_num_threads(int(os.environ.get("SHARESEARCH_BENCH_THREADS", "2")))


def device_sync(device: str) -> Callable[[], None]:
    """What waits for ``device``'s queued work before a clock is read: ``torch.cuda.synchronize`` on CUDA, a no-op
    elsewhere (CPU work is done when the call returns)."""
    return torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)


def median_time(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def report(what: str, ours_label: str, ours: float, theirs_label: str, theirs: float, unit: str = "time") -> str:
    """One line: what was compared, both measurements, and theirs/ours as 'N.NNx' (>1: we are faster)."""
    if unit == "time":
        line = (f"{what}: {ours_label} {fmt_time(ours)} vs {theirs_label} {fmt_time(theirs)} "
                f"-> {theirs / ours:.2f}x")
    else:
        line = f"{what}: {ours_label} {ours:.4g} {unit} vs {theirs_label} {theirs:.4g} {unit} -> {theirs / ours:.2f}x"
    print(line, flush=True)
    return line


def groups_planted(graph, planted) -> bool:
    """Does a sharing tree group exactly the planted clusters?

    Every stage's partition refines the clusters (no block mixes two of them) and some stage equals them
    (each cluster shares a block of its own). The planted tree itself, and the same tree with a task-specific
    last stage, do; a tree where one task leaves its cluster, or where every task shares a first stage, does not.
    """
    want = {frozenset(g) for g in planted}
    parts = [{frozenset(g) for g in p} for p in graph.partitions()]
    refines = all(any(g <= c for c in want) for p in parts for g in p)
    return refines and any(p == want for p in parts)


def trials_until_planted(trials, planted, cap: int) -> int:
    """Trials (in order of their numbers, references and enqueued trees included) until the best-so-far
    topology by objective value groups the planted clusters; ``cap`` if it never does."""
    from sharesearch.graph import SharingGraph

    best = None
    for t in sorted(trials, key=lambda t: t.number):
        if t.value is None:
            continue
        if best is None or t.value > best.value:
            best = t
        if "graph" in best.user_attrs and groups_planted(SharingGraph.from_dict(best.user_attrs["graph"]), planted):
            return t.number + 1
    return cap


def trials_until_tried(trials, planted, cap: int) -> int:
    """Trials (in order of their numbers) until the search first trains a tree that groups the planted clusters,
    whatever its value; ``cap`` if it never does. A trial's value is one seed, so which tree is best so far
    moves with seed noise; this counts what the sampler (or the warm start) proposes."""
    from sharesearch.graph import SharingGraph

    for t in sorted(trials, key=lambda t: t.number):
        if t.value is not None and "graph" in t.user_attrs and groups_planted(
                SharingGraph.from_dict(t.user_attrs["graph"]), planted):
            return t.number + 1
    return cap

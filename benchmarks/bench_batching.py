"""Benchmark: in-memory index batching vs a torch DataLoader over the same tensors.

One epoch (batch 256, shuffled) over N=50k rows, d=32 features, T=6 tasks:

* index batching -- ``for idx in IndexBatcher(data): xb, yb = x[idx], y[idx]``
* DataLoader     -- ``DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True)``
  (per-sample ``__getitem__`` + default collate, ``num_workers=0``)

The consumer is trivial (it touches one value of each batch), so the numbers
are the cost of producing batches. Median over ``--repeats`` epochs after one
warm-up. ``torch.set_num_threads(2)``.

Run::

    python benchmarks/bench_batching.py            # CPU
    python benchmarks/bench_batching.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from sharesearch.data import IndexBatcher, MultiTaskData
from sharesearch.tasks import TaskSpec


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data(n: int, d: int, t: int, device: torch.device) -> MultiTaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, t, generator=g)
    tasks = [TaskSpec(f"t{i}", "regression") for i in range(t)]
    return MultiTaskData("bench", tasks, x, y, torch.zeros(n, dtype=torch.int8), 0).to(device)


def _time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--tasks", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="N=5000, 2 repeats")
    return ap.parse_args(argv)


def main(quick: bool = False, device: str = "cpu", args: argparse.Namespace | None = None) -> list[str]:
    if args is None:
        args = _args(["--device", device] + (["--quick"] if quick else []))
    if args.quick:
        args.n, args.repeats = min(args.n, 5000), min(args.repeats, 2)
    torch.set_num_threads(2)
    device = torch.device(args.device)
    data = _data(args.n, args.d, args.tasks, device)
    x, y = data.x, data.y
    batcher = IndexBatcher(data, batch_size=args.batch_size, generator=0)

    def index_epoch() -> None:
        acc = torch.zeros((), device=device)
        for idx in batcher:
            xb, yb = x[idx], y[idx]
            acc += xb[0, 0] + yb[0, 0]  # trivial consumer
        acc.item()

    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))

    def loader_epoch() -> None:
        acc = torch.zeros((), device=device)
        for xb, yb in loader:
            acc += xb[0, 0] + yb[0, 0]
        acc.item()

    t_idx = _time(index_epoch, args.repeats, device)
    t_dl = _time(loader_epoch, args.repeats, device)
    line = (f"batching epoch N={args.n} d={args.d} T={args.tasks} batch={args.batch_size} on {device.type}: "
            f"index batching {t_idx * 1e3:.1f} ms vs DataLoader {t_dl * 1e3:.0f} ms -> {t_dl / t_idx:.2f}x")
    print(line, flush=True)
    return [line]


if __name__ == "__main__":
    main(args=_args())

"""Compiled network vs a hand-written per-task loop of nn.Linear modules.

Forward + backward of T = 8 tasks on an MLP of 3 stages (widths 64 and 256,
batch 256) for the independent and the shared-bottom graph, on 2 CPU threads.
Each line reads::

    network fwd+bwd T=8 width=64 independent: compiled 1.23 ms vs per-task loop 2.71 ms -> 2.20x

(ratio = loop time / compiled time; > 1 means the compiled network is faster).

``--sweep`` also prints the kernel measurement behind
``MLPBackbone.prefers_batched`` / ``CNNBackbone.prefers_batched``: G sibling
blocks as one batched op vs a Python loop.

Run: ``python benchmarks/bench_network.py [--sweep] [--device cuda]``
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import benchmark

from sharesearch.backbones import make_backbone
from sharesearch.graph import SharingGraph
from sharesearch.network import compile_graph

T, BATCH, STAGES = 8, 256, 3


def _time(fn, min_run_time: float = 1.0) -> float:
    """Median seconds per call (torch.utils.benchmark; warms up first)."""
    for _ in range(3):
        fn()
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def _time_pair(f, g, rounds: int = 5) -> tuple[float, float]:
    """Interleave ``rounds`` timings of ``f`` and ``g``; keep each one's best median.

    The cores may be shared with other jobs: alternating and taking the minimum
    keeps a burst of outside load from landing on one side only.
    """
    tf, tg = float("inf"), float("inf")
    for _ in range(rounds):
        tf = min(tf, _time(f, 0.25))
        tg = min(tg, _time(g, 0.25))
    return tf, tg


class PerTaskLoop(nn.Module):
    """The obvious hand-written model: nn.Linear modules, a Python loop over tasks."""

    def __init__(self, width: int, shared: bool) -> None:
        super().__init__()
        self.shared = shared

        def trunk():
            return nn.Sequential(*[m for _ in range(STAGES) for m in (nn.Linear(width, width), nn.ReLU())])

        self.trunks = nn.ModuleList([trunk() for _ in range(1 if shared else T)])
        self.heads = nn.ModuleList([nn.Linear(width, 1) for _ in range(T)])

    def forward(self, x):
        if self.shared:
            h = self.trunks[0](x)
            return [head(h) for head in self.heads]
        return [head(trunk(x)) for trunk, head in zip(self.trunks, self.heads)]


def bench_networks(device: str, quick: bool = False) -> list[str]:
    tasks = {f"t{i}": 1 for i in range(T)}
    lines = []
    for width in ((64,) if quick else (64, 256)):
        bb = {"name": "mlp", "input_shape": [width], "widths": [width] * STAGES}
        for kind in ("independent", "shared_bottom"):
            graph = getattr(SharingGraph, kind)(tasks, bb)
            net = compile_graph(graph, seed=0).to(device)
            ref = PerTaskLoop(width, kind == "shared_bottom").to(device)
            assert sum(p.numel() for p in ref.parameters()) == graph.n_params()
            x = torch.randn(BATCH, width, device=device)

            def step_net():
                net.zero_grad(set_to_none=True)
                sum(y.sum() for y in net(x).values()).backward()

            def step_ref():
                ref.zero_grad(set_to_none=True)
                sum(y.sum() for y in ref(x)).backward()

            sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
            t_net, t_ref = _time_pair(lambda: (step_net(), sync()), lambda: (step_ref(), sync()),
                                      rounds=2 if quick else 5)
            name = kind.replace("_", "-")
            line = (f"network fwd+bwd T={T} width={width} {name}: compiled {t_net * 1e3:.2f} ms "
                    f"vs per-task loop {t_ref * 1e3:.2f} ms -> {t_ref / t_net:.2f}x")
            print(line, flush=True)
            lines.append(line)
    return lines


def sweep_mlp() -> None:
    """G sibling Linear+ReLU blocks, fwd+bwd: loop of F.linear vs stacked baddbmm."""
    for width in (32, 64, 128, 256, 512):
        bb = make_backbone({"name": "mlp", "input_shape": [width], "widths": [width]})
        for G in (2, 4, 8, 16):
            ws = [torch.randn(width, width, requires_grad=True) for _ in range(G)]
            bs = [torch.randn(width, requires_grad=True) for _ in range(G)]
            x = torch.randn(G, BATCH, width)
            def step(batched):
                y = bb.activate(bb.run_blocks(x, ws, bs, batched=batched, shared_input=False), True)
                y.sum().backward()

            r = _time_pair(lambda: step(False), lambda: step(True), rounds=3)
            print(f"mlp blocks G={G:2d} width={width}: loop {r[0] * 1e3:.3f} ms  batched {r[1] * 1e3:.3f} ms  "
                  f"-> {r[0] / r[1]:.2f}x (rule says {'batched' if bb.prefers_batched(0, G) else 'loop'})", flush=True)


def sweep_cnn() -> None:
    """G sibling 3x3 conv+ReLU blocks (batch 64), fwd+bwd: loop vs grouped conv."""
    for cin, cout, hw in ((3, 8, 16), (8, 8, 16), (16, 16, 8), (32, 32, 8), (64, 64, 4)):
        bb = make_backbone({"name": "cnn", "input_shape": [cin, hw, hw], "widths": [cout]})
        for G in (2, 4, 8):
            ws = [torch.randn(cout, cin, 3, 3, requires_grad=True) for _ in range(G)]
            bs = [torch.randn(cout, requires_grad=True) for _ in range(G)]
            x = torch.randn(G, 64, cin, hw, hw)
            def step(batched):
                F.relu(bb.run_blocks(x, ws, bs, batched=batched, shared_input=False)).sum().backward()

            r = _time_pair(lambda: step(False), lambda: step(True), rounds=3)
            print(f"cnn blocks G={G} {cin}->{cout} ch {hw}x{hw}: loop {r[0] * 1e3:.3f} ms  grouped {r[1] * 1e3:.3f} ms  "
                  f"-> {r[0] / r[1]:.2f}x (rule says {'grouped' if bb.prefers_batched(0, G) else 'loop'})", flush=True)


def main(quick: bool = False, device: str = "cpu") -> list[str]:
    """Entry point of run_all.py: the network lines only (no sweep)."""
    torch.set_num_threads(2)
    torch.manual_seed(0)
    return bench_networks(device, quick)


def _cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", action="store_true", help="also print the kernel sweep behind the batching rule")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench_networks(args.device)
    if args.sweep:
        sweep_mlp()
        sweep_cnn()


if __name__ == "__main__":
    _cli()

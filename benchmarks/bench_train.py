"""Trainer benchmarks, each a ratio measured side by side in this run.

1. sharesearch's training loop against a hand-written PyTorch loop for the
   same shared-bottom network (same data, batches, optimiser, per-epoch
   validation). Aim: within 10% (ratio >= 0.9).
2. The T = 8 independent baselines trained in one pass (the independent
   graph) against 8 separate single-task runs.

    python benchmarks/bench_train.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median_time, report, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.training import TrainConfig, train  # noqa: E402

T, D, WIDTHS, EPOCHS, BATCH = 8, 32, [64, 64, 32], 3, 256


def hand_written(data, epochs: int, seed: int = 0) -> float:
    """The obvious script: nn.Sequential trunk, one nn.Linear head per task, Adam, MSE."""
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(D, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
    heads = nn.ModuleList(nn.Linear(32, 1) for _ in range(T))
    params = list(trunk.parameters()) + list(heads.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    tr, va = data.indices("train"), data.indices("val")
    x, y = data.x, data.y
    best = [float("inf")] * T
    for _ in range(epochs):
        perm = tr[torch.randperm(len(tr))]
        for i in range(0, len(perm), BATCH):
            idx = perm[i : i + BATCH]
            h = trunk(x[idx])
            loss = sum(nn.functional.mse_loss(heads[t](h)[:, 0], y[idx, t]) for t in range(T))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            h = trunk(x[va])
            for t in range(T):
                best[t] = min(best[t], float(((heads[t](h)[:, 0] - y[va, t]) ** 2).mean().sqrt()))
    return sum(best)


def main(quick: bool = False, device: str = "cpu") -> list[str]:
    setup_threads()
    n = 4000 if quick else 20000
    data = load_data("synthetic-mmoe", n=n, d=D, seed=0, clusters=[[0, 1, 2], [3, 4], [5, 6], [7]])
    bb = {"name": "mlp", "input_shape": [D], "widths": WIDTHS}
    cfg = TrainConfig(epochs=EPOCHS, batch_size=BATCH, device="cpu")  # the hand-written loop is CPU-only
    lines = []
    sb = SharingGraph.shared_bottom(data.tasks, bb)
    ours = median_time(lambda: train(sb, data, cfg, keep_model=False))
    theirs = median_time(lambda: hand_written(data, EPOCHS))
    lines.append(report(f"train shared-bottom T={T} N={n} {EPOCHS} epochs (>=0.9x is within 10%)",
                        "sharesearch", ours, "hand-written loop", theirs))

    ind = SharingGraph.independent(data.tasks, bb)
    one_pass = median_time(lambda: train(ind, data, cfg, keep_model=False), repeats=2)

    def separate():
        for name in data.task_names:
            d1 = data.subset_tasks([name])
            train(SharingGraph.independent(d1.tasks, bb), d1, cfg, keep_model=False)

    sep = median_time(separate, repeats=2)
    lines.append(report(f"baselines T={T} N={n} {EPOCHS} epochs", "one pass", one_pass, f"{T} separate runs", sep))
    return lines


if __name__ == "__main__":
    main()

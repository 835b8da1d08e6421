"""Trainer benchmarks, each a ratio measured side by side in this run.

1. sharesearch's training loop against a hand-written PyTorch loop for the
   same shared-bottom network (same data, batches, optimiser, per-epoch
   validation). Aim: within 10% (ratio >= 0.9).
2. The T = 8 independent baselines trained in one pass (the independent
   graph) against 8 separate single-task runs.
3. PCGrad's and GradNorm's training time divided by equal weighting's, on
   one shared-bottom (6 tasks, widths [64, 64, 32], n = 4000, 10 epochs),
   before (one backward per task: the old code, kept below as private
   reference classes) and after (one batched backward). Aim: <= 1.3x each.
   Then the floor of each (part 3b): equal's time plus only the batched
   backward the method cannot avoid -- on a CPU PCGrad's floor is above 1.3x
   (T backward passes through the trunk), and it is never approximated.
   ``--device cuda`` runs part 3 on a GPU, where the batched backward's T
   passes run as one set of kernels (``benchmarks/gpu_check.sh`` does); the
   "before" arms, CPU references, are left out there.

    SHARESEARCH_BENCH_THREADS=1 python benchmarks/bench_train.py --only weighting [--device cuda]

    python benchmarks/bench_train.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_sync, median_time, report, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.network import compile_graph  # noqa: E402
from sharesearch.tasks import task_loss  # noqa: E402
from sharesearch.training import TrainConfig, step_budget, train  # noqa: E402
from sharesearch.weighting import WEIGHTINGS, GradNorm, PCGrad  # noqa: E402
from sharesearch.weighting._base import _graph_leaves, _task_grads  # noqa: E402

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


class _PerTaskPCGrad(PCGrad):
    """PCGrad as it was before the batched backward: one backward per task (reference for part 3)."""

    def backward(self, losses, shared_params, *, counts=None, groups=None):
        present = self._present(losses, counts).losses
        shared = list(dict.fromkeys(p for p in shared_params if p.requires_grad))
        saved = [p.grad for p in shared]
        for p in shared:
            p.grad = None
        live = [self.priorities[t] * loss for t, loss in present.items() if loss.requires_grad]
        rows = []
        try:
            for k, loss in enumerate(live):  # task-specific gradients accumulate; shared ones are collected
                loss.backward(retain_graph=k < len(live) - 1)
                rows.append(torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1)
                                       for p in shared]))
                for p in shared:
                    p.grad = None
        finally:
            for p, g in zip(shared, saved):
                p.grad = g
        if shared and rows:
            total = self._project_rows(torch.stack(rows)).sum(dim=0)
            for p, g in zip(shared, total.split([p.numel() for p in shared])):
                p.grad = g.view_as(p).clone() if p.grad is None else p.grad + g.view_as(p)
        return {t: self.priorities[t] for t in present}

    def _project_rows(self, grads):
        n, out = grads.shape[0], grads.clone()
        if n < 2:
            return out
        orders = []
        for i in range(n):
            perm = torch.randperm(n - 1, generator=self._generator)
            orders.append(perm + (perm >= i).long())
        order, sq = torch.stack(orders), (grads * grads).sum(dim=1)
        for k in range(n - 1):
            j = order[:, k]
            gj = grads[j]
            dot = (out * gj).sum(dim=1)
            coef = torch.where(dot < 0, dot / torch.where(sq[j] > 0, sq[j], torch.ones_like(sq[j])), 0.0)
            out = out - coef[:, None] * gj
        return out


class _PerTaskGradNorm(GradNorm):
    """GradNorm as it was before the batched backward: one autograd.grad per task and an autograd pass for the
    logits' gradient (reference for part 3; self-contained, so later changes to GradNorm do not leak into it)."""

    def backward(self, losses, shared_params, *, counts=None, groups=None):
        batch = self._present(losses, counts)
        given, labelled, masked = batch.given, batch.labelled, batch.losses
        if not batch.names:
            return {}
        pairs = self._groups(groups, shared_params)
        self._balanced = tuple(any(t in g for g, _ in pairs) for t in self.task_names)
        mask = torch.tensor(self._balanced)
        soft = torch.softmax(self.logits.masked_fill(~mask, -float("inf")), dim=0)
        w_all = torch.where(mask, sum(self._balanced) * soft, torch.ones_like(soft))  # [T], graph to the logits
        names = list(batch.names)
        index = {t: i for i, t in enumerate(self.task_names)}
        idx = torch.tensor([index[t] for t in names])
        lab = torch.stack([labelled[t] for t in names])
        value = torch.stack([masked[t].detach() for t in names]).to(w_all)
        init = self._initial.to(w_all).clone()
        init[idx] = torch.where(lab & torch.isnan(init[idx]), value.clamp_min(1e-12), init[idx])
        self._initial = init
        known = init[idx]
        ratio = torch.where(lab, value / torch.where(torch.isnan(known), 1.0, known), 1.0)
        grads = {}
        for t in names:
            params = list(dict.fromkeys(q for g, ps in pairs if t in g for q in ps))
            if params and given[t].requires_grad:
                got = torch.autograd.grad(masked[t], params, retain_graph=True, allow_unused=True)
                grads[t] = {id(q): g for q, g in zip(params, got) if g is not None}
        total = None
        for tasks, params in pairs:
            members = [k for k, t in enumerate(names) if t in tasks and t in grads]
            if len(members) < 2:
                continue
            norms = torch.stack([torch.stack([grads[names[k]].get(id(q), torch.zeros(())).norm().to(w_all)
                                              for q in params]).norm() for k in members])
            k = torch.tensor(members)
            ok = lab[k] & (norms > 0)
            n = ok.sum().clamp_min(1)
            g = w_all[idx[k]] * norms
            g_bar = torch.where(ok, g, 0.0).sum() / n
            r_bar = torch.where(ok, ratio[k], 0.0).sum() / n
            target = (g_bar * (ratio[k] / torch.where(r_bar > 0, r_bar, 1.0)) ** self.alpha).detach()
            term = torch.where(ok, (g - target).abs(), 0.0).sum()
            total = term if total is None else total + term
        if total is not None and total.requires_grad:
            (grad,) = torch.autograd.grad(total, [self.logits])
            self.logits.grad = grad if self.logits.grad is None else self.logits.grad + grad
        w = dict(zip(self.task_names, w_all.detach().tolist()))
        coef = {t: self.priorities[t] * w[t] for t in names}
        sum(coef[t] * masked[t] for t in names).backward()
        return coef


@contextmanager
def _registered(name, cls):
    """Let ``make_weighting(name)`` build ``cls`` for the duration (the trainer builds by name)."""
    old = WEIGHTINGS[name]
    WEIGHTINGS[name] = cls
    try:
        yield
    finally:
        WEIGHTINGS[name] = old


def weighting_overhead(quick: bool = False, device: str = "cpu") -> list[str]:
    """Part 3: PCGrad and GradNorm training time / equal weighting's, per-task backward vs batched."""
    data = load_data("synthetic-mmoe", n=4000, d=D, seed=0, clusters=[[0, 1, 2], [3, 4], [5]])  # 6 tasks
    sb = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": [D], "widths": WIDTHS})
    steps = {"max_steps": 12} if quick else {"epochs": 10}  # 10 epochs: 110 steps, 10 evaluations
    arms = {"equal": ("equal", None), "pcgrad before": ("pcgrad", _PerTaskPCGrad), "pcgrad after": ("pcgrad", None),
            "gradnorm before": ("gradnorm", _PerTaskGradNorm), "gradnorm after": ("gradnorm", None)}
    if torch.device(device).type != "cpu":  # the old per-task classes are CPU references, written for it alone
        arms = {arm: v for arm, v in arms.items() if not arm.endswith("before")}
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    for _ in range(2 if quick else 7):  # rounds of every arm in turn: the machine's load hits them alike
        for arm, (name, cls) in arms.items():
            cfg = TrainConfig(batch_size=BATCH, device=device, weighting=name, **steps)
            with _registered(name, cls or WEIGHTINGS[name]):
                t0 = time.perf_counter()
                train(sb, data, cfg, keep_model=False)
                times[arm].append(time.perf_counter() - t0)
    med = {arm: statistics.median(ts[1:]) for arm, ts in times.items()}  # round 1 warms up
    size = "12 steps" if quick else "10 epochs"
    on = "" if device == "cpu" else f" on {device}"
    lines = []
    for arm in arms:
        if arm != "equal":
            method, when = arm.split()
            lines.append(report(f"{method} training time / equal's, {when}, shared-bottom T=6 N=4000 {size}{on} "
                                f"(aim <=1.3x)",
                                "equal", med["equal"], arm, med[arm]))
    steps = step_budget(TrainConfig(batch_size=BATCH, **steps), data)
    return lines + weighting_floor(sb, data, med["equal"], steps, repeats=50 if quick else 300, device=device)


def weighting_floor(graph, data, equal_s: float, steps: int, repeats: int = 300, device: str = "cpu") -> list[str]:
    """Part 3b: the least PCGrad and GradNorm can cost over equal weighting with a batched backward, measured.

    Per step on the same network and batch size: the ordinary backward of the
    summed loss (what equal weighting runs), the batched per-task backward of
    every parameter (what PCGrad cannot avoid: ``T`` backward passes' FLOPs
    through the trunk, and it replaces the ordinary backward) and the batched
    per-task backward of the last shared layer only (what GradNorm adds to the
    ordinary backward). Floor = (equal's training time + ``steps`` x the extra
    per step) / equal's training time, with nothing else (projection,
    bookkeeping) counted: the printed ratio is the best any implementation on
    this mechanism could reach.
    """
    net = compile_graph(graph, seed=0).to(device)
    specs, tr = data.tasks, data.indices("train")
    x, y = data.x.to(device), data.y.to(device)
    last = [q for ps in net.last_shared_parameters().values() for q in ps]
    gen = torch.Generator().manual_seed(0)
    sync = device_sync(device)

    def stacked():
        idx = tr[torch.randint(len(tr), (BATCH,), generator=gen)].to(device)
        out = net(x[idx])
        return torch.stack([task_loss(s, out[s.name], y[idx][:, i], True) for i, s in enumerate(specs)])  # [T]

    def plain(st):
        st.sum().backward()

    def batched_all(st):
        _task_grads(st, _graph_leaves(st))

    def batched_last(st):
        _task_grads(st, last)

    per = {f: [] for f in (plain, batched_all, batched_last)}
    for r in range(repeats):
        for f, acc in per.items():  # interleaved
            st = stacked()
            sync()
            t0 = time.perf_counter()
            f(st)
            sync()
            acc.append(time.perf_counter() - t0)
            net.zero_grad(set_to_none=True)
    ms = {f.__name__: statistics.median(v[repeats // 10:]) for f, v in per.items()}
    print(f"# per step (ms): ordinary backward {ms['plain'] * 1e3:.3f}, batched per-task backward of every "
          f"parameter {ms['batched_all'] * 1e3:.3f}, of the last shared layer {ms['batched_last'] * 1e3:.3f}; "
          f"equal's training step (all in) {equal_s / steps * 1e3:.3f}", flush=True)
    pc = equal_s + steps * (ms["batched_all"] - ms["plain"])
    gn = equal_s + steps * ms["batched_last"]
    return [report("pcgrad floor / equal's: batched per-task backward replacing the ordinary one, nothing else",
                   "equal", equal_s, "floor", pc),
            report("gradnorm floor / equal's: batched last-shared-layer backward added, nothing else",
                   "equal", equal_s, "floor", gn)]


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
    return lines + weighting_overhead(quick, device)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu", help="part 3 (the weightings) only; the hand-written loop is CPU-only")
    ap.add_argument("--only", choices=["weighting"], default=None, help="part 3 alone")
    a = ap.parse_args()
    if a.only == "weighting":
        setup_threads()
        weighting_overhead(a.quick, a.device)
    else:
        main(a.quick, a.device)

"""make_optimizer: fused kernels where torch has them, equal to the multi-tensor path to float32 rounding."""

from __future__ import annotations

import pytest
import torch

from sharesearch.graph import SharingGraph
from sharesearch.network import compile_graph
from sharesearch.training import TrainConfig
from sharesearch.training._schedule import fused_ok, make_optimizer

CONFIGS = {"adam": TrainConfig(lr=1e-3), "adamw": TrainConfig(lr=1e-3, optimizer="adamw", weight_decay=0.01),
           "adam+decay": TrainConfig(lr=1e-3, weight_decay=0.01), "sgd": TrainConfig(lr=1e-2, optimizer="sgd")}


def _trajectory(cfg: TrainConfig, fused: bool, steps: int = 50) -> list[torch.Tensor]:
    """``steps`` optimizer steps of a small branched net on seeded batches; its final parameters."""
    g = SharingGraph.branched({"a": 1, "b": 3, "c": 1}, {"name": "mlp", "input_shape": [8], "widths": [16, 16]},
                              ["a,b,c", "a,b|c"])
    net = compile_graph(g, seed=0)
    opt = make_optimizer(cfg, list(net.parameters()))
    assert opt.defaults["fused"] is True  # float32 on the CPU: the fused kernel
    if not fused:  # the same optimizer on the multi-tensor path
        for group in opt.param_groups:
            group["fused"], group["foreach"] = False, True
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(32, 8, generator=gen)  # [B, 8]
        out = net(x)
        loss = sum(((o - 1.0) ** 2).mean() for o in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fused_equals_foreach_over_50_steps(name):
    cfg = CONFIGS[name]
    fused, foreach = _trajectory(cfg, True), _trajectory(cfg, False)
    start = [p.detach() for p in compile_graph(SharingGraph.branched(
        {"a": 1, "b": 3, "c": 1}, {"name": "mlp", "input_shape": [8], "widths": [16, 16]}, ["a,b,c", "a,b|c"]),
        seed=0).parameters()]
    moved = max(float((p - s).abs().max()) for p, s in zip(foreach, start))
    assert moved > 10 * cfg.lr  # the parameters did travel
    diff = max(float((a - b).abs().max()) for a, b in zip(fused, foreach))
    assert diff <= 1e-6, (name, diff)


def test_fused_only_where_torch_has_the_kernel():
    real = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))]
    assert fused_ok(real)
    assert make_optimizer(TrainConfig(), real).defaults["fused"] is True
    cplx = [torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))]
    assert not fused_ok(cplx)
    opt = make_optimizer(TrainConfig(optimizer="sgd"), cplx)
    assert not opt.defaults["fused"] and opt.defaults["foreach"] is True
    w = cplx[0]
    w.grad = torch.ones(3, dtype=torch.complex64)
    opt.step()  # the foreach path takes what the fused kernel would refuse
    assert torch.allclose(w.detach().real, torch.full((3,), -1e-3))


@pytest.mark.parametrize(("schedule", "warmup"), [("cosine", 0), ("cosine", 7), ("constant", 5), ("plateau", 4)])
def test_schedule_sets_the_rates_torchs_lambdalr_would(schedule, warmup):
    """LrSchedule sets ``peak * factor(k)`` itself; the rates equal, to the last bit, those of the LambdaLR it
    replaced (stepped after each optimizer step, past the warm-up only for cosine), plateau halvings included."""
    import math

    from sharesearch.training._schedule import LrSchedule

    cfg = TrainConfig(lr=0.0123, lr_schedule=schedule, warmup_steps=warmup, plateau_patience=1)
    total, w = 40, warmup
    span = max(1, total - w)

    def factor(k):
        if k < w:
            return (k + 1) / w
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (k - w) / span))) if schedule == "cosine" else 1.0

    ours_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    ours = LrSchedule(ours_opt, cfg, total)
    dynamic = schedule == "cosine" or w > 0
    lam = torch.optim.lr_scheduler.LambdaLR(theirs_opt, factor) if dynamic else None
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, mode="min", factor=0.5, patience=0,
                                                          threshold=0.0, threshold_mode="abs")
               if schedule == "plateau" else None)
    rates, expected = [ours.lr], [theirs_opt.param_groups[0]["lr"]]
    for k in range(1, total + 1):
        theirs_opt.step()
        ours.after_step()
        if lam is not None and (schedule == "cosine" or k <= w):
            lam.step()
        if k % 5 == 0:  # an evaluation that never improves: the plateau halves past the warm-up
            ours.after_evaluation(False)
            if plateau is not None and k >= w:
                plateau.step(0)
        rates.append(ours.lr)
        expected.append(theirs_opt.param_groups[0]["lr"])
    assert rates == expected
    assert len(set(rates)) > 1 or not dynamic and schedule != "plateau"

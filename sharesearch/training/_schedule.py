"""The optimizer and its learning-rate schedule, built from a :class:`TrainConfig`.

Warm-up and cosine set the rate after every optimizer step, as a
``torch.optim.lr_scheduler.LambdaLR`` would (without its per-call
bookkeeping): step ``k`` (0-based) runs at ``lr * min(1, (k + 1) / w)``
during a warm-up of ``w`` steps, and with ``"cosine"`` at
``lr * (1 + cos(pi * (k - w) / (cap - w))) / 2`` after it, so the rate is 0 once
the cap is reached. ``"plateau"`` is ``torch.optim.lr_scheduler.ReduceLROnPlateau``
(factor 0.5) stepped after every evaluation past the warm-up; the plateau it
watches is the run's early-stopping criterion -- no task's primary metric
improved -- fed to it as the running count of evaluations where some task
improved (negated, so that an improvement is a decrease).

Constant and cosine schedules depend on the step only, so every task of an
independent graph sees the learning rate it would see alone; a plateau couples
the tasks through their shared learning rate.

Example
-------
>>> import torch
>>> from sharesearch.training import TrainConfig
>>> w = torch.nn.Parameter(torch.zeros(1))
>>> opt = make_optimizer(TrainConfig(lr=1.0), [w])
>>> sched = LrSchedule(opt, TrainConfig(lr=1.0, lr_schedule="cosine", warmup_steps=2), total_steps=6)
>>> rates = []
>>> for _ in range(6):
...     rates.append(round(sched.lr, 3)); opt.step(); sched.after_step()
>>> rates, sched.lr
([0.5, 1.0, 1.0, 0.854, 0.5, 0.146], 0.0)
"""

from __future__ import annotations

import math

import torch

from ._config import TrainConfig

__all__ = ["make_optimizer", "fused_ok", "LrSchedule"]


#: where torch has a fused (one kernel per step) Adam, AdamW and SGD, and for which dtypes
FUSED_DEVICES = ("cpu", "cuda")
FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def fused_ok(params: list[torch.nn.Parameter]) -> bool:
    """Whether torch's fused optimizer kernels take every one of ``params`` (device type and dtype).

    >>> real, cplx = torch.zeros(2), torch.zeros(2, dtype=torch.complex64)
    >>> fused_ok([torch.nn.Parameter(real)]), fused_ok([torch.nn.Parameter(cplx)])
    (True, False)
    """
    return all(p.device.type in FUSED_DEVICES and p.dtype in FUSED_DTYPES for p in params)


def make_optimizer(cfg: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, AdamW (also for Adam with weight decay) or SGD with momentum 0.9.

    ``fused`` where torch has the kernel for the parameters' device and dtype
    (:func:`fused_ok`): the whole update in one kernel per step, 61 instead of
    167 us on a 300k x 500 shared-bottom's parameters (1 thread). Its arithmetic
    equals the multi-tensor path to float32 rounding (a test holds 50 steps to
    1e-6). Elsewhere ``foreach``: one multi-tensor kernel per operation instead
    of torch's per-parameter loop. Either way the update stays elementwise per
    parameter, so tasks are still not coupled.

    >>> opt = make_optimizer(TrainConfig(), [torch.nn.Parameter(torch.zeros(3))])
    >>> type(opt).__name__, opt.defaults["fused"], opt.defaults["foreach"]
    ('Adam', True, None)
    """
    params = list(params)
    mode = {"fused": True} if fused_ok(params) else {"foreach": True}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, **mode)
    if cfg.optimizer == "adamw" or cfg.weight_decay > 0:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **mode)
    return torch.optim.Adam(params, lr=cfg.lr, **mode)


class LrSchedule:
    """The learning rate of one run: call :meth:`after_step` and :meth:`after_evaluation`.

    Parameters
    ----------
    opt : the run's optimizer (its ``lr`` is the peak rate).
    cfg : the training configuration (``lr_schedule``, ``warmup_steps``, ``plateau_patience``).
    total_steps : the run's cap in optimizer steps (cosine reaches 0 there).
    """

    def __init__(self, opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> None:
        self.opt = opt
        self.warmup = cfg.warmup_steps
        self.steps = 0
        self._improvements = 0
        cosine = cfg.lr_schedule == "cosine"
        self._factor = None
        if cosine or self.warmup > 0:
            w, span = self.warmup, max(1, total_steps - cfg.warmup_steps)

            def factor(k: int) -> float:
                if k < w:
                    return (k + 1) / w
                return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (k - w) / span))) if cosine else 1.0

            # what torch's LambdaLR computes (peak * factor(k), set on every group), without its per-call
            # bookkeeping: a population steps one schedule per member per step
            self._factor = factor
            self._peak = [float(g["lr"]) for g in opt.param_groups]
            self._set(0)
        self._plateau = None
        if cfg.lr_schedule == "plateau":
            self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=0.5, patience=cfg.plateau_patience - 1, threshold=0.0, threshold_mode="abs")
        self._cosine = cosine

    def _set(self, k: int) -> None:
        for g, peak in zip(self.opt.param_groups, self._peak):
            g["lr"] = peak * self._factor(k)

    @property
    def lr(self) -> float:
        """The learning rate the next step will use (of the first parameter group)."""
        return float(self.opt.param_groups[0]["lr"])

    def after_step(self) -> None:
        """Advance by one optimizer step (warm-up and cosine)."""
        self.steps += 1
        # past the warm-up a constant or plateau rate is left alone: setting it would undo the halvings
        if self._factor is not None and (self._cosine or self.steps <= self.warmup):
            self._set(self.steps)

    def after_evaluation(self, improved: bool) -> None:
        """Tell a plateau schedule whether any task improved at this evaluation."""
        self._improvements += bool(improved)
        if self._plateau is not None and self.steps >= self.warmup:
            self._plateau.step(-self._improvements)

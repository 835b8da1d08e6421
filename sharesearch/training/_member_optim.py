"""The optimizer of a population: Adam, AdamW or SGD over stacked weights, one learning rate per member.

A population keeps every weight of its ``P`` members in one tensor
``[P, *shape]`` (:mod:`sharesearch.training._population`). Adam, AdamW and SGD
are elementwise, so one update of the stacked tensor *is* ``P`` separate
updates -- as long as each member's learning rate and weight decay multiply
its own slice. ``torch.optim`` takes one scalar learning rate per parameter
group, so this class applies the same updates as
:func:`sharesearch.training._schedule.make_optimizer`'s optimizers (same
order of operations: decoupled decay first for AdamW, PyTorch's bias
corrections; momentum 0.9 and coupled L2 decay for SGD) with the rates
``lr [P]`` broadcast over each member's slice. All members step together, so
the step count is shared; a member that leaves the population is removed
from its weights and its state (:meth:`MemberOptimizer.keep`).

Example
-------
>>> import torch
>>> w = torch.zeros(2, 3, requires_grad=True)          # two members, three weights each
>>> opt = MemberOptimizer([w], "adam", lr=[0.1, 0.01], weight_decay=[0.0, 0.0])
>>> w.grad = torch.ones(2, 3); opt.step()
>>> [round(float(v), 4) for v in w.detach()[:, 0]]     # Adam's first step moves by lr
[-0.1, -0.01]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["MemberOptimizer"]

BETAS, EPS, MOMENTUM = (0.9, 0.999), 1e-8, 0.9  # torch.optim's defaults, as make_optimizer builds them


def _per_member(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``v [P]`` viewed as ``[P, 1, ..., 1]`` to broadcast over ``p [P, *shape]``."""
    return v.view(-1, *([1] * (p.dim() - 1)))


class MemberOptimizer:
    """One optimizer step for every member of a population (see the module docstring).

    Parameters
    ----------
    params : the stacked leaf weights, each ``[P, *shape]``.
    kind : ``"adam"`` (AdamW when a member's decay is > 0, as ``make_optimizer``), ``"adamw"`` or ``"sgd"``.
    lr, weight_decay : one value per member.
    """

    def __init__(self, params: Sequence[torch.Tensor], kind: str, lr: Sequence[float],
                 weight_decay: Sequence[float]) -> None:
        if kind not in ("adam", "adamw", "sgd"):
            raise ValueError(f"unknown optimizer {kind!r}")
        self.params, self.kind, self.steps = list(params), kind, 0
        device = self.params[0].device
        # float64, as torch.optim's Python-float scalars; each factor is rounded to float32 once
        self.lr = torch.tensor(list(lr), dtype=torch.float64, device=device)  # [P]
        self.wd = torch.tensor(list(weight_decay), dtype=torch.float64, device=device)  # [P]
        self.decay = bool((self.wd > 0).any())
        self.state: list[list[torch.Tensor]] = [[] for _ in self.params]  # Adam: [m, v]; SGD: [buf]

    def set_lr(self, lr: Sequence[float]) -> None:
        """The members' learning rates for the next step."""
        self.lr = torch.tensor(list(lr), dtype=torch.float64, device=self.lr.device)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every member from the gradients in ``.grad``.

        Each operation runs over every weight tensor at once (``torch._foreach_*``,
        what ``torch.optim``'s ``foreach`` implementations use): on a CPU these
        loop in C++ over the same elementwise kernels as one call per tensor, so
        the values are those of the per-tensor loop, without ~10 Python-level
        calls per tensor per step.
        """
        self.steps += 1
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        ps = [self.params[i] for i in live]
        gs = [p.grad for p in ps]
        if self.kind == "sgd":
            return self._sgd(live, ps, gs)
        b1, b2 = BETAS
        bc1, bc2_sqrt = 1 - b1 ** self.steps, math.sqrt(1 - b2 ** self.steps)
        step_size = (self.lr / bc1).float()  # [P]
        for i, p in zip(live, ps):
            if not self.state[i]:
                self.state[i] += [torch.zeros_like(p), torch.zeros_like(p)]
        ms, vs = [self.state[i][0] for i in live], [self.state[i][1] for i in live]
        if self.decay:  # decoupled decay before the Adam step, as torch.optim.AdamW
            shrink = (1 - self.lr * self.wd).float()  # [P]
            torch._foreach_mul_(ps, [_per_member(shrink, p) for p in ps])
        torch._foreach_lerp_(ms, gs, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, EPS)
        update = torch._foreach_div(ms, denom)
        torch._foreach_mul_(update, [_per_member(step_size, p) for p in ps])
        torch._foreach_sub_(ps, update)

    def _sgd(self, live: list[int], ps: list[torch.Tensor], gs: list[torch.Tensor]) -> None:
        lr, wd = self.lr.float(), self.wd.float()  # [P]
        if self.decay:  # L2 decay through the gradient, as torch.optim.SGD
            gs = torch._foreach_add(gs, torch._foreach_mul(ps, [_per_member(wd, p) for p in ps]))
        for i, g in zip(live, gs):
            if not self.state[i]:
                self.state[i].append(g.clone())
            else:
                self.state[i][0].mul_(MOMENTUM).add_(g)
        torch._foreach_sub_(ps, torch._foreach_mul([self.state[i][0] for i in live], [_per_member(lr, p) for p in ps]))

    def keep(self, members: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
        """Keep only ``members`` (indices into the current population); ``params`` are the new stacked weights."""
        self.params = list(params)
        self.lr, self.wd = self.lr[members], self.wd[members]
        self.state = [[s[members] for s in st] for st in self.state]

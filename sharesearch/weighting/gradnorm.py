"""GradNorm: learn task weights that balance the gradient norms.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018.

Weights ``w_t = n * softmax(l)_t`` over the ``n`` balanced tasks (learnable
logits ``l``, initialised to ``0``, so the weights are positive and always
renormalised to sum to ``n``, the paper's renormalisation step). As in the
paper (Sec. 3.2) the norms are taken on ``W``, the **last shared layer**:
``G_t = w_t ||grad_W L_t||``, ``G_bar = mean_t G_t``, the inverse training rate
``r_t = (L_t / L_t(0)) / mean_i (L_i / L_i(0))`` with ``L_t(0)`` the loss at
the task's first labelled batch, and the GradNorm loss
``L_grad = sum_t |G_t - const(G_bar * r_t ** alpha)|`` (Eq. 2). Its gradient
accumulates into the logits only; the model receives the gradient of
``sum_t p_t * w_t * L_t`` with the weights held constant. Priorities multiply
after balancing (so the balancing does not undo them).

**Branched graphs.** The paper has one shared trunk. In a tree of shared
blocks every group ``g`` of >= 2 tasks that shares a block has its own last
shared layer ``W_g`` (``groups``; see :meth:`LossWeighting.backward`). Each
group is balanced as in the paper among its own tasks: ``G_bar`` and the mean
in ``r_t`` run over the group, on ``W_g``. A task in nested groups (e.g.
``{a, b}`` inside ``{a, b, c}``) still has **one** weight, trained by the sum
of the GradNorm losses of every group that contains it. Tasks in no group
(they share nothing) keep ``w_t = 1``. Without ``groups`` there is one group
of all tasks on the last layer of ``shared_params``: the last tensor with two
or more dimensions (a weight matrix) and the tensors after it.

Tasks unlabelled in the batch, or whose gradient on ``W_g`` is zero, take no
part in that group's balancing. With no group at all it falls back to equal
weighting with a one-time warning.

Example
-------
>>> import torch
>>> w = GradNorm(["a", "b"], alpha=1.5)
>>> x = torch.tensor(1.0, requires_grad=True)
>>> w.backward({"a": 3 * x, "b": x * x}, shared_params=[x])
{'a': 1.0, 'b': 1.0}
>>> bool(w.parameters()[0].grad[0] > 0)  # the task with the larger gradient loses weight
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ._base import (
    Counts,
    Groups,
    LossWeighting,
    Present,
    _backward_sum,
    _non_negative,
    _stack,
    _task_grads,
    _unique_params,
)

__all__ = ["GradNorm"]


class GradNorm(LossWeighting):
    """Learnable weights trained to equalise the tasks' gradient norms on each last shared layer.

    Parameters
    ----------
    task_names : sequence of str
        All tasks of the model.
    priorities : mapping of str to float, optional
        Multiplier of each task's loss (default ``1.0``).
    alpha : float, optional
        Restoring-force strength (default ``1.5``); ``0`` equalises the norms.

    Notes
    -----
    Cost per step: one batched ``torch.autograd.grad`` (``is_grads_batched``)
    that gives every grouped task's gradient on the last shared layers only
    (graph retained), then one ordinary backward. No GPU synchronisation
    besides the returned floats.
    """

    name = "gradnorm"

    def __init__(
        self,
        task_names: Sequence[str],
        priorities: Mapping[str, float] | None = None,
        *,
        alpha: float = 1.5,
    ) -> None:
        super().__init__(task_names, priorities)
        self.alpha = _non_negative("alpha", alpha)
        self.logits = torch.nn.Parameter(torch.zeros(self.n_tasks))
        self._initial = torch.full((self.n_tasks,), math.nan)  # [T] L_t(0); NaN until first labelled
        self._balanced = (True,) * self.n_tasks  # task is in some group (shares the softmax)
        self._warned = False

    def parameters(self) -> list[torch.nn.Parameter]:
        """The weight logits ``l`` (one tensor of shape ``[T]``)."""
        return [self.logits]

    def _weight_tensor(self) -> Tensor:
        mask = torch.tensor(self._balanced, device=self.logits.device)  # [T] bool
        soft = torch.softmax(self.logits.masked_fill(~mask, -math.inf), dim=0)  # [T], 0 off the mask
        return torch.where(mask, sum(self._balanced) * soft, torch.ones_like(soft))

    @property
    def weights(self) -> dict[str, float]:
        """Current weights ``w_t`` of all tasks (positive; priorities not included)."""
        return dict(zip(self.task_names, self._weight_tensor().detach().tolist()))

    @property
    def initial_losses(self) -> dict[str, float]:
        """``L_t(0)`` of each task seen labelled so far."""
        return {t: v for t, v in zip(self.task_names, self._initial.tolist()) if not math.isnan(v)}

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[Tensor],
        *,
        counts: Counts | None = None,
        groups: Groups | None = None,
    ) -> dict[str, float]:
        """Accumulate model gradients and the logits' GradNorm gradient; see :meth:`LossWeighting.backward`."""
        batch = self._present(losses, counts)
        if not batch.losses:
            return {}
        pairs = self._groups(groups, shared_params)
        if not pairs:
            if not self._warned:
                warnings.warn(
                    "GradNorm got no shared parameters: nothing to balance, using equal weighting",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._warned = True
            _backward_sum([self.priorities[t] * loss for t, loss in batch.losses.items()])
            return {t: self.priorities[t] for t in batch.losses}
        self._balanced = tuple(any(t in g for g, _ in pairs) for t in self.task_names)
        w_all = self._weight_tensor()  # [T]
        grad_loss = self._gradnorm_loss(batch, pairs, w_all)
        if grad_loss is not None and grad_loss.requires_grad:
            (grad,) = torch.autograd.grad(grad_loss, [self.logits])
            if self.logits.grad is None:
                self.logits.grad = grad
            else:
                self.logits.grad.add_(grad)
        w = dict(zip(self.task_names, w_all.detach().tolist()))
        coef = {t: self.priorities[t] * w[t] for t in batch.losses}
        _backward_sum([coef[t] * loss for t, loss in batch.losses.items()])
        return coef

    def _groups(self, groups: Groups | None, shared_params: Sequence[Tensor]) -> list[tuple[tuple[str, ...], list[Tensor]]]:
        """The (tasks, last-shared-layer parameters) pairs to balance, each with >= 2 tasks."""
        if groups is None:
            shared = _unique_params(shared_params)
            matrices = [i for i, q in enumerate(shared) if q.dim() >= 2]
            last = shared[matrices[-1]:] if matrices else shared
            return [(self.task_names, last)] if last else []
        pairs = []
        for tasks, params in groups.items():
            unknown = sorted(set(tasks) - set(self.task_names))
            if unknown:
                raise ValueError(f"groups name unknown task(s) {unknown}; tasks are {list(self.task_names)}")
            params = _unique_params(params)
            if len(set(tasks)) >= 2 and params:
                pairs.append((tuple(tasks), params))
        return pairs

    def _gradnorm_loss(
        self, batch: Present, pairs: list[tuple[tuple[str, ...], list[Tensor]]], w_all: Tensor
    ) -> Tensor | None:
        """``sum_g sum_{t in g} |G_t - target_t|`` over the groups (Eq. 2 per group); None if no group counts."""
        names = list(batch.losses)
        index = {t: i for i, t in enumerate(self.task_names)}
        idx = torch.tensor([index[t] for t in names], device=w_all.device)  # [P]
        lab = torch.stack([batch.labelled[t] for t in names])  # [P] bool
        value = torch.stack([batch.losses[t].detach() for t in names]).to(w_all)  # [P]
        init = self._initial.to(w_all).clone()  # [T]
        init[idx] = torch.where(lab & torch.isnan(init[idx]), value.clamp_min(1e-12), init[idx])
        self._initial = init
        known = init[idx]  # [P]
        ratio = torch.where(lab, value / torch.where(torch.isnan(known), 1.0, known), 1.0)  # [P] L_t / L_t(0)

        members_of = [[k for k, t in enumerate(names) if t in tasks] for tasks, _ in pairs]
        need = sorted({k for ms in members_of for k in ms if batch.given[names[k]].requires_grad})
        if not need:
            return None
        params = _unique_params([q for _, ps in pairs for q in ps])
        stacked = _stack([batch.given[names[k]] for k in need])  # [N] the tasks in some group, unmasked
        grads = _task_grads(stacked, params, lab[need])  # per param [N, *shape], last shared layers only
        sq = torch.stack([g.reshape(len(need), -1).pow(2).sum(dim=1) for g in grads]).to(w_all)  # [Q, N]
        slot = {id(q): i for i, q in enumerate(params)}
        row = {k: i for i, k in enumerate(need)}

        total: Tensor | None = None
        for (_, group_params), group in zip(pairs, members_of):
            members = [k for k in group if k in row]
            if len(members) < 2:
                continue
            mine = torch.tensor([slot[id(q)] for q in group_params], device=sq.device)  # [Qg]
            norms = sq[mine][:, [row[k] for k in members]].sum(dim=0).sqrt()  # [M] ||grad_{W_g} L_t||
            k = torch.tensor(members, device=w_all.device)
            ok = lab[k] & (norms > 0)  # [M] takes part in the balancing
            n = ok.sum().clamp_min(1)
            g = w_all[idx[k]] * norms  # [M] G_t
            g_bar = torch.where(ok, g, 0.0).sum() / n
            r = ratio[k]
            r_bar = torch.where(ok, r, 0.0).sum() / n
            target = (g_bar * (r / torch.where(r_bar > 0, r_bar, 1.0)) ** self.alpha).detach()  # [M]
            term = torch.where(ok, (g - target).abs(), 0.0).sum()
            total = term if total is None else total + term
        return total

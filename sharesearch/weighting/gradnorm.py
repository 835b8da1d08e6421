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

from dataclasses import dataclass

from ._base import (Counts, Groups, LossWeighting, Present, StackedBalancer, _backward_weighted, _non_negative,
                    _task_grads, _unique_params)

__all__ = ["GradNorm"]


@dataclass(frozen=True)
class _Plan:
    """Index tensors of one batch layout (tasks given, which carry a graph, the groups): built once, reused."""

    valid: tuple[int, ...]  # the groups (positions in the pairs) with >= 2 grouped tasks carrying a graph
    rows: Tensor | None  # [N] positions in Present.names of the tasks in some valid group; None: all of them
    tidx: Tensor  # [N] each such task's index in task_names
    pos: Tensor | None  # [P] each given task's index in task_names; None: the given tasks are all tasks, in order
    members: Tensor  # [G, N] bool: row n is in group g
    param_of: Tensor  # [G, Q] 0/1: parameter q is in group g's last shared layer


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
    (it passes through the heads and those layers, never the layers below;
    graph retained), then one ordinary backward. The logits' gradient is
    written in closed form (no third backward pass), the index tensors of a
    batch layout are built once, and all groups are one ``[G, N]`` matrix
    operation. No GPU synchronisation besides the returned floats.
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
        self._mask_cache: tuple[tuple, Tensor] | None = None  # (balanced, device) -> [T] bool
        self._plans: dict[tuple, _Plan | None] = {}  # batch layout -> its index tensors

    def parameters(self) -> list[torch.nn.Parameter]:
        """The weight logits ``l`` (one tensor of shape ``[T]``)."""
        return [self.logits]

    def _softmax(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(mask [T] bool, soft [T], w [T])``: the balanced tasks, their softmax (0 off the mask), the weights."""
        key = (self._balanced, self.logits.device)
        if self._mask_cache is None or self._mask_cache[0] != key:
            self._mask_cache = (key, torch.tensor(self._balanced, device=self.logits.device))
        mask = self._mask_cache[1]  # [T] bool
        soft = torch.softmax(self.logits.detach().masked_fill(~mask, -math.inf), dim=0)  # [T], 0 off the mask
        return mask, soft, torch.where(mask, sum(self._balanced) * soft, torch.ones_like(soft))

    def _weight_tensor(self) -> Tensor:
        return self._softmax()[2]

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
        if not batch.names:
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
            _backward_weighted(batch.kept, self._coefficients(batch.names, batch.kept))
            return {t: self.priorities[t] for t in batch.names}
        self._balanced = tuple(any(t in g for g, _ in pairs) for t in self.task_names)
        mask, soft, w_all = self._softmax()  # [T] each, no graph: the logits' gradient is written below
        plan = self._plan(batch, pairs, w_all.device)
        initial, ratio = _inverse_rates(batch.stacked.detach()[None], batch.ok[None], self._initial.to(w_all)[None],
                                        plan.pos)  # [1, T], [1, P] L_t / L_t(0)
        self._initial = initial[0]
        if plan.valid:
            params = _unique_params([q for i in plan.valid for q in pairs[i][1]])
            stacked, lab, rows = batch.stacked, batch.ok, ratio[0]  # [P] unmasked, [P] bool, [P]
            if plan.rows is not None:
                stacked, lab, rows = stacked[plan.rows], lab[plan.rows], rows[plan.rows]  # [N]
            grads = _task_grads(stacked, params, lab)  # per param [N, *shape], last shared layers only
            n_rows = stacked.shape[0]
            sq = torch.stack([g.reshape(n_rows, 1, -1).pow(2).sum(dim=2) for g in grads]).to(w_all)  # [Q, N, 1]
            grad = _logit_grad(self.alpha, plan, sq, lab[None], rows[None], w_all[None], soft[None], mask,
                               sum(self._balanced))[0]  # [T]
            if self.logits.grad is None:
                self.logits.grad = grad
            else:
                self.logits.grad.add_(grad)
        coef = w_all if plan.pos is None else w_all[plan.pos]  # [P]
        prio = self._coefficients(batch.names, coef)
        coef = coef if prio is None else coef * prio
        _backward_weighted(batch.kept, coef.to(batch.kept.dtype))
        return dict(zip(batch.names, coef.tolist()))

    def stacked_balancer(self, members: Sequence[LossWeighting]) -> "_Stacked":
        """Every member's weights and ``L_t(0)`` as one population's state (:class:`_Stacked`)."""
        bad = [m for m in members if not isinstance(m, GradNorm)]
        if bad:
            raise TypeError(f"a GradNorm population stacks GradNorm members only, got {bad[0]!r}")
        return _Stacked(self, members)  # type: ignore[arg-type]

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

    def _plan(self, batch: Present, pairs: list[tuple[tuple[str, ...], list[Tensor]]], device: torch.device) -> _Plan:
        """The index tensors of this batch's layout, built on its first step and reused (no per-step tensors)."""
        key = (batch.names, batch.live, tuple((g, tuple(map(id, ps))) for g, ps in pairs), device)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 64:  # layouts come and go (sampled tasks): keep the cache small
                self._plans.clear()
            plan = self._plans[key] = self._build_plan(batch.names, batch.live, pairs, device)
        return plan

    def _build_plan(self, names: tuple[str, ...], live: tuple[bool, ...],
                    pairs: list[tuple[tuple[str, ...], list[Tensor]]], device: torch.device) -> _Plan:
        members_of = [[k for k, t in enumerate(names) if t in tasks and live[k]] for tasks, _ in pairs]
        valid = tuple(i for i, ms in enumerate(members_of) if len(ms) >= 2)
        need = sorted({k for i in valid for k in members_of[i]})
        params = _unique_params([q for i in valid for q in pairs[i][1]])
        slot = {id(q): j for j, q in enumerate(params)}
        members = torch.tensor([[k in members_of[i] for k in need] for i in valid], dtype=torch.bool,
                               device=device).reshape(len(valid), len(need))  # [G, N]
        param_of = torch.zeros(len(valid), len(params), device=device)  # [G, Q]
        for g, i in enumerate(valid):
            for q in _unique_params(pairs[i][1]):
                param_of[g, slot[id(q)]] = 1.0
        full = names == self.task_names
        return _Plan(valid=valid,
                     rows=None if need == list(range(len(names))) else torch.tensor(need, device=device),
                     tidx=torch.tensor([self._index[names[k]] for k in need], dtype=torch.long, device=device),
                     pos=None if full else torch.tensor([self._index[t] for t in names], device=device),
                     members=members, param_of=param_of)


def _inverse_rates(value: Tensor, ok: Tensor, initial: Tensor, pos: Tensor | None) -> tuple[Tensor, Tensor]:
    """``L_t / L_t(0)`` of every member, recording ``L_t(0)`` on a task's first labelled batch.

    ``value [M, P]`` the given losses (used only where ``ok [M, P]``), ``initial [M, T]`` (NaN: not seen
    labelled yet), ``pos [P]`` each given loss's task index (None: all tasks, in order). Returns the new
    ``initial [M, T]`` and the ratios ``[M, P]`` (1 where not labelled). ``M`` is 1 for a run, the members
    of a population otherwise.
    """
    known = initial if pos is None else initial[:, pos]  # [M, P]
    known = torch.where(ok & torch.isnan(known), value.to(known).clamp_min(1e-12), known)  # [M, P]
    initial = known if pos is None else initial.index_copy(1, pos, known)
    return initial, torch.where(ok, value.to(known) / torch.where(torch.isnan(known), 1.0, known), 1.0)


def _logit_grad(alpha: float, plan: _Plan, sq: Tensor, lab: Tensor, ratio: Tensor, w_all: Tensor, soft: Tensor,
                mask: Tensor, n_balanced: int) -> Tensor:
    """``[M, T]`` the gradient of ``sum_g sum_{t in g} |G_t - target_t|`` (Eq. 2 per group) on every member's logits.

    ``sq [Q, N, M]``: each grouped task's squared gradient norm on each last-shared-layer tensor ``q``;
    ``lab``, ``ratio`` ``[M, N]`` (labelled, ``L_t / L_t(0)``) of the grouped tasks; ``w_all``, ``soft``
    ``[M, T]`` the weights and the softmax, ``mask [T]`` the ``n_balanced`` balanced tasks. All groups at once as
    ``[G, N, M]`` arrays; ``target`` is a constant, so
    ``d/dw_t = sum_g [t takes part in g] sign(G_t - target_t) ||grad_{W_g} L_t||``, taken through
    ``w = n softmax(l)`` on the mask.
    """
    norms = torch.einsum("gq,qnm->gnm", plan.param_of, sq).sqrt()  # [G, N, M] ||grad_{W_g} L_t||
    ok = plan.members[:, :, None] & lab.t()[None] & (norms > 0)  # [G, N, M] takes part in group g's balancing
    n = ok.sum(dim=1, keepdim=True).clamp_min(1)  # [G, 1, M]
    g = w_all[:, plan.tidx].t()[None] * norms  # [G, N, M] G_t
    g_bar = torch.where(ok, g, 0.0).sum(dim=1, keepdim=True) / n  # [G, 1, M]
    r = ratio.t()[None]  # [1, N, M]
    r_bar = torch.where(ok, r, 0.0).sum(dim=1, keepdim=True) / n  # [G, 1, M]
    target = g_bar * (r / torch.where(r_bar > 0, r_bar, 1.0)) ** alpha  # [G, N, M]
    u = torch.where(ok, torch.sign(g - target) * norms, 0.0).sum(dim=0)  # [N, M] dL_grad / dw of each row
    du = torch.zeros_like(w_all).index_add_(1, plan.tidx, u.t())  # [M, T]
    gout = torch.where(mask, du, 0.0) * n_balanced  # [M, T] through w = n softmax(l) on the mask
    return soft * (gout - (gout * soft).sum(dim=1, keepdim=True))  # [M, T] the softmax's backward


class _Stacked(StackedBalancer):
    """GradNorm for the ``M`` members of a population: each its own logits and ``L_t(0)``, balanced at once.

    The same steps as :meth:`GradNorm.backward` with a leading member axis: every member's per-task gradients on
    the stacked last shared layers come from one batched backward over the grouped tasks (the members are slices
    of the stacked weights, so the gradient of ``sum_m L[m, t]`` holds each member's own), then
    :func:`_inverse_rates` and :func:`_logit_grad` run on ``[M, ...]`` arrays.
    """

    def __init__(self, first: GradNorm, members: Sequence[GradNorm]) -> None:
        if len(members) < 1 or members[0] is not first or any(m.alpha != first.alpha for m in members):
            raise ValueError("stacked_balancer takes GradNorm instances of one alpha, the caller first")
        self.first = first
        self.values = torch.stack([m.logits.detach() for m in members])  # [M, T]
        self.initial = torch.stack([m._initial for m in members])  # [M, T] L_t(0), NaN until labelled
        self._plan: tuple[tuple[int, ...], _Plan] | None = None  # (the stacked tensors' ids, their plan)

    def step(self, losses: Tensor, ok: Tensor, values: Tensor, groups: Groups) -> Tensor:
        first = self.first
        pairs = first._groups(groups, [])
        if not pairs:
            if not first._warned:
                warnings.warn("GradNorm got no shared parameters: nothing to balance, using equal weighting",
                              RuntimeWarning, stacklevel=2)
                first._warned = True
            prio = first._coefficients(first.task_names, losses)
            return torch.ones_like(losses) if prio is None else prio.expand_as(losses)
        first._balanced = tuple(any(t in g for g, _ in pairs) for t in first.task_names)
        mask = torch.tensor(first._balanced, device=values.device)  # [T] bool
        soft = torch.softmax(values.detach().masked_fill(~mask, -math.inf), dim=1)  # [M, T], 0 off the mask
        w_all = torch.where(mask, sum(first._balanced) * soft, torch.ones_like(soft))  # [M, T]
        key = tuple(id(q) for _, ps in pairs for q in ps)  # the stacked tensors change when members leave
        if self._plan is None or self._plan[0] != key:
            live = (True,) * len(first.task_names)
            self._plan = (key, first._build_plan(first.task_names, live, pairs, values.device))
        plan = self._plan[1]
        self.initial, ratio = _inverse_rates(losses.detach(), ok, self.initial.to(w_all), plan.pos)  # [M, T] both
        if plan.valid:
            params = _unique_params([q for i in plan.valid for q in pairs[i][1]])  # [M, *shape] each
            stacked, lab = losses, ok  # [M, T]
            if plan.rows is not None:
                stacked, lab, ratio = stacked[:, plan.rows], lab[:, plan.rows], ratio[:, plan.rows]  # [M, N]
            n_members, n_rows = stacked.shape
            eye = torch.eye(n_rows, dtype=stacked.dtype, device=stacked.device)  # [N, N]
            cot = eye[:, None, :] * lab.t()[:, :, None].to(stacked.dtype)  # [N, M, N] row n's cotangent, 0 unlabelled
            grads = torch.autograd.grad(stacked, params, cot, retain_graph=True, allow_unused=True,
                                        is_grads_batched=True)  # per param [N, M, *shape]
            sq = torch.stack([torch.zeros(n_rows, n_members, device=stacked.device) if g is None
                              else g.reshape(n_rows, n_members, -1).pow(2).sum(dim=2) for g in grads]).to(w_all)
            grad = _logit_grad(first.alpha, plan, sq, lab, ratio, w_all, soft, mask, sum(first._balanced))  # [M, T]
            values.grad = grad if values.grad is None else values.grad + grad
        prio = first._coefficients(first.task_names, w_all)
        return w_all if prio is None else w_all * prio  # [M, T]

    def keep(self, rows: Tensor) -> None:
        self.initial = self.initial[rows]

"""A population's step under a method that combines per-task gradients from their inner products (PCGrad).

A separate run's :meth:`~sharesearch.weighting.PCGrad.backward` takes every
task's gradient in one batched backward, projects the shared parameters'
gradients on their Gram matrix and hands the task-specific parameters the
plain sum. A population does the same for all members at once: the members'
weights are slices of stacked tensors, so the gradient of ``sum_p L[p, t]``
holds every member's own task-``t`` gradient in its slice, and one batched
backward over the ``T`` tasks gives each member's ``[T, *shape]`` gradients.
Each member's Gram matrix then goes to its own weighting
(:meth:`~sharesearch.weighting.LossWeighting.gram_combination`), which draws its
task orders from its own generator, as its separate run does.

Example
-------
>>> from sharesearch.weighting import PCGrad
>>> w = torch.zeros(2, 2, requires_grad=True)  # two members' weights, stacked: [P=2, 2]
>>> x = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # [T=2, 2] each task's direction
>>> losses = w @ x.T  # [P, T]: member p's loss of task t is w[p] . x[t]
>>> combine = [PCGrad(["a", "b"], seed=s).gram_combination() for s in (0, 1)]
>>> gram_step(losses, torch.ones(2, 2, dtype=torch.bool), {"w": w}, ["w"], combine, None, retain=False)
>>> w.grad  # each member's row: PCGrad's doctest, (0.5, 0.5) + (0, 1)
tensor([[0.5000, 1.5000],
        [0.5000, 1.5000]])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

__all__ = ["gram_step"]


def gram_step(losses: torch.Tensor, ok: torch.Tensor, params: Mapping[str, torch.Tensor], shared: Sequence[str],
              combine: Sequence[Callable[[torch.Tensor], torch.Tensor]], priorities: torch.Tensor | None, *,
              retain: bool) -> None:
    """Write every member's combined gradient into ``params``' ``.grad`` (which must be None).

    Parameters
    ----------
    losses : ``[P, T]`` every member's task losses (one graph through the stacked weights).
    ok : ``[P, T]`` bool, the member's task takes part (a finite loss, a labelled row): else its cotangent is 0.
    params : name -> ``[P, *shape]`` the stacked leaf weights.
    shared : the names of the shared parameters, in the order a separate run flattens them.
    combine : one per member, in slot order: ``gram [T, T] -> w [T]`` (its weighting's ``gram_combination()``).
    priorities : ``[T]`` loss multipliers, or None when all are 1.
    retain : keep the graph (a penalty is backpropagated after).
    """
    n_members, n_tasks = losses.shape
    weighted = losses if priorities is None else losses * priorities  # [P, T]
    eye = torch.eye(n_tasks, dtype=weighted.dtype, device=weighted.device)  # [T, T]
    cot = eye[:, None, :] * ok.t()[:, :, None].to(weighted.dtype)  # [T, P, T] task t's cotangent, 0 where masked
    names = list(params)
    grads = dict(zip(names, torch.autograd.grad(weighted, [params[k] for k in names], cot, retain_graph=retain,
                                                allow_unused=True, is_grads_batched=True)))  # [T, P, *shape]
    is_shared = set(shared)
    for k in names:  # task-specific: the plain sum, as one backward gives (an unused one keeps no gradient)
        if k not in is_shared and grads[k] is not None:
            params[k].grad = grads[k].sum(dim=0)
    reached = [k for k in shared if grads[k] is not None]
    if reached:
        flat = torch.cat([grads[k].reshape(n_tasks, n_members, -1) for k in reached], dim=2)  # [T, P, D]
        gram = torch.einsum("tpd,spd->pts", flat, flat)  # [P, T, T] each member's inner products
        w = torch.stack([f(gram[p]) for p, f in enumerate(combine)]).to(flat.dtype)  # [P, T]
        total = torch.einsum("pt,tpd->pd", w, flat)  # [P, D]
        for k, g in zip(reached, total.split([params[k][0].numel() for k in reached], dim=1)):
            params[k].grad = g.reshape(params[k].shape)
    for k in shared:  # a shared weight no loss reaches: zeros, as the separate run accumulates
        if grads[k] is None:
            params[k].grad = torch.zeros_like(params[k])

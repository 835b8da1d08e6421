"""PCGrad: project conflicting task gradients.

Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020.

On the shared parameters, each task's gradient ``g_i`` (of ``p_i * L_i``) is
projected, in a random order of the other tasks ``j``, onto the normal plane
of every original ``g_j`` it conflicts with (``g_i . g_j < 0``):
``g_i <- g_i - (g_i . g_j) / ||g_j||^2 * g_j``. The projected gradients are
summed. Task-specific parameters get their plain summed gradients. The task
orders come from a :class:`torch.Generator` seeded with ``seed`` (the run's
seed, passed by :func:`sharesearch.weighting.make_weighting`): two runs with
the same seed project in the same orders, runs with other seeds do not.
``groups`` is ignored: the paper projects on all shared parameters.

Example
-------
>>> import torch
>>> w = PCGrad(["a", "b"], seed=0)
>>> x = torch.zeros(2, requires_grad=True)
>>> w.backward({"a": x @ torch.tensor([1.0, 0.0]), "b": x @ torch.tensor([-1.0, 1.0])}, [x])
{'a': 1.0, 'b': 1.0}
>>> x.grad  # (0.5, 0.5) + (0, 1)
tensor([0.5000, 1.5000])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ._base import Counts, Groups, LossWeighting, _accumulate, _graph_leaves, _task_grads, _unique_params

__all__ = ["PCGrad"]


class PCGrad(LossWeighting):
    """Sum of the per-task gradients after projecting away pairwise conflicts.

    Parameters
    ----------
    task_names : sequence of str
        All tasks of the model.
    priorities : mapping of str to float, optional
        Multiplier of each task's loss (default ``1.0``).
    seed : int, optional
        Seed of the generator of the random task orders (default ``0``).

    Notes
    -----
    Cost per step: one batched backward (``torch.autograd.grad`` with
    ``is_grads_batched=True``) that gives every present task's gradient on
    every parameter its loss reaches -- the FLOPs of ``T`` backward passes in
    one call, instead of ``T`` calls; the task-specific parameters get the sum
    of their rows. Plus one ``[T, P] @ [P, T]`` Gram matrix of the flattened
    shared gradients, the projection on it (:meth:`mixing`, ``[T, T]``) and one
    ``[T] @ [T, P]`` product back. On a CPU the batched backward through the
    shared layers is the floor: ``T`` backward passes' FLOPs. ``shared_params`` must be leaf tensors
    (parameters): their ``.grad`` is read and written. With no shared
    parameters this is equal weighting.
    """

    name = "pcgrad"

    def __init__(
        self,
        task_names: Sequence[str],
        priorities: Mapping[str, float] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(task_names, priorities)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[Tensor],
        *,
        counts: Counts | None = None,
        groups: Groups | None = None,
    ) -> dict[str, float]:
        """Accumulate the PCGrad gradient; see :meth:`LossWeighting.backward`."""
        batch = self._present(losses, counts)
        used = {t: self.priorities[t] for t in batch.names}
        shared = _unique_params(shared_params)
        if any(not p.is_leaf for p in shared):
            raise ValueError("PCGrad needs leaf tensors (parameters) as shared_params")
        if not any(batch.live):
            return used
        live = [k for k, x in enumerate(batch.live) if x]
        stacked, mask = batch.stacked, batch.ok  # [P] unmasked; an unlabelled task's cotangent is 0
        if len(live) < len(batch.names):
            stacked, mask = stacked[live], mask[live]  # [L]
        prio = self._coefficients(tuple(batch.names[k] for k in live), stacked)
        if prio is not None:
            stacked = stacked * prio  # [L] weighted
        leaves = _graph_leaves(stacked)  # every tensor an ordinary backward would reach
        grads = dict(zip(map(id, leaves), _task_grads(stacked, leaves, mask)))  # id -> [L, *shape]
        is_shared = {id(p) for p in shared}
        for q in leaves:
            if id(q) not in is_shared:  # task-specific: the plain sum, as one backward would give
                _accumulate(q, grads[id(q)].sum(dim=0))
        reached = [p for p in shared if id(p) in grads]
        if reached:
            n = len(live)
            flat = torch.cat([grads[id(p)].reshape(n, -1) for p in reached], dim=1)  # [L, P] all shared at once
            weight = self._combine(flat @ flat.T)  # [L]: sum of the projected rows = weight @ rows
            total = weight.to(flat.dtype) @ flat  # [P]
            for p, g in zip(reached, total.split([p.numel() for p in reached])):
                _accumulate(p, g.view_as(p))
        for p in shared:
            if id(p) not in grads:
                _accumulate(p, torch.zeros_like(p))
        return used

    def gram_combination(self) -> Callable[[Tensor], Tensor]:
        """The projected gradients' sum as weights on the original ones, from their Gram matrix (draws the orders)."""
        return self._combine

    def _combine(self, gram: Tensor) -> Tensor:
        """``[L, L]`` inner products of the per-task gradients -> ``[L]`` float64 ``w`` with ``sum of projected
        = w @ grads``."""
        return self.mixing(gram).sum(dim=0)

    def mixing(self, gram: Tensor) -> Tensor:
        """The projection as a matrix on the task gradients, computed from their inner products alone.

        Every projected gradient is a combination of the original ones, so
        PCGrad runs on the ``[T, T]`` Gram matrix instead of the ``[T, P]``
        gradients: ``out_i . g_j = (C G)_ij``. Draws the task orders (one
        ``randperm`` per task, from the seeded generator).

        Parameters
        ----------
        gram : Tensor
            ``[T, T]`` inner products ``g_i . g_j`` of the per-task gradients.

        Returns
        -------
        Tensor
            ``[T, T]`` float64 ``C`` with projected gradients ``C @ grads``.

        Examples
        --------
        >>> g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
        >>> PCGrad(["a", "b"]).mixing(g @ g.T)  # out_a = g_a + g_b / 2, out_b = g_b + g_a
        tensor([[1.0000, 0.5000],
                [1.0000, 1.0000]], dtype=torch.float64)
        """
        n = gram.shape[0]
        if n < 2:
            return torch.eye(n, dtype=torch.float64, device=gram.device)
        perms = torch.stack([torch.randperm(n - 1, generator=self._generator) for _ in range(n)])  # [T, T-1]
        order = perms + (perms >= torch.arange(n)[:, None])  # [T, T-1] the others, shuffled
        if gram.device.type == "cpu" and n <= _HOST_TASKS:
            return _mix_on_host(gram.to(torch.float64).tolist(), order.tolist())
        return _mix_tensors(gram.to(torch.float64), order.to(gram.device))

    def project(self, grads: Tensor) -> Tensor:
        """Project each row of ``grads`` away from the rows it conflicts with.

        Parameters
        ----------
        grads : Tensor
            ``[T, P]`` per-task flattened gradients.

        Returns
        -------
        Tensor
            ``[T, P]`` projected gradients (row ``i`` against the original rows
            ``j != i``, each row in its own random order; see :meth:`mixing`).
        """
        mix = self.mixing(grads @ grads.T)  # [T, T]
        return (mix @ grads.to(torch.float64)).to(grads.dtype)


#: up to this many tasks a CPU projection runs on Python floats (~T^3 multiply-adds, 50 us at T = 6, where the
#: tensor loop's ~4 (T - 1) small ops took 160 us); above it the tensor loop is cheaper
_HOST_TASKS = 8


def _mix_tensors(gram: Tensor, order: Tensor) -> Tensor:
    """:meth:`PCGrad.mixing` as tensor ops on ``gram``'s device (float64 ``[T, T]``; ``order`` ``[T, T-1]``).

    Each step ``k`` updates every task's row at once: row ``i`` reads and writes
    only itself, so this equals the per-task loop.
    """
    n = gram.shape[0]
    mix = torch.eye(n, dtype=torch.float64, device=gram.device)  # [T, T]
    sq = gram.diagonal()  # [T] ||g_j||^2
    g_order = gram[order]  # [T, T-1, T] row k of task i: g_{order[i, k]} . g_m
    sq_order = torch.where(sq > 0, sq, 1.0)[order]  # [T, T-1]
    rows = torch.arange(n, device=gram.device)  # [T]
    for k in range(n - 1):
        dot = torch.linalg.vecdot(mix, g_order[:, k])  # [T] out_i . g_j
        coef = dot.clamp(max=0.0) / sq_order[:, k]  # [T] nonzero where they conflict
        mix = mix.index_put((rows, order[:, k]), -coef, accumulate=True)  # out_i <- out_i - coef_i g_j
    return mix


def _mix_on_host(gram: list[list[float]], order: list[list[int]]) -> Tensor:
    """:func:`_mix_tensors` on Python floats (float64 both), for few tasks on a CPU: the same steps, in order.

    >>> _mix_on_host([[1.0, -1.0], [-1.0, 2.0]], [[1], [0]])
    tensor([[1.0000, 0.5000],
            [1.0000, 1.0000]], dtype=torch.float64)
    """
    n = len(gram)
    mix = [[1.0 if a == i else 0.0 for a in range(n)] for i in range(n)]  # [T][T]
    for k in range(n - 1):
        for i in range(n):
            j = order[i][k]
            row, gj = mix[i], gram[j]
            dot = sum(row[m] * gj[m] for m in range(n))  # out_i . g_j
            sq = gj[j] if gj[j] > 0 else 1.0
            row[j] -= min(dot, 0.0) / sq  # nonzero where they conflict (NaN stays NaN, as clamp keeps it)
    return torch.tensor(mix, dtype=torch.float64)

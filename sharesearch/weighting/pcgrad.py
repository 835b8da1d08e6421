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

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ._base import Counts, Groups, LossWeighting, _unique_params

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
    Cost per step: one full backward per present task (graph retained for all
    but the last), instead of one; plus an ``O(T^2 P)`` projection on a
    ``[T, P]`` matrix of flattened shared gradients. ``shared_params`` must be
    leaf tensors (parameters): their ``.grad`` is read and written. With no
    shared parameters this is equal weighting.
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
        present = self._present(losses, counts).losses
        shared = _unique_params(shared_params)
        if any(not p.is_leaf for p in shared):
            raise ValueError("PCGrad needs leaf tensors (parameters) as shared_params")
        saved = [p.grad for p in shared]
        for p in shared:
            p.grad = None
        live = [(t, self.priorities[t] * loss) for t, loss in present.items() if loss.requires_grad]
        rows = []
        try:
            for k, (_, loss) in enumerate(live):
                # Accumulates task-specific gradients in place; the shared ones are
                # collected (and reset) per task.
                loss.backward(retain_graph=k < len(live) - 1)
                rows.append(torch.cat([
                    (torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in shared
                ]) if shared else None)
                for p in shared:
                    p.grad = None
        finally:
            for p, g in zip(shared, saved):
                p.grad = g
        if shared and rows:
            total = self.project(torch.stack(rows)).sum(dim=0)
            offset = 0
            for p in shared:
                g = total[offset:offset + p.numel()].view_as(p).to(p.dtype)
                offset += p.numel()
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.add_(g)
        return {t: self.priorities[t] for t in present}

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
            ``j != i``, each row in its own random order).
        """
        n = grads.shape[0]
        out = grads.clone()
        if n < 2:
            return out
        orders = []
        for i in range(n):
            perm = torch.randperm(n - 1, generator=self._generator)
            orders.append(perm + (perm >= i).long())  # the other tasks, shuffled
        order = torch.stack(orders).to(grads.device)  # [T, T-1]
        sq = (grads * grads).sum(dim=1)
        for k in range(n - 1):
            j = order[:, k]
            gj = grads[j]
            dot = (out * gj).sum(dim=1)
            denom = torch.where(sq[j] > 0, sq[j], torch.ones_like(sq[j]))
            coef = torch.where(dot < 0, dot / denom, torch.zeros_like(dot))
            out = out - coef[:, None] * gj
        return out

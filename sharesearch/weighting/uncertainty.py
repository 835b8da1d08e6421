"""Homoscedastic-uncertainty weighting.

Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses
for Scene Geometry and Semantics", CVPR 2018.

Each task learns ``s_t = log sigma_t^2`` (initialised to ``0``) and the model
minimises ``sum_t p_t * (exp(-s_t) * L_t + s_t)``. Simplification: the paper
derives ``L_t / (2 sigma^2) + log sigma`` for regression and
``L_t / sigma^2 + log sigma`` for classification; like most implementations
(e.g. LibMTL) we use the one form above for every task kind, which differs
only by constant factors in the weight and the regulariser.

Example
-------
>>> import torch
>>> w = UncertaintyWeighting(["a", "b"])
>>> x = torch.tensor(1.0, requires_grad=True)
>>> w.backward({"a": 3 * x, "b": x * x}, shared_params=[x])
{'a': 1.0, 'b': 1.0}
>>> [float(p.grad) for p in w.parameters()]  # d/ds (exp(-s) L + s) = 1 - L at s = 0
[-2.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ._base import Counts, Groups, LossWeighting

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(LossWeighting):
    """Minimise ``sum_t p_t * (exp(-s_t) L_t + s_t)`` with learnable ``s_t``.

    Parameters
    ----------
    task_names : sequence of str
        All tasks of the model.
    priorities : mapping of str to float, optional
        Multiplier of each task's loss (default ``1.0``).
    init_log_var : float, optional
        Initial ``s_t = log sigma_t^2`` (default ``0.0``).

    Notes
    -----
    One scalar parameter per task. A task absent from ``losses`` leaves its
    ``s_t.grad`` as ``None`` (optimisers skip it); a task present but without
    labels in the batch (``counts`` 0, or a NaN loss) gets an exact zero
    gradient on ``s_t``. Without this mask the regulariser ``+ s_t`` alone
    would drive ``s_t`` down on every batch that lacks the task's labels.
    """

    name = "uncertainty"

    def __init__(
        self,
        task_names: Sequence[str],
        priorities: Mapping[str, float] | None = None,
        *,
        init_log_var: float = 0.0,
    ) -> None:
        super().__init__(task_names, priorities)
        if isinstance(init_log_var, bool) or not isinstance(init_log_var, (int, float)):
            raise TypeError(f"init_log_var must be a number, got {init_log_var!r}")
        self.log_vars: dict[str, torch.nn.Parameter] = {
            t: torch.nn.Parameter(torch.tensor(float(init_log_var))) for t in self.task_names
        }

    def parameters(self) -> list[torch.nn.Parameter]:
        """The per-task ``s_t``, in task order."""
        return [self.log_vars[t] for t in self.task_names]

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[Tensor],
        *,
        counts: Counts | None = None,
        groups: Groups | None = None,
    ) -> dict[str, float]:
        """Accumulate gradients into the model and the ``s_t``; see :meth:`LossWeighting.backward`."""
        batch = self._present(losses, counts)
        if not batch.names:
            return {}
        s = torch.stack([self.log_vars[t] for t in batch.names]).to(batch.kept.dtype)  # [P]
        _objective(batch.kept, batch.ok, s, self._coefficients(batch.names, s)).backward()
        factor = torch.exp(-s.detach()).tolist()  # [P], one read
        return {t: self.priorities[t] * f for t, f in zip(batch.names, factor)}

    def stacked_objective(self) -> tuple[Tensor, Callable[[Tensor, Tensor, Tensor], Tensor]]:
        """``(s [T], f)``: the ``s_t`` in task order and ``sum_t p_t (exp(-s_t) L_t + s_t)`` over labelled tasks."""
        values = torch.stack(self.parameters()).detach()  # [T]
        prio = self._coefficients(self.task_names, values)  # [T] or None

        def objective(kept: Tensor, ok: Tensor, s: Tensor) -> Tensor:
            return _objective(kept, ok, s, prio)

        return values, objective


def _objective(kept: Tensor, ok: Tensor, s: Tensor, prio: Tensor | None) -> Tensor:
    """``sum_t p_t (exp(-s_t) L_t + s_t)`` over the last dim, each term 0 where ``ok`` is False: ``[..., T] -> [...]``.

    An unlabelled task drops both terms, so ``s_t`` is not pulled down by ``+ s_t`` alone.
    """
    term = torch.exp(-s) * kept + s  # [..., T]
    if prio is not None:
        term = prio * term
    return torch.where(ok, term, torch.zeros((), dtype=term.dtype, device=term.device)).sum(-1)  # [...]

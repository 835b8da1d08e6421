"""Equal weighting: the plain (priority-weighted) sum of the task losses.

The baseline of every multi-task paper, e.g. Caruana, "Multitask Learning",
Machine Learning 28, 1997. It does not couple tasks: in a network without
shared parameters, task ``t``'s gradients are exactly those of ``p_t * L_t``
alone, so independent baselines can be trained in one pass.

Example
-------
>>> import torch
>>> w = EqualWeighting(["a", "b"], priorities={"b": 2.0})
>>> x = torch.tensor(1.0, requires_grad=True)
>>> w.backward({"a": 3 * x, "b": x * x}, shared_params=[x])
{'a': 1.0, 'b': 2.0}
>>> x.grad
tensor(7.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from ._base import Counts, Groups, LossWeighting, _backward_weighted

__all__ = ["EqualWeighting"]


class EqualWeighting(LossWeighting):
    """Minimise ``sum_t p_t * L_t``.

    Parameters
    ----------
    task_names : sequence of str
        All tasks of the model.
    priorities : mapping of str to float, optional
        Multiplier of each task's loss (default ``1.0``).
    """

    name = "equal"

    def coefficients(self) -> dict[str, float]:
        """The priorities: every step is ``sum_t p_t L_t``."""
        return dict(self.priorities)

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[Tensor],
        *,
        counts: Counts | None = None,
        groups: Groups | None = None,
    ) -> dict[str, float]:
        """Accumulate the gradients of ``sum_t p_t * L_t``; see :meth:`LossWeighting.backward`."""
        batch = self._present(losses, counts)
        if batch.names:
            _backward_weighted(batch.kept, self._coefficients(batch.names, batch.kept))  # [P] one sum
        return {t: self.priorities[t] for t in batch.names}

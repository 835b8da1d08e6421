"""Dynamic Weight Average (DWA).

Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019.

The weight of task ``t`` in epoch ``e`` is
``w_t = T * exp(r_t / tau) / sum_i exp(r_i / tau)`` with the descent rate
``r_t = L_t(e-1) / L_t(e-2)`` of the epoch-mean training losses reported via
:meth:`DWA.epoch_end`; ``w_t = 1`` until two epochs have ended. A task
without a finite, positive mean in either of the last two epochs gets
``r_t = 1``.

Example
-------
>>> w = DWA(["a", "b"], tau=2.0)
>>> w.epoch_end({"a": 1.0, "b": 2.0}); w.weights
{'a': 1.0, 'b': 1.0}
>>> w.epoch_end({"a": 1.0, "b": 2.0}); w.weights  # equal descent rates
{'a': 1.0, 'b': 1.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import Tensor

import torch

from ._base import Counts, Groups, LossWeighting, _backward_weighted, _positive

__all__ = ["DWA"]


class DWA(LossWeighting):
    """Weights from the softmax of each task's loss descent rate.

    Parameters
    ----------
    task_names : sequence of str
        All tasks of the model.
    priorities : mapping of str to float, optional
        Multiplier of each task's loss (default ``1.0``).
    tau : float, optional
        Softmax temperature (default ``2.0``, the paper's value).

    Attributes
    ----------
    weights : dict of str to float
        The DWA weights for the current epoch (priorities not included).
    """

    name = "dwa"

    def __init__(
        self,
        task_names: Sequence[str],
        priorities: Mapping[str, float] | None = None,
        *,
        tau: float = 2.0,
    ) -> None:
        super().__init__(task_names, priorities)
        self.tau = _positive("tau", tau)
        self._history: list[dict[str, float]] = []  # the last two epochs' means
        self.weights: dict[str, float] = {t: 1.0 for t in self.task_names}

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """Record the epoch's mean losses and recompute the weights.

        Parameters
        ----------
        mean_losses : dict of str to float
            Mean training loss of each task over the epoch (tasks may be absent).
        """
        unknown = sorted(set(mean_losses) - set(self.task_names))
        if unknown:
            raise ValueError(f"mean_losses name unknown task(s) {unknown}")
        self._history = (self._history + [{t: float(v) for t, v in mean_losses.items()}])[-2:]
        if len(self._history) < 2:
            return
        prev, last = self._history
        rates = {}
        for t in self.task_names:
            a, b = last.get(t, math.nan), prev.get(t, math.nan)
            ok = math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0
            rates[t] = a / b if ok else 1.0
        top = max(rates.values())  # stabilised softmax
        exps = {t: math.exp((r - top) / self.tau) for t, r in rates.items()}
        norm = sum(exps.values())
        self.weights = {t: self.n_tasks * e / norm for t, e in exps.items()}

    def coefficients(self) -> dict[str, float]:
        """``p_t w_t``: this epoch's steps are ``sum_t p_t w_t L_t`` (the weights change at :meth:`epoch_end`)."""
        return {t: self.priorities[t] * self.weights[t] for t in self.task_names}

    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[Tensor],
        *,
        counts: Counts | None = None,
        groups: Groups | None = None,
    ) -> dict[str, float]:
        """Accumulate the gradients of ``sum_t p_t w_t L_t``; see :meth:`LossWeighting.backward`."""
        batch = self._present(losses, counts)
        every = self.coefficients()
        coef = {t: every[t] for t in batch.names}
        if batch.names:  # [P] the coefficients of this epoch, one sum
            _backward_weighted(batch.kept, torch.tensor(list(coef.values()), dtype=batch.kept.dtype,
                                                        device=batch.kept.device))
        return coef

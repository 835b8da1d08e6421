"""GradNorm: learn task weights that balance the gradient norms.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for
Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018.

Weights ``w_t = T * softmax(l)_t`` (learnable logits ``l``, initialised to
``0``, so the weights are positive and always renormalised to sum to ``T``).
On the given shared parameters ``W`` (the paper uses the last shared layer):
``G_t = w_t ||grad_W L_t||``, ``G_bar = mean_t G_t``, the inverse training rate
``r_t = (L_t / L_t(0)) / mean_i (L_i / L_i(0))`` with ``L_t(0)`` the loss at the
first step the task appeared, and the GradNorm loss
``L_grad = sum_t |G_t - const(G_bar * r_t ** alpha)|``. Its gradient
accumulates into the logits only; the model receives the gradient of
``sum_t p_t * w_t * L_t`` with the weights held constant. Priorities multiply
after balancing (so the balancing does not undo them).

With no shared parameters there is nothing to balance: it falls back to equal
weighting with a one-time warning. Tasks whose gradient on ``W`` is zero take
no part in the balancing.

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

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ._base import LossWeighting, _backward_sum, _flat_grad, _non_negative, _unique_params

__all__ = ["GradNorm"]


class GradNorm(LossWeighting):
    """Learnable weights trained to equalise the tasks' gradient norms.

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
    Cost per step: one ``torch.autograd.grad`` per present task down to
    ``shared_params`` (graph retained), then one ordinary backward. Pass only
    the last shared layer's parameters to keep it cheap.
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
        self.initial_losses: dict[str, float] = {}
        self._warned = False

    def parameters(self) -> list[torch.nn.Parameter]:
        """The weight logits ``l`` (one tensor of shape ``[T]``)."""
        return [self.logits]

    def _weight_tensor(self) -> Tensor:
        return self.n_tasks * torch.softmax(self.logits, dim=0)

    @property
    def weights(self) -> dict[str, float]:
        """Current weights ``w_t`` of all tasks (positive, sum ``T``; priorities not included)."""
        w = self._weight_tensor().detach()
        return {t: float(w[i]) for i, t in enumerate(self.task_names)}

    def backward(self, losses: dict[str, Tensor], shared_params: Sequence[Tensor]) -> dict[str, float]:
        """Accumulate model gradients and the logits' GradNorm gradient; see :meth:`LossWeighting.backward`."""
        present = self._present(losses)
        if not present:
            return {}
        shared = _unique_params(shared_params)
        if not shared:
            if not self._warned:
                warnings.warn(
                    "GradNorm got no shared parameters: nothing to balance, using equal weighting",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self._warned = True
            _backward_sum([self.priorities[t] * loss for t, loss in present.items()])
            return {t: self.priorities[t] for t in present}

        for t, loss in present.items():
            self.initial_losses.setdefault(t, max(float(loss.detach()), 1e-12))
        index = {t: i for i, t in enumerate(self.task_names)}
        w_all = self._weight_tensor()
        norms = torch.stack([
            _flat_grad(loss, shared, retain_graph=True).norm() for loss in present.values()
        ]).to(w_all)
        idx = torch.tensor([index[t] for t in present], device=w_all.device)
        balanced = norms > 0
        if bool(balanced.any()):
            g = w_all[idx][balanced] * norms[balanced]
            ratio = torch.tensor(
                [float(present[t].detach()) / self.initial_losses[t] for t in present],
                dtype=w_all.dtype, device=w_all.device,
            )[balanced]
            target = (g.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
            grad_loss = (g - target).abs().sum()
            (grad,) = torch.autograd.grad(grad_loss, [self.logits])
            if self.logits.grad is None:
                self.logits.grad = grad
            else:
                self.logits.grad.add_(grad)

        w = w_all.detach()
        coef = {t: self.priorities[t] * float(w[index[t]]) for t in present}
        _backward_sum([coef[t] * loss for t, loss in present.items()])
        return coef

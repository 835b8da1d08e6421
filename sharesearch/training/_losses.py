"""The losses a training run hands its callback at each evaluation (:class:`~sharesearch.training.Progress`).

``train_loss``: each task's loss over the optimizer steps since the previous
evaluation. Every step already computes its per-task losses for the
backward; :class:`LossWindow` adds them up on the device (each weighted by
the task's labelled rows in the batch), so it costs no forward pass and one
device sync per evaluation. ``val_loss``: the same loss
(:func:`~sharesearch.tasks.task_loss`'s) on the validation rows, from the
outputs the evaluation computes for its metrics (:func:`split_losses`).
:func:`~sharesearch.training.train` and
:func:`~sharesearch.training.train_population` share both, so a member of a
population hands over its separate run's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..tasks import TaskLosses

__all__ = ["LossWindow", "split_losses"]


def split_losses(losses_of: TaskLosses, out: Mapping[str, torch.Tensor], y: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Each task's training loss on a split's rows, ``[*M, T]`` on the device (no sync); NaN for a task with no
    label.

    ``losses_of`` is the run's :class:`~sharesearch.tasks.TaskLosses` (the
    loss of :func:`~sharesearch.tasks.task_loss`, every task in a few ops:
    ~0.14 against ~0.40 ms task by task on 225 rows of 6 tasks). ``out``
    holds the outputs (``{task: Tensor[*M, N, out_dim]}``, ``M`` a
    population's members or nothing), ``y`` the split's labels
    ``[N, T_data]`` and ``weights`` its sample weights ``[N]`` or ``None``,
    both shared by the members.

    >>> from sharesearch.tasks import TaskSpec
    >>> y = torch.tensor([[1.0, float("nan")], [0.0, float("nan")]])  # [N=2, T_data=2]
    >>> out = {"a": torch.zeros(2, 1), "b": torch.zeros(2, 1)}
    >>> losses_of = TaskLosses([TaskSpec("a", "binary"), TaskSpec("b", "regression")], [0, 1])
    >>> [round(v, 4) for v in split_losses(losses_of, out, y).tolist()]  # b has no label: NaN
    [0.6931, nan]
    """
    lead = next(iter(out.values())).shape[:-2]  # [*M]
    yy = y.expand(*lead, *y.shape)  # [*M, N, T_data], a view
    ww = None if weights is None else weights.expand(*lead, *weights.shape)  # [*M, N]
    losses = losses_of(out, yy, False, ww)  # [*M, T]
    labelled = (~torch.isnan(y[:, list(losses_of.cols)])).any(dim=0)  # [T]
    return torch.where(labelled, losses, torch.full_like(losses, float("nan")))


class LossWindow:
    """Each task's training loss since the last evaluation, summed over labelled rows on the device.

    A step adds its per-task losses (each a mean over the batch's labelled
    rows) weighted by those rows; :meth:`take` reads the means with one device
    sync and starts a new window. ``shape`` is ``[T]`` (a run) or ``[P, T]``
    (a population).
    """

    def __init__(self, shape: tuple[int, ...], device: torch.device) -> None:
        self.sum = torch.zeros(shape, device=device)  # [..., T] loss x labelled rows
        self.rows = torch.zeros(shape, device=device)  # [..., T] labelled rows

    def add(self, losses: torch.Tensor, rows: torch.Tensor | int) -> None:
        """Add one step: ``losses [..., T]`` (detached) over ``rows`` labelled rows (``[..., T]`` or one count)."""
        if isinstance(rows, int):
            self.sum.add_(losses, alpha=rows)
        else:
            self.sum.addcmul_(losses, rows)  # one op, not a product and a sum
        self.rows += rows

    def take(self) -> list:
        """The window's mean losses as nested lists (NaN where no row was labelled); the window restarts."""
        means = (self.sum / self.rows).tolist()  # 0 / 0 = NaN: no labelled row
        self.sum.zero_()
        self.rows.zero_()
        return means

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the population rows ``rows`` (members that leave are dropped)."""
        self.sum, self.rows = self.sum[rows], self.rows[rows]

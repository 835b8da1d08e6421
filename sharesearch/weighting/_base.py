"""The :class:`LossWeighting` contract and helpers shared by the methods.

A weighting method turns the per-task losses of one batch into gradients.
The trainer zeroes the gradients, calls :meth:`LossWeighting.backward` (which
*accumulates* into ``.grad`` of the model parameters and of
:meth:`LossWeighting.parameters`), then steps its optimiser. ``backward``
consumes the autograd graph of the losses: the trainer must not call
``backward`` on them itself afterwards.

Per-task priorities (default ``1.0``) multiply each task's loss in every
method. ``losses`` may hold only the tasks labelled in the batch; a task
whose loss does not reach the shared parameters contributes zero gradients
to them.

A task without labels in the batch contributes nothing -- no loss term, no
regulariser, no gradient on any parameter of the model or of the method --
in each of three forms: its key is absent from ``losses``; its loss is NaN
(a mean over no examples); or ``counts`` (the labelled examples of each task
in the batch: ints or 0-dim tensors by task, or one ``[len(losses)]`` tensor
in the order of ``losses``' keys) says 0. The trainer's
:func:`sharesearch.tasks.task_loss` returns ``0`` for such a task, which is
indistinguishable from a perfect fit, so the trainer passes ``counts``. The
check is a tensor mask (``torch.where``), so it never synchronises a GPU; a
masked task gets exact zero gradients (``.grad`` is zero, not ``None``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

__all__ = ["LossWeighting", "Present", "StackedBalancer", "StackedLosses"]

#: task -> labelled examples in the batch (an int or a 0-dim tensor on the loss's device), or all of them as one
#: ``[len(losses)]`` tensor in the order of the losses' keys (what the trainer has in hand: no per-task split)
Counts = Mapping[str, int | Tensor] | Tensor
#: group of tasks sharing a block -> the parameters of that group's last shared layer
Groups = Mapping[tuple[str, ...], Sequence[Tensor]]


@dataclass(frozen=True)
class Present:
    """The validated losses of one batch, stacked (see :meth:`LossWeighting._present`)."""

    names: tuple[str, ...]  # the tasks given, in task order
    stacked: Tensor  # [P] the losses as given, unmasked (for _task_grads, which masks the cotangent)
    ok: Tensor  # [P] bool: labelled in the batch (count > 0 and loss not NaN)
    kept: Tensor  # [P] the losses, exactly 0 (zero gradient) where unlabelled
    live: tuple[bool, ...] = ()  # per task given: its loss as given carries a graph (requires grad)

    @property
    def losses(self) -> dict[str, Tensor]:
        """Task -> its masked loss (0-dim views of ``kept``)."""
        return dict(zip(self.names, self.kept.unbind(0)))

    @property
    def labelled(self) -> dict[str, Tensor]:
        """Task -> 0-dim bool, labelled in the batch."""
        return dict(zip(self.names, self.ok.unbind(0)))

    @property
    def given(self) -> dict[str, Tensor]:
        """Task -> its loss as given, unmasked (0-dim views of ``stacked``)."""
        return dict(zip(self.names, self.stacked.unbind(0)))


@dataclass(frozen=True, eq=False)
class StackedLosses(Mapping):
    """One batch's task losses as one stacked tensor: the ``losses`` a trainer that needs them stacked anyway passes.

    A read-only mapping task -> 0-dim loss like any other ``losses``; a
    weighting whose tasks are ``names``, in that order, uses the stack as it is
    instead of stacking the losses again (one op and one graph node a step
    fewer), and the trainer keeps ``stacked.detach()`` for its running sums.

    >>> import torch
    >>> x = torch.tensor(2.0, requires_grad=True)
    >>> s = StackedLosses.of(("a", "b"), [x * 3, torch.tensor(1.0)])
    >>> list(s), float(s["a"].detach()), s.live
    (['a', 'b'], 6.0, (True, False))
    """

    names: tuple[str, ...]  # the tasks, in the order of stacked
    stacked: Tensor  # [T] the losses, stacked in one floating dtype (the widest of theirs)
    live: tuple[bool, ...]  # per task: its loss carries a graph (requires grad)

    @classmethod
    def of(cls, names: Sequence[str], losses: Sequence[Tensor]) -> "StackedLosses":
        """Stack ``losses`` (one-element tensors, one per name)."""
        if len(names) != len(losses) or not losses:
            raise ValueError(f"StackedLosses needs one loss per task, got {len(losses)} for tasks {list(names)}")
        return cls(tuple(names), _stack(losses), tuple(x.requires_grad for x in losses))

    def __getitem__(self, task: str) -> Tensor:
        if task not in self.names:
            raise KeyError(task)
        return self.stacked[self.names.index(task)]

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class StackedBalancer(ABC):
    """A weighting's state for every member of a population at once, for a method that learns per-task values
    from per-task gradients (GradNorm): the population trains ``values`` as one ``[M, T]`` tensor with the
    network's weights, as a separate run's one optimizer trains them."""

    values: Tensor  # [M, T] the members' learned values at the start

    @abstractmethod
    def step(self, losses: Tensor, ok: Tensor, values: Tensor, groups: Groups) -> Tensor:
        """Write ``values.grad`` from one batch and return ``[M, T]`` the coefficients of the losses (detached).

        ``losses [M, T]`` every member's task losses (one graph through the stacked weights), ``ok [M, T]``
        a member's task is labelled in its batch, ``values`` the ``[M, T]`` leaf the population trains,
        ``groups`` tasks -> the stacked ``[M, ...]`` last-shared-layer tensors (:meth:`LossWeighting.backward`).
        """

    def keep(self, rows: Tensor) -> None:
        """Keep only the members ``rows`` (the others left the population)."""


class LossWeighting(ABC):
    """Base class of the loss-weighting methods.

    Parameters
    ----------
    task_names : sequence of str
        All tasks of the model, in a fixed order (non-empty, unique).
    priorities : mapping of str to float, optional
        Non-negative multiplier of each task's loss (default ``1.0``).

    Attributes
    ----------
    name : str
        Registry name of the method (class attribute).
    task_names : tuple of str
        The tasks, in the given order.
    priorities : dict of str to float
        Priority of every task.
    """

    name: ClassVar[str]

    def __init__(
        self, task_names: Sequence[str], priorities: Mapping[str, float] | None = None
    ) -> None:
        names = list(task_names)
        if not names:
            raise ValueError("task_names must not be empty")
        if any(not isinstance(n, str) for n in names):
            raise TypeError(f"task names must be str, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names!r}")
        prio = dict(priorities or {})
        unknown = sorted(set(prio) - set(names))
        if unknown:
            raise ValueError(f"priorities name unknown task(s) {unknown}; tasks are {names}")
        for task, value in prio.items():
            prio[task] = _non_negative(f"priority of {task!r}", value)
        self.task_names: tuple[str, ...] = tuple(names)
        self.priorities: dict[str, float] = {t: prio.get(t, 1.0) for t in names}
        self._index = {t: i for i, t in enumerate(names)}  # task -> its position
        self._prio_cache: tuple[tuple, Tensor] | None = None  # (priorities, dtype, device) -> [P] tensor

    @property
    def n_tasks(self) -> int:
        """Number of tasks ``T``."""
        return len(self.task_names)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Extra learnable parameters; the trainer adds them to its optimiser.

        Returns
        -------
        list of torch.nn.Parameter
            Empty unless the method learns something itself.
        """
        return []

    def to(self, device: torch.device | str) -> LossWeighting:
        """Move :meth:`parameters` to ``device`` in place (before building the optimiser).

        ``backward`` also does this lazily on first use, so calling it is optional.

        Parameters
        ----------
        device : torch.device or str
            Target device.

        Returns
        -------
        LossWeighting
            ``self``.
        """
        for p in self.parameters():
            p.data = p.data.to(device)
        return self

    @abstractmethod
    def backward(
        self,
        losses: Mapping[str, Tensor],
        shared_params: Sequence[Tensor],
        *,
        counts: Counts | None = None,
        groups: Groups | None = None,
    ) -> dict[str, float]:
        """Accumulate the gradients of the weighted multi-task loss.

        Parameters
        ----------
        losses : mapping of str to Tensor
            Scalar loss of each task present in the batch.
        shared_params : sequence of Tensor
            All parameters used by more than one task (PCGrad projects on them).
        counts : mapping of str to int or Tensor, or Tensor, optional
            Labelled examples of each task of ``losses`` in the batch (by task,
            or one ``[len(losses)]`` tensor in the order of ``losses``' keys);
            a task with 0 contributes nothing (see the module docstring).
        groups : mapping of tuple of str to sequence of Tensor, optional
            For each group of >= 2 tasks that shares a block, the parameters of
            the deepest block shared by exactly that group (GradNorm balances
            each group on them; the other methods ignore this).

        Returns
        -------
        dict of str to float
            The coefficient that multiplied each given task's loss (priority
            included), for logging; a task masked as unlabelled reports the
            coefficient it would have had.
        """

    def coefficients(self) -> dict[str, float] | None:
        """Each task's loss coefficient for the steps to come, when this method's step is ``sum_t c_t L_t`` with
        constants between epoch ends (equal weighting, DWA); ``None`` for a method that learns its weights or
        looks at gradients. A population trains the members of such a method together (their steps are one
        weighted sum); the others train one run at a time."""
        return None

    def stacked_objective(self) -> tuple[Tensor, Callable[[Tensor, Tensor, Tensor], Tensor]] | None:
        """For a method whose step is the gradient of one scalar of the losses and of learned per-task values
        (uncertainty weighting): ``(values [T], f)``, with ``f(kept [..., T], ok [..., T], values [..., T])`` that
        objective over the last dim (``kept`` 0 where ``ok`` is False). A population stacks the members' values
        and trains them with the network. ``None`` otherwise."""
        return None

    def stacked_balancer(self, members: Sequence["LossWeighting"]) -> StackedBalancer | None:
        """``members`` (this method's instances, one per member of a population, this one first) as one
        :class:`StackedBalancer`, for a method that learns its weights from per-task gradients (GradNorm);
        ``None`` otherwise."""
        return None

    def gram_combination(self) -> Callable[[Tensor], Tensor] | None:
        """For a method whose step gives the shared parameters ``w @ G``, a combination of the per-task gradients
        ``G [T, P]`` (of the priority-weighted losses) computed from their inner products alone, and every other
        parameter the plain sum of its per-task gradients (PCGrad): the function ``gram [T, T] -> w [T]`` (it
        may draw from the method's generator). A population computes every member's ``G`` in one batched
        backward and asks each member's own function. ``None`` otherwise."""
        return None

    @property
    def uses_epoch_losses(self) -> bool:
        """Whether a subclass overrides :meth:`epoch_end` (DWA): a trainer sums each epoch's losses only then."""
        return type(self).epoch_end is not LossWeighting.epoch_end

    def epoch_end(self, mean_losses: dict[str, float]) -> None:
        """Per-epoch hook with each task's mean training loss; no-op by default.

        Parameters
        ----------
        mean_losses : dict of str to float
            Mean (unweighted) training loss of each task over the epoch.
        """
        return None

    def _present(self, losses: Mapping[str, Tensor], counts: Counts | None = None) -> Present:
        """Validate ``losses`` and ``counts``; stack them and mask the tasks without labels (no GPU sync).

        Vectorised over the tasks: one ``stack``, ``isnan`` and ``where`` for
        all of them (each op is a few microseconds of dispatch on a CPU, and
        each per-task ``where`` was one more node in every backward).
        """
        if isinstance(losses, StackedLosses) and losses.names == self.task_names:  # the trainer's form: as stacked
            names, stacked, live = losses.names, losses.stacked, losses.live
        else:
            names, stacked, live = self._stacked(losses)
        if not names:
            empty = torch.zeros(0)
            return Present((), empty, empty.bool(), empty, ())
        ok = ~torch.isnan(stacked)  # [P] bool
        if isinstance(counts, Tensor):  # [len(losses)] in losses' order; names are in task order
            if tuple(counts.shape) != (len(losses),):
                raise ValueError(f"counts as one tensor must have shape ({len(losses)},) (one per loss, in the "
                                 f"order of losses' keys), got {tuple(counts.shape)}")
            given = tuple(losses)
            c = counts.to(stacked.device)  # [len(losses)]
            ok = ok & ((c if given == names else c[[given.index(t) for t in names]]) > 0)  # [P]
        elif counts is not None:
            if not all(t in counts for t in names):
                raise ValueError(f"counts lack task(s) {sorted(set(losses) - set(counts))} of losses")
            c = [counts[t] for t in names]
            c = torch.stack([torch.as_tensor(v, device=stacked.device) for v in c]) if any(
                isinstance(v, Tensor) for v in c) else torch.tensor(c, device=stacked.device)  # [P]
            ok = ok & (c > 0)
        kept = torch.where(ok, stacked, 0.0)  # [P]
        for p in self.parameters():
            if p.device != stacked.device:
                p.data = p.data.to(stacked.device)
        return Present(names, stacked, ok, kept, live)

    def _stacked(self, losses: Mapping[str, Tensor]) -> tuple[tuple[str, ...], Tensor | None, tuple[bool, ...]]:
        """The tasks of ``losses`` in task order, their losses stacked (``[P]``; None for none) and their liveness."""
        names = tuple(t for t in self.task_names if t in losses)
        if len(names) != len(losses):
            unknown = sorted(t for t in losses if t not in self._index)
            raise ValueError(f"losses name unknown task(s) {unknown}; tasks are {list(self.task_names)}")
        values = [losses[t] for t in names]
        for t, loss in zip(names, values):
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                raise ValueError(f"loss of task {t!r} must be a one-element tensor")
        if not names:
            return (), None, ()
        return names, _stack(values), tuple(loss.requires_grad for loss in values)

    def _coefficients(self, names: tuple[str, ...], like: Tensor) -> Tensor | None:
        """``[P]`` the priorities of ``names`` as a tensor like ``like`` (cached); None when all are 1."""
        values = tuple(self.priorities[t] for t in names)
        if all(v == 1.0 for v in values):
            return None
        key = (values, like.dtype, like.device)
        if self._prio_cache is None or self._prio_cache[0] != key:
            self._prio_cache = (key, torch.tensor(values, dtype=like.dtype, device=like.device))
        return self._prio_cache[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task_names={list(self.task_names)!r}, priorities={self.priorities!r})"


def _non_negative(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be finite and >= 0, got {value!r}")
    return value


def _positive(what: str, value: object) -> float:
    value = _non_negative(what, value)
    if value == 0:
        raise ValueError(f"{what} must be > 0, got {value!r}")
    return value


def _backward_weighted(losses: Tensor, coef: Tensor | None = None) -> None:
    """Backpropagate ``sum(coef * losses)`` (``losses`` ``[P]``; ``coef`` None: all 1), accumulating.

    One ``mul`` and one ``sum`` however many tasks: the backward gives loss
    ``i`` exactly ``coef[i]``, as the sum of the scaled terms did.
    """
    if losses.requires_grad:
        (losses if coef is None else losses * coef).sum().backward()


def _unique_params(params: Sequence[Tensor]) -> list[Tensor]:
    """Deduplicate (by identity) the parameters that require grad, keeping order."""
    seen: set[int] = set()
    out = []
    for p in params:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _graph_leaves(root: Tensor) -> list[Tensor]:
    """The leaf tensors an ordinary ``root.backward()`` would accumulate into, in discovery order.

    A walk over the autograd graph (its ``AccumulateGrad`` nodes), so a method
    that replaces the ordinary backward by :func:`_task_grads` still reaches
    every parameter without being told the model's task-specific ones.
    """
    out: list[Tensor] = []
    seen: set[int] = set()
    stack = [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        leaf = getattr(node, "variable", None)  # an AccumulateGrad node holds its leaf
        if leaf is not None:
            out.append(leaf)
        else:
            stack.extend(child for child, _ in node.next_functions)
    return out


def _task_grads(stacked: Tensor, params: Sequence[Tensor], mask: Tensor | None = None) -> list[Tensor]:
    """Per-task gradients of ``params``: row ``i`` of each result is ``d stacked[i] / d param``.

    One batched vector-Jacobian product (``torch.autograd.grad`` with the
    identity as cotangents, ``is_grads_batched=True``) instead of one backward
    per task. The graph is retained (the caller may backpropagate again, and
    the fallback below needs it); zeros where a parameter is unused.

    Parameters
    ----------
    stacked : Tensor
        ``[T]`` task losses, stacked.
    params : sequence of Tensor
        Tensors that require grad.
    mask : Tensor, optional
        ``[T]`` bool: a task where it is False gets a zero cotangent, hence zero
        gradients -- exactly what masking its loss with ``torch.where`` gives
        (that is what reaches the loss's graph either way), without the
        ``where`` in the batched backward, which the vmap prototype runs as a
        per-task loop.

    Returns
    -------
    list of Tensor
        ``[T, *p.shape]`` per parameter ``p``.

    Examples
    --------
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> _task_grads(torch.stack([3 * x[0], x[1] ** 2]), [x])[0]
    tensor([[3., 0.],
            [0., 4.]])
    """
    n = stacked.shape[0]  # T
    if mask is None:
        eye = torch.eye(n, dtype=stacked.dtype, device=stacked.device)  # [T, T] one cotangent per task
    else:
        eye = torch.diag(mask.to(stacked.dtype))  # [T, T] the identity, row i zero where task i is masked
    try:
        grads = torch.autograd.grad(stacked, params, eye, retain_graph=True, allow_unused=True,
                                    is_grads_batched=True)
    except RuntimeError:
        # Batched backward runs on torch's vmap prototype, which raises for backward code it cannot batch,
        # e.g. a custom autograd.Function that reads a value ("Batching rule not implemented for aten::item.
        # We could not generate a fallback.") or writes in place into an unbatched tensor ("vmap:
        # aten::mul_(self, *extra_args) is not possible because there exists a Tensor `other` ...").
        # Every network sharesearch compiles batches (torch 2.13); the per-task loop is for the others.
        rows = [torch.autograd.grad(stacked, params, eye[i], retain_graph=True, allow_unused=True) for i in range(n)]
        grads = [None if all(r[k] is None for r in rows) else torch.stack([
            torch.zeros_like(p) if r[k] is None else r[k] for r in rows]) for k, p in enumerate(params)]
    return [torch.zeros((n, *p.shape), dtype=p.dtype, device=p.device) if g is None else g
            for g, p in zip(grads, params)]


def _stack(losses: Sequence[Tensor]) -> Tensor:
    """``[T]`` the scalar losses stacked in one floating dtype (the widest of theirs)."""
    dtype = losses[0].dtype
    if all(x.dtype == dtype and x.dim() == 0 for x in losses):  # the trainer's case: no reshape or cast
        return torch.stack(list(losses))
    for x in losses[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    return torch.stack([x.reshape(()).to(dtype) for x in losses])


def _accumulate(leaf: Tensor, grad: Tensor) -> None:
    """Add ``grad`` into ``leaf.grad`` as a backward pass would (``grad`` itself where it was None)."""
    if leaf.grad is None:
        leaf.grad = grad.detach()
    else:
        leaf.grad.add_(grad)

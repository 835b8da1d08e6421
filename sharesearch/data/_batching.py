"""Mini-batches by index: the data stays as tensors on the training device.

There is no per-sample ``DataLoader`` collation: an :class:`IndexBatcher`
yields LongTensors of row indices (on the data's device) and the trainer
gathers ``x[idx], y[idx]`` itself -- one indexing kernel per batch instead of
``batch_size`` Python ``__getitem__`` calls plus a collate.

Sampling
--------
* **Dense labels** (every row of the split is labelled for every task): both
  modes are the same -- a fresh random permutation of the split's rows each
  epoch, cut into batches of ``batch_size``; every row appears exactly once.
* **Sparse labels** (tasks have their own labelled examples): let ``P_t`` be
  the rows of the split labelled for task ``t`` and ``U`` their union. An
  epoch has ``ceil(|U| / batch_size)`` batches (``floor`` with
  ``drop_last``), the last one possibly smaller.

  - ``"proportional"``: a random permutation of ``U`` cut into batches, so each
    task is seen in proportion to its number of labelled rows and every
    labelled row appears once per epoch.
  - ``"uniform"``: every batch is the concatenation of equal draws, one per
    task (tasks whose pool is empty in this split are left out), each from
    that task's own pool, whatever the pool sizes; a batch size that does not
    divide evenly gives the remainder to the tasks in rotation. Each task's
    pool is walked in a random order that is reshuffled when exhausted and
    continues across epochs, so a small pool is repeated and a large one is
    covered over several epochs. A row labelled for several tasks can be
    drawn for each of them, so it may occur twice in a batch.

Tasks
-----
``tasks`` (names or column indices; default all) restricts the batcher to the
tasks a graph trains: the label masks, pools, union and sampling above
consider only those columns. So a batcher over ``["a"]`` yields exactly the
batches of one built on ``data.subset_tasks(["a"])`` -- an independent graph
of one task sees the batches of a separate single-task run, also with sparse
labels (rows labelled only for tasks the graph does not train are never
drawn).

Randomness comes from a private CPU ``torch.Generator``: pass one, or an int
seed; with ``None`` it is seeded from torch's global RNG (so
``torch.manual_seed`` makes runs repeatable). Each epoch's indices are built on
the CPU and moved to the device once.

Example
-------
>>> from sharesearch.data import load_data
>>> d = load_data("synthetic-mmoe", n=200)
>>> b = IndexBatcher(d, batch_size=64, generator=0)
>>> [len(i) for i in b], len(b), b.dense
([64, 64, 12], 3, True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from sharesearch.data._base import MultiTaskData, _split_code
from sharesearch.errors import SharesearchError
from sharesearch.names import SAMPLINGS

__all__ = ["IndexBatcher", "SAMPLINGS"]


def _make_generator(generator: "torch.Generator | int | None") -> torch.Generator:
    if isinstance(generator, torch.Generator):
        if generator.device.type != "cpu":
            raise ValueError(f"IndexBatcher: generator must be a CPU torch.Generator, got one on {generator.device}")
        return generator
    g = torch.Generator()
    if generator is None:
        g.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    elif isinstance(generator, int) and not isinstance(generator, bool):
        g.manual_seed(generator)
    else:
        raise TypeError(f"IndexBatcher: generator must be a torch.Generator, an int seed or None, got {generator!r}")
    return g


def _task_columns(data: MultiTaskData, tasks: "Sequence[str | int] | None") -> list[int]:
    """Column indices of ``tasks`` (names or indices) in ``data.y``; all columns for ``None``."""
    if tasks is None:
        return list(range(len(data.task_names)))
    if isinstance(tasks, (str, int)):
        raise TypeError(f"IndexBatcher: tasks must be a sequence of names or column indices, got {tasks!r}")
    cols = []
    for t in tasks:
        if isinstance(t, str) and t in data.task_names:
            cols.append(data.task_names.index(t))
        elif isinstance(t, int) and not isinstance(t, bool) and 0 <= t < len(data.task_names):
            cols.append(t)
        else:
            raise SharesearchError(f"IndexBatcher: data {data.name!r}: tasks: unknown task {t!r}; tasks are {data.task_names}")
    if not cols or len(set(cols)) != len(cols):
        raise SharesearchError(f"IndexBatcher: data {data.name!r}: tasks must be non-empty and unique, got {list(tasks)!r}")
    return cols


class IndexBatcher:
    """Iterate one epoch of index batches over a split of a :class:`MultiTaskData`.

    Parameters
    ----------
    data : MultiTaskData
    split : {"train", "val", "test"}
    batch_size : int
    sampling : {"uniform", "proportional"}
        How tasks share a batch when labels are sparse (see the module docstring).
    generator : torch.Generator, int or None
        Source of randomness (CPU).
    drop_last : bool
        Drop a final batch smaller than ``batch_size``.
    tasks : sequence of str or int, optional
        The tasks to draw for (names or column indices of ``data.y``; default
        all), e.g. the tasks of the graph being trained.

    Attributes
    ----------
    task_names : list[str]
        The tasks drawn for, in the order given.
    dense : bool
        Every row of the split is labelled for every one of these tasks.
    pool_sizes : dict[str, int]
        Labelled rows per task in the split.

    Examples
    --------
    >>> from sharesearch.data import load_data
    >>> d = load_data("synthetic-mmoe", n=1000, labelled=0.3)
    >>> b = IndexBatcher(d, batch_size=60, sampling="uniform", generator=1)
    >>> b.dense, len(b) == -(-b.n_union // 60)
    (False, True)
    >>> idx = next(iter(b)); len(idx), idx.dtype
    (60, torch.int64)
    >>> IndexBatcher(d, batch_size=60, tasks=["t2"]).pool_sizes == {"t2": b.pool_sizes["t2"]}
    True
    """

    def __init__(
        self,
        data: MultiTaskData,
        split: str = "train",
        batch_size: int = 256,
        sampling: str = "uniform",
        generator: "torch.Generator | int | None" = None,
        drop_last: bool = False,
        tasks: "Sequence[str | int] | None" = None,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise SharesearchError(f"IndexBatcher: unknown sampling {sampling!r}; valid: {list(SAMPLINGS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"IndexBatcher: batch_size must be a positive integer, got {batch_size!r}")
        self.split = split
        self.batch_size = batch_size
        self.sampling = sampling
        self.drop_last = bool(drop_last)
        self.device = data.x.device
        self.generator = _make_generator(generator)
        cols = _task_columns(data, tasks)
        self.task_names = [data.task_names[c] for c in cols]

        code = _split_code(split)
        split_cpu = data.split.detach().cpu()
        rows = torch.nonzero(split_cpu == code).flatten()
        lab = ~torch.isnan(data.y.detach().cpu()[rows][:, cols])  # [n_rows, len(cols)]
        self.dense = bool(lab.all())
        self._pools = [rows[lab[:, t]] for t in range(lab.shape[1])]
        self.pool_sizes = {n: int(len(p)) for n, p in zip(self.task_names, self._pools)}
        self._union = rows if self.dense else rows[lab.any(dim=1)]
        self.n_union = int(len(self._union))
        if self.n_union == 0:
            raise ValueError(
                f"IndexBatcher: split {split!r} of data {data.name!r} has no labelled rows for tasks {self.task_names}"
            )
        self._active = [t for t, p in enumerate(self._pools) if len(p) > 0]
        self._perm: list[torch.Tensor] = [torch.empty(0, dtype=torch.long) for _ in self._pools]
        self._pos = [0 for _ in self._pools]
        self._rot = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n_union, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def epoch_sizes(self) -> list[int]:
        """The sizes of one epoch's batches (``len(self)`` of them)."""
        full, rest = divmod(self.n_union, self.batch_size)
        sizes = [self.batch_size] * full
        if rest and not self.drop_last:
            sizes.append(rest)
        return sizes

    def _uniform_epoch(self, sizes: list[int]) -> torch.Tensor:
        """The next ``"uniform"`` batches' rows (an epoch's or several's) end to end: ``[sum(sizes)]`` CPU LongTensor.

        Batch ``i`` is the concatenation, over the active tasks ``j`` in order,
        of the next ``k[i, j]`` rows of task ``j``'s walk (``base`` each, and one
        more for the ``rem`` tasks from the rotation on). The walk's reshuffles
        (one ``randperm`` each) are drawn in the order a batch-by-batch,
        task-by-task walk would need them -- the same generator calls, so the same
        rows -- but the rows are gathered once per epoch, not per batch and task.
        """
        K = len(self._active)
        size = np.asarray(sizes, dtype=np.int64)  # [n] (index arithmetic on a few numbers: numpy, not torch ops)
        base, rem = size // K, size % K  # [n]
        rot = (self._rot + np.concatenate([[0], np.cumsum(rem)[:-1]])) % K  # [n] the rotation at batch i
        k = base[:, None] + ((np.arange(K)[None, :] - rot[:, None]) % K < rem[:, None])  # [n, K] rows of task j
        self._rot = int((self._rot + rem.sum()) % K)
        start = np.cumsum(k, axis=0) - k  # [n, K] each take's offset in its task's epoch stream
        demand = k.sum(axis=0)  # [K] rows each task takes this epoch
        events = []  # (batch i, task j): a new pass of task j starts inside take (i, j), one entry per pass
        for j, t in enumerate(self._active):
            left = len(self._perm[t]) - self._pos[t]  # rows of the current pass not yet taken
            if int(demand[j]) > left:
                firsts = np.arange(left, demand[j], len(self._pools[t]))  # stream offsets where new passes begin
                events += [(int(i), j) for i in np.searchsorted(start[:, j], firsts, side="right") - 1]
        passes: list[list[torch.Tensor]] = [[] for _ in self._active]
        for _, j in sorted(events):  # the walk's order: batch, then task (a task's passes in turn)
            pool = self._pools[self._active[j]]
            passes[j].append(pool[torch.randperm(len(pool), generator=self.generator)])
        streams = []
        for j, t in enumerate(self._active):
            d = int(demand[j])
            if not passes[j]:  # [d] this epoch's walk: the current pass goes on
                streams.append(self._perm[t][self._pos[t]:self._pos[t] + d])
                self._pos[t] += d
            else:  # [d] the rest of the current pass, then the new ones; the walk ends inside the last
                streams.append(torch.cat([self._perm[t][self._pos[t]:], *passes[j]])[:d])
                earlier = len(self._perm[t]) - self._pos[t] + len(self._pools[t]) * (len(passes[j]) - 1)
                self._perm[t], self._pos[t] = passes[j][-1], d - earlier
        first = (np.concatenate([[0], np.cumsum(demand)[:-1]])[None, :] + start).ravel()  # [n*K] take -> flat row
        lengths = k.ravel()  # [n*K], in walk order
        idx = np.arange(lengths.sum()) + np.repeat(first - (np.cumsum(lengths) - lengths), lengths)  # [sum(sizes)]
        return torch.cat(streams)[torch.from_numpy(idx)]

    def epoch_indices(self) -> list[torch.Tensor]:
        """The next epoch's batches as CPU LongTensors (advances the RNG)."""
        sizes = self.epoch_sizes()
        return list(torch.split(self._epoch(sizes), sizes)) if sizes else []

    def _epoch(self, sizes: list[int]) -> torch.Tensor:
        """The next epoch's rows, its batches (``sizes``, non-empty) end to end, on the CPU."""
        if self.dense or self.sampling == "proportional":
            perm = self._union[torch.randperm(self.n_union, generator=self.generator)]
            return perm[: sum(sizes)]
        return self._uniform_epoch(sizes)

    def epoch(self) -> tuple[torch.Tensor, list[int]]:
        """The next epoch's rows, its batches end to end on the data's device, and the batch sizes.

        The batches :meth:`__iter__` yields are ``torch.split(rows, sizes)``; a
        trainer can gather the rows of many batches at once instead of one batch
        at a time (advances the RNG as one pass of ``__iter__`` does).
        """
        return self.epochs(1)

    def epochs(self, count: int) -> tuple[torch.Tensor, list[int]]:
        """The next ``count`` epochs' rows end to end on the data's device, and their batch sizes.

        Exactly the rows of ``count`` calls of :meth:`epoch`, concatenated (the
        same generator calls in the same order), drawn at the price of about
        one: a ``"uniform"`` walk continues across epochs anyway, so ``count``
        epochs are one walk over ``count`` times the batch sizes, and its index
        arithmetic runs once. A trainer draws a block of epochs at a time.

        >>> from sharesearch.data import load_data
        >>> d = load_data("synthetic-mmoe", n=1000, labelled=0.3)
        >>> a, b = IndexBatcher(d, batch_size=60, generator=1), IndexBatcher(d, batch_size=60, generator=1)
        >>> rows, sizes = a.epochs(3)
        >>> bool(torch.equal(rows, torch.cat([b.epoch()[0] for _ in range(3)]))), sizes == 3 * b.epoch()[1]
        (True, True)
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"IndexBatcher.epochs: count must be a positive integer, got {count!r}")
        one = self.epoch_sizes()  # one epoch's
        if not one:
            return torch.empty(0, dtype=torch.long, device=self.device), []
        if self.dense or self.sampling == "proportional":  # one permutation per epoch, in turn
            rows = torch.cat([self._epoch(one) for _ in range(count)]) if count > 1 else self._epoch(one)
        else:
            rows = self._uniform_epoch(one * count)
        return rows.to(self.device, non_blocking=True), one * count

    def __iter__(self) -> Iterator[torch.Tensor]:
        rows, sizes = self.epoch()
        return iter(torch.split(rows, sizes))

    def __repr__(self) -> str:
        return (
            f"IndexBatcher(split={self.split!r}, batch_size={self.batch_size}, sampling={self.sampling!r}, "
            f"dense={self.dense}, batches={len(self)})"
        )

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

    def _batch_sizes(self) -> list[int]:
        full, rest = divmod(self.n_union, self.batch_size)
        sizes = [self.batch_size] * full
        if rest and not self.drop_last:
            sizes.append(rest)
        return sizes

    def _take(self, t: int, k: int) -> torch.Tensor:
        """Next ``k`` rows of task ``t``'s pool, walking reshuffled passes."""
        out = []
        pool = self._pools[t]
        while k > 0:
            if self._pos[t] >= len(self._perm[t]):
                self._perm[t] = pool[torch.randperm(len(pool), generator=self.generator)]
                self._pos[t] = 0
            step = min(k, len(self._perm[t]) - self._pos[t])
            out.append(self._perm[t][self._pos[t] : self._pos[t] + step])
            self._pos[t] += step
            k -= step
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def epoch_indices(self) -> list[torch.Tensor]:
        """The next epoch's batches as CPU LongTensors (advances the RNG)."""
        sizes = self._batch_sizes()
        if self.dense or self.sampling == "proportional":
            perm = self._union[torch.randperm(self.n_union, generator=self.generator)]
            return list(torch.split(perm[: sum(sizes)], sizes)) if sizes else []
        K = len(self._active)
        batches = []
        for s in sizes:
            base, rem = divmod(s, K)
            parts = []
            for j, t in enumerate(self._active):
                extra = 1 if (j - self._rot) % K < rem else 0
                parts.append(self._take(t, base + extra))
            self._rot = (self._rot + rem) % K
            batches.append(torch.cat(parts))
        return batches

    def __iter__(self) -> Iterator[torch.Tensor]:
        batches = self.epoch_indices()
        if not batches:
            return iter(())
        flat = torch.cat(batches).to(self.device, non_blocking=True)
        return iter(torch.split(flat, [len(b) for b in batches]))

    def __repr__(self) -> str:
        return (
            f"IndexBatcher(split={self.split!r}, batch_size={self.batch_size}, sampling={self.sampling!r}, "
            f"dense={self.dense}, batches={len(self)})"
        )

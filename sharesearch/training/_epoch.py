"""A run's batches, drawn a block of epochs at a time and gathered a chunk at a time, not a batch at a time.

Drawing a batch costs a few small tensor ops whatever its size (the row
gathers of ``x``, ``y`` and the weights, the labelled-row count per task), a
few microseconds each on a CPU. :func:`epoch_batches` gathers the rows of many
consecutive batches in one op each and counts every batch's labelled rows in
one op (a cumulative sum), then hands out views. The values are exactly those
of per-batch gathering: the same rows, in the same order.

A chunk holds at most ``chunk_bytes`` of inputs (one batch at least): a
small table's epoch is one gather, a big one's batches are gathered a few at a
time, so a big table is never copied whole. (On a 300k x 500 table, chunks of
16 MB and of 1 MB timed alike, ``benchmarks/bench_scale.py --only epoch``;
the smaller one holds less memory.) :func:`run_batches` hands a run its
batches epoch after epoch, drawing the row indices of many epochs at once
(:meth:`~sharesearch.data.IndexBatcher.epochs`) so that a small table's chunk
spans several epochs: drawing and gathering cost a few calls a block, not a
few an epoch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..data import IndexBatcher, MultiTaskData

__all__ = ["Batch", "epoch_batches", "run_batches"]

#: the most bytes of inputs one gather copies (two batches of 256 rows of a 300k x 500 table; every batch of a
#: small one)
CHUNK_BYTES = 2**20
#: the most row indices :func:`run_batches` draws at once (512 KB of int64; one epoch at least): 64 epochs of a
#: 1,000-row training split, one of a big table
BLOCK_ROWS = 2**16


@dataclass(frozen=True)
class Batch:
    """One training batch."""

    rows: int  # examples in the batch
    x: torch.Tensor  # [B, *input_shape]
    y: torch.Tensor  # [B, T_data] labels, NaN where missing
    w: torch.Tensor | None  # [B] sample weights, or None
    labelled: torch.Tensor | None  # [T] labelled rows of each of the run's tasks (int64); None: asked not to count
    # (a population's batch: x [P, B, *input_shape], y [P, B, T_data], w [P, B], labelled [P, T])


def epoch_batches(data: MultiTaskData, rows: torch.Tensor, sizes: Sequence[int], cols: Sequence[int],
                  count: bool, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch]:
    """The batches of one epoch: ``rows`` (``[sum(sizes)]``, batches end to end) cut by ``sizes``.

    ``cols`` are the run's task columns of ``data.y``; with ``count`` each
    batch carries its labelled rows per task (``(~isnan(y[:, cols])).sum(0)``).
    A population passes ``rows`` of shape ``[P, sum(sizes)]``, one row of
    indices per member: each batch then holds ``x [P, B, *in]``, ``y [P, B, T_data]``,
    ``w [P, B]`` and ``labelled [P, T]``, the members' batches stacked (a chunk
    holds ``chunk_bytes`` of inputs over all members).

    >>> from sharesearch.data import load_data
    >>> d = load_data("synthetic-mmoe", n=100, d=8, seed=0)
    >>> rows = torch.arange(10)
    >>> [(b.rows, tuple(b.x.shape)) for b in epoch_batches(d, rows, [4, 4, 2], [0, 1], count=True)]
    [(4, (4, 8)), (4, (4, 8)), (2, (2, 8))]
    >>> bool(torch.equal(list(epoch_batches(d, rows, [4, 6], [0], count=False, chunk_bytes=1))[1].x, d.x[4:10]))
    True
    """
    d = rows.dim() - 1  # the batch axis: 0, or 1 behind a population's members
    per_row = max(1, data.x[:1].numel() * data.x.element_size()) * (rows.shape[0] if d else 1)
    cols = list(cols)
    all_cols = cols == list(range(data.y.shape[1]))
    i, start = 0, 0
    while i < len(sizes):
        j, n = i + 1, sizes[i]  # batches i..j-1 form the chunk
        while j < len(sizes) and (n + sizes[j]) * per_row <= chunk_bytes:
            n, j = n + sizes[j], j + 1
        idx = rows[..., start:start + n]  # [(P,) n]
        x, y = data.x[idx], data.y[idx]  # [(P,) n, *in], [(P,) n, T_data]
        w = None if data.weights is None else data.weights[idx]  # [(P,) n]
        part = list(sizes[i:j])  # the chunk's batch sizes
        counts = None
        if count:
            bounds = list(itertools.accumulate(part, initial=0))  # [j - i + 1] each batch's place in the chunk
            lab = ~torch.isnan(y if all_cols else y[..., cols])  # [(P,) n, T]
            zero = lab.new_zeros(*lab.shape[:d], 1, lab.shape[-1], dtype=torch.long)  # [(P,) 1, T]
            cum = torch.cat([zero, lab.cumsum(d, dtype=torch.long)], dim=d)  # [(P,) n + 1, T]
            at = torch.tensor(bounds, device=cum.device)  # [j - i + 1]
            counts = cum.index_select(d, at[1:]) - cum.index_select(d, at[:-1])  # [(P,) j - i, T] a batch each
        none = [None] * len(part)  # the views of every batch of the chunk: one op per tensor, not one per batch
        yield from map(Batch, part, x.split(part, d), y.split(part, d), none if w is None else w.split(part, d),
                       none if counts is None else counts.unbind(d))
        i, start = j, start + n


def run_batches(batcher: IndexBatcher, data: MultiTaskData, cols: Sequence[int], count: bool, steps: int,
                block_rows: int = BLOCK_ROWS) -> Iterator[Batch]:
    """A run's first ``steps`` batches, epoch after epoch: those of :func:`epoch_batches` over ``batcher.epoch()``.

    The epochs are drawn a block at a time (:meth:`~sharesearch.data.IndexBatcher.epochs`,
    at most ``block_rows`` row indices or one epoch) and gathered a chunk at a
    time across epoch boundaries: the per-call cost of drawing and gathering
    is paid once a block, not once an epoch (on ``benchmarks/bench_overhead.py``'s
    trials, 8 batches an epoch, it took the step bookkeeping from 427 to 337 us
    a step on a 2-core Xeon). The batches are the same, in the same
    order. A run that stops early leaves the rest of its block undrawn from;
    its batcher is its own.

    >>> from sharesearch.data import load_data, IndexBatcher
    >>> d = load_data("synthetic-mmoe", n=100, d=8, seed=0)
    >>> a, b = IndexBatcher(d, batch_size=16, generator=0), IndexBatcher(d, batch_size=16, generator=0)
    >>> per_epoch = [bt for _ in range(3) for bt in epoch_batches(d, *b.epoch(), [0, 1], count=False)][:10]
    >>> blocks = list(run_batches(a, d, [0, 1], count=False, steps=10, block_rows=40))
    >>> [bt.rows for bt in blocks] == [bt.rows for bt in per_epoch], all(torch.equal(p.x, q.x) for p, q in zip(blocks, per_epoch))
    (True, True)
    """
    per_epoch = len(batcher)
    if per_epoch == 0:
        return
    epoch_rows = sum(batcher.epoch_sizes())
    left = steps
    while left > 0:
        epochs = min(-(-left // per_epoch), max(1, block_rows // epoch_rows))  # what is left, or a block
        rows, sizes = batcher.epochs(epochs)
        if len(sizes) > left:  # the run ends inside this block
            sizes = sizes[:left]
            rows = rows[:sum(sizes)]
        yield from epoch_batches(data, rows, sizes, cols, count)
        left -= len(sizes)

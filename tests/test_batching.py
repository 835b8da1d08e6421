"""Tests of IndexBatcher's ``tasks``: a batcher draws only for the tasks of the graph it trains."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from sharesearch.data import SAMPLINGS, IndexBatcher, MultiTaskData
from sharesearch.errors import SharesearchError
from sharesearch.names import SAMPLINGS as NAMES_SAMPLINGS
from sharesearch.tasks import TaskSpec
from sharesearch.training._epoch import epoch_batches, run_batches


def _overlapping(n=500, labelled=(0.3, 0.6, 0.1), seed=0):
    """Sparse, overlapping labels: each task labels each row independently; three splits."""
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(n, len(labelled), generator=g) < torch.tensor(labelled)  # [n, T]
    y = torch.where(keep, torch.randint(0, 2, (n, len(labelled)), generator=g).float(), float("nan"))
    split = torch.randint(0, 3, (n,), generator=g).to(torch.int8)
    tasks = [TaskSpec(name, "binary") for name in "abcde"[: len(labelled)]]
    return MultiTaskData("overlap", tasks, torch.randn(n, 4, generator=g), y, split, 0)


def _epochs(batcher, k=3):
    return [[i.tolist() for i in batcher] for _ in range(k)]


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("tasks", [["a"], [0], ["c", "a"]])
def test_batcher_over_some_tasks_equals_one_built_on_those_tasks_alone(sampling, tasks):
    d = _overlapping()
    names = [d.task_names[t] if isinstance(t, int) else t for t in tasks]
    got = IndexBatcher(d, "train", 32, sampling=sampling, generator=5, tasks=tasks)
    alone = IndexBatcher(d.subset_tasks(names), "train", 32, sampling=sampling, generator=5)
    assert got.task_names == names and got.pool_sizes == alone.pool_sizes and len(got) == len(alone)
    assert _epochs(got) == _epochs(alone)
    # rows labelled only for the other tasks are never drawn
    cols = [d.task_names.index(t) for t in names]
    drawn = torch.cat([torch.cat(list(got)) for _ in range(3)])
    assert bool((~torch.isnan(d.y[drawn][:, cols])).any(dim=1).all())
    everyone = torch.cat(list(IndexBatcher(d, "train", 32, sampling=sampling, generator=5)))
    assert bool(torch.isnan(d.y[everyone][:, cols]).all(dim=1).any())  # ... which the all-task batcher does


def test_uniform_sampling_shares_batches_among_the_chosen_tasks_only():
    d = _overlapping(n=3000, labelled=(0.5, 0.05, 0.5))
    b = IndexBatcher(d, batch_size=60, sampling="uniform", generator=0, tasks=["a", "b"])
    assert b.pool_sizes.keys() == {"a", "b"} and b.n_union < d.labelled_counts()["a"] + d.labelled_counts()["b"]
    lab = ~torch.isnan(d.y)
    for idx in list(b)[:-1]:
        # half of each batch is drawn for b's small pool; c takes no share
        assert int(lab[idx, 1].sum()) >= 30


def test_dense_and_error_cases_consider_only_the_chosen_tasks():
    d = _overlapping()
    d.y[:, 0] = 1.0  # task a now labelled everywhere
    b = IndexBatcher(d, batch_size=64, generator=0, tasks=["a"])
    assert b.dense and sorted(torch.cat(list(b)).tolist()) == d.indices("train").tolist()
    assert not IndexBatcher(d, batch_size=64, generator=0).dense
    d.y[:, 2] = float("nan")
    with pytest.raises(ValueError, match=r"no labelled rows for tasks \['c'\]"):
        IndexBatcher(d, tasks=["c"])
    for bad, match in [(["z"], "unknown task 'z'"), ([3], "unknown task 3"), ([], "non-empty"), (["a", 0], "unique")]:
        with pytest.raises(SharesearchError, match=match):
            IndexBatcher(d, tasks=bad)
    with pytest.raises(TypeError, match="sequence of names"):
        IndexBatcher(d, tasks="a")


def test_sampling_names_come_from_names_py():
    assert SAMPLINGS is NAMES_SAMPLINGS
    with pytest.raises(SharesearchError, match="unknown sampling 'rr'"):
        IndexBatcher(_overlapping(), sampling="rr")


def _walk_reference(batcher, epochs):
    """The uniform sampler's specification, written as the plain walk: batch by batch, task by task, each task
    taking its next rows and reshuffling its pool (one ``randperm``) only when a row is needed past its pass.
    Where every row is labelled for every task (``dense``) the tasks' pools are one: a plain shuffle an epoch."""
    gen = torch.Generator().manual_seed(batcher.generator.initial_seed())
    if batcher.dense:
        union = batcher._union
        sizes = batcher.epoch_sizes()
        return [[i.tolist() for i in union[torch.randperm(len(union), generator=gen)][:sum(sizes)].split(sizes)]
                for _ in range(epochs)]
    pools, K = batcher._pools, len(batcher._active)
    perm = [torch.empty(0, dtype=torch.long) for _ in pools]
    pos, rot, out = [0] * len(pools), 0, []
    for _ in range(epochs):
        batches = []
        for s in batcher.epoch_sizes():
            base, rem = divmod(s, K)
            parts = []
            for j, t in enumerate(batcher._active):
                k = base + (1 if (j - rot) % K < rem else 0)
                while k > 0:
                    if pos[t] >= len(perm[t]):
                        perm[t], pos[t] = pools[t][torch.randperm(len(pools[t]), generator=gen)], 0
                    step = min(k, len(perm[t]) - pos[t])
                    parts.append(perm[t][pos[t]:pos[t] + step])
                    pos[t], k = pos[t] + step, k - step
            rot = (rot + rem) % K
            batches.append(torch.cat(parts).tolist())
        out.append(batches)
    return out


@settings(max_examples=60, deadline=None)
@given(labelled=st.lists(st.floats(0.02, 0.9), min_size=2, max_size=5), batch=st.integers(1, 70),
       n=st.integers(20, 200), seed=st.integers(0, 2**31), drop_last=st.booleans())
@example(labelled=[0.75, 0.75], batch=1, n=20, seed=76, drop_last=False)  # every training row labelled twice: dense
def test_uniform_epochs_equal_the_walk_batch_by_batch(labelled, batch, n, seed, drop_last):
    # tiny pools (a task with one or two rows, batches larger than a pool, batches smaller than the task count)
    # need several reshuffles inside one batch, and a task with no row takes no part: the same rows, in order
    try:
        d = _overlapping(n, tuple(labelled), seed % 1000)
    except SharesearchError:  # a task without a labelled training row is not valid data
        assume(False)
    tasks = d.task_names[::-1] if len(labelled) > 2 else None  # and a batcher over tasks in another order
    b = IndexBatcher(d, "train", batch, sampling="uniform", generator=seed, drop_last=drop_last, tasks=tasks)
    assert [[i.tolist() for i in b] for _ in range(4)] == _walk_reference(b, 4)


@pytest.mark.parametrize("chunk_bytes", [1, 200, 10**9])  # one batch per gather, a few, the whole epoch
@pytest.mark.parametrize("cols", [[0, 1, 2], [2, 0]])
def test_epoch_batches_equal_gathering_batch_by_batch(chunk_bytes, cols):
    d = _overlapping(300)
    d = MultiTaskData(d.name, d.tasks, d.x, d.y, d.split, 0, weights=torch.rand(300))
    b = IndexBatcher(d, "train", 23, sampling="uniform", generator=3)
    rows, sizes = b.epoch()
    got = list(epoch_batches(d, rows, sizes, cols, count=True, chunk_bytes=chunk_bytes))
    assert [g.rows for g in got] == sizes
    for g, idx in zip(got, torch.split(rows, sizes)):
        assert torch.equal(g.x, d.x[idx]) and torch.equal(g.w, d.weights[idx])
        assert torch.equal(g.y.nan_to_num(-9.0), d.y[idx].nan_to_num(-9.0))  # NaN where a label is missing
        assert torch.equal(g.labelled, (~torch.isnan(d.y[idx][:, cols])).sum(dim=0))
    assert all(g.labelled is None for g in epoch_batches(d, rows, sizes, cols, count=False))


@pytest.mark.parametrize("chunk_bytes", [1, 200, 10**9])
def test_a_populations_batches_stack_each_members_batches(chunk_bytes):
    # rows [P, n], one member a row (each its own draw): batch k holds every member's batch k, member on dim 0
    d = _overlapping(300)
    d = MultiTaskData(d.name, d.tasks, d.x, d.y, d.split, 0, weights=torch.rand(300))
    draws = [IndexBatcher(d, "train", 23, sampling="uniform", generator=s).epoch() for s in range(3)]
    rows, sizes = torch.stack([r for r, _ in draws]), draws[0][1]
    alone = [list(epoch_batches(d, r, sizes, [2, 0], count=True)) for r, _ in draws]
    got = list(epoch_batches(d, rows, sizes, [2, 0], count=True, chunk_bytes=chunk_bytes))
    assert [g.rows for g in got] == sizes and len(got) > 3
    for k, g in enumerate(got):
        assert g.x.shape == (3, sizes[k], 4) and g.labelled.shape == (3, 2)
        for p in range(3):
            a = alone[p][k]
            assert torch.equal(g.x[p], a.x) and torch.equal(g.w[p], a.w) and torch.equal(g.labelled[p], a.labelled)
            assert torch.equal(g.y[p].nan_to_num(-9.0), a.y.nan_to_num(-9.0))


@settings(max_examples=60, deadline=None)
@given(labelled=st.lists(st.floats(0.02, 1.0), min_size=1, max_size=4), batch=st.integers(1, 70),
       n=st.integers(20, 200), seed=st.integers(0, 2**31), drop_last=st.booleans(),
       sampling=st.sampled_from(SAMPLINGS), count=st.integers(1, 5))
def test_a_block_of_epochs_equals_the_epochs_one_by_one(labelled, batch, n, seed, drop_last, sampling, count):
    # a trainer draws several epochs at once (dense, proportional, or a uniform walk that reshuffles inside the
    # block): the same rows in the same order, and the batcher goes on from the same place afterwards
    try:
        d = _overlapping(n, tuple(labelled), seed % 1000)
    except SharesearchError:
        assume(False)
    try:
        block, one = (IndexBatcher(d, "train", batch, sampling=sampling, generator=seed, drop_last=drop_last)
                      for _ in range(2))
    except ValueError:  # no training row at all
        assume(False)
    rows, sizes = block.epochs(count)
    firsts = [one.epoch() for _ in range(count)]
    assert sizes == [s for _, ss in firsts for s in ss] and sizes == block.epoch_sizes() * count
    assert torch.equal(rows, torch.cat([r for r, _ in firsts]))
    assert torch.equal(block.epoch()[0], one.epoch()[0])


def test_epochs_rejects_a_count_that_is_not_a_positive_integer():
    b = IndexBatcher(_overlapping(), "train", 16, generator=0)
    for bad in (0, -1, 1.0, True):
        with pytest.raises(ValueError, match=f"count must be a positive integer, got {bad!r}"):
            b.epochs(bad)


@pytest.mark.parametrize("block_rows", [1, 150, 10**6])  # an epoch a block, a few, all the run's
@pytest.mark.parametrize("steps", [1, 9, 10, 40])  # inside the first epoch, at its end, past it, many epochs
def test_run_batches_equal_the_batches_of_epoch_after_epoch(block_rows, steps):
    d = _overlapping(300)
    cols = [2, 0]
    block, one = (IndexBatcher(d, "train", 8, sampling="uniform", generator=7) for _ in range(2))
    per_epoch = []
    while len(per_epoch) < steps:
        per_epoch += list(epoch_batches(d, *one.epoch(), cols, count=True))
    got = list(run_batches(block, d, cols, count=True, steps=steps, block_rows=block_rows))
    assert len(block) == 9 and len(got) == steps
    for g, e in zip(got, per_epoch):
        assert g.rows == e.rows and torch.equal(g.x, e.x) and torch.equal(g.labelled, e.labelled)
        assert torch.equal(g.y.nan_to_num(-9.0), e.y.nan_to_num(-9.0))

"""Tests of IndexBatcher's ``tasks``: a batcher draws only for the tasks of the graph it trains."""

from __future__ import annotations

import pytest
import torch

from sharesearch.data import SAMPLINGS, IndexBatcher, MultiTaskData
from sharesearch.errors import SharesearchError
from sharesearch.names import SAMPLINGS as NAMES_SAMPLINGS
from sharesearch.tasks import TaskSpec


def _overlapping(n=500, labelled=(0.3, 0.6, 0.1), seed=0):
    """Sparse, overlapping labels: each task labels each row independently; three splits."""
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(n, len(labelled), generator=g) < torch.tensor(labelled)  # [n, T]
    y = torch.where(keep, torch.randint(0, 2, (n, len(labelled)), generator=g).float(), float("nan"))
    split = torch.randint(0, 3, (n,), generator=g).to(torch.int8)
    tasks = [TaskSpec(name, "binary") for name in ("a", "b", "c")]
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

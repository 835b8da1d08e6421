"""One arm's runs: per task, one test metric per run; a non-finite value is a diverged run.

A *run* is one training run of an arm with one seed. The candidate's run
``j`` trains every task in one network, so its task metrics are paired; the
baselines' run ``j`` is the independent networks trained with seed ``j``.
When every task of an arm has the same number of values, the arm is
*aligned*: value ``j`` of each task comes from run ``j``, and Δm statistics
keep each run whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SharesearchError
from ._delta import lookup

__all__ = ["Arm", "make_arm"]


@dataclass(frozen=True)
class Arm:
    """The test metrics of one arm (candidate or baselines), task by task."""

    name: str  # "candidate" or "baseline", used in messages
    values: tuple[np.ndarray, ...]  # task i -> its values over runs, as given (1-D; NaN/inf = diverged)

    @property
    def aligned(self) -> bool:
        """Whether every task has the same number of runs (run j of each task is one run)."""
        return len({v.size for v in self.values}) == 1

    def finite(self, i: int) -> np.ndarray:
        """Task ``i``'s values of the runs that did not diverge."""
        v = self.values[i]
        return v[np.isfinite(v)]

    def n_diverged(self, i: int) -> int:
        """Number of task ``i``'s runs with a non-finite metric."""
        return int(np.sum(~np.isfinite(self.values[i])))

    @property
    def whole_runs(self) -> np.ndarray:
        """Boolean mask over runs: aligned runs in which every task is finite."""
        if not self.aligned:
            raise ValueError(f"{self.name} runs are not aligned across tasks")
        return np.all(np.isfinite(np.stack(self.values, axis=1)), axis=1)

    def run_matrix(self) -> np.ndarray:
        """Values of the whole finite runs, ``[n_runs, n_tasks]`` (aligned arms only)."""
        return np.stack(self.values, axis=1)[self.whole_runs]

    @property
    def n_diverged_runs(self) -> int:
        """Runs with a diverged task (aligned), else the most diverged values of one task."""
        if self.aligned:
            return int(np.sum(~self.whole_runs))
        return max(self.n_diverged(i) for i in range(len(self.values)))


def _values(x, task: str, arm: str) -> np.ndarray:
    v = np.asarray(x, dtype=float)
    if v.ndim == 0:
        v = v.reshape(1)
    if v.ndim != 1:
        raise SharesearchError(f"task {task!r}: {arm} values must be a 1-D sequence over seeds, got shape {v.shape}")
    if v.size == 0:
        raise SharesearchError(f"task {task!r}: {arm} has no values (need at least one seed)")
    return v


def make_arm(values: Mapping[str, Sequence[float]], tasks: Sequence[str], name: str) -> Arm:
    """The :class:`Arm` of ``values`` (task -> per-run values) for ``tasks``, in that order.

    A missing task is a KeyError naming it; an empty or non-1-D list a
    :class:`SharesearchError`. NaN and ±inf are kept: they mark diverged runs.

    >>> arm = make_arm({"a": [1.0, float("nan")], "b": [2.0, 3.0]}, ["a", "b"], "candidate")
    >>> arm.aligned, arm.n_diverged(0), arm.run_matrix().tolist()
    (True, 1, [[1.0, 2.0]])
    """
    return Arm(name, tuple(_values(lookup(values, t, name), t, name) for t in tasks))

"""``synthetic-mmoe``: the synthetic multi-task recipe of Ma et al. (KDD 2018), with clusters.

Ma et al. ("Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, section 3.2) control how related two
regression tasks are through the cosine similarity ``p`` of their weight
vectors: with orthogonal unit vectors ``u1, u2`` and a scale ``c``,
``w1 = c*u1`` and ``w2 = c*(p*u1 + sqrt(1-p^2)*u2)``; inputs are
``x ~ N(0, I_d)`` and each label is

    y_t = w_t^T x + sum_{i=1..m} sin(alpha_i * w_t^T x + beta_i) + eps_t,

with the same ``alpha_i, beta_i`` for every task (they shape the non-linearity,
drawn once from N(0, 1)) and ``eps_t ~ N(0, noise^2)``.

Generalisation to ``T`` tasks with a planted cluster structure
-------------------------------------------------------------
``clusters`` partitions the task indices ``0..T-1``, e.g. ``[[0,1,2],[3,4],[5]]``
(the default: two related clusters and one unrelated task). Every weight
direction below is a distinct column of one random orthonormal basis, so
tasks in different clusters have orthogonal weights (cosine 0, independent
labels since ``x`` is isotropic Gaussian), and within a cluster every pair
of tasks has cosine exactly ``p``:

* a cluster of one task: ``w = c*u``;
* a cluster of two tasks: the paper's construction above (any ``-1 <= p <= 1``);
* a cluster of ``k >= 3`` tasks: a shared cluster direction ``u`` and one own
  direction ``v_t`` per task, ``w_t = c*(sqrt(p)*u + sqrt(1-p)*v_t)``
  (needs ``0 <= p <= 1``).

So ``d`` must be at least the number of directions: 1, 2 or ``k+1`` per
cluster (7 for the default). ``p`` may be one number or one per cluster.
The planted answer is stored in ``meta["clusters"]`` as task names.

Regression labels are standardised with train-split statistics (kept in each
TaskSpec); ``kind="binary"`` thresholds each label at its train-split median.
``labelled`` < 1 keeps only that fraction of labels per task (independently),
for sparse-label experiments. Generation is deterministic in ``seed``.

Example
-------
>>> d = make_synthetic_mmoe(n=200, seed=1)
>>> d.task_names, d.meta["clusters"]
(['t0', 't1', 't2', 't3', 't4', 't5'], [['t0', 't1', 't2'], ['t3', 't4'], ['t5']])
>>> bool((make_synthetic_mmoe(n=200, seed=1).y == d.y).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from sharesearch.data._base import MultiTaskData, make_split
from sharesearch.tasks import TaskSpec

__all__ = ["make_synthetic_mmoe", "DEFAULT_CLUSTERS", "task_weights"]

DEFAULT_CLUSTERS: list[list[int]] = [[0, 1, 2], [3, 4], [5]]


def _check_clusters(clusters: Sequence[Sequence[int]]) -> list[list[int]]:
    try:
        cl = [[int(i) for i in c] for c in clusters]
    except (TypeError, ValueError):
        raise ValueError(f"synthetic-mmoe: clusters must be a list of lists of task indices, got {clusters!r}") from None
    flat = sorted(i for c in cl for i in c)
    if any(len(c) == 0 for c in cl) or flat != list(range(len(flat))):
        raise ValueError(
            f"synthetic-mmoe: clusters must partition the task indices 0..T-1 (each once, no empty cluster), got {cl!r}"
        )
    if len(flat) < 2:
        raise ValueError(f"synthetic-mmoe: need at least 2 tasks, got clusters {cl!r}")
    return cl


def task_weights(
    d: int, clusters: Sequence[Sequence[int]], p: "float | Sequence[float]", scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Weight vectors ``[T, d]`` with cosine ``p`` within clusters and 0 across them.

    Examples
    --------
    >>> w = task_weights(8, [[0, 1, 2], [3]], 0.5, 1.0, np.random.default_rng(0))
    >>> cos = (w @ w.T) / np.outer(np.linalg.norm(w, axis=1), np.linalg.norm(w, axis=1))
    >>> (np.round(cos, 6) + 0.0).tolist()
    [[1.0, 0.5, 0.5, 0.0], [0.5, 1.0, 0.5, 0.0], [0.5, 0.5, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """
    cl = _check_clusters(clusters)
    ps = [float(p)] * len(cl) if isinstance(p, (int, float)) else [float(v) for v in p]
    if len(ps) != len(cl):
        raise ValueError(f"synthetic-mmoe: p has {len(ps)} values for {len(cl)} clusters")
    for c, pc in zip(cl, ps):
        lo = -1.0 if len(c) <= 2 else 0.0
        if not lo <= pc <= 1.0:
            raise ValueError(f"synthetic-mmoe: p={pc} must be in [{lo:g}, 1] for a cluster of {len(c)} tasks")
    need = sum(1 if len(c) == 1 else 2 if len(c) == 2 else len(c) + 1 for c in cl)
    if d < need:
        raise ValueError(f"synthetic-mmoe: d={d} is too small; clusters {cl} need d >= {need} orthogonal directions")
    basis, _ = np.linalg.qr(rng.standard_normal((d, need)))  # orthonormal columns
    basis = basis.T
    T = sum(len(c) for c in cl)
    w = np.zeros((T, d))
    k = 0
    for c, pc in zip(cl, ps):
        if len(c) == 1:
            w[c[0]] = basis[k]
            k += 1
        elif len(c) == 2:
            u1, u2 = basis[k], basis[k + 1]
            w[c[0]] = u1
            w[c[1]] = pc * u1 + math.sqrt(max(0.0, 1 - pc * pc)) * u2
            k += 2
        else:
            u = basis[k]
            for j, t in enumerate(c):
                w[t] = math.sqrt(pc) * u + math.sqrt(1 - pc) * basis[k + 1 + j]
            k += len(c) + 1
    return scale * w


def make_synthetic_mmoe(
    n: int = 4000,
    d: int = 16,
    p: "float | Sequence[float]" = 0.9,
    clusters: Sequence[Sequence[int]] | None = None,
    noise: "float | Sequence[float]" = 0.1,
    seed: int = 0,
    kind: str = "regression",
    m: int = 10,
    scale: float = 1.0,
    labelled: float = 1.0,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    split_seed: int | None = None,
) -> MultiTaskData:
    """Generate the clustered MMoE synthetic data set (see the module docstring).

    Parameters
    ----------
    n, d : int
        Rows and input dimension.
    p : float or list of float
        Within-cluster cosine similarity of the task weights (per cluster if a list).
    clusters : list of lists of int, optional
        Partition of the task indices; default ``[[0, 1, 2], [3, 4], [5]]``.
    noise : float or list of float
        Standard deviation of the label noise (per cluster if a list: a noisy
        cluster gains from pooling its tasks, a clean unrelated task loses
        from sharing a narrow trunk -- both effects can be planted at once).
    seed : int
        Seed of everything (weights, alphas/betas, inputs, noise, label masks).
    kind : {"regression", "binary"}
        Binary thresholds each label at its train-split median.
    m : int
        Number of sine terms. ``scale`` is the paper's ``c``.
    labelled : float
        Fraction of rows that keep a label, per task (1.0: dense labels).
    split, split_seed
        Split fractions and seed (``split_seed`` defaults to ``seed``).

    Returns
    -------
    MultiTaskData

    Examples
    --------
    >>> d = make_synthetic_mmoe(n=100, kind="binary", clusters=[[0, 1], [2]])
    >>> [t.kind for t in d.tasks], d.input_shape
    (['binary', 'binary', 'binary'], (16,))
    """
    cl = _check_clusters(DEFAULT_CLUSTERS if clusters is None else clusters)
    if kind not in ("regression", "binary"):
        raise ValueError(f"synthetic-mmoe: kind must be 'regression' or 'binary', got {kind!r}")
    n, d, m = int(n), int(d), int(m)
    if n < 2 or d < 1 or m < 0:
        raise ValueError(f"synthetic-mmoe: need n >= 2, d >= 1, m >= 0; got n={n}, d={d}, m={m}")
    if not (0.0 < float(labelled) <= 1.0):
        raise ValueError(f"synthetic-mmoe: labelled must be in (0, 1], got {labelled!r}")
    noises = [float(noise)] * len(cl) if isinstance(noise, (int, float)) else [float(v) for v in noise]
    if len(noises) != len(cl) or not all(v >= 0.0 for v in noises):
        raise ValueError(f"synthetic-mmoe: noise must be >= 0 (one value per cluster if a list), got {noise!r}")
    T = sum(len(c) for c in cl)
    rng = np.random.default_rng(int(seed))
    w = task_weights(d, cl, p, float(scale), rng)  # [T, d]
    alpha = rng.standard_normal(m)
    beta = rng.standard_normal(m)
    x = rng.standard_normal((n, d))
    z = x @ w.T  # [n, T]
    sigma = np.empty(T)
    for c, members in enumerate(cl):
        sigma[list(members)] = noises[c]
    y = z + np.sin(z[:, :, None] * alpha + beta).sum(axis=2) + sigma * rng.standard_normal((n, T))
    split_seed = int(seed) if split_seed is None else int(split_seed)
    split_t = make_split(n, split_seed, split)
    train = split_t.numpy() == 0
    if float(labelled) < 1.0:
        drop = rng.random((n, T)) >= float(labelled)
        for t in range(T):  # keep at least one train label per task
            if not (~drop[train, t]).any():
                drop[np.flatnonzero(train)[0], t] = False
        y[drop] = np.nan
    names = [f"t{i}" for i in range(T)]
    tasks = []
    for t in range(T):
        col = y[:, t]
        tr = col[train & ~np.isnan(col)]
        if kind == "binary":
            med = float(np.median(tr))
            y[:, t] = np.where(np.isnan(col), np.nan, (col > med).astype(float))
            tasks.append(TaskSpec(names[t], "binary", classes=("low", "high")))
        else:
            mu = float(tr.mean())
            sd = float(tr.std())
            sd = sd if sd > 0 and math.isfinite(sd) else 1.0
            y[:, t] = (col - mu) / sd
            tasks.append(TaskSpec(names[t], "regression", target_mean=mu, target_std=sd))
    ps = [float(p)] * len(cl) if isinstance(p, (int, float)) else [float(v) for v in p]
    meta = {
        "source": "synthetic-mmoe",
        "options": {
            "n": n,
            "d": d,
            "p": ps if not isinstance(p, (int, float)) else float(p),
            "clusters": cl,
            "noise": float(noise) if isinstance(noise, (int, float)) else noises,
            "seed": int(seed),
            "kind": kind,
            "m": m,
            "scale": float(scale),
            "labelled": float(labelled),
            "split": [float(f) for f in split],
            "split_seed": split_seed,
        },
        "clusters": [[names[i] for i in c] for c in cl],
        "cluster_p": ps,
        "feature_names": [f"x{i}" for i in range(d)],
    }
    return MultiTaskData(
        name="synthetic-mmoe",
        tasks=tasks,
        x=torch.from_numpy(x.astype(np.float32)),
        y=torch.from_numpy(y.astype(np.float32)),
        split=split_t,
        split_seed=split_seed,
        meta=meta,
    )

"""Inter-task affinity measured in one short training pass, and the sharing trees it proposes.

:func:`measure_affinity` trains the shared-bottom graph of a backbone for a
short budget and records, every ``every``-th step, for each ordered task pair:

* the **lookahead affinity** of TAG (Fifty et al., NeurIPS 2021)::

      Z[i->j] = 1 - L_j(theta_s - lr * g_i, theta_j) / L_j(theta_s, theta_j)

  on the same batch: how much one SGD step on task ``i``'s gradient ``g_i``
  of the shared parameters ``theta_s`` lowers task ``j``'s loss (a relative
  change, so a regression and a binary task are comparable). All ``T``
  per-task gradients come from one batched backward and all ``T`` lookahead
  losses from one vmapped forward (:func:`torch.func.functional_call`).
* the **gradient cosine** of ``g_i`` and ``g_j`` (Yu et al., NeurIPS 2020).

Missing labels: ``g_i`` comes from the rows labelled for ``i``; the pair
``(i, j)`` is scored on the rows of the batch labelled for both (a batch
without such a row does not score it), so a pair never labelled together is
NaN. :func:`affinity_trees` clusters the symmetrised affinity (scipy's
average linkage) and cuts the dendrogram into nested partitions, one per
stage: sharing trees in the order a search should try them.

Example
-------
>>> from sharesearch.data import load_data
>>> data = load_data("synthetic-mmoe", n=400, d=8, seed=0, clusters=[[0, 1], [2, 3]])
>>> bb = {"name": "mlp", "input_shape": [8], "widths": [16, 16]}
>>> aff = measure_affinity(data, bb, TrainConfig(batch_size=64, lr=3e-3), steps=20)
>>> aff.tasks, aff.steps, len(affinity_trees(aff, 2)[0])
(('t0', 't1', 't2', 't3'), 20, 2)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, vmap

from .data import IndexBatcher, MultiTaskData
from .errors import SharesearchError
from .graph import SharingGraph
from .network import compile_graph
from .tasks import task_loss
from .space import SearchSpace
from .training import TrainConfig, make_optimizer, resolve_device
from .weighting._base import _task_grads

__all__ = ["Affinity", "AFFINITY_KINDS", "AFFINITY_STEPS", "Tree", "measure_affinity", "affinity_for_space",
           "affinity_distance", "affinity_linkage", "affinity_trees", "best_group_count", "format_affinity",
           "tree_text"]

#: the affinity matrices a tree can be derived from
AFFINITY_KINDS = ("lookahead", "cosine")
#: optimizer steps of a search's affinity pass (fewer when the space's step cap is lower): on synthetic-planted
#: the signal fades once the shared network overfits (benchmarks/bench_affinity.py)
AFFINITY_STEPS = 300
#: a sharing tree: one partition per stage (stage 0 coarsest), groups of task names in task order
Tree = tuple[tuple[tuple[str, ...], ...], ...]
Matrix = tuple[tuple[float, ...], ...]


def _nan_to_none(m: Matrix) -> list[list[float | None]]:
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in m]


def _none_to_nan(m: Sequence[Sequence[float | None]]) -> Matrix:
    return tuple(tuple(float("nan") if v is None else float(v) for v in row) for row in m)


@dataclass(frozen=True)
class Affinity:
    """Inter-task affinity of one pass; rows are the source task ``i``, columns the target ``j``."""

    tasks: tuple[str, ...]  # task names, the order of rows and columns
    lookahead: Matrix  # [T][T] mean Z[i->j] (NaN: never scored); the diagonal is a task's own step
    cosine: Matrix  # [T][T] mean cosine of g_i and g_j on the shared parameters (NaN: never scored)
    counts: tuple[tuple[int, ...], ...]  # [T][T] measured steps that scored the pair
    steps: int  # optimizer steps of the pass
    every: int  # measured every this many steps
    lookahead_lr: float  # step size of the lookahead (the pass's learning rate unless given)
    seconds: float  # wall time of the pass

    def matrix(self, kind: str = "lookahead") -> np.ndarray:
        """``[T, T]`` array of ``kind`` (``"lookahead"`` or ``"cosine"``)."""
        if kind not in AFFINITY_KINDS:
            raise SharesearchError(f"affinity: unknown kind {kind!r}; valid: {', '.join(AFFINITY_KINDS)}")
        return np.array(getattr(self, kind), dtype=float).reshape(len(self.tasks), len(self.tasks))

    def symmetric(self, kind: str = "lookahead") -> np.ndarray:
        """``(A + A.T) / 2`` of :meth:`matrix` (a pair scored one way only keeps that value)."""
        a = self.matrix(kind)
        return np.where(np.isnan(a), a.T, np.where(np.isnan(a.T), a, (a + a.T) / 2))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as ``None``); :meth:`from_dict` inverts it."""
        return {"tasks": list(self.tasks), "lookahead": _nan_to_none(self.lookahead),
                "cosine": _nan_to_none(self.cosine), "counts": [list(r) for r in self.counts],
                "steps": self.steps, "every": self.every, "lookahead_lr": self.lookahead_lr, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Affinity:
        """The inverse of :meth:`to_dict`."""
        return cls(tasks=tuple(d["tasks"]), lookahead=_none_to_nan(d["lookahead"]), cosine=_none_to_nan(d["cosine"]),
                   counts=tuple(tuple(int(v) for v in r) for r in d["counts"]), steps=int(d["steps"]),
                   every=int(d["every"]), lookahead_lr=float(d["lookahead_lr"]), seconds=float(d["seconds"]))


class _Accumulator:
    """Running sums of the per-step matrices, NaN entries skipped."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.z = torch.zeros(n, n, dtype=torch.float64, device=device)  # [T, T] sum of Z
        self.c = torch.zeros(n, n, dtype=torch.float64, device=device)  # [T, T] sum of cosines
        self.n = torch.zeros(n, n, dtype=torch.float64, device=device)  # [T, T] steps scored

    def add(self, z: torch.Tensor, cos: torch.Tensor, scored: torch.Tensor) -> None:
        self.z += torch.where(scored, z, 0.0)
        self.c += torch.where(scored, cos, 0.0)
        self.n += scored

    def means(self) -> tuple[Matrix, Matrix, tuple[tuple[int, ...], ...]]:
        n = self.n.cpu()
        z, c = (torch.where(n > 0, s.cpu() / n.clamp(min=1), float("nan")).tolist() for s in (self.z, self.c))
        return (tuple(map(tuple, z)), tuple(map(tuple, c)), tuple(tuple(int(v) for v in r) for r in n.tolist()))


def measure_affinity(data: MultiTaskData, backbone: Mapping[str, Any], config: TrainConfig = TrainConfig(), *,
                     steps: int = 300, every: int = 2, lookahead_lr: float | None = None) -> Affinity:
    """Train the shared-bottom graph for ``steps`` steps and average the affinity over them.

    Parameters
    ----------
    data : the tasks and rows (the training split is used).
    backbone : backbone dict of the shared-bottom graph (e.g. ``SearchSpace.default_backbone``).
    config : learning rate, batch size, weight decay, optimizer, sampling, seed and device of the pass
        (its budget fields are ignored: the pass takes ``steps`` steps at a constant learning rate).
    steps : optimizer steps of the pass.
    every : measure at every ``every``-th step (the lookahead costs about two forward-backward passes).
    lookahead_lr : step size of the lookahead (default ``config.lr``).

    Returns
    -------
    Affinity

    >>> from sharesearch.data import load_data
    >>> d = load_data("synthetic-mmoe", n=200, d=4, seed=1, clusters=[[0], [1]])
    >>> a = measure_affinity(d, {"name": "mlp", "input_shape": [4], "widths": [8]}, steps=4, every=1)
    >>> a.counts
    ((4, 4), (4, 4))
    """
    if steps < 1 or every < 1:
        raise SharesearchError(f"affinity: steps and every must be >= 1, got steps={steps}, every={every}")
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    data = data.to(device)
    names = list(data.task_names)
    graph = SharingGraph.shared_bottom(data.tasks, dict(backbone))
    torch.manual_seed(config.seed)
    net = compile_graph(graph, seed=config.seed).to(device)
    shared_ids = {id(p) for p in net.shared_parameters()}
    shared = {k: p for k, p in net.named_parameters() if id(p) in shared_ids}
    opt = make_optimizer(config, list(net.parameters()))
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    batcher = IndexBatcher(data, "train", config.batch_size, sampling=config.sampling, generator=gen, tasks=names)
    lr = config.lr if lookahead_lr is None else float(lookahead_lr)
    acc = _Accumulator(len(names), device)
    step = 0
    while step < steps:
        for idx in batcher:
            xb, yb = data.x[idx], data.y[idx]  # [B, *input_shape], [B, T]
            wb = None if data.weights is None else data.weights[idx]  # [B] sample weights, as in training
            out = net(xb, tasks=names)
            losses = torch.stack([task_loss(s, out[s.name], yb[:, c], weights=wb)
                                  for c, s in enumerate(data.tasks)])  # [T]
            if step % every == 0:
                acc.add(*_measure(net, shared, data, xb, yb, losses, lr, wb))
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    z, cos, counts = acc.means()
    return Affinity(tasks=tuple(names), lookahead=z, cosine=cos, counts=counts, steps=steps, every=every,
                    lookahead_lr=lr, seconds=time.perf_counter() - t0)


def _measure(net: torch.nn.Module, shared: Mapping[str, torch.nn.Parameter], data: MultiTaskData,
             xb: torch.Tensor, yb: torch.Tensor, losses: torch.Tensor, lr: float,
             wb: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step's lookahead ``Z``, cosines and the pairs it scored (each ``[T, T]``, rows = source).

    ``wb`` ([B] or None): the batch's sample weights; the lookahead losses are weighted means as in training.
    """
    labelled = ~torch.isnan(yb)  # [B, T]
    present = labelled.any(dim=0)  # [T]
    grads = _task_grads(losses, list(shared.values()), mask=present)  # each [T, *p.shape]
    flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1).double()  # [T, P]
    unit = flat / flat.norm(dim=1, keepdim=True).clamp(min=1e-30)  # [T, P]
    cos = unit @ unit.T  # [T, T]
    # row 0: the current shared weights; row 1 + i: after one SGD step on task i's gradient
    stacked = {k: torch.cat([p.detach()[None], p.detach()[None] - lr * g.detach()])  # [T + 1, *p.shape]
               for (k, p), g in zip(shared.items(), grads)}
    was_training = net.training
    net.eval()  # the same (deterministic) forward for the current and the stepped weights
    with torch.no_grad():
        outs = vmap(lambda p: functional_call(net, p, (xb,), strict=False))(stacked)  # task -> [T + 1, B, out]
    net.train(was_training)
    both = labelled[:, :, None] & labelled[:, None, :]  # [B, T_i, T_j] rows labelled for i and j
    z = torch.full_like(cos, float("nan"))  # [T, T]
    for j, spec in enumerate(data.tasks):
        # y_j masked to the rows co-labelled with each source i: [T_i, B]
        y = torch.where(both[:, :, j].T, yb[:, j][None, :], float("nan"))  # [T_i, B]
        o = outs[spec.name]  # [T + 1, B, out]
        before = vmap(lambda oo, yy: task_loss(spec, oo, yy, weights=wb))(o[0].expand(len(y), *o.shape[1:]), y)  # [T_i]
        after = vmap(lambda oo, yy: task_loss(spec, oo, yy, weights=wb))(o[1:], y)  # [T_i]
        z[:, j] = (1.0 - after.double() / before.double().clamp(min=1e-12))
    scored = both.any(dim=0) & present[:, None] & present[None, :]  # [T, T]
    return torch.nan_to_num(z), torch.nan_to_num(cos), scored


# ------------------------------------------------------------------ trees
def affinity_distance(affinity: Affinity, kind: str = "cosine") -> np.ndarray:
    """``[T, T]`` distances between tasks: the largest off-diagonal affinity minus each pair's.

    The affinity is symmetrised; ``"lookahead"`` is first scaled to
    ``Z[i->j] / sqrt(Z[i->i] Z[j->j])`` (a task whose steps move every loss a
    lot would otherwise look close to everything). A pair never scored counts
    as the least affine.

    >>> a = Affinity(("a", "b", "c"), ((1, 0, 0),) * 3, ((1, .5, 0), (.5, 1, .1), (0, .1, 1)),
    ...              ((1, 1, 1),) * 3, 1, 1, 0.1, 0.0)
    >>> affinity_distance(a).round(2).tolist()
    [[0.0, 0.0, 0.5], [0.0, 0.0, 0.4], [0.5, 0.4, 0.0]]
    """
    s = affinity.symmetric(kind)
    if kind == "lookahead":
        own = np.diag(s).copy()
        own[~(own > 0)] = np.nan  # [T]
        s = s / np.sqrt(np.outer(own, own))
    off = ~np.eye(len(s), dtype=bool)
    vals = s[off & np.isfinite(s)]
    if vals.size == 0:
        return np.where(off, 1.0, 0.0)
    s = np.where(np.isfinite(s), s, vals.min())
    return np.where(off, vals.max() - s, 0.0)


def affinity_linkage(affinity: Affinity, kind: str = "cosine") -> np.ndarray:
    """scipy's average-linkage matrix of :func:`affinity_distance` (``[T - 1, 4]``; needs T >= 2)."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    return linkage(squareform(affinity_distance(affinity, kind), checks=False), method="average")


def _cut(affinity: Affinity, z: np.ndarray, k: int) -> tuple[tuple[str, ...], ...]:
    """The dendrogram's partition into ``k`` groups, groups in task order."""
    from scipy.cluster.hierarchy import cut_tree

    labels = cut_tree(z, n_clusters=k)[:, 0]
    groups: dict[int, list[str]] = {}
    for t, lab in zip(affinity.tasks, labels):
        groups.setdefault(int(lab), []).append(t)
    return tuple(tuple(g) for g in groups.values())


def best_group_count(affinity: Affinity, kind: str = "cosine") -> list[int]:
    """Group counts ``2..T-1``, the cut with the largest gap between merge heights first.

    >>> a = Affinity(("a", "b", "c", "d"), ((1,) * 4,) * 4,
    ...              ((1, .9, 0, 0), (.9, 1, 0, 0), (0, 0, 1, .8), (0, 0, .8, 1)), ((1,) * 4,) * 4, 1, 1, .1, 0.)
    >>> best_group_count(a)
    [2, 3]
    """
    n = len(affinity.tasks)
    if n < 3:
        return []
    h = affinity_linkage(affinity, kind)[:, 2]  # [T - 1] merge heights, ascending
    gap = {k: h[n - k] - h[n - k - 1] for k in range(2, n)}  # k groups undo the top k - 1 merges
    return sorted(gap, key=lambda k: (-gap[k], k))


def affinity_trees(affinity: Affinity, n_stages: int, *, kind: str = "cosine", max_trees: int = 4) -> list[Tree]:
    """Sharing trees proposed by the affinity's dendrogram, the most promising first.

    Every cut of the dendrogram into ``k`` groups (``2 <= k < T``, in
    :func:`best_group_count` order) gives a tree with those groups at every
    stage; then, per cut in the same order, the tree with a shared first stage
    before the groups and the one with a task-specific last stage after them.
    Partitions are cuts of one dendrogram, so each tree is nested. The
    cosine is the default ``kind``: on ``synthetic-planted`` it recovered the
    planted clusters more often than the lookahead (``benchmarks/bench_affinity.py``).

    >>> a = Affinity(("a", "b", "c", "d"), ((1,) * 4,) * 4,
    ...              ((1, .9, 0, 0), (.9, 1, 0, 0), (0, 0, 1, .8), (0, 0, .8, 1)), ((1,) * 4,) * 4, 1, 1, .1, 0.)
    >>> [tree_text(t) for t in affinity_trees(a, 2)]
    ['a,b|c,d > a,b|c,d', 'a,b|c|d > a,b|c|d', 'a,b,c,d > a,b|c,d', 'a,b|c,d > a|b|c|d']
    """
    if n_stages < 1:
        raise SharesearchError(f"affinity_trees: n_stages must be >= 1, got {n_stages}")
    ks = best_group_count(affinity, kind)
    if not ks:
        return []
    z = affinity_linkage(affinity, kind)
    one, alone = (tuple(affinity.tasks),), tuple((t,) for t in affinity.tasks)
    parts = [_cut(affinity, z, k) for k in ks]
    out: list[Tree] = [(part,) * n_stages for part in parts]
    if n_stages >= 2:
        for part in parts:
            out += [(one,) + (part,) * (n_stages - 1), (part,) * (n_stages - 1) + (alone,)]
    return out[:max_trees]


def affinity_for_space(data: MultiTaskData, space: SearchSpace, config: TrainConfig | None = None, *,
                       steps: int | None = None, max_trees: int = 4) -> tuple[Affinity, list[Tree]]:
    """The affinity on ``space``'s default backbone and the trees for its default stage count.

    ``config`` defaults to the space's default lr, weight decay and batch
    size (a search passes the baselines' tuned ones); ``steps`` to
    :data:`AFFINITY_STEPS`, at most the space's ``max_steps``.

    >>> from sharesearch.data import load_data
    >>> from sharesearch.space import load_space
    >>> d = load_data("synthetic-mmoe", n=300, d=8, seed=0, clusters=[[0, 1], [2]])
    >>> aff, trees = affinity_for_space(d, load_space("tiny"), steps=10)
    >>> aff.steps, len(trees[0])
    (10, 2)
    """
    if config is None:
        f = space.fields
        config = TrainConfig(**{k: f[f"train.{k}"].default for k in ("lr", "weight_decay", "batch_size")
                                if f"train.{k}" in f})
    cap = space.fields.get("train.max_steps")
    if steps is None:
        steps = min(AFFINITY_STEPS, int(cap.value)) if cap is not None and cap.mode == "fixed" else AFFINITY_STEPS
    aff = measure_affinity(data, space.default_backbone(data.input_shape), config, steps=steps)
    return aff, affinity_trees(aff, int(space.fields["backbone.stages"].default), max_trees=max_trees)


# ------------------------------------------------------------------- text
def tree_text(tree: Tree) -> str:
    """One line: each stage's groups (``a,b|c``), stages joined by ``" > "``.

    >>> tree_text(((("a", "b", "c"),), (("a", "b"), ("c",))))
    'a,b,c > a,b|c'
    """
    return " > ".join("|".join(",".join(g) for g in part) for part in tree)


def format_affinity(affinity: Affinity, trees: Sequence[Tree] = ()) -> str:
    """The two matrices and the proposed trees as plain text (what ``sharesearch affinity`` prints).

    >>> a = Affinity(("a", "b"), ((0.01, float("nan")), (0.002, 0.02)), ((1, .5), (.5, 1)), ((3, 0), (3, 3)),
    ...              3, 1, 0.001, 0.5)
    >>> print(format_affinity(a, [((("a", "b"),),)]).splitlines()[3])
    a         +10.0        —
    """
    w = max(6, *(len(t) for t in affinity.tasks))
    head = " " * w + "".join(f" {t:>8}" for t in affinity.tasks)

    def table(m: Matrix, scale: float) -> list[str]:
        return [f"{t:<{w}}" + "".join(f" {v * scale:>+8.1f}" if math.isfinite(v) else f" {'—':>8}" for v in row)
                for t, row in zip(affinity.tasks, m)]

    lines = [f"inter-task affinity: {affinity.steps} steps of the shared-bottom network, measured every "
             f"{affinity.every}, {affinity.seconds:.1f} s",
             "lookahead Z[row -> column] x 1000 (relative loss drop of the column task after a step on the row task):",
             head, *table(affinity.lookahead, 1e3),
             "gradient cosine on the shared parameters x 100:", head, *table(affinity.cosine, 1e2)]
    if trees:
        lines.append("proposed sharing trees (stage 0 first):")
        lines += [f"  {i + 1}. {tree_text(t)}" for i, t in enumerate(trees)]
    return "\n".join(lines)

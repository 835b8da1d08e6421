"""Few-shot training of one task: its k rows, a warm-started network with a frozen trunk, one fitting loop.

* :func:`k_rows` -- a seeded sample of k labelled *training* rows of a task
  (never a validation or test row); :func:`few_shot_view` -- the data of that
  task alone where only those training rows keep their label.
* :func:`warm_network` -- the network of :func:`~sharesearch.transfer._graph.with_task`'s
  graph, every node of the trained reduced network copied in (node by node,
  by id; an MoE node gains a fresh gate for the new task, a cross-stitch
  unit a fresh row and column); the parameters to train: in ``"frozen"`` mode
  only what no other task uses (the new task's own blocks, its MoE gates, its
  head), in ``"finetune"`` mode its whole path. When a conditioned block is on
  the task's path, the task descriptors become a parameter whose gradient
  reaches only the new task's row: the new task's descriptor is learned from
  its k rows while the trunk stays frozen.
* :func:`fit` -- the one loop every few-shot arm is trained with (transfer
  and scratch alike): Adam, ``steps`` steps, batches of the k rows, the best
  validation step kept, for each learning rate of the grid; the learning
  rate with the best validation metric is reported on the test rows.

Example
-------
>>> from sharesearch.data import load_data
>>> d = load_data("synthetic-mmoe", n=300, d=8, seed=0)
>>> rows = k_rows(d, "t0", 10, seed=1)
>>> len(rows), bool((d.split[rows] == 0).all()), bool((k_rows(d, "t0", 10, seed=1) == rows).all())
(10, True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..data import MultiTaskData
from ..errors import SharesearchError
from ..graph import SharingGraph
from ..network import MultiTaskNet, compile_graph
from ..tasks import sign, task_loss
from ..training import evaluate
from ._records import TransferConfig

__all__ = ["k_rows", "few_shot_view", "WarmNet", "warm_network", "fit", "Fit", "scratch_maker"]


def k_rows(data: MultiTaskData, task: str, k: int | None, seed: int) -> torch.Tensor:
    """``k`` labelled training rows of ``task`` drawn with ``seed`` (sorted; all of them when ``k`` is None or larger).

    Raises :class:`~sharesearch.errors.SharesearchError` for ``k`` < 1 or an unknown task.
    """
    if task not in data.task_names:
        raise SharesearchError(f"transfer: unknown task {task!r}; tasks: {data.task_names}")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise SharesearchError(f"transfer: parameter 'ks' must hold integers >= 1 or None, got {k!r}")
    col = data.task_names.index(task)
    train = data.indices("train").cpu()
    pool = train[~torch.isnan(data.y[train.to(data.device), col].cpu())]  # labelled training rows
    if k is None or k >= len(pool):
        return pool
    pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(int(seed)))[:k]
    return pool[pick].sort().values


def few_shot_view(data: MultiTaskData, task: str, rows: torch.Tensor) -> MultiTaskData:
    """``task`` alone, its training labels kept on ``rows`` only (validation and test rows untouched)."""
    view = data.subset_tasks([task])
    y = view.y.clone()  # [N, 1]
    keep = torch.zeros(view.n, dtype=torch.bool, device=y.device)
    keep[rows.to(y.device)] = True
    y[(view.split == 0) & ~keep, 0] = float("nan")
    view.y = y
    return view


@dataclass
class WarmNet:
    """A network with the new task and the parameters one few-shot mode trains."""

    net: MultiTaskNet  # the compiled graph with the new task, the trunk's weights copied in
    params: list[nn.Parameter]  # what this mode trains
    descriptor: bool  # the new task's descriptor (a row of net.z) is among params


def _copy_stitches(src: MultiTaskNet, dst: MultiTaskNet, task: str) -> None:
    """Each unit's mixing matrix into the unit of the same stage that has the same tasks, or those plus ``task``."""
    by_name = dict(zip(src.stitch_names, src.stitches))
    for name, unit in zip(dst.stitch_names, dst.stitches):
        stage, _, tasks = name.partition(":")
        old = by_name.get(name) or by_name.get(f"{stage}:" + "+".join(t for t in tasks.split("+") if t != task))
        if old is not None:
            n = old.alpha.shape[0]  # the new task, last in task order, is the last row and column
            with torch.no_grad():
                unit.alpha[:n, :n].copy_(old.alpha)


def warm_network(graph: SharingGraph, trunk: MultiTaskNet, task: str, mode: str, seed: int) -> WarmNet:
    """Compile ``graph`` (the reduced graph plus ``task``), copy ``trunk``'s weights in, choose what ``mode`` trains."""
    net = compile_graph(graph, seed=seed).to(trunk.z.device)
    with torch.no_grad():
        for i, nid in enumerate(net.node_ids):
            if nid in trunk._mod:
                net.nodes[i].load_state_dict(trunk.nodes[trunk._mod[nid]].state_dict(), strict=False)
        for j, t in enumerate(trunk.tasks):
            net.heads[j].load_state_dict(trunk.heads[j].state_dict())
    _copy_stitches(trunk, net, task)
    own = net.task_parameters(task)
    others = {id(p) for t in net.tasks if t != task for p in net.task_parameters(t)}
    params = own if mode == "finetune" else [p for p in own if id(p) not in others]
    conditioned = any(d["kind"] == "block" and d.get("conditioning", "none") != "none" and task in d["tasks"]
                      for _, d in graph.g.nodes(data=True))
    if conditioned:
        z = nn.Parameter(net.z.detach().clone())  # [T, z_dim]
        del net._buffers["z"]
        net.z = z
        mask = torch.zeros_like(z)
        mask[net.tasks.index(task)] = 1.0
        z.register_hook(lambda g: g * mask)  # only the new task's descriptor learns
        params = params + [z]
    return WarmNet(net, params, conditioned)


@dataclass(frozen=True)
class Fit:
    """What :func:`fit` kept: the best learning rate's validation and test metric."""

    val: float  # primary validation metric at the best step of the best learning rate
    test: float  # primary test metric of those weights
    lr: float  # the learning rate chosen on validation
    step: int  # the step of its best validation metric


def _fit_once(make, view: MultiTaskData, task: str, lr: float, config: TransferConfig, seed: int):
    """One learning rate: train ``make()``'s (net, params), return (best val, test at best val, best step)."""
    net, params = make()
    spec = view.tasks[0]
    direction = sign(spec.primary_metric)
    rows = torch.nonzero((view.split == 0) & ~torch.isnan(view.y[:, 0])).flatten()
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    batch = min(config.batch_size, len(rows))
    best, best_step, state = None, 0, None
    for step in range(1, config.steps + 1):
        net.train()
        idx = rows[torch.randperm(len(rows), generator=gen)[:batch].to(rows.device)]
        out = net(view.x[idx], tasks=(task,))[task]  # [B, out_dim]
        loss = task_loss(spec, out, view.y[idx, 0], dense=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            v = evaluate(net, view, "val")[task][spec.primary_metric]
            if math.isfinite(v) and (best is None or direction * (v - best) > 0):
                best, best_step = v, step
                state = [p.detach().clone() for p in params]
    if state is None:
        return math.nan, math.nan, 0
    with torch.no_grad():
        for p, s in zip(params, state):
            p.copy_(s)
    return best, evaluate(net, view, "test")[task][spec.primary_metric], best_step


def fit(make, view: MultiTaskData, task: str, config: TransferConfig, seed: int) -> Fit:
    """Train ``make()`` -> ``(net, params)`` once per learning rate of ``config.lr_grid``; keep the best on validation.

    ``make`` builds a fresh network for each learning rate (so each starts
    from the same weights); ``seed`` fixes the batch order.
    """
    direction = sign(view.tasks[0].primary_metric)
    best: Fit | None = None
    for lr in config.lr_grid:
        torch.manual_seed(int(seed))  # dropout
        val, test, step = _fit_once(make, view, task, float(lr), config, seed)
        if math.isfinite(val) and (best is None or direction * (val - best.val) > 0):
            best = Fit(val, test, float(lr), step)
    return best or Fit(math.nan, math.nan, math.nan, 0)


def scratch_maker(task: str, out_dim: int, backbone: dict, seed: int, device: torch.device):
    """A ``make`` for :func:`fit`: the single-task network of ``task`` from scratch, all of it trained."""
    graph = SharingGraph.independent({task: out_dim}, backbone)

    def make():
        net = compile_graph(graph, seed=seed).to(device)
        return net, list(net.parameters())

    return make

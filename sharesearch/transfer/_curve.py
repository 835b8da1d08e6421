"""Leave-one-task-out transfer curves, and a new task on a trained trunk.

:func:`transfer_curve` holds one task out of a topology: the graph without it
(:func:`~sharesearch.transfer._graph.drop_task`) is trained on the remaining
tasks with the study's training configuration, one trunk per seed (its
weights at the best mean direction-signed primary validation metric of the
remaining tasks, ``train(joint_score=...)``); the held-out task then joins
the node the attach rule picks and is trained on k of its labelled training
rows, frozen and/or fine-tuned, against a single-task network trained from
scratch on the same rows by the same loop (:func:`~sharesearch.transfer._fewshot.fit`:
same learning-rate grid, same steps, same seed). :func:`new_task_curve` is
the same with a task the topology never had: the trunk is the whole topology,
trained once per seed on its own tasks.

Example
-------
>>> from sharesearch.data import load_data
>>> from sharesearch.training import TrainConfig
>>> d = load_data("synthetic-mmoe", n=300, d=8, seed=0, clusters=[[0, 1], [2]])
>>> g = SharingGraph.shared_bottom(d.tasks, {"name": "mlp", "input_shape": [8], "widths": [8, 8]})
>>> r = transfer_curve(g, d, "t1", ks=(10,), seeds=(0, 1), train_config=TrainConfig(max_steps=20, batch_size=64),
...                    config=TransferConfig(steps=10, eval_every=5, lr_grid=(1e-2,)))
>>> [(p.k, p.mode, len(p.transfer)) for p in r.points], r.curves[0].attach_rule
([(10, 'frozen', 2), (10, 'finetune', 2)], 'topology')
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import torch

from ..data import MultiTaskData
from ..errors import SharesearchError
from ..graph import SharingGraph
from ..network import MultiTaskNet
from ..tasks import metric_direction, sign
from ..training import TrainConfig, resolve_device, train
from ._fewshot import few_shot_view, fit, k_rows, scratch_maker, warm_network
from ._graph import AttachPoint, attach_point, drop_task, with_task
from ._records import MODES, TransferConfig, TransferCurve, TransferPoint, TransferResult, with_holm

__all__ = ["DEFAULT_KS", "transfer_curve", "new_task_curve", "train_trunk"]

#: the ladder of labelled rows (None: every labelled training row)
DEFAULT_KS: tuple[int | None, ...] = (10, 30, 100, 300, None)

#: (task, k, seed) -> the scratch arm's test metric: the control depends on none of the topologies
ScratchCache = dict[tuple[str, "int | None", int], float]


def train_trunk(graph: SharingGraph, data: MultiTaskData, config: TrainConfig) -> tuple[MultiTaskNet, dict[str, float]]:
    """Train ``graph`` on its tasks of ``data``; the network at its best joint validation score, and its metrics.

    The joint score is the mean over the graph's tasks of the direction-signed
    primary validation metric (one consistent set of shared weights).
    """
    specs = [s for s in data.tasks if s.name in graph.tasks]
    signs = {s.name: sign(s.primary_metric) for s in specs}
    res = train(graph, data, config, joint_score=lambda m: sum(signs[t] * v for t, v in m.items()) / len(m))
    if res.status != "ok" or res.model is None:
        raise RuntimeError(f"transfer: training the trunk {graph.key()} diverged (seed {config.seed}): {res.message}")
    if res.joint_state:
        res.model.load_state_dict(res.joint_state)
    return res.model, {s.name: res.val_metrics[s.name][s.primary_metric] for s in specs}


def _check(ks: Sequence[int | None], seeds: Sequence[int], modes: Sequence[str]) -> None:
    if not ks:
        raise SharesearchError("transfer: parameter 'ks' is empty")
    if len(seeds) < 2:
        raise SharesearchError(f"transfer: parameter 'seeds' needs at least 2 seeds for an interval, got {list(seeds)}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise SharesearchError(f"transfer: parameter 'mode' must list some of {list(MODES)}, got {list(modes)}")


def _run(reduced: SharingGraph, data: MultiTaskData, task: str, attach_of, *, topology: str, graph_key: str,
         ks, seeds, train_config: TrainConfig, modes, config: TransferConfig, cache: ScratchCache | None
         ) -> TransferResult:
    """The trunks of ``reduced`` (one per seed), then every (k, seed, mode) for ``task`` beside its scratch arm."""
    t0 = time.perf_counter()
    device = resolve_device(train_config.device)
    data = data.to(device)
    spec = data.tasks[data.task_names.index(task)]
    out_dim = spec.out_dim
    attach: AttachPoint = attach_of(reduced)
    graph = with_task(reduced, task, out_dim, attach)
    cache = {} if cache is None else cache
    trunks, trunk_val = {}, {t: 0.0 for t in reduced.tasks}
    for s in seeds:
        trunks[s], val = train_trunk(reduced, data, train_config.updated(seed=s))
        for t, v in val.items():
            trunk_val[t] += v / len(seeds)
    arms: dict[tuple[int | None, str], list[float]] = {}
    n_rows: dict[int | None, int] = {}
    descriptor = False
    for k in ks:
        for s in seeds:
            rows = k_rows(data, task, k, s)
            n_rows[k] = len(rows)
            view = few_shot_view(data, task, rows)
            if (task, k, s) not in cache:
                make = scratch_maker(task, out_dim, reduced.g.graph["backbone"], s, device)
                cache[(task, k, s)] = fit(make, view, task, config, s).test
            arms.setdefault((k, "scratch"), []).append(cache[(task, k, s)])
            for mode in modes:
                def make(mode=mode, s=s):
                    w = warm_network(graph, trunks[s], task, mode, s)
                    return w.net, w.params
                arms.setdefault((k, mode), []).append(fit(make, view, task, config, s).test)
        descriptor = warm_network(graph, trunks[seeds[0]], task, modes[0], seeds[0]).descriptor
    direction = metric_direction(spec.primary_metric)
    points = [TransferPoint.of(topology, task, k, n_rows[k], mode, spec.primary_metric, direction,
                               arms[(k, mode)], arms[(k, "scratch")], config.confidence)
              for k in ks for mode in modes]
    curve = TransferCurve(topology, task, graph_key, attach.node, attach.stage, attach.rule, descriptor,
                          trunk_val, time.perf_counter() - t0)
    return TransferResult((curve,), with_holm(points), tuple(seeds), config)


def transfer_curve(graph: SharingGraph, data: MultiTaskData, held_out: str,
                   ks: Sequence[int | None] = DEFAULT_KS, *, seeds: Sequence[int] = (0, 1, 2),
                   train_config: TrainConfig = TrainConfig(), mode: Sequence[str] = MODES,
                   config: TransferConfig = TransferConfig(), closeness: Mapping[str, float] | None = None,
                   topology: str = "topology", cache: ScratchCache | None = None) -> TransferResult:
    """Hold ``held_out`` out of ``graph``, train the rest, and measure the gain of its trunk at each k.

    Parameters
    ----------
    graph : the topology (it must serve ``held_out``).
    data : the data of every task of ``graph``.
    held_out : the task to hold out.
    ks : labelled training rows of the held-out task (None: all of them).
    seeds : the paired seeds (at least 2): trunk, k rows, initialisation and batch order.
    train_config : how the trunk is trained (the study's configuration).
    mode : ``"frozen"`` and/or ``"finetune"``.
    config : the few-shot protocol (:class:`TransferConfig`), equal for both arms.
    closeness : the held-out task's closeness to the others (e.g. an affinity row);
        without it the task joins where ``graph`` put it (:mod:`sharesearch.transfer._graph`).
    topology : the name the points carry.
    cache : scratch-arm results shared between calls (the control does not depend on the topology).

    Returns
    -------
    TransferResult
    """
    if held_out not in graph.tasks:
        raise SharesearchError(f"transfer: parameter 'held_out' {held_out!r} is not a task of the graph {list(graph.tasks)}")
    _check(ks, seeds, mode)
    reduced = drop_task(graph, held_out)
    return _run(reduced, data, held_out, lambda r: attach_point(r, closeness, full=graph, task=held_out),
                topology=topology, graph_key=graph.key(), ks=tuple(ks), seeds=tuple(seeds),
                train_config=train_config, modes=tuple(mode), config=config, cache=cache)


def new_task_curve(graph: SharingGraph, data: MultiTaskData, task: str, ks: Sequence[int | None] = DEFAULT_KS, *,
                   seeds: Sequence[int] = (0, 1, 2), train_config: TrainConfig = TrainConfig(),
                   mode: Sequence[str] = MODES, config: TransferConfig = TransferConfig(),
                   closeness: Mapping[str, float] | None = None, topology: str = "topology",
                   cache: ScratchCache | None = None) -> TransferResult:
    """A task ``graph`` never had (a column of ``data``): the trunk is ``graph`` on its own tasks.

    The task joins by ``closeness`` when given, else at the trunk root; see
    :func:`transfer_curve` for the parameters.
    """
    if task in graph.tasks:
        raise SharesearchError(f"transfer: new task {task!r} is already a task of the graph")
    _check(ks, seeds, mode)
    return _run(graph, data, task, lambda r: attach_point(r, closeness), topology=topology, graph_key=graph.key(),
                ks=tuple(ks), seeds=tuple(seeds), train_config=train_config, modes=tuple(mode), config=config,
                cache=cache)

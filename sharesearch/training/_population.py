"""Train a population: P seeds or configurations of one sharing graph as one stacked network.

A verdict trains every arm with ten or more seeds, and a baseline is tuned
over learning rates and weight decays of one network. Small networks leave a
CPU or GPU mostly idle, so :func:`train_population` compiles the ``P``
members (one :func:`~sharesearch.network.compile_graph` each, with the
member's own seed, so each starts where its separate run starts), stacks
their weights into tensors ``[P, *shape]`` (:func:`torch.func.stack_module_state`)
and runs the network once per step under :func:`torch.func.vmap`: the member
axis is one more batch dimension of every matmul and convolution. The task
losses take it as a leading axis, outside ``vmap`` (:class:`~sharesearch.tasks.TaskLosses`), and so do
an evaluation's validation losses and metrics (:func:`~sharesearch.tasks.metric_values`).
One backward and one :class:`~sharesearch.training._member_optim.MemberOptimizer`
step update every member; the optimizer holds every weight in one buffer.

Each member keeps everything a separate run has: its own batches (a batcher
seeded by its seed), learning rate and schedule, weight decay, per-task model
selection, early stopping, divergence and callback. A member that stops
(patience, divergence, or its callback raising -- e.g. ``optuna.TrialPruned``)
leaves the population: its slice is removed from the stacked weights and the
optimizer state, so the rest runs at the smaller size. Member *i*'s result
equals a separate :func:`~sharesearch.training.train` run with ``configs[i]``
up to float rounding (``tests/test_population.py`` checks it): a batched
matmul sums in another order than a single one (gradients differ by ~1e-8
after one step), and a long run carries that on like any change of kernel --
over 1,500 steps of the planted set the validation metrics of 3 members
differed from their separate runs by at most 0.06% (relative), and one
member's early stop fell one patience window later.

Which configurations can share a population
-------------------------------------------
Members may differ in ``seed``, ``lr``, ``weight_decay``, the schedule
(``lr_schedule``, ``warmup_steps``, ``plateau_patience``) and early stopping
(``patience``, ``min_delta``); every other field (batch size, budget,
evaluation cadence, sampling, device, optimizer family, weighting and its
options) must be equal, and the weighting's step must be one the population
can take for every member at once: the gradient of a weighted sum of the
losses with constants between epoch ends
(:meth:`~sharesearch.weighting.LossWeighting.coefficients`: equal weighting,
DWA, each member with its own DWA weights), of an objective of learned
per-task values (:meth:`~sharesearch.weighting.LossWeighting.stacked_objective`:
uncertainty weighting, each member's ``s_t`` stacked and stepped with its
weights), or a combination of the per-task gradients read from their inner
products (:meth:`~sharesearch.weighting.LossWeighting.gram_combination`:
PCGrad, every member's per-task gradients from one batched backward, each
member projecting them in its own task orders; ``_gram_step.py``), or learned
weights balanced from per-task gradient norms
(:meth:`~sharesearch.weighting.LossWeighting.stacked_balancer`: GradNorm,
every member's logits stacked and stepped with its weights, each member with
its own ``L_t(0)``). A weighting registered from outside that offers none of
these trains one run at a time.
:func:`train_population` groups the configurations itself and trains the rest
one by one, so a caller can always hand it everything. Dropout (MMoE's expert
dropout) draws differently from a separate run.

Example
-------
>>> from sharesearch.data import load_data
>>> from sharesearch.graph import SharingGraph
>>> data = load_data("synthetic-mmoe", n=300, d=8, seed=0)
>>> g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": [8], "widths": [16]})
>>> cfgs = [TrainConfig(max_steps=12, eval_every=4, batch_size=64, seed=s) for s in range(3)]
>>> [(r.status, r.steps_run, r.config.seed) for r in train_population(g, data, cfgs)]
[('ok', 12, 0), ('ok', 12, 1), ('ok', 12, 2)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..data import IndexBatcher, MultiTaskData
from ..graph import SharingGraph
from ..network import MultiTaskNet, compile_graph
from ..tasks import TaskLosses
from ..weighting import LossWeighting, make_weighting
from ._config import ConfigError, TrainConfig
from ._epoch import BLOCK_ROWS, epoch_batches
from ._gram_step import gram_step
from ._loop import (Progress, TrainResult, _autocast, _Scores, _Selection, _task_batcher, resolve_device,
                    train)
from ._losses import LossWindow, split_losses
from ._member_optim import MemberOptimizer
from ._schedule import LrSchedule

__all__ = ["train_population", "population_groups", "population_size", "MEMBER_FIELDS"]

#: TrainConfig fields in which the members of one population may differ
MEMBER_FIELDS = ("seed", "lr", "weight_decay", "lr_schedule", "warmup_steps", "plateau_patience", "patience",
                 "min_delta")
#: callback(epoch, primary validation metrics, progress) of one member; raising stops that member
MemberCallback = Callable[[int, dict, Progress], None]


def _weighting(cfg: TrainConfig, names: Sequence[str], priorities: dict[str, float] | None = None) -> LossWeighting:
    """The weighting ``train`` builds for ``cfg``."""
    return make_weighting(cfg.weighting, names, priorities, seed=cfg.seed, **dict(cfg.weighting_options))


def _population_key(cfg: TrainConfig) -> tuple:
    """What members of one population must share; ``(None, id)`` when ``cfg`` trains alone."""
    probe = _weighting(cfg, ["t"])
    if (probe.coefficients() is None and probe.stacked_objective() is None and probe.gram_combination() is None
            and probe.stacked_balancer([probe]) is None):
        return (None, id(cfg))  # a method the population cannot take for every member at once
    d = {k: v for k, v in cfg.to_dict().items() if k not in MEMBER_FIELDS}
    d["optimizer"] = "sgd" if cfg.optimizer == "sgd" else "adam"  # adam with decay is AdamW, as make_optimizer
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


def population_groups(configs: Sequence[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped into populations (a group of one trains alone), in first-seen order.

    >>> a, b = TrainConfig(seed=0), TrainConfig(seed=1, lr=0.01)
    >>> population_groups([a, TrainConfig(batch_size=64), b, TrainConfig(weighting="pcgrad")])
    [[0, 2], [1], [3]]
    """
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(_population_key(cfg), []).append(i)
    return list(groups.values())


def population_size(device: str | torch.device = "auto") -> int:
    """The most members trained as one population on ``device`` (larger groups are split).

    Measured by ``benchmarks/bench_population.py --sweep`` and ``--cap``: on 2
    quiet CPU cores 20 seeds (the verdict's most) of a width-64 network took
    1.04-1.31x less time as one population than as 16 + 4; at width 256, where
    the matmuls are the cost, 0.94-1.00x. Beyond 32 members it rises (64
    independent members as one took 1.08x, at width 256 1.24x, the time of two
    of 32). A GPU has room for many more.

    >>> population_size("cpu")
    32
    """
    return 64 if resolve_device(str(device)).type == "cuda" else 32


def _chunks(group: Sequence[int], size: int) -> list[list[int]]:
    """``group`` cut into the fewest populations of at most ``size``, as equal as can be (20 at most 16: 10 + 10,
    not 16 + 4, whose second population costs nearly what the first does).

    >>> [len(c) for c in _chunks(range(20), 16)], [len(c) for c in _chunks(range(7), 3)]
    ([10, 10], [3, 2, 2])
    """
    fewest = -(-len(group) // size)  # ceil(len / size)
    return [c.tolist() for c in np.array_split(np.asarray(group, dtype=np.int64), fewest)]


def train_population(graph: SharingGraph, data: MultiTaskData, configs: Sequence[TrainConfig], *,
                     callbacks: Sequence[MemberCallback | None] | None = None,
                     keep_model: bool = True, max_members: int | None = None) -> list[TrainResult]:
    """Train ``graph`` once per configuration, the compatible ones as one population.

    Parameters
    ----------
    graph : the sharing graph every member trains.
    data : the data (moved to the training device).
    configs : one configuration per member (see the module docstring for what may differ).
    callbacks : one per member (or ``None``), called after each of its evaluations as
        ``callback(epoch, primary_val_metrics, progress)``; an exception it raises stops
        that member only: its result has ``status="stopped"`` and ``interrupted`` set.
    keep_model : keep each member's model and per-task best weights.
    max_members : the largest population (default :func:`population_size` of the device).

    Returns
    -------
    list of TrainResult, in the order of ``configs``.
    """
    if not configs:
        raise ConfigError("train_population needs at least one configuration")
    cbs = list(callbacks) if callbacks is not None else [None] * len(configs)
    if len(cbs) != len(configs):
        raise ConfigError(f"train_population: {len(cbs)} callbacks for {len(configs)} configurations")
    if max_members is not None and (isinstance(max_members, bool) or not isinstance(max_members, int)
                                    or max_members < 1):
        raise ConfigError(f"train_population: max_members must be an integer >= 1, got {max_members!r}")
    results: list[TrainResult | None] = [None] * len(configs)
    size = max_members or population_size(configs[0].device)
    chunks = [c for g in population_groups(configs) for c in _chunks(g, size)]
    for group in chunks:
        if len(group) == 1:
            results[group[0]] = _train_alone(graph, data, configs[group[0]], cbs[group[0]], keep_model)
        else:
            outs = _Population(graph, data, [configs[i] for i in group], [cbs[i] for i in group], keep_model).run()
            for i, r in zip(group, outs):
                results[i] = r
    return results  # type: ignore[return-value]


class _Stop(Exception):
    """Carries the exception a member's callback raised out of :func:`train`."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _train_alone(graph: SharingGraph, data: MultiTaskData, cfg: TrainConfig, cb: MemberCallback | None,
                 keep_model: bool) -> TrainResult:
    def relay(epoch: int, primary: dict, progress: Progress) -> None:
        try:
            cb(epoch, primary, progress)
        except Exception as exc:
            raise _Stop(exc) from exc

    t0 = time.perf_counter()
    try:
        return train(graph, data, cfg, callback=relay if cb is not None else None, keep_model=keep_model)
    except _Stop as stop:
        return TrainResult(status="stopped", val_metrics={}, best_epoch={}, history=[], epochs_run=0,
                           seconds=time.perf_counter() - t0, interrupted=stop.exc, config=cfg)


class _StepModule(nn.Module):
    """One member's forward pass as a module, so that :func:`functional_call` can swap its weights."""

    def __init__(self, net: MultiTaskNet, names: Sequence[str], penalty: bool) -> None:
        super().__init__()
        self.net, self.names, self.penalty = net, list(names), penalty

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out = self.net(x, tasks=self.names)  # {task: [B, out_dim]}
        pen = self.net.penalty() if self.penalty else x.new_zeros(())
        return out, pen


class _MemberView:
    """Member ``j``'s slice of the stacked weights, as :class:`_Selection` reads a model."""

    def __init__(self, params: dict[str, torch.Tensor], j: int) -> None:
        self.params, self.j = params, j

    def named_parameters(self):
        return ((k, v[self.j]) for k, v in self.params.items())


@dataclass
class _Member:
    """One member's own state; ``slot`` is its row in the stacked weights."""

    index: int  # position in the caller's configs
    config: TrainConfig
    callback: MemberCallback | None
    weighting: LossWeighting  # its own (DWA: its own weights; uncertainty: its initial s_t)
    batcher: IndexBatcher
    sched: LrSchedule  # over a one-weight stand-in optimizer: the schedule logic of a separate run
    stand_in: torch.optim.Optimizer
    sel: _Selection
    slot: int
    result: TrainResult | None = None
    rows: torch.Tensor | None = None  # its block of epochs' row indices, drawn at once (as train's run_batches)
    at: int = 0  # where its next epoch starts in rows


class _Population:
    """The stacked training loop (the order of step, schedule, evaluation and callback is :func:`train`'s)."""

    def __init__(self, graph: SharingGraph, data: MultiTaskData, configs: Sequence[TrainConfig],
                 callbacks: Sequence[MemberCallback | None], keep_model: bool) -> None:
        self.t0 = time.perf_counter()
        first = configs[0]
        self.device = resolve_device(first.device)
        missing = [t for t in graph.tasks if t not in data.task_names]
        if missing:
            raise ConfigError(f"graph task {missing[0]!r} is not in the data's tasks {data.task_names}")
        self.graph, self.data, self.keep_model, self.cfg = graph, data.to(self.device), keep_model, first
        self.specs = [s for s in self.data.tasks if s.name in graph.tasks]
        self.cols = [self.data.task_names.index(s.name) for s in self.specs]
        self.names = [s.name for s in self.specs]
        torch.manual_seed(first.seed)  # dropout draws from the global generator
        self.nets = [compile_graph(graph, seed=c.seed).to(self.device) for c in configs]
        params, buffers = stack_module_state(self.nets)  # name -> [P, *shape]
        self.params, self.buffers = dict(params), dict(buffers)
        self.dense = not bool(torch.isnan(self.data.y[self.data.indices("train")][:, self.cols]).any())
        self.step_module = _StepModule(self.nets[0], self.names, any(True for _ in graph.soft_edges("l2")))
        self.losses_of = TaskLosses(self.specs, self.cols)  # [P, T] every member's task losses, in a few ops
        keep = None
        if keep_model:
            owned = {t: {id(q) for q in self.nets[0].task_parameters(t)} for t in self.names}
            named = list(self.nets[0].named_parameters())
            keep = {t: {k for k, p in named if id(p) in owned[t]} for t in self.names}
        self.members = []
        for j, (cfg, cb) in enumerate(zip(configs, callbacks)):
            stand_in = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
            batcher = _task_batcher(self.data, cfg, self.names)
            weighting = _weighting(cfg, self.names, {s.name: s.weight for s in self.specs})
            self.members.append(_Member(j, cfg, cb, weighting, batcher, None, stand_in,  # type: ignore[arg-type]
                                        _Selection(self.specs, keep, cfg.min_delta, None), j))
        self.total = first.total_steps(len(self.members[0].batcher))
        self.sizes = self.members[0].batcher.epoch_sizes()  # one epoch's batch sizes: every member's alike
        self.epoch_losses = self.members[0].weighting.uses_epoch_losses  # DWA: every member's alike
        name_of = {id(p): k for k, p in self.nets[0].named_parameters()}
        learned = [m.weighting.stacked_objective() for m in self.members]  # uncertainty weighting: values, objective
        self.objective = learned[0][1] if learned[0] is not None else None
        # GradNorm: every member's logits and L_t(0) as one state, balanced from every member's gradient norms
        self.balancer = self.members[0].weighting.stacked_balancer([m.weighting for m in self.members])
        # [P, T] the members' learned weighting values (uncertainty's s_t, GradNorm's logits), trained with the
        # network (train's one optimizer holds both)
        if self.objective:
            self.values = torch.stack([v for v, _ in learned]).requires_grad_()
        else:
            self.values = self.balancer.values.clone().requires_grad_() if self.balancer is not None else None
        last = self.nets[0].last_shared_parameters()  # tasks -> the last shared layer a group is balanced on
        self.groups = {tasks: [name_of[id(q)] for q in ps] for tasks, ps in last.items()}
        # PCGrad: each member combines its own per-task gradients (gram_step); the shared weights, in train's order
        self.gram = self.members[0].weighting.gram_combination() is not None
        self.shared = list(dict.fromkeys(name_of[id(p)] for p in self.nets[0].shared_parameters() if p.requires_grad))
        prio = [self.members[0].weighting.priorities[t] for t in self.names]
        self.prio = None if all(v == 1.0 for v in prio) else torch.tensor(prio, device=self.device)  # [T]
        self.coef = self._coefficients()  # [P, T], or None beside an objective or a Gram combination
        self.epoch_rows = sum(self.sizes)
        for m in self.members:
            m.sched = LrSchedule(m.stand_in, m.config, self.total)
        self.opt = MemberOptimizer(self._trained(), first.optimizer, [m.sched.lr for m in self.members],
                                   [c.weight_decay for c in configs])
        self._take_leaves()  # the optimizer's views of its one buffer are the weights trained from here on
        self.dynamic_lr = any(c.lr_schedule == "cosine" or c.warmup_steps > 0 for c in configs)
        self.done: list[_Member] = []
        self.window = LossWindow((len(configs), len(self.names)), self.device)  # [P, T] losses since an evaluation

    # ------------------------------------------------------------- stepping
    def _losses(self, xb: torch.Tensor, yb: torch.Tensor,
                wb: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``xb [P, B, *in]``, ``yb [P, B, T_data]``, sample weights ``wb [P, B]`` or None
        -> per-member task losses ``[P, T]`` and penalties ``[P]``."""
        named, bufs = self.step_state

        def one(p, b, x):  # a compiled network ties no weights: skip functional_call's search for ties (~5%)
            return functional_call(self.step_module, (p, b), (x,), tie_weights=False)

        with _autocast(self.device, self.cfg.amp):
            out, pen = vmap(one, randomness="different")(named, bufs, xb)  # {task: [P, B, out_dim]}, [P]
            # the losses outside vmap: the member axis is a leading axis TaskLosses takes as it is
            return self.losses_of(out, yb, self.dense, wb), pen  # [P, T], [P]

    @torch.no_grad()
    def _evaluate(self) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[dict[str, float]]]:
        """Every member's outputs on the validation split (``{task: [P, N_val, out_dim]}``), the split's labels
        ``[N_val, T_data]`` and every task's loss, one dict per member."""
        idx = self.data.indices("val")
        x, y = self.data.x[idx], self.data.y[idx]
        w = None if self.data.weights is None else self.data.weights[idx]  # [N_val] or None
        net, names, bs = self.nets[0], self.names, self.cfg.eval_batch_size
        net.eval()

        def one(p, b, xc):
            return functional_call(net, (p, b), (xc,), {"tasks": names}, tie_weights=False)

        try:
            parts = []
            for i in range(0, x.shape[0], bs):
                with _autocast(self.device, self.cfg.amp):
                    parts.append(vmap(one, in_dims=(0, 0, None))(self.params, self.buffers, x[i:i + bs]))
        finally:
            net.train()
        out = {t: torch.cat([o[t].float() for o in parts], dim=1) for t in names}  # {task: [P, N_val, out_dim]}
        losses = split_losses(self.losses_of, out, y, w).tolist()  # [P][T], one device sync
        return out, y, [dict(zip(names, losses[m.slot])) for m in self.members]

    def _take_leaves(self) -> None:
        """The stacked weights (and learned values) as the optimizer's leaves, in :meth:`_trained`'s order."""
        leaves = self.opt.params
        self.params = dict(zip(self.params, leaves))
        if self.values is not None:
            self.values = leaves[-1]
        # the weights and buffers by the step module's names, for functional_call
        self.step_state = ({f"net.{k}": v for k, v in self.params.items()},
                           {f"net.{k}": v for k, v in self.buffers.items()})

    def _trained(self) -> list[torch.Tensor]:
        """What the optimizer steps: the stacked network weights, and the weighting's learned values if any."""
        return list(self.params.values()) + ([self.values] if self.values is not None else [])

    def _coefficients(self) -> torch.Tensor | None:
        """``[P, T]`` each member's loss coefficients for its next steps (its weighting's, priorities included);
        ``None`` when the members' step is an objective of learned values instead (``self.objective``)."""
        if self.objective is not None or self.gram or self.balancer is not None:
            return None
        coef = [m.weighting.coefficients() for m in self.members]
        return torch.tensor([[c[t] for t in self.names] for c in coef], device=self.device)  # type: ignore[index]

    def _epoch_rows(self, step: int) -> torch.Tensor:
        """``[P, n]`` every member's next epoch's rows, batches end to end. Each member draws a block of epochs at
        once (:meth:`~sharesearch.data.IndexBatcher.epochs`, what :func:`train` draws), then slices it."""
        n, per_epoch = self.epoch_rows, len(self.sizes)
        for m in self.members:
            if m.rows is None or m.at >= m.rows.shape[0]:
                epochs = min(-(-(self.total - step) // per_epoch), max(1, BLOCK_ROWS // n))  # what is left, or a block
                m.rows, m.at = m.batcher.epochs(epochs)[0], 0
        rows = torch.stack([m.rows[m.at:m.at + n] for m in self.members])  # [P, n]
        for m in self.members:
            m.at += n
        return rows

    def run(self) -> list[TrainResult]:
        data, epoch, step, examples = self.data, -1, 0, 0
        sizes, count = self.sizes, not self.dense
        while self.members and step < self.total:
            epoch += 1
            rows = self._epoch_rows(step)  # [P, n]
            batches = epoch_batches(data, rows, sizes, self.cols, count)  # every member's batches, a chunk a gather
            loss_sum = torch.zeros(len(self.members), len(self.names), device=self.device)  # [P, T]
            for i in range(len(sizes)):
                batch = next(batches)  # x [P, B, *in], y [P, B, T_data], w [P, B] or None, labelled [P, T] or None
                losses, pen = self._losses(batch.x, batch.y, batch.w)  # [P, T], [P]
                # as the weighting's backward: a NaN loss contributes nothing (zero gradient), coefficients multiply
                self.opt.zero_grad()
                if self.gram:  # each member's per-task gradients, combined by its own weighting
                    ok = ~torch.isnan(losses) if self.dense else ~torch.isnan(losses) & (batch.labelled > 0)  # [P, T]
                    gram_step(losses, ok, self.params, self.shared, [m.weighting.gram_combination()
                                                                     for m in self.members],
                              self.prio, retain=self.step_module.penalty)
                    if self.step_module.penalty:
                        pen.sum().backward()
                elif self.balancer is not None:  # GradNorm: each member's weights from its own gradient norms
                    ok = ~torch.isnan(losses) if self.dense else ~torch.isnan(losses) & (batch.labelled > 0)  # [P, T]
                    groups = {t: [self.params[k] for k in ks] for t, ks in self.groups.items()}
                    coef = self.balancer.step(losses, ok, self.values, groups)  # [P, T]
                    kept = torch.where(ok, losses, torch.zeros_like(losses))
                    ((kept * coef.to(kept.dtype)).sum() + pen.sum()).backward()
                elif self.objective is None:
                    kept = torch.where(torch.isnan(losses), torch.zeros_like(losses), losses)
                    ((kept * self.coef).sum() + pen.sum()).backward()
                else:  # a task unlabelled in a member's batch takes no part (its counts say 0), as in train
                    ok = ~torch.isnan(losses) if self.dense else ~torch.isnan(losses) & (batch.labelled > 0)  # [P, T]
                    kept = torch.where(ok, losses, torch.zeros_like(losses))
                    (self.objective(kept, ok, self.values.to(kept.dtype)).sum() + pen.sum()).backward()
                self.opt.step()
                for m in self.members:  # a stand-in optimizer only carries its member's rate: never stepped
                    m.sched.after_step()
                if self.dynamic_lr:
                    self.opt.set_lr([m.sched.lr for m in self.members])
                loss_sum += losses.detach().float()
                self.window.add(losses.detach().float(), batch.rows if self.dense else batch.labelled)
                step, examples = step + 1, examples + batch.rows
                end_of_epoch, at_cap = i == len(sizes) - 1, step >= self.total
                every = self.cfg.eval_every
                due = at_cap or (end_of_epoch if every is None else step % every == 0)
                leaving: dict[int, tuple[str, str]] = {}  # slot -> (status, message)
                if end_of_epoch or due:
                    sums = loss_sum.tolist()  # one device sync for every member
                    for m in self.members:
                        bad = [t for t, v in zip(self.names, sums[m.slot]) if not math.isfinite(v)]
                        if bad:
                            leaving[m.slot] = ("diverged",
                                               f"epoch {epoch} (step {step}): non-finite training loss for task(s) {bad}")
                if end_of_epoch and self.epoch_losses:  # DWA: each member's epoch means, as train hands them
                    means = (loss_sum / len(sizes)).tolist()  # [P][T]
                    for m in self.members:
                        if m.slot not in leaving:
                            m.weighting.epoch_end(dict(zip(self.names, means[m.slot])))
                    self.coef = self._coefficients()
                if due:
                    self._after_evaluation(epoch, step, examples, leaving)
                if at_cap:
                    leaving.update({m.slot: ("ok", "") for m in self.members if m.slot not in leaving})
                if leaving:
                    stay = self._leave(leaving, epoch, step, examples)  # [P'] the staying members' old slots
                    loss_sum = loss_sum[stay]
                    if self.members and not end_of_epoch:  # the epoch's other batches, for those who stay
                        done = sum(sizes[:i + 1])
                        rows = rows[stay]
                        batches = epoch_batches(data, rows[:, done:], sizes[i + 1:], self.cols, count)
                if not self.members:
                    break
        return [m.result for m in sorted(self.done, key=lambda m: m.index)]  # type: ignore[misc]

    def _after_evaluation(self, epoch: int, step: int, examples: int, leaving: dict[int, tuple[str, str]]) -> None:
        out, y, val_losses = self._evaluate()
        train_losses = self.window.take()  # [P][T], one device sync
        changed = False
        scores = _Scores(self.specs, self.cols, out, y)  # every member's metrics, a call a metric
        for m, tl, vl in zip(self.members, train_losses, val_losses):
            if m.slot in leaving:
                continue
            before = m.sched.lr
            m.sched.after_evaluation(m.sel.update(_MemberView(self.params, m.slot), scores, epoch, step, m.slot))
            changed |= m.sched.lr != before
            if m.callback is not None:
                progress = Progress(epoch, step, examples, len(m.sel.history) - 1, m.sched.lr, self.total,
                                    dict(zip(self.names, tl)), vl)
                try:
                    m.callback(epoch, m.sel.history[-1], progress)
                except Exception as exc:  # the member's own stop (e.g. pruned): it leaves, the others go on
                    leaving[m.slot] = ("stopped", str(exc))
                    m.result = TrainResult(status="stopped", val_metrics={}, best_epoch={}, history=[],
                                           epochs_run=0, seconds=0.0, interrupted=exc, config=m.config)
                    continue
            if m.config.patience > 0 and m.sel.stale >= m.config.patience:
                leaving[m.slot] = ("ok", "")
        if changed:
            self.opt.set_lr([m.sched.lr for m in self.members])

    def _leave(self, leaving: dict[int, tuple[str, str]], epoch: int, step: int, examples: int) -> torch.Tensor:
        """Finish the members in ``leaving`` and remove their slices; returns ``[P']`` the old slots of those who
        stay, in their new order (for the caller's per-member tensors)."""
        for m in [m for m in self.members if m.slot in leaving]:
            status, message = leaving[m.slot]
            self._finish(m, status, message, epoch, step, examples)
            self.done.append(m)
        stay = [m for m in self.members if m.slot not in leaving]
        rows = torch.tensor([m.slot for m in stay], dtype=torch.long, device=self.device)
        self.buffers = {k: v[rows] for k, v in self.buffers.items()}
        if self.balancer is not None:
            self.balancer.keep(rows)
        self.opt.keep(rows)
        self._take_leaves()
        self.window.keep(rows)
        for new, m in enumerate(stay):
            m.slot = new
        self.members = stay
        if stay:
            self.coef = self._coefficients()
        return rows

    def _finish(self, m: _Member, status: str, message: str, epoch: int, step: int, examples: int) -> None:
        if m.result is not None and m.result.status == "stopped":
            m.result.epochs_run, m.result.seconds = epoch + 1, time.perf_counter() - self.t0
            m.result.steps_run, m.result.examples_seen, m.result.total_steps = step, examples, self.total
            m.result.history, m.result.history_steps = m.sel.history, m.sel.history_steps
            return
        sel = m.sel
        for s in self.specs:  # a task that never produced a finite metric keeps NaN values
            if s.name not in sel.metrics:
                sel.metrics[s.name] = {k: float("nan") for k in s.metrics}
        model = None
        if self.keep_model:
            model = self.nets[m.index]
            with torch.no_grad():
                for k, p in model.named_parameters():
                    p.copy_(self.params[k][m.slot])
        m.result = TrainResult(status=status, val_metrics=sel.metrics, best_epoch=sel.best_epoch,
                               history=sel.history, epochs_run=epoch + 1, seconds=time.perf_counter() - self.t0,
                               model=model, best_state=sel.state if self.keep_model else {}, message=message,
                               best_step=sel.best_step, best_evaluation=sel.best_eval,
                               history_steps=sel.history_steps, steps_run=step, examples_seen=examples,
                               total_steps=self.total, stopped_early=status == "ok" and step < self.total,
                               final_lr=m.sched.lr, config=m.config)

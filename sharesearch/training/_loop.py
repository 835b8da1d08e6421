"""The trainer: one loop for every sharing graph, the single-task baselines included.

Candidates and their baselines are trained the same way. The independent
graph *is* the T single-task baselines trained in one pass: its tasks share no
parameter, Adam's state is per parameter, losses are summed unweighted and
nothing couples tasks (no global gradient clipping, no shared loss scaling),
and model selection is per task -- so each task ends exactly where it would
have ended alone with the same seed (``tests/test_train.py`` checks this).

Budget, early stopping and schedule (fields of :class:`TrainConfig`): a run
takes at most ``max_steps`` optimizer steps (or ``epochs`` passes), validates
every ``eval_every`` steps (or every epoch, and always at the cap), and with
``patience`` > 0 stops once no task's primary metric has improved by more than
``min_delta`` (relative) for ``patience`` evaluations in a row. Each task still
keeps its own best evaluation, so early stopping is per task in what is kept
and joint only in when the loop ends. A joint run of T independent tasks
therefore stops when the *last* of them converges: each task gets at least the
steps it would get alone (never fewer), and its result equals a separate run of
that task with the same seed capped at the joint run's ``steps_run``. The
``"constant"`` and ``"cosine"`` schedules keep that equality (they depend on
the step only); ``"plateau"`` couples the tasks through the learning rate.

Data stays on the training device as tensors; batches are drawn by index
(:class:`sharesearch.data.IndexBatcher`). Each task keeps the weights of its
own best evaluation (only the parameters that reach its head are kept,
so the independent graph stores each network once). A NaN or infinite loss
ends the run with ``status="diverged"`` instead of raising in the caller.

Example
-------
>>> from sharesearch.data import load_data
>>> from sharesearch.graph import SharingGraph
>>> data = load_data("synthetic-mmoe", n=300, d=8, seed=0)
>>> g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": [8], "widths": [16, 8]})
>>> res = train(g, data, TrainConfig(max_steps=12, eval_every=4, batch_size=64, lr_schedule="cosine"))
>>> res.status, sorted(res.val_metrics) == sorted(data.task_names), res.steps_run, res.history_steps
('ok', True, 12, [4, 8, 12])
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import IndexBatcher, MultiTaskData
from ..graph import SharingGraph
from ..network import MultiTaskNet, compile_graph
from ..tasks import TaskLosses, TaskSpec, metric_values, sign
from ._config import LR_SCHEDULES, OPTIMIZERS, ConfigError, TrainConfig
from ._epoch import run_batches
from ._losses import LossWindow, split_losses
from ._schedule import LrSchedule, make_optimizer
from ..weighting import StackedLosses, make_weighting

__all__ = ["TrainConfig", "TrainResult", "Progress", "train", "evaluate", "predict_split",
           "resolve_device", "step_budget", "ConfigError", "OPTIMIZERS", "LR_SCHEDULES"]


@dataclass(frozen=True)
class Progress:
    """Where a run stands at one evaluation; the third argument of a three-argument callback."""

    epoch: int  # 0-based epoch the evaluation fell in
    step: int  # optimizer steps done (the pruning resource)
    examples: int  # training rows drawn so far (a row drawn for two tasks counts twice)
    evaluation: int  # 0-based index of this evaluation (of TrainResult.history)
    lr: float  # learning rate of the next step
    total_steps: int  # the run's cap in optimizer steps
    train_loss: dict[str, float] = field(default_factory=dict)  # task -> its mean training loss over the steps
    # since the previous evaluation, each step weighted by its labelled rows (NaN: no labelled row in that window)
    val_loss: dict[str, float] = field(default_factory=dict)  # task -> its loss on the validation rows at this
    # evaluation, sample-weighted as in training (NaN: no labelled validation row)


@dataclass
class TrainResult:
    """What a training run produced.

    ``val_metrics[task]`` holds every metric of the task at its own best
    evaluation (after ``best_step[task]`` optimizer steps, in epoch
    ``best_epoch[task]``); ``history`` holds the primary validation metric of
    every task at every evaluation, taken after ``history_steps`` steps.
    """

    status: str  # "ok" | "diverged" | "stopped" (a train_population callback raised, see interrupted)
    val_metrics: dict[str, dict[str, float]]  # task -> metric -> value at the task's best evaluation
    best_epoch: dict[str, int]  # task -> 0-based epoch of its best evaluation (-1: none finite)
    history: list[dict[str, float]]  # one {task: primary metric} per evaluation
    epochs_run: int  # epochs begun (the last one may be partial)
    seconds: float  # wall time of the run
    model: MultiTaskNet | None = None  # the trained model, each task's best weights kept in best_state
    best_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)  # task -> its weights
    message: str = ""  # why the run diverged
    joint_state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # see train(joint_score=)
    best_step: dict[str, int] = field(default_factory=dict)  # task -> optimizer steps at its best evaluation
    best_evaluation: dict[str, int] = field(default_factory=dict)  # task -> index into history (-1: none)
    history_steps: list[int] = field(default_factory=list)  # optimizer steps done at each evaluation
    steps_run: int = 0  # optimizer steps taken
    examples_seen: int = 0  # training rows drawn
    total_steps: int = 0  # the cap in optimizer steps
    stopped_early: bool = False  # patience ended the run before the cap
    final_lr: float = float("nan")  # the learning rate when the run ended
    config: TrainConfig | None = None  # the configuration it was trained with
    interrupted: Exception | None = field(default=None, repr=False)  # what a train_population callback raised
    # to stop this run (e.g. optuna.TrialPruned); status is then "stopped"

    def primary(self, tasks: Sequence[TaskSpec]) -> dict[str, float]:
        """The primary validation metric of each task."""
        return {t.name: self.val_metrics[t.name][t.primary_metric] for t in tasks if t.name in self.val_metrics}

    def still_learning(self, task: str) -> bool:
        """True when ``task``'s best evaluation is the last one: the run was cut while it improved."""
        return bool(self.history) and self.best_evaluation.get(task, -1) == len(self.history) - 1

    @property
    def still_learning_tasks(self) -> list[str]:
        """The tasks whose best evaluation is the last one."""
        return [t for t in self.best_evaluation if self.still_learning(t)]

    def predict(self, data: MultiTaskData, split: str = "test") -> dict[str, torch.Tensor]:
        """Raw outputs of every task on ``split`` with its own best weights (``{task: Tensor[N_split, out_dim]}``)."""
        if self.model is None:
            raise RuntimeError("this result kept no model (keep_model=False)")
        cfg = self.config or TrainConfig()
        return predict_split(self.model, data, split, best_state=self.best_state,
                             batch_size=cfg.eval_batch_size, amp=cfg.amp)

    def evaluate(self, data: MultiTaskData, split: str = "test") -> dict[str, dict[str, float]]:
        """Metrics of every task on ``split`` with its own best weights (autocast as the run's ``amp``)."""
        if self.model is None:
            raise RuntimeError("this result kept no model (keep_model=False)")
        cfg = self.config or TrainConfig()
        return evaluate(self.model, data, split, best_state=self.best_state,
                        batch_size=cfg.eval_batch_size, amp=cfg.amp)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` is the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"train config: field 'device' is not a device, got {device!r}") from None


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def _predict(model: MultiTaskNet, x: torch.Tensor, tasks: Sequence[str], batch: int, amp: bool,
             rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Outputs on ``x[rows]`` (all of ``x`` when ``rows`` is None), ``batch`` rows at a time.

    With ``rows``, each batch gathers only its own rows: a big split is never
    copied whole (on 45k rows x 500 features that copy was 90 MB and half of
    the evaluation's time), and the batches are the same rows in the same order.
    """
    n = x.shape[0] if rows is None else rows.shape[0]
    outs: dict[str, list[torch.Tensor]] = {t: [] for t in tasks}
    for i in range(0, n, batch):
        xb = x[i : i + batch] if rows is None else x[rows[i : i + batch]]  # [b, *input_shape]
        with _autocast(x.device, amp):
            o = model(xb, tasks=list(tasks))
        for t in tasks:
            outs[t].append(o[t].float())
    return {t: torch.cat(v) if v else torch.empty(0) for t, v in outs.items()}


def evaluate(model: MultiTaskNet, data: MultiTaskData, split: str = "val", *,
             best_state: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
             batch_size: int = 8192, amp: bool = False) -> dict[str, dict[str, float]]:
    """Every metric of every task on ``split``.

    With ``best_state``, each task is evaluated with its own best weights
    (the model's current weights are restored afterwards). ``amp`` turns bf16
    autocast on (CUDA only); it is off by default like ``TrainConfig.amp``, and
    :meth:`TrainResult.evaluate` passes the run's own ``config.amp``.

    >>> from sharesearch.data import load_data
    >>> from sharesearch.graph import SharingGraph
    >>> d = load_data("synthetic-mmoe", n=200, d=8, seed=0)
    >>> net = compile_graph(SharingGraph.independent(d.tasks, {"name": "mlp", "input_shape": [8], "widths": [8]}), seed=0)
    >>> sorted(evaluate(net, d, "val")) == sorted(d.task_names)
    True
    """
    out = predict_split(model, data, split, best_state=best_state, batch_size=batch_size, amp=amp)
    return _metrics(data, split, out)


def _metrics(data: MultiTaskData, split: str, out: Mapping[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Every metric of every task in ``out`` (``{task: Tensor[N_split, out_dim]}``) on the rows of ``split``."""
    y = data.y[data.indices(split)]  # [N_split, T_data]
    specs = [s for s in data.tasks if s.name in out]
    cols = [data.task_names.index(s.name) for s in specs]
    scores = _Scores(specs, cols, out, y)
    return {s.name: scores.every(s) for s in specs}


class _Scores:
    """One evaluation's metrics of every task, computed when first read, for every member at once.

    ``out`` holds the outputs ``{task: [*M, N_val, out_dim]}`` (``M``: a
    population's members, or nothing), ``y`` the labels ``[N_val, T_data]``.
    An evaluation reads only the primary metrics (what selection and the
    callback need); a task's other metrics are read when it improves, as its
    best evaluation keeps them. Each metric is computed once for every member
    (:func:`~sharesearch.tasks.metric_values`): a population of 8 makes one
    call where it made 8.
    """

    def __init__(self, specs: Sequence[TaskSpec], cols: Sequence[int], out: Mapping[str, torch.Tensor],
                 y: torch.Tensor) -> None:
        self.specs, self.out, self.y = specs, out, y
        self.col = {s.name: c for s, c in zip(specs, cols)}  # task -> its label column
        self._values: dict[tuple[str, str], np.ndarray] = {}  # (task, metric) -> [*M]

    def _value(self, spec: TaskSpec, metric: str, slot: int | tuple) -> float:
        key = (spec.name, metric)
        if key not in self._values:
            self._values[key] = metric_values(spec, metric, self.out[spec.name], self.y[:, self.col[spec.name]])
        return float(self._values[key][slot])

    def primary(self, slot: int | tuple = ()) -> dict[str, float]:
        """Each task's primary metric, of member ``slot`` (``()``: a run's outputs have no member axis)."""
        return {s.name: self._value(s, s.primary_metric, slot) for s in self.specs}

    def every(self, spec: TaskSpec, slot: int | tuple = ()) -> dict[str, float]:
        """Every metric of one task, of member ``slot``."""
        return {m: self._value(spec, m, slot) for m in spec.metrics}


def predict_split(model: MultiTaskNet, data: MultiTaskData, split: str = "val", *,
                  best_state: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
                  batch_size: int = 8192, amp: bool = False) -> dict[str, torch.Tensor]:
    """Raw outputs of every task of ``model`` on the rows of ``split`` (``{task: Tensor[N_split, out_dim]}``).

    With ``best_state``, each task is predicted with its own best weights (the
    model's current weights are restored afterwards); :func:`evaluate` scores these.
    """
    rows = data.indices(split)
    was_training = model.training
    model.eval()
    names = [spec.name for spec in data.tasks if spec.name in model.graph.tasks]
    try:
        if not best_state:  # one pass: each batch gathers its own rows
            return _predict(model, data.x, names, batch_size, amp, rows=rows)
        x = data.x[rows]  # one gather, read once per task
        params = dict(model.named_parameters())
        current = {k: v.detach().clone() for k, v in params.items()}
        out: dict[str, torch.Tensor] = {}
        for name in names:
            with torch.no_grad():
                for k, v in best_state.get(name, {}).items():
                    params[k].copy_(v)
            out[name] = _predict(model, x, [name], batch_size, amp)[name]
        with torch.no_grad():
            for k, v in current.items():
                params[k].copy_(v)
        return out
    finally:
        model.train(was_training)


def _better(metric_dir: float, new: float, old: float | None) -> bool:
    if not math.isfinite(new):
        return False
    return old is None or metric_dir * (new - old) > 0


class _Selection:
    """Each task's best evaluation (model selection) and the evaluations since any task improved."""

    def __init__(self, specs: Sequence[TaskSpec], keep: Mapping[str, set[str]] | None, min_delta: float,
                 joint_score: Callable[[dict[str, float]], float] | None) -> None:
        self.specs, self.keep, self.min_delta, self.joint_score = specs, keep, min_delta, joint_score
        self.direction = {s.name: sign(s.primary_metric) for s in specs}
        self.best: dict[str, float | None] = {s.name: None for s in specs}
        self.best_eval = {s.name: -1 for s in specs}
        self.best_epoch = {s.name: -1 for s in specs}
        self.best_step = {s.name: 0 for s in specs}
        self.metrics: dict[str, dict[str, float]] = {}
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, float]] = []
        self.history_steps: list[int] = []
        self.stale = 0  # evaluations in a row where no task improved by more than min_delta
        self.joint_best: float | None = None
        self.joint_state: dict[str, torch.Tensor] = {}

    def update(self, model: MultiTaskNet, scores: _Scores, epoch: int, step: int, slot: int | tuple = ()) -> bool:
        """Record one evaluation, scored by ``scores`` (member ``slot``'s); True when some task improved by more
        than ``min_delta``."""
        primary = scores.primary(slot)
        self.history.append(primary)
        self.history_steps.append(step)
        improved = False
        params: dict[str, torch.Tensor] | None = None  # the model's parameters by name, read once an evaluation
        for s in self.specs:
            t, new, old = s.name, primary[s.name], self.best[s.name]
            if not _better(self.direction[t], new, old):
                continue
            improved |= old is None or self.direction[t] * (new - old) > self.min_delta * abs(old)
            self.best[t], self.metrics[t] = new, scores.every(s, slot)
            self.best_eval[t], self.best_epoch[t], self.best_step[t] = len(self.history) - 1, epoch, step
            if self.keep is not None:
                params = dict(model.named_parameters()) if params is None else params
                self.state[t] = {k: params[k].detach().clone() for k in self.keep[t]}
        self.stale = 0 if improved else self.stale + 1
        if self.joint_score is not None:
            score = self.joint_score(primary)
            if _better(1.0, score, self.joint_best):
                self.joint_best = score
                self.joint_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return improved


def _task_batcher(data: MultiTaskData, config: TrainConfig, names: list[str]) -> IndexBatcher:
    """The training batcher, drawing from the graph's own tasks (``names``) or ``config.batch_tasks``."""
    if config.batch_tasks is not None:
        bad = [t for t in config.batch_tasks if t not in data.task_names] or \
            [t for t in names if t not in config.batch_tasks]
        if bad:
            raise ConfigError(f"train config: field 'batch_tasks' must name data tasks {data.task_names} including "
                              f"the graph's {names}; {bad[0]!r} breaks that, got {list(config.batch_tasks)!r}")
        names = list(config.batch_tasks)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    return IndexBatcher(data, "train", config.batch_size, sampling=config.sampling, generator=gen, tasks=names)




def step_budget(config: TrainConfig, data: MultiTaskData, tasks: Sequence[str] | None = None) -> int:
    """The cap in optimizer steps that ``train`` gives ``config`` on ``data`` (for a pruner's resource).

    >>> from sharesearch.data import load_data
    >>> d = load_data("synthetic-mmoe", n=300, d=8, seed=0)
    >>> step_budget(TrainConfig(epochs=2, batch_size=64), d), step_budget(TrainConfig(max_steps=7), d)
    (8, 7)
    """
    return config.total_steps(len(_task_batcher(data, config, list(tasks or data.task_names))))


def _takes_progress(callback: Callable) -> bool:
    """Whether ``callback`` accepts ``(epoch, primary, progress)`` rather than ``(epoch, primary)``."""
    try:
        inspect.signature(callback).bind(0, {}, None)
    except (TypeError, ValueError):
        return False
    return True


def _zero_grad(params: Sequence[torch.Tensor]) -> None:
    """``optimizer.zero_grad(set_to_none=True)`` without its per-call wrappers (half its ~17 us on 51 tensors)."""
    for p in params:
        p.grad = None


def _non_finite(loss_sum: torch.Tensor, names: list[str]) -> list[str]:
    """Tasks whose summed training loss is NaN or infinite (one device sync)."""
    return [t for t, v in zip(names, loss_sum.tolist()) if not math.isfinite(v)]


def train(graph: SharingGraph, data: MultiTaskData, config: TrainConfig = TrainConfig(), *,
          callback: Callable[..., None] | None = None,
          keep_model: bool = True,
          joint_score: Callable[[dict[str, float]], float] | None = None) -> TrainResult:
    """Train ``graph`` on ``data`` and select each task's best evaluation.

    The loop is one function (~80 lines) so that the order of step, schedule,
    evaluation, early stopping and callback reads in one place.

    Parameters
    ----------
    graph : the sharing graph to compile and train (its tasks must be data's tasks).
    data : the data; moved to the training device if it is not there.
    config : the training configuration (budget, evaluation, early stopping, schedule).
    callback : called after every evaluation as ``callback(epoch, primary_val_metrics)``,
        or as ``callback(epoch, primary_val_metrics, progress)`` when it accepts three
        arguments (:class:`Progress`: steps done, examples seen, each task's training
        loss since the previous evaluation and validation loss, ...); it may raise
        (e.g. ``optuna.TrialPruned``) to stop the run -- the exception propagates.
        With ``eval_every`` set, several evaluations can fall in one epoch: report
        ``progress.step`` as the resource, not the epoch.
    keep_model : keep the model and each task's best weights in the result.
    joint_score : optional score of the primary validation metrics (higher is
        better, e.g. Δm against baselines); the whole model's weights at its
        best evaluation are kept as ``result.joint_state`` (one consistent model
        for export, where per-task snapshots of shared weights would conflict).

    Returns
    -------
    TrainResult
    """
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    missing = [t for t in graph.tasks if t not in data.task_names]
    if missing:
        raise ConfigError(f"graph task {missing[0]!r} is not in the data's tasks {data.task_names}")
    data = data.to(device)
    torch.manual_seed(config.seed)  # dropout draws from the global generator
    model = compile_graph(graph, seed=config.seed).to(device)
    specs = [s for s in data.tasks if s.name in graph.tasks]
    cols = [data.task_names.index(s.name) for s in specs]
    names = [s.name for s in specs]
    weighting = make_weighting(config.weighting, names, {s.name: s.weight for s in specs},
                               seed=config.seed, **dict(config.weighting_options))  # seed: PCGrad's order
    opt = make_optimizer(config, list(model.parameters()) + list(weighting.parameters()))
    trained = [p for g in opt.param_groups for p in g["params"]]  # what the optimizer steps
    shared = model.shared_parameters()
    groups = model.last_shared_parameters()  # GradNorm balances each group on its last shared layer
    keep = None  # the parameters each task's best evaluation keeps
    if keep_model:
        named = list(model.named_parameters())
        owned = {t: {id(q) for q in model.task_parameters(t)} for t in names}  # once per task, not per parameter
        keep = {t: {k for k, p in named if id(p) in owned[t]} for t in names}
    batcher = _task_batcher(data, config, names)
    total = config.total_steps(len(batcher))
    sched = LrSchedule(opt, config, total)
    sel = _Selection(specs, keep, config.min_delta, joint_score)
    with_progress = callback is not None and _takes_progress(callback)
    has_penalty = any(True for _ in graph.soft_edges("l2"))
    # no missing label among the training rows: the losses can skip masking
    dense = not bool(torch.isnan(data.y[data.indices("train")][:, cols]).any())
    val_y = data.y[data.indices("val")]  # [N_val, T_data]
    val_w = None if data.weights is None else data.weights[data.indices("val")]  # [N_val] or None
    window = LossWindow((len(names),), device)

    per_epoch = len(batcher)  # batches an epoch
    amp = _autocast(device, config.amp)  # one context for every step (it is re-entered, not nested)
    losses_of = TaskLosses(specs, cols)  # [T] every task's loss of a batch, in a few ops for all tasks
    names_t = tuple(names)
    status, message, epoch, step, examples = "ok", "", -1, 0, 0
    epoch_losses = weighting.uses_epoch_losses  # DWA reads each epoch's mean losses; the others need no epoch sum
    loss_sum = torch.zeros(len(names), device=device)  # [T] this epoch's summed training losses (epoch_losses only)
    for batch in run_batches(batcher, data, cols, count=not dense, steps=total):  # epochs end to end
        i = step % per_epoch  # the batch's place in its epoch
        if i == 0:
            epoch += 1
            if not model.training:  # nn.Module.train walks every submodule: ~0.2 ms, once per epoch otherwise
                model.train()
            if epoch_losses:
                loss_sum = torch.zeros(len(names), device=device)
        xb, yb, wb = batch.x, batch.y, batch.w  # [B, *input_shape], [B, T_data], [B] sample weights or None
        with amp:
            out = model(xb, tasks=names)
        stacked = losses_of(out, yb, dense, wb)  # [T]
        losses = StackedLosses(names_t, stacked, (stacked.requires_grad,) * len(names_t))  # stacked once
        # dense: every task is labelled in every row; else a task unlabelled in the batch has loss 0, a perfect
        # fit to the eye: the weighting is told so by the counts, [T] in the order of losses (no device sync)
        labelled = batch.rows if dense else batch.labelled
        _zero_grad(trained)
        weighting.backward(losses, shared, counts=None if dense else labelled, groups=groups)
        if has_penalty:
            model.penalty().backward()
        opt.step()
        sched.after_step()
        step_losses = losses.stacked.detach().float()  # [T] the stack the weighting used
        if epoch_losses:
            loss_sum += step_losses
        window.add(step_losses, labelled)  # its sum turns non-finite with the first non-finite loss of a task
        step, examples = step + 1, examples + batch.rows
        end_of_epoch, at_cap = i == per_epoch - 1, step >= total
        due = at_cap or (end_of_epoch if config.eval_every is None else step % config.eval_every == 0)
        if end_of_epoch or due:
            bad = _non_finite(window.sum, names)  # since the window's start: every step since the last check
            if bad:
                status = "diverged"
                message = f"epoch {epoch} (step {step}): non-finite training loss for task(s) {bad}"
                break
        if end_of_epoch and epoch_losses:
            weighting.epoch_end(dict(zip(names, (loss_sum / per_epoch).tolist())))
        if due:
            out_val = predict_split(model, data, "val", batch_size=config.eval_batch_size, amp=config.amp)
            sched.after_evaluation(sel.update(model, _Scores(specs, cols, out_val, val_y), epoch, step))
            if callback is not None:  # the window is read (one sync) only for a callback
                train_loss = dict(zip(names, window.take()))
                val_loss = dict(zip(names, split_losses(losses_of, out_val, val_y, val_w).tolist()))
                args = (Progress(epoch, step, examples, len(sel.history) - 1, sched.lr, total,
                                 train_loss, val_loss),)
                callback(epoch, sel.history[-1], *(args if with_progress else ()))
            if config.patience > 0 and sel.stale >= config.patience:
                break  # early stop (without it the batches end at the cap)
    for s in specs:  # a task that never produced a finite metric keeps its last (NaN) values
        if s.name not in sel.metrics:
            sel.metrics[s.name] = {m: float("nan") for m in s.metrics}
    return TrainResult(status=status, val_metrics=sel.metrics, best_epoch=sel.best_epoch, history=sel.history,
                       epochs_run=epoch + 1, seconds=time.perf_counter() - t0,
                       model=model if keep_model else None, best_state=sel.state if keep_model else {},
                       message=message, joint_state=sel.joint_state, best_step=sel.best_step,
                       best_evaluation=sel.best_eval, history_steps=sel.history_steps, steps_run=step,
                       examples_seen=examples, total_steps=total,
                       stopped_early=status == "ok" and step < total, final_lr=sched.lr, config=config)

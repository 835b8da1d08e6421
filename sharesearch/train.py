"""The trainer: one loop for every sharing graph, the single-task baselines included.

Candidates and their baselines are trained the same way. The independent
graph *is* the T single-task baselines trained in one pass: its tasks share no
parameter, Adam's state is per parameter, losses are summed unweighted and
nothing couples tasks (no global gradient clipping, no shared loss scaling),
and model selection is per task -- so each task ends exactly where it would
have ended alone with the same seed (``tests/test_train.py`` checks this).

Data stays on the training device as tensors; batches are drawn by index
(:class:`sharesearch.data.IndexBatcher`). Each task keeps the weights of its
own best validation epoch (only the parameters that reach its head are kept,
so the independent graph stores each network once). A NaN or infinite loss
ends the run with ``status="diverged"`` instead of raising in the caller.

Example
-------
>>> from sharesearch.data import load_data
>>> from sharesearch.graph import SharingGraph
>>> data = load_data("synthetic-mmoe", n=300, d=8, seed=0)
>>> g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": [8], "widths": [16, 8]})
>>> res = train(g, data, TrainConfig(epochs=2, batch_size=64))
>>> res.status, sorted(res.val_metrics) == sorted(data.task_names)
('ok', True)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from .tasks import sign

from .data import IndexBatcher, MultiTaskData
from .graph import SharingGraph
from .network import MultiTaskNet, compile_graph
from .tasks import TaskSpec, compute_metric, task_loss
from .weighting import make_weighting

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "resolve_device", "ConfigError"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SAMPLINGS = ("uniform", "proportional")


class ConfigError(ValueError):
    """A bad training configuration; the message names the field and value."""


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained. Candidates and baselines share one budget."""

    epochs: int = 10  # passes over the training split
    batch_size: int = 256  # examples per step
    lr: float = 1e-3  # learning rate
    weight_decay: float = 0.0  # decoupled (AdamW) or L2 (SGD) weight decay
    optimizer: str = "adam"  # adam | adamw | sgd
    weighting: str = "equal"  # loss weighting method, see sharesearch.weighting.WEIGHTINGS
    weighting_options: Mapping[str, Any] = field(default_factory=dict)  # typed options of the weighting
    sampling: str = "uniform"  # task sampling when labels are sparse: uniform | proportional
    seed: int = 0  # seeds initialisation, batch order and dropout
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast on CUDA (never on the CPU); off by default: on an H200 it made
    # small multi-task MLP steps 8-13% slower (benchmarks/bench_gpu.py), it pays only for wide models
    eval_batch_size: int = 8192  # examples per evaluation forward pass

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"train config: field {name!r} {why}, got {getattr(self, name)!r}")

        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise bad("epochs", "must be an integer >= 1")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise bad("batch_size", "must be an integer >= 1")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "must be a positive number")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise bad("weight_decay", "must be a number >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"must be one of {list(OPTIMIZERS)}")
        if self.sampling not in SAMPLINGS:
            raise bad("sampling", f"must be one of {list(SAMPLINGS)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weighting_options"] = dict(self.weighting_options)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"train config: unknown field {unknown[0]!r}; valid fields: {sorted(known)}")
        return cls(**d)

    def updated(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (unknown names are rejected)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


@dataclass
class TrainResult:
    """What a training run produced.

    ``val_metrics[task]`` holds every metric of the task at its own best
    validation epoch (``best_epoch[task]``); ``history`` holds the primary
    validation metric of every task after every epoch.
    """

    status: str  # "ok" | "diverged"
    val_metrics: dict[str, dict[str, float]]
    best_epoch: dict[str, int]
    history: list[dict[str, float]]
    epochs_run: int
    seconds: float
    model: MultiTaskNet | None = None  # the trained model, each task's best weights kept in best_state
    best_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict, repr=False)
    message: str = ""
    joint_state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # see train(joint_score=)

    def primary(self, tasks: Sequence[TaskSpec]) -> dict[str, float]:
        """The primary validation metric of each task."""
        return {t.name: self.val_metrics[t.name][t.primary_metric] for t in tasks if t.name in self.val_metrics}

    def evaluate(self, data: MultiTaskData, split: str = "test") -> dict[str, dict[str, float]]:
        """Metrics of every task on ``split`` with its own best weights."""
        if self.model is None:
            raise RuntimeError("this result kept no model (keep_model=False)")
        return evaluate(self.model, data, split, best_state=self.best_state)


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
def _predict(model: MultiTaskNet, x: torch.Tensor, tasks: Sequence[str], batch: int, amp: bool) -> dict[str, torch.Tensor]:
    outs: dict[str, list[torch.Tensor]] = {t: [] for t in tasks}
    for i in range(0, x.shape[0], batch):
        with _autocast(x.device, amp):
            o = model(x[i : i + batch], tasks=list(tasks))
        for t in tasks:
            outs[t].append(o[t].float())
    return {t: torch.cat(v) if v else torch.empty(0) for t, v in outs.items()}


def evaluate(model: MultiTaskNet, data: MultiTaskData, split: str = "val", *,
             best_state: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
             batch_size: int = 8192, amp: bool = True) -> dict[str, dict[str, float]]:
    """Every metric of every task on ``split``.

    With ``best_state``, each task is evaluated with its own best weights
    (the model's current weights are restored afterwards).
    """
    idx = data.indices(split)
    x, y = data.x[idx], data.y[idx]
    was_training = model.training
    model.eval()
    res: dict[str, dict[str, float]] = {}
    ours = [(i, spec) for i, spec in enumerate(data.tasks) if spec.name in model.graph.tasks]
    try:
        if not best_state:
            out = _predict(model, x, [spec.name for _, spec in ours], batch_size, amp)
            for i, spec in ours:
                res[spec.name] = {m: compute_metric(spec, m, out[spec.name], y[:, i]) for m in spec.metrics}
        else:
            params = dict(model.named_parameters())
            current = {k: v.detach().clone() for k, v in params.items()}
            for i, spec in ours:
                with torch.no_grad():
                    for k, v in best_state.get(spec.name, {}).items():
                        params[k].copy_(v)
                out = _predict(model, x, [spec.name], batch_size, amp)
                res[spec.name] = {m: compute_metric(spec, m, out[spec.name], y[:, i]) for m in spec.metrics}
            with torch.no_grad():
                for k, v in current.items():
                    params[k].copy_(v)
    finally:
        model.train(was_training)
    return res


def _make_optimizer(cfg: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    # foreach: one multi-tensor kernel per step instead of one per parameter; on the
    # CPU torch defaults to the per-tensor loop, which cost ~15% of a small model's step.
    # The update stays elementwise per parameter, so tasks are still not coupled.
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.optimizer == "adamw" or cfg.weight_decay > 0:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    return torch.optim.Adam(params, lr=cfg.lr, foreach=True)


def _better(metric_dir: float, new: float, old: float | None) -> bool:
    if not math.isfinite(new):
        return False
    return old is None or metric_dir * (new - old) > 0


def train(graph: SharingGraph, data: MultiTaskData, config: TrainConfig = TrainConfig(), *,
          callback: Callable[[int, dict[str, float]], None] | None = None,
          keep_model: bool = True,
          joint_score: Callable[[dict[str, float]], float] | None = None) -> TrainResult:
    """Train ``graph`` on ``data`` and select each task's best validation epoch.

    Parameters
    ----------
    graph : the sharing graph to compile and train (its tasks must be data's tasks).
    data : the data; moved to the training device if it is not there.
    config : the training configuration.
    callback : called after every epoch as ``callback(epoch, primary_val_metrics)``;
        it may raise (e.g. ``optuna.TrialPruned``) to stop the run -- the
        exception propagates to the caller.
    keep_model : keep the model and each task's best weights in the result.
    joint_score : optional score of the primary validation metrics (higher is
        better, e.g. Δm against baselines); the whole model's weights at its
        best epoch are kept as ``result.joint_state`` (one consistent model for
        export, where per-task snapshots of shared weights would conflict).

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
                               **dict(config.weighting_options))
    opt = _make_optimizer(config, list(model.parameters()) + list(weighting.parameters()))
    shared = model.shared_parameters()
    task_params: dict[str, set[str]] = {}  # the parameters a task's best epoch keeps
    if keep_model:
        named = list(model.named_parameters())
        for t in names:
            ours = {id(p) for p in model.task_parameters(t)}
            task_params[t] = {k for k, p in named if id(p) in ours}
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    batcher = IndexBatcher(data, "train", config.batch_size, sampling=config.sampling, generator=gen)
    has_penalty = any(True for _ in graph.soft_edges("l2"))
    # no missing label among the training rows: the losses can skip masking
    dense = not bool(torch.isnan(data.y[data.indices("train")][:, cols]).any())
    direction = {s.name: sign(s.primary_metric) for s in specs}

    best: dict[str, float | None] = {t: None for t in names}
    best_epoch: dict[str, int] = {t: -1 for t in names}
    best_metrics: dict[str, dict[str, float]] = {}
    best_state: dict[str, dict[str, torch.Tensor]] = {}
    history: list[dict[str, float]] = []
    joint_best, joint_state = None, {}
    status, message, epoch = "ok", "", -1
    for epoch in range(config.epochs):
        model.train()
        loss_sum = torch.zeros(len(names), device=device)
        n_steps = 0
        for idx in batcher:
            xb = data.x[idx]  # [B, *input_shape]
            yb = data.y[idx]  # [B, T]
            with _autocast(device, config.amp):
                out = model(xb, tasks=names)
            losses = {t: task_loss(s, out[t], yb[:, c], dense) for t, s, c in zip(names, specs, cols)}
            opt.zero_grad(set_to_none=True)
            weighting.backward(losses, shared)
            if has_penalty:
                model.penalty().backward()
            opt.step()
            loss_sum += torch.stack([losses[t].detach().float() for t in names])
            n_steps += 1
        mean_losses = (loss_sum / max(n_steps, 1)).tolist()  # one device sync per epoch
        if not all(math.isfinite(v) for v in mean_losses):
            bad = [t for t, v in zip(names, mean_losses) if not math.isfinite(v)]
            status, message = "diverged", f"epoch {epoch}: non-finite training loss for task(s) {bad}"
            break
        weighting.epoch_end(dict(zip(names, mean_losses)))
        val = evaluate(model, data, "val", batch_size=config.eval_batch_size, amp=config.amp)
        primary = {s.name: val[s.name][s.primary_metric] for s in specs}
        history.append(primary)
        for s in specs:
            if _better(direction[s.name], primary[s.name], best[s.name]):
                best[s.name], best_epoch[s.name], best_metrics[s.name] = primary[s.name], epoch, val[s.name]
                if keep_model:
                    params = dict(model.named_parameters())
                    best_state[s.name] = {k: params[k].detach().clone() for k in task_params[s.name]}
        if joint_score is not None:
            score = joint_score(primary)
            if _better(1.0, score, joint_best):
                joint_best = score
                joint_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if callback is not None:
            callback(epoch, primary)
    for s in specs:  # a task that never produced a finite metric keeps its last (NaN) values
        if s.name not in best_metrics:
            best_metrics[s.name] = {m: float("nan") for m in s.metrics}
    return TrainResult(status=status, val_metrics=best_metrics, best_epoch=best_epoch, history=history,
                       epochs_run=epoch + 1, seconds=time.perf_counter() - t0,
                       model=model if keep_model else None, best_state=best_state if keep_model else {},
                       message=message, joint_state=joint_state)

"""The verdict's runs: one training per arm and seed, kept as test predictions per row.

A :class:`RunOutcome` is one run of one arm (or of the control: the tuned
independent networks, one training per distinct baseline configuration) with
one seed: each task's primary test metric computed from its per-row test
predictions (so the row bootstrap of the Δm interval scores the very same
numbers), its primary validation metric (for the control's seed-to-seed
spread), the status and the tasks still improving at the last evaluation.
A diverged run gives NaN for its tasks: the verdict counts it.

The seeds of one arm (and of each control configuration) train as one
population (:func:`sharesearch.training.train_population`): each seed's run
equals its separate run, at a fraction of the time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..data import MultiTaskData
from ..graph import SharingGraph
from ..tasks import TaskSpec, compute_metric
from ..training import TrainConfig, TrainResult, train_population
from ._records import TaskBaseline

__all__ = ["RunOutcome", "KeptModel", "ship_state", "RowMetric", "BUDGET_FIELDS", "arm_params", "train_run",
           "train_runs", "control_groups", "train_control", "train_control_runs"]

#: TrainConfig fields the verdict fixes for every arm and the control alike (the matched budget)
BUDGET_FIELDS = ("epochs", "max_steps", "eval_every", "patience", "min_delta")


@dataclass(frozen=True)
class RunOutcome:
    """One run (one seed) of an arm or of the control."""

    seed: int  # the training seed
    status: str  # "ok" | "diverged" (any of the control's trainings diverged)
    test: dict[str, float]  # task -> primary test metric (NaN: diverged)
    val: dict[str, float]  # task -> primary validation metric at the task's best evaluation
    preds: dict[str, np.ndarray]  # task -> test predictions [n_test, out_dim] (NaN: diverged)
    still_learning: tuple[str, ...]  # tasks whose best evaluation was the last one
    gates: dict | None = None  # MoE gate values on validation rows (first seed of an arm only)
    stitch: dict | None = None  # cross-stitch weights (first seed of an arm only)
    kept: tuple["KeptModel", ...] = ()  # the trained networks of this run, kept to ship (first seed only)

    @property
    def n_still_learning(self) -> int:
        """Tasks of this run still improving at the budget's end."""
        return len(self.still_learning)


@dataclass(frozen=True)
class RowMetric:
    """``metric(task, y_true, y_pred)``: a task's primary metric on some test rows, by :func:`compute_metric`."""

    specs: dict[str, TaskSpec]  # task -> its spec (kind, primary metric, target scaling)

    def __call__(self, task: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        import torch

        spec = self.specs[task]
        return compute_metric(spec, spec.primary_metric, torch.from_numpy(y_pred), torch.from_numpy(y_true))


@dataclass(frozen=True)
class KeptModel:
    """One trained network of a verdict run, kept so the recommended arm can be shipped without retraining."""

    graph: SharingGraph  # the graph it was compiled from
    result: TrainResult  # its training: the model (final weights) and each task's best weights
    tasks: tuple[str, ...]  # the tasks it serves


def ship_state(kept: KeptModel, data: MultiTaskData, score: Callable[[dict[str, float]], float]) -> dict:
    """One consistent ``state_dict`` of a kept network: the best of its candidate weights on validation.

    The verdict scores each task with its own best weights; a network to ship
    has one set. The candidates are every task's best weights laid over the
    final ones (all tasks' together first: for independent networks, whose
    tasks share no weights, that is exactly the verdict's model), the final
    weights, and each task's alone; ``score`` (higher is better; the
    validation Δm against the control) of their primary validation metrics
    picks one.
    """
    from ..training import evaluate

    res, specs = kept.result, {s.name: s for s in data.tasks}
    model = res.model
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    overlays = [[t for t in kept.tasks if t in res.best_state]] + [[]] + [[t] for t in kept.tasks
                                                                        if t in res.best_state]
    best, best_score = final, -math.inf
    for overlay in overlays:
        state = dict(final)
        for t in overlay:
            state.update({k: v.detach().clone() for k, v in res.best_state[t].items()})
        model.load_state_dict(state)
        val = evaluate(model, data, "val")
        s = score({t: val[t][specs[t].primary_metric] for t in kept.tasks if t in val})
        if math.isfinite(s) and s > best_score:
            best, best_score = state, s
    model.load_state_dict(best)
    return best


def arm_params(params: Mapping[str, object]) -> dict[str, object]:
    """An arm's own training parameters without the budget fields (the verdict sets those for all)."""
    return {k: v for k, v in params.items() if k not in BUDGET_FIELDS}


def _test_predictions(res: TrainResult, data: MultiTaskData, tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """Each task's test predictions with its own best weights (the model's weights restored afterwards)."""
    import torch

    model, cfg = res.model, res.config or TrainConfig()
    x = data.x[data.indices("test")]
    params = dict(model.named_parameters())
    current = {k: v.detach().clone() for k, v in params.items()}
    out: dict[str, np.ndarray] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for t in tasks:
            for k, v in res.best_state.get(t, {}).items():
                params[k].copy_(v)
            parts = [model(x[i:i + cfg.eval_batch_size], tasks=[t])[t].float().cpu()
                     for i in range(0, x.shape[0], cfg.eval_batch_size)]
            out[t] = torch.cat(parts).numpy()  # [n_test, out_dim]
        for k, v in current.items():
            params[k].copy_(v)
    model.train(was_training)
    return out


def train_runs(graph: SharingGraph, data: MultiTaskData, configs: Sequence[TrainConfig], tasks: Sequence[str],
               mechanisms_first: bool = False, keep_first: bool = False) -> list[RunOutcome]:
    """Train ``graph`` once per configuration (one population where they can share one) and keep ``tasks``'
    test predictions and metrics; with ``mechanisms_first``, the first run keeps its gates and stitch weights;
    with ``keep_first``, its trained network (:class:`KeptModel`).
    """
    results = train_population(graph, data, configs)
    out = [_outcome(res, graph, data, cfg, tasks, mechanisms_first and i == 0)
           for i, (res, cfg) in enumerate(zip(results, configs))]
    if keep_first and out and out[0].status == "ok":
        out[0] = replace(out[0], kept=(KeptModel(graph, results[0], tuple(tasks)),))
    return out


def train_run(graph: SharingGraph, data: MultiTaskData, config: TrainConfig, tasks: Sequence[str],
              mechanisms: bool = False) -> RunOutcome:
    """Train ``graph`` once with ``config`` (see :func:`train_runs`)."""
    return train_runs(graph, data, [config], tasks, mechanisms)[0]


def _outcome(res: TrainResult, graph: SharingGraph, data: MultiTaskData, config: TrainConfig,
             tasks: Sequence[str], mechanisms: bool) -> RunOutcome:
    specs = {s.name: s for s in data.tasks}
    col = {s.name: i for i, s in enumerate(data.tasks)}
    y = data.y[data.indices("test")]
    val = {t: float(res.val_metrics.get(t, {}).get(specs[t].primary_metric, math.nan)) for t in tasks}
    if res.status != "ok" or res.model is None:
        n = y.shape[0]
        preds = {t: np.full((n, graph.g.nodes[graph.head(t)]["out_dim"]), np.nan, np.float32) for t in tasks}
        return RunOutcome(config.seed, "diverged", {t: math.nan for t in tasks}, val, preds, ())
    preds = _test_predictions(res, data, tasks)
    import torch

    test = {t: compute_metric(specs[t], specs[t].primary_metric, torch.from_numpy(preds[t]), y[:, col[t]].cpu())
            for t in tasks}
    gates, stitch = _mechanism_values(res, data) if mechanisms else (None, None)
    return RunOutcome(config.seed, "ok", test, val, preds, tuple(t for t in tasks if res.still_learning(t)),
                      gates, stitch)


def _mechanism_values(res: TrainResult, data: MultiTaskData) -> tuple[dict | None, dict | None]:
    import torch

    model = res.model
    idx = data.indices("val")
    with torch.no_grad():
        model.eval()
        gates = {k: v.float().cpu().tolist() for k, v in model.gate_values(data.x[idx[:2048]]).items()}
        stitch = {k: v.float().cpu().tolist() for k, v in model.stitch_weights().items()}
    return (gates or None), (stitch or None)


def control_groups(baselines: Mapping[str, TaskBaseline]) -> list[tuple[dict, list[str]]]:
    """The control's trainings: ``(baseline spec, tasks)`` per distinct (graph, configuration) pair."""
    groups: dict[str, list[str]] = {}
    for t, b in baselines.items():
        groups.setdefault(json.dumps({"graph": b.graph, "train": b.config}, sort_keys=True), []).append(t)
    return [(json.loads(k), tasks) for k, tasks in groups.items()]


def train_control_runs(data: MultiTaskData, baselines: Mapping[str, TaskBaseline], base: TrainConfig,
                       budget: Mapping[str, object], seeds: Sequence[int], keep_first: bool = False
                       ) -> list[RunOutcome]:
    """The control with each of ``seeds``: every task's tuned baseline trained with the shared ``budget``
    (the seeds of each baseline configuration as one population, its tasks drawing the batches of the
    independent network of every task, ``TrainConfig.batch_tasks``, so a task's run does not depend on
    which tasks share its configuration); one :class:`RunOutcome` per seed; with
    ``keep_first``, the first seed keeps each configuration's network (one :class:`KeptModel` each)."""
    per_group = []
    for spec, tasks in control_groups(baselines):
        g_full = SharingGraph.from_dict(spec["graph"])
        g = SharingGraph.independent({t: g_full.g.nodes[g_full.head(t)]["out_dim"] for t in tasks}, g_full.backbone)
        cfgs = [base.updated(**arm_params(spec["train"]), **budget, seed=s, batch_tasks=data.task_names)
                for s in seeds]  # the batches of the independent network of every task
        per_group.append(train_runs(g, data, cfgs, tasks, keep_first=keep_first))
    order = [s.name for s in data.tasks]
    out = []
    for i, seed in enumerate(seeds):
        runs = [group[i] for group in per_group]
        test = {t: v for r in runs for t, v in r.test.items()}
        val = {t: v for r in runs for t, v in r.val.items()}
        preds = {t: v for r in runs for t, v in r.preds.items()}
        status = next((r.status for r in runs if r.status != "ok"), "ok")
        out.append(RunOutcome(seed, status, {t: test[t] for t in order}, {t: val[t] for t in order},
                              {t: preds[t] for t in order}, tuple(t for r in runs for t in r.still_learning),
                              kept=tuple(k for r in runs for k in r.kept)))
    return out


def train_control(data: MultiTaskData, baselines: Mapping[str, TaskBaseline], base: TrainConfig,
                  budget: Mapping[str, object], seed: int) -> RunOutcome:
    """One run of the control with ``seed`` (see :func:`train_control_runs`)."""
    return train_control_runs(data, baselines, base, budget, [seed])[0]

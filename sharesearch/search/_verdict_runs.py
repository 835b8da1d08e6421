"""The verdict's runs: retrain the chosen candidates with fresh seeds and test them once.

After the search, the top-k candidates and the reference architectures are
retrained with ``n_seeds`` fresh seeds, as are the tuned baselines, and
evaluated **once** on the test split, which the search never saw: per-task
Welch tests with Holm correction and a bootstrap interval on Δm
(:func:`sharesearch.verdict.task_verdicts`). The statistics live in
:mod:`sharesearch.verdict`; this module only trains and collects.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from ..data import MultiTaskData
from ..graph import SharingGraph
from ..tasks import metric_direction
from ..training import TrainConfig, TrainResult, train
from ..verdict import task_verdicts
from ._baselines import ensure_baselines
from ._records import StudyContext, TaskBaseline, TrialRecord, write_verdict
from ._storage import load_study

__all__ = ["compute_verdict", "run_verdict", "VERDICT_SEED_OFFSET"]

VERDICT_SEED_OFFSET = 1000  # verdict seeds never coincide with the search seed


@dataclass(frozen=True)
class _Run:
    """One architecture the verdict retrains."""

    name: str  # "shared-bottom", "trial 12", ...
    trial: int  # its trial number in the study
    graph: SharingGraph  # the topology
    train: dict[str, Any]  # its training parameters (TrainConfig field -> value)


def _top_candidates(study: optuna.Study, k: int, skip_keys: set[str]) -> list[_Run]:
    """The ``k`` best completed non-reference trials with distinct topologies (Pareto front first)."""
    done = [(t, TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    done = [(t, r) for t, r in done if r.reference is None and math.isfinite(t.values[0])]
    front = {t.number for t in study.best_trials} if len(study.directions) > 1 else set()
    done.sort(key=lambda tr: (tr[0].number not in front, -tr[0].values[0]))
    out, seen = [], set(skip_keys)
    for t, rec in done:
        if len(out) == k:
            break
        if rec.graph_key in seen:
            continue
        seen.add(rec.graph_key)
        out.append(_Run(f"trial {t.number}", t.number, rec.sharing_graph(), rec.train))
    return out


def _reference_runs(study: optuna.Study) -> list[_Run]:
    """The first trained trial of each reference architecture."""
    out: dict[str, _Run] = {}
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.reference and rec.reference not in out and rec.trained:
            out[rec.reference] = _Run(rec.reference, t.number, rec.sharing_graph(), rec.train)
    return list(out.values())


def _baseline_test_metrics(data: MultiTaskData, baselines: Mapping[str, TaskBaseline], train_base: TrainConfig,
                           seeds: Sequence[int], tick) -> dict[str, list[float]]:
    """Each task's primary test metric per seed, its tuned baseline retrained (one run per shared config)."""
    groups: dict[str, list[str]] = {}  # baseline configuration -> tasks using it
    for t, b in baselines.items():
        groups.setdefault(json.dumps({"graph": b.graph, "train": b.config}, sort_keys=True), []).append(t)
    primary = {s.name: s.primary_metric for s in data.tasks}
    out: dict[str, list[float]] = {t.name: [] for t in data.tasks}
    for key, tasks in groups.items():
        spec = json.loads(key)
        g_full = SharingGraph.from_dict(spec["graph"])
        g = SharingGraph.independent({t: g_full.g.nodes[g_full.head(t)]["out_dim"] for t in tasks},
                                     g_full.backbone)
        for seed in seeds:
            test = train(g, data, train_base.updated(**spec["train"], seed=seed)).evaluate(data, "test")
            for t in tasks:
                out[t].append(test[t][primary[t]])
            tick()
    return out


def _candidate_verdict(run: _Run, data: MultiTaskData, base_test: Mapping[str, list[float]],
                       train_base: TrainConfig, seeds: Sequence[int], alpha: float, tick) -> dict[str, Any]:
    """Retrain ``run`` with each seed, test once, and compare with the baselines' test metrics."""
    primary = {s.name: s.primary_metric for s in data.tasks}
    test_metrics: dict[str, list[float]] = {t.name: [] for t in data.tasks}
    gates, stitch = None, None
    for seed in seeds:
        res = train(run.graph, data, train_base.updated(**run.train, seed=seed))
        test = res.evaluate(data, "test")
        for t in data.tasks:
            test_metrics[t.name].append(test[t.name][primary[t.name]])
        if seed == seeds[0] and res.model is not None:
            gates, stitch = _mechanism_values(res, data)
        tick()
    directions = {s.name: metric_direction(s.primary_metric) for s in data.tasks}
    verdict = task_verdicts(test_metrics, base_test, directions, alpha=alpha,
                            weights={t.name: t.weight for t in data.tasks})
    return {"name": run.name, "trial": run.trial, "graph": run.graph.to_dict(), "train": run.train,
            "verdict": verdict.to_dict(), "test_metrics": test_metrics, "gates": gates, "stitch": stitch}


def compute_verdict(study: optuna.Study, data: MultiTaskData | None = None, *, n_seeds: int | None = None,
                    top_k: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Retrain the top candidates, the references and the baselines with fresh
    seeds, evaluate each once on the test split, and store the verdict.

    ``n_seeds`` and ``top_k`` default to the study's search configuration;
    ``data`` to the study's recorded source. Returns the verdict dict also
    stored in the study (schema in :mod:`sharesearch.report`).
    """
    from tqdm.auto import tqdm

    ctx = StudyContext.from_study(study)
    n_seeds = n_seeds or ctx.search.n_seeds
    top_k = ctx.search.top_k if top_k is None else top_k
    if data is None:
        data = ctx.data.load(study.study_name)
    baselines = ensure_baselines(study, data, ctx.search_space(), ctx.train)
    seeds = [VERDICT_SEED_OFFSET + i for i in range(n_seeds)]
    runs = _reference_runs(study) + _top_candidates(study, top_k, set(ctx.references.values()))
    n_groups = len({json.dumps({"graph": b.graph, "train": b.config}, sort_keys=True) for b in baselines.values()})
    bar = tqdm(total=(len(runs) + n_groups) * n_seeds, desc="verdict", unit="run", disable=not progress,
               dynamic_ncols=True)
    base_test = _baseline_test_metrics(data, baselines, ctx.train, seeds, bar.update)
    candidates = [_candidate_verdict(run, data, base_test, ctx.train, seeds, ctx.search.alpha, bar.update)
                  for run in runs]
    bar.close()
    out = {
        "protocol": {"selection": "validation", "test_used_once": True, "seeds": seeds, "alpha": ctx.search.alpha,
                     "n_seeds": n_seeds, "top_k": top_k, "test": "Welch t-test per task, Holm across tasks",
                     "delta_m_interval": "bootstrap over seeds",
                     "metric": {s.name: s.primary_metric for s in data.tasks},
                     "baselines": "independent networks tuned on validation, best configuration per task"},
        "candidates": candidates,
        "baseline_test_metrics": base_test,
        "computed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_verdict(study, out)
    return out


def run_verdict(storage: str | optuna.storages.BaseStorage, study_name: str, *, n_seeds: int | None = None,
                top_k: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Load ``study_name`` from ``storage`` (a URL or an open storage) and :func:`compute_verdict` it."""
    return compute_verdict(load_study(storage, study_name), n_seeds=n_seeds, top_k=top_k, progress=progress)


def _mechanism_values(res: TrainResult, data: MultiTaskData) -> tuple[dict | None, dict | None]:
    import torch

    model = res.model
    idx = data.indices("val")
    with torch.no_grad():
        model.eval()
        gates = {k: v.float().cpu().tolist() for k, v in model.gate_values(data.x[idx[:2048]]).items()}
        stitch = {k: v.float().cpu().tolist() for k, v in model.stitch_weights().items()}
    return (gates or None), (stitch or None)

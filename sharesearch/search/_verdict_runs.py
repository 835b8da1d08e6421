"""The verdict: retrain the chosen arms and a matched control with the same seeds, and test them.

After the search, the top-k candidates, the trees the affinity pass proposed
(when k > 0), the reference architectures (the *arms*) and the *control* -- the tuned independent single-task networks, each
task with its own configuration -- are retrained with the same seeds and the
same budget in optimizer steps (:data:`~._verdict_arms.BUDGET_FIELDS` come from
the study's training configuration, or the largest step count any arm or
baseline configuration would take), and evaluated on the test split, which
the search never saw. The ``independent`` reference *is* the control trained
again with a disjoint set of seeds: an A/A check whose Δm interval must
contain 0.

* **Seeds.** ``n_seeds`` given: that many. Otherwise the power rule
  (:func:`~._protocol.plan_seeds`): enough seeds to detect a 10 % loss with
  80 % power after Holm, at the control's largest seed-to-seed coefficient of
  variation on validation (``TaskBaseline.val_cv`` when the baseline record has
  it, else a pilot of the first 3 control seeds, which are then reused).
* **Populations.** The seeds of each arm, and of each of the control's
  configurations, train together as one population
  (:func:`sharesearch.training.train_population`); each seed's run equals
  its separate run.
* **Inference.** Each run keeps its per-row test predictions, so the Δm
  interval adds the test-row sampling variance, rows paired across arms
  (:class:`sharesearch.verdict.RowPredictions`). A diverged run is NaN for its
  tasks and counted by the verdict; never a crash.
* **Looks at the test split.** Each computation is kept (``history``, oldest
  first; the top level is the current one); :class:`~._protocol.VerdictProtocol`
  counts the distinct designs (seeds, arms, budget) evaluated on test, so a
  recomputation with other seeds or top-k records ``test_looks = 2`` and
  ``test_used_once = False``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ..data import MultiTaskData
from ..graph import SharingGraph
from ..provenance import Provenance
from ..tasks import metric_direction
from ..training import TrainConfig, step_budget
from ..verdict import Recommendation, RowPredictions, recommend, relative_delta, task_verdicts
from ._baselines import ensure_baselines
from ._config import SearchConfig
from ._objective import weighted_mean
from ._protocol import VerdictProtocol, count_looks, design_key, plan_seeds
from ._records import StudyContext, TaskBaseline, TrialRecord, read_verdict, write_verdict
from ._storage import load_study
from ._verdict_arms import (KeptModel, RowMetric, RunOutcome, arm_params, control_groups, ship_state,
                            train_control_runs, train_runs)

__all__ = ["compute_verdict", "run_verdict", "fresh_folder", "VERDICT_SEED_OFFSET", "PILOT_SEEDS", "ROW_RESAMPLES"]

VERDICT_SEED_OFFSET = 1000  # verdict seeds never coincide with the search seed
PILOT_SEEDS = 3  # control runs that measure the spread when the baseline record has none
ROW_RESAMPLES = 300  # test-row bootstrap resamples per Δm interval


@dataclass(frozen=True)
class _Run:
    """One architecture the verdict retrains."""

    name: str  # "shared-bottom", "trial 12", ...
    trial: int  # its trial number in the study
    graph: SharingGraph  # the topology
    train: dict[str, Any]  # its training parameters (TrainConfig field -> value)


def _top_candidates(study: optuna.Study, k: int, skip_keys: set[str]) -> list[_Run]:
    """The ``k`` best completed non-reference trials with distinct topologies (Pareto front first), then,
    when ``k > 0``, every completed tree the affinity pass proposed that is not among them: each tree once,
    in the version -- as first enqueued, or on the best trial's settings (``tuned_from``) -- with the higher
    value in the search (on ``synthetic-planted`` either version was the better one in some data seed).

    A trial's value is one seed's validation Δm, and neighbouring trees differ by about that seed noise
    (on ``synthetic-planted`` the planted tree scored below three other trials in one search). So the
    affinity's trees -- the data's own answer, like the references a prior choice rather than a ranked
    one -- are always retrained too, and the verdict picks among all arms on their mean over its seeds.
    """
    done = [(t, TrialRecord.from_trial(t)) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    done = [(t, r) for t, r in done if r.reference is None and math.isfinite(t.values[0])]
    front = {t.number for t in study.best_trials} if len(study.directions) > 1 else set()
    done.sort(key=lambda tr: (tr[0].number not in front, -tr[0].values[0]))
    per_tree: dict[int, tuple] = {}  # tree index -> its version with the higher value (the first on a tie)
    for t, r in sorted((tr for tr in done if tr[1].affinity_tree is not None), key=lambda tr: tr[0].number):
        if r.affinity_tree not in per_tree or t.values[0] > per_tree[r.affinity_tree][0].values[0]:
            per_tree[r.affinity_tree] = (t, r)
    proposed = [per_tree[i] for i in sorted(per_tree)]
    out, seen = [], set(skip_keys)
    for i, (t, rec) in enumerate(done + (proposed if k > 0 else [])):
        if rec.graph_key in seen or (i < len(done) and len(out) >= k):  # the k best first, then the proposed
            continue
        seen.add(rec.graph_key)
        out.append(_Run(f"trial {t.number}", t.number, rec.sharing_graph(), rec.train))
    return out


def _reference_runs(study: optuna.Study) -> dict[str, _Run]:
    """Each reference architecture's trial, by name: of its versions (as first enqueued, and on the best
    trial's training and width, ``tuned_from``) the completed one with the higher value, the first on a tie;
    the first trained one when none completed."""
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    out: dict[str, tuple[float, _Run]] = {}
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if not rec.reference or not rec.trained:
            continue
        done = t.state == TrialState.COMPLETE and t.values is not None and math.isfinite(t.values[0])
        score = sign * t.values[0] if done else -math.inf
        if rec.reference not in out or score > out[rec.reference][0]:
            out[rec.reference] = (score, _Run(rec.reference, t.number, rec.sharing_graph(), rec.train))
    return {name: run for name, (_, run) in out.items()}


def _requested_seeds(n_seeds: int | None, search: SearchConfig) -> int | None:
    """``n_seeds`` if given; else the study's configured value; None (or "auto") means the power rule."""
    if n_seeds is not None:
        return int(n_seeds)
    value = search.n_seeds
    if value is None or value == "auto":
        return None
    return int(value)


def _budget(base: TrainConfig, data: MultiTaskData, runs: Sequence[_Run],
            baselines: dict[str, TaskBaseline]) -> dict[str, Any]:
    """The budget every arm and the control share: the study's cap, else the largest any of them would take; the
    evaluation cadence and early stopping the runs were searched with (the space fixes them for every run), else
    the study's base configuration's."""
    params = [r.train for r in runs] + [spec["train"] for spec, _ in control_groups(baselines)]
    fixed = {}
    for k in ("eval_every", "patience", "min_delta"):
        seen = {p.get(k, getattr(base, k)) for p in params}
        fixed[k] = seen.pop() if len(seen) == 1 else getattr(base, k)
    if base.max_steps is not None:
        return {"max_steps": base.max_steps, **fixed}
    return {"max_steps": max(step_budget(base.updated(**p), data) for p in params), **fixed}


def _recorded_cv(baselines: dict[str, TaskBaseline]) -> dict[str, float | None]:
    """Each task's coefficient of variation over the control's confirmation seeds (None where not measured)."""
    return {t: b.val_cv for t, b in baselines.items()}


def _control_cv(baselines: dict[str, TaskBaseline], pilot: Sequence[RunOutcome]) -> tuple[dict[str, float], str]:
    """Each task's seed-to-seed coefficient of variation of the control's validation metric, and its source."""
    recorded = _recorded_cv(baselines)
    if recorded and all(c is not None and math.isfinite(c) for c in recorded.values()):
        return {t: float(c) for t, c in recorded.items()}, "baseline record"
    out = {}
    for t in baselines:
        v = np.array([r.val[t] for r in pilot], dtype=float)
        v = v[np.isfinite(v)]
        out[t] = float(np.std(v, ddof=1) / abs(np.mean(v))) if v.size >= 2 and np.mean(v) != 0 else math.nan
    return out, f"pilot of {len(pilot)} control seeds"


def _run_summary(outcomes: Sequence[RunOutcome]) -> dict[str, Any]:
    """Seeds, diverged runs and still-learning runs of one arm (or the control)."""
    tasks: dict[str, int] = {}
    for o in outcomes:
        for t in o.still_learning:
            tasks[t] = tasks.get(t, 0) + 1
    return {"seeds": [o.seed for o in outcomes], "n_runs": len(outcomes),
            "n_diverged": sum(o.status != "ok" for o in outcomes),
            "n_still_learning": sum(o.n_still_learning > 0 for o in outcomes), "still_learning_tasks": tasks}


def _arm_entry(name: str, trial: int | None, graph: SharingGraph | None, params: dict[str, Any],
               runs: Sequence[RunOutcome], control: Sequence[RunOutcome], data: MultiTaskData, alpha: float,
               row_resamples: int) -> dict[str, Any]:
    """One arm's verdict against the control, with its runs' summary."""
    tasks = data.task_names
    cand = {t: [o.test[t] for o in runs] for t in tasks}
    base = {t: [o.test[t] for o in control] for t in tasks}
    rows = None
    if row_resamples > 0:
        y = data.y[data.indices("test")].cpu().numpy()
        rows = RowPredictions({t: y[:, i] for i, t in enumerate(tasks)}, {t: [o.preds[t] for o in runs] for t in tasks},
                              {t: [o.preds[t] for o in control] for t in tasks},
                              RowMetric({s.name: s for s in data.tasks}), row_resamples)
    verdict = task_verdicts(cand, base, {s.name: metric_direction(s.primary_metric) for s in data.tasks},
                            alpha=alpha, weights={s.name: s.weight for s in data.tasks}, rows=rows, arm=name)
    val_runs = _val_delta_m_runs(runs, control, data)
    return {"name": name, "trial": trial, "graph": graph.to_dict() if graph is not None else None, "train": params,
            "verdict": verdict.to_dict(), "val_delta_m": _mean_finite(val_runs),
            "val_delta_m_runs": [x if math.isfinite(x) else None for x in val_runs],
            "test_metrics": cand, "runs": _run_summary(runs),
            "gates": runs[0].gates if runs else None, "stitch": runs[0].stitch if runs else None}


def _val_delta_m_runs(runs: Sequence[RunOutcome], control: Sequence[RunOutcome],
                      data: MultiTaskData) -> list[float]:
    """Each run's validation Δm against the control (NaN when it has none), in the order of ``runs``.

    A run's Δm compares its per-task validation metric with the mean of the
    control runs' on the same seeds; the recommendation chooses its arm on
    their mean, so the test split judges only the arm chosen, and pairs them
    by seed across arms to say which arms it cannot tell apart.
    """
    if not control:
        return [math.nan] * len(runs)
    dirs = {s.name: metric_direction(s.primary_metric) for s in data.tasks}
    ref = {t: float(np.mean([o.val[t] for o in control])) for t in dirs}
    return [weighted_mean(data, {t: relative_delta(o.val[t], ref[t], dirs[t]) for t in dirs if t in o.val})
            if any(t in o.val for t in dirs) else math.nan for o in runs]


def _mean_finite(values: Sequence[float]) -> float | None:
    """The mean of the finite values (None when there is none)."""
    kept = [x for x in values if math.isfinite(x)]
    return float(np.mean(kept)) if kept else None


def compute_verdict(study: optuna.Study, data: MultiTaskData | None = None, *, n_seeds: int | None = None,
                    top_k: int | None = None, progress: bool = False,
                    row_resamples: int = ROW_RESAMPLES, device: str | None = None,
                    model_dir: str | Path | None = None) -> dict[str, Any]:
    """Retrain the top candidates, the references and the matched control with the same seeds, test them, and
    store the verdict (the previous one kept in its ``history``).

    ``n_seeds`` None: the study's configured number, or the power rule when
    that is auto (see the module docstring); ``top_k`` defaults to the
    study's; ``data`` to its recorded source; ``device`` (this process's, not
    the study's) to the study's training device, ``"auto"``. Returns the verdict dict also
    stored in the study (schema in :mod:`sharesearch.report`).
    """
    from tqdm.auto import tqdm

    ctx = StudyContext.from_study(study)
    if device is not None:
        ctx = replace(ctx, train=ctx.train.updated(device=device))
    top_k = ctx.search.top_k if top_k is None else top_k
    if data is None:
        data = ctx.data.load(study.study_name)
    baselines = ensure_baselines(study, data, ctx.search_space(), ctx.train)
    refs = _reference_runs(study)
    aa_ref = refs.pop("independent", None)
    runs = list(refs.values()) + _top_candidates(study, top_k, set(ctx.references.values()))
    budget = _budget(ctx.train, data, runs, baselines)
    control: dict[int, RunOutcome] = {}
    keep = model_dir is not None

    def control_runs(wanted_seeds: Sequence[int]) -> list[RunOutcome]:  # pilot seeds are reused, not retrained
        new = [s for s in wanted_seeds if s not in control]
        control.update(zip(new, train_control_runs(data, baselines, ctx.train, budget, new, keep_first=keep)
                           if new else []))
        return [control[s] for s in wanted_seeds]

    wanted = _requested_seeds(n_seeds, ctx.search)
    if wanted is None:
        cv, source = _control_cv(baselines, [])
        if source != "baseline record":
            cv, source = _control_cv(baselines, control_runs([VERDICT_SEED_OFFSET + i for i in range(PILOT_SEEDS)]))
    else:
        cv, source = {t: math.nan for t in baselines}, ""
    plan = plan_seeds(wanted, cv, alpha=ctx.search.alpha, source=source)
    seeds = [VERDICT_SEED_OFFSET + i for i in range(plan.n_seeds)]
    aa_seeds = [VERDICT_SEED_OFFSET + plan.n_seeds + i for i in range(plan.n_seeds)]
    bar = tqdm(total=(len(runs) + 2) * plan.n_seeds, desc="verdict", unit="run", disable=not progress,
               dynamic_ncols=True)

    def tick(outcomes: list[RunOutcome]) -> list[RunOutcome]:
        bar.update(len(outcomes))
        return outcomes

    base_runs = tick(control_runs(seeds))
    kept: dict[str, tuple[KeptModel, ...]] = {"independent": base_runs[0].kept if base_runs else ()}
    aa_runs = tick(train_control_runs(data, baselines, ctx.train, budget, aa_seeds))
    entries = [_arm_entry("independent", aa_ref.trial if aa_ref else None, aa_ref.graph if aa_ref else None,
                          {"control": "the tuned baselines, per-task configurations"}, aa_runs, base_runs, data,
                          ctx.search.alpha, row_resamples)]
    for run in runs:
        cfgs = [ctx.train.updated(**arm_params(run.train), **budget, seed=s) for s in seeds]
        outs = tick(train_runs(run.graph, data, cfgs, data.task_names, mechanisms_first=True, keep_first=keep))
        kept[run.name] = outs[0].kept if outs else ()
        entries.append(_arm_entry(run.name, run.trial, run.graph, run.train, outs, base_runs, data,
                                  ctx.search.alpha, row_resamples))
    bar.close()
    rec = recommend(entries)
    if model_dir is not None:
        provenance = Provenance(arm=rec.arm, split="test", source="verdict", study=study.study_name,
                                trial=rec.trial, seed=seeds[0], delta_m=_finite(rec.delta_m),
                                deltas={t: d for t, d in rec.test_deltas.items() if math.isfinite(d)})
        rec = _ship(rec, kept.get(rec.arm, ()), data, _val_score(data, baselines), Path(model_dir), provenance)
    out = {"protocol": _protocol(study, plan, seeds, aa_seeds, entries, budget, top_k, ctx, data, row_resamples),
           "candidates": entries, "control": _run_summary(base_runs),
           "baseline_test_metrics": {t: [o.test[t] for o in base_runs] for t in data.task_names},
           "recommendation": rec.to_dict(), "computed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out["history"] = _history(read_verdict(study))
    write_verdict(study, out)
    return out


def _val_score(data: MultiTaskData, baselines: dict[str, TaskBaseline]) -> Callable[[dict[str, float]], float]:
    """The validation Δm against the control of some tasks' primary metrics (NaN when any is not finite)."""
    dirs = {s.name: metric_direction(s.primary_metric) for s in data.tasks}

    def score(primary: dict[str, float]) -> float:
        deltas = {t: relative_delta(m, baselines[t].val_metric, dirs[t]) for t, m in primary.items()}
        return weighted_mean(data, deltas) if deltas else math.nan

    return score


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def fresh_folder(path: Path) -> Path:
    """``path`` when it does not exist yet, else the first free ``<path>-2``, ``<path>-3``, ... beside it.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "model").mkdir(); fresh_folder(d / "model").name
    'model-2'
    """
    if not path.exists():
        return path
    i = 2
    while path.with_name(f"{path.name}-{i}").exists():
        i += 1
    return path.with_name(f"{path.name}-{i}")


def _ship(rec: Recommendation, kept: Sequence[KeptModel], data: MultiTaskData,
          score: Callable[[dict[str, float]], float], model_dir: Path, provenance: Provenance) -> Recommendation:
    """Save the recommended arm's seed-0 network(s) into a fresh folder and record it in the recommendation.

    One network (an arm, or a control of one configuration): saved into the
    folder itself. A control of several configurations: one sub-folder per
    configuration (``group-0``, ``group-1``, ...), each a model folder of its
    tasks. Nothing kept (the arm's first run diverged): nothing written.
    """
    from ..export import save_model

    if not kept:
        return replace(rec, notes=rec.notes + ("no model saved: the recommended arm's seed-0 run diverged",))
    folder = fresh_folder(model_dir)
    parts = [(folder, kept[0])] if len(kept) == 1 else [(folder / f"group-{i}", k) for i, k in enumerate(kept)]
    for path, k in parts:
        state = ship_state(k, data, score)
        prov = replace(provenance, deltas={t: d for t, d in provenance.deltas.items() if t in k.tasks},
                       delta_m=provenance.delta_m if len(parts) == 1 else None)
        save_model(state, k.graph, path, tasks=[s for s in data.tasks if s.name in k.tasks],
                   preprocessing=getattr(data, "preprocessing", None), provenance=prov)
    notes = rec.notes
    if len(parts) > 1:
        notes += (f"the control has {len(parts)} configurations: one model folder per configuration under "
                  f"{folder} ({', '.join(p.name for p, _ in parts)})",)
    keep = [t for t, c in rec.per_task.items() if c.choice == "independent"] if rec.kind == "share-partly" else []
    if keep:
        notes += (f"the saved network also has heads for {', '.join(keep)}; serve them from their independent "
                  "networks instead",)
    return replace(rec.with_model_dir(str(folder)), notes=notes)


def _history(previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The verdicts before this one, oldest first (each without its own history)."""
    if not previous:
        return []
    return list(previous.get("history") or []) + [{k: v for k, v in previous.items() if k != "history"}]


def _protocol(study: optuna.Study, plan, seeds: list[int], aa_seeds: list[int], entries: list[dict], budget: dict,
              top_k: int, ctx: StudyContext, data: MultiTaskData, row_resamples: int) -> dict[str, Any]:
    """The :class:`VerdictProtocol` of this computation, its looks counted against the stored history."""
    history = _history(read_verdict(study))
    design = design_key(seeds, aa_seeds, [(e["name"], e["trial"]) for e in entries], budget)
    return VerdictProtocol(
        seeds=tuple(seeds), independent_seeds=tuple(aa_seeds), seed_plan=plan, top_k=top_k,
        alpha=ctx.search.alpha, budget=dict(budget), metric={s.name: s.primary_metric for s in data.tasks},
        design=design, test_looks=count_looks(history, design), computations=len(history) + 1,
        row_resamples=row_resamples).to_dict()


def run_verdict(storage: str | optuna.storages.BaseStorage, study_name: str, *, n_seeds: int | None = None,
                top_k: int | None = None, progress: bool = False, device: str | None = None,
                model_dir: str | Path | None = None) -> dict[str, Any]:
    """Load ``study_name`` from ``storage`` (a URL or an open storage) and :func:`compute_verdict` it
    (``model_dir``: where the recommended model goes, never over an existing folder)."""
    return compute_verdict(load_study(storage, study_name), n_seeds=n_seeds, top_k=top_k, progress=progress,
                           device=device, model_dir=model_dir)

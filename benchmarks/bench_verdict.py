"""Is the verdict right? Calibration, power and recovery on synthetic data where the truth is known.

* ``calibration`` -- ``synthetic-null`` (no task shares signal with another), over many data
  seeds: the control (independent networks) against the same networks retrained with a disjoint
  set of seeds -- an A/A test. Prints how often the Δm interval covers 0 (nominal 1 - alpha) and the
  per-task rate of "negative transfer" verdicts (nominal at most alpha).
* ``companions`` -- the control agrees with itself: on ``synthetic-null``, the T-task independent
  network (what every candidate is trained as) against each task trained on a network of its own
  (how the control is trained), paired by seed: a task's result must not depend on the tasks
  trained beside it. Side by side, the shipped protocol or early stopping with a plateau schedule
  (the spaces' protocol before), and single-task batches drawn over every task's rows (as the
  control draws them) or over the task's own rows. Prints how often the Δm interval covers 0.
* ``budget`` -- trained to convergence: the independent network with the protocol's budget against
  twice that budget, paired by seed; prints how often twice the budget is not significantly better.
* ``aa`` -- the same A/A check as ``calibration``, but through the product's own path: per data
  seed of ``synthetic-null``, ``run_search`` tunes the control (its baselines), and
  ``compute_verdict`` retrains it on the verdict's seeds and again on disjoint seeds (the
  ``independent`` arm). Prints how often that arm's Δm interval covers 0 and how often a task is
  flagged, and what the recommendation then says.
* ``power`` -- ``synthetic-planted`` (a cluster of 3, a cluster of 2, one unrelated task;
  nonlinear targets; binary and regression mixed; 70% of labels missing): shared-bottom against the
  control, seeds per arm from :func:`sharesearch.verdict.seeds_for_power` at the control's measured
  spread. Prints how often the unrelated task's negative transfer is flagged (Holm over the tasks).
* ``regret`` -- every pruned trial of a default search on ``synthetic-planted`` trained to the
  end: the share that would have beaten the best trial the search kept (validation Δm).
* ``oracle`` -- is the planted tree the best answer the data supports? Per data seed of
  ``synthetic-planted``, the planted tree (clusters at every stage), its neighbours (one task
  leaves its cluster, the unrelated task joins one, a shared first stage, task-specific last
  stage), shared-bottom and independent networks, each trained with several seeds: prints each
  tree's validation Δm (mean over seeds, against the independent networks) and the share of data
  seeds where the planted tree is the best on validation -- the ceiling of ``recovery`` -- and, per
  data seed, the lead of the best tree grouping the clusters over the best one not grouping them
  with a Welch 95% interval: a seed whose interval holds 0 does not tell the planted tree apart.
* ``recovery`` -- the default search on ``synthetic-planted`` over data seeds: does the best
  topology group exactly the planted clusters, and does it beat shared-bottom and independent on
  test? Prints one row per data seed.

Every arm is trained under one protocol (``PROTOCOL``: a fixed budget in optimizer steps, cosine
decay, each task at its best validation evaluation) and tested once; intervals include test-row sampling variance (rows
resampled paired across arms). Lines read ``what: observed X vs target Y -> ratio x``.

Commands::

    python benchmarks/bench_verdict.py --part calibration      # 20 data seeds
    python benchmarks/bench_verdict.py --part companions       # 20 data seeds, 2 protocols x 2 batchings
    python benchmarks/bench_verdict.py --part budget --lr 0.0274 --data-seeds 5   # twice the budget
    python benchmarks/bench_verdict.py --part power            # 10 data seeds
    python benchmarks/bench_verdict.py --part aa --data-seeds 10   # the A/A check as a search runs it
    python benchmarks/bench_verdict.py --part oracle           # 5 data seeds, 4 runs of ~12 fixed trees each
    python benchmarks/bench_verdict.py --part recovery         # 5 data seeds, a full search each
    python benchmarks/bench_verdict.py --part oracle --data-option rank=3 --data-option d=14   # a source variant
    python benchmarks/bench_verdict.py --quick                 # every part, tiny (a smoke run)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.stats
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import groups_planted, setup_threads, trials_until_planted  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.inputs import parse_options  # noqa: E402
from sharesearch.tasks import compute_metric, metric_direction  # noqa: E402
from sharesearch.training import TrainConfig, train, train_population  # noqa: E402
from sharesearch.verdict import RowPredictions, seeds_for_power, task_verdicts  # noqa: E402

#: one training protocol for every arm, the shipped spaces' budget: 3000 optimizer steps with the learning
#: rate decaying to 0 by step (cosine), each task keeping its best validation evaluation, no early stop
PROTOCOL = TrainConfig(batch_size=128, lr=3e-3, max_steps=3000, eval_every=50, patience=0,
                       lr_schedule="cosine")
#: the protocol the spaces shipped before: early stopping when no task improves, halving on a plateau
#: (``--part companions`` measures what it did to a task trained beside others)
EARLY_STOP_PROTOCOL = PROTOCOL.updated(patience=10, lr_schedule="plateau")
FULL = {"calibration_seeds": 20, "power_seeds": 10, "recovery_seeds": 5, "calibration_runs": 6,
        "n": 1500, "row_resamples": 200, "n_trials": 40}
QUICK = {"calibration_seeds": 2, "power_seeds": 2, "recovery_seeds": 1, "calibration_runs": 2, "power_runs": 2,
         "top_k": 1,
         "n": 300, "row_resamples": 20, "n_trials": 6}
QUICK_PROTOCOL = PROTOCOL.updated(max_steps=40, eval_every=10)
ALPHA = 0.05


def _record(source: str, p: dict, seed: int) -> dict:
    """``source`` at ``p``'s row count and ``seed``, with the ``--data-option`` overrides on top of its preset:
    the data-source record ``run_search`` stores as its provenance."""
    return {"source": source, "options": {"n": p["n"], **p.get("data_options", {}), "seed": seed}}


def _data(source: str, p: dict, seed: int):
    """The data set of :func:`_record`."""
    return load_data(source, **_record(source, p, seed)["options"])


def _backbone(data) -> dict:
    return {"name": "mlp", "input_shape": list(data.input_shape), "widths": [64, 64, 32]}


def _arm(graph: SharingGraph, data, seeds, cfg: TrainConfig, tasks=None):
    """Test metric per task (``tasks``: the graph's, default every task) per run, and each run's per-row test
    outputs (numpy)."""
    tasks = data.tasks if tasks is None else tasks
    metrics = {t.name: [] for t in tasks}
    preds = {t.name: [] for t in tasks}
    for res in train_population(graph, data, [cfg.updated(seed=seed) for seed in seeds]):  # as the verdict does
        if res.status != "ok":
            for t in tasks:
                metrics[t.name].append(float("nan"))
                preds[t.name].append(np.full((int((data.split == 2).sum()), t.out_dim), np.nan, np.float32))
            continue
        test = res.evaluate(data, "test")
        out = res.predict(data, "test")
        for t in tasks:
            metrics[t.name].append(test[t.name][t.primary_metric])
            preds[t.name].append(out[t.name].cpu().numpy())
    return metrics, preds


def _verdict(cand, base, data, resamples: int, arm: str):
    """task_verdicts with the test rows resampled paired across the two arms."""
    specs = {t.name: t for t in data.tasks}
    y = data.y[data.indices("test")].numpy()

    def metric(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        spec = specs[task]
        return compute_metric(spec, spec.primary_metric, torch.from_numpy(y_pred), torch.from_numpy(y_true))

    rows = RowPredictions(y_true={t.name: y[:, i] for i, t in enumerate(data.tasks)}, candidate=cand[1],
                          baseline=base[1], metric=metric, n_resamples=resamples)
    directions = {t.name: metric_direction(t.primary_metric) for t in data.tasks}
    return task_verdicts(cand[0], base[0], directions, alpha=ALPHA, rows=rows, arm=arm,
                         weights={t.name: t.weight for t in data.tasks})


def calibration(p: dict, cfg: TrainConfig) -> list[str]:
    covered, negatives, tests = 0, 0, 0
    k = p["calibration_runs"]
    for s in range(p["calibration_seeds"]):
        data = _data("synthetic-null", p, s)
        g = SharingGraph.independent(data.tasks, _backbone(data))
        control = _arm(g, data, range(k), cfg)
        again = _arm(g, data, range(1000, 1000 + k), cfg)  # the same networks, disjoint seeds: A/A
        v = _verdict(again, control, data, p["row_resamples"], "independent (A/A)")
        lo, hi = v.delta_m_ci
        covered += lo <= 0 <= hi
        negatives += sum(tv.verdict == "negative transfer" for tv in v.tasks)
        tests += len(v.tasks)
        print(f"# calibration seed {s}: Δm {v.delta_m:+.4f} [{lo:+.4f}, {hi:+.4f}] "
              f"labels {[tv.verdict for tv in v.tasks]}", flush=True)
    n = p["calibration_seeds"]
    cov, fp = covered / n, negatives / tests
    return [_line(f"calibration (synthetic-null, {n} data seeds, {k} runs per arm): A/A Δm interval covers 0",
                  cov, 1 - ALPHA),
            _line(f"calibration (synthetic-null, {n} data seeds): per-task 'negative transfer' rate, A/A",
                  fp, ALPHA)]


def _alone(data, seeds, cfg: TrainConfig):
    """Like :func:`_arm`, each task trained on a network of its own (``cfg.batch_tasks`` says which rows its
    batches are drawn over: its own labelled rows, or those of every task as the control draws them)."""
    metrics, preds = {}, {}
    for spec in data.tasks:
        m, pr = _arm(SharingGraph.independent([spec], _backbone(data)), data, seeds, cfg, tasks=[spec])
        metrics.update(m)
        preds.update(pr)
    return metrics, preds


def companions(p: dict, cfg: TrainConfig) -> list[str]:
    """Does a task's result depend on the tasks trained beside it? The control must agree with itself:
    on ``synthetic-null`` (70% of labels missing; ``--source`` for another), the T-task independent
    network -- what every candidate is trained as -- against each task trained on a network of its own,
    paired by seed. Side by side: the shipped protocol or the early-stopping one the spaces used before,
    and the single-task runs drawing their batches over every task's rows (as the control trains them)
    or over their own rows only (with dense labels the two are the same, and only the first is run)."""
    k, n = p["calibration_runs"], p["calibration_seeds"]
    first, source = p.get("first_seed", 0), p.get("source", "synthetic-null")
    early = cfg.updated(patience=EARLY_STOP_PROTOCOL.patience, lr_schedule=EARLY_STOP_PROTOCOL.lr_schedule)
    every_rows, own_rows = "batches over every task's rows", "batches over its own rows"
    cases = [(proto, rows) for proto in ("shipped (cosine, fixed budget)", "early stop (plateau, patience 10)")
             for rows in (every_rows, own_rows)]
    covered = {c: 0 for c in cases}
    deltas: dict[tuple, list[float]] = {c: [] for c in cases}
    for s in range(first, first + n):
        data = _data(source, p, s)
        dense = not bool(torch.isnan(data.y).any())
        g = SharingGraph.independent(data.tasks, _backbone(data))
        joint = {}
        for proto, rows in cases:
            if dense and rows == own_rows:
                continue
            c = cfg if proto.startswith("shipped") else early
            if proto not in joint:
                joint[proto] = _arm(g, data, range(k), c)
            single = c.updated(batch_tasks=data.task_names) if rows == every_rows else c
            v = _verdict(joint[proto], _alone(data, range(k), single), data, p["row_resamples"], "independent network")
            lo, hi = v.delta_m_ci
            covered[proto, rows] += lo <= 0 <= hi
            deltas[proto, rows].append(v.delta_m)
            print(f"# companions seed {s}, {proto}, single-task {rows}: Δm of the T-task network over the tasks "
                  f"alone {v.delta_m:+.4f} [{lo:+.4f}, {hi:+.4f}]", flush=True)
    lines = []
    for proto, rows in cases:
        if not deltas[proto, rows]:
            continue
        print(f"# companions, {proto}, {rows}: mean Δm {float(np.mean(deltas[proto, rows])):+.4f} over {n} data seeds",
              flush=True)
        lines.append(_line(f"companions ({source}, lr {cfg.lr:g}, {n} data seeds, {k} runs per arm), {proto}, "
                           f"single-task runs with {rows}: the independent network's Δm interval against them "
                           "covers 0", covered[proto, rows] / n, 1 - ALPHA))
    return lines


def budget(p: dict, cfg: TrainConfig) -> list[str]:
    """Is the budget enough to converge? Per data seed (``--source``, default ``synthetic-mmoe``), the
    independent network trained with the protocol's step budget against the same runs with twice the
    budget (the schedule stretched with it), paired by seed: twice the budget should not be better."""
    k, n = p["calibration_runs"], p["calibration_seeds"]
    first, source = p.get("first_seed", 0), p.get("source", "synthetic-mmoe")
    held = 0
    for s in range(first, first + n):
        data = _data(source, p, s)
        g = SharingGraph.independent(data.tasks, _backbone(data))
        v = _verdict(_arm(g, data, range(k), cfg.updated(max_steps=2 * cfg.max_steps)), _arm(g, data, range(k), cfg),
                     data, p["row_resamples"], "twice the budget")
        lo, hi = v.delta_m_ci
        held += lo <= 0
        print(f"# budget seed {s}: Δm of {2 * cfg.max_steps} steps over {cfg.max_steps} {v.delta_m:+.4f} "
              f"[{lo:+.4f}, {hi:+.4f}]", flush=True)
    return [_line(f"budget ({source}, lr {cfg.lr:g}, {n} data seeds, {k} runs per arm): twice the budget is not "
                  "significantly better (the Δm interval reaches 0 or below)", held / n, 1 - ALPHA)]


def aa(p: dict, cfg: TrainConfig) -> list[str]:
    """The product's A/A check: a search's tuned control against itself on disjoint verdict seeds."""
    from sharesearch.search import SearchConfig, run_search, study_results
    from sharesearch.space import load_space

    covered, flagged, tests, n = 0, 0, 0, p["calibration_seeds"]
    first = p.get("first_seed", 0)
    for s in range(first, first + n):
        data = _data("synthetic-null", p, s)
        with tempfile.TemporaryDirectory() as runs:  # no reference, one trial, top-k 0: the control and its A/A
            study = run_search(data, _record("synthetic-null", p, s),
                               load_space("default"), runs_dir=runs, progress=False,
                               config=SearchConfig(n_trials=1, seed=s, top_k=0, references=()))  # seeds: power
            results = study_results(study)
        arm = next(c for c in results["verdict"]["candidates"] if c["name"] == "independent")
        lo, hi = arm["verdict"]["delta_m_ci"]
        labels = [tv["verdict"] for tv in arm["verdict"]["tasks"]]
        covered += lo <= 0 <= hi
        flagged += sum(x in ("negative transfer", "positive transfer") for x in labels)
        tests += len(labels)
        print(f"# aa seed {s}: Δm {arm['verdict']['delta_m']:+.4f} [{lo:+.4f}, {hi:+.4f}] labels {labels}; "
              f"recommendation: {results['recommendation']['overall']}", flush=True)
    what = f"A/A through compute_verdict (synthetic-null, {n} data seeds)"
    return [_line(f"{what}: Δm interval covers 0", covered / n, 1 - ALPHA),
            _line(f"{what}: per-task transfer flags", flagged / tests, ALPHA)]


def power(p: dict, cfg: TrainConfig) -> list[str]:
    flagged, n = 0, p["power_seeds"]
    k = None
    for s in range(n):
        data = _data("synthetic-planted", p, s)
        unrelated = data.meta["clusters"][-1][0]
        ind = SharingGraph.independent(data.tasks, _backbone(data))
        if k is None:  # seeds per arm from the control's measured spread (first data seed, 6 pilot runs)
            pilot = _arm(ind, data, range(6 if p is FULL else 2), cfg)[0]
            cv = max(float(np.std(v, ddof=1) / abs(np.mean(v))) for v in pilot.values())
            needed = seeds_for_power(cv, effect=0.10, n_tasks=len(data.tasks), alpha=ALPHA, power=0.80)
            k = p.get("power_runs") or min(max(needed, 5), 20)
            print(f"# power: control cv {cv:.3f} -> seeds_for_power says {needed}; {k} seeds per arm", flush=True)
        control = _arm(ind, data, range(k), cfg)
        sb = _arm(SharingGraph.shared_bottom(data.tasks, _backbone(data)), data, range(k), cfg)
        v = _verdict(sb, control, data, p["row_resamples"], "shared-bottom")
        tv = v.get(unrelated)
        flagged += tv.verdict == "negative transfer"
        print(f"# power seed {s}: {unrelated} Δ {tv.delta:+.4f} [{tv.delta_ci[0]:+.4f}, {tv.delta_ci[1]:+.4f}] "
              f"p_holm {tv.p_holm:.4g} -> {tv.verdict}", flush=True)
    return [_line(f"power (synthetic-planted, {n} data seeds, {k} seeds per arm): shared-bottom's negative "
                  "transfer on the unrelated task flagged", flagged / n, 0.80)]


def recovery(p: dict, cfg: TrainConfig) -> list[str]:
    from sharesearch.search import SearchConfig, run_search, study_results
    from sharesearch.space import load_space

    hits, tied, n, counts = 0, 0, p["recovery_seeds"], []
    for s in range(p.get("first_seed", 0), p.get("first_seed", 0) + n):
        data = _data("synthetic-planted", p, s)
        planted = data.meta["clusters"]
        with tempfile.TemporaryDirectory() as runs:
            study = run_search(data, _record("synthetic-planted", p, s),
                               load_space("default"), runs_dir=runs,
                               config=SearchConfig(n_trials=p["n_trials"], seed=s, top_k=p.get("top_k", 3),
                                                   n_seeds=p.get("power_runs")),
                               progress=False)
            results = study_results(study)
            counts.append(trials_until_planted(study.trials, planted, p["n_trials"]))
        planted_arms = []
        for c in (results.get("verdict") or {}).get("candidates", []):  # every arm: what the choice was among
            g = SharingGraph.from_dict(c["graph"]) if c.get("graph") else None
            print(f"#   seed {s} arm {c['name']:14s} val Δm {c.get('val_delta_m', float('nan')):+.4f} test Δm "
                  f"{c['verdict']['delta_m']:+.4f} groups planted: {g is not None and groups_planted(g, planted)}",
                  flush=True)
            if g is not None and groups_planted(g, planted):
                planted_arms.append(c["name"])
        best = _best_candidate(results)
        grouped = best is not None and groups_planted(best["graph"], planted)
        ok = grouped and best["beats"]
        hits += ok
        print(f"# recovery seed {s}: chosen {best['name'] if best else None} with stages "
              f"{best['graph'].partitions() if best else None} (planted {planted}) groups them: {grouped}; "
              f"test Δm {best['delta_m'] if best else float('nan'):+.4f}; beats shared-bottom and "
              f"independent: {best['beats'] if best else False} -> {'yes' if ok else 'no'}; the search's "
              f"best-so-far first grouped them at trial {counts[-1]} (cap {p['n_trials']})", flush=True)
        rec = results.get("recommendation") or {}
        print(f"#   seed {s}: recommendation: {rec.get('overall')}", flush=True)
        ties = [x for x in rec.get("notes") or [] if x.startswith("on validation")]
        for note in ties:  # the arms validation cannot separate from the chosen one
            print(f"#   seed {s}: {note}", flush=True)
        tied += grouped or any(f"{name} (" in ties[0] for name in planted_arms if ties)
    return [_line(f"recovery (synthetic-planted, {n} data seeds, {p['n_trials']} trials): the chosen topology groups "
                  "exactly the planted clusters and beats shared-bottom and independent on test", hits / n, 0.8),
            _line("recovery, weaker (same runs): the chosen arm, or an arm validation cannot tell apart from it, "
                  "groups exactly the planted clusters", tied / n, 0.8)]


def _neighbours(tasks: list[str], planted: list[list[str]]) -> dict[str, list[str]]:
    """The planted tree and the trees one mistake away from it, as stage partitions (``"a,b|c"``)."""
    def text(groups):  # canonical: groups sorted, so equal partitions are equal strings
        return "|".join(sorted(",".join(sorted(g)) for g in groups if g))

    n_stages = 3  # the default space's default backbone
    out = {"planted (every stage)": [text(planted)] * n_stages,
           "planted, task-specific last stage": [text(planted)] * (n_stages - 1),
           "shared first stage, then planted": [",".join(tasks)] + [text(planted)] * (n_stages - 1)}
    for i, group in enumerate(planted):
        for t in group if len(group) > 1 else ():
            moved = [[x for x in g if x != t] for g in planted] + [[t]]
            if [text(moved)] * n_stages not in out.values():  # a pair that splits is one tree, not two
                out[f"{t} leaves its cluster"] = [text(moved)] * n_stages
        if len(group) == 1:  # the unrelated task joins each cluster in turn
            for j, other in enumerate(planted):
                if j != i:
                    joined = [g + group if k == j else g for k, g in enumerate(planted) if k != i]
                    out[f"{group[0]} joins {','.join(other)}"] = [text(joined)] * n_stages
    return out


def oracle(p: dict, cfg: TrainConfig) -> list[str]:
    """Train the planted tree and its neighbours with several seeds: is the planted tree best on validation?"""
    from sharesearch.compare import default_backbone

    hits, clear, n, runs = 0, 0, p["recovery_seeds"], p.get("oracle_runs", 4)
    clear_paired, clear_every = 0, 0
    for s in range(p.get("first_seed", 0), p.get("first_seed", 0) + n):
        data = _data("synthetic-planted", p, s)
        tasks, bb = data.task_names, default_backbone(data)
        planted = [sorted(c) for c in data.meta["clusters"]]
        graphs = {"independent": SharingGraph.independent(data.tasks, bb),
                  "shared-bottom": SharingGraph.shared_bottom(data.tasks, bb)}
        graphs.update({k: SharingGraph.branched(data.tasks, bb, v) for k, v in _neighbours(tasks, planted).items()})
        sign = np.array([1.0 if metric_direction(t.primary_metric) == "maximize" else -1.0 for t in data.tasks])
        val = {k: np.array([[r.primary(data.tasks)[t] for t in tasks]
                            for r in train_population(g, data, [cfg.updated(seed=k2) for k2 in range(runs)],
                                                      keep_model=False)])
               for k, g in graphs.items()}  # [runs, T] validation metrics per tree
        ref = val["independent"].mean(0)
        dm_runs = {k: (sign * (v - ref) / np.abs(ref)).mean(1) for k, v in val.items()}  # [runs] Δm per run
        dm = {k: float(v.mean()) for k, v in dm_runs.items()}
        best = max((k for k in dm if k != "independent"), key=dm.get)
        hits += groups_planted(graphs[best], planted)
        for k in sorted(dm, key=dm.get, reverse=True):
            print(f"# oracle seed {s}: {k:36s} validation Δm {100 * dm[k]:+6.2f}%", flush=True)
        print(f"# oracle seed {s}: best on validation: {best}", flush=True)
        # how clearly the data prefers the planted clusters: the best tree that groups them against the best that
        # does not, per run (Welch 95%); an interval holding 0 means this data seed cannot tell them apart
        grouping = [k for k in dm if groups_planted(graphs[k], planted)]
        mine, rival = max(grouping, key=dm.get), max((k for k in dm if k not in grouping), key=dm.get)
        lo, hi = scipy.stats.ttest_ind(dm_runs[mine], dm_runs[rival], equal_var=False).confidence_interval(0.95)
        clear += lo > 0
        print(f"# oracle seed {s}: lead of '{mine}' over '{rival}': {100 * (dm[mine] - dm[rival]):+.2f} points, "
              f"95% [{100 * lo:+.2f}, {100 * hi:+.2f}]", flush=True)
        # the same lead paired by seed: every tree's run i has seed i, and a branch a tree shares with another
        # (same tasks, same stages) trains to the same result, so the tasks the two trees treat alike cancel
        # (as the verdict pairs its arms by seed); Welch counts their spread twice
        paired = {k: scipy.stats.ttest_rel(dm_runs[mine], dm_runs[k]).confidence_interval(0.95)
                  for k in dm if k not in grouping}
        plo, phi = paired[rival]
        clear_paired += plo > 0
        clear_every += all(b[0] > 0 for b in paired.values())
        closest = min(paired, key=lambda k: paired[k][0])
        print(f"# oracle seed {s}: the same paired by seed: 95% [{100 * plo:+.2f}, {100 * phi:+.2f}]; against every "
              f"tree not grouping them the lowest bound is {100 * paired[closest][0]:+.2f} ('{closest}')", flush=True)
        for k in (mine, rival):  # where the lead comes from: each task's Δ (mean over runs) and its spread
            rel = sign * (val[k] - ref) / np.abs(ref)  # [runs, T]
            print(f"# oracle seed {s}:   per task Δ % (sd over runs) of '{k}': "
                  + ", ".join(f"{t} {100 * m:+.1f} ({100 * sd:.1f})"
                              for t, m, sd in zip(tasks, rel.mean(0), rel.std(0, ddof=1))), flush=True)
    return [_line(f"oracle (synthetic-planted, {n} data seeds, {runs} runs per tree): the best tree on validation "
                  "groups exactly the planted clusters", hits / n, 0.8),
            _line(f"oracle: data seeds where the best tree grouping the planted clusters leads the best one not "
                  f"grouping them by an interval above 0 (Welch 95%, {runs} runs each)", clear / n, 0.8),
            _line(f"oracle: the same, the lead paired by seed (95%, {runs} pairs)", clear_paired / n, 0.8),
            _line("oracle: the best tree grouping the planted clusters ahead of every tree not grouping them, each "
                  "paired by seed (95%)", clear_every / n, 0.8)]


def regret(p: dict, cfg: TrainConfig) -> list[str]:
    """Train every pruned trial of a default search to the end: would any have beaten the best kept trial?"""
    import optuna

    from sharesearch.search import BaselineSet, SearchConfig, StudyContext, TrialRecord, run_search
    from sharesearch.search._objective import task_deltas, weighted_mean
    from sharesearch.space import load_space

    pruned_n, winners = 0, 0
    for s in range(p.get("first_seed", 0), p.get("first_seed", 0) + p["recovery_seeds"]):
        data = _data("synthetic-planted", p, s)
        with tempfile.TemporaryDirectory() as runs:
            study = run_search(data, _record("synthetic-planted", p, s),
                               load_space("default"), runs_dir=runs, verdict=False, progress=False,
                               config=SearchConfig(n_trials=p["n_trials"], seed=s))
            ctx, baselines = StudyContext.from_study(study), BaselineSet.from_study(study).tasks
            kept = [t.value for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                    if not TrialRecord.from_trial(t).reference]
            best_kept = max(kept)
            pruned = [TrialRecord.from_trial(t) for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,))]
            pruned = [r for r in pruned if (r.status or "").startswith("pruned")]
            for rec in pruned:
                res = train(rec.sharing_graph(), data, ctx.train.updated(**rec.train, seed=ctx.search.seed),
                            keep_model=False)
                dm = weighted_mean(data, task_deltas(data, res.primary(data.tasks), baselines))
                winners += dm > best_kept
                print(f"# regret seed {s}: pruned trial finished at Δm {dm:+.4f} vs best kept {best_kept:+.4f}",
                      flush=True)
            pruned_n += len(pruned)
            print(f"# regret seed {s}: {len(pruned)} pruned of {len(study.trials)} trials", flush=True)
    share = winners / pruned_n if pruned_n else 0.0
    return [_line(f"pruned-trial regret (synthetic-planted, {p['recovery_seeds']} data seeds, {p['n_trials']} "
                  f"trials, {pruned_n} pruned): pruned trials that would have beaten the best kept one",
                  share, 0.05)]


def _best_candidate(results: dict) -> dict | None:
    """The verdict's chosen arm (best validation Δm over its seeds, as the report and the recommendation choose):
    its graph, test Δm, and whether it beats both references on test."""
    from sharesearch.report import best_candidate

    verdict = results.get("verdict") or {}
    by_name = {c["name"]: c for c in verdict.get("candidates", [])}
    best, _ = best_candidate(results)
    if best is None or not best.get("graph"):
        return None
    graph = SharingGraph.from_dict(best["graph"])
    dm = best["verdict"]["delta_m"]
    refs = [by_name[r]["verdict"]["delta_m"] for r in ("shared-bottom", "independent")
            if r in by_name and r != best["name"]]
    return {"graph": graph, "delta_m": dm, "beats": all(dm > r for r in refs), "name": best["name"]}


def _line(what: str, observed: float, target: float) -> str:
    ratio = observed / target if target else float("nan")
    line = f"{what}: observed {observed:.3f} share vs target {target:.3f} share -> {ratio:.2f}x"
    print(line, flush=True)
    return line


PARTS = {"calibration": calibration, "companions": companions, "budget": budget, "aa": aa, "power": power, "oracle": oracle, "recovery": recovery, "regret": regret}


def main(quick: bool = False, device: str = "cpu", parts=("calibration", "companions", "power")) -> list[str]:
    setup_threads()
    p = QUICK if quick else FULL
    cfg = (QUICK_PROTOCOL if quick else PROTOCOL).updated(device=device)
    lines: list[str] = []
    for part in parts:
        t0 = time.perf_counter()
        lines += PARTS[part](p, cfg)
        print(f"# {part}: {time.perf_counter() - t0:.0f} s", flush=True)
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", action="append", choices=sorted(PARTS), default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-seeds", type=int, default=None, help="data seeds of each part (default: FULL's)")
    ap.add_argument("--trials", type=int, default=None, help="recovery: finished trials per search")
    ap.add_argument("--first-seed", type=int, default=0, help="recovery: the first data seed (to resume a series)")
    ap.add_argument("--top-k", type=int, default=None, help="recovery: candidates the verdict retrains")
    ap.add_argument("--lr", type=float, default=None, help="the protocol's learning rate (default: PROTOCOL's)")
    ap.add_argument("--source", default=None,
                    help="companions, budget: the data source (default synthetic-null, synthetic-mmoe)")
    ap.add_argument("--n", type=int, default=None, help="rows of each data set (default: FULL's)")
    ap.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a source option over the preset's, every part (a JSON value, e.g. rank=3, d=14)")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per arm (calibration; power: instead of seeds_for_power's count)")
    a = ap.parse_args()
    if a.data_seeds is not None:
        FULL.update(calibration_seeds=a.data_seeds, power_seeds=a.data_seeds, recovery_seeds=a.data_seeds)
    if a.runs is not None:
        FULL.update(calibration_runs=a.runs, power_runs=a.runs, oracle_runs=a.runs)
    if a.trials is not None:
        FULL.update(n_trials=a.trials)
    FULL.update(first_seed=a.first_seed)
    if a.source is not None:
        FULL.update(source=a.source)
    if a.n is not None:
        FULL.update(n=a.n)
    FULL.update(data_options=parse_options(a.data_option, "--data-option"))
    if a.lr is not None:
        PROTOCOL = PROTOCOL.updated(lr=a.lr)
    if a.top_k is not None:
        FULL.update(top_k=a.top_k)
    main(quick=a.quick, device=a.device, parts=a.part or ("calibration", "companions", "power", "recovery") if a.quick
         else a.part or ("calibration", "companions", "power"))

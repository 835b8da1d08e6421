"""End to end: sharesearch.run_search against the obvious hand-written Optuna + PyTorch script.

The same search on the planted-cluster synthetic data (``synthetic-mmoe``,
6 tasks in clusters [[0,1,2],[3,4],[5]]) with the same search space
(``search_spaces/branching.toml``: pairwise share depths ``share[a~b]`` in
0..3 and the learning rate), the same number of trials and the same budget
(the space's step cap, validation cadence and patience), done two ways:

* **sharesearch** -- ``run_search(..., verdict=False, progress=False)`` on a
  temporary SQLite file: one-pass tuned baselines, in-memory index batching,
  Hyperband pruning, the canonical-graph cache.
* **hand-written** -- what a user writes without sharesearch: T separate
  Optuna studies (TPE, ``baseline.trials`` trials each) tuning each task's
  single-task MLP, then one Optuna study (TPE) whose objective samples the
  same parameters, builds a plain ``nn.Module`` that loops over tasks and
  groups, and trains it with a ``DataLoader(TensorDataset(x, y),
  shuffle=True)`` (per-sample collation) under the same step cap, validating
  every ``eval_every`` steps and stopping after ``patience`` evaluations
  without any task improving (0: never), with the space's schedule where torch
  has it in one line (``CosineAnnealingLR`` for ``"cosine"``, else a constant
  learning rate); no pruning, no cache,
  in-memory storage. Both searches start with the same two
  enqueued reference points (independent, shared-bottom).

Both score a trial with the same validation Δm (:func:`sharesearch.verdict.delta_m`:
mean over tasks of the signed relative RMSE difference to the task's own tuned
baseline, each task at its best validation epoch). After each trial we record
(wall time since the start, best Δm so far); baselines count in the wall time.

Printed figures (ratio = hand-written / sharesearch, > 1 means sharesearch is faster):

* time to reach the same best validation Δm -- the target is the lower of the
  two final bests, so both reach it; reference trials (enqueued on both
  sides) do not count as found by the search;
* total wall time for the same number of trials.

Run::

    python benchmarks/bench_e2e.py            # n=4000, 20 trials, ~4-6 min on 2 cores
    python benchmarks/bench_e2e.py --quick    # n=1200, 6 trials, 150 steps, < 1 min
    python benchmarks/bench_e2e.py --population 4   # also sharesearch with trials in populations of 4
    python benchmarks/bench_e2e.py --profile  # also cProfile the sharesearch side (top costs)
    python benchmarks/bench_e2e.py --csv      # the same rows as a user's CSV file and data spec
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.search import SearchConfig, run_search  # noqa: E402
from sharesearch.space import SearchSpace, load_space  # noqa: E402
from sharesearch.training import TrainConfig  # noqa: E402
from sharesearch.verdict import delta_m  # noqa: E402

CLUSTERS = [[0, 1, 2], [3, 4], [5]]
SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "branching.toml"
FULL = {"n": 4000, "n_trials": 20}  # the space's own step budget and baseline trials
QUICK = {"n": 1200, "n_trials": 6, "max_steps": 150, "baseline_trials": 2}


def _space(quick: bool) -> SearchSpace:
    space = SearchSpace.from_file(SPACE_FILE) if SPACE_FILE.exists() else load_space("branching")
    if not quick:
        return space
    d = space.to_dict()  # the same space with a smaller budget
    d["train"]["max_steps"] = QUICK["max_steps"]
    d["baseline"]["trials"] = QUICK["baseline_trials"]
    return SearchSpace.from_dict(d, source="branching-quick.toml")


# ------------------------------------------------------------ hand-written
class HandNet(nn.Module):
    """The obvious multi-task MLP for nested task groups: one Linear+ReLU per (stage, group), a head per task.

    ``groups[l]`` is a list of task tuples (a partition of the tasks). Forward
    is a plain loop over tasks that reuses a group's output once computed.
    """

    def __init__(self, tasks: list[str], groups: list[list[tuple[str, ...]]], d_in: int, widths: list[int]):
        super().__init__()
        self.tasks, self.groups = tasks, groups
        self.blocks = nn.ModuleList()
        self.group_of: list[dict[str, int]] = []
        for l, parts in enumerate(groups):
            w_in = d_in if l == 0 else widths[l - 1]
            self.blocks.append(nn.ModuleList(nn.Sequential(nn.Linear(w_in, widths[l]), nn.ReLU()) for _ in parts))
            self.group_of.append({t: i for i, g in enumerate(parts) for t in g})
        self.heads = nn.ModuleList(nn.Linear(widths[-1], 1) for _ in tasks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, cache = [], {}
        for ti, t in enumerate(self.tasks):
            h = x
            for l in range(len(self.groups)):
                g = self.group_of[l][t]
                if (l, g) not in cache:
                    cache[(l, g)] = self.blocks[l][g](h)
                h = cache[(l, g)]
            outs.append(self.heads[ti](h)[:, 0])
        return outs


def tree_from_depths(tasks: list[str], depths: dict[tuple[str, str], int], n_stages: int) -> list[list[tuple[str, ...]]]:
    """The same parameter -> task tree mapping as sharesearch (average-linkage cut per stage), so both
    sides search the same space of topologies; only the training and search machinery differ."""
    from sharesearch.graph import share_partitions

    return [[tuple(g) for g in part] for part in share_partitions(tasks, depths, n_stages)]


@dataclass(frozen=True)
class Budget:
    """The space's step budget, as the hand-written loop applies it (the same cap, cadence and patience)."""

    max_steps: int  # optimizer steps at most
    eval_every: int  # validate every this many steps
    patience: int  # stop after this many evaluations without any task improving (0: never)
    cosine: bool = False  # the learning rate decays to 0 at max_steps (torch's CosineAnnealingLR); else constant


def space_budget(space: SearchSpace) -> Budget:
    f = space.fields
    schedule = f["train.lr_schedule"].value if "train.lr_schedule" in f else "constant"
    return Budget(int(f["train.max_steps"].value), int(f["train.eval_every"].value), int(f["train.patience"].value),
                  schedule == "cosine")


def hand_train(x, y, tr, va, tasks, groups, widths, lr, budget: Budget, batch_size, seed) -> dict[str, float]:
    """Train with a DataLoader under ``budget`` (its schedule, early stopping on any task improving); return each
    task's best validation RMSE."""
    torch.manual_seed(seed)
    model = HandNet(tasks, groups, x.shape[1], widths)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget.max_steps) if budget.cosine else None
    loader = DataLoader(TensorDataset(x[tr], y[tr]), batch_size=batch_size, shuffle=True)
    xv, yv = x[va], y[va]
    best = {t: math.inf for t in tasks}
    step, stale = 0, 0
    while step < budget.max_steps:
        for xb, yb in loader:
            model.train()
            outs = model(xb)
            loss = sum(nn.functional.mse_loss(o, yb[:, i]) for i, o in enumerate(outs))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if step % budget.eval_every == 0 or step >= budget.max_steps:
                model.eval()
                improved = False
                with torch.no_grad():
                    for i, o in enumerate(model(xv)):
                        r = float(((o - yv[:, i]) ** 2).mean().sqrt())
                        improved |= r < best[tasks[i]]
                        best[tasks[i]] = min(best[tasks[i]], r)
                stale = 0 if improved else stale + 1
                if step >= budget.max_steps or (budget.patience and stale >= budget.patience):
                    return best
    return best


def run_hand_written(data, space: SearchSpace, n_trials: int, seed: int = 0) -> tuple[list[tuple[float, float]], float]:
    """The whole hand-written search; returns [(seconds since start, best Δm so far)] per trial and total seconds."""
    t0 = time.perf_counter()
    f = space.fields
    names = data.task_names
    std = torch.tensor([s.target_std for s in data.tasks])
    x, y = data.x, data.y * std  # RMSE in original units (as sharesearch reports it)
    tr, va = data.indices("train"), data.indices("val")
    widths = [int(f[f"backbone.widths[{i}]"].value) for i in range(space.max_stages)]
    L = len(widths)
    budget, bs = space_budget(space), int(f["train.batch_size"].value)
    lr_lo, lr_hi = f["train.lr"].low, f["train.lr"].high
    blr_lo, blr_hi = f["baseline.lr"].low, f["baseline.lr"].high
    share_hi = int(f["branching.share"].high)

    # 1. T separate single-task baselines, each tuned by its own study.
    baseline = {}
    for i, t in enumerate(names):
        yi = y[:, i : i + 1]

        def bobj(trial):
            lr = trial.suggest_float("lr", blr_lo, blr_hi, log=True)
            return hand_train(x, yi, tr, va, [t], [[(t,)]] * L, widths, lr, budget, bs, seed)[t]

        st = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
        st.optimize(bobj, n_trials=space.baseline_trials)
        baseline[t] = st.best_value

    # 2. The search: sample pairwise share depths and lr, build, train the full budget, score Δm.
    directions = {t: "minimize" for t in names}
    pairs = list(itertools.combinations(sorted(names), 2))

    def objective(trial):
        depths = {(a, b): trial.suggest_int(f"share[{a}~{b}]", 0, share_hi) for a, b in pairs}
        lr = trial.suggest_float("lr", lr_lo, lr_hi, log=True)
        groups = tree_from_depths(names, depths, L)
        rmse = hand_train(x, y, tr, va, names, groups, widths, lr, budget, bs, seed)
        return delta_m(rmse, baseline, directions)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    mid_lr = math.exp((math.log(lr_lo) + math.log(lr_hi)) / 2)
    for d in (0, L):  # the same two reference points sharesearch enqueues: independent, shared-bottom
        study.enqueue_trial({**{f"share[{a}~{b}]": d for a, b in pairs}, "lr": mid_lr})
    trace: list[tuple[float, float]] = []
    best = -math.inf

    def record(st, ft):
        nonlocal best
        searched = ft.number >= 2  # the two enqueued reference points are not what the search found
        if searched and ft.value is not None and math.isfinite(ft.value):
            best = max(best, ft.value)
        trace.append((time.perf_counter() - t0, best))

    study.optimize(objective, n_trials=n_trials, callbacks=[record])
    return trace, time.perf_counter() - t0


# ------------------------------------------------------------ sharesearch
def run_sharesearch(data, source: dict, space: SearchSpace, n_trials: int, device: str, seed: int = 0,
                    population: int | None = None) -> tuple[list[tuple[float, float]], float, dict]:
    """run_search on a temp SQLite file; the trace comes from the trials' completion times."""
    from optuna.trial import TrialState

    with tempfile.TemporaryDirectory() as tmp:
        start = dt.datetime.now()
        t0 = time.perf_counter()
        study = run_search(data, source, space, storage=f"sqlite:///{tmp}/study.db", study_name="e2e",
                           config=SearchConfig(n_trials=n_trials, seed=seed, population=population),
                           train_base=TrainConfig(device=device, seed=seed), progress=False, verdict=False)
        total = time.perf_counter() - t0
        trials = sorted((t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None),
                        key=lambda t: t.datetime_complete)
        trace, best = [], -math.inf
        counts = {"complete": 0, "pruned": 0, "reused": 0}
        for t in trials:
            if t.state == TrialState.COMPLETE:
                counts["complete"] += 1
                counts["reused"] += t.user_attrs.get("status") == "reused"
                if "reference" not in t.user_attrs and math.isfinite(t.values[0]):
                    best = max(best, t.values[0])
            elif t.state == TrialState.PRUNED:
                counts["pruned"] += 1
            trace.append(((t.datetime_complete - start).total_seconds(), best))
    return trace, total, counts


def time_to(trace: list[tuple[float, float]], target: float) -> float:
    for t, b in trace:
        if b >= target - 1e-12:
            return t
    return math.inf


def write_csv(data, folder: Path) -> Path:
    """``data`` as a user's table: a CSV (features ``x*``, targets in their own units, a ``fold`` column holding
    the same split) and a data-spec file beside it; returns the spec's path."""
    import pandas as pd

    table = pd.DataFrame(data.x.numpy(), columns=[f"x{i}" for i in range(data.x.shape[1])])
    for i, t in enumerate(data.tasks):  # regression tasks: back to the units a user's column has
        table[t.name] = data.y[:, i].numpy() * t.target_std + t.target_mean
    table["fold"] = pd.Series(data.split.numpy()).map({0: "train", 1: "val", 2: "test"})
    table.to_csv(folder / "table.csv", index=False)
    targets = "".join(f'[[targets]]\ncolumn = "{t.name}"\nkind = "regression"\n' for t in data.tasks)
    spec = folder / "table.toml"
    spec.write_text(f'path = "table.csv"\nsplit_column = "fold"\n{targets}')
    return spec


def main(quick: bool = False, device: str = "cpu", profile: bool = False, population: int | None = None,
         csv: bool = False) -> list[str]:
    setup_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n, n_trials = (QUICK if quick else FULL)["n"], (QUICK if quick else FULL)["n_trials"]
    options = {"n": n, "seed": 0, "clusters": CLUSTERS}
    data = load_data("synthetic-mmoe", **options)
    space = _space(quick)
    source = {"source": "synthetic-mmoe", "options": options}
    if csv:  # the same rows through the user's path: a CSV file, a data spec, pandas and the preprocessing
        with tempfile.TemporaryDirectory() as tmp:
            spec = write_csv(data, Path(tmp))
            data, source = load_data(spec), {"source": str(spec), "options": {}}
            return _compare(data, source, space, n_trials, device, profile, population, f"csv n={n}")
    return _compare(data, source, space, n_trials, device, profile, population, f"n={n}")


def _compare(data, source: dict, space: SearchSpace, n_trials: int, device: str, profile: bool,
             population: int | None, what: str) -> list[str]:
    """Run both searches on ``data`` and print the two ratios (and the population run's, if asked)."""
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
    ss_trace, ss_total, counts = run_sharesearch(data, source, space, n_trials, device)
    if profile:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    # The hand-written script is CPU-only as a user would write it for this data; on cuda it still runs on the CPU.
    hw_trace, hw_total = run_hand_written(data, space, n_trials)

    ss_best, hw_best = ss_trace[-1][1], hw_trace[-1][1]
    target = min(ss_best, hw_best)
    t_ss, t_hw = time_to(ss_trace, target), time_to(hw_trace, target)
    tag = f"e2e search {what} T=6 {n_trials} trials {space.name}"
    print(f"# {tag}: final best val Δm sharesearch {ss_best:+.4f} ({counts['complete']} complete, "
          f"{counts['pruned']} pruned, {counts['reused']} reused) vs hand-written {hw_best:+.4f}; "
          f"target {target:+.4f}", flush=True)
    lines = [
        report(f"{tag}: time to best val Δm {target:+.4f}", "sharesearch", t_ss, "hand-written", t_hw),
        report(f"{tag}: total wall time", "sharesearch", ss_total, "hand-written", hw_total),
    ]
    if population:  # the same search with trials trained in populations, against the same hand-written run
        pop_trace, pop_total, pop_counts = run_sharesearch(data, source, space, n_trials, device,
                                                           population=population)
        target = min(pop_trace[-1][1], hw_best)
        print(f"# {tag} population {population}: final best val Δm {pop_trace[-1][1]:+.4f} "
              f"({pop_counts['complete']} complete, {pop_counts['pruned']} pruned); target {target:+.4f}", flush=True)
        lines += [report(f"{tag} population {population}: time to best val Δm {target:+.4f}", "sharesearch",
                         time_to(pop_trace, target), "hand-written", time_to(hw_trace, target)),
                  report(f"{tag} population {population}: total wall time", "sharesearch", pop_total,
                         "hand-written", hw_total)]
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--profile", action="store_true", help="cProfile the sharesearch side and print the top costs")
    ap.add_argument("--population", type=int, default=None, help="also run sharesearch with trial populations of K")
    ap.add_argument("--csv", action="store_true", help="the same rows written to a CSV and loaded from a data spec")
    a = ap.parse_args()
    main(a.quick, a.device, a.profile, a.population, a.csv)

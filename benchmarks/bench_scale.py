"""Memory and scale: time and peak memory per trial as tasks (T = 2, 8, 20) and stages (2, 4, 6) grow.

Each configuration runs in a fresh child process (so ``ru_maxrss`` is that
configuration's own peak) and trains one representative branched graph --
tasks of a planted cluster share all but the last stage, clusters share the
first stage -- on small synthetic data (n=2000, 2 epochs, batch 256, width 64).
Reported per configuration: median seconds per trial (train() call) over
interleaved repeats, the process peak RSS (``resource.getrusage``; on CUDA
``torch.cuda.max_memory_allocated``) and the Python-heap peak (tracemalloc).
Figures are ratios to T=2 (3 stages) and to 2 stages (T=8); the compiled
network's fwd+bwd step is compared side by side with a per-task loop of
``nn.Linear`` at T=20. Last, a whole ``run_search`` study with 20 tasks and 6
stages (trunk encoding, tiny budget) runs in a child process: its peak RSS
against a 24 GiB machine and its seconds per trial against the same study at
T=2 / 2 stages.

Big data (issue 11, multi-fidelity): a census-like table generated in memory
-- 300k rows, 500 one-hot 0/1 columns (50 categorical columns of 10 levels)
held as a dense float tensor, 3 binary tasks. (a) One epoch of a shared-bottom
with sharesearch's ``train`` against a hand-written loop over the same tensors
(goal: sharesearch / hand-written <= 1.2, i.e. the printed ratio >= 0.83).
(b) A search on a sample (``search_rows``) plus the full-data verdict on its
finalists against the same search on every row, same trials (the verdict's
seeds are fixed to keep it short; ``--rows-n`` sizes the table).

    python benchmarks/bench_scale.py [--quick] [--device cuda] [--only rows|epoch] [--rows-n 300000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_sync, report, setup_threads  # noqa: E402

MACHINE_GIB = 24
FULL = {"n": 2000, "repeats": 3, "tasks": (2, 8, 20), "stages": (2, 4, 6), "study": (20, 6), "n_trials": 4, "rounds": 7}
QUICK = {"n": 600, "repeats": 1, "tasks": (2, 8), "stages": (2, 4), "study": (8, 4), "n_trials": 3, "rounds": 3}
#: the big-data part: rows, one-hot columns (levels x categorical columns), rows the search samples, search
#: trials, its step budget and validation cadence, the verdict's finalists and seeds
ROWS_FULL = {"n": 300_000, "levels": 10, "columns": 50, "search_rows": 30_000, "n_trials": 6, "max_steps": 400,
             "eval_every": 50, "top_k": 2, "seeds": 2, "baseline_trials": 2, "confirm_seeds": 1}
ROWS_QUICK = {"n": 1500, "levels": 5, "columns": 10, "search_rows": 150, "n_trials": 1, "max_steps": 10,
              "eval_every": 5, "top_k": 1, "seeds": 1, "baseline_trials": 1, "confirm_seeds": 0}


def _clusters(T: int) -> list[list[int]]:
    return [list(range(i, min(i + 3, T))) for i in range(0, T, 3)]


def _data(T: int, n: int):
    from sharesearch.data import load_data

    cl = _clusters(T)
    d = max(16, sum(1 if len(c) == 1 else 2 if len(c) == 2 else len(c) + 1 for c in cl))
    return load_data("synthetic-mmoe", n=n, d=d, seed=0, clusters=cl)


def _graph(data, L: int, width: int = 64):
    from sharesearch.graph import SharingGraph

    names = data.task_names
    cl = {names[i]: k for k, c in enumerate(_clusters(len(names))) for i in c}
    depths = {(a, b): (L - 1 if cl[a] == cl[b] else 1) for i, a in enumerate(names) for b in names[i + 1:]}
    bb = {"name": "mlp", "input_shape": list(data.input_shape), "widths": [width] * L}
    return SharingGraph.from_share_depths(data.tasks, bb, depths)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child_trial(T: int, L: int, n: int, repeats: int, device: str) -> dict:
    """One configuration (runs in a child process): seconds per trial and peak memory."""
    import torch

    from sharesearch.training import TrainConfig, train

    setup_threads()
    data = _data(T, n)
    g = _graph(data, L)
    cfg = TrainConfig(epochs=2, batch_size=256, device=device)
    train(g, data, cfg, keep_model=False)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        train(g, data, cfg, keep_model=False)
        times.append(time.perf_counter() - t0)
    py_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out = {"T": T, "L": L, "s_per_trial": statistics.median(times), "rss_mib": _peak_rss_mib(),
           "py_peak_mib": py_peak, "n_params": g.n_params()}
    if device.startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def child_study(T: int, L: int, n: int, n_trials: int, device: str) -> dict:
    """A whole tiny run_search study with T tasks and L stages (runs in a child process)."""
    from sharesearch.search import SearchConfig, run_search
    from sharesearch.space import SearchSpace
    from sharesearch.training import TrainConfig

    setup_threads()
    data = _data(T, n)
    space = SearchSpace.from_dict({
        "name": f"scale-T{T}-L{L}",
        "backbone": {"name": "mlp", "widths": [64] * L},
        "branching": {"share": {"low": 0, "high": L}},
        "train": {"lr": {"low": 3e-4, "high": 1e-2, "log": True}, "epochs": 2, "batch_size": 256},
        "baseline": {"trials": 2, "lr": {"low": 3e-4, "high": 1e-2, "log": True}},
    }, source="scale.toml")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_search(data, {"source": "synthetic-mmoe", "options": {"n": n, "clusters": _clusters(T)}}, space,
                   storage=f"sqlite:///{tmp}/s.db", study_name="scale",
                   config=SearchConfig(n_trials=n_trials, seed=0), train_base=TrainConfig(device=device),
                   progress=False, verdict=False)
        total = time.perf_counter() - t0
    return {"T": T, "L": L, "s_per_trial": total / n_trials, "total_s": total, "rss_mib": _peak_rss_mib()}


def _run_child(kind: str, **kw) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps({"kind": kind, **kw})]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"bench_scale child {kind} {kw} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _step_pair(T: int, device: str, rounds: int) -> tuple[float, float]:
    """fwd+bwd step of the compiled independent graph vs a per-task loop of nn.Linear, interleaved."""
    import torch
    from torch import nn

    from sharesearch.graph import SharingGraph
    from sharesearch.network import compile_graph

    width, L, B = 64, 3, 256
    tasks = {f"t{i}": 1 for i in range(T)}
    net = compile_graph(SharingGraph.independent(tasks, {"name": "mlp", "input_shape": [width],
                                                         "widths": [width] * L}), seed=0).to(device)
    loop = nn.ModuleList(nn.Sequential(*[m for _ in range(L) for m in (nn.Linear(width, width), nn.ReLU())],
                                       nn.Linear(width, 1)) for _ in range(T)).to(device)
    x = torch.randn(B, width, device=device)
    sync = device_sync(device)

    def s_net():
        net.zero_grad(set_to_none=True)
        sum(y.sum() for y in net(x).values()).backward()

    def s_loop():
        loop.zero_grad(set_to_none=True)
        sum(m(x).sum() for m in loop).backward()

    a, b = [], []
    for f in (s_net, s_loop):
        for _ in range(3):
            f()
    for _ in range(rounds):
        for f, acc in ((s_net, a), (s_loop, b)):
            sync()
            t0 = time.perf_counter()
            for _ in range(10):
                f()
            sync()
            acc.append((time.perf_counter() - t0) / 10)
    return statistics.median(a), statistics.median(b)


def census_like(n: int, levels: int, columns: int, seed: int = 0):
    """A census-like MultiTaskData: ``columns`` categorical columns one-hot over ``levels`` (x [n, levels*columns],
    dense 0/1 float), 3 binary tasks from related logits (tasks 0 and 1 share most of their weights)."""
    from sharesearch.data import MultiTaskData, make_split
    from sharesearch.tasks import TaskSpec

    import torch

    g = torch.Generator().manual_seed(seed)
    d = levels * columns
    codes = torch.randint(0, levels, (n, columns), generator=g) + torch.arange(columns) * levels  # [n, columns]
    x = torch.zeros(n, d).scatter_(1, codes, 1.0)  # [n, d], `columns` ones per row
    w0, w1, w2 = (torch.randn(d, generator=g) for _ in range(3))
    w = torch.stack([w0, 0.8 * w0 + 0.6 * w1, w2], dim=1) / columns ** 0.5  # [d, 3]
    logits = x @ w - (x @ w).mean(dim=0)  # [n, 3]
    y = torch.bernoulli(torch.sigmoid(2 * logits), generator=g)  # [n, 3]
    return MultiTaskData(name="census-like", tasks=[TaskSpec(f"y{i}", "binary") for i in range(3)], x=x, y=y,
                         split=make_split(n, seed), split_seed=seed)


def hand_written_epoch(data, widths=(64, 64, 32), batch: int = 256, seed: int = 0) -> float:
    """The obvious script over the same tensors: an nn.Sequential trunk, one head per task, Adam, BCE; one epoch,
    then the validation loss (what a person would check). Returns it so the work cannot be skipped."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    dims = [data.input_shape[0], *widths]
    trunk = nn.Sequential(*[m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())])
    heads = nn.Linear(widths[-1], len(data.tasks))  # the 3 heads of width 1, side by side
    opt = torch.optim.Adam([*trunk.parameters(), *heads.parameters()], lr=1e-3)
    bce = nn.functional.binary_cross_entropy_with_logits
    tr, va = data.indices("train"), data.indices("val")
    perm = tr[torch.randperm(len(tr))]
    for i in range(0, len(perm), batch):
        idx = perm[i: i + batch]
        out = heads(trunk(data.x[idx]))  # [B, 3]
        loss = bce(out, data.y[idx], reduction="none").mean(dim=0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return sum(float(bce(heads(trunk(data.x[va[i: i + 8192]])), data.y[va[i: i + 8192]], reduction="sum"))
                   for i in range(0, len(va), 8192)) / len(va)


def _rows_space(z: dict):
    from sharesearch.space import SearchSpace

    lr = {"low": 3e-4, "high": 1e-2, "log": True}
    return SearchSpace.from_dict({
        "name": "scale-rows", "backbone": {"name": "mlp", "widths": [64, 64, 32]},
        "branching": {"share": {"low": 0, "high": 3}},
        "train": {"lr": lr, "max_steps": z["max_steps"], "eval_every": z["eval_every"], "patience": 3,
                  "batch_size": 256},
        "baseline": {"trials": z["baseline_trials"], "lr": lr, "confirm_seeds": z["confirm_seeds"], "confirm_top": 1},
    }, source="scale-rows.toml")


def _rows_search(data, z: dict, sampled: bool, device: str) -> tuple[float, float]:
    """One search of the census-like table, in this process: on a sample plus the full-data verdict (seconds of
    each), or on every row without a verdict (seconds, 0)."""
    from sharesearch.search import SearchConfig, compute_verdict, run_search
    from sharesearch.training import TrainConfig

    data.search_rows = z["search_rows"] if sampled else None
    cfg = SearchConfig(n_trials=z["n_trials"], seed=0, top_k=z["top_k"], n_seeds=z["seeds"], pruner="none",
                       references=("independent",))  # the A/A control; the other trials are the sampler's
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        study = run_search(data, {"source": "census-like", "options": {}}, _rows_space(z),
                           storage=f"sqlite:///{tmp}/s.db", study_name="rows", config=cfg,
                           train_base=TrainConfig(device=device), progress=False, verdict=False)
        search_s = time.perf_counter() - t0
        if not sampled:
            return search_s, 0.0
        t0 = time.perf_counter()
        compute_verdict(study, data)
        return search_s, time.perf_counter() - t0


def rows_lines(quick: bool, device: str, n: int | None = None, epoch_only: bool = False) -> list[str]:
    """The big-data figures: (a) one epoch, sharesearch vs hand-written; (b) sampled search + verdict vs full
    (``epoch_only``: (a) alone)."""
    from sharesearch.graph import SharingGraph
    from sharesearch.training import TrainConfig, train

    z = {**(ROWS_QUICK if quick else ROWS_FULL), **({"n": n} if n else {})}
    data = census_like(z["n"], z["levels"], z["columns"])
    d = data.input_shape[0]
    g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": [d], "widths": [64, 64, 32]})
    cfg = TrainConfig(epochs=1, batch_size=256, lr=1e-3, device="cpu")  # the hand-written loop is CPU-only
    warm = census_like(300, z["levels"], z["columns"], seed=1)  # first calls pay imports and allocator warm-up
    train(g, warm, cfg, keep_model=False)
    hand_written_epoch(warm)
    ours, theirs = [], []
    for _ in range(1 if quick else 5):  # interleaved, the median of each
        t0 = time.perf_counter()
        train(g, data, cfg, keep_model=False)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hand_written_epoch(data)
        theirs.append(time.perf_counter() - t0)
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"# rows (a): sharesearch / hand-written = {o / t:.2f} (goal <= 1.2)", flush=True)
    lines = [report(f"big data one epoch shared-bottom n={z['n']:,} d={d} 3 binary tasks (>= 0.83x: within 1.2)",
                    "sharesearch train", o, "hand-written loop", t)]
    if epoch_only:
        return lines
    with tempfile.TemporaryDirectory() as tmp:  # optuna's storage imports, before either search is timed
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(storage=f"sqlite:///{tmp}/warm.db")
    full_s, _ = _rows_search(data, z, sampled=False, device=device)
    search_s, verdict_s = _rows_search(data, z, sampled=True, device=device)
    print(f"# rows (b): sampled search {search_s:.1f} s + full-data verdict {verdict_s:.1f} s (top {z['top_k']} "
          f"+ control + A/A, {z['seeds']} seeds each) vs full-data search {full_s:.1f} s: "
          f"{(search_s + verdict_s) / full_s:.2f}; search phases alone {search_s / full_s:.2f}; with the same "
          f"verdict after both (derived) {(search_s + verdict_s) / (full_s + verdict_s):.2f}", flush=True)
    what = (f"big data search {z['n_trials']} trials ({z['max_steps']} steps), search_rows={z['search_rows']:,} "
            f"of {z['n']:,} rows + full-data verdict vs full-data search")
    lines.append(report(what, "sampled + verdict", search_s + verdict_s, "full-data search", full_s))
    lines.append(report(f"big data search phase alone, search_rows={z['search_rows']:,} of {z['n']:,} rows",
                        "sampled", search_s, "every row", full_s))
    return lines


def main(quick: bool = False, device: str = "cpu", only: str | None = None, rows_n: int | None = None) -> list[str]:
    setup_threads()
    if only in ("rows", "epoch"):
        return rows_lines(quick, device, rows_n, epoch_only=only == "epoch")
    z = QUICK if quick else FULL
    n, repeats, tasks_grid, stages_grid = z["n"], z["repeats"], z["tasks"], z["stages"]
    lines = []
    res_T = {T: _run_child("trial", T=T, L=3, n=n, repeats=repeats, device=device) for T in tasks_grid}
    res_L = {L: _run_child("trial", T=tasks_grid[1], L=L, n=n, repeats=repeats, device=device) for L in stages_grid}
    mem_key = "cuda_peak_mib" if device.startswith("cuda") else "rss_mib"
    for T, r in res_T.items():
        print(f"# scale T={T} L=3: {r['s_per_trial']:.3f} s/trial, peak RSS {r['rss_mib']:.0f} MiB, "
              f"python heap peak {r['py_peak_mib']:.1f} MiB, {r['n_params']} params", flush=True)
    for L, r in res_L.items():
        print(f"# scale T={tasks_grid[1]} L={L}: {r['s_per_trial']:.3f} s/trial, peak RSS {r['rss_mib']:.0f} MiB, "
              f"python heap peak {r['py_peak_mib']:.1f} MiB, {r['n_params']} params", flush=True)
    T0, L0 = tasks_grid[0], stages_grid[0]
    for T in tasks_grid[1:]:
        lines.append(report(f"scale time per trial T={T} vs T={T0} (3 stages, n={n}, 2 epochs; growth, <1 = slower)",
                            f"T={T}", res_T[T]["s_per_trial"], f"T={T0}", res_T[T0]["s_per_trial"]))
        lines.append(report(f"scale peak memory T={T} vs T={T0} ({mem_key})", f"T={T}", res_T[T][mem_key],
                            f"T={T0}", res_T[T0][mem_key], unit="MiB"))
    for L in stages_grid[1:]:
        lines.append(report(f"scale time per trial {L} stages vs {L0} (T={tasks_grid[1]}; growth, <1 = slower)",
                            f"{L} stages", res_L[L]["s_per_trial"], f"{L0} stages", res_L[L0]["s_per_trial"]))
    Tmax = tasks_grid[-1]
    t_net, t_loop = _step_pair(Tmax, device, z["rounds"])
    lines.append(report(f"network fwd+bwd T={Tmax} independent width=64 3 stages batch 256",
                        "compiled", t_net, "per-task loop", t_loop))
    Ts, Ls = z["study"]
    big = _run_child("study", T=Ts, L=Ls, n=n, n_trials=z["n_trials"], device=device)
    small = _run_child("study", T=2, L=2, n=n, n_trials=z["n_trials"], device=device)
    print(f"# scale study T={Ts} L={Ls}: {big['s_per_trial']:.2f} s/trial (baselines included), "
          f"peak RSS {big['rss_mib']:.0f} MiB on {MACHINE_GIB} GiB", flush=True)
    lines.append(report(f"scale study T={Ts} {Ls} stages peak RSS vs a {MACHINE_GIB} GiB machine (headroom)",
                        "peak RSS", big["rss_mib"], "machine", MACHINE_GIB * 1024.0, unit="MiB"))
    lines.append(report(f"scale study s/trial T={Ts} {Ls} stages vs T=2 2 stages (n={n}, 2 epochs; growth)",
                        f"T={Ts} L={Ls}", big["s_per_trial"], "T=2 L=2", small["s_per_trial"]))
    return lines + rows_lines(quick, device, rows_n)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["rows", "epoch"], default=None,
                    help="only the big-data (search_rows) part; epoch: only its one-epoch figure (a)")
    ap.add_argument("--rows-n", type=int, default=None, help="rows of the big-data table (default 300000)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        spec = json.loads(a.child)
        kind = spec.pop("kind")
        print(json.dumps(child_trial(**spec) if kind == "trial" else child_study(**spec)))
    else:
        main(a.quick, a.device, a.only, a.rows_n)

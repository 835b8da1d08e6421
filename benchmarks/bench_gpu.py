"""GPU benchmarks (CUDA only; prints a skip line and returns [] without CUDA).

1. Trials per hour on one GPU with 1 and with k (2, 4) worker processes at once:
   ``run_search(..., workers=k)`` on a temporary journal file, the same fixed
   n_trials, small models (``tiny``-like space, synthetic-mmoe n=4000).
2. bf16 autocast vs float32: one training step (fwd+bwd+Adam) of a
   shared-bottom and a branched graph, T=8, width 256, batch 1024.
3. ``torch.compile`` vs eager step time for the same two graphs; compile time
   reported separately with the number of steps it takes to pay back.

    python benchmarks/bench_gpu.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_quick_device  # noqa: E402


def _trials_per_hour(workers: int, n_trials: int, n: int) -> float:
    from sharesearch.data import load_data
    from sharesearch.search import SearchConfig, run_search
    from sharesearch.space import SearchSpace
    from sharesearch.training import TrainConfig

    data = load_data("synthetic-mmoe", n=n, seed=0)
    space = SearchSpace.from_dict({
        "name": "gpu-bench", "backbone": {"name": "mlp", "widths": [64, 64, 32]},
        "branching": {"share": {"low": 0, "high": 3}},
        "train": {"lr": {"low": 3e-4, "high": 1e-2, "log": True}, "epochs": 4, "batch_size": 128},
        "baseline": {"trials": 1, "lr": {"low": 3e-4, "high": 1e-2, "log": True}},
    }, source="gpu-bench.toml")
    with tempfile.TemporaryDirectory() as tmp:  # baselines (1 tuning trial) are timed too, the same for every k
        t0 = time.perf_counter()
        run_search(data, {"source": "synthetic-mmoe", "options": {"n": n, "seed": 0}}, space,
                   storage=f"journal:{tmp}/j.log", study_name="g",
                   config=SearchConfig(n_trials=n_trials, seed=0, pruner="none"),
                   train_base=TrainConfig(device="cuda"), workers=workers, progress=False, verdict=False)
        dt = time.perf_counter() - t0
    return 3600.0 * n_trials / dt


def _graphs(T: int = 8, width: int = 256):
    from sharesearch.graph import SharingGraph

    tasks = {f"t{i}": 1 for i in range(T)}
    bb = {"name": "mlp", "input_shape": [64], "widths": [width] * 3}
    half = ",".join(list(tasks)[: T // 2]) + "|" + ",".join(list(tasks)[T // 2:])
    return {"shared-bottom": SharingGraph.shared_bottom(tasks, bb),
            "branched": SharingGraph.branched(tasks, bb, [",".join(tasks), half])}


def _step_fn(model, x, amp: bool):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
            loss = sum(o.float().pow(2).mean() for o in out.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _time(fns: dict, rounds: int, iters: int) -> dict:
    """Interleaved: median over rounds of the mean step time of each fn."""
    import torch

    acc = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(iters):
                f()
            torch.cuda.synchronize()
            acc[k].append((time.perf_counter() - t0) / iters)
    return {k: statistics.median(v) for k, v in acc.items()}


def main(quick: bool = False, device: str = "cuda") -> list[str]:
    import torch

    if not torch.cuda.is_available():
        print("# bench_gpu: skipped (no CUDA device)", flush=True)
        return []
    from sharesearch.network import compile_graph

    lines = []
    print(f"# bench_gpu on {torch.cuda.get_device_name(0)}", flush=True)
    rounds, iters = (3, 20) if quick else (7, 50)
    x = torch.randn(1024, 64, device="cuda")
    for name, g in _graphs().items():
        m32 = compile_graph(g, seed=0).cuda()
        mbf = compile_graph(g, seed=0).cuda()
        fns = {"fp32": _step_fn(m32, x, False), "bf16": _step_fn(mbf, x, True)}
        for f in fns.values():
            for _ in range(5):
                f()
        t = _time(fns, rounds, iters)
        lines.append(report(f"gpu train step {name} T=8 width=256 batch=1024", "bf16 autocast", t["bf16"],
                            "float32", t["fp32"]))
        eager = compile_graph(g, seed=0).cuda()
        comp_model = compile_graph(g, seed=0).cuda()
        try:
            compiled = torch.compile(comp_model)
            fc = _step_fn(compiled, x, True)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fc()  # compiles forward and backward
            fc()
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - t0
        except Exception as e:  # no triton / no compiler on the image: report, don't fail the run
            print(f"# torch.compile {name}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:200]})",
                  flush=True)
            continue
        fe = _step_fn(eager, x, True)
        for _ in range(5):
            fe()
            fc()
        t = _time({"eager": fe, "compiled": fc}, rounds, iters)
        gain = t["eager"] - t["compiled"]
        payback = f"pays back after {compile_s / gain:.0f} steps" if gain > 0 else "never pays back"
        print(f"# torch.compile {name}: compile {compile_s:.1f} s; {payback} "
              f"(a 10-epoch trial on n=4000, batch 128 is ~220 steps)", flush=True)
        lines.append(report(f"gpu train step {name} bf16 (compile time {compile_s:.1f} s not included; {payback})",
                            "torch.compile", t["compiled"], "eager", t["eager"]))
    n_trials = 8 if quick else 16
    tph = {}
    for k in ((1, 2) if quick else (1, 2, 4)):
        tph[k] = _trials_per_hour(k, n_trials, 4000)
        print(f"# gpu workers={k}: {tph[k]:.0f} trials/hour ({n_trials} trials)", flush=True)
    for k in list(tph)[1:]:
        lines.append(report(f"gpu trials per hour on one GPU, {k} workers vs 1 ({n_trials} trials, no pruning; "
                            f"ratio = {k}-worker throughput / 1-worker)",
                            "1 worker", tph[1], f"{k} workers", tph[k], unit="trials/h"))
    return lines


if __name__ == "__main__":
    run_quick_device(main, __doc__, device="cuda")

"""Transfer to a held-out task from k examples (issue 15): gain per topology, and the cost of the whole run.

On ``synthetic-planted`` (clusters [t0,t1,t2], [t3,t4], [t5]) each held-out task is
taken out of three topologies -- the chosen one (the planted tree, the topology a
search recovers on this source: ``bench_affinity.py``), shared-bottom and MMoE --
trained without it, and rejoined with k = 10 / 30 / 100 labelled rows (frozen trunk
and fine-tuned), against a single-task network from scratch on the same rows
(``sharesearch.transfer.transfer_curve``: same learning-rate grid, steps and seeds).
Prints the seed-paired gain and interval per (topology, task, k, mode), each
topology's transferability, and the time of the whole leave-one-out run / one search
trial (one training of the chosen topology with the same configuration). MultiFashion
runs the same when its data is installed (``dataset-fashion-mnist``), else says so.

    python benchmarks/bench_transfer.py [--quick] [--tasks t1,t5] [--seeds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, setup_threads  # noqa: E402

from sharesearch import fmt  # noqa: E402
from sharesearch.data import load_data  # noqa: E402
from sharesearch.errors import SharesearchError  # noqa: E402
from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.names import reference  # noqa: E402
from sharesearch.training import TrainConfig, train  # noqa: E402
from sharesearch.transfer import TransferConfig, TransferResult, transfer_curve  # noqa: E402

QUICK = {"n": 1500, "tasks": ("t1", "t5"), "seeds": 3, "ks": (10, 30, 100), "trunk_steps": 300, "steps": 100,
         "lr_grid": (3e-3, 1e-2), "multifashion_n": 3000}
FULL = {**QUICK, "tasks": None, "trunk_steps": 600, "steps": 200}


def topologies(data, widths) -> dict[str, SharingGraph]:
    bb = {"name": data.backbone_hint, "input_shape": list(data.input_shape), "widths": list(widths)}
    clusters = data.meta.get("clusters") or [[t] for t in data.task_names]
    tree = "|".join(",".join(c) for c in clusters)
    return {"chosen": SharingGraph.from_partitions(data.tasks, bb, [tree] * (len(widths) - 1)),
            "shared-bottom": reference("shared-bottom").graph(data.tasks, bb),
            "mmoe": reference("mmoe").graph(data.tasks, bb)}


def run_source(name: str, data, widths, cfg: dict, device: str) -> tuple[TransferResult, float, float]:
    tops = topologies(data, widths)
    tc = TrainConfig(max_steps=cfg["trunk_steps"], eval_every=50, batch_size=64, lr=3e-3, device=device)
    few = TransferConfig(steps=cfg["steps"], eval_every=20, lr_grid=cfg["lr_grid"])
    t0 = time.perf_counter()
    train(tops["chosen"], data, tc, keep_model=False)
    trial = time.perf_counter() - t0
    held = cfg["tasks"] or data.task_names
    cache: dict = {}
    t0 = time.perf_counter()
    parts = [transfer_curve(g, data, t, ks=cfg["ks"], seeds=tuple(range(cfg["seeds"])), train_config=tc,
                            config=few, topology=topo, cache=cache)
             for t in held for topo, g in tops.items()]
    whole = time.perf_counter() - t0
    res = TransferResult.combine(parts)
    for c in res.curves:
        for mode in ("frozen", "finetune"):
            cells = [f"k={p.k}: {fmt.delta(p.gain)} {fmt.interval(p.low, p.high, fmt.delta)}"
                     for p in res.curve_points(c.topology, c.task, mode)]
            print(f"# {name} {c.topology:13s} {c.task} ({c.attach_rule} -> {c.attach_node}) {mode:8s} "
                  + "; ".join(cells), flush=True)
    for (topo, mode), score in sorted(res.scores().items()):
        print(f"# {name} transferability {topo} ({mode}): {fmt.delta(score)} mean gain over log k", flush=True)
    return res, whole, trial


def main(quick: bool = False, device: str = "cpu", tasks: str | None = None, seeds: int | None = None,
         multifashion: bool = True) -> list[str]:
    setup_threads()
    cfg = dict(QUICK if quick else FULL)
    if tasks:
        cfg["tasks"] = tuple(tasks.split(","))
    if seeds:
        cfg["seeds"] = seeds
    lines = []
    data = load_data("synthetic-planted", seed=0, n=cfg["n"])
    _, whole, trial = run_source("synthetic-planted", data, (32, 32, 16), cfg, device)
    lines.append(report(f"synthetic-planted leave-one-out transfer ({len(cfg['tasks'] or data.task_names)} held-out "
                        "tasks x 3 topologies) vs one search trial", "one trial", trial, "whole run", whole))
    if not multifashion:
        return lines
    try:
        fashion = load_data("multifashion", n_train=cfg["multifashion_n"])
    except (SharesearchError, OSError, TypeError) as e:
        print(f"# multifashion: not run, its data is not present here ({e})", flush=True)
    else:
        mf = {**cfg, "tasks": None}
        _, whole, trial = run_source("multifashion", fashion, (16, 32, 32), mf, device)
        lines.append(report("multifashion leave-one-out transfer vs one search trial", "one trial", trial,
                            "whole run", whole))
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tasks", default=None, help="held-out tasks, comma-separated (default: all)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--no-multifashion", action="store_true", help="synthetic-planted only (MultiFashion is ~10 min)")
    a = ap.parse_args()
    main(quick=a.quick, device=a.device, tasks=a.tasks, seeds=a.seeds, multifashion=not a.no_multifashion)

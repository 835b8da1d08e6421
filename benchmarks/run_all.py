"""Run every sharesearch benchmark; print one line per figure (a ratio measured side by side in this run).

Each line reads ``what: ours X vs theirs Y -> N.NNx`` (theirs / ours; > 1 means
sharesearch -- or the first-named side -- is faster or smaller). Lines starting
with ``#`` are context (absolute numbers behind a ratio), not figures.

Benchmarks (each module exposes ``main(quick=False, device="cpu") -> list[str]``
and runs alone with the command shown):

* ``network``  -- compiled network vs a per-task loop of nn.Linear, fwd+bwd, T=8
  (``python benchmarks/bench_network.py [--sweep] [--device cuda]``)
* ``batching`` -- in-memory index batching vs a torch DataLoader, one epoch N=50k
  (``python benchmarks/bench_batching.py [--device cuda]``)
* ``train``    -- the trainer vs a hand-written loop (shared-bottom T=8), and
  one-pass baselines vs 8 separate runs (``python benchmarks/bench_train.py``)
* ``e2e``      -- run_search vs the obvious Optuna + DataLoader script: time to the
  same best validation Δm and total wall time, 20 trials, n=4000, 6 tasks
  (``python benchmarks/bench_e2e.py [--quick] [--profile]``)
* ``sampler``  -- trials to within 0.01 of the best Δm, TPE (sharesearch's) vs
  RandomSampler, median of 5 seeds, analytic planted-cluster proxy
  (``python benchmarks/bench_sampler.py [--quick]``)
* ``scale``    -- time and peak memory per trial vs tasks (2, 8, 20) and stages
  (2, 4, 6); a 20-task 6-stage study vs a 24 GiB machine
  (``python benchmarks/bench_scale.py [--quick] [--device cuda]``)
* ``verdict``  -- calibration (A/A on synthetic-null) and power (shared-bottom's negative
  transfer on synthetic-planted) of the verdict; recovery of the planted clusters by a search
  (``python benchmarks/bench_verdict.py --part calibration|power|recovery``)
* ``overhead`` -- where one trial's time goes in a small real search (n=1500, 6 tasks, default space,
  6 trials): data to device, compile, training steps, validation, storage writes, sampler; the share
  outside training steps (goal <= 10%), timed (timers' cost taken off) and untimed (the search without
  timers against its trials' steps replayed bare), and the baseline phase vs the trials
  (``python benchmarks/bench_overhead.py [--quick]``)
* ``affinity`` -- one short shared-bottom pass: adjusted Rand index of its dendrogram cut against the
  planted clusters (5 data seeds of synthetic-planted), its cost / one default-space trial, and (with
  ``--part trials``) trials to the planted tree with the affinity warm start vs TPE alone vs random
  (``python benchmarks/bench_affinity.py [--quick] [--part ari|cost|trials] [--data-seeds N] [--trials M]``)
* ``population`` -- k = 8 seeds of one shared-bottom graph (6 tasks, width 64 and 256) trained as one
  population vs 8 separate runs; ``--sweep`` the time per member for P = 1..16
  (``python benchmarks/bench_population.py [--quick] [--sweep] [--device cuda]``)
* ``baselines`` -- the baseline phase with confirmation runs on the tasks that shortlisted them vs on
  every task, n=4000, 6 tasks (``python benchmarks/bench_baselines.py [--quick]``)
* ``gpu``      -- CUDA only: trials/hour with 1, 2, 4 workers on one GPU, bf16 vs
  fp32 step, torch.compile vs eager (``python benchmarks/bench_gpu.py [--quick]``);
  skipped without CUDA. ``benchmarks/gpu_check.sh`` runs everything on a GPU machine.

Commands::

    python benchmarks/run_all.py                      # everything, CPU (~15 min on 2 cores)
    python benchmarks/run_all.py --quick              # small sizes (a few minutes)
    python benchmarks/run_all.py --only e2e           # one benchmark (repeatable: --only e2e --only sampler)
    python benchmarks/run_all.py --device cuda --quick --out gpu_out/bench.txt   # also bench.json

``SHARESEARCH_BENCH_THREADS`` sets torch's CPU threads (default 2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import re
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCHMARKS = {
    "network": "bench_network",
    "batching": "bench_batching",
    "train": "bench_train",
    "e2e": "bench_e2e",
    "sampler": "bench_sampler",
    "scale": "bench_scale",
    "gpu": "bench_gpu",
    "verdict": "bench_verdict",
    "overhead": "bench_overhead",
    "affinity": "bench_affinity",
    "population": "bench_population",
    "baselines": "bench_baselines",
}
_LINE = re.compile(r"^(?P<what>.*): (?P<ours_label>.+?) (?P<ours>[-+0-9.e]+) ?(?P<ours_unit>\S*) vs "
                   r"(?P<theirs_label>.+?) (?P<theirs>[-+0-9.e]+) ?(?P<theirs_unit>\S*) -> (?P<ratio>[-+0-9.e]+|inf|nan)x$")


def parse_line(line: str) -> dict:
    """The numbers of a report line (``what``, both sides, ``ratio``); ``{"line": ...}`` alone if it does not parse."""
    m = _LINE.match(line.strip())
    if not m:
        return {"line": line}
    d = m.groupdict()
    for k in ("ours", "theirs", "ratio"):
        d[k] = float(d[k])
    d["line"] = line
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI-like smoke)")
    ap.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only this benchmark (repeatable)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (default: %(default)s)")
    ap.add_argument("--out", default=None, help="also write the lines to FILE and the numbers to FILE's .json")
    args = ap.parse_args(argv)
    import torch

    names = args.only or list(BENCHMARKS)
    cuda = torch.cuda.is_available()
    if args.device.startswith("cuda") and not cuda:
        print("run_all: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    results, lines, failed = {}, [], []
    t_all = time.perf_counter()
    for name in names:
        if name == "gpu" and not args.device.startswith("cuda"):
            print(f"## {name}: skipped (needs --device cuda)", flush=True)
            continue
        print(f"## {name}", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(BENCHMARKS[name])
            out = mod.main(quick=args.quick, device=args.device)
        except Exception:  # one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
            results[name] = {"error": traceback.format_exc(limit=3), "seconds": time.perf_counter() - t0}
            continue
        lines += out
        results[name] = {"figures": [parse_line(x) for x in out], "seconds": time.perf_counter() - t0}
    total = time.perf_counter() - t_all
    print(f"## done in {total:.0f} s; {len(lines)} figures" + (f"; FAILED: {failed}" if failed else ""), flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        meta = {"quick": args.quick, "device": args.device, "torch": torch.__version__,
                "cuda_device": torch.cuda.get_device_name(0) if cuda else None, "python": platform.python_version(),
                "threads": torch.get_num_threads(), "seconds": total, "failed": failed, "benchmarks": results}
        out.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

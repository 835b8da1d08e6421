"""Soak: many workers on one PostgreSQL study -- throughput, and that no work is duplicated, failed or lost.

One study of the ``tiny`` space on small synthetic data (3 tasks, n = 300,
a 20-step budget: short trials, so the storage and the coordination between
workers -- admission, twin checks, heartbeats, sweeps -- weigh as much as
they can), its baselines tuned once; then ``--workers`` processes
(``run_worker``, spawned, one torch thread each) run ``--trials`` trials, and
the same number of trials again in a fresh study with 1 worker. Printed:

* trials per minute with W workers against 1 worker (the ratio: the speed-up), from the
  first trial's start to the last one's end as the storage records them (the
  processes' start-up, seconds of imports each, is printed but left out);
* duplicates: trials that trained a candidate (graph + training settings)
  another trial had trained -- must be 0;
* failed trials (any FAIL) and lost trials (asked for but not counted at the
  end, or left RUNNING) -- both must be 0.

It needs a PostgreSQL server, so ``benchmarks/run_all.py`` does not run it.
Start a throwaway one as CI does, then run::

    pip install -e ".[postgres]"
    eval "$(.ci/postgres.sh start)"
    python benchmarks/bench_soak.py                          # 8 workers x 100 trials (the figure)
    python benchmarks/bench_soak.py --workers 4 --trials 24  # a reduced run
    .ci/postgres.sh stop "$SHARESEARCH_PG_DIR"

``--storage URL`` runs it against another storage (``sqlite:///...``, ``journal:...``).

Measured on a 2-core machine shared with 3 other agents (load ~4), PostgreSQL 15 on loopback, 8 workers x
100 trials of ~0.1 s: 372 trials/min against 508 with 1 worker (0.73x: eight processes on two busy cores,
and trials so short that the per-trial storage round trips dominate); duplicates 0, failed 0, lost 0,
over 0 (and the same for the 1-worker study). A reduced run (4 workers x 24 trials): 0 / 0 / 0 / 0.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.search import SearchConfig, TrialRecord, open_storage, prepare_study  # noqa: E402
from sharesearch.search._baselines import ensure_baselines  # noqa: E402
from sharesearch.search._liveness import counted_trials  # noqa: E402
from sharesearch.search._references import enqueue_references  # noqa: E402
from sharesearch.search._workers import run_worker  # noqa: E402
from sharesearch.space import SearchSpace, load_space  # noqa: E402
from sharesearch.training import TrainConfig  # noqa: E402

SOURCE = {"source": "synthetic-mmoe", "options": {"n": 300, "d": 8, "seed": 1, "clusters": [[0, 1], [2]]}}


def _space(max_steps: int) -> SearchSpace:
    d = load_space("tiny").to_dict()
    d["branching"]["affinity"] = False
    d["train"]["max_steps"] = max_steps
    d["baseline"]["trials"], d["baseline"]["confirm_seeds"] = 2, 0
    return SearchSpace.from_dict(d, source="soak.toml")


def _study(url: str, trials: int, max_steps: int) -> str:
    """A fresh study with its baselines tuned and references enqueued (not timed)."""
    data = load_data(SOURCE["source"], **SOURCE["options"])
    space, name, tb = _space(max_steps), f"soak-{uuid.uuid4().hex[:8]}", TrainConfig(device="cpu")
    study = prepare_study(open_storage(url), name, data, SOURCE, space, SearchConfig(n_trials=trials), tb)
    enqueue_references(study, data, space, ensure_baselines(study, data, space, tb, progress=False))
    return name


def _run(url: str, name: str, workers: int, trials: int) -> float:
    """Seconds for ``workers`` spawned workers to finish the study's ``trials`` trials."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(url, name),
                         kwargs={"device": "cpu", "n_trials": trials, "worker": i, "threads": 1})
             for i in range(workers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        raise SystemExit(f"worker(s) failed: exit codes {bad}")
    return time.perf_counter() - t0


def _span(url: str, name: str) -> float:
    """Seconds from the first trial's start to the last trial's end (worker start-up left out)."""
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return (max(ends) - min(starts)).total_seconds()


def _audit(url: str, name: str, trials: int) -> dict[str, int]:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    all_trials = study.get_trials(deepcopy=False)
    keys = [r.cache_key for r in map(TrialRecord.from_trial, all_trials)
            if r.steps_run is not None and r.reused_from is None and not r.control]
    running = sum(1 for t in all_trials if t.state == TrialState.RUNNING)
    return {"duplicates": len(keys) - len(set(keys)),
            "failed": sum(1 for t in all_trials if t.state == TrialState.FAIL),
            "lost": max(0, trials - counted_trials(study)) + running,
            "over": max(0, counted_trials(study) - trials)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storage", default=os.environ.get("SHARESEARCH_TEST_POSTGRES"),
                    help="storage URL (default: $SHARESEARCH_TEST_POSTGRES)")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--trials", type=int, default=100, help="trials per study")
    ap.add_argument("--max-steps", type=int, default=20, help="each trial's step budget (short trials)")
    args = ap.parse_args(argv)
    if not args.storage:
        ap.error("no storage: start PostgreSQL with `eval \"$(.ci/postgres.sh start)\"` or pass --storage")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rates, audits = {}, {}
    for w in (args.workers, 1):
        name = _study(args.storage, args.trials, args.max_steps)
        seconds = _run(args.storage, name, w, args.trials)
        span = _span(args.storage, name)
        rates[w], audits[w] = args.trials / span * 60, _audit(args.storage, name, args.trials)
        print(f"# {w} worker(s): {args.trials} trials in {span:.1f} s from the first start to the last end "
              f"({rates[w]:.1f} trials/min; {seconds:.1f} s with the workers' start-up); "
              + ", ".join(f"{k} {v}" for k, v in audits[w].items()), flush=True)
    a = audits[args.workers]
    print(f"soak ({args.workers} workers x {args.trials} trials, {args.storage.split(':')[0]}): "
          f"{rates[args.workers]:.1f} vs {rates[1]:.1f} trials/min with 1 worker -> "
          f"{rates[args.workers] / rates[1]:.2f}x; duplicates {a['duplicates']}, failed {a['failed']}, "
          f"lost {a['lost']}, over {a['over']}", flush=True)
    return 0 if not any(a.values()) and not any(audits[1].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

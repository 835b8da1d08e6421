"""The baseline phase: confirmation runs on the tasks that shortlisted them against runs on every task.

The control's baselines are tuned (``baseline.trials`` one-pass runs of the
independent graph) and each task's shortlisted configurations are retrained with
``confirm_seeds`` seeds (:mod:`sharesearch.search._baselines`). Those runs are
trained two ways, side by side in one process on the same data and space, the
runs of one network as populations both ways:

* **shortlisting tasks** (sharesearch now) -- a confirmation run trains only the
  tasks that shortlisted its configuration, drawing the batches of the all-task
  network (``TrainConfig.batch_tasks``);
* **every task** (before) -- a confirmation run trains the whole independent graph.

A task's run is its part of the all-task run either way (up to float rounding,
which a high learning rate can amplify over 3,000 steps), so both should choose
the same configurations with nearly the same values: the benchmark prints whether
they do, the largest relative difference of a chosen value, the baseline phase's
time each way, and the ratio.

Run::

    python benchmarks/bench_baselines.py            # n=4000, T=6, the branching space (12 tuning trials)
    python benchmarks/bench_baselines.py --quick    # n=600, 3 tuning trials, 150 steps
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, run_quick_device, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.search import SearchConfig, prepare_study  # noqa: E402
from sharesearch.search import _baselines  # noqa: E402
from sharesearch.space import SearchSpace, load_space  # noqa: E402
from sharesearch.training import TrainConfig  # noqa: E402

SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "branching.toml"
FULL = {"n": 4000}
QUICK = {"n": 600, "max_steps": 150, "baseline_trials": 3}


def _space(quick: bool) -> SearchSpace:
    space = SearchSpace.from_file(SPACE_FILE) if SPACE_FILE.exists() else load_space("branching")
    if not quick:
        return space
    d = space.to_dict()
    d["train"]["max_steps"], d["baseline"]["trials"] = QUICK["max_steps"], QUICK["baseline_trials"]
    return SearchSpace.from_dict(d, source="branching-quick.toml")


def _phase(data, source: dict, space: SearchSpace, device: str) -> tuple[float, dict]:
    """Seconds of one whole baseline phase on a fresh in-memory study, and each task's chosen (trial, value)."""
    tb = TrainConfig(device=device)
    study = prepare_study(optuna.storages.InMemoryStorage(), "baselines", data, source, space,
                          SearchConfig(n_trials=1), tb)
    t0 = time.perf_counter()
    chosen = _baselines.ensure_baselines(study, data, space, tb, progress=False)
    return time.perf_counter() - t0, {k: (b.trial, b.val_metric) for k, b in chosen.items()}


def main(quick: bool = False, device: str = "cpu") -> list[str]:
    setup_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options = {"n": (QUICK if quick else FULL)["n"], "seed": 0, "clusters": [[0, 1, 2], [3, 4], [5]]}
    data, space = load_data("synthetic-mmoe", **options), _space(quick)
    source = {"source": "synthetic-mmoe", "options": options}
    now = _baselines.confirmation_tasks
    try:
        _baselines.confirmation_tasks = lambda trial: None  # every confirmation run trains every task
        before, chosen_before = _phase(data, source, space, device)
    finally:
        _baselines.confirmation_tasks = now
    after, chosen_after = _phase(data, source, space, device)
    same = {k: v[0] for k, v in chosen_before.items()} == {k: v[0] for k, v in chosen_after.items()}
    worst = max(abs(chosen_after[k][1] - v[1]) / abs(v[1]) for k, v in chosen_before.items())
    print(f"# baseline phase: the same configurations chosen both ways: {same}; "
          f"largest relative difference of a chosen value {worst:.2%}", flush=True)
    return [report(f"baseline phase n={data.n} T={len(data.tasks)} {space.baseline_trials} tuning trials, "
                   f"{space.baseline_confirm_seeds} confirmation seeds", "shortlisting tasks", after,
                   "every task", before)]


if __name__ == "__main__":
    run_quick_device(main, __doc__)

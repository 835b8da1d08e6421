"""The baseline phase: confirmation runs trained per network against one population per configuration.

The control's baselines are tuned (``baseline.trials`` one-pass runs of the
independent graph) and each task's shortlisted configurations are retrained with
``confirm_seeds`` seeds (:mod:`sharesearch.search._baselines`). Those runs are
trained two ways, side by side in one process on the same data and space:

* **per network** (sharesearch now) -- every confirmation run of one network,
  all configurations and seeds, goes to one ``train_population`` call, which
  stacks the runs that differ only in learning rate or weight decay;
* **per configuration** (before) -- one population per configuration, its seeds.

Both must choose the same baselines with the same values (members of a
population equal their separate runs): the benchmark prints whether they do,
the baseline phase's time each way, and the ratio.

Run::

    python benchmarks/bench_baselines.py            # n=4000, T=6, the branching space (12 tuning trials)
    python benchmarks/bench_baselines.py --quick    # n=600, 3 tuning trials, 150 steps
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, setup_threads  # noqa: E402

from sharesearch.data import load_data  # noqa: E402
from sharesearch.search import SearchConfig, prepare_study  # noqa: E402
from sharesearch.search import _baselines  # noqa: E402
from sharesearch.space import SearchSpace, load_space  # noqa: E402
from sharesearch.training import TrainConfig, train_population  # noqa: E402

SPACE_FILE = Path(__file__).resolve().parents[1] / "search_spaces" / "branching.toml"
FULL = {"n": 4000}
QUICK = {"n": 600, "max_steps": 150, "baseline_trials": 3}


def per_configuration(self, bstudy: optuna.Study, asked: list, tick) -> None:
    """The previous ``_Runs._train_asked``: one population per configuration (its seeds)."""
    by_config: dict[str, list] = {}
    for run in asked:
        by_config.setdefault(json.dumps(run[0].params, sort_keys=True), []).append(run)
    for runs in by_config.values():
        results = train_population(runs[0][1].graph, self.data, [r[4] for r in runs], keep_model=False)
        for (trial, cand, seed, confirms, _), res in zip(runs, results):
            bstudy.tell(trial, self._finish(trial, cand, seed, confirms, res))
            tick()


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
    now = _baselines._Runs._train_asked
    try:
        _baselines._Runs._train_asked = per_configuration
        before, chosen_before = _phase(data, source, space, device)
    finally:
        _baselines._Runs._train_asked = now
    after, chosen_after = _phase(data, source, space, device)
    print(f"# baseline phase: the same baselines chosen with the same values both ways: "
          f"{chosen_before == chosen_after}", flush=True)
    return [report(f"baseline phase n={data.n} T={len(data.tasks)} {space.baseline_trials} tuning trials, "
                   f"{space.baseline_confirm_seeds} confirmation seeds", "per network", after,
                   "per configuration", before)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    main(a.quick, a.device)

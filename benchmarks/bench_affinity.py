"""Affinity (issue 12): does one short pass find the planted clusters, what does it cost, does it speed the search?

Three parts, on ``synthetic-planted`` (6 tasks: clusters [t0,t1,t2], [t3,t4], [t5];
binary and regression mixed, 70% of labels missing, nonlinear targets):

* ``ari``    -- adjusted Rand index (``sklearn.metrics.adjusted_rand_score``) of the
  dendrogram cut at the true number of groups against the planted clusters, per data
  seed (goal: >= 0.9 in at least 4 of 5). The pass is the one ``sharesearch affinity``
  runs: the default space's backbone and default lr / batch size, 300 steps.
* ``cost``   -- the affinity pass / one average trial of the default space (candidates
  sampled at random, trained under the space's budget; goal <= 3).
* ``trials`` -- trials a real default-space search needs before its best-so-far topology
  groups exactly the planted clusters (every stage's partition refines them and some stage
  equals them), median over data seeds: affinity warm start vs TPE alone vs random search
  (a run that never gets there counts as the cap). A trial's value is one seed's, so the
  best-so-far moves with seed noise when trees differ by about that much; the part also
  prints the trials until a tree grouping the clusters is first *tried* -- what the
  sampler or the warm start proposes. Expensive (a whole search per arm and seed); the
  full run::

      python benchmarks/bench_affinity.py --part trials --data-seeds 5 --trials 40

    python benchmarks/bench_affinity.py [--quick] [--part ari|cost|trials] [--data-seeds N] [--trials M] [--small]
    python benchmarks/bench_affinity.py --part trials --arms tpe,random --first-seed 0 --data-seeds 5 --trials 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report, setup_threads, trials_until_planted, trials_until_tried  # noqa: E402

from sharesearch.affinity import affinity_for_space, affinity_linkage  # noqa: E402
from sharesearch.data import load_data  # noqa: E402
from sharesearch.search import SearchConfig, run_search  # noqa: E402
from sharesearch.space import SearchSpace, load_space  # noqa: E402
from sharesearch.training import TrainConfig, train  # noqa: E402

# trial_steps: None = the space's own step cap (the smoke test lowers it)
QUICK = {"data_seeds": 2, "cost_trials": 1, "steps": 300, "trials": 0, "n": 1500, "trial_steps": None}
FULL = {"data_seeds": 5, "cost_trials": 3, "steps": 300, "trials": 0, "n": 1500, "trial_steps": None}


def _labels(tasks, groups) -> list[int]:
    of = {t: i for i, g in enumerate(groups) for t in g}
    return [of[t] for t in tasks]


def part_ari(cfg: dict, device: str) -> tuple[list[float], list[float]]:
    """Per data seed: the ARI of the cut at the true group count, and the pass's seconds."""
    from scipy.cluster.hierarchy import cut_tree
    from sklearn.metrics import adjusted_rand_score

    space = load_space("default")
    aris, secs = [], []
    for seed in range(cfg["data_seeds"]):
        data = load_data("synthetic-planted", seed=seed, n=cfg["n"])
        planted = data.meta["clusters"]
        config = TrainConfig(lr=space.fields["train.lr"].default, batch_size=128, device=device, seed=0)
        aff, _ = affinity_for_space(data, space, config, steps=cfg["steps"])
        cut = cut_tree(affinity_linkage(aff), n_clusters=len(planted))[:, 0]
        aris.append(float(adjusted_rand_score(_labels(aff.tasks, planted), cut)))
        secs.append(aff.seconds)
        print(f"# data seed {seed}: ARI {aris[-1]:.2f}, pass {aff.seconds:.1f} s", flush=True)
    return aris, secs


def average_trial(cfg: dict, device: str) -> float:
    """Seconds of one default-space trial (random candidates, the space's budget, which ``cand.train`` holds)."""
    space = load_space("default")
    data = load_data("synthetic-planted", seed=0, n=cfg["n"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    times = []
    for _ in range(cfg["cost_trials"]):
        cand = space.sample(study.ask(), data.tasks, data.input_shape)
        t0 = time.perf_counter()
        steps = {"max_steps": cfg["trial_steps"]} if cfg["trial_steps"] else {}
        train(cand.graph, data, TrainConfig(**{**cand.train, **steps}, device=device), keep_model=False)
        times.append(time.perf_counter() - t0)
    return statistics.mean(times)


def trials_to_planted(seed: int, arm: str, n_trials: int, device: str, small: bool = False) -> tuple[int, int]:
    """Trials (references and enqueued trees included) until the best-so-far topology groups the planted clusters,
    and until a tree that groups them is first trained.

    ``small``: a 300-step cap and 3 baseline tuning trials, to try the part on a busy CPU (not the figure).
    """
    data = load_data("synthetic-planted", seed=seed)
    d = load_space("default").to_dict()
    d["branching"]["affinity"] = arm == "warm"
    if small:
        d["train"]["max_steps"] = 300
        d["baseline"].update(trials=3, confirm_seeds=1, confirm_top=1)
    space = SearchSpace.from_dict(d, source=f"default-{arm}.toml")
    cfg = SearchConfig(n_trials=n_trials, sampler="random" if arm == "random" else "tpe", seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        study = run_search(data, {"source": "synthetic-planted", "options": {"seed": seed}}, space,
                           storage=f"sqlite:///{tmp}/s.db", study_name=arm, config=cfg,
                           train_base=TrainConfig(device=device), progress=False, verdict=False)
        return (trials_until_planted(study.trials, data.meta["clusters"], n_trials),
                trials_until_tried(study.trials, data.meta["clusters"], n_trials))


def main(quick: bool = False, device: str = "cpu", part: str | None = None, data_seeds: int | None = None,
         trials: int | None = None, small: bool = False, arms=("warm", "tpe", "random"),
         first_seed: int = 0) -> list[str]:
    setup_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = dict(QUICK if quick else FULL)
    if data_seeds is not None:
        cfg["data_seeds"] = data_seeds
    if trials is not None:
        cfg["trials"] = trials
    cfg["small"] = small
    lines = []
    if part in (None, "ari", "cost"):
        aris, secs = part_ari(cfg, device)
        good = sum(a >= 0.9 for a in aris)
        print(f"# affinity ARI at the true group count per data seed: {[round(a, 2) for a in aris]} "
              f"({good} of {len(aris)} >= 0.9; goal: 4 of 5)", flush=True)
        lines.append(report("affinity recovers the planted clusters (share of data seeds with ARI >= 0.9)",
                            "data seeds", len(aris), "recovered", good, unit="seeds"))
        if part in (None, "cost"):
            trial = average_trial(cfg, device)
            lines.append(report("affinity pass vs one average default-space trial (goal: pass <= 3x a trial)",
                                "trial", trial, "affinity pass", statistics.mean(secs)))
    if part == "trials" or (part is None and cfg["trials"]):
        n, seeds = cfg["trials"] or 12, range(first_seed, first_seed + cfg["data_seeds"])
        got = {arm: [trials_to_planted(s, arm, n, device, cfg.get("small", False)) for s in seeds] for arm in arms}
        for k, what in enumerate(("the best-so-far groups the planted clusters", "a tree grouping them is tried")):
            per = {arm: [v[k] for v in vs] for arm, vs in got.items()}
            print(f"# trials until {what}, per data seed {list(seeds)} (cap {n}): {per}", flush=True)
            med = {arm: statistics.median(v) for arm, v in per.items()}
            for other in ("tpe", "random"):
                if "warm" in med and other in med:
                    lines.append(report(f"trials until {what}, median over data seeds"
                                        + (" (goal: warm <= 0.5x TPE)" if other == "tpe" else ""),
                                        "warm start", med["warm"], "TPE alone" if other == "tpe" else "random",
                                        med[other], unit="trials"))
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--part", choices=["ari", "cost", "trials"], default=None)
    ap.add_argument("--data-seeds", type=int, default=None)
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--small", action="store_true", help="--part trials with a 300-step cap and 3 baseline trials")
    ap.add_argument("--arms", default="warm,tpe,random",
                    help="--part trials: the arms to run, comma-separated (a recovery run of bench_verdict "
                         "prints the warm arm's count for its own search)")
    ap.add_argument("--first-seed", type=int, default=0, help="--part trials: the first data seed")
    a = ap.parse_args()
    main(quick=a.quick, device=a.device, part=a.part, data_seeds=a.data_seeds, trials=a.trials, small=a.small,
         arms=tuple(a.arms.split(",")), first_seed=a.first_seed)

"""Where one trial's time goes: a small real search, timed from the outside, phase by phase.

A real ``run_search`` (``synthetic-planted``: 6 tasks, n = 1,500; the shipped
``default`` space with its step budget; 6 trials, no verdict; a temporary
SQLite file as a user's run has) with timers wrapped around library functions
by monkeypatching -- nothing is added to the library's hot loop. Time is
charged to the innermost phase running (exclusive time), so the phases add up
to the trials' wall time:

* **data to device** -- ``MultiTaskData.to`` (a new container per run, even on the CPU);
* **compile** -- ``compile_graph`` (graph -> module);
* **training steps** -- forward (``MultiTaskNet.forward`` outside validation),
  the task losses, backward (``LossWeighting.backward``, ``Tensor.backward``),
  ``optimizer.step`` and ``zero_grad``;
* **step bookkeeping** -- what else ``train`` does between steps: drawing
  batch indices, gathering rows, summing losses, the schedule, the finiteness
  check;
* **validation** -- ``evaluate`` on the validation split; **model selection** -- ``_Selection.update``;
* **report callback** -- Δm at each evaluation; **storage writes** -- ``Trial.set_user_attr``,
  ``Trial.report``, ``Trial.set_constraint``; **pruner** -- ``Trial.should_prune``;
* **cache lookup** -- ``_trained_before`` (the scan for an identical trained candidate);
* **sampler** -- ``SearchSpace.sample`` (Optuna's ``suggest_*`` and the graph it builds);
* **optuna ask/tell** -- each trial's time outside the objective (creating the
  trial, relative sampling, ``tell``, callbacks);
* **rest** -- the objective's own remaining time.

Printed: one ``#`` line per phase (seconds per trial and share), the share of
trial time that is not training steps as a figure (goal: <= 10 % at n = 1,500
on 2 cores), and the baseline phase's time against the trials' time.

Run::

    python benchmarks/bench_overhead.py            # n=1500, default space, 6 trials (several minutes)
    python benchmarks/bench_overhead.py --quick    # n=400, 200-step cap, 4 trials (< 1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_time, report, setup_threads  # noqa: E402

import sharesearch.search._objective as _objective  # noqa: E402
import sharesearch.search._workers as _workers  # noqa: E402
import sharesearch.training._loop as _loop  # noqa: E402
from sharesearch.data import MultiTaskData, load_data  # noqa: E402
from sharesearch.network import MultiTaskNet  # noqa: E402
from sharesearch.search import SearchConfig, run_search  # noqa: E402
from sharesearch.space import SearchSpace, load_space  # noqa: E402
from sharesearch.training import TrainConfig  # noqa: E402
from sharesearch.weighting import LossWeighting  # noqa: E402

FULL = {"n": 1500, "n_trials": 6, "baseline": {"trials": 4, "confirm_seeds": 2, "confirm_top": 1}}
QUICK = {"n": 400, "n_trials": 4, "max_steps": 200, "eval_every": 50,
         "baseline": {"trials": 2, "confirm_seeds": 1, "confirm_top": 1}}

#: the issue's goal: at most this share (%) of a trial's time outside training steps (> 1x below: met)
GOAL_PCT = 10.0
#: the phases that are training proper; every other phase is overhead
TRAINING = ("forward", "loss", "backward", "optimizer")
#: report order and wording
PHASES = {"data": "data to device", "compile": "compile (graph -> module)", "forward": "forward",
          "loss": "task losses", "backward": "backward", "optimizer": "optimizer step + zero_grad",
          "train": "step bookkeeping (batch draw, gather, loss sum, schedule)", "validation": "validation",
          "selection": "model selection", "callback": "report callback (Δm)",
          "storage": "storage writes (user attrs, report)", "pruner": "pruner (should_prune)",
          "cache": "cache lookup (_trained_before)", "sampler": "sampler (space.sample)",
          "ask_tell": "optuna ask/tell outside the objective", "objective": "rest of the objective"}


class Clock:
    """Exclusive time per phase: elapsed time is charged to the innermost phase on the stack."""

    def __init__(self) -> None:
        self.stack = ["outside"]
        self.totals: dict[str, float] = defaultdict(float)
        self.last = time.perf_counter()

    def _charge(self) -> None:
        now = time.perf_counter()
        self.totals[self.stack[-1]] += now - self.last
        self.last = now

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self.stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self.stack.pop()

    def wrap(self, fn: Callable, name: str, unless_in: tuple[str, ...] = ()) -> Callable:
        """``fn`` timed as phase ``name`` (left to the enclosing phase while inside ``unless_in``)."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self.stack[-1] in unless_in:
                return fn(*args, **kwargs)
            with self.phase(name):
                return fn(*args, **kwargs)

        return timed

    def snapshot(self) -> dict[str, float]:
        self._charge()
        return dict(self.totals)


def _instrument(clock: Clock, mp: contextlib.ExitStack) -> dict[str, float]:
    """Patch timers around the library's functions (undone when ``mp`` closes); returns the phase totals."""
    patches: list[tuple[object, str, Callable]] = []
    w = clock.wrap
    patches += [(MultiTaskData, "to", w(MultiTaskData.to, "data")),
                (_loop, "compile_graph", w(_loop.compile_graph, "compile")),
                (MultiTaskNet, "forward", w(MultiTaskNet.forward, "forward", unless_in=("validation",))),
                (MultiTaskNet, "penalty", w(MultiTaskNet.penalty, "forward")),
                (_loop, "task_loss", w(_loop.task_loss, "loss")),
                (torch.Tensor, "backward", w(torch.Tensor.backward, "backward")),
                (_loop, "evaluate", w(_loop.evaluate, "validation")),
                (_loop._Selection, "update", w(_loop._Selection.update, "selection")),
                (_objective, "_trained_before", w(_objective._trained_before, "cache")),
                (SearchSpace, "sample", w(SearchSpace.sample, "sampler")),
                (optuna.Trial, "should_prune", w(optuna.Trial.should_prune, "pruner"))]
    for name in ("set_user_attr", "report", "set_constraint"):
        patches.append((optuna.Trial, name, w(getattr(optuna.Trial, name), "storage")))
    for cls in {LossWeighting, *_all_subclasses(LossWeighting)}:
        if "backward" in vars(cls):
            patches.append((cls, "backward", w(vars(cls)["backward"], "backward")))
    make_optimizer = _loop.make_optimizer

    def timed_optimizer(*args, **kwargs):
        opt = make_optimizer(*args, **kwargs)
        opt.step = w(opt.step, "optimizer")
        opt.zero_grad = w(opt.zero_grad, "optimizer")
        return opt

    patches.append((_loop, "make_optimizer", timed_optimizer))
    train = _objective.train

    def timed_train(*args, callback=None, **kwargs):
        cb = None if callback is None else w(callback, "callback")
        with clock.phase("train"):
            return train(*args, callback=cb, **kwargs)

    patches.append((_objective, "train", timed_train))
    for obj, attr, new in patches:
        old = getattr(obj, attr)
        setattr(obj, attr, new)
        mp.callback(setattr, obj, attr, old)
    return clock.totals


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def _space(cfg: dict) -> SearchSpace:
    """The shipped default space with the benchmark's baseline budget (and, quick, a smaller step cap)."""
    d = load_space("default").to_dict()
    d["baseline"].update(cfg["baseline"])
    for k in ("max_steps", "eval_every"):
        if k in cfg:
            d["train"][k] = cfg[k]
    return SearchSpace.from_dict(d, source="default-overhead.toml")


def measure(cfg: dict, device: str = "cpu") -> dict[str, float]:
    """Run the instrumented search; seconds per phase over all trials, plus ``baselines`` and ``trials`` walls."""
    options = {"n": cfg["n"], "seed": 0}
    data = load_data("synthetic-planted", **options)
    space, clock, walls = _space(cfg), Clock(), {}
    with contextlib.ExitStack() as stack:
        _instrument(clock, stack)
        in_trials = {}
        ensure, make_objective = _workers.ensure_baselines, _workers.make_objective

        def timed_baselines(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return ensure(*args, **kwargs)
            finally:
                walls["baselines"] = walls.get("baselines", 0.0) + time.perf_counter() - t0

        def timed_make_objective(*args, **kwargs):
            objective = make_objective(*args, **kwargs)
            in_trials["start"], in_trials["totals"] = time.perf_counter(), clock.snapshot()
            return clock.wrap(objective, "objective")

        for attr, new in (("ensure_baselines", timed_baselines), ("make_objective", timed_make_objective)):
            stack.callback(setattr, _workers, attr, getattr(_workers, attr))
            setattr(_workers, attr, new)
        with tempfile.TemporaryDirectory() as tmp:
            study = run_search(data, {"source": "synthetic-planted", "options": options}, space,
                               storage=f"sqlite:///{tmp}/study.db", study_name="overhead",
                               config=SearchConfig(n_trials=cfg["n_trials"]), train_base=TrainConfig(device=device),
                               progress=False, verdict=False)
            walls["trials"] = time.perf_counter() - in_trials["start"]
            end = clock.snapshot()
            walls["n_trials"] = len(study.trials)
            walls["statuses"] = sorted(t.user_attrs.get("status", "?") for t in study.trials)
    before = in_trials["totals"]
    out = {k: end.get(k, 0.0) - before.get(k, 0.0) for k in PHASES if k != "ask_tell"}
    out["ask_tell"] = walls["trials"] - sum(out.values())
    return {**out, **walls}


def main(quick: bool = False, device: str = "cpu") -> list[str]:
    setup_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = QUICK if quick else FULL
    m = measure(cfg, device)
    n, trials = m["n_trials"], m["trials"]
    tag = f"overhead n={cfg['n']} T=6 {n} trials default space"
    print(f"# {tag}: {fmt_time(trials / n)} per trial on {torch.get_num_threads()} threads "
          f"(statuses: {', '.join(m['statuses'])})", flush=True)
    for k, label in PHASES.items():
        print(f"#   {label:<58} {fmt_time(m[k] / n):>10}/trial {100 * m[k] / trials:5.1f}%"
              + ("  [training]" if k in TRAINING else ""), flush=True)
    steps = sum(m[k] for k in TRAINING)
    print(f"# baseline phase {fmt_time(m['baselines'])} vs the {n} trials {fmt_time(trials)}", flush=True)
    return [
        report(f"{tag}: share of trial time outside training steps vs the goal", "measured",
               100 * (trials - steps) / trials, "goal", GOAL_PCT, unit="%"),
        report(f"{tag}: baseline phase vs trials", "baselines", m["baselines"], "trials", trials),
    ]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    main(a.quick, a.device)

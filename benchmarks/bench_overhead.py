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
* **validation** -- ``predict_split`` and ``_metrics`` on the validation split (what ``train`` calls),
  ``evaluate``, a population's ``_evaluate``; **model selection** -- ``_Selection.update``;
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

Printed also: the training forwards (steps) a trial and the step bookkeeping
per step. The timers cost about 2.4 us per timed call, charged to the phase
around it (mostly step bookkeeping: ~10 timed calls a step). Figures and the
day they were measured are in ``benchmarks/RESULTS.md``. With 2 threads on a
busy machine torch's intra-op threads wait on each other -- run it with
``SHARESEARCH_BENCH_THREADS=1`` when the machine is not quiet.

Run::

    SHARESEARCH_BENCH_THREADS=1 python benchmarks/bench_overhead.py   # n=1500, default space, 6 trials (~2 min)
    python benchmarks/bench_overhead.py --quick    # n=400, 200-step cap, 4 trials (< 1 min)
"""

from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
import time
import types
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_time, report, run_quick_device, setup_threads  # noqa: E402

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
    """Exclusive time per phase: elapsed time is charged to the innermost phase on the stack.

    Two clocks run side by side: wall time (``perf_counter``) and the main
    thread's CPU time (``thread_time``), which a busy machine inflates less --
    while the process waits for a core, wall time runs on and CPU time stops.
    """

    def __init__(self) -> None:
        self.stack = ["outside"]
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)  # entries into each phase
        self.last = (time.perf_counter(), time.thread_time())

    def _charge(self) -> None:
        now = (time.perf_counter(), time.thread_time())
        self.wall[self.stack[-1]] += now[0] - self.last[0]
        self.cpu[self.stack[-1]] += now[1] - self.last[1]
        self.last = now

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self.calls[name] += 1
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

    def snapshot(self) -> tuple[dict[str, float], dict[str, float], float, float]:
        """Wall and CPU totals per phase, and both clocks' readings now."""
        self._charge()
        return dict(self.wall), dict(self.cpu), *self.last


def _targets() -> list[tuple[object, str, str, tuple[str, ...]]]:
    """``(owner, attribute, phase, unless_in)`` of every function the benchmark times.

    Both training paths are covered: one run (``train``) and a population
    (``_Population``, used when trials train together). A name the library no
    longer has is skipped and listed by :func:`_instrument`.
    """
    import sharesearch.search._populations as _populations
    import sharesearch.training._member_optim as _member_optim
    import sharesearch.training._population as _population

    pop = getattr(_population, "_Population", None)
    out = [(MultiTaskData, "to", "data", ()),
           (_loop, "compile_graph", "compile", ()), (_population, "compile_graph", "compile", ()),
           (MultiTaskNet, "forward", "forward", ("validation",)), (MultiTaskNet, "penalty", "forward", ()),
           (_loop, "task_loss", "loss", ()), (_population, "task_loss", "loss", ()),
           (pop, "_losses", "forward", ()),
           (torch.Tensor, "backward", "backward", ()),
           (getattr(_member_optim, "MemberOptimizer", None), "step", "optimizer", ()),
           (getattr(_member_optim, "MemberOptimizer", None), "zero_grad", "optimizer", ()),
           (_loop, "evaluate", "validation", ()), (pop, "_evaluate", "validation", ()),
           (_loop, "predict_split", "validation", ()), (_loop, "_metrics", "validation", ()),  # what train calls
           (_loop._Selection, "update", "selection", ()),
           (_objective, "_trained_before", "cache", ()),
           (SearchSpace, "sample", "sampler", ()),
           (optuna.Trial, "should_prune", "pruner", ()),
           (_objective.TrialRunner, "__call__", "objective", ()),
           (_objective.TrialRunner, "begin", "objective", ()), (_objective.TrialRunner, "finish", "objective", ())]
    out += [(optuna.Trial, name, "storage", ()) for name in ("set_user_attr", "report", "set_constraint")]
    out += [(cls, "backward", "backward", ()) for cls in {LossWeighting, *_all_subclasses(LossWeighting)}
            if "backward" in vars(cls)]
    out += [(mod, "train_population", "train", ()) for mod in (_objective, _populations)]
    return out


def _instrument(clock: Clock, mp: contextlib.ExitStack) -> list[str]:
    """Patch timers around the library's functions (undone when ``mp`` closes); the names not found."""
    missing, w = [], clock.wrap
    patches: list[tuple[object, str, Callable]] = []
    for owner, attr, phase, unless_in in _targets():
        fn = getattr(owner, attr, None) if owner is not None else None
        if fn is None:
            missing.append(f"{getattr(owner, '__name__', owner)}.{attr}")
        elif phase == "train":  # a training call: its callbacks are the report phase
            patches.append((owner, attr, _timed_training(clock, fn)))
        else:
            patches.append((owner, attr, w(fn, phase, unless_in)))
    make_optimizer = _loop.make_optimizer

    def timed_optimizer(*args, **kwargs):
        opt = make_optimizer(*args, **kwargs)  # bound methods: torch's schedulers wrap opt.step's __func__
        opt.step = types.MethodType(w(type(opt).step, "optimizer"), opt)
        opt.zero_grad = types.MethodType(w(type(opt).zero_grad, "optimizer"), opt)
        return opt

    patches.append((_loop, "make_optimizer", timed_optimizer))
    for obj, attr, new in patches:
        old = vars(obj).get(attr, getattr(obj, attr)) if isinstance(obj, type) else getattr(obj, attr)
        setattr(obj, attr, new)
        mp.callback(setattr, obj, attr, old)
    return missing


def _timed_training(clock: Clock, fn: Callable) -> Callable:
    """``train_population`` timed as phase ``train``, each member's callback as phase ``callback``."""

    @functools.wraps(fn)
    def timed(*args, callbacks=None, **kwargs):
        if callbacks is not None:
            callbacks = [None if cb is None else clock.wrap(cb, "callback") for cb in callbacks]
        with clock.phase("train"):
            return fn(*args, callbacks=callbacks, **kwargs)

    return timed


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


def measure(cfg: dict, device: str = "cpu") -> dict[str, dict]:
    """Run the instrumented search.

    Returns ``wall`` and ``cpu``: seconds per phase over all trials (``ask_tell``
    is each trial's time outside the objective; ``trials`` the whole), and
    ``walls``: the baseline phase's wall time, the number of trials and their statuses.
    """
    options = {"n": cfg["n"], "seed": 0}
    data = load_data("synthetic-planted", **options)
    space, clock, walls, start = _space(cfg), Clock(), {}, {}
    with contextlib.ExitStack() as stack:
        walls["missing"] = _instrument(clock, stack)
        ensure, make_objective = _workers.ensure_baselines, _workers.make_objective

        def timed_baselines(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return ensure(*args, **kwargs)
            finally:
                walls["baselines"] = walls.get("baselines", 0.0) + time.perf_counter() - t0

        def timed_make_objective(*args, **kwargs):
            start["at"] = clock.snapshot()  # the trials start now
            start["calls"] = dict(clock.calls)
            return make_objective(*args, **kwargs)

        for attr, new in (("ensure_baselines", timed_baselines), ("make_objective", timed_make_objective)):
            stack.callback(setattr, _workers, attr, getattr(_workers, attr))
            setattr(_workers, attr, new)
        with tempfile.TemporaryDirectory() as tmp:
            study = run_search(data, {"source": "synthetic-planted", "options": options}, space,
                               storage=f"sqlite:///{tmp}/study.db", study_name="overhead",
                               config=SearchConfig(n_trials=cfg["n_trials"]), train_base=TrainConfig(device=device),
                               progress=False, verdict=False)
            end = clock.snapshot()
            walls["forwards"] = clock.calls["forward"] - start["calls"].get("forward", 0)  # training steps
            walls.update(n_trials=len(study.trials),
                         statuses=sorted(t.user_attrs.get("status", "?") for t in study.trials))
    out = {}
    for i, kind in enumerate(("wall", "cpu")):
        before, after = start["at"][i], end[i]
        d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in PHASES if k != "ask_tell"}
        d["trials"] = end[2 + i] - start["at"][2 + i]
        d["ask_tell"] = d["trials"] - sum(v for k, v in d.items() if k not in ("trials", "ask_tell"))
        out[kind] = d
    return {**out, "walls": walls}


def main(quick: bool = False, device: str = "cpu") -> list[str]:
    setup_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = QUICK if quick else FULL
    m = measure(cfg, device)
    wall, cpu, walls = m["wall"], m["cpu"], m["walls"]
    n, trials = walls["n_trials"], wall["trials"]
    tag = f"overhead n={cfg['n']} T=6 {n} trials default space"
    print(f"# {tag}: {fmt_time(trials / n)} per trial on {torch.get_num_threads()} threads "
          f"(statuses: {', '.join(walls['statuses'])})", flush=True)
    if walls["missing"]:
        print(f"# not timed (no longer in the library): {', '.join(walls['missing'])}", flush=True)
    print(f"#   {'phase':<58} {'wall/trial':>10}  wall%   cpu%", flush=True)
    for k, label in PHASES.items():
        print(f"#   {label:<58} {fmt_time(wall[k] / n):>10} {100 * wall[k] / trials:5.1f}% "
              f"{100 * cpu[k] / cpu['trials']:5.1f}%" + ("  [training]" if k in TRAINING else ""), flush=True)
    steps = walls["forwards"] / n
    print(f"# {steps:.0f} training forwards (steps) a trial: step bookkeeping {1e6 * wall['train'] / n / steps:.0f} us "
          f"a step, training {1e6 * sum(wall[k] for k in TRAINING) / n / steps:.0f} us a step", flush=True)
    print(f"# baseline phase {fmt_time(walls['baselines'])} vs the {n} trials {fmt_time(trials)}", flush=True)
    outside = {kind: 100 * (d["trials"] - sum(d[k] for k in TRAINING)) / d["trials"] for kind, d in m.items()
               if kind != "walls"}
    return [
        report(f"{tag}: share of trial wall time outside training steps vs the goal", "measured",
               outside["wall"], "goal", GOAL_PCT, unit="%"),
        report(f"{tag}: share of main-thread CPU time outside training steps vs the goal", "measured",
               outside["cpu"], "goal", GOAL_PCT, unit="%"),
        report(f"{tag}: baseline phase vs trials", "baselines", walls["baselines"], "trials", trials),
    ]


if __name__ == "__main__":
    run_quick_device(main, __doc__)

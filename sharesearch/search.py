"""The Optuna search over sharing graphs, the tuned baselines, and the verdict.

This is the only module that imports optuna. One study holds everything a
worker needs (search space, data source and fingerprint, training and search
configuration) in its user attributes, so ``run_worker(storage, study)``
joins from another process or machine with nothing else.

Protocol
--------
1. **Baselines first.** The independent single-task networks get their own
   small tuning (learning rate, width, weight decay) on the validation split
   in a companion study ``<study>.baselines``. Each baseline trial trains all
   tasks in one pass (the independent graph) and each task keeps its own best
   configuration. The result is stored in the main study, keyed by data
   fingerprint, backbone, budget and seed, and every worker reuses it.
2. **Reference points.** A new study enqueues the field's reference
   architectures (independent, shared-bottom, MMoE, cross-stitch) first,
   trained with the baselines' tuned configuration (lr, weight decay,
   epochs, batch size) so that they are compared like with like.
3. **Objective.** Validation Δm (Maninis et al. 2019): the priority-weighted
   mean over tasks of the signed relative difference to the tuned baseline;
   positive is better than independent. Multi-objective mode adds parameter
   count, FLOPs and/or the worst task's Δ and yields a Pareto front.
   Budgets (``max_params``/``max_flops``) are constraints
   (``trial.set_constraint``) checked before any training.
4. **Pruning.** Single-objective studies report Δm every epoch and prune
   (Hyperband by default). Optuna cannot prune multi-objective studies.
5. **Cache.** A candidate whose canonical graph and training parameters were
   already trained reuses that result instead of training again.
6. **Verdict.** After the search, the top-k candidates and the reference
   architectures are retrained with ``n_seeds`` fresh seeds, as are the tuned
   baselines, and evaluated **once** on the test split, which the search
   never saw: per-task Welch tests with Holm correction and a bootstrap
   interval on Δm (:mod:`sharesearch.verdict`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import warnings

import optuna
from optuna.trial import TrialState

# RDB heartbeats and metric names are stable enough for us; their "experimental" notices are noise to users.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

from .data import MultiTaskData, load_data
from .graph import SharingGraph
from .space import SearchSpace
from .tasks import metric_direction, sign
from .train import TrainConfig, TrainResult, resolve_device, train
from .verdict import relative_delta, task_verdicts

__all__ = [
    "SearchConfig",
    "SearchError",
    "open_storage",
    "prepare_study",
    "ensure_baselines",
    "run_worker",
    "run_search",
    "enqueue_references",
    "annotate_for_dashboard",
    "compute_verdict",
    "load_results",
    "default_study_name",
    "OBJECTIVES",
]

log = logging.getLogger("sharesearch")

ATTR = "sharesearch"  # study user attribute holding the study's context
OBJECTIVES = {"delta_m": "maximize", "params": "minimize", "flops": "minimize", "worst_delta": "maximize"}
REFERENCES = ("independent", "shared-bottom", "mmoe", "cross-stitch")
VERDICT_SEED_OFFSET = 1000  # verdict seeds never coincide with the search seed


class SearchError(ValueError):
    """A search that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class SearchConfig:
    """How the search runs. Stored in the study so every worker agrees."""

    n_trials: int = 20  # finished trials (complete + pruned + failed) the study aims for
    timeout: float | None = None  # seconds per worker, None for no limit
    objectives: tuple[str, ...] = ("delta_m",)  # delta_m first; then params | flops | worst_delta
    max_params: int | None = None  # budget: trainable parameters (constraint)
    max_flops: int | None = None  # budget: FLOPs per example (constraint)
    sampler: str = "tpe"  # tpe | random
    pruner: str = "hyperband"  # hyperband | median | none
    seed: int = 0  # sampler seed and the search's training seed
    top_k: int = 3  # candidates retrained for the verdict
    n_seeds: int = 3  # seeds of the verdict's retraining
    alpha: float = 0.05  # significance level of the verdict
    references: tuple[str, ...] = REFERENCES  # reference architectures enqueued first

    def __post_init__(self) -> None:
        if not self.objectives or self.objectives[0] != "delta_m":
            raise SearchError(f"search config: field 'objectives' must start with 'delta_m', got {list(self.objectives)}")
        for o in self.objectives:
            if o not in OBJECTIVES:
                raise SearchError(f"search config: unknown objective {o!r}; valid: {sorted(OBJECTIVES)}")
        if self.sampler not in ("tpe", "random"):
            raise SearchError(f"search config: unknown sampler {self.sampler!r}; valid: ['random', 'tpe']")
        if self.pruner not in ("hyperband", "median", "none"):
            raise SearchError(f"search config: unknown pruner {self.pruner!r}; valid: ['hyperband', 'median', 'none']")
        if self.n_trials < 1 or self.n_seeds < 1 or self.top_k < 0:
            raise SearchError("search config: n_trials and n_seeds must be >= 1, top_k >= 0")

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objectives"], d["references"] = list(self.objectives), list(self.references)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SearchConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("objectives", "references"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)


# ----------------------------------------------------------------- storage
def open_storage(url: str | None, study_name: str = "sharesearch", runs_dir: str | Path = "runs",
                 workers: int = 1, *, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """Open an Optuna storage.

    ``url`` is any Optuna storage URL (``sqlite:///...``, ``postgresql://...``,
    ``mysql://...``) or ``journal:PATH`` for Optuna's journal file. ``None``
    picks a local file under ``runs_dir/<study>/``: an existing one is reused
    (that is how an interrupted run resumes); otherwise SQLite, or a journal
    file when several local workers will write at once.
    """
    if url is None:
        folder = Path(runs_dir) / study_name
        folder.mkdir(parents=True, exist_ok=True)
        db, journal = folder / "study.db", folder / "journal.log"
        if journal.exists() or (workers > 1 and not db.exists()):
            url = f"journal:{journal}"
        else:
            url = f"sqlite:///{db}"
    if must_exist:  # joining or reading a study: a mistyped local path must not create an empty file
        local = url[len("journal:"):] if url.startswith("journal:") else (
            url[len("sqlite:///"):] if url.startswith("sqlite:///") else None)
        if local is not None and not Path(local).exists():
            raise SearchError(f"--storage: no such file {local!r} (from {url!r})")
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal:"):]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise SearchError(f"--storage: not a storage URL: {url!r} (try sqlite:///study.db, "
                          "postgresql://user:pass@host/db or journal:path/to/file.log)")
    try:
        storage = optuna.storages.RDBStorage(
            url, heartbeat_interval=30, grace_period=120,
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)
    except Exception as e:  # sqlalchemy raises many kinds; the user needs the URL and the reason
        raise SearchError(f"--storage: cannot open {url!r}: {e}") from None
    if url.startswith("sqlite"):
        _fast_sqlite(storage)
    return storage


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal and synchronous=NORMAL: a commit no longer waits for an fsync.

    A trial writes a few dozen small rows (parameters, attributes, one
    intermediate value per epoch); with SQLite's defaults each commit costs
    an fsync (~7 ms here), a third of a small trial's time. WAL stays safe
    for several local processes; NORMAL can lose the last commits on power
    loss, never corrupt the file.
    """
    from sqlalchemy import event

    def pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections made before the listener reopen with the pragmas


def storage_url(storage: optuna.storages.BaseStorage) -> str:
    """A URL another process can open for ``storage``."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return storage.url
    backend = getattr(storage, "_backend", None)
    path = getattr(backend, "_file_path", None)
    if path is not None:
        return f"journal:{path}"
    raise SearchError("this storage cannot be shared with worker processes; pass --storage URL")


def default_study_name(data: MultiTaskData, space: SearchSpace) -> str:
    """A name that resumes the same search: data source, data and space fingerprints."""
    return f"{data.name}-{data.fingerprint()[:8]}-{space.fingerprint()[:8]}"


# ------------------------------------------------------------------ study
def _context(study: optuna.Study) -> dict[str, Any]:
    ctx = study.user_attrs.get(ATTR)
    if ctx is None:
        raise SearchError(f"study {study.study_name!r} was not created by sharesearch (no {ATTR!r} attribute)")
    return ctx


def _load_study(storage, study_name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise SearchError(f"--study: no study {study_name!r} in this storage; studies: {names}") from None


def _sampler(cfg: SearchConfig) -> optuna.samplers.BaseSampler:
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    # Optuna's default TPE: on the planted-cluster proxy of benchmarks/bench_sampler.py it needed a
    # median 10 trials against 21 for multivariate TPE with 8 start-up trials (5 seeds).
    return optuna.samplers.TPESampler(seed=cfg.seed)


def _pruner(cfg: SearchConfig, max_epochs: int) -> optuna.pruners.BasePruner:
    if cfg.multi_objective or cfg.pruner == "none":
        return optuna.pruners.NopPruner()
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_epochs, 2), reduction_factor=3)


def _max_epochs(space: SearchSpace, train_base: TrainConfig) -> int:
    f = space.fields.get("train.epochs")
    return int(f.max) if f is not None else train_base.epochs


def prepare_study(storage, study_name: str, data: MultiTaskData, data_source: Mapping[str, Any],
                  space: SearchSpace, cfg: SearchConfig, train_base: TrainConfig) -> optuna.Study:
    """Create the study (recording its context and enqueueing the references) or check and load it.

    A study that already exists must have been made for the same data
    (fingerprint) and search space; otherwise :class:`SearchError`.
    """
    directions = [OBJECTIVES[o] for o in cfg.objectives]
    existing = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if study_name in existing:
        study = optuna.load_study(study_name=study_name, storage=storage,
                                  sampler=_sampler(cfg))
        ctx = _context(study)
        _check_data(ctx, data, study_name)
        if ctx["space_fingerprint"] != space.fingerprint():
            raise SearchError(f"study {study_name!r} was made with another search space "
                              f"({ctx['space'].get('source', '?')}); use another --study name")
        if ctx["search"].get("n_trials") != cfg.n_trials:  # resuming with a new target: workers follow it
            ctx["search"]["n_trials"] = cfg.n_trials
            study.set_user_attr(ATTR, ctx)
        return study
    study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                sampler=_sampler(cfg))
    references = {}
    for name in cfg.references:
        if name not in space.reference_names():
            continue
        params = space.reference_params(name, data.tasks)
        references[name] = space.sample(optuna.trial.FixedTrial(params), data.tasks, data.input_shape).graph.key()
    ctx = {
        "version": 1,
        "data": {"source": dict(data_source), "name": data.name, "fingerprint": data.fingerprint(),
                 "tasks": [t.to_dict() for t in data.tasks], "input_shape": list(data.input_shape),
                 "split_seed": data.split_seed},
        "space": space.to_dict(), "space_text": space.text, "space_fingerprint": space.fingerprint(),
        "search": cfg.to_dict(), "train": train_base.to_dict(), "references": references,
        "objective_names": list(cfg.objectives),
    }
    study.set_user_attr(ATTR, ctx)
    study.set_metric_names(list(cfg.objectives))
    return study


def _check_data(ctx: Mapping[str, Any], data: MultiTaskData, study_name: str) -> None:
    want = ctx["data"]["fingerprint"]
    if data.fingerprint() != want:
        raise SearchError(
            f"refusing to join study {study_name!r}: the data here has fingerprint {data.fingerprint()[:12]} "
            f"but the study was made with {want[:12]} ({ctx['data']['source']}); the same data must be "
            "reachable from every worker")


def _space_from_ctx(ctx: Mapping[str, Any]) -> SearchSpace:
    return SearchSpace.from_dict(ctx["space"], source=ctx["space"].get("source", "<study>"))


# --------------------------------------------------------------- baselines
def _baseline_key(data: MultiTaskData, space: SearchSpace, budget: Mapping[str, Any], seed: int) -> str:
    return json.dumps({"data": data.fingerprint(), "space": space.fingerprint(), "budget": budget, "seed": seed},
                      sort_keys=True)


def ensure_baselines(study: optuna.Study, data: MultiTaskData, space: SearchSpace, train_base: TrainConfig
                     ) -> dict[str, dict[str, Any]]:
    """Tune (once) and return each task's best single-task baseline on validation.

    Baseline trials live in the companion study ``<study>.baselines`` of the
    same storage, so parallel workers share them. Returns
    ``{task: {"val_metric", "val_metrics", "config", "trial"}}``.
    """
    _context(study)  # a sharesearch study, or a clear error
    cand0 = space.sample_baseline(optuna.trial.FixedTrial(space.baseline_default_params()), data.tasks,
                                  data.input_shape)
    budget = {k: cand0.train.get(k) for k in ("epochs", "batch_size")}
    key = _baseline_key(data, space, budget, train_base.seed)
    stored = study.user_attrs.get("baselines")
    if stored and stored.get("key") == key:
        return stored["tasks"]
    bstudy = optuna.create_study(study_name=f"{study.study_name}.baselines", storage=study._storage,
                                 direction="maximize", load_if_exists=True,
                                 sampler=optuna.samplers.TPESampler(seed=train_base.seed, n_startup_trials=4))
    if not bstudy.user_attrs.get("enqueued"):
        bstudy.enqueue_trial(space.baseline_default_params())
        bstudy.set_user_attr("enqueued", True)
    directions = {t.name: t.primary_metric for t in data.tasks}

    def objective(trial: optuna.Trial) -> float:
        cand = space.sample_baseline(trial, data.tasks, data.input_shape)
        cfg = train_base.updated(**cand.train)
        res = train(cand.graph, data, cfg, keep_model=False)
        trial.set_user_attr("train", cand.train)
        trial.set_user_attr("width_scale", trial.params.get("baseline_width", None))
        trial.set_user_attr("graph", cand.graph.to_dict())
        trial.set_user_attr("val_metrics", res.val_metrics)
        trial.set_user_attr("status", res.status)
        if res.status != "ok":
            return float("nan")
        # the trial value only guides the sampler: the mean signed primary metric
        return float(sum(_signed(t, res) for t in data.tasks) / len(data.tasks))

    n = space.baseline_trials
    done = _finished(bstudy)
    if done < n:
        bstudy.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(
            n, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))],
            n_trials=n - done, show_progress_bar=False)
    best: dict[str, dict[str, Any]] = {}
    for tr in bstudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        vm = tr.user_attrs["val_metrics"]
        for spec in data.tasks:
            v = vm[spec.name][spec.primary_metric]
            if not math.isfinite(v):
                continue
            cur = best.get(spec.name)
            sgn = sign(spec.primary_metric)
            if cur is None or sgn * (v - cur["val_metric"]) > 0:
                best[spec.name] = {"val_metric": v, "val_metrics": vm[spec.name], "config": tr.user_attrs["train"],
                                   "graph": tr.user_attrs["graph"], "trial": tr.number, "metric": directions[spec.name]}
    missing = [t.name for t in data.tasks if t.name not in best]
    if missing:
        raise SearchError(f"baseline tuning produced no finite validation metric for task(s) {missing}")
    study.set_user_attr("baselines", {"key": key, "tasks": best})
    return best


def _signed(spec, res: TrainResult) -> float:
    v = res.val_metrics[spec.name][spec.primary_metric]
    return sign(spec.primary_metric) * v if math.isfinite(v) else 0.0


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)))


def _reference_training(space: SearchSpace, baselines: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Trial parameters giving the reference architectures the baselines' tuned training.

    The most common tuned baseline configuration (lr, weight decay, epochs,
    batch size), clipped into the candidates' ranges: a reference is then
    compared with baselines trained the same way, not with defaults.
    """
    from collections import Counter

    configs = Counter(json.dumps(b["config"], sort_keys=True) for b in baselines.values())
    config = json.loads(configs.most_common(1)[0][0])
    out: dict[str, Any] = {}
    for key in ("lr", "weight_decay", "epochs", "batch_size"):
        f = space.fields.get(f"train.{key}")
        if f is None or key not in config:
            continue
        value = config[key]
        if f.mode == "range" and value != 0:
            value = min(max(value, f.low), f.high)
        if f.can_be(value):
            out.update(f.params_for(value))
    return out


def enqueue_references(study: optuna.Study, data: MultiTaskData, space: SearchSpace,
                       baselines: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Enqueue the reference architectures (once per study), trained like the tuned baselines."""
    if study.user_attrs.get("references_enqueued"):
        return []
    names = list(_context(study).get("references", {}))
    training = _reference_training(space, baselines)
    for name in names:
        params = {**space.reference_params(name, data.tasks), **training}
        study.enqueue_trial(params, user_attrs={"reference": name})
    study.set_user_attr("references_enqueued", True)
    return names


# --------------------------------------------------------------- objective
def _deltas(data: MultiTaskData, primary: Mapping[str, float], baselines: Mapping[str, Mapping[str, Any]]
            ) -> dict[str, float]:
    out = {}
    for spec in data.tasks:
        m, s = primary.get(spec.name, float("nan")), baselines[spec.name]["val_metric"]
        out[spec.name] = relative_delta(m, s, metric_direction(spec.primary_metric)) if math.isfinite(m) and s != 0 else float("nan")
    return out


def _weighted_mean(data: MultiTaskData, deltas: Mapping[str, float]) -> float:
    w = {t.name: t.weight for t in data.tasks}
    vals = [(w[t], d) for t, d in deltas.items()]
    if any(not math.isfinite(d) for _, d in vals):
        return float("nan")
    return sum(wi * d for wi, d in vals) / sum(wi for wi, _ in vals)


def _values(cfg: SearchConfig, dm: float, deltas: Mapping[str, float], n_params: int, flops: int) -> list[float]:
    available = {"delta_m": dm, "params": float(n_params), "flops": float(flops),
                 "worst_delta": min(deltas.values()) if deltas else float("nan")}
    return [available[o] for o in cfg.objectives]


def make_objective(study: optuna.Study, data: MultiTaskData, space: SearchSpace, cfg: SearchConfig,
                   train_base: TrainConfig, baselines: Mapping[str, Mapping[str, Any]]
                   ) -> Callable[[optuna.Trial], float | list[float]]:
    """The objective every worker optimises (see the module docstring)."""
    references = _context(study).get("references", {})
    ref_by_key = {v: k for k, v in references.items()}

    def objective(trial: optuna.Trial):
        t0 = time.perf_counter()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        cand = space.sample(trial, data.tasks, data.input_shape)
        graph = cand.graph
        key = graph.key()
        cache_key = key + ":" + json.dumps(cand.train, sort_keys=True)
        trial.set_user_attr("graph", graph.to_dict())
        trial.set_user_attr("graph_key", key)
        trial.set_user_attr("cache_key", cache_key)
        trial.set_user_attr("train", cand.train)
        n_params, flops = graph.n_params(), graph.flops()
        trial.set_user_attr("n_params", n_params)
        trial.set_user_attr("flops", flops)
        if key in ref_by_key:
            trial.set_user_attr("reference", ref_by_key[key])
        if cfg.max_params is not None:
            trial.set_constraint("max_params", n_params - cfg.max_params)
        if cfg.max_flops is not None:
            trial.set_constraint("max_flops", flops - cfg.max_flops)
        over = [(n, v, b) for n, v, b in (("parameters", n_params, cfg.max_params),
                                          ("FLOPs", flops, cfg.max_flops)) if b is not None and v > b]
        if over:
            n, v, b = over[0]
            trial.set_user_attr("status", f"over budget: {v} {n} > {b}")
            raise optuna.TrialPruned(f"over budget: {v} {n} > {b}")
        for prev in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if prev.user_attrs.get("cache_key") == cache_key:
                for k in ("val_metrics", "val_deltas", "best_epoch"):
                    trial.set_user_attr(k, prev.user_attrs.get(k))
                trial.set_user_attr("reused_from", prev.number)
                trial.set_user_attr("status", "reused")
                trial.set_user_attr("duration_s", time.perf_counter() - t0)
                return prev.values if cfg.multi_objective else prev.value
        tcfg = train_base.updated(**cand.train, seed=cfg.seed)

        def report(epoch: int, primary: dict[str, float]) -> None:
            if cfg.multi_objective:
                return
            dm = _weighted_mean(data, _deltas(data, primary, baselines))
            if math.isfinite(dm):
                trial.report(dm, epoch)
                if trial.should_prune():
                    trial.set_user_attr("status", f"pruned at epoch {epoch}")
                    trial.set_user_attr("duration_s", time.perf_counter() - t0)
                    raise optuna.TrialPruned(f"pruned at epoch {epoch} with Δm {dm:.4f}")

        res = train(graph, data, tcfg, callback=report, keep_model=False)
        trial.set_user_attr("duration_s", time.perf_counter() - t0)
        trial.set_user_attr("status", res.status if res.status != "ok" else "trained")
        if res.status != "ok":
            trial.set_user_attr("message", res.message)
            raise optuna.TrialPruned(f"{res.status}: {res.message}")
        primary = res.primary(data.tasks)
        deltas = _deltas(data, primary, baselines)
        dm = _weighted_mean(data, deltas)
        trial.set_user_attr("val_metrics", primary)
        trial.set_user_attr("val_deltas", deltas)
        trial.set_user_attr("best_epoch", res.best_epoch)
        vals = _values(cfg, dm, deltas, n_params, flops)
        return vals if cfg.multi_objective else vals[0]

    return objective


# ----------------------------------------------------------------- workers
def sweep_dead_trials(study: optuna.Study) -> int:
    """Fail RUNNING trials whose worker process on this host is gone.

    The journal storage has no heartbeat, so a killed worker's trial would
    stay RUNNING forever; RDB storages also fail stale trials by heartbeat.
    """
    host, n = socket.gethostname(), 0
    for tr in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = tr.user_attrs.get("worker", "")
        h, _, pid = who.rpartition(":")
        if h == host and pid.isdigit() and not _alive(int(pid)):
            study._storage.set_trial_state_values(tr._trial_id, TrialState.FAIL)
            n += 1
    return n


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_study_data(study: optuna.Study) -> MultiTaskData:
    """Load the study's data from its recorded source and check its fingerprint."""
    ctx = _context(study)
    src = ctx["data"]["source"]
    data = load_data(src["source"], **src.get("options", {}))
    _check_data(ctx, data, study.study_name)
    return data


def run_worker(storage: str | optuna.storages.BaseStorage, study_name: str, *, device: str | None = None,
               n_trials: int | None = None, data: MultiTaskData | None = None,
               callbacks: Sequence[Callable] = ()) -> None:
    """Join a study and run trials until it has ``n_trials`` finished trials.

    Everything else (space, data, budgets) comes from the study itself.
    """
    if isinstance(storage, str):
        storage = open_storage(storage, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _load_study(storage, study_name)
    ctx = _context(study)
    cfg = SearchConfig.from_dict(ctx["search"])
    study.sampler = _sampler(cfg)
    space = _space_from_ctx(ctx)
    if data is None:
        data = load_study_data(study)
    else:
        _check_data(ctx, data, study_name)
    train_base = TrainConfig.from_dict(ctx["train"])
    if device is not None:
        train_base = train_base.updated(device=device)
    data = data.to(resolve_device(train_base.device))
    sweep_dead_trials(study)
    baselines = ensure_baselines(study, data, space, train_base)
    enqueue_references(study, data, space, baselines)
    study.pruner = _pruner(cfg, _max_epochs(space, train_base))
    target = n_trials if n_trials is not None else cfg.n_trials
    remaining = target - _finished(study)
    if remaining <= 0:
        return
    objective = make_objective(study, data, space, cfg, train_base, baselines)
    study.optimize(objective, n_trials=remaining, timeout=cfg.timeout, catch=(),
                   callbacks=[optuna.study.MaxTrialsCallback(
                       target, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)), *callbacks],
                   gc_after_trial=False)


def _best_delta(study: optuna.Study) -> float | None:
    vals = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return max(vals) if vals else None


class _Progress:
    """A tqdm bar of finished trials with the best Δm; polls the storage."""

    def __init__(self, study: optuna.Study, total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.study, self.total = study, total
        self.bar = tqdm(total=total, initial=min(_finished(study), total), desc="trials", unit="trial",
                        disable=not enabled, dynamic_ncols=True)

    def __call__(self, study: optuna.Study | None = None, trial: Any = None) -> None:
        done = min(_finished(self.study), self.total)
        self.bar.update(done - self.bar.n)
        best = _best_delta(self.study)
        if best is not None:
            self.bar.set_postfix_str(f"best Δm {best:+.4f}")

    def close(self) -> None:
        self()
        self.bar.close()


def run_search(data: MultiTaskData, data_source: Mapping[str, Any], space: SearchSpace, *,
               storage: str | None = None, study_name: str | None = None, runs_dir: str | Path = "runs",
               config: SearchConfig = SearchConfig(), train_base: TrainConfig = TrainConfig(),
               workers: int = 1, progress: bool = True, verdict: bool = True) -> optuna.Study:
    """Run (or resume) a whole search: baselines, trials, then the verdict.

    With ``workers > 1``, that many local worker processes join the study
    (one per GPU when there are several GPUs).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = study_name or default_study_name(data, space)
    st = open_storage(storage, study_name, runs_dir, workers)
    study = prepare_study(st, study_name, data, data_source, space, config, train_base)
    sweep_dead_trials(study)
    bar = _Progress(study, config.n_trials, progress)
    try:
        if workers <= 1:
            run_worker(st, study_name, data=data, n_trials=config.n_trials, callbacks=[bar])
        else:
            import multiprocessing as mp
            import torch

            enqueue_references(study, data, space,  # once, before the workers start
                               ensure_baselines(study, data, space, train_base))
            url = storage_url(st)
            n_gpu = torch.cuda.device_count()
            ctxmp = mp.get_context("spawn")
            procs = [ctxmp.Process(target=run_worker, args=(url, study_name),
                                   kwargs={"device": f"cuda:{i % n_gpu}" if n_gpu else None,
                                           "n_trials": config.n_trials})
                     for i in range(workers)]
            for p in procs:
                p.start()
            while any(p.is_alive() for p in procs):
                time.sleep(1.0)
                bar()
            bad = [p.exitcode for p in procs if p.exitcode]
            if bad:
                raise SearchError(f"{len(bad)} worker process(es) failed (exit codes {bad})")
    finally:
        bar.close()
    if verdict:
        compute_verdict(study, data, progress=progress)
    annotate_for_dashboard(study)
    return study


# ----------------------------------------------------------------- verdict
def _top_candidates(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "reference" not in t.user_attrs and math.isfinite(t.values[0])]
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        done.sort(key=lambda t: (t.number not in front, -t.values[0]))
    else:
        done.sort(key=lambda t: -t.values[0])
    out, seen = [], set(_context(study).get("references", {}).values())
    for t in done:
        if t.user_attrs["graph_key"] in seen:
            continue
        seen.add(t.user_attrs["graph_key"])
        out.append(t)
        if len(out) == k:
            break
    return out


def _reference_trials(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    out = {}
    for t in study.get_trials(deepcopy=False):
        name = t.user_attrs.get("reference")
        if name and name not in out and "graph" in t.user_attrs:
            out[name] = t
    return out


def compute_verdict(study: optuna.Study, data: MultiTaskData | None = None, *, n_seeds: int | None = None,
                    top_k: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Retrain the top candidates, the references and the baselines with fresh
    seeds, evaluate each once on the test split, and store the verdict.

    Returns the verdict dict also stored as the study's ``verdict`` attribute.
    """
    from tqdm.auto import tqdm

    ctx = _context(study)
    cfg = SearchConfig.from_dict(ctx["search"])
    n_seeds = n_seeds or cfg.n_seeds
    top_k = cfg.top_k if top_k is None else top_k
    if data is None:
        data = load_study_data(study)
    space = _space_from_ctx(ctx)
    train_base = TrainConfig.from_dict(ctx["train"])
    baselines = ensure_baselines(study, data, space, train_base)
    seeds = [VERDICT_SEED_OFFSET + i for i in range(n_seeds)]
    runs: list[tuple[str, int | None, SharingGraph, dict]] = []
    for name, tr in _reference_trials(study).items():
        runs.append((name, tr.number, SharingGraph.from_dict(tr.user_attrs["graph"]), tr.user_attrs["train"]))
    for tr in _top_candidates(study, top_k):
        runs.append((f"trial {tr.number}", tr.number, SharingGraph.from_dict(tr.user_attrs["graph"]),
                     tr.user_attrs["train"]))
    groups: dict[str, list[str]] = {}  # baseline configs -> tasks using it
    for t, b in baselines.items():
        groups.setdefault(json.dumps({"graph": b["graph"], "train": b["config"]}, sort_keys=True), []).append(t)
    total = (len(runs) + len(groups)) * n_seeds
    bar = tqdm(total=total, desc="verdict", unit="run", disable=not progress, dynamic_ncols=True)
    directions = {s.name: metric_direction(s.primary_metric) for s in data.tasks}
    primary = {s.name: s.primary_metric for s in data.tasks}
    base_test: dict[str, list[float]] = {t.name: [] for t in data.tasks}
    for key, tasks in groups.items():
        spec = json.loads(key)
        g_full = SharingGraph.from_dict(spec["graph"])
        g = SharingGraph.independent({t: g_full.g.nodes[g_full.head(t)]["out_dim"] for t in tasks},
                                     g_full.backbone)
        for seed in seeds:
            res = train(g, data, train_base.updated(**spec["train"], seed=seed))
            test = res.evaluate(data, "test")
            for t in tasks:
                base_test[t].append(test[t][primary[t]])
            bar.update()
    candidates = []
    for name, number, graph, tparams in runs:
        test_metrics: dict[str, list[float]] = {t.name: [] for t in data.tasks}
        gates, stitch = None, None
        for seed in seeds:
            res = train(graph, data, train_base.updated(**tparams, seed=seed))
            test = res.evaluate(data, "test")
            for t in data.tasks:
                test_metrics[t.name].append(test[t.name][primary[t.name]])
            if seed == seeds[0] and res.model is not None:
                gates, stitch = _mechanism_values(res, data)
            bar.update()
        verdict = task_verdicts(test_metrics, base_test, directions, alpha=cfg.alpha,
                                weights={t.name: t.weight for t in data.tasks})
        candidates.append({"name": name, "trial": number, "graph": graph.to_dict(), "train": tparams,
                           "verdict": verdict.to_dict(), "test_metrics": test_metrics,
                           "gates": gates, "stitch": stitch})
    bar.close()
    out = {
        "protocol": {"selection": "validation", "test_used_once": True, "seeds": seeds, "alpha": cfg.alpha,
                     "n_seeds": n_seeds, "top_k": top_k, "test": "Welch t-test per task, Holm across tasks",
                     "delta_m_interval": "bootstrap over seeds", "metric": primary,
                     "baselines": "independent networks tuned on validation, best configuration per task"},
        "candidates": candidates,
        "baseline_test_metrics": base_test,
        "computed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    study.set_user_attr("verdict", out)
    return out


def _mechanism_values(res: TrainResult, data: MultiTaskData) -> tuple[dict | None, dict | None]:
    import torch

    model = res.model
    idx = data.indices("val")
    with torch.no_grad():
        model.eval()
        gates = {k: v.float().cpu().tolist() for k, v in model.gate_values(data.x[idx[:2048]]).items()}
        stitch = {k: v.float().cpu().tolist() for k, v in model.stitch_weights().items()}
    return (gates or None), (stitch or None)


# --------------------------------------------------------------- dashboard
def annotate_for_dashboard(study: optuna.Study, top: int = 3) -> bool:
    """Make the study read well in optuna-dashboard (if it is installed).

    Objective names are always set (``study.set_metric_names``); with
    ``optuna-dashboard`` installed, the best trials' topology figures are
    saved as the study's graph objects and each best trial gets a Markdown
    note with its topology and per-task validation Δ. Returns whether the
    dashboard annotations were written.
    """
    try:
        import optuna_dashboard
    except ImportError:
        return False
    from .figure import topology_figure

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "graph" in t.user_attrs]
    done.sort(key=lambda t: -t.values[0])
    for t in done[:top]:
        graph = SharingGraph.from_dict(t.user_attrs["graph"])
        deltas = t.user_attrs.get("val_deltas") or {}
        fig = topology_figure(graph, deltas=deltas, title=f"trial {t.number}: validation Δm {t.values[0]:+.2%}")
        optuna_dashboard.save_plotly_graph_object(study, fig, graph_object_id=f"topology-trial-{t.number}")
        rows = "\n".join(f"| {name} | {d:+.2%} |" for name, d in deltas.items())
        body = (f"## Trial {t.number}: validation Δm {t.values[0]:+.2%}\n\n"
                f"```\n{graph.describe()}\n```\n\n| task | validation Δ |\n|---|---|\n{rows}\n\n"
                f"Its topology figure is the study's graph object `topology-trial-{t.number}`.")
        optuna_dashboard.save_note(optuna.trial.Trial(study, t._trial_id), body)
    return True


# ------------------------------------------------------------------ export
def export_best_model(storage, study_name: str, out_dir: str | Path, *, trial: int | None = None,
                      data: MultiTaskData | None = None) -> Path:
    """Retrain the best (or a given) trial's graph with its configuration and
    write the weights of the epoch with the best validation Δm plus its graph
    (:func:`sharesearch.export.save_model`): one consistent model for prediction.
    """
    from .export import save_model

    if isinstance(storage, str):
        storage = open_storage(storage, must_exist=True)
    study = _load_study(storage, study_name)
    ctx = _context(study)
    if trial is None:
        best = study.best_trials
        if not best:
            raise SearchError(f"study {study_name!r} has no completed trial to export")
        tr = max(best, key=lambda t: t.values[0])
    else:
        matches = [t for t in study.get_trials(deepcopy=False) if t.number == trial and "graph" in t.user_attrs]
        if not matches:
            raise SearchError(f"--trial: no trained trial {trial} in study {study_name!r}")
        tr = matches[0]
    if data is None:
        data = load_study_data(study)
    space = _space_from_ctx(ctx)
    train_base = TrainConfig.from_dict(ctx["train"])
    baselines = ensure_baselines(study, data, space, train_base)
    graph = SharingGraph.from_dict(tr.user_attrs["graph"])
    res = train(graph, data, train_base.updated(**tr.user_attrs["train"]),
                joint_score=lambda p: _weighted_mean(data, _deltas(data, p, baselines)))
    model = res.model
    if res.joint_state:
        model.load_state_dict(res.joint_state)
    return save_model(model.cpu(), graph, out_dir, tasks=data.tasks)


# ----------------------------------------------------------------- results
def load_results(storage: str | optuna.storages.BaseStorage, study_name: str) -> dict[str, Any]:
    """Read a study back into the JSON-ready results dict the report consumes."""
    if isinstance(storage, str):
        storage = open_storage(storage, must_exist=True)
    study = _load_study(storage, study_name)
    ctx = _context(study)
    trials = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        trials.append({
            "number": t.number, "state": t.state.name, "values": list(t.values) if t.values else None,
            "params": dict(t.params), "graph": ua.get("graph"), "graph_key": ua.get("graph_key"),
            "n_params": ua.get("n_params"), "flops": ua.get("flops"), "val_metrics": ua.get("val_metrics"),
            "val_deltas": ua.get("val_deltas"), "reference": ua.get("reference"), "status": ua.get("status"),
            "train": ua.get("train"),
            "duration_s": ua.get("duration_s") or (t.duration.total_seconds() if t.duration else None),
            "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
        })
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = [t.number for t in study.best_trials] if complete else []
    importances: dict[str, float] = {}
    if len(complete) >= 4:
        try:
            with warnings.catch_warnings():  # "few trials in a regime" notes: the report says how many trials
                warnings.simplefilter("ignore")
                importances = {k: float(v) for k, v in optuna.importance.get_param_importances(
                    study, target=(lambda t: t.values[0]) if len(study.directions) > 1 else None).items()}
        except (RuntimeError, ValueError) as e:  # too few distinct values, a single parameter...
            log.info("parameter importances unavailable: %s", e)
    base = study.user_attrs.get("baselines", {}).get("tasks", {})
    return {
        "study": study.study_name, "storage": storage_url(storage) if _shareable(storage) else "",
        "directions": [d.name.lower() for d in study.directions],
        "objective_names": ctx.get("objective_names", ["delta_m"]),
        "tasks": ctx["data"]["tasks"],
        "data": {"name": ctx["data"]["name"], "fingerprint": ctx["data"]["fingerprint"],
                 "meta": {"source": ctx["data"]["source"], "split_seed": ctx["data"]["split_seed"]}},
        "space": {"path": ctx["space"].get("source", ""), "text": ctx.get("space_text", "")},
        "train_config": ctx["train"], "search_config": ctx["search"],
        "trials": trials, "best_trials": best, "importances": importances,
        "baselines": {t: {"val_metric": b["val_metric"], "config": b["config"]} for t, b in base.items()},
        "verdict": study.user_attrs.get("verdict"),
        "reproducibility": _repro(ctx, study),
    }


def _shareable(storage) -> bool:
    try:
        storage_url(storage)
        return True
    except SearchError:
        return False


def _repro(ctx: Mapping[str, Any], study: optuna.Study) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("sharesearch", "torch", "optuna", "networkx", "numpy", "scipy", "pandas", "plotly"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    verdict = study.user_attrs.get("verdict") or {}
    return {
        "versions": versions,
        "seeds": {"search": ctx["search"]["seed"], "split": ctx["data"]["split_seed"],
                  "verdict": verdict.get("protocol", {}).get("seeds", [])},
        "data_fingerprint": ctx["data"]["fingerprint"],
        "selection_protocol": ("models selected on the validation split; the test split is used once, by the "
                               "verdict, after the search; baselines tuned on validation with the same budget"),
        "search_space_file": ctx.get("space_text", ""),
    }

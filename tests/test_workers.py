"""Many workers on one study, on every storage: exactly N trials, no candidate trained twice, dead workers' trials
failed with a reason and retried, and the worker's device is the worker's.

The PostgreSQL case needs a server: ``eval "$(.ci/postgres.sh start)"`` sets ``SHARESEARCH_TEST_POSTGRES``
(``.ci/run`` always does). Without it the case is skipped locally and fails under CI (``CI`` set).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from sharesearch.data import load_data
from sharesearch.search import SearchConfig, SearchError, TrialRecord, open_storage, prepare_study, run_search
from sharesearch.search import _baselines
from sharesearch.search._baselines import baseline_study_name, ensure_baselines
from sharesearch.search._liveness import counted_trials, retry, sweep_dead_trials
from sharesearch.search._populations import _admit
from sharesearch.search._references import enqueue_references
from sharesearch.search._records import StudyContext, mark_baseline_default_enqueued
from sharesearch.search._study import ask, make_sampler
from sharesearch.search._workers import run_worker
from sharesearch.space import SearchSpace, load_space
from sharesearch.training import TrainConfig

SOURCE = {"source": "synthetic-mmoe", "options": {"n": 300, "d": 8, "seed": 1, "clusters": [[0, 1], [2]]}}
PG = "SHARESEARCH_TEST_POSTGRES"


@pytest.fixture(scope="module")
def data():
    return load_data(SOURCE["source"], **SOURCE["options"])


def _space(max_steps: int = 60) -> SearchSpace:
    d = load_space("tiny").to_dict()
    d["branching"]["affinity"] = False  # the affinity pass is tested elsewhere; here it would only cost time
    d["train"]["max_steps"], d["train"]["patience"] = max_steps, 1000  # no early stop: each trial runs its budget
    return SearchSpace.from_dict(d, source="workers.toml")


@pytest.fixture(params=["sqlite", "journal", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if request.param == "journal":
        return f"journal:{tmp_path / 'journal.log'}"
    if os.environ.get(PG):
        return os.environ[PG]
    if os.environ.get("CI"):
        pytest.fail(f"{PG} is not set under CI: .ci/run starts a PostgreSQL server and sets it")
    pytest.skip(f"no PostgreSQL server: run `eval \"$(.ci/postgres.sh start)\"` to set {PG}")


def _prepared(url, data, n_trials, space, name=None):
    """A study with its baselines tuned, references and one doubled candidate enqueued (as run_search does)."""
    name = name or f"w-{uuid.uuid4().hex[:8]}"
    tb = TrainConfig(device="cpu")
    study = prepare_study(open_storage(url), name, data, SOURCE, space, SearchConfig(n_trials=n_trials), tb)
    baselines = ensure_baselines(study, data, space, tb, progress=False)
    enqueue_references(study, data, space, baselines)
    twin = space.reference_params("shared-bottom", data.tasks)  # the same candidate twice more, back to back
    study.enqueue_trial(twin, skip_if_exists=False)
    study.enqueue_trial(twin, skip_if_exists=False)
    return name


def _trained_keys(study):
    """Cache keys (graph + training settings) of every trial that trained (not reused, not the control)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        rec = TrialRecord.from_trial(t)
        if rec.steps_run is not None and rec.reused_from is None and not rec.control:
            out.append(rec.cache_key)
    return out


def test_four_workers_one_killed_reach_exactly_n_and_never_train_a_candidate_twice(url, data):
    n = 10
    name = _prepared(url, data, n, _space(max_steps=200))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(url, name),
                         kwargs={"device": "cpu", "n_trials": n, "worker": i, "threads": 1}) for i in range(4)]
    for p in procs:
        p.start()
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    victim, killed, done_before = procs[0], None, {}
    deadline = time.time() + 120
    while killed is None and time.time() < deadline:  # kill worker 0 while it trains a trial
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            rec = TrialRecord.from_trial(t)
            early = len(t.intermediate_values) < 10  # in the first half of its 20 evaluations: under load a
            # trial near its end could finish between this read and the kill, and the test would then kill no trial
            if rec.worker and rec.worker.endswith(f":{victim.pid}") and rec.cache_key and rec.status is None and early:
                os.kill(victim.pid, signal.SIGKILL)  # first: reading the study before it widened the race
                killed = t.number
                done_before = {u.number: u.value for u in study.get_trials(states=(TrialState.COMPLETE,))}
                break
        time.sleep(0.05)
    for p in procs:
        p.join(timeout=240)
    assert killed is not None, "worker 0 never trained a trial"
    assert victim.exitcode == -signal.SIGKILL and [p.exitcode for p in procs[1:]] == [0, 0, 0]
    trials = study.get_trials(deepcopy=False)
    assert counted_trials(study) == n  # exactly n, not one more
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = trials[killed]
    assert dead.state == TrialState.FAIL and "died" in TrialRecord.from_trial(dead).message  # killed mid-training
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [killed]
    keys = _trained_keys(study)
    assert len(keys) == len(set(keys)), "a candidate was trained twice"
    assert any(TrialRecord.from_trial(t).reused_from is not None for t in trials)  # the doubled candidate
    after = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    assert all(after[k] == v for k, v in done_before.items())  # nothing completed was lost


_ASKER = """
import sys
import optuna
from sharesearch.search import open_storage
from sharesearch.search._study import ask
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name="queue", storage=open_storage(sys.argv[1], must_exist=True))
print(" ".join(str(ask(study).number) for _ in range(int(sys.argv[2]))))
"""


def test_workers_asking_at_once_never_take_the_same_enqueued_trial(url):
    # Optuna's ask reads a WAITING trial and then marks it RUNNING; on an SQLite file two processes could both
    # take it (4 x 25 asks of 100 enqueued trials got 85-93 distinct ones): the ask now holds a local lock
    name = f"queue-{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else "queue"
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    for i in range(80):
        study.enqueue_trial({"x": i}, skip_if_exists=False)
    script = _ASKER.replace('study_name="queue"', f"study_name={name!r}")
    procs = [subprocess.Popen([sys.executable, "-c", script, url, "20"], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    taken = [int(n) for p in procs for n in p.communicate(timeout=240)[0].split()]
    assert [p.returncode for p in procs] == [0] * 4 and len(taken) == 80
    assert len(set(taken)) == 80, f"{80 - len(set(taken))} enqueued trials were taken twice"


def test_a_trial_asked_beyond_the_target_goes_back_to_the_queue(tmp_path):
    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}"))
    first, second = study.ask(), study.ask()
    assert _admit(study, first, 1) and not _admit(study, second, 1)
    assert study.get_trials(deepcopy=False)[second.number].state == TrialState.WAITING
    assert _admit(study, second, 2)  # with room it is kept


def test_a_silent_worker_on_a_database_is_failed_with_a_reason_and_retried_once(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat=1))
    trial = ask(study)
    trial.suggest_float("x", 0.0, 1.0)
    TrialRecord(worker="another-host:1").write(trial)  # not on this host: only its heartbeat can tell
    study._storage.record_heartbeat(trial._trial_id)
    assert sweep_dead_trials(study) == 0
    time.sleep(5.5)  # grace: 4 heartbeats of 1 s
    assert sweep_dead_trials(study) == 1
    dead, again = study.get_trials(deepcopy=False)
    assert dead.state == TrialState.FAIL and "stopped sending heartbeats" in TrialRecord.from_trial(dead).message
    assert again.state == TrialState.WAITING and again.params == dead.params
    assert TrialRecord.from_trial(again).worker is None  # the dead run's record stays behind
    assert counted_trials(study) == 0  # the retry counts instead of the failure
    retry(study, study._storage.get_trial(again._trial_id))  # a retry that failed too is not retried again
    assert len(study.get_trials(deepcopy=False)) == 2


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_killed_baseline_trial_is_failed_and_trained_again(tmp_path, data):
    space = _space()
    storage = open_storage(f"journal:{tmp_path / 'b.log'}")
    tb = TrainConfig(device="cpu")
    study = prepare_study(storage, "b", data, SOURCE, space, SearchConfig(n_trials=1), tb)
    bstudy = optuna.create_study(study_name=baseline_study_name("b"), storage=storage, direction="maximize")
    bstudy.enqueue_trial(space.baseline_default_params())
    mark_baseline_default_enqueued(bstudy)
    left = bstudy.ask()  # the default configuration, asked by a worker that was then killed
    TrialRecord(worker=f"{socket.gethostname()}:{_dead_pid()}").write(left)
    ensure_baselines(study, data, space, tb, progress=False)
    trials = bstudy.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL and "died" in TrialRecord.from_trial(trials[0]).message
    again = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(again) == 1 and again[0].state == TrialState.COMPLETE
    assert again[0].params == space.baseline_default_params()


def test_an_absurd_baseline_stops_the_search(tmp_path, data, monkeypatch):
    monkeypatch.setattr(_baselines, "mean_predictor_metric", lambda *a: 1e-9)  # any real RMSE is absurd beside it
    space = _space()
    study = prepare_study(open_storage(f"sqlite:///{tmp_path / 'a.db'}"), "a", data, SOURCE, space,
                          SearchConfig(n_trials=1), TrainConfig(device="cpu"))
    with pytest.raises(SearchError, match="baseline of task 't0': rmse .* times that of predicting the mean"):
        ensure_baselines(study, data, space, TrainConfig(device="cpu"), progress=False)
    assert StudyContext.from_study(study) and "baselines" not in study.user_attrs  # nothing became the control


def test_workers_sample_with_their_own_seeds():
    space = load_space("tiny")
    firsts = []
    for w in range(3):
        study = optuna.create_study(sampler=make_sampler(SearchConfig(seed=3), w))
        firsts.append(study.ask().suggest_float("lr", 1e-3, 1e-2, log=True))
    assert len(set(firsts)) == 3 and space  # three workers, three different first candidates
    again = optuna.create_study(sampler=make_sampler(SearchConfig(seed=3), 2)).ask()
    assert again.suggest_float("lr", 1e-3, 1e-2, log=True) == firsts[2]  # and the same on every run


def test_the_device_belongs_to_the_worker_not_the_study(tmp_path, data):
    runs = tmp_path / "runs"
    if not __import__("torch").cuda.is_available():
        with pytest.raises(SearchError, match="device: 'cuda', but this machine has no CUDA device"):
            run_search(data, SOURCE, _space(), runs_dir=runs, study_name="d", config=SearchConfig(n_trials=1),
                       train_base=TrainConfig(device="cuda"), progress=False, verdict=False)
        assert not runs.exists()  # refused before anything was written
    url = f"sqlite:///{tmp_path / 'd.db'}"  # a study an older version stored with a device this machine lacks
    prepare_study(open_storage(url), "d", data, SOURCE, _space(), SearchConfig(n_trials=1, references=()),
                  TrainConfig(device="cuda:7", seed=0))
    run_worker(url, "d", device="cpu")
    study = optuna.load_study(study_name="d", storage=open_storage(url))
    assert counted_trials(study) == 1


def test_run_search_stores_neither_device_nor_timeout(tmp_path, data):
    study = run_search(data, SOURCE, _space(), storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s",
                       config=SearchConfig(n_trials=1, references=(), timeout=600.0),
                       train_base=TrainConfig(device="cpu"), progress=False, verdict=False)
    ctx = StudyContext.from_study(study)
    assert ctx.train.device == "auto" and ctx.search.timeout is None
    assert counted_trials(study) == 1


def test_a_retry_keeps_why_the_trial_was_enqueued_and_drops_how_its_run_went():
    study = optuna.create_study()
    trial = ask(study)
    trial.suggest_float("x", 0.0, 1.0)
    TrialRecord(worker="host:1", companion_of=2, status="trained", message="boom").write(trial)
    study.tell(trial, state=TrialState.FAIL)
    retry(study, study.get_trials(deepcopy=False)[0])
    again = TrialRecord.from_trial(study.get_trials(deepcopy=False)[1])
    assert again.companion_of == 2  # still trains beside trial 2's topology
    assert (again.worker, again.status, again.message) == (None, None, None)


def test_a_trial_whose_worker_died_before_naming_itself_is_swept_after_the_orphan_window(monkeypatch):
    """The window between asking for a trial and naming its worker is milliseconds; a kill inside it left a RUNNING
    trial that a resumed search waited on for 10 minutes (a CI run timed out on it)."""
    from sharesearch.search import _liveness

    study = optuna.create_study()
    orphan = study.ask()  # RUNNING, no worker, no heartbeat
    assert sweep_dead_trials(study) == 0  # young: its worker may be about to name itself
    monkeypatch.setattr(_liveness, "ORPHAN_AFTER_S", 0.2)
    time.sleep(0.3)
    assert sweep_dead_trials(study) == 1
    dead = study.get_trials(deepcopy=False)[orphan.number]
    assert dead.state == TrialState.FAIL and "died before naming itself" in TrialRecord.from_trial(dead).message


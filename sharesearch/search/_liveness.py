"""Workers that die: who runs a trial, heartbeats, sweeping dead workers' trials, retrying them once.

A worker marks each trial it runs with its identity (``host:pid``,
:func:`worker_id`) as soon as it has asked for it. A trial whose worker died
is found in two ways:

* on the worker's own host, its process is gone (every storage);
* on a database (:class:`optuna.storages.RDBStorage` with heartbeats, as
  :func:`~sharesearch.search._storage.open_storage` opens it), its heartbeat
  is older than the storage's grace period. Trials run by ``study.optimize``
  beat through Optuna's own thread; trials asked for ask-and-tell beat through
  :class:`Heartbeats`.

:func:`sweep_dead_trials` writes the reason on such a trial, fails it and
retries it once as Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`
does (a WAITING copy with the same parameters, which the next worker that
asks runs; :func:`retry`). A failed trial that was retried no longer counts
towards the study's number of trials (:func:`counted_trials`): its retry does.
On a journal file, several local workers may sweep at once: a lock file beside
the journal makes one of them fail and retry each trial.

Example
-------
>>> import optuna
>>> study = optuna.create_study()
>>> t = study.ask()
>>> mark_worker(t)
>>> sweep_dead_trials(study)  # this process is alive: nothing to sweep
0
>>> counted_trials(study)
0
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ._records import TrialRecord

__all__ = ["worker_id", "mark_worker", "Heartbeats", "sweep_dead_trials", "counted_trials", "retry",
           "wait_until", "superseded", "local_lock", "FINISHED", "MAX_RETRY", "ORPHAN_AFTER_S"]

#: trial states that are finished (complete, pruned or failed)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: how many times a dead worker's trial is retried
MAX_RETRY = 1
#: a RUNNING trial that names no worker (its worker died between asking and marking it) is dead after this
ORPHAN_AFTER_S = 60.0  # a live worker names its trial in the statement after asking for it: milliseconds


def worker_id() -> str:
    """This process as trials record it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def mark_worker(trial: optuna.Trial) -> None:
    """Record on ``trial`` that this process runs it (the first thing a worker writes on an asked trial)."""
    TrialRecord(worker=worker_id()).write(trial)


#: what a retry keeps of its failed trial's record: why it was enqueued, not how its run went
_KEPT_ON_RETRY = ("reference", "affinity_tree", "tuned_from", "companion_of")


def retry(study: optuna.Study, failed: FrozenTrial) -> None:
    """Queue ``failed`` again unless it was retried :data:`MAX_RETRY` times (it is then counted as failed).

    What Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`
    does (a WAITING copy with the same parameters, and the ``failed_trial`` /
    ``retry_history`` system attributes its ``retried_trial_number`` and
    ``retry_history`` read), except that the copy keeps only why the trial was
    enqueued (reference, affinity tree, a baseline's confirmation seed), not
    the dead run's record (worker, status, message, results).
    """
    history = [*failed.system_attrs.get("retry_history", ()), failed.number]
    if len(history) > MAX_RETRY:
        return
    dropped = {f.name for f in fields(TrialRecord)} - set(_KEPT_ON_RETRY)
    system = {**failed.system_attrs, "failed_trial": history[0], "retry_history": history}
    study.add_trial(optuna.create_trial(
        state=TrialState.WAITING, params=failed.params, distributions=failed.distributions,
        user_attrs={k: v for k, v in failed.user_attrs.items() if k not in dropped}, system_attrs=system))


def superseded(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that have a retry (Optuna records the chain on the retry)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", ()))
    return out


def counted_trials(study: optuna.Study) -> int:
    """Finished trials that count towards the study's target: a failed trial that was retried does not."""
    trials = study.get_trials(deepcopy=False)
    gone = superseded(trials)
    return sum(1 for t in trials if t.state in FINISHED and t.number not in gone)


def _heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    get = getattr(storage, "get_heartbeat_interval", None)  # RDB storages (and Optuna's cache around them)
    return get() if get is not None else None


class Heartbeats:
    """A thread that records Optuna heartbeats for asked trials (ask-and-tell sends none by itself).

    A no-op on storages without heartbeats. Use as a context manager;
    :meth:`add` a trial when it is asked, :meth:`discard` it when told.
    """

    def __init__(self, storage: optuna.storages.BaseStorage) -> None:
        self.storage, self.interval = storage, _heartbeat_interval(storage)
        self.ids: set[int] = set()
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="sharesearch-heartbeat")

    def add(self, trial_id: int) -> None:
        """Beat for ``trial_id`` from now on (the first beat at once)."""
        if self.interval is None:
            return
        with self.lock:
            self.ids.add(trial_id)
        self.storage.record_heartbeat(trial_id)

    def discard(self, trial_id: int) -> None:
        """Stop beating for ``trial_id``."""
        with self.lock:
            self.ids.discard(trial_id)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                ids = list(self.ids)
            for tid in ids:
                try:
                    self.storage.record_heartbeat(tid)
                except Exception:  # a finished trial or a transient database error: the next beat retries
                    pass

    def __enter__(self) -> "Heartbeats":
        if self.interval is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


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


def _death(t: FrozenTrial, host: str, stale: set[int], now: datetime) -> str | None:
    """Why ``t``'s worker is known to be dead, or ``None``."""
    worker = TrialRecord.from_trial(t).worker
    if worker is None:
        started = t.datetime_start
        if started is not None and now - started > timedelta(seconds=ORPHAN_AFTER_S):
            return f"its worker died before naming itself (RUNNING for over {ORPHAN_AFTER_S:.0f} s)"
        return None
    h, _, pid = worker.rpartition(":")
    if h == host and pid.isdigit() and not _alive(int(pid)):
        return f"its worker {worker} died (the process is gone)"
    if t._trial_id in stale:
        return f"its worker {worker} stopped sending heartbeats"
    return None


def _local_file(storage: optuna.storages.BaseStorage) -> Path | None:
    """The file on this host's disk behind ``storage`` (a journal file or an SQLite database), or ``None``."""
    backend = getattr(storage, "_backend", storage)  # Optuna's cache wraps an RDB storage; a journal its file
    path = getattr(backend, "_file_path", None)
    url = getattr(backend, "url", None)
    if path is None and isinstance(url, str) and url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        path = make_url(url).database
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def local_lock(storage: optuna.storages.BaseStorage, purpose: str) -> Iterator[None]:
    """One process of this host at a time, for ``purpose``, on a storage kept in a local file.

    An SQLite database does not serialise a read followed by a write: Optuna's
    ``study.ask`` reads a WAITING trial, then marks it RUNNING, and two
    processes asking at once can both take the same enqueued trial (4 processes
    asking 25 times each from 100 enqueued trials got 85-93 distinct ones).
    Nor does a journal file serialise a sweep's read of RUNNING trials and its
    failing them. A lock file beside the storage file (``<file>.<purpose>.lock``)
    serialises them among this host's workers, the only ones such a file can
    have. Other storages (a database server) need none: a no-op.
    """
    path = _local_file(storage)
    if path is None:
        yield
        return
    import fcntl

    with open(Path(f"{path}.{purpose}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sweep_dead_trials(study: optuna.Study) -> int:
    """Fail, with the reason, each RUNNING trial whose worker died, and retry it once; returns how many.

    Dead: its process on this host is gone, or (databases) its heartbeat is
    stale, or it has named no worker for :data:`ORPHAN_AFTER_S`.
    """
    storage, n = study._storage, 0
    host, now = socket.gethostname(), datetime.now()
    stale_ids = getattr(storage, "_get_stale_trial_ids", None) if _heartbeat_interval(storage) else None
    with local_lock(storage, "sweep"):
        stale = set(stale_ids(study._study_id)) if stale_ids is not None else set()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            why = _death(t, host, stale, now)
            if why is None:
                continue
            try:
                for k, v in TrialRecord(status="worker died", message=why).to_attrs().items():
                    storage.set_trial_user_attr(t._trial_id, k, v)
                if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker swept it first
            retry(study, storage.get_trial(t._trial_id))
            n += 1
    return n


def wait_until(done, poll: float = 0.5, sweep: optuna.Study | None = None, sweep_every: float = 5.0) -> None:
    """Sleep ``poll`` seconds at a time until ``done()``; sweep ``sweep``'s dead trials now and then."""
    last = time.monotonic()
    while not done():
        time.sleep(poll)
        if sweep is not None and time.monotonic() - last >= sweep_every:
            sweep_dead_trials(sweep)
            last = time.monotonic()

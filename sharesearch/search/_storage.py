"""Where studies live: opening an Optuna storage, sharing its URL, loading a study by name.

Example
-------
>>> import os, tempfile
>>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "study.db")
>>> storage_url(open_storage(url)) == url
True
>>> study_names(url)
[]
"""

from __future__ import annotations

from pathlib import Path

import optuna

from ._config import SearchError

__all__ = ["open_storage", "storage_url", "is_shareable", "load_study", "study_names", "HEARTBEAT_S", "GRACE_BEATS"]

#: seconds between a database worker's heartbeats for each trial it runs
HEARTBEAT_S = 30
#: a trial whose last heartbeat is this many intervals old belongs to a dead worker (and is failed and retried)
GRACE_BEATS = 4


def open_storage(url: str | None, study_name: str = "sharesearch", runs_dir: str | Path = "runs",
                 workers: int = 1, *, must_exist: bool = False, heartbeat: int = HEARTBEAT_S
                 ) -> optuna.storages.BaseStorage:
    """Open an Optuna storage.

    Parameters
    ----------
    url : str or None
        Any Optuna storage URL (``sqlite:///...``, ``postgresql://...``,
        ``mysql://...``) or ``journal:PATH`` for Optuna's journal file.
        ``None`` picks a local file under ``runs_dir/<study_name>/``: an
        existing one is reused (that is how an interrupted run resumes);
        otherwise SQLite, or a journal file when several local workers
        will write at once.
    study_name, runs_dir, workers
        Where and how the local file is chosen when ``url`` is ``None``.
    must_exist : bool
        Joining or reading a study: a local file that does not exist is an
        error (a mistyped path must not create an empty file).
    heartbeat : int
        Databases: seconds between the heartbeats of a running trial; one
        silent for ``GRACE_BEATS * heartbeat`` seconds is failed and retried
        once (Optuna's heartbeat with :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`;
        see :mod:`sharesearch.search._liveness`). A journal file has no
        heartbeat: its workers' processes are checked on their own host.

    Examples
    --------
    >>> import os, tempfile
    >>> type(open_storage("journal:" + os.path.join(tempfile.mkdtemp(), "j.log"))).__name__
    'JournalStorage'
    """
    if url is None:
        folder = Path(runs_dir) / study_name
        folder.mkdir(parents=True, exist_ok=True)
        db, journal = folder / "study.db", folder / "journal.log"
        if journal.exists() or (workers > 1 and not db.exists()):
            url = f"journal:{journal}"
        else:
            url = f"sqlite:///{db}"
    if must_exist:
        local = url[len("journal:"):] if url.startswith("journal:") else (
            url[len("sqlite:///"):] if url.startswith("sqlite:///") else None)
        if local is not None and not Path(local).exists():
            raise SearchError(f"storage: no such file {local!r} (from {url!r})")
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal:"):]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise SearchError(f"storage: not a storage URL: {url!r} (try sqlite:///study.db, "
                          "postgresql://user:pass@host/db or journal:path/to/file.log)")
    import warnings

    from ._liveness import retry

    try:
        with warnings.catch_warnings():  # heartbeats are experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url, heartbeat_interval=heartbeat, grace_period=GRACE_BEATS * heartbeat,
                heartbeat_stale_trial_callback=retry,
                engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)
    except Exception as e:  # sqlalchemy raises many kinds; the user needs the URL and the reason
        raise SearchError(f"storage: cannot open {url!r}: {e}") from None
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
    """A URL another process can open for ``storage`` (:class:`SearchError` if there is none)."""
    inner = getattr(storage, "_backend", None)  # a study's storage is Optuna's cache around the RDB storage
    if isinstance(inner, optuna.storages.BaseStorage):
        storage = inner
    if isinstance(storage, optuna.storages.RDBStorage):
        return storage.url
    backend = getattr(storage, "_backend", None)
    path = getattr(backend, "_file_path", None)
    if path is not None:
        return f"journal:{path}"
    raise SearchError("this storage cannot be shared with worker processes; pass a storage URL")


def is_shareable(storage: optuna.storages.BaseStorage) -> bool:
    """Whether :func:`storage_url` can name ``storage``."""
    try:
        storage_url(storage)
        return True
    except SearchError:
        return False


def _as_storage(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    return open_storage(storage, must_exist=True) if isinstance(storage, str) else storage


def study_names(storage: str | optuna.storages.BaseStorage) -> list[str]:
    """Names of the studies in ``storage`` (a URL or an open storage)."""
    return [s.study_name for s in optuna.get_all_study_summaries(_as_storage(storage))]


def load_study(storage: str | optuna.storages.BaseStorage, study_name: str, **kwargs) -> optuna.Study:
    """Load ``study_name`` from ``storage`` (a URL or an open storage); :class:`SearchError` if absent.

    ``kwargs`` go to :func:`optuna.load_study` (``sampler``, ``pruner``).
    """
    storage = _as_storage(storage)
    try:
        return optuna.load_study(study_name=study_name, storage=storage, **kwargs)
    except KeyError:
        raise SearchError(f"study_name: no study {study_name!r} in this storage; "
                          f"studies: {study_names(storage)}") from None

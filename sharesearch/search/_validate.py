"""The front door: checks of what a user hands a search, run before anything is written.

A search must not create a study (nor a folder, database or journal file)
for input that cannot work. These checks are pure: they read, never write,
and each raises a :class:`~sharesearch.errors.SharesearchError` whose one
line names the parameter (``where``: the caller passes the CLI flag or the
library parameter), the value and what is allowed. The command line calls
them before :func:`~sharesearch.search.run_search`; library callers may too.

Torch and SQLAlchemy are imported only inside the functions that need them.

Example
-------
>>> check_study_name("videos-2024.v1")
'videos-2024.v1'
>>> check_study_name("../x")
Traceback (most recent call last):
...
sharesearch.search._config.SearchError: study_name: '../x' is not a name: use 1 to 100 of A-Z a-z 0-9 . _ - + = (the first a letter or digit); it names a folder under the runs folder, never a path
>>> check_int("workers", 0)
Traceback (most recent call last):
...
sharesearch.search._config.SearchError: workers: must be an integer >= 1, got 0
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..names import METRICS
from ._config import SearchError

__all__ = ["MAX_STUDY_NAME", "MIN_EVAL_ROWS", "check_study_name", "check_int", "check_float", "check_device",
           "check_storage_url", "check_runs_dir", "check_data_rows", "check_baseline_sane", "mean_predictor_metric"]

#: longest study name: leaves room for the ".baselines" companion study and a file system's 255-byte names
MAX_STUDY_NAME = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")
#: labelled rows a task needs in each split a run evaluates on (a metric of one row has no spread)
MIN_EVAL_ROWS = 2
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters: a 300-character name stays a readable line."""
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(str(value))} characters)"


def check_study_name(name: str, where: str = "study_name") -> str:
    """``name`` if it is a study name (not a path), else :class:`SearchError`.

    A study name becomes a folder under the runs folder, so no separators,
    no ``..``, no control characters, at most :data:`MAX_STUDY_NAME` characters.

    >>> check_study_name("a/b", where="--study")
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: --study: 'a/b' is not a name: use 1 to 100 of A-Z a-z 0-9 . _ - + = (the first a letter or digit); it names a folder under the runs folder, never a path
    """
    if not isinstance(name, str) or len(name) > MAX_STUDY_NAME or not _NAME.fullmatch(name):
        raise SearchError(f"{where}: {_short(name)} is not a name: use 1 to {MAX_STUDY_NAME} of A-Z a-z 0-9 "
                          ". _ - + = (the first a letter or digit); it names a folder under the runs folder, "
                          "never a path")
    return name


def check_int(where: str, value: Any, minimum: int = 1, *, optional: bool = False) -> int | None:
    """``value`` as an int ``>= minimum`` (``None`` allowed when ``optional``), else :class:`SearchError`.

    Booleans and fractional numbers are refused (``600.5`` is not 600).

    >>> check_int("top_k", 0, minimum=0), check_int("seeds", None, optional=True)
    (0, None)
    >>> check_int("n", 600.5)
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: n: must be an integer >= 1, got 600.5
    """
    if value is None and optional:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise SearchError(f"{where}: must be an integer >= {minimum}, got {_short(value)}")
    return int(value)


def check_float(where: str, value: Any, *, optional: bool = False) -> float | None:
    """``value`` as a finite float ``> 0`` (``None`` allowed when ``optional``), else :class:`SearchError`.

    >>> check_float("timeout", 2), check_float("timeout", None, optional=True)
    (2.0, None)
    >>> check_float("timeout", -1)
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: timeout: must be a finite number > 0, got -1
    """
    if value is None and optional:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise SearchError(f"{where}: must be a finite number > 0, got {_short(value)}")
    return float(value)


def check_device(device: str | None, where: str = "device") -> str | None:
    """``device`` if this machine has it: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; ``None`` passes.

    Parsed by :class:`torch.device`; a CUDA device needs CUDA and an index
    below the device count, so a mistyped device never reaches a study.

    >>> check_device("cpu"), check_device("auto")
    ('cpu', 'auto')
    >>> check_device("bogus", where="--device")
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: --device: 'bogus' is not a device: use auto, cpu, cuda, cuda:N or mps
    """
    if device is None or device == "auto":
        return device
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise SearchError(f"{where}: {_short(device)} is not a device: use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise SearchError(f"{where}: {device!r}, but this machine has no CUDA device (use cpu or auto)")
        if dev.index is not None and dev.index >= n:
            raise SearchError(f"{where}: {device!r}, but this machine has {n} CUDA device(s): cuda:0..cuda:{n - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise SearchError(f"{where}: {device!r}, but MPS is not available on this machine (use cpu or auto)")
    return device


def _check_parent(path: Path, where: str, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder (nothing is created here)."""
    parent = path.parent if str(path.parent) else Path(".")
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise SearchError(f"{where}: cannot write {what} {str(path)!r}: {str(p)!r} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise SearchError(f"{where}: cannot write {what} {str(path)!r}: folder {str(p)!r} is not writable")
            return


def check_runs_dir(runs_dir: str | os.PathLike, where: str = "runs_dir") -> Path:
    """The runs folder: an existing folder, or one that can be created (nothing is created here).

    >>> check_runs_dir("runs").name
    'runs'
    """
    path = Path(runs_dir)
    if path.exists() and not path.is_dir():
        raise SearchError(f"{where}: {str(path)!r} is a file, not a folder")
    if not path.exists():
        _check_parent(path, where, "the folder")
    elif not os.access(path, os.W_OK | os.X_OK):
        raise SearchError(f"{where}: folder {str(path)!r} is not writable")
    return path


def _check_journal(path: Path, where: str) -> None:
    """An existing journal file must be empty or hold one JSON object per line (Optuna's format)."""
    if path.exists():
        if not path.is_file():
            raise SearchError(f"{where}: journal {str(path)!r} is not a file")
        with open(path, "rb") as fh:
            for i, line in enumerate(fh, start=1):
                try:
                    ok = isinstance(json.loads(line), dict) and line.endswith(b"\n")
                except (ValueError, UnicodeDecodeError):
                    ok = False
                if not ok:
                    raise SearchError(f"{where}: {str(path)!r}, line {i}: not an Optuna journal record (the file "
                                      "is corrupt or not a journal); move it away or give another file")
    else:
        _check_parent(path, where, "the journal")


def _check_sqlite(path_text: str, url: str, where: str) -> None:
    if path_text in ("", ":memory:"):
        raise SearchError(f"{where}: {url!r} is an in-memory database: the study would be lost when the process "
                          "ends and workers could not join; give a file, e.g. sqlite:///runs/study.db")
    path = Path(path_text)
    if path.exists():
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise SearchError(f"{where}: {str(path)!r} is not an SQLite database")
        return
    if not path.parent.is_dir():
        raise SearchError(f"{where}: cannot create {str(path)!r}: no folder {str(path.parent)!r} (SQLite creates "
                          "the file, not its folder)")
    _check_parent(path, where, "the database")


def check_storage_url(url: str | None, where: str = "storage", *, must_exist: bool = False) -> str | None:
    """``url`` if a study can live there: ``None`` (a local file), ``journal:PATH`` or a database URL.

    Read-only: an existing journal must parse, an existing SQLite file must
    be one, a new file's folder must be writable, an in-memory database is
    refused, and any other URL must name a dialect whose driver is
    installed (the password is never printed). ``must_exist`` (joining or
    reading a study): a local file must already be there.

    >>> check_storage_url("sqlite://")
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: storage: 'sqlite://' is an in-memory database: the study would be lost when the process ends and workers could not join; give a file, e.g. sqlite:///runs/study.db
    """
    if url is None:
        return None
    if not isinstance(url, str) or not url.strip():
        raise SearchError(f"{where}: expected a storage URL, got {_short(url)}")
    if url.startswith("journal:"):
        if not url[len("journal:"):]:
            raise SearchError(f"{where}: {url!r} names no file (journal:path/to/file.log)")
        if must_exist and not Path(url[len("journal:"):]).is_file():
            raise SearchError(f"{where}: no such journal file {url[len('journal:'):]!r}")
        _check_journal(Path(url[len("journal:"):]), where)
        return url
    if "://" not in url:
        raise SearchError(f"{where}: not a storage URL: {_short(url)} (try sqlite:///study.db, "
                          "postgresql://user:pass@host/db or journal:path/to/file.log)")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise SearchError(f"{where}: cannot parse {_short(url)} as a database URL") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        if must_exist and parsed.database and not Path(parsed.database).is_file():
            raise SearchError(f"{where}: no such database file {parsed.database!r}")
        _check_sqlite(parsed.database or "", shown, where)
        return url
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except NoSuchModuleError:
        raise SearchError(f"{where}: {shown!r}: unknown database kind {parsed.drivername!r}") from None
    except ImportError as e:
        raise SearchError(f"{where}: {shown!r}: its driver is not installed ({e}); install it, e.g. "
                          "pip install -e \".[postgres]\" for PostgreSQL") from None
    return url


def check_data_rows(data: Any, splits: Sequence[str] = ("train", "val", "test"), *,
                    minimum: int = MIN_EVAL_ROWS, where: str | None = None) -> None:
    """Every task of ``data`` has at least ``minimum`` labelled rows in each of ``splits``.

    A search tunes on the validation split and the verdict tests once on the
    test split: without rows there, every run would fail after the study is
    created. ``where`` names the data in the message (default: its source).

    >>> from sharesearch.data import load_data
    >>> check_data_rows(load_data("synthetic-mmoe", n=40))
    >>> check_data_rows(load_data("synthetic-mmoe", n=3))
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: data synthetic-mmoe: task 't0' has 0 labelled rows in the val split (3 rows, split [0.7, 0.15, 0.15]); need at least 2: give more rows or change the split
    """
    meta = getattr(data, "meta", {}) or {}
    if where is None:
        source = str(meta.get("source") or data.name)
        where = f"data {Path(source).name if os.sep in source else source}"
    fractions = (meta.get("options") or {}).get("split")
    note = f"{data.n} rows" + (f", split {list(fractions)}" if fractions is not None else "")
    for split in splits:
        for task, count in data.labelled_counts(split).items():
            if count < minimum:
                raise SearchError(f"{where}: task {task!r} has {count} labelled rows in the {split} split ({note}); "
                                  f"need at least {minimum}: give more rows or change the split")


def check_baseline_sane(task: str, metric: str, value: float, mean_predictor_value: float, *,
                        factor: float = 10.0) -> None:
    """Refuse a baseline whose metric is absurd, before it becomes the control of every comparison.

    Absurd: not finite; for an error metric (``rmse``, ``mae``, ``logloss``,
    any metric to minimise) more than ``factor`` times the error of
    predicting the training mean (``mean_predictor_value``); for ``r2`` below
    ``1 - factor**2`` (the same squared-error ratio). Bounded scores (AUC,
    accuracy, F1) can only be non-finite.

    >>> check_baseline_sane("watch_time", "rmse", 1.2, 1.0)
    >>> check_baseline_sane("watch_time", "rmse", 4e16, 1.0)
    Traceback (most recent call last):
    ...
    sharesearch.search._config.SearchError: baseline of task 'watch_time': rmse 4e+16 is 4e+16 times that of predicting the mean (1); the search stops rather than compare against it: check the target's scale and outliers, and the space's [baseline] ranges
    """
    stop = ("the search stops rather than compare against it: check the target's scale and outliers, "
            "and the space's [baseline] ranges")
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise SearchError(f"baseline of task {task!r}: {metric} is {value!r}; {stop}")
    direction = METRICS[metric].direction if metric in METRICS else "maximize"
    ref = float(mean_predictor_value)
    if metric == "r2" and value < 1.0 - factor**2:
        raise SearchError(f"baseline of task {task!r}: r2 {value:.4g} is far below predicting the mean (0); {stop}")
    if direction == "minimize" and math.isfinite(ref) and ref > 0 and value > factor * ref:
        raise SearchError(f"baseline of task {task!r}: {metric} {value:.4g} is {value / ref:.3g} times that of "
                          f"predicting the mean ({ref:.4g}); {stop}")


def mean_predictor_metric(data: Any, task: str, metric: str, split: str = "val") -> float:
    """``metric`` of task ``task`` on ``split`` when every row is predicted by the training labels' mean.

    Regression: the train mean; binary: the train base rate; multiclass: the
    train class frequencies. The reference :func:`check_baseline_sane` compares with.

    >>> from sharesearch.data import load_data
    >>> d = load_data("synthetic-mmoe", n=400)
    >>> -0.2 < mean_predictor_metric(d, "t0", "r2") <= 0.0  # the val mean is not quite the train mean
    True
    """
    import torch

    from ..tasks import compute_metric

    j = data.task_names.index(task)
    spec = data.tasks[j]
    rows = data.indices(split)
    y_train = data.y[data.indices("train"), j]  # [n_train]
    y_train = y_train[~torch.isnan(y_train)]
    n = len(rows)
    if spec.kind == "regression":
        out = y_train.mean().expand(n, 1)  # [n, 1]
    elif spec.kind == "binary":
        p = y_train.mean().clamp(1e-6, 1 - 1e-6)
        out = torch.logit(p).expand(n, 1)  # [n, 1]
    else:
        freq = torch.bincount(y_train.long(), minlength=spec.n_classes).float() / len(y_train)
        out = freq.clamp_min(1e-6).log().expand(n, spec.n_classes)  # [n, C]
    return compute_metric(spec, metric, out, data.y[rows, j])

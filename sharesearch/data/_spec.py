"""Reading and validating a data-spec file into a :class:`DataSpec` record (no table is read).

The keys and what they mean are documented in :mod:`sharesearch.data.tabular`.
Every mistake is one :class:`DataSpecError` line naming the spec file, the key
(``targets[1].metrics``) and the value; a missing file is a
:class:`DataFileNotFoundError`. TOML is read with :mod:`tomllib`, YAML with
``yaml.safe_load``: nothing in a spec is ever evaluated.

Example
-------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     p = pathlib.Path(tmp) / "s.yaml"
...     _ = p.write_text("path: d.csv\\nexclude: [id]\\ntargets:\\n  - {column: a, kind: binary}\\n"
...                      "  - {column: b, kind: regression, selection_metric: mae}\\n")
...     s = read_spec(p)
>>> s.split, [t.name for t in s.targets], s.exclude, s.targets[1].metrics
((0.7, 0.15, 0.15), ['a', 'b'], ('id',), ('mae', 'rmse', 'r2'))
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from sharesearch.data._checks import data_name, is_data_name
from sharesearch.data._preprocess import label_key
from sharesearch.data._rows import check_search_rows
from sharesearch.errors import SharesearchError
from sharesearch.names import metric_names
from sharesearch.tasks import TASK_KINDS, TaskSpec, default_metrics

__all__ = ["DataSpecError", "DataFileNotFoundError", "DataSpec", "TargetEntry", "read_spec", "with_options",
           "SPEC_SUFFIXES", "DATA_SUFFIXES", "OPTION_KEYS", "SPLIT_NAMES", "columns_text"]

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
_TOP_KEYS = ("path", "features", "categorical", "exclude", "split_seed", "split", "split_column", "split_values",
             "weight_column", "search_rows", "targets", "name")
_TARGET_KEYS = ("column", "kind", "classes", "weight", "metrics", "selection_metric", "name")
#: the keys ``load_spec_file(**options)`` may override
OPTION_KEYS = ("split_seed", "split", "search_rows")
#: the splits a ``split_values`` table may name, in order; train is required
SPLIT_NAMES = ("train", "val", "test")
_DEFAULT_SPLIT = (0.7, 0.15, 0.15)


class DataSpecError(SharesearchError):
    """A data-spec file or the table it names is invalid (one-line message)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataFileNotFoundError(DataSpecError, FileNotFoundError):
    """The spec file or the data file it names does not exist."""


@dataclass(frozen=True)
class TargetEntry:
    """One ``[[targets]]`` entry, validated."""

    column: str  # the table column holding the labels
    kind: str  # "binary" | "multiclass" | "regression"
    name: str  # the task name (default: the column)
    classes: tuple[Any, ...] | None  # declared class labels in order, or None (the sorted distinct values)
    weight: float  # priority in the loss and in Δm
    metrics: tuple[str, ...]  # reported metrics; the first is the selection metric


@dataclass(frozen=True)
class DataSpec:
    """A validated data-spec file (see :mod:`sharesearch.data.tabular` for the keys)."""

    spec_path: Path  # the spec file, absolute
    path: Path  # the table it names, absolute
    name: str  # the data set's name
    targets: tuple[TargetEntry, ...]  # at least two
    features: tuple[str, ...] | None  # listed feature columns, or None: every column not used otherwise
    categorical: tuple[str, ...] | None  # listed categorical features, or None: detected
    exclude: tuple[str, ...]  # columns never used as features
    split_seed: int  # seed of the random split (and of the train rows a split column leaves to carve)
    split: tuple[float, float, float]  # train/val/test fractions
    split_set: bool  # the split fractions were given (in the file or as an option), not defaulted
    split_column: str | None  # the column naming each row's split, or None: a random split
    split_values: Mapping[str, Any]  # split name -> the value naming it in split_column (train required)
    weight_column: str | None  # the column of per-row sample weights, or None
    search_rows: int | float | None  # the search phase's training rows (None: all)

    @property
    def carved(self) -> tuple[str, ...]:
        """The splits a split column leaves out, carved from its train rows with ``split``."""
        return tuple(s for s in SPLIT_NAMES if s not in self.split_values) if self.split_column else ()

    @property
    def file(self) -> str:
        """The spec file's name, as messages give it."""
        return self.spec_path.name


def columns_text(columns: Sequence[str], limit: int = 30) -> str:
    """Column names for a message, the first ``limit`` of them.

    >>> columns_text(["a", "b", "c"], limit=2)
    'a, b, ... (3 columns)'
    """
    cs = list(columns)
    s = ", ".join(cs[:limit])
    return s + (f", ... ({len(cs)} columns)" if len(cs) > limit else "")


# ------------------------------------------------------------------ reading
def _load_raw(path: Path) -> dict[str, Any]:
    f = path.name
    if path.suffix.lower() not in SPEC_SUFFIXES:
        raise DataSpecError(f"{f}: unsupported spec file type {path.suffix!r} (use one of {', '.join(SPEC_SUFFIXES)})")
    if not path.is_file():
        raise DataFileNotFoundError(f"{f}: spec file not found: {path.resolve()}")
    try:
        if path.suffix.lower() == ".toml":
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        else:
            with open(path, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh)
    except tomllib.TOMLDecodeError as e:
        raise DataSpecError(f"{f}: malformed TOML: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise DataSpecError(f"{f}: malformed YAML{where}: {problem}") from None
    except UnicodeDecodeError as e:
        raise DataSpecError(f"{f}: not UTF-8 text: {e}") from None
    if not isinstance(raw, dict):
        raise DataSpecError(f"{f}: the top level must be a table of keys (path, targets, ...), got {type(raw).__name__}")
    for k in raw:
        if k not in _TOP_KEYS:
            raise DataSpecError(f"{f}: unknown key {str(k)!r} (valid keys: {', '.join(_TOP_KEYS)})")
    return raw


def read_spec(path: "str | Path") -> DataSpec:
    """Read and validate a data-spec file (no data is read).

    Raises
    ------
    DataSpecError
        One line naming the file, the key and the value.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp) / "s.toml"
    ...     _ = p.write_text('path = "d.csv"\\nweight_column = "w"\\n[[targets]]\\ncolumn = "a"\\nkind = "binary"\\n'
    ...                      '[[targets]]\\ncolumn = "b"\\nkind = "binary"\\nselection_metric = "f1"\\n')
    ...     read_spec(p).targets[1].metrics
    ('f1', 'auc', 'accuracy')
    """
    path = Path(path)
    raw = _load_raw(path)
    f = path.name

    def need(key: str) -> Any:
        if key not in raw:
            raise DataSpecError(f"{f}: {key}: missing required key")
        return raw[key]

    data_path = need("path")
    if not isinstance(data_path, str) or not data_path:
        raise DataSpecError(f"{f}: path: expected a file name string, got {data_path!r}")
    if Path(data_path).suffix.lower() not in DATA_SUFFIXES:
        raise DataSpecError(f"{f}: path: {data_path!r} is not a .csv or .parquet file")
    lists = {key: _column_list(raw.get(key), f"{f}: {key}") for key in ("features", "categorical", "exclude")}
    name = raw.get("name", data_name(path.stem))
    if not is_data_name(name):  # it starts the default study name, a folder name
        raise DataSpecError(f"{f}: name: expected 1 to 64 of A-Z a-z 0-9 . _ - + = (the first a letter or digit), "
                            f"got {name!r}")
    split_column = _column_name(raw.get("split_column"), f"{f}: split_column")
    weight_column = _column_name(raw.get("weight_column"), f"{f}: weight_column")
    if split_column is not None and split_column == weight_column:
        raise DataSpecError(f"{f}: weight_column: {weight_column!r} is also the split_column")
    if "split_values" in raw and split_column is None:
        raise DataSpecError(f"{f}: split_values: given without split_column (the column whose values they are)")
    spec = DataSpec(
        spec_path=path.resolve(), path=(path.parent / data_path).resolve(), name=name,
        targets=_targets(need("targets"), f), features=lists["features"], categorical=lists["categorical"],
        exclude=lists["exclude"] or (), split_seed=check_seed(raw.get("split_seed", 0), f"{f}: split_seed"),
        split=check_fractions(raw.get("split", _DEFAULT_SPLIT), f"{f}: split"), split_set="split" in raw,
        split_column=split_column, split_values=_split_values(raw.get("split_values"), f"{f}: split_values"),
        weight_column=weight_column,
        search_rows=check_search_rows(raw.get("search_rows"), f"{f}: search_rows", DataSpecError))
    _check_roles(spec)
    return spec


def with_options(spec: DataSpec, options: Mapping[str, Any]) -> DataSpec:
    """``spec`` with ``load_spec_file``'s options applied (``split_seed``, ``split``, ``search_rows``).

    >>> s = DataSpec(Path("/s.toml"), Path("/d.csv"), "d", (), None, None, (), 0, (0.7, 0.15, 0.15), False,
    ...              None, {}, None, None)
    >>> with_options(s, {"split": [0.5, 0.25, 0.25]}).split
    (0.5, 0.25, 0.25)
    """
    for k in options:
        if k not in OPTION_KEYS:
            raise DataSpecError(f"{spec.file}: unknown option {k!r} for a data-spec file "
                                f"(valid options: {', '.join(OPTION_KEYS)})")
    changes: dict[str, Any] = {}
    if "split_seed" in options:
        changes["split_seed"] = check_seed(options["split_seed"], "option split_seed")
    if "split" in options:
        changes["split"] = check_fractions(list(options["split"]), "option split")
        changes["split_set"] = True
    if "search_rows" in options:
        changes["search_rows"] = check_search_rows(options["search_rows"], f"{spec.file}: option search_rows",
                                                   DataSpecError)
    out = replace(spec, **changes)
    if out.split_column is not None and out.split_set and not out.carved:
        given = "option split" if "split" in options else f"{spec.file}: split"
        raise DataSpecError(f"{given}: {list(out.split)!r} has no effect: split_column {out.split_column!r} names "
                            "every row's split; remove it, or leave val or test out of split_values to carve "
                            "them from the train rows with these fractions")
    return out


# ------------------------------------------------------------------ fields
def check_seed(v: Any, where: str) -> int:
    """An integer seed, or a one-line error."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise DataSpecError(f"{where}: expected an integer seed, got {v!r}")
    return int(v)


def check_fractions(v: Any, where: str) -> tuple[float, float, float]:
    """Three non-negative train/val/test fractions summing to 1, train > 0, or a one-line error."""
    ok = (
        isinstance(v, (list, tuple))
        and len(v) == 3
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in v)
        and abs(sum(v) - 1.0) <= 1e-6
        and v[0] > 0
    )
    if not ok:
        raise DataSpecError(f"{where}: expected three non-negative train/val/test fractions summing to 1, got {v!r}")
    return (float(v[0]), float(v[1]), float(v[2]))


def _column_list(v: Any, where: str) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
        raise DataSpecError(f"{where}: expected a list of column names, got {v!r}")
    dup = sorted({c for c in v if v.count(c) > 1})
    if dup:
        raise DataSpecError(f"{where}: column {dup[0]!r} is listed twice")
    return tuple(v)


def _column_name(v: Any, where: str) -> str | None:
    if v is not None and (not isinstance(v, str) or not v):
        raise DataSpecError(f"{where}: expected a column name string, got {v!r}")
    return v


def _split_values(v: Any, where: str) -> dict[str, Any]:
    if v is None:
        return {s: s for s in SPLIT_NAMES}
    if not isinstance(v, dict):
        raise DataSpecError(f"{where}: expected a table such as {{train = \"train\", val = \"valid\"}}, got {v!r}")
    for k, x in v.items():
        if k not in SPLIT_NAMES:
            raise DataSpecError(f"{where}: unknown split {str(k)!r} (valid: {', '.join(SPLIT_NAMES)})")
        if isinstance(x, bool) or not isinstance(x, (str, int, float)) or (isinstance(x, float) and not math.isfinite(x)):
            raise DataSpecError(f"{where}.{k}: expected a string or number, got {x!r}")
    if "train" not in v:
        raise DataSpecError(f"{where}: train: missing required key (the value naming the train rows)")
    keys = [label_key(x) for x in v.values()]
    if len(set(keys)) != len(keys):
        raise DataSpecError(f"{where}: two splits have the same value in {v!r}")
    return {s: v[s] for s in SPLIT_NAMES if s in v}


def _targets(targets: Any, f: str) -> tuple[TargetEntry, ...]:
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise DataSpecError(f"{f}: targets: expected a list of tables ([[targets]] entries), got {targets!r}")
    if len(targets) < 2:
        raise DataSpecError(f"{f}: targets: need at least two tasks, got {len(targets)}")
    out: list[TargetEntry] = []
    for i, t in enumerate(targets):
        entry = _target(t, f"{f}: targets[{i}]")
        for j, prev in enumerate(out):
            if prev.column == entry.column:
                raise DataSpecError(f"{f}: targets[{i}].column: column {entry.column!r} is already the target of "
                                    f"targets[{j}]")
            if prev.name == entry.name:
                raise DataSpecError(f"{f}: targets[{i}].name: duplicate task name {entry.name!r} (also targets[{j}])")
        out.append(entry)
    return tuple(out)


def _target(t: dict[str, Any], where: str) -> TargetEntry:
    """One ``[[targets]]`` entry, every key checked."""
    for k in t:
        if k not in _TARGET_KEYS:
            raise DataSpecError(f"{where}: unknown key {str(k)!r} (valid keys: {', '.join(_TARGET_KEYS)})")
    if "column" not in t:
        raise DataSpecError(f"{where}.column: missing required key")
    col = t["column"]
    if not isinstance(col, str) or not col:
        raise DataSpecError(f"{where}.column: expected a column name string, got {col!r}")
    if "kind" not in t:
        raise DataSpecError(f"{where}.kind: missing required key ({' | '.join(TASK_KINDS)})")
    kind = t["kind"]
    if kind not in TASK_KINDS:
        raise DataSpecError(f"{where}.kind: unknown kind {kind!r} (valid kinds: {' | '.join(TASK_KINDS)})")
    tname = t.get("name", col)
    if not isinstance(tname, str) or not tname:
        raise DataSpecError(f"{where}.name: expected a non-empty string, got {tname!r}")
    classes = _classes(t.get("classes"), kind, where)
    weight = t.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight > 0):
        raise DataSpecError(f"{where}.weight: expected a positive number, got {weight!r}")
    metrics = _metrics(t.get("metrics"), t.get("selection_metric"), kind, where)
    try:  # validates metric names against the kind
        TaskSpec(tname, kind, n_classes=max(2, len(classes or ())), metrics=metrics, weight=float(weight))
    except ValueError as e:
        raise DataSpecError(f"{where}.metrics: {e}") from None
    return TargetEntry(column=col, kind=kind, name=tname, classes=classes, weight=float(weight), metrics=metrics)


def _classes(classes: Any, kind: str, where: str) -> tuple[Any, ...] | None:
    if classes is None:
        return None
    if kind == "regression":
        raise DataSpecError(f"{where}.classes: a regression target has no classes")
    if not isinstance(classes, list) or not all(
        isinstance(c, (str, int, float, bool)) and not (isinstance(c, float) and not math.isfinite(c)) for c in classes
    ):
        raise DataSpecError(f"{where}.classes: expected a list of labels (strings or numbers), got {classes!r}")
    keys = [label_key(c) for c in classes]
    if len(set(keys)) != len(keys):
        raise DataSpecError(f"{where}.classes: a class is listed twice in {classes!r}")
    if kind == "binary" and len(classes) != 2:
        raise DataSpecError(f"{where}.classes: a binary target has exactly two classes [negative, positive], got {classes!r}")
    if kind == "multiclass" and len(classes) < 2:
        raise DataSpecError(f"{where}.classes: a multiclass target needs at least two classes, got {classes!r}")
    return tuple(classes)


def _metrics(metrics: Any, selection: Any, kind: str, where: str) -> tuple[str, ...]:
    """The target's metrics, its ``selection_metric`` (if any) first."""
    if metrics is None:
        metrics = []
    elif not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise DataSpecError(f"{where}.metrics: expected a list of metric names, got {metrics!r}")
    if selection is None:
        return tuple(metrics)
    valid = metric_names(kind)
    if not isinstance(selection, str) or selection not in valid:
        raise DataSpecError(f"{where}.selection_metric: {selection!r} is not a metric of a {kind} task "
                            f"(valid: {', '.join(valid)})")
    if metrics and selection not in metrics:
        raise DataSpecError(f"{where}.selection_metric: {selection!r} is not one of the target's metrics "
                            f"({', '.join(metrics)}); add it to metrics")
    rest = metrics or list(default_metrics(kind))
    return (selection, *[m for m in rest if m != selection])


def _check_roles(spec: DataSpec) -> None:
    """A column plays one role: target, feature, split, weight or excluded (columns are checked later)."""
    f = spec.file
    roles = {t.column: f"also a target (task {t.name!r})" for t in spec.targets}
    for key, col in (("split_column", spec.split_column), ("weight_column", spec.weight_column)):
        if col in roles:
            raise DataSpecError(f"{f}: {key}: column {col!r} is {roles[col]}")
        if col is not None:
            roles[col] = f"the {key}"  # "... is the split_column"
    for c in spec.exclude:
        if c in roles:
            raise DataSpecError(f"{f}: exclude: column {c!r} is {roles[c]}, never a feature anyway; remove it here")
    for c in spec.features or ():
        if c in roles:
            raise DataSpecError(f"{f}: features: column {c!r} is {roles[c]}")
        if c in spec.exclude:
            raise DataSpecError(f"{f}: features: column {c!r} is also in exclude")

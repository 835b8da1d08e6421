"""CSV and Parquet tables described by a data-spec file (TOML or YAML).

A data-spec file says which table to read, which columns are inputs and which
are the prediction tasks. TOML is read with :mod:`tomllib`, YAML with
``yaml.safe_load``; nothing in it is ever evaluated. Example (``videos.toml``)::

    path = "videos.csv"            # relative to the spec file; .csv or .parquet
    features = ["age", "country"]  # optional; default: every column not a target
    categorical = ["country"]      # optional; default: non-numeric feature columns
    split_seed = 0                 # optional (default 0)
    split = [0.7, 0.15, 0.15]      # optional train/val/test fractions
    search_rows = 50000            # optional: search on at most 50,000 training rows (or a fraction
                                   # such as 0.2); the verdict uses every row (sharesearch.data._rows)
    name = "videos"                # optional data set name (A-Z a-z 0-9 . _ - + =); default: the
                                   # spec file's stem, other characters made -

    [[targets]]
    column = "clicked"
    kind = "binary"                # binary | multiclass | regression

    [[targets]]
    column = "rating"
    kind = "multiclass"
    classes = [1, 2, 3, 4, 5]      # optional; default: sorted distinct values
    weight = 2.0                   # optional priority (default 1.0)
    metrics = ["accuracy", "macro_f1"]  # optional; first is the primary metric
    name = "rating"                # optional task name, default the column

The same in YAML::

    path: videos.csv
    targets:
      - {column: clicked, kind: binary}
      - {column: rating, kind: multiclass, classes: [1, 2, 3, 4, 5]}

How columns become tensors
--------------------------
* Rows are split train/val/test at random with ``split_seed`` and ``split``
  (:func:`~sharesearch.data.make_split`). Every statistic below is computed
  on the **train** rows only.
* Numeric features are standardised with the train mean and std (std 0 -> 1).
* Categorical features are one-hot encoded over the categories seen in the
  train split (sorted); an unseen category encodes as all zeros. At most
  ``MAX_CATEGORIES`` categories per column (drop identifier columns).
* A missing feature value is imputed with the train mean (0 after
  standardisation; all zeros for a categorical) and the column gets a 0/1
  ``<column>__missing`` indicator (added when the column has any missing value).
* Missing target values are missing labels (``NaN``): a row may be labelled
  for some tasks only.
* ``binary`` targets accept 0/1, true/false, or exactly two distinct values
  (sorted; the first is class 0); ``classes = [neg, pos]`` fixes the order.
  The mapping is kept in ``TaskSpec.classes``.
* ``multiclass`` labels become ``0 .. n-1`` in the order of ``classes``.
* ``regression`` targets are standardised with the train mean/std of the
  labelled rows, which are stored in ``TaskSpec.target_mean/target_std`` so
  metrics are reported in the original units.

Errors
------
Any problem with the spec or the table raises one :class:`DataSpecError`
(a ``ValueError``) whose message is a single line naming the file, the field
or column and, where it applies, the row (the N-th data row, 1-based, header
not counted) and the value, e.g.::

    videos.toml: targets[1].column: unknown column 'ratng' (columns: age, clicked, country, rating)
    videos.csv: column 'age', row 17: non-number 'abc' in a numeric feature
    videos.csv: column 'rating', row 5: label 7 is not one of the declared classes [1, 2, 3, 4, 5]

A missing spec or data file raises :class:`DataFileNotFoundError`, which is
both a ``DataSpecError`` and a ``FileNotFoundError``. Loading is pure: it
reads the two files and writes nothing.

Example
-------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     root = pathlib.Path(tmp)
...     _ = (root / "t.csv").write_text("a,b,y1,y2\\n1,x,0,1.5\\n2,y,1,2.5\\n3,x,1,\\n4,y,0,0.5\\n")
...     _ = (root / "t.toml").write_text(
...         'path = "t.csv"\\nsplit = [1.0, 0.0, 0.0]\\n'
...         '[[targets]]\\ncolumn = "y1"\\nkind = "binary"\\n'
...         '[[targets]]\\ncolumn = "y2"\\nkind = "regression"\\n')
...     d = load_spec_file(root / "t.toml")
>>> d.task_names, d.meta["feature_names"]
(['y1', 'y2'], ['a', 'b=x', 'b=y'])
>>> d.tasks[1].target_mean, int(d.y[:, 1].isnan().sum())
(1.5, 1)
"""

from __future__ import annotations

from sharesearch.errors import SharesearchError

import math
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from sharesearch.data._base import MultiTaskData, make_split
from sharesearch.data._checks import check_float32, csv_header_duplicate, data_name, is_data_name
from sharesearch.data._rows import check_search_rows
from sharesearch.tasks import TASK_KINDS, TaskSpec

__all__ = [
    "DataSpecError",
    "DataFileNotFoundError",
    "MAX_CATEGORIES",
    "SPEC_SUFFIXES",
    "read_spec",
    "load_spec_file",
]

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
MAX_CATEGORIES = 1000
_TOP_KEYS = ("path", "features", "categorical", "split_seed", "split", "search_rows", "targets", "name")
_TARGET_KEYS = ("column", "kind", "classes", "weight", "metrics", "name")
_OPTION_KEYS = ("split_seed", "split", "search_rows")


class DataSpecError(SharesearchError):
    """A data-spec file or the table it names is invalid (one-line message)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataFileNotFoundError(DataSpecError, FileNotFoundError):
    """The spec file or the data file it names does not exist."""


# ---------------------------------------------------------------- formatting
def _fmt(v: Any) -> str:
    """A value as it should read in a message: numbers plain, strings quoted."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return repr(str(v))


def _cols(columns: Sequence[str], limit: int = 30) -> str:
    cs = list(columns)
    s = ", ".join(cs[:limit])
    return s + (f", ... ({len(cs)} columns)" if len(cs) > limit else "")


# -------------------------------------------------------------- spec reading
def read_spec(path: "str | Path") -> dict[str, Any]:
    """Read and validate a data-spec file into a plain dict (no data is read).

    Returns the spec with defaults filled in: ``path`` (absolute
    :class:`~pathlib.Path`), ``features``/``categorical`` (list or None),
    ``split_seed``, ``split``, ``search_rows`` (None: every row), ``name``
    and ``targets`` (list of dicts).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp) / "s.yaml"
    ...     _ = p.write_text("path: d.csv\\ntargets:\\n  - {column: a, kind: binary}\\n  - {column: b, kind: regression}\\n")
    ...     s = read_spec(p)
    >>> s["split"], [t["name"] for t in s["targets"]]
    ([0.7, 0.15, 0.15], ['a', 'b'])
    """
    path = Path(path)
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

    def need(key: str) -> Any:
        if key not in raw:
            raise DataSpecError(f"{f}: {key}: missing required key")
        return raw[key]

    data_path = need("path")
    if not isinstance(data_path, str) or not data_path:
        raise DataSpecError(f"{f}: path: expected a file name string, got {data_path!r}")
    if Path(data_path).suffix.lower() not in DATA_SUFFIXES:
        raise DataSpecError(f"{f}: path: {data_path!r} is not a .csv or .parquet file")
    spec: dict[str, Any] = {"path": (path.parent / data_path).resolve(), "spec_path": path.resolve()}

    for key in ("features", "categorical"):
        v = raw.get(key)
        if v is not None:
            if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
                raise DataSpecError(f"{f}: {key}: expected a list of column names, got {v!r}")
            dup = sorted({c for c in v if v.count(c) > 1})
            if dup:
                raise DataSpecError(f"{f}: {key}: column {dup[0]!r} is listed twice")
        spec[key] = None if v is None else list(v)
    spec["split_seed"] = _check_seed(raw.get("split_seed", 0), f"{f}: split_seed")
    spec["split"] = _check_fractions(raw.get("split", [0.7, 0.15, 0.15]), f"{f}: split")
    spec["search_rows"] = check_search_rows(raw.get("search_rows"), f"{f}: search_rows", DataSpecError)
    name = raw.get("name", data_name(path.stem))
    if not is_data_name(name):  # it starts the default study name, a folder name
        raise DataSpecError(f"{f}: name: expected 1 to 64 of A-Z a-z 0-9 . _ - + = (the first a letter or digit), "
                            f"got {name!r}")
    spec["name"] = name

    targets = need("targets")
    if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
        raise DataSpecError(f"{f}: targets: expected a list of tables ([[targets]] entries), got {targets!r}")
    if len(targets) < 2:
        raise DataSpecError(f"{f}: targets: need at least two tasks, got {len(targets)}")
    out_targets, seen, columns_seen = [], {}, {}
    for i, t in enumerate(targets):
        where = f"{f}: targets[{i}]"
        for k in t:
            if k not in _TARGET_KEYS:
                raise DataSpecError(f"{where}: unknown key {str(k)!r} (valid keys: {', '.join(_TARGET_KEYS)})")
        if "column" not in t:
            raise DataSpecError(f"{where}.column: missing required key")
        col = t["column"]
        if not isinstance(col, str) or not col:
            raise DataSpecError(f"{where}.column: expected a column name string, got {col!r}")
        if col in columns_seen:
            raise DataSpecError(f"{where}.column: column {col!r} is already the target of targets[{columns_seen[col]}]")
        columns_seen[col] = i
        if "kind" not in t:
            raise DataSpecError(f"{where}.kind: missing required key ({' | '.join(TASK_KINDS)})")
        kind = t["kind"]
        if kind not in TASK_KINDS:
            raise DataSpecError(f"{where}.kind: unknown kind {kind!r} (valid kinds: {' | '.join(TASK_KINDS)})")
        tname = t.get("name", col)
        if not isinstance(tname, str) or not tname:
            raise DataSpecError(f"{where}.name: expected a non-empty string, got {tname!r}")
        if tname in seen:
            raise DataSpecError(f"{where}.name: duplicate task name {tname!r} (also targets[{seen[tname]}])")
        seen[tname] = i
        classes = t.get("classes")
        if classes is not None:
            if kind == "regression":
                raise DataSpecError(f"{where}.classes: a regression target has no classes")
            if not isinstance(classes, list) or not all(
                isinstance(c, (str, int, float, bool)) and not (isinstance(c, float) and not math.isfinite(c))
                for c in classes
            ):
                raise DataSpecError(f"{where}.classes: expected a list of labels (strings or numbers), got {classes!r}")
            keys = [_key(c) for c in classes]
            if len(set(keys)) != len(keys):
                raise DataSpecError(f"{where}.classes: a class is listed twice in {classes!r}")
            if kind == "binary" and len(classes) != 2:
                raise DataSpecError(f"{where}.classes: a binary target has exactly two classes [negative, positive], got {classes!r}")
            if kind == "multiclass" and len(classes) < 2:
                raise DataSpecError(f"{where}.classes: a multiclass target needs at least two classes, got {classes!r}")
        weight = t.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight > 0):
            raise DataSpecError(f"{where}.weight: expected a positive number, got {weight!r}")
        metrics = t.get("metrics", [])
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise DataSpecError(f"{where}.metrics: expected a list of metric names, got {metrics!r}")
        try:  # validates metric names against the kind
            TaskSpec(tname, kind, n_classes=max(2, len(classes or ())), metrics=tuple(metrics), weight=float(weight))
        except ValueError as e:
            raise DataSpecError(f"{where}.metrics: {e}") from None
        out_targets.append(
            {"column": col, "kind": kind, "classes": classes, "weight": float(weight), "metrics": list(metrics), "name": tname}
        )
    spec["targets"] = out_targets
    return spec


def _check_seed(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise DataSpecError(f"{where}: expected an integer seed, got {v!r}")
    return int(v)


def _check_fractions(v: Any, where: str) -> list[float]:
    ok = (
        isinstance(v, (list, tuple))
        and len(v) == 3
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in v)
        and abs(sum(v) - 1.0) <= 1e-6
        and v[0] > 0
    )
    if not ok:
        raise DataSpecError(f"{where}: expected three non-negative train/val/test fractions summing to 1, got {v!r}")
    return [float(x) for x in v]


# ----------------------------------------------------------- value handling
def _key(v: Any) -> tuple[str, Any]:
    """Normalise a label so that 1, 1.0, "1" and true/"true" compare as intended."""
    if isinstance(v, (bool, np.bool_)):
        return ("n", float(bool(v)))
    if isinstance(v, (int, float, np.integer, np.floating)):
        return ("n", float(v))
    s = str(v).strip()
    low = s.lower()
    if low in ("true", "false"):
        return ("n", 1.0 if low == "true" else 0.0)
    try:
        return ("n", float(s))
    except ValueError:
        return ("s", s)


def _key_str(k: tuple[str, Any]) -> str:
    if k[0] == "n":
        f = k[1]
        return str(int(f)) if float(f).is_integer() and abs(f) < 1e15 else repr(f)
    return k[1]


def _first_row(codes: np.ndarray, code_set: set[int]) -> int:
    return int(np.flatnonzero(np.isin(codes, list(code_set)))[0])


def _parse_numeric(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float values (NaN for missing) and a mask of present-but-not-a-number values."""
    if pd.api.types.is_bool_dtype(s.dtype) or (
        pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype)
    ):
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return vals, np.zeros(len(s), dtype=bool)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    parsed = np.empty(len(uniques), dtype=np.float64)
    bad_u = np.zeros(len(uniques), dtype=bool)
    for j, u in enumerate(uniques):
        k = _key(u)
        if k[0] == "n":
            parsed[j] = k[1]
        else:
            parsed[j], bad_u[j] = np.nan, True
    vals = np.where(codes >= 0, parsed[np.maximum(codes, 0)] if len(uniques) else np.nan, np.nan)
    bad = (codes >= 0) & (bad_u[np.maximum(codes, 0)] if len(uniques) else False)
    return vals.astype(np.float64), np.asarray(bad, dtype=bool)


def _cat_strings(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes into uniques as strings, unique strings); code -1 = missing."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    strs = [_key_str(("n", float(u))) if isinstance(u, (int, float, np.integer, np.floating)) and not isinstance(u, (bool, np.bool_)) else str(u) for u in uniques]
    # distinct raw values may print the same (1 and 1.0): merge them
    merged, remap = [], np.empty(len(strs), dtype=np.int64)
    for j, st in enumerate(strs):
        if st not in merged:
            merged.append(st)
        remap[j] = merged.index(st)
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(strs) else -1, -1)
    return codes, np.array(merged, dtype=object)


# ------------------------------------------------------------------ loading
def _read_table(path: Path) -> pd.DataFrame:
    f = path.name
    if not path.is_file():
        raise DataFileNotFoundError(f"{f}: data file not found: {path}")
    dup = csv_header_duplicate(path) if path.suffix.lower() == ".csv" else None
    if dup is not None:
        raise DataSpecError(f"{f}: column {dup!r} appears twice in the header")
    try:
        if path.suffix.lower() == ".csv":
            df = pd.read_csv(path)
        else:
            df = pd.read_parquet(path, engine="pyarrow")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as e:
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        raise DataSpecError(f"{f}: cannot read {kind}: {e}") from None
    except Exception as e:  # pyarrow raises its own error types
        raise DataSpecError(f"{f}: cannot read table: {type(e).__name__}: {e}") from None
    df.columns = [str(c) for c in df.columns]
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise DataSpecError(f"{f}: column {dup[0]!r} appears twice")
    if len(df) == 0:
        raise DataSpecError(f"{f}: the table has no data rows")
    return df.reset_index(drop=True)


def load_spec_file(path: "str | Path", **options: Any) -> MultiTaskData:
    """Load the table a data-spec file describes (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The ``.toml`` / ``.yaml`` / ``.yml`` spec file.
    **options
        ``split_seed``, ``split`` and/or ``search_rows`` override the spec file's values.

    Raises
    ------
    DataSpecError
        One line naming the file, field/column, row and value.

    Examples
    --------
    >>> from pathlib import Path
    >>> import sharesearch
    >>> ex = Path(sharesearch.__file__).parent.parent / "examples" / "videos.toml"
    >>> d = load_spec_file(ex, split_seed=1) if ex.is_file() else None
    >>> d is None or d.split_seed == 1
    True
    """
    for k in options:
        if k not in _OPTION_KEYS:
            raise DataSpecError(f"{Path(path).name}: unknown option {k!r} for a data-spec file "
                                f"(valid options: {', '.join(_OPTION_KEYS)})")
    spec = read_spec(path)
    sf = Path(path).name
    if "split_seed" in options:
        spec["split_seed"] = _check_seed(options["split_seed"], "option split_seed")
    if "split" in options:
        spec["split"] = _check_fractions(list(options["split"]), "option split")
    if "search_rows" in options:
        spec["search_rows"] = check_search_rows(options["search_rows"], f"{sf}: option search_rows", DataSpecError)
    df = _read_table(spec["path"])
    df_name = spec["path"].name
    columns = list(df.columns)

    target_cols = []
    for i, t in enumerate(spec["targets"]):
        if t["column"] not in columns:
            raise DataSpecError(f"{sf}: targets[{i}].column: unknown column {t['column']!r} (columns: {_cols(columns)})")
        target_cols.append(t["column"])

    if spec["features"] is None:
        features = [c for c in columns if c not in target_cols]
    else:
        features = spec["features"]
        for c in features:
            if c not in columns:
                raise DataSpecError(f"{sf}: features: unknown column {c!r} (columns: {_cols(columns)})")
            if c in target_cols:
                raise DataSpecError(f"{sf}: features: column {c!r} is also a target")
    if not features:
        raise DataSpecError(f"{sf}: features: no feature columns left (every column is a target)")
    categorical = spec["categorical"]
    if categorical is not None:
        for c in categorical:
            if c not in features:
                where = "is not a feature" if c in columns else f"unknown column (columns: {_cols(columns)})"
                raise DataSpecError(f"{sf}: categorical: {c!r} {where}")

    n = len(df)
    split = make_split(n, spec["split_seed"], spec["split"])
    train = split.numpy() == 0
    seed_note = f"split_seed={spec['split_seed']}"

    blocks: list[np.ndarray] = []
    feature_names: list[str] = []
    numeric_stats: dict[str, list[float]] = {}
    categories: dict[str, list[str]] = {}
    for c in features:
        s = df[c]
        vals, bad = _parse_numeric(s)
        present = s.notna().to_numpy()
        if categorical is not None:
            is_cat = c in categorical
        else:
            n_bad, n_present = int(bad.sum()), int(present.sum())
            is_cat = n_bad > 0 and not (n_bad <= 0.05 * n_present)
        if is_cat:
            codes, uniq = _cat_strings(s)
            train_codes = np.unique(codes[train & (codes >= 0)])
            if len(train_codes) == 0:
                raise DataSpecError(f"{df_name}: column {c!r}: no values in the train split ({seed_note})")
            if len(train_codes) > MAX_CATEGORIES:
                raise DataSpecError(
                    f"{df_name}: column {c!r}: {len(train_codes)} categories in the train split "
                    f"(more than {MAX_CATEGORIES}); leave this column out of `features`"
                )
            cats = sorted(str(uniq[k]) for k in train_codes)
            pos = {cat: j for j, cat in enumerate(cats)}
            col_of_code = np.array([pos.get(str(u), -1) for u in uniq] + [-1], dtype=np.int64)
            cols = col_of_code[np.where(codes >= 0, codes, len(uniq))]
            onehot = np.zeros((n, len(cats)), dtype=np.float32)
            hit = cols >= 0
            onehot[np.flatnonzero(hit), cols[hit]] = 1.0
            blocks.append(onehot)
            feature_names += [f"{c}={cat}" for cat in cats]
            categories[c] = cats
        else:
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                hint = "" if categorical is not None else " (list the column in `categorical` if it is one)"
                raise DataSpecError(f"{df_name}: column {c!r}, row {r + 1}: non-number {_fmt(s.iloc[r])} in a numeric feature{hint}")
            inf = np.isinf(vals)
            if inf.any():
                r = int(np.flatnonzero(inf)[0])
                raise DataSpecError(f"{df_name}: column {c!r}, row {r + 1}: infinite value {_fmt(vals[r])} in a numeric feature")
            check_float32(vals, f"{df_name}: column {c!r}", DataSpecError)
            tr = vals[train & ~np.isnan(vals)]
            if tr.size == 0:
                raise DataSpecError(f"{df_name}: column {c!r}: no values in the train split ({seed_note})")
            mu, sd = float(tr.mean()), float(tr.std())
            sd = sd if sd > 0 and math.isfinite(sd) else 1.0
            z = np.where(np.isnan(vals), 0.0, (vals - mu) / sd).astype(np.float32)
            blocks.append(z[:, None])
            feature_names.append(c)
            numeric_stats[c] = [mu, sd]
        if not present.all():
            blocks.append((~present).astype(np.float32)[:, None])
            feature_names.append(f"{c}__missing")
    x = np.concatenate(blocks, axis=1)

    tasks: list[TaskSpec] = []
    ys: list[np.ndarray] = []
    for i, t in enumerate(spec["targets"]):
        spec_t, y = _encode_target(df[t["column"]], t, train, df_name, sf, i, seed_note)
        tasks.append(spec_t)
        ys.append(y)
    y = np.stack(ys, axis=1).astype(np.float32)

    meta = {
        "source": str(spec["spec_path"]),
        "format": "csv" if spec["path"].suffix.lower() == ".csv" else "parquet",
        "data_file": str(spec["path"]),
        "options": {"split_seed": spec["split_seed"], "split": spec["split"],
                    **({"search_rows": spec["search_rows"]} if spec["search_rows"] is not None else {})},
        "n_rows": n,
        "feature_columns": list(features),
        "categorical": sorted(categories),
        "categories": categories,
        "numeric_stats": numeric_stats,
        "feature_names": feature_names,
        "target_columns": target_cols,
    }
    return MultiTaskData(
        name=spec["name"],
        tasks=tasks,
        x=torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        y=torch.from_numpy(y),
        split=split,
        split_seed=spec["split_seed"],
        meta=meta,
        search_rows=spec["search_rows"],
    )


def _encode_target(
    s: pd.Series, t: dict[str, Any], train: np.ndarray, df_name: str, sf: str, i: int, seed_note: str
) -> tuple[TaskSpec, np.ndarray]:
    col, kind = t["column"], t["kind"]
    where = f"{df_name}: column {col!r}"
    if not s.notna().any():
        raise DataSpecError(f"{where}: target targets[{i}] has no labelled rows")
    common = {"metrics": tuple(t["metrics"]), "weight": t["weight"]}

    if kind == "regression":
        vals, bad = _parse_numeric(s)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataSpecError(f"{where}, row {r + 1}: non-number {_fmt(s.iloc[r])} in a regression target")
        if np.isinf(vals).any():
            r = int(np.flatnonzero(np.isinf(vals))[0])
            raise DataSpecError(f"{where}, row {r + 1}: infinite value in a regression target")
        check_float32(vals, where, DataSpecError)
        tr = vals[train & ~np.isnan(vals)]
        if tr.size == 0:
            raise DataSpecError(f"{where}: target targets[{i}] has no labelled rows in the train split ({seed_note})")
        mu, sd = float(tr.mean()), float(tr.std())
        sd = sd if sd > 0 and math.isfinite(sd) else 1.0
        return TaskSpec(t["name"], "regression", target_mean=mu, target_std=sd, **common), (vals - mu) / sd

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    ukeys = [_key(u) for u in uniques]
    declared = t["classes"]
    if declared is not None:
        class_keys = [_key(c) for c in declared]
        class_strs = tuple(_key_str(k) for k in class_keys)
        index = {k: j for j, k in enumerate(class_keys)}
        unknown = {j for j, k in enumerate(ukeys) if k not in index}
        if unknown:
            r = _first_row(codes, unknown)
            raise DataSpecError(
                f"{where}, row {r + 1}: label {_fmt(s.iloc[r])} is not one of the declared classes {declared!r}"
            )
    else:
        distinct = sorted(set(ukeys), key=lambda k: (k[0], k[1]) if all(q[0] == "n" for q in ukeys) else (0, _key_str(k)))
        if kind == "binary":
            if set(distinct) <= {("n", 0.0), ("n", 1.0)}:
                distinct = [("n", 0.0), ("n", 1.0)]
            elif len(distinct) > 2:
                in_order = list(dict.fromkeys(ukeys))  # factorize keeps order of appearance
                third = in_order[2]
                r = _first_row(codes, {j for j, k in enumerate(ukeys) if k == third})
                seen = ", ".join(_fmt(_key_str(k)) for k in in_order[:2])
                raise DataSpecError(
                    f"{where}, row {r + 1}: third distinct value {_fmt(s.iloc[r])} in a binary target (also seen {seen}); "
                    f"use kind = \"multiclass\" or declare classes"
                )
            elif len(distinct) < 2:
                raise DataSpecError(
                    f"{where}: binary target has the single value {_fmt(_key_str(distinct[0]))}; "
                    f"need 0/1, true/false or two distinct values (or declare classes = [negative, positive])"
                )
        elif len(distinct) < 2:
            raise DataSpecError(f"{where}: multiclass target has a single class {_fmt(_key_str(distinct[0]))}; need at least two")
        class_keys = distinct
        if kind == "binary" and all(str(v).strip().lower() in ("true", "false") or isinstance(v, (bool, np.bool_)) for v in uniques):
            class_strs = ("false", "true")
        else:
            class_strs = tuple(_key_str(k) for k in class_keys)
        index = {k: j for j, k in enumerate(class_keys)}
    lut = np.array([index[k] for k in ukeys] + [np.nan], dtype=np.float64)
    y = lut[np.where(codes >= 0, codes, len(ukeys))]
    if not (~np.isnan(y) & train).any():
        raise DataSpecError(f"{where}: target targets[{i}] has no labelled rows in the train split ({seed_note})")
    n_classes = len(class_keys)
    spec = TaskSpec(t["name"], kind, n_classes=n_classes, classes=class_strs, **common)
    return spec, y

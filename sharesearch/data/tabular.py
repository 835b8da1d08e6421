"""CSV and Parquet tables described by a data-spec file (TOML or YAML).

A data-spec file says which table to read, which columns are inputs and which
are the prediction tasks. TOML is read with :mod:`tomllib`, YAML with
``yaml.safe_load``; nothing in it is ever evaluated. Example (``videos.toml``)::

    path = "videos.csv"            # relative to the spec file; .csv or .parquet
    features = ["age", "country"]  # optional; default: every column that is not a target, the split or
                                   # weight column, or excluded (the loader says which: meta["feature_note"])
    exclude = ["user_id"]          # optional: columns never used as features (ids, folds, ...)
    categorical = ["country"]      # optional; default: non-numeric feature columns
    split_seed = 0                 # optional (default 0)
    split = [0.7, 0.15, 0.15]      # optional train/val/test fractions
    split_column = "fold"          # optional: the column naming each row's split (then `split` is not used)
    split_values = {train = "train", val = "valid", test = "test"}  # optional; default train/val/test
    weight_column = "w"            # optional: per-row sample weights (finite, >= 0)
    search_rows = 50000            # optional: search on at most 50,000 training rows (or a fraction
                                   # such as 0.2); the verdict uses every row (sharesearch.data._rows)
    name = "videos"                # optional data set name (A-Z a-z 0-9 . _ - + =); default: the
                                   # spec file's stem, other characters made -

    [[targets]]
    column = "clicked"
    kind = "binary"                # binary | multiclass | regression
    metrics = ["auc", "average_precision", "f1", "logloss"]  # optional; default auc, accuracy
    selection_metric = "average_precision"  # optional: one of metrics; it selects models (put first)

    [[targets]]
    column = "rating"
    kind = "multiclass"
    classes = [1, 2, 3, 4, 5]      # optional; default: sorted distinct values
    weight = 2.0                   # optional priority (default 1.0)
    metrics = ["accuracy", "macro_f1"]  # optional; first is the selection metric
    name = "rating"                # optional task name, default the column

The same in YAML::

    path: videos.csv
    targets:
      - {column: clicked, kind: binary}
      - {column: rating, kind: multiclass, classes: [1, 2, 3, 4, 5]}

Metrics (``sharesearch.names.METRICS``, each with its direction): binary
``auc``, ``accuracy``, ``macro_f1``, ``f1`` (the positive class),
``average_precision``, ``logloss``; multiclass ``accuracy``, ``macro_f1``,
``logloss``; regression ``rmse``, ``mae``, ``r2``.

Rows and splits
---------------
* Without ``split_column``, rows are split train/val/test at random with
  ``split_seed`` and ``split`` (:func:`~sharesearch.data.make_split`).
* With ``split_column``, each row's value there names its split through
  ``split_values`` (values compare as labels do: ``1``, ``1.0`` and ``"1"`` are
  one value). ``train`` must be named; a row whose value names no split (or
  is missing) is refused with its row and value, and so is a named split that
  no row has. ``val`` and/or ``test`` may be left out of ``split_values``:
  those rows are then carved at random (``split_seed``) from the rows named
  train, in the proportion of the ``split`` fractions of train and the carved
  splits (the default ``[0.7, 0.15, 0.15]`` with test left out gives test
  0.15/0.85 of them). When nothing is carved, giving ``split`` is an error (it
  would do nothing); ``split_seed`` still seeds the search phase's rows.
* The split and weight columns are never features; ``exclude`` lists more.
* ``weight_column``: every row's sample weight, a finite number >= 0 (no
  missing value). Each task's training loss is then the weighted mean over
  its labelled rows (a row of weight 2 counts as that row twice); metrics are
  unweighted. Without it every row weighs 1, exactly as before.

How columns become tensors
--------------------------
Every statistic is computed on the **train** rows only. The feature encoding
is :class:`~sharesearch.data._preprocess.Preprocessing` (kept on the data as
``data.preprocessing``, so a model can encode raw rows later):

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
* A feature column that repeats a target (equal on every row where the target
  is labelled, or equal to its encoded labels) is refused: another target
  must never become an input (``sharesearch.data._targets.copied_target``).

Errors
------
Any problem with the spec or the table raises one :class:`DataSpecError`
(a ``ValueError``) whose message is a single line naming the file, the field
or column and, where it applies, the row (the N-th data row, 1-based, header
not counted) and the value, e.g.::

    videos.toml: targets[1].column: unknown column 'ratng' (columns: age, clicked, country, rating)
    videos.csv: column 'age', row 17: non-number 'abc' in a numeric feature
    videos.csv: column 'rating', row 5: label 7 is not one of the declared classes [1, 2, 3, 4, 5]
    videos.toml: features: column 'clicked_copy' repeats target column 'clicked' on every labelled row; ...

A missing spec or data file raises :class:`DataFileNotFoundError`, which is
both a ``DataSpecError`` and a ``FileNotFoundError``. Loading is pure: it
reads the two files and writes nothing.

Example
-------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     root = pathlib.Path(tmp)
...     _ = (root / "t.csv").write_text("id,a,b,y1,y2\\n7,1,x,0,1.5\\n8,2,y,1,2.5\\n9,3,x,1,\\n6,4,y,0,0.5\\n")
...     _ = (root / "t.toml").write_text(
...         'path = "t.csv"\\nsplit = [1.0, 0.0, 0.0]\\nexclude = ["id"]\\n'
...         '[[targets]]\\ncolumn = "y1"\\nkind = "binary"\\n'
...         '[[targets]]\\ncolumn = "y2"\\nkind = "regression"\\n')
...     d = load_spec_file(root / "t.toml")
>>> d.task_names, d.meta["feature_names"]
(['y1', 'y2'], ['a', 'b=x', 'b=y'])
>>> d.tasks[1].target_mean, int(d.y[:, 1].isnan().sum())
(1.5, 1)
>>> d.meta["feature_note"]
'features: 2 of 5 columns (a, b); excluded: id; targets: y1, y2'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sharesearch.data._base import SPLITS, MultiTaskData, make_split
from sharesearch.data._checks import check_float32, csv_header_duplicate
from sharesearch.data._preprocess import MAX_CATEGORIES, Preprocessing, fmt_value, label_key, parse_numeric
from sharesearch.data._spec import (SPEC_SUFFIXES, DataFileNotFoundError, DataSpec, DataSpecError, columns_text,
                                    read_spec, with_options)
from sharesearch.data._targets import copied_target, encode_target

__all__ = [
    "DataSpecError",
    "DataFileNotFoundError",
    "DataSpec",
    "MAX_CATEGORIES",
    "SPEC_SUFFIXES",
    "read_spec",
    "load_spec_file",
]


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


def _feature_columns(spec: DataSpec, columns: list[str]) -> list[str]:
    """The feature columns: listed, or every column not given another role; each named column exists."""
    sf, known = spec.file, set(columns)
    for i, t in enumerate(spec.targets):
        if t.column not in known:
            raise DataSpecError(f"{sf}: targets[{i}].column: unknown column {t.column!r} (columns: {columns_text(columns)})")
    named = [("split_column", spec.split_column), ("weight_column", spec.weight_column)]
    named += [("exclude", c) for c in spec.exclude] + [("features", c) for c in spec.features or ()]
    for key, c in named:
        if c is not None and c not in known:
            raise DataSpecError(f"{sf}: {key}: unknown column {c!r} (columns: {columns_text(columns)})")
    if spec.features is not None:
        features = list(spec.features)
    else:
        used = {t.column for t in spec.targets} | {spec.split_column, spec.weight_column} | set(spec.exclude)
        features = [c for c in columns if c not in used]
    if not features:
        raise DataSpecError(f"{sf}: features: no feature columns left (every column is a target, "
                            "the split or weight column, or excluded)")
    for c in spec.categorical or ():
        if c not in features:
            where = "is not a feature" if c in known else f"unknown column (columns: {columns_text(columns)})"
            raise DataSpecError(f"{sf}: categorical: {c!r} {where}")
    return features


def _feature_note(spec: DataSpec, features: list[str], columns: list[str]) -> str:
    """One line saying which columns became features, for a person to check."""
    shown, plural = columns_text(features, limit=12), "" if len(features) == 1 else "s"
    if spec.features is not None:
        head = f"features: {len(features)} column{plural} as listed ({shown})"
    else:
        head = f"features: {len(features)} of {len(columns)} columns ({shown})"
    parts = [head]
    if spec.exclude:
        parts.append(f"excluded: {columns_text(spec.exclude, limit=12)}")
    if spec.split_column:
        parts.append(f"split column: {spec.split_column}")
    if spec.weight_column:
        parts.append(f"weight column: {spec.weight_column}")
    parts.append(f"targets: {', '.join(t.column for t in spec.targets)}")
    return "; ".join(parts)


def _split_by_column(spec: DataSpec, s: pd.Series, df_name: str) -> torch.Tensor:
    """int8 ``[N]`` split codes named by the split column, the carved splits drawn from its train rows."""
    col = spec.split_column
    uniq_codes, uniques = pd.factorize(s, use_na_sentinel=True)
    by_key = {label_key(v): SPLITS[name] for name, v in spec.split_values.items()}
    lut = np.array([by_key.get(label_key(u), -1) for u in uniques] + [-1], dtype=np.int8)
    codes = lut[np.where(uniq_codes >= 0, uniq_codes, len(uniques))]  # [N]: split code, -1 = names none
    named = ", ".join(f"{k}={fmt_value(v)}" for k, v in spec.split_values.items())
    if (codes < 0).any():
        r = int(np.flatnonzero(codes < 0)[0])
        what = "a missing value" if pd.isna(s.iloc[r]) else f"value {fmt_value(s.iloc[r])}"
        raise DataSpecError(f"{df_name}: column {col!r}, row {r + 1}: {what} names no split (split_values: {named})")
    for name, v in spec.split_values.items():
        if not (codes == SPLITS[name]).any():
            hint = "" if name == "train" else f"; leave {name} out of split_values to carve it from the train rows"
            raise DataSpecError(f"{df_name}: column {col!r}: no row has the value {fmt_value(v)} of "
                                f"split_values.{name}{hint}")
    if spec.carved:
        rows = np.flatnonzero(codes == SPLITS["train"])
        fr = [f if (i == 0 or name in spec.carved) else 0.0 for i, (name, f) in enumerate(zip(SPLITS, spec.split))]
        sub = make_split(len(rows), spec.split_seed, [f / sum(fr) for f in fr]).numpy()
        codes[rows] = sub
    return torch.from_numpy(codes.astype(np.int8))


def _weights(s: pd.Series, train: np.ndarray, df_name: str) -> torch.Tensor:
    """The weight column as float32 ``[N]``: finite, >= 0, no missing value, some train weight > 0."""
    where = f"{df_name}: column {s.name!r}"
    vals, bad = parse_numeric(s)
    for mask, what in ((bad, "non-number"), (np.isnan(vals) & ~bad, "missing value"), (np.isinf(vals), "infinite value"),
                       (vals < 0, "negative value")):
        if mask.any():
            r = int(np.flatnonzero(mask)[0])
            shown = "" if what == "missing value" else f" {fmt_value(s.iloc[r])}"
            raise DataSpecError(f"{where}, row {r + 1}: {what}{shown} in the weight column (weights are finite "
                                "numbers >= 0)")
    check_float32(vals, where, DataSpecError)
    if not (vals[train] > 0).any():
        raise DataSpecError(f"{where}: every train row has weight 0")
    return torch.from_numpy(vals.astype(np.float32))


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
    spec = with_options(read_spec(path), options)
    df = _read_table(spec.path)
    df_name, sf, columns = spec.path.name, spec.file, list(df.columns)
    features = _feature_columns(spec, columns)
    if spec.split_column is None:
        split, note = make_split(len(df), spec.split_seed, spec.split), f"split_seed={spec.split_seed}"
    else:
        split = _split_by_column(spec, df[spec.split_column], df_name)
        note = f"split_column={spec.split_column!r}" + (f", split_seed={spec.split_seed}" if spec.carved else "")
    train = split.numpy() == 0
    weights = None if spec.weight_column is None else _weights(df[spec.weight_column], train, df_name)
    pre = Preprocessing.fit(df, features, None if spec.categorical is None else list(spec.categorical), train,
                            where=df_name, split_note=note)
    x = pre.transform(df, where=df_name)  # [N, n_features]

    tasks, ys = [], []
    for i, t in enumerate(spec.targets):
        task, y = encode_target(df[t.column], t, train, df_name, i, note)
        tasks.append(task)
        ys.append(y)
    copy = copied_target(df, features, [(t.column, y) for t, y in zip(spec.targets, ys)])
    if copy is not None:
        fix = "remove it from features" if spec.features is not None else "list it in exclude"
        raise DataSpecError(f"{sf}: features: column {copy[0]!r} repeats target column {copy[1]!r} on every "
                            f"labelled row; a target must not be an input: {fix}")

    options_meta: dict[str, Any] = {"split_seed": spec.split_seed}
    if spec.split_column is None or spec.carved:
        options_meta["split"] = list(spec.split)
    if spec.split_column is not None:
        options_meta["split_column"] = spec.split_column
    if spec.search_rows is not None:
        options_meta["search_rows"] = spec.search_rows
    meta = {
        "source": str(spec.spec_path),
        "format": "csv" if spec.path.suffix.lower() == ".csv" else "parquet",
        "data_file": str(spec.path),
        "options": options_meta,
        "n_rows": len(df),
        "feature_columns": list(features),
        "categorical": sorted(pre.categories),
        "categories": pre.categories,
        "numeric_stats": pre.numeric_stats,
        "feature_names": pre.feature_names,
        "target_columns": [t.column for t in spec.targets],
        "exclude": list(spec.exclude),
        "split_column": spec.split_column,
        "weight_column": spec.weight_column,
        "feature_note": _feature_note(spec, features, columns),
    }
    return MultiTaskData(name=spec.name, tasks=tasks, x=torch.from_numpy(x),
                         y=torch.from_numpy(np.stack(ys, axis=1).astype(np.float32)), split=split,
                         split_seed=spec.split_seed, meta=meta, search_rows=spec.search_rows, weights=weights,
                         preprocessing=pre)

"""The feature encoding of a table as data: fitted on the train rows, applied to any rows.

:class:`Preprocessing` is what turns raw table columns into the float32 matrix a
network reads. It is fitted once, on the train split of the loaded table, and
kept as a frozen record of plain numbers and strings, so an exported model can
encode new raw rows exactly as its training rows were encoded (JSON, never
pickle: :meth:`Preprocessing.to_dict` / :meth:`Preprocessing.from_dict`).

The rules (one :class:`ColumnEncoding` per raw feature column, in order):

* **numeric** -- standardised with the train mean and std (std 0 -> 1); a
  missing value becomes 0 (the train mean after standardising).
* **categorical** -- one-hot over the categories seen in the train split,
  sorted as strings; an unseen or missing category encodes as all zeros. At
  most :data:`MAX_CATEGORIES` categories per column.
* **missing indicator** -- a 0/1 ``<column>__missing`` column follows the
  column's own output when the fitted table had any missing value there.
* When ``categorical`` is not given, a column is categorical when more than
  5% of its present values are not numbers; otherwise a non-number is an error.

Values are parsed as the loader always did: ``1``, ``1.0``, ``"1"`` and
``true`` are numbers; a category's name is its value as text, numbers written
plainly (``1`` for ``1.0``). scikit-learn's scalers are not used: their
variance differs from numpy's in the last bits, and the encoding must be equal
bit for bit to what a model was trained on.

Errors a user can fix raise :class:`~sharesearch.data.DataSpecError`, one line
naming the place (``where``), the column and, where it applies, the 1-based
row and the value.

Example
-------
>>> import numpy as np, pandas as pd
>>> df = pd.DataFrame({"age": [20.0, 40.0, None, 30.0], "country": ["FR", "DE", "FR", "US"]})
>>> pre = Preprocessing.fit(df, ["age", "country"], None, np.array([True, True, True, False]), where="t.csv")
>>> pre.feature_names
['age', 'age__missing', 'country=DE', 'country=FR']
>>> pre.transform(pd.DataFrame({"country": ["US", "DE"], "age": [40.0, None]})).tolist()
[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]
>>> Preprocessing.from_dict(pre.to_dict()) == pre
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sharesearch.data._checks import check_float32

__all__ = ["Preprocessing", "ColumnEncoding", "MAX_CATEGORIES", "FORMAT_VERSION",
           "parse_numeric", "category_strings", "label_key", "label_str", "fmt_value"]

#: the most one-hot columns one categorical feature may have (an identifier column would have one per row)
MAX_CATEGORIES = 1000
#: the version of :meth:`Preprocessing.to_dict`'s layout
FORMAT_VERSION = 1
_KINDS = ("numeric", "categorical")


def _error(message: str) -> Exception:
    """A :class:`DataSpecError` (imported here: the loader that defines it imports this module)."""
    from sharesearch.data import DataSpecError

    return DataSpecError(message)


# ----------------------------------------------------------------- values
def fmt_value(v: Any) -> str:
    """A value as it should read in a message: numbers plain, strings quoted.

    >>> fmt_value(3.0), fmt_value("abc"), fmt_value(True)
    ('3', "'abc'", 'true')
    """
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return repr(str(v))


def label_key(v: Any) -> tuple[str, Any]:
    """Normalise a value so that 1, 1.0, "1" and true/"true" compare as intended.

    >>> label_key("1"), label_key(True), label_key(" x ")
    (('n', 1.0), ('n', 1.0), ('s', 'x'))
    """
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


def label_str(k: tuple[str, Any]) -> str:
    """The text of a :func:`label_key`: integers without ``.0``.

    >>> label_str(("n", 2.0)), label_str(("n", 2.5)), label_str(("s", "x"))
    ('2', '2.5', 'x')
    """
    if k[0] == "n":
        f = k[1]
        return str(int(f)) if float(f).is_integer() and abs(f) < 1e15 else repr(f)
    return k[1]


def parse_numeric(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float values (NaN for missing) and a mask of present-but-not-a-number values.

    >>> vals, bad = parse_numeric(pd.Series(["1", "x", None, "2.5"], dtype=object))
    >>> vals.tolist()[::3], bad.tolist()
    ([1.0, 2.5], [False, True, False, False])
    """
    if pd.api.types.is_bool_dtype(s.dtype) or (
        pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype)
    ):
        vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return vals, np.zeros(len(s), dtype=bool)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    parsed = np.empty(len(uniques), dtype=np.float64)
    bad_u = np.zeros(len(uniques), dtype=bool)
    for j, u in enumerate(uniques):
        k = label_key(u)
        if k[0] == "n":
            parsed[j] = k[1]
        else:
            parsed[j], bad_u[j] = np.nan, True
    vals = np.where(codes >= 0, parsed[np.maximum(codes, 0)] if len(uniques) else np.nan, np.nan)
    bad = (codes >= 0) & (bad_u[np.maximum(codes, 0)] if len(uniques) else False)
    return vals.astype(np.float64), np.asarray(bad, dtype=bool)


def category_strings(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes into the unique category names, the names); code -1 = missing.

    >>> codes, names = category_strings(pd.Series([1.0, "b", 1, None], dtype=object))
    >>> codes.tolist(), names.tolist()
    ([0, 1, 0, -1], ['1', 'b'])
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    strs = [label_str(("n", float(u))) if isinstance(u, (int, float, np.integer, np.floating))
            and not isinstance(u, (bool, np.bool_)) else str(u) for u in uniques]
    merged: list[str] = []  # distinct raw values may print the same (1 and 1.0): merge them
    remap = np.empty(len(strs), dtype=np.int64)
    for j, st in enumerate(strs):
        if st not in merged:
            merged.append(st)
        remap[j] = merged.index(st)
    codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(strs) else -1, -1)
    return codes, np.array(merged, dtype=object)


def _numeric(s: pd.Series, column: str, where: str, hint: str) -> np.ndarray:
    """The column's float64 values (NaN = missing), refusing non-numbers, infinities and float32 overflow."""
    vals, bad = parse_numeric(s)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise _error(f"{where}: column {column!r}, row {r + 1}: non-number {fmt_value(s.iloc[r])} "
                     f"in a numeric feature{hint}")
    inf = np.isinf(vals)
    if inf.any():
        r = int(np.flatnonzero(inf)[0])
        raise _error(f"{where}: column {column!r}, row {r + 1}: infinite value {fmt_value(vals[r])} in a numeric feature")
    check_float32(vals, f"{where}: column {column!r}", _error)
    return vals


# ----------------------------------------------------------------- records
@dataclass(frozen=True)
class ColumnEncoding:
    """How one raw feature column becomes one or more float32 columns."""

    column: str                       # the raw column's name in the table
    kind: str                         # "numeric" or "categorical"
    mean: float = 0.0                 # numeric: the train mean (0 for categorical)
    std: float = 1.0                  # numeric: the train std, 1 when it was 0 (1 for categorical)
    categories: tuple[str, ...] = ()  # categorical: the sorted train categories, one output column each
    missing_indicator: bool = False   # whether a 0/1 "<column>__missing" output column follows

    @property
    def output_names(self) -> list[str]:
        """The names of this column's output columns, in order."""
        names = [self.column] if self.kind == "numeric" else [f"{self.column}={c}" for c in self.categories]
        return names + ([f"{self.column}__missing"] if self.missing_indicator else [])

    def encode(self, s: pd.Series, where: str) -> list[np.ndarray]:
        """The float32 output blocks ``[n, k]`` of the raw values ``s``."""
        n = len(s)
        if self.kind == "numeric":
            vals = _numeric(s, self.column, where, "")
            z = np.where(np.isnan(vals), 0.0, (vals - self.mean) / self.std).astype(np.float32)  # [n]
            blocks = [z[:, None]]
        else:
            codes, names = category_strings(s)
            pos = {c: j for j, c in enumerate(self.categories)}
            col_of_code = np.array([pos.get(str(u), -1) for u in names] + [-1], dtype=np.int64)
            cols = col_of_code[np.where(codes >= 0, codes, len(names))]  # [n]: output column or -1
            onehot = np.zeros((n, len(self.categories)), dtype=np.float32)  # [n, n_categories]
            hit = cols >= 0
            onehot[np.flatnonzero(hit), cols[hit]] = 1.0
            blocks = [onehot]
        if self.missing_indicator:
            blocks.append((~s.notna().to_numpy()).astype(np.float32)[:, None])  # [n, 1]
        return blocks


@dataclass(frozen=True)
class Preprocessing:
    """The fitted encoding of a table's raw feature columns (see the module docstring)."""

    columns: tuple[ColumnEncoding, ...]  # one per raw feature column, in the order of the output

    # ------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str] | None,
            train_mask: np.ndarray, *, where: str, split_note: str | None = None) -> Preprocessing:
        """Fit the encoding of ``features`` on the rows of ``frame`` where ``train_mask`` holds.

        Parameters
        ----------
        frame : DataFrame
            The whole table (every split): auto-detection and the missing
            indicators look at every row, statistics at the train rows only.
        features : list of str
            The raw feature columns, in output order.
        categorical : list of str or None
            The categorical columns; None detects them (module docstring).
        train_mask : bool array ``[len(frame)]``
        where : str
            The name errors give the table (its file name).
        split_note : str, optional
            Said in brackets after "the train split" (e.g. ``"split_seed=0"``).

        >>> df = pd.DataFrame({"x": ["a", "b", None]})
        >>> Preprocessing.fit(df, ["x"], ["x"], np.array([True, False, False]), where="t.csv").feature_names
        ['x=a', 'x__missing']
        """
        train = np.asarray(train_mask, dtype=bool)
        note = f" ({split_note})" if split_note else ""
        out = []
        for c in features:
            s = frame[c]
            vals, bad = parse_numeric(s)
            present = s.notna().to_numpy()
            if categorical is not None:
                is_cat = c in categorical
            else:
                n_bad, n_present = int(bad.sum()), int(present.sum())
                is_cat = n_bad > 0 and not (n_bad <= 0.05 * n_present)
            fields = cls._fit_categorical(s, c, train, where, note) if is_cat else \
                cls._fit_numeric(s, c, train, where, note, categorical is None)
            out.append(ColumnEncoding(column=c, missing_indicator=not present.all(), **fields))
        return cls(columns=tuple(out))

    @staticmethod
    def _fit_categorical(s: pd.Series, c: str, train: np.ndarray, where: str, note: str) -> dict:
        codes, names = category_strings(s)
        train_codes = np.unique(codes[train & (codes >= 0)])
        if len(train_codes) == 0:
            raise _error(f"{where}: column {c!r}: no values in the train split{note}")
        if len(train_codes) > MAX_CATEGORIES:
            raise _error(f"{where}: column {c!r}: {len(train_codes)} categories in the train split "
                         f"(more than {MAX_CATEGORIES}); leave this column out of `features`")
        return {"kind": "categorical", "categories": tuple(sorted(str(names[k]) for k in train_codes))}

    @staticmethod
    def _fit_numeric(s: pd.Series, c: str, train: np.ndarray, where: str, note: str, auto: bool) -> dict:
        hint = " (list the column in `categorical` if it is one)" if auto else ""
        vals = _numeric(s, c, where, hint)
        tr = vals[train & ~np.isnan(vals)]
        if tr.size == 0:
            raise _error(f"{where}: column {c!r}: no values in the train split{note}")
        mu, sd = float(tr.mean()), float(tr.std())
        return {"kind": "numeric", "mean": mu, "std": sd if sd > 0 and math.isfinite(sd) else 1.0}

    # ------------------------------------------------------------- applying
    def transform(self, frame: pd.DataFrame, *, where: str = "rows") -> np.ndarray:
        """The float32 matrix ``[len(frame), n_features]`` of ``frame``'s raw feature columns.

        Extra columns are ignored; a missing one, a non-number in a numeric
        column or an infinite value raises one line naming ``where``, the
        column and the row.

        >>> pre = Preprocessing((ColumnEncoding("a", "numeric", mean=1.0, std=2.0),))
        >>> pre.transform(pd.DataFrame({"a": [3, 1], "b": ["x", "y"]})).tolist()
        [[1.0], [0.0]]
        >>> try:
        ...     pre.transform(pd.DataFrame({"b": [1]}), where="new.csv")
        ... except ValueError as e:
        ...     print(e)
        new.csv: missing column 'a' (the model reads the columns: a)
        """
        have = set(map(str, frame.columns))
        for enc in self.columns:
            if enc.column not in have:
                raise _error(f"{where}: missing column {enc.column!r} (the model reads the columns: "
                             f"{', '.join(self.feature_columns)})")
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1).reset_index(drop=True)
        blocks = [b for enc in self.columns for b in enc.encode(frame[enc.column], where)]
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)  # [n, n_features]

    # ------------------------------------------------------------- views
    @property
    def feature_names(self) -> list[str]:
        """The output columns' names: ``col``, ``col=category``, ``col__missing``."""
        return [name for enc in self.columns for name in enc.output_names]

    @property
    def feature_columns(self) -> list[str]:
        """The raw columns read, in order."""
        return [enc.column for enc in self.columns]

    @property
    def n_features(self) -> int:
        """The width of :meth:`transform`'s output."""
        return len(self.feature_names)

    @property
    def categories(self) -> dict[str, list[str]]:
        """Categorical column -> its sorted train categories."""
        return {e.column: list(e.categories) for e in self.columns if e.kind == "categorical"}

    @property
    def numeric_stats(self) -> dict[str, list[float]]:
        """Numeric column -> ``[train mean, train std]``."""
        return {e.column: [e.mean, e.std] for e in self.columns if e.kind == "numeric"}

    # ------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (floats round-trip exactly through :mod:`json`)."""
        return {"version": FORMAT_VERSION,
                "columns": [{"column": e.column, "kind": e.kind, "mean": e.mean, "std": e.std,
                             "categories": list(e.categories), "missing_indicator": e.missing_indicator}
                            for e in self.columns]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        """Read :meth:`to_dict`'s data back, checking every field (one-line error naming it).

        >>> try:
        ...     Preprocessing.from_dict({"version": 1, "columns": [{"column": "a", "kind": "text"}]})
        ... except ValueError as e:
        ...     print(e)
        preprocessing: columns[0].kind: expected one of numeric, categorical, got 'text'
        """
        if not isinstance(d, Mapping) or d.get("version") != FORMAT_VERSION or not isinstance(d.get("columns"), list):
            raise _error(f"preprocessing: expected {{'version': {FORMAT_VERSION}, 'columns': [...]}}, "
                         f"got {str(d)[:80]!r}")
        return cls(columns=tuple(_column_from_dict(c, f"preprocessing: columns[{i}]")
                                 for i, c in enumerate(d["columns"])))


def _column_from_dict(c: Any, where: str) -> ColumnEncoding:
    """One :class:`ColumnEncoding` from JSON data, every field checked."""
    if not isinstance(c, Mapping):
        raise _error(f"{where}: expected a table of fields, got {c!r}")
    if not isinstance(c.get("column"), str) or not c["column"]:
        raise _error(f"{where}.column: expected a column name, got {c.get('column')!r}")
    if c.get("kind") not in _KINDS:
        raise _error(f"{where}.kind: expected one of {', '.join(_KINDS)}, got {c.get('kind')!r}")
    mean, std = c.get("mean", 0.0), c.get("std", 1.0)
    for key, v in (("mean", mean), ("std", std)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _error(f"{where}.{key}: expected a finite number, got {v!r}")
    if std <= 0:
        raise _error(f"{where}.std: expected a positive number, got {std!r}")
    cats = c.get("categories", [])
    if not isinstance(cats, list) or not all(isinstance(x, str) for x in cats) or len(set(cats)) != len(cats):
        raise _error(f"{where}.categories: expected a list of distinct strings, got {cats!r}")
    if not isinstance(c.get("missing_indicator", False), bool):
        raise _error(f"{where}.missing_indicator: expected true or false, got {c.get('missing_indicator')!r}")
    return ColumnEncoding(column=c["column"], kind=c["kind"], mean=float(mean), std=float(std),
                          categories=tuple(cats), missing_indicator=c.get("missing_indicator", False))

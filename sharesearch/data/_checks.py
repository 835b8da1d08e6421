"""Checks of a table's values and names that the loaders share (torch-free).

Each raises the caller's error type with one line naming the file, column,
row (1-based data row, header not counted) and value.

Example
-------
>>> import numpy as np
>>> check_float32(np.array([1.0, np.nan, 2e38]), "t.csv: column 'a'", ValueError)
>>> check_float32(np.array([1.0, 1e300]), "t.csv: column 'a'", ValueError)
Traceback (most recent call last):
...
ValueError: t.csv: column 'a', row 2: value 1e+300 overflows float32 (largest magnitude 3.4e+38); rescale the column
>>> data_name("my videos (2024)")
'my-videos-2024'
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

__all__ = ["FLOAT32_MAX", "check_float32", "csv_header_duplicate", "data_name", "is_data_name"]

#: the largest finite float32: tensors are float32, so a larger magnitude would become infinite
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,63}")


def check_float32(values: np.ndarray, where: str, error: type[Exception]) -> None:
    """Raise ``error`` naming the first row of ``values`` (float64, NaN = missing) beyond float32's range."""
    over = np.abs(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)) > FLOAT32_MAX
    if over.any():
        r = int(np.flatnonzero(over)[0])
        raise error(f"{where}, row {r + 1}: value {values[r]:.4g} overflows float32 (largest magnitude "
                    f"{FLOAT32_MAX:.2g}); rescale the column")


def csv_header_duplicate(path: Path, encoding: str = "utf-8") -> str | None:
    """The first column name that a CSV file's header repeats (pandas would rename it ``a.1``), or None.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b,a\\n1,2,3\\n")
    >>> csv_header_duplicate(p)
    'a'
    """
    try:
        with open(path, newline="", encoding=encoding) as fh:
            header = next(csv.reader(fh), [])
    except (UnicodeDecodeError, csv.Error):
        return None  # the table reader reports these with its own message
    seen: set[str] = set()
    for name in (h.strip() for h in header):
        if name in seen:
            return name
        seen.add(name)
    return None


def is_data_name(name: object) -> bool:
    """Whether ``name`` can name a data set: 1 to 64 of ``A-Z a-z 0-9 . _ - + =``, first a letter or digit.

    The default study name starts with the data's name, and a study name
    names a folder: no separators, no ``..``, no control characters.

    >>> is_data_name("videos-v2"), is_data_name("../x")
    (True, False)
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def data_name(stem: str) -> str:
    """A file stem made a data name: other characters become ``-`` (``"data"`` when nothing is left)."""
    cleaned = re.sub(r"[^A-Za-z0-9._+=-]+", "-", stem).strip("-._+=")[:64]
    return cleaned or "data"

"""Multi-fidelity rows: search on a seeded sample of the training rows, verify on all of them.

A census-sized table makes every trial pay for every row. The data option
``search_rows`` (a data-spec key, or ``load_data(..., search_rows=...)`` for a
built-in source) lets the search phase -- the control's tuning and the trials
-- train on a sample, while the verdict retrains its finalists, the control
and the A/A control on every row:

* an **int** ``>= MIN_SEARCH_ROWS``: at most this many training rows;
* a **float** in ``(0, 1]``: this fraction of the training rows (never fewer
  than ``MIN_SEARCH_ROWS``, or all of them when there are fewer).

Validation rows are sampled in the same proportion (at least one when there
are any); test rows are never in the sample. Rows are drawn uniformly without
replacement (no stratification) by a generator seeded with the data's
``split_seed``, so the same data and option give the same rows in every
process. The sample is a view of rows of the already-encoded tensors: feature
scalers, one-hot categories and regression target statistics are those of
the full training split, so metrics of both phases are comparable.
:class:`RowSample` records which rows each phase used.

Example
-------
>>> from sharesearch.data import load_data
>>> d = load_data("synthetic-mmoe", n=2000, seed=0, search_rows=0.25)
>>> view, rows = d.search_view()
>>> rows.train, rows.train_total, rows.val, rows.val_total
(350, 1400, 75, 300)
>>> rows.summary()
'search: 350 of 1,400 training rows; verdict: all rows'
>>> int((view.split == 2).sum())            # no test row in the search phase
0
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sharesearch.errors import SharesearchError

if TYPE_CHECKING:
    from sharesearch.data._base import MultiTaskData

__all__ = ["MIN_SEARCH_ROWS", "RowSample", "check_search_rows", "sample_rows"]

#: the smallest row count ``search_rows`` accepts (and the floor of a fraction's sample)
MIN_SEARCH_ROWS = 100
_SAMPLE_TAG = 0x5EA4C4  # mixed into the seed: the sample is independent of the split's permutation


def check_search_rows(value: Any, where: str, error: type[SharesearchError] = SharesearchError) -> int | float | None:
    """``value`` as a valid ``search_rows`` option, or one-line ``error`` naming ``where`` and the value.

    >>> check_search_rows(50000, "d.toml: search_rows"), check_search_rows(0.2, "x"), check_search_rows(None, "x")
    (50000, 0.2, None)
    >>> check_search_rows(1.5, "d.toml: search_rows")
    Traceback (most recent call last):
    ...
    sharesearch.errors.SharesearchError: d.toml: search_rows: expected a row count (an integer >= 100) or a fraction of the training rows (a number in (0, 1]), got 1.5
    """
    if value is None:
        return None
    ok_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= MIN_SEARCH_ROWS
    ok_frac = isinstance(value, (float, np.floating)) and 0.0 < float(value) <= 1.0
    if not (ok_int or ok_frac):
        raise error(f"{where}: expected a row count (an integer >= {MIN_SEARCH_ROWS}) or a fraction of the "
                    f"training rows (a number in (0, 1]), got {value!r}")
    return int(value) if ok_int else float(value)


@dataclass(frozen=True)
class RowSample:
    """Which rows each phase of a search used: the search phase's sample; the verdict uses every row.

    >>> r = RowSample(search_rows=50000, seed=0, train=50000, train_total=300000, val=10715,
    ...               val_total=64286, digest="ab12")
    >>> r.sampled, r.summary()
    (True, 'search: 50,000 of 300,000 training rows; verdict: all rows')
    >>> RowSample.from_dict(r.to_dict()) == r
    True
    """

    search_rows: int | float | None  # the option as given: row count, fraction, or None (every row)
    seed: int  # the data seed the rows were drawn with (MultiTaskData.split_seed)
    train: int  # training rows of the search phase (baseline tuning and trials)
    train_total: int  # training rows of the data: the verdict trains on all of them
    val: int  # validation rows of the search phase
    val_total: int  # validation rows of the data
    digest: str  # sha256 of the sampled row numbers (numbering of the full data); "" when every row

    @property
    def sampled(self) -> bool:
        """Whether the search phase used fewer rows than the data has."""
        return self.train < self.train_total or self.val < self.val_total

    def summary(self) -> str:
        """One line for a report: the rows of each phase."""
        if not self.sampled:
            return f"search and verdict: all {self.train_total:,} training rows"
        return f"search: {self.train:,} of {self.train_total:,} training rows; verdict: all rows"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``"summary"`` (the report's line, so a reader needs no import)."""
        return {**asdict(self), "summary": self.summary()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RowSample":
        """The record :meth:`to_dict` wrote (``"summary"`` is recomputed, not read)."""
        return cls(search_rows=d["search_rows"], seed=int(d["seed"]), train=int(d["train"]),
                   train_total=int(d["train_total"]), val=int(d["val"]), val_total=int(d["val_total"]),
                   digest=str(d["digest"]))

    def apply(self, data: "MultiTaskData", where: str) -> "MultiTaskData":
        """Draw this record's rows of ``data`` again; :class:`SharesearchError` if they differ from the record.

        Every worker of a study rebuilds the search phase's rows from the
        study's record, so all of them search on the same rows.
        """
        view, got = sample_rows(data, self.search_rows, seed=self.seed)
        if got != self:
            raise SharesearchError(f"{where}: the search phase's rows drawn here ({got.summary()}, digest "
                                   f"{got.digest[:12] or '-'}) differ from the study's record ({self.summary()}, "
                                   f"digest {self.digest[:12] or '-'})")
        return view


def _counts(search_rows: int | float, n_train: int, n_val: int) -> tuple[int, int]:
    """Training and validation rows the search phase draws (validation in the same proportion)."""
    if isinstance(search_rows, int):
        k = min(n_train, search_rows)
    else:
        k = min(n_train, max(MIN_SEARCH_ROWS, round(search_rows * n_train)))
    if k >= n_train:
        return n_train, n_val
    v = min(n_val, max(1, round(n_val * k / n_train))) if n_val else 0
    return k, v


def sample_rows(data: "MultiTaskData", search_rows: int | float | None,
                seed: int | None = None) -> tuple["MultiTaskData", RowSample]:
    """The search phase's view of ``data`` and the record of its rows (see the module docstring).

    Parameters
    ----------
    data : MultiTaskData
        The full data set (scalers already fitted on its training split).
    search_rows : int, float or None
        Row count (int >= ``MIN_SEARCH_ROWS``) or fraction (float in (0, 1]);
        None: every row.
    seed : int, optional
        Seed of the draw; default ``data.split_seed``.

    Returns
    -------
    (MultiTaskData, RowSample)
        The view holds the sampled train and validation rows in their original
        order (new split codes, no test row) and shares the tasks; ``data``
        itself when the sample would be every row.

    Examples
    --------
    >>> from sharesearch.data import load_data
    >>> d = load_data("synthetic-mmoe", n=1000, seed=0)
    >>> v, r = sample_rows(d, 200)
    >>> (v.n, r.train, r.val), sample_rows(d, None)[0] is d
    ((243, 200, 43), True)
    """
    search_rows = check_search_rows(search_rows, f"data {data.name!r}: search_rows")
    seed = int(data.split_seed if seed is None else seed)
    split = data.split.detach().cpu().numpy()
    train_rows, val_rows = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    n_train, n_val = len(train_rows), len(val_rows)
    k, v = (n_train, n_val) if search_rows is None else _counts(search_rows, n_train, n_val)
    if k == n_train and v == n_val:
        return data, RowSample(search_rows, seed, n_train, n_train, n_val, n_val, "")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SAMPLE_TAG]))
    rows = np.sort(np.concatenate([rng.choice(train_rows, size=k, replace=False),
                                   rng.choice(val_rows, size=v, replace=False)]))  # [k + v], original order
    digest = hashlib.sha256(rows.astype(np.int64).tobytes()).hexdigest()
    record = RowSample(search_rows, seed, k, n_train, v, n_val, digest)
    idx = torch.from_numpy(rows).to(data.device)  # [k + v]
    fields = data._fields()  # every field, so a new one (weights, preprocessing, ...) is never dropped
    view = type(data)._unchecked(**{**fields, "x": data.x[idx], "y": data.y[idx], "split": data.split[idx],
                                    "meta": {**data.meta, "row_sample": record.to_dict()}, "search_rows": None,
                                    "weights": None if data.weights is None else data.weights[idx]})
    try:
        view._validate(min_tasks=1)
    except SharesearchError as e:
        raise SharesearchError(f"data {data.name!r}: search_rows={search_rows!r}: the search sample of {k:,} "
                               f"training rows is too small: {e}") from None
    return view, record

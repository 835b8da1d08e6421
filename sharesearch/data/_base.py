"""The :class:`MultiTaskData` container and the seeded train/val/test split.

A :class:`MultiTaskData` holds a whole data set as tensors: inputs ``x``
``[N, *input_shape]`` (float32, finite), labels ``y`` ``[N, T]`` (float32,
``NaN`` = no label for that task; class labels stored as ``0.0 .. n-1``;
regression targets standardised with train-split statistics that live in the
:class:`~sharesearch.tasks.TaskSpec`), and ``split`` ``[N]`` (int8: 0 train,
1 val, 2 test). It is validated when built, so every consumer can rely on
those invariants.

Example
-------
>>> import torch
>>> from sharesearch.tasks import TaskSpec
>>> split = make_split(6, seed=0, fractions=(0.5, 0.25, 0.25))
>>> d = MultiTaskData(
...     name="toy",
...     tasks=[TaskSpec("a", "regression"), TaskSpec("b", "binary")],
...     x=torch.zeros(6, 3),
...     y=torch.tensor([[0.1, 1.0]] * 6),
...     split=split,
...     split_seed=0,
... )
>>> d.input_shape, d.task_names, d.backbone_hint
((3,), ['a', 'b'], 'mlp')
>>> d.indices("train").tolist() == torch.nonzero(split == 0).flatten().tolist()
True
>>> len(d.fingerprint())
64
"""

from __future__ import annotations

from sharesearch.errors import SharesearchError

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sharesearch.data._rows import RowSample, check_search_rows, sample_rows
from sharesearch.tasks import TaskSpec

if TYPE_CHECKING:  # written by helper D2; only the type is needed here
    from sharesearch.data._preprocess import Preprocessing

__all__ = ["MultiTaskData", "make_split", "SPLITS"]

#: split name -> code stored in ``MultiTaskData.split``
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


def make_split(n: int, seed: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> torch.Tensor:
    """Seeded random train/val/test assignment of ``n`` rows.

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int
        Seed of the permutation (numpy PCG64); the same ``(n, seed, fractions)``
        always gives the same split.
    fractions : sequence of 3 floats
        Train, val and test fractions; non-negative, summing to 1. Counts are
        ``round(f * n)`` for train and val, the rest is test; train gets at
        least one row when ``n >= 1``.

    Returns
    -------
    torch.Tensor
        int8 tensor ``[n]`` with 0 (train), 1 (val), 2 (test).

    Examples
    --------
    >>> s = make_split(20, seed=3)
    >>> [int((s == k).sum()) for k in range(3)]
    [14, 3, 3]
    >>> bool((make_split(20, seed=3) == s).all())
    True
    """
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise SharesearchError(f"split fractions must be 3 non-negative numbers summing to 1, got {list(fractions)!r}")
    n = int(n)
    if n < 0:
        raise SharesearchError(f"make_split: n must be >= 0, got {n}")
    n_train = int(round(fr[0] * n))
    n_val = int(round(fr[1] * n))
    if n >= 1 and n_train == 0:
        n_train = 1
    n_val = min(n_val, n - n_train)
    codes = np.full(n, 2, dtype=np.int8)
    perm = np.random.default_rng(int(seed)).permutation(n)
    codes[perm[:n_train]] = 0
    codes[perm[n_train : n_train + n_val]] = 1
    return torch.from_numpy(codes)


def _split_code(split: str) -> int:
    try:
        return SPLITS[split]
    except KeyError:
        raise SharesearchError(f"unknown split {split!r}; valid splits: {list(SPLITS)}") from None


@dataclass(eq=False)
class MultiTaskData:
    """A multi-task data set held as tensors (see the module docstring).

    Attributes
    ----------
    name : str
        Short name of the data set (e.g. ``"synthetic-mmoe"``).
    tasks : list of TaskSpec
        One spec per column of ``y``; names unique, at least two tasks.
    x : torch.Tensor
        float32 ``[N, d]`` (vectors) or ``[N, C, H, W]`` (images); finite.
    y : torch.Tensor
        float32 ``[N, T]``; ``NaN`` marks a missing label.
    split : torch.Tensor
        int8 ``[N]``: 0 train, 1 val, 2 test.
    split_seed : int
        Seed the split was drawn with (recorded for reproducibility).
    meta : dict
        JSON-serialisable provenance: source, options, column names, ...
    search_rows : int, float or None
        The search phase's rows (:mod:`sharesearch.data._rows`): at most this
        many training rows (int), this fraction of them (float), or all (None).
        Not part of the fingerprint: it says how the data is used, not what it is.
    weights : torch.Tensor or None
        float32 ``[N]`` per-row sample weights (finite, >= 0) from a spec's
        ``weight_column``; each task's loss is then the weighted mean over its
        labelled rows. None: every row weighs 1 (training is bit-identical to
        data without weights). Part of the fingerprint when present.
    preprocessing : Preprocessing or None
        The fitted encoding of raw feature columns into ``x`` (a spec file's
        columns), kept so an exported model can take raw rows; None for
        built-in sources.
    """

    name: str
    tasks: list[TaskSpec]
    x: torch.Tensor
    y: torch.Tensor
    split: torch.Tensor
    split_seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    search_rows: int | float | None = None
    weights: torch.Tensor | None = None
    preprocessing: "Preprocessing | None" = None

    def __post_init__(self) -> None:
        self.tasks = list(self.tasks)
        self._validate(min_tasks=2)
        self.search_rows = check_search_rows(self.search_rows, f"data {self.name!r}: search_rows")

    # ------------------------------------------------------------------ checks
    def _validate(self, min_tasks: int) -> None:
        where = f"data {self.name!r}"
        if not all(isinstance(t, TaskSpec) for t in self.tasks):
            raise TypeError(f"{where}: tasks must be TaskSpec objects")
        if len(self.tasks) < min_tasks:
            raise SharesearchError(f"{where}: need at least {min_tasks} tasks, got {len(self.tasks)}")
        names = [t.name for t in self.tasks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SharesearchError(f"{where}: duplicate task names {dup}")
        for attr in ("x", "y", "split"):
            if not isinstance(getattr(self, attr), torch.Tensor):
                raise TypeError(f"{where}: {attr} must be a torch.Tensor, got {type(getattr(self, attr)).__name__}")
        x, y, split = self.x, self.y, self.split
        if x.dtype != torch.float32:
            raise TypeError(f"{where}: x must be float32, got {x.dtype}")
        if x.dim() not in (2, 4):
            raise SharesearchError(f"{where}: x must be [N, d] or [N, C, H, W], got shape {tuple(x.shape)}")
        n = x.shape[0]
        if y.dtype != torch.float32 or tuple(y.shape) != (n, len(self.tasks)):
            raise SharesearchError(
                f"{where}: y must be float32 of shape {(n, len(self.tasks))}, got {y.dtype} {tuple(y.shape)}"
            )
        if split.dtype != torch.int8 or tuple(split.shape) != (n,):
            raise SharesearchError(f"{where}: split must be int8 of shape {(n,)}, got {split.dtype} {tuple(split.shape)}")
        self._validate_weights(n)
        if n and not bool(((split >= 0) & (split <= 2)).all()):
            raise SharesearchError(f"{where}: split codes must be 0 (train), 1 (val) or 2 (test)")
        if n and not bool(torch.isfinite(x).all()):
            bad = torch.nonzero(~torch.isfinite(x.reshape(n, -1)))[0].tolist()  # [row, column] of the first
            names = self.meta.get("feature_names") or []
            column = repr(names[bad[1]]) if len(names) == x.reshape(n, -1).shape[1] else str(bad[1])
            raise SharesearchError(f"{self._origin()}: x has a NaN or infinite value in row {bad[0]} (from 0), "
                                   f"column {column}; impute missing inputs and keep values within float32")
        train = split == 0
        for j, t in enumerate(self.tasks):
            col = y[:, j]
            lab = ~torch.isnan(col)
            if bool(torch.isinf(col).any()):
                row = int(torch.nonzero(torch.isinf(col))[0])
                raise SharesearchError(f"{self._origin()}: task {t.name!r} has an infinite label in row {row} (from 0); "
                                       "a label beyond float32's range (3.4e38) becomes infinite")
            if t.kind != "regression" and bool(lab.any()):
                v = col[lab]
                if bool(((v != v.round()) | (v < 0) | (v > t.n_classes - 1)).any()):
                    raise SharesearchError(
                        f"{where}: task {t.name!r} ({t.kind}) labels must be class indices 0..{t.n_classes - 1}"
                    )
            if not bool((lab & train).any()):
                raise SharesearchError(f"{where}: task {t.name!r} has no labelled row in the train split")

    def _validate_weights(self, n: int) -> None:
        w = self.weights
        if w is None:
            return
        where = f"data {self.name!r}"
        if not isinstance(w, torch.Tensor) or w.dtype != torch.float32 or tuple(w.shape) != (n,):
            got = f"{w.dtype} {tuple(w.shape)}" if isinstance(w, torch.Tensor) else type(w).__name__
            raise SharesearchError(f"{where}: weights must be a float32 tensor of shape {(n,)}, got {got}")
        bad = ~torch.isfinite(w) | (w < 0)  # [N]
        if n and bool(bad.any()):
            row = int(torch.nonzero(bad)[0])
            raise SharesearchError(f"{self._origin()}: weights: row {row} (from 0) has {float(w[row])!r}; "
                                   "sample weights must be finite and >= 0")

    def _origin(self) -> str:
        """``data 'name'`` and, when known, the file it came from: the start of an error message."""
        source = self.meta.get("data_file") or self.meta.get("source")
        return f"data {self.name!r}" + (f" ({source})" if source and source != self.name else "")

    @classmethod
    def _unchecked(cls, **fields: Any) -> "MultiTaskData":
        obj = cls.__new__(cls)
        for k, v in fields.items():
            setattr(obj, k, v)
        return obj

    def _fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tasks": list(self.tasks),
            "x": self.x,
            "y": self.y,
            "split": self.split,
            "split_seed": self.split_seed,
            "meta": self.meta,
            "search_rows": self.search_rows,
            "weights": self.weights,
            "preprocessing": self.preprocessing,
        }

    # -------------------------------------------------------------- properties
    @property
    def n(self) -> int:
        """Number of rows ``N``."""
        return int(self.x.shape[0])

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.x.device

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(16,)`` or ``(1, 28, 28)``."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def task_names(self) -> list[str]:
        """Task names in column order of ``y``."""
        return [t.name for t in self.tasks]

    @property
    def backbone_hint(self) -> str:
        """``"mlp"`` for vector inputs, ``"cnn"`` for ``[C, H, W]`` inputs."""
        return "mlp" if len(self.input_shape) == 1 else "cnn"

    # ----------------------------------------------------------------- methods
    def indices(self, split: str) -> torch.Tensor:
        """Row indices (LongTensor on the data's device) of ``"train"``, ``"val"`` or ``"test"``.

        >>> from sharesearch.data import load_data
        >>> d = load_data("synthetic-mmoe", n=100)
        >>> sum(len(d.indices(s)) for s in ("train", "val", "test"))
        100
        """
        return torch.nonzero(self.split == _split_code(split)).flatten()

    def labelled_counts(self, split: str = "train") -> dict[str, int]:
        """Number of labelled rows per task in ``split``.

        >>> from sharesearch.data import load_data
        >>> load_data("synthetic-mmoe", n=100).labelled_counts("train")["t0"]
        70
        """
        rows = self.split == _split_code(split)
        lab = ~torch.isnan(self.y[rows])
        return {t.name: int(c) for t, c in zip(self.tasks, lab.sum(dim=0).tolist())}

    def subset_tasks(self, names: Sequence[str]) -> "MultiTaskData":
        """A view with only the tasks ``names`` (in that order); x and split are shared.

        One task is allowed (single-task baselines); an unknown name is an error.

        >>> from sharesearch.data import load_data
        >>> d = load_data("synthetic-mmoe", n=100).subset_tasks(["t3", "t0"])
        >>> d.task_names, tuple(d.y.shape)
        (['t3', 't0'], (100, 2))
        """
        names = list(names)
        cols = []
        for nm in names:
            if nm not in self.task_names:
                raise SharesearchError(f"data {self.name!r}: unknown task {nm!r}; tasks: {self.task_names}")
            cols.append(self.task_names.index(nm))
        f = self._fields()
        f["tasks"] = [self.tasks[c] for c in cols]
        f["y"] = self.y[:, cols].contiguous()
        f["meta"] = {**self.meta, "subset_of": self.task_names}
        out = MultiTaskData._unchecked(**f)
        out._validate(min_tasks=1)
        return out

    def sample_rows(self, search_rows: int | float | None) -> "tuple[MultiTaskData, RowSample]":
        """A seeded sample of the train/val rows (no test row) and its :class:`RowSample` record.

        ``search_rows``: at most this many training rows (int >= 100) or this
        fraction of them (float in (0, 1]); validation rows in proportion.
        The rows keep the full data's encoding (scalers fitted on the whole
        training split); ``self`` itself when the sample is every row.

        >>> from sharesearch.data import load_data
        >>> view, rows = load_data("synthetic-mmoe", n=1000).sample_rows(0.5)
        >>> view.labelled_counts("train")["t0"], rows.train_total, view.indices("test").numel()
        (350, 700, 0)
        """
        return sample_rows(self, search_rows)

    def search_view(self) -> "tuple[MultiTaskData, RowSample]":
        """The rows the search phase uses, by this data's own ``search_rows`` (see :meth:`sample_rows`).

        >>> from sharesearch.data import load_data
        >>> d = load_data("synthetic-mmoe", n=1000)
        >>> d.search_view()[0] is d, d.search_view()[1].summary()
        (True, 'search and verdict: all 700 training rows')
        """
        return sample_rows(self, self.search_rows)

    def to(self, device: "torch.device | str") -> "MultiTaskData":
        """The same data with every tensor on ``device`` (a new container).

        >>> from sharesearch.data import load_data
        >>> load_data("synthetic-mmoe", n=50).to("cpu").x.device.type
        'cpu'
        """
        f = self._fields()
        for k in ("x", "y", "split"):
            f[k] = f[k].to(device)
        if self.weights is not None:
            f["weights"] = self.weights.to(device)
        return MultiTaskData._unchecked(**f)

    def fingerprint(self) -> str:
        """sha256 hex digest over x, y, split (bytes, shapes, dtypes), the task specs and any weights.

        Stable across runs, processes and devices; changes when any value,
        label, split assignment, task spec or sample weight changes. ``name``,
        ``meta`` and ``preprocessing`` are not part of it; data without
        weights has the digest it had before weights existed.

        >>> from sharesearch.data import load_data
        >>> a, b = load_data("synthetic-mmoe", n=64), load_data("synthetic-mmoe", n=64)
        >>> a.fingerprint() == b.fingerprint()
        True
        """
        h = hashlib.sha256(b"sharesearch.MultiTaskData/v1\0")
        specs = json.dumps([t.to_dict() for t in self.tasks], sort_keys=True, separators=(",", ":"))
        h.update(specs.encode())
        y = self.y.detach().cpu()
        y = torch.where(torch.isnan(y), torch.full_like(y, float("nan")), y)  # one NaN bit pattern
        parts = [("x", self.x.detach().cpu()), ("y", y), ("split", self.split.detach().cpu())]
        if self.weights is not None:
            parts.append(("weights", self.weights.detach().cpu()))
        for name, t in parts:
            t = t.contiguous()
            h.update(f"\0{name}:{t.dtype}:{tuple(t.shape)}\0".encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        counts = [int((self.split == k).sum()) for k in range(3)]
        return (
            f"MultiTaskData(name={self.name!r}, n={self.n}, input_shape={self.input_shape}, "
            f"tasks={self.task_names}, split(train/val/test)={counts}, split_seed={self.split_seed})"
        )

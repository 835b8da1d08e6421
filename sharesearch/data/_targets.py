"""Target columns: labels encoded for training, and the refusal of a feature that copies one.

:func:`encode_target` turns one ``[[targets]]`` column into a float64 label
vector (``NaN`` = no label) and its :class:`~sharesearch.tasks.TaskSpec`
(rules in :mod:`sharesearch.data.tabular`). :func:`copied_target` finds a
feature column that repeats a target -- the silent "another target became a
feature" leak -- so the loader can refuse it.

Example
-------
>>> import numpy as np, pandas as pd
>>> from sharesearch.data._spec import TargetEntry
>>> t = TargetEntry("y", "binary", "y", None, 1.0, ())
>>> spec, y = encode_target(pd.Series(["no", "yes", None, "yes"]), t, np.ones(4, bool), "d.csv", 0, "split_seed=0")
>>> spec.classes, y.tolist()[:2], bool(np.isnan(y[2]))
(('no', 'yes'), [0.0, 1.0], True)
>>> df = pd.DataFrame({"was_clicked": ["no", "yes", "x", "yes"], "clicked": ["no", "yes", None, "yes"]})
>>> copied_target(df, ["was_clicked"], [("clicked", y)])
('was_clicked', 'clicked')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sharesearch.data._checks import check_float32
from sharesearch.data._preprocess import fmt_value, label_key, label_str, parse_numeric
from sharesearch.data._spec import DataSpecError, TargetEntry
from sharesearch.tasks import TaskSpec

__all__ = ["encode_target", "copied_target"]


def _first_row(codes: np.ndarray, code_set: set[int]) -> int:
    return int(np.flatnonzero(np.isin(codes, list(code_set)))[0])


def encode_target(s: pd.Series, t: TargetEntry, train: np.ndarray, df_name: str, i: int,
                  split_note: str) -> tuple[TaskSpec, np.ndarray]:
    """The task's spec and its labels ``[N]`` (float64; class index, standardised value or NaN).

    ``train`` is the train-row mask ``[N]``; ``i`` the entry's index in
    ``targets`` and ``split_note`` how the split was made, for messages.
    """
    where = f"{df_name}: column {t.column!r}"
    if not s.notna().any():
        raise DataSpecError(f"{where}: target targets[{i}] has no labelled rows")
    no_train = f"{where}: target targets[{i}] has no labelled rows in the train split ({split_note})"
    common = {"metrics": t.metrics, "weight": t.weight}
    if t.kind == "regression":
        vals, bad = parse_numeric(s)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataSpecError(f"{where}, row {r + 1}: non-number {fmt_value(s.iloc[r])} in a regression target")
        if np.isinf(vals).any():
            r = int(np.flatnonzero(np.isinf(vals))[0])
            raise DataSpecError(f"{where}, row {r + 1}: infinite value in a regression target")
        check_float32(vals, where, DataSpecError)
        tr = vals[train & ~np.isnan(vals)]
        if tr.size == 0:
            raise DataSpecError(no_train)
        mu, sd = float(tr.mean()), float(tr.std())
        sd = sd if sd > 0 and math.isfinite(sd) else 1.0
        return TaskSpec(t.name, "regression", target_mean=mu, target_std=sd, **common), (vals - mu) / sd

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    ukeys = [label_key(u) for u in uniques]
    class_keys, class_strs = _classes(s, t, codes, uniques, ukeys, where)
    index = {k: j for j, k in enumerate(class_keys)}
    lut = np.array([index[k] for k in ukeys] + [np.nan], dtype=np.float64)
    y = lut[np.where(codes >= 0, codes, len(ukeys))]  # [N]
    if not (~np.isnan(y) & train).any():
        raise DataSpecError(no_train)
    return TaskSpec(t.name, t.kind, n_classes=len(class_keys), classes=class_strs, **common), y


def _classes(s: pd.Series, t: TargetEntry, codes: np.ndarray, uniques: Any, ukeys: list,
             where: str) -> tuple[list, tuple[str, ...]]:
    """The class keys in label order and their names, from the declared classes or the data."""
    if t.classes is not None:
        class_keys = [label_key(c) for c in t.classes]
        unknown = {j for j, k in enumerate(ukeys) if k not in set(class_keys)}
        if unknown:
            r = _first_row(codes, unknown)
            raise DataSpecError(f"{where}, row {r + 1}: label {fmt_value(s.iloc[r])} is not one of the declared "
                                f"classes {list(t.classes)!r}")
        return class_keys, tuple(label_str(k) for k in class_keys)
    numeric = all(q[0] == "n" for q in ukeys)
    distinct = sorted(set(ukeys), key=lambda k: (k[0], k[1]) if numeric else (0, label_str(k)))
    if t.kind == "binary":
        if set(distinct) <= {("n", 0.0), ("n", 1.0)}:
            distinct = [("n", 0.0), ("n", 1.0)]
        elif len(distinct) > 2:
            in_order = list(dict.fromkeys(ukeys))  # factorize keeps the order of appearance
            r = _first_row(codes, {j for j, k in enumerate(ukeys) if k == in_order[2]})
            seen = ", ".join(fmt_value(label_str(k)) for k in in_order[:2])
            raise DataSpecError(f"{where}, row {r + 1}: third distinct value {fmt_value(s.iloc[r])} in a binary "
                                f"target (also seen {seen}); use kind = \"multiclass\" or declare classes")
        elif len(distinct) < 2:
            raise DataSpecError(f"{where}: binary target has the single value {fmt_value(label_str(distinct[0]))}; "
                                "need 0/1, true/false or two distinct values (or declare classes = [negative, positive])")
        if all(str(v).strip().lower() in ("true", "false") or isinstance(v, (bool, np.bool_)) for v in uniques):
            return distinct, ("false", "true")
    elif len(distinct) < 2:
        raise DataSpecError(f"{where}: multiclass target has a single class {fmt_value(label_str(distinct[0]))}; "
                            "need at least two")
    return distinct, tuple(label_str(k) for k in distinct)


def _key_texts(s: pd.Series) -> np.ndarray:
    """Each value's normalised key as text (``None`` where missing), so 1, 1.0, "1" and true compare equal."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    texts = np.array([repr(label_key(u)) for u in uniques] + [None], dtype=object)
    return texts[np.where(codes >= 0, codes, len(uniques))]  # [N]


def copied_target(frame: pd.DataFrame, features: Sequence[str],
                  targets: Sequence[tuple[str, np.ndarray]]) -> tuple[str, str] | None:
    """The first ``(feature, target column)`` where the feature repeats the target, or None.

    ``targets`` holds each target column with its encoded labels ``y``
    (float64 ``[N]``, NaN = no label). A feature repeats a target when, on
    every row where the target is labelled, it is equal value for value
    (``1``, ``1.0``, ``"1"`` and ``true`` are one value) or equal to the
    encoded label ``y`` (e.g. a 0/1 column of a yes/no target); a target with
    a single value on its labelled rows is never matched. A column that
    merely predicts the target (a relabelling) is not refused: it may be a
    genuine feature.

    >>> df = pd.DataFrame({"a": [0, 1, 5], "b": ["b", "a", "x"], "t": ["a", "b", None]})
    >>> y = np.array([0.0, 1.0, np.nan])
    >>> copied_target(df, ["b", "a"], [("t", y)]), copied_target(df, ["b"], [("t", y)])
    (('a', 't'), None)
    """
    keys = [_key_texts(frame[c]) for c, _ in targets]  # [N] per target
    labs = [frame[c].notna().to_numpy() for c, _ in targets]  # [N] per target
    # a target with one value on its labelled rows carries no information to leak (and tiny tables match by chance)
    labs = [lab if len(set(k[lab])) >= 2 else np.zeros_like(lab) for lab, k in zip(labs, keys)]
    for f in features:
        present = frame[f].notna().to_numpy()  # [N]
        fkeys, (vals, bad) = _key_texts(frame[f]), parse_numeric(frame[f])
        for (c, y), lab, tkeys in zip(targets, labs, keys):
            if not lab.any() or not present[lab].all():
                continue
            if bool((fkeys[lab] == tkeys[lab]).all()):
                return f, c
            if not bad[lab].any() and bool(np.array_equal(vals[lab], y[lab])):
                return f, c
    return None

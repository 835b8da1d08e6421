"""The relative change Δ_t of one task and Δm, their priority-weighted mean.

One formula, :func:`relative_change` (vectorised); :func:`relative_delta`
is its checked scalar form and every other place in the package calls one of
the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import SharesearchError

__all__ = ["DIRECTIONS", "direction_sign", "relative_change", "relative_delta", "delta_m", "task_weights", "lookup"]

#: Valid metric directions (the strings :func:`sharesearch.tasks.metric_direction` returns).
DIRECTIONS = ("maximize", "minimize")


def direction_sign(direction: str, task: str | None = None) -> float:
    """+1 for ``"maximize"``, -1 for ``"minimize"``; a :class:`SharesearchError` naming the task otherwise.

    >>> direction_sign("minimize")
    -1.0
    """
    if direction == "maximize":
        return 1.0
    if direction == "minimize":
        return -1.0
    where = f"task {task!r}: " if task is not None else ""
    raise SharesearchError(f"{where}direction must be one of {list(DIRECTIONS)}, got {direction!r}")


def lookup(mapping: Mapping[str, Any], task: str, what: str) -> Any:
    """``mapping[task]``, or a KeyError that names the task and the mapping."""
    try:
        return mapping[task]
    except KeyError:
        raise KeyError(f"task {task!r} missing from {what}") from None


def task_weights(directions: Mapping[str, str], weights: Mapping[str, float] | None) -> np.ndarray:
    """The positive priority weight of each task of ``directions`` (ones when ``weights`` is None).

    >>> task_weights({"a": "maximize", "b": "minimize"}, {"a": 3, "b": 1}).tolist()
    [3.0, 1.0]
    """
    tasks = list(directions)
    if not tasks:
        raise SharesearchError("directions is empty: need at least one task")
    if weights is None:
        return np.ones(len(tasks))
    w = np.empty(len(tasks))
    for i, t in enumerate(tasks):
        wi = lookup(weights, t, "weights")
        if not (isinstance(wi, (int, float, np.integer, np.floating)) and math.isfinite(wi) and wi > 0):
            raise SharesearchError(f"task {t!r}: weight must be a positive finite number, got {wi!r}")
        w[i] = float(wi)
    return w


def relative_change(sign: Any, multi: Any, single: Any) -> np.ndarray:
    """``sign * (multi - single) / |single|`` elementwise, without checks (the one formula).

    ``sign`` is +1 (maximize) or -1 (minimize); arrays broadcast. A zero
    ``single`` gives ±inf or NaN, as numpy divides.

    >>> relative_change(-1.0, np.array([0.9, 1.1]), 1.0).round(6).tolist()
    [0.1, -0.1]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(sign, dtype=float) * (np.asarray(multi, dtype=float) - single) / np.abs(single)


def relative_delta(multi: float, single: float, direction: str) -> float:
    """Relative change of a multi-task metric against its single-task baseline.

    ``(-1)^[lower is better] * (multi - single) / |single|`` (Maninis et al.,
    CVPR 2019). Positive means the multi-task model is better than the
    independent one, whatever the metric's direction. A fraction, not a
    percentage.

    Parameters
    ----------
    multi : float
        The metric of the multi-task (shared) model.
    single : float
        The metric of the independent single-task baseline; must be non-zero.
    direction : {"maximize", "minimize"}
        The metric's direction (:func:`sharesearch.tasks.metric_direction`).

    Returns
    -------
    float
        The signed relative change.

    Raises
    ------
    ValueError
        If ``single`` is 0 (the relative change is undefined), a value is not
        finite, or ``direction`` is unknown (a :class:`SharesearchError`).

    Examples
    --------
    >>> relative_delta(0.75, 0.5, "maximize")   # accuracy up 50 %
    0.5
    >>> relative_delta(0.75, 1.0, "minimize")   # RMSE down 25 %: a gain
    0.25
    >>> round(relative_delta(0.9, 0.8, "minimize"), 6)   # error up 12.5 %: a loss
    -0.125
    """
    s = direction_sign(direction)
    multi, single = float(multi), float(single)
    if not (math.isfinite(multi) and math.isfinite(single)):
        raise SharesearchError(f"relative_delta needs finite values, got multi={multi!r}, single={single!r}")
    if single == 0.0:
        raise SharesearchError(
            "relative_delta is undefined for single == 0 (the baseline metric is the denominator); "
            f"got multi={multi!r}, single={single!r}"
        )
    return float(relative_change(s, multi, single))


def delta_m(
    multi: Mapping[str, float],
    single: Mapping[str, float],
    directions: Mapping[str, str],
    weights: Mapping[str, float] | None = None,
) -> float:
    """Δm: the (priority-weighted) mean over tasks of :func:`relative_delta`.

    ``Δm = sum_t w_t Δ_t / sum_t w_t``, with ``w_t = 1`` when ``weights`` is
    None. The tasks are the keys of ``directions``; extra keys in the other
    mappings are ignored. Used as the search objective on validation
    (maximise).

    Parameters
    ----------
    multi, single : Mapping[str, float]
        Per-task metric of the multi-task model and of the single-task baselines.
    directions : Mapping[str, str]
        Per-task direction, ``"maximize"`` or ``"minimize"``.
    weights : Mapping[str, float], optional
        Positive per-task priority weights (``TaskSpec.weight``).

    Returns
    -------
    float

    Raises
    ------
    KeyError
        If a task of ``directions`` is missing from another mapping (the
        message names it).
    ValueError
        For an empty task set, a zero baseline, or a non-positive weight.

    Examples
    --------
    >>> d = {"a": "maximize", "b": "minimize"}
    >>> round(delta_m({"a": 0.9, "b": 1.1}, {"a": 0.8, "b": 1.0}, d), 4)   # (0.125 - 0.1) / 2
    0.0125
    >>> round(delta_m({"a": 0.9, "b": 1.1}, {"a": 0.8, "b": 1.0}, d, {"a": 3, "b": 1}), 6)   # (3 * 0.125 - 0.1) / 4
    0.06875
    """
    w = task_weights(directions, weights)
    deltas = np.empty(len(w))
    for i, (t, direction) in enumerate(directions.items()):
        direction_sign(direction, t)
        m, s = lookup(multi, t, "multi"), lookup(single, t, "single")
        try:
            deltas[i] = relative_delta(m, s, direction)
        except ValueError as e:
            raise SharesearchError(f"task {t!r}: {e}") from None
    return float(np.sum(w * deltas) / np.sum(w))

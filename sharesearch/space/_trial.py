"""Trials without Optuna: a parameter-dict trial and the field picker.

Sampling code never calls a trial directly: it asks a :class:`Picker` for
each field's value. A picker either suggests on a trial (an Optuna trial or
a :class:`ParamsTrial`) or, with no trial, picks the value a reference
architecture prefers and records the parameters that give it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..names import ANY, NotExpressible, Pref
from ._fields import Field, SpaceError

__all__ = ["ParamsTrial", "Picker", "default", "task_names"]


class ParamsTrial:
    """A duck-typed trial answering from a parameter dict (no Optuna needed).

    Use it to rebuild a trial's candidate from its stored ``params``; a
    missing parameter raises :class:`SpaceError`.

    >>> ParamsTrial({"lr": 0.01}).suggest_float("lr", 1e-4, 1e-1, log=True)
    0.01
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)
        self.used: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self.params:
            raise SpaceError(f"parameter {name!r} is missing; given: {sorted(self.params)}")
        self.used[name] = self.params[name]
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._get(name))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._get(name))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get(name)


class Picker:
    """Chooses field values: from a trial, or (for reference params) by preference."""

    def __init__(self, trial: Any = None, prefs: Mapping[str, Pref] | None = None) -> None:
        self.trial = trial  # suggest on it; None: pick by ``prefs``
        self.prefs = dict(prefs or {})  # dotted field key -> wanted value (absent: the default)
        self.params: dict[str, Any] = {}  # parameters of the picked values (without a trial)

    def __call__(self, f: Field, param: str | None = None) -> Any:
        """The value of field ``f`` (under parameter ``param``, default the field's own).

        Raises :class:`NotExpressible` when a required preference is out of the field's reach.
        """
        if self.trial is not None:
            return f.sample(self.trial, param)
        pref = self.prefs.get(f.key, ANY)
        value = pref.value
        if value is None or not f.can_be(value):
            if pref.required and value is not None:
                raise NotExpressible(f"{f.key} cannot be {value!r}")
            value = f.default
        self.params.update(f.params_for(value, param))
        return value


def default(f: Field) -> Any:
    """The field's default (a picker that never samples)."""
    return f.default


def task_names(tasks: Mapping[str, int] | Sequence[Any]) -> list[str]:
    """Task names of ``{name: out_dim}`` or a sequence of TaskSpecs (or names), in order."""
    if isinstance(tasks, Mapping):
        return [str(k) for k in tasks]
    return [t if isinstance(t, str) else t.name for t in tasks]

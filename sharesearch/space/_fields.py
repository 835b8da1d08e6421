"""One field of a search space: its schema entry, its value semantics, its parsing.

A :class:`Spec` says what a field may hold (type, bounds, valid names); a
:class:`Parser` turns the raw value of a file into a :class:`Field` -- fixed,
choice list or range -- and every problem into one :class:`SpaceError` line
``<file>: <dotted.key>: <problem>``. A :class:`Field` knows its default, its
extremes, whether it can take a value, which parameters give that value, and
how to suggest itself on a trial.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import SharesearchError

__all__ = ["SpaceError", "Spec", "Field", "Parser", "fmt"]


class SpaceError(SharesearchError):
    """A bad search space; one line ``<file>: <dotted.key>: <problem>``."""

    __module__ = "sharesearch.space"  # tracebacks name it where users import it


@dataclass(frozen=True)
class Spec:
    """Schema of one field: its type and allowed values."""

    kind: str  # "int" | "float" | "bool" | "str"
    param: str  # Optuna parameter name
    names: Sequence[str] | Callable[[], Sequence[str]] = ()  # valid strings (kind "str"), or a live registry
    minimum: float | None = None  # smallest allowed value (None: unbounded)
    min_open: bool = False  # minimum is exclusive
    maximum: float | None = None  # largest allowed value (None: unbounded)
    max_open: bool = False  # maximum is exclusive
    odd: bool = False  # only odd integers (kernel sizes)
    ranges: bool = True  # a {low, high} range is allowed
    choices: bool = True  # a choice list is allowed
    off_param: str | None = None  # off-able: this bool param switches it off (value 0)
    why: str = ""  # hint appended to a minimum violation

    @property
    def valid_names(self) -> tuple[str, ...]:
        """The valid strings now (a registry is read at every parse)."""
        return tuple(self.names() if callable(self.names) else self.names)


@dataclass(frozen=True)
class Field:
    """A parsed field: fixed value, choice list or range (see :mod:`sharesearch.space`).

    >>> f = Field("train.epochs", "epochs", "int", mode="range", low=8, high=12)
    >>> f.default, f.can_be(13), f.params_for(9)
    (10, False, {'epochs': 9})
    """

    key: str  # dotted key, for messages
    param: str  # Optuna parameter name
    kind: str  # "int" | "float" | "bool" | "str"
    mode: str = "fixed"  # "fixed" | "choice" | "range"
    value: Any = None  # fixed value
    choices: tuple = ()  # the values of a choice list
    low: Any = None  # lower end of a range
    high: Any = None  # upper end of a range (inclusive)
    step: Any = None  # grid step of a range (None: continuous, or 1 for integers)
    log: bool = False  # sample a range in log space
    default_value: Any = None  # explicit default (None: first choice / midpoint)
    off_param: str | None = None  # set when the field may be switched off

    # ------------------------------------------------------------ values
    @property
    def on_default(self) -> Any:
        """Default value when the field is on (ignores ``default = 0`` of off-able fields)."""
        if self.mode == "fixed":
            return self.value
        dv = self.default_value
        if dv is not None and not (self.off_param and dv == 0):
            return dv
        if self.mode == "choice":
            return self.choices[0]
        if self.log:
            mid = math.sqrt(self.low * self.high)
        else:
            mid = (self.low + self.high) / 2
        if self.step:
            mid = self.low + math.floor((mid - self.low) / self.step + 0.5) * self.step
        if self.kind == "int":
            return min(self.high, int(math.floor(mid + 0.5)))
        return float(min(self.high, mid))

    @property
    def default(self) -> Any:
        """The default value (0 for an off-able field whose ``default`` is 0)."""
        if self.off_param and self.default_value == 0 and self.mode != "fixed":
            return self.zero
        return self.on_default

    @property
    def zero(self) -> Any:
        """The value of the field switched off (0 of its kind)."""
        return 0 if self.kind == "int" else 0.0

    @property
    def max(self) -> Any:
        """Largest value the field can take."""
        if self.mode == "fixed":
            return self.value
        if self.mode == "choice":
            return max(self.choices)
        return self.high

    @property
    def min(self) -> Any:
        """Smallest value the field can take (0 when it can be switched off)."""
        if self.off_param:
            return self.zero
        if self.mode == "fixed":
            return self.value
        if self.mode == "choice":
            return min(self.choices)
        return self.low

    def can_be(self, value: Any) -> bool:
        """Whether some parameter values make this field equal ``value``."""
        if self.mode == "fixed":
            return _same(value, self.value)
        if self.off_param and value == 0 and not isinstance(value, bool):
            return True
        if self.mode == "choice":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.kind == "int":
            return value == int(value) and (int(value) - self.low) % (self.step or 1) == 0
        return True

    def params_for(self, value: Any, param: str | None = None) -> dict[str, Any]:
        """Parameters that make this field equal ``value`` (raises :class:`SpaceError` if none do)."""
        if not self.can_be(value):
            raise SpaceError(f"{self.key}: the space cannot take the value {value!r}")
        name = param or self.param
        if self.mode == "fixed":
            return {}
        if self.off_param:
            if value == 0:
                return {self.off_param: False}
            return {self.off_param: True, name: self._cast(value)}
        return {name: self._cast(value)}

    def _cast(self, value: Any) -> Any:
        """``value`` as the field's kind (an int field's 3.0 is 3)."""
        if self.kind == "int":
            return int(value)
        if self.kind == "float":
            return float(value)
        return value

    def sample(self, trial: Any, param: str | None = None) -> Any:
        """Suggest this field's value on ``trial`` (fixed fields suggest nothing)."""
        name = param or self.param
        if self.mode == "fixed":
            return self.value
        if self.off_param and not trial.suggest_categorical(self.off_param, [False, True]):
            return self.zero
        if self.mode == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return int(trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log))
        kw: dict[str, Any] = {"log": self.log}
        if self.step:
            kw["step"] = self.step
        return float(trial.suggest_float(name, self.low, self.high, **kw))


def _same(a: Any, b: Any) -> bool:
    """Equal, and a bool only equals a bool."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def fmt(v: Any) -> str:
    """A value as a message shows it (``'x'``, ``true``, ``3``)."""
    return repr(v) if isinstance(v, str) else json.dumps(v) if isinstance(v, bool) else str(v)


def _kind_word(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "a boolean", "str": "a string"}[kind]


class Parser:
    """Validates raw data section by section; every error names source and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, key: str, msg: str) -> SpaceError:
        """The error ``<source>: <key>: <msg>``."""
        return SpaceError(f"{self.source}: {key}: {msg}")

    def table(self, raw: Any, key: str, allowed: Sequence[str]) -> dict[str, Any]:
        """``raw`` as a dict whose keys are all in ``allowed`` (None is an empty table)."""
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.err(key, f"expected a table, got {fmt(raw)}")
        for k in raw:
            if not isinstance(k, str) or k not in allowed:
                raise self.err(f"{key}.{k}" if key else str(k), f"unknown key; valid keys: {', '.join(allowed)}")
        return dict(raw)

    def scalar(self, v: Any, key: str, spec: Spec, *, zero_is_off: bool = False) -> Any:
        """Check one value's type and bounds; returns it cast (ints stay int, floats float)."""
        k = spec.kind
        if k == "bool":
            if not isinstance(v, bool):
                raise self.err(key, f"expected {_kind_word(k)}, got {fmt(v)}")
            return v
        if k == "str":
            if not isinstance(v, str):
                raise self.err(key, f"expected {_kind_word(k)}, got {fmt(v)}")
            if v not in spec.valid_names:
                raise self.err(key, f"unknown choice {v!r}; valid: {', '.join(spec.valid_names)}")
            return v
        ok = isinstance(v, int) if k == "int" else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok:
            raise self.err(key, f"expected {_kind_word(k)}, got {fmt(v)}")
        if not math.isfinite(v):
            raise self.err(key, f"must be finite, got {v}")
        v = int(v) if k == "int" else float(v)
        if zero_is_off and v == 0:
            return v
        if spec.minimum is not None and (v < spec.minimum or (spec.min_open and v == spec.minimum)):
            op = ">" if spec.min_open else ">="
            raise self.err(key, f"must be {op} {fmt(spec.minimum)}, got {fmt(v)}{spec.why}")
        if spec.maximum is not None and (v > spec.maximum or (spec.max_open and v == spec.maximum)):
            op = "<" if spec.max_open else "<="
            raise self.err(key, f"must be {op} {fmt(spec.maximum)}, got {fmt(v)}")
        if spec.odd and v % 2 == 0:
            raise self.err(key, f"must be odd, got {v}")
        return v

    def field(self, raw: Any, key: str, spec: Spec, param: str | None = None) -> Field:
        """Parse a fixed scalar, a choice list or a range table into a :class:`Field`."""
        param = param or spec.param
        if isinstance(raw, (list, tuple)):
            return self._choices(list(raw), key, spec, param, None)
        if isinstance(raw, Mapping):
            allowed = ["choices", "default"] if "choices" in raw else ["low", "high", "log", "step", "default"]
            if "choices" not in raw and spec.off_param:
                allowed.append("off")
            self.table(raw, key, allowed)
            if "choices" in raw:
                if not isinstance(raw["choices"], (list, tuple)):
                    raise self.err(f"{key}.choices", f"expected a list, got {fmt(raw['choices'])}")
                return self._choices(list(raw["choices"]), key, spec, param, raw.get("default"))
            return self._range(raw, key, spec, param)
        v = self.scalar(raw, key, spec, zero_is_off=spec.off_param is not None)
        return Field(key, param, spec.kind, mode="fixed", value=v)

    def _choices(self, items: list, key: str, spec: Spec, param: str, default: Any) -> Field:
        if not spec.choices:
            raise self.err(key, f"a choice list is not allowed here, got {fmt(items)}; "
                                f"give a fixed value{' or a {low, high} range' if spec.ranges else ''}")
        if not items:
            raise self.err(key, "empty choice list")
        vals = [self.scalar(v, key, spec) for v in items]
        if len(set(map(repr, vals))) != len(vals):
            raise self.err(key, f"duplicate choices in {fmt(vals)}")
        if default is not None:
            default = self.scalar(default, f"{key}.default", spec)
            if not any(_same(default, v) for v in vals):
                raise self.err(f"{key}.default", f"{fmt(default)} is not one of the choices {fmt(vals)}")
        return Field(key, param, spec.kind, mode="choice", choices=tuple(vals),
                     default_value=default)

    def _range(self, raw: Mapping, key: str, spec: Spec, param: str) -> Field:
        if not spec.ranges or spec.kind in ("bool", "str"):
            raise self.err(key, f"a range is not allowed here, got {fmt(dict(raw))}")
        for k in ("low", "high"):
            if k not in raw:
                raise self.err(key, f"a range needs '{k}', got {fmt(dict(raw))}")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise self.err(f"{key}.log", f"expected a boolean, got {fmt(log)}")
        off = raw.get("off", False)
        if not isinstance(off, bool):
            raise self.err(f"{key}.off", f"expected a boolean, got {fmt(off)}")
        low = self.scalar(raw["low"], f"{key}.low", spec)
        high = self.scalar(raw["high"], f"{key}.high", spec)
        if low > high:
            raise self.err(key, f"low {fmt(low)} > high {fmt(high)}")
        if log and low <= 0:
            raise self.err(key, f"a log range needs low > 0, got low {fmt(low)}")
        step = raw.get("step")
        if step is not None:
            ok = isinstance(step, int) if spec.kind == "int" else isinstance(step, (int, float))
            if isinstance(step, bool) or not ok or not step > 0:
                raise self.err(f"{key}.step", f"expected a positive {spec.kind}, got {fmt(step)}")
            if log and not (spec.kind == "int" and step == 1):
                raise self.err(key, f"step {fmt(step)} cannot be combined with log = true")
            if spec.kind == "int" and (high - low) % step:
                raise self.err(key, f"high {high} is not on the step grid low {low} + k * {step}")
            step = int(step) if spec.kind == "int" else float(step)
            if step == 1 and spec.kind == "int":
                step = None
        f = Field(key, param, spec.kind, mode="range", low=low, high=high, step=step, log=log,
                  off_param=spec.off_param if off else None)
        if "default" in raw:
            d = raw["default"]
            if f.off_param and d == 0 and not isinstance(d, bool):
                return replace(f, default_value=f.zero)
            d = self.scalar(d, f"{key}.default", spec)
            if not f.can_be(d):
                raise self.err(f"{key}.default", f"{fmt(d)} is outside the range [{fmt(low)}, {fmt(high)}]"
                                                 + (f" step {step}" if step else ""))
            f = replace(f, default_value=d)
        return f

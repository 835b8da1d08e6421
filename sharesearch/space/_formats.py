r"""Space files as text: reading TOML or YAML, writing TOML.

Files are read as data, never evaluated. :func:`read_text` parses TOML or
YAML into a dict (YAML 1.1 reads ``1e-4`` as a string, so such strings are
read back as numbers); :func:`to_toml` writes validated data back as TOML.

>>> to_toml({"name": "x", "train": {"lr": {"low": 0.001, "high": 0.1, "log": True}}})
'name = "x"\n\n[train]\nlr = {low = 0.001, high = 0.1, log = true}\n'
>>> read_text(to_toml({"train": {"epochs": 3}}), "x.toml", "toml")
{'train': {'epochs': 3}}
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from ._fields import SpaceError

__all__ = ["read_text", "to_toml"]

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)$")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def read_text(text: str, source: str, fmt: str | None = None) -> dict[str, Any]:
    """Parse TOML (``fmt="toml"``) or YAML/JSON (``fmt="yaml"``); ``None`` tries TOML, then YAML."""
    if fmt not in (None, "toml", "yaml"):
        raise SpaceError(f"{source}: unknown format {fmt!r}; valid: toml, yaml")
    toml_err = None
    if fmt in (None, "toml"):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            if fmt == "toml":
                raise SpaceError(f"{source}: not valid TOML: {e}") from None
            toml_err = e
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        what = "YAML" if fmt == "yaml" else f"TOML ({toml_err}) or YAML"
        raise SpaceError(f"{source}: not valid {what}: {' '.join(str(e).split())}") from None
    return _yaml_numbers({} if data is None else data)


def _yaml_numbers(x: Any) -> Any:
    """PyYAML reads ``1e-4`` as a string (YAML 1.1); read such strings as floats."""
    if isinstance(x, dict):
        return {k: _yaml_numbers(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_yaml_numbers(v) for v in x]
    if isinstance(x, str) and _FLOAT_RE.match(x):
        return float(x)
    return x


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def to_toml(d: Mapping[str, Any]) -> str:
    """Render validated space data as TOML (scalars first, then one table per section)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, Mapping)]
    for k, v in d.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{_toml_key(k)}]"] + [f"{_toml_key(a)} = {_toml_value(b)}" for a, b in v.items()]
    return "\n".join(lines).lstrip("\n") + "\n"

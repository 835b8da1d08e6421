"""What a person hands the commands, read and checked before anything runs or is written.

The data (a built-in source with its options, or a data-spec file), a
sharing graph (a reference architecture's name or a graph file), stage
widths, and an output file. Each function takes ``where``: the name of the
parameter the value came from, so that a refusal is one line naming it (the
command line passes its flag, e.g. ``"--graph"``). Errors are
:class:`~sharesearch.errors.SharesearchError`.

Example
-------
>>> parse_options(["n=300", "clusters=[[0,1],[2]]", "root=/data"])
{'n': 300, 'clusters': [[0, 1], [2]], 'root': '/data'}
>>> parse_widths("64,32")
[64, 32]
>>> print(builtin_options())  # doctest: +ELLIPSIS
multifashion: root, n_train, n_val, n_test, seed, search_rows
synthetic-mmoe, synthetic-null, synthetic-planted: n, d, p, clusters, ...
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import SharesearchError

__all__ = ["parse_options", "builtin_options", "load_data_arg", "parse_widths", "parse_list", "graph_from_arg",
           "check_out_file"]

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")


def parse_options(items: Sequence[str], where: str = "data_options") -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict; each value is JSON when it parses as JSON, else the text itself."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SharesearchError(f"{where}: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def builtin_options() -> str:
    """One line per set of built-in data sources that take the same options: their names and the options."""
    from .data import SOURCES, source_options

    groups: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(SOURCES):
        groups.setdefault(source_options(name), []).append(name)
    return "\n".join(f"{', '.join(names)}: {', '.join(options)}" for options, names in groups.items())


def load_data_arg(source: str, options: dict[str, Any], splits: tuple[str, ...] = ("train", "val", "test"),
                  where: str = "data", options_where: str = "data_options"):
    """The data of ``source`` with ``options``, each task labelled in every split of ``splits``.

    Returns the data and its source record (``{"source": ..., "options": ...}``, what a study stores;
    a spec file's path made absolute). A bad built-in option is one line naming the source, the
    options given and the valid ones.
    """
    from .data import load_data
    from .search import check_data_rows

    given = " ".join(f"{k}={v!r}" for k, v in options.items())
    named = f"{where} {source}" + (f" ({given})" if given else "")
    if Path(source).suffix.lower() in SPEC_SUFFIXES:
        source = str(Path(source).resolve())
        try:
            data = load_data(source, **options)
        except SharesearchError as e:
            raise SharesearchError(f"{options_where}: {e}" if options and "unknown option" in str(e) else e
                                   ) from None
    else:
        try:
            data = load_data(source, **options)
        except SharesearchError as e:  # a built-in source: name the options given
            raise SharesearchError(f"{where} {source} ({given or f'no {options_where}'}): {e}") from None
    check_data_rows(data, splits, where=named)
    return data, {"source": source, "options": options}


def parse_widths(text: str | None, where: str = "widths") -> list[int] | None:
    """Stage widths written ``64,64,32`` (``None`` or empty: ``None``)."""
    if not text:
        return None
    items = text.split(",")
    if not all(w.strip().isdigit() and int(w) >= 1 for w in items):
        raise SharesearchError(f"{where}: expected positive integers separated by commas (e.g. 64,64,32), "
                               f"got {text!r}")
    return [int(w) for w in items]


def graph_from_arg(value: str, data=None, widths: Sequence[int] | None = None, where: str = "graph"):
    """A reference architecture's name (needs ``data``) or a graph JSON file, checked against ``data``."""
    from .compare import REFERENCE_ARCHITECTURES, reference_graph
    from .graph import SharingGraph

    if value in REFERENCE_ARCHITECTURES:
        if data is None:
            raise SharesearchError(f"{where} {value}: a named architecture needs data")
        return reference_graph(value, data, widths)
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such file {value!r} and not one of {sorted(REFERENCE_ARCHITECTURES)}")
    try:
        obj = json.loads(path.read_bytes())
    except RecursionError:  # the decoder recurses once per level
        raise SharesearchError(f"{value}: JSON nested too deeply to be a sharing graph") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SharesearchError(f"{value}: not valid JSON: {e}") from None
    try:
        graph = SharingGraph.from_dict(obj)
    except SharesearchError as e:
        raise SharesearchError(f"{value}: {e}") from None
    if data is not None and tuple(graph.backbone.input_shape) != tuple(data.input_shape):
        raise SharesearchError(f"{value}: backbone input_shape {list(graph.backbone.input_shape)} does not match "
                               f"the data's input shape {list(data.input_shape)}")
    if data is not None and sorted(graph.tasks) != sorted(data.task_names):
        raise SharesearchError(f"{value}: tasks {sorted(graph.tasks)} are not the data's tasks {data.task_names}")
    return graph


def check_out_file(value: str, where: str = "out") -> Path:
    """A file a command may write: not a folder, inside a folder (or one that can be made)."""
    out = Path(value)
    if out.is_dir():
        raise SharesearchError(f"{where}: {value!r} is a folder; give a file name")
    for p in out.parents:
        if p.exists() and not p.is_dir():
            raise SharesearchError(f"{where}: cannot write {value!r}: {str(p)!r} is a file, not a folder")
    return out


def parse_list(text: str | None, where: str, *, numbers: bool = False, all_word: str | None = None) -> list | None:
    """A comma-separated list (None when ``text`` is empty); with ``numbers``, integers >= 0, and
    ``all_word`` (e.g. ``"all"``) standing for None in the list.

    >>> parse_list("10,30,all", "ks", numbers=True, all_word="all"), parse_list("t1, t2", "tasks")
    ([10, 30, None], ['t1', 't2'])
    """
    if not text:
        return None
    items = [x.strip() for x in text.split(",")]
    if not numbers:
        if not all(items):
            raise SharesearchError(f"{where}: an empty item in {text!r}")
        return items
    out: list = []
    for x in items:
        if all_word is not None and x == all_word:
            out.append(None)
        elif x.isdigit():
            out.append(int(x))
        else:
            extra = f" or {all_word!r}" if all_word else ""
            raise SharesearchError(f"{where}: expected integers >= 0{extra} separated by commas, got {text!r}")
    return out

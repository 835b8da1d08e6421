"""Multi-task data: the :class:`MultiTaskData` container, its sources and index batching.

``load_data(source, **options)`` returns a :class:`MultiTaskData` from

* a registered name -- ``"synthetic-mmoe"`` (Ma et al. 2018 recipe with planted
  task clusters) or ``"multifashion"`` (two overlaid Fashion-MNIST items);
* a path to a data-spec file (``.toml`` / ``.yaml`` / ``.yml``) describing a
  CSV or Parquet table (see :mod:`sharesearch.data.tabular`).

New named sources are one :func:`register_source` call.

Example
-------
>>> d = load_data("synthetic-mmoe", n=300, seed=0)
>>> d.task_names[:3], d.backbone_hint, tuple(d.y.shape)
(['t0', 't1', 't2'], 'mlp', (300, 6))
>>> sorted(SOURCES)
['multifashion', 'synthetic-mmoe', 'synthetic-null', 'synthetic-planted']
"""

from __future__ import annotations

import inspect

from sharesearch.errors import SharesearchError

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharesearch.data._base import SPLITS, MultiTaskData, make_split
from sharesearch.data._batching import SAMPLINGS, IndexBatcher
from sharesearch.data._rows import MIN_SEARCH_ROWS, RowSample, check_search_rows
from sharesearch.data.multifashion import make_multifashion
from sharesearch.data.synthetic import make_synthetic_mmoe, make_synthetic_null, make_synthetic_planted
from sharesearch.data.tabular import (SPEC_SUFFIXES, DataFileNotFoundError, DataSpec, DataSpecError, load_spec_file,
                                      read_spec)

__all__ = [
    "MultiTaskData",
    "make_split",
    "SPLITS",
    "RowSample",
    "MIN_SEARCH_ROWS",
    "load_data",
    "SOURCES",
    "register_source",
    "source_options",
    "IndexBatcher",
    "SAMPLINGS",
    "DataSpecError",
    "DataFileNotFoundError",
    "read_spec",
    "DataSpec",
    "load_spec_file",
    "make_synthetic_mmoe",
    "make_multifashion",
]

#: source name -> builder(**options) -> MultiTaskData
SOURCES: dict[str, Callable[..., MultiTaskData]] = {}
#: source name -> the options its builder takes (listed in errors and in the command line's help)
_OPTIONS: dict[str, tuple[str, ...]] = {}


def register_source(name: str, builder: Callable[..., MultiTaskData],
                    options: "Callable[..., Any] | None" = None) -> None:
    """Make ``builder(**options)`` available as ``load_data(name, **options)``.

    ``options`` is the function whose named parameters are the source's
    options, when ``builder`` only forwards ``**options`` to it (a preset);
    default: ``builder`` itself.

    >>> register_source("tiny-mmoe", lambda n=40, **o: make_synthetic_mmoe(n=n, **o), options=make_synthetic_mmoe)
    >>> load_data("tiny-mmoe").n, source_options("tiny-mmoe")[:3]
    (40, ('n', 'd', 'p'))
    >>> del SOURCES["tiny-mmoe"]
    """
    if not isinstance(name, str) or not name or Path(name).suffix.lower() in SPEC_SUFFIXES:
        raise SharesearchError(f"register_source: invalid source name {name!r}")
    params = inspect.signature(options or builder).parameters.values()
    SOURCES[name] = builder
    _OPTIONS[name] = tuple(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def source_options(name: str) -> tuple[str, ...]:
    """The options of the built-in source ``name``, ``search_rows`` (every source's) last.

    >>> source_options("multifashion")
    ('root', 'n_train', 'n_val', 'n_test', 'seed', 'search_rows')
    >>> source_options("synthetic-planted") == source_options("synthetic-mmoe")
    True
    """
    if name not in SOURCES:
        raise SharesearchError(f"unknown data source {name!r}; valid names: {', '.join(sorted(SOURCES))}")
    return (*_OPTIONS.get(name, ()), "search_rows")


register_source("synthetic-mmoe", make_synthetic_mmoe)
register_source("synthetic-planted", make_synthetic_planted, options=make_synthetic_mmoe)
register_source("synthetic-null", make_synthetic_null, options=make_synthetic_mmoe)
register_source("multifashion", make_multifashion)


def load_data(source: "str | os.PathLike[str]", **options: Any) -> MultiTaskData:
    """Load a multi-task data set by name or from a data-spec file.

    Parameters
    ----------
    source : str or Path
        A registered name (see ``SOURCES``) or a ``.toml``/``.yaml``/``.yml`` spec file.
    **options
        Passed to the source (e.g. ``n``, ``seed`` for ``synthetic-mmoe``;
        ``root``, ``n_train`` for ``multifashion``; ``split_seed``/``split``
        for a spec file). An unknown option is a ``TypeError`` naming it.
        ``search_rows`` (every source) sets the search phase's rows: a count
        (int >= 100) or fraction (float in (0, 1]) of the training rows, see
        :meth:`MultiTaskData.search_view`; a spec file may also set it itself.

    Raises
    ------
    ValueError
        Unknown source name (the message lists the valid names).
    DataSpecError
        A bad spec file or table.

    Examples
    --------
    >>> load_data("synthetic-mmoe", n=50, clusters=[[0, 1], [2]]).task_names
    ['t0', 't1', 't2']
    >>> load_data("no-such-data")
    Traceback (most recent call last):
    ...
    sharesearch.errors.SharesearchError: unknown data source 'no-such-data'; valid names: multifashion, synthetic-mmoe, synthetic-null, synthetic-planted, or a path to a .toml/.yaml/.yml data-spec file
    """
    if isinstance(source, str) and source in SOURCES:
        search_rows = check_search_rows(options.pop("search_rows", None), f"load_data({source!r}): search_rows")
        builder, valid = SOURCES[source], source_options(source)
        unknown = sorted(set(options) - set(valid))
        if unknown and valid[:-1]:  # a source registered with no named options takes what it takes
            raise SharesearchError(f"load_data({source!r}): unknown option {unknown[0]!r}; "
                                   f"valid options: {', '.join(valid)}")
        try:
            data = builder(**options)
            data.search_rows = search_rows
            return data
        except TypeError as e:  # a builder taking **options (a preset) names the bad one itself
            if "unexpected keyword argument" in str(e):
                raise SharesearchError(f"load_data({source!r}): {e}") from None
            raise
    path = Path(source)
    if path.suffix.lower() in SPEC_SUFFIXES:
        return load_spec_file(path, **options)
    raise SharesearchError(
        f"unknown data source {str(source)!r}; valid names: {', '.join(sorted(SOURCES))}, "
        f"or a path to a .toml/.yaml/.yml data-spec file"
    )

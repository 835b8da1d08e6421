"""Loading spaces, and the spaces shipped with the package.

The shipped spaces are the repository's top-level ``search_spaces/*.toml``,
installed as the package data ``sharesearch._spaces`` (``pyproject.toml``
maps that package onto the folder), so ``load_space("default")`` reads the
very file the README tells users to copy. :func:`space_text` and
:func:`copy_space` give users a file to edit.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from ._fields import SpaceError
from ._space import SearchSpace

__all__ = ["shipped_spaces", "load_space", "space_text", "copy_space"]

_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def _shipped_dir() -> Traversable:
    """The folder of the shipped spaces.

    Installed (wheel or ``pip install -e .``) it is the package
    ``sharesearch._spaces``; imported straight from a checkout that was never
    installed, it is the checkout's ``search_spaces/``.
    """
    try:
        return resources.files("sharesearch._spaces")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "search_spaces"


def shipped_spaces() -> list[str]:
    """Names of the spaces shipped with the package.

    >>> shipped_spaces()
    ['branching', 'default', 'image', 'tiny']
    """
    return sorted(p.name[:-5] for p in _shipped_dir().iterdir() if p.name.endswith(".toml"))


def space_text(name: str) -> str:
    """The text of shipped space ``name`` (comments included), to show or to copy.

    >>> space_text("tiny") == load_space("tiny").text
    True
    """
    if name not in shipped_spaces():
        raise SpaceError(f"{name}: no such search space; shipped spaces: {', '.join(shipped_spaces())} "
                         "(or give a file path)")
    return _shipped_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8")


def copy_space(name: str, path: str | os.PathLike) -> Path:
    """Write shipped space ``name`` to ``path`` (a file, or a folder to hold ``<name>.toml``).

    Never overwrites: an existing file raises :class:`SpaceError`.

    Returns
    -------
    Path
        The file written.

    >>> import shutil, tempfile
    >>> d = tempfile.mkdtemp()
    >>> p = copy_space("tiny", d)
    >>> p.name, p.read_text() == space_text("tiny")
    ('tiny.toml', True)
    >>> copy_space("tiny", p)
    Traceback (most recent call last):
    ...
    sharesearch.space.SpaceError: tiny.toml: already exists; give a new path (it is never overwritten)
    >>> shutil.rmtree(d)
    """
    text = space_text(name)
    target = Path(path)
    if target.is_dir():
        target = target / f"{name}.toml"
    try:
        with open(target, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise SpaceError(f"{target.name}: already exists; give a new path (it is never overwritten)") from None
    except OSError as e:
        raise SpaceError(f"{target.name}: cannot write {str(target)!r}: {e.strerror or e}") from None
    return target


def load_space(name_or_path: str | os.PathLike) -> SearchSpace:
    """Load a shipped space by name (``"default"``, ``"tiny"``, ...) or a file by path.

    >>> load_space("default").name
    'default'
    """
    s = os.fspath(name_or_path)
    if os.path.exists(s) or os.sep in s or "/" in s or Path(s).suffix.lower() in _SUFFIXES:
        return SearchSpace.from_file(s)
    return SearchSpace.from_text(space_text(s), f"{s}.toml", "toml")

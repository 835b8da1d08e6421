"""The package's top level: the public API, its version, and cheap torch-free imports."""

import subprocess
import sys

import pytest

import sharesearch


@pytest.mark.parametrize("name", [n for n in sharesearch.__all__ if n != "__version__"])
def test_every_public_name_resolves(name):
    obj = getattr(sharesearch, name)
    assert obj is not None
    assert getattr(obj, "__name__", name) == name


def test_version_is_the_installed_distribution():
    from importlib.metadata import version

    assert sharesearch.__version__ == version("sharesearch")


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sharesearch.nope  # noqa: B018


def test_torch_free_modules_stay_torch_free():
    code = ("import sys, sharesearch, sharesearch.names, sharesearch.errors, sharesearch.graph; "
            "bad = [m for m in ('torch', 'optuna', 'plotly') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_subpackage_is_listed_in_pyproject_so_a_built_wheel_carries_it():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "sharesearch").rglob("__init__.py")
               if "__pycache__" not in p.parts}
    assert on_disk - listed == set()

"""Several model folders that answer together: one per configuration of the independent networks.

When the verdict recommends *keep independent models* and the control's
tasks keep different tuned configurations (width, learning rate, ...), no one
network holds them all: the verdict writes one model folder per
configuration (``group-0/``, ``group-1/``, ...) under the model folder.
:func:`sharesearch.model_folder.load_model` on that parent folder returns a
:class:`ModelGroup`, whose :meth:`ModelGroup.predict` takes raw rows like a
single model's and joins the groups' predictions column by column.

Example
-------
>>> import tempfile
>>> load_group(tempfile.mkdtemp()) is None  # a folder without group-N/ model folders
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SharesearchError

__all__ = ["ModelGroup", "load_group", "GROUP_PREFIX"]

#: the sub-folders of a model group: group-0, group-1, ...
GROUP_PREFIX = "group-"


@dataclass(frozen=True)
class ModelGroup:
    """Model folders whose tasks are disjoint, answering as one model."""

    members: tuple  # the LoadedModel of each group-N/ folder, in N order
    path: Path  # the parent folder

    @property
    def tasks(self) -> tuple:
        """Every member's task specs, in member order."""
        return tuple(t for m in self.members for t in (m.tasks or ()))

    @property
    def provenance(self):
        """The first member's provenance (each member's is on ``members[i].provenance``)."""
        return self.members[0].provenance

    def predict(self, frame: Any):
        """Each member's :meth:`~sharesearch.model_folder.LoadedModel.predict`, joined column by column."""
        import pandas as pd

        return pd.concat([m.predict(frame) for m in self.members], axis=1)


def load_group(path_dir: str | Path, map_location: Any = "cpu") -> ModelGroup | None:
    """The :class:`ModelGroup` of the ``group-N/`` model folders under ``path_dir``; None when there are none.

    Raises :class:`~sharesearch.errors.SharesearchError` when two groups
    predict the same task (they would not answer as one model).
    """
    from .model_folder import MODEL_FILE, load_model

    d = Path(path_dir)
    if not d.is_dir():
        return None
    groups = sorted((p for p in d.iterdir() if p.is_dir() and p.name.startswith(GROUP_PREFIX)
                     and p.name[len(GROUP_PREFIX):].isdigit() and (p / MODEL_FILE).is_file()),
                    key=lambda p: int(p.name[len(GROUP_PREFIX):]))
    if not groups:
        return None
    members = tuple(load_model(p, map_location) for p in groups)
    seen: dict[str, Path] = {}
    for m in members:
        for t in m.graph.tasks:
            if t in seen:
                raise SharesearchError(f"load_model: {d}: task {t!r} is in both {seen[t].name} and {m.path.name}")
            seen[t] = m.path
    return ModelGroup(members, d)

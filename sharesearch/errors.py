"""The one exception base for mistakes a user can fix.

Every error that a user causes by what they hand us -- a data file, a data
spec, a search-space file, a storage URL, a study name, a numeric option --
is a :class:`SharesearchError` whose message is one line naming the file,
field and value. The command line prints those as one line and exits
non-zero; anything else is a bug of ours and keeps its traceback.

It subclasses :class:`ValueError` so that code which caught ``ValueError``
before keeps working; catch :class:`SharesearchError` to tell user errors
from internal ones.

Example
-------
>>> try:
...     raise SharesearchError("space.toml: train.lr: low 0.1 > high 0.01")
... except SharesearchError as e:
...     print(e)
space.toml: train.lr: low 0.1 > high 0.01
"""

from __future__ import annotations

__all__ = ["SharesearchError"]


class SharesearchError(ValueError):
    """A mistake in what the user handed us; the message is one line naming the culprit."""

"""Projection of pairwise share requests onto a task tree.

The pairwise encoding samples one share depth per task pair; an arbitrary
matrix of requests need not be a tree, so :func:`project_share_depths` says
what :meth:`~sharesearch.graph.SharingGraph.from_share_depths` makes of it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from ..graph import share_partitions

__all__ = ["pair", "project_share_depths"]


def pair(a: str, b: str) -> tuple[str, str]:
    """The unordered pair ``{a, b}`` as a sorted tuple (the key of share requests)."""
    return (a, b) if a <= b else (b, a)


def project_share_depths(tasks: Sequence[str], depths: Mapping[tuple[str, str], int],
                         n_stages: int, linkage: str = "average") -> dict[tuple[str, str], int]:
    """Projection of pairwise share requests onto a task tree.

    Returns, for every pair ``(a, b)`` with ``a < b``, the number of leading
    stages the two share in :meth:`SharingGraph.from_share_depths` of the same
    requests (:func:`sharesearch.graph.share_partitions`). With
    ``linkage="single"`` this is the subdominant ultrametric: the largest
    ``l <= n_stages`` such that ``a`` and ``b`` are joined by a chain of pairs
    each requesting at least ``l``. Missing pairs request 0.

    >>> project_share_depths("abc", {("a", "b"): 2, ("b", "c"): 3}, 3, linkage="single")
    {('a', 'b'): 2, ('a', 'c'): 2, ('b', 'c'): 3}
    >>> project_share_depths("abc", {("a", "b"): 2, ("b", "c"): 3}, 3)
    {('a', 'b'): 1, ('a', 'c'): 1, ('b', 'c'): 3}
    """
    names = list(tasks)
    parts = share_partitions(names, depths, n_stages, linkage=linkage)
    out = {}
    for a, b in itertools.combinations(names, 2):
        d = 0
        while d < n_stages and any(a in grp and b in grp for grp in parts[d]):
            d += 1
        out[pair(a, b)] = d
    return out

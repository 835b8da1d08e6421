"""Soft-sharing links of the topology figure: L2 widths, curves, and cross-stitch weights by the compiler's unit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..graph import SharingGraph
from ..plan import stitch_units

def _lam_width(lam: float) -> float:
    """Line width of an L2 link: grows with log10 λ (1e-6 -> 0.75, 1e-3 -> 2.55, 1 -> 4.35, max 5).

    >>> _lam_width(1e-3) < _lam_width(1e-2) < _lam_width(1.0)
    True
    """
    if lam <= 0:
        return 0.75
    return float(min(5.0, max(0.75, 0.75 + 0.6 * (math.log10(lam) + 6.0))))


def _curve(x: float, y0: float, y1: float, bulge: float, n: int = 16) -> tuple[list[float], list[float]]:
    """Quadratic Bézier between two nodes of one column, bulging to the right."""
    cx, cy = x + bulge, (y0 + y1) / 2
    xs, ys = [], []
    for i in range(n + 1):
        t = i / n
        xs.append((1 - t) ** 2 * x + 2 * (1 - t) * t * cx + t**2 * x)
        ys.append((1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t**2 * y1)
    return xs, ys


def _as_matrix(v: Any) -> list[list[float]] | None:
    """Tensor / array / nested list -> list of rows of floats (a scalar becomes [[v]])."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().tolist()
    elif hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, (int, float)):
        return [[float(v)]]
    try:
        rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in v]
        return [[float(x) for x in r] for r in rows]
    except (TypeError, ValueError):
        return None


def _stitch_lookup(graph: SharingGraph, stitch: Mapping[str, Any]) -> dict[tuple[str, str], list[float]]:
    """Learned cross-stitch weights ``[α(u<-v), α(v<-u)]`` of each stitch edge ``(u, v)``.

    ``stitch`` maps a unit's name, :func:`sharesearch.plan.stitch_key`
    (``"stage<l>:<task>+<task>..."``, the keys of
    :meth:`MultiTaskNet.stitch_weights`), to its ``n x n`` matrix over the
    unit's tasks (a tensor, array or nested list). An edge's weight is how much
    of one block's activation flows into the other, averaged over the tasks of
    the two blocks. A name the graph has no unit for, or a matrix of the wrong
    size, is an error (``ValueError``): the keys have one producer.
    """
    units = {u.key: u for u in stitch_units(graph)}
    unknown = sorted(str(k) for k in stitch if k not in units)
    if unknown:
        raise ValueError(f"stitch weights for {unknown}: the graph's cross-stitch units are {sorted(units)}")
    g, out = graph.g, {}
    for key, val in stitch.items():
        unit, m = units[key], _as_matrix(val)
        n = len(unit.tasks)
        if m is None or len(m) != n or any(len(r) != n for r in m):
            raise ValueError(f"stitch weights {key!r}: expected a {n}x{n} matrix, got {val!r}")
        for u, v, kind in g.edges(data="kind"):
            if kind != "stitch" or g.nodes[u]["stage"] != unit.stage or g.nodes[u]["tasks"][0] not in unit.tasks:
                continue
            iu = [unit.tasks.index(t) for t in g.nodes[u]["tasks"]]
            iv = [unit.tasks.index(t) for t in g.nodes[v]["tasks"]]
            out[(u, v)] = [sum(m[i][j] for i in iu for j in iv) / (len(iu) * len(iv)),
                           sum(m[j][i] for i in iu for j in iv) / (len(iu) * len(iv))]
    return out


"""Train one topology beside its independent baselines and compare per task.

This is what ``sharesearch train`` runs: no search, no tuning -- one sharing
graph and the independent single-task networks trained with the same
configuration and seeds, each run selected on validation and reported on the
split asked for -- validation unless told otherwise, since the test split is
meant to be used once -- with a per-task relative difference.

Example
-------
>>> from sharesearch.data import load_data
>>> data = load_data("synthetic-mmoe", n=300, d=8, seed=0)
>>> g = reference_graph("shared-bottom", data, widths=[16, 8])
>>> table = compare_topology(g, data, TrainConfig(epochs=1, batch_size=64), seeds=[0])
>>> list(table.columns)[:3]
['task', 'metric', 'topology']
>>> format_comparison(table, "val").splitlines()[0].split()[:5]
['task', 'metric', 'topology', 'independent', 'relative_diff']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import fmt
from .data import MultiTaskData
from .graph import SharingGraph
from .names import REFERENCE_ARCHITECTURES, reference
from .tasks import metric_direction
from .training import TrainConfig, train
from .verdict import relative_delta

__all__ = ["REFERENCE_ARCHITECTURES", "reference_graph", "default_backbone", "compare_topology",
           "format_comparison"]


def default_backbone(data: MultiTaskData, widths: Sequence[int] | None = None) -> dict:
    """An MLP for vectors, a small CNN for images, with sensible widths."""
    if data.backbone_hint == "cnn":
        return {"name": "cnn", "input_shape": list(data.input_shape), "widths": list(widths or [16, 32, 64])}
    return {"name": "mlp", "input_shape": list(data.input_shape), "widths": list(widths or [64, 64, 32])}


def reference_graph(name: str, data: MultiTaskData, widths: Sequence[int] | None = None) -> SharingGraph:
    """One of the field's reference architectures (:data:`sharesearch.names.REFERENCES`) over ``data``'s tasks.

    The constructor's own defaults apply (e.g. 4 experts for ``"mmoe"``); an
    unknown name raises :class:`~sharesearch.errors.SharesearchError` listing the valid ones.
    """
    return reference(name).graph(data.tasks, default_backbone(data, widths))


def compare_topology(graph: SharingGraph, data: MultiTaskData, config: TrainConfig,
                     seeds: Sequence[int] = (0,), split: str = "val", progress: bool = False) -> pd.DataFrame:
    """Per-task table: the topology's and the independent baselines' metric
    (mean over ``seeds``) on ``split`` and the relative difference (positive = better).

    ``progress`` shows a tqdm bar on stderr: one unit per run (topology and
    independent, per seed), with the run and its optimizer step beside it.
    """
    from tqdm.auto import tqdm

    base_graph = SharingGraph.independent(data.tasks, graph.backbone)
    topo: dict[str, list[float]] = {t.name: [] for t in data.tasks}
    base: dict[str, list[float]] = {t.name: [] for t in data.tasks}
    with tqdm(total=2 * len(seeds), desc="train", unit="run", disable=not progress, dynamic_ncols=True) as bar:
        for seed in seeds:
            for arm, g, store in (("topology", graph, topo), ("independent", base_graph, base)):
                def show(epoch, metrics, at, arm=arm, seed=seed) -> None:
                    bar.set_postfix_str(f"{arm} seed {seed}: step {at.step}/{at.total_steps}", refresh=False)

                res = train(g, data, config.updated(seed=seed), callback=show if progress else None)
                bar.update(1)
                if res.status != "ok":
                    raise RuntimeError(f"training diverged (seed {seed}): {res.message}")
                metrics = res.evaluate(data, split)
                for t in data.tasks:
                    store[t.name].append(metrics[t.name][t.primary_metric])
    rows = []
    for t in data.tasks:
        m, s = float(np.mean(topo[t.name])), float(np.mean(base[t.name]))
        rows.append({"task": t.name, "metric": t.primary_metric, "topology": m, "independent": s,
                     "relative_diff": relative_delta(m, s, metric_direction(t.primary_metric)),
                     "seeds": len(seeds)})
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame, split: str) -> str:
    """:func:`compare_topology`'s table as ``sharesearch train`` prints it: the split, then one line per task."""
    shown = table.assign(relative_diff=[fmt.delta(v) for v in table["relative_diff"]],
                         topology=[fmt.value(v) for v in table["topology"]],
                         independent=[fmt.value(v) for v in table["independent"]])
    note = "" if split == "test" else " (the test split is meant to be used once: ask for it for the final figure)"
    return f"{shown.to_string(index=False)}\nsplit: {split}{note}"

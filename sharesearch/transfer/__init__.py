"""A new task from a few examples: which sharing topology transfers best (issue 15).

Torch, no optuna: the study-level driver is :mod:`sharesearch.search._transfer_study`.

* ``_graph`` (torch-free) -- :func:`drop_task` (a sharing graph without one
  task), :func:`attach_point` (where a new task joins: the rule is stated
  there), :func:`with_task` (the graph with the new task on that path).
* ``_fewshot`` -- :func:`k_rows` (seeded k labelled training rows),
  :func:`few_shot_view`, :func:`warm_network` (trained trunk copied in,
  frozen or fine-tuned, the new task's descriptor learned where its path is
  conditioned), :func:`fit` (the one few-shot loop of every arm).
* ``_curve`` -- :func:`transfer_curve` (leave one task out),
  :func:`new_task_curve` (a new column on a trained trunk).
* ``_records`` (torch-free) -- :class:`TransferConfig`, :class:`TransferPoint`,
  :class:`TransferCurve`, :class:`TransferResult`, :func:`transferability`.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.from_partitions({"a": 1, "b": 1, "c": 1},
...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, ["a,b|c"])
>>> drop_task(g, "a").partitions()
((('b',), ('c',)), (('b',), ('c',)))
"""

from ._curve import DEFAULT_KS, new_task_curve, train_trunk, transfer_curve
from ._fewshot import Fit, WarmNet, few_shot_view, fit, k_rows, scratch_maker, warm_network
from ._graph import AttachPoint, attach_point, drop_task, with_task
from ._records import MODES, TransferConfig, TransferCurve, TransferPoint, TransferResult, transferability, with_holm

__all__ = [
    "DEFAULT_KS", "MODES", "AttachPoint", "Fit", "TransferConfig", "TransferCurve", "TransferPoint",
    "TransferResult", "WarmNet", "attach_point", "drop_task", "few_shot_view", "fit", "k_rows", "new_task_curve",
    "scratch_maker", "train_trunk", "transfer_curve", "transferability", "warm_network", "with_holm", "with_task",
]

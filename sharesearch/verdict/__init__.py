"""Negative-transfer verdicts: Δm, per-task tests with Holm, equivalence, power, honest intervals.

Pure statistics (numpy, scipy.stats, pandas); no torch, optuna or plotly.

Protocol
--------
The numbers this package turns into a verdict must come from the following
protocol, which is what makes the verdict a fair comparison:

1. **Selection on validation.** The search maximises :func:`delta_m` of a
   candidate's *validation* metrics against the independent single-task
   baselines' (one primary metric per task; see :mod:`sharesearch.tasks`).
2. **Test once.** The chosen arms and the baselines are retrained with
   ``n`` seeds and evaluated on the *test* split.
3. **Runs.** A run is one training with one seed. The candidate's run trains
   all tasks together, so its task metrics are paired; candidate and baseline
   runs share no unit of training, so per task the arms are *unpaired*.
4. **Per task: Welch + Holm, TOST, MDE.** Welch's two-sided test of the two
   means (:func:`scipy.stats.ttest_ind_from_stats`), Holm's step-down
   correction across the tested tasks of one arm (:func:`holm`; valid under
   any dependence between the tasks' tests). "No significant difference" is
   not "no negative transfer": two one-sided tests (TOST) within a margin
   (±5 % by default) say when the change is negligible, and each task's
   minimum detectable effect says how large a change the runs could have seen.
   Verdicts: ``"negative transfer"``, ``"positive transfer"``,
   ``"equivalent"``, ``"inconclusive"``, ``"untestable"`` (:data:`VERDICTS`).
5. **Relative effect.** Δ_t is :func:`relative_delta` (Maninis et al., CVPR
   2019), positive when sharing helps, with Fieller's interval for a ratio of
   independent means.
6. **Δm from whole runs.** Each run's priority-weighted Δm is one
   observation; the interval is Welch's t on those (tasks of a run stay
   together), plus the test-set sampling variance from a row bootstrap paired
   across arms when per-row predictions are given (:class:`RowPredictions`).
7. **Divergence and degeneracy.** A non-finite metric is a diverged run:
   counted, left out, never a crash. Zero spread in both arms is
   ``"untestable"`` (p = NaN), never p = 0.

Intervals are marginal ``1 - alpha`` intervals (95 % by default), not
multiplicity-adjusted; the verdict labels are (Holm).

Modules: ``_delta`` (Δ, Δm), ``_tests`` (Welch, Fieller, Holm, TOST, power),
``_runs`` (an arm's runs), ``_intervals`` (Δm interval, bootstraps),
``_records`` (:class:`TaskVerdict`, :class:`Verdict`), ``_markdown``,
``_verdicts`` (:func:`task_verdicts`), ``_recommend`` (:func:`recommend`: what to ship).

Example
-------
>>> v = task_verdicts(
...     {"clicked": [0.70, 0.71, 0.69], "price": [10.2, 10.0, 10.1]},
...     {"clicked": [0.80, 0.81, 0.79], "price": [10.1, 10.3, 10.2]},
...     {"clicked": "maximize", "price": "minimize"},
... )
>>> [(t.task, t.label) for t in v.tasks]
[('clicked', 'negative transfer'), ('price', 'equivalent within ±5%')]
>>> round(v.get("clicked").delta, 3)
-0.125
"""

from __future__ import annotations

from ._delta import DIRECTIONS, delta_m, relative_delta
from ._intervals import (
    DeltaMInterval,
    RowPredictions,
    bootstrap_delta_m,
    delta_m_interval,
    hierarchical_bootstrap_delta_m,
)
from ._recommend import Recommendation, TaskChoice, recommend
from ._records import VERDICTS, TaskVerdict, Verdict
from ._tests import holm, minimum_detectable_effect, seeds_for_power, tost_p
from ._verdicts import task_verdicts

__all__ = [
    "DIRECTIONS",
    "VERDICTS",
    "relative_delta",
    "delta_m",
    "holm",
    "bootstrap_delta_m",
    "task_verdicts",
    "TaskVerdict",
    "Verdict",
    "Recommendation",
    "TaskChoice",
    "recommend",
    "DeltaMInterval",
    "RowPredictions",
    "delta_m_interval",
    "hierarchical_bootstrap_delta_m",
    "minimum_detectable_effect",
    "seeds_for_power",
    "tost_p",
]

"""Training one sharing graph: the configuration, the loop, the schedule.

``_config`` holds :class:`TrainConfig` (torch-free: the search space and the
study records read it without torch), ``_schedule`` the optimiser and the
learning-rate schedule, ``_loop`` the trainer itself (:func:`train`,
:func:`evaluate`, :class:`TrainResult`). Candidates, baselines and the
verdict's runs all go through :func:`train`; see ``_loop``'s docstring for
the protocol (budget in optimizer steps, early stopping, per-task model
selection). ``_population`` trains many seeds or configurations of one graph
as one stacked network (:func:`train_population`), with ``_member_optim``'s
per-member optimizer.

The package is named ``training`` so that ``sharesearch.train`` stays the
function on the package's front door.
"""

from ._config import LR_SCHEDULES, OPTIMIZERS, ConfigError, TrainConfig
from ._loop import Progress, TrainResult, evaluate, predict_split, resolve_device, step_budget, train
from ._population import MEMBER_FIELDS, population_groups, population_size, train_population
from ._schedule import LrSchedule, make_optimizer

__all__ = [
    "TrainConfig",
    "ConfigError",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "TrainResult",
    "Progress",
    "train",
    "train_population",
    "population_groups",
    "population_size",
    "MEMBER_FIELDS",
    "evaluate",
    "predict_split",
    "resolve_device",
    "step_budget",
    "LrSchedule",
    "make_optimizer",
]

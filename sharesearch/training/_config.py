"""How one network is trained: :class:`TrainConfig` (torch-free), re-exported by :mod:`sharesearch.training`.

The budget is counted in **optimizer steps** so that two batch sizes get the
same number of updates: ``max_steps`` caps a run (when it is ``None`` the cap
is ``epochs`` passes over the training split, as before). Validation runs every
``eval_every`` steps (``None``: at the end of every epoch, and at the cap).
With ``patience`` > 0 the run stops early once *no* task's primary validation
metric has improved by more than ``min_delta`` (relative) for ``patience``
evaluations in a row. ``lr_schedule`` is ``"constant"``, ``"cosine"`` (decays
to 0 at the cap) or ``"plateau"`` (halves the learning rate when no task has
improved for ``plateau_patience`` evaluations), each after ``warmup_steps``
steps of linear warm-up.

Example
-------
>>> cfg = TrainConfig(max_steps=2000, eval_every=50, patience=5, lr_schedule="cosine", warmup_steps=100)
>>> cfg.total_steps(steps_per_epoch=12), TrainConfig(epochs=3).total_steps(steps_per_epoch=12)
(2000, 36)
>>> TrainConfig(patience=-1)
Traceback (most recent call last):
...
sharesearch.training._config.ConfigError: train config: field 'patience' must be an integer >= 0, got -1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import SharesearchError
from ..names import SAMPLINGS

__all__ = ["TrainConfig", "ConfigError", "OPTIMIZERS", "LR_SCHEDULES"]

#: optimizers the trainer builds
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
#: learning-rate schedules (after the linear warm-up)
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "plateau")


class ConfigError(SharesearchError):
    """A bad training configuration; the message names the field and value."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained. Candidates and baselines share one budget.

    See the module docstring for the budget, early stopping and the schedule.
    """

    epochs: int = 10  # passes over the training split; the cap when max_steps is None
    batch_size: int = 256  # examples per step
    lr: float = 1e-3  # peak learning rate (after warm-up)
    weight_decay: float = 0.0  # decoupled (AdamW) or L2 (SGD) weight decay
    optimizer: str = "adam"  # adam | adamw | sgd
    weighting: str = "equal"  # loss weighting method, see sharesearch.weighting.WEIGHTINGS
    weighting_options: Mapping[str, Any] = field(default_factory=dict)  # typed options of the weighting
    sampling: str = "uniform"  # task sampling when labels are sparse: uniform | proportional
    batch_tasks: tuple[str, ...] | None = None  # batches are drawn over these tasks' labelled rows (None: the
    # graph's tasks); the control gives every data task, so a task trained in a group of some tasks sees
    # the batches it would see in the independent network of all of them (with sparse labels they differ)
    seed: int = 0  # seeds initialisation, batch order, dropout and the weighting's own randomness
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast on CUDA (never on the CPU), in training and evaluation alike;
    # off by default: on an H200 it made small multi-task MLP steps 8-13% slower (benchmarks/bench_gpu.py)
    eval_batch_size: int = 8192  # examples per evaluation forward pass
    max_steps: int | None = None  # optimizer steps in all (overrides epochs); None: epochs x steps per epoch
    eval_every: int | None = None  # validate every this many steps; None: at the end of every epoch
    patience: int = 0  # evaluations without improvement of any task before stopping; 0: never stop early
    min_delta: float = 0.0  # relative improvement of a task's best primary metric that resets patience
    lr_schedule: str = "constant"  # constant | cosine (to 0 at the cap) | plateau (halve on a plateau)
    warmup_steps: int = 0  # steps of linear warm-up from lr / warmup_steps to lr
    plateau_patience: int = 2  # "plateau": evaluations without improvement of any task before halving

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"train config: field {name!r} {why}, got {getattr(self, name)!r}")

        for name in ("epochs", "batch_size", "eval_batch_size", "plateau_patience"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise bad(name, "must be an integer >= 1")
        for name in ("max_steps", "eval_every"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                raise bad(name, "must be None or an integer >= 1")
        for name in ("patience", "warmup_steps"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise bad(name, "must be an integer >= 0")
        if not (_is_number(self.lr) and self.lr > 0):
            raise bad("lr", "must be a positive number")
        for name in ("weight_decay", "min_delta"):
            if not (_is_number(getattr(self, name)) and getattr(self, name) >= 0):
                raise bad(name, "must be a number >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"must be one of {list(OPTIMIZERS)}")
        if self.sampling not in SAMPLINGS:
            raise bad("sampling", f"must be one of {list(SAMPLINGS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise bad("lr_schedule", f"must be one of {list(LR_SCHEDULES)}")
        if not isinstance(self.amp, bool):
            raise bad("amp", "must be true or false")
        if self.batch_tasks is not None:
            if isinstance(self.batch_tasks, str) or not all(isinstance(t, str) for t in self.batch_tasks) \
                    or not self.batch_tasks:
                raise bad("batch_tasks", "must be None or a non-empty list of task names")
            object.__setattr__(self, "batch_tasks", tuple(self.batch_tasks))  # a list from JSON

    def total_steps(self, steps_per_epoch: int) -> int:
        """The run's cap in optimizer steps: ``max_steps``, else ``epochs`` x ``steps_per_epoch``."""
        return self.max_steps if self.max_steps is not None else self.epochs * steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weighting_options"] = dict(self.weighting_options)
        d["batch_tasks"] = None if self.batch_tasks is None else list(self.batch_tasks)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"train config: unknown field {unknown[0]!r}; valid fields: {sorted(known)}")
        return cls(**d)

    def updated(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (unknown names are rejected)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

"""How a search runs: :class:`SearchConfig`, the objectives it may optimise, its error type.

Example
-------
>>> cfg = SearchConfig(n_trials=5, objectives=("delta_m", "params"))
>>> cfg.multi_objective, [OBJECTIVES[o] for o in cfg.objectives]
(True, ['maximize', 'minimize'])
>>> SearchConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import SharesearchError
from ..names import REFERENCES

__all__ = ["SearchConfig", "SearchError", "OBJECTIVES", "DEFAULT_REFERENCES", "SAMPLERS", "PRUNERS"]

#: objective name -> Optuna direction; ``delta_m`` always comes first
OBJECTIVES = {"delta_m": "maximize", "params": "minimize", "flops": "minimize", "worst_delta": "maximize"}
#: reference architectures enqueued by default: all but l2-soft, whose penalty makes it a tuned
#: mechanism rather than a fixed point of comparison
DEFAULT_REFERENCES: tuple[str, ...] = tuple(n for n in REFERENCES if n != "l2-soft")
#: samplers and pruners a search may use
SAMPLERS: tuple[str, ...] = ("random", "tpe")
PRUNERS: tuple[str, ...] = ("hyperband", "median", "none")


class SearchError(SharesearchError):
    """A search that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class SearchConfig:
    """How the search runs. Stored in the study so every worker agrees."""

    n_trials: int = 20  # finished trials (complete + pruned + failed) the study aims for
    timeout: float | None = None  # seconds per worker, None for no limit
    objectives: tuple[str, ...] = ("delta_m",)  # delta_m first; then params | flops | worst_delta
    max_params: int | None = None  # budget: trainable parameters (constraint)
    max_flops: int | None = None  # budget: FLOPs per example (constraint)
    sampler: str = "tpe"  # tpe | random
    pruner: str = "hyperband"  # hyperband | median | none
    seed: int = 0  # sampler seed and the search's training seed
    top_k: int = 3  # candidates retrained for the verdict
    n_seeds: int | None = None  # seeds of the verdict's retraining; None: the power rule (see _verdict_runs)
    alpha: float = 0.05  # significance level of the verdict
    references: tuple[str, ...] = DEFAULT_REFERENCES  # reference architectures enqueued first
    population: int | None = None  # trials trained together (a topology and its companions, see
    # sharesearch.search._populations); None: by the worker's device (1 on a CPU, 8 on a GPU)

    def __post_init__(self) -> None:
        if not self.objectives or self.objectives[0] != "delta_m":
            raise SearchError(f"search config: field 'objectives' must start with 'delta_m', "
                              f"got {list(self.objectives)}")
        for o in self.objectives:
            if o not in OBJECTIVES:
                raise SearchError(f"search config: field 'objectives': unknown objective {o!r}; "
                                  f"valid: {sorted(OBJECTIVES)}")
        for r in self.references:
            if r not in REFERENCES:
                raise SearchError(f"search config: field 'references': unknown architecture {r!r}; "
                                  f"valid: {list(REFERENCES)}")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"search config: field 'sampler': unknown sampler {self.sampler!r}; "
                              f"valid: {list(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise SearchError(f"search config: field 'pruner': unknown pruner {self.pruner!r}; valid: {list(PRUNERS)}")
        if self.population is not None and (not isinstance(self.population, int) or self.population < 1):
            raise SearchError(f"search config: field 'population' must be an integer >= 1, got {self.population!r}")
        if self.n_trials < 1 or (self.n_seeds is not None and self.n_seeds < 1) or self.top_k < 0:
            raise SearchError(f"search config: n_trials ({self.n_trials}) and n_seeds ({self.n_seeds}) must be "
                              f">= 1, top_k ({self.top_k}) >= 0")

    @property
    def multi_objective(self) -> bool:
        """Whether the study has more than one objective (a Pareto front, no pruning)."""
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        """Optuna's direction of each objective, in order."""
        return [OBJECTIVES[o] for o in self.objectives]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for the tuples)."""
        d = asdict(self)
        d["objectives"], d["references"] = list(self.objectives), list(self.references)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SearchConfig":
        """The inverse of :meth:`to_dict`; unknown fields are rejected, as by ``TrainConfig.from_dict``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SearchError(f"search config: unknown field {unknown[0]!r}; valid fields: {sorted(known)}")
        kw = dict(d)
        for k in ("objectives", "references"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)

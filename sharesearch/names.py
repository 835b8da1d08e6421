"""The one place for every list of names (torch-free, optuna-free).

Reference architectures, loss-weighting methods, task-sampling modes and
metrics are named here once; every other module imports these lists.
"""

from __future__ import annotations

__all__ = ["REFERENCES", "WEIGHTINGS", "SAMPLINGS"]

#: reference architectures, in the order reports list them; "independent" is the control
REFERENCES: tuple[str, ...] = ("independent", "shared-bottom", "mmoe", "cross-stitch", "l2-soft")
#: loss-weighting methods (keys of :data:`sharesearch.weighting.WEIGHTINGS`)
WEIGHTINGS: tuple[str, ...] = ("equal", "uncertainty", "dwa", "gradnorm", "pcgrad")
#: task-sampling modes of the batcher
SAMPLINGS: tuple[str, ...] = ("uniform", "proportional")

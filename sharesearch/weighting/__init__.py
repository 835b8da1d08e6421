"""Loss-weighting methods for multi-task training, as small interchangeable classes.

Every method implements :class:`LossWeighting`: ``backward(losses,
shared_params)`` accumulates the gradients of its weighted multi-task loss
(the trainer zeroes gradients before and steps the optimiser after, and adds
``parameters()`` to the optimiser); ``epoch_end(mean_losses)`` is a per-epoch
hook. Build one by registry name with :func:`make_weighting`.

Example
-------
>>> sorted(WEIGHTINGS)
['dwa', 'equal', 'gradnorm', 'pcgrad', 'uncertainty']
>>> make_weighting("dwa", ["a", "b"], tau=1.0).tau
1.0
>>> make_weighting("nope", ["a"])
Traceback (most recent call last):
...
sharesearch.errors.SharesearchError: unknown weighting 'nope'; valid: dwa, equal, gradnorm, pcgrad, uncertainty
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

from .. import names
from ..errors import SharesearchError
from ._base import LossWeighting, StackedBalancer, StackedLosses
from .dwa import DWA
from .equal import EqualWeighting
from .gradnorm import GradNorm
from .pcgrad import PCGrad
from .uncertainty import UncertaintyWeighting

__all__ = [
    "LossWeighting",
    "StackedBalancer",
    "StackedLosses",
    "EqualWeighting",
    "UncertaintyWeighting",
    "DWA",
    "GradNorm",
    "PCGrad",
    "WEIGHTINGS",
    "make_weighting",
    "register_weighting",
    "weighting_options",
]

#: registry name -> class; add to it with :func:`register_weighting`
WEIGHTINGS: dict[str, type[LossWeighting]] = {}


def register_weighting(cls: type[LossWeighting]) -> type[LossWeighting]:
    """Register a :class:`LossWeighting` subclass under its ``name`` (usable as a decorator).

    The name also goes into :func:`sharesearch.names.weighting_names`, so a
    search space may choose it (``train.weighting``) and ``make_weighting``
    builds it; registering another class under a taken name is an error.

    Examples
    --------
    >>> register_weighting(DWA) is DWA
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, LossWeighting)):
        raise TypeError(f"register_weighting needs a LossWeighting subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if WEIGHTINGS.get(name, cls) is not cls:
        raise SharesearchError(f"weighting {name!r} is already registered to {WEIGHTINGS[name].__name__}")
    names.register_weighting(name)
    WEIGHTINGS[name] = cls
    return cls


for _cls in (EqualWeighting, UncertaintyWeighting, DWA, GradNorm, PCGrad):
    register_weighting(_cls)
del _cls


def weighting_options(name: str) -> list[str]:
    """Names of the typed keyword options of weighting ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`WEIGHTINGS`.

    Returns
    -------
    list of str
        Option names, e.g. ``['tau']`` for ``'dwa'``.

    Examples
    --------
    >>> weighting_options("gradnorm"), weighting_options("equal")
    (['alpha'], [])
    """
    sig = inspect.signature(WEIGHTINGS[name].__init__)
    return [
        p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"
    ]


def make_weighting(
    name: str,
    task_names: Sequence[str],
    priorities: Mapping[str, float] | None = None,
    seed: int = 0,
    **options: object,
) -> LossWeighting:
    """Build a loss-weighting method by registry name.

    Parameters
    ----------
    name : str
        A key of :data:`WEIGHTINGS`.
    task_names : sequence of str
        All tasks of the model.
    priorities : mapping of str to float, optional
        Multiplier of each task's loss (default ``1.0``).
    seed : int, optional
        The run's seed, for the methods that draw random numbers (PCGrad's
        projection order); accepted and ignored by the others.
    **options
        The method's typed keyword options (e.g. ``tau`` for ``dwa``).

    Returns
    -------
    LossWeighting
        The configured method.

    Raises
    ------
    SharesearchError
        For an unknown name (listing the valid names).
    ValueError
        For an option the method does not take (naming it and listing the
        valid options).
    """
    cls = WEIGHTINGS[names.check_name("weighting", name, sorted(WEIGHTINGS))]
    valid = weighting_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for weighting {name!r}; "
            f"valid options: {', '.join(valid) if valid else '(none)'}"
        )
    if "seed" in inspect.signature(cls.__init__).parameters:
        options = {**options, "seed": seed}
    return cls(task_names, priorities, **options)

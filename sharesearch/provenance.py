"""Where a saved model comes from, and which split its quoted figures are on (torch-free).

A model folder (:mod:`sharesearch.model_folder`) may carry ``provenance.json``:
the study, the arm (a trial or a reference architecture), the seed, whether
the weights are the very run the verdict evaluated or a retraining, and the
figures quoted for it with the split they were measured on. A reader can then
tell a test-set figure from a validation one without the study at hand.

Example
-------
>>> p = Provenance.from_dict({"study": "videos", "arm": "trial 23", "trial": 23, "seed": 0, "split": "test",
...                           "source": "verdict", "figures": {"clicked": {"auc": 0.81}}, "delta_m": 0.04})
>>> p.figures[0], p.describe()
(QuotedFigure(task='clicked', metric='auc', value=0.81), "study 'videos', trial 23, seed 0, the verdict's run; figures on the test split: clicked auc 0.81; Δm +4.00%")
>>> Provenance.from_dict(p.to_dict()) == p
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sharesearch.errors import SharesearchError

__all__ = ["Provenance", "QuotedFigure", "PROVENANCE_SPLITS", "PROVENANCE_SOURCES"]

#: the splits a quoted figure may be measured on
PROVENANCE_SPLITS = ("train", "val", "test")
#: "verdict": the weights are a run the verdict evaluated; "retrained": trained again for the export
PROVENANCE_SOURCES = ("verdict", "retrained")


@dataclass(frozen=True)
class QuotedFigure:
    """One figure quoted for the model: a task's metric on the provenance's split."""

    task: str      # the task name
    metric: str    # the metric name (sharesearch.names.METRICS)
    value: float   # its value, in the metric's own units


@dataclass(frozen=True)
class Provenance:
    """The origin of a saved model and the split its figures refer to."""

    arm: str                                # what was trained: "trial 23", "shared_bottom", "independent", ...
    split: str                              # the split ``figures`` and ``delta_m`` were measured on
    source: str = "verdict"                 # "verdict" (the evaluated run itself) or "retrained"
    study: str | None = None                # the Optuna study's name
    trial: int | None = None                # the trial number, None for a reference architecture
    seed: int | None = None                 # the training seed of these weights
    figures: tuple[QuotedFigure, ...] = ()  # per-task metrics on ``split``
    delta_m: float | None = None            # Δm against the independent control on ``split`` (a fraction)
    deltas: Mapping[str, float] = field(default_factory=dict)  # task -> its Δ against the control on ``split``

    def __post_init__(self) -> None:
        if not isinstance(self.arm, str) or not self.arm:
            raise SharesearchError(f"provenance: arm: expected a non-empty name, got {self.arm!r}")
        if self.split not in PROVENANCE_SPLITS:
            raise SharesearchError(f"provenance: split: expected one of {', '.join(PROVENANCE_SPLITS)}, "
                                   f"got {self.split!r}")
        if self.source not in PROVENANCE_SOURCES:
            raise SharesearchError(f"provenance: source: expected one of {', '.join(PROVENANCE_SOURCES)}, "
                                   f"got {self.source!r}")
        for key in ("trial", "seed"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise SharesearchError(f"provenance: {key}: expected an integer or none, got {v!r}")
        if self.study is not None and not isinstance(self.study, str):
            raise SharesearchError(f"provenance: study: expected a study name, got {self.study!r}")
        if self.delta_m is not None and not _number(self.delta_m):
            raise SharesearchError(f"provenance: delta_m: expected a finite number, got {self.delta_m!r}")
        object.__setattr__(self, "figures", _figures(self.figures))  # records, dicts or {task: {metric: v}}
        if isinstance(self.deltas, Mapping):  # NaN (no finite Δ) is kept as None: JSON has no NaN
            object.__setattr__(self, "deltas", {t: None if isinstance(v, float) and math.isnan(v) else v
                                                for t, v in self.deltas.items()})
        if not isinstance(self.deltas, Mapping) or not all(
                isinstance(t, str) and (_number(v) or v is None) for t, v in self.deltas.items()):
            raise SharesearchError(f"provenance: deltas: expected {{task: number}}, got {self.deltas!r}")

    def describe(self) -> str:
        """One line a person reads: what the weights are and which split the figures are on."""
        who = ", ".join(x for x in (f"study {self.study!r}" if self.study else "", self.arm,
                                    f"seed {self.seed}" if self.seed is not None else "",
                                    "the verdict's run" if self.source == "verdict" else "retrained") if x)
        figs = "; ".join(f"{f.task} {f.metric} {f.value:.4g}" for f in self.figures)
        dm = f"; Δm {self.delta_m * 100:+.2f}%" if self.delta_m is not None else ""
        ds = ", ".join(f"{t} {v * 100:+.2f}%" for t, v in self.deltas.items() if v is not None)
        return f"{who}; figures on the {self.split} split" + (f": {figs}" if figs else "") + dm + \
            (f"; Δ {ds}" if ds else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; :meth:`from_dict` reads it back."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["figures"] = [{"task": f.task, "metric": f.metric, "value": f.value} for f in self.figures]
        d["deltas"] = dict(self.deltas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Provenance:
        """A record from JSON data. ``figures`` is a list of ``{task, metric, value}`` or ``{task: {metric: value}}``.

        >>> Provenance.from_dict({"arm": "x", "split": "test", "colour": 1})
        Traceback (most recent call last):
        ...
        sharesearch.errors.SharesearchError: provenance: unknown key 'colour' (valid keys: arm, split, source, study, trial, seed, figures, delta_m, deltas)
        """
        if not isinstance(d, Mapping):
            raise SharesearchError(f"provenance: expected a table of fields, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        for k in d:
            if k not in names:
                raise SharesearchError(f"provenance: unknown key {str(k)!r} (valid keys: {', '.join(names)})")
        for k in ("arm", "split"):
            if k not in d:
                raise SharesearchError(f"provenance: {k}: missing required key")
        kw = dict(d)
        if kw.get("delta_m") is not None and _number(kw["delta_m"]):
            kw["delta_m"] = float(kw["delta_m"])
        return cls(**kw)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _figures(raw: Any) -> tuple[QuotedFigure, ...]:
    """Quoted figures from a list of records or a ``{task: {metric: value}}`` table; NaN values are left out."""
    if isinstance(raw, Mapping):
        items = []
        for task, metrics in raw.items():
            if not isinstance(metrics, Mapping):
                raise SharesearchError(f"provenance: figures[{task!r}]: expected {{metric: value}}, got {metrics!r}")
            items += [{"task": task, "metric": m, "value": v} for m, v in metrics.items()]
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise SharesearchError(f"provenance: figures: expected a list or a table, got {raw!r}")
    out = []
    for i, f in enumerate(items):
        if isinstance(f, QuotedFigure):
            f = {"task": f.task, "metric": f.metric, "value": f.value}
        ok = (isinstance(f, Mapping) and set(f) == {"task", "metric", "value"} and isinstance(f["task"], str)
              and isinstance(f["metric"], str) and (_number(f["value"]) or f["value"] is None
                                                    or (isinstance(f["value"], float) and math.isnan(f["value"]))))
        if not ok:
            raise SharesearchError(f"provenance: figures[{i}]: expected {{task, metric, value}}, got {f!r}")
        if f["value"] is not None and not math.isnan(f["value"]):
            out.append(QuotedFigure(task=f["task"], metric=f["metric"], value=float(f["value"])))
    return tuple(out)

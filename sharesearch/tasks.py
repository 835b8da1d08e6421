"""Task specifications: what each prediction task is, how it is scored and lost.

A :class:`TaskSpec` is pure data (a frozen dataclass). Everything that needs to
know about a task's kind -- the head's output size, the loss, the metrics and
their direction -- asks the spec, so the trainer never branches on task names.

Labels may be missing: label tensors are float and hold ``NaN`` where an
example carries no label for the task (class labels are stored as floats
``0.0 .. n-1``). Losses and metrics use only labelled examples.

Example
-------
>>> t = TaskSpec("clicked", "binary")
>>> t.out_dim, t.primary_metric, metric_direction("auc")
(1, 'auc', 'maximize')
>>> TaskSpec("digit", "multiclass", n_classes=10).out_dim
10
"""

from __future__ import annotations

from sharesearch.errors import SharesearchError

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .names import METRICS, metric_names

__all__ = [
    "TASK_KINDS",
    "METRICS",
    "TaskSpec",
    "metric_direction",
    "default_metrics",
    "labelled_mask",
    "task_loss",
    "TaskLosses",
    "compute_metric",
    "metric_values",
    "sign",
]

TASK_KINDS = ("binary", "multiclass", "regression")

_DEFAULT_METRICS = {
    "binary": ("auc", "accuracy"),
    "multiclass": ("accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "r2"),
}


def default_metrics(kind: str) -> tuple[str, ...]:
    """The metrics a task of ``kind`` reports when its spec names none (the first selects).

    >>> default_metrics("regression")
    ('rmse', 'mae', 'r2')
    """
    return _DEFAULT_METRICS[kind]


def metric_direction(name: str) -> str:
    """Return ``"maximize"`` or ``"minimize"`` for a metric name."""
    try:
        return METRICS[name].direction
    except KeyError:
        raise SharesearchError(f"unknown metric {name!r}; valid metrics: {sorted(METRICS)}") from None


def sign(metric: str) -> float:
    """+1 when higher is better, -1 when lower is better."""
    return 1.0 if metric_direction(metric) == "maximize" else -1.0


@dataclass(frozen=True)
class TaskSpec:
    """One prediction task.

    Attributes mirror the data-spec file's ``[[targets]]`` entries.
    """

    name: str  # unique task name; also the output key of the network
    kind: str  # "binary" | "multiclass" | "regression"
    n_classes: int = 2  # classes of a multiclass task (binary is 2)
    metrics: tuple[str, ...] = ()  # reported metrics; first is the primary (selection) metric
    weight: float = 1.0  # priority weight in the loss and in the Δm objective
    classes: tuple[str, ...] = field(default=(), compare=False)  # original labels, for reports
    target_mean: float = 0.0  # regression: mean used to standardise the target
    target_std: float = 1.0  # regression: std used to standardise the target

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SharesearchError(f"task name must be a non-empty string, got {self.name!r}")
        if self.kind not in TASK_KINDS:
            raise SharesearchError(f"task {self.name!r}: unknown kind {self.kind!r}; valid kinds: {list(TASK_KINDS)}")
        if self.kind == "multiclass" and (not isinstance(self.n_classes, int) or self.n_classes < 2):
            raise SharesearchError(f"task {self.name!r}: n_classes must be an integer >= 2, got {self.n_classes!r}")
        if self.kind == "binary" and self.n_classes != 2:
            object.__setattr__(self, "n_classes", 2)
        if not self.metrics:
            object.__setattr__(self, "metrics", _DEFAULT_METRICS[self.kind])
        valid = ", ".join(metric_names(self.kind))
        for m in self.metrics:
            if m not in METRICS:
                raise SharesearchError(f"task {self.name!r}: unknown metric {m!r}; valid metrics of a {self.kind} "
                                       f"task: {valid}")
            if self.kind not in METRICS[m].kinds:
                raise SharesearchError(f"task {self.name!r}: metric {m!r} does not apply to a {self.kind} task "
                                       f"(valid: {valid})")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight > 0):
            raise SharesearchError(f"task {self.name!r}: weight must be a positive number, got {self.weight!r}")
        if not (self.target_std > 0 and math.isfinite(self.target_std)):
            raise SharesearchError(f"task {self.name!r}: target_std must be positive, got {self.target_std!r}")

    @property
    def out_dim(self) -> int:
        """Size of the task head's output (1 logit, n logits, or 1 value)."""
        return self.n_classes if self.kind == "multiclass" else 1

    @property
    def primary_metric(self) -> str:
        """The metric used for model selection and for Δm."""
        return self.metrics[0]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "n_classes": self.n_classes,
            "metrics": list(self.metrics),
            "weight": self.weight,
            "classes": list(self.classes),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        d = dict(d)
        d["metrics"] = tuple(d.get("metrics", ()))
        d["classes"] = tuple(d.get("classes", ()))
        return cls(**d)


def labelled_mask(spec: TaskSpec, y: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the examples that carry a label for ``spec``."""
    return ~torch.isnan(y)


def task_loss(spec: TaskSpec, out: torch.Tensor, y: torch.Tensor, dense: bool = False,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss over the labelled examples (0, with a graph, when there are none).

    ``out`` is the head output, shape [B, out_dim]; ``y`` is [B] (float, NaN =
    missing). Regression targets are expected already standardised. The
    computation is masked rather than indexed, so it never synchronises a GPU.
    ``dense=True`` promises every label is present and skips the masking.
    ``weights`` ([B], finite, >= 0; a spec's ``weight_column``) makes it the
    weighted mean ``sum(w * loss) / sum(w)`` over the labelled rows, so a row of
    weight 2 counts as that row twice; ``None`` is the plain mean, computed
    exactly as before weights existed.

    >>> spec = TaskSpec("t", "binary")
    >>> float(task_loss(spec, torch.zeros(2, 1), torch.tensor([1.0, float("nan")])))  # log 2
    0.6931471824645996
    >>> out, y = torch.tensor([[0.0], [2.0]]), torch.tensor([1.0, 0.0])
    >>> twice = task_loss(spec, torch.tensor([[0.0], [0.0], [2.0]]), torch.tensor([1.0, 1.0, 0.0]))
    >>> bool(torch.isclose(task_loss(spec, out, y, weights=torch.tensor([2.0, 1.0])), twice))
    True
    """
    if dense and weights is None:
        o, t = out.float(), y.float()
        if spec.kind == "binary":
            return F.binary_cross_entropy_with_logits(o[:, 0], t)
        if spec.kind == "multiclass":
            return F.cross_entropy(o, t.long())
        return F.mse_loss(o[:, 0], t)
    mask = ~torch.isnan(y)  # [B]
    yy = torch.where(mask, y, torch.zeros_like(y))  # [B]
    o = out.float()
    if spec.kind == "binary":
        per = F.binary_cross_entropy_with_logits(o[:, 0], yy.float(), reduction="none")  # [B]
    elif spec.kind == "multiclass":
        per = F.cross_entropy(o, yy.long(), reduction="none")  # [B]
    else:
        per = (o[:, 0] - yy.float()) ** 2  # [B]
    return _masked_mean(per, mask, weights)


def _masked_mean(per: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``per [..., B]`` averaged over its last dim on the labelled rows ``mask``, weighted by ``weights [B]``
    when given; 0 (with a graph) where no row is labelled: ``[...]``."""
    m = mask.to(per.dtype)  # [..., B]
    if weights is None:
        return (per * m).sum(dim=-1) / m.sum(dim=-1).clamp(min=1.0)
    wm = weights.to(per.dtype) * m  # [..., B]: 0 on unlabelled rows
    return (per * wm).sum(dim=-1) / wm.sum(dim=-1).clamp(min=torch.finfo(per.dtype).tiny)  # 0: no weight labelled


class TaskLosses:
    """Every task's :func:`task_loss` on one batch as one ``[T]`` tensor, in a few ops for all tasks at once.

    A training step needs each task's loss; computed task by task that is
    about eleven small ops (and as many backward nodes) per task, ~1 ms a step
    for 6 tasks on a CPU. Here the binary and regression tasks are one
    ``[S, B]`` block (outputs stacked, labels gathered once, one mask, one
    masked mean per row); a multiclass task still takes :func:`task_loss`. The
    formulas are :func:`task_loss`'s; the values can differ from it in the
    last bits (a kernel may take its vectorised path on the block where it took
    the scalar one on a strided column, and a dense mean is reduced per row).

    Parameters
    ----------
    specs : sequence of TaskSpec
        The run's tasks, in the order of the result.
    cols : sequence of int
        Each task's column of the label matrix ``y``.

    Examples
    --------
    >>> specs = [TaskSpec("a", "binary"), TaskSpec("b", "regression")]
    >>> out = {"a": torch.zeros(3, 1), "b": torch.ones(3, 1)}
    >>> y = torch.tensor([[1.0, 0.0], [float("nan"), 2.0], [0.0, float("nan")]])  # [B=3, T_data=2]
    >>> [round(v, 4) for v in TaskLosses(specs, [0, 1])(out, y).tolist()]  # log 2; (1 + 1) / 2
    [0.6931, 1.0]
    """

    def __init__(self, specs: "list[TaskSpec] | tuple[TaskSpec, ...]", cols: "list[int] | tuple[int, ...]") -> None:
        if len(specs) != len(cols) or not specs:
            raise ValueError(f"TaskLosses needs one label column per task, got {len(cols)} for {len(specs)} tasks")
        self.specs, self.cols = tuple(specs), tuple(int(c) for c in cols)
        self.names = tuple(s.name for s in self.specs)
        binary = [i for i, s in enumerate(self.specs) if s.kind == "binary"]
        regression = [i for i, s in enumerate(self.specs) if s.kind == "regression"]
        self._scalar = tuple(binary + regression)  # the block's rows: binary tasks first
        self._n_binary = len(binary)
        self._multi = tuple(i for i, s in enumerate(self.specs) if s.kind == "multiclass")
        placed = list(self._scalar + self._multi)  # result position -> task; the inverse puts tasks in order
        self._order = sorted(range(len(placed)), key=placed.__getitem__)
        self._in_order = self._order == list(range(len(placed)))
        self._index: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # device -> (block cols, order)

    def _indices(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._index:
            self._index[device] = (torch.tensor([self.cols[i] for i in self._scalar], dtype=torch.long, device=device),
                                   torch.tensor(self._order, dtype=torch.long, device=device))
        return self._index[device]

    def __call__(self, out: "dict[str, torch.Tensor]", y: torch.Tensor, dense: bool = False,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
        """``out`` ``{task: [*M, B, out_dim]}``, labels ``y [*M, B, T_data]`` (NaN: missing), sample weights
        ``[*M, B]`` or None -> ``[*M, T]`` the losses in the order of ``specs`` (``dense`` as in
        :func:`task_loss`). ``M`` is any number of leading axes (a population's members: ``[P]``); each slice
        gets the losses it would get alone."""
        parts = []
        block_cols, order = self._indices(y.device)
        if self._scalar:
            o = torch.stack([out[self.names[i]].select(-1, 0) for i in self._scalar], dim=-2).float()  # [*M, S, B]
            t = y.transpose(-1, -2).index_select(-2, block_cols).float()  # [*M, S, B], contiguous
            if dense and weights is None:
                parts.append(self._per_row(o, t).mean(dim=-1))  # [*M, S]
            else:
                mask = ~torch.isnan(t)  # [*M, S, B]
                w = None if weights is None else weights.unsqueeze(-2)  # [*M, 1, B]
                parts.append(_masked_mean(self._per_row(o, torch.where(mask, t, 0.0)), mask, w))  # [*M, S]
        for i in self._multi:
            o, t = out[self.names[i]], y[..., self.cols[i]]  # [*M, B, C], [*M, B]
            if o.dim() == 2:
                parts.append(task_loss(self.specs[i], o, t, dense, weights)[None])  # [1]
            else:  # one slice at a time: cross-entropy takes its classes on dim 1
                lead = o.shape[:-2]
                o, t = o.reshape(-1, *o.shape[-2:]), t.reshape(-1, t.shape[-1])  # [M, B, C], [M, B]
                ws = [None] * o.shape[0] if weights is None else weights.reshape(-1, weights.shape[-1])
                per = torch.stack([task_loss(self.specs[i], a, b, dense, c) for a, b, c in zip(o, t, ws)])  # [M]
                parts.append(per.view(*lead, 1))  # [*M, 1]
        stacked = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # [*M, T] in block order
        return stacked if self._in_order else stacked.index_select(-1, order)  # [*M, T]

    def _per_row(self, o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``[*M, S, B]`` elementwise losses: binary cross-entropy on the first rows, squared error on the rest."""
        nb = self._n_binary
        if nb == o.shape[-2]:
            return F.binary_cross_entropy_with_logits(o, t, reduction="none")
        if nb == 0:
            return (o - t) ** 2
        rest = o.shape[-2] - nb
        return torch.cat([F.binary_cross_entropy_with_logits(o.narrow(-2, 0, nb), t.narrow(-2, 0, nb), reduction="none"),
                          (o.narrow(-2, nb, rest) - t.narrow(-2, nb, rest)) ** 2], dim=-2)


def _auc(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """ROC AUC of the scores ``s [*M, n]`` against the 0/1 labels ``y [n]`` (the Mann-Whitney U of average
    ranks): ``[*M]``, NaN without both classes."""
    from scipy.stats import rankdata

    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(s.shape[:-1], np.nan)
    r = rankdata(s, axis=-1)  # [*M, n]
    return (r[..., pos].sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _each(fn, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``fn(y, s_i)`` for every slice ``s_i [n]`` of ``s [*M, n]`` (a scikit-learn metric takes one at a time)."""
    return np.array([fn(y, row) for row in s.reshape(-1, s.shape[-1])]).reshape(s.shape[:-1])


def _f1(y: np.ndarray, pred: np.ndarray, average: str) -> float:
    """scikit-learn's F1 (NaN, not a warning, when no row is positive in labels or predictions)."""
    from sklearn.metrics import f1_score

    if average == "binary" and not ((y == 1).any() or (pred == 1).any()):
        return float("nan")
    return float(f1_score(y, pred, average=average, zero_division=0.0))


def _average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """scikit-learn's average precision of scores ``s`` (NaN without a positive label)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s)) if (y == 1).any() else float("nan")


def compute_metric(spec: TaskSpec, metric: str, out: torch.Tensor, y: torch.Tensor) -> float:
    """Compute ``metric`` over labelled examples, in the task's own units.

    Regression outputs and targets are un-standardised with the spec's
    ``target_mean``/``target_std`` first, so RMSE/MAE are in original units.
    F1 (``f1``: the positive class of a binary task; ``macro_f1``) and
    ``average_precision`` are scikit-learn's; a binary prediction is positive
    when its logit is > 0. Metrics are unweighted (sample weights shape the
    loss only). NaN when a score is undefined (no labelled row; AUC or
    average precision without both classes; F1 with no positive at all).

    >>> spec = TaskSpec("t", "binary")
    >>> logits, y = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]]), torch.tensor([1.0, 1.0, 0.0, float("nan")])
    >>> compute_metric(spec, "f1", logits, y), round(compute_metric(spec, "average_precision", logits, y), 4)
    (0.5, 0.8333)
    """
    return float(metric_values(spec, metric, out, y))


def metric_values(spec: TaskSpec, metric: str, out: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """:func:`compute_metric` of every slice of ``out [*M, N, out_dim]`` against the labels ``y [N]``: ``[*M]``.

    A population's members (``M``) are scored against the same labels in a
    few array ops, not a call each; every slice's value is the one
    :func:`compute_metric` gives it alone.

    >>> spec = TaskSpec("t", "regression")
    >>> out = torch.tensor([[[0.0], [2.0]], [[1.0], [1.0]]])  # [M=2, N=2, 1]
    >>> metric_values(spec, "rmse", out, torch.tensor([0.0, 2.0])).tolist()
    [0.0, 1.0]
    """
    mask = labelled_mask(spec, y)  # [N]
    if not bool(mask.any()):
        return np.full(out.shape[:-2], np.nan)
    o = out[..., mask, :].detach().float().cpu().numpy()  # [*M, n, out_dim]
    t = y[mask].detach().float().cpu().numpy()  # [n]
    if spec.kind == "regression":
        p = o[..., 0] * spec.target_std + spec.target_mean  # [*M, n]
        t = t * spec.target_std + spec.target_mean
        if metric == "rmse":
            return np.sqrt(np.mean((p - t) ** 2, axis=-1))
        if metric == "mae":
            return np.mean(np.abs(p - t), axis=-1)
        if metric == "r2":
            ss = float(np.sum((t - t.mean()) ** 2))
            return 1.0 - np.sum((p - t) ** 2, axis=-1) / ss if ss > 0 else np.full(p.shape[:-1], np.nan)
    elif spec.kind == "binary":
        s = o[..., 0]  # [*M, n]
        if metric == "auc":
            return _auc(t, s)
        if metric == "accuracy":
            return np.mean((s > 0) == (t == 1), axis=-1)
        if metric == "macro_f1":
            return _each(lambda a, b: _f1(a, (b > 0).astype(int), "macro"), t.astype(int), s)
        if metric == "f1":
            return _each(lambda a, b: _f1(a, (b > 0).astype(int), "binary"), t.astype(int), s)
        if metric == "average_precision":
            return _each(_average_precision, t.astype(int), s)
        if metric == "logloss":
            p = np.clip(1 / (1 + np.exp(-s)), 1e-7, 1 - 1e-7)
            return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), axis=-1)
    else:
        pred = o.argmax(axis=-1)  # [*M, n]
        if metric == "accuracy":
            return np.mean(pred == t, axis=-1)
        if metric == "macro_f1":
            return _each(lambda a, b: _f1(a, b, "macro"), t.astype(int), pred)
        if metric == "logloss":
            lo = o - o.max(axis=-1, keepdims=True)  # [*M, n, C]
            logp = lo - np.log(np.exp(lo).sum(axis=-1, keepdims=True))
            picked = np.take_along_axis(logp, np.broadcast_to(t.astype(int)[:, None], (*logp.shape[:-1], 1)), -1)
            return -np.mean(picked[..., 0], axis=-1)  # [*M]
    raise SharesearchError(f"task {spec.name!r}: metric {metric!r} does not apply to a {spec.kind} task")

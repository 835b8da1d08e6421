"""Backbones: the per-stage shape of the network every sharing graph is laid on.

A backbone says what one *block* of stage ``l`` is (a linear layer of an MLP,
a conv layer of a small CNN), how many parameters and FLOPs it has, and how to
run ``G`` sibling blocks of a stage at once (stacked weights). The sharing
graph decides how many blocks each stage has and which tasks use which.

Adding a backbone is one class plus one :func:`register_backbone` call.

Example
-------
>>> bb = make_backbone({"name": "mlp", "input_shape": [8], "widths": [16, 4]})
>>> bb.n_stages, bb.in_features(0), bb.out_features(1), bb.head_in
(2, 8, 4, 4)
>>> bb.block_params(0)            # 8*16 weights + 16 biases
144
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

__all__ = [
    "Backbone",
    "MLPBackbone",
    "CNNBackbone",
    "BACKBONES",
    "register_backbone",
    "make_backbone",
]

BACKBONES: dict[str, type["Backbone"]] = {}


def register_backbone(cls: type["Backbone"]) -> type["Backbone"]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    BACKBONES[cls.name] = cls
    return cls


def make_backbone(spec: "dict[str, Any] | Backbone") -> "Backbone":
    """Build a backbone from its dict form (``{"name": ..., ...}``)."""
    if isinstance(spec, Backbone):
        return spec
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"backbone: expected a mapping with a 'name' field, got {spec!r}")
    name = spec["name"]
    if name not in BACKBONES:
        raise ValueError(f"backbone: unknown name {name!r}; valid names: {sorted(BACKBONES)}")
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        return BACKBONES[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"backbone {name!r}: bad fields {sorted(kwargs)}: {e}") from None


class Backbone(ABC):
    """A stack of ``n_stages`` stages; a block of stage ``l`` maps
    ``in_features(l)`` to ``out_features(l)`` features (channels for a CNN).

    Subclasses define the pure shape/cost arithmetic here and the torch side
    (:meth:`stage_forward`, :meth:`init_stage`) used by the compiler.
    """

    name: ClassVar[str]

    def __init__(self, input_shape, widths, dropout: float = 0.0) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.widths = tuple(int(w) for w in widths)
        self.dropout = float(dropout)
        if not self.widths:
            raise ValueError(f"backbone {self.name!r}: field 'widths' must list at least one stage width")
        for w in self.widths:
            if w < 1:
                raise ValueError(f"backbone {self.name!r}: field 'widths' has a non-positive width {w}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"backbone {self.name!r}: field 'dropout' must be in [0, 1), got {dropout!r}")

    @property
    def n_stages(self) -> int:
        return len(self.widths)

    def out_features(self, stage: int) -> int:
        return self.widths[stage]

    @abstractmethod
    def in_features(self, stage: int) -> int:
        """Features (or channels) entering a block of ``stage``."""

    @property
    def head_in(self) -> int:
        """Features a task head receives (after any pooling/flattening)."""
        return self.widths[-1]

    @abstractmethod
    def block_params(self, stage: int, z_extra: int = 0) -> int:
        """Parameters of one block of ``stage`` whose input has ``z_extra`` more features."""

    @abstractmethod
    def block_flops(self, stage: int, z_extra: int = 0) -> int:
        """Multiply-accumulates x2 of one block on one example (one stream)."""

    @abstractmethod
    def spatial(self, stage: int) -> int:
        """Spatial positions of a block's output of ``stage`` (1 for vectors)."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": list(self.input_shape), "widths": list(self.widths),
                "dropout": self.dropout}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backbone) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()})"


@register_backbone
class MLPBackbone(Backbone):
    """Fully connected stages for vectors and tables: ``Linear -> ReLU -> Dropout``."""

    name = "mlp"

    def __init__(self, input_shape, widths, dropout: float = 0.0) -> None:
        super().__init__(input_shape, widths, dropout)
        if len(self.input_shape) != 1:
            raise ValueError(f"backbone 'mlp': field 'input_shape' must be [n_features], got {list(self.input_shape)}")

    def in_features(self, stage: int) -> int:
        return self.input_shape[0] if stage == 0 else self.widths[stage - 1]

    def block_params(self, stage: int, z_extra: int = 0) -> int:
        return (self.in_features(stage) + z_extra) * self.out_features(stage) + self.out_features(stage)

    def block_flops(self, stage: int, z_extra: int = 0) -> int:
        return 2 * (self.in_features(stage) + z_extra) * self.out_features(stage)

    def spatial(self, stage: int) -> int:
        return 1


@register_backbone
class CNNBackbone(Backbone):
    """Small CNN for images ``[C, H, W]``: each stage is
    ``Conv(k x k, same padding) -> ReLU -> MaxPool(2)`` (the pool is skipped
    once the map is smaller than 2). Heads see the global-average-pooled
    channels of the last stage.
    """

    name = "cnn"

    def __init__(self, input_shape, widths, dropout: float = 0.0, kernel: int = 3) -> None:
        super().__init__(input_shape, widths, dropout)
        self.kernel = int(kernel)
        if len(self.input_shape) != 3:
            raise ValueError(f"backbone 'cnn': field 'input_shape' must be [C, H, W], got {list(self.input_shape)}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"backbone 'cnn': field 'kernel' must be odd and positive, got {kernel!r}")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "kernel": self.kernel}

    def in_features(self, stage: int) -> int:
        return self.input_shape[0] if stage == 0 else self.widths[stage - 1]

    def hw_in(self, stage: int) -> tuple[int, int]:
        """Spatial size entering ``stage``."""
        h, w = self.input_shape[1], self.input_shape[2]
        for _ in range(stage):
            if self.pools(h, w):
                h, w = h // 2, w // 2
        return h, w

    @staticmethod
    def pools(h: int, w: int) -> bool:
        return h >= 2 and w >= 2

    def spatial(self, stage: int) -> int:
        h, w = self.hw_in(stage)
        return h * w  # conv output before pooling

    def block_params(self, stage: int, z_extra: int = 0) -> int:
        cin, cout = self.in_features(stage) + z_extra, self.out_features(stage)
        return cin * cout * self.kernel**2 + cout

    def block_flops(self, stage: int, z_extra: int = 0) -> int:
        cin, cout = self.in_features(stage) + z_extra, self.out_features(stage)
        return 2 * cin * cout * self.kernel**2 * self.spatial(stage)


def _isfinite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)

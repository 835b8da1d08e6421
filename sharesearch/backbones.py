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

from sharesearch.errors import SharesearchError

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
        raise SharesearchError(f"backbone: expected a mapping with a 'name' field, got {spec!r}")
    name = spec["name"]
    if name not in BACKBONES:
        raise SharesearchError(f"backbone: unknown name {name!r}; valid names: {sorted(BACKBONES)}")
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        return BACKBONES[name](**kwargs)
    except TypeError as e:
        raise SharesearchError(f"backbone {name!r}: bad fields {sorted(kwargs)}: {e}") from None


class Backbone(ABC):
    """A stack of ``n_stages`` stages; a block of stage ``l`` maps
    ``in_features(l)`` to ``out_features(l)`` features (channels for a CNN).

    Subclasses define the pure shape/cost arithmetic here and the torch side
    (:meth:`weight_shape`, :meth:`run_blocks`, :meth:`activate`,
    :meth:`prefers_batched`) used by the compiler in :mod:`sharesearch.network`.
    """

    name: ClassVar[str]

    def __init__(self, input_shape, widths, dropout: float = 0.0) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.widths = tuple(int(w) for w in widths)
        self.dropout = float(dropout)
        if not self.widths:
            raise SharesearchError(f"backbone {self.name!r}: field 'widths' must list at least one stage width")
        for w in self.widths:
            if w < 1:
                raise SharesearchError(f"backbone {self.name!r}: field 'widths' has a non-positive width {w}")
        if not 0.0 <= self.dropout < 1.0:
            raise SharesearchError(f"backbone {self.name!r}: field 'dropout' must be in [0, 1), got {dropout!r}")

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

    # ------------------------------------------------------------ torch side
    # Activations travel as *stream tensors* ``[S, B, *features]`` (one row per
    # stream); the methods below run ``A`` blocks of one stage at once. torch is
    # imported lazily so that the graph IR stays importable without it.

    @abstractmethod
    def weight_shape(self, stage: int, z_extra: int = 0) -> tuple[int, ...]:
        """Shape of one block's weight (bias is ``[out_features(stage)]``)."""

    def init_block(self, stage: int, z_extra: int = 0, generator=None):
        """Fresh ``(weight, bias)`` of one block: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        like ``nn.Linear``/``nn.Conv2d``, drawn from ``generator``."""
        import torch

        shape = self.weight_shape(stage, z_extra)
        bound = 1.0 / math.sqrt(math.prod(shape[1:]))
        w = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        b = (torch.rand(shape[0], generator=generator) * 2 - 1) * bound
        return w, b

    @abstractmethod
    def run_blocks(self, x, weights, biases, *, batched: bool, shared_input: bool):
        """Pre-activations of ``A`` blocks: ``x`` is ``[A, B, *in]`` (block ``a``
        reads ``x[a]``), or ``[B, *in]`` read by every block when ``shared_input``.
        ``weights``/``biases`` are lists of ``A`` tensors. ``batched`` stacks them
        into one batched op; otherwise a loop over blocks. Returns ``[A, B, *out]``."""

    @abstractmethod
    def activate(self, y, training: bool):
        """The rest of the stage op on ``[A, B, *out]`` (ReLU, pooling, dropout)."""

    def prefers_batched(self, stage: int, n_blocks: int) -> bool:
        """Whether ``n_blocks`` sibling blocks of ``stage`` run faster batched."""
        return n_blocks > 1

    def pool(self, x):
        """``[..., *features]`` -> ``[..., C]``: what a gate or head reads."""
        return x

    def channel_view(self, v):
        """``[A, C]`` -> a view that broadcasts against ``[A, B, C, *spatial]``."""
        return v[:, None, :]

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
            raise SharesearchError(f"backbone 'mlp': field 'input_shape' must be [n_features], got {list(self.input_shape)}")

    def in_features(self, stage: int) -> int:
        return self.input_shape[0] if stage == 0 else self.widths[stage - 1]

    def block_params(self, stage: int, z_extra: int = 0) -> int:
        return (self.in_features(stage) + z_extra) * self.out_features(stage) + self.out_features(stage)

    def block_flops(self, stage: int, z_extra: int = 0) -> int:
        return 2 * (self.in_features(stage) + z_extra) * self.out_features(stage)

    def spatial(self, stage: int) -> int:
        return 1

    def weight_shape(self, stage: int, z_extra: int = 0) -> tuple[int, ...]:
        return (self.out_features(stage), self.in_features(stage) + z_extra)

    # Measured with `python benchmarks/bench_network.py --sweep` (2 CPU threads,
    # batch 256, Linear+ReLU fwd+bwd, square blocks; ratio = loop / batched):
    #   quiet 16-core host (the GPU box's CPU, 2 threads used):
    #   width   G=2   G=4   G=8   G=16
    #     32   1.25  1.41  2.04  2.25
    #     64   1.19  1.71  1.79  1.90
    #    128   1.20  1.26  1.32  1.20
    #    256   0.98  0.97  0.88  0.89
    #    512   0.95  0.90  0.95  0.65
    #   (the shared 2-core dev box, noisier, agreed up to width 128: 1.12-3.22x)
    # so: batch blocks of fewer than 256*256 weights; above that BLAS already
    # keeps both cores busy and stacking the weights only adds copies.
    BATCH_MAX_WEIGHTS = 256 * 256

    def prefers_batched(self, stage: int, n_blocks: int) -> bool:
        """Batched matmul for >= 2 blocks of fewer than 256*256 weights, else a loop.

        >>> bb = MLPBackbone([64], [64, 512, 512])
        >>> bb.prefers_batched(0, 2), bb.prefers_batched(0, 1), bb.prefers_batched(2, 8)
        (True, False, False)
        """
        return n_blocks > 1 and self.in_features(stage) * self.out_features(stage) < self.BATCH_MAX_WEIGHTS

    def run_blocks(self, x, weights, biases, *, batched: bool, shared_input: bool):
        import torch
        import torch.nn.functional as F

        A = len(weights)
        if shared_input and (batched or A == 1):
            # one GEMM against the concatenated weights: [B, Din] @ [Din, A*Dout]
            y = F.linear(x, torch.cat(weights), torch.cat(biases))  # [B, A*Dout]
            return y.view(x.shape[0], A, -1).transpose(0, 1)  # [A, B, Dout]
        if batched:
            w = torch.stack(weights)  # [A, Dout, Din]
            b = torch.stack(biases)  # [A, Dout]
            return torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))  # [A, B, Dout]
        # unbind, not x[a]: each x[a]'s backward would fill a zero tensor of x's full size
        xs = [x] * A if shared_input else x.unbind(0)
        rows = [F.linear(xs[a], weights[a], biases[a]) for a in range(A)]  # A x [B, Dout]
        return rows[0][None] if A == 1 else torch.stack(rows)  # [A, B, Dout]

    def activate(self, y, training: bool):
        import torch.nn.functional as F

        y = F.relu(y)  # [A, B, Dout]
        return F.dropout(y, self.dropout, training) if self.dropout > 0 else y


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
            raise SharesearchError(f"backbone 'cnn': field 'input_shape' must be [C, H, W], got {list(self.input_shape)}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise SharesearchError(f"backbone 'cnn': field 'kernel' must be odd and positive, got {kernel!r}")

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

    def weight_shape(self, stage: int, z_extra: int = 0) -> tuple[int, ...]:
        return (self.out_features(stage), self.in_features(stage) + z_extra, self.kernel, self.kernel)

    # Measured with `python benchmarks/bench_network.py --sweep` (2 CPU threads,
    # batch 64, 3x3 conv + ReLU, fwd+bwd; loop / grouped-conv time, quiet host
    # first, shared dev box in brackets):
    #                          G=2          G=4          G=8
    #   3->8 ch, 16x16 px     0.78 (1.23)  0.61 (0.86)  0.56 (0.89)
    #   8->8 ch, 16x16 px     1.03 (1.37)  1.13 (1.26)  1.17 (1.49)
    #   16->16 ch, 8x8 px     0.92 (1.21)  1.30 (1.36)  1.38 (1.19)
    #   32->32 ch, 8x8 px     1.01 (1.04)  1.12 (0.96)  1.17 (1.09)
    #   64->64 ch, 4x4 px     1.10 (1.07)  1.25 (1.19)  1.25 (1.05)
    # Grouped wins or ties except on a 3-channel (RGB) input, where it loses.
    def prefers_batched(self, stage: int, n_blocks: int) -> bool:
        """Grouped convolution for ``n_blocks >= 2`` blocks reading at least 4
        channels; a loop over blocks reading fewer (numbers in the comment above).

        >>> bb = CNNBackbone([3, 8, 8], [8, 8])
        >>> bb.prefers_batched(0, 4), bb.prefers_batched(1, 2), bb.prefers_batched(1, 1)
        (False, True, False)
        """
        return n_blocks > 1 and self.in_features(stage) >= 4

    def run_blocks(self, x, weights, biases, *, batched: bool, shared_input: bool):
        import torch
        import torch.nn.functional as F

        A, pad = len(weights), self.kernel // 2
        if shared_input and (batched or A == 1):
            y = F.conv2d(x, torch.cat(weights), torch.cat(biases), padding=pad)  # [B, A*Cout, H, W]
            return y.unflatten(1, (A, -1)).transpose(0, 1)  # [A, B, Cout, H, W]
        if batched:
            _, B, cin, h, w = x.shape
            xg = x.transpose(0, 1).reshape(B, A * cin, h, w)  # [B, A*Cin, H, W]
            y = F.conv2d(xg, torch.cat(weights), torch.cat(biases), padding=pad, groups=A)  # [B, A*Cout, H, W]
            return y.unflatten(1, (A, -1)).transpose(0, 1)  # [A, B, Cout, H, W]
        xs = [x] * A if shared_input else x.unbind(0)
        rows = [F.conv2d(xs[a], weights[a], biases[a], padding=pad) for a in range(A)]  # A x [B, Cout, H, W]
        return rows[0][None] if A == 1 else torch.stack(rows)  # [A, B, Cout, H, W]

    def activate(self, y, training: bool):
        import torch.nn.functional as F

        y = F.relu(y)  # [A, B, C, H, W]
        A, B, C, h, w = y.shape
        if self.pools(h, w):
            y = F.max_pool2d(y.reshape(A * B, C, h, w), 2).view(A, B, C, h // 2, w // 2)  # [A, B, C, H/2, W/2]
        return F.dropout(y, self.dropout, training) if self.dropout > 0 else y

    def pool(self, x):
        return x.mean(dim=(-2, -1))  # [..., C, H, W] -> [..., C]

    def channel_view(self, v):
        return v[:, None, :, None, None]  # [A, C] -> [A, 1, C, 1, 1]


def _isfinite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)

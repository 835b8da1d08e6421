"""Parameter holders of a compiled sharing graph, one module per graph node.

These modules own parameters and the small per-node maths (FiLM scales, task
gates); :class:`sharesearch.network.MultiTaskNet` runs the sibling blocks of a
stage together through the backbone's batched stage op, so none of them has a
``forward`` of its own. Every initialiser draws from an explicit
:class:`torch.Generator` so a seed fixes the whole network.

References
----------
- Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018.
- Ma et al., "Modeling Task Relationships in Multi-task Learning with
  Multi-gate Mixture-of-Experts", KDD 2018.
- Misra et al., "Cross-stitch Networks for Multi-task Learning", CVPR 2016.

Example
-------
>>> import torch
>>> from sharesearch.backbones import make_backbone
>>> bb = make_backbone({"name": "mlp", "input_shape": [4], "widths": [8]})
>>> blk = Block(bb, 0, "film", z_dim=3, generator=torch.Generator().manual_seed(0))
>>> [tuple(p.shape) for p in blk.parameters()]
[(8, 4), (8,), (16, 3), (16,)]
>>> gamma, beta = blk.film(torch.eye(3))      # identity at init: gamma = beta = 0
>>> float((gamma.abs().sum() + beta.abs().sum()).detach())
0.0
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .backbones import Backbone

__all__ = ["Block", "MoEBlock", "CrossStitch", "Head"]


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> nn.Parameter:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the nn.Linear default."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)


class Block(nn.Module):
    """One ``block`` node: a stage block (``weight``, ``bias``) plus its conditioning.

    ``concat`` widens the block input by ``z_dim``; ``film`` adds
    ``film_weight [2*width, z_dim]``/``film_bias [2*width]`` and modulates the
    pre-activation, ``relu((1 + gamma) * (W x + b) + beta)`` (Perez et al. 2018;
    zero at init, so it starts as the plain block); ``gate`` adds
    ``gate_weight [width, z_dim]``/``gate_bias [width]`` and multiplies the
    activated output by ``sigmoid(z @ gate_weight.T + gate_bias)``.
    """

    def __init__(self, backbone: Backbone, stage: int, conditioning: str, z_dim: int,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.stage, self.conditioning = stage, conditioning
        w, b = backbone.init_block(stage, z_dim if conditioning == "concat" else 0, generator)
        self.weight, self.bias = nn.Parameter(w), nn.Parameter(b)
        width = backbone.out_features(stage)
        if conditioning == "film":
            self.film_weight = nn.Parameter(torch.zeros(2 * width, z_dim))
            self.film_bias = nn.Parameter(torch.zeros(2 * width))
        elif conditioning == "gate":
            self.gate_weight = _uniform((width, z_dim), z_dim, generator)
            self.gate_bias = _uniform((width,), z_dim, generator)

    def film(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [n, z_dim]`` -> ``(gamma, beta)``, each ``[n, width]``."""
        gb = nn.functional.linear(z, self.film_weight, self.film_bias)  # [n, 2*width]
        return gb.chunk(2, dim=-1)

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        """``z [n, z_dim]`` -> multiplicative gate ``[n, width]`` in (0, 1)."""
        return torch.sigmoid(nn.functional.linear(z, self.gate_weight, self.gate_bias))


class MoEBlock(nn.Module):
    """One ``moe`` node (MMoE, Ma et al. 2018): ``experts`` blocks of the stage's
    shape (``weight [E, *block_weight]``, ``bias [E, width]``) shared by the
    node's tasks, and one softmax gate ``Linear(in_features -> E)`` per task
    (``gate_weights[i] [E, in]``, ``gate_biases[i] [E]``, in the node's task order).
    """

    def __init__(self, backbone: Backbone, stage: int, n_tasks: int, experts: int, expert_dropout: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.stage, self.experts, self.expert_dropout = stage, experts, float(expert_dropout)
        ws, bs = zip(*(backbone.init_block(stage, 0, generator) for _ in range(experts)))
        self.weight = nn.Parameter(torch.stack(ws))  # [E, *block_weight]
        self.bias = nn.Parameter(torch.stack(bs))  # [E, width]
        fan_in = backbone.in_features(stage)
        self.gate_weights = nn.ParameterList([_uniform((experts, fan_in), fan_in, generator) for _ in range(n_tasks)])
        self.gate_biases = nn.ParameterList([_uniform((experts,), fan_in, generator) for _ in range(n_tasks)])


class CrossStitch(nn.Module):
    """A cross-stitch unit (Misra et al. 2016) over ``n`` task activations:
    ``alpha [n, n]`` with 0.9 on the diagonal and ``0.1/(n-1)`` elsewhere, so
    each row starts as a convex mix dominated by the task's own activation.

    >>> CrossStitch(3).alpha.sum(dim=1).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        off = 0.1 / (n - 1) if n > 1 else 0.0
        alpha = torch.full((n, n), off)
        alpha.fill_diagonal_(0.9 if n > 1 else 1.0)
        self.alpha = nn.Parameter(alpha)


class Head(nn.Module):
    """The output head of one task: ``Linear(head_in -> out_dim)``."""

    def __init__(self, head_in: int, out_dim: int, generator: torch.Generator) -> None:
        super().__init__()
        self.weight = _uniform((out_dim, head_in), head_in, generator)
        self.bias = _uniform((out_dim,), head_in, generator)

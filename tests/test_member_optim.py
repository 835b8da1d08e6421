"""The population's optimizer: each member's slice moves as torch.optim moves that member's own weights.

The optimizer keeps every member's weights in one flat buffer and steps it in
one pass when every weight has a gradient, weight by weight when some have
none (torch.optim skips those). Both paths, and members leaving, are checked
against one torch.optim optimizer per member.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
import torch

from sharesearch.training._member_optim import MemberOptimizer

SHAPES = [(3, 4), (4,), (2, 2, 3), (1,)]


def _reference(kind: str, weights: list[torch.Tensor], lr: float, wd: float) -> torch.optim.Optimizer:
    """torch.optim as ``make_optimizer`` builds it for one member (multi-tensor path, as the population's)."""
    if kind == "sgd":
        return torch.optim.SGD(weights, lr=lr, momentum=0.9, weight_decay=wd, foreach=True)
    if kind == "adamw" or wd > 0:
        return torch.optim.AdamW(weights, lr=lr, weight_decay=wd, foreach=True)
    return torch.optim.Adam(weights, lr=lr, foreach=True)


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["adam", "adamw", "sgd"]), seed=st.integers(0, 2**16),
       decay=st.booleans(), skips=st.lists(st.sets(st.integers(0, len(SHAPES) - 1)), min_size=6, max_size=6))
def test_each_member_steps_as_its_own_torch_optimizer(kind, seed, decay, skips):
    # skips[s]: the weights without a gradient at step s (empty: the flat path; else weight by weight)
    gen = torch.Generator().manual_seed(seed)
    P = 3
    lr = [1e-2 * (1 + j) for j in range(P)]
    wd = [0.1 * j if decay else 0.0 for j in range(P)]
    start = [torch.randn(P, *s, generator=gen) for s in SHAPES]
    opt = MemberOptimizer(start, kind, lr, wd)
    own = [[w[j].clone().requires_grad_() for w in start] for j in range(P)]  # member j's weights, apart
    refs = [_reference(kind, own[j], lr[j], wd[j]) for j in range(P)]
    for skip in skips:
        grads = [torch.randn(P, *s, generator=gen) for s in SHAPES]
        opt.zero_grad()
        for i, (p, g) in enumerate(zip(opt.params, grads)):
            if i not in skip:
                p.grad = g.clone()
        opt.step()
        for j in range(P):
            refs[j].zero_grad()
            for i, (w, g) in enumerate(zip(own[j], grads)):
                if i not in skip:
                    w.grad = g[j].clone()
            refs[j].step()
    for j in range(P):
        for p, w in zip(opt.params, own[j]):
            torch.testing.assert_close(p.detach()[j], w.detach(), rtol=1e-6, atol=1e-7)


def test_the_leaves_are_views_of_one_buffer_and_a_leaver_takes_its_rows_away():
    start = [torch.arange(6.0).view(3, 2), torch.arange(3.0).view(3, 1)]
    opt = MemberOptimizer(start, "sgd", lr=[0.1, 0.2, 0.3], weight_decay=[0.0] * 3)
    assert all(p.is_leaf and p.requires_grad and p._base is opt.flat for p in opt.params)
    assert opt.flat.tolist() == [[0.0, 1.0, 0.0], [2.0, 3.0, 1.0], [4.0, 5.0, 2.0]]  # a member's weights a row
    for p in opt.params:
        p.grad = torch.tensor([1.0, 2.0, 3.0]).view(3, 1).expand_as(p).clone()  # member j's gradients: j + 1
    opt.step()  # SGD's first step: w - lr * g; each member's momentum buffer holds its own g
    opt.keep(torch.tensor([2, 0]))
    assert opt.flat.flatten().tolist() == pytest.approx([3.1, 4.1, 1.1, -0.1, 0.9, -0.1], abs=1e-6)
    assert [p.shape for p in opt.params] == [(2, 2), (2, 1)] and opt.params[0]._base is opt.flat
    for p in opt.params:
        p.grad = torch.ones_like(p)
    opt.step()  # momentum 0.9: buffers 0.9 * 3 + 1 and 0.9 * 1 + 1; the kept members' own rates 0.3 and 0.1
    assert opt.flat.flatten().tolist() == pytest.approx([1.99, 2.99, -0.01, -0.29, 0.71, -0.29], abs=1e-6)


def test_weights_of_mixed_dtypes_are_refused_with_what_they_were():
    with pytest.raises(ValueError, match="one dtype and device"):
        MemberOptimizer([torch.zeros(2, 1), torch.zeros(2, 1, dtype=torch.float64)], "adam", [0.1] * 2, [0.0] * 2)

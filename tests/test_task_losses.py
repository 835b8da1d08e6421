"""TaskLosses: every task's loss of a batch at once equals task_loss task by task, values and gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from sharesearch.tasks import TaskLosses, TaskSpec, task_loss

KINDS = {"b": TaskSpec("b", "binary"), "r": TaskSpec("r", "regression"),
         "m": TaskSpec("m", "multiclass", n_classes=3)}


def _batch(kinds: str, rows: int, missing: float, seed: int):
    """Specs named by kind and position, their label columns (reversed, with one unused column), outputs, labels."""
    g = torch.Generator().manual_seed(seed)
    specs = [TaskSpec(f"{k}{i}", KINDS[k].kind, n_classes=KINDS[k].n_classes) for i, k in enumerate(kinds)]
    cols = list(range(len(specs), 0, -1))  # column 0 holds no task
    y = torch.randn(rows, len(specs) + 1, generator=g)  # [B, T_data]
    out = {}
    for s, c in zip(specs, cols):
        if s.kind == "binary":
            y[:, c] = (y[:, c] > 0).float()
        elif s.kind == "multiclass":
            y[:, c] = torch.randint(0, 3, (rows,), generator=g).float()
        out[s.name] = torch.randn(rows, s.out_dim, generator=g, requires_grad=True)  # [B, out_dim]
    y[torch.rand(rows, len(specs) + 1, generator=g) < missing] = float("nan")
    w = torch.rand(rows, generator=g) * 2  # [B] sample weights
    return specs, cols, out, y, w


def _by_task(specs, cols, out, y, dense, w):
    return torch.stack([task_loss(s, out[s.name], y[:, c], dense, w) for s, c in zip(specs, cols)])  # [T]


@settings(max_examples=60, deadline=None)
@given(kinds=st.text(alphabet="brm", min_size=1, max_size=6), rows=st.integers(1, 70),
       missing=st.sampled_from([0.0, 0.5, 0.95]), weighted=st.booleans(), seed=st.integers(0, 10_000))
def test_equal_to_task_loss_task_by_task_in_value_and_gradient(kinds, rows, missing, weighted, seed):
    specs, cols, out, y, w = _batch(kinds, rows, missing, seed)
    w = w if weighted else None
    dense = missing == 0.0 and not weighted  # the trainer's promise: no label missing
    got, want = TaskLosses(specs, cols)(out, y, dense, w), _by_task(specs, cols, out, y, dense, w)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    params = list(out.values())
    cot = torch.rand(len(specs), generator=torch.Generator().manual_seed(seed))  # [T] any weighting of the tasks
    for a, b in zip(torch.autograd.grad(got, params, cot), torch.autograd.grad(want, params, cot)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_task_with_no_label_in_the_batch_has_loss_zero_with_a_graph():
    specs, cols, out, y, _ = _batch("brb", 8, 0.0, 0)
    y[:, cols[1]] = float("nan")
    losses = TaskLosses(specs, cols)(out, y)
    assert losses[1].item() == 0.0 and losses.requires_grad
    assert losses[0].item() > 0 and losses[2].item() > 0


@settings(max_examples=40, deadline=None)
@given(kinds=st.text(alphabet="brm", min_size=1, max_size=5), lead=st.sampled_from([(3,), (2, 2)]),
       rows=st.integers(1, 20), missing=st.sampled_from([0.0, 0.5]), weighted=st.booleans(), seed=st.integers(0, 999))
def test_leading_axes_are_members_each_slice_losing_what_it_loses_alone(kinds, lead, rows, missing, weighted, seed):
    # a population computes every member's losses at once: out [*M, B, od], y [*M, B, T_data], w [*M, B]
    batches = [_batch(kinds, rows, missing, seed + i) for i in range(int(torch.Size(lead).numel()))]
    specs, cols = batches[0][:2]
    out = {s.name: torch.stack([b[2][s.name] for b in batches]).view(*lead, rows, s.out_dim) for s in specs}
    y = torch.stack([b[3] for b in batches]).view(*lead, rows, -1)
    w = torch.stack([b[4] for b in batches]).view(*lead, rows) if weighted else None
    dense = missing == 0.0 and not weighted
    got = TaskLosses(specs, cols)(out, y, dense, w)  # [*M, T]
    assert got.shape == (*lead, len(specs))
    flat = got.reshape(-1, len(specs))
    for i, (_, _, o, yi, wi) in enumerate(batches):
        want = _by_task(specs, cols, o, yi, dense, wi if weighted else None)
        torch.testing.assert_close(flat[i], want, rtol=1e-6, atol=1e-7)
        leaves = list(o.values())  # each slice's gradient is its own loss's
        for a, b in zip(torch.autograd.grad(flat[i].sum(), leaves, retain_graph=True),
                        torch.autograd.grad(want.sum(), leaves)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_mismatch_of_tasks_and_columns_is_refused():
    with pytest.raises(ValueError, match="one label column per task"):
        TaskLosses([KINDS["b"], KINDS["r"]], [0])

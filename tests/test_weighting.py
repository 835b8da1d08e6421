"""Tests of the loss-weighting methods (sharesearch.weighting)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from sharesearch.weighting import (
    DWA,
    WEIGHTINGS,
    GradNorm,
    PCGrad,
    StackedLosses,
    UncertaintyWeighting,
    make_weighting,
    weighting_options,
)

METHODS = sorted(WEIGHTINGS)
TASKS = ["a", "b"]


class SharedNet(nn.Module):
    """A shared linear trunk and one linear head per task; task ``c`` (if any) skips the trunk."""

    def __init__(self, tasks=("a", "b"), seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.trunk = nn.Linear(4, 8)
        self.heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in tasks if t != "c"})
        if "c" in tasks:
            self.c = nn.Parameter(torch.tensor([1.0, -2.0]))

    def shared(self):
        return list(self.trunk.parameters())

    def losses(self, x, y, tasks=None, scale=None):
        h = torch.tanh(self.trunk(x))
        out = {}
        for i, t in enumerate(self.heads):
            if tasks is None or t in tasks:
                out[t] = ((self.heads[t](h)[:, 0] - y[:, i]) ** 2).mean() * (scale or {}).get(t, 1.0)
        if hasattr(self, "c") and (tasks is None or "c" in tasks):
            out["c"] = ((self.c - 3.0) ** 2).sum()
        return out


class IndependentNet(nn.Module):
    """One private two-layer network per task: no shared parameters."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.nets = nn.ModuleDict({
            t: nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)) for t in TASKS
        })

    def losses(self, x, y):
        return {t: ((self.nets[t](x)[:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(TASKS)}


def toy_data(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = torch.stack([x @ torch.tensor([1.0, -1.0, 0.5, 0.0]), torch.sin(x[:, 0]) + x[:, 1]], dim=1)
    return x, y


def grads_of(params):
    return [None if p.grad is None else p.grad.clone() for p in params]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_lowers_the_total_loss(method):
    net, (x, y) = SharedNet(), toy_data()
    w = make_weighting(method, TASKS)
    opt = torch.optim.Adam(list(net.parameters()) + w.parameters(), lr=0.03)
    initial = float(sum(net.losses(x, y).values()).detach())
    for step in range(80):
        opt.zero_grad()
        losses = net.losses(x, y)
        used = w.backward(losses, net.shared())
        assert set(used) == set(TASKS) and all(v > 0 and math.isfinite(v) for v in used.values())
        opt.step()
        if step % 5 == 4:  # "epochs" of five steps, so DWA leaves its warm-up
            w.epoch_end({t: float(v.detach()) for t, v in losses.items()})
    final = float(sum(net.losses(x, y).values()).detach())
    assert final < 0.3 * initial


def test_equal_gives_exact_per_task_gradients_without_shared_parameters():
    net, (x, y) = IndependentNet(), toy_data()
    prio = {"a": 2.0, "b": 0.5}
    w = make_weighting("equal", TASKS, priorities=prio)
    assert w.backward(net.losses(x, y), shared_params=[]) == prio
    joint = {t: grads_of(net.nets[t].parameters()) for t in TASKS}
    for t in TASKS:
        net.zero_grad(set_to_none=True)
        (prio[t] * net.losses(x, y)[t]).backward()
        alone = grads_of(net.nets[t].parameters())
        assert all(torch.equal(g, h) for g, h in zip(joint[t], alone))


def test_uncertainty_log_vars_receive_their_gradient():
    net, (x, y) = SharedNet(), toy_data()
    w = UncertaintyWeighting(TASKS, priorities={"b": 3.0})
    losses = net.losses(x, y)
    values = {t: float(v.detach()) for t, v in losses.items()}
    assert w.backward(losses, net.shared()) == {"a": 1.0, "b": 3.0}
    # d/ds p (exp(-s) L + s) = p (1 - L) at s = 0
    for t, s in w.log_vars.items():
        assert s.grad is not None
        assert float(s.grad) == pytest.approx(w.priorities[t] * (1 - values[t]), rel=1e-5)
    # a task absent from the batch leaves its s_t untouched
    w2 = UncertaintyWeighting(TASKS, init_log_var=math.log(2.0))
    used = w2.backward(net.losses(x, y, tasks={"a"}), net.shared())
    assert used == {"a": pytest.approx(0.5)}
    assert w2.log_vars["b"].grad is None and w2.log_vars["a"].grad is not None


def test_dwa_weights_are_one_for_two_epochs_then_follow_the_formula():
    w = make_weighting("dwa", TASKS, priorities={"b": 2.0})
    x = torch.tensor(1.0, requires_grad=True)
    assert w.backward({"a": x, "b": x}, []) == {"a": 1.0, "b": 2.0}
    w.epoch_end({"a": 1.0, "b": 2.0})
    assert w.weights == {"a": 1.0, "b": 1.0}
    w.epoch_end({"a": 0.5, "b": 2.0})
    # r = (0.5, 1.0), tau = 2: w_a = 2 e^0.25 / (e^0.25 + e^0.5) = 2 / (1 + e^0.25)
    assert w.weights["a"] == pytest.approx(0.8756469982, abs=1e-9)
    assert w.weights["b"] == pytest.approx(1.1243530018, abs=1e-9)
    x.grad = None
    used = w.backward({"a": 3 * x, "b": x}, [])
    assert used == {"a": pytest.approx(0.8756469982), "b": pytest.approx(2 * 1.1243530018)}
    assert float(x.grad) == pytest.approx(3 * 0.8756469982 + 2 * 1.1243530018)
    w.epoch_end({"a": 0.5, "b": 1.0})  # only the last two epochs count: r = (1.0, 0.5)
    assert w.weights["a"] == pytest.approx(1.1243530018, abs=1e-9)
    # tau = 1, r = (1.0, 0.5): w_a = 2 e^1 / (e^1 + e^0.5)
    w1 = DWA(TASKS, tau=1.0)
    w1.epoch_end({"a": 4.0, "b": 4.0})
    w1.epoch_end({"a": 4.0, "b": 2.0})
    assert w1.weights["a"] == pytest.approx(2 * math.e / (math.e + math.exp(0.5)))


def test_gradnorm_weights_stay_positive_sum_to_t_and_shrink_the_larger_gradient():
    net, (x, y) = SharedNet(), toy_data()
    w = GradNorm(TASKS)
    opt = torch.optim.SGD(list(net.parameters()) + w.parameters(), lr=0.01)
    scale = {"a": 10.0}  # task a's gradients are ~10x larger
    first = {t: float(v.detach()) for t, v in net.losses(x, y, scale=scale).items()}
    for _ in range(30):
        opt.zero_grad()
        used = w.backward(net.losses(x, y, scale=scale), net.shared())
        assert w.logits.grad is not None and bool(w.logits.grad.abs().sum() > 0)
        assert sum(used.values()) == pytest.approx(2.0, abs=1e-5)
        opt.step()
        weights = w.weights
        assert all(v > 0 for v in weights.values())
        assert sum(weights.values()) == pytest.approx(2.0, abs=1e-5)
    assert weights["a"] < 0.5 < 1.5 < weights["b"]
    assert w.initial_losses == pytest.approx(first)  # L_t(0) is from the first step only


@pytest.mark.parametrize(("alpha", "second"), [(1.5, 3.5), (0.0, -3.5)])
def test_gradnorm_logit_gradient_by_hand(alpha, second):
    x = torch.tensor(1.0, requires_grad=True)
    w = GradNorm(TASKS, alpha=alpha)
    # step 1: L = (3x, x^2) at x = 1, so L(0) = (3, 1), norms G = (3, 2), G_bar = 2.5, r = (1, 1).
    # dL_grad/dw = (3 sign(0.5), 2 sign(-0.5)) = (3, -2); w = 2 softmax(l) at l = 0 has
    # dw_a/dl = (0.5, -0.5), dw_b/dl = (-0.5, 0.5): dL_grad/dl = (2.5, -2.5).
    w.backward({"a": 3 * x, "b": x * x}, [x])
    assert w.initial_losses == {"a": 3.0, "b": 1.0}
    assert torch.allclose(w.logits.grad, torch.tensor([2.5, -2.5]))
    assert float(x.grad) == pytest.approx(5.0)  # 3 + 2x with w = (1, 1)
    # step 2 at x = 2: L = (6, 4), L/L(0) = (2, 4), r = (2/3, 4/3), G = (3, 4), G_bar = 3.5.
    # alpha = 1.5: targets 3.5 r^1.5 = (1.91, 5.39): dL_grad/dw = (3, -4) -> dl = (3.5, -3.5);
    # alpha = 0: targets (3.5, 3.5): dL_grad/dw = (-3, 4) -> dl = (-3.5, 3.5).
    w.logits.grad = None
    x2 = torch.tensor(2.0, requires_grad=True)
    w.backward({"a": 3 * x2, "b": x2 * x2}, [x2])
    assert torch.allclose(w.logits.grad, torch.tensor([second, -second]))


def test_gradnorm_without_shared_parameters_warns_once_and_weights_equally():
    net, (x, y) = IndependentNet(), toy_data()
    w = make_weighting("gradnorm", TASKS, priorities={"a": 2.0})
    with pytest.warns(RuntimeWarning, match="no shared parameters"):
        assert w.backward(net.losses(x, y), []) == {"a": 2.0, "b": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w.backward(net.losses(x, y), [])


def _linear_losses(theta, head, ga, gb):
    """Losses with shared-gradients ``ga``/``gb`` on ``theta`` and d/dhead = (2 head_0, 2 head_1)."""
    return {
        "a": theta @ torch.tensor(ga) + head[0] ** 2,
        "b": theta @ torch.tensor(gb) + head[1] ** 2,
    }


@pytest.mark.parametrize(
    ("ga", "gb", "expected"),
    [
        ([1.0, 2.0, -3.0], [-1.0, -2.0, 3.0], [0.0, 0.0, 0.0]),  # g1 = -g2: both project to 0
        ([1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.5, 1.5, 0.0]),  # (0.5, 0.5, 0) + (0, 1, 0)
        ([1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 1.0, 0.0]),  # no conflict: plain sum
        ([1.0, 0.0, 0.0], [0.0, 2.0, 5.0], [1.0, 2.0, 5.0]),  # orthogonal: plain sum
    ],
)
def test_pcgrad_projects_conflicting_gradients(ga, gb, expected):
    theta = torch.zeros(3, requires_grad=True)
    head = torch.tensor([1.5, -0.5], requires_grad=True)
    theta.grad = torch.ones(3)  # gradients accumulate onto what is there
    w = PCGrad(TASKS, seed=3)
    assert w.backward(_linear_losses(theta, head, ga, gb), [theta]) == {"a": 1.0, "b": 1.0}
    assert torch.allclose(theta.grad, 1.0 + torch.tensor(expected), atol=1e-7)
    assert torch.equal(head.grad, torch.tensor([3.0, -1.0]))  # task-specific: plain sum


def test_pcgrad_vectorised_projection_matches_the_reference_loop():
    g = torch.Generator().manual_seed(5)
    grads = torch.randn(5, 7, generator=g)
    got = PCGrad(list("abcde"), seed=11).project(grads)
    gen = torch.Generator().manual_seed(11)
    want = []
    for i in range(5):  # Yu et al.'s loop: each task against the others in a shuffled order
        others = [j for j in range(5) if j != i]
        gi = grads[i].clone()
        for k in torch.randperm(4, generator=gen).tolist():
            gj = grads[others[k]]
            dot = gi @ gj
            if dot < 0:
                gi = gi - dot / (gj @ gj) * gj
        want.append(gi)
    assert torch.allclose(got, torch.stack(want), atol=1e-6)
    assert not torch.allclose(got, grads)  # random normals do conflict
    assert torch.equal(got, PCGrad(list("abcde"), seed=11).project(grads))  # seeded


@pytest.mark.parametrize("method", METHODS)
def test_priorities_scale_each_tasks_contribution(method):
    x, y = toy_data()
    results = {}
    for prio in (1.0, 2.5):
        net = SharedNet()
        w = make_weighting(method, TASKS, priorities={"a": prio})
        results[prio] = (w.backward(net.losses(x, y), net.shared()), grads_of(net.heads.parameters()))
    (used1, heads1), (used2, heads2) = results[1.0], results[2.5]
    assert used2["a"] == pytest.approx(2.5 * used1["a"]) and used2["b"] == pytest.approx(used1["b"])
    # heads: a's weight and bias first, then b's
    for g1, g2 in zip(heads1[:2], heads2[:2]):
        assert torch.allclose(g2, 2.5 * g1, rtol=1e-5, atol=1e-7)
    for g1, g2 in zip(heads1[2:], heads2[2:]):
        assert torch.allclose(g2, g1, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_missing_tasks_and_tasks_off_the_shared_parameters(method):
    net, (x, y) = SharedNet(tasks=("a", "b", "c")), toy_data()
    w = make_weighting(method, ["a", "b", "c"])
    used = w.backward(net.losses(x, y, tasks={"a", "c"}), net.shared())  # b unlabelled in this batch
    assert set(used) == {"a", "c"}
    assert all(p.grad is None for p in net.heads["b"].parameters())
    assert all(p.grad is not None for p in net.shared() + list(net.heads["a"].parameters()))
    # task c never touches the trunk: its own gradient is d/dc (c - 3)^2 = 2 (c - 3), weight 1 at start
    assert torch.allclose(net.c.grad, 2 * (net.c.detach() - 3.0))
    # losses that carry no graph at all, and empty batches, are harmless
    assert set(w.backward({"a": torch.tensor(0.7)}, net.shared())) == {"a"}
    assert w.backward({}, net.shared()) == {}


def test_registry_and_option_errors():
    assert set(WEIGHTINGS) >= {"equal", "uncertainty", "dwa", "gradnorm", "pcgrad"}
    assert all(cls.name == name for name, cls in WEIGHTINGS.items())
    with pytest.raises(ValueError, match="unknown weighting 'softmax'") as err:
        make_weighting("softmax", TASKS)
    assert all(name in str(err.value) for name in WEIGHTINGS)
    with pytest.raises(ValueError, match="'temperature'.*valid options: tau"):
        make_weighting("dwa", TASKS, temperature=2.0)
    with pytest.raises(ValueError, match="'alpha'.*'equal'"):
        make_weighting("equal", TASKS, alpha=1.0)
    assert make_weighting("gradnorm", TASKS, alpha=0.5).alpha == 0.5
    assert make_weighting("pcgrad", TASKS, seed=7).seed == 7
    with pytest.raises(TypeError):
        make_weighting("dwa", TASKS, tau="2")
    with pytest.raises(ValueError, match="tau"):
        make_weighting("dwa", TASKS, tau=0.0)
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['z'\]"):
        make_weighting("equal", TASKS, priorities={"z": 1.0})
    with pytest.raises(ValueError, match="priority"):
        make_weighting("equal", TASKS, priorities={"a": -1.0})
    with pytest.raises(ValueError, match="unknown task"):
        make_weighting("equal", TASKS).backward({"z": torch.tensor(1.0)}, [])
    with pytest.raises(ValueError, match="unique"):
        make_weighting("equal", ["a", "a"])


# --------------------------------------------------- issue 10 item 7: mechanisms as in their papers
class TreeNet(nn.Module):
    """Trunk (two layers) shared by a, b, c; block ``ab`` shared by a and b; one head per task."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.trunk1, self.trunk2, self.ab = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in "abc"})

    def groups(self):
        return {("a", "b", "c"): list(self.trunk2.parameters()), ("a", "b"): list(self.ab.parameters())}

    def losses(self, x, y, scale=None):
        h = torch.tanh(self.trunk2(torch.tanh(self.trunk1(x))))
        hab = torch.tanh(self.ab(h))
        feats = {"a": hab, "b": hab, "c": h}
        return {
            t: ((self.heads[t](feats[t])[:, 0] - y[:, i % 2]) ** 2).mean() * (scale or {}).get(t, 1.0)
            for i, t in enumerate("abc")
        }


def _reference_gradnorm_logit_grad(losses, groups, logits, initial, alpha):
    """Chen et al.'s Eq. 2 written as a plain loop, summed over the groups (each on its own layer)."""
    logits = logits.detach().clone().requires_grad_(True)
    w = 3 * torch.softmax(logits, dim=0)
    total = 0.0
    for tasks, params in groups.items():
        k = ["abc".index(t) for t in tasks]
        norms = torch.stack([
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[t], params, retain_graph=True)]).norm()
            for t in tasks
        ])
        big_g = w[k] * norms
        r = torch.tensor([float(losses[t].detach()) / initial[t] for t in tasks])
        target = (big_g.mean() * (r / r.mean()) ** alpha).detach()
        total = total + (big_g - target).abs().sum()
    return torch.autograd.grad(total, logits)[0]


def test_gradnorm_balances_each_group_on_its_own_last_shared_layer():
    net, (x, y) = TreeNet(), toy_data()
    w = GradNorm(list("abc"), alpha=1.5)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(3):  # step 1 sets L(0); later steps have ratios != 1
        losses = net.losses(x, y, scale={"a": 5.0})
        initial = w.initial_losses or {t: float(v.detach()) for t, v in losses.items()}
        want = _reference_gradnorm_logit_grad(losses, net.groups(), w.logits, initial, 1.5)
        opt.zero_grad()
        w.logits.grad = None
        w.backward(losses, [], groups=net.groups())
        assert torch.allclose(w.logits.grad, want, rtol=1e-4, atol=1e-6)
        opt.step()
    # the layers below the last shared ones are not what is balanced: another layer gives another gradient
    losses = net.losses(x, y, scale={"a": 5.0})
    other = {("a", "b", "c"): list(net.trunk1.parameters()), ("a", "b"): list(net.ab.parameters())}
    assert not torch.allclose(
        _reference_gradnorm_logit_grad(losses, other, w.logits, w.initial_losses, 1.5),
        _reference_gradnorm_logit_grad(losses, net.groups(), w.logits, w.initial_losses, 1.5),
    )


def test_gradnorm_differentiates_only_down_to_the_last_shared_layer_per_task():
    net, (x, y) = TreeNet(), toy_data()
    calls = []
    net.trunk1.weight.register_hook(lambda g: calls.append(1))
    w = GradNorm(list("abc"))
    w.backward(net.losses(x, y), [], groups=net.groups())
    assert len(calls) == 1  # the one ordinary backward; the per-task norms stop at trunk2 and ab
    assert w.logits.grad is not None and bool(w.logits.grad.abs().sum() > 0)


def test_gradnorm_falls_back_to_the_last_layer_of_shared_params():
    net, (x, y) = TreeNet(), toy_data()
    shared = list(net.trunk1.parameters()) + list(net.trunk2.parameters())
    got, want = GradNorm(list("abc")), GradNorm(list("abc"))
    got.backward(net.losses(x, y), shared)
    want.backward(net.losses(x, y), [], groups={("a", "b", "c"): list(net.trunk2.parameters())})
    assert torch.allclose(got.logits.grad, want.logits.grad)
    everything = GradNorm(list("abc"))
    everything.backward(net.losses(x, y), [], groups={("a", "b", "c"): shared})
    assert not torch.allclose(everything.logits.grad, want.logits.grad)


def test_gradnorm_task_in_no_group_keeps_weight_one_and_group_weights_sum_to_its_size():
    net, (x, y) = TreeNet(), toy_data()
    w = GradNorm(list("abc"))
    opt = torch.optim.SGD(list(net.parameters()) + w.parameters(), lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        used = w.backward(net.losses(x, y, scale={"a": 10.0}), [], groups={("a", "b"): list(net.ab.parameters())})
        opt.step()
        assert used["c"] == 1.0 and w.weights["c"] == 1.0
    assert w.weights["a"] + w.weights["b"] == pytest.approx(2.0, abs=1e-5)
    assert w.weights["a"] < 0.5 < 1.5 < w.weights["b"]  # a's 10x gradients are balanced within its group
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['z'\]"):
        w.backward(net.losses(x, y), [], groups={("a", "z"): list(net.ab.parameters())})


def _with_b_unlabelled(net, x, y, form):
    """Losses of TreeNet where task b has no labels in the batch, in one of the trainer's forms."""
    from sharesearch.tasks import TaskSpec, task_loss

    losses = net.losses(x, y)
    if form == "absent":
        del losses["b"]
        return losses, None
    h = torch.tanh(net.ab(torch.tanh(net.trunk2(torch.tanh(net.trunk1(x))))))
    nan = torch.full((len(x),), float("nan"))
    if form == "count 0":  # what task_loss returns: 0 with a graph, indistinguishable without counts
        losses["b"] = task_loss(TaskSpec("b", "regression"), net.heads["b"](h), nan)
        return losses, {"a": len(x), "b": torch.tensor(0), "c": len(x)}
    if form == "count tensor":  # the trainer's form: one tensor in the order of the losses' keys (here not the
        losses["b"] = task_loss(TaskSpec("b", "regression"), net.heads["b"](h), nan)  # weighting's task order)
        return {t: losses[t] for t in "cba"}, torch.tensor([len(x), 0, len(x)])
    losses["b"] = ((net.heads["b"](h)[:, 0] - y[:, 1])[nan == 0] ** 2).mean()  # NaN: a mean over no rows
    return losses, None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("form", ["count 0", "count tensor", "nan"])
def test_a_task_without_labels_contributes_nothing(method, form):
    x, y = toy_data()
    grads = {}
    for f in ("absent", form):
        net = TreeNet()
        w = make_weighting(method, list("abc"), priorities={"c": 2.0}, seed=4)
        opt = torch.optim.SGD(list(net.parameters()) + w.parameters(), lr=0.05)
        for step in range(3):
            opt.zero_grad()
            losses, counts = _with_b_unlabelled(net, x, y, f)
            shared = list(net.trunk1.parameters()) + list(net.trunk2.parameters()) + list(net.ab.parameters())
            w.backward(losses, shared, counts=counts, groups=net.groups())
            opt.step()
        params = list(net.parameters()) + w.parameters()
        grads[f] = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]
        assert all(torch.isfinite(g).all() for g in grads[f])
    for g_absent, g_masked in zip(grads["absent"], grads[form]):
        assert torch.allclose(g_absent, g_masked, rtol=1e-5, atol=1e-7)
    assert all(float(g.abs().sum()) == 0.0 for g in grads[form][8:10])  # b's head: weight, bias


@pytest.mark.parametrize("form", ["count 0", "nan"])
def test_uncertainty_log_variance_of_an_unlabelled_task_gets_no_gradient(form):
    net, (x, y) = TreeNet(), toy_data()
    w = UncertaintyWeighting(list("abc"))
    losses, counts = _with_b_unlabelled(net, x, y, form)
    w.backward(losses, [], counts=counts)
    assert float(w.log_vars["b"].grad) == 0.0  # without the mask: d/ds (exp(-s) 0 + s) = 1
    assert float(w.log_vars["a"].grad) != 0.0
    # the same loss counted as labelled does move s_b: the mask is what stops it
    w2 = UncertaintyWeighting(list("abc"))
    w2.backward(_with_b_unlabelled(net, x, y, "count 0")[0], [])
    assert float(w2.log_vars["b"].grad) == pytest.approx(1.0)


def test_gradnorm_takes_l0_from_the_first_labelled_batch():
    net, (x, y) = TreeNet(), toy_data()
    w = GradNorm(list("abc"))
    losses, counts = _with_b_unlabelled(net, x, y, "count 0")
    w.backward(losses, [], counts=counts, groups=net.groups())
    assert set(w.initial_losses) == {"a", "c"}
    labelled = net.losses(x, y)
    w.backward(labelled, [], groups=net.groups())
    assert w.initial_losses["b"] == pytest.approx(float(labelled["b"].detach()))
    with pytest.raises(ValueError, match=r"counts lack task\(s\) \['b'\]"):
        w.backward(net.losses(x, y), [], counts={"a": 1, "c": 1})
    with pytest.raises(ValueError, match=r"must have shape \(3,\) .*, got \(2,\)"):
        w.backward(net.losses(x, y), [], counts=torch.tensor([1, 1]))


def _pcgrad_run(seed, steps=5):
    net, (x, y) = TreeNet(), toy_data()
    y = torch.stack([y[:, 0], -y[:, 0]], dim=1)  # a and c fit y, b fits -y: c conflicts with a and b
    w = make_weighting("pcgrad", list("abc"), seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    shared = list(net.trunk1.parameters()) + list(net.trunk2.parameters()) + list(net.ab.parameters())
    for _ in range(steps):
        opt.zero_grad()
        w.backward(net.losses(x, y), shared)
        opt.step()
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def test_pcgrad_projection_order_follows_the_seed():
    assert torch.equal(_pcgrad_run(3), _pcgrad_run(3))
    assert not torch.equal(_pcgrad_run(3), _pcgrad_run(4))
    grads = torch.randn(5, 7, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(PCGrad(list("abcde"), seed=0).project(grads), PCGrad(list("abcde"), seed=1).project(grads))


@pytest.mark.parametrize("method", METHODS)
def test_make_weighting_takes_the_run_seed_for_every_method(method):
    w = make_weighting(method, TASKS, seed=9)
    assert w.name == method
    assert "seed" not in weighting_options(method)  # the seed is the run's, not a tunable option
    if method == "pcgrad":
        assert w.seed == 9


# --------------------------------------------- issue 11 item 3: per-task gradients from one batched backward
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sharesearch.graph import SharingGraph  # noqa: E402
from sharesearch.network import compile_graph  # noqa: E402
from sharesearch.tasks import TaskSpec, task_loss  # noqa: E402
from sharesearch.weighting._base import _graph_leaves, _stack, _task_grads  # noqa: E402

KINDS = {"regression": 1, "binary": 1, "multiclass": 3}


def _random_batch(seed, kinds, widths, shared_stages, unlabelled):
    """A compiled shared-bottom network, its per-task losses (task_loss) and the labelled mask of one batch."""
    names = [f"t{i}" for i in range(len(kinds))]
    specs = [TaskSpec(t, k, n_classes=KINDS[k]) for t, k in zip(names, kinds)]
    graph = SharingGraph.shared_bottom({s.name: KINDS[s.kind] for s in specs},
                                       {"name": "mlp", "input_shape": [5], "widths": widths}, shared_stages)
    net = compile_graph(graph, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 5, generator=g)  # [B, 5]
    y = torch.stack([torch.randint(0, KINDS[k] if k != "regression" else 9, (12,), generator=g).float()
                     for k in kinds], dim=1)  # [B, T]
    nan = [i for i in unlabelled if i % 2]
    y[:, nan] = float("nan")  # these tasks have no label in the batch: loss 0 with a graph
    out = net(x)
    losses = {s.name: task_loss(s, out[s.name], y[:, i]) for i, s in enumerate(specs)}
    counts = {t: int((~torch.isnan(y[:, i])).sum()) for i, t in enumerate(names)}
    for i in unlabelled:  # the others keep a loss with a gradient that only the counts mask
        counts[names[i]] = 0
    return net, losses, counts


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=2, max_size=5),
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    shared=st.integers(0, 3),
    unlabelled=st.sets(st.integers(0, 4), max_size=2),
)
def test_batched_task_gradients_equal_one_backward_per_task(seed, kinds, widths, shared, unlabelled):
    unlabelled = {i for i in unlabelled if i < len(kinds)}
    net, losses, counts = _random_batch(seed, kinds, widths, min(shared, len(widths)), unlabelled)
    present = make_weighting("equal", list(losses))._present(losses, counts)
    stacked = _stack(list(present.given.values()))  # [T] unmasked: the mask goes on the cotangent
    mask = torch.stack(list(present.labelled.values()))  # [T]
    params = list(net.parameters())
    assert {id(p) for p in _graph_leaves(stacked)} == {id(p) for p in params}
    batched = _task_grads(stacked, params, mask)  # per parameter [T, *shape]
    for i, loss in enumerate(present.losses.values()):  # the where-masked loss, one backward each
        alone = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        for p, got, want in zip(params, batched, alone):
            want = torch.zeros_like(p) if want is None else want
            assert torch.allclose(got[i], want, rtol=1e-5, atol=1e-6)
            if i in unlabelled:
                assert float(got[i].abs().sum()) == 0.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), unlabelled=st.sets(st.integers(0, 3), max_size=1))
def test_pcgrad_equals_its_per_task_backward_reference(seed, unlabelled):
    kinds = ["regression", "binary", "multiclass", "regression"]
    grads = {}
    for how in ("batched", "per task"):
        net, losses, counts = _random_batch(seed, kinds, [4, 3], 1, unlabelled)
        w = PCGrad(list(losses), priorities={"t1": 2.0}, seed=seed)
        shared = net.shared_parameters()
        if how == "batched":
            w.backward(losses, shared, counts=counts)
        else:  # Yu et al. literally: a backward per task, project the shared rows, sum; heads get the plain sum
            masked = [w.priorities[t] * v for t, v in w._present(losses, counts).losses.items()]
            rows = []
            for loss in masked:
                got = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
                rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                       for p, g in zip(shared, got)]))
            sum(masked).backward(inputs=[p for p in net.parameters() if all(p is not q for q in shared)])
            total = w.project(torch.stack(rows)).sum(dim=0)
            for p, g in zip(shared, total.split([p.numel() for p in shared])):
                p.grad = g.view_as(p).clone()
        grads[how] = [torch.zeros_like(p) if p.grad is None else p.grad for p in net.parameters()]
    for got, want in zip(grads["batched"], grads["per task"]):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


def test_task_grads_fall_back_to_a_loop_where_the_batched_backward_is_unsupported():
    class ReadsAValue(torch.autograd.Function):  # its backward calls .item(): the vmap prototype raises
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad / max(float(grad.abs().max()), 1.0)

    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = ReadsAValue.apply(x)
    stacked = torch.stack([(4 * y).sum(), (y ** 2).sum()])  # [2]
    with pytest.raises(RuntimeError):
        torch.autograd.grad(stacked, [x], torch.eye(2), retain_graph=True, is_grads_batched=True)
    (got,) = _task_grads(stacked, [x], torch.tensor([True, True]))
    assert torch.allclose(got, torch.tensor([[1.0, 1.0, 1.0], [2 / 6, 4 / 6, 1.0]]))  # 4/4; 2x/6


def test_pcgrad_projection_on_python_floats_equals_the_tensor_loop():
    """Few tasks on a CPU project on Python floats; the tensor loop (GPU, many tasks) must give the same matrix."""
    from sharesearch.weighting.pcgrad import _mix_on_host, _mix_tensors

    for seed, n in [(0, 2), (1, 5), (2, 8), (3, 11)]:
        g = torch.Generator().manual_seed(seed)
        grads = torch.randn(n, 9, generator=g, dtype=torch.float64)
        grads[0] = 0.0  # a task without gradient: its squared norm is 0
        gram = grads @ grads.T
        order = torch.stack([torch.randperm(n - 1, generator=g) for _ in range(n)])
        order = order + (order >= torch.arange(n)[:, None])
        host, tensors = _mix_on_host(gram.tolist(), order.tolist()), _mix_tensors(gram, order)
        assert torch.allclose(host, tensors, rtol=1e-12, atol=1e-12)
        if n >= 5:  # random normals conflict somewhere (with 2 tasks, one of them all zero, they cannot)
            assert not torch.allclose(host, torch.eye(n, dtype=torch.float64))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", ["abc", "cab", "ac"])  # the weighting's order (used as stacked), another, a subset
def test_stacked_losses_give_the_gradients_of_the_same_losses_by_task(method, order):
    x, y = toy_data()
    grads, coefs = {}, {}
    for form in ("dict", "stacked"):
        net = TreeNet()
        w = make_weighting(method, list("abc"), priorities={"c": 2.0}, seed=4)
        opt = torch.optim.SGD(list(net.parameters()) + w.parameters(), lr=0.05)
        for step in range(3):
            opt.zero_grad()
            by_task = net.losses(x, y)
            losses = {t: by_task[t] for t in order}
            counts = {t: (0 if t == "b" and step == 1 else 4) for t in order}  # b unlabelled in one batch
            if form == "stacked":
                losses = StackedLosses.of(tuple(order), [losses[t] for t in order])
                counts = torch.tensor([counts[t] for t in order])
            shared = list(net.trunk1.parameters()) + list(net.trunk2.parameters()) + list(net.ab.parameters())
            coefs[form] = w.backward(losses, shared, counts=counts, groups=net.groups())
            opt.step()
        grads[form] = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in net.parameters()]
    assert coefs["dict"] == coefs["stacked"]
    assert all(torch.equal(a, b) for a, b in zip(grads["dict"], grads["stacked"]))


def test_stacked_losses_read_as_a_mapping_and_reject_a_length_mismatch():
    a = torch.tensor(2.0, requires_grad=True)
    s = StackedLosses.of(["a", "b"], [a * 3, torch.tensor(1.0)])
    assert dict(s).keys() == {"a", "b"} and float(s["b"].detach()) == 1.0 and s.live == (True, False) and len(s) == 2
    with pytest.raises(ValueError, match=r"one loss per task, got 1 for tasks \['a', 'b'\]"):
        StackedLosses.of(["a", "b"], [a])


def test_a_weighting_is_handed_epoch_losses_exactly_when_it_overrides_epoch_end():
    """The trainer sums each epoch's losses only for a weighting that reads them: DWA, or any subclass (a user's
    registered method) that overrides epoch_end."""
    from sharesearch.weighting import EqualWeighting

    class Custom(EqualWeighting):
        def epoch_end(self, mean_losses):
            self.seen = mean_losses

    assert Custom(["a", "b"]).uses_epoch_losses and make_weighting("dwa", ["a", "b"]).uses_epoch_losses
    assert not any(make_weighting(name, ["a", "b"]).uses_epoch_losses for name in ("equal", "gradnorm", "pcgrad",
                                                                                   "uncertainty"))

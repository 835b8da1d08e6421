"""compile_graph: shapes, parameter counts, gradient isolation, semantics against a
per-task reference loop, determinism, autocast and CUDA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sharesearch.graph import SharingGraph
from sharesearch.network import compile_graph

_spec = importlib.util.spec_from_file_location("_sharesearch_test_graph", Path(__file__).with_name("test_graph.py"))
_tg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tg)
graphs = _tg.graphs  # the hypothesis strategy of valid graphs over every mechanism

TASKS = {"a": 1, "b": 3, "c": 2}
MLP = {"name": "mlp", "input_shape": [5], "widths": [6, 6, 4]}
CNN = {"name": "cnn", "input_shape": [3, 6, 6], "widths": [4, 4, 5]}


def _x(g: SharingGraph, batch: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, *g.backbone.input_shape, generator=torch.Generator().manual_seed(seed))


def reference_forward(net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The graph's semantics written the slow, obvious way: every task's path on
    its own, one block at a time (eval mode: no dropout)."""
    g, bb = net.graph, net.graph.backbone
    mods = dict(zip(net.node_ids, net.nodes))

    def pre(h, w, b):  # the layer of one block: its pre-activation
        return F.linear(h, w, b) if bb.name == "mlp" else F.conv2d(h, w, b, padding=bb.kernel // 2)

    def act(y):  # the rest of the stage op
        y = F.relu(y)
        return F.max_pool2d(y, 2) if bb.name == "cnn" and bb.pools(*y.shape[-2:]) else y

    def op(h, w, b):  # the stage op of one block
        return act(pre(h, w, b))

    def pool(h):
        return h if bb.name == "mlp" else h.mean(dim=(-2, -1))

    def per_channel(v, like):  # [C] -> broadcastable against [B, C, ...]
        return v.view(1, -1, *([1] * (like.dim() - 2)))

    h = {t: x for t in g.tasks}
    for s in range(g.n_stages):
        new = {}
        for n in g.nodes_at(s):
            d, mod = g.g.nodes[n], mods[n]
            for t in d["tasks"]:
                z = net.z[g.tasks.index(t)]
                if d["kind"] == "moe":
                    li = d["tasks"].index(t)
                    gate = F.linear(pool(h[t]), mod.gate_weights[li], mod.gate_biases[li]).softmax(-1)  # [B, E]
                    experts = [op(h[t], mod.weight[e], mod.bias[e]) for e in range(d["experts"])]
                    new[t] = sum(gate[:, e].view(-1, *[1] * (y.dim() - 1)) * y for e, y in enumerate(experts))
                    continue
                cond, inp = d["conditioning"], h[t]
                if cond == "concat":
                    zb = z.view(1, -1, *([1] * (inp.dim() - 2))).expand(inp.shape[0], -1, *inp.shape[2:])
                    inp = torch.cat([inp, zb], dim=1)
                y = op(inp, mod.weight, mod.bias)
                if cond == "film":  # Perez et al. 2018: modulate the pre-activation
                    gamma, beta = mod.film(z[None])
                    y = pre(inp, mod.weight, mod.bias)
                    y = act(y * (1 + per_channel(gamma[0], y)) + per_channel(beta[0], y))
                elif cond == "gate":
                    y = y * per_channel(mod.gate(z[None])[0], y)
                new[t] = y
        for name, alpha in zip(net.stitch_names, net.stitches):
            if name.startswith(f"stage{s}:"):
                comp = name.split(":", 1)[1].split("+")
                hs = [new[t] for t in comp]
                for i, t in enumerate(comp):
                    new[t] = sum(alpha.alpha[i, j] * hs[j] for j in range(len(comp)))
        h = new
    return {t: F.linear(pool(h[t]), net.heads[i].weight, net.heads[i].bias) for i, t in enumerate(g.tasks)}


# ---------------------------------------------------------------- properties
@settings(max_examples=35, deadline=None)
@given(graphs(), st.integers(0, 2**16))
def test_any_graph_compiles_runs_and_counts(g, seed):
    net = compile_graph(g, seed=seed)
    assert sum(p.numel() for p in net.parameters()) == g.n_params()
    x = _x(g, batch=3)
    out = net(x)  # training mode: dropout and expert dropout on
    assert list(out) == list(g.tasks)
    for t, y in out.items():
        assert y.shape == (3, g.g.nodes[g.head(t)]["out_dim"]) and torch.isfinite(y).all()
    loss = sum((y**2).mean() for y in out.values()) + net.penalty()
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    # semantics: the batched network equals the per-task reference loop
    net.eval()
    with torch.no_grad():
        for name, p in net.named_parameters():  # FiLM starts as the identity: move it off
            if "film" in name:
                p.normal_(generator=torch.Generator().manual_seed(seed))
        out, ref = net(x), reference_forward(net, x)
        for t in g.tasks:
            torch.testing.assert_close(out[t], ref[t], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(net(x, tasks=[t])[t], ref[t], rtol=1e-4, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(graphs())
def test_task_parameters_are_exactly_what_the_loss_reaches(g):
    """task_parameters(t) == parameters reached by autograd from t's output."""
    net = compile_graph(g, seed=0).eval()
    x = _x(g, batch=2)
    for t in g.tasks:
        net.zero_grad(set_to_none=True)
        net(x, tasks=[t])[t].sum().backward()
        reached = {id(p) for p in net.parameters() if p.grad is not None}
        assert reached == {id(p) for p in net.task_parameters(t)}
    shared = {id(p) for p in net.shared_parameters()}
    per_task = [{id(p) for p in net.task_parameters(t)} for t in g.tasks]
    assert shared == {i for i in set().union(*per_task) if sum(i in s for s in per_task) > 1}


# ---------------------------------------------------------------- isolation
def test_independent_tasks_do_not_touch_each_other():
    g = SharingGraph.independent(TASKS, MLP)
    net = compile_graph(g, seed=0)
    x = _x(g)
    assert net.shared_parameters() == []
    for t in g.tasks:
        for subset in (None, [t]):  # full forward (stacked weights) and a subset forward
            net.zero_grad(set_to_none=True)
            net(x, tasks=subset)[t].pow(2).sum().backward()
            mine = {id(p) for p in net.task_parameters(t)}
            for p in net.parameters():
                if id(p) in mine:
                    assert p.grad is not None and p.grad.abs().sum() > 0
                else:
                    assert p.grad is None or torch.count_nonzero(p.grad) == 0
            if subset is not None:  # only what t needs was computed
                assert all(p.grad is None for p in net.parameters() if id(p) not in mine)


def test_branched_tasks_share_exactly_the_stages_before_their_split():
    g = SharingGraph.branched(TASKS, MLP, ["a,b,c", "a,b|c"])  # a,b split at stage 2; c at stage 1
    net = compile_graph(g, seed=0)
    x = _x(g)

    def touched(t):
        net.zero_grad(set_to_none=True)
        net(x)[t].pow(2).sum().backward()
        return {id(p) for p in net.parameters() if p.grad is not None and torch.count_nonzero(p.grad) > 0}

    a, b, c = touched("a"), touched("b"), touched("c")
    node = dict(zip(net.node_ids, net.nodes))
    ids = lambda *ns: {id(p) for n in ns for p in node[n].parameters()}  # noqa: E731
    assert a & b == ids("s0:a+b+c", "s1:a+b")
    assert a & c == b & c == ids("s0:a+b+c")
    assert {id(p) for p in net.shared_parameters()} == ids("s0:a+b+c", "s1:a+b")


# ---------------------------------------------------------------- mechanisms
def test_hand_counts_match_the_module():
    cases = {  # (graph, hand count): see tests/test_graph.py for the arithmetic
        "shared": (SharingGraph.shared_bottom({"a": 1, "b": 3}, {"name": "mlp", "input_shape": [4],
                                                                 "widths": [8, 2]}, 1), 88),
        "film": (SharingGraph.shared_bottom({"a": 1, "b": 3}, {"name": "mlp", "input_shape": [4], "widths": [8, 2]},
                                            1, conditioning="film"), 88 + 48),
        "mmoe": (SharingGraph.mmoe({"a": 1, "b": 3}, {"name": "mlp", "input_shape": [4], "widths": [8, 2]},
                                   experts=3), 198),
        "cnn concat": (SharingGraph.shared_bottom({"a": 1, "b": 1}, {"name": "cnn", "input_shape": [3, 8, 8],
                                                                     "widths": [4, 6]}, 1, conditioning="concat"), 642),
    }
    for name, (g, hand) in cases.items():
        assert sum(p.numel() for p in compile_graph(g, seed=0).parameters()) == hand, name


def test_film_starts_as_the_identity():
    shared = SharingGraph.shared_bottom(TASKS, MLP, 2)
    film = SharingGraph.shared_bottom(TASKS, MLP, 2, conditioning="film")
    x = _x(shared)
    a, b = compile_graph(shared, seed=3), compile_graph(film, seed=3)
    for t, y in a(x).items():
        torch.testing.assert_close(b(x)[t], y)


def _one_block_net(cond: str, bb: dict):
    """A 2-task net whose only stage is one shared block conditioned by ``cond``, every parameter random."""
    g = SharingGraph.shared_bottom({"a": 2, "b": 2}, bb, 1, conditioning=cond)
    net = compile_graph(g, seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return g, net


@pytest.mark.parametrize("bb", [{"name": "mlp", "input_shape": [5], "widths": [6]},
                                {"name": "cnn", "input_shape": [2, 4, 4], "widths": [3]}], ids=["mlp", "cnn"])
@pytest.mark.parametrize("cond", ["film", "gate", "concat"])
def test_conditioning_recomputed_by_hand(cond, bb):
    """FiLM scales and shifts the pre-activation, relu((1 + gamma) * (W x + b) + beta) (Perez et al.
    2018); a gate multiplies the activated output by sigmoid(z Wg^T + bg); concat widens the input by z."""
    g, net = _one_block_net(cond, bb)
    (blk,) = net.nodes
    x = _x(g, batch=7)
    cnn = bb["name"] == "cnn"

    def layer(h, w, b):
        return F.conv2d(h, w, b, padding=1) if cnn else h @ w.T + b

    def rest(y):  # relu, then the CNN's 2x2 max-pool
        return F.max_pool2d(F.relu(y), 2) if cnn else F.relu(y)

    def chan(v):  # [C] against [B, C(, H, W)]
        return v.view(1, -1, 1, 1) if cnn else v

    out = net(x)
    for i, t in enumerate(g.tasks):
        z = net.z[i]  # [z_dim]
        if cond == "film":
            gb = blk.film_weight @ z + blk.film_bias  # [2 * width]
            gamma, beta = gb[:6 if not cnn else 3], gb[6 if not cnn else 3:]
            pre = layer(x, blk.weight, blk.bias)
            h = rest((1 + chan(gamma)) * pre + chan(beta))
            after = (1 + chan(gamma)) * rest(pre) + chan(beta)  # the wrong place: after the activation
            assert not torch.allclose(h, after)
        elif cond == "gate":
            h = rest(layer(x, blk.weight, blk.bias)) * chan(torch.sigmoid(blk.gate_weight @ z + blk.gate_bias))
        else:
            zb = z.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[2:]) if cnn else z.expand(x.shape[0], -1)
            h = rest(layer(torch.cat([x, zb], dim=1), blk.weight, blk.bias))
        h = h.mean(dim=(-2, -1)) if cnn else h
        want = h @ net.heads[i].weight.T + net.heads[i].bias  # [B, 2]
        torch.testing.assert_close(out[t], want, rtol=1e-4, atol=1e-4)


def test_gate_and_concat_make_task_streams_differ():
    for cond in ("gate", "concat"):
        g = SharingGraph.shared_bottom({"a": 2, "b": 2}, MLP, conditioning=cond)
        net = compile_graph(g, seed=0).eval()
        net.heads[1].load_state_dict(net.heads[0].state_dict())  # same head: any difference is conditioning
        out = net(_x(g))
        assert not torch.allclose(out["a"], out["b"]), cond


def test_penalty_is_lambda_times_squared_distance():
    g = SharingGraph.l2_soft(TASKS, MLP, lam=0.25)
    net = compile_graph(g, seed=0)
    want = 0.0
    node = dict(zip(net.node_ids, net.nodes))
    for u, v, d in g.soft_edges("l2"):
        want += d["lam"] * sum(((p - q) ** 2).sum() for p, q in zip(node[u].parameters(), node[v].parameters()))
    torch.testing.assert_close(net.penalty(), want)
    net.penalty().backward()
    w_a, w_b = node["s0:a"].weight, node["s0:b"].weight
    assert torch.count_nonzero(w_a.grad) > 0 and torch.allclose(w_a.grad + w_b.grad + node["s0:c"].weight.grad,
                                                                torch.zeros_like(w_a), atol=1e-6)
    assert float(compile_graph(SharingGraph.independent(TASKS, MLP), seed=0).penalty()) == 0.0


def test_cross_stitch_matrices_and_gates():
    g = SharingGraph.cross_stitch(TASKS, MLP)
    sw = compile_graph(g, seed=0).stitch_weights()
    assert list(sw) == ["stage0:a+b+c", "stage1:a+b+c", "stage2:a+b+c"]
    torch.testing.assert_close(sw["stage0:a+b+c"], torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05],
                                                                 [0.05, 0.05, 0.9]]))
    m = SharingGraph.mmoe(TASKS, CNN, experts=3, moe_stages=2)
    net = compile_graph(m, seed=0).train()
    gv = net.gate_values(_x(m, batch=8))
    assert set(gv) == {"s0:a+b+c", "s1:a+b+c"} and net.training
    for v in gv.values():
        assert v.shape == (3, 3) and not v.requires_grad
        torch.testing.assert_close(v.sum(dim=1), torch.ones(3))


def test_expert_dropout_never_drops_every_expert():
    g = SharingGraph.mmoe(TASKS, MLP, experts=2, expert_dropout=0.95)
    net = compile_graph(g, seed=0).train()
    torch.manual_seed(0)
    for _ in range(20):
        assert all(torch.isfinite(y).all() for y in net(_x(g, batch=32)).values())


# ---------------------------------------------------------------- numerics
def test_seed_fixes_parameters_and_outputs_and_leaves_global_rng_alone():
    g = SharingGraph.branched(TASKS, CNN, ["a,b,c", "a,b|c"], conditioning="gate", cross_stitch=[False, True, True])
    state = torch.get_rng_state()
    n1, n2, n3 = compile_graph(g, seed=7), compile_graph(g, seed=7), compile_graph(g, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    s1, s2, s3 = n1.state_dict(), n2.state_dict(), n3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert any(not torch.equal(s1[k], s3[k]) for k in s1 if k != "z")
    x = _x(g)
    for t in g.tasks:
        assert torch.equal(n1.eval()(x)[t], n2.eval()(x)[t])


@pytest.mark.parametrize("bb", [MLP, CNN], ids=["mlp", "cnn"])
def test_bf16_autocast_forward_is_finite(bb):
    variants = [
        SharingGraph.branched(TASKS, bb, ["a,b,c", "a,b|c"], conditioning=["film", "concat", "gate"], l2=0.1),
        SharingGraph.mmoe(TASKS, bb, experts=2, expert_dropout=0.5),
        SharingGraph.cross_stitch(TASKS, bb),
    ]
    for g in variants:
        net = compile_graph(g, seed=0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(_x(g, batch=8))
            loss = sum(y.float().pow(2).mean() for y in out.values()) + net.penalty()
        loss.backward()
        assert all(torch.isfinite(y.float()).all() for y in out.values())
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("bb", [MLP, CNN], ids=["mlp", "cnn"])
def test_cuda_matches_cpu(bb, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # compare float32 with float32
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    device = torch.device("cuda", torch.cuda.current_device())
    for g in (SharingGraph.branched(TASKS, bb, ["a,b,c", "a,b|c"], conditioning=["film", "concat", "gate"], l2=0.1),
              SharingGraph.mmoe(TASKS, bb, experts=3),
              SharingGraph.cross_stitch(TASKS, bb)):
        cpu = compile_graph(g, seed=0).eval()
        gpu = compile_graph(g, seed=0).to(device).eval()
        assert all(p.device == device for p in gpu.parameters()) and gpu.z.device == device
        x = _x(g, batch=8)
        out_c, out_g = cpu(x), gpu(x.to(device))
        (sum(y.pow(2).sum() for y in out_c.values()) + cpu.penalty()).backward()
        (sum(y.pow(2).sum() for y in out_g.values()) + gpu.penalty()).backward()
        for t in g.tasks:
            torch.testing.assert_close(out_g[t].cpu(), out_c[t], rtol=1e-3, atol=1e-4)
        for (name, pc), pg in zip(cpu.named_parameters(), gpu.parameters()):
            if pc.grad is not None:
                torch.testing.assert_close(pg.grad.cpu(), pc.grad, rtol=1e-3, atol=1e-4, msg=name)


# ---------------------------------------------------------------- GradNorm's layer
def test_last_shared_parameters_per_group():
    node = lambda net: dict(zip(net.node_ids, net.nodes))  # noqa: E731
    sb = compile_graph(SharingGraph.shared_bottom(TASKS, MLP, 2), seed=0)  # stages 0, 1 shared by all
    assert {k: [id(p) for p in v] for k, v in sb.last_shared_parameters().items()} == {
        ("a", "b", "c"): [id(node(sb)["s1:a+b+c"].weight), id(node(sb)["s1:a+b+c"].bias)]}
    br = compile_graph(SharingGraph.branched({"z": 1, "y": 1, "x": 1}, MLP, ["x,y,z", "y,z|x"]), seed=0)
    last = br.last_shared_parameters()
    assert list(last) == [("x", "y", "z"), ("y", "z")]  # nested groups, keys sorted, outermost first
    (s0,) = br.graph.nodes_at(0)
    s1 = br.graph.node_of("y", 1)
    assert [id(p) for p in last[("x", "y", "z")]] == [id(node(br)[s0].weight), id(node(br)[s0].bias)]
    assert [id(p) for p in last[("y", "z")]] == [id(node(br)[s1].weight), id(node(br)[s1].bias)]
    # each is shared by exactly its group: the parameters every task of the group reaches, and no other task
    for group, params in last.items():
        for t in br.tasks:
            mine = {id(p) for p in br.task_parameters(t)}
            assert all((id(p) in mine) == (t in group) for p in params), (group, t)
    assert compile_graph(SharingGraph.independent(TASKS, MLP), seed=0).last_shared_parameters() == {}
    mm = compile_graph(SharingGraph.mmoe(TASKS, MLP, experts=2), seed=0)
    (moe,) = mm.graph.nodes_at(0)
    assert [p.shape for p in mm.last_shared_parameters()[("a", "b", "c")]] == [(2, 6, 5), (2, 6)]


# ---------------------------------------------------------------- the typed plan
def test_plan_is_typed_and_computes_only_what_is_asked():
    from sharesearch.plan import Owner, Plan, StagePlan, plan_streams

    g = SharingGraph.branched(TASKS, MLP, ["a,b,c", "a,b|c"], conditioning=["film", "gate", "none"],
                              cross_stitch=[False, False, True])
    full, only_c = plan_streams(g, g.tasks), plan_streams(g, ["c"])
    assert isinstance(full, Plan) and all(isinstance(s, StagePlan) for s in full.stages)
    assert [len(s.film) for s in full.stages] == [3, 0, 0] and [len(s.gate) for s in full.stages] == [0, 2, 0]
    # c's stage-2 block is stitched with a's and b's, so asking for c runs a's and b's paths too ...
    assert [len(s.plain.apps) for s in only_c.stages] == [1, 3, 3] and len(only_c.stages[1].gate) == 2
    assert [h.head for h in only_c.heads] == [2]
    # ... and without the stitch only c's path (its film row of the shared stage 0, its own blocks)
    alone = plan_streams(SharingGraph.branched(TASKS, MLP, ["a,b,c", "a,b|c"], conditioning="film"), ["c"])
    assert [len(s.plain.apps) for s in alone.stages] == [1, 1, 1] and len(alone.stages[0].film) == 1
    with pytest.raises(AttributeError):  # frozen
        full.stages[0].n_out = 0
    net = compile_graph(g, seed=0)
    assert Owner("stitch", 0) in full.owners["c"] and Owner("head", 0) not in full.owners["c"]
    for t in g.tasks:  # the owners are what task_parameters reads
        ids = {id(p) for o in full.owners[t] for p in net._owner_params(o)}
        assert ids == {id(p) for p in net.task_parameters(t)}


# ---------------------------------------------------------------- the heads' fast paths
def _heads_as_before(net, x: torch.Tensor, tasks=None) -> dict[str, torch.Tensor]:
    """The heads as the forward computed them before their fast paths: one GEMM against the concatenated
    weights viewed as ``[n, B, od]`` (or one baddbmm), then unbound, whatever the number of heads."""
    tasks = tuple(net.tasks if tasks is None else tasks)
    stages, heads, _ = net._device_plan(tasks, x.device)
    X, B = x[None], x.shape[0]
    for run in stages:
        X = net._stage(run, X, B, None)  # [S, B, *features]
    out = {}
    for hr in heads:
        W = [net.heads[i].weight for i in hr.heads]
        b = [net.heads[i].bias for i in hr.heads]
        if hr.same_row:
            h = net.backbone.pool(X[hr.row0])  # [B, head_in]
            y = F.linear(h, torch.cat(W), torch.cat(b)).view(B, len(W), hr.out_dim).transpose(0, 1)  # [n, B, od]
        else:
            h = net.backbone.pool(X if hr.identity else X.index_select(0, hr.rows))  # [n, B, head_in]
            y = torch.baddbmm(torch.stack(b)[:, None, :], h, torch.stack(W).transpose(1, 2))  # [n, B, od]
        out.update({net.tasks[i]: yi for i, yi in zip(hr.heads, y.unbind(0))})
    return {t: out[t] for t in tasks}


HEAD_TASKS = {"a": 1, "b": 3, "c": 1, "d": 3}  # grouped by size, the heads run a, c, b, d


@pytest.mark.parametrize("kind", ["shared_bottom", "independent", "branched", "film", "gate", "concat", "mmoe",
                                  "cross_stitch", "l2", "cnn"])
def test_heads_bit_for_bit_as_before_and_in_task_order(kind):
    def parts(t):  # every task, then two halves
        names, k = list(t), max(1, len(t) // 2)
        return [",".join(names), "|".join(",".join(p) for p in (names[:k], names[k:]) if p)]

    make = {"shared_bottom": lambda t, bb: SharingGraph.shared_bottom(t, bb, 2),
            "independent": SharingGraph.independent,
            "branched": lambda t, bb: SharingGraph.branched(t, bb, parts(t)),
            "mmoe": lambda t, bb: SharingGraph.mmoe(t, bb, experts=2), "cross_stitch": SharingGraph.cross_stitch,
            "l2": lambda t, bb: SharingGraph.l2_soft(t, bb, lam=0.1),
            "cnn": lambda t, bb: SharingGraph.shared_bottom(t, CNN, 2)}
    make.update({c: (lambda t, bb, c=c: SharingGraph.branched(t, bb, parts(t), conditioning=c))
                 for c in ("film", "gate", "concat")})
    for tasks in (HEAD_TASKS, {"a": 1, "b": 1, "c": 1}, {"a": 2}):
        net = compile_graph(make[kind](tasks, MLP), seed=0).eval()
        x = _x(net.graph, batch=5)
        new, old = net(x), _heads_as_before(net, x)
        assert list(new) == list(tasks)  # task order, whatever the grouping by output size
        gen = torch.Generator().manual_seed(0)
        r = {t: torch.randn(y.shape, generator=gen) for t, y in old.items()}
        grads = []
        for out in (new, old):
            net.zero_grad()
            sum((out[t] * r[t]).sum() for t in tasks).backward()
            grads.append([None if p.grad is None else p.grad.clone() for p in net.parameters()])
        for t in tasks:
            assert torch.equal(new[t], old[t]), (kind, t)
        for gn, go in zip(*grads):
            assert (gn is None) == (go is None) and (gn is None or torch.equal(gn, go)), kind
        for ask in (["d", "a"], ["c", "a"], ["b", "c", "a"]):
            ask = [t for t in ask if t in tasks]
            got = net(x, tasks=ask)
            assert list(got) == ask
            before = _heads_as_before(net, x, ask)  # a subset runs fewer blocks per batched op
            assert all(torch.equal(got[t], before[t]) for t in got)


def test_unknown_task_raises_every_time():
    net = compile_graph(SharingGraph.shared_bottom(TASKS, MLP, 1), seed=0)
    for _ in range(2):  # nothing is cached for a bad request
        with pytest.raises(KeyError, match="unknown task 'zz'"):
            net(_x(net.graph), tasks=["a", "zz"])

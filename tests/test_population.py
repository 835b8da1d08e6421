"""Population training: each member equals a separate run with its configuration.

The data is the planted set (mixed binary and regression tasks, 70% of labels
missing), so masking, per-task model selection and both loss kinds are on the
path; members differ in seed, learning rate, weight decay, schedule and
patience.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
import torch

from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.training import TrainConfig, population_groups, train, train_population

TOL = 2e-5  # float rounding: a stacked matmul and a broadcast learning rate round differently from torch.optim


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-planted", n=400, seed=1)


def _bb(data, widths=(16, 16)):
    return {"name": "mlp", "input_shape": list(data.input_shape), "widths": list(widths)}


def _configs(n: int, **common) -> list[TrainConfig]:
    base = dict(max_steps=60, eval_every=10, batch_size=32, device="cpu") | common
    return [TrainConfig(seed=s, lr=1e-3 * (1 + s), weight_decay=0.02 * (s % 2),
                        lr_schedule=("plateau", "cosine", "constant")[s % 3], warmup_steps=5 * (s % 2),
                        plateau_patience=1, patience=2 * (s % 2), **base) for s in range(n)]


def _recorder():
    """A member callback that keeps every Progress it is handed, and the list it keeps them in."""
    seen = []
    return seen, lambda epoch, primary, progress: seen.append(progress)


def _assert_same_losses(pop_seen, alone_seen):
    """Both trainers hand the callback the same training and validation losses at every evaluation."""
    assert [p.step for p in pop_seen] == [p.step for p in alone_seen] and alone_seen
    for p, a in zip(pop_seen, alone_seen):
        for name in ("train_loss", "val_loss"):
            got, want = getattr(p, name), getattr(a, name)
            assert sorted(got) == sorted(want) and all(math.isfinite(v) for v in want.values()), (name, a.step)
            for t, v in want.items():
                assert got[t] == pytest.approx(v, rel=TOL, abs=TOL), (name, t, a.step)


def _assert_same(pop, alone, data):
    assert pop.status == alone.status
    assert pop.steps_run == alone.steps_run and pop.history_steps == alone.history_steps
    assert pop.best_evaluation == alone.best_evaluation
    assert pop.stopped_early == alone.stopped_early
    assert math.isclose(pop.final_lr, alone.final_lr, rel_tol=1e-6)
    for t, metrics in alone.val_metrics.items():
        for m, v in metrics.items():
            assert pop.val_metrics[t][m] == pytest.approx(v, rel=TOL, abs=TOL), (t, m)
    a, b = pop.predict(data, "test"), alone.predict(data, "test")
    for t in b:
        torch.testing.assert_close(a[t], b[t], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("make", [
    lambda d, bb: SharingGraph.shared_bottom(d.tasks, bb),
    lambda d, bb: SharingGraph.mmoe(d.tasks, bb, experts=3),
    lambda d, bb: SharingGraph.l2_soft(d.tasks, bb, lam=1e-2),
    lambda d, bb: SharingGraph.cross_stitch(d.tasks, bb),
    lambda d, bb: SharingGraph.branched(d.tasks, bb, [[["t0", "t1", "t2"], ["t3", "t4"], ["t5"]]]),
], ids=["shared_bottom", "mmoe", "l2_soft", "cross_stitch", "branched"])
def test_each_member_equals_its_separate_run(data, make):
    g = make(data, _bb(data))
    cfgs = _configs(4)
    assert population_groups(cfgs) == [[0, 1, 2, 3]]  # they do train as one population
    recorders = [_recorder() for _ in cfgs]
    pops = train_population(g, data, cfgs, callbacks=[cb for _, cb in recorders])
    for pop, cfg, (pop_seen, _) in zip(pops, cfgs, recorders):
        assert pop.config == cfg
        alone_seen, cb = _recorder()
        _assert_same(pop, train(g, data, cfg, callback=cb), data)
        _assert_same_losses(pop_seen, alone_seen)


def test_sgd_population_equals_separate_runs(data):
    g = SharingGraph.shared_bottom(data.tasks, _bb(data))
    cfgs = _configs(3, optimizer="sgd")
    for pop, cfg in zip(train_population(g, data, cfgs), cfgs):
        _assert_same(pop, train(g, data, cfg), data)


def test_a_stopped_or_diverged_member_leaves_and_the_others_are_untouched(data):
    g = SharingGraph.shared_bottom(data.tasks, _bb(data))
    cfgs = _configs(3)
    cfgs[2] = cfgs[2].updated(lr=1e6)  # diverges

    class Pruned(Exception):
        pass

    def prune_at_second(epoch, primary, progress):
        if progress.evaluation == 1:
            raise Pruned(f"pruned at step {progress.step}")

    pop_seen, record = _recorder()
    out = train_population(g, data, cfgs, callbacks=[record, prune_at_second, None])
    seen = [p.step for p in pop_seen]
    assert seen == list(range(10, 61, 10))[: len(seen)] and seen[-1] == out[0].steps_run
    assert out[1].status == "stopped" and isinstance(out[1].interrupted, Pruned)
    assert str(out[1].interrupted) == "pruned at step 20" and out[1].steps_run == 20
    assert out[2].status == "diverged" and "non-finite" in out[2].message
    alone_seen, cb = _recorder()
    _assert_same(out[0], train(g, data, cfgs[0], callback=cb), data)
    _assert_same_losses(pop_seen, alone_seen)  # the leavers' rows were dropped from the loss window


@pytest.mark.parametrize("options", [{}, {"tau": 0.5}], ids=["dwa", "dwa_tau"])
def test_dwa_members_train_together_each_with_its_own_weights(data, options):
    # DWA's step is a weighted sum whose weights change at epoch ends from the member's own epoch losses:
    # members with the same options share a population, and each equals its separate run
    g = SharingGraph.branched(data.tasks, _bb(data), [[["t0", "t1", "t2"], ["t3", "t4"], ["t5"]]])
    cfgs = _configs(4, weighting="dwa", weighting_options=options, max_steps=120)
    assert population_groups(cfgs) == [[0, 1, 2, 3]]
    assert population_groups(cfgs + [cfgs[0].updated(weighting="equal", weighting_options={})]) == [[0, 1, 2, 3], [4]]
    recorders = [_recorder() for _ in cfgs]
    pops = train_population(g, data, cfgs, callbacks=[cb for _, cb in recorders])
    assert all(p.history_steps for p in pops) and max(p.steps_run for p in pops) > 3 * 7  # past DWA's third epoch
    for pop, cfg, (pop_seen, _) in zip(pops, cfgs, recorders):
        alone_seen, cb = _recorder()
        _assert_same(pop, train(g, data, cfg, callback=cb), data)
        _assert_same_losses(pop_seen, alone_seen)


def test_uncertainty_members_train_together_each_with_its_own_log_variances(data):
    # uncertainty weighting learns s_t with the network (one optimizer in train): the population stacks every
    # member's s and steps it with the weights; a task unlabelled in a member's batch leaves its s_t alone
    g = SharingGraph.shared_bottom(data.tasks, _bb(data))
    # batches of 8 drawn from the union of labelled rows: a task is unlabelled in ~6% of a member's batches
    cfgs = _configs(4, weighting="uncertainty", max_steps=120, batch_size=8, sampling="proportional")
    cfgs[3] = cfgs[3].updated(weighting_options={"init_log_var": 0.5})  # other options: a population of its own
    assert population_groups(cfgs) == [[0, 1, 2], [3]]
    recorders = [_recorder() for _ in cfgs]
    pops = train_population(g, data, cfgs, callbacks=[cb for _, cb in recorders])
    for pop, cfg, (pop_seen, _) in zip(pops, cfgs, recorders):
        alone_seen, cb = _recorder()
        _assert_same(pop, train(g, data, cfg, callback=cb), data)
        _assert_same_losses(pop_seen, alone_seen)


@pytest.mark.parametrize("make", [
    lambda d, bb: SharingGraph.shared_bottom(d.tasks, bb),
    lambda d, bb: SharingGraph.l2_soft(d.tasks, bb, lam=1e-2),
    lambda d, bb: SharingGraph.branched(d.tasks, bb, [[["t0", "t1", "t2"], ["t3", "t4"], ["t5"]]]),
], ids=["shared_bottom", "l2_soft", "branched"])
def test_pcgrad_members_train_together_each_projecting_in_its_own_orders(data, make):
    # PCGrad reads per-task gradients: the population takes every member's in one batched backward and each
    # member's own weighting projects them, drawing its task orders from its own seeded generator
    g = make(data, _bb(data))
    cfgs = _configs(4, weighting="pcgrad", max_steps=120, batch_size=8, sampling="proportional")
    assert population_groups(cfgs) == [[0, 1, 2, 3]]
    recorders = [_recorder() for _ in cfgs]
    pops = train_population(g, data, cfgs, callbacks=[cb for _, cb in recorders])
    for pop, cfg, (pop_seen, _) in zip(pops, cfgs, recorders):
        alone_seen, cb = _recorder()
        _assert_same(pop, train(g, data, cfg, callback=cb), data)
        _assert_same_losses(pop_seen, alone_seen)


@pytest.mark.parametrize("make", [
    lambda d, bb: SharingGraph.shared_bottom(d.tasks, bb),
    lambda d, bb: SharingGraph.branched(d.tasks, bb, [[["t0", "t1", "t2", "t3"], ["t4", "t5"]],
                                                      [["t0", "t1"], ["t2", "t3"], ["t4", "t5"]]]),
], ids=["shared_bottom", "nested_groups"])
def test_gradnorm_members_train_together_each_balancing_its_own_weights(data, make):
    # GradNorm learns each member's weights from its own gradient norms on the last shared layers (one per group
    # in a tree) and its own L_t(0): the population stacks the logits and trains them with the network
    g = make(data, _bb(data))
    cfgs = _configs(4, weighting="gradnorm", max_steps=120, batch_size=8, sampling="proportional")
    cfgs[3] = cfgs[3].updated(weighting_options={"alpha": 0.5})  # other options: a population of its own
    assert population_groups(cfgs) == [[0, 1, 2], [3]]
    recorders = [_recorder() for _ in cfgs]
    pops = train_population(g, data, cfgs, callbacks=[cb for _, cb in recorders])
    for pop, cfg, (pop_seen, _) in zip(pops, cfgs, recorders):
        alone_seen, cb = _recorder()
        _assert_same(pop, train(g, data, cfg, callback=cb), data)
        _assert_same_losses(pop_seen, alone_seen)


def _members_equal_alone_on(data, device: str, weighting: str) -> None:
    """Every member of a population on ``device`` equals its separate run there (equal, PCGrad, GradNorm)."""
    g = SharingGraph.shared_bottom(data.tasks, _bb(data))
    extra = {} if weighting == "equal" else {"max_steps": 120, "batch_size": 8, "sampling": "proportional"}
    cfgs = _configs(4, device=device, weighting=weighting, **extra)
    assert population_groups(cfgs) == [[0, 1, 2, 3]]
    for pop, cfg in zip(train_population(g, data, cfgs), cfgs):
        _assert_same(pop, train(g, data, cfg), data)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("weighting", ["equal", "pcgrad", "gradnorm"])
def test_each_member_equals_its_separate_run_on_cuda(data, weighting, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)  # float32 on both sides, as on a CPU
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    _members_equal_alone_on(data, "cuda", weighting)


def test_configurations_that_cannot_share_train_alone_in_order(data):
    g = SharingGraph.shared_bottom(data.tasks, _bb(data))
    cfgs = [TrainConfig(max_steps=20, eval_every=10, batch_size=32, seed=0, device="cpu"),
            TrainConfig(max_steps=20, eval_every=10, batch_size=64, seed=1, device="cpu"),
            TrainConfig(max_steps=20, eval_every=10, batch_size=32, seed=2, device="cpu", weighting="pcgrad"),
            TrainConfig(max_steps=20, eval_every=10, batch_size=32, seed=3, device="cpu")]
    assert population_groups(cfgs) == [[0, 3], [1], [2]]
    out = train_population(g, data, cfgs)
    assert [r.config.seed for r in out] == [0, 1, 2, 3]
    for pop, cfg in zip(out, cfgs):
        _assert_same(pop, train(g, data, cfg), data)


def test_a_callback_of_a_lone_run_stops_only_that_run(data):
    g = SharingGraph.shared_bottom(data.tasks, _bb(data))

    def stop(epoch, primary, progress):
        raise KeyError("stop")

    cfg = TrainConfig(max_steps=20, eval_every=10, batch_size=32, device="cpu", weighting="pcgrad")
    (res,) = train_population(g, data, [cfg], callbacks=[stop])
    assert res.status == "stopped" and isinstance(res.interrupted, KeyError)


@given(n=st.integers(1, 200), size=st.integers(1, 64))
def test_members_are_cut_into_the_fewest_populations_of_near_equal_size(n, size):
    from sharesearch.training._population import _chunks

    chunks = _chunks(range(n), size)
    assert [i for c in chunks for i in c] == list(range(n))  # every member once, in order
    assert len(chunks) == math.ceil(n / size)  # no more populations than the cap forces
    assert max(map(len, chunks)) <= size and max(map(len, chunks)) - min(map(len, chunks)) <= 1


def test_a_group_over_the_cap_trains_as_equal_populations(data, monkeypatch):
    from sharesearch.training import _population

    sizes: list[int] = []
    real = _population._Population.__init__

    def spy(self, graph, d, configs, *a, **kw):
        sizes.append(len(configs))
        real(self, graph, d, configs, *a, **kw)

    monkeypatch.setattr(_population._Population, "__init__", spy)
    g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": list(data.input_shape), "widths": [8]})
    res = train_population(g, data, [TrainConfig(max_steps=4, eval_every=2, seed=s) for s in range(5)],
                           keep_model=False, max_members=4)
    assert sizes == [3, 2] and [r.config.seed for r in res] == list(range(5))


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4"])
def test_max_members_must_be_a_positive_integer(data, bad):
    from sharesearch.training import ConfigError

    g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": list(data.input_shape), "widths": [8]})
    with pytest.raises(ConfigError, match=rf"^train_population: max_members must be an integer >= 1, got {bad!r}$"):
        train_population(g, data, [TrainConfig(max_steps=2, eval_every=2)], max_members=bad)


@pytest.mark.parametrize("make", [
    lambda d, bb: SharingGraph.shared_bottom(d.tasks, bb, conditioning="film"),
    lambda d, bb: SharingGraph.shared_bottom(d.tasks, bb, conditioning="gate"),
    lambda d, bb: SharingGraph.shared_bottom(d.tasks, bb, conditioning="concat"),
    lambda d, bb: SharingGraph.mmoe(d.tasks, bb, experts=3),
    lambda d, bb: SharingGraph.l2_soft(d.tasks, bb, lam=1e-2),
    lambda d, bb: SharingGraph.cross_stitch(d.tasks, bb),
], ids=["film", "gate", "concat", "mmoe", "l2_soft", "cross_stitch"])
def test_a_compiled_network_ties_no_weights(data, make):
    # the population's functional_call skips the search for tied weights (tie_weights=False): that is only
    # right while no parameter or buffer is registered twice
    from sharesearch.network import compile_graph

    net = compile_graph(make(data, _bb(data)), seed=0)
    for named in (net.named_parameters, net.named_buffers):
        every = [id(t) for _, t in named(remove_duplicate=False)]
        assert len(every) == len(set(every)) > 0

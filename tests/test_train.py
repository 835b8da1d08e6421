"""The trainer: one-pass baselines, weighting methods, selection, failure status."""

from __future__ import annotations

import math

import pytest
import torch

from sharesearch.data import load_data
from sharesearch.graph import SharingGraph
from sharesearch.errors import SharesearchError
from sharesearch.tasks import task_loss
from sharesearch.training import ConfigError, Progress, TrainConfig, evaluate, predict_split, step_budget, train
from sharesearch.training import _loop  # its TaskLosses is swapped for one that records each training step
from sharesearch.weighting import WEIGHTINGS

BB = {"name": "mlp", "input_shape": [8], "widths": [16, 8]}


@pytest.fixture(scope="module")
def data():
    return load_data("synthetic-mmoe", n=600, d=8, seed=3, clusters=[[0, 1], [2]])


def test_one_pass_baselines_equal_separate_runs(data):
    """The independent graph trained at once == each task trained alone (same seed)."""
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=7)
    together = train(SharingGraph.independent(data.tasks, BB), data, cfg)
    for name in data.task_names:
        alone_data = data.subset_tasks([name])
        alone = train(SharingGraph.independent(alone_data.tasks, BB), alone_data, cfg)
        assert alone.best_epoch[name] == together.best_epoch[name]
        for metric, v in alone.val_metrics[name].items():
            assert together.val_metrics[name][metric] == pytest.approx(v, rel=1e-5, abs=1e-6)
        test_alone = alone.evaluate(alone_data, "test")[name]
        test_together = together.evaluate(data, "test")[name]
        for metric, v in test_alone.items():
            assert test_together[metric] == pytest.approx(v, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("method", sorted(WEIGHTINGS))
def test_every_weighting_method_trains(data, method):
    g = SharingGraph.shared_bottom(data.tasks, BB, 1)
    res = train(g, data, TrainConfig(epochs=2, batch_size=64, weighting=method))
    assert res.status == "ok"
    for name in data.task_names:
        assert math.isfinite(res.val_metrics[name]["rmse"])


def test_training_improves_over_initialisation(data):
    g = SharingGraph.shared_bottom(data.tasks, BB)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=3e-3)
    res = train(g, data, cfg)
    from sharesearch.network import compile_graph

    untrained = evaluate(compile_graph(g, seed=0), data, "val")
    for name in data.task_names:
        assert res.val_metrics[name]["rmse"] < untrained[name]["rmse"]


def test_divergence_ends_with_a_status_not_an_exception(data):
    g = SharingGraph.shared_bottom(data.tasks, BB)
    res = train(g, data, TrainConfig(epochs=3, optimizer="sgd", lr=1e12))
    assert res.status == "diverged"
    assert "non-finite" in res.message


def test_model_selection_is_per_task_and_restores_weights(data):
    g = SharingGraph.shared_bottom(data.tasks, BB, 1)
    res = train(g, data, TrainConfig(epochs=4, batch_size=64))
    assert set(res.best_epoch) == set(data.task_names)
    assert len(res.history) == 4
    for name, ep in res.best_epoch.items():  # the kept epoch is the best of the history
        prim = [h[name] for h in res.history]
        assert prim[ep] == pytest.approx(min(prim))
    before = {k: v.clone() for k, v in res.model.state_dict().items()}
    val = res.evaluate(data, "val")
    for name in data.task_names:
        assert val[name]["rmse"] == pytest.approx(res.val_metrics[name]["rmse"], rel=1e-5)
    after = res.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("members", [1, 2])
def test_every_kept_metric_is_the_best_evaluations(members):
    """An evaluation computes only the primary metrics; a task's others are computed when it improves. Every
    metric kept (binary and regression tasks, sparse labels) must be that of the task's own best weights --
    the best evaluation's outputs, not the last one's -- alone and as a member of a population."""
    from sharesearch.training import train_population

    d = load_data("synthetic-planted", n=500, seed=1)
    g = SharingGraph.shared_bottom(d.tasks, {"name": "mlp", "input_shape": [d.x.shape[1]], "widths": [16]})
    cfgs = [TrainConfig(max_steps=60, eval_every=5, batch_size=64, lr=lr, seed=s)
            for s, lr in ((2, 3e-2), (5, 1e-2))][:members]
    results = train_population(g, d, cfgs)
    for res in results:
        assert any(ev not in (-1, len(res.history) - 1) for ev in res.best_evaluation.values())  # not all at the end
        again = res.evaluate(d, "val")
        for spec in d.tasks:
            assert set(res.val_metrics[spec.name]) == set(spec.metrics)
            for metric, v in res.val_metrics[spec.name].items():
                assert again[spec.name][metric] == pytest.approx(v, rel=1e-5, abs=1e-6), (spec.name, metric)


def test_callback_sees_every_epoch_and_can_stop(data):
    seen = []

    class Stop(Exception):
        pass

    def cb(epoch, primary):
        seen.append((epoch, sorted(primary)))
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        train(SharingGraph.independent(data.tasks, BB), data, TrainConfig(epochs=5), callback=cb)
    assert seen == [(0, sorted(data.task_names)), (1, sorted(data.task_names))]


def test_missing_labels_train_and_score_on_labelled_rows(data):
    y = data.y.clone()
    y[::2, 0] = float("nan")  # half the labels of task 0 are missing
    sparse = type(data)(**{**data.__dict__, "y": y})
    res = train(SharingGraph.shared_bottom(sparse.tasks, BB), sparse, TrainConfig(epochs=2, batch_size=64))
    assert res.status == "ok"
    assert all(math.isfinite(v["rmse"]) for v in res.val_metrics.values())


@pytest.mark.parametrize("sampling", ["uniform", "proportional"])
def test_a_graph_over_some_tasks_trains_as_on_those_tasks_alone_with_sparse_labels(data, sampling):
    """Rows labelled only for a task the graph does not train are never drawn."""
    y = data.y.clone()
    y[::2, :2] = float("nan")  # even rows: labelled for t2 only
    y[1::4, 2] = float("nan")
    sparse = type(data)(**{**data.__dict__, "y": y})
    ours = sparse.subset_tasks(["t0", "t1"])
    cfg = TrainConfig(epochs=2, batch_size=32, lr=3e-3, sampling=sampling)
    on_all = train(SharingGraph.independent(ours.tasks, BB), sparse, cfg)
    on_ours = train(SharingGraph.independent(ours.tasks, BB), ours, cfg)
    assert on_all.steps_run == on_ours.steps_run and on_all.examples_seen == on_ours.examples_seen
    for name in ours.task_names:
        for metric, v in on_ours.val_metrics[name].items():
            assert on_all.val_metrics[name][metric] == pytest.approx(v, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("sampling", ["uniform", "proportional"])
def test_a_task_drawing_every_tasks_batches_trains_as_in_the_network_of_every_task(data, sampling):
    """With sparse labels a graph over some tasks sees other batches than the all-task network; with
    ``batch_tasks`` naming every task it sees the same ones, so each task ends where it ends there."""
    y = data.y.clone()
    y[::2, 0] = float("nan")
    y[1::3, 1] = float("nan")
    y[::5, 2] = float("nan")
    sparse = type(data)(**{**data.__dict__, "y": y})
    cfg = TrainConfig(max_steps=30, eval_every=10, batch_size=32, lr=3e-3, sampling=sampling, seed=4)
    every = train(SharingGraph.independent(sparse.tasks, BB), sparse, cfg)
    some = [t for t in sparse.tasks if t.name in ("t0", "t2")]
    drawn = train(SharingGraph.independent(some, BB), sparse, cfg.updated(batch_tasks=sparse.task_names))
    own = train(SharingGraph.independent(some, BB), sparse, cfg)
    assert drawn.examples_seen == every.examples_seen != own.examples_seen
    for t in some:
        assert drawn.history_steps == every.history_steps
        assert [h[t.name] for h in drawn.history] == pytest.approx([h[t.name] for h in every.history], rel=1e-5)
        assert [h[t.name] for h in own.history] != pytest.approx([h[t.name] for h in every.history], rel=1e-5)


def test_batch_tasks_must_name_data_tasks_covering_the_graph(data):
    with pytest.raises(ConfigError, match="'batch_tasks'.*list of task names"):
        TrainConfig(batch_tasks="t0")
    assert TrainConfig.from_dict({"batch_tasks": ["t0", "t1"]}).batch_tasks == ("t0", "t1")  # from JSON
    g = SharingGraph.independent(data.tasks, BB)
    with pytest.raises(ConfigError, match="'batch_tasks'.*'t2'.*\\['t0', 't1'\\]"):
        train(g, data, TrainConfig(max_steps=2, batch_tasks=("t0", "t1")))  # the graph's t2 left out
    with pytest.raises(ConfigError, match="'batch_tasks'.*'nope'"):
        train(g, data, TrainConfig(max_steps=2, batch_tasks=("t0", "t1", "t2", "nope")))


def test_seeded_runs_are_identical(data):
    g = SharingGraph.mmoe(data.tasks, BB, experts=2)
    a = train(g, data, TrainConfig(epochs=2, seed=5))
    b = train(g, data, TrainConfig(epochs=2, seed=5))
    assert a.val_metrics == b.val_metrics


def test_bad_config_names_field_and_value():
    with pytest.raises(ConfigError, match="'lr'.*-1"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match="unknown field 'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="'sampling'"):
        TrainConfig(sampling="random")


def test_joint_state_keeps_one_consistent_model(data):
    g = SharingGraph.shared_bottom(data.tasks, BB)
    scores = []

    def score(primary):
        s = -sum(primary.values())
        scores.append(s)
        return s

    res = train(g, data, TrainConfig(epochs=3), joint_score=score)
    assert len(scores) == 3 and set(res.joint_state) == set(res.model.state_dict())


def test_cnn_backbone_trains_on_images_with_multiclass_tasks():
    from sharesearch.data import MultiTaskData, make_split
    from sharesearch.tasks import TaskSpec

    g = torch.Generator().manual_seed(0)
    n = 240
    x = torch.rand(n, 1, 12, 12, generator=g)
    left = (x[:, 0, :, :6].mean(dim=(1, 2)) > x[:, 0, :, 6:].mean(dim=(1, 2))).float()  # a learnable label
    y = torch.stack([left, torch.randint(0, 3, (n,), generator=g).float()], dim=1)
    data = MultiTaskData("images", [TaskSpec("left", "multiclass", n_classes=2), TaskSpec("noise", "multiclass", n_classes=3)],
                         x, y, make_split(n, 0))
    assert data.backbone_hint == "cnn"
    graph = SharingGraph.shared_bottom(data.tasks, {"name": "cnn", "input_shape": [1, 12, 12], "widths": [4, 8]}, 1)
    res = train(graph, data, TrainConfig(epochs=3, batch_size=32, lr=1e-2))
    assert res.status == "ok"
    assert 0.0 <= res.val_metrics["left"]["accuracy"] <= 1.0 and math.isfinite(res.val_metrics["noise"]["macro_f1"])


# ---------------------------------------------------------------- convergence: budget, patience, schedule
CONVERGE = TrainConfig(batch_size=64, lr=1e-2, max_steps=600, eval_every=8, patience=2, min_delta=0.01, seed=7)


def _improved_at(history, min_delta):
    """Per evaluation: did some task beat its best rmse so far by more than ``min_delta`` (relative)?"""
    best, out = {}, []
    for h in history:
        out.append(any(t not in best or best[t] - v > min_delta * abs(best[t]) for t, v in h.items()))
        for t, v in h.items():
            best[t] = min(v, best.get(t, v))
    return out


def test_patience_stops_before_the_cap_and_keeps_each_tasks_best(data):
    res = train(SharingGraph.shared_bottom(data.tasks, BB), data, CONVERGE.updated(min_delta=0.0))
    assert res.stopped_early and res.steps_run < res.total_steps == 600
    assert res.history_steps[-1] == res.steps_run and res.history_steps == sorted(set(res.history_steps))
    # the run ended exactly `patience` evaluations after the last improvement of any task
    assert max(res.best_evaluation.values()) == len(res.history) - 1 - CONVERGE.patience
    for name in data.task_names:
        assert res.best_step[name] < res.steps_run
        assert res.best_step[name] == res.history_steps[res.best_evaluation[name]]
        prim = [h[name] for h in res.history]
        assert prim[res.best_evaluation[name]] == pytest.approx(min(prim))
    assert res.still_learning_tasks == [] and not res.still_learning(data.task_names[0])


def test_a_run_cut_short_reports_still_learning(data):
    res = train(SharingGraph.shared_bottom(data.tasks, BB), data,
                TrainConfig(batch_size=64, lr=1e-3, max_steps=12, eval_every=3))
    assert not res.stopped_early and res.steps_run == 12 and len(res.history) == 4
    assert sorted(res.still_learning_tasks) == sorted(data.task_names)
    assert all(res.best_step[t] == 12 for t in data.task_names)


def test_independent_tasks_with_patience_equal_separate_runs_up_to_the_joint_stop(data):
    """Each task alone stops no later than the joint run, along the same curve; capped at the
    joint run's steps, it ends exactly where the joint run left it."""
    two = data.subset_tasks(["t0", "t2"])
    joint = train(SharingGraph.independent(two.tasks, BB), two, CONVERGE)
    assert joint.stopped_early
    for name in two.task_names:
        one = two.subset_tasks([name])
        alone = train(SharingGraph.independent(one.tasks, BB), one, CONVERGE)
        assert alone.steps_run <= joint.steps_run
        k = len(alone.history)
        assert alone.history_steps == joint.history_steps[:k]
        assert [h[name] for h in alone.history] == pytest.approx([h[name] for h in joint.history[:k]], rel=1e-5)
        capped = train(SharingGraph.independent(one.tasks, BB), one,
                       CONVERGE.updated(patience=0, max_steps=joint.steps_run))
        assert capped.best_step[name] == joint.best_step[name]
        for metric, v in capped.val_metrics[name].items():
            assert joint.val_metrics[name][metric] == pytest.approx(v, rel=1e-5, abs=1e-6)


def test_the_budget_is_counted_in_optimizer_steps(data):
    from torch.optim.optimizer import register_optimizer_step_post_hook

    calls = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: calls.append(1))
    try:
        runs = {}
        for bs in (32, 128):
            calls.clear()
            runs[bs] = train(SharingGraph.shared_bottom(data.tasks, BB), data,
                             TrainConfig(batch_size=bs, max_steps=40, eval_every=10))
            assert len(calls) == runs[bs].steps_run == 40
            n_train = len(data.indices("train"))
            epoch_sizes = [bs] * (n_train // bs) + ([n_train % bs] if n_train % bs else [])
            assert runs[bs].examples_seen == sum((epoch_sizes * 40)[:40])  # the last batch of an epoch is short
        assert runs[32].examples_seen < runs[128].examples_seen
        assert runs[32].epochs_run < runs[128].epochs_run  # fewer passes at the smaller batch
        calls.clear()
        by_epochs = train(SharingGraph.shared_bottom(data.tasks, BB), data, TrainConfig(batch_size=64, epochs=2))
        assert len(calls) == by_epochs.steps_run == 2 * math.ceil(n_train / 64)
        assert by_epochs.steps_run == step_budget(TrainConfig(batch_size=64, epochs=2), data)
        assert by_epochs.examples_seen == 2 * n_train
    finally:
        handle.remove()


def test_cosine_warms_up_then_decays_to_zero_at_the_cap(data):
    seen: list[Progress] = []
    cfg = TrainConfig(batch_size=64, lr=1e-2, max_steps=30, eval_every=5, lr_schedule="cosine", warmup_steps=10)
    res = train(SharingGraph.shared_bottom(data.tasks, BB), data, cfg, callback=lambda e, p, prog: seen.append(prog))
    assert [p.step for p in seen] == [5, 10, 15, 20, 25, 30]
    assert seen[0].lr == pytest.approx(1e-2 * 6 / 10)  # the 6th step of the warm-up comes next
    assert seen[1].lr == pytest.approx(1e-2)
    lrs = [p.lr for p in seen[1:]]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert res.final_lr == pytest.approx(0.0, abs=1e-12)


def test_plateau_halves_only_after_evaluations_without_improvement(data):
    seen: list[Progress] = []
    cfg = CONVERGE.updated(lr_schedule="plateau", plateau_patience=1, patience=0, max_steps=160)
    res = train(SharingGraph.shared_bottom(data.tasks, BB), data, cfg, callback=lambda e, p, prog: seen.append(prog))
    halvings = math.log2(cfg.lr / res.final_lr)
    assert halvings >= 1 and halvings == pytest.approx(round(halvings))
    improved = _improved_at(res.history, cfg.min_delta)
    for prev, now, imp in zip([cfg.lr] + [p.lr for p in seen], [p.lr for p in seen], improved):
        assert now == pytest.approx(prev if imp else prev / 2)


def test_three_argument_callback_gets_steps_and_examples(data):
    seen = []
    n_train = len(data.indices("train"))
    per_epoch = math.ceil(n_train / 64)
    train(SharingGraph.independent(data.tasks, BB), data, TrainConfig(batch_size=64, epochs=2),
          callback=lambda epoch, primary, prog: seen.append((epoch, sorted(primary), prog)))
    assert [(e, p.step, p.examples, p.evaluation) for e, _, p in seen] == [
        (0, per_epoch, n_train, 0), (1, 2 * per_epoch, 2 * n_train, 1)]
    assert all(names == sorted(data.task_names) and p.total_steps == 2 * per_epoch for _, names, p in seen)


def test_evaluation_follows_the_runs_amp_setting(data, monkeypatch):
    import sharesearch.training._loop as train_module

    flags = []
    real = train_module._autocast
    monkeypatch.setattr(train_module, "_autocast", lambda device, enabled: flags.append(enabled) or real(device, enabled))
    g = SharingGraph.shared_bottom(data.tasks, BB)
    for amp in (False, True):
        res = train(g, data, TrainConfig(batch_size=64, max_steps=2, amp=amp))
        flags.clear()
        res.evaluate(data, "test")
        assert flags and set(flags) == {amp}
    flags.clear()
    evaluate(res.model, data, "val")
    assert flags and set(flags) == {False}


def test_new_fields_are_validated_by_name():
    assert issubclass(ConfigError, SharesearchError)
    with pytest.raises(ConfigError, match="'lr_schedule'.*'linear'"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ConfigError, match="'max_steps'.*0"):
        TrainConfig(max_steps=0)
    with pytest.raises(ConfigError, match="'min_delta'.*-0.1"):
        TrainConfig(min_delta=-0.1)
    old = {k: v for k, v in TrainConfig().to_dict().items() if k in ("epochs", "batch_size", "lr", "seed")}
    assert TrainConfig.from_dict(old).total_steps(5) == 10 * 5  # a stored pre-budget config still loads


def test_predict_scores_exactly_as_evaluate(data):
    """TrainResult.predict gives the per-task best-weight outputs that evaluate scores."""
    from sharesearch.tasks import compute_metric

    g = SharingGraph.shared_bottom(data.tasks, {"name": "mlp", "input_shape": list(data.input_shape), "widths": [16, 8]})
    res = train(g, data, TrainConfig(epochs=3, batch_size=64, seed=1))
    out = res.predict(data, "test")
    y = data.y[data.indices("test")]
    metrics = res.evaluate(data, "test")
    for i, spec in enumerate(data.tasks):
        assert out[spec.name].shape[0] == y.shape[0]
        assert compute_metric(spec, spec.primary_metric, out[spec.name], y[:, i]) == metrics[spec.name][spec.primary_metric]


def test_each_evaluation_hands_over_the_window_s_training_loss_and_the_validation_loss(data, monkeypatch):
    """train_loss: each task's step losses since the last evaluation, weighted by labelled rows (NaN: none);
    val_loss: the loss of the model as it is at that evaluation on the validation rows (NaN: no label)."""
    y = data.y.clone()
    y[data.indices("train")[4:], 0] = float("nan")  # t0: 4 labelled training rows, so some windows have none
    y[data.indices("val"), 1] = float("nan")  # t1: no labelled validation row
    sparse = type(data)(**{**data.__dict__, "y": y})
    steps: list[tuple[str, float, int]] = []  # (task, loss, labelled rows) of each training step's loss

    class Recording(_loop.TaskLosses):  # the trainer's step losses, each task's with its labelled rows
        def __call__(self, out, yy, dense=False, weights=None):
            losses = super().__call__(out, yy, dense, weights)
            if not losses.requires_grad:  # the validation loss (outputs under no_grad): not a step's
                return losses
            for spec, c, v in zip(self.specs, self.cols, losses.tolist()):
                steps.append((spec.name, v, int((~torch.isnan(yy[:, c])).sum())))
            return losses

    monkeypatch.setattr(_loop, "TaskLosses", Recording)
    seen: list[Progress] = []
    res = train(SharingGraph.shared_bottom(sparse.tasks, BB), sparse,
                TrainConfig(max_steps=16, eval_every=2, batch_size=32, sampling="proportional", device="cpu"),
                callback=lambda epoch, primary, progress: seen.append(progress))
    names = sparse.task_names
    assert len(steps) == 16 * len(names) and len(seen) == 8
    for k, progress in enumerate(seen):
        window = steps[2 * k * len(names):2 * (k + 1) * len(names)]
        for t in names:
            rows = sum(n for name, _, n in window if name == t)
            want = sum(v * n for name, v, n in window if name == t) / rows if rows else float("nan")
            assert progress.train_loss[t] == pytest.approx(want, rel=1e-5, nan_ok=True), (k, t)
        assert math.isnan(progress.val_loss["t1"]) and math.isfinite(progress.val_loss["t0"])
    t0 = [p.train_loss["t0"] for p in seen]
    assert any(math.isnan(v) for v in t0) and any(math.isfinite(v) for v in t0)  # both cases were met
    out = predict_split(res.model, sparse, "val")  # the model's weights at the last evaluation
    y_val = sparse.y[sparse.indices("val")]
    for i, spec in enumerate(sparse.tasks):
        if spec.name != "t1":
            assert seen[-1].val_loss[spec.name] == pytest.approx(float(task_loss(spec, out[spec.name], y_val[:, i])),
                                                                 rel=1e-5)


def test_dwa_is_handed_each_epoch_s_mean_step_losses_and_divergence_is_still_caught_mid_epoch(data, monkeypatch):
    """The trainer sums losses per epoch only for a weighting that reads them (DWA): each epoch_end gets the mean
    of that epoch's step losses; a non-finite loss is caught at the next check whichever weighting runs."""
    from sharesearch.weighting.dwa import DWA

    steps: list[list[float]] = []
    ends: list[dict[str, float]] = []

    class Recording(_loop.TaskLosses):
        def __call__(self, out, yy, dense=False, weights=None):
            losses = super().__call__(out, yy, dense, weights)
            steps.append(losses.tolist())
            return losses

    monkeypatch.setattr(_loop, "TaskLosses", Recording)
    monkeypatch.setattr(DWA, "epoch_end", lambda self, mean: ends.append(dict(mean)))
    res = train(SharingGraph.shared_bottom(data.tasks, BB), data,
                TrainConfig(epochs=3, batch_size=64, weighting="dwa", device="cpu"))
    per_epoch = len(steps) // 3
    assert res.status == "ok" and len(ends) == 3 and per_epoch * 3 == len(steps)
    for e, mean in enumerate(ends):
        for k, t in enumerate(data.task_names):
            want = sum(s[k] for s in steps[e * per_epoch:(e + 1) * per_epoch]) / per_epoch
            assert mean[t] == pytest.approx(want, rel=1e-5)
    for method in ("equal", "dwa"):  # NaN in the second step: the run ends at the first check, epoch 0
        seen = []

        class Poisoned(_loop.TaskLosses):
            def __call__(self, out, yy, dense=False, weights=None):
                losses = super().__call__(out, yy, dense, weights)
                seen.append(1)
                return losses * float("nan") if len(seen) == 2 else losses

        monkeypatch.setattr(_loop, "TaskLosses", Poisoned)
        res = train(SharingGraph.shared_bottom(data.tasks, BB), data,
                    TrainConfig(epochs=3, batch_size=64, weighting=method, device="cpu"))
        assert res.status == "diverged" and res.message.startswith("epoch 0 (step "), (method, res.message)

"""Asking the pruner only where it can decide (``PruneSteps``) prunes exactly as asking at every report."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from sharesearch.search._study import PruneSteps, prune_steps

EVERY, CAP = 50, 600  # a trial reports every 50 steps up to 600


def _replay(pruner: optuna.pruners.BasePruner, curves: np.ndarray, only_when_due: bool) -> list:
    """Run one trial per curve (its value at each report), asking the pruner at every report or only when due;
    each trial's outcome: the step it was pruned at (None: completed), its completed rungs and the number of
    asks."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="same-brackets", direction="maximize", pruner=pruner,
                                storage=optuna.storages.InMemoryStorage())
    steps = prune_steps(pruner) if only_when_due else PruneSteps()
    out = []
    for curve in curves:
        trial, asked, pruned, asks = study.ask(), -1, None, 0
        for step, value in zip(range(EVERY, CAP + 1, EVERY), curve):
            trial.report(float(value), step)
            if steps.due(asked, step):
                asked, asks = step, asks + 1
                if trial.should_prune():
                    pruned = step
                    break
        if pruned is None:
            study.tell(trial, float(curve[-1]))
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        rungs = {k: v for k, v in study.trials[-1].system_attrs.items() if k.startswith("completed_rung")}
        out.append((pruned, rungs, asks))
    return out


@pytest.mark.parametrize("make", [
    lambda: optuna.pruners.HyperbandPruner(min_resource=150, max_resource=CAP, reduction_factor=3),
    lambda: optuna.pruners.HyperbandPruner(min_resource=100, max_resource=CAP, reduction_factor=2),
    lambda: optuna.pruners.HyperbandPruner(min_resource=70, max_resource=CAP, reduction_factor=3),  # rungs 70,
    # 210: between reports, decided at the first report past each
    lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=149),
], ids=["hyperband-3", "hyperband-2", "hyperband-between", "median"])
@pytest.mark.parametrize("seed", range(4))
def test_asking_only_when_due_prunes_the_same_trials_at_the_same_steps(make, seed):
    rng = np.random.default_rng(seed)
    n_steps = CAP // EVERY
    # 30 learning curves of different levels and slopes plus noise: some cross each other at the rungs
    curves = (rng.normal(0, 1, (30, 1)) + rng.normal(0, 0.3, (30, 1)) * np.arange(n_steps)
              + rng.normal(0, 0.5, (30, n_steps)))
    always, due = _replay(make(), curves, False), _replay(make(), curves, True)
    assert [(p, r) for p, r, _ in due] == [(p, r) for p, r, _ in always]
    assert any(p is not None for p, _, _ in always) and any(p is None for p, _, _ in always)  # both outcomes
    assert sum(a for *_, a in due) < sum(a for *_, a in always)  # and it asked less


def test_hyperband_is_asked_only_at_its_rungs_and_the_median_pruner_from_its_warmup():
    hb = prune_steps(optuna.pruners.HyperbandPruner(min_resource=750, max_resource=3000, reduction_factor=3))
    asked, asks = -1, []
    for step in range(50, 3001, 50):
        if hb.due(asked, step):
            asked = step
            asks.append(step)
    assert asks == [750, 2250]
    assert hb.due(-1, 800) and not hb.due(800, 2200) and hb.due(800, 2300)  # a rung skipped over is still asked
    median = prune_steps(optuna.pruners.MedianPruner(n_warmup_steps=749))
    assert [s for s in (700, 749, 750, 3000) if median.due(700, s)] == [749, 750, 3000]
    assert not prune_steps(optuna.pruners.NopPruner()).due(-1, 3000)


def test_a_pruner_it_does_not_know_is_asked_at_every_report():
    class Custom(optuna.pruners.HyperbandPruner):  # a subclass may decide elsewhere
        pass

    for pruner in (Custom(min_resource=750, max_resource=3000), optuna.pruners.HyperbandPruner(min_resource="auto"),
                   optuna.pruners.HyperbandPruner(min_resource=750, max_resource="auto"),
                   optuna.pruners.ThresholdPruner(lower=0.0)):
        assert all(prune_steps(pruner).due(s - 50, s) for s in range(50, 3001, 50))

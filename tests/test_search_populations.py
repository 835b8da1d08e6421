"""A search whose trials train in populations: a topology and its companions, each an Optuna trial of its own."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from sharesearch.data import load_data
from sharesearch.search import (SearchConfig, SearchError, ensure_baselines, make_objective, member_params,
                                optimize_in_populations, prepare_study, trial_population)
from sharesearch.search import _populations
from sharesearch.space import SearchSpace, load_space
from sharesearch.training import TrainConfig

SOURCE = {"source": "synthetic-mmoe", "options": {"n": 400, "d": 8, "seed": 2, "clusters": [[0, 1], [2]]}}


@pytest.fixture(scope="module")
def data():
    return load_data(SOURCE["source"], **SOURCE["options"])


def _space() -> SearchSpace:
    d = load_space("tiny").to_dict()
    d["train"]["weighting"] = "equal"  # companions need a weighting a population can share
    d["train"]["weight_decay"] = {"low": 1e-5, "high": 1e-3, "log": True, "off": True}
    return SearchSpace.from_dict(d, source="pop.toml")


def _study(data, space, cfg, pruner=None, device="cpu"):
    tb = TrainConfig(device=device)
    study = prepare_study(optuna.storages.InMemoryStorage(), "pop", data, SOURCE, space, cfg, tb)
    baselines = ensure_baselines(study, data, space, tb, progress=False)
    if pruner is not None:
        study.pruner = pruner
    return study, make_objective(study, data, space, cfg, tb, baselines)


def test_companions_share_the_topology_train_as_one_population_and_are_told_one_by_one(data, monkeypatch):
    space = _space()
    calls: list[int] = []
    real = _populations.train_population

    def spy(graph, d, configs, **kw):
        calls.append(len(configs))
        return real(graph, d, configs, **kw)

    monkeypatch.setattr(_populations, "train_population", spy)
    study, runner = _study(data, space, SearchConfig(n_trials=7, references=(), population=3))
    told = []
    optimize_in_populations(study, runner, space, population=3, target=7, callbacks=[lambda s, t: told.append(t)])
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 7 and [t.number for t in told] == [t.number for t in trials]  # exactly 7, none more
    assert calls == [3, 3, 1]  # two topologies with two companions each, then the last trial alone
    member = member_params(space)
    assert member == {"lr", "weight_decay", "weight_decay_on"}  # the sampler chooses these per companion
    for batch in (trials[0:3], trials[3:6]):
        fixed = [{k: v for k, v in t.params.items() if k not in member} for t in batch]
        assert fixed[0] == fixed[1] == fixed[2]
        assert len({t.params["lr"] for t in batch}) == 3  # the sampler chose each companion's learning rate
        assert len({t.user_attrs["graph_key"] for t in batch}) == 1
        assert all(t.state == TrialState.COMPLETE and t.intermediate_values for t in batch)


def _default_population_on(data, device: str) -> None:
    """With no ``population`` asked for, a search on ``device`` trains a topology and its companions together."""
    space = _space()
    k = trial_population(device)
    study, runner = _study(data, space, SearchConfig(n_trials=k, references=()), device=device)
    optimize_in_populations(study, runner, space, population=k, target=k)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == k and all(t.state == TrialState.COMPLETE and t.intermediate_values for t in trials)
    assert len({t.user_attrs["graph_key"] for t in trials}) == 1  # one topology, k companions
    assert len({t.params["lr"] for t in trials}) == k


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_default_population_trains_companions_together(data):
    assert trial_population("cuda") > 1
    _default_population_on(data, "cuda")


class _PruneCompanions(optuna.pruners.BasePruner):
    """Prunes every trial but the first of each batch of three at its first report."""

    def prune(self, study, trial) -> bool:
        return trial.number % 3 != 0


def test_a_pruned_companion_leaves_its_population_and_the_rest_finish(data):
    space = _space()
    study, runner = _study(data, space, SearchConfig(n_trials=3, references=(), population=3), _PruneCompanions())
    optimize_in_populations(study, runner, space, population=3, target=3)
    first, *companions = study.get_trials(deepcopy=False)
    assert first.state == TrialState.COMPLETE and max(first.intermediate_values) > 10
    assert [t.state for t in companions] == [TrialState.PRUNED] * 2
    assert all(t.user_attrs["status"] == "pruned at step 10" for t in companions)


def test_an_error_fails_the_batch_and_is_raised(data, monkeypatch):
    space = _space()
    study, runner = _study(data, space, SearchConfig(n_trials=3, references=(), population=3))

    def broken(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(_populations, "train_population", broken)
    with pytest.raises(RuntimeError, match="boom"):
        optimize_in_populations(study, runner, space, population=3, target=3)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.FAIL] * 3


def test_population_size_rule_and_validation():
    assert trial_population("cpu") == 1 and trial_population("cpu", requested=5) == 5
    with pytest.raises(SearchError, match="'population' must be an integer >= 1, got 0"):
        SearchConfig(population=0)


def test_confirmation_seeds_of_a_baseline_configuration_train_as_one_population(data, monkeypatch):
    from sharesearch.search import _baselines

    d = load_space("tiny").to_dict()
    d["baseline"].update(trials=3, confirm_seeds=3, confirm_top=1)
    space = SearchSpace.from_dict(d, source="confirm.toml")
    calls: list[list[int]] = []
    real = _baselines.train_population

    def spy(graph, d, configs, **kw):
        calls.append([c.seed for c in configs])
        return real(graph, d, configs, **kw)

    monkeypatch.setattr(_baselines, "train_population", spy)
    tb = TrainConfig(device="cpu")
    study = prepare_study(optuna.storages.InMemoryStorage(), "conf", data, SOURCE, space, SearchConfig(), tb)
    baselines = ensure_baselines(study, data, space, tb, progress=False)
    assert calls and all(c == [500, 501, 502] for c in calls)  # one population per shortlisted configuration
    assert all(b.seeds == (500, 501, 502) and len(b.seed_values) == 3 for b in baselines.values())
    bstudy = optuna.load_study(study_name="conf.baselines", storage=study._storage)
    assert all(t.state == TrialState.COMPLETE for t in bstudy.get_trials(deepcopy=False))


def test_each_trial_records_the_seed_of_the_worker_sampler_that_proposed_it(data, tmp_path):
    from sharesearch.search import open_storage, run_worker, worker_seed

    space = _space()
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    cfg = SearchConfig(n_trials=2, references=(), seed=7)
    prepare_study(open_storage(url), "seeded", data, SOURCE, space, cfg, TrainConfig(device="cpu"))
    run_worker(url, "seeded", worker=3, data=data)
    study = optuna.load_study(study_name="seeded", storage=url)
    seeds = {t.user_attrs.get("sampler_seed") for t in study.get_trials(deepcopy=False)}
    assert seeds == {worker_seed(7, 3)} and worker_seed(7, 3) != worker_seed(7, 0)


def test_a_trial_swept_as_failed_while_it_trains_is_dropped_and_the_others_are_told(data, monkeypatch):
    """Another worker's heartbeat sweep can fail a trial this worker is still training (a stalled heartbeat
    under load): the worker drops that result and goes on, instead of crashing on UpdateFinishedTrialError."""
    space = _space()
    study, runner = _study(data, space, SearchConfig(n_trials=3, references=(), population=3))
    real = runner.reporter

    def reporter(p):
        report = real(p)

        def swept_first(epoch, primary, progress):
            if p.trial.number == 1:  # the sweep fails it behind this worker's back
                study._storage.set_trial_state_values(p.trial._trial_id, TrialState.FAIL)
            return report(epoch, primary, progress)

        return swept_first

    monkeypatch.setattr(runner, "reporter", reporter)
    optimize_in_populations(study, runner, space, population=3, target=3)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[1] == TrialState.FAIL
    assert [s for n, s in states.items() if n != 1] and all(s == TrialState.COMPLETE for n, s in states.items()
                                                            if n != 1)



def test_a_trial_swept_while_it_begins_is_dropped_too(data, monkeypatch):
    # a trial trained within begin (the control; a reused result) can be swept while it trains as well
    space = _space()
    study, runner = _study(data, space, SearchConfig(n_trials=2, references=()))
    real = runner.begin

    def begin(trial):
        if trial.number == 0:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            return 0.5  # its outcome, as begin hands back a trial it trained itself
        return real(trial)

    monkeypatch.setattr(runner, "begin", begin)
    optimize_in_populations(study, runner, space, population=1, target=2)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states[0] == TrialState.FAIL and TrialState.COMPLETE in states[1:]

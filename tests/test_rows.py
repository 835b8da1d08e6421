"""Multi-fidelity rows: the ``search_rows`` option, its sample, and a search on the sample verified on every row."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sharesearch.data import DataSpecError, MultiTaskData, RowSample, load_data
from sharesearch.errors import SharesearchError

SPEC = """
path = "t.csv"
split_seed = {seed}
{extra}
[[targets]]
column = "clicked"
kind = "binary"
[[targets]]
column = "spend"
kind = "regression"
"""


def _table(tmp_path: Path, n: int = 1500, extra: str = "", seed: int = 0, frame_seed: int = 0) -> Path:
    """A CSV with a unique ``row_id`` feature (to find each sampled row), a numeric and a categorical feature."""
    rng = np.random.default_rng(frame_seed)
    age = rng.normal(40, 12, n)
    country = rng.choice(["DE", "FR", "US"], n)
    logit = (age - 40) / 12 + (country == "US")
    pd.DataFrame({"row_id": np.arange(n, dtype=float), "age": age, "country": country,
                  "clicked": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
                  "spend": 20 + 3 * (age - 40) / 12 + rng.normal(0, 1, n)}).to_csv(tmp_path / "t.csv", index=False)
    p = tmp_path / "t.toml"
    p.write_text(SPEC.format(seed=seed, extra=extra))
    return p


def _ids(d: MultiTaskData, code: int | None = None) -> set[int]:
    """The ``row_id`` of every row (of one split code) of a table loaded from :func:`_table`."""
    mu, sd = d.meta["numeric_stats"]["row_id"]
    col = d.x[:, d.meta["feature_names"].index("row_id")].double() * sd + mu
    rows = col if code is None else col[d.split == code]
    return set(np.rint(rows.numpy()).astype(int).tolist())


# -------------------------------------------------------------- validation
@pytest.mark.parametrize("value", ["50", "0", "1.5", "-0.2", "true", '"many"', "[1000]", "99"])
def test_a_bad_search_rows_is_one_line_naming_file_field_and_value(tmp_path, value):
    spec = _table(tmp_path, n=200, extra=f"search_rows = {value}")
    with pytest.raises(DataSpecError) as e:
        load_data(spec)
    msg = str(e.value)
    assert msg.startswith("t.toml: search_rows: expected a row count (an integer >= 100) or a fraction")
    assert "\n" not in msg and msg.endswith(f"got {tomllib.loads('v = ' + value)['v']!r}")


def test_search_rows_as_an_option_of_every_source(tmp_path):
    d = load_data("synthetic-mmoe", n=600, search_rows=150)  # what --data-option search_rows=150 passes
    assert d.search_rows == 150 and d.search_view()[1].train == 150
    with pytest.raises(SharesearchError, match=r"^load_data\('synthetic-mmoe'\): search_rows: .* got 10$"):
        load_data("synthetic-mmoe", n=600, search_rows=10)
    spec = _table(tmp_path, n=400, extra="search_rows = 0.5")
    assert load_data(spec).search_rows == 0.5
    assert load_data(spec, search_rows=120).search_rows == 120  # the option overrides the file
    with pytest.raises(DataSpecError, match=r"^t.toml: option search_rows: .* got 2.0$"):
        load_data(spec, search_rows=2.0)


def test_search_rows_says_how_the_data_is_used_not_what_it_is(tmp_path):
    plain, sampled = load_data(_table(tmp_path, n=400)), load_data(_table(tmp_path, n=400), search_rows=150)
    assert plain.fingerprint() == sampled.fingerprint()  # the study's data check is unchanged
    assert sampled.meta["options"]["search_rows"] == 150 and "search_rows" not in plain.meta["options"]
    assert sampled.to("cpu").search_rows == 150 and sampled.subset_tasks(["spend"]).search_rows == 150
    view, _ = sampled.search_view()
    assert view.search_rows is None and view.search_view()[0] is view  # a sample is never sampled again


# ----------------------------------------------------------------- sample
@pytest.mark.parametrize("search_rows, n_train, n_val", [(300, 300, 64), (0.2, 210, 45), (100, 100, 21),
                                                         (5000, 1050, 225), (1.0, 1050, 225)])
def test_sample_size_follows_the_option_and_validation_rows_shrink_in_proportion(tmp_path, search_rows, n_train,
                                                                                 n_val):
    d = load_data(_table(tmp_path))  # 1050 train / 225 val / 225 test rows
    view, rows = d.sample_rows(search_rows)
    assert (rows.train, rows.val, rows.train_total, rows.val_total) == (n_train, n_val, 1050, 225)
    assert int((view.split == 0).sum()) == n_train and int((view.split == 1).sum()) == n_val
    assert rows.sampled == (n_train < 1050) and (view is d) == (not rows.sampled)


def test_sample_is_deterministic_and_seeded_by_the_data_seed(tmp_path):
    a, ra = load_data(_table(tmp_path, extra="search_rows = 200")).search_view()
    b, rb = load_data(_table(tmp_path, extra="search_rows = 200")).search_view()
    assert ra == rb and torch.equal(a.x, b.x) and torch.equal(a.y.nan_to_num(-1), b.y.nan_to_num(-1))
    c, rc = load_data(_table(tmp_path, extra="search_rows = 200", seed=1)).search_view()
    assert rc.seed == 1 and rc.digest != ra.digest and _ids(c) != _ids(a)
    assert RowSample.from_dict(ra.to_dict()) == ra and ra.to_dict()["summary"] == ra.summary()


def test_test_rows_are_never_in_the_sample_and_each_row_keeps_its_split(tmp_path):
    d = load_data(_table(tmp_path))
    for search_rows in (100, 0.3, 700):
        view, _ = d.sample_rows(search_rows)
        assert not bool((view.split == 2).any())
        assert not _ids(view) & _ids(d, 2)
        assert _ids(view, 0) <= _ids(d, 0) and _ids(view, 1) <= _ids(d, 1)


def test_sample_keeps_the_scalers_of_the_full_training_split(tmp_path):
    d = load_data(_table(tmp_path))
    view, _ = d.sample_rows(150)
    age = d.meta["feature_names"].index("age")
    full_train_age = d.x[d.split == 0, age]
    assert abs(float(full_train_age.mean())) < 1e-5 and abs(float(full_train_age.std(unbiased=False)) - 1) < 1e-4
    assert abs(float(view.x[view.split == 0, age].mean())) > 1e-3  # not re-standardised on the sample
    assert view.tasks == d.tasks and view.tasks[1].target_mean == d.tasks[1].target_mean
    by_id = {i: r for i, r in zip(sorted(_ids(d)), d.x)}  # row_id k is row k of the table
    for i, r in zip(sorted(_ids(view)), view.x):  # every sampled row is the full data's encoding of it
        assert torch.equal(by_id[i], r)


def test_a_record_redrawn_from_other_data_is_refused(tmp_path):
    _, rows = load_data(_table(tmp_path, extra="search_rows = 200")).search_view()
    other = load_data(_table(tmp_path, extra="search_rows = 200", frame_seed=1, seed=1))
    with pytest.raises(SharesearchError, match="differ from the study's record"):
        rows.apply(other, "study 's'")


# ------------------------------------------------- search on the sample, verdict on all rows
def _record_phases(monkeypatch) -> dict[str, list[tuple[int, int]]]:
    """Wrap the search phase's and the verdict's entry points to record (train, val) rows of the data they got."""
    from sharesearch.search import _workers

    seen: dict[str, list[tuple[int, int]]] = {"baselines": [], "trials": [], "verdict": []}

    def spy(name, fn, call=True):
        def wrapped(study, data, *args, **kwargs):
            seen[name].append((int((data.split == 0).sum()), int((data.split == 1).sum())))
            return fn(study, data, *args, **kwargs) if call else {}
        monkeypatch.setattr(_workers, fn.__name__, wrapped)

    spy("baselines", _workers.ensure_baselines)
    spy("trials", _workers.make_objective)
    spy("verdict", _workers.compute_verdict, call=False)  # the rows it is handed are all it trains on (30 s saved)
    return seen


def test_search_phase_uses_the_sample_and_the_verdict_every_row(tmp_path, monkeypatch):
    from sharesearch.report import markdown_summary
    from sharesearch.search import SearchConfig, SearchError, run_search, run_worker, study_results
    from sharesearch.search._study import load_study_data
    from sharesearch.space import load_space
    from sharesearch.training import TrainConfig

    spec = _table(tmp_path, n=600, extra="search_rows = 100")  # 420 train / 90 val rows
    data = load_data(spec)
    seen = _record_phases(monkeypatch)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = run_search(data, {"source": str(spec), "options": {}}, load_space("tiny"), storage=storage,
                       study_name="s", config=SearchConfig(n_trials=4, n_seeds=2, top_k=0),
                       train_base=TrainConfig(device="cpu"), progress=False)
    # run_search tunes the baselines, then its worker finds them stored: both calls are handed the sample
    assert seen["baselines"] and set(seen["baselines"]) == {(100, 21)} and seen["trials"] == [(100, 21)]
    assert seen["verdict"] == [(420, 90)]
    assert load_study_data(study).n == 600  # what `sharesearch verdict` retrains on: every row of the table
    results = study_results(study)
    line = "search: 100 of 420 training rows; verdict: all rows"
    assert results["data"]["meta"]["source"]["rows"]["summary"] == line
    assert line in markdown_summary(results).splitlines()
    run_worker(storage, "s", n_trials=5)  # joins from the storage alone: loads the spec, redraws the same rows
    assert seen["trials"][-1] == (100, 21)
    with pytest.raises(SearchError, match=r"study 's' searches on other rows .* search_rows=200"):
        run_search(load_data(spec, search_rows=200), {"source": str(spec), "options": {"search_rows": 200}},
                   load_space("tiny"), storage=storage, study_name="s", config=SearchConfig(n_trials=5),
                   train_base=TrainConfig(device="cpu"), progress=False, verdict=False)


def test_sample_keeps_each_rows_weight_and_the_preprocessing(tmp_path):
    spec = _table(tmp_path, extra='weight_column = "w"')
    frame = pd.read_csv(tmp_path / "t.csv")
    frame["w"] = frame["row_id"] + 1.0  # a weight that names its row
    frame.to_csv(tmp_path / "t.csv", index=False)
    d = load_data(spec)
    view, _ = d.sample_rows(200)
    ids = np.rint(view.x[:, d.meta["feature_names"].index("row_id")].double().numpy()
                  * d.meta["numeric_stats"]["row_id"][1] + d.meta["numeric_stats"]["row_id"][0])
    assert view.weights is not None and view.weights.shape == (view.n,)
    np.testing.assert_allclose(view.weights.numpy(), ids + 1.0)
    assert view.preprocessing is d.preprocessing is not None

"""export_best_model: the verdict's recommended network copied with its preprocessing, or a trial retrained."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sharesearch.data import load_data
from sharesearch.export import load_model, predict
from sharesearch.search import SearchConfig, compute_verdict, export_best_model, run_search
from sharesearch.space import load_space
from sharesearch.training import TrainConfig

SPEC = ('path = "t.csv"\nsplit = [0.6, 0.2, 0.2]\n'
        '[[targets]]\ncolumn = "y1"\nkind = "binary"\n[[targets]]\ncolumn = "y2"\nkind = "regression"\n')


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export_best")
    rng = np.random.default_rng(0)
    n = 200
    a, b = rng.normal(size=n), rng.normal(size=n)
    pd.DataFrame({"a": a, "b": b, "c": rng.choice(["p", "q"], n),
                  "y1": np.where(a > 0, "yes", "no"), "y2": 100 + 10 * (a + b)}).to_csv(tmp / "t.csv", index=False)
    (tmp / "t.toml").write_text(SPEC)
    source = {"source": str(tmp / "t.toml"), "options": {}}
    data = load_data(source["source"])
    url = f"sqlite:///{tmp / 's.db'}"
    cfg = SearchConfig(n_trials=2, n_seeds=2, top_k=1, references=("independent", "shared-bottom"))
    st = run_search(data, source, load_space("tiny"), storage=url, study_name="s", config=cfg, verdict=False,
                    train_base=TrainConfig(device="cpu", max_steps=4, eval_every=2), progress=False)
    return st, url, data, tmp


def test_before_a_verdict_the_best_trial_is_retrained_and_says_so(study, tmp_path):
    st, url, data, tmp = study
    out = export_best_model(url, "s", tmp_path / "m")
    model = load_model(out)
    prov = model.provenance
    assert (prov.source, prov.split, prov.study) == ("retrained", "val", "s") and prov.trial is not None
    assert {f.task for f in prov.figures} == set(data.task_names) and set(prov.deltas) == set(data.task_names)
    raw = pd.read_csv(tmp / "t.csv").drop(columns=["y1", "y2"])
    got = model.predict(raw.iloc[:7])
    want = predict(model, data.x[:7])
    assert np.array_equal(got["y2"].to_numpy(), want["y2"].numpy()) and set(got["y1"]) <= {"no", "yes"}


def test_the_verdicts_model_is_copied_with_preprocessing_and_test_provenance(study, tmp_path):
    st, url, data, tmp = study
    v = compute_verdict(st, data, n_seeds=2, row_resamples=0, top_k=1, model_dir=tmp_path / "verdict-model")
    rec = v["recommendation"]
    shipped = tmp_path / "verdict-model"
    assert rec["model_dir"] == str(shipped)
    out = export_best_model(url, "s", tmp_path / "m")
    folders = [out] if (out / "model.pt").is_file() else sorted(p for p in out.iterdir() if p.is_dir())
    for folder in folders:
        model = load_model(folder)
        assert model.preprocessing is not None and model.preprocessing.n_features == data.x.shape[1]
        prov = model.provenance
        assert (prov.source, prov.split, prov.arm) == ("verdict", "test", rec["arm"])
        rel = folder.relative_to(out)
        assert (folder / "model.pt").read_bytes() == (shipped / rel / "model.pt").read_bytes()  # the very weights
        raw = pd.read_csv(tmp / "t.csv").drop(columns=["y1", "y2"]).iloc[:5]
        got = model.predict(raw)
        assert set(got.columns) >= set(model.graph.tasks) and len(got) == 5
    # an explicit trial is retrained, never the verdict's copy
    number = json.loads((folders[0] / "provenance.json").read_text())["trial"]
    trial = number if number is not None else st.best_trials[0].number
    again = load_model(export_best_model(url, "s", tmp_path / "t", trial=trial))
    assert (again.provenance.source, again.provenance.trial) == ("retrained", trial)

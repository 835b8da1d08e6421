"""Serving raw rows: the fitted feature encoding (Preprocessing) and a model folder that predicts on a DataFrame."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from sharesearch.data import DataSpecError, load_spec_file
from sharesearch.data._preprocess import ColumnEncoding, Preprocessing
from sharesearch.errors import SharesearchError

TARGETS = '[[targets]]\ncolumn = "y1"\nkind = "binary"\n[[targets]]\ncolumn = "y2"\nkind = "regression"\n'


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Numeric, constant, categorical with gaps, numbers-as-categories, mixed text and bool columns."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "num": rng.normal(5, 2, n), "const": np.ones(n), "ints": rng.integers(0, 5, n),
        "cat": rng.choice(["a", "b", "c", None], n), "numcat": rng.choice([1, 2, 3], n),
        "mixed": [("x" if i % 3 == 0 else str(i)) for i in range(n)], "flag": rng.choice([True, False], n),
        "y1": rng.integers(0, 2, n), "y2": rng.normal(size=n)})
    df.loc[3, "num"] = np.nan
    return df


@pytest.mark.parametrize("categorical", [None, ["cat", "numcat", "mixed"]], ids=["detected", "declared"])
def test_preprocessing_reproduces_the_loader_bit_for_bit(categorical, tmp_path):
    df = _table()
    df.to_csv(tmp_path / "t.csv", index=False)
    features = ["num", "const", "ints", "cat", "numcat", "mixed", "flag"]
    spec = f'path = "t.csv"\nfeatures = {json.dumps(features)}\n'
    if categorical is not None:
        spec += f"categorical = {json.dumps(categorical)}\n"
    (tmp_path / "t.toml").write_text(spec + TARGETS)
    d = load_spec_file(tmp_path / "t.toml")
    raw = pd.read_csv(tmp_path / "t.csv")
    train = d.split.numpy() == 0
    pre = Preprocessing.fit(raw, features, categorical, train, where="t.csv")
    assert pre.feature_names == d.meta["feature_names"]
    assert pre.categories == d.meta["categories"] and pre.numeric_stats == d.meta["numeric_stats"]
    x = pre.transform(raw)
    assert x.dtype == np.float32 and np.array_equal(x, d.x.numpy())
    # JSON round trip, rows in another order, extra columns ignored, columns in another order
    back = Preprocessing.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert back == pre
    shuffled = raw[features[::-1] + ["y1"]].iloc[::-1]
    assert np.array_equal(back.transform(shuffled), x[::-1])
    # the rules themselves, computed here from the train rows
    num = raw["num"].to_numpy()
    tr = num[train & ~np.isnan(num)]
    z = np.where(np.isnan(num), 0.0, (num - tr.mean()) / tr.std()).astype(np.float32)
    assert np.array_equal(x[:, pre.feature_names.index("num")], z)
    assert (x[:, pre.feature_names.index("const")] == 0).all()  # std 0 -> 1, value - mean = 0
    assert x[3, pre.feature_names.index("num__missing")] == 1.0 and x[3, pre.feature_names.index("num")] == 0.0
    cats = [n for n in pre.feature_names if n.startswith("cat=")]
    assert cats == ["cat=a", "cat=b", "cat=c"]  # sorted train categories; None is missing, not a category
    gap = raw["cat"].isna().to_numpy()
    assert (x[gap][:, [pre.feature_names.index(c) for c in cats]] == 0).all()
    assert (x[gap, pre.feature_names.index("cat__missing")] == 1).all()


def test_unseen_and_missing_values_at_transform_time():
    df = pd.DataFrame({"a": [1.0, 3.0, 5.0], "c": ["u", "v", "u"]})
    pre = Preprocessing.fit(df, ["a", "c"], None, np.array([True, True, False]), where="t.csv")
    assert pre.feature_names == ["a", "c=u", "c=v"]  # no missing value when fitted: no indicators
    new = pd.DataFrame({"c": ["w", None, "v"], "a": [None, "4", 2]}, dtype=object)
    x = pre.transform(new)
    assert x.tolist() == [[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # mean 2, std 1; "4" is a number


def test_transform_errors_name_where_column_and_row():
    pre = Preprocessing((ColumnEncoding("age", "numeric", mean=1.0, std=1.0),
                         ColumnEncoding("c", "categorical", categories=("x",))))
    with pytest.raises(DataSpecError, match=r"^new\.csv: missing column 'c' \(the model reads the columns: age, c\)$"):
        pre.transform(pd.DataFrame({"age": [1.0]}), where="new.csv")
    bad = pd.DataFrame({"age": ["1", "2", "abc"], "c": ["x"] * 3})
    with pytest.raises(DataSpecError, match=r"^rows: column 'age', row 3: non-number 'abc' in a numeric feature$"):
        pre.transform(bad)
    with pytest.raises(DataSpecError, match="row 2: infinite value"):
        pre.transform(pd.DataFrame({"age": [1.0, np.inf], "c": ["x", "x"]}))
    assert pre.transform(pd.DataFrame({"age": [], "c": []})).shape == (0, 2)


def test_fit_errors_are_the_loaders(tmp_path):
    df = _table()
    df["fewbad"] = [str(i * 0.5) for i in range(len(df))]
    df.loc[9, "fewbad"] = "?"  # one non-number in 120: a numeric column with a typo, not a categorical one
    df.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "t.toml").write_text('path = "t.csv"\nfeatures = ["num", "fewbad"]\n' + TARGETS)
    with pytest.raises(DataSpecError) as loader:
        load_spec_file(tmp_path / "t.toml")
    raw = pd.read_csv(tmp_path / "t.csv")
    with pytest.raises(DataSpecError) as ours:
        Preprocessing.fit(raw, ["num", "fewbad"], None, np.ones(len(raw), bool), where="t.csv")
    assert str(ours.value) == str(loader.value) == ("t.csv: column 'fewbad', row 10: non-number '?' in a numeric "
                                                    "feature (list the column in `categorical` if it is one)")
    with pytest.raises(DataSpecError, match=r"^t\.csv: column 'num': no values in the train split \(split_seed=0\)$"):
        Preprocessing.fit(raw, ["num"], None, np.zeros(len(raw), bool), where="t.csv", split_note="split_seed=0")


@pytest.mark.parametrize("bad,field", [
    ({"version": 2, "columns": []}, "version"),
    ({"version": 1, "columns": [{"column": "a", "kind": "numeric", "std": 0}]}, "columns[0].std"),
    ({"version": 1, "columns": [{"column": "a", "kind": "numeric", "mean": "1"}]}, "columns[0].mean"),
    ({"version": 1, "columns": [{"column": "a", "kind": "categorical", "categories": ["x", "x"]}]},
     "columns[0].categories"),
    ({"version": 1, "columns": [{"kind": "numeric"}]}, "columns[0].column"),
])
def test_from_dict_refuses_damaged_data_in_one_line(bad, field):
    with pytest.raises(DataSpecError) as info:
        Preprocessing.from_dict(bad)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and msg.startswith("preprocessing: ") and field.split(".")[0] in msg


# ---------------------------------------------------------------- the model folder on raw rows
SERVE_TOML = ('path = "s.csv"\nsplit = [0.6, 0.2, 0.2]\nfeatures = ["age", "income", "city"]\ncategorical = ["city"]\n'
              '[[targets]]\ncolumn = "buy"\nkind = "binary"\n'
              '[[targets]]\ncolumn = "tier"\nkind = "multiclass"\n'
              '[[targets]]\ncolumn = "spend"\nkind = "regression"\n')


def _serving_table(tmp_path, n: int = 150):
    """A CSV whose test split holds a row with a missing number and a row with a city never seen in training."""
    from sharesearch.data import make_split

    rng = np.random.default_rng(1)
    split = make_split(n, 0, (0.6, 0.2, 0.2)).numpy()
    test = np.flatnonzero(split == 2)
    age = rng.normal(40, 10, n)
    city = rng.choice(["Lyon", "Oslo", "Rome"], n).astype(object)
    df = pd.DataFrame({"id": np.arange(n), "age": age, "income": rng.normal(3000, 500, n), "city": city,
                       "buy": np.where(age + rng.normal(0, 5, n) > 40, "yes", "no"),
                       "tier": rng.choice(["gold", "bronze", "silver"], n),
                       "spend": 1000 + 20 * age + rng.normal(0, 50, n)})
    df.loc[test[0], "age"] = np.nan
    df.loc[test[1], "city"] = "Atlantis"
    df.to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "s.toml").write_text(SERVE_TOML)
    return test


def test_predicting_raw_rows_equals_the_trained_network(tmp_path):
    from sharesearch.export import load_model, predict, save_model
    from sharesearch.graph import SharingGraph
    from sharesearch.training import TrainConfig, train

    test = _serving_table(tmp_path)
    d = load_spec_file(tmp_path / "s.toml")
    raw = pd.read_csv(tmp_path / "s.csv")
    pre = getattr(d, "preprocessing", None) or Preprocessing.fit(
        raw, d.meta["feature_columns"], ["city"], d.split.numpy() == 0, where="s.csv")
    assert np.array_equal(pre.transform(raw), d.x.numpy())  # the loader's tensors are the record's encoding
    names = pre.feature_names
    assert d.x[test[0], names.index("age__missing")] == 1 and d.x[test[0], names.index("age")] == 0
    assert (d.x[test[1], [names.index(f) for f in names if f.startswith("city=")]] == 0).all()  # unseen

    g = SharingGraph.shared_bottom(d.tasks, {"name": "mlp", "input_shape": [pre.n_features], "widths": [16, 8]}, 1)
    net = train(g, d, TrainConfig(max_steps=30, batch_size=32, lr=1e-2, device="cpu")).model.cpu()
    out = save_model(net, g, tmp_path / "model", tasks=d.tasks, preprocessing=pre,
                     provenance={"arm": "shared_bottom", "split": "val", "source": "retrained", "seed": 0,
                                 "figures": {"spend": {"rmse": 51.5}}})
    model = load_model(out)
    assert model.provenance.split == "val" and model.provenance.figures[0].metric == "rmse"

    rows = raw.loc[test].drop(columns=["buy", "tier", "spend"]).sample(frac=1.0, random_state=0)  # any order
    got = model.predict(rows.assign(note="extra columns are ignored"))
    assert list(got.index) == list(rows.index)
    want = predict(net, d.x[rows.index.tolist()], d.tasks)  # the loader's tensors of the same rows
    spec = {t.name: t for t in d.tasks}
    assert np.array_equal(got["spend"].to_numpy(), want["spend"].numpy())  # original units
    assert abs(got["spend"].mean() - raw["spend"].mean()) < 5 * raw["spend"].std()
    assert np.array_equal(got["buy_proba"].to_numpy(), want["buy"].numpy())
    assert spec["buy"].classes == ("no", "yes")
    assert (got["buy"] == np.where(want["buy"].numpy() > 0.5, "yes", "no")).all()
    tiers = list(spec["tier"].classes)
    assert tiers == ["bronze", "gold", "silver"]
    proba = np.stack([got[f"tier_proba={c}"].to_numpy() for c in tiers], axis=1)
    assert np.array_equal(proba, want["tier"].numpy())
    assert (got["tier"].to_numpy() == np.array(tiers, dtype=object)[want["tier"].numpy().argmax(1)]).all()


def test_raw_row_errors_and_a_folder_without_preprocessing(tmp_path):
    from sharesearch.export import ModelFolderError, load_model, predict, save_model
    from sharesearch.graph import SharingGraph
    from sharesearch.network import compile_graph
    from sharesearch.tasks import TaskSpec

    pre = Preprocessing((ColumnEncoding("a", "numeric"), ColumnEncoding("b", "categorical", categories=("x", "y"))))
    tasks = [TaskSpec("t", "regression"), TaskSpec("u", "binary")]
    g = SharingGraph.shared_bottom(tasks, {"name": "mlp", "input_shape": [3], "widths": [4]}, 1)
    net = compile_graph(g, seed=0)
    with pytest.raises(DataSpecError, match=r"^predict: missing column 'b' \(the model reads the columns: a, b\)$"):
        load_model(save_model(net, g, tmp_path / "m", tasks=tasks, preprocessing=pre)).predict(
            pd.DataFrame({"a": [1.0]}))
    assert load_model(tmp_path / "m").predict(pd.DataFrame({"b": ["z"], "a": [0]}))["u"].tolist() in (["0"], ["1"])
    # a folder written without preprocessing (as before it existed) loads; predict(frame) says what to do
    old = save_model(net, g, tmp_path / "m", tasks=tasks)  # the same folder: the old preprocessing.json goes
    assert not (old / "preprocessing.json").exists()
    model = load_model(old)
    assert model.preprocessing is None and set(predict(model, torch.zeros(2, 3))) == {"t", "u"}
    with pytest.raises(ModelFolderError, match=r"no preprocessing\.json .* pass encoded tensors") as info:
        model.predict(pd.DataFrame({"a": [1.0], "b": ["x"]}))
    assert len(str(info.value).splitlines()) == 1
    # a preprocessing of another width is refused before anything is written
    wide = Preprocessing((ColumnEncoding("a", "numeric"),))
    with pytest.raises(ValueError, match=r"preprocessing gives 1 features but the graph's input shape is \[3\]"):
        save_model(net, g, tmp_path / "new", tasks=tasks, preprocessing=wide)
    with pytest.raises(ValueError, match="provenance: split"):
        save_model(net, g, tmp_path / "new", provenance={"arm": "x", "split": "validation"})
    assert not (tmp_path / "new").exists()



def test_a_folder_of_group_models_predicts_as_one_model(tmp_path):
    """The verdict's "keep independent models" with several configurations: group-0/, group-1/, ..."""
    from sharesearch.export import load_model, save_model
    from sharesearch.graph import SharingGraph
    from sharesearch.model_group import ModelGroup
    from sharesearch.training import TrainConfig, train

    _serving_table(tmp_path)
    d = load_spec_file(tmp_path / "s.toml")
    raw = pd.read_csv(tmp_path / "s.csv").drop(columns=["buy", "tier", "spend"])
    parts = []
    for i, tasks in enumerate((["spend"], ["buy", "tier"])):  # disjoint tasks, other widths
        sub = d.subset_tasks(tasks)
        g = SharingGraph.independent(sub.tasks, {"name": "mlp", "input_shape": [d.x.shape[1]], "widths": [8 * (i + 1)]})
        net = train(g, sub, TrainConfig(max_steps=10, batch_size=32, device="cpu")).model.cpu()
        parts.append(load_model(save_model(net, g, tmp_path / "m" / f"group-{i}", tasks=sub.tasks,
                                           preprocessing=d.preprocessing)).predict(raw))
    group = load_model(tmp_path / "m")
    assert isinstance(group, ModelGroup) and [t.name for t in group.tasks] == ["spend", "buy", "tier"]
    pd.testing.assert_frame_equal(group.predict(raw), pd.concat(parts, axis=1))
    import shutil

    shutil.copytree(tmp_path / "m" / "group-0", tmp_path / "m" / "group-2")  # spend twice
    with pytest.raises(SharesearchError, match="task 'spend' is in both group-0 and group-2"):  # two groups answering for one task cannot be one model
        load_model(tmp_path / "m")

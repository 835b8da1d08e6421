"""Serving raw rows: the fitted feature encoding (Preprocessing) and a model folder that predicts on a DataFrame."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sharesearch.data import DataSpecError, load_spec_file
from sharesearch.data._preprocess import ColumnEncoding, Preprocessing

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

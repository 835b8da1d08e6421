"""The data-spec keys of issue 14: split_column, weight_column, exclude, selection_metric, the leak refusal,
and the metrics F1 / average precision (checked against scikit-learn)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score

from sharesearch.data import DataSpecError, load_data
from sharesearch.names import METRICS
from sharesearch.tasks import TaskSpec, compute_metric

TARGETS = '[[targets]]\ncolumn = "y1"\nkind = "binary"\n[[targets]]\ncolumn = "y2"\nkind = "regression"\n'


def _frame(n: int = 40) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame({"id": i + 1000, "a": np.sin(i), "c": np.where(i % 3 == 0, "u", "v"),
                         "fold": np.where(i < 24, "train", np.where(i < 32, "valid", "test")),
                         "w": (i % 4) * 0.5, "y1": i % 2, "y2": np.cos(i) * 3})


def _load(tmp_path, extra: str = "", frame: pd.DataFrame | None = None, targets: str = TARGETS, **options):
    (frame if frame is not None else _frame()).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "d.toml").write_text(f'path = "d.csv"\n{extra}\n{targets}')
    return load_data(tmp_path / "d.toml", **options)


def _refused(tmp_path, pattern: str, extra: str = "", frame: pd.DataFrame | None = None, **kw) -> str:
    with pytest.raises(DataSpecError) as e:
        _load(tmp_path, extra, frame, **kw)
    msg = str(e.value)
    assert "\n" not in msg and re.search(pattern, msg), msg
    return msg


# ------------------------------------------------------------------ split_column
def test_split_column_is_honoured_exactly_and_is_no_feature(tmp_path):
    d = _load(tmp_path, 'split_column = "fold"\nsplit_values = {train = "train", val = "valid", test = "test"}')
    expect = np.where(np.arange(40) < 24, 0, np.where(np.arange(40) < 32, 1, 2))
    assert d.split.tolist() == expect.tolist()
    assert "fold" not in d.meta["feature_columns"] and d.meta["split_column"] == "fold"
    assert d.meta["options"] == {"split_seed": 0, "split_column": "fold"}


def test_split_values_default_and_numbers(tmp_path):
    df = _frame()
    df["fold"] = df["fold"].replace({"valid": "val"})
    d = _load(tmp_path, 'split_column = "fold"', df)
    assert d.split.tolist()[:24] == [0] * 24 and set(d.split.tolist()[24:32]) == {1}
    df["fold"] = np.where(np.arange(40) < 30, 1, 2)  # numbers: 1 train, 2 test
    d = _load(tmp_path, 'split_column = "fold"\nsplit_values = {train = 1, test = "2"}', df)
    assert (d.split[30:] == 2).all() and set(d.split[:30].tolist()) == {0, 1}


def test_split_column_carves_the_missing_split_from_train_rows(tmp_path):
    df = _frame()
    df["fold"] = np.where(np.arange(40) < 34, "tr", "va")
    extra = 'split_column = "fold"\nsplit_values = {train = "tr", val = "va"}\nsplit = [0.5, 0.0, 0.5]\nsplit_seed = 3'
    d = _load(tmp_path, extra, df)
    s = d.split.numpy()
    assert (s[34:] == 1).all()  # the named validation rows stay exactly
    assert set(s[:34]) == {0, 2} and (s[:34] == 2).sum() == 17  # test carved from train: 0.5 / (0.5 + 0.5)
    assert d.meta["options"]["split"] == [0.5, 0.0, 0.5]


def test_split_column_refusals(tmp_path):
    df = _frame()
    df.loc[6, "fold"] = "holdout"
    _refused(tmp_path, r"^d\.csv: column 'fold', row 7: value 'holdout' names no split \(split_values: "
                       r"train='train', val='valid', test='test'\)$",
             'split_column = "fold"\nsplit_values = {train = "train", val = "valid", test = "test"}', df)
    df.loc[6, "fold"] = None
    _refused(tmp_path, r"column 'fold', row 7: a missing value names no split",
             'split_column = "fold"\nsplit_values = {train = "train", val = "valid", test = "test"}', df)
    only = _frame()
    only["fold"] = only["fold"].replace({"valid": "train"})
    _refused(tmp_path, r"^d\.csv: column 'fold': no row has the value 'val' of split_values\.val; leave val out",
             'split_column = "fold"', only)
    _refused(tmp_path, r"^d\.toml: split: \[0\.5, 0\.25, 0\.25\] has no effect: split_column 'fold'",
             'split_column = "fold"\nsplit = [0.5, 0.25, 0.25]\nsplit_values = {train = "train", val = "valid", test = "test"}')
    _refused(tmp_path, r"^option split: .* has no effect", 'split_column = "fold"\n'
             'split_values = {train = "train", val = "valid", test = "test"}', split=[0.5, 0.25, 0.25])
    _refused(tmp_path, r"^d\.toml: split_values: given without split_column", 'split_values = {train = "x"}')
    _refused(tmp_path, r"^d\.toml: split_values: train: missing required key", 'split_column = "fold"\n'
             'split_values = {val = "valid"}')
    _refused(tmp_path, r"^d\.toml: split_values: unknown split 'dev'", 'split_column = "fold"\n'
             'split_values = {train = "train", dev = "valid"}')
    _refused(tmp_path, r"^d\.toml: split_column: unknown column 'folds'", 'split_column = "folds"')
    _refused(tmp_path, r"^d\.toml: split_column: column 'y1' is also a target", 'split_column = "y1"')


# ------------------------------------------------------------------ weight_column
def test_weight_column_becomes_data_weights(tmp_path):
    d = _load(tmp_path, 'weight_column = "w"')
    assert d.weights is not None and d.weights.dtype == torch.float32
    assert d.weights.tolist() == ((np.arange(40) % 4) * 0.5).tolist()
    assert "w" not in d.meta["feature_columns"] and "weight column: w" in d.meta["feature_note"]
    plain = _load(tmp_path)
    assert plain.weights is None and d.fingerprint() != plain.fingerprint()


@pytest.mark.parametrize("value, pattern", [
    ("-1", r"row 4: negative value -1 in the weight column"),
    ("abc", r"row 4: non-number 'abc' in the weight column"),
    ("", r"row 4: missing value in the weight column"),
    ("inf", r"row 4: infinite value inf in the weight column"),
])
def test_weight_column_refusals(tmp_path, value, pattern):
    df = _frame().astype({"w": object})
    df.loc[3, "w"] = value
    _refused(tmp_path, r"^d\.csv: column 'w', " + pattern, 'weight_column = "w"', df)


def test_weight_column_all_zero_and_roles(tmp_path):
    df = _frame()
    df["w"] = 0.0
    _refused(tmp_path, r"^d\.csv: column 'w': every train row has weight 0$", 'weight_column = "w"', df)
    _refused(tmp_path, r"^d\.toml: features: column 'w' is the weight_column$",
             'weight_column = "w"\nfeatures = ["a", "w"]')
    _refused(tmp_path, r"^d\.toml: weight_column: 'fold' is also the split_column$",
             'weight_column = "fold"\nsplit_column = "fold"')


# ------------------------------------------------------------------ exclude and the feature note
def test_exclude_and_feature_note(tmp_path):
    d = _load(tmp_path, 'exclude = ["id", "fold", "w"]')
    assert d.meta["feature_columns"] == ["a", "c"] and d.meta["exclude"] == ["id", "fold", "w"]
    assert d.meta["feature_note"] == "features: 2 of 7 columns (a, c); excluded: id, fold, w; targets: y1, y2"
    every = _load(tmp_path)  # without features or exclude every other column is a feature, and the note says so
    assert every.meta["feature_columns"] == ["id", "a", "c", "fold", "w"]
    assert every.meta["feature_note"].startswith("features: 5 of 7 columns (id, a, c, fold, w)")
    listed = _load(tmp_path, 'features = ["a"]')
    assert listed.meta["feature_note"] == "features: 1 column as listed (a); targets: y1, y2"


def test_exclude_refusals(tmp_path):
    _refused(tmp_path, r"^d\.toml: exclude: unknown column 'nope' \(columns: id, a, c", 'exclude = ["nope"]')
    _refused(tmp_path, r"^d\.toml: exclude: column 'y2' is also a target \(task 'y2'\)", 'exclude = ["y2"]')
    _refused(tmp_path, r"^d\.toml: features: column 'id' is also in exclude$", 'exclude = ["id"]\nfeatures = ["id"]')
    _refused(tmp_path, r"^d\.toml: exclude: expected a list of column names, got 'id'$", 'exclude = "id"')
    _refused(tmp_path, r"^d\.toml: features: no feature columns left", 'exclude = ["id", "a", "c", "fold", "w"]')


# ------------------------------------------------------------------ the leak refusal
@pytest.mark.parametrize("copy, target", [
    (lambda df: df["y2"], "y2"),  # a numeric copy of a regression target
    (lambda df: df["y1"].map({0: "false", 1: "true"}), "y1"),  # the same labels, written otherwise
    (lambda df: df["y2"].fillna(7.5), "y2"),  # equal where the target is labelled, a value elsewhere
])
def test_a_feature_that_repeats_a_target_is_refused(tmp_path, copy, target):
    df = _frame()
    df.loc[df.index % 5 == 0, "y2"] = np.nan  # some rows unlabelled for y2
    df["leak"] = copy(df)
    _refused(tmp_path, rf"^d\.toml: features: column 'leak' repeats target column '{target}' on every labelled row; "
                       r"a target must not be an input: list it in exclude$", "", df)
    assert _load(tmp_path, 'exclude = ["leak"]', df).meta["feature_columns"] == ["id", "a", "c", "fold", "w"]
    _refused(tmp_path, r"features: column 'leak' repeats .*: remove it from features$", 'features = ["a", "leak"]', df)


def test_a_yes_no_target_and_its_0_1_column_is_a_leak_but_a_relabelling_is_not(tmp_path):
    df = _frame()
    df["y1"] = np.where(df["y1"] == 1, "yes", "no")
    df["is_yes"] = (df["y1"] == "yes").astype(int)  # the encoded label
    _refused(tmp_path, r"column 'is_yes' repeats target column 'y1'", "", df)
    df = df.drop(columns="is_yes")
    df["relabel"] = np.where(df["y1"] == "yes", "p", "q")  # predicts y1 perfectly, but is not a copy
    assert "relabel" in _load(tmp_path, "", df).meta["feature_columns"]


def test_another_target_labelled_elsewhere_is_no_copy(tmp_path):
    df = _frame()
    df["y3"] = df["y2"].where(df.index % 2 == 0)  # a copy where labelled, but y2 is labelled on more rows
    targets = TARGETS + '[[targets]]\ncolumn = "y3"\nkind = "regression"\n'
    d = _load(tmp_path, "", df, targets=targets)
    assert "y3" not in d.meta["feature_columns"]  # a target is never a feature without features
    _refused(tmp_path, r"features: column 'y2' is also a target", 'features = ["a", "y2"]', df, targets=targets)


# ------------------------------------------------------------------ selection_metric and the metrics
def test_selection_metric_goes_first(tmp_path):
    targets = ('[[targets]]\ncolumn = "y1"\nkind = "binary"\nmetrics = ["auc", "f1", "average_precision"]\n'
               'selection_metric = "average_precision"\n'
               '[[targets]]\ncolumn = "y2"\nkind = "regression"\nselection_metric = "mae"\n')
    d = _load(tmp_path, targets=targets)
    assert d.tasks[0].metrics == ("average_precision", "auc", "f1") and d.tasks[0].primary_metric == "average_precision"
    assert d.tasks[1].metrics == ("mae", "rmse", "r2")


def test_selection_metric_refusals(tmp_path):
    bad = '[[targets]]\ncolumn = "y1"\nkind = "binary"\nselection_metric = "rmse"\n' + TARGETS.split("\n", 3)[3]
    _refused(tmp_path, r"^d\.toml: targets\[0\]\.selection_metric: 'rmse' is not a metric of a binary task "
                       r"\(valid: auc, accuracy, macro_f1, f1, average_precision, logloss\)$", targets=bad)
    bad = ('[[targets]]\ncolumn = "y1"\nkind = "binary"\nmetrics = ["auc"]\nselection_metric = "f1"\n'
           + TARGETS.split("\n", 3)[3])
    _refused(tmp_path, r"^d\.toml: targets\[0\]\.selection_metric: 'f1' is not one of the target's metrics \(auc\)",
             targets=bad)
    bad = '[[targets]]\ncolumn = "y1"\nkind = "binary"\nmetrics = ["mae"]\n' + TARGETS.split("\n", 3)[3]
    _refused(tmp_path, r"targets\[0\]\.metrics: .*'mae' does not apply to a binary task \(valid: auc, ", targets=bad)


def test_new_metrics_have_directions_and_match_sklearn():
    assert METRICS["f1"].direction == METRICS["average_precision"].direction == "maximize"
    assert METRICS["logloss"].direction == METRICS["mae"].direction == "minimize"
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 1, generator=g)  # [200, 1]
    y = (torch.rand(200, generator=g) < torch.sigmoid(2 * logits[:, 0])).float()  # [200]
    y[::7] = float("nan")
    lab = ~torch.isnan(y)
    yt, s = y[lab].int().numpy(), logits[lab, 0].numpy()
    spec = TaskSpec("t", "binary", metrics=("f1", "average_precision", "macro_f1"))
    assert compute_metric(spec, "f1", logits, y) == pytest.approx(f1_score(yt, s > 0))
    assert compute_metric(spec, "average_precision", logits, y) == pytest.approx(average_precision_score(yt, s))
    assert compute_metric(spec, "macro_f1", logits, y) == pytest.approx(f1_score(yt, s > 0, average="macro"))
    assert np.isnan(compute_metric(spec, "average_precision", logits[:3], torch.zeros(3)))
    multi = TaskSpec("m", "multiclass", n_classes=4)
    out = torch.randn(100, 4, generator=g)  # [100, 4]
    ym = torch.randint(0, 3, (100,), generator=g).float()  # class 3 never labelled
    assert compute_metric(multi, "macro_f1", out, ym) == pytest.approx(
        f1_score(ym.int().numpy(), out.argmax(1).numpy(), average="macro"))

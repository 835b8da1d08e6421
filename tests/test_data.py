"""Tests of the data layer: container, sources (synthetic, tables, MultiFashion) and index batching."""

from __future__ import annotations

import gzip
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sharesearch.errors import SharesearchError
import torch

from sharesearch.data import (
    DataFileNotFoundError,
    DataSpecError,
    IndexBatcher,
    MultiTaskData,
    SOURCES,
    load_data,
    make_split,
)
from sharesearch.data.multifashion import DEFAULT_ROOT, make_multifashion, read_idx
from sharesearch.tasks import TaskSpec, compute_metric


# ----------------------------------------------------------------- helpers
def _toy(n=20, y=None, x=None, tasks=None, split=None, **kw):
    tasks = tasks or [TaskSpec("a", "regression"), TaskSpec("b", "binary")]
    if y is None:
        y = torch.zeros(n, len(tasks))
    return MultiTaskData(
        name="toy",
        tasks=tasks,
        x=torch.randn(n, 3, generator=torch.Generator().manual_seed(0)) if x is None else x,
        y=y,
        split=make_split(n, 0) if split is None else split,
        split_seed=0,
        **kw,
    )


def _write_spec(tmp_path: Path, body: str, name: str = "videos.toml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


VIDEOS_TOML = """
path = "videos.csv"
categorical = ["country"]
split_seed = 0
[[targets]]
column = "clicked"
kind = "binary"
[[targets]]
column = "rating"
kind = "multiclass"
classes = [1, 2, 3, 4, 5]
weight = 2.0
metrics = ["accuracy", "macro_f1"]
[[targets]]
column = "revenue"
kind = "regression"
name = "spend"
"""


def _videos_frame(n=60, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, n).astype(float)
    age[[2, 9]] = np.nan
    country = rng.choice(["DE", "FR", "US"], n).astype(object)
    country[4] = None
    clicked = rng.choice(["no", "yes"], n).astype(object)
    rating = rng.integers(1, 6, n).astype(float)
    rating[[1, 5, 7]] = np.nan
    revenue = np.round(rng.normal(10, 3, n), 2)
    revenue[[0, 3]] = np.nan
    return pd.DataFrame(
        {
            "age": age,
            "country": country,
            "clicked": clicked,
            "rating": pd.array([None if math.isnan(r) else int(r) for r in rating], dtype="Int64"),
            "revenue": revenue,
        }
    )


@pytest.fixture
def videos(tmp_path):
    df = _videos_frame()
    df.to_csv(tmp_path / "videos.csv", index=False)
    return _write_spec(tmp_path, VIDEOS_TOML), df


# --------------------------------------------------------------- container
def test_make_split_reproducible_and_sized():
    a, b, c = make_split(1000, 5), make_split(1000, 5), make_split(1000, 6)
    assert a.dtype == torch.int8 and torch.equal(a, b) and not torch.equal(a, c)
    assert [int((a == k).sum()) for k in range(3)] == [700, 150, 150]
    s = make_split(10, 0, (0.5, 0.5, 0.0))
    assert [int((s == k).sum()) for k in range(3)] == [5, 5, 0]
    with pytest.raises(ValueError, match="summing to 1"):
        make_split(10, 0, (0.5, 0.2, 0.2))


def test_container_validation():
    with pytest.raises(ValueError, match="NaN or infinite value in row 3"):
        x = torch.zeros(20, 3)
        x[3, 1] = float("nan")
        _toy(x=x)
    with pytest.raises(ValueError, match="at least 2 tasks"):
        _toy(tasks=[TaskSpec("a", "regression")])
    with pytest.raises(ValueError, match="duplicate task names"):
        _toy(tasks=[TaskSpec("a", "regression"), TaskSpec("a", "binary")])
    y = torch.zeros(20, 2)
    y[make_split(20, 0) == 0, 1] = float("nan")
    with pytest.raises(ValueError, match="task 'b' has no labelled row in the train split"):
        _toy(y=y)
    with pytest.raises(ValueError, match="class indices 0..1"):
        _toy(y=torch.full((20, 2), 2.0))
    with pytest.raises(ValueError, match="split must be int8"):
        _toy(split=torch.zeros(20, dtype=torch.int64))


def test_container_accessors():
    d = load_data("synthetic-mmoe", n=200, seed=3)
    parts = [d.indices(s) for s in ("train", "val", "test")]
    assert sorted(torch.cat(parts).tolist()) == list(range(200))
    assert all(p.dtype == torch.long for p in parts)
    assert bool((d.split[parts[1]] == 1).all())
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        d.indices("dev")
    assert d.labelled_counts("val") == {t: len(parts[1]) for t in d.task_names}
    sub = d.subset_tasks(["t4"])
    assert sub.task_names == ["t4"] and torch.equal(sub.y[:, 0], d.y[:, 4]) and sub.x is d.x
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        d.subset_tasks(["nope"])
    moved = d.to("cpu")
    assert moved.fingerprint() == d.fingerprint() and moved.input_shape == (16,)
    json.dumps(d.meta)  # meta is JSON-serialisable


def test_fingerprint_stable_and_sensitive():
    d = load_data("synthetic-mmoe", n=300, seed=1)
    fp = d.fingerprint()
    assert fp == load_data("synthetic-mmoe", n=300, seed=1).fingerprint()
    assert fp != load_data("synthetic-mmoe", n=300, seed=2).fingerprint()
    assert fp != load_data("synthetic-mmoe", n=300, seed=1, split_seed=9).fingerprint()

    x = d.x.clone()
    x[5, 2] += 1e-3
    assert MultiTaskData(d.name, d.tasks, x, d.y, d.split, d.split_seed).fingerprint() != fp
    y = d.y.clone()
    y[7, 1] = float("nan")
    assert MultiTaskData(d.name, d.tasks, d.x, y, d.split, d.split_seed).fingerprint() != fp
    tasks = list(d.tasks)
    tasks[0] = TaskSpec(tasks[0].name, "regression", weight=2.0, target_mean=tasks[0].target_mean, target_std=tasks[0].target_std)
    assert MultiTaskData(d.name, tasks, d.x, d.y, d.split, d.split_seed).fingerprint() != fp
    # name and meta are not data
    assert MultiTaskData("other", d.tasks, d.x, d.y, d.split, d.split_seed, meta={"a": 1}).fingerprint() == fp

    # the same across processes (no hash randomisation, no process state)
    code = "from sharesearch.data import load_data; print(load_data('synthetic-mmoe', n=300, seed=1).fingerprint())"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == fp


def test_load_data_unknown_source_and_option():
    with pytest.raises(ValueError, match=r"unknown data source 'mnist'; valid names: multifashion, synthetic-mmoe"):
        load_data("mnist")
    with pytest.raises(SharesearchError, match="synthetic-mmoe.*bogus.*valid options"):
        load_data("synthetic-mmoe", bogus=1)
    assert {"synthetic-mmoe", "multifashion"} <= set(SOURCES)


# --------------------------------------------------------------- synthetic
def test_synthetic_deterministic():
    a = load_data("synthetic-mmoe", n=500, seed=4)
    b = load_data("synthetic-mmoe", n=500, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.split, b.split)
    assert not torch.equal(a.x, load_data("synthetic-mmoe", n=500, seed=5).x)
    assert a.meta["clusters"] == [["t0", "t1", "t2"], ["t3", "t4"], ["t5"]]
    assert a.x.dtype == torch.float32 and a.split_seed == 4


def test_synthetic_cluster_structure():
    d = load_data("synthetic-mmoe")  # the quick-start default: n=4000, 6 tasks, p=0.9
    assert d.n == 4000 and len(d.tasks) == 6
    corr = np.corrcoef(d.y.numpy().T)
    cluster_of = {t: k for k, c in enumerate(d.meta["clusters"]) for t in c}
    names = d.task_names
    within = [corr[i, j] for i in range(6) for j in range(i + 1, 6) if cluster_of[names[i]] == cluster_of[names[j]]]
    across = [corr[i, j] for i in range(6) for j in range(i + 1, 6) if cluster_of[names[i]] != cluster_of[names[j]]]
    assert len(within) == 4 and len(across) == 11
    assert min(within) > 0.6, within
    assert max(abs(c) for c in across) < 0.1, across
    # regression targets standardised on train, stats kept for original units
    tr = d.indices("train")
    assert abs(float(d.y[tr].mean())) < 1e-4 and abs(float(d.y[tr].std(unbiased=False).mean()) - 1) < 1e-3
    assert all(t.target_std > 0 for t in d.tasks)


def test_synthetic_options_and_errors():
    b = load_data("synthetic-mmoe", n=1000, kind="binary", clusters=[[0, 1], [2]], p=0.5)
    assert [t.kind for t in b.tasks] == ["binary"] * 3
    assert abs(float(b.y[b.indices("train")].mean()) - 0.5) < 0.02  # train-median threshold
    sparse = load_data("synthetic-mmoe", n=1000, labelled=0.2)
    frac = float((~torch.isnan(sparse.y)).float().mean())
    assert 0.15 < frac < 0.25
    with pytest.raises(ValueError, match="d=5 is too small.*d >= 7"):
        load_data("synthetic-mmoe", d=5)
    with pytest.raises(ValueError, match="partition the task indices"):
        load_data("synthetic-mmoe", clusters=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"p=-0.5 must be in \[0, 1\]"):
        load_data("synthetic-mmoe", p=-0.5)


# ---------------------------------------------------------------- tabular
def test_csv_loading(videos):
    spec, df = videos
    d = load_data(spec)
    assert d.task_names == ["clicked", "rating", "spend"] and d.name == "videos"
    assert d.meta["feature_names"] == ["age", "age__missing", "country=DE", "country=FR", "country=US", "country__missing"]
    train = (d.split == 0).numpy()

    # numeric standardised with train statistics, imputed with the train mean + indicator
    age = df["age"].to_numpy()
    mu, sd = np.nanmean(age[train]), np.nanstd(age[train])
    x = d.x.numpy()
    ok = ~np.isnan(age)
    np.testing.assert_allclose(x[ok, 0], (age[ok] - mu) / sd, rtol=1e-5, atol=1e-5)
    assert x[2, 0] == 0.0 and x[9, 0] == 0.0
    assert x[:, 1].tolist() == np.isnan(age).astype(float).tolist()
    # categorical one-hot; missing -> zeros + indicator
    assert x[4, 2:5].tolist() == [0, 0, 0] and x[4, 5] == 1.0
    for r in (0, 10, 20):
        assert x[r, 2 + ["DE", "FR", "US"].index(df["country"][r])] == 1.0

    # binary with two distinct strings: sorted, mapping recorded
    assert d.tasks[0].classes == ("no", "yes")
    assert d.y[:, 0].tolist() == (df["clicked"] == "yes").astype(float).tolist()
    # multiclass with declared classes, missing labels are NaN
    assert d.tasks[1].n_classes == 5 and d.tasks[1].weight == 2.0 and d.tasks[1].primary_metric == "accuracy"
    assert torch.isnan(d.y[[1, 5, 7], 1]).all()
    assert d.y[0, 1].item() == df["rating"][0] - 1
    # regression standardised with the train labelled mean/std, kept in the spec
    rev = df["revenue"].to_numpy()
    t = d.tasks[2]
    assert t.name == "spend"
    assert math.isclose(t.target_mean, np.nanmean(rev[train]), rel_tol=1e-9)
    assert math.isclose(t.target_std, np.nanstd(rev[train]), rel_tol=1e-9)
    assert torch.isnan(d.y[[0, 3], 2]).all()
    # metrics come back in original units: predicting the standardised truth + 1 std is RMSE = std
    lab = ~torch.isnan(d.y[:, 2])
    rmse = compute_metric(t, "rmse", (d.y[lab, 2] + 1.0)[:, None], d.y[lab, 2])
    assert math.isclose(rmse, t.target_std, rel_tol=1e-5)
    json.dumps(d.meta)


def test_unseen_category_is_all_zero(tmp_path):
    n = 40
    split = make_split(n, 0).numpy()
    test_row = int(np.flatnonzero(split == 2)[0])
    df = pd.DataFrame({"c": ["a", "b"] * (n // 2), "y1": [0, 1] * (n // 2), "y2": np.arange(n, dtype=float)})
    df.loc[test_row, "c"] = "zzz"
    df.to_csv(tmp_path / "t.csv", index=False)
    spec = _write_spec(tmp_path, 'path = "t.csv"\n[[targets]]\ncolumn = "y1"\nkind = "binary"\n[[targets]]\ncolumn = "y2"\nkind = "regression"\n', "t.toml")
    d = load_data(spec)
    assert d.meta["feature_names"] == ["c=a", "c=b"]
    assert d.x[test_row].tolist() == [0.0, 0.0]
    assert d.tasks[0].classes == ("0", "1")


def test_parquet_and_yaml_match_csv(videos, tmp_path):
    spec, df = videos
    csv_fp = load_data(spec).fingerprint()
    df.to_parquet(tmp_path / "videos.parquet", engine="pyarrow")
    (tmp_path / "pq.toml").write_text(VIDEOS_TOML.replace("videos.csv", "videos.parquet"))
    d = load_data(tmp_path / "pq.toml")
    assert d.meta["format"] == "parquet"
    assert d.fingerprint() == csv_fp
    yaml_text = (
        "path: videos.csv\ncategorical: [country]\nsplit_seed: 0\ntargets:\n"
        "  - {column: clicked, kind: binary}\n"
        "  - {column: rating, kind: multiclass, classes: [1, 2, 3, 4, 5], weight: 2.0, metrics: [accuracy, macro_f1]}\n"
        "  - {column: revenue, kind: regression, name: spend}\n"
    )
    (tmp_path / "videos.yaml").write_text(yaml_text)
    assert load_data(str(tmp_path / "videos.yaml")).fingerprint() == csv_fp
    # options override the spec's split
    assert load_data(spec, split_seed=3).fingerprint() != csv_fp


@pytest.mark.parametrize(
    "values, classes, expected",
    [
        ([0, 1, 1, 0], ("0", "1"), [0, 1, 1, 0]),
        (["true", "false", "True", "FALSE"], ("false", "true"), [1, 0, 1, 0]),
        (["neg", "pos", "pos", "neg"], ("neg", "pos"), [0, 1, 1, 0]),
    ],
)
def test_binary_label_forms(tmp_path, values, classes, expected):
    n = 40
    df = pd.DataFrame({"f": np.arange(n, dtype=float), "b": values * (n // 4), "r": np.ones(n)})
    df.to_csv(tmp_path / "t.csv", index=False)
    spec = _write_spec(tmp_path, 'path = "t.csv"\n[[targets]]\ncolumn = "b"\nkind = "binary"\n[[targets]]\ncolumn = "r"\nkind = "regression"\n', "t.toml")
    d = load_data(spec)
    assert d.tasks[0].classes == classes
    assert d.y[:4, 0].tolist() == expected
    assert d.tasks[1].target_std == 1.0  # constant target: std falls back to 1


def test_binary_declared_order(tmp_path):
    df = pd.DataFrame({"f": np.arange(20.0) + 0.5, "b": ["pos", "neg"] * 10, "r": np.arange(20.0)})
    df.to_csv(tmp_path / "t.csv", index=False)
    spec = _write_spec(tmp_path, 'path = "t.csv"\n[[targets]]\ncolumn = "b"\nkind = "binary"\nclasses = ["pos", "neg"]\n[[targets]]\ncolumn = "r"\nkind = "regression"\n', "t.toml")
    d = load_data(spec)
    assert d.tasks[0].classes == ("pos", "neg") and d.y[:2, 0].tolist() == [0.0, 1.0]


def test_loading_writes_nothing(videos, tmp_path):
    spec, _ = videos
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    load_data(spec)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def _bad(tmp_path, spec_body, frame=None, spec_name="videos.toml"):
    (frame if frame is not None else _videos_frame()).to_csv(tmp_path / "videos.csv", index=False)
    return _write_spec(tmp_path, spec_body, spec_name)


def _expect(spec, pattern):
    with pytest.raises(DataSpecError, match=pattern) as info:
        load_data(spec)
    assert "\n" not in str(info.value)
    return info.value


def test_error_unknown_target_column(tmp_path):
    spec = _bad(tmp_path, VIDEOS_TOML.replace('column = "rating"', 'column = "ratng"'))
    _expect(spec, r"^videos\.toml: targets\[1\]\.column: unknown column 'ratng' \(columns: age, country, clicked, rating, revenue\)$")


def test_error_non_number_in_numeric_feature(tmp_path):
    df = _videos_frame().astype({"age": object})
    df.loc[16, "age"] = "abc"
    spec = _bad(tmp_path, VIDEOS_TOML, df)
    _expect(spec, r"^videos\.csv: column 'age', row 17: non-number 'abc' in a numeric feature$")
    # without `categorical`, a mostly-numeric column with a typo is still an error (with a hint)
    spec2 = _write_spec(tmp_path, VIDEOS_TOML.replace('categorical = ["country"]\n', ""), "v2.toml")
    _expect(spec2, r"videos\.csv: column 'age', row 17: non-number 'abc' in a numeric feature \(list the column in `categorical`")


def test_error_label_not_declared(tmp_path):
    df = _videos_frame()
    df.loc[4, "rating"] = 7
    _expect(_bad(tmp_path, VIDEOS_TOML, df), r"^videos\.csv: column 'rating', row 5: label 7 is not one of the declared classes \[1, 2, 3, 4, 5\]$")


def test_error_target_without_labels(tmp_path):
    df = _videos_frame()
    df["revenue"] = np.nan
    _expect(_bad(tmp_path, VIDEOS_TOML, df), r"videos\.csv: column 'revenue': target targets\[2\] has no labelled rows")
    # labelled only outside the train split
    df = _videos_frame()
    train = make_split(len(df), 0).numpy() == 0
    df.loc[train, "revenue"] = np.nan
    _expect(_bad(tmp_path, VIDEOS_TOML, df), r"column 'revenue': target targets\[2\] has no labelled rows in the train split \(split_seed=0\)")


def test_error_task_count_and_duplicates(tmp_path):
    one = 'path = "videos.csv"\n[[targets]]\ncolumn = "clicked"\nkind = "binary"\n'
    _expect(_bad(tmp_path, one), r"^videos\.toml: targets: need at least two tasks, got 1$")
    dup = VIDEOS_TOML.replace('name = "spend"', 'name = "rating"')
    _expect(_bad(tmp_path, dup), r"^videos\.toml: targets\[2\]\.name: duplicate task name 'rating' \(also targets\[1\]\)$")


def test_error_unknown_keys(tmp_path):
    _expect(_bad(tmp_path, "tagets = 1\n" + VIDEOS_TOML), r"^videos\.toml: unknown key 'tagets' \(valid keys: path, features")
    bad = VIDEOS_TOML.replace('kind = "binary"', 'kind = "binary"\ncolum = "x"')
    _expect(_bad(tmp_path, bad), r"^videos\.toml: targets\[0\]: unknown key 'colum'")


def test_error_missing_files(tmp_path):
    spec = _write_spec(tmp_path, VIDEOS_TOML)  # no videos.csv written
    err = _expect(spec, r"^videos\.csv: data file not found: .*videos\.csv$")
    assert isinstance(err, FileNotFoundError) and isinstance(err, DataFileNotFoundError)
    with pytest.raises(FileNotFoundError, match=r"nothere\.toml: spec file not found"):
        load_data(tmp_path / "nothere.toml")


def test_error_malformed_files(tmp_path):
    _expect(_bad(tmp_path, 'path = "videos.csv\n[[targets]]\n'), r"^videos\.toml: malformed TOML: .*line 1")
    _expect(_bad(tmp_path, "path: [videos.csv\ntargets: {\n", spec_name="videos.yaml"), r"^videos\.yaml: malformed YAML at line \d+, column \d+: ")
    _expect(_bad(tmp_path, "- just\n- a list\n", spec_name="videos.yml"), r"^videos\.yml: the top level must be a table")


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (('kind = "binary"', 'kind = "binray"'), r"targets\[0\]\.kind: unknown kind 'binray'"),
        (('categorical = ["country"]', 'categorical = ["cuntry"]'), r"categorical: 'cuntry' unknown column"),
        (('categorical = ["country"]', 'features = ["age", "clicked"]'), r"features: column 'clicked' is also a target"),
        (("split_seed = 0", "split = [0.5, 0.5, 0.5]"), r"videos\.toml: split: expected three .* got \[0\.5, 0\.5, 0\.5\]"),
        (('metrics = ["accuracy", "macro_f1"]', 'metrics = ["rmse"]'), r"targets\[1\]\.metrics: .*'rmse' does not apply to a multiclass task"),
        (("weight = 2.0", "weight = -1"), r"targets\[1\]\.weight: expected a positive number, got -1"),
        (('path = "videos.csv"', 'path = "videos.xlsx"'), r"path: 'videos\.xlsx' is not a \.csv or \.parquet file"),
    ],
)
def test_error_bad_fields(tmp_path, edit, pattern):
    _expect(_bad(tmp_path, VIDEOS_TOML.replace(*edit)), pattern)


def test_error_binary_third_value(tmp_path):
    df = _videos_frame()
    df.loc[11, "clicked"] = "maybe"
    _expect(_bad(tmp_path, VIDEOS_TOML, df), r"^videos\.csv: column 'clicked', row 12: third distinct value 'maybe' in a binary target")


def test_error_non_number_regression(tmp_path):
    df = _videos_frame().astype({"revenue": object})
    df.loc[20, "revenue"] = "n/a?"
    _expect(_bad(tmp_path, VIDEOS_TOML, df), r"^videos\.csv: column 'revenue', row 21: non-number 'n/a\?' in a regression target$")


def test_example_spec_loads():
    ex = Path(__file__).resolve().parent.parent / "examples" / "videos.toml"
    d = load_data(ex)
    assert len(d.tasks) == 3 and d.backbone_hint == "mlp"
    assert all(v > 0 for v in d.labelled_counts("train").values())
    assert load_data(ex.with_suffix(".yaml")).fingerprint() == d.fingerprint()


# ------------------------------------------------------------ multifashion
def _write_idx(path: Path, arr: np.ndarray) -> None:
    """An independent IDX writer (magic 0x0000 08 ndim, big-endian dims, raw bytes)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    data = struct.pack(">HBB", 0, 0x08, arr.ndim) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _fake_fashion(root: Path, n_train=60, n_test=20, gz=True):
    """Images whose every pixel is 20*(label+1): the label can be read back from any region."""
    root.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    for part, k in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(k) * 7 % 10).astype(np.uint8)
        images = np.broadcast_to((20 * (labels.astype(np.int64) + 1))[:, None, None], (k, 28, 28)).astype(np.uint8)
        _write_idx(root / f"{part}-images-idx3-ubyte{sfx}", images)
        _write_idx(root / f"{part}-labels-idx1-ubyte{sfx}", labels)


@pytest.mark.parametrize("gz", [True, False])
def test_multifashion_from_idx(tmp_path, gz):
    _fake_fashion(tmp_path / "fm", gz=gz)
    d = load_data("multifashion", root=tmp_path / "fm", n_train=30, n_val=10, n_test=8, seed=1)
    assert d.x.shape == (48, 1, 28, 28) and d.x.dtype == torch.float32 and d.backbone_hint == "cnn"
    assert float(d.x.min()) >= 0.0 and float(d.x.max()) <= 1.0
    assert [int((d.split == k).sum()) for k in range(3)] == [30, 10, 8]
    assert d.task_names == ["left", "right"] and all(t.n_classes == 10 for t in d.tasks)
    # top-left corner shows only item A, bottom-right only item B
    left = torch.round(d.x[:, 0, 0, 0] * 255 / 20 - 1)
    right = torch.round(d.x[:, 0, -1, -1] * 255 / 20 - 1)
    assert torch.equal(left, d.y[:, 0]) and torch.equal(right, d.y[:, 1])
    # the overlap takes the pixel-wise max
    centre = d.x[:, 0, 14, 14] * 255 / 20 - 1
    assert torch.allclose(centre, torch.maximum(d.y[:, 0], d.y[:, 1]), atol=0.05)
    again = make_multifashion(root=tmp_path / "fm", n_train=30, n_val=10, n_test=8, seed=1)
    assert again.fingerprint() == d.fingerprint()
    assert make_multifashion(root=tmp_path / "fm", n_train=30, n_val=10, n_test=8, seed=2).fingerprint() != d.fingerprint()


def test_multifashion_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist.*or pass root=") as info:
        load_data("multifashion", root=tmp_path / "empty")
    assert "\n" not in str(info.value) and "train-images-idx3-ubyte" in str(info.value)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04rest")
    _fake_fashion(tmp_path / "bad2")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad" / "train-images-idx3-ubyte")


@pytest.mark.skipif(
    not (DEFAULT_ROOT / "t10k-images-idx3-ubyte.gz").is_file(), reason="Debian package dataset-fashion-mnist not installed"
)
def test_multifashion_real_debian_files():
    d = load_data("multifashion", n_train=64, n_val=16, n_test=16)
    assert d.x.shape == (96, 1, 28, 28) and 0.0 <= float(d.x.min()) and float(d.x.max()) <= 1.0
    assert float(d.x.mean()) > 0.05  # real images, not blank
    assert set(d.y.flatten().tolist()) <= set(float(c) for c in range(10))


# ----------------------------------------------------------------- batching
def test_batcher_dense_covers_every_train_row_once():
    d = load_data("synthetic-mmoe", n=1000)
    train = sorted(d.indices("train").tolist())
    for sampling in ("uniform", "proportional"):
        b = IndexBatcher(d, batch_size=64, sampling=sampling, generator=0)
        assert b.dense and len(b) == math.ceil(len(train) / 64)
        epochs = [torch.cat(list(b)) for _ in range(2)]
        for e in epochs:
            assert sorted(e.tolist()) == train
        assert not torch.equal(epochs[0], epochs[1])  # reshuffled each epoch
    b = IndexBatcher(d, batch_size=64, generator=0, drop_last=True)
    assert [len(i) for i in b] == [64] * (len(train) // 64)
    first = [i.tolist() for i in IndexBatcher(d, batch_size=64, generator=7)]
    assert first == [i.tolist() for i in IndexBatcher(d, batch_size=64, generator=7)]


def _sparse(sizes=(600, 60, 200), seed=0):
    """Disjoint labelled pools per task (each row labelled for exactly one task), all in train."""
    n = sum(sizes)
    y = torch.full((n, len(sizes)), float("nan"))
    owner = torch.cat([torch.full((s,), t) for t, s in enumerate(sizes)])
    owner = owner[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    y[torch.arange(n), owner] = 1.0
    tasks = [TaskSpec(f"t{i}", "binary") for i in range(len(sizes))]
    return MultiTaskData("sparse", tasks, torch.randn(n, 4), y, torch.zeros(n, dtype=torch.int8), 0), owner


def test_batcher_uniform_sparse_equal_shares():
    d, owner = _sparse()
    b = IndexBatcher(d, batch_size=64, sampling="uniform", generator=0)
    assert not b.dense and b.pool_sizes == {"t0": 600, "t1": 60, "t2": 200}
    batches = list(b)
    assert len(batches) == math.ceil(860 / 64) and sum(len(i) for i in batches) == 860
    totals = torch.zeros(3)
    for idx in batches[:-1]:
        counts = torch.bincount(owner[idx], minlength=3)
        assert int(counts.max() - counts.min()) <= 1, counts  # 64 = 21+21+22
        totals += counts
    assert float(totals.max() - totals.min()) <= 1  # the remainder rotates over tasks
    # the small pool is cycled: all of its 60 rows are seen, several times
    t1_rows = torch.cat(batches)[owner[torch.cat(batches)] == 1]
    assert len(set(t1_rows.tolist())) == 60 and len(t1_rows) > 200


def test_batcher_proportional_sparse_is_union_permutation():
    d, owner = _sparse()
    b = IndexBatcher(d, batch_size=64, sampling="proportional", generator=0)
    e = torch.cat(list(b))
    assert sorted(e.tolist()) == list(range(860))
    assert torch.bincount(owner[e], minlength=3).tolist() == [600, 60, 200]


def test_batcher_errors():
    d = load_data("synthetic-mmoe", n=100)
    with pytest.raises(ValueError, match="unknown sampling 'balanced'"):
        IndexBatcher(d, sampling="balanced")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        IndexBatcher(d, batch_size=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_round_trip():
    d = load_data("synthetic-mmoe", n=2000)
    g = d.to("cuda")
    assert g.x.is_cuda and g.indices("train").is_cuda and g.fingerprint() == d.fingerprint()
    batches = list(IndexBatcher(g, batch_size=256, generator=0))
    assert all(i.is_cuda for i in batches)
    assert sorted(torch.cat(batches).cpu().tolist()) == sorted(d.indices("train").tolist())
    xb, yb = g.x[batches[0]], g.y[batches[0]]
    assert xb.is_cuda and yb.shape == (256, 6)


# ------------------------------------------------- issue 13: duplicates, overflow, names
def test_error_duplicate_header_column(tmp_path):
    _bad(tmp_path, VIDEOS_TOML)
    text = (tmp_path / "videos.csv").read_text().replace("age,", "revenue,", 1)  # pandas would rename it revenue.1
    (tmp_path / "videos.csv").write_text(text)
    _expect(tmp_path / "videos.toml", r"^videos\.csv: column 'revenue' appears twice in the header$")


def test_error_column_is_two_targets(tmp_path):
    spec = VIDEOS_TOML.replace('column = "revenue"', 'column = "rating"')
    _expect(_bad(tmp_path, spec), r"^videos\.toml: targets\[2\]\.column: column 'rating' is already the target "
                                  r"of targets\[1\]$")


@pytest.mark.parametrize("column, value, row", [("age", 1e308, 6), ("age", -4e38, 6), ("revenue", 3e300, 6)])
def test_error_value_beyond_float32_names_file_column_row(tmp_path, column, value, row):
    df = _videos_frame()
    df.loc[row - 1, column] = value
    _expect(_bad(tmp_path, VIDEOS_TOML, df), rf"^videos\.csv: column '{column}', row {row}: value .* overflows float32")


def test_largest_float32_values_still_load(tmp_path):
    df = _videos_frame()
    df.loc[5, "age"] = 3e38
    d = load_data(_bad(tmp_path, VIDEOS_TOML, df))
    assert bool(torch.isfinite(d.x).all())


def test_data_name_from_the_stem_is_a_name_and_an_unsafe_name_is_an_error(tmp_path):
    _bad(tmp_path, VIDEOS_TOML)
    (tmp_path / "my videos (v2).toml").write_text(VIDEOS_TOML)
    assert load_data(tmp_path / "my videos (v2).toml").name == "my-videos-v2"
    _expect(_write_spec(tmp_path, 'name = "a/b"\n' + VIDEOS_TOML), r"^videos\.toml: name: .* got 'a/b'$")


def test_container_names_the_column_and_file_of_a_non_finite_input():
    x = torch.zeros(20, 3)
    x[4, 2] = float("inf")
    with pytest.raises(ValueError, match=r"\(t\.csv\): x has a NaN or infinite value in row 4 \(from 0\), column 'c'"):
        _toy(x=x, meta={"data_file": "t.csv", "feature_names": ["a", "b", "c"]})


def test_integer_options_refuse_fractions():
    with pytest.raises(SharesearchError, match="n must be an integer, got 600.5"):
        load_data("synthetic-mmoe", n=600.5)
    assert load_data("synthetic-mmoe", n=600.0).n == 600

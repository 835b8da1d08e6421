"""The bad-input corpus (issue 13): every bad input ends in one line naming the culprit, and writes nothing.

Each case runs the command line in-process (``cli.main``) in an empty
temporary folder holding only the case's own fixture files. It must exit
non-zero, print nothing on stdout and exactly one ``sharesearch: error: ...``
line on stderr that contains every culprit string (file, flag or field, and
value), and leave the folder as it was (same files, sizes and times). A
guard makes any case that gets as far as training fail at once, so the file
stays fast even when a check is missing. ``load_model`` cases call the
library: one :class:`ModelFolderError` line naming the file.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from sharesearch.errors import SharesearchError

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sharesearch_root_cli_bad", ROOT / "cli.py")
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)

SYN = ["--data", "synthetic-mmoe", "--data-option", "n=300", "--data-option", "d=8"]
SEARCH = ["search", "--space", "tiny", "--n-trials", "1", "--no-verdict", "--quiet", "--device", "cpu"]
TRAIN = ["train", *SYN, "--graph", "shared-bottom", "--widths", "8", "--epochs", "1"]
SPEC = ('path = "d.csv"\n{extra}\n[[targets]]\ncolumn = "y1"\nkind = "binary"\n'
        '[[targets]]\ncolumn = "{y2}"\nkind = "regression"\n')
CUDA_NONE = "cuda:99" if torch.cuda.is_available() else "cuda"  # a CUDA device this machine lacks


def csv_rows(n: int, a: Callable[[int], str] = str, y2: Callable[[int], str] = lambda i: f"{i * 0.5}",
             header: str = "a,b,c,y1,y2") -> str:
    """A CSV of ``n`` rows: numeric a, b, categorical c, binary y1, regression y2."""
    rows = [f"{a(i)},{i % 3},{'uv'[i % 2]},{i % 2},{y2(i)}" for i in range(n)]
    return "\n".join([header, *rows]) + "\n"


def table(csv: str | None = None, extra: str = "", y2: str = "y2") -> Callable[[Path], None]:
    """A fixture writer: ``d.csv`` (40 good rows unless given) and ``d.toml`` describing it."""
    def write(tmp: Path) -> None:
        (tmp / "d.csv").write_text(csv if csv is not None else csv_rows(40))
        (tmp / "d.toml").write_text(SPEC.format(extra=extra, y2=y2))
    return write


def files(**contents: str | bytes) -> Callable[[Path], None]:
    """A fixture writer of named files (``/`` in a name makes folders; a ``None``-like '' name a folder)."""
    def write(tmp: Path) -> None:
        for name, text in contents.items():
            path = tmp / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return write


def graph_json(input_dim: int = 4, tasks: tuple[str, ...] = ("t0", "t1", "t2", "t3", "t4", "t5")) -> str:
    from sharesearch.graph import SharingGraph

    return SharingGraph.shared_bottom({t: 1 for t in tasks}, {"name": "mlp", "input_shape": [input_dim],
                                                              "widths": [8, 8]}, 1).to_json()


def both(*writers: Callable[[Path], None]) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        for w in writers:
            w(tmp)
    return write


def folder(name: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).mkdir()


@dataclass(frozen=True)
class Case:
    id: str  # pytest id
    argv: tuple[str, ...]  # the command line after "sharesearch"
    culprit: tuple[str, ...]  # strings the error line must contain (file, flag or field, value)
    setup: Callable[[Path], None] = field(default=lambda tmp: None)  # writes the case's fixture files


def case(id: str, argv: list[str], culprit: list[str], setup: Callable[[Path], None] | None = None) -> Case:
    return Case(id, tuple(argv), tuple(culprit), setup or (lambda tmp: None))


CASES = [
    # ---- data files: too few rows, overflow, duplicates (nothing may be written before they fail)
    case("csv-1-row", [*SEARCH, "--data", "d.toml"], ["d.toml", "rows"], table(csv_rows(1))),
    case("csv-5-rows", [*SEARCH, "--data", "d.toml"], ["d.toml", "val split", "5 rows"], table(csv_rows(5))),
    case("split-1-0-0", [*SEARCH, "--data", "d.toml"], ["d.toml", "val split", "[1.0, 0.0, 0.0]"],
         table(extra="split = [1.0, 0.0, 0.0]")),
    case("split-option-1-0-0", [*SEARCH, "--data", "d.toml", "--data-option", "split=[1,0,0]"],
         ["d.toml", "val split"], table()),
    case("csv-header-only", [*SEARCH, "--data", "d.toml"], ["d.csv", "no data rows"], table("a,b,c,y1,y2\n")),
    case("csv-duplicate-column", [*SEARCH, "--data", "d.toml"], ["d.csv", "'a'", "twice"],
         table(csv_rows(40, header="a,a,c,y1,y2"))),
    case("column-two-targets", [*SEARCH, "--data", "d.toml"], ["d.toml", "targets[1].column", "'y1'"],
         table(y2="y1")),
    case("features-1e308", [*SEARCH, "--data", "d.toml"], ["d.csv", "column 'a'", "row 1", "float32"],
         table(csv_rows(40, a=lambda i: "1e308" if i % 2 == 0 else "-1e308"))),
    case("target-1e300", [*SEARCH, "--data", "d.toml"], ["d.csv", "column 'y2'", "row 1", "float32"],
         table(csv_rows(40, y2=lambda i: f"{i + 1}e300"))),
    case("feature-inf", [*SEARCH, "--data", "d.toml"], ["d.csv", "column 'a'", "row 4", "inf"],
         table(csv_rows(40, a=lambda i: "inf" if i == 3 else str(i)))),
    case("target-text", [*SEARCH, "--data", "d.toml"], ["d.csv", "column 'y2'", "row 3", "'abc'"],
         table(csv_rows(40, y2=lambda i: "abc" if i == 2 else "1.5"))),
    case("spec-option-n", [*SEARCH, "--data", "d.toml", "--data-option", "n=5"], ["--data-option", "'n'", "d.toml"],
         table()),
    case("spec-split-two", [*SEARCH, "--data", "d.toml"], ["d.toml", "split"], table(extra="split = [0.5, 0.5]")),
    case("spec-missing", [*SEARCH, "--data", "missing.toml"], ["missing.toml"]),
    case("spec-name-path", [*SEARCH, "--data", "d.toml"], ["d.toml", "name", "'../x'"], table(extra='name = "../x"')),
    # ---- data-spec keys of issue 14: split and weight columns, exclude, a feature that copies a target
    case("split-column-unnamed-value", [*SEARCH, "--data", "d.toml"], ["d.csv", "column 'c'", "row 1", "'u'"],
         table(extra='split_column = "c"')),
    case("split-column-and-split", [*SEARCH, "--data", "d.toml"], ["d.toml", "split", "split_column 'c'"],
         table(extra='split_column = "c"\nsplit = [0.5, 0.25, 0.25]')),
    case("weight-negative", [*SEARCH, "--data", "d.toml"], ["d.csv", "column 'a'", "row 3", "-1"],
         table(csv_rows(40, a=lambda i: "-1" if i == 2 else str(i)), extra='weight_column = "a"')),
    case("exclude-unknown", [*SEARCH, "--data", "d.toml"], ["d.toml", "exclude", "'zz'"],
         table(extra='exclude = ["zz"]')),
    case("feature-copies-target", [*SEARCH, "--data", "d.toml"], ["d.toml", "features", "'a'", "'y1'"],
         table(csv_rows(40, a=lambda i: str(i % 2)))),
    # ---- built-in sources: options
    case("syn-n-3", [*SEARCH, "--data", "synthetic-mmoe", "--data-option", "n=3"], ["synthetic-mmoe", "n=3", "split"]),
    case("syn-n-600.5", [*SEARCH, "--data", "synthetic-mmoe", "--data-option", "n=600.5"], ["n", "600.5"]),
    case("syn-n-negative", [*SEARCH, "--data", "synthetic-mmoe", "--data-option", "n=-5"], ["n", "-5"]),
    case("syn-seed-1.5", [*SEARCH, *SYN, "--data-option", "seed=1.5"], ["seed", "1.5"]),
    case("syn-unknown-option", [*SEARCH, *SYN, "--data-option", "bogus=1"], ["--data", "'bogus'"]),
    case("data-option-no-equals", [*SEARCH, *SYN, "--data-option", "n"], ["--data-option", "'n'"]),
    case("data-unknown-source", [*SEARCH, "--data", "no-such-data"], ["no-such-data"]),
    # ---- the study name is a name, not a path
    case("study-dotdot", [*SEARCH, *SYN, "--study", "../../x"], ["--study", "'../../x'"]),
    case("study-absolute", [*SEARCH, *SYN, "--study", "/tmp/sharesearch-abs"], ["--study", "'/tmp/sharesearch-abs'"]),
    case("study-slash", [*SEARCH, *SYN, "--study", "a/b"], ["--study", "'a/b'"]),
    case("study-newline", [*SEARCH, *SYN, "--study", "a\nb"], ["--study", "'a\\nb'"]),
    case("study-300-chars", [*SEARCH, *SYN, "--study", "x" * 300], ["--study", "300 characters"]),
    case("study-empty", [*SEARCH, *SYN, "--study", ""], ["--study", "''"]),
    case("study-dots", [*SEARCH, *SYN, "--study", ".."], ["--study", "'..'"]),
    case("study-space", [*SEARCH, *SYN, "--study", "my study"], ["--study", "'my study'"]),
    case("worker-study-path", ["worker", "--storage", "sqlite:///s.db", "--study", "../x"], ["--study", "'../x'"]),
    case("verdict-study-path", ["verdict", "--storage", "sqlite:///s.db", "--study", "a/b"], ["--study", "'a/b'"]),
    case("report-study-path", ["report", "--storage", "sqlite:///s.db", "--study", "../x"], ["--study", "'../x'"]),
    # ---- devices
    case("device-bogus", [*SEARCH, *SYN, "--device", "bogus"], ["--device", "'bogus'"]),
    case("device-no-cuda", [*SEARCH, *SYN, "--device", CUDA_NONE], ["--device", CUDA_NONE]),
    case("device-meta", [*SEARCH, *SYN, "--device", "meta"], ["--device", "'meta'"]),
    case("worker-device", ["worker", "--storage", "sqlite:///s.db", "--study", "s", "--device", "bogus"],
         ["--device", "'bogus'"]),
    case("train-device", [*TRAIN, "--device", "gpu"], ["--device", "'gpu'"]),
    case("affinity-device", ["affinity", *SYN, "--device", CUDA_NONE], ["--device", CUDA_NONE]),
    # ---- storages
    case("storage-sqlite-memory", [*SEARCH, *SYN, "--storage", "sqlite://"], ["--storage", "'sqlite://'", "in-memory"]),
    case("storage-not-url", [*SEARCH, *SYN, "--storage", "study.db"], ["--storage", "'study.db'"]),
    case("storage-unknown-dialect", [*SEARCH, *SYN, "--storage", "nosuchdb://h/x"], ["--storage", "nosuchdb"]),
    case("storage-sqlite-no-folder", [*SEARCH, *SYN, "--storage", "sqlite:///nodir/s.db"], ["--storage", "nodir"]),
    case("storage-not-sqlite", [*SEARCH, *SYN, "--storage", "sqlite:///notes.db"], ["--storage", "notes.db"],
         files(**{"notes.db": "not a database\n"})),
    case("journal-unwritable", [*SEARCH, *SYN, "--storage", "journal:afile/j.log"], ["--storage", "afile"],
         files(afile="x")),
    case("journal-corrupt", [*SEARCH, *SYN, "--storage", "journal:j.log"], ["--storage", "j.log", "line 2"],
         files(**{"j.log": '{"op_code": 0}\n\x00garbage\n'})),
    case("journal-empty-path", [*SEARCH, *SYN, "--storage", "journal:"], ["--storage", "'journal:'"]),
    case("runs-is-a-file", [*SEARCH, *SYN, "--runs", "afile"], ["--runs", "afile"], files(afile="x")),
    case("report-missing-db", ["report", "--storage", "sqlite:///missing.db", "--study", "s"], ["--storage", "missing.db"]),
    case("worker-missing-journal", ["worker", "--storage", "journal:j.log", "--study", "s"], ["--storage", "j.log"]),
    case("verdict-missing-db", ["verdict", "--storage", "sqlite:///missing.db", "--study", "s"], ["--storage", "missing.db"]),
    # ---- numbers: zero, negative, fractional, not a number
    case("timeout-negative", [*SEARCH, *SYN, "--timeout", "-1"], ["--timeout", "-1"]),
    case("timeout-zero", [*SEARCH, *SYN, "--timeout", "0"], ["--timeout", "0"]),
    case("timeout-nan", [*SEARCH, *SYN, "--timeout", "nan"], ["--timeout", "nan"]),
    case("workers-zero", [*SEARCH, *SYN, "--workers", "0"], ["--workers", "0"]),
    case("workers-negative", [*SEARCH, *SYN, "--workers", "-3"], ["--workers", "-3"]),
    case("workers-text", [*SEARCH, *SYN, "--workers", "two"], ["--workers", "'two'"]),
    case("n-trials-zero", [*SEARCH, *SYN, "--n-trials", "0"], ["--n-trials", "0"]),
    case("top-k-negative", [*SEARCH, *SYN, "--top-k", "-1"], ["--top-k", "-1"]),
    case("search-seeds-zero", [*SEARCH, *SYN, "--seeds", "0"], ["--seeds", "0"]),
    case("population-zero", [*SEARCH, *SYN, "--population", "0"], ["--population", "0"]),
    case("max-params-zero", [*SEARCH, *SYN, "--max-params", "0"], ["--max-params", "0"]),
    case("max-flops-negative", [*SEARCH, *SYN, "--max-flops", "-5"], ["--max-flops", "-5"]),
    case("sampler-unknown", [*SEARCH, *SYN, "--sampler", "grid"], ["--sampler", "'grid'"]),
    case("verdict-seeds-zero", ["verdict", "--storage", "sqlite:///s.db", "--study", "s", "--seeds", "0"],
         ["--seeds", "0"]),
    case("verdict-top-k-negative", ["verdict", "--storage", "sqlite:///s.db", "--study", "s", "--top-k", "-2"],
         ["--top-k", "-2"]),
    case("worker-n-trials-zero", ["worker", "--storage", "sqlite:///s.db", "--study", "s", "--n-trials", "0"],
         ["--n-trials", "0"]),
    case("train-seeds-zero", [*TRAIN, "--seeds", "0"], ["--seeds", "0"]),
    case("train-epochs-zero", [*TRAIN, "--epochs", "0"], ["epochs", "0"]),
    case("train-batch-zero", [*TRAIN, "--batch-size", "0"], ["batch_size", "0"]),
    case("train-lr-zero", [*TRAIN, "--lr", "0"], ["lr", "0"]),
    case("train-lr-nan", [*TRAIN, "--lr", "nan"], ["lr", "nan"]),
    case("train-widths-text", [*TRAIN[:-4], "--widths", "a,b"], ["--widths", "'a,b'"]),
    case("train-widths-zero", [*TRAIN[:-4], "--widths", "0,8"], ["--widths", "'0,8'"]),
    case("train-widths-empty-item", [*TRAIN[:-4], "--widths", "8,,4"], ["--widths", "'8,,4'"]),
    case("affinity-steps-zero", ["affinity", *SYN, "--steps", "0"], ["--steps", "0"]),
    case("affinity-lr-negative", ["affinity", *SYN, "--lr", "-0.1"], ["--lr", "-0.1"]),
    # ---- spaces
    case("space-not-utf8", [*SEARCH, *SYN, "--space", "s.toml"], ["s.toml", "UTF-8"],
         files(**{"s.toml": b"[train]\nlr = 0.01 # \xff\xfe caf\xe9\n"})),
    case("space-missing", [*SEARCH, *SYN, "--space", "nope.toml"], ["nope.toml"]),
    case("space-unknown-key", [*SEARCH, *SYN, "--space", "s.toml"], ["s.toml", "bogus"],
         files(**{"s.toml": "[train]\nbogus = 1\n"})),
    case("space-copy-no-overwrite", ["space", "copy", "tiny", "s.toml"], ["s.toml"], files(**{"s.toml": "x = 1\n"})),
    # ---- graphs, figures and exports
    case("show-deep-json", ["show", "--graph", "deep.json", "--out", "t.html"], ["deep.json", "nested"],
         files(**{"deep.json": "[" * 100_000 + "]" * 100_000})),
    case("show-bad-json", ["show", "--graph", "g.json", "--out", "t.html"], ["g.json", "JSON"],
         files(**{"g.json": "{not json"})),
    case("show-out-folder", ["show", "--graph", "g.json", "--out", "outdir"], ["--out", "outdir"],
         both(files(**{"g.json": graph_json()}), folder("outdir"))),
    case("train-deep-json", [*TRAIN[:-6], "--graph", "deep.json"], ["deep.json", "nested"],
         files(**{"deep.json": "[" * 100_000 + "]" * 100_000})),
    case("train-graph-shape", [*TRAIN[:-6], "--graph", "g.json"], ["g.json", "input_shape", "[4]", "[8]"],
         files(**{"g.json": graph_json(4)})),
    case("train-graph-tasks", [*TRAIN[:-6], "--graph", "g.json"], ["g.json", "tasks", "'zz'"],
         files(**{"g.json": graph_json(8, ("t0", "zz"))})),
    case("export-out-folder", ["export", "--format", "json", "--graph", "g.json", "--out", "outdir"],
         ["--out", "outdir"], both(files(**{"g.json": graph_json()}), folder("outdir"))),
    case("export-graph-missing", ["export", "--format", "dot", "--graph", "nope.json", "--out", "g.dot"], ["nope.json"]),
    case("export-model-no-study", ["export", "--format", "model", "--out", "m"], ["--storage", "--study"]),
    # ---- built-in options named in the error; studies named by folder, name or prefix (issue 14)
    case("multifashion-n", [*SEARCH, "--data", "multifashion", "--data-option", "n=500"],
         ["multifashion", "'n'", "valid options", "n_train"]),
    case("planted-bogus", [*SEARCH, "--data", "synthetic-planted", "--data-option", "bogus=1"],
         ["synthetic-planted", "'bogus'", "valid options", "clusters"]),
    case("report-unknown-study", ["report", "nope"], ["'nope'", "runs"]),
    case("verdict-no-study", ["verdict"], ["give a run folder"]),
    case("report-not-a-run-folder", ["report", "sub/dir"], ["'sub/dir'", "not a run folder"],
         both(folder("sub"), folder("sub/dir"))),
    case("show-study-twice", ["show", "a", "--study", "b"], ["give the study once", "'a'", "'b'"]),
]


@pytest.fixture()
def no_training(monkeypatch):
    """Any case that reaches training (or a verdict, or an affinity pass) fails at once."""
    import sharesearch.affinity
    import sharesearch.compare
    import sharesearch.search
    import sharesearch.search._workers as workers

    def boom(*args, **kwargs):
        raise AssertionError("bad input got past the front door: training started")

    for mod, name in ((workers, "run_worker"), (workers, "_run_local_workers"), (sharesearch.search, "run_worker"),
                      (sharesearch.search, "run_verdict"), (sharesearch.compare, "compare_topology"),
                      (sharesearch.affinity, "affinity_for_space")):
        monkeypatch.setattr(mod, name, boom)


def listing(root: Path) -> list[tuple[str, int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_the_corpus_is_big_and_its_ids_unique():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(c, tmp_path, monkeypatch, capsys, no_training):
    monkeypatch.chdir(tmp_path)
    c.setup(tmp_path)
    before = listing(tmp_path)
    try:
        rc = cli.main(list(c.argv))
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc not in (0, None), f"exit status {rc}; stderr: {err!r}"
    assert out == "" and len(lines) == 1 and lines[0].startswith("sharesearch: error: "), err
    for s in c.culprit:
        assert s in lines[0], f"{s!r} not in {lines[0]!r}"
    assert listing(tmp_path) == before
    assert not Path("/tmp/sharesearch-abs").exists()


# ---------------------------------------------------------------- load_model on damaged folders
def _saved_model(tmp: Path) -> Path:
    from sharesearch.export import save_model
    from sharesearch.graph import SharingGraph
    from sharesearch.network import compile_graph
    from sharesearch.tasks import TaskSpec

    g = SharingGraph.shared_bottom({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, 1)
    return save_model(compile_graph(g, seed=0), g, tmp / "m",
                      tasks=[TaskSpec("a", "regression"), TaskSpec("b", "binary")])


def _damage_missing(m: Path) -> None:
    (m / "model.pt").unlink()


def _damage_mismatch(m: Path) -> None:
    (m / "graph.json").write_text(graph_json(4, ("a", "b", "c")))


def _damage_nan(m: Path) -> None:
    state = torch.load(m / "model.pt", weights_only=True)
    first = next(iter(state))
    state[first] = torch.full_like(state[first], math.nan)
    torch.save(state, m / "model.pt")


def _damage_truncated(m: Path) -> None:
    (m / "model.pt").write_bytes((m / "model.pt").read_bytes()[:100])


def _damage_graph_json(m: Path) -> None:
    (m / "graph.json").write_text('{"directed": true')


def _damage_tasks_json(m: Path) -> None:
    (m / "tasks.json").write_text(json.dumps([{"name": "a", "kind": "nonsense"}]))


def _damage_not_a_dict(m: Path) -> None:
    torch.save([torch.zeros(2)], m / "model.pt")


MODEL_CASES = [("missing-file", _damage_missing, ["model.pt", "missing"]),
               ("graph-weights-mismatch", _damage_mismatch, ["graph.json", "model.pt", "match"]),
               ("nan-weights", _damage_nan, ["model.pt", "NaN"]),
               ("truncated-weights", _damage_truncated, ["model.pt"]),
               ("graph-not-json", _damage_graph_json, ["graph.json"]),
               ("tasks-bad", _damage_tasks_json, ["tasks.json"]),
               ("state-not-a-dict", _damage_not_a_dict, ["model.pt", "state_dict"])]


@pytest.mark.parametrize("damage,culprit", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_load_model_on_a_damaged_folder_is_one_error_type(damage, culprit, tmp_path):
    from sharesearch.errors import SharesearchError
    from sharesearch.export import ModelFolderError, load_model

    m = _saved_model(tmp_path)
    damage(m)
    before = listing(tmp_path)
    with pytest.raises(ModelFolderError) as info:
        load_model(m)
    assert isinstance(info.value, SharesearchError)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and all(s in msg for s in culprit), msg
    assert listing(tmp_path) == before


def test_load_model_on_an_intact_folder_still_loads(tmp_path):
    from sharesearch.export import load_model

    net = load_model(_saved_model(tmp_path))
    assert sorted(net(torch.zeros(3, 4))) == ["a", "b"]


# ---------------------------------------------------------------- the summary's heading
def test_summary_heading_escapes_the_study_name():
    from sharesearch.report import markdown_summary

    name = "x\n# injected <script>alert(1)</script> *bold* `tick`"
    text = markdown_summary({"study": name, "trials": [], "tasks": []})
    heading, rest = text.split("\n", 1)
    # one heading line; the name a code span (rendered literally: no heading, HTML or emphasis from it)
    assert heading == "# sharesearch report: `` x # injected <script>alert(1)</script> *bold* `tick` ``"
    assert "injected" not in rest


# ---------------------------------------------------------------- baselines that cannot be a control
@pytest.mark.parametrize("metric,value,mean,ok", [
    ("rmse", 1.1, 1.0, True), ("rmse", 4e16, 1.0, False), ("rmse", math.nan, 1.0, False),
    ("mae", 11.0, 1.0, False), ("logloss", 0.5, 0.69, True), ("logloss", math.inf, 0.69, False),
    ("r2", -0.5, 0.0, True), ("r2", -1e6, 0.0, False), ("auc", 0.4, 0.5, True), ("accuracy", math.nan, 0.5, False),
])
def test_check_baseline_sane(metric, value, mean, ok):
    from sharesearch.search import SearchError, check_baseline_sane

    if ok:
        assert check_baseline_sane("t", metric, value, mean) is None
    else:
        with pytest.raises(SearchError, match=f"task 't'.*{metric}"):
            check_baseline_sane("t", metric, value, mean)


def test_mean_predictor_is_the_reference_a_sane_baseline_beats():
    from sharesearch.data import load_data
    from sharesearch.search import check_baseline_sane, mean_predictor_metric

    d = load_data("synthetic-mmoe", n=600, kind=["regression", "binary", "regression", "binary", "regression",
                                                 "regression"])
    rmse = mean_predictor_metric(d, "t0", "rmse")
    y = d.y[d.indices("val"), 0] * d.tasks[0].target_std + d.tasks[0].target_mean  # [n_val] original units
    assert rmse == pytest.approx(float(((y - d.tasks[0].target_mean) ** 2).mean().sqrt()), rel=1e-5)
    assert mean_predictor_metric(d, "t1", "auc") == pytest.approx(0.5)
    check_baseline_sane("t0", "rmse", rmse * 1.5, rmse)
    with pytest.raises(SharesearchError, match="times that of predicting the mean"):
        check_baseline_sane("t0", "rmse", rmse * 1e16, rmse)

"""Tests of sharesearch.space: search-space files, validation, define-by-run sampling."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tomllib
from dataclasses import FrozenInstanceError
from importlib import resources
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharesearch.errors import SharesearchError
from sharesearch.graph import SharingGraph
from sharesearch.space import (
    REFERENCES,
    Candidate,
    ParamsTrial,
    SearchSpace,
    SpaceError,
    copy_space,
    load_space,
    project_share_depths,
    shipped_spaces,
    space_text,
)
from sharesearch.space._schema import BUDGET_KEYS
from sharesearch.tasks import TaskSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["branching", "default", "image", "tiny"]
TASKS6 = [
    TaskSpec("ctr", "binary"),
    TaskSpec("cvr", "binary"),
    TaskSpec("genre", "multiclass", n_classes=4),
    TaskSpec("age", "regression"),
    TaskSpec("income", "regression"),
    TaskSpec("churn", "binary"),
]
SHAPE = {"branching": (12,), "default": (12,), "image": (1, 28, 28), "tiny": (12,)}


def _nested(graph: SharingGraph) -> bool:
    parts = graph.partitions()
    for prev, cur in zip(parts, parts[1:]):
        for grp in cur:
            if not any(set(grp) <= set(p) for p in prev):
                return False
    return True


def _shipped_text(name: str) -> str:
    return (REPO / "search_spaces" / f"{name}.toml").read_text()


# ------------------------------------------------------------------ files
def test_shipped_spaces_are_the_one_copy_in_search_spaces():
    assert shipped_spaces() == SHIPPED
    repo_files = sorted(p.name for p in (REPO / "search_spaces").glob("*.toml"))
    assert repo_files == [f"{n}.toml" for n in SHIPPED]
    assert not (REPO / "sharesearch" / "spaces").exists()  # no second copy inside the package
    installed = resources.files("sharesearch._spaces")
    assert sorted(p.name for p in installed.iterdir() if p.name.endswith(".toml")) == repo_files
    for n in SHIPPED:
        assert load_space(n).text == _shipped_text(n) == space_text(n)
        assert installed.joinpath(f"{n}.toml").read_bytes() == (REPO / "search_spaces" / f"{n}.toml").read_bytes()
    with pytest.raises(SpaceError, match=r"^nope: no such search space; shipped spaces: branching, default"):
        space_text("nope")


def test_copy_space_gives_an_editable_file_and_never_overwrites(tmp_path):
    p = copy_space("default", tmp_path / "mine.toml")
    assert p == tmp_path / "mine.toml" and p.read_text() == _shipped_text("default")
    p.write_text(p.read_text().replace('name = "default"', 'name = "mine"'))
    mine = load_space(p)
    assert mine.name == "mine" and mine.fields == load_space("default").fields
    into_dir = copy_space("tiny", tmp_path)
    assert into_dir == tmp_path / "tiny.toml" and load_space(into_dir) == load_space("tiny")
    for target in (p, tmp_path):  # an existing file, or a folder already holding <name>.toml
        before = sorted(x.read_text() for x in tmp_path.iterdir())
        with pytest.raises(SharesearchError, match=r"already exists; give a new path"):
            copy_space("tiny" if target == tmp_path else "default", target)
        assert sorted(x.read_text() for x in tmp_path.iterdir()) == before
    with pytest.raises(SpaceError, match=r"cannot write"):
        copy_space("tiny", tmp_path / "no" / "such" / "dir.toml")
    with pytest.raises(SpaceError, match=r"no such search space"):
        copy_space("nope", tmp_path / "x.toml")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_space_loads_and_round_trips(name, tmp_path):
    space = load_space(name)
    assert space.name == name and space.source == f"{name}.toml"
    assert space.baseline_trials >= 1
    by_path = load_space(REPO / "search_spaces" / f"{name}.toml")
    assert by_path == space and by_path.fingerprint() == space.fingerprint()
    again = SearchSpace.from_dict(space.to_dict(), source="again")
    assert again.fingerprint() == space.fingerprint()
    assert SearchSpace.from_text(again.text).fingerprint() == space.fingerprint()
    # the same space written as YAML
    import yaml

    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(space.to_dict()))
    assert SearchSpace.from_file(p).fingerprint() == space.fingerprint()


def test_default_space_budget_is_small():
    space = load_space("default")
    f = space.fields
    # one step budget, the same for every run (fixed, never a parameter): every run takes all its steps
    # with a schedule of the step alone, so a task ends where it would beside any other tasks
    assert "train.epochs" not in f and f["train.max_steps"].value <= 3000 and f["train.patience"].value == 0
    assert f["train.lr_schedule"].value == "cosine"
    assert all(f[f"train.{k}"].mode == "fixed" for k in ("max_steps", "eval_every", "patience", "lr_schedule"))
    assert f["train.lr"].low <= 1e-4 and f["train.lr"].high >= 3e-2  # tuned values sit inside the range
    assert space.max_stages <= 3
    assert max(w.max for w in space.width_fields) * f["backbone.width_mult"].max <= 64
    assert set(space.reference_names()) == set(REFERENCES)


def test_space_module_does_not_import_optuna():
    code = "import sys, sharesearch.space; assert 'optuna' not in sys.modules, 'optuna imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_yaml_file_and_load_space_path(tmp_path):
    p = tmp_path / "mine.yml"
    p.write_text("backbone:\n  widths: [8, 8]\ntrain:\n  lr: {low: 1e-4, high: 1e-2, log: true}\n")
    space = load_space(str(p))
    assert space.fields["train.lr"].low == 1e-4 and space.name == "mine"
    with pytest.raises(SpaceError, match=r"^nope: no such search space; shipped spaces: branching, default"):
        load_space("nope")
    with pytest.raises(SpaceError, match=r"^missing\.toml: cannot read"):
        load_space(tmp_path / "missing.toml")


# -------------------------------------------------------------- validation
def _with(name: str, section: str, key: str, value: str) -> str:
    """The shipped file ``name`` with ``[section] key = value`` replaced or added."""
    data = tomllib.loads(_shipped_text(name))
    lines = [ln for ln in _shipped_text(name).splitlines()]
    out, cur, done = [], None, False
    for ln in lines:
        s = ln.strip()
        if s.startswith("["):
            if cur == section and not done:
                out.append(f"{key} = {value}")
                done = True
            cur = s.strip("[]")
        if cur == section and s.split("=")[0].strip() == key:
            out.append(f"{key} = {value}")
            done = True
            continue
        out.append(ln)
    if not done:
        if section not in data:
            out.append(f"[{section}]")
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


BAD = [
    ("default", "branching", "max_share", "2",
     "default.toml: branching.max_share: unknown key; valid keys: share, encoding, max_pairwise_tasks"),
    ("tiny", "train", "lr", "{low = 0.1, high = 0.01}", "tiny.toml: train.lr: low 0.1 > high 0.01"),
    ("tiny", "train", "lr", "{low = 0.01, high = 0.1, loq = true}",
     "tiny.toml: train.lr.loq: unknown key; valid keys: low, high, log, step, default"),
    ("default", "train", "weight_decay", "{low = 0.0, high = 1e-3, log = true}",
     "default.toml: train.weight_decay: a log range needs low > 0, got low 0.0"),
    ("default", "train", "lr", "{low = 0.0, high = 1e-3}", "default.toml: train.lr.low: must be > 0.0, got 0.0"),
    ("default", "mechanisms", "conditioning", '"flim"',
     "default.toml: mechanisms.conditioning: unknown choice 'flim'; valid: none, concat, film, gate"),
    ("default", "mechanisms", "conditioning", '["none", "flim"]',
     "default.toml: mechanisms.conditioning: unknown choice 'flim'; valid: none, concat, film, gate"),
    ("default", "mechanisms", "l2_lambda", "-0.1", "default.toml: mechanisms.l2_lambda: must be >= 0.0, got -0.1"),
    ("default", "mechanisms", "l2_lambda", "{low = -1.0, high = 0.1}",
     "default.toml: mechanisms.l2_lambda.low: must be >= 0.0, got -1.0"),
    ("default", "mechanisms", "moe_experts", "{low = 0, high = 4}",
     "default.toml: mechanisms.moe_experts.low: must be >= 1, got 0 (at least one expert; moe_experts = 0 or "
     "off = true for no MoE)"),
    ("default", "mechanisms", "moe_experts", "[0, 2]", "default.toml: mechanisms.moe_experts: must be >= 1, got 0"),
    ("default", "train", "weighting", "[]", "default.toml: train.weighting: empty choice list"),
    ("default", "train", "weighting", '["equal", "magic"]',
     "default.toml: train.weighting: unknown choice 'magic'; valid: equal, uncertainty, dwa, gradnorm, pcgrad"),
    ("default", "train", "sampling", '"random"',
     "default.toml: train.sampling: unknown choice 'random'; valid: uniform, proportional"),
    ("default", "train", "epochs", '"ten"', "default.toml: train.epochs: expected an integer, got 'ten'"),
    ("default", "train", "epochs", "{low = 2.5, high = 4}", "default.toml: train.epochs.low: expected an integer, got 2.5"),
    ("default", "mechanisms", "cross_stitch", '"yes"', "default.toml: mechanisms.cross_stitch: expected a boolean, got 'yes'"),
    ("default", "mechanisms", "expert_dropout", "1.0", "default.toml: mechanisms.expert_dropout: must be < 1.0, got 1.0"),
    ("default", "branching", "share", "{low = 0, high = 4}", "default.toml: branching.share: 4 > the largest stage count 3"),
    ("default", "branching", "share", "[0, 1]", "default.toml: branching.share: a choice list is not allowed here"),
    ("default", "branching", "encoding", '"matrix"',
     "default.toml: branching.encoding: unknown choice 'matrix'; valid: auto, pairwise, trunk"),
    ("default", "backbone", "name", '"resnet"', "default.toml: backbone.name: unknown choice 'resnet'; valid: auto, mlp, cnn"),
    ("default", "backbone", "widths", "[64, 64]", "default.toml: backbone.widths: 2 entries for at most 3 stages"),
    ("default", "backbone", "stages", "{low = 3, high = 2}", "default.toml: backbone.stages: low 3 > high 2"),
    ("default", "baseline", "trials", "-1", "default.toml: baseline.trials: must be >= 0, got -1"),
    ("default", "baseline", "epochs", "5", "default.toml: baseline.epochs: unknown key; valid keys: lr, width_mult"),
    ("default", "train", "batch_size", "{choices = [64, 128], default = 32}",
     "default.toml: train.batch_size.default: 32 is not one of the choices [64, 128]"),
    ("default", "train", "epochs", "{low = 8, high = 12, default = 20}",
     "default.toml: train.epochs.default: 20 is outside the range [8, 12]"),
    ("tiny", "extras", "x", "1", "tiny.toml: extras: unknown key; valid keys: name, description, backbone"),
]


@pytest.mark.parametrize("name,section,key,value,message", BAD, ids=[f"{b[1]}.{b[2]}={b[3]}" for b in BAD])
def test_bad_files_name_file_key_and_value(tmp_path, name, section, key, value, message):
    p = tmp_path / f"{name}.toml"
    p.write_text(_with(name, section, key, value))
    with pytest.raises(SpaceError) as ei:
        SearchSpace.from_file(p)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(message), msg
    assert isinstance(ei.value, ValueError)


def test_other_bad_inputs():
    with pytest.raises(SpaceError, match=r"^x\.toml: not valid TOML"):
        SearchSpace.from_text("[backbone\n", "x.toml", "toml")
    with pytest.raises(SpaceError, match=r"^d: backbone\.widths: give exactly one of 'widths'"):
        SearchSpace.from_dict({"backbone": {}}, source="d")
    with pytest.raises(SpaceError, match=r"^d: backbone: expected a table, got 3"):
        SearchSpace.from_dict({"backbone": 3}, source="d")
    with pytest.raises(SpaceError, match=r"^d: backbone\.kernel: only a cnn backbone has a kernel"):
        SearchSpace.from_dict({"backbone": {"name": "mlp", "widths": [4], "kernel": 3}}, source="d")
    with pytest.raises(SpaceError, match=r"^d: backbone\.kernel: must be odd, got 4"):
        SearchSpace.from_dict({"backbone": {"name": "cnn", "widths": [4], "kernel": 4}}, source="d")
    with pytest.raises(SpaceError, match=r"reference 'mmoe' is not in this space"):
        load_space("branching").reference_params("mmoe", {"a": 1, "b": 1})
    with pytest.raises(SpaceError, match=r"unknown reference architecture 'mtan'; valid: independent"):
        load_space("tiny").reference_params("mtan", {"a": 1, "b": 1})


# ---------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", SHIPPED)
def test_random_sampling_gives_valid_nested_graphs(name):
    space = load_space(name)
    shape = SHAPE[name]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    pair_names = space.branch_params(TASKS6)
    budget = {k: space.fields[f"train.{k}"].value for k in BUDGET_KEYS if f"train.{k}" in space.fields}
    assert len(pair_names) == 15 and all(n.startswith("share[") for n in pair_names)
    seen = []

    def objective(trial):
        cand = space.sample(trial, TASKS6, shape)
        assert isinstance(cand, Candidate)
        g = cand.graph
        g.validate()
        assert _nested(g)
        assert g.tasks == tuple(t.name for t in TASKS6)
        assert set(cand.train) <= {"lr", "weight_decay", "epochs", "batch_size", "weighting", "sampling",
                                   *BUDGET_KEYS}
        assert {k: cand.train[k] for k in BUDGET_KEYS if k in cand.train} == budget  # every trial: one budget
        assert set(pair_names) <= set(trial.params)  # every pair, every trial
        req = {tuple(n[6:-1].split("~")): trial.params[n] for n in pair_names}
        proj = project_share_depths(g.tasks, req, g.n_stages)  # the space's default linkage: average
        for (a, b), d in proj.items():
            assert g.share_depth(a, b) == d
        if trial.params.get("cross_stitch"):
            assert "l2_on" not in trial.params and not g.soft_edges("l2")
        seen.append((dict(trial.params), g.key(), cand.train))
        return 0.0

    study.optimize(objective, n_trials=20)
    assert len(seen) == 20
    names = {frozenset(n for n in p if n.startswith("share[")) for p, _, _ in seen}
    assert names == {frozenset(pair_names)}
    for params, key, train in seen:  # determinism: the same params give the same candidate
        again = space.sample(optuna.trial.FixedTrial(params), TASKS6, shape)
        assert again.graph.key() == key and again.train == train
        assert space.build(params, TASKS6, shape).graph.key() == key


def test_sampling_covers_mechanisms():
    space = load_space("default")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    kinds = set()

    def objective(trial):
        g = space.sample(trial, TASKS6, (12,)).graph
        kinds.update(d["kind"] for _, d in g.g.nodes(data=True))
        kinds.update(d["kind"] for *_, d in g.g.edges(data=True))
        kinds.update(d.get("conditioning", "none") for _, d in g.g.nodes(data=True))
        return 0.0

    study.optimize(objective, n_trials=40)
    assert {"moe", "l2", "stitch", "film", "gate", "concat"} <= kinds


def test_tpe_accepts_the_space():
    space = load_space("tiny")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3))
    study.optimize(lambda t: space.sample(t, TASKS6[:3], (5,)).graph.n_params() * 1e-6, n_trials=8)
    assert len(study.trials) == 8


def test_trunk_encoding_for_many_tasks():
    space = SearchSpace.from_dict({"backbone": {"widths": [8, 8, 8]}, "branching": {"max_pairwise_tasks": 3}})
    tasks = {f"t{i}": 1 for i in range(5)}
    assert space.branch_params(tasks) == [f"trunk[t{i}]" for i in range(5)]
    p = {"trunk[t0]": 3, "trunk[t1]": 2, "trunk[t2]": 0, "trunk[t3]": 3, "trunk[t4]": 1}
    g = space.build(p, tasks, (4,)).graph
    assert g.share_depth("t0", "t3") == 3 and g.share_depth("t0", "t1") == 2 and g.share_depth("t2", "t4") == 0
    assert g.share_depth("t1", "t4") == 1 and _nested(g)


def test_fixed_share_and_no_mechanisms():
    space = SearchSpace.from_dict({"backbone": {"widths": [8, 8]}, "branching": {"share": 1}})
    assert space.branch_params({"a": 1, "b": 1}) == []
    g = space.build({}, {"a": 1, "b": 1}, (3,)).graph
    assert g.partitions() == ((("a", "b"),), (("a",), ("b",)))
    assert space.reference_names() == []


# -------------------------------------------------------------- references
def _constructor(space: SearchSpace, name: str, tasks, shape) -> SharingGraph:
    bb = space.default_backbone(shape)
    f = space.fields
    if name == "independent":
        return SharingGraph.independent(tasks, bb)
    if name == "shared-bottom":
        return SharingGraph.shared_bottom(tasks, bb)
    if name == "cross-stitch":
        return SharingGraph.cross_stitch(tasks, bb)
    if name == "l2-soft":
        return SharingGraph.l2_soft(tasks, bb, lam=f["mechanisms.l2_lambda"].on_default)
    assert name == "mmoe"
    k = min(len(bb["widths"]), f["mechanisms.moe_stages"].default)
    p = f["mechanisms.expert_dropout"].default if "mechanisms.expert_dropout" in f else 0.0
    return SharingGraph.mmoe(tasks, bb, experts=f["mechanisms.moe_experts"].on_default, moe_stages=k,
                             expert_dropout=p)


@pytest.mark.parametrize("name", SHIPPED)
def test_reference_params_reproduce_reference_graphs(name):
    space = load_space(name)
    shape = SHAPE[name]
    refs = space.reference_names()
    assert refs[:2] == ["independent", "shared-bottom"]
    for ref in refs:
        params = space.reference_params(ref, TASKS6)
        cand = space.sample(optuna.trial.FixedTrial(params), TASKS6, shape)
        want = _constructor(space, ref, TASKS6, shape)
        assert cand.graph.key() == want.key(), (ref, cand.graph.describe(), want.describe())
        assert space.reference_graph(ref, TASKS6, shape).key() == want.key()
        for k, f in space.fields.items():  # training params at their defaults
            if k.startswith("train.") and f.mode != "fixed":
                assert cand.train[k[6:]] == f.default
    # and through a real study's queue
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for ref in refs:
        study.enqueue_trial(space.reference_params(ref, TASKS6))
    keys = []
    study.optimize(lambda t: keys.append(space.sample(t, TASKS6, shape).graph.key()) or 0.0, n_trials=len(refs))
    assert keys == [_constructor(space, r, TASKS6, shape).key() for r in refs]


# --------------------------------------------------------------- baselines
def test_baseline_sampling_matches_candidate_budget():
    space = load_space("default")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(space.baseline_default_params())
    out = []
    study.optimize(lambda t: out.append(space.sample_baseline(t, TASKS6[:2], (12,))) or 0.0, n_trials=5)
    default_bb = space.default_backbone((12,))
    budget = {k: space.fields[f"train.{k}"].value for k in BUDGET_KEYS if f"train.{k}" in space.fields}
    assert budget["max_steps"] == 3000
    assert out[0].graph.key() == SharingGraph.independent(TASKS6[:2], default_bb).key()
    for cand, trial in zip(out, study.trials):
        assert set(trial.params) <= {"baseline_lr", "baseline_width_mult", "baseline_weight_decay_on",
                                     "baseline_weight_decay", "baseline_batch_size"}
        # the candidates' budget, and their batch sizes (tuned, not fixed at the default)
        assert {k: cand.train[k] for k in BUDGET_KEYS if k in cand.train} == budget and "epochs" not in cand.train
        assert cand.train["batch_size"] == trial.params["baseline_batch_size"] in (64, 128, 256)
        assert cand.train["weighting"] == "equal" and cand.graph.partitions()[0] == (("ctr",), ("cvr",))
        m = trial.params["baseline_width_mult"]
        assert list(cand.graph.backbone.widths) == [max(1, int(w * m + 0.5)) for w in default_bb["widths"]]
    assert len({t.params["baseline_batch_size"] for t in study.trials}) > 1
    assert space.baseline_trials == 12 and space.baseline_confirm_seeds == 3


def test_budget_keys_are_fixed_only_and_name_the_trainers_schedules():
    from sharesearch.space._schema import LR_SCHEDULES
    from sharesearch.training import LR_SCHEDULES as TRAINER_SCHEDULES

    assert LR_SCHEDULES == TRAINER_SCHEDULES
    with pytest.raises(SpaceError, match="x.toml: train.max_steps: a range is not allowed here"):
        SearchSpace.from_dict({"backbone": {"widths": [8]}, "train": {"max_steps": {"low": 10, "high": 20}}},
                              source="x.toml")
    with pytest.raises(SpaceError, match="x.toml: train.lr_schedule: a choice list is not allowed here"):
        SearchSpace.from_dict({"backbone": {"widths": [8]}, "train": {"lr_schedule": ["constant", "cosine"]}},
                              source="x.toml")
    with pytest.raises(SpaceError, match="x.toml: train.lr_schedule: unknown choice 'cosin'"):
        SearchSpace.from_dict({"backbone": {"widths": [8]}, "train": {"lr_schedule": "cosin"}}, source="x.toml")


def test_candidate_is_frozen():
    cand = load_space("tiny").build(load_space("tiny").reference_params("independent", {"a": 1}), {"a": 1}, (3,))
    with pytest.raises(FrozenInstanceError):
        cand.graph = None


# ------------------------------------------------------------- projection
@st.composite
def _requests(draw):
    n = draw(st.integers(1, 6))
    L = draw(st.integers(1, 4))
    names = [f"t{i}" for i in range(n)]
    depths = {(a, b): draw(st.integers(0, L + 1)) for a, b in itertools.combinations(names, 2)}
    return names, L, depths


@st.composite
def _ultrametric(draw):
    """Share depths read off random nested partitions (a valid tree)."""
    n = draw(st.integers(1, 6))
    L = draw(st.integers(1, 4))
    names = [f"t{i}" for i in range(n)]
    label = {t: () for t in names}  # path of group labels down the stages
    depth = {}
    for s in range(L):
        for t in names:
            label[t] = label[t] + (draw(st.integers(0, 2)),)
    for a, b in itertools.combinations(names, 2):
        d = 0
        while d < L and label[a][: d + 1] == label[b][: d + 1]:
            d += 1
        depth[(a, b)] = d
    return names, L, depth


@settings(max_examples=150, deadline=None)
@given(_requests())
def test_projection_is_single_linkage_and_nested(req):
    names, L, depths = req
    proj = project_share_depths(names, depths, L, linkage="single")
    g = SharingGraph.from_share_depths({t: 1 for t in names}, {"name": "mlp", "input_shape": [2], "widths": [2] * L},
                                       depths, linkage="single")
    assert _nested(g)
    for (a, b), d in proj.items():
        assert g.share_depth(a, b) == d
        assert min(depths[(a, b)], L) <= d <= L  # only ever raised, and only by transitivity:
        for c in names:  # ultrametric: d(a,b) >= min(d(a,c), d(c,b))
            if c not in (a, b):
                assert d >= min(proj[tuple(sorted((a, c)))], proj[tuple(sorted((b, c)))])
    # minimality: a raised pair is forced by a chain of requests at least that deep
    for (a, b), d in proj.items():
        if d > min(depths[(a, b)], L):
            reach, frontier = {a}, [a]
            while frontier:
                x = frontier.pop()
                for y in names:
                    if y not in reach and min(depths[tuple(sorted((x, y)))], L) >= d:
                        reach.add(y)
                        frontier.append(y)
            assert b in reach


@settings(max_examples=150, deadline=None)
@given(_ultrametric())
def test_projection_is_identity_on_trees(um):
    names, L, depths = um
    assert project_share_depths(names, depths, L) == depths
    assert project_share_depths(names, depths, L, linkage="single") == depths
    space = SearchSpace.from_dict({"backbone": {"widths": [4] * L}})
    params = {f"share[{a}~{b}]": d for (a, b), d in depths.items()}
    params.update(space.reference_params("independent", {t: 1 for t in names}))
    params.update({f"share[{a}~{b}]": d for (a, b), d in depths.items()})
    g = space.sample(ParamsTrial(params), {t: 1 for t in names}, (3,)).graph
    assert {(a, b): g.share_depth(a, b) for a, b in depths} == depths


@settings(max_examples=100, deadline=None)
@given(_requests())
def test_average_linkage_projection_is_nested_and_matches_the_graph(req):
    names, L, depths = req
    proj = project_share_depths(names, depths, L)
    g = SharingGraph.from_share_depths({t: 1 for t in names}, {"name": "mlp", "input_shape": [2], "widths": [2] * L},
                                       depths)
    assert _nested(g)
    for (a, b), d in proj.items():
        assert g.share_depth(a, b) == d


def test_average_linkage_does_not_chain_groups_through_one_pair():
    """Two groups with one stray request between them stay apart (single linkage would merge them)."""
    names = ["a", "b", "c", "d"]
    depths = {("a", "b"): 2, ("c", "d"): 2, ("b", "c"): 2}
    avg = project_share_depths(names, depths, 2)
    single = project_share_depths(names, depths, 2, linkage="single")
    assert single[("a", "d")] == 2
    assert avg[("a", "b")] == 2 and avg[("c", "d")] == 2 and avg[("a", "d")] < 2


def test_unknown_linkage_is_rejected_with_the_key():
    with pytest.raises(SpaceError, match=r"branching\.linkage.*'complete'"):
        SearchSpace.from_dict({"backbone": {"widths": [4, 4]}, "branching": {"linkage": "complete"}}, source="x.toml")


def test_a_space_file_that_is_not_utf8_is_one_clear_error(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SharesearchError, match=r"latin1.toml: not UTF-8 text \(byte 0xe9 at offset 11\)"):
        SearchSpace.from_file(bad)

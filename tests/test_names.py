"""sharesearch.names is the one list of each kind of name; its users must agree with it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sharesearch import compare, data, names
from sharesearch import weighting as weighting_mod
from sharesearch.errors import SharesearchError
from sharesearch.graph import SharingGraph
from sharesearch.names import METRICS, REFERENCES, SAMPLINGS, WEIGHTINGS
from sharesearch.space import ParamsTrial, SearchSpace, SpaceError, load_space
from sharesearch.space._references import space_defaults
from sharesearch.space._schema import SCHEMA
from sharesearch.tasks import TASK_KINDS, TaskSpec, compute_metric, metric_direction
from sharesearch.weighting import EqualWeighting, make_weighting, register_weighting

TASKS = {"a": 1, "b": 1, "c": 1}


def _space(weightings: list[str]) -> SearchSpace:
    return SearchSpace.from_dict({"backbone": {"widths": [8, 8]}, "train": {"weighting": weightings}}, "w.toml")


def test_public_lists_are_tuples_of_str():
    for lst in (REFERENCES, WEIGHTINGS, SAMPLINGS, names.weighting_names()):
        assert isinstance(lst, tuple) and lst and all(isinstance(n, str) for n in lst)
        assert len(set(lst)) == len(lst)
    assert REFERENCES[0] == "independent" and REFERENCES == tuple(names.REFERENCE_ARCHITECTURES)


def test_names_and_space_import_neither_torch_nor_optuna():
    code = ("import sys, sharesearch.names, sharesearch.space; "
            "bad = {'torch', 'optuna'} & set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_names_raise_user_errors_listing_the_valid_ones():
    for call, valid in ((lambda: names.reference("mtan"), REFERENCES),
                        (lambda: make_weighting("softmax", ["a"]), weighting_mod.WEIGHTINGS),
                        (lambda: names.check_name("sampling mode", "rr", SAMPLINGS), SAMPLINGS)):
        with pytest.raises(SharesearchError) as err:
            call()
        assert all(n in str(err.value) for n in valid) and "\n" not in str(err.value)
    assert issubclass(SpaceError, SharesearchError)


# ---------------------------------------------------------------- weighting
def test_every_registered_weighting_is_constructible_and_selectable():
    assert set(names.weighting_names()) == set(weighting_mod.WEIGHTINGS) == set(WEIGHTINGS)
    space = _space(list(names.weighting_names()))
    assert space.fields["train.weighting"].choices == names.weighting_names()
    for name in names.weighting_names():
        method = make_weighting(name, ["a", "b"])
        assert type(method) is weighting_mod.WEIGHTINGS[name] and method.name == name
        params = {"share[a~b]": 1, "share[a~c]": 1, "share[b~c]": 1, "weighting": name}
        assert space.build(params, TASKS, (4,)).train["weighting"] == name


@pytest.fixture
def fresh_registries(monkeypatch):
    """Registries restored after the test (registration is process-wide)."""
    monkeypatch.setattr(names, "_weightings", list(names._weightings))
    monkeypatch.setattr(names, "WEIGHTINGS", names.WEIGHTINGS)
    monkeypatch.setattr(weighting_mod, "WEIGHTINGS", dict(weighting_mod.WEIGHTINGS))


def test_registering_a_weighting_makes_it_selectable_without_editing_space_code(fresh_registries):
    class Halves(EqualWeighting):
        """Half weight on every task (a stand-in for a user's own method)."""

        name = "halves"

        def backward(self, losses, shared_params):
            return super().backward({t: 0.5 * v for t, v in losses.items()}, shared_params)

    with pytest.raises(SpaceError, match=r"^w\.toml: train\.weighting: unknown choice 'halves'; valid: equal,"):
        _space(["equal", "halves"])
    assert register_weighting(Halves) is Halves
    assert names.weighting_names()[-1] == "halves" and names.WEIGHTINGS[-1] == "halves"
    space = _space(["equal", "halves"])
    cand = space.build({"share[a~b]": 0, "share[a~c]": 0, "share[b~c]": 0, "weighting": "halves"}, TASKS, (4,))
    method = make_weighting(cand.train["weighting"], list(TASKS))
    assert isinstance(method, Halves)
    w = torch.ones(1, requires_grad=True)
    method.backward({"a": (2 * w).sum(), "b": (4 * w).sum(), "c": (0 * w).sum()}, [w])
    assert w.grad.item() == pytest.approx(3.0)  # half of 2 + 4
    register_weighting(Halves)  # idempotent
    assert names.weighting_names().count("halves") == 1

    class Other(EqualWeighting):
        name = "halves"

    with pytest.raises(SharesearchError, match="'halves' is already registered to Halves"):
        register_weighting(Other)
    with pytest.raises(TypeError):
        register_weighting(object)


# --------------------------------------------------------------- references
def test_compare_uses_the_reference_registry():
    assert compare.REFERENCE_ARCHITECTURES is names.REFERENCE_ARCHITECTURES
    d = data.load_data("synthetic-mmoe", n=120, d=8, seed=0)
    for name in REFERENCES:
        g = compare.reference_graph(name, d, widths=[8, 4])
        assert g.key() == names.reference(name).constructor(d.tasks, compare.default_backbone(d, [8, 4])).key()
    with pytest.raises(SharesearchError, match="unknown reference architecture 'mtan'"):
        compare.reference_graph("mtan", d)


@pytest.mark.parametrize("name", REFERENCES)
def test_every_reference_gives_a_graph_and_enqueue_params(name):
    ref = names.reference(name)
    assert ref.name == name and ref.citation
    space = load_space("default")
    bb = space.default_backbone((6,))
    assert isinstance(ref.graph(TASKS, bb), SharingGraph)  # the constructor's own defaults
    params = space.reference_params(name, TASKS)
    sampled = space.sample(ParamsTrial(params), TASKS, (6,)).graph
    assert sampled.key() == ref.graph(TASKS, bb, space_defaults(space)).key()
    assert sampled.key() == space.reference_graph(name, TASKS, (6,)).key()
    assert name in space.reference_names()


def test_hard_sharing_references_prefer_soft_sharing_off():
    # one trunk has no sibling blocks to stitch or pull together: the params say "off", not the default λ
    space = load_space("default")
    assert space.fields["mechanisms.l2_lambda"].default > 0
    for name in ("shared-bottom", "independent"):
        params = space.reference_params(name, TASKS)
        assert params["l2_on"] is False and params["cross_stitch"] is False and params["moe"] is False


def test_a_space_without_moe_or_l2_cannot_express_those_references():
    space = SearchSpace.from_dict({"backbone": {"widths": [8, 8]}}, "plain.toml")
    assert space.reference_names() == ["independent", "shared-bottom"]
    for name, why in (("mmoe", "moe_experts is off"), ("l2-soft", "l2_lambda is off")):
        with pytest.raises(SpaceError, match=f"^plain.toml: reference '{name}' is not in this space: .*{why}"):
            space.reference_params(name, TASKS)
        with pytest.raises(names.NotExpressible):
            names.reference(name).point(space_defaults(space))


# ------------------------------------------------------- sampling and metrics
def test_sampling_modes_agree_with_space_and_batcher():
    assert SCHEMA["train"]["sampling"].valid_names == SAMPLINGS
    assert tuple(data.SAMPLINGS) == SAMPLINGS
    space = SearchSpace.from_dict({"backbone": {"widths": [8]}, "train": {"sampling": list(SAMPLINGS)}})
    assert space.fields["train.sampling"].choices == SAMPLINGS
    with pytest.raises(SpaceError, match="unknown choice 'round-robin'; valid: uniform, proportional"):
        SearchSpace.from_dict({"backbone": {"widths": [8]}, "train": {"sampling": "round-robin"}})


def _example(kind: str) -> tuple[TaskSpec, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if kind == "multiclass":
        spec = TaskSpec("t", kind, n_classes=3)
        return spec, torch.randn(40, 3, generator=g), torch.arange(40).remainder(3).float()
    spec = TaskSpec("t", kind)
    y = torch.arange(40).remainder(2).float() if kind == "binary" else torch.randn(40, generator=g)
    return spec, torch.randn(40, 1, generator=g), y


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_is_computable_for_exactly_its_task_kinds(metric):
    m = METRICS[metric]
    assert m.name == metric and metric_direction(metric) == m.direction in ("maximize", "minimize")
    assert m.kinds and set(m.kinds) <= set(TASK_KINDS)
    for kind in TASK_KINDS:
        n_classes = 3 if kind == "multiclass" else 2
        if kind in m.kinds:
            spec, out, y = _example(kind)
            assert TaskSpec("t", kind, n_classes=n_classes, metrics=(metric,)).primary_metric == metric
            value = compute_metric(spec, metric, out, y)
            assert value == value  # a number, not NaN, on labelled examples
        else:
            with pytest.raises(ValueError, match=f"metric '{metric}' does not apply to a {kind} task"):
                TaskSpec("t", kind, n_classes=n_classes, metrics=(metric,))

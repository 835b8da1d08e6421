"""The :class:`SearchSpace`: a validated space file and what can be asked of it.

The class holds the parsed file (:mod:`._schema`) and answers questions
about it; the work is done by the modules of its jobs: sampling
(:mod:`._sampling`), reference architectures (:mod:`._references`) and text
formats (:mod:`._formats`).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..graph import SharingGraph
from . import _references, _sampling
from ._fields import Field, SpaceError
from ._formats import read_text, to_toml
from ._projection import pair
from ._sampling import Candidate
from ._schema import parse_space
from ._trial import ParamsTrial, Picker, default, task_names

__all__ = ["SearchSpace"]

Tasks = Mapping[str, int] | Sequence[Any]  # TaskSpecs (or ``{name: out_dim}``) in graph task order


class SearchSpace:
    """A validated search space; see :mod:`sharesearch.space` for the file format.

    Attributes
    ----------
    name, description : str
    source : str
        File name (or the ``source`` given to :meth:`from_dict`); used in messages.
    text : str
        The original file text (TOML rendered from the data for :meth:`from_dict`).
    fields : dict[str, Field]
        Every sampled or fixed field by dotted key (``"train.lr"``, ``"backbone.widths[0]"``).
    width_fields : list[Field]
        One width field per stage, up to :attr:`max_stages`.
    max_stages : int
        The largest stage count.
    backbone_name, encoding, linkage : str
        ``backbone.name``, ``branching.encoding``, ``branching.linkage``.
    max_pairwise_tasks : int
        Above this many tasks the ``"auto"`` encoding is the trunk encoding.
    affinity : bool
        ``branching.affinity``: a search measures inter-task affinity once (after the baselines)
        and enqueues the sharing trees it proposes right after the reference architectures.
    baseline_trials : int
        Tuning trials of each independent baseline.
    baseline_budget : str
        Epochs of a baseline: ``"max"`` or ``"default"`` (spaces that give epochs rather than ``max_steps``).
    baseline_confirm_seeds, baseline_confirm_top : int
        Each task's ``baseline_confirm_top`` best tuning configurations are retrained with
        ``baseline_confirm_seeds`` more seeds and the task keeps the best mean.
    """

    def __init__(self, data: Mapping[str, Any], source: str = "<space>", text: str | None = None) -> None:
        parsed = parse_space(data, source)
        self.source = source
        self._data = parsed.data
        self.name = parsed.name
        self.description = parsed.description
        self.fields: dict[str, Field] = parsed.fields
        self.width_fields = parsed.width_fields
        self.max_stages = parsed.max_stages
        self.backbone_name = parsed.backbone_name
        self.encoding = parsed.encoding
        self.max_pairwise_tasks = parsed.max_pairwise_tasks
        self.linkage = parsed.linkage
        self.affinity = parsed.affinity
        self.baseline_trials = parsed.baseline_trials
        self.baseline_budget = parsed.baseline_budget
        self.baseline_confirm_seeds = parsed.baseline_confirm_seeds
        self.baseline_confirm_top = parsed.baseline_confirm_top
        self.text = text if text is not None else to_toml(self._data)

    # ------------------------------------------------------- constructors
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> SearchSpace:
        """Validate ``d`` (the parsed file) and build the space.

        >>> SearchSpace.from_dict({"backbone": {"widths": [8, 8]}, "mechanisms": {"conditioning": "flim"}},
        ...                       source="x.toml")
        Traceback (most recent call last):
        ...
        sharesearch.space.SpaceError: x.toml: mechanisms.conditioning: unknown choice 'flim'; valid: none, concat, film, gate
        """
        return cls(d, source)

    @classmethod
    def from_text(cls, text: str, source: str = "<text>", fmt: str | None = None) -> SearchSpace:
        """Parse TOML (``fmt="toml"``) or YAML/JSON (``fmt="yaml"``); ``None`` tries TOML, then YAML."""
        return cls(read_text(text, source, fmt), source, text)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> SearchSpace:
        """Load a ``.toml`` file (``.yaml``/``.yml``/``.json`` are read as YAML)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpaceError(f"{path.name}: cannot read {str(path)!r}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise SpaceError(f"{path.name}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})"
                             ) from None
        fmt = "yaml" if path.suffix.lower() in (".yaml", ".yml", ".json") else "toml"
        return cls.from_text(text, path.name, fmt)

    # ----------------------------------------------------------- accessors
    def to_dict(self) -> dict[str, Any]:
        """The validated data (``SearchSpace.from_dict(s.to_dict())`` rebuilds it)."""
        return copy.deepcopy(self._data)

    def fingerprint(self) -> str:
        """Hash of the data (not of comments or formatting)."""
        return hashlib.sha256(json.dumps(self._data, sort_keys=True).encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, source={self.source!r}, fingerprint={self.fingerprint()!r})"

    def field(self, key: str) -> Field | None:
        """The field of dotted ``key`` or None when the file leaves it out."""
        return self.fields.get(key)

    def encoding_for(self, n_tasks: int) -> str:
        """``"pairwise"`` or ``"trunk"`` for ``n_tasks`` tasks."""
        if self.encoding != "auto":
            return self.encoding
        return "pairwise" if n_tasks <= self.max_pairwise_tasks else "trunk"

    def branch_params(self, tasks: Tasks) -> list[str]:
        """Names of the task-tree parameters for ``tasks`` (empty when ``share`` is fixed).

        >>> from sharesearch.space import load_space
        >>> load_space("tiny").branch_params(["b", "a", "c"])
        ['share[a~b]', 'share[b~c]', 'share[a~c]']
        """
        if self.fields["branching.share"].mode == "fixed":
            return []
        names = task_names(tasks)
        if self.encoding_for(len(names)) == "trunk":
            return [f"trunk[{t}]" for t in names]
        return ["share[{}~{}]".format(*pair(a, b)) for a, b in itertools.combinations(names, 2)]

    # ---------------------------------------------------------- sampling
    def default_backbone(self, input_shape: Sequence[int]) -> dict[str, Any]:
        """The backbone dict with every backbone field at its default.

        >>> from sharesearch.space import load_space
        >>> load_space("tiny").default_backbone((8,))["widths"]
        [32, 32]
        """
        return _sampling.backbone(self, default, input_shape)

    def sample(self, trial: Any, tasks: Tasks, input_shape: Sequence[int]) -> Candidate:
        """Sample a candidate define-by-run (``trial.suggest_*`` only).

        Parameters
        ----------
        trial : an Optuna trial or anything with its ``suggest_int/float/categorical``
        tasks : TaskSpecs (or ``{name: out_dim}``) in graph task order
        input_shape : one example's shape, e.g. ``(n_features,)`` or ``(1, 28, 28)``

        >>> from sharesearch.space import load_space
        >>> space = load_space("branching")
        >>> p = {"share[a~b]": 1, "share[a~c]": 0, "share[b~c]": 3, "lr": 1e-3}
        >>> space.sample(ParamsTrial(p), {"a": 1, "b": 1, "c": 1}, (5,)).graph.partitions()[0]
        (('a', 'b', 'c'),)
        """
        return _sampling.build(self, Picker(trial), tasks, input_shape)

    def build(self, params: Mapping[str, Any], tasks: Tasks, input_shape: Sequence[int]) -> Candidate:
        """Rebuild the candidate of a trial from its ``params`` (no Optuna needed)."""
        return self.sample(ParamsTrial(params), tasks, input_shape)

    # --------------------------------------------------------- references
    def reference_params(self, name: str, tasks: Tasks, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Parameters to ``study.enqueue_trial`` for a reference architecture.

        Sampling with them gives the graph of the matching constructor
        (:data:`sharesearch.names.REFERENCE_ARCHITECTURES`) on
        :meth:`default_backbone`, with the space's default experts, MoE
        stages, expert dropout and λ; training parameters take their
        defaults. With ``base`` (a trial's parameters) the reference takes
        that trial's training and width instead (the fields of
        :data:`~sharesearch.space._references.SETTINGS_FIELDS`); its topology
        and mechanisms stay its own. Raises :class:`SpaceError` when the space
        cannot express it (see :meth:`reference_names`).

        >>> from sharesearch.space import load_space
        >>> p = load_space("tiny").reference_params("mmoe", {"a": 1, "b": 1})
        >>> {k: p[k] for k in ("share[a~b]", "moe", "moe_experts", "cross_stitch", "l2_on", "batch_size")}
        {'share[a~b]': 1, 'moe': True, 'moe_experts': 2, 'cross_stitch': False, 'l2_on': False, 'batch_size': 16}
        >>> q = load_space("tiny").reference_params("mmoe", {"a": 1, "b": 1}, base={"batch_size": 32, "moe": False})
        >>> q["batch_size"], q["moe"]
        (32, True)
        """
        return _references.reference_params(self, name, tasks, base)

    def tree_params(self, partitions: Sequence[Sequence[Sequence[str]]], tasks: Tasks,
                    input_shape: Sequence[int], base: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Parameters of a sharing tree; None when the space cannot express it.

        ``partitions`` holds one task partition per stage (stage 0 coarsest,
        nested). Without ``base`` every mechanism is off: the parameters are
        those of the ``shared-bottom`` reference with the task-tree parameters
        (``share[a~b]`` = leading stages a pair shares, or ``trunk[t]``) set to
        the tree's. With ``base`` (a trial's parameters) the tree is laid on
        that trial's settings instead: its width, conditioning, mechanisms and
        training, with the number of stages the tree needs. Either way they
        are kept only when :meth:`build` rebuilds exactly these partitions
        (and, with ``base``, only the parameters that build reads).

        >>> from sharesearch.space import load_space
        >>> space, tasks = load_space("tiny"), {"a": 1, "b": 1, "c": 1}
        >>> tree = [[["a", "b"], ["c"]], [["a"], ["b"], ["c"]]]
        >>> p = space.tree_params(tree, tasks, (4,))
        >>> p["share[a~b]"], p["share[a~c]"], p["moe"]
        (1, 0, False)
        >>> q = space.tree_params(tree, tasks, (4,), base={**p, "share[a~c]": 2, "lr": 0.02})
        >>> q["share[a~c]"], q["lr"]
        (0, 0.02)
        """
        names = task_names(tasks)
        share, stages = self.fields["branching.share"], self.fields["backbone.stages"]
        try:
            params = self.reference_params("shared-bottom", tasks)
        except SpaceError:
            return None
        if base is not None:
            params.update(base)
            if stages.can_be(len(partitions)):
                params.update(stages.params_for(len(partitions)))
        if share.mode == "fixed" or int(params.get("stages", stages.default)) != len(partitions):
            return None

        def depth(a: str, b: str) -> int:
            d = 0
            while d < len(partitions) and any(a in g and b in g for g in partitions[d]):
                d += 1
            return d

        if self.encoding_for(len(names)) == "trunk":
            tree = {f"trunk[{t}]": max(depth(t, u) for u in names if u != t) for t in names}
        else:
            tree = {"share[{}~{}]".format(*pair(a, b)): depth(a, b) for a, b in itertools.combinations(names, 2)}
        if not all(share.can_be(v) for v in tree.values()):
            return None
        params.update(tree)
        reader = ParamsTrial(params)
        try:
            built = _sampling.build(self, Picker(reader), tasks, input_shape).graph.partitions()
        except SpaceError:
            return None
        want = [{frozenset(g) for g in part} for part in partitions]
        if [{frozenset(g) for g in part} for part in built] != want:
            return None
        return params if base is None else dict(reader.used)

    def reference_names(self) -> list[str]:
        """The reference architectures this space can express, in :data:`~sharesearch.names.REFERENCES` order."""
        return _references.reference_names(self)

    def reference_graph(self, name: str, tasks: Tasks, input_shape: Sequence[int]) -> SharingGraph:
        """The constructor's graph that :meth:`reference_params` reproduces.

        >>> from sharesearch.space import load_space
        >>> space = load_space("tiny")
        >>> p = space.reference_params("l2-soft", {"a": 1, "b": 1})
        >>> space.sample(ParamsTrial(p), {"a": 1, "b": 1}, (3,)).graph == space.reference_graph(
        ...     "l2-soft", {"a": 1, "b": 1}, (3,))
        True
        """
        return _references.reference_graph(self, name, tasks, input_shape)

    # ---------------------------------------------------------- baselines
    def sample_baseline(self, trial: Any, tasks: Tasks, input_shape: Sequence[int]) -> Candidate:
        """Sample a tuning trial of the independent single-task baselines.

        The graph is :meth:`SharingGraph.independent` on the default backbone
        with its widths times ``baseline_width_mult``; ``baseline_lr``,
        ``baseline_weight_decay`` and ``baseline_batch_size`` are sampled
        (the candidates' own ranges unless ``[baseline]`` gives others). The
        budget is the candidates': the ``[train]`` budget keys (``max_steps``,
        ``eval_every``, ``patience``, ``lr_schedule``, ...) are copied, and a
        space that gives epochs uses their maximum (``budget = "max"``) or
        default. Task sampling is the ``[train]`` default and weighting is
        ``equal`` (the networks share nothing).

        >>> from sharesearch.space import load_space
        >>> t = ParamsTrial({"baseline_width_mult": 0.5, "baseline_lr": 1e-3, "baseline_batch_size": 32})
        >>> c = load_space("tiny").sample_baseline(t, {"a": 1}, (4,))
        >>> c.graph.backbone.widths, c.train["max_steps"], c.train["patience"], c.train["batch_size"]
        ((16, 16), 60, 3, 32)
        """
        return _sampling.baseline(self, Picker(trial), tasks, input_shape)

    def baseline_default_params(self) -> dict[str, Any]:
        """Parameters of the baseline trial with every baseline field at its default."""
        pick = Picker(prefs={})
        _sampling.baseline(self, pick, {"t0": 1}, (1, 4, 4) if self.backbone_name == "cnn" else (1,))
        return pick.params

"""Declarative search-space files and define-by-run sampling of candidates.

A *search space* says which multi-task architectures (sharing graphs) and
training hyper-parameters a study may try. It is a TOML file (YAML is
accepted too) that is read as data -- never evaluated -- and validated
against a fixed schema; :meth:`SearchSpace.sample` turns one Optuna trial
into a :class:`Candidate` ``(graph, train)``. This module never imports
Optuna: ``trial`` is any object with ``suggest_int``, ``suggest_float`` and
``suggest_categorical`` (an ``optuna.trial.Trial``, ``optuna.trial.FixedTrial``,
or :class:`ParamsTrial`).

File format
-----------
Every field is either **fixed** (a scalar: no parameter is sampled), a
**choice list** (``suggest_categorical``; the first entry is the default,
or write ``{choices = [...], default = ...}``) or a **range**
``{low, high, log = false, step = ..., default = ...}`` (``suggest_int`` for
integer fields, ``suggest_float`` otherwise; the default is ``default`` or the
midpoint -- in log space for ``log = true`` -- rounded onto the step grid).
Prefer ranges where order means something (widths, epochs, rates): TPE then
models them as ordered. Fields marked *off-able* accept ``off = true`` in a
range: a boolean parameter switches the field off (value 0) before the
value is sampled; ``default = 0`` makes "off" the default. An annotated
example (the shipped ``default.toml`` is the full one)::

    name = "example"                    # optional
    description = "what this space is"  # optional

    [backbone]
    name = "mlp"            # "mlp" | "cnn" | "auto" (by input rank: 1 -> mlp, 3 -> cnn); fixed only
    stages = {low = 2, high = 3, default = 3}  # stage count            param: stages
    widths = [64, 64, 32]   # one spec per stage (up to the max stage count); each entry may be
                            # fixed, a choice list or a range          params: width[0], width[1], ...
    # width = {low = 16, high = 64, step = 16}  # or: one spec for every stage (needs `stages`)
    width_mult = {low = 0.5, high = 1.0, default = 1.0}  # x every width  param: width_mult
    dropout = 0.0           # in [0, 1)                                param: dropout
    # kernel = 3            # cnn only, odd                            param: kernel

    [branching]             # the task tree
    share = {low = 0, high = 3}  # leading stages a task pair shares (0..max stages; a scalar fixes
                                 # every pair)                        params: share[a~b]
    encoding = "auto"       # "pairwise" | "trunk" | "auto" (pairwise up to max_pairwise_tasks)
    max_pairwise_tasks = 8  # above this many tasks, auto uses the per-task trunk encoding
    linkage = "average"     # how requests become a tree: "average" | "single"
    affinity = true         # warm start: enqueue the trees of a short affinity pass after the references

    [mechanisms]
    conditioning = ["none", "concat", "film", "gate"]  # of shared blocks  param: conditioning
    l2_lambda = {low = 1e-4, high = 1e-1, log = true, off = true}  # soft sharing λ (off-able)
                                                       #  params: l2_on, l2_lambda
    cross_stitch = [false, true]                       #  param: cross_stitch
    moe_experts = {low = 2, high = 6, default = 4, off = true}  # 0 = no MoE (off-able)
                                                       #  params: moe, moe_experts
    moe_stages = {low = 1, high = 2, default = 1}      # leading stages that are MoE  param: moe_stages
    expert_dropout = {low = 0.0, high = 0.3, default = 0.0}    #  param: expert_dropout

    [train]                 # keys of the trainer's TrainConfig
    lr = {low = 1e-4, high = 3e-2, log = true}                         # param: lr
    weight_decay = {low = 1e-6, high = 1e-3, log = true, off = true}   # weight_decay_on, weight_decay
    max_steps = 3000        # the budget, one for every run (fixed only): optimizer steps,
    eval_every = 50         # validation every 50 steps (each task keeps its best), no early stop
    patience = 0            # (> 0: stop after that many evaluations without any task improving);
    lr_schedule = "cosine"  # constant | cosine | plateau; also min_delta, warmup_steps (fixed only)
    batch_size = {choices = [64, 128, 256], default = 128}             # param: batch_size
    weighting = ["equal", "uncertainty", "dwa", "gradnorm", "pcgrad"]  # param: weighting
    sampling = ["uniform", "proportional"]                             # param: sampling

    [baseline]              # the control: the independent single-task baselines' own tuning
    trials = 12             # tuning trials, each training every task in one pass (fixed only)
    confirm_seeds = 3       # each task's best configurations are retrained with this many seeds...
    confirm_top = 2         # ...its best 2 by one seed; the task keeps the best mean over the seeds
    lr = {low = 1e-4, high = 3e-2, log = true}       # param: baseline_lr
    width_mult = {low = 0.5, high = 1.0, default = 1.0}  # x the default widths  param: baseline_width_mult
    weight_decay = 0.0      # off-able                 params: baseline_weight_decay(_on)
    batch_size = [64, 128, 256]                      # param: baseline_batch_size
    budget = "max"          # only for spaces that give epochs: "max" (the candidates' largest) or "default"

``train.weighting`` accepts every registered weighting method
(:func:`sharesearch.names.weighting_names`; a new one is registered with
:func:`sharesearch.weighting.register_weighting`). Omitted ``[train]`` keys are left out of ``Candidate.train`` (the trainer's
defaults apply); omitted mechanisms are fixed off (conditioning ``none``, no
cross-stitch, λ 0, no MoE); an omitted ``branching.share`` is the range
``0..max stages``; an omitted ``[baseline]`` field reuses the candidates' field
(lr, weight_decay and batch_size of ``[train]``, width_mult of ``[backbone]``;
else 1), and baselines always take the ``[train]`` budget keys. Validation raises
:class:`SpaceError` with one line ``<file>: <dotted.key>: <problem with the
value>`` (e.g. ``tiny.toml: train.lr: low 0.1 > high 0.01``); unknown names
list the valid ones.

Parameters and the task-tree encoding
-------------------------------------
The same parameter names are used in every trial (a parameter keeps one
distribution, so Optuna 5 never sees a categorical's choices change).
Conditional parameters are only suggested when they matter:

* ``stages``, ``width[l]`` (for ``l < stages``), ``width_mult``, ``dropout``, ``kernel``;
* ``share[a~b]`` for each unordered task pair, task names sorted (pairwise encoding) or
  ``trunk[t]`` per task (trunk encoding);
* ``conditioning``; ``cross_stitch``; ``l2_on`` / ``l2_lambda`` (only without cross-stitch:
  the two would join the same pair of blocks); ``moe`` / ``moe_experts`` / ``moe_stages``
  / ``expert_dropout``;
* ``lr``, ``weight_decay_on`` / ``weight_decay``, ``epochs``, ``batch_size``, ``weighting``,
  ``sampling``; baselines: ``baseline_lr``, ``baseline_width_mult``, ``baseline_weight_decay(_on)``,
  ``baseline_batch_size``. The budget keys (``max_steps``, ``eval_every``, ``patience``,
  ``min_delta``, ``lr_schedule``, ``warmup_steps``) are never parameters.

**Pairwise encoding.** ``share[a~b]`` is an integer in ``0..max stages``: how
many leading stages tasks ``a`` and ``b`` should share. An arbitrary matrix of
requests need not be a tree, so it is projected onto one
(:func:`project_share_depths`, which is what
:meth:`SharingGraph.from_share_depths` builds): one hierarchical clustering of
the distances ``L - share`` is cut once per stage, so the partitions are
nested by construction and requests that already form a tree (ultrametrics)
come back unchanged. ``branching.linkage = "average"`` (the default) groups
tasks by their mean request, so one stray pair cannot chain two groups
together; ``"single"`` joins tasks linked by any chain of deep requests (it
only ever *raises* depths, and with random parameters nearly always yields
one trunk, which is why it is not the default).
Why this encoding: each parameter means one thing about two tasks, so TPE's
per-parameter Parzen estimators learn per-pair marginals ("x and y like to
share deep"), and parameter importances rank which task pairs should share;
the ordered int range never changes within a study, so Optuna accepts it and
neighbouring depths are modelled as similar. It takes ``T(T-1)/2``
parameters. **Trunk encoding** (more than ``max_pairwise_tasks`` tasks):
``trunk[t]`` in the same range is how long task ``t`` stays on one common
trunk, and ``share(a, b) = min(trunk[a], trunk[b])`` -- ``T`` parameters, always
a tree, but only "peel-off" trees (one trunk that tasks leave one by one).

Mechanisms apply to the sampled tree: ``conditioning`` to every shared block;
``cross_stitch``/``l2`` between the sibling blocks of every stage; ``moe``
turns shared groups of the first ``moe_stages`` stages into MMoE nodes.
So the reference architectures are points of the space
(:meth:`SearchSpace.reference_params`; :mod:`sharesearch.names` lists them): independent (all shares 0),
shared-bottom (all shares = stages), MMoE (shares = moe_stages, moe on),
cross-stitch and L2 soft sharing (shares 0 plus the mechanism).

Modules
-------
``_fields`` (one field: schema entry, value semantics, parsing), ``_schema``
(the allowed sections and keys, and checks between fields), ``_projection``
(share requests onto a tree), ``_trial`` (:class:`ParamsTrial` and the field
picker), ``_sampling`` (candidates and baselines), ``_references`` (reference
architectures as points of a space), ``_space`` (:class:`SearchSpace`),
``_formats`` (TOML/YAML text) and ``_io`` (loading, the shipped spaces).

Example
-------
>>> space = load_space("tiny")
>>> tasks = {"a": 1, "b": 1, "c": 3}
>>> space.reference_names()
['independent', 'shared-bottom', 'mmoe', 'cross-stitch', 'l2-soft']
>>> params = space.reference_params("shared-bottom", tasks)
>>> params["share[a~b]"], params["moe"]
(2, False)
>>> cand = space.sample(ParamsTrial(params), tasks, (8,))
>>> cand.graph.partitions()[1]
(('a', 'b', 'c'),)
>>> sorted(cand.train)
['batch_size', 'eval_every', 'lr', 'lr_schedule', 'max_steps', 'patience', 'sampling', 'weight_decay', 'weighting']
"""

from __future__ import annotations

from ..names import REFERENCES, SAMPLINGS, WEIGHTINGS
from ._fields import Field, SpaceError
from ._io import copy_space, load_space, shipped_spaces, space_text
from ._projection import project_share_depths
from ._sampling import Candidate
from ._space import SearchSpace
from ._trial import ParamsTrial

__all__ = [
    "SpaceError",
    "Candidate",
    "Field",
    "SearchSpace",
    "ParamsTrial",
    "load_space",
    "shipped_spaces",
    "space_text",
    "copy_space",
    "project_share_depths",
    "WEIGHTINGS",
    "SAMPLINGS",
    "REFERENCES",
]

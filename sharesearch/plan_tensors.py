"""A compiler plan on a device: the index lists of a :class:`~sharesearch.plan.Plan` as tensors.

The records hold, per stage, the plan's rows as ``long`` tensors on the
forward's device plus the flags that pick a fast path (one shared input row,
an identity gather, one batched op). :class:`~sharesearch.network.MultiTaskNet`
builds them once per (tasks asked for, device) and runs its forward from them.

Example
-------
>>> from sharesearch.graph import SharingGraph
>>> from sharesearch.plan import plan_streams
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 2}, {"name": "mlp", "input_shape": [3], "widths": [4, 4]}, 1)
>>> p = plan_streams(g, g.tasks)
>>> run = stage_run(g.backbone, 1, p.stages[1], [0.0] * 3, torch.device("cpu"))
>>> run.banks[0].shared, run.select.tolist(), run.select_identity
(0, [0, 1], True)
>>> [(h.out_dim, h.heads) for h in head_runs(p, [1, 2], torch.device("cpu"))]
[(1, (0,)), (2, (1,))]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .backbones import Backbone
from .plan import BankPlan, Mixture, Plan, StagePlan

__all__ = ["BankRun", "ScaleRun", "MoERun", "StitchRun", "StageRun", "HeadRun", "stage_run", "head_runs"]


@dataclass(frozen=True)
class BankRun:
    """One bank of block applications, ready to run."""

    bank: BankPlan  # the applications
    rows: torch.Tensor  # [A] long: the input stream row of each application
    shared: int | None  # plain bank: the one row every application reads (None when they differ)
    identity: bool  # application a reads row a, for every a: use the input as is
    z: torch.Tensor | None  # [A] long: concat bank: the task whose descriptor widens each input
    batched: bool  # run the applications as one batched op (Backbone.prefers_batched)


@dataclass(frozen=True)
class ScaleRun:
    """The FiLM or gate modulations of one stage, ready to run."""

    nodes: tuple[int, ...]  # the distinct blocks involved (indices in MultiTaskNet.nodes), sorted
    node: torch.Tensor  # [n] long: position in ``nodes`` of each modulation
    app: torch.Tensor  # [n] long: the application row it modulates
    task: torch.Tensor  # [n] long: the task (row of z)


@dataclass(frozen=True)
class MoERun:
    """The mixtures of one stage whose MoE nodes have ``experts`` experts, ready to run."""

    experts: int  # E
    mixtures: tuple[Mixture, ...]  # one per (node, task), in output order
    gate_rows: torch.Tensor  # [n] long: the input row each gate reads
    expert_rows: torch.Tensor  # [n, E] long: the application rows mixed
    nodes: tuple[int, ...]  # the distinct MoE nodes, sorted
    node: torch.Tensor  # [n] long: position in ``nodes`` of each mixture
    p_drop: torch.Tensor  # [G] float: expert dropout of each node in ``nodes``


@dataclass(frozen=True)
class StitchRun:
    """The cross-stitch units of one stage, ready to run."""

    units: tuple[int, ...]  # indices in MultiTaskNet.stitches, block-diagonal order
    rows: torch.Tensor  # [n] long: the output rows they mix, unit after unit
    identity: bool  # they mix every output row in order


@dataclass(frozen=True)
class StageRun:
    """One stage, ready to run."""

    banks: tuple[BankRun, ...]  # the non-empty banks, plain before concat
    select: torch.Tensor | None  # [n_sel] long: application rows copied out; None when there are none
    select_identity: bool  # the copied rows are all applications in order
    film: ScaleRun | None  # FiLM modulations, if any
    gate: ScaleRun | None  # gate modulations, if any
    moe: tuple[MoERun, ...]  # MoE mixtures, one record per number of experts
    stitch: StitchRun | None  # cross-stitch mixing, if any


@dataclass(frozen=True)
class HeadRun:
    """The heads of one output size, ready to run."""

    out_dim: int  # their output size
    heads: tuple[int, ...]  # head (= task) indices
    rows: torch.Tensor  # [n] long: the last stage's row each head reads
    same_row: bool  # they all read one row: one GEMM
    row0: int  # the row the first head reads
    identity: bool  # head j reads row j, for every j


def stage_run(backbone: Backbone, s: int, p: StagePlan, expert_dropout: Sequence[float],
              device: torch.device) -> StageRun:
    """Stage ``s``'s plan ``p`` as tensors on ``device``; ``expert_dropout[i]`` is node ``i``'s."""

    def idx(v):
        return torch.tensor(v, dtype=torch.long, device=device)

    banks = []
    for name, bank in (("plain", p.plain), ("concat", p.concat)):
        if bank.apps:
            rows = list(bank.in_rows)
            banks.append(BankRun(bank, idx(rows), rows[0] if len(set(rows)) == 1 and name == "plain" else None,
                                 rows == list(range(p.n_in)), idx(bank.z_rows) if bank.z_rows else None,
                                 backbone.prefers_batched(s, len(bank.apps))))
    n_apps = len(p.plain.apps) + len(p.concat.apps)

    def scale(entries) -> ScaleRun | None:
        if not entries:
            return None
        nodes = tuple(sorted({e.node for e in entries}))
        return ScaleRun(nodes, idx([nodes.index(e.node) for e in entries]), idx([e.app for e in entries]),
                        idx([e.task for e in entries]))

    by_experts: dict[int, list[Mixture]] = {}
    for mix in p.moe:
        by_experts.setdefault(len(mix.expert_apps), []).append(mix)
    moe = []
    for E, mixes in by_experts.items():
        nodes = tuple(sorted({m.node for m in mixes}))
        moe.append(MoERun(E, tuple(mixes), idx([m.gate_row for m in mixes]), idx([m.expert_apps for m in mixes]),
                          nodes, idx([nodes.index(m.node) for m in mixes]),
                          torch.tensor([expert_dropout[m] for m in nodes], device=device)))
    stitch = None
    if p.stitch:
        rows = [r for mix in p.stitch for r in mix.rows]
        stitch = StitchRun(tuple(mix.unit for mix in p.stitch), idx(rows), rows == list(range(p.n_out)))
    return StageRun(tuple(banks), idx(list(p.select)) if p.select else None,
                    list(p.select) == list(range(n_apps)), scale(p.film), scale(p.gate), tuple(moe), stitch)



def head_runs(plan: Plan, out_dims: Sequence[int], device: torch.device) -> tuple[HeadRun, ...]:
    """The heads of ``plan`` grouped by output size (``out_dims[i]``: head ``i``'s)."""
    by_dim: dict[int, list] = {}
    for h in plan.heads:
        by_dim.setdefault(out_dims[h.head], []).append(h)
    n_last = plan.stages[-1].n_out
    return tuple(HeadRun(od, tuple(h.head for h in hs), torch.tensor([h.row for h in hs], device=device),
                         len({h.row for h in hs}) == 1, hs[0].row, [h.row for h in hs] == list(range(n_last)))
                    for od, hs in by_dim.items())

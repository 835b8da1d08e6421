"""Compile a :class:`~sharesearch.graph.SharingGraph` into a ``torch.nn.Module``.

Streams
-------
Activations travel stage to stage as one *stream tensor* ``[S, B, *features]``
(``S`` streams). A node keeps one stream while its tasks see the same
activation and one stream per task once conditioning, an MMoE gate or a
cross-stitch makes them differ -- the model of ``SharingGraph.flops``. Each
stage then runs as:

1. every *application* of a block (block ``x`` input stream, or expert ``x``
   input stream) is computed together by the backbone's batched stage op
   (``Backbone.run_blocks``: stacked weights + ``torch.baddbmm`` for the MLP,
   a grouped convolution for the CNN, or a loop where measurement says a loop
   is faster, see ``Backbone.prefers_batched``): the pre-activations;
2. the stage's output streams are gathered from those results: plain blocks
   copy them activated, ``film`` blocks scale and shift the pre-activation per
   task before activating it (Perez et al., AAAI 2018), ``gate`` blocks scale
   the activated output per task, MoE nodes mix their activated experts with
   one softmax gate per task (Ma et al., KDD 2018);
3. cross-stitch units mix the per-task streams of each stitched group with a
   learned matrix (Misra et al., CVPR 2016), all groups in one block-diagonal
   matmul.

Soft sharing adds ``lam * ||theta_a - theta_b||^2`` per ``l2`` edge through
:meth:`MultiTaskNet.penalty` (Duong et al., ACL 2015).

When only some tasks are asked for, the compiler plans the stages backwards
from their heads (:func:`sharesearch.plan.plan_streams`, typed records) and
computes only the nodes, streams and gates they need.

Example
-------
>>> import torch
>>> from sharesearch.graph import SharingGraph
>>> g = SharingGraph.shared_bottom({"a": 1, "b": 3},
...     {"name": "mlp", "input_shape": [4], "widths": [8, 8]}, shared_stages=1)
>>> net = compile_graph(g, seed=0)
>>> out = net(torch.randn(5, 4))
>>> {t: tuple(y.shape) for t, y in out.items()}
{'a': (5, 1), 'b': (5, 3)}
>>> sum(p.numel() for p in net.parameters()) == g.n_params()
True
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Block, CrossStitch, Head, MoEBlock
from .graph import SharingGraph
from .plan import BankPlan, Owner, block_nodes, plan_streams, stitch_units
from .plan_tensors import HeadRun, MoERun, StageRun, head_runs, stage_run

__all__ = ["compile_graph", "MultiTaskNet"]


def compile_graph(graph: SharingGraph, seed: int | None = None) -> "MultiTaskNet":
    """Build the PyTorch network a sharing graph describes.

    Parameters
    ----------
    graph : SharingGraph
        A validated graph.
    seed : int, optional
        Seeds a local ``torch.Generator`` used for every initial value (the
        global RNG is left alone); the same seed gives the same parameters.
        ``None`` draws a seed from the global RNG.

    Returns
    -------
    MultiTaskNet

    Examples
    --------
    >>> from sharesearch.graph import SharingGraph
    >>> g = SharingGraph.mmoe({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [4], "widths": [8]}, experts=3)
    >>> net = compile_graph(g, seed=1)
    >>> net.gate_values(torch.randn(16, 4))["s0:a+b"].shape
    torch.Size([2, 3])
    """
    return MultiTaskNet(graph, seed=seed)


def _node_generator(seed: int, node_id: str) -> torch.Generator:
    """A generator for one node's initial values, seeded by (seed, canonical node id).

    Seeding per node rather than drawing every node from one stream makes a
    node's initial weights independent of which other nodes the graph has:
    task ``a``'s network in the independent graph of T tasks starts exactly
    where the single-task network of ``a`` starts, which is what makes the
    one-pass baselines equal to separate runs.
    """
    digest = hashlib.sha256(f"{seed}:{node_id}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


class MultiTaskNet(nn.Module):
    """A compiled sharing graph; build it with :func:`compile_graph`.

    Attributes
    ----------
    graph : SharingGraph
        The graph this network was compiled from.
    nodes : nn.ModuleList
        One :class:`~sharesearch.blocks.Block` or :class:`~sharesearch.blocks.MoEBlock`
        per block/MoE node, stage by stage (``node_ids`` names them).
    stitches : nn.ModuleList
        One :class:`~sharesearch.blocks.CrossStitch` per (stage, stitch component).
    heads : nn.ModuleList
        One :class:`~sharesearch.blocks.Head` per task, in task order.
    z : Tensor
        Buffer ``[T, z_dim]``: the task descriptors (``graph.task_embedding()``).
    """

    def __init__(self, graph: SharingGraph, seed: int | None = None) -> None:
        super().__init__()
        self.graph = graph
        g, bb = graph.g, graph.backbone
        self.backbone = bb
        self.tasks = graph.tasks
        self._tix = {t: i for i, t in enumerate(self.tasks)}
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        gen = lambda name: _node_generator(int(seed), name)  # noqa: E731
        self.register_buffer("z", torch.tensor(graph.task_embedding(), dtype=torch.float32))  # [T, z_dim]

        self.node_ids: list[str] = block_nodes(graph)
        self.nodes = nn.ModuleList()
        self._mod: dict[str, int] = {n: i for i, n in enumerate(self.node_ids)}
        for n in self.node_ids:
            d = g.nodes[n]
            if d["kind"] == "moe":
                self.nodes.append(MoEBlock(bb, d["stage"], len(d["tasks"]), d["experts"],
                                           d.get("expert_dropout", 0.0), gen(n)))
            else:
                self.nodes.append(Block(bb, d["stage"], d.get("conditioning", "none"), graph.z_dim, gen(n)))
        units = stitch_units(graph)
        self.stitch_names: list[str] = [u.key for u in units]  # sharesearch.plan.stitch_key of each unit
        self.stitches = nn.ModuleList([CrossStitch(len(u.tasks)) for u in units])
        self.heads = nn.ModuleList([Head(bb.head_in, g.nodes[graph.head(t)]["out_dim"], gen(graph.head(t)))
                                    for t in self.tasks])
        self._l2 = [(d["lam"], self._mod[u], self._mod[v]) for u, v, d in graph.soft_edges("l2")]
        # the same modules as plain tuples for the forward: indexing an nn.ModuleList costs ~2 us a call
        self._node_mods, self._head_mods = tuple(self.nodes), tuple(self.heads)
        self._stitch_mods = tuple(self.stitches)
        # (tasks, device) -> the stages, the heads grouped by output size, whether that grouping is task order
        self._runs: dict[tuple[tuple[str, ...], torch.device],
                         tuple[tuple[StageRun, ...], tuple[HeadRun, ...], bool]] = {}
        self._owners = plan_streams(graph, self.tasks).owners  # task -> owners its output depends on

    # ------------------------------------------------------------ planning
    def _device_plan(self, tasks: tuple[str, ...], device: torch.device):
        """The :func:`~sharesearch.plan.plan_streams` plan of ``tasks`` as index tensors on ``device`` (cached;
        an unknown task raises ``KeyError`` before anything is cached)."""
        key = (tasks, device)
        if key not in self._runs:
            for t in tasks:
                if t not in self._tix:
                    raise KeyError(f"unknown task {t!r}; tasks are {list(self.tasks)}")
            plan = plan_streams(self.graph, tasks)
            dropout = [getattr(m, "expert_dropout", 0.0) for m in self.nodes]
            stages = tuple(stage_run(self.backbone, s, p, dropout, device) for s, p in enumerate(plan.stages))
            out_dims = [int(h.bias.shape[0]) for h in self.heads]
            heads = head_runs(plan, out_dims, device)
            in_order = [i for hr in heads for i in hr.heads] == [self._tix[t] for t in tasks]
            self._runs[key] = (stages, heads, in_order)
        return self._runs[key]

    # ------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, tasks=None, _record: dict | None = None) -> dict[str, torch.Tensor]:
        """Outputs ``{task: Tensor[B, out_dim]}`` for ``tasks`` (default: all).

        ``x`` is ``[B, *input_shape]``. Only the nodes the asked tasks need run.
        """
        if tasks is None:
            tasks = self.tasks
        elif isinstance(tasks, str):
            tasks = (tasks,)
        tasks = tuple(tasks)
        stages, heads, in_order = self._device_plan(tasks, x.device)  # checks task names once per (tasks, device)
        bb, B = self.backbone, x.shape[0]
        X = x[None]  # [1, B, *in]: the input is one stream
        for run in stages:
            X = self._stage(run, X, B, _record)  # [S, B, *features]
        out: dict[str, torch.Tensor] = {}
        mods = self._head_mods
        for hr in heads:
            W = [mods[i].weight for i in hr.heads]
            b = [mods[i].bias for i in hr.heads]
            if len(W) == 1:  # one head of this size: its own GEMM, no concatenated copy of its weights
                h = bb.pool(X.squeeze(0) if X.shape[0] == 1 else X[hr.row0])  # [B, head_in]
                ys = (F.linear(h, W[0], b[0]),)  # 1 x [B, od]
            elif hr.same_row:  # all heads read one stream: one GEMM, split by columns (a view each)
                h = bb.pool(X.squeeze(0) if X.shape[0] == 1 else X[hr.row0])  # [B, head_in]
                ys = F.linear(h, torch.cat(W), torch.cat(b)).split(hr.out_dim, dim=1)  # n x [B, od]
            else:
                h = bb.pool(X if hr.identity else X.index_select(0, hr.rows))  # [n, B, head_in]
                y = torch.baddbmm(torch.stack(b)[:, None, :], h, torch.stack(W).transpose(1, 2))  # [n, B, od]
                ys = y.unbind(0)  # n x [B, od]
            for i, yi in zip(hr.heads, ys):
                out[self.tasks[i]] = yi  # [B, od]
        return out if in_order else {t: out[t] for t in tasks}

    def _weights(self, bank: BankPlan):
        W, b, experts, mods = [], [], {}, self._node_mods
        for m, e in bank.apps:
            mod = mods[m]
            if e < 0:
                W.append(mod.weight)
                b.append(mod.bias)
            else:  # unbind once per MoE node: one backward node instead of E full-size zero fills
                if m not in experts:
                    experts[m] = (mod.weight.unbind(0), mod.bias.unbind(0))
                W.append(experts[m][0][e])
                b.append(experts[m][1][e])
        return W, b

    def _stage(self, run: StageRun, X: torch.Tensor, B: int, record) -> torch.Tensor:
        """One stage: ``X [S_in, B, *in]`` -> ``[S_out, B, *out']``.

        FiLM modulates the pre-activation, ``act((1 + gamma) * (W x + b) + beta)``
        (Perez et al. 2018); gates multiply the activated output; MoE mixes the
        activated experts.
        """
        bb = self.backbone
        ys = []
        for br in run.banks:
            W, b = self._weights(br.bank)
            shared = br.shared is not None and not br.identity
            if shared:
                # one stream: a view, whose backward is a view too (X[0]'s fills zeros, then copies)
                xin = X.squeeze(0) if X.shape[0] == 1 else X[br.shared]  # [B, *in]
            elif br.identity:
                xin = X  # [A, B, *in]
            else:
                xin = X.index_select(0, br.rows)  # [A, B, *in]
            if br.z is not None:  # concat: the task descriptor widens the input
                A = len(br.bank.apps)
                zb = bb.channel_view(self.z.index_select(0, br.z))  # [A, 1, z_dim(, 1, 1)]
                zb = zb.expand(A, B, zb.shape[2], *xin.shape[3:]).to(xin.dtype)  # [A, B, z_dim, *spatial]
                xin = torch.cat([xin, zb], dim=2)  # [A, B, in + z_dim, *spatial]
            ys.append(bb.run_blocks(xin, W, b, batched=br.batched, shared_input=shared))  # [A, B, *out]
        P = ys[0] if len(ys) == 1 else torch.cat([y.to(ys[0].dtype) for y in ys])  # [A_all, B, *out] pre-activation
        needs_act = run.select is not None or run.gate is not None or bool(run.moe)
        Y = bb.activate(P, self.training) if needs_act else None  # [A_all, B, *out']
        outs = []
        if run.select is not None:
            outs.append(Y if run.select_identity else Y.index_select(0, run.select))  # [n_sel, B, *out']
        if run.film is not None:  # tiny per-node affine maps of z, then one batched scale-and-shift
            fr = run.film
            fl = [self._node_mods[m].film(self.z) for m in fr.nodes]  # G x ([T, width], [T, width])
            gamma = torch.stack([g for g, _ in fl])[fr.node, fr.task].to(P.dtype)  # [n, width]
            beta = torch.stack([b for _, b in fl])[fr.node, fr.task].to(P.dtype)  # [n, width]
            pre = P.index_select(0, fr.app)  # [n, B, *out]
            mod = torch.addcmul(bb.channel_view(beta), pre, 1 + bb.channel_view(gamma))  # [n, B, *out]
            outs.append(bb.activate(mod, self.training))  # [n, B, *out']
        if run.gate is not None:
            gr = run.gate
            gv = torch.stack([self._node_mods[m].gate(self.z) for m in gr.nodes])  # [G, T, width]
            outs.append(Y.index_select(0, gr.app) * bb.channel_view(gv[gr.node, gr.task].to(Y.dtype)))  # [n, B, *out']
        for mr in run.moe:
            outs.append(self._moe(Y, X, mr, record))  # [n, B, *out']
        O = outs[0] if len(outs) == 1 else torch.cat([o.to(outs[0].dtype) for o in outs])  # [S_out, B, *out']
        if run.stitch is not None:
            sr = run.stitch
            M = torch.block_diag(*[self._stitch_mods[m].alpha for m in sr.units])  # [n, n]
            xs = O if sr.identity else O.index_select(0, sr.rows)  # [n, B, *out']
            mixed = (M.to(xs.dtype) @ xs.flatten(1)).view_as(xs)  # [n, B, *out']
            O = mixed if sr.identity else O.index_copy(0, sr.rows, mixed.to(O.dtype))
        return O

    def _moe(self, Y: torch.Tensor, X: torch.Tensor, mr: MoERun, record) -> torch.Tensor:
        """Per-task softmax gates over the experts, expert dropout, mixture: ``[n, B, *out']``."""
        bb, E = self.backbone, mr.experts
        n, B = len(mr.mixtures), Y.shape[1]
        Wg = torch.stack([self._node_mods[m.node].gate_weights[m.local] for m in mr.mixtures])  # [n, E, in]
        bg = torch.stack([self._node_mods[m.node].gate_biases[m.local] for m in mr.mixtures])  # [n, E]
        xg = bb.pool(X.index_select(0, mr.gate_rows))  # [n, B, in]
        probs = torch.baddbmm(bg[:, None, :], xg, Wg.transpose(1, 2)).float().softmax(-1)  # [n, B, E]
        if record is not None:
            for j, m in enumerate(mr.mixtures):
                record.setdefault(m.node, {})[m.local] = probs[j].mean(0)  # [E]
        if self.training and bool((mr.p_drop > 0).any()):
            G = len(mr.nodes)
            keep = torch.rand(G, B, E, device=Y.device) >= mr.p_drop[:, None, None]  # [G, B, E]
            pick = F.one_hot(torch.randint(E, (G, B), device=Y.device), E).bool()  # [G, B, E]
            keep = keep | (pick & ~keep.any(-1, keepdim=True))  # never drop every expert
            probs = probs * keep[mr.node]  # [n, B, E]
            probs = probs / probs.sum(-1, keepdim=True)
        ye = Y.index_select(0, mr.expert_rows.flatten()).view(n, E, B, -1)  # [n, E, B, F]
        mix = torch.einsum("nbe,nebf->nbf", probs.to(ye.dtype), ye)  # [n, B, F]
        return mix.view(n, B, *Y.shape[2:])  # [n, B, *out']

    # --------------------------------------------------------------- extras
    def penalty(self) -> torch.Tensor:
        """Soft-sharing loss ``sum_edges lam * ||theta_a - theta_b||^2`` (Duong et al., ACL 2015).

        Sums over every parameter of the two blocks of each ``l2`` edge (their
        shapes match: an l2 edge joins blocks of one stage and conditioning).

        >>> from sharesearch.graph import SharingGraph
        >>> g = SharingGraph.l2_soft({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [3]}, lam=0.5)
        >>> net = compile_graph(g, seed=0)
        >>> a, b = net.nodes
        >>> d = sum(((pa - pb) ** 2).sum() for pa, pb in zip(a.parameters(), b.parameters()))
        >>> torch.allclose(net.penalty(), 0.5 * d)
        True
        """
        total = self.z.new_zeros(())
        groups: dict[tuple, list] = defaultdict(list)
        for lam, a, b in self._l2:
            mod = self.nodes[a]
            groups[(mod.stage, mod.conditioning)].append((lam, a, b))
        for edges in groups.values():  # one batched difference per (stage, conditioning)
            mods = sorted({m for _, a, b in edges for m in (a, b)})
            ia = torch.tensor([mods.index(a) for _, a, _ in edges], device=self.z.device)
            ib = torch.tensor([mods.index(b) for _, _, b in edges], device=self.z.device)
            lam = torch.tensor([e[0] for e in edges], device=self.z.device)  # [n_edges]
            for name, _ in self.nodes[mods[0]].named_parameters():
                P = torch.stack([getattr(self.nodes[m], name) for m in mods])  # [G, *shape]
                d2 = (P[ia] - P[ib]).pow(2).flatten(1).sum(1)  # [n_edges]
                total = total + (lam * d2).sum()
        return total

    @torch.no_grad()
    def stitch_weights(self) -> dict[str, torch.Tensor]:
        """Current cross-stitch matrices, ``{"stage<l>:<task>+<task>...": Tensor[n, n]}``.

        >>> from sharesearch.graph import SharingGraph
        >>> g = SharingGraph.cross_stitch({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [3]})
        >>> compile_graph(g, seed=0).stitch_weights()["stage0:a+b"]
        tensor([[0.9000, 0.1000],
                [0.1000, 0.9000]])
        """
        return {name: mod.alpha.detach().clone() for name, mod in zip(self.stitch_names, self.stitches)}

    @torch.no_grad()
    def gate_values(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean softmax gate weight per task and expert over the batch ``x``.

        Returns ``{moe node id: Tensor[n_tasks_of_node, E]}`` (rows in the
        node's task order, each summing to 1), computed in eval mode without grad.
        """
        was = self.training
        self.eval()
        try:
            record: dict = {}
            self.forward(x, _record=record)
        finally:
            self.train(was)
        return {self.node_ids[m]: torch.stack([rows[i] for i in sorted(rows)]) for m, rows in record.items()}

    def _owner_params(self, owner: Owner) -> list[nn.Parameter]:
        if owner.kind == "node":
            mod = self.nodes[owner.index]
            if isinstance(mod, MoEBlock):
                return [mod.weight, mod.bias]
            return list(mod.parameters())
        if owner.kind == "gate":
            mod = self.nodes[owner.index]
            return [mod.gate_weights[owner.local], mod.gate_biases[owner.local]]
        if owner.kind == "stitch":
            return [self.stitches[owner.index].alpha]
        return list(self.heads[owner.index].parameters())

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that influence ``task``'s output (its path, gates, stitches, head),
        in the order of ``parameters()``.

        >>> from sharesearch.graph import SharingGraph
        >>> g = SharingGraph.independent({"a": 1, "b": 1}, {"name": "mlp", "input_shape": [2], "widths": [3]})
        >>> net = compile_graph(g, seed=0)
        >>> [p.numel() for p in net.task_parameters("a")]   # block weight, bias; head weight, bias
        [6, 3, 3, 1]
        """
        ids = {id(prm) for owner in self._owners[task] for prm in self._owner_params(owner)}
        return [prm for prm in self.parameters() if id(prm) in ids]

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that influence more than one task's output (order of ``parameters()``)."""
        count: dict[int, int] = defaultdict(int)
        for t in self.tasks:
            for prm in self.task_parameters(t):
                count[id(prm)] += 1
        return [prm for prm in self.parameters() if count[id(prm)] > 1]

    def last_shared_parameters(self) -> dict[tuple[str, ...], list[nn.Parameter]]:
        """The last shared layer of every group of tasks that shares a block (for GradNorm, Chen et al. 2018).

        For each group of two or more tasks that some block or MoE node serves,
        the layer parameters (``weight``, ``bias``; an MoE node's experts) of
        the deepest such node, keyed by the group's sorted task names, groups in
        the order of their first stage. FiLM/gate parameters and MoE gates are
        left out: they condition the layer, they are not it. Graphs whose blocks
        all serve one task (independent, L2 soft sharing, cross-stitch) give ``{}``.

        >>> from sharesearch.graph import SharingGraph
        >>> g = SharingGraph.branched({"a": 1, "b": 1, "c": 1},
        ...     {"name": "mlp", "input_shape": [2], "widths": [3, 4, 5]}, ["a,b,c", "a,b|c"])
        >>> {k: [tuple(p.shape) for p in v] for k, v in compile_graph(g, seed=0).last_shared_parameters().items()}
        {('a', 'b', 'c'): [(3, 2), (3,)], ('a', 'b'): [(4, 3), (4,)]}
        """
        out: dict[tuple[str, ...], list[nn.Parameter]] = {}
        for n, mod in zip(self.node_ids, self.nodes):  # stage by stage: a later node of a group replaces it
            tasks = self.graph.g.nodes[n]["tasks"]
            if len(tasks) > 1:
                out[tuple(sorted(tasks))] = [mod.weight, mod.bias]
        return out

    def extra_repr(self) -> str:
        return f"tasks={list(self.tasks)}, key={self.graph.key()!r}"

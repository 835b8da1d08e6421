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
   is faster, see ``Backbone.prefers_batched``) and activated;
2. the stage's output streams are gathered from those results: plain blocks
   copy them, ``film``/``gate`` blocks scale them per task (Perez et al., AAAI
   2018), MoE nodes mix their experts with one softmax gate per task (Ma et al.,
   KDD 2018);
3. cross-stitch units mix the per-task streams of each stitched group with a
   learned matrix (Misra et al., CVPR 2016), all groups in one block-diagonal
   matmul.

Soft sharing adds ``lam * ||theta_a - theta_b||^2`` per ``l2`` edge through
:meth:`MultiTaskNet.penalty` (Duong et al., ACL 2015).

When only some tasks are asked for, the compiler plans the stages backwards
from their heads and computes only the nodes, streams and gates they need.

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
from dataclasses import dataclass, field

import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Block, CrossStitch, Head, MoEBlock
from .graph import SharingGraph

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


# ----------------------------------------------------------------- stage plans
@dataclass
class _Bank:
    """Block applications sharing one input width (``concat`` blocks are wider)."""

    apps: list[tuple[int, int]] = field(default_factory=list)  # (node module index, expert or -1)
    in_rows: list[int] = field(default_factory=list)  # input stream row of each application
    z_rows: list[int] = field(default_factory=list)  # task index per application (concat bank only)


@dataclass
class _Stage:
    plain: _Bank = field(default_factory=_Bank)
    concat: _Bank = field(default_factory=_Bank)
    select: list[int] = field(default_factory=list)  # application rows copied to output streams
    film: list[tuple[int, int, int]] = field(default_factory=list)  # (module, application row, task index)
    gate: list[tuple[int, int, int]] = field(default_factory=list)
    moe: dict[int, list[tuple[int, int, int, list[int]]]] = field(default_factory=dict)
    # ^ experts E -> [(module, local task, gate input row, expert application rows [E])]
    stitch: list[tuple[int, list[int]]] = field(default_factory=list)  # (stitch module, output rows)
    n_in: int = 1
    n_out: int = 0
    t: dict = field(default_factory=dict)  # the index tensors above, on the forward's device


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

        self.node_ids: list[str] = []
        self.nodes = nn.ModuleList()
        self._mod: dict[str, int] = {}
        for s in range(graph.n_stages):
            for n in graph.nodes_at(s):
                d = g.nodes[n]
                self._mod[n] = len(self.nodes)
                self.node_ids.append(n)
                if d["kind"] == "moe":
                    self.nodes.append(MoEBlock(bb, s, len(d["tasks"]), d["experts"], d.get("expert_dropout", 0.0),
                                               gen(n)))
                else:
                    self.nodes.append(Block(bb, s, d.get("conditioning", "none"), graph.z_dim, gen(n)))
        # stitch components per stage, tasks in task order (graph.stitch_components() is in stage order)
        self._stitch_at: dict[int, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
        self.stitch_names: list[str] = []
        self.stitches = nn.ModuleList()
        comps = iter(graph.stitch_components())
        for s in range(graph.n_stages):
            edges = [(u, v) for u, v, _ in graph.soft_edges("stitch") if g.nodes[u]["stage"] == s]
            for _ in nx.connected_components(nx.Graph(edges)):
                comp = next(comps)
                self._stitch_at[s].append((len(self.stitches), comp))
                self.stitch_names.append(f"stage{s}:" + "+".join(comp))
                self.stitches.append(CrossStitch(len(comp)))
        self.heads = nn.ModuleList([Head(bb.head_in, g.nodes[graph.head(t)]["out_dim"], gen(graph.head(t)))
                                    for t in self.tasks])

        # the stream model, shared with SharingGraph.flops
        self._k_in = graph._streams_in()
        stitched = {n for u, v, _ in graph.soft_edges("stitch") for n in (u, v)}
        self._per_task_out = {n: self._k_in[n] > 1 or n in stitched for n in self._k_in}
        self._l2 = [(d["lam"], self._mod[u], self._mod[v]) for u, v, d in graph.soft_edges("l2")]
        self._plans: dict = {}
        self._owners = self._trace()

    # ------------------------------------------------------------ planning
    def _plan(self, tasks: tuple[str, ...], owners: bool = False):
        """Stage plans computing only what ``tasks`` need (backwards from their heads).

        With ``owners`` also returns, per task, the set of parameter owners its
        output depends on (used by :meth:`task_parameters`).
        """
        graph, g = self.graph, self.graph.g
        L = graph.n_stages
        need, active = set(tasks), [set() for _ in range(L)]
        for s in reversed(range(L)):
            for _, comp in self._stitch_at[s]:
                if need & set(comp):
                    need |= set(comp)
            active[s] = set(need)
        rows_in = {t: 0 for t in self.tasks}  # the input is one stream
        own_in: list[frozenset] = [frozenset()]
        plans = []
        for s in range(L):
            p = _Stage(n_in=len(own_in))
            own = {"plain": [], "concat": []}  # owners of each block application, per bank
            sel: list[tuple[str, int, list[str]]] = []  # (bank, application, tasks served) per select row
            per_task: dict[str, list[tuple[str, frozenset]]] = {"film": [], "gate": [], "moe": []}
            for n in graph.nodes_at(s):
                d, m = g.nodes[n], self._mod[n]
                act = [t for t in d["tasks"] if t in active[s]]
                if not act:
                    continue
                streams = [rows_in[act[0]]] if self._k_in[n] == 1 else [rows_in[t] for t in act]
                cond = d.get("conditioning", "none") if d["kind"] == "block" else "moe"
                bank = p.concat if cond == "concat" else p.plain
                bown = own["concat" if cond == "concat" else "plain"]
                first = len(bank.apps)
                if cond == "moe":  # every expert on every input stream
                    E = d["experts"]
                    for r in streams:
                        for e in range(E):
                            bank.apps.append((m, e))
                            bank.in_rows.append(r)
                            bown.append(own_in[r] | {("node", m)})
                    for j, t in enumerate(act):
                        a = first + (0 if len(streams) == 1 else j) * E
                        li = d["tasks"].index(t)
                        p.moe.setdefault(E, []).append((m, li, rows_in[t], list(range(a, a + E))))
                        per_task["moe"].append((t, frozenset().union(*bown[a:a + E]) | {("gate", m, li)}))
                    continue
                if cond == "concat":  # input differs per task: one application per task
                    streams = [streams[0]] * len(act) if len(streams) == 1 else streams
                    p.concat.z_rows.extend(self._tix[t] for t in act)
                for r in streams:
                    bank.apps.append((m, -1))
                    bank.in_rows.append(r)
                    bown.append(own_in[r] | {("node", m)})
                if len(streams) == 1 and not self._per_task_out[n] and cond in ("none", "concat"):
                    sel.append(("plain" if cond == "none" else "concat", first, act))  # one stream for all
                    continue
                for j, t in enumerate(act):
                    a = first + (0 if len(streams) == 1 else j)
                    if cond in ("film", "gate"):
                        getattr(p, cond).append((m, a, self._tix[t]))
                        per_task[cond].append((t, bown[a]))
                    else:
                        sel.append(("plain" if cond == "none" else "concat", a, [t]))
            # concat applications follow the plain ones in the activated stack
            n_plain = len(p.plain.apps)
            rows_out: dict[str, int] = {}
            new_own: list[frozenset] = []
            for bank_name, a, ts in sel:
                p.select.append(a if bank_name == "plain" else n_plain + a)
                for t in ts:
                    rows_out[t] = len(new_own)
                new_own.append(own[bank_name][a])
            for kind in ("film", "gate", "moe"):
                for t, o in per_task[kind]:
                    rows_out[t] = len(new_own)
                    new_own.append(o)
            row = len(new_own)
            for mi, comp in self._stitch_at[s]:
                if comp[0] in active[s]:
                    rows = [rows_out[t] for t in comp]
                    p.stitch.append((mi, rows))
                    mixed = frozenset().union(*(new_own[r] for r in rows)) | {("stitch", mi)}
                    for r in rows:
                        new_own[r] = mixed
            p.n_out = row
            plans.append(p)
            rows_in, own_in = rows_out, new_own
        heads: dict[int, list[tuple[int, int]]] = {}
        for t in tasks:
            i = self._tix[t]
            heads.setdefault(self.heads[i].bias.shape[0], []).append((i, rows_in[t]))
        if owners:
            return {t: own_in[rows_in[t]] | {("head", self._tix[t])} for t in tasks}
        return plans, heads

    def _get_plan(self, tasks: tuple[str, ...], device: torch.device):
        key = (tasks, str(device))
        if key not in self._plans:
            plans, heads = self._plan(tasks)
            bb = self.backbone

            def idx(v):
                return torch.tensor(v, dtype=torch.long, device=device)

            for s, p in enumerate(plans):
                for name in ("plain", "concat"):
                    bank = getattr(p, name)
                    if bank.apps:
                        A, rows = len(bank.apps), bank.in_rows
                        p.t[name] = {
                            "in": idx(rows),
                            "shared": rows[0] if len(set(rows)) == 1 and name == "plain" else None,
                            "identity": rows == list(range(p.n_in)),
                            "z": idx(bank.z_rows) if bank.z_rows else None,
                            "batched": bb.prefers_batched(s, A),
                        }
                n_apps = len(p.plain.apps) + len(p.concat.apps)
                p.t["select"] = idx(p.select)
                p.t["select_identity"] = p.select == list(range(n_apps))
                for kind in ("film", "gate"):
                    if getattr(p, kind):
                        mods = sorted({m for m, _, _ in getattr(p, kind)})
                        p.t[kind] = (mods, idx([mods.index(m) for m, _, _ in getattr(p, kind)]),
                                     idx([a for _, a, _ in getattr(p, kind)]), idx([t for _, _, t in getattr(p, kind)]))
                p.t["moe"] = []
                for E, ents in p.moe.items():
                    mods = sorted({m for m, *_ in ents})
                    p_drop = [self.nodes[m].expert_dropout for m in mods]
                    p.t["moe"].append((E, ents, idx([r for _, _, r, _ in ents]), idx([r for *_, r in ents]),
                                       mods, idx([mods.index(m) for m, *_ in ents]),
                                       torch.tensor(p_drop, device=device)))
                if p.stitch:
                    rows = [r for _, rr in p.stitch for r in rr]
                    p.t["stitch"] = ([m for m, _ in p.stitch], idx(rows), rows == list(range(p.n_out)))
            n_last = plans[-1].n_out
            hplan = [(od, [i for i, _ in ents], idx([r for _, r in ents]), len({r for _, r in ents}) == 1,
                      ents[0][1], [r for _, r in ents] == list(range(n_last))) for od, ents in heads.items()]
            self._plans[key] = (plans, hplan)
        return self._plans[key]

    def _trace(self) -> dict[str, frozenset]:
        return self._plan(self.tasks, owners=True)

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
        for t in tasks:
            if t not in self._tix:
                raise KeyError(f"unknown task {t!r}; tasks are {list(self.tasks)}")
        plans, hplan = self._get_plan(tasks, x.device)
        bb, B = self.backbone, x.shape[0]
        X = x[None]  # [1, B, *in]: the input is one stream
        for p in plans:
            X = self._stage(p, X, B, _record)  # [S, B, *features]
        out: dict[str, torch.Tensor] = {}
        for od, heads, rows, same_row, row0, identity in hplan:
            W = [self.heads[i].weight for i in heads]
            b = [self.heads[i].bias for i in heads]
            if same_row:  # all heads read one stream: one GEMM
                h = bb.pool(X[row0])  # [B, head_in]
                y = F.linear(h, torch.cat(W), torch.cat(b)).view(B, len(heads), od).transpose(0, 1)  # [n, B, od]
            else:
                h = bb.pool(X if identity else X.index_select(0, rows))  # [n, B, head_in]
                y = torch.baddbmm(torch.stack(b)[:, None, :], h, torch.stack(W).transpose(1, 2))  # [n, B, od]
            for i, yi in zip(heads, y.unbind(0)):
                out[self.tasks[i]] = yi  # [B, od]
        return {t: out[t] for t in tasks}

    def _weights(self, bank: _Bank):
        W, b, experts = [], [], {}
        for m, e in bank.apps:
            mod = self.nodes[m]
            if e < 0:
                W.append(mod.weight)
                b.append(mod.bias)
            else:  # unbind once per MoE node: one backward node instead of E full-size zero fills
                if m not in experts:
                    experts[m] = (mod.weight.unbind(0), mod.bias.unbind(0))
                W.append(experts[m][0][e])
                b.append(experts[m][1][e])
        return W, b

    def _stage(self, p: _Stage, X: torch.Tensor, B: int, record) -> torch.Tensor:
        bb, t = self.backbone, p.t
        ys = []
        for name in ("plain", "concat"):
            if name not in t:
                continue
            bt, bank = t[name], getattr(p, name)
            W, b = self._weights(bank)
            shared = bt["shared"] is not None and not bt["identity"]
            if shared:
                xin = X[bt["shared"]]  # [B, *in]
            elif bt["identity"]:
                xin = X  # [A, B, *in]
            else:
                xin = X.index_select(0, bt["in"])  # [A, B, *in]
            if name == "concat":
                A = len(bank.apps)
                zb = bb.channel_view(self.z.index_select(0, bt["z"]))  # [A, 1, z_dim(, 1, 1)]
                zb = zb.expand(A, B, zb.shape[2], *xin.shape[3:]).to(xin.dtype)  # [A, B, z_dim, *spatial]
                xin = torch.cat([xin, zb], dim=2)  # [A, B, in + z_dim, *spatial]
            ys.append(bb.run_blocks(xin, W, b, batched=bt["batched"], shared_input=shared))  # [A, B, *out]
        Y = ys[0] if len(ys) == 1 else torch.cat([y.to(ys[0].dtype) for y in ys])  # [A_all, B, *out]
        Y = bb.activate(Y, self.training)  # [A_all, B, *out']
        outs = []
        if p.select:
            outs.append(Y if t["select_identity"] else Y.index_select(0, t["select"]))  # [n_sel, B, *out']
        if "film" in t:  # tiny per-node affine maps of z, then one batched scale-and-shift
            mods, node, app, task = t["film"]
            fl = [self.nodes[m].film(self.z) for m in mods]  # G x ([T, width], [T, width])
            gamma = torch.stack([g for g, _ in fl])[node, task].to(Y.dtype)  # [n, width]
            beta = torch.stack([b for _, b in fl])[node, task].to(Y.dtype)  # [n, width]
            outs.append(Y.index_select(0, app) * (1 + bb.channel_view(gamma)) + bb.channel_view(beta))
        if "gate" in t:
            mods, node, app, task = t["gate"]
            gv = torch.stack([self.nodes[m].gate(self.z) for m in mods])  # [G, T, width]
            outs.append(Y.index_select(0, app) * bb.channel_view(gv[node, task].to(Y.dtype)))  # [n, B, *out']
        for E, ents, gin, erows, mods, node, pdrop in t["moe"]:
            outs.append(self._moe(Y, X, E, ents, gin, erows, mods, node, pdrop, record))
        O = outs[0] if len(outs) == 1 else torch.cat([o.to(outs[0].dtype) for o in outs])  # [S_out, B, *out']
        if "stitch" in t:
            mods, rows, identity = t["stitch"]
            M = torch.block_diag(*[self.stitches[m].alpha for m in mods])  # [n, n]
            xs = O if identity else O.index_select(0, rows)  # [n, B, *out']
            mixed = (M.to(xs.dtype) @ xs.flatten(1)).view_as(xs)  # [n, B, *out']
            O = mixed if identity else O.index_copy(0, rows, mixed.to(O.dtype))
        return O

    def _moe(self, Y, X, E, ents, gin, erows, mods, node, pdrop, record):
        """Per-task softmax gates over the experts, expert dropout, mixture."""
        bb = self.backbone
        n, B = len(ents), Y.shape[1]
        Wg = torch.stack([self.nodes[m].gate_weights[li] for m, li, _, _ in ents])  # [n, E, in]
        bg = torch.stack([self.nodes[m].gate_biases[li] for m, li, _, _ in ents])  # [n, E]
        xg = bb.pool(X.index_select(0, gin))  # [n, B, in]
        probs = torch.baddbmm(bg[:, None, :], xg, Wg.transpose(1, 2)).float().softmax(-1)  # [n, B, E]
        if record is not None:
            for j, (m, li, _, _) in enumerate(ents):
                record.setdefault(m, {})[li] = probs[j].mean(0)  # [E]
        if self.training and bool((pdrop > 0).any()):
            keep = torch.rand(len(mods), B, E, device=Y.device) >= pdrop[:, None, None]  # [G, B, E]
            pick = F.one_hot(torch.randint(E, (len(mods), B), device=Y.device), E).bool()  # [G, B, E]
            keep = keep | (pick & ~keep.any(-1, keepdim=True))  # never drop every expert
            probs = probs * keep[node]  # [n, B, E]
            probs = probs / probs.sum(-1, keepdim=True)
        ye = Y.index_select(0, erows.flatten()).view(n, E, B, -1)  # [n, E, B, F]
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

    def _owner_params(self, owner: tuple) -> list[nn.Parameter]:
        kind = owner[0]
        if kind == "node":
            mod = self.nodes[owner[1]]
            if isinstance(mod, MoEBlock):
                return [mod.weight, mod.bias]
            return list(mod.parameters())
        if kind == "gate":
            mod = self.nodes[owner[1]]
            return [mod.gate_weights[owner[2]], mod.gate_biases[owner[2]]]
        if kind == "stitch":
            return [self.stitches[owner[1]].alpha]
        return list(self.heads[owner[1]].parameters())

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

    def extra_repr(self) -> str:
        return f"tasks={list(self.tasks)}, key={self.graph.key()!r}"

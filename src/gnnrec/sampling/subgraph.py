r"""Batch sub-graphs for the whole-graph models: Cluster-GCN and GraphSAINT (random walks), vectorised over
the CSR of the normalised adjacency (``torch-sparse`` / ``pyg-lib``, which PyG's ``ClusterData`` and
GraphSAINT samplers need, are not installable here). GraphSAINT's sampler is :mod:`gnnrec.sampling.saint`
(importable from here too); the layer-wise samplers (LADIES, FastGCN) are :mod:`gnnrec.sampling.layerwise`;
the training steps :mod:`gnnrec.sampling.subgraph_train`.

A batch (:class:`SubgraphBatch`) is what a model's ``subgraph_forward`` runs on: the global ids of its
nodes (``nodes``; layer 0 reads their embedding rows), one :class:`LocalOperator` per layer (or one shared
by every layer) — a sparse ``[n_dst, n_src]`` estimate of the normalised adjacency :math:`\hat{\mathbf{A}}`
over local ids, whose ``n_dst`` receiving nodes are the first ``n_dst`` of its ``n_src`` sending nodes (so a
node's own previous layer is ``x[:n_dst]``), plus the model's extra edges (the social ties) in the same
local ids — the degrees the normalisation assumes (GCN's self loops), and the BPR triples in local ids
with a loss weight each.

- **Cluster-GCN** (Chiang et al., KDD 2019): METIS parts of the user–item graph (``pymetis``, computed once
  per training, seeded), ``clusters_per_batch`` parts merged per batch; the batch adjacency is the induced
  sub-graph (the edges between the chosen parts kept), renormalised on it, :math:`\mathbf{D}_s^{-1/2}
  \mathbf{A}_s \mathbf{D}_s^{-1/2}` with the sub-graph's degrees. With every part in one batch it is the
  full graph exactly. ``num_parts=None`` sizes the parts by the graph (:func:`default_num_parts`): a batch's
  parts hold about ``batch_edges`` training edges whatever the graph's size, so a step's memory does not
  grow with it.
- **GraphSAINT** (Zeng et al., ICLR 2020), random-walk sampler: ``roots`` users, a walk of ``walk_length``
  steps from each, the induced sub-graph of the visited nodes. Pre-sampling counts how often each node
  (:math:`C_v`) and each edge (:math:`C_{u,v}`) is in a sub-graph; the aggregation at :math:`v` uses
  :math:`\hat{A}_{vu} / \alpha_{u,v}` with :math:`\alpha_{u,v} = C_{u,v} / C_v`, and the loss of a
  positive edge :math:`e` is weighted by :math:`1 / (\lambda_e |E|)` with :math:`\lambda_e = C_e / N` (``N``
  pre-sampled sub-graphs), so that aggregation and loss are unbiased. Pre-sampling goes on until the
  sub-graphs hold ``coverage`` copies of each node on average (or ``max_presample`` sub-graphs, when
  set); a count that stays 0 is taken as 1, so a coverage far below the target (a warning says so) biases
  the normalisation.

The samplers read the adjacency's own CSR arrays (int32 after :func:`gnnrec.training.prepare_adjacency`)
and convert only a batch's gathered entries to int64; GraphSAINT's counts are float32 (exact integers up
to :math:`2^{24}` sub-graphs), widened to float64 per batch.

Positives are the batch sub-graph's user–item edges. A negative drawn from all items that is not in the
sub-graph joins it *receive-only*: it aggregates from its neighbours in the sub-graph (Cluster-GCN:
renormalised as if it had joined; GraphSAINT: :math:`\hat{A}_{jv} / P(v \in S \mid j \notin S)`, from the
same counts) but sends nothing, so the sub-graph's own computation, and its positives, do not depend on
the negatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import Tensor

from gnnrec.graph import csr_rows, spmm

#: ``(indptr [N + 1], indices [nnz], values [nnz])`` of a sparse ``N × N`` operator, rows = receiving nodes
Operator = tuple[Tensor, Tensor, Tensor]
#: ``negatives(user ids [P], the sub-graph's item ids, generator) -> item ids [P]``
NegativeFn = Callable[[Tensor, Tensor, Optional[torch.Generator]], Tensor]


class _LocalSpMM(torch.autograd.Function):
    """``M @ X`` for a sparse CSR ``M`` with its transpose ``M^T`` given (the backward pass)."""

    @staticmethod
    def forward(ctx, mat: Tensor, mat_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.mat_t = mat_t
        return spmm(mat, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return None, None, spmm(ctx.mat_t, grad.contiguous())


def _csr(row: Tensor, col: Tensor, val: Tensor, shape: tuple[int, int]) -> Tensor:
    """A CSR tensor (int32 indices) from entries sorted by ``row``."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=row.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=shape[0]), 0)
    return torch.sparse_csr_tensor(crow.to(torch.int32), col.to(torch.int32), val, shape, check_invariants=False)


class LocalOperator:
    """One layer of a batch: ``[n_dst, n_src]`` entries ``(row, col, val)`` (rows ascending) over local ids,
    and ``ties``: the model's extra edges ``(dst, src, val)`` in the same ids (or None)."""

    def __init__(self, row: Tensor, col: Tensor, val: Tensor, n_dst: int, n_src: int,
                 ties: Optional[tuple[Tensor, Tensor, Tensor]] = None) -> None:
        self.row, self.col, self.val = row, col, val
        self.n_dst, self.n_src = int(n_dst), int(n_src)
        self.ties = ties
        self._mats: Optional[tuple[Tensor, Tensor]] = None

    def matrices(self) -> tuple[Tensor, Tensor]:
        """``(M [n_dst, n_src], M^T)`` as CSR (built once)."""
        if self._mats is None:
            order = torch.sort(self.col, stable=True).indices
            self._mats = (_csr(self.row, self.col, self.val, (self.n_dst, self.n_src)),
                          _csr(self.col[order], self.row[order], self.val[order], (self.n_src, self.n_dst)))
        return self._mats

    def mm(self, x: Tensor) -> Tensor:
        """``M @ x``: ``[n_src, d]`` → ``[n_dst, d]``."""
        mat, mat_t = self.matrices()
        if x.requires_grad and torch.is_grad_enabled():
            return _LocalSpMM.apply(mat, mat_t, x)
        return spmm(mat, x)

    def dropped(self, p: float) -> "LocalOperator":
        """Each entry dropped with probability ``p``, the kept ones scaled by ``1 / (1 - p)`` (edge dropout)."""
        keep = (torch.rand(self.val.shape, device=self.val.device) >= p).to(self.val.dtype) / (1.0 - p)
        return LocalOperator(self.row, self.col, self.val * keep, self.n_dst, self.n_src, self.ties)


@dataclass
class SubgraphBatch:
    """A training batch on a sub-graph (see the module docstring). Local ids index ``nodes``."""

    nodes: Tensor                  # [n] global bipartite ids (users, then n_users + item); the first n_out: outputs
    layers: list[LocalOperator]    # input layer first; one entry: shared by every layer
    degree: Tensor                 # [n] float: the degrees the normalisation assumes
    n_out: int                     # output nodes: nodes[:n_out] (their final embeddings score the triples)
    users: Tensor                  # [P] local ids (< n_out)
    pos: Tensor                    # [P]
    neg: Tensor                    # [P]
    weight: Tensor                 # [P] loss weight per triple (sums to about 1)
    n_users: int
    shared: bool = False           # one operator (layers[0]) for every layer: a square sub-graph adjacency

    def operators(self, num_layers: int, edge_dropout: float = 0.0, training: bool = False) -> list[LocalOperator]:
        """The ``num_layers`` operators, input layer first (edge dropout applied in training: once for a
        shared operator, as the full-graph models drop edges once per propagation)."""
        if self.shared:
            op = self.layers[0].dropped(edge_dropout) if training and edge_dropout > 0 else self.layers[0]
            return [op] * num_layers
        if len(self.layers) != num_layers:
            raise ValueError(f"the batch was sampled for {len(self.layers)} layers, the model has {num_layers}")
        return [op.dropped(edge_dropout) for op in self.layers] if training and edge_dropout > 0 else list(self.layers)

    def scores(self, emb: Tensor) -> tuple[Tensor, Tensor]:
        """BPR scores ``([P], [P])`` from the output nodes' final embeddings ``emb [n_out, d]``."""
        eu, ep, en = (emb.index_select(0, ids) for ids in (self.users, self.pos, self.neg))
        return (eu * ep).sum(-1), (eu * en).sum(-1)

    def global_ids(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(user ids, positive item ids, negative item ids)`` ``[P]`` each, by the model's numbering."""
        return (self.nodes[self.users], self.nodes[self.pos] - self.n_users, self.nodes[self.neg] - self.n_users)


def gather_entries(indptr: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """Every entry of the rows ``nodes``: ``(local row [m], global entry index [m])`` (int64), rows ascending
    (``indptr``: int32 or int64)."""
    start = indptr.index_select(0, nodes).long()
    deg = indptr.index_select(0, nodes + 1).long() - start
    row = torch.repeat_interleave(torch.arange(nodes.shape[0], device=nodes.device), deg)
    shift = start - (torch.cumsum(deg, 0) - deg)                                   # entry index - position
    return row, torch.arange(row.shape[0], device=nodes.device) + shift.index_select(0, row)


def induced_entries(indptr: Tensor, indices: Tensor, rows: Tensor, local_of: Tensor
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """Entries of the rows ``rows`` whose column is a node of the sub-graph (``local_of[v] >= 0``):
    ``(local row, local column, global entry index)``, int64."""
    row, eidx = gather_entries(indptr, rows)
    col = local_of.index_select(0, indices.index_select(0, eidx)).long()
    keep = col >= 0
    return row[keep], col[keep], eidx[keep]


def metis_parts(indptr: Tensor, indices: Tensor, num_parts: int, seed: int) -> Tensor:
    """METIS part (``[N]`` long in ``[0, num_parts)``) of every node of the symmetric CSR graph (repeated
    entries merged, self loops dropped), seeded: the same graph and seed give the same parts."""
    try:
        import pymetis
    except ImportError:                                    # pragma: no cover - a dependency of the project
        raise ImportError("train.subgraph.method cluster needs pymetis (pip install pymetis)") from None

    n = indptr.shape[0] - 1
    num_parts = max(1, min(int(num_parts), n))
    rows, cols = csr_rows(indptr.cpu()), indices.cpu().long()          # int64 here only: rows * n overflows int32
    keys = torch.unique(rows * n + cols)
    keys = keys[keys // n != keys % n]
    if num_parts == 1 or keys.numel() == 0:
        return torch.arange(n) % num_parts
    xadj = np.zeros(n + 1, dtype=np.int64)
    xadj[1:] = np.cumsum(np.bincount((keys // n).numpy(), minlength=n))
    options = pymetis.Options(seed=int(seed) % (2**31 - 1))
    _, parts = pymetis.part_graph(num_parts, adjacency=pymetis.CSRAdjacency(xadj, (keys % n).numpy()),
                                  options=options)
    return torch.as_tensor(np.asarray(parts, dtype=np.int64))


class InducedSampler:
    """Base of the induced-sub-graph samplers: :meth:`subgraphs` yields node sets (sorted global ids) for an
    epoch, :meth:`batch` turns one into a :class:`SubgraphBatch` (subclasses set the entries' values)."""

    renormalise = False            # Cluster-GCN: values from the sub-graph's degrees

    def __init__(self, adj: Tensor, n_users: int, extra: Optional[Operator] = None,
                 weighted_degree: Optional[Tensor] = None) -> None:
        self.indptr = adj.crow_indices()                   # the adjacency's own arrays (int32), no copies
        self.indices = adj.col_indices()
        self.values = adj.values()
        # the full graph's weighted degrees when its edges carry weights (graph.time_decay): a renormalised
        # batch recovers each entry's weight w = â · sqrt(d_r d_c) and uses the sub-graph's weighted degrees
        self.weighted_degree = (None if weighted_degree is None
                                else weighted_degree.to(self.values.device, torch.float64))
        self.n_users = int(n_users)
        self.n_nodes = int(adj.shape[0])
        self.degree = self.indptr.diff().to(self.values.dtype)                 # full-graph degrees
        self.extra = extra
        self.n_edges = int(self.indptr[self.n_users])                         # user → item entries
        self.local_of = torch.full((self.n_nodes,), -1, dtype=torch.long, device=self.indices.device)

    def steps_per_epoch(self) -> int:
        raise NotImplementedError

    def subgraphs(self, generator: Optional[torch.Generator]) -> Iterator[Tensor]:
        raise NotImplementedError

    # ---------------------------------------------------------------- values (per method)
    def own_values(self, values: Tensor, nodes: Tensor, row: Tensor, col: Tensor, eidx: Tensor, which: int) -> Tensor:
        """Values of the sub-graph's own entries (``which``: 0 the adjacency, 1 the extra edges)."""
        raise NotImplementedError

    def negative_values(self, values: Tensor, j: Tensor, v: Tensor, eidx: Tensor, which: int) -> Tensor:
        """Values of the receive-only negatives' entries ``j ← v`` (global ids; ``v``: sub-graph nodes)."""
        raise NotImplementedError

    def loss_weight(self, eidx: Tensor) -> Tensor:
        return torch.full(eidx.shape, 1.0 / max(eidx.shape[0], 1), device=eidx.device)

    # ---------------------------------------------------------------- the batch
    def _entries(self, op: Operator, nodes: Tensor, negs: Tensor, which: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        indptr, indices, values = op
        n = nodes.shape[0]
        row, col, eidx = induced_entries(indptr, indices, nodes, self.local_of)
        nrow, ncol, neidx = induced_entries(indptr, indices, negs, self.local_of)
        if self.renormalise and which == 0 and self.weighted_degree is not None:     # weighted edges
            wd = self.weighted_degree
            w_own = values.index_select(0, eidx).double() * (wd[nodes[row]] * wd[nodes[col]]).sqrt()
            w_neg = values.index_select(0, neidx).double() * (wd[negs[nrow]] * wd[nodes[ncol]]).sqrt()
            deg = torch.zeros(n + negs.shape[0], dtype=torch.float64, device=values.device)
            deg.index_add_(0, torch.cat([row, nrow + n]), torch.cat([w_own, w_neg]))
            joined = deg[:n].index_add(0, ncol, w_neg)                          # as if the negatives had joined
            own = (w_own * (deg[row] * deg[col]).rsqrt()).to(values.dtype)
            neg = (w_neg * (deg[nrow + n] * joined[ncol]).rsqrt()).to(values.dtype)
        elif self.renormalise:
            deg = torch.bincount(torch.cat([row, nrow + n]), minlength=n + negs.shape[0]).double()
            joined = deg[:n] + torch.bincount(ncol, minlength=n).double()        # as if the negatives had joined
            own = (deg[row] * deg[col]).rsqrt().to(values.dtype)
            neg = (deg[nrow + n] * joined[ncol]).rsqrt().to(values.dtype)
        else:
            own = self.own_values(values, nodes, row, col, eidx, which)
            neg = self.negative_values(values, negs.index_select(0, nrow), nodes.index_select(0, ncol), neidx, which)
        return torch.cat([row, nrow + n]), torch.cat([col, ncol]), torch.cat([own, neg]), eidx

    def batch(self, nodes: Tensor, negatives: NegativeFn, generator: Optional[torch.Generator]
              ) -> Optional[SubgraphBatch]:
        """The batch of the sub-graph on ``nodes`` (sorted global ids); None when it has no user–item edge."""
        n, device = nodes.shape[0], nodes.device
        self.local_of.index_copy_(0, nodes, torch.arange(n, device=device))
        try:
            row, col, eidx = induced_entries(self.indptr, self.indices, nodes, self.local_of)
            is_pos = nodes.index_select(0, row) < self.n_users                      # user → item entries
            u_loc, i_loc, pos_eidx = row[is_pos], col[is_pos], eidx[is_pos]
            if u_loc.numel() == 0:
                return None
            items = nodes[nodes >= self.n_users] - self.n_users
            neg_items = negatives(nodes[u_loc], items, generator) + self.n_users     # [P] global node ids
            known = self.local_of.index_select(0, neg_items)
            negs = torch.unique(neg_items[known < 0])                               # receive-only newcomers
            all_nodes = torch.cat([nodes, negs])
            row, col, val, _ = self._entries((self.indptr, self.indices, self.values), nodes, negs, 0)
            ties = None
            if self.extra is not None:
                t_row, t_col, t_val, _ = self._entries(self.extra, nodes, negs, 1)
                ties = (t_row, t_col, t_val)
            j_loc = torch.where(known >= 0, known, n + torch.searchsorted(negs, neg_items))
        finally:
            self.local_of.index_fill_(0, nodes, -1)
        total = all_nodes.shape[0]
        degree = (torch.bincount(row, minlength=total).to(self.values.dtype) if self.renormalise
                  else self.degree.index_select(0, all_nodes))
        return SubgraphBatch(nodes=all_nodes, layers=[LocalOperator(row, col, val, total, total, ties)],
                             degree=degree, n_out=total, users=u_loc, pos=i_loc, neg=j_loc,
                             weight=self.loss_weight(pos_eidx), n_users=self.n_users, shared=True)


def default_num_parts(n_edges: int, clusters_per_batch: int, batch_edges: int) -> int:
    """METIS parts for ``num_parts: null``: ``ceil(n_edges · clusters_per_batch / batch_edges)`` (at least
    ``clusters_per_batch``), so that the ``clusters_per_batch`` parts of a batch hold about ``batch_edges``
    training edges (those cut between unchosen parts are not in the batch) at any graph size."""
    return max(int(clusters_per_batch), math.ceil(int(n_edges) * int(clusters_per_batch) / max(int(batch_edges), 1)))


class ClusterSampler(InducedSampler):
    """Cluster-GCN batches: each epoch visits the METIS parts in a random order, ``clusters_per_batch`` at a
    time; the batch is the sub-graph induced by their nodes, renormalised on it. ``num_parts=None``:
    :func:`default_num_parts` with ``batch_edges``."""

    renormalise = True

    def __init__(self, adj: Tensor, n_users: int, num_parts: Optional[int], clusters_per_batch: int, seed: int = 0,
                 extra: Optional[Operator] = None, batch_edges: int = 8192,
                 weighted_degree: Optional[Tensor] = None) -> None:
        super().__init__(adj, n_users, extra, weighted_degree)
        if num_parts is None:
            num_parts = default_num_parts(self.n_edges, clusters_per_batch, batch_edges)
        self.parts = metis_parts(self.indptr, self.indices, num_parts, seed).to(self.indices.device)   # [N]
        self.num_parts = int(self.parts.max()) + 1 if self.parts.numel() else 1
        self.clusters_per_batch = min(int(clusters_per_batch), self.num_parts)
        self.members = torch.sort(self.parts, stable=True).indices             # nodes grouped by part
        self.part_ptr = torch.zeros(self.num_parts + 1, dtype=torch.long, device=self.parts.device)
        self.part_ptr[1:] = torch.cumsum(torch.bincount(self.parts, minlength=self.num_parts), 0)

    def steps_per_epoch(self) -> int:
        return math.ceil(self.num_parts / self.clusters_per_batch)

    def part_nodes(self, parts: Tensor) -> Tensor:
        """Sorted global ids of the nodes of ``parts``."""
        ptr = self.part_ptr.cpu()
        return torch.sort(torch.cat([self.members[int(ptr[p]):int(ptr[p + 1])] for p in parts.tolist()])).values

    def subgraphs(self, generator: Optional[torch.Generator]) -> Iterator[Tensor]:
        order = torch.randperm(self.num_parts, generator=generator, device=self.parts.device)
        for start in range(0, self.num_parts, self.clusters_per_batch):
            yield self.part_nodes(order[start:start + self.clusters_per_batch])


def __getattr__(name: str):
    if name == "SaintSampler":                     # its own module (gnnrec.sampling.saint); kept importable here
        from gnnrec.sampling.saint import SaintSampler

        return SaintSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

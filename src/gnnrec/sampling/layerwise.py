r"""Layer-wise importance sampling for the whole-graph models: LADIES (Zou et al., NeurIPS 2019) and FastGCN
(Chen et al., ICLR 2018), vectorised over the CSR of the normalised adjacency.

From the batch's output nodes (its users, positive and negative items) down to the input layer, each
layer samples ``s`` nodes i.i.d. from an importance distribution :math:`q` and estimates the layer's
aggregation over the nodes ``D`` it feeds by

.. math::
    (\hat{\mathbf{A}}\mathbf{H})_D \approx \frac{1}{s}\sum_{k=1}^{s}
    \frac{\hat{\mathbf{A}}_{D, j_k} \mathbf{h}_{j_k}}{q_{j_k}}
    = \sum_j \hat{\mathbf{A}}_{D, j}\, \frac{c_j}{s\, q_j}\, \mathbf{h}_j

(:math:`c_j`: how often :math:`j` was drawn), unbiased for any :math:`q` that is positive on the columns
of :math:`\hat{\mathbf{A}}_D`. LADIES takes :math:`q_j \propto \lVert \hat{\mathbf{A}}_{D, j} \rVert^2`, the
squared column norms restricted to the layer above's nodes (layer-dependent); FastGCN
:math:`q_j \propto \lVert \hat{\mathbf{A}}_{:, j} \rVert^2` over all rows (fixed). The model's extra edges
(the social ties) are sampled with the same columns and count in the norms. The layer's sending nodes are
``D`` (first, for the self terms: a node's own previous layer) and the drawn nodes; its operator is a
:class:`gnnrec.sampling.subgraph.LocalOperator` ``[|D|, |D ∪ drawn|]``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from gnnrec.sampling.neighbors import union_first
from gnnrec.sampling.subgraph import LocalOperator, Operator, SubgraphBatch, gather_entries


class LayerwiseSampler:
    """Layer-wise batches for BPR triples (see the module docstring).

    Args:
        adj: the normalised adjacency (sparse CSR ``[N, N]``) on the training device.
        n_users: users (nodes ``0..n_users-1``).
        layer_sizes: nodes drawn per layer from the output layer down; the last repeats for deeper models.
        importance: ``ladies`` or ``fastgcn``.
        extra: the model's extra edges as an operator (rows: receiving nodes), or None.
    """

    def __init__(self, adj: Tensor, n_users: int, layer_sizes: Sequence[int], importance: str = "ladies",
                 extra: Optional[Operator] = None) -> None:
        if importance not in ("ladies", "fastgcn"):
            raise ValueError(f"importance must be 'ladies' or 'fastgcn', got {importance!r}")
        # the adjacency's own CSR arrays (int32 after prepare_adjacency): a batch's entries are widened, not the graph
        self.ops: list[Operator] = [(adj.crow_indices(), adj.col_indices(), adj.values())]
        if extra is not None:
            self.ops.append(extra)
        self.n_users = int(n_users)
        self.n_nodes = int(adj.shape[0])
        self.sizes = [int(s) for s in layer_sizes]
        self.importance = importance
        self.degree = self.ops[0][0].diff().to(adj.values().dtype)
        device = self.ops[0][1].device
        self.scratch = torch.full((self.n_nodes,), -1, dtype=torch.long, device=device)
        self.global_q: Optional[Tensor] = None
        if importance == "fastgcn":
            norms = torch.zeros(self.n_nodes, dtype=torch.float64, device=device)
            for _, indices, values in self.ops:
                norms.index_add_(0, indices, values.double().pow(2))
            self.global_q = norms / norms.sum().clamp_min(1e-300)

    def size(self, layer: int) -> int:
        return self.sizes[min(layer, len(self.sizes) - 1)]

    def layer(self, dst: Tensor, s: int, generator: Optional[torch.Generator]) -> tuple[LocalOperator, Tensor]:
        """The operator of one layer feeding ``dst`` (distinct global ids) and its sending nodes (``dst`` first)."""
        entries = []                                       # per operator: (local row, column, value)
        for indptr, indices, values in self.ops:
            row, eidx = gather_entries(indptr, dst)
            entries.append((row, indices.index_select(0, eidx).long(), values.index_select(0, eidx).double()))
        cols = torch.cat([c for _, c, _ in entries])
        if cols.numel() == 0:                              # nothing to aggregate
            empty = torch.zeros(0, dtype=torch.long, device=dst.device)
            return LocalOperator(empty, empty, torch.zeros(0, device=dst.device), dst.shape[0], dst.shape[0],
                                 (empty, empty, torch.zeros(0, device=dst.device)) if len(self.ops) > 1 else None), dst
        n_dst, out = dst.shape[0], []
        if self.importance == "ladies":
            # distinct columns by first appearance (scatters into the scratch map, no sort); inv: entry → column
            uniq, inv = union_first(cols[:0], cols, self.scratch)
            q = torch.zeros(uniq.shape[0], dtype=torch.float64, device=dst.device)
            q.index_add_(0, inv, torch.cat([v for _, _, v in entries]).pow(2))      # ‖Â_{D, j}‖²
            q = q / q.sum()
            draws = torch.multinomial(q.float(), s, replacement=True, generator=generator)
            counts = torch.bincount(draws, minlength=uniq.shape[0])
            drawn = counts > 0
            src, local = union_first(dst, uniq[drawn], self.scratch)
            col_local = torch.full((uniq.shape[0],), -1, dtype=torch.long, device=dst.device)
            col_local[drawn] = local[n_dst:]
            coef = counts.double() / (s * q)                                        # [U] c_j / (s q_j)
            offset = 0
            for row, col, val in entries:
                k = inv[offset:offset + col.shape[0]]
                offset += col.shape[0]
                c = col_local.index_select(0, k)
                keep = c >= 0
                out.append((row[keep], c[keep], (val[keep] * coef.index_select(0, k[keep])).float()))
        else:
            draws = torch.multinomial(self.global_q.float(), s, replacement=True, generator=generator)
            chosen, counts = torch.unique(draws, return_counts=True)
            src, local = union_first(dst, chosen, self.scratch)
            chosen_local = local[n_dst:]
            coef = counts.double() / (s * self.global_q.index_select(0, chosen))    # c_j / (s q_j)
            self.scratch.index_copy_(0, chosen, torch.arange(chosen.shape[0], device=dst.device))
            try:
                for row, col, val in entries:
                    k = self.scratch.index_select(0, col)                           # index into chosen, or -1
                    keep = k >= 0
                    k = k[keep]
                    weight = (val[keep] * coef.index_select(0, k)).float()
                    out.append((row[keep], chosen_local.index_select(0, k), weight))
            finally:
                self.scratch.index_fill_(0, chosen, -1)
        ties = out[1] if len(out) > 1 else None
        return LocalOperator(*out[0], n_dst=dst.shape[0], n_src=src.shape[0], ties=ties), src

    def batch(self, users: Tensor, pos: Tensor, neg: Tensor, num_layers: int,
              generator: Optional[torch.Generator]) -> SubgraphBatch:
        """The batch of the triples ``(users, pos, neg)`` (``[B]`` model ids) for a ``num_layers``-layer model."""
        out_nodes, inv = torch.unique(torch.cat([users, pos + self.n_users, neg + self.n_users]), return_inverse=True)
        b = users.shape[0]
        layers, dst = [], out_nodes
        for k in range(num_layers):
            op, dst = self.layer(dst, self.size(k), generator)
            layers.append(op)
        weight = torch.full((b,), 1.0 / max(b, 1), device=users.device)
        return SubgraphBatch(nodes=dst, layers=layers[::-1], degree=self.degree.index_select(0, dst),
                             n_out=out_nodes.shape[0], users=inv[:b], pos=inv[b:2 * b], neg=inv[2 * b:],
                             weight=weight, n_users=self.n_users)

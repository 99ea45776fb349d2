"""Neighbour sampling over a CSR graph, vectorised in PyTorch (no per-node Python loop).

``pyg-lib`` and ``torch-sparse`` (which PyG's ``NeighborLoader`` needs) are not installable here, so the
sampled models (GraphSAGE, GAT, PinSage) take their mini-batch *blocks* from this module. A block holds
only the batch's receptive field: its memory grows with the batch size and the fanouts, never with the
graph.

A graph is a CSR pair ``(indptr [N + 1], indices [nnz])`` of long tensors: the neighbours of node ``v``
are ``indices[indptr[v]:indptr[v + 1]]``, sorted and distinct (build it with
:func:`gnnrec.graph.csr_from_pairs`, or :func:`bipartite_csr` for the user–item graph).

Sampling one hop for ``n`` nodes with fanout ``f`` returns a dense ``[n, f]`` table of neighbour ids and
a ``[n, f]`` mask:

- with replacement, every node with at least one neighbour gets exactly ``f`` draws, uniform over its
  neighbours (offsets ``⌊U · deg⌋``);
- without replacement, a node with ``deg ≤ f`` gets all its neighbours; a node with ``deg > f`` gets a
  uniformly random subset of ``f`` distinct neighbours, drawn by Floyd's algorithm run for all nodes at
  once (``f`` vectorised rounds of ``O(n · f)`` work each, independent of the degrees).

Randomness comes from an optional ``torch.Generator`` (seeded generator → same samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from gnnrec.graph import CSR, as_long_tensor, csr_from_pairs


def bipartite_csr(n_users: int, n_items: int, users, items) -> CSR:
    """Symmetric CSR of the user–item graph with the node numbering of
    :func:`gnnrec.graph.bipartite_adjacency` (users ``0..n_users-1``, then items ``n_users + item``):
    every interaction ``(u, i)`` is the two edges ``u → n_users + i`` and ``n_users + i → u``, built by
    :func:`gnnrec.graph.csr_from_pairs` (neighbours sorted, repeated interactions merged)."""
    users, items = as_long_tensor(users), as_long_tensor(items)
    nodes = items + n_users
    return csr_from_pairs(n_users + n_items, n_users + n_items, torch.cat([users, nodes]), torch.cat([nodes, users]))


def _rand(shape: tuple[int, ...], generator: Optional[torch.Generator], device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float64)


def sample_neighbors(indptr: Tensor, indices: Tensor, nodes: Tensor, fanout: int, replace: bool = True,
                     generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """Sample up to ``fanout`` neighbours of each of ``nodes``.

    Args:
        indptr, indices: the CSR graph.
        nodes: ``[n]`` long node ids.
        fanout: neighbours per node (``≥ 1``).
        replace: draw with replacement (every node with a neighbour gets exactly ``fanout``) or without
            (``min(deg, fanout)`` distinct neighbours).
        generator: the source of randomness (default: torch's global generator).

    Returns:
        ``(nbr [n, fanout], mask [n, fanout])``: neighbour ids (``0`` where ``mask`` is False) and which
        entries are real samples. Unmasked entries of a row are left-aligned.
    """
    if fanout < 1:
        raise ValueError(f"fanout must be >= 1, got {fanout}")
    device = indices.device
    nodes = nodes.long()
    start = indptr.index_select(0, nodes)                                    # [n]
    deg = indptr.index_select(0, nodes + 1) - start                          # [n]
    n = nodes.shape[0]
    if replace:
        u = torch.rand((n, fanout), generator=generator, device=device)      # [n, f] float32
        offset = (u * deg[:, None]).long()                                   # [n, f] in [0, deg]
        offset = offset.clamp_max_((deg - 1).clamp_min_(0)[:, None])         # float32 rounding: never deg
        mask = (deg > 0)[:, None].expand(n, fanout)
    else:
        slots = torch.arange(fanout, device=device)                          # [f]
        mask = slots[None, :] < deg[:, None]                                 # [n, f]
        offset = slots[None, :].expand(n, fanout).clone()                    # deg <= f: all neighbours
        big = deg > fanout
        if bool(big.any()):
            d = deg[big]                                                     # [m]
            chosen = torch.empty(d.shape[0], fanout, dtype=torch.long, device=device)
            u = _rand((d.shape[0], fanout), generator, device)               # [m, f]
            for t in range(fanout):                                          # Floyd: a uniform f-subset
                j = d - fanout + t                                           # [m]
                r = (u[:, t] * (j + 1)).long().clamp_max(j)                  # uniform in [0, j]
                seen = (chosen[:, :t] == r[:, None]).any(1) if t else torch.zeros_like(r, dtype=torch.bool)
                chosen[:, t] = torch.where(seen, j, r)
            offset[big] = chosen
    if indices.shape[0] == 0:
        return torch.zeros(n, fanout, dtype=torch.long, device=device), mask
    pos = (start[:, None] + offset).view(-1).clamp_max_(indices.shape[0] - 1)    # [n * f]
    nbr = indices.index_select(0, pos).view(n, fanout)                      # [n, f]
    if replace:
        empty = deg == 0
        if bool(empty.any()):
            nbr.masked_fill_(empty[:, None], 0)
        return nbr, mask
    return nbr.masked_fill_(~mask, 0), mask


def union_first(dst: Tensor, new: Tensor, scratch: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Distinct nodes of ``cat([dst, new])`` in order of first appearance, and the local index of every
    entry of ``cat([dst, new])`` among them. ``dst`` must be distinct: it stays the prefix, in order.

    With ``scratch`` (a ``[N]`` long tensor of ``-1``, ``N`` > every node id, left as it was found) the
    union is ``O(len(new))`` scatters and gathers; without it, one ``torch.unique`` (a sort).
    """
    n_dst = dst.shape[0]
    device = dst.device
    if scratch is None:
        allv = torch.cat([dst, new])                                         # [a]
        uniq, inv = torch.unique(allv, return_inverse=True)                  # [u], [a]
        first = torch.full((uniq.shape[0],), allv.shape[0], dtype=torch.long, device=device)
        first.scatter_reduce_(0, inv, torch.arange(allv.shape[0], device=device), reduce="amin")
        order = torch.argsort(first)                                         # first-appearance order
        rank = torch.empty_like(order)
        rank[order] = torch.arange(order.shape[0], device=device)
        return uniq[order], rank[inv]
    scratch.index_copy_(0, dst, torch.arange(n_dst, device=device))        # dst: local ids 0..n_dst-1
    known = scratch.index_select(0, new)                                     # [m] local id, or -1
    fresh = known < 0
    cand = torch.masked_select(new, fresh)                                   # [c] not in dst (duplicates)
    pos = torch.arange(cand.shape[0], device=device)
    scratch.index_fill_(0, cand, cand.shape[0])                              # > any position
    scratch.scatter_reduce_(0, cand, pos, reduce="amin")                     # first position of each node
    first_pos = scratch.index_select(0, cand)                                # [c]
    is_first = first_pos == pos
    new_id = torch.cumsum(is_first, 0) - 1 + n_dst                           # [c] local id at first sight
    local_new = known.masked_scatter_(fresh, new_id.index_select(0, first_pos))
    scratch.index_fill_(0, dst, -1)                                          # leave scratch as found
    scratch.index_fill_(0, cand, -1)
    nodes = torch.cat([dst, torch.masked_select(cand, is_first)])
    return nodes, torch.cat([torch.arange(n_dst, device=device), local_new])


@dataclass
class Block:
    """One message-passing layer of a mini-batch: ``dst`` nodes receive from their sampled neighbours.

    ``src_nodes`` are global node ids whose first ``n_dst`` entries are the destination nodes (so a
    node's own previous-layer state is ``h_src[:n_dst]``). ``nbr[v, s]`` is the local index (into
    ``src_nodes``) of the ``s``-th sampled neighbour of destination ``v``, valid where ``mask``;
    ``weight`` (optional, ``[n_dst, f]``) is an importance per neighbour (PinSage's visit counts).
    """

    src_nodes: Tensor            # [n_src] long, global ids; src_nodes[:n_dst] are the dst nodes
    n_dst: int
    nbr: Tensor                  # [n_dst, f] long, local ids into src_nodes (0 where masked)
    mask: Tensor                 # [n_dst, f] bool
    weight: Optional[Tensor] = None

    @property
    def dst_nodes(self) -> Tensor:
        return self.src_nodes[: self.n_dst]

    @property
    def n_src(self) -> int:
        return int(self.src_nodes.shape[0])

    def edge_index(self) -> Tensor:
        """``[2, m]`` (local source, local destination) of the sampled edges, for PyG convolutions."""
        dst, slot = torch.nonzero(self.mask, as_tuple=True)
        return torch.stack([self.nbr[dst, slot], dst])

    def num_edges(self) -> int:
        return int(self.mask.sum())


def make_block(dst: Tensor, nbr: Tensor, mask: Tensor, weight: Optional[Tensor] = None,
               scratch: Optional[Tensor] = None) -> Block:
    """A :class:`Block` from destination nodes and their sampled neighbours (global ids); ``scratch`` as
    in :func:`union_first`."""
    full = bool(mask.all())
    src_nodes, local = union_first(dst, nbr.reshape(-1) if full else nbr[mask], scratch)
    if full:
        nbr_local = local[dst.shape[0]:].view(nbr.shape)
    else:
        nbr_local = torch.zeros_like(nbr).masked_scatter_(mask, local[dst.shape[0]:])
    return Block(src_nodes=src_nodes, n_dst=int(dst.shape[0]), nbr=nbr_local, mask=mask, weight=weight)


class NeighborSampler:
    r"""Multi-hop uniform neighbour sampler over a CSR graph (GraphSAGE, Hamilton et al., NeurIPS 2017).

    ``fanouts[h]`` neighbours are sampled at hop ``h`` from the seeds outward (``[10, 5]``: 10 neighbours
    of each seed, then 5 of each of those). Every node of a layer's input set gets its own sample for
    that layer (DGL's block convention), so the blocks compute exactly the seeds' ``len(fanouts)``-layer
    outputs.

    Args:
        indptr, indices: the CSR graph (long tensors, on the device where sampling runs).
        fanouts: neighbours per hop, from the seeds outward.
        replace: sample with replacement. (default: ``True``)
    """

    def __init__(self, indptr: Tensor, indices: Tensor, fanouts: Sequence[int], replace: bool = True) -> None:
        self.indptr = indptr.long()
        self.indices = indices.long()
        self.fanouts = [int(f) for f in fanouts]
        self.replace = bool(replace)
        if any(f < 1 for f in self.fanouts):
            raise ValueError(f"fanouts must be >= 1, got {self.fanouts}")
        self._scratch: Optional[Tensor] = None

    def scratch(self) -> Tensor:
        """A ``[N]`` long buffer of ``-1`` (made once, reused by every call) for :func:`union_first`: one
        int per node, so deduplicating a block's nodes needs no sort."""
        if self._scratch is None or self._scratch.device != self.indices.device:
            self._scratch = torch.full((self.num_nodes,), -1, dtype=torch.long, device=self.indices.device)
        return self._scratch

    @property
    def num_nodes(self) -> int:
        return int(self.indptr.shape[0] - 1)

    def sample_blocks(self, seeds: Tensor, generator: Optional[torch.Generator] = None) -> list[Block]:
        """Blocks for the distinct ``seeds``, ordered from the input layer to the output layer:
        ``blocks[-1].dst_nodes == seeds`` and ``blocks[i].dst_nodes == blocks[i + 1].src_nodes``."""
        blocks: list[Block] = []
        frontier = seeds.long()
        for fanout in self.fanouts:
            nbr, mask = sample_neighbors(self.indptr, self.indices, frontier, fanout, self.replace, generator)
            block = make_block(frontier, nbr, mask, scratch=self.scratch())
            blocks.append(block)
            frontier = block.src_nodes
        return blocks[::-1]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_nodes={self.num_nodes}, fanouts={self.fanouts}, replace={self.replace})"


def loop_sample_neighbors(indptr: np.ndarray, indices: np.ndarray, nodes: np.ndarray, fanout: int,
                          replace: bool = True, seed: int = 0) -> list[list[int]]:
    """Reference sampler: a Python loop over the nodes (``random.choices`` / ``random.sample`` per
    node). Used by the tests and the benchmark; not for training."""
    import random

    rng = random.Random(seed)
    ptr = indptr.tolist()
    idx = indices.tolist()
    out = []
    for v in nodes.tolist():
        neigh = idx[ptr[v]:ptr[v + 1]]
        if not neigh:
            out.append([])
        elif replace:
            out.append(rng.choices(neigh, k=fanout))
        else:
            out.append(neigh if len(neigh) <= fanout else rng.sample(neigh, fanout))
    return out

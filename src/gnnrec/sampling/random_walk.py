"""Random walks over a CSR graph and PinSage's importance neighbourhoods, vectorised in PyTorch.

``torch_cluster.random_walk`` is not installable here. :func:`random_walks` advances every walk one step
at a time as one batched gather (a walk that reaches a node without neighbours stops: ``-1`` from then
on). :func:`top_visited` turns the walks started at each node into that node's ``k`` most visited
nodes and their visit counts (one ``torch.unique`` and one stable sort, no Python loop over nodes).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from gnnrec.sampling.neighbors import Block, make_block


def random_walks(indptr: Tensor, indices: Tensor, starts: Tensor, walk_length: int,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """Uniform random walks of ``walk_length`` steps from each of ``starts``.

    Returns:
        ``[n, walk_length + 1]`` long: column 0 is the start, column ``t`` the node after ``t`` steps;
        ``-1`` once a walk has hit a node with no neighbours.
    """
    n = starts.shape[0]
    device = indices.device
    cur = starts.long()
    steps = [cur]
    if walk_length == 0 or n == 0:
        return torch.stack(steps + [torch.full_like(cur, -1)] * walk_length, dim=1)
    u = torch.rand((walk_length, n), generator=generator, device=device)     # float32, one row per step
    last = max(indices.shape[0] - 1, 0)
    stopped = None
    for t in range(walk_length):
        safe = cur if stopped is None else cur.clamp_min(0)
        start = indptr.index_select(0, safe)
        deg = indptr.index_select(0, safe + 1) - start                      # [n]
        dead = deg == 0
        off = (u[t] * deg).long().clamp_max_((deg - 1).clamp_min_(0))
        cur = indices.index_select(0, (start + off).clamp_max_(last)) if indices.shape[0] else torch.zeros_like(cur)
        if stopped is not None or bool(dead.any()):
            stopped = dead if stopped is None else (stopped | dead)
            cur = cur.masked_fill(stopped, -1)
        steps.append(cur)
    return torch.stack(steps, dim=1)


def top_visited(walks: Tensor, owners: Tensor, n_owners: int, k: int,
                exclude: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` nodes most visited by the walks of each owner.

    Args:
        walks: ``[w, L + 1]`` from :func:`random_walks`; column 0 (the start) is not counted.
        owners: ``[w]`` long in ``[0, n_owners)``, which owner each walk counts for.
        n_owners: number of owners.
        k: neighbours kept per owner.
        exclude: ``[n_owners]`` node id per owner never counted (the owner itself), optional.

    Returns:
        ``(nbr [n_owners, k], counts [n_owners, k] float, mask [n_owners, k] bool)``, most visited first,
        ties by node id (lower first); unmasked entries are left-aligned.

    One ``torch.unique`` over packed ``(owner, node)`` keys counts the visits; one sort of packed
    ``(owner, -count, node)`` keys ranks them (bit fields: no division, no stable sort).
    """
    device = walks.device
    steps = walks[:, 1:]                                                     # [w, L]
    node_bits = max(int(steps.max()) + 2, 2).bit_length() if steps.numel() else 1
    owner_bits = max(n_owners, 1).bit_length()
    key = (owners[:, None] << node_bits) | steps.clamp_min(0)                # [w, L]
    invalid = steps < 0
    if exclude is not None:
        invalid |= steps == exclude.index_select(0, owners)[:, None]
    sentinel = (1 << (owner_bits + node_bits)) - 1                          # sorts last, dropped below
    key = key.masked_fill(invalid, sentinel).view(-1)
    keys, counts = torch.unique(key, return_counts=True)                    # sorted by (owner, node)
    if keys.numel() and int(keys[-1]) == sentinel:
        keys, counts = keys[:-1], counts[:-1]
    k_owner, k_node = keys >> node_bits, keys & ((1 << node_bits) - 1)
    count_bits = int(counts.max()).bit_length() + 1 if counts.numel() else 1
    top = (1 << count_bits) - 1
    packed = (k_owner << (count_bits + node_bits)) | ((top - counts) << node_bits) | k_node
    packed = torch.sort(packed).values                                       # owner, count desc, node
    k_owner = packed >> (count_bits + node_bits)
    counts = top - ((packed >> node_bits) & top)
    k_node = packed & ((1 << node_bits) - 1)
    first = torch.zeros(n_owners + 1, dtype=torch.long, device=device)
    first[1:] = torch.cumsum(torch.bincount(k_owner, minlength=n_owners), 0)
    rank = torch.arange(k_owner.shape[0], device=device) - first.index_select(0, k_owner)
    keep = rank < k
    slot = torch.masked_select(k_owner * k + rank, keep)                     # flat [n_owners * k] position
    nbr = torch.zeros(n_owners * k, dtype=torch.long, device=device)
    cnt = torch.zeros(n_owners * k, dtype=torch.float32, device=device)
    mask = torch.zeros(n_owners * k, dtype=torch.bool, device=device)
    nbr.index_copy_(0, slot, torch.masked_select(k_node, keep))
    cnt.index_copy_(0, slot, torch.masked_select(counts, keep).float())
    mask.index_fill_(0, slot, True)
    return nbr.view(n_owners, k), cnt.view(n_owners, k), mask.view(n_owners, k)


class RandomWalkSampler:
    r"""PinSage's neighbourhoods (Ying et al., KDD 2018): ``num_walks`` walks of ``walk_length`` steps from
    each node; its ``top_k`` most visited nodes (itself excluded) are its neighbours, and their visit
    counts are the importance weights of the pooling.

    Args:
        indptr, indices: the CSR graph.
        walk_length (int): steps per walk. (default: ``3``)
        num_walks (int): walks per node. (default: ``20``)
        top_k (int): neighbours kept per node. (default: ``10``)
        num_layers (int): hops of blocks built by :meth:`sample_blocks`. (default: ``2``)
    """

    def __init__(self, indptr: Tensor, indices: Tensor, walk_length: int = 3, num_walks: int = 20,
                 top_k: int = 10, num_layers: int = 2) -> None:
        self.indptr = indptr.long()
        self.indices = indices.long()
        self.walk_length = int(walk_length)
        self.num_walks = int(num_walks)
        self.top_k = int(top_k)
        self.num_layers = int(num_layers)
        self._scratch: Optional[Tensor] = None

    def scratch(self) -> Tensor:
        """``[N]`` long of ``-1``, made once: block deduplication without a sort (see ``union_first``)."""
        if self._scratch is None or self._scratch.device != self.indices.device:
            self._scratch = torch.full((self.indptr.shape[0] - 1,), -1, dtype=torch.long, device=self.indices.device)
        return self._scratch

    def neighbors(self, nodes: Tensor, generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(nbr [n, top_k], visit counts [n, top_k], mask [n, top_k])`` of ``nodes``."""
        n = nodes.shape[0]
        starts = nodes.long().repeat_interleave(self.num_walks)              # [n * W]
        walks = random_walks(self.indptr, self.indices, starts, self.walk_length, generator)
        owners = torch.arange(n, device=nodes.device).repeat_interleave(self.num_walks)    # [n * W]
        return top_visited(walks, owners, n, self.top_k, exclude=nodes.long())

    def sample_blocks(self, seeds: Tensor, generator: Optional[torch.Generator] = None) -> list[Block]:
        """Blocks for the distinct ``seeds`` (input layer first), neighbours weighted by visit counts."""
        blocks: list[Block] = []
        frontier = seeds.long()
        for _ in range(self.num_layers):
            nbr, counts, mask = self.neighbors(frontier, generator)
            block = make_block(frontier, nbr, mask, weight=counts, scratch=self.scratch())
            blocks.append(block)
            frontier = block.src_nodes
        return blocks[::-1]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(walk_length={self.walk_length}, num_walks={self.num_walks}, "
                f"top_k={self.top_k}, num_layers={self.num_layers})")


def loop_random_walk(indptr, indices, start: int, walk_length: int, rng) -> list[int]:
    """Reference walk: a Python loop (``rng`` a ``random.Random``); stops at a node without neighbours."""
    walk = [start]
    v = start
    for _ in range(walk_length):
        lo, hi = int(indptr[v]), int(indptr[v + 1])
        if hi == lo:
            break
        v = int(indices[lo + rng.randrange(hi - lo)])
        walk.append(v)
    return walk

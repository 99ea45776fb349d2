r"""GraphSAINT (Zeng et al., ICLR 2020) batches with the random-walk sampler and its normalisation, over
the CSR of the normalised adjacency (see :mod:`gnnrec.sampling.subgraph`, whose induced-sub-graph batches
they are): ``roots`` users, a walk of ``walk_length`` steps from each, the induced sub-graph of the
visited nodes. Pre-sampling counts how often each node (:math:`C_v`) and each edge (:math:`C_{u,v}`) is in
a sub-graph until the sub-graphs hold ``coverage`` copies of each node on average (``max_presample``:
an optional cap on the sub-graphs). A count that stays 0 is taken as 1, which biases the normalisation of
the edges never sampled: below a quarter of ``coverage`` a warning says how many training edges that is.

The counts are float32 (exact integers up to :math:`2^{24}` sub-graphs, half the memory of float64),
widened to float64 for a batch's entries only.
"""

from __future__ import annotations

import logging
import math
from typing import Iterator, Optional

import torch
from torch import Tensor

from gnnrec.sampling.subgraph import InducedSampler, Operator, induced_entries

logger = logging.getLogger("gnnrec.train")


class SaintSampler(InducedSampler):
    """GraphSAINT's random-walk sampler with its normalisation (see the module docstring). ``coverage``:
    pre-sampling draws sub-graphs until they hold about ``coverage`` copies of each node (at most
    ``max_presample`` sub-graphs; None: no cap), from its own generator seeded with ``seed``; below a
    quarter of ``coverage`` it logs a warning. ``coverage_reached``: the copies per node it reached."""

    def __init__(self, adj: Tensor, n_users: int, roots: int, walk_length: int, num_steps: Optional[int] = None,
                 coverage: int = 20, seed: int = 0, extra: Optional[Operator] = None,
                 max_presample: Optional[int] = None) -> None:
        super().__init__(adj, n_users, extra)
        self.roots, self.walk_length = int(roots), int(walk_length)
        self.root_pool = torch.nonzero(self.degree[: self.n_users] > 0).view(-1)
        if self.root_pool.numel() == 0:
            raise ValueError("GraphSAINT needs users with at least one training edge")
        self._presample(coverage, seed, max_presample)
        self.num_steps = int(num_steps) if num_steps else max(1, round(self.n_edges / max(self.mean_positives, 1.0)))

    def sample_nodes(self, generator: Optional[torch.Generator]) -> Tensor:
        """Sorted distinct nodes of ``roots`` random walks from uniformly drawn users."""
        from gnnrec.sampling.random_walk import random_walks

        pick = torch.randint(self.root_pool.shape[0], (self.roots,), generator=generator, device=self.indices.device)
        walks = random_walks(self.indptr, self.indices, self.root_pool[pick], self.walk_length, generator)
        return torch.unique(walks[walks >= 0])

    def _presample(self, coverage: int, seed: int, max_presample: Optional[int]) -> None:
        device, f32 = self.indices.device, torch.float32          # counts: exact integers up to 2**24
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        self.node_count = torch.zeros(self.n_nodes, dtype=f32, device=device)
        self.entry_count = torch.zeros(self.indices.shape[0], dtype=f32, device=device)
        self.extra_count = (torch.zeros(self.extra[1].shape[0], dtype=f32, device=device)
                            if self.extra is not None else None)
        active = int((self.degree > 0).sum())
        target = coverage * active
        cap = math.inf if max_presample is None else int(max_presample)   # each sub-graph adds >= 1 node: ends
        seen, positives, self.n_presampled = 0, 0, 0
        while seen < target and self.n_presampled < cap:
            nodes = self.sample_nodes(generator)
            self.local_of.index_copy_(0, nodes, torch.arange(nodes.shape[0], device=device))
            row, _, eidx = induced_entries(self.indptr, self.indices, nodes, self.local_of)
            self.entry_count.index_add_(0, eidx, torch.ones_like(eidx, dtype=f32))
            if self.extra is not None:
                _, _, t_eidx = induced_entries(self.extra[0], self.extra[1], nodes, self.local_of)
                self.extra_count.index_add_(0, t_eidx, torch.ones_like(t_eidx, dtype=f32))
            self.local_of.index_fill_(0, nodes, -1)
            self.node_count.index_add_(0, nodes, torch.ones_like(nodes, dtype=f32))
            positives += int((nodes.index_select(0, row) < self.n_users).sum())
            seen += nodes.shape[0]
            self.n_presampled += 1
        self.mean_positives = positives / self.n_presampled
        self.coverage_reached = seen / max(active, 1)
        if self.coverage_reached < coverage / 4:
            unseen = float((self.entry_count[: self.n_edges] == 0).to(f32).mean()) if self.n_edges else 0.0
            logger.warning("GraphSAINT pre-sampling stopped at max_presample=%d sub-graphs with %.1f copies per node "
                           "(sample_coverage %d); %.0f%% of the training edges were never sampled, their counts "
                           "are taken as 1 and bias the normalisation: raise train.subgraph.max_presample",
                           self.n_presampled, self.coverage_reached, coverage, 100 * unseen)
        for counts in (self.node_count, self.entry_count, self.extra_count):       # never seen: as if once
            if counts is not None:
                counts.clamp_min_(1.0)

    def steps_per_epoch(self) -> int:
        return self.num_steps

    def subgraphs(self, generator: Optional[torch.Generator]) -> Iterator[Tensor]:
        for _ in range(self.num_steps):
            yield self.sample_nodes(generator)

    def own_values(self, values: Tensor, nodes: Tensor, row: Tensor, col: Tensor, eidx: Tensor, which: int) -> Tensor:
        counts = self.entry_count if which == 0 else self.extra_count
        alpha = (counts.index_select(0, eidx).double()
                 / self.node_count.index_select(0, nodes.index_select(0, row)).double())
        return (values.index_select(0, eidx).double() / alpha).to(values.dtype)     # Â_vu / α_{u,v}

    def negative_values(self, values: Tensor, j: Tensor, v: Tensor, eidx: Tensor, which: int) -> Tensor:
        # Â_jv / P(v ∈ S | j ∉ S), with P(v ∈ S | j ∉ S) = (C_v - C_{j,v}) / (N - C_j): unbiased given j ∉ S
        counts = self.entry_count if which == 0 else self.extra_count
        c_v, c_j = self.node_count.index_select(0, v).double(), self.node_count.index_select(0, j).double()
        p = (c_v - counts.index_select(0, eidx).double()).clamp_min(1.0) / (self.n_presampled - c_j).clamp_min(1.0)
        return (values.index_select(0, eidx).double() / p).to(values.dtype)

    def loss_weight(self, eidx: Tensor) -> Tensor:
        lam = self.entry_count.index_select(0, eidx).double() / self.n_presampled  # λ_e = P(e ∈ S)
        return (1.0 / (lam * self.n_edges)).to(self.values.dtype)

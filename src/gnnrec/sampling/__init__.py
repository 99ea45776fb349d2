"""Samplers: negatives for pairwise losses, neighbour blocks and random walks (vectorised, on the
training device)."""

from gnnrec.sampling.negatives import (
                                       NEGATIVE_SAMPLERS,
                                       HardNegativeSampler,
                                       PopularityNegativeSampler,
                                       UniformNegativeSampler,
                                       build_negative_sampler,
)
from gnnrec.sampling.neighbors import Block, NeighborSampler, bipartite_csr, sample_neighbors
from gnnrec.sampling.random_walk import RandomWalkSampler, random_walks, top_visited

__all__ = ["NEGATIVE_SAMPLERS", "Block", "HardNegativeSampler", "NeighborSampler", "PopularityNegativeSampler",
           "RandomWalkSampler", "UniformNegativeSampler", "bipartite_csr", "build_negative_sampler", "random_walks",
           "sample_neighbors", "top_visited"]

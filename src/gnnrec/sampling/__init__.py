"""Samplers: negatives for pairwise losses (vectorised, on the training device)."""

from gnnrec.sampling.negatives import NEGATIVE_SAMPLERS, UniformNegativeSampler

__all__ = ["NEGATIVE_SAMPLERS", "UniformNegativeSampler"]

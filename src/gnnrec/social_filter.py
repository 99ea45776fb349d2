"""The ``taste`` social filter: keep a tie when the two users' tastes are more alike than chance would make them.

A fixed overlap threshold (:mod:`gnnrec.social_ties`) tuned on dense data keeps almost nothing on sparse
data and keeps hard fakes (users who share popular items) everywhere. This filter asks a different question
of every tie ``u → v``: is ``v`` more like ``u`` than users *like v* (of about the same activity) picked at
random? It adapts to sparsity because the reference is the data itself.

1. **Taste vectors** from the training data only: the truncated SVD of the symmetrically normalised matrix
   ``D_u^-1/2 [R | F] D_c^-1/2`` (``R`` the user × item interactions, ``F`` the users' one-hot side features
   where the data has them), rows of ``U·S`` scaled to unit length. The SVD has ``max(ranks)`` components;
   each rank of ``ranks`` uses the leading ones.
2. **A degree-matched null**: for each tie, ``null_draws`` users whose training degree is near ``v``'s
   (a window of ±``max(25, n/50)`` places in the degree order of the users with interactions), seeded.
   The tie's p-value is ``(1 + #{null similarity ≥ tie similarity}) / (1 + null_draws)``: uniform for a
   tie that is a random pair, small for a tie between like-minded users.
3. **How many ties are noise**: Storey's estimate ``π0 = #{p > 1/2} / (m/2)`` (capped at 1), the share of
   ties that look like random pairs. The rank with the lowest ``π0`` is used (the one under which the ties
   look least random; no labels needed).
4. **Which ties**: the local false-discovery rate of a p-value bin, ``lfdr = π0 / density`` (20 bins, made
   non-decreasing in ``p``), is the estimated probability that a tie with that p-value is noise; a tie is
   kept when ``lfdr < max_lfdr`` (0.5: kept when more likely genuine than noise).

NumPy and SciPy only (the build_graph stage imports no torch); deterministic in its inputs and ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from gnnrec.social_ties import binary_interactions

P_BINS = 20


@dataclass(frozen=True)
class TasteFilter:
    """The taste filter's verdict per tie and the figures behind it."""

    keep: np.ndarray          # bool per tie
    similarity: np.ndarray    # cosine of the two users' taste vectors (at the chosen rank)
    p_value: np.ndarray       # against the degree-matched null
    lfdr: np.ndarray          # estimated probability that the tie is noise
    pi0: float                # estimated share of ties that look like random pairs
    rank: int                 # the SVD rank used
    pi0_by_rank: dict[int, float]


def taste_vectors(n_users: int, n_items: int, train_users: np.ndarray, train_items: np.ndarray, rank: int,
                  feature_codes: Optional[np.ndarray] = None, n_levels: int = 0) -> np.ndarray:
    """``[n_users, rank']`` rows of ``U·S`` (zero for users without interactions or features; the filter
    scales them to unit length per rank), components sorted by singular value, ``rank' = min(rank,
    min(shape) - 1)``. ``feature_codes`` ``[n_users, F]`` (-1: unknown)
    add one column per feature level."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    blocks = [binary_interactions(n_users, n_items, train_users, train_items, dtype=np.float64)]
    if feature_codes is not None and n_levels > 0 and feature_codes.size:
        rows, cols = np.nonzero(feature_codes >= 0)
        blocks.append(sp.csr_matrix((np.ones(len(rows)), (rows, feature_codes[rows, cols])), shape=(n_users, n_levels)))
    a = sp.hstack(blocks).tocsr()
    row = np.asarray(a.sum(axis=1)).ravel()
    col = np.asarray(a.sum(axis=0)).ravel()
    scale_r = np.where(row > 0, 1.0 / np.sqrt(np.maximum(row, 1e-12)), 0.0)
    scale_c = np.where(col > 0, 1.0 / np.sqrt(np.maximum(col, 1e-12)), 0.0)
    a = (sp.diags(scale_r) @ a @ sp.diags(scale_c)).tocsc()
    k = max(1, min(rank, min(a.shape) - 1))
    u, s, _ = svds(a, k=k, v0=np.full(min(a.shape), 1.0 / np.sqrt(min(a.shape))), random_state=0)
    order = np.argsort(-s, kind="stable")
    return u[:, order] * s[order]


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def degree_matched_null(degree: np.ndarray, dst: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``[len(dst), draws]`` users of about ``dst``'s degree (users of degree 0 never drawn)."""
    active = np.flatnonzero(degree > 0)
    # equal degrees in a random order: ids often carry structure (a community, a crawl order) that the null must not
    order = active[np.lexsort((rng.random(len(active)), degree[active]))]
    place = np.zeros(len(degree), dtype=np.int64)
    place[order] = np.arange(len(order))
    window = max(25, len(order) // 50)
    offsets = rng.integers(-window, window + 1, size=(len(dst), draws))
    return order[np.clip(place[dst][:, None] + offsets, 0, len(order) - 1)]


def storey_pi0(p: np.ndarray, lam: float = 0.5) -> float:
    """Storey's estimate of the share of null (noise) ties among p-values ``p``."""
    if len(p) == 0:
        return 1.0
    return float(min(1.0, np.mean(p > lam) / (1.0 - lam)))


def local_fdr(p: np.ndarray, pi0: float, bins: int = P_BINS) -> np.ndarray:
    """Per p-value, ``π0 / f(p)`` with ``f`` the histogram density of ``p`` (capped at 1, non-decreasing in p)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    density, _ = np.histogram(p, edges, density=True)
    per_bin = np.minimum(1.0, pi0 / np.maximum(density, 1e-12))
    per_bin = np.maximum.accumulate(per_bin)                    # noise is likelier the larger the p-value
    return per_bin[np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)]


DEFAULT_RANKS = (4, 6, 8, 10, 12, 16, 24, 32, 48, 64)


def filter_by_taste(n_users: int, n_items: int, train_users: np.ndarray, train_items: np.ndarray, src: np.ndarray,
                    dst: np.ndarray, *, ranks: Sequence[int] = DEFAULT_RANKS, null_draws: int = 100,
                    max_lfdr: float = 0.5, seed: int = 0, feature_codes: Optional[np.ndarray] = None,
                    n_levels: int = 0, chunk: int = 8192) -> TasteFilter:
    """The taste filter over the directed ties ``src → dst`` (0-based users of the training graph)."""
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    if len(src) == 0:
        empty = np.zeros(0)
        return TasteFilter(np.zeros(0, bool), empty, empty, empty, 1.0, int(max(ranks)), {})
    degree = np.bincount(np.asarray(train_users, np.int64), minlength=n_users)
    vectors = taste_vectors(n_users, n_items, train_users, train_items, int(max(ranks)), feature_codes, n_levels)
    null = degree_matched_null(degree, dst, null_draws, np.random.default_rng(seed))
    best = None
    pi0_by_rank: dict[int, float] = {}
    for rank in sorted({min(int(r), vectors.shape[1]) for r in ranks}):
        x = _unit(vectors[:, :rank])
        sim = np.einsum("td,td->t", x[src], x[dst])
        above = np.zeros(len(src), dtype=np.int64)
        for start in range(0, len(src), chunk):          # the null's similarities, a chunk of ties at a time
            part = slice(start, start + chunk)
            null_sim = np.einsum("td,trd->tr", x[src[part]], x[null[part]])
            above[part] = (null_sim >= sim[part, None]).sum(axis=1)
        p = (1.0 + above) / (1.0 + null_draws)
        pi0 = storey_pi0(p)
        pi0_by_rank[rank] = round(pi0, 6)
        if best is None or pi0 < best[0] - 1e-12:
            best = (pi0, rank, sim, p)
    pi0, rank, sim, p = best
    lfdr = local_fdr(p, pi0)
    return TasteFilter(keep=lfdr < max_lfdr, similarity=sim, p_value=p, lfdr=lfdr, pi0=pi0, rank=rank,
                       pi0_by_rank=pi0_by_rank)

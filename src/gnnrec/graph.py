"""Graphs built from the training split: the bipartite user–item graph and the filtered social graph.

All adjacency matrices are ``torch.sparse_csr_tensor`` in float32: ``torch.sparse.mm`` over CSR is the
fastest whole-graph propagation on CPU (see DESIGN §4) and supports backward.
Node numbering of the bipartite graph: users ``0..n_users-1``, then items ``n_users..n_users+n_items-1``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


def csr_from_pairs(n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray,
                   values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays ``(indptr, indices, data)`` of the ``n_rows × n_cols`` matrix with entries at
    ``(rows, cols)``; indices sorted within each row. Duplicate pairs must already be merged."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    data = np.ones(len(rows), dtype=np.float32) if values is None else np.asarray(values, dtype=np.float32)
    order = np.lexsort((cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols, data


def bipartite_adjacency(n_users: int, n_items: int, users: np.ndarray | torch.Tensor,
                        items: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Symmetrically normalised adjacency ``D^-1/2 A D^-1/2`` of the user–item graph (no self loops).

    ``A = [[0, R], [R^T, 0]]`` with ``R`` the ``n_users × n_items`` binary interaction matrix; nodes of
    degree 0 get zero rows. Returns an ``(n_users + n_items)²`` sparse CSR tensor (float32).
    """
    u = np.asarray(users, dtype=np.int64)
    i = np.asarray(items, dtype=np.int64) + n_users
    n = n_users + n_items
    rows = np.concatenate([u, i])
    cols = np.concatenate([i, u])
    return normalized_adjacency(n, rows, cols)


def normalized_adjacency(n: int, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` for the ``n × n`` 0/1 matrix with entries at ``(rows, cols)``, as CSR.

    Degrees are row sums (for the symmetric graphs used here, row and column sums agree)."""
    deg = np.bincount(rows, minlength=n).astype(np.float64)
    inv_sqrt = np.zeros(n, dtype=np.float64)
    nz = deg > 0
    inv_sqrt[nz] = deg[nz] ** -0.5
    values = (inv_sqrt[rows] * inv_sqrt[cols]).astype(np.float32)
    indptr, indices, data = csr_from_pairs(n, n, rows, cols, values)
    return sparse_csr(indptr, indices, data, (n, n))


def sparse_csr(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A torch CSR tensor from numpy CSR arrays (int64 indices, float32 values)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(np.ascontiguousarray(indptr, dtype=np.int64)),
                                       torch.from_numpy(np.ascontiguousarray(indices, dtype=np.int64)),
                                       torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)),
                                       size=size, check_invariants=False)


@dataclass(frozen=True)
class SocialFilter:
    """Which social ties survive the overlap filter, and why."""

    keep: np.ndarray          # bool per input tie
    common: np.ndarray        # number of training items the two users share
    jaccard: np.ndarray       # |I_u ∩ I_v| / |I_u ∪ I_v| (0 when both are empty)


def filter_social_ties(n_users: int, n_items: int, train_users: np.ndarray, train_items: np.ndarray,
                       src: np.ndarray, dst: np.ndarray, min_common_items: int,
                       min_jaccard: float, chunk: int = 65536) -> SocialFilter:
    """Keep a tie (src → dst) when the two users' training item sets share at least
    ``min_common_items`` items and their Jaccard similarity is at least ``min_jaccard``.

    Computed per chunk of ties with sparse row products, never a dense users × items matrix.
    """
    import scipy.sparse as sp

    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    r = sp.csr_matrix((np.ones(len(train_users), dtype=np.float32),
                       (np.asarray(train_users), np.asarray(train_items))), shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    size = np.asarray(r.sum(axis=1)).ravel()
    common = np.zeros(len(src), dtype=np.int64)
    for start in range(0, len(src), chunk):
        s, d = src[start:start + chunk], dst[start:start + chunk]
        common[start:start + chunk] = np.asarray(r[s].multiply(r[d]).sum(axis=1)).ravel().astype(np.int64)
    union = size[src] + size[dst] - common
    jaccard = np.divide(common, union, out=np.zeros(len(src), dtype=np.float64), where=union > 0)
    keep = (common >= min_common_items) & (jaccard >= min_jaccard)
    return SocialFilter(keep=keep, common=common, jaccard=jaccard)

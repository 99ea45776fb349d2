"""The social graph's overlap filter: which user–user ties the build_graph stage keeps.

NumPy and SciPy only (the build_graph stage imports no torch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SocialFilter:
    """Which social ties survive the overlap filter, and why."""

    keep: np.ndarray          # bool per input tie
    common: np.ndarray        # number of training items the two users share
    jaccard: np.ndarray       # |I_u ∩ I_v| / |I_u ∪ I_v| (0 when both are empty)


def binary_interactions(n_users: int, n_items: int, train_users: np.ndarray, train_items: np.ndarray,
                        dtype=np.float32):
    """The ``n_users × n_items`` 0/1 CSR matrix of the training interactions (a pair given twice is one 1)."""
    import scipy.sparse as sp

    r = sp.csr_matrix((np.ones(len(train_users), dtype=dtype), (np.asarray(train_users), np.asarray(train_items))),
                      shape=(n_users, n_items))
    r.sum_duplicates()
    r.data[:] = 1.0
    return r


def filter_social_ties(n_users: int, n_items: int, train_users: np.ndarray, train_items: np.ndarray,
                       src: np.ndarray, dst: np.ndarray, min_common_items: int,
                       min_jaccard: float, chunk: int = 65536) -> SocialFilter:
    """Keep a tie (src → dst) when the two users' training item sets share at least
    ``min_common_items`` items and their Jaccard similarity is at least ``min_jaccard``.

    Computed per chunk of ties with sparse row products, never a dense users × items matrix.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    r = binary_interactions(n_users, n_items, train_users, train_items)
    size = np.asarray(r.sum(axis=1)).ravel()
    common = np.zeros(len(src), dtype=np.int64)
    for start in range(0, len(src), chunk):
        s, d = src[start:start + chunk], dst[start:start + chunk]
        common[start:start + chunk] = np.asarray(r[s].multiply(r[d]).sum(axis=1)).ravel().astype(np.int64)
    union = size[src] + size[dst] - common
    jaccard = np.divide(common, union, out=np.zeros(len(src), dtype=np.float64), where=union > 0)
    keep = (common >= min_common_items) & (jaccard >= min_jaccard)
    return SocialFilter(keep=keep, common=common, jaccard=jaccard)

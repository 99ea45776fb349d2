"""Normalised bipartite adjacency and the social overlap filter on hand-built graphs."""

from __future__ import annotations

import numpy as np
import torch

from gnnrec.graph import bipartite_adjacency, filter_social_ties


def test_bipartite_adjacency_matches_dense_formula():
    users = np.array([0, 0, 1, 2])
    items = np.array([0, 1, 1, 2])
    adj = bipartite_adjacency(3, 3, users, items)
    assert adj.layout == torch.sparse_csr and adj.shape == (6, 6)
    a = np.zeros((6, 6))
    for u, i in zip(users, items):
        a[u, 3 + i] = a[3 + i, u] = 1
    d = a.sum(1)
    expected = a / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(adj.to_dense().numpy(), expected, rtol=1e-6)
    # user 0 (degree 2) — item 1 (degree 2): 1/sqrt(2*2)
    assert abs(adj.to_dense()[0, 4].item() - 0.5) < 1e-7


def test_isolated_nodes_get_zero_rows():
    adj = bipartite_adjacency(3, 2, np.array([0]), np.array([0])).to_dense()
    assert adj[1].abs().sum() == 0 and adj[4].abs().sum() == 0
    assert adj[0, 3] == 1.0


def test_social_filter_by_common_items_and_jaccard():
    # user item sets: 0:{0,1,2}  1:{1,2}  2:{5}  3:{}
    tu = np.array([0, 0, 0, 1, 1, 2])
    ti = np.array([0, 1, 2, 1, 2, 5])
    src = np.array([0, 0, 1, 2])
    dst = np.array([1, 2, 2, 3])
    f = filter_social_ties(4, 6, tu, ti, src, dst, min_common_items=1, min_jaccard=0.0)
    assert f.common.tolist() == [2, 0, 0, 0]
    np.testing.assert_allclose(f.jaccard, [2 / 3, 0, 0, 0])
    assert f.keep.tolist() == [True, False, False, False]
    f = filter_social_ties(4, 6, tu, ti, src, dst, min_common_items=2, min_jaccard=0.7)
    assert f.keep.tolist() == [False, False, False, False]
    f = filter_social_ties(4, 6, tu, ti, src, dst, min_common_items=0, min_jaccard=0.0)
    assert f.keep.all()

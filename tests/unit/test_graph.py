"""The CSR builder, the normalised bipartite adjacency and the social overlap filter on hand-built graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.graph import bipartite_adjacency, csr_from_pairs, csr_rows
from gnnrec.social_ties import filter_social_ties


def test_csr_from_pairs_sorts_each_row_and_merges_duplicates():
    # rows 0: {3}, 1: {}, 2: {0, 1} with (2, 1) given twice, pairs in no particular order
    indptr, indices = csr_from_pairs(3, 4, [2, 0, 2, 2], [1, 3, 1, 0])
    assert indptr.dtype == indices.dtype == torch.long
    assert indptr.tolist() == [0, 1, 1, 3] and indices.tolist() == [3, 0, 1]
    assert csr_rows(indptr).tolist() == [0, 2, 2]


def test_csr_from_pairs_can_keep_duplicates():
    indptr, indices = csr_from_pairs(3, 4, [2, 0, 2, 2], [1, 3, 1, 0], merge_duplicates=False)
    assert indptr.tolist() == [0, 1, 1, 4] and indices.tolist() == [3, 0, 1, 1]


def test_csr_from_pairs_accepts_numpy_torch_and_lists_alike():
    rows, cols = [1, 0, 1, 3], [2, 4, 0, 4]
    expected = csr_from_pairs(4, 5, rows, cols)
    for r, c in [(np.array(rows), np.array(cols)), (torch.tensor(rows), torch.tensor(cols)),
                 (np.array(rows, dtype=np.int32), torch.tensor(cols, dtype=torch.int32))]:
        got = csr_from_pairs(4, 5, r, c)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert expected[0].tolist() == [0, 1, 3, 3, 4] and expected[1].tolist() == [4, 0, 2, 4]


def test_csr_from_pairs_of_nothing_and_bad_input():
    indptr, indices = csr_from_pairs(3, 2, [], [])
    assert indptr.tolist() == [0, 0, 0, 0] and indices.tolist() == []
    with pytest.raises(ValueError, match="out of range"):
        csr_from_pairs(2, 3, [0, 1], [0, 3])                     # column 3 of a 3-column matrix
    with pytest.raises(ValueError, match="out of range"):
        csr_from_pairs(2, 3, [-1], [0])
    with pytest.raises(ValueError, match="indices"):
        csr_from_pairs(2, 3, [0, 1], [0])


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


def test_repeated_interactions_count_in_the_degrees():
    # (user 0, item 0) twice: the entry is kept twice (degree 2 for both ends), as the dense formula's sum
    adj = bipartite_adjacency(2, 2, np.array([0, 0, 1]), np.array([0, 0, 1]))
    assert adj.values().shape[0] == 6 and adj.crow_indices().tolist() == [0, 2, 3, 5, 6]
    assert adj.col_indices().tolist() == [2, 2, 3, 0, 0, 1]
    dense = adj.to_dense()
    assert dense[0, 2].item() == pytest.approx(2 * 0.5)            # two entries of 1/sqrt(2 * 2)
    assert dense[1, 3].item() == 1.0


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

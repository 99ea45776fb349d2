"""Full-ranking evaluator: metrics (recall, NDCG, precision, hit rate, MRR, MAP) against hand-computed values,
masking, ties, chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnrec.constants import METRIC_NAMES
from gnnrec.evaluation import (
    csr_to_pairs,
    csr_union,
    evaluable_users,
    evaluate_ranking,
    ranking_metrics_per_user,
    top_k_items,
    topk_tiebreak,
)
from gnnrec.graph import csr_from_pairs


def as_embeddings(scores: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """user_emb = I, item_emb = S^T, so that user_emb @ item_emb.T == S exactly."""
    s = torch.tensor(scores, dtype=torch.float32)
    return torch.eye(s.shape[0]), s.t().contiguous()


# user 0: scores rank items 0 > 1 > 2 > 3 > 4; trained on item 1; test items {0, 3}
# user 1: scores rank items 4 > 3 > 2 > 1 > 0; trained on item 4; test item {2}
# user 2: no test item (would score perfectly on item 0 if counted)
SCORES = [[0.9, 0.8, 0.7, 0.6, 0.5],
          [0.1, 0.2, 0.3, 0.4, 0.5],
          [0.9, 0.1, 0.1, 0.1, 0.1]]
TRAIN = csr_from_pairs(3, 5, [0, 1], [1, 4])
TEST = csr_from_pairs(3, 5, [0, 0, 1], [0, 3, 2])


def test_metrics_match_hand_computation():
    ue, ie = as_embeddings(SCORES)
    m = evaluate_ranking(ue, ie, TRAIN, TEST, ks=[2, 3], chunk_size=1024)
    # after masking: user 0 ranks [0, 2, 3, 4] (hits at ranks 1 and 3); user 1 ranks [3, 2, 1, 0] (hit at 2)
    # K = 2: user 0 top [0, 2] -> 1 hit of 2; user 1 top [3, 2] -> 1 hit of 1
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    assert m["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["hitrate@2"] == pytest.approx((1 + 1) / 2)
    ndcg0 = (1 / math.log2(2)) / (1 / math.log2(2) + 1 / math.log2(3))   # IDCG over min(2, 2) = 2 hits
    ndcg1 = (1 / math.log2(3)) / (1 / math.log2(2))                      # IDCG over min(2, 1) = 1 hit
    assert m["ndcg@2"] == pytest.approx((ndcg0 + ndcg1) / 2)
    # K = 3: user 0 top [0, 2, 3] -> 2 hits; user 1 top [3, 2, 1] -> 1 hit
    assert m["recall@3"] == pytest.approx((2 / 2 + 1 / 1) / 2)
    assert m["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    ndcg0 = (1 / math.log2(2) + 1 / math.log2(4)) / (1 / math.log2(2) + 1 / math.log2(3))
    ndcg1 = (1 / math.log2(3)) / (1 / math.log2(2))
    assert m["ndcg@3"] == pytest.approx((ndcg0 + ndcg1) / 2)
    # MRR: user 0's first hit at rank 1, user 1's at rank 2 (both within K = 2 and K = 3)
    assert m["mrr@2"] == m["mrr@3"] == pytest.approx((1 / 1 + 1 / 2) / 2)
    # MAP@2: user 0: P@1 = 1 at its hit, over min(|T| = 2, 2); user 1: P@2 = 1/2, over min(1, 2)
    assert m["map@2"] == pytest.approx((1 / 2 + (1 / 2) / 1) / 2)
    # MAP@3: user 0 adds its hit at rank 3 (P@3 = 2/3), over min(2, 3) = 2
    assert m["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2) / 1) / 2)
    assert list(m) == [f"{name}@{k}" for k in (2, 3) for name in METRIC_NAMES]
    assert METRIC_NAMES == ("recall", "ndcg", "precision", "hitrate", "mrr", "map")


# one user per row, 7 items; every user ranks the items 0 > 1 > ... > 6 (rank r = item r - 1), except where
# scores tie (then by item id)
DESCENDING = [1.0 - i / 10 for i in range(7)]
RANK_SCORES = [DESCENDING,                                   # user 0: test {1, 3, 6} -> hits at ranks 2, 4, 7
               DESCENDING,                                   # user 1: test {2} -> hit at rank 3
               DESCENDING,                                   # user 2: test {0, 1} -> hits at ranks 1, 2
               DESCENDING,                                   # user 3: test {5} -> hit at rank 6 (outside K = 5)
               [0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.0]]          # user 4: ties 1-4; test {3, 5} -> ranks 4 and 6
RANK_TEST = csr_from_pairs(5, 7, [0, 0, 0, 1, 2, 2, 3, 4, 4], [1, 3, 6, 2, 0, 1, 5, 3, 5])


def test_mrr_and_map_match_hand_computation():
    ue, ie = as_embeddings(RANK_SCORES)
    users, per_user = ranking_metrics_per_user(ue, ie, None, RANK_TEST, ks=[1, 2, 5, 7])
    assert users.tolist() == [0, 1, 2, 3, 4]
    expected = {
        # MRR@K = 1 / rank of the first hit within the top K (0 without one)
        "mrr@1": [0, 0, 1, 0, 0],
        "mrr@2": [1 / 2, 0, 1, 0, 0],
        "mrr@5": [1 / 2, 1 / 3, 1, 0, 1 / 4],
        "mrr@7": [1 / 2, 1 / 3, 1, 1 / 6, 1 / 4],
        # MAP@K = sum of P@r over the hit ranks r <= K, divided by min(|T|, K)
        "map@1": [0, 0, 1 / 1, 0, 0],                      # user 2: P@1 = 1, over min(2, 1) = 1
        "map@2": [(1 / 2) / 2, 0, (1 + 2 / 2) / 2, 0, 0],  # user 0: 3 test items, over min(3, 2) = 2
        "map@5": [(1 / 2 + 2 / 4) / 3,                     # user 0: hits at ranks 2 and 4 of K = 5, 3 test items
                  (1 / 3) / 1,                             # user 1: fewer test items (1) than K
                  (1 + 2 / 2) / 2,                         # user 2: both test items on top -> 1
                  0,                                       # user 3: its hit is at rank 6
                  (1 / 4) / 2],                            # user 4: tie broken by id -> item 3 at rank 4
        "map@7": [(1 / 2 + 2 / 4 + 3 / 7) / 3, (1 / 3) / 1, (1 + 2 / 2) / 2, (1 / 6) / 1, (1 / 4 + 2 / 6) / 2],
    }
    for key, values in expected.items():
        assert per_user[key].tolist() == pytest.approx(values, abs=1e-15), key
    m = evaluate_ranking(ue, ie, None, RANK_TEST, ks=[5])
    assert m["mrr@5"] == pytest.approx((1 / 2 + 1 / 3 + 1 + 0 + 1 / 4) / 5)
    assert m["map@5"] == pytest.approx(((1 / 2 + 2 / 4) / 3 + 1 / 3 + 1 + 0 + (1 / 4) / 2) / 5)


def test_mrr_and_map_rank_after_masking_and_ties():
    # every score tied: the ranking is by item id; masking item 0 moves every item up one rank
    ue, ie = as_embeddings([[0.5] * 6])
    test = csr_from_pairs(1, 6, [0, 0], [2, 4])
    m = evaluate_ranking(ue, ie, None, test, ks=[5])
    assert m["mrr@5"] == pytest.approx(1 / 3)                       # ranking [0, 1, 2, ...]: first hit at 3
    assert m["map@5"] == pytest.approx((1 / 3 + 2 / 5) / 2)
    masked = evaluate_ranking(ue, ie, csr_from_pairs(1, 6, [0], [0]), test, ks=[5])
    assert masked["mrr@5"] == pytest.approx(1 / 2)                  # ranking [1, 2, 3, ...]: hits at 2 and 4
    assert masked["map@5"] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_mrr_and_map_do_not_depend_on_the_chunk_size():
    ue, ie = as_embeddings(RANK_SCORES)
    ref_users, ref = ranking_metrics_per_user(ue, ie, None, RANK_TEST, ks=[1, 3, 5], chunk_size=1024)
    for chunk in (1, 2, 3):
        users, got = ranking_metrics_per_user(ue, ie, None, RANK_TEST, ks=[1, 3, 5], chunk_size=chunk)
        assert torch.equal(users, ref_users)
        for key in ref:
            assert torch.equal(got[key], ref[key]), (chunk, key)
        assert evaluate_ranking(ue, ie, None, RANK_TEST, ks=[1, 3, 5], chunk_size=chunk) == \
            evaluate_ranking(ue, ie, None, RANK_TEST, ks=[1, 3, 5], chunk_size=1024)


def test_cut_offs_must_be_positive():
    ue, ie = as_embeddings(SCORES)
    with pytest.raises(ValueError, match="cut-offs"):
        evaluate_ranking(ue, ie, TRAIN, TEST, ks=[0, 5])


def test_training_items_are_masked():
    ue, ie = as_embeddings(SCORES)
    # without the mask, user 0's top 2 is [0, 1]: item 1 (trained) takes the slot of item 2
    unmasked = evaluate_ranking(ue, ie, None, TEST, ks=[2])
    masked = evaluate_ranking(ue, ie, TRAIN, TEST, ks=[2])
    # user 1 without the mask: top [4, 3] has no hit
    assert unmasked["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert masked["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    _, ids, scores = top_k_items(ue, ie, TRAIN, k=5)
    assert ids[0].tolist() == [0, 2, 3, 4, 1] and ids[1].tolist() == [3, 2, 1, 0, 4]
    assert torch.isinf(scores[0, -1]) and torch.isinf(scores[1, -1])


def test_users_without_test_items_are_excluded():
    ue, ie = as_embeddings(SCORES)
    m = evaluate_ranking(ue, ie, TRAIN, TEST, ks=[1])
    # user 0: top [0] hit; user 1: top [3] miss; user 2 (perfect on item 0) is not averaged in
    assert m["hitrate@1"] == pytest.approx(1 / 2)
    assert evaluable_users(TEST).tolist() == [0, 1]
    only_user_1 = evaluate_ranking(ue, ie, TRAIN, TEST, ks=[1], users=torch.tensor([1, 2]))
    assert only_user_1["hitrate@1"] == 0.0
    nobody = evaluate_ranking(ue, ie, TRAIN, TEST, ks=[1], users=torch.tensor([2]))
    assert nobody["recall@1"] == 0.0


def test_ties_are_broken_by_item_id():
    ue, ie = as_embeddings([[0.5] * 6, [0.5] * 6])
    test_low = csr_from_pairs(2, 6, [0, 1], [0, 0])
    test_high = csr_from_pairs(2, 6, [0, 1], [5, 5])
    assert evaluate_ranking(ue, ie, None, test_low, ks=[1])["recall@1"] == 1.0
    assert evaluate_ranking(ue, ie, None, test_high, ks=[1])["recall@1"] == 0.0
    _, ids, _ = top_k_items(ue, ie, csr_from_pairs(2, 6, [1], [0]), k=3)
    assert ids.tolist() == [[0, 1, 2], [1, 2, 3]]


def test_topk_tiebreak_orders_by_score_then_id():
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, 2.0],
                           [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    vals, ids = topk_tiebreak(scores, 4)
    assert ids.tolist() == [[1, 2, 4, 3], [5, 0, 1, 2]]
    assert vals.tolist() == [[3.0, 3.0, 3.0, 2.0], [1.0, 0.0, 0.0, 0.0]]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 40), st.integers(1, 45), st.integers(0, 2**31 - 1))
def test_topk_tiebreak_matches_a_lexsort_reference(n_rows, n_cols, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n_rows, n_cols)).astype(np.float32)   # many ties
    scores[rng.random((n_rows, n_cols)) < 0.2] = -np.inf
    vals, ids = topk_tiebreak(torch.from_numpy(scores), k)
    kk = min(k, n_cols)
    for r in range(n_rows):
        order = np.lexsort((np.arange(n_cols), -scores[r]))[:kk]            # score desc, then id asc
        assert ids[r].tolist() == order.tolist()
        np.testing.assert_array_equal(vals[r].numpy(), scores[r, order])


def test_chunk_size_does_not_change_results():
    g = torch.Generator().manual_seed(0)
    n_users, n_items = 37, 53
    ue, ie = torch.randn(n_users, 8, generator=g), torch.randn(n_items, 8, generator=g)
    ue[:5] = 0.0                                           # all-tied users too
    pairs = torch.randint(0, n_users * n_items, (400,), generator=g)
    train = csr_from_pairs(n_users, n_items, pairs[:250] // n_items, pairs[:250] % n_items)
    test_pairs = pairs[250:]
    test = csr_from_pairs(n_users, n_items, test_pairs // n_items, test_pairs % n_items)
    test_u, test_i = csr_to_pairs(test)
    train_keys = set((pairs[:250]).tolist())
    keep = torch.tensor([int(u) * n_items + int(i) not in train_keys for u, i in zip(test_u, test_i)])
    test = csr_from_pairs(n_users, n_items, test_u[keep], test_i[keep])
    ref = evaluate_ranking(ue, ie, train, test, ks=[5, 10], chunk_size=10_000)
    for chunk in (1, 7):
        assert evaluate_ranking(ue, ie, train, test, ks=[5, 10], chunk_size=chunk) == ref
        (ua, ia, sa), (ub, ib, sb) = (top_k_items(ue, ie, train, 10, chunk_size=c) for c in (chunk, 10_000))
        assert torch.equal(ua, ub) and torch.equal(ia, ib)
        torch.testing.assert_close(sa, sb)   # BLAS may round a 1-row product differently in the last bit


def test_metrics_against_brute_force_reference():
    """A straightforward per-user Python implementation of every metric agrees on random data."""
    g = torch.Generator().manual_seed(1)
    n_users, n_items, ks = 20, 30, [3, 10]
    ue, ie = torch.randn(n_users, 4, generator=g), torch.randn(n_items, 4, generator=g)
    rng = np.random.default_rng(1)
    train_sets = [set(rng.choice(n_items, rng.integers(0, 6), replace=False).tolist()) for _ in range(n_users)]
    test_sets = [set(rng.choice([i for i in range(n_items) if i not in tr], rng.integers(0, 5), replace=False)
                     .tolist()) for tr in train_sets]
    train = csr_from_pairs(n_users, n_items, *_pairs(train_sets))
    test = csr_from_pairs(n_users, n_items, *_pairs(test_sets))
    got = evaluate_ranking(ue, ie, train, test, ks=ks, chunk_size=6)
    scores = (ue @ ie.t()).numpy()
    sums = {f"{m}@{k}": 0.0 for k in ks for m in METRIC_NAMES}
    n = 0
    for u in range(n_users):
        if not test_sets[u]:
            continue
        n += 1
        ranked = [i for i in sorted(range(n_items), key=lambda i: (-scores[u, i], i)) if i not in train_sets[u]]
        for k in ks:
            hits = [1.0 if i in test_sets[u] else 0.0 for i in ranked[:k]]
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(test_sets[u]))))
            sums[f"recall@{k}"] += sum(hits) / len(test_sets[u])
            sums[f"ndcg@{k}"] += dcg / idcg
            sums[f"precision@{k}"] += sum(hits) / k
            sums[f"hitrate@{k}"] += float(sum(hits) > 0)
            sums[f"mrr@{k}"] += next((1 / (r + 1) for r, h in enumerate(hits) if h), 0.0)
            sums[f"map@{k}"] += sum(sum(hits[:r + 1]) / (r + 1) for r, h in enumerate(hits) if h) \
                / min(k, len(test_sets[u]))
    for key, total in sums.items():
        assert got[key] == pytest.approx(total / n, abs=1e-9), key


def test_k_larger_than_the_catalogue():
    ue, ie = as_embeddings([[0.3, 0.2, 0.1]])
    m = evaluate_ranking(ue, ie, None, csr_from_pairs(1, 3, [0], [2]), ks=[5])
    assert m["recall@5"] == 1.0
    assert m["precision@5"] == pytest.approx(1 / 5)
    assert m["ndcg@5"] == pytest.approx(1 / math.log2(4))
    assert m["mrr@5"] == pytest.approx(1 / 3)
    assert m["map@5"] == pytest.approx((1 / 3) / 1)                 # over min(|T| = 1, 5)


def test_csr_helpers_merge_duplicates_and_union():
    a = csr_from_pairs(3, 4, [2, 0, 2, 2], [1, 3, 1, 0])
    assert a[0].tolist() == [0, 1, 1, 3] and a[1].tolist() == [3, 0, 1]
    b = csr_from_pairs(3, 4, [1, 2], [2, 3])
    u = csr_union(a, b, 4)
    assert u[0].tolist() == [0, 1, 2, 5] and u[1].tolist() == [3, 2, 0, 1, 3]
    rows, cols = csr_to_pairs(u)
    assert rows.tolist() == [0, 1, 2, 2, 2] and cols.tolist() == [3, 2, 0, 1, 3]


def test_wrong_csr_size_is_an_error():
    ue, ie = as_embeddings(SCORES)
    with pytest.raises(ValueError, match="indptr"):
        evaluate_ranking(ue, ie, None, csr_from_pairs(2, 5, [0], [0]), ks=[1])


def _pairs(sets: list[set]) -> tuple[list[int], list[int]]:
    users = [u for u, s in enumerate(sets) for _ in s]
    items = [i for s in sets for i in s]
    return users, items


def test_scipy_csr_input_gives_the_same_metrics():
    import scipy.sparse as sp

    ue, ie = as_embeddings(SCORES)
    train = sp.csr_matrix((np.ones(2), ([0, 1], [1, 4])), shape=(3, 5))
    test = sp.csr_matrix((np.ones(3), ([0, 0, 1], [3, 0, 2])), shape=(3, 5))
    assert evaluate_ranking(ue, ie, train, test, ks=[2, 3]) == evaluate_ranking(ue, ie, TRAIN, TEST, ks=[2, 3])

"""The taste social filter: its statistic against a dense hand computation, its null, π0 and lfdr."""

from __future__ import annotations

import numpy as np
import pytest

from gnnrec.social_filter import (
    degree_matched_null,
    filter_by_taste,
    local_fdr,
    storey_pi0,
    taste_vectors,
)


def _communities(n_per=30, n_items=40, per_user=6, seed=0, n_comm=2):
    """``n_comm`` communities of ``n_per`` users, each consuming its own ``n_items / n_comm`` items (community
    ``c`` = users ``c·n_per ..``), one in five users with one random item."""
    rng = np.random.default_rng(seed)
    size = n_items // n_comm
    users, items = [], []
    for u in range(n_comm * n_per):
        picks = rng.choice(size, per_user, replace=False) + (u // n_per) * size
        if rng.random() < 0.2:
            picks[0] = rng.integers(0, n_items)
        users += [u] * per_user
        items += picks.tolist()
    return n_comm * n_per, n_items, np.array(users), np.array(items)


def test_taste_vectors_match_a_dense_svd_of_the_normalised_matrix():
    n_users, n_items, tu, ti = _communities(n_per=8, n_items=40, per_user=5)
    codes = np.stack([np.arange(n_users) % 2, np.where(np.arange(n_users) < 3, -1, 2 + np.arange(n_users) % 3)], 1)
    x = taste_vectors(n_users, n_items, tu, ti, rank=4, feature_codes=codes, n_levels=5)
    a = np.zeros((n_users, n_items + 5))
    a[tu, ti] = 1.0
    for f in range(2):
        known = codes[:, f] >= 0
        a[np.flatnonzero(known), n_items + codes[known, f]] = 1.0
    r, c = a.sum(1), a.sum(0)
    norm = a / np.sqrt(r)[:, None] / np.sqrt(np.where(c > 0, c, 1))[None, :]
    u, s, _ = np.linalg.svd(norm)
    ref = u[:, :4] * s[:4]

    def cos(m):
        unit = m / np.linalg.norm(m, axis=1, keepdims=True)
        return unit @ unit.T

    np.testing.assert_allclose(cos(x), cos(ref), atol=1e-6)      # component signs differ, cosines do not
    np.testing.assert_allclose(np.linalg.norm(x, axis=0), s[:4], rtol=1e-6)


def test_storey_pi0_and_local_fdr_by_hand():
    p = np.array([0.01, 0.02, 0.03, 0.04, 0.6, 0.7, 0.8, 0.9])
    assert storey_pi0(p) == pytest.approx(4 / 8 / 0.5)                 # 4 above 1/2, out of 8, over (1 - 1/2)
    assert storey_pi0(np.full(10, 0.9)) == 1.0                         # capped
    lf = local_fdr(p, pi0=0.5, bins=2)                                 # densities 8/8/0.5 * (4/8) = 1 per half
    np.testing.assert_allclose(lf, [0.5] * 8)
    p2 = np.array([0.1] * 6 + [0.6, 0.9])
    lf2 = local_fdr(p2, pi0=0.25, bins=2)                              # density 1.5 then 0.5 -> 1/6 then 1/2
    np.testing.assert_allclose(lf2, [0.25 / 1.5] * 6 + [0.5, 0.5])
    p3 = np.array([0.1, 0.6, 0.6, 0.6, 0.9, 0.9])                      # a denser upper bin is not less noisy
    assert np.all(np.diff(local_fdr(p3, pi0=0.5, bins=2)[np.argsort(p3)]) >= 0)


def test_the_null_draws_users_of_about_the_same_degree():
    degree = np.concatenate([np.arange(1, 201), np.zeros(20, dtype=np.int64)])   # 20 users without interactions
    null = degree_matched_null(degree, np.array([0, 100, 199]), draws=500, rng=np.random.default_rng(0))
    assert null.shape == (3, 500) and degree[null].min() > 0
    assert np.abs(degree[null[1]] - degree[100]).max() <= 25           # window of 25 places among 200 users
    assert degree[null[0]].max() <= 1 + 25 and degree[null[2]].min() >= 200 - 25


def test_the_filter_keeps_ties_within_a_community_and_drops_random_ones():
    n_users, n_items, tu, ti = _communities(n_per=40, n_items=120, per_user=8, n_comm=6)
    rng = np.random.default_rng(1)
    half = 40                                                          # users per community
    src_g = rng.integers(0, n_users, 300)
    dst_g = (src_g // half) * half + rng.integers(0, half, 300)        # same community
    src_r = rng.integers(0, n_users, 300)
    dst_r = rng.integers(0, n_users, 300)
    ok = (src_g != dst_g)
    src = np.concatenate([src_g[ok], src_r])
    dst = np.concatenate([dst_g[ok], dst_r])
    genuine = np.concatenate([np.ones(ok.sum(), bool), np.zeros(300, bool)])
    filt = filter_by_taste(n_users, n_items, tu, ti, src, dst, ranks=(3, 6, 12), seed=0)
    assert filt.pi0_by_rank[filt.rank] == min(filt.pi0_by_rank.values()) == round(filt.pi0, 6)
    assert 0.3 < filt.pi0 < 0.6            # half the ties are random pairs (a sixth of those within a community)
    assert filt.keep[genuine].mean() > 0.9                             # genuine ties kept
    cross = ~genuine & ((src // half) != (dst // half))
    assert filt.keep[cross].mean() < 0.15                              # random ties across communities dropped
    again = filter_by_taste(n_users, n_items, tu, ti, src, dst, ranks=(3, 6, 12), seed=0)
    assert np.array_equal(again.keep, filt.keep) and np.array_equal(again.p_value, filt.p_value)


def test_no_ties_gives_an_empty_verdict():
    n_users, n_items, tu, ti = _communities(n_per=5)
    filt = filter_by_taste(n_users, n_items, tu, ti, np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert filt.keep.shape == (0,) and filt.pi0 == 1.0

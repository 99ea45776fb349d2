"""Evaluation chunks sized to memory (gnnrec.evaluation.fit_chunk_size): the result never depends on them."""

from __future__ import annotations

import torch

from gnnrec.evaluation import (
    BYTES_PER_SCORE,
    CPU_MIN_CHUNK,
    CPU_SCORE_BLOCK,
    HOST_CHUNK_BUDGET,
    cpu_block_rows,
    evaluate_ranking,
    fit_chunk_size,
    top_k_items,
)
from gnnrec.graph import csr_from_pairs


def test_chunk_is_capped_by_the_memory_budget():
    assert fit_chunk_size(1024, 1000, "cpu") == 1024
    assert fit_chunk_size(None, 1000, "cpu") == HOST_CHUNK_BUDGET // (BYTES_PER_SCORE * 1000)
    assert fit_chunk_size(10**9, 10**6, "cpu") == HOST_CHUNK_BUDGET // (BYTES_PER_SCORE * 10**6)
    assert fit_chunk_size(1024, 10**12, "cpu") == 1                  # never 0


def test_metrics_do_not_depend_on_the_chunk():
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(30, 8, generator=g), torch.randn(50, 8, generator=g)
    pairs = torch.randint(0, 50, (30, 6), generator=g)
    u = torch.arange(30).repeat_interleave(6)
    train = csr_from_pairs(30, 50, u[::2], pairs.flatten()[::2])
    test_items = pairs.flatten()[1::2]
    keep = ~torch.isin(u[1::2] * 50 + test_items, u[::2] * 50 + pairs.flatten()[::2])
    test = csr_from_pairs(30, 50, u[1::2][keep], test_items[keep])
    base = evaluate_ranking(users, items, train, test, (5,), chunk_size=4)
    assert evaluate_ranking(users, items, train, test, (5,), chunk_size=None) == base


def test_cpu_chunks_are_capped_to_a_cache_sized_block():
    assert cpu_block_rows(17_632) == CPU_SCORE_BLOCK // (17_632 * 4) == 356      # LastFM's items, float32
    assert cpu_block_rows(1_682) == CPU_SCORE_BLOCK // (1_682 * 4)               # MovieLens: one chunk of 3,740
    assert cpu_block_rows(10**7) == CPU_MIN_CHUNK                                 # never fewer rows than this


def test_ranking_over_reused_score_buffers_matches_one_full_matrix():
    """Items enough that the CPU block caps 1,024-user chunks to 128 rows: 300 users run as 128 + 128 + 44
    through one score buffer; every chunk's top-k must be its own (no chunk overwritten by the next)."""
    n_users, n_items = 300, CPU_SCORE_BLOCK // (4 * 100)           # cpu_block_rows -> 100 -> CPU_MIN_CHUNK
    assert cpu_block_rows(n_items) == CPU_MIN_CHUNK
    g = torch.Generator().manual_seed(1)
    users, items = torch.randn(n_users, 8, generator=g), torch.randn(n_items, 8, generator=g)
    seen = csr_from_pairs(n_users, n_items, torch.arange(n_users), torch.randint(0, n_items, (n_users,), generator=g))
    scores = users @ items.t()
    scores[torch.arange(n_users), seen[1]] = float("-inf")
    expected = torch.topk(scores, 5, dim=1)
    got_users, got_ids, got_scores = top_k_items(users, items, seen, 5, chunk_size=1024)
    assert torch.equal(got_users, torch.arange(n_users))
    assert torch.equal(got_ids, expected.indices) and torch.equal(got_scores, expected.values)

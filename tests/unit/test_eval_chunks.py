"""Evaluation chunks sized to memory (gnnrec.evaluation.fit_chunk_size): the result never depends on them."""

from __future__ import annotations

import torch

from gnnrec.evaluation import BYTES_PER_SCORE, HOST_CHUNK_BUDGET, csr_from_pairs, evaluate_ranking, fit_chunk_size


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

"""Row gathers with a deterministic backward: repeated users and items in a batch must not make training
depend on thread timing (same params and seed, same metrics on CPU)."""

from __future__ import annotations

import torch

from gnnrec.models.base import gather_rows


def test_gather_rows_is_advanced_indexing_forward_for_any_index_shape():
    x = torch.arange(12.0).reshape(4, 3)
    idx = torch.tensor([[3, 0], [3, 3], [1, 2]])
    assert torch.equal(gather_rows(x, idx), x[idx])
    assert gather_rows(x, torch.tensor([2, 2, 0])).tolist() == [[6.0, 7.0, 8.0], [6.0, 7.0, 8.0], [0.0, 1.0, 2.0]]


def test_gather_rows_backward_adds_repeated_rows_the_same_way_every_time():
    """Advanced indexing's CPU backward gave 20 distinct gradients in 20 runs here (2 threads, atomic adds);
    ``gather_rows`` must give one, equal to the float64 sum."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2000, 32, generator=g, requires_grad=True)
        idx = torch.randint(0, 100, (12000,), generator=g)              # each row about 120 times
        w = torch.randn(12000, 32, generator=g)
        grads = set()
        for _ in range(10):
            x.grad = None
            (gather_rows(x, idx) * w).sum().backward()
            grads.add(x.grad.numpy().tobytes())
        assert len(grads) == 1
        expected = torch.zeros(2000, 32, dtype=torch.float64).index_add_(0, idx, w.double())
        torch.testing.assert_close(x.grad.double(), expected, rtol=1e-5, atol=1e-4)
    finally:
        torch.set_num_threads(threads)

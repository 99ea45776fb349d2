"""Samplers over CSR: neighbour sampling (fanouts, with/without replacement, seeds), blocks, random walks,
PinSage neighbourhoods, and the popularity / hard negative strategies."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from gnnrec.graph import csr_from_pairs
from gnnrec.sampling import (
    HardNegativeSampler,
    NeighborSampler,
    PopularityNegativeSampler,
    RandomWalkSampler,
    UniformNegativeSampler,
    bipartite_csr,
    build_negative_sampler,
    random_walks,
    sample_neighbors,
    top_visited,
)
from gnnrec.sampling.neighbors import loop_sample_neighbors, union_first

# a small directed graph: node -> neighbours (node 4 has none, node 0 has six)
NEIGH = {0: [1, 2, 3, 5, 6, 7], 1: [0, 2], 2: [0], 3: [0, 1, 2, 5], 4: [], 5: [6], 6: [0, 5], 7: [3]}
N = 8


@pytest.fixture
def csr():
    src = [v for v, ns in NEIGH.items() for _ in ns]
    dst = [u for ns in NEIGH.values() for u in ns]
    return csr_from_pairs(N, N, torch.tensor(src), torch.tensor(dst))


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_csr_lists_the_neighbours(csr):
    indptr, indices = csr
    for v, ns in NEIGH.items():
        assert indices[indptr[v]:indptr[v + 1]].tolist() == sorted(ns)


def test_bipartite_csr_uses_the_adjacency_numbering():
    indptr, indices = bipartite_csr(2, 3, [0, 0, 1], [0, 2, 2])
    assert indices[indptr[0]:indptr[1]].tolist() == [2, 4]            # user 0 -> items 0, 2 (+2 offset)
    assert indices[indptr[4]:indptr[5]].tolist() == [0, 1]            # item 2 -> users 0, 1


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("fanout", [1, 3, 10])
def test_sampled_neighbours_are_real_and_fanout_is_respected(csr, replace, fanout):
    nodes = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 0, 3])
    nbr, mask = sample_neighbors(*csr, nodes, fanout, replace=replace, generator=gen(1))
    assert nbr.shape == mask.shape == (len(nodes), fanout)
    for row, v in enumerate(nodes.tolist()):
        got = nbr[row][mask[row]].tolist()
        assert set(got) <= set(NEIGH[v])                               # only real neighbours
        expected = (fanout if NEIGH[v] else 0) if replace else min(fanout, len(NEIGH[v]))
        assert len(got) == expected
        assert mask[row].tolist() == [True] * expected + [False] * (fanout - expected)   # left-aligned
        if not replace:
            assert len(set(got)) == len(got)                           # no duplicates without replacement
            if len(NEIGH[v]) <= fanout:
                assert sorted(got) == NEIGH[v]                         # small neighbourhoods: all of them


@pytest.mark.parametrize("replace", [True, False])
def test_neighbour_sampling_is_seeded_and_uniform(csr, replace):
    nodes = torch.zeros(20000, dtype=torch.long)                         # node 0: 6 neighbours
    a, _ = sample_neighbors(*csr, nodes, 3, replace=replace, generator=gen(5))
    b, _ = sample_neighbors(*csr, nodes, 3, replace=replace, generator=gen(5))
    c, _ = sample_neighbors(*csr, nodes, 3, replace=replace, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    counts = Counter(a.flatten().tolist())                               # each neighbour: 1/6 of the draws
    total = 3 * len(nodes)
    for u in NEIGH[0]:
        assert abs(counts[u] / total - 1 / 6) < 0.01, counts
    if not replace:                                                      # every 3-subset about equally likely
        subsets = Counter(tuple(sorted(row)) for row in a.tolist())
        assert len(subsets) == 20 and max(subsets.values()) / min(subsets.values()) < 1.3


def test_python_loop_reference_agrees_on_support(csr):
    indptr, indices = (t.numpy() for t in csr)
    out = loop_sample_neighbors(indptr, indices, np.arange(N), 4, replace=False)
    for v, got in enumerate(out):
        assert set(got) <= set(NEIGH[v]) and len(got) == min(4, len(NEIGH[v]))


def test_union_first_keeps_destination_nodes_as_prefix():
    nodes, local = union_first(torch.tensor([7, 2, 5]), torch.tensor([2, 9, 7, 1, 9]))
    assert nodes.tolist() == [7, 2, 5, 9, 1]
    assert nodes[local].tolist() == [7, 2, 5, 2, 9, 7, 1, 9]


def test_union_with_scratch_matches_the_sorting_path():
    g = gen(4)
    scratch = torch.full((50,), -1, dtype=torch.long)
    for _ in range(20):
        dst = torch.randperm(50, generator=g)[:7]
        new = torch.randint(0, 50, (30,), generator=g)
        a_nodes, a_local = union_first(dst, new)
        b_nodes, b_local = union_first(dst, new, scratch)
        assert torch.equal(a_nodes, b_nodes) and torch.equal(a_local, b_local)
        assert (scratch == -1).all()                                     # left as found


def test_blocks_cover_exactly_the_receptive_field(csr):
    seeds = torch.tensor([3, 6])
    sampler = NeighborSampler(*csr, fanouts=[2, 3], replace=False)
    blocks = sampler.sample_blocks(seeds, gen(0))
    assert len(blocks) == 2
    assert blocks[-1].dst_nodes.tolist() == [3, 6]                       # output block: the seeds
    assert torch.equal(blocks[0].dst_nodes, blocks[1].src_nodes)         # chained input → output
    for block, fanout in zip(blocks, [3, 2]):                            # input block uses the outer fanout
        assert block.nbr.shape == (block.n_dst, fanout)
        assert torch.equal(block.src_nodes[: block.n_dst], block.dst_nodes)
        src, dst = block.edge_index()
        for s, d in zip(block.src_nodes[src].tolist(), block.dst_nodes[dst].tolist()):
            assert s in NEIGH[d]                                         # every block edge is a graph edge
        assert len(set(block.src_nodes.tolist())) == block.n_src        # distinct nodes
        # nodes are only the destinations and their sampled neighbours
        assert set(block.src_nodes.tolist()) == set(block.dst_nodes.tolist()) | set(block.src_nodes[src].tolist())
    # receptive field: at most seeds * (1 + f1) * (1 + f2) nodes, whatever the graph size
    assert blocks[0].n_src <= 2 * 3 * 4


def test_block_size_grows_with_fanout_not_with_the_graph():
    rng = np.random.default_rng(0)
    sizes = {}
    for n_nodes in (1_000, 50_000):
        src = rng.integers(0, n_nodes, 20 * n_nodes)
        dst = rng.integers(0, n_nodes, 20 * n_nodes)
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])          # both directions
        indptr, indices = csr_from_pairs(n_nodes, n_nodes, src, dst)
        blocks = NeighborSampler(indptr, indices, [5, 5]).sample_blocks(torch.arange(10), gen(0))
        sizes[n_nodes] = blocks[0].n_src
    assert max(sizes.values()) <= 10 * 6 * 6


# ---------------------------------------------------------------------------------- random walks
def test_walk_steps_follow_edges_and_stop_at_dead_ends(csr):
    starts = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7] * 50)
    walks = random_walks(*csr, starts, walk_length=5, generator=gen(3))
    assert walks.shape == (400, 6) and walks[:, 0].tolist() == starts.tolist()
    for walk in walks.tolist():
        for a, b in zip(walk, walk[1:]):
            if a == -1:
                assert b == -1                                           # stopped walks stay stopped
            elif b != -1:
                assert b in NEIGH[a]
            else:
                assert NEIGH[a] == []                                    # stops only at a node without neighbours
    assert (walks[starts == 4][:, 1:] == -1).all()
    assert torch.equal(walks, random_walks(*csr, starts, 5, generator=gen(3)))


def test_walk_step_distribution_is_uniform_over_neighbours(csr):
    walks = random_walks(*csr, torch.zeros(30000, dtype=torch.long), 1, generator=gen(0))
    counts = Counter(walks[:, 1].tolist())
    assert set(counts) == set(NEIGH[0])
    assert max(counts.values()) / min(counts.values()) < 1.1


def test_top_visited_counts_and_orders():
    walks = torch.tensor([[0, 5, 6, 5], [0, 6, 0, 7], [1, 2, -1, -1], [1, 2, 3, 2]])
    owners = torch.tensor([0, 0, 1, 1])
    nbr, counts, mask = top_visited(walks, owners, 2, k=2, exclude=torch.tensor([0, 1]))
    # owner 0 (start node 0, never counted): 5 x2, 6 x2, 7 x1 -> [5, 6] (tie by id); owner 1: 2 x3, 3 x1
    assert nbr.tolist() == [[5, 6], [2, 3]]
    assert counts.tolist() == [[2.0, 2.0], [3.0, 1.0]]
    assert mask.all()


def test_random_walk_sampler_blocks_are_weighted_by_visits():
    indptr, indices = bipartite_csr(3, 3, [0, 0, 1, 2], [0, 1, 1, 2])
    sampler = RandomWalkSampler(indptr, indices, walk_length=2, num_walks=50, top_k=3, num_layers=2)
    blocks = sampler.sample_blocks(torch.tensor([0]), gen(0))
    out = blocks[-1]
    assert out.dst_nodes.tolist() == [0]
    hood = out.src_nodes[out.nbr[0][out.mask[0]]].tolist()
    assert set(hood) <= {3, 4, 1} and 0 not in hood                      # items 0, 1 and co-user 1
    assert (out.weight[0][out.mask[0]] > 0).all()
    assert out.weight[0].tolist() == sorted(out.weight[0].tolist(), reverse=True)
    isolated = sampler.neighbors(torch.tensor([2, 5]), gen(0))           # user 2 <-> item 2 only
    assert set(isolated[0][0][isolated[2][0]].tolist()) == {5}


# -------------------------------------------------------------------------------------- negatives
def interactions():
    pos = {0: [0, 1, 2, 3], 1: [7], 2: [1, 3, 5, 6], 3: [0, 1, 2, 3, 4, 5, 7]}
    users = torch.tensor([u for u, its in pos.items() for _ in its])
    items = torch.tensor([i for its in pos.values() for i in its])
    return pos, users, items


def test_popularity_negatives_follow_degree_power_and_exclude_positives():
    pos, users, items = interactions()
    sampler = PopularityNegativeSampler(4, 8, users, items, alpha=1.0)
    draws = sampler.sample(torch.full((40000,), 1), gen(0))              # user 1 owns item 7 only
    assert not sampler.contains(torch.full((40000,), 1), draws).any()
    counts = Counter(draws.tolist())
    deg = torch.bincount(items, minlength=8).double()
    deg[7] = 0                                                           # user 1's positive
    expected = deg / deg.sum()
    for item in range(8):
        assert abs(counts[item] / 40000 - float(expected[item])) < 0.01, (item, counts)
    # user 3 holds almost every popular item: the exact fallback still never returns a positive
    draws = sampler.sample(torch.full((2000,), 3), gen(1))
    assert set(draws.tolist()) <= {6}
    assert torch.equal(sampler.sample(torch.arange(4).repeat(50), gen(2)),
                       sampler.sample(torch.arange(4).repeat(50), gen(2)))


def test_popularity_with_alpha_zero_is_uniform():
    _, users, items = interactions()
    sampler = PopularityNegativeSampler(4, 8, users, items, alpha=0.0)
    counts = Counter(sampler.sample(torch.full((24000,), 0), gen(0)).tolist())
    assert set(counts) == {4, 5, 6, 7} and max(counts.values()) / min(counts.values()) < 1.1


class _FixedScores(torch.nn.Module):
    """A model whose item scores are the item ids: higher id, harder negative."""

    def embed(self, adj):
        return torch.ones(4, 1), torch.arange(8, dtype=torch.float32)[:, None]


def test_hard_negatives_take_the_best_scored_candidate():
    pos, users, items = interactions()
    sampler = build_negative_sampler("hard", 4, 8, users, items, pool=8)
    assert isinstance(sampler, HardNegativeSampler) and sampler.needs_model
    batch = torch.zeros(3000, dtype=torch.long)                          # user 0: negatives 4..7
    hard = sampler.sample(batch, gen(0), model=_FixedScores())
    counts = Counter(hard.tolist())
    assert set(counts) <= {4, 5, 6, 7} and counts[7] > 0.9 * len(batch)  # best of 8 candidates: almost always 7
    assert not sampler.contains(batch, hard).any()
    easy = sampler.sample(batch, gen(0))                                 # without a model: the base sampler
    assert max(Counter(easy.tolist()).values()) < 0.4 * len(batch)


def test_hard_negative_curriculum_grows_the_share():
    _, users, items = interactions()
    sampler = HardNegativeSampler.wrap(UniformNegativeSampler(4, 8, users, items), pool=16, share=0.5,
                                       curriculum_epochs=4)
    batch = torch.zeros(4000, dtype=torch.long)
    shares = []
    for epoch in (1, 3, 5, 9):
        sampler.set_epoch(epoch)
        draws = sampler.sample(batch, gen(epoch), model=_FixedScores())
        shares.append(float((draws == 7).double().mean()))
    assert sampler.current_share() == 0.5
    # share of 7 = uniform 1/4 plus the hard share: 0.25 → 0.25 + 0.25 * 0.75 at epoch 3 → 0.625 after
    assert shares[0] == pytest.approx(0.25, abs=0.03)
    assert shares[1] == pytest.approx(0.25 + 0.5 * 0.5 * 0.75, abs=0.04)
    assert shares[2] == pytest.approx(0.625, abs=0.04) and shares[3] == pytest.approx(0.625, abs=0.04)

"""Sub-graph training of the whole-graph models (``train.subgraph``): Cluster-GCN (METIS parts), GraphSAINT
(random walks, its normalisation) and layer-wise sampling (LADIES, FastGCN), each estimator checked against
the full-graph value on tiny hand-built graphs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from gnnrec.config import TrainConfig, params_from_dict
from gnnrec.errors import ParamsError
from gnnrec.graph import bipartite_adjacency
from gnnrec.models import GCN, MF, NGCF, LightGCN, SocialGNN
from gnnrec.sampling.layerwise import LayerwiseSampler
from gnnrec.sampling.subgraph import ClusterSampler, LocalOperator, SaintSampler, metis_parts
from gnnrec.training import InteractionData, prepare_adjacency, train_model

pytestmark = pytest.mark.usefixtures("one_thread")

# 6 users x 5 items, every node of degree >= 2; node ids: users 0..5, items 6..10
USERS = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0, 3])
ITEMS = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 0, 1, 3, 4, 2])
N_USERS, N_ITEMS = 6, 5
TIES = (np.array([0, 1, 2, 4]), np.array([1, 2, 5, 3]))       # social ties (undirected)


def tiny_adj():
    return prepare_adjacency(bipartite_adjacency(N_USERS, N_ITEMS, USERS, ITEMS))


def graph_dict():
    return {"n_users": N_USERS, "n_items": N_ITEMS, "train_user": USERS, "train_item": ITEMS,
            "social_src": TIES[0], "social_dst": TIES[1]}


def generator(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def dense(op: LocalOperator) -> torch.Tensor:
    out = torch.zeros(op.n_dst, op.n_src, dtype=torch.float64)
    out.index_put_((op.row, op.col), op.val.double(), accumulate=True)
    return out


def in_subgraph_items(users, items, g):
    """Negatives from the sub-graph's own items (no receive-only rows)."""
    return items[torch.randint(items.shape[0], users.shape, generator=g)]


# ------------------------------------------------------------------------------------ Cluster-GCN
def test_metis_partition_is_deterministic_for_a_seed_and_cuts_nothing_between_components():
    # two components: users 0-2 x items 0-2 and users 3-5 x items 3-5 (complete bipartite each)
    users = np.repeat(np.arange(6), 3)
    items = np.concatenate([np.tile([0, 1, 2], 3), np.tile([3, 4, 5], 3)])
    adj = prepare_adjacency(bipartite_adjacency(6, 6, users, items))
    indptr, indices = adj.crow_indices().long(), adj.col_indices().long()
    parts = metis_parts(indptr, indices, 2, seed=7)
    assert torch.equal(parts, metis_parts(indptr, indices, 2, seed=7))
    component = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1])      # users 0-5, then items 0-5
    assert torch.equal(parts, component) or torch.equal(parts, 1 - component)
    big = tiny_adj()
    p = metis_parts(big.crow_indices().long(), big.col_indices().long(), 3, seed=1)
    assert sorted(set(p.tolist())) == [0, 1, 2]
    assert torch.equal(p, metis_parts(big.crow_indices().long(), big.col_indices().long(), 3, seed=1))


@pytest.mark.parametrize("model_cls", [LightGCN, NGCF, GCN, SocialGNN])
def test_cluster_batch_with_every_part_is_the_full_graph_and_its_forward_the_full_forward(model_cls):
    adj = tiny_adj()
    model = model_cls(N_USERS, N_ITEMS, embedding_dim=8)
    model.prepare(graph_dict()).eval()
    sampler = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=3, seed=0,
                             extra=model.subgraph_extra_edges())
    (nodes,) = list(sampler.subgraphs(generator()))
    batch = sampler.batch(nodes, lambda u, i, g: torch.randint(N_ITEMS, u.shape, generator=g), generator())
    assert torch.equal(batch.nodes, torch.arange(N_USERS + N_ITEMS)) and batch.n_out == N_USERS + N_ITEMS
    assert torch.allclose(dense(batch.layers[0]).float(), adj.to_dense(), atol=1e-7)
    assert torch.equal(batch.degree, adj.crow_indices().diff().float())
    u, i, j = batch.global_ids()
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(zip(USERS.tolist(), ITEMS.tolist()))   # every edge
    assert torch.allclose(batch.weight, torch.full_like(batch.weight, 1 / len(USERS)))
    pos, neg = model.subgraph_forward(batch)
    full_pos, full_neg = model(adj, u, i, j)
    assert torch.allclose(pos, full_pos, atol=1e-6) and torch.allclose(neg, full_neg, atol=1e-6)


def test_cluster_batch_keeps_between_cluster_edges_and_renormalises_on_the_subgraph():
    adj = tiny_adj()
    sampler = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=2, seed=0)
    a = (adj.to_dense() > 0).double()
    visited, between = [], 0
    for nodes in sampler.subgraphs(generator(3)):                 # 3 parts, 2 per batch: batches of 2 and 1
        parts = sampler.parts[nodes]
        visited += sorted(set(parts.tolist()))
        batch = sampler.batch(nodes, in_subgraph_items, generator())
        sub = a[nodes][:, nodes]                                   # induced: between-part edges kept
        d = sub.sum(1)
        expected = sub / torch.sqrt(d[:, None] * d[None, :]).clamp_min(1e-12)
        assert batch.nodes.shape == nodes.shape                    # the negatives are the sub-graph's items
        assert torch.allclose(dense(batch.layers[0]), expected, atol=1e-6)
        assert torch.equal(batch.degree, d.float())
        between += int((dense(batch.layers[0]) * (parts[:, None] != parts[None, :])).count_nonzero())
    assert sorted(visited) == [0, 1, 2] and between > 0           # each part once per epoch


def test_cluster_batch_with_time_decay_weights_renormalises_the_weighted_subgraph():
    w = np.linspace(0.2, 1.0, len(USERS))                         # graph.time_decay-like edge weights
    adj = prepare_adjacency(bipartite_adjacency(N_USERS, N_ITEMS, USERS, ITEMS, w))
    wdeg = torch.zeros(N_USERS + N_ITEMS, dtype=torch.float64)
    wdeg.index_add_(0, torch.as_tensor(USERS), torch.as_tensor(w)).index_add_(0, torch.as_tensor(ITEMS + N_USERS),
                                                                             torch.as_tensor(w))
    a = torch.zeros(N_USERS + N_ITEMS, N_USERS + N_ITEMS, dtype=torch.float64)
    a.index_put_((torch.as_tensor(USERS), torch.as_tensor(ITEMS + N_USERS)), torch.as_tensor(w), accumulate=True)
    a = a + a.t()
    every = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=3, seed=0, weighted_degree=wdeg)
    (nodes,) = list(every.subgraphs(generator()))
    batch = every.batch(nodes, in_subgraph_items, generator())
    assert torch.allclose(dense(batch.layers[0]).float(), adj.to_dense(), atol=1e-6)   # every part: the full graph
    sampler = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=2, seed=0, weighted_degree=wdeg)
    for nodes in sampler.subgraphs(generator(3)):
        batch = sampler.batch(nodes, in_subgraph_items, generator())
        sub = a[nodes][:, nodes]                                   # the induced weighted sub-graph
        d = sub.sum(1)
        expected = sub / torch.sqrt(d[:, None] * d[None, :]).clamp_min(1e-12)
        assert torch.allclose(dense(batch.layers[0]), expected, atol=1e-6)


def test_cluster_negative_outside_the_subgraph_receives_but_sends_nothing():
    adj = tiny_adj()
    sampler = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=1, seed=0)
    a = (adj.to_dense() > 0).double()
    nodes = next(iter(sampler.subgraphs(generator())))
    outside = [i for i in range(N_ITEMS) if N_USERS + i not in nodes.tolist()
               and a[N_USERS + i, nodes].sum() > 0][0]
    batch = sampler.batch(nodes, lambda u, i, g: torch.full_like(u, outside), generator())
    n = nodes.shape[0]
    assert batch.nodes[n:].tolist() == [N_USERS + outside] and torch.all(batch.neg == n)
    m = dense(batch.layers[0])
    assert torch.all(m[:, n] == 0)                                  # nobody receives from the negative
    hood = a[N_USERS + outside, nodes]
    d_sub = a[nodes][:, nodes].sum(1)
    expected = hood / torch.sqrt(hood.sum() * (d_sub + hood))     # as if it had joined the sub-graph
    assert torch.allclose(m[n, :n], expected, atol=1e-6)


# ------------------------------------------------------------------------------------ GraphSAINT
def test_saint_normalised_aggregation_is_unbiased():
    """Over many sub-graphs, each node's aggregation (α-normalised, given the node is sampled) averages
    to the full-graph ``Â x`` within 4% of its scale; the unnormalised restriction of ``Â`` does not."""
    adj = tiny_adj()
    sampler = SaintSampler(adj, N_USERS, roots=2, walk_length=2, coverage=3000, seed=0, max_presample=20000)
    x = torch.rand(N_USERS + N_ITEMS, 3, generator=generator(1), dtype=torch.float64) + 0.5
    exact = adj.to_dense().double() @ x
    total, naive = torch.zeros_like(x), torch.zeros_like(x)
    seen = torch.zeros(N_USERS + N_ITEMS, dtype=torch.float64)
    a = adj.to_dense().double()
    g = generator(2)
    for _ in range(3000):
        nodes = sampler.sample_nodes(g)
        batch = sampler.batch(nodes, in_subgraph_items, g)
        total[nodes] += dense(batch.layers[0]) @ x[nodes]
        naive[nodes] += a[nodes][:, nodes] @ x[nodes]
        seen[nodes] += 1
    estimate = total / seen[:, None]
    scale = exact.abs().max()
    assert (estimate - exact).abs().max() < 0.04 * scale
    assert (naive / seen[:, None] - exact).abs().max() > 0.15 * scale


def test_saint_receive_only_negative_and_loss_normalisation_are_unbiased():
    """A fixed negative item's aggregation (inside the sub-graph or receive-only) and the weighted sum of
    per-edge losses over the sub-graph's positives average to the full-graph values."""
    adj = tiny_adj()
    sampler = SaintSampler(adj, N_USERS, roots=2, walk_length=2, coverage=3000, seed=0, max_presample=20000)
    x = torch.rand(N_USERS + N_ITEMS, 3, generator=generator(1), dtype=torch.float64) + 0.5
    neg_item = 4
    exact_neg = (adj.to_dense().double() @ x)[N_USERS + neg_item]
    edge_loss = torch.rand(N_USERS, N_ITEMS, generator=generator(3), dtype=torch.float64)
    exact_loss = edge_loss[torch.from_numpy(USERS), torch.from_numpy(ITEMS)].mean()
    neg_sum, loss_sum, outside, runs = torch.zeros(3, dtype=torch.float64), 0.0, 0, 3000
    g = generator(4)
    for _ in range(runs):
        nodes = sampler.sample_nodes(g)
        batch = sampler.batch(nodes, lambda u, i, gen: torch.full_like(u, neg_item), g)
        local = batch.neg[0]
        outside += int(local >= nodes.shape[0])
        neg_sum += (dense(batch.layers[0]) @ x[batch.nodes])[local]
        u, i, _ = batch.global_ids()
        loss_sum += float((batch.weight.double() * edge_loss[u, i]).sum())
    assert 0.2 * runs < outside < 0.8 * runs                       # both cases happen
    assert (neg_sum / runs - exact_neg).abs().max() < 0.04 * exact_neg.abs().max()
    assert abs(loss_sum / runs - float(exact_loss)) < 0.03 * float(exact_loss)


# ------------------------------------------------------------------------------------ layer-wise
@pytest.mark.parametrize("importance", ["ladies", "fastgcn"])
def test_layerwise_estimate_is_unbiased(importance):
    """The mean over many samples of one layer's estimate ``Σ_j Â_Dj c_j/(s q_j) h_j`` (and of the social
    ties' part) is the exact ``(Â H)_D`` within 5 standard errors (and 5% of its scale)."""
    adj = tiny_adj()
    social = SocialGNN(N_USERS, N_ITEMS, embedding_dim=4).prepare(graph_dict())
    extra = social.subgraph_extra_edges()
    sampler = LayerwiseSampler(adj, N_USERS, [3], importance, extra=extra)
    s_dense = torch.zeros(N_USERS + N_ITEMS, N_USERS + N_ITEMS, dtype=torch.float64)
    s_dense[torch.repeat_interleave(torch.arange(N_USERS + N_ITEMS), extra[0].diff()), extra[1]] = extra[2].double()
    h = torch.rand(N_USERS + N_ITEMS, 2, generator=generator(5), dtype=torch.float64) + 0.5
    dst = torch.tensor([0, 3, N_USERS + 1, N_USERS + 4])
    exact = torch.cat([(adj.to_dense().double() @ h)[dst], (s_dense @ h)[dst]], 1)
    runs, g = 4000, generator(6)
    draws = torch.zeros(runs, dst.shape[0], 4, dtype=torch.float64)
    for r in range(runs):
        op, src = sampler.layer(dst, 3, g)
        assert torch.equal(src[: dst.shape[0]], dst)              # the layer's own nodes come first
        tied = torch.zeros(dst.shape[0], 2, dtype=torch.float64)
        t_dst, t_src, t_val = op.ties
        tied.index_add_(0, t_dst, t_val.double()[:, None] * h[src][t_src])
        draws[r] = torch.cat([dense(op) @ h[src], tied], 1)
    mean, se = draws.mean(0), draws.std(0) / runs ** 0.5
    assert torch.all((mean - exact).abs() <= 5 * se + 1e-9)
    assert (mean - exact).abs().max() < 0.05 * exact.abs().max()


def test_ladies_draws_only_neighbours_of_the_layer_above():
    adj = tiny_adj()
    sampler = LayerwiseSampler(adj, N_USERS, [4], "ladies")
    dst = torch.tensor([0])                                         # user 0: items 0, 1, 4
    for seed in range(20):
        op, src = sampler.layer(dst, 4, generator(seed))
        assert set(src[1:].tolist()) <= {N_USERS + 0, N_USERS + 1, N_USERS + 4}
        assert src[0] == 0


def test_local_operator_backward_is_the_transpose():
    row, col = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 3, 0, 3])
    val = torch.tensor([0.5, -1.0, 2.0, 0.25])
    op = LocalOperator(row, col, val, 3, 4)
    x = torch.randn(4, 2, generator=generator(), requires_grad=True)
    grad = torch.randn(3, 2, generator=generator(1))
    (op.mm(x) * grad).sum().backward()
    assert torch.allclose(x.grad, dense(op).float().t() @ grad)


# ------------------------------------------------------------------------------------ training
def tiny_data(seed: int = 0) -> InteractionData:
    """3 communities of 8 users x 10 items; 6 training and 2 validation items per user."""
    rng = np.random.default_rng(seed)
    tr, va = [], []
    for c in range(3):
        for u in range(c * 8, (c + 1) * 8):
            items = c * 10 + rng.choice(10, 8, replace=False)
            tr += [(u, i) for i in items[:6]]
            va += [(u, i) for i in items[6:]]
    tr, va = np.array(tr), np.array(va)
    return InteractionData(24, 30, tr[:, 0], tr[:, 1], va[:, 0], va[:, 1])


SETTINGS = {
    "cluster": {"method": "cluster", "num_parts": 6, "clusters_per_batch": 2},
    "saint": {"method": "saint", "roots": 6, "walk_length": 2, "num_steps": 6},
    "layerwise": {"method": "layerwise", "layer_sizes": [16, 24]},
    "fastgcn": {"method": "layerwise", "layer_sizes": [24], "importance": "fastgcn"},
    "cluster-subgraph-negatives": {"method": "cluster", "num_parts": 6, "clusters_per_batch": 3,
                                   "negatives": "subgraph"},
}


def train_cfg(**subgraph) -> TrainConfig:
    return TrainConfig(epochs=12, batch_size=36, lr=0.05, l2=1e-4, patience=100, checkpoint_every=0,
                       subgraph=subgraph)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_lightgcn_trains_on_each_method_and_the_loss_decreases(setting):
    data = tiny_data()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=16, num_layers=2)
    result = train_model(model, data, train_cfg(**SETTINGS[setting]), seed=0)
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 12 and losses[-1] < 0.8 * losses[0]
    assert result.best_score is not None and result.best_score > 0.2        # random ranking: about 0.1


@pytest.mark.parametrize("model_cls", [NGCF, GCN, SocialGNN])
@pytest.mark.parametrize("method", ["cluster", "saint", "layerwise"])
def test_every_whole_graph_model_trains_on_sub_graphs(model_cls, method):
    data = tiny_data()
    graph = {"n_users": data.n_users, "n_items": data.n_items, "train_user": data.train_user.numpy(),
             "train_item": data.train_item.numpy(), "social_src": np.arange(0, 23, 2),
             "social_dst": np.arange(1, 24, 2)}
    torch.manual_seed(0)
    model = model_cls(data.n_users, data.n_items, embedding_dim=8, num_layers=2).prepare(graph)
    cfg = train_cfg(**SETTINGS[method]).model_copy(update={"epochs": 6})
    losses = [row["loss"] for row in train_model(model, data, cfg, seed=0).history]
    assert losses[-1] < losses[0]


def test_sub_graph_training_is_deterministic_on_cpu():
    data = tiny_data()
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=2)
        train_model(model, data, train_cfg(**SETTINGS["saint"]).model_copy(update={"epochs": 3}), seed=3)
        states.append(model.embedding.weight.detach().clone())
    assert torch.equal(states[0], states[1])


@pytest.mark.parametrize("method", ["cluster", "saint", "layerwise"])
def test_an_interrupted_sub_graph_run_resumes_bit_identical(tmp_path, method):
    """Parts and pre-sampled counts are recomputed from the seed; the draws come from the loop's generator,
    whose state the checkpoint keeps."""
    data, config = tiny_data(), train_cfg(**SETTINGS[method]).model_copy(update={"epochs": 4})

    def run(path=None, stop_after=None):
        torch.manual_seed(0)
        model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=2)

        def log(row):
            if row["epoch"] == stop_after:
                raise KeyboardInterrupt
        result = train_model(model, data, config, seed=1, log=log, checkpoint_path=path, checkpoint_every=1)
        return model.embedding.weight.detach().clone(), [row["loss"] for row in result.history]

    whole = run()
    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(path, stop_after=3)
    resumed = run(path)
    assert torch.equal(whole[0], resumed[0]) and whole[1] == resumed[1]


def test_models_without_sub_graph_training_ignore_the_setting_and_say_so(caplog):
    data = tiny_data()
    weights = []
    for subgraph in ({}, SETTINGS["cluster"]):
        torch.manual_seed(0)
        model = MF(data.n_users, data.n_items, embedding_dim=8)
        with caplog.at_level(logging.INFO, logger="gnnrec.train"):
            train_model(model, data, train_cfg(**subgraph).model_copy(update={"epochs": 2}), seed=0)
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])                    # trained exactly as with method full
    assert "train.subgraph.method=cluster is ignored" in caplog.text


# ------------------------------------------------------------------------------------ params
@pytest.mark.parametrize("raw, key, expected", [
    ({"method": "metis"}, "train.subgraph.method", "one of full, cluster, saint, layerwise"),
    ({"walks": 3}, "train.subgraph.walks", "known key"),
    ({"num_parts": 2, "clusters_per_batch": 3}, "train.subgraph.clusters_per_batch", "at most num_parts"),
    ({"layer_sizes": [64, 0]}, "train.subgraph.layer_sizes", "integers >= 1"),
    ({"negatives": "hard"}, "train.subgraph.negatives", "one of all, subgraph"),
])
def test_the_subgraph_params_are_checked_and_errors_name_the_key(raw, key, expected):
    with pytest.raises(ParamsError) as err:
        params_from_dict({"train": {"subgraph": raw}}, check_models=False)
    assert err.value.key == key and expected in str(err.value)


def test_sub_graph_methods_need_the_bpr_loss():
    with pytest.raises(ParamsError) as err:
        params_from_dict({"train": {"loss": "softmax", "subgraph": {"method": "saint"}}}, check_models=False)
    assert err.value.key == "train.subgraph.method"
    assert params_from_dict({}, check_models=False).train.subgraph.method == "full"

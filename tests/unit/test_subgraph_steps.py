"""What a sub-graph training step costs (``train.subgraph``): one gather of the embedding rows (the L2 term
reads the forward pass's rows), the sparse gradient with lazy Adam (``sparse_grads``), Cluster-GCN's parts
sized by the graph (``num_parts: null``), GraphSAINT's pre-sampling cap and coverage warning, and the
samplers' int32 / float32 storage."""

from __future__ import annotations

import logging

import pytest
import torch

from gnnrec.config import TrainConfig, params_from_dict
from gnnrec.graph import bipartite_adjacency
from gnnrec.models import GCN, NGCF, LightGCN, SocialGNN
from gnnrec.optim import LazyAdam
from gnnrec.sampling.layerwise import LayerwiseSampler
from gnnrec.sampling.saint import SaintSampler
from gnnrec.sampling.subgraph import ClusterSampler, default_num_parts
from gnnrec.sampling.subgraph_train import batch_loss, build_subgraph_trainer, weighted_bpr_loss
from gnnrec.training import prepare_adjacency, train_model
from tests.unit.test_subgraph_sampling import (
    ITEMS,
    N_ITEMS,
    N_USERS,
    SETTINGS,
    USERS,
    generator,
    graph_dict,
    tiny_adj,
    tiny_data,
    train_cfg,
)

pytestmark = pytest.mark.usefixtures("one_thread")
MODELS = [LightGCN, NGCF, GCN, SocialGNN]


def model_of(cls, seed: int = 0):
    torch.manual_seed(seed)
    return cls(N_USERS, N_ITEMS, embedding_dim=8, num_layers=2).prepare(graph_dict())


def random_negatives(u, items, g):
    return torch.randint(N_ITEMS, u.shape, generator=g)


def batches(model, method: str):
    """A batch of each kind: cluster (1 of 3 parts: receive-only negatives join) and layer-wise."""
    adj = tiny_adj()
    extra = model.subgraph_extra_edges()
    if method == "cluster":
        sampler = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=1, seed=0, extra=extra)
        return sampler.batch(next(iter(sampler.subgraphs(generator()))), random_negatives, generator(1))
    sampler = LayerwiseSampler(adj, N_USERS, [6, 8], extra=extra)
    u, i = torch.as_tensor(USERS[:8]), torch.as_tensor(ITEMS[:8])
    return sampler.batch(u, i, random_negatives(u, None, generator(2)), model.num_layers, generator(3))


def two_gather_loss(model, batch, l2):
    """The loss as it was: the forward pass's gather, then ``ego_embeddings`` of the global ids (a second one)."""
    pos, neg = model.subgraph_forward(batch)
    u, i, j = batch.global_ids()
    ego_u, ego_ij = model.ego_embeddings(u, torch.cat([i, j]))
    return weighted_bpr_loss(pos, neg, (ego_u, ego_ij[: i.shape[0]], ego_ij[i.shape[0]:]), batch.weight, l2)


def grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad.to_dense().clone() for name, p in model.named_parameters() if p.grad is not None}


# ------------------------------------------------------------------------------------ one gather
@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize("method", ["cluster", "layerwise"])
def test_the_l2_term_reads_the_gathered_rows_same_loss_and_gradients(model_cls, method):
    model = model_of(model_cls).eval()                             # no dropout: the two losses see the same pass
    batch = batches(model, method)
    before = two_gather_loss(model, batch, 0.3)
    after = batch_loss(model, batch, 0.3)
    assert torch.equal(before, after)
    g_before, g_after = grads(model, before), grads(model, after)
    assert g_before.keys() == g_after.keys()
    for name in g_before:
        assert torch.allclose(g_before[name], g_after[name], rtol=1e-6, atol=1e-8), name
    sparse = grads(model, batch_loss(model, batch, 0.3, sparse=True))
    for name in g_after:
        assert torch.allclose(sparse[name], g_after[name], rtol=1e-6, atol=1e-8), name


@pytest.mark.parametrize("model_cls", MODELS)
def test_a_step_gathers_the_embedding_rows_once(model_cls):
    """The sparse gradient lists one row per gathered row: the batch's nodes, once each (two gathers
    would add the ``3 P`` rows of the L2 term)."""
    model = model_of(model_cls)
    batch = batches(model, "cluster")
    batch_loss(model, batch, 1e-2, sparse=True).backward()
    grad = model.embedding.weight.grad
    assert grad.is_sparse and grad._nnz() == batch.nodes.shape[0]
    assert torch.equal(grad._indices()[0], batch.nodes)


def test_lightgcn_layer0_rows_with_user_features_are_those_of_the_whole_table():
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=4, user_features=True, n_feature_levels=3)
    model.prepare({**graph_dict(), "user_feature_codes": torch.tensor([[0], [1], [2], [-1], [1], [0]])})
    nodes = torch.tensor([7, 0, 3, 10, 5, 1])
    assert torch.allclose(model.subgraph_layer0(nodes), model.layer0()[nodes])
    assert torch.allclose(model.subgraph_layer0(nodes, sparse=True), model.layer0()[nodes])


# ------------------------------------------------------------------------------------ lazy Adam
def full_batch(model):
    """Every node in the batch (every part): each step touches every embedding row."""
    sampler = ClusterSampler(tiny_adj(), N_USERS, num_parts=3, clusters_per_batch=3, seed=0,
                             extra=model.subgraph_extra_edges())
    return sampler.batch(next(iter(sampler.subgraphs(generator()))), random_negatives, generator(1))


@pytest.mark.parametrize("model_cls", [LightGCN, NGCF])
def test_sparse_steps_equal_dense_adam_when_every_row_is_touched(model_cls):
    dense_model, sparse_model = model_of(model_cls).eval(), model_of(model_cls).eval()
    batch = full_batch(dense_model)
    dense_opt = torch.optim.Adam(dense_model.parameters(), lr=0.05, foreach=False)
    sparse_opt = LazyAdam(sparse_model.parameters(), lr=0.05)
    for _ in range(3):
        for model, opt, sparse in ((dense_model, dense_opt, False), (sparse_model, sparse_opt, True)):
            opt.zero_grad(set_to_none=True)
            batch_loss(model, batch, 1e-3, sparse=sparse).backward()
            opt.step()
        assert sparse_model.embedding.weight.grad.is_sparse
        for (name, a), b in zip(dense_model.named_parameters(), sparse_model.parameters()):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name


def test_lazy_adam_leaves_untouched_rows_and_their_moments_where_dense_adam_moves_them():
    """The one difference from Adam: a row without a gradient this step keeps its weights and moments."""
    w0 = torch.randn(5, 3, generator=generator())
    lazy, dense = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    opt_lazy, opt_dense = LazyAdam([lazy], lr=0.1), torch.optim.Adam([dense], lr=0.1, foreach=False)
    for step, rows in enumerate(([0, 1, 2, 3, 4], [1, 3])):
        g = torch.randn(len(rows), 3, generator=generator(step + 1))
        lazy.grad = torch.sparse_coo_tensor(torch.tensor([rows]), g, (5, 3), check_invariants=True)
        dense.grad = torch.zeros(5, 3).index_copy_(0, torch.tensor(rows), g)
        before = lazy.detach().clone(), opt_lazy.state[lazy].get("exp_avg", torch.zeros(5, 3)).clone()
        opt_lazy.step()
        opt_dense.step()
    untouched = [0, 2, 4]
    assert torch.equal(lazy.detach()[untouched], before[0][untouched])
    assert torch.equal(opt_lazy.state[lazy]["exp_avg"][untouched], before[1][untouched])
    assert not torch.allclose(dense.detach()[untouched], before[0][untouched])      # momentum moved them
    assert torch.allclose(lazy.detach()[[1, 3]], dense.detach()[[1, 3]], rtol=1e-5, atol=1e-7)
    assert opt_lazy.state[lazy]["step"] == 2


def test_lazy_adam_on_dense_gradients_is_adam():
    a, b = (torch.nn.Parameter(torch.randn(4, 2, generator=generator())) for _ in range(2))
    opt_a, opt_b = LazyAdam([a], lr=0.05), torch.optim.Adam([b], lr=0.05, foreach=False)
    for step in range(4):
        g = torch.randn(4, 2, generator=generator(step + 10))
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError):
        LazyAdam([a], lr=0.0)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("setting", ["cluster", "saint", "layerwise"])
def test_training_with_either_gradient_reduces_the_loss_and_the_optimizer_follows(setting, sparse, caplog):
    data = tiny_data()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=16, num_layers=2)
    with caplog.at_level(logging.INFO, logger="gnnrec.train"):
        result = train_model(model, data, train_cfg(**SETTINGS[setting], sparse_grads=sparse), seed=0)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    assert ("sparse embedding gradients" if sparse else "dense gradients") in caplog.text


def test_ngcf_dense_weights_train_under_lazy_adam():
    data = tiny_data()
    torch.manual_seed(0)
    model = NGCF(data.n_users, data.n_items, embedding_dim=8, num_layers=2)
    w1 = model.w1[0].weight.detach().clone()
    cfg = train_cfg(**SETTINGS["cluster"], sparse_grads=True).model_copy(update={"epochs": 6})
    losses = [row["loss"] for row in train_model(model, data, cfg, seed=0).history]
    assert losses[-1] < losses[0] and not torch.equal(w1, model.w1[0].weight)


@pytest.mark.parametrize("sparse", [True, False])
def test_an_interrupted_run_resumes_bit_identical_with_either_gradient(tmp_path, sparse):
    data = tiny_data()
    config = train_cfg(**SETTINGS["cluster"], sparse_grads=sparse).model_copy(update={"epochs": 4})

    def run(path=None, stop_after=None):
        torch.manual_seed(0)
        model = NGCF(data.n_users, data.n_items, embedding_dim=8, num_layers=2)

        def log(row):
            if row["epoch"] == stop_after:
                raise KeyboardInterrupt
        result = train_model(model, data, config, seed=1, log=log, checkpoint_path=path, checkpoint_every=1)
        return [p.detach().clone() for p in model.parameters()], [row["loss"] for row in result.history]

    whole = run()
    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(path, stop_after=2)
    resumed = run(path)
    assert all(torch.equal(a, b) for a, b in zip(whole[0], resumed[0])) and whole[1] == resumed[1]


def test_sparse_grads_is_a_checked_setting_on_by_default():
    assert params_from_dict({}, check_models=False).train.subgraph.sparse_grads is True
    assert params_from_dict({"train": {"subgraph": {"sparse_grads": False}}},
                            check_models=False).train.subgraph.sparse_grads is False


# ------------------------------------------------------------------------------------ Cluster-GCN parts
def test_num_parts_null_sizes_the_parts_by_the_graph_and_an_integer_fixes_them():
    assert default_num_parts(1_000_000, 4, 4096) == 977 and default_num_parts(10_000_000, 4, 4096) == 9766
    assert default_num_parts(100, 4, 4096) == 4                      # at least one batch's worth of parts
    cfg = params_from_dict({}, check_models=False).train
    assert cfg.subgraph.num_parts is None
    assert params_from_dict({"train": {"subgraph": {"num_parts": 2, "clusters_per_batch": 2}}},
                            check_models=False).train.subgraph.num_parts == 2
    adj = tiny_adj()
    fixed = ClusterSampler(adj, N_USERS, num_parts=3, clusters_per_batch=1, seed=0)
    sized = ClusterSampler(adj, N_USERS, num_parts=None, clusters_per_batch=1, seed=0, batch_edges=5)
    assert fixed.num_parts == 3 and sized.num_parts == default_num_parts(len(USERS), 1, 5) == 3
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=4)
    users, items = torch.as_tensor(USERS), torch.as_tensor(ITEMS)
    train = TrainConfig(batch_size=2, subgraph={"method": "cluster", "clusters_per_batch": 2})
    trainer = build_subgraph_trainer(train, model, adj, N_USERS, users, items)
    assert trainer.sampler.num_parts == default_num_parts(len(USERS), 2, 4 * 2) == 4


# ------------------------------------------------------------------------------------ GraphSAINT
def test_saint_presampling_reaches_the_coverage_without_a_cap_and_warns_under_a_low_cap(caplog):
    adj = tiny_adj()
    with caplog.at_level(logging.WARNING, logger="gnnrec.train"):
        free = SaintSampler(adj, N_USERS, roots=2, walk_length=2, coverage=50, seed=0)
    assert free.coverage_reached >= 50 and "max_presample" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="gnnrec.train"):
        capped = SaintSampler(adj, N_USERS, roots=2, walk_length=2, coverage=50, seed=0, max_presample=3)
    assert capped.n_presampled == 3 and capped.coverage_reached < 50 / 4
    assert "stopped at max_presample=3" in caplog.text and "raise train.subgraph.max_presample" in caplog.text
    assert params_from_dict({"train": {"subgraph": {"max_presample": 100}}},
                            check_models=False).train.subgraph.max_presample == 100


# ------------------------------------------------------------------------------------ storage
def test_samplers_keep_the_adjacency_int32_arrays_and_float32_counts_with_the_same_batches():
    adj = tiny_adj()
    wide = torch.sparse_csr_tensor(adj.crow_indices().long(), adj.col_indices().long(), adj.values(), adj.shape,
                                   check_invariants=True)
    assert adj.col_indices().dtype == torch.int32
    for make in (lambda a: ClusterSampler(a, N_USERS, 3, 1, seed=0),
                 lambda a: SaintSampler(a, N_USERS, roots=2, walk_length=2, coverage=20, seed=0)):
        narrow, reference = make(adj), make(wide)
        assert narrow.indices.data_ptr() == adj.col_indices().data_ptr() and narrow.indptr.dtype == torch.int32
        nodes = next(iter(narrow.subgraphs(generator(4))))
        ours, ref = narrow.batch(nodes, random_negatives, generator(5)), reference.batch(nodes, random_negatives,
                                                                                          generator(5))
        for field in ("nodes", "users", "pos", "neg", "weight", "degree"):
            assert torch.equal(getattr(ours, field), getattr(ref, field)), field
        a, b = ours.layers[0], ref.layers[0]
        assert torch.equal(a.row, b.row) and torch.equal(a.col, b.col) and torch.equal(a.val, b.val)
        assert a.row.dtype == a.col.dtype == torch.int64                    # per batch: widened
    saint = SaintSampler(adj, N_USERS, roots=2, walk_length=2, coverage=20, seed=0)
    assert saint.entry_count.dtype == saint.node_count.dtype == torch.float32
    layerwise = LayerwiseSampler(adj, N_USERS, [4])
    assert layerwise.ops[0][1].data_ptr() == adj.col_indices().data_ptr()
    op, src = layerwise.layer(torch.tensor([0, N_USERS + 2]), 4, generator())
    assert src.dtype == torch.int64 and op.col.dtype == torch.int64


def test_layerwise_batches_match_an_int64_adjacency():
    adj = tiny_adj()
    wide = prepare_adjacency(bipartite_adjacency(N_USERS, N_ITEMS, USERS, ITEMS))
    wide = torch.sparse_csr_tensor(wide.crow_indices().long(), wide.col_indices().long(), wide.values(), wide.shape,
                                   check_invariants=True)
    u, i = torch.as_tensor(USERS[:6]), torch.as_tensor(ITEMS[:6])
    j = random_negatives(u, None, generator(7))
    for importance in ("ladies", "fastgcn"):
        ours = LayerwiseSampler(adj, N_USERS, [5], importance).batch(u, i, j, 2, generator(8))
        ref = LayerwiseSampler(wide, N_USERS, [5], importance).batch(u, i, j, 2, generator(8))
        assert torch.equal(ours.nodes, ref.nodes)
        for a, b in zip(ours.layers, ref.layers):
            assert torch.equal(a.row, b.row) and torch.equal(a.col, b.col) and torch.equal(a.val, b.val)

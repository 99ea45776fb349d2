"""The model contract, checked once for every model of the registry (implicit's test-mixin idea), on a
small graph with planted communities where the right answer is known; then a few behaviours per model.

Contract: built from plain numbers, ``reset_parameters``, ``forward(adj, users, pos, neg) -> ([B], [B])``,
``embed(adj) -> ([n_users, d], [n_items, d])`` whose dot products are the forward scores (in eval mode,
for whole-graph models), ``ego_embeddings``, a ``repr`` naming its sizes, seeded determinism, gradients
reaching every parameter, a checkpoint that reloads (with ``prepare(graph)`` for graph buffers), and a
recall well above random once trained by the shared loop.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from gnnrec.config import TrainConfig, params_from_dict
from gnnrec.errors import GnnrecError
from gnnrec.evaluation import csr_union, evaluate_ranking
from gnnrec.graph import bipartite_adjacency, csr_from_pairs
from gnnrec.models import (
    BUILTIN,
    GAT,
    GCN,
    NGCF,
    GraphInputError,
    GraphSAGE,
    NoSocialTiesError,
    PinSage,
    SocialGNN,
    build_model,
    checkpoint,
    model_class,
    model_from_checkpoint,
)
from gnnrec.models.common import SymmetricEdgeDropout, combine_layers
from gnnrec.training import InteractionData, prepare_adjacency, train_model

# small, fast settings per model (the defaults are sized for real data)
SMALL = {
    "lightgcn": {"num_layers": 2},
    "mf": {},
    "ngcf": {"num_layers": 2},
    "gcn": {"num_layers": 2},
    "gat": {"num_layers": 2, "heads": 2, "fanouts": [5, 5]},
    "graphsage": {"fanouts": [5, 5]},
    "graphsage-pool": {"aggregator": "pool", "fanouts": [5, 5]},
    "graphsage-lstm": {"aggregator": "lstm", "fanouts": [5, 3]},
    "pinsage": {"num_layers": 2, "walk_length": 2, "num_walks": 10, "top_k": 5, "curriculum_epochs": 3},
    "pinsage-residual": {"residual": True, "walk_length": 2, "num_walks": 10, "top_k": 5},
    "social": {"num_layers": 2},
    "sociallgn": {"num_layers": 2},
}
TRAINABLE = list(SMALL)


pytestmark = pytest.mark.usefixtures("one_thread")     # tests/conftest.py


def model_name(case: str) -> str:
    return case.split("-")[0]


def planted(n_comm: int = 4, users_per: int = 10, items_per: int = 20, n_train: int = 8, seed: int = 0):
    """Users of community c interact only with items of community c; 2 validation and 2 test items per
    user, also from its community; social ties join users of the same community (plus a few noisy ones)."""
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in range(n_comm):
        for u in range(c * users_per, (c + 1) * users_per):
            items = c * items_per + rng.choice(items_per, n_train + 4, replace=False)
            tr += [(u, i) for i in items[:n_train]]
            va += [(u, i) for i in items[n_train:n_train + 2]]
            te += [(u, i) for i in items[n_train + 2:]]
    tr, va, te = (np.array(x, dtype=np.int64) for x in (tr, va, te))
    n_users, n_items = n_comm * users_per, n_comm * items_per
    data = InteractionData(n_users, n_items, tr[:, 0], tr[:, 1], va[:, 0], va[:, 1])
    src = np.arange(n_users).repeat(3)
    dst = (src // users_per) * users_per + rng.integers(0, users_per, len(src))
    noisy = rng.integers(0, n_users, (8, 2))
    src, dst = np.r_[src, noisy[:, 0]], np.r_[dst, noisy[:, 1]]
    graph = {"n_users": n_users, "n_items": n_items, "train_user": data.train_user, "train_item": data.train_item,
             "social_src": torch.from_numpy(src), "social_dst": torch.from_numpy(dst)}
    return data, te, graph


@pytest.fixture(scope="module")
def world():
    data, test, graph = planted()
    adj = prepare_adjacency(data.adjacency())
    return data, test, graph, adj


def make(case: str, graph: dict, seed: int = 0, dim: int = 16, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = {"n_users": graph["n_users"], "n_items": graph["n_items"], "embedding_dim": dim, **SMALL[case], **extra}
    return build_model(model_name(case), **kwargs).prepare(graph)


def batch(n: int = 6):
    g = torch.Generator().manual_seed(0)
    return (torch.randint(0, 40, (n,), generator=g), torch.randint(0, 80, (n,), generator=g),
            torch.randint(0, 80, (n,), generator=g))


def test_every_registered_model_is_covered():
    # popularity and the training-free filters (tests/unit/test_graph_filters.py) have no training contract
    assert set(BUILTIN) == {model_name(c) for c in SMALL} | {"popularity", "gfcf", "bspm"}


# ------------------------------------------------------------------------------------ contract
@pytest.mark.parametrize("case", TRAINABLE)
def test_shapes_and_embed_agree_with_forward(world, case):
    data, _, graph, adj = world
    model = make(case, graph)
    u, p, n = batch()
    pos, neg = model(adj, u, p, n)
    assert pos.shape == neg.shape == (6,) and pos.dtype == torch.float32
    model.eval()
    with torch.no_grad():
        ue, ie = model.embed(adj)
        pos_eval, neg_eval = model(adj, u, p, n)
    assert ue.shape[0] == data.n_users and ie.shape[0] == data.n_items and ue.shape[1] == ie.shape[1]
    assert torch.isfinite(ue).all() and torch.isfinite(ie).all()
    eu, ei = model.ego_embeddings(u, torch.cat([p, n]))
    assert eu.shape == (6, 16) and ei.shape == (12, 16)
    if not hasattr(model, "sample_blocks"):          # whole-graph models: exactly the ranking's dot products
        torch.testing.assert_close(pos_eval, (ue[u] * ie[p]).sum(-1))
        torch.testing.assert_close(neg_eval, (ue[u] * ie[n]).sum(-1))


@pytest.mark.parametrize("case", TRAINABLE)
def test_gradients_reach_every_parameter(world, case):
    _, _, graph, adj = world
    model = make(case, graph)
    u, p, n = batch(32)
    pos, neg = model(adj, u, p, n)
    eu, ei = model.ego_embeddings(u, torch.cat([p, n]))
    (torch.nn.functional.softplus(neg - pos).mean() + 1e-3 * (eu.pow(2).sum() + ei.pow(2).sum())).backward()
    params = list(model.named_parameters())
    assert params
    for name, param in params:
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("case", TRAINABLE)
def test_seeded_determinism_and_reset(world, case):
    _, _, graph, adj = world
    a, b = make(case, graph, seed=3), make(case, graph, seed=3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb), na
    u, p, n = batch()
    torch.manual_seed(9)
    out_a = a(adj, u, p, n)
    torch.manual_seed(9)
    out_b = b(adj, u, p, n)
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    with torch.no_grad():                                       # ranking is deterministic, even when sampled
        torch.testing.assert_close(a.eval().embed(adj), a.embed(adj), rtol=0, atol=0)
    first = next(a.parameters())
    before = first.detach().clone()
    a.reset_parameters()
    assert not torch.equal(before, first)


@pytest.mark.parametrize("case", TRAINABLE)
def test_repr_names_the_sizes(world, case):
    _, _, graph, _ = world
    text = repr(make(case, graph))
    assert text.startswith(f"{type(make(case, graph)).__name__}(40, 80, embedding_dim=16"), text


@pytest.mark.parametrize("case", TRAINABLE)
def test_checkpoint_roundtrip_with_graph_buffers(world, case):
    _, _, graph, adj = world
    kwargs = {"n_users": 40, "n_items": 80, "embedding_dim": 16, **SMALL[case]}
    model = make(case, graph)
    buf = io.BytesIO()
    torch.save(checkpoint(model_name(case), kwargs, model), buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    assert not any(k.startswith(("csr_", "social_")) for k in ckpt["state_dict"])   # graph buffers not saved
    restored = model_from_checkpoint(ckpt, graph).eval()
    with torch.no_grad():
        for x, y in zip(model.eval().embed(adj), restored.embed(adj)):
            torch.testing.assert_close(x, y)


@pytest.mark.parametrize("case", TRAINABLE)
def test_trained_model_beats_random_on_planted_communities(world, case):
    data, test, graph, adj = world
    model = make(case, graph)
    cfg = TrainConfig(epochs=25, batch_size=64, lr=0.02, l2=1e-4, patience=4, eval_every=5)
    result = train_model(model, data, cfg, seed=0, adj=adj)
    exclude = csr_union(data.train_csr(), data.val_csr(), data.n_items)
    with torch.no_grad():
        ue, ie = model.eval().embed(adj)
    m = evaluate_ranking(ue, ie, exclude, csr_from_pairs(data.n_users, data.n_items, test[:, 0], test[:, 1]), [10])
    # random: 10 slots among 70 unmasked items, 2 of them held out -> recall@10 ~ 0.14
    assert m["recall@10"] > 0.6, (case, m, result.best_epoch)


# ------------------------------------------------------------------------------------ per model
def test_ngcf_concatenates_normalised_layers(world):
    _, _, graph, adj = world
    model = make("ngcf", graph).eval()
    with torch.no_grad():
        ue, _ = model.embed(adj)
    assert ue.shape == (40, 16 * 3)
    torch.testing.assert_close(ue[:, :16], model.embedding.weight[:40])            # layer 0 as is
    norms = ue[:, 16:32].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))                      # later layers L2-normalised


def test_gcn_self_loop_normalisation_matches_dense_reference():
    users, items = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 0, 2])
    adj = bipartite_adjacency(3, 3, users, items)
    torch.manual_seed(0)
    model = GCN(3, 3, embedding_dim=4, num_layers=1, layer_combination="last").eval()
    a = adj.to_dense() != 0
    a_tilde = a.float() + torch.eye(6)
    d = a_tilde.sum(1)
    norm = a_tilde / torch.sqrt(d[:, None] * d[None, :])
    lin = model.lins[0]
    expected = norm @ lin(model.embedding.weight)
    with torch.no_grad():
        got = model.propagate(adj)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)


def test_symmetric_edge_dropout_keeps_the_adjacency_symmetric(world):
    _, _, _, adj = world
    dropped = SymmetricEdgeDropout()(adj, 0.5, torch.Generator().manual_seed(0))
    dense = dropped.to_dense()
    torch.testing.assert_close(dense, dense.t())
    kept = (dense != 0).sum() / (adj.to_dense() != 0).sum()
    assert 0.4 < float(kept) < 0.6
    nz = dense[dense != 0] / adj.to_dense()[dense != 0]
    torch.testing.assert_close(nz, torch.full_like(nz, 2.0))                       # kept edges scaled by 1/(1-p)


def test_layer_combinations():
    layers = [torch.ones(2, 3), 3 * torch.ones(2, 3)]
    assert combine_layers(layers, "mean").tolist() == [[2.0] * 3] * 2
    assert combine_layers(layers, "concat").tolist() == [[1.0] * 3 + [3.0] * 3] * 2      # layer 0 first
    assert combine_layers(layers, "last").tolist() == [[3.0] * 3] * 2


def test_residual_connections_add_the_layer_input(world):
    """GCN with ``residual``: h_{k+1} = f_k(h_k) + h_k, where f_k is the plain layer (ReLU on hidden layers):
    checked against a dense re-computation from the model's own weights, next to the plain model."""
    _, _, graph, adj = world
    plain = make("gcn", graph, layer_combination="last").eval()
    res = make("gcn", graph, layer_combination="last", residual=True).eval()
    dense = (adj.to_dense() != 0).float()                                         # A (adj is normalised)
    a_tilde = dense + torch.eye(dense.shape[0])                                   # A + I
    d = a_tilde.sum(1).rsqrt()
    a_hat = d[:, None] * a_tilde * d[None, :]                                     # D~^-1/2 (A + I) D~^-1/2

    def reference(model, residual):
        x = model.embedding.weight
        for k, lin in enumerate(model.lins):
            h = a_hat @ lin(x)
            h = torch.relu(h) if k < model.num_layers - 1 else h
            x = h + x if residual else h
        return x

    with torch.no_grad():
        torch.testing.assert_close(res.propagate(adj), reference(res, True), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(plain.propagate(adj), reference(plain, False), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(res.propagate(adj), plain.propagate(adj))     # same weights, other output


def test_gat_attention_is_over_neighbours_and_self(world):
    _, _, graph, adj = world
    model = make("gat", graph, fanouts=[100, 100]).eval()          # fanout above every degree: exact
    u, p, n = batch()
    with torch.no_grad():
        pos, _ = model(adj, u, p, n)
        ue, ie = model.embed(adj)
    torch.testing.assert_close(pos, (ue[u] * ie[p]).sum(-1), rtol=1e-4, atol=1e-5)
    assert model.convs[0].concat and not model.convs[-1].concat    # hidden heads concatenated, last averaged


@pytest.mark.parametrize("aggregator", ["mean", "pool", "lstm"])
def test_graphsage_blocks_match_full_inference_when_fanout_covers_the_graph(world, aggregator):
    _, _, graph, adj = world
    model = make("graphsage", graph, aggregator=aggregator, fanouts=[100, 100], replace=False).eval()
    u, p, n = batch()
    with torch.no_grad():
        pos, _ = model(adj, u, p, n)
        ue, ie = model.embed(adj)
    if aggregator == "lstm":                                       # order-dependent: checked below
        assert pos.shape == (6,)
    else:
        torch.testing.assert_close(pos, (ue[u] * ie[p]).sum(-1), rtol=1e-4, atol=1e-5)


def test_graphsage_lstm_aggregates_the_last_state_of_the_unmasked_neighbours():
    """The LSTM aggregator is the LSTM's last hidden state over each node's unmasked (left-aligned)
    neighbours; a node without neighbours aggregates to zeros."""
    from gnnrec.models.graphsage import SAGELayer

    torch.manual_seed(0)
    layer = SAGELayer(4, "lstm").eval()
    neigh = torch.randn(3, 3, 4)                                              # [n, f, d]
    mask = torch.tensor([[True, True, True], [True, False, False], [False, False, False]])
    with torch.no_grad():
        out = layer.aggregate(neigh, mask)
        full, _ = layer.lstm(neigh[0:1])                                      # all three neighbours
        one, _ = layer.lstm(neigh[1:2, :1])                                   # the first neighbour only
    torch.testing.assert_close(out[0], full[0, -1])
    torch.testing.assert_close(out[1], one[0, -1])
    assert out[2].tolist() == [0.0] * 4


def test_graphsage_minibatch_touches_only_the_receptive_field(world):
    _, _, graph, adj = world
    model = make("graphsage", graph)                                 # fanouts [5, 5]
    blocks = model.sample_blocks(torch.tensor([0, 45]))
    assert blocks[0].n_src <= 2 * 6 * 6 and blocks[-1].dst_nodes.tolist() == [0, 45]


def test_pinsage_curriculum_wraps_the_loop_sampler(world):
    data, _, graph, _ = world
    from gnnrec.sampling import HardNegativeSampler, UniformNegativeSampler

    model = make("pinsage", graph, hard_negatives=0.4)
    base = UniformNegativeSampler(data.n_users, data.n_items, data.train_user, data.train_item)
    sampler = model.negative_sampler(base)
    assert isinstance(sampler, HardNegativeSampler) and sampler.base is base
    sampler.set_epoch(1)
    assert sampler.current_share() == 0.0
    sampler.set_epoch(100)
    assert sampler.current_share() == pytest.approx(0.4)
    assert make("pinsage", graph, hard_negatives=0.0).negative_sampler(base) is base


def test_social_gate_can_down_weight_ties(world):
    _, _, graph, adj = world
    model = make("social", graph)
    w = model.tie_weights()
    assert w.shape == (model.num_ties,) and ((w > 0) & (w < 1)).all()
    assert model.num_ties % 2 == 0                                     # undirected: both directions
    with torch.no_grad():
        model.gate.bias.fill_(-30.0)                                   # every tie closed: LightGCN
    lightgcn = build_model("lightgcn", n_users=40, n_items=80, embedding_dim=16, num_layers=2)
    lightgcn.embedding.weight.data.copy_(model.embedding.weight.data)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().embed(adj), lightgcn.embed(adj))
    no_attention = make("social", graph, attention=False)
    assert no_attention.gate is None and bool((no_attention.tie_weights() == 1).all())


def test_social_without_ties_is_a_clear_error_that_tells_no_data_from_a_filter_that_dropped_all(world):
    _, _, graph, _ = world
    none = {"social_src": torch.zeros(0, dtype=torch.long), "social_dst": torch.zeros(0, dtype=torch.long)}
    with pytest.raises(NoSocialTiesError, match="the dataset has none"):
        make("social", dict(graph, **none, social_ties_in=0))
    with pytest.raises(GraphInputError, match="filter dropped every tie") as info:
        make("social", dict(graph, **none, social_ties_in=12))
    assert not isinstance(info.value, NoSocialTiesError)
    assert issubclass(NoSocialTiesError, GraphInputError) and issubclass(GraphInputError, GnnrecError)


def _stage_inputs(tmp_path, world, social_ties_in):
    import pandas as pd

    from gnnrec.artifacts import save_graph
    from gnnrec.io import write_parquet
    from gnnrec.paths import Paths

    data, _, graph, _ = world
    paths = Paths(tmp_path)
    save_graph(paths, dict(graph, social_src=torch.zeros(0, dtype=torch.long),
                           social_dst=torch.zeros(0, dtype=torch.long), social_ties_in=social_ties_in))
    write_parquet(paths.split / "val.parquet", pd.DataFrame(
        {"user_id": data.val_user.numpy(), "item_id": data.val_item.numpy(),
         "weight": np.ones(len(data.val_user), np.float32),
         "timestamp": pd.array([None] * len(data.val_user), "Int64")}))
    return paths, params_from_dict({"models": ["social"], "data": {"source": "movielens-100k", "path": "data/ml"}})


def test_social_stage_on_data_without_ties_is_skipped_and_its_outputs_say_so(tmp_path, world):
    from gnnrec.io import load_torch, read_json
    from gnnrec.stages import train as train_stage

    paths, params = _stage_inputs(tmp_path, world, social_ties_in=0)
    out = train_stage.run(params, paths, "social")
    assert "the dataset has none" in out["skipped"]
    assert load_torch(paths.model("social")) == {"model": "social", "skipped": out["skipped"]}
    assert read_json(paths.train_summary("social"))["skipped"] == out["skipped"]
    assert paths.train_history("social").exists()


def test_social_stage_whose_filter_dropped_every_tie_fails_before_training_naming_models_and_dataset(tmp_path, world):
    from gnnrec.stages import train as train_stage

    paths, params = _stage_inputs(tmp_path, world, social_ties_in=40)
    with pytest.raises(GraphInputError) as info:
        train_stage.run(params, paths, "social")
    message = str(info.value)
    assert "'models'" in message and "'social'" in message and "movielens-100k" in message
    assert "filter dropped every tie" in message
    assert not paths.model("social").exists()


def test_models_reject_bad_settings():
    with pytest.raises(ValueError, match="layer_combination"):
        NGCF(3, 4, layer_combination="sum")
    with pytest.raises(ValueError, match="aggregator"):
        GraphSAGE(3, 4, aggregator="median")
    with pytest.raises(ValueError, match="fanouts"):
        GAT(3, 4, num_layers=2, fanouts=[5])
    with pytest.raises(ValueError):
        PinSage(3, 4, top_k=0)
    with pytest.raises(ValueError):
        SocialGNN(3, 4, social_weight=-1)


def test_sampled_model_without_prepare_says_so():
    model = GraphSAGE(3, 4, embedding_dim=4)
    with pytest.raises(RuntimeError, match="prepare"):
        model(None, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))


# ---------------------------------------------------------------------------------------- params
def test_every_model_section_builds_its_model_with_the_defaults():
    from gnnrec.stages.train import model_kwargs

    params = params_from_dict({"models": list(BUILTIN)})
    for name in BUILTIN:
        model = build_model(name, **model_kwargs(params, name, 5, 7))
        assert type(model) is model_class(name)


@pytest.mark.parametrize("raw, key", [
    ({"gat": {"heads": 3}}, "gat.heads"),
    ({"gat": {"fanouts": [10]}}, "gat.fanouts"),
    ({"graphsage": {"aggregator": "median"}}, "graphsage.aggregator"),
    ({"graphsage": {"fanouts": []}}, "graphsage.fanouts"),
    ({"ngcf": {"layer_combination": "sum"}}, "ngcf.layer_combination"),
    ({"gcn": {"edge_dropout": 1.0}}, "gcn.edge_dropout"),
    ({"pinsage": {"top_k": 0}}, "pinsage.top_k"),
    ({"social": {"social_weight": -0.5}}, "social.social_weight"),
    ({"train": {"negatives": "adversarial"}}, "train.negatives"),
    ({"train": {"negative_alpha": -1}}, "train.negative_alpha"),
])
def test_bad_model_params_name_the_key(raw, key):
    from gnnrec.errors import ParamsError

    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        params_from_dict(raw)


@pytest.mark.parametrize("negatives", ["popularity", "hard"])
def test_training_with_each_negative_strategy_learns(world, negatives):
    data, test, graph, adj = world
    model = make("mf", graph)
    cfg = TrainConfig(epochs=20, batch_size=64, lr=0.02, patience=20, eval_every=5, negatives=negatives)
    result = train_model(model, data, cfg, seed=0, adj=adj)
    assert result.best_score > 0.3, (negatives, result.best_score)


def test_report_says_which_graph_model_does_not_beat_mf_and_why():
    from gnnrec.reporting.insights import baseline_notes

    metrics = {"mf": {"ndcg@10": 0.13, "ndcg@20": 0.15}, "popularity": {"ndcg@10": 0.05},
               "lightgcn": {"ndcg@10": 0.19}, "gat": {"ndcg@10": 0.12}, "graphsage": {"ndcg@10": 0.11}}
    training = [{"model": "gat", "best_epoch": 23, "epochs_run": 24, "stopped": "max_seconds", "train_seconds": 300},
                {"model": "graphsage", "best_epoch": 35, "epochs_run": 45, "stopped": "early_stop"}]
    notes = baseline_notes(metrics, training)
    assert len(notes) == 2                                   # popularity is not a graph model; lightgcn beats MF
    assert notes[0].startswith("gat does not beat MF-BPR on test NDCG@10 (0.1200 vs 0.1300)")
    assert "still improving" in notes[0] and "larger train.max_seconds" in notes[0]
    assert "stopped improving at epoch 35 (10 more epochs" in notes[1]
    assert "early stopping ended it at epoch 45" in notes[1]
    assert "sampled, fixed-size neighbourhoods" in notes[1]
    plateau = baseline_notes(metrics, [{"model": "gat", "best_epoch": 29, "epochs_run": 37, "stopped": "max_seconds"}])
    assert "before its time budget ended it at epoch 37" in plateau[0] and "would not close the gap" in plateau[0]
    assert baseline_notes({"gat": {"ndcg@10": 0.1}}, training) == []          # no MF: nothing to say


def test_sage_layer_is_w_of_self_and_neighbour_aggregate_for_every_aggregator():
    """Every aggregator computes ``W [h_v ‖ AGG] + b`` over the unmasked neighbours: ``mean`` through PyG's
    SAGEConv on the block's edge_index (W = [W_r ‖ W_l]), ``pool`` and ``lstm`` on the dense neighbour table;
    the block path (training) and ``combine`` (full-graph ranking) agree, checked against values by hand."""
    from gnnrec.models.graphsage import SAGELayer
    from gnnrec.sampling.neighbors import Block

    torch.manual_seed(0)
    d = 4
    block = Block(src_nodes=torch.arange(6), n_dst=3, nbr=torch.tensor([[3, 4, 5], [3, 0, 0], [0, 0, 0]]),
                  mask=torch.tensor([[True, True, True], [True, False, False], [False, False, False]]))
    x = torch.randn(6, d)
    for aggregator in ("mean", "pool", "lstm"):
        layer = SAGELayer(d, aggregator).eval()
        with torch.no_grad():
            if aggregator == "mean":
                layer.conv.lin_l.bias.uniform_(-1, 1)
                w = torch.cat([layer.conv.lin_r.weight, layer.conv.lin_l.weight], dim=1)
                b = layer.conv.lin_l.bias
                agg = torch.stack([x[3:6].mean(0), x[3], torch.zeros(d)])
            else:
                layer.lin.bias.uniform_(-1, 1)
                w, b = layer.lin.weight, layer.lin.bias
                agg = layer.aggregate(x[block.nbr], block.mask)
            assert w.shape == (d, 2 * d)
            expected = torch.cat([x[:3], agg], dim=1) @ w.T + b
            torch.testing.assert_close(layer(x, block), expected)
            torch.testing.assert_close(layer.combine(x[:3], layer.aggregate(x[block.nbr], block.mask)), expected)
        if aggregator == "pool":                                              # max over ReLU(W_pool h_u + b)
            z = torch.relu(layer.pool(x[3:6]))
            torch.testing.assert_close(agg[0], z.max(0).values)
            assert agg[2].tolist() == [0.0] * d


def test_sage_layer_initialises_w_as_one_xavier_matrix():
    """The mean layer's two SAGEConv halves come from one Xavier-uniform [d, 2d] draw, as the other
    aggregators' W: the same random draws give the same W whichever aggregator holds it."""
    from gnnrec.models.graphsage import SAGELayer

    d = 8
    layers = {}
    for aggregator in ("mean", "pool"):
        layer = SAGELayer(d, aggregator)
        torch.manual_seed(3)
        layer.reset_parameters()
        layers[aggregator] = layer
    w_mean = torch.cat([layers["mean"].conv.lin_r.weight, layers["mean"].conv.lin_l.weight], dim=1).detach()
    torch.testing.assert_close(w_mean, layers["pool"].lin.weight)
    bound = (6 / (d + 2 * d)) ** 0.5
    assert float(w_mean.abs().max()) <= bound and float(w_mean.abs().max()) > 0.5 * bound
    assert layers["mean"].conv.lin_l.bias.abs().sum() == 0

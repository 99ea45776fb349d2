"""Models: LightGCN propagation against a dense reference, MF, popularity, registry and checkpoints."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from gnnrec.errors import ParamsError
from gnnrec.evaluation import top_k_items
from gnnrec.graph import bipartite_adjacency, csr_from_pairs, symmetric_spmm
from gnnrec.models import BUILTIN, MF, LightGCN, Popularity, build_model, checkpoint, model_from_checkpoint
from gnnrec.training import prepare_adjacency


class _Edges:
    """The training edges a one-pass fit reads (only the item ids matter to popularity)."""

    def __init__(self, items):
        self.train_item = torch.as_tensor(items)

# 3 users x 4 items, hand-built: user 0 -> items 0, 1; user 1 -> items 1, 2; user 2 -> items 0, 2, 3
USERS = np.array([0, 0, 1, 1, 2, 2, 2])
ITEMS = np.array([0, 1, 1, 2, 0, 2, 3])
N_USERS, N_ITEMS = 3, 4


def dense_normalised() -> np.ndarray:
    """D^-1/2 A D^-1/2 of the bipartite graph, written out densely."""
    n = N_USERS + N_ITEMS
    a = np.zeros((n, n))
    for u, i in zip(USERS, ITEMS):
        a[u, N_USERS + i] = a[N_USERS + i, u] = 1.0
    d = a.sum(1)
    return a / np.sqrt(np.outer(d, d))


def dense_lightgcn(e0: np.ndarray, k: int) -> np.ndarray:
    """(1/(K+1)) * sum_{l=0..K} Â^l E0."""
    a_hat = dense_normalised()
    out, x = e0.copy(), e0.copy()
    for _ in range(k):
        x = a_hat @ x
        out = out + x
    return out / (k + 1)


@pytest.fixture
def adj() -> torch.Tensor:
    return bipartite_adjacency(N_USERS, N_ITEMS, USERS, ITEMS)


def test_dense_reference_is_right():
    # degree of user 2 is 3 and of item 0 is 2: entry = 1 / sqrt(3 * 2)
    a_hat = dense_normalised()
    assert a_hat[2, N_USERS + 0] == pytest.approx(1 / np.sqrt(6))
    assert a_hat[0, 1] == 0.0


@pytest.mark.parametrize("num_layers", [0, 1, 2, 3])
def test_lightgcn_propagation_matches_dense_reference(adj, num_layers):
    torch.manual_seed(0)
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=5, num_layers=num_layers)
    e0 = model.embedding.weight.detach().double().numpy()
    expected = dense_lightgcn(e0, num_layers)
    with torch.no_grad():
        users, items = model.embed(adj)
    assert users.shape == (N_USERS, 5) and items.shape == (N_ITEMS, 5)
    np.testing.assert_allclose(users.numpy(), expected[:N_USERS], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(items.numpy(), expected[N_USERS:], rtol=1e-5, atol=1e-6)
    # the int32 CSR used for speed gives the same result
    with torch.no_grad():
        users32, items32 = model.embed(prepare_adjacency(adj))
    torch.testing.assert_close(users32, users)
    torch.testing.assert_close(items32, items)


def test_lightgcn_forward_scores_are_dot_products_of_final_embeddings(adj):
    torch.manual_seed(1)
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=4, num_layers=2)
    u, p, n = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 3]), torch.tensor([3, 0, 1])
    pos, neg = model(adj, u, p, n)
    assert pos.shape == (3,) and neg.shape == (3,)
    ue, ie = model.embed(adj)
    torch.testing.assert_close(pos, (ue[u] * ie[p]).sum(-1))
    torch.testing.assert_close(neg, (ue[u] * ie[n]).sum(-1))


def test_lightgcn_gradient_matches_dense_autograd(adj):
    """The custom backward (A symmetric: grad = A @ G) equals autograd through a dense matrix."""
    torch.manual_seed(2)
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=3, num_layers=3)
    u, p, n = torch.tensor([0, 2, 1]), torch.tensor([1, 3, 2]), torch.tensor([2, 1, 0])
    pos, neg = model(adj, u, p, n)
    (pos - 2 * neg).sum().backward()
    sparse_grad = model.embedding.weight.grad.clone()

    a_hat = torch.tensor(dense_normalised(), dtype=torch.float32)
    w = model.embedding.weight.detach().clone().requires_grad_(True)
    x, out = w, w
    for _ in range(3):
        x = a_hat @ x
        out = out + x
    out = out / 4
    eu, ep, en = out[u], out[p + N_USERS], out[n + N_USERS]
    ((eu * ep).sum(-1) - 2 * (eu * en).sum(-1)).sum().backward()
    torch.testing.assert_close(sparse_grad, w.grad, rtol=1e-5, atol=1e-6)


def test_symmetric_spmm_without_grad_is_plain_product(adj):
    x = torch.randn(N_USERS + N_ITEMS, 2)
    torch.testing.assert_close(symmetric_spmm(adj, x), torch.tensor(dense_normalised(), dtype=torch.float32) @ x)


@pytest.mark.parametrize("name", ["lightgcn", "mf"])
def test_gradients_reach_every_parameter(adj, name):
    torch.manual_seed(0)
    model = build_model(name, n_users=N_USERS, n_items=N_ITEMS, embedding_dim=4)
    u, p, n = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), torch.tensor([3, 3, 1])
    pos, neg = model(adj, u, p, n)
    eu, ei = model.ego_embeddings(u, torch.cat([p, n]))
    (torch.nn.functional.softplus(neg - pos).mean() + eu.pow(2).sum() + ei.pow(2).sum()).backward()
    params = list(model.named_parameters())
    assert params
    for pname, param in params:
        assert param.grad is not None, pname
        assert param.grad.abs().sum() > 0, pname


def test_lightgcn_gradient_reaches_unsampled_nodes_through_the_graph(adj):
    # a batch that names only user 0 and items 0/1 still moves user 2 (a 2-hop neighbour via item 0)
    torch.manual_seed(0)
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=4, num_layers=2)
    pos, neg = model(adj, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    (pos - neg).sum().backward()
    assert model.embedding.weight.grad[2].abs().sum() > 0


def test_ego_embeddings_are_layer_zero_rows():
    torch.manual_seed(0)
    model = LightGCN(N_USERS, N_ITEMS, embedding_dim=4, num_layers=2)
    eu, ei = model.ego_embeddings(torch.tensor([2, 0]), torch.tensor([3]))
    w = model.embedding.weight
    torch.testing.assert_close(eu, w[[2, 0]])
    torch.testing.assert_close(ei, w[[N_USERS + 3]])


def test_mf_scores_are_dot_products_and_ignore_the_graph(adj):
    torch.manual_seed(0)
    model = MF(N_USERS, N_ITEMS, embedding_dim=6)
    u, p, n = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([2, 0])
    pos, neg = model(adj, u, p, n)
    P, Q = model.user_embedding.weight, model.item_embedding.weight
    torch.testing.assert_close(pos, torch.stack([P[0] @ Q[1], P[2] @ Q[3]]))
    torch.testing.assert_close(neg, torch.stack([P[0] @ Q[2], P[2] @ Q[0]]))
    torch.testing.assert_close(model(None, u, p, n)[0], pos)
    ue, ie = model.embed(None)
    assert ue.shape == (N_USERS, 6) and ie.shape == (N_ITEMS, 6)
    eu, ei = model.ego_embeddings(u, p)
    torch.testing.assert_close(eu, P[u])
    torch.testing.assert_close(ei, Q[p])


def test_popularity_ranks_by_training_count_with_ties_by_item_id():
    # counts: item 0 -> 2, item 1 -> 3, item 2 -> 2, item 3 -> 0, item 4 -> 3
    items = torch.tensor([0, 0, 1, 1, 1, 2, 2, 4, 4, 4])
    model = Popularity(n_users=2, n_items=5).fit(_Edges(items))
    assert model.trainable is False
    assert list(model.parameters()) == []
    torch.testing.assert_close(model.counts, torch.tensor([2.0, 3.0, 2.0, 0.0, 3.0]))
    ue, ie = model.embed()
    assert ue.shape == (2, 1) and ie.shape == (5, 1)
    _, ids, scores = top_k_items(ue, ie, None, k=5)
    assert ids.tolist() == [[1, 4, 0, 2, 3], [1, 4, 0, 2, 3]]
    assert scores[0].tolist() == [3.0, 3.0, 2.0, 2.0, 0.0]
    # user 1 has interacted with item 1: masked, item 4 comes first
    exclude = csr_from_pairs(2, 5, [1], [1])
    _, ids, _ = top_k_items(ue, ie, exclude, k=2)
    assert ids.tolist() == [[1, 4], [4, 0]]
    pos, neg = model(None, torch.tensor([0]), torch.tensor([1]), torch.tensor([3]))
    assert pos.tolist() == [3.0] and neg.tolist() == [0.0]


def test_popularity_counts_survive_a_checkpoint():
    model = Popularity(3, 4).fit(_Edges(torch.tensor([3, 3, 1])))
    restored = _roundtrip(checkpoint("popularity", {"n_users": 3, "n_items": 4}, model))
    torch.testing.assert_close(restored.counts, torch.tensor([0.0, 1.0, 0.0, 2.0]))


def test_repr():
    assert repr(LightGCN(3, 4, embedding_dim=8, num_layers=2)) == "LightGCN(3, 4, embedding_dim=8, num_layers=2)"
    assert repr(MF(3, 4, embedding_dim=16)) == "MF(3, 4, embedding_dim=16)"
    assert repr(Popularity(3, 4)) == "Popularity(3, 4)"


def test_initialisation_is_seeded_and_reset_parameters_redraws():
    torch.manual_seed(7)
    a = LightGCN(10, 20, embedding_dim=8)
    torch.manual_seed(7)
    b = LightGCN(10, 20, embedding_dim=8)
    torch.testing.assert_close(a.embedding.weight, b.embedding.weight)
    std = float(a.embedding.weight.detach().std())
    assert 0.07 < std < 0.13                      # normal(0, 0.1)
    before = a.embedding.weight.detach().clone()
    a.reset_parameters()
    assert not torch.equal(before, a.embedding.weight)


def test_registry_and_checkpoint_roundtrip(adj):
    assert {"lightgcn", "mf", "popularity"} <= set(BUILTIN)      # the model zoo: tests/unit/test_model_zoo.py
    with pytest.raises(ParamsError, match="models"):
        build_model("no-such-model", n_users=1, n_items=1)
    kwargs = {"n_users": N_USERS, "n_items": N_ITEMS, "embedding_dim": 4, "num_layers": 2}
    torch.manual_seed(3)
    model = build_model("lightgcn", **kwargs)
    restored = _roundtrip(checkpoint("lightgcn", kwargs, model))
    assert isinstance(restored, LightGCN) and repr(restored) == repr(model)
    with torch.no_grad():
        for a, b in zip(model.embed(adj), restored.embed(adj)):
            torch.testing.assert_close(a, b)


def _roundtrip(ckpt: dict) -> torch.nn.Module:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    buf.seek(0)
    return model_from_checkpoint(torch.load(buf, weights_only=True))

"""New users without retraining, per model: the exact path against a graph built by hand with the user
added, the served paths that equal it where the algebra says so, and the fold-in baselines' known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.graph import bipartite_adjacency
from gnnrec.models import build_model
from gnnrec.models.inductive import mean_rows, pad_lists
from gnnrec.training import prepare_adjacency

pytestmark = pytest.mark.usefixtures("one_thread")

N_USERS, N_ITEMS, DIM = 12, 9, 8
SMALL = {
    "lightgcn": {"embedding_dim": DIM, "num_layers": 2},
    "gcn": {"embedding_dim": DIM, "num_layers": 2},
    "ngcf": {"embedding_dim": DIM, "num_layers": 2, "message_dropout": 0.0},
    "social": {"embedding_dim": DIM, "num_layers": 2},
    "graphsage": {"embedding_dim": DIM, "fanouts": [5, 5]},
    "gat": {"embedding_dim": DIM, "num_layers": 2, "heads": 2, "fanouts": [5, 5]},
    "pinsage": {"embedding_dim": DIM, "num_layers": 2, "walk_length": 2, "num_walks": 10, "top_k": 4},
}


def tiny_graph(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    pairs = {(u, int(i)) for u in range(N_USERS) for i in rng.choice(N_ITEMS, 3, replace=False)}
    u, i = map(np.array, zip(*sorted(pairs)))
    src = np.array([0, 1, 2, 3, 5, 7])
    dst = np.array([1, 2, 3, 4, 6, 8])
    return {"n_users": N_USERS, "n_items": N_ITEMS,
            "train_user": torch.from_numpy(u), "train_item": torch.from_numpy(i),
            "social_src": torch.from_numpy(src), "social_dst": torch.from_numpy(dst)}


def trained_like(name: str, graph: dict, n_users: int = N_USERS):
    """A model with random (non-initial) weights, so that every parameter matters."""
    torch.manual_seed(3)
    model = build_model(name, n_users=n_users, n_items=N_ITEMS, **SMALL[name])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.prepare(graph).eval()


def adjacency(graph: dict):
    return prepare_adjacency(bipartite_adjacency(graph["n_users"], graph["n_items"], graph["train_user"].numpy(),
                                                 graph["train_item"].numpy()))


def with_new_user(name: str, model, graph: dict, items: list[int], friends: list[int]):
    """By hand: a model for ``N_USERS + 1`` users whose user ``N_USERS`` has a zero layer-0 row and the
    given edges and ties, every other weight copied."""
    big_graph = dict(graph, n_users=N_USERS + 1,
                     train_user=torch.cat([graph["train_user"], torch.full((len(items),), N_USERS)]),
                     train_item=torch.cat([graph["train_item"], torch.tensor(items)]),
                     social_src=torch.cat([graph["social_src"], torch.full((len(friends),), N_USERS)]),
                     social_dst=torch.cat([graph["social_dst"], torch.tensor(friends, dtype=torch.long)]))
    big = build_model(name, n_users=N_USERS + 1, n_items=N_ITEMS, **SMALL[name])
    state = dict(model.state_dict())
    w = state["embedding.weight"]
    state["embedding.weight"] = torch.cat([w[:N_USERS], torch.zeros(1, w.shape[1]), w[N_USERS:]])
    big.load_state_dict(state)
    big.prepare(big_graph).eval()
    with torch.no_grad():
        users, _ = big.embed(adjacency(big_graph))
    return users[N_USERS]


@pytest.mark.parametrize("name", list(SMALL))
def test_the_exact_path_is_the_trained_propagation_over_the_graph_with_the_user_added(name):
    graph = tiny_graph()
    model = trained_like(name, graph)
    items, friends = [1, 4, 7], ([2, 9] if name == "social" else [])
    expected = with_new_user(name, model, graph, items, friends)
    got = model.exact_users(graph, [torch.tensor(items)], [torch.tensor(friends)] if friends else None)
    assert got.shape == (1, expected.shape[0])
    assert expected.abs().sum() > 0
    torch.testing.assert_close(got[0], expected, rtol=1e-5, atol=1e-6)
    # and it depends on the items given: another set gives another embedding
    other = model.exact_users(graph, [torch.tensor([0, 2])])
    assert not torch.allclose(other[0], got[0])


@pytest.mark.parametrize("name", ["lightgcn", "graphsage", "gat"])
def test_with_one_layer_the_served_path_equals_the_exact_path(name):
    # one layer: the new user's only message is from its items' layer 0, which its own edge cannot change
    # (LightGCN's served "propagate" uses the degrees the edge gives, d_i + 1)
    graph = tiny_graph(1)
    kwargs = {"lightgcn": {"num_layers": 1}, "graphsage": {"fanouts": [5]}, "gat": {"num_layers": 1, "fanouts": [5]}}
    SMALL_ONE = {**SMALL[name], **kwargs[name]}
    torch.manual_seed(3)
    model = build_model(name, n_users=N_USERS, n_items=N_ITEMS, **SMALL_ONE).prepare(graph).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    items = [torch.tensor([0, 3, 5]), torch.tensor([8])]
    state = model.serving_state(adjacency(graph))
    settings = {"fold_in": "propagate"} if name == "lightgcn" else {}
    served = model.infer_users(items, state=state, **settings)
    exact = torch.cat([model.exact_users(graph, [x]) for x in items])       # one user at a time
    torch.testing.assert_close(served, exact, rtol=1e-5, atol=1e-6)


def test_lightgcn_served_mean_is_the_mean_of_the_items_final_embeddings():
    graph = tiny_graph()
    model = trained_like("lightgcn", graph)
    state = model.serving_state(adjacency(graph))
    _, item_emb = model.embed(adjacency(graph))
    got = model.infer_users([torch.tensor([2, 5]), torch.tensor([], dtype=torch.long)], state=state)
    torch.testing.assert_close(got[0], (item_emb[2] + item_emb[5]) / 2)
    assert torch.equal(got[1], torch.zeros(DIM))                              # nothing known: zeros


def test_mf_fold_in_is_the_ridge_solution():
    model = build_model("mf", n_users=3, n_items=4, embedding_dim=4)
    with torch.no_grad():
        model.item_embedding.weight.copy_(torch.eye(4) * 2.0)                 # orthogonal rows of norm 2
    state = model.serving_state(None)
    got = model.infer_users([torch.tensor([0, 2])], state=state, ridge=1.0)
    # (Q^T Q + I)^-1 Q^T 1 = (4 + 1)^-1 * 2 on the two known coordinates
    torch.testing.assert_close(got[0], torch.tensor([0.4, 0.0, 0.4, 0.0]))
    ranked = (got @ state["item"].t())[0]
    assert set(torch.topk(ranked, 2).indices.tolist()) == {0, 2}


def test_the_social_served_path_adds_the_gated_friends_mean():
    graph = tiny_graph()
    model = trained_like("social", graph)
    state = model.serving_state(adjacency(graph))
    alone = model.infer_users([torch.tensor([1])], state=state)
    with_friends = model.infer_users([torch.tensor([1])], friends=[torch.tensor([3, 4])], state=state,
                                     friend_weight=1.0)
    ego = state["ego"]
    proxy = ego[N_USERS + 1]
    gate = torch.sigmoid(model.gate(proxy[None] * ego[[3, 4]])).squeeze(-1)
    expected = alone[0] + (gate[:, None] * state["user"][[3, 4]]).sum(0) / 2
    torch.testing.assert_close(with_friends[0], expected)
    only_friends = model.infer_users([torch.tensor([], dtype=torch.long)], friends=[torch.tensor([3])], state=state)
    assert only_friends.abs().sum() > 0                                       # k = 0 with a friend: not empty


def test_pinsage_new_user_neighbourhood_starts_at_its_items():
    graph = tiny_graph()
    model = trained_like("pinsage", graph)
    model.walk_length = 1                                                    # one step: only the items themselves
    hood = model.new_node_neighbourhood([torch.tensor([2, 6]), torch.tensor([], dtype=torch.long)])
    first = set((hood["nbr"][0][hood["mask"][0]] - N_USERS).tolist())
    assert first == {2, 6}
    assert not hood["mask"][1].any()
    assert hood["weight"][0][hood["mask"][0]].sum() == model.num_walks        # every walk visits one item


def test_pad_lists_and_mean_rows():
    ids, mask = pad_lists([torch.tensor([3, 1]), torch.tensor([], dtype=torch.long), torch.tensor([2])])
    assert ids.tolist() == [[3, 1], [0, 0], [2, 0]]
    assert mask.tolist() == [[True, True], [False, False], [True, False]]
    table = torch.arange(8.0).reshape(4, 2)
    got = mean_rows(table, [torch.tensor([3, 1]), torch.tensor([], dtype=torch.long)])
    assert got.tolist() == [[4.0, 5.0], [0.0, 0.0]]

"""Learned side-feature embeddings (``<model>.user_features``): codes over the known users' values, a
user's layer 0 gains its values' embeddings, and a new user with no items starts from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gnnrec.features import encode, encode_table, n_levels, vocabulary
from gnnrec.graph import bipartite_adjacency
from gnnrec.models import build_model, checkpoint, model_from_checkpoint
from gnnrec.models.base import GraphInputError
from gnnrec.training import prepare_adjacency

FEATURES = pd.DataFrame({"age": ["18-24", "25-34", "18-24", "56+"], "job": ["writer", "nurse", "nurse", "chef"]},
                        index=pd.Index([0, 1, 2, 3], name="user_id"))


def test_codes_number_the_known_users_values_feature_after_feature():
    vocab = vocabulary(FEATURES, known=np.array([0, 1, 2]))                  # user 3 is not known
    assert vocab == {"age": {"18-24": 0, "25-34": 1}, "job": {"nurse": 2, "writer": 3}}
    assert n_levels(vocab) == 4
    assert encode_table(FEATURES, vocab).tolist() == [[0, 3], [1, 2], [0, 2], [-1, -1]]   # 56+, chef: unknown
    assert encode([{"job": "writer"}, None], vocab).tolist() == [[-1, 3], [-1, -1]]


def graph_with_codes():
    u = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    i = torch.tensor([0, 1, 1, 2, 0, 2, 3])
    codes = torch.from_numpy(encode_table(FEATURES, vocabulary(FEATURES, np.arange(4))))
    empty = torch.zeros(0, dtype=torch.long)
    return {"n_users": 4, "n_items": 4, "train_user": u, "train_item": i, "social_src": empty,
            "social_dst": empty, "user_feature_codes": codes, "n_feature_levels": 6}


@pytest.mark.parametrize("name", ["lightgcn", "mf"])
def test_a_users_layer_zero_gains_its_values_embeddings_and_training_reaches_them(name):
    graph = graph_with_codes()
    torch.manual_seed(0)
    model = build_model(name, n_users=4, n_items=4, embedding_dim=4, user_features=True, n_feature_levels=6)
    model.prepare(graph)
    adj = prepare_adjacency(bipartite_adjacency(4, 4, graph["train_user"].numpy(), graph["train_item"].numpy()))
    pos, neg = model(adj, torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3, 0]))
    (neg - pos).sum().backward()
    grad = model.user_features.embedding.weight.grad
    assert grad is not None and grad[[0, 3, 1, 2]].abs().sum() > 0          # users 0 and 1's values
    users, _ = model.embed(adj)
    plain = build_model(name, n_users=4, n_items=4, embedding_dim=4)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("user_features")})
    assert not torch.allclose(users, plain.eval().embed(adj)[0])


def test_a_new_user_with_no_items_starts_from_its_features():
    graph = graph_with_codes()
    torch.manual_seed(1)
    model = build_model("lightgcn", n_users=4, n_items=4, embedding_dim=4, num_layers=2, user_features=True,
                        n_feature_levels=6).prepare(graph).eval()
    adj = prepare_adjacency(bipartite_adjacency(4, 4, graph["train_user"].numpy(), graph["train_item"].numpy()))
    state = model.serving_state(adj)
    codes = torch.tensor([[0, 5]])
    got = model.infer_users([torch.zeros(0, dtype=torch.long)], codes, state=state)
    feat = model.user_features.embedding.weight
    torch.testing.assert_close(got[0], (feat[0] + feat[5]) / 3)              # layer 0 over the K + 1 layers
    assert torch.equal(model.infer_users([torch.zeros(0, dtype=torch.long)], state=state), torch.zeros(1, 4))
    mf = build_model("mf", n_users=4, n_items=4, embedding_dim=4, user_features=True, n_feature_levels=6)
    mf.prepare(graph)
    prior = mf.infer_users([torch.zeros(0, dtype=torch.long)], codes, state=mf.serving_state(None), ridge=1.0)
    torch.testing.assert_close(prior[0], mf.user_features.rows(codes)[0])   # no items: the ridge's prior alone


def test_the_checkpoint_reloads_with_its_feature_embeddings():
    graph = graph_with_codes()
    model = build_model("mf", n_users=4, n_items=4, embedding_dim=4, user_features=True, n_feature_levels=6)
    model.prepare(graph)
    kwargs = {"n_users": 4, "n_items": 4, "embedding_dim": 4, "user_features": True, "n_feature_levels": 6}
    loaded = model_from_checkpoint(checkpoint("mf", kwargs, model), graph)
    torch.testing.assert_close(loaded.embed(None)[0], model.embed(None)[0])


def test_user_features_on_data_without_them_is_a_clear_error():
    graph = {k: v for k, v in graph_with_codes().items() if k not in ("user_feature_codes", "n_feature_levels")}
    model = build_model("lightgcn", n_users=4, n_items=4, embedding_dim=4, user_features=True, n_feature_levels=6)
    with pytest.raises(GraphInputError, match="lightgcn.user_features needs user side features"):
        model.prepare(graph)

"""graph.time_decay: edge weights from interaction age, and the weighted normalisation D^-1/2 A D^-1/2 against a
dense reference on a tiny graph; the weights reach the models through graph.npz and InteractionData."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gnnrec.errors import DataError
from gnnrec.graph import bipartite_adjacency
from gnnrec.stages.build_graph import time_decay_weights
from gnnrec.training import InteractionData

DAY = 86400


def test_weights_halve_every_half_life_back_from_the_latest_interaction():
    t0 = 1_600_000_000
    ts = pd.Series([t0, t0 - 7 * DAY, t0 - 14 * DAY, t0 - 3 * DAY], dtype="Int64")
    weights, summary = time_decay_weights(ts, 7.0, "train.parquet")
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, [1.0, 0.5, 0.25, 0.5 ** (3 / 7)], rtol=1e-6)
    assert summary["latest"] == t0 and summary["share_below_half"] == 0.25
    assert time_decay_weights(pd.Series([t0, t0 - 10_000 * DAY]), 1.0, "f")[0][1] == pytest.approx(1e-8)  # floor
    with pytest.raises(DataError, match=r"train.parquet.*1 of 2 training interactions have none"):
        time_decay_weights(pd.Series([t0, None], dtype="Int64"), 7.0, "train.parquet")


def test_weighted_adjacency_matches_the_dense_formula():
    users, items = np.array([0, 0, 1, 2]), np.array([0, 1, 0, 1])
    w = np.array([1.0, 0.5, 0.25, 2.0])
    n_users, n_items = 3, 2
    a = np.zeros((5, 5))
    for u, i, x in zip(users, items, w):
        a[u, n_users + i] += x
        a[n_users + i, u] += x
    d = a.sum(1)
    expected = a / np.sqrt(np.outer(d, d))
    got = bipartite_adjacency(n_users, n_items, users, items, w).to_dense().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    ones = bipartite_adjacency(n_users, n_items, users, items, np.ones(4)).to_dense()
    assert torch.allclose(ones, bipartite_adjacency(n_users, n_items, users, items).to_dense())
    # the entries are reordered by (row, col): weights given in another edge order still land on their edges
    order = np.array([3, 1, 0, 2])
    shuffled = bipartite_adjacency(n_users, n_items, users[order], items[order], w[order]).to_dense().numpy()
    np.testing.assert_allclose(shuffled, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="positive finite weights"):
        bipartite_adjacency(n_users, n_items, users, items, np.array([1.0, 0.0, 1.0, 1.0]))


def test_interaction_data_propagates_over_the_weighted_graph():
    # user 0 has items 0 and 1, user 1 item 1: weights change the normalised values (not so for disjoint edges)
    data = InteractionData(2, 2, [0, 0, 1], [0, 1, 1], [], [], train_weight=np.array([1.0, 0.5, 0.25]))
    assert torch.equal(data.adjacency().to_dense(),
                       bipartite_adjacency(2, 2, [0, 0, 1], [0, 1, 1], [1.0, 0.5, 0.25]).to_dense())
    assert not torch.allclose(data.adjacency().to_dense(), bipartite_adjacency(2, 2, [0, 0, 1], [0, 1, 1]).to_dense())
    with pytest.raises(ValueError, match="one weight per training edge"):
        InteractionData(2, 2, [0, 1], [0, 1], [], [], train_weight=np.array([1.0]))


def test_build_graph_writes_the_weights_and_the_models_read_them(tmp_path):
    from gnnrec.artifacts import load_graph, load_interaction_data
    from gnnrec.config import params_from_dict
    from gnnrec.io import read_json, write_parquet
    from gnnrec.paths import Paths
    from gnnrec.stages import build_graph

    paths = Paths(tmp_path)
    t0 = 1_600_000_000
    train = pd.DataFrame({"user_id": [0, 0, 1, 1], "item_id": [0, 1, 0, 2],
                          "timestamp": pd.array([t0, t0 - 2 * DAY, t0 - 4 * DAY, t0 - DAY], dtype="Int64")})
    write_parquet(paths.split / "train.parquet", train)
    write_parquet(paths.split / "val.parquet", train.iloc[:1])
    write_parquet(paths.dataset / "users.parquet", pd.DataFrame({"user_id": [0, 1], "raw_id": ["a", "b"]}))
    write_parquet(paths.dataset / "items.parquet", pd.DataFrame({"item_id": [0, 1, 2], "raw_id": ["x", "y", "z"]}))
    write_parquet(paths.dataset / "social.parquet", pd.DataFrame({"src": pd.Series([], dtype="int64"),
                                                                  "dst": pd.Series([], dtype="int64")}))
    build_graph.run(params_from_dict({"graph": {"time_decay": {"half_life_days": 2}}}), paths)
    data = load_interaction_data(paths, load_graph(paths))
    np.testing.assert_allclose(data.train_weight.numpy(), [1.0, 0.5, 0.25, 0.5 ** 0.5], rtol=1e-6)
    assert read_json(paths.graph_stats)["time_decay"]["half_life_days"] == 2.0
    build_graph.run(params_from_dict({}), paths)                      # off: no weights, every edge 1
    assert load_interaction_data(paths, load_graph(paths)).train_weight is None


def test_training_hands_the_weights_to_the_cluster_sampler():
    from gnnrec.config import TrainConfig
    from gnnrec.models import LightGCN
    from gnnrec.sampling.subgraph_train import build_subgraph_trainer
    from gnnrec.training import prepare_adjacency

    users, items, w = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), torch.tensor([1.0, 0.5, 0.25])
    cfg = TrainConfig(subgraph={"method": "cluster", "num_parts": 2, "clusters_per_batch": 1})
    adj = prepare_adjacency(bipartite_adjacency(2, 2, users, items, w))
    trainer = build_subgraph_trainer(cfg, LightGCN(2, 2, embedding_dim=4), adj, 2, users, items, edge_weight=w)
    # users 0, 1 then items 0, 1: the weighted degrees
    assert trainer.sampler.weighted_degree.tolist() == [1.5, 0.25, 1.0, 0.75]
    plain = build_subgraph_trainer(cfg, LightGCN(2, 2, embedding_dim=4), adj, 2, users, items)
    assert plain.sampler.weighted_degree is None

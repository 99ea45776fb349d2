"""Negative sampling, the BPR training loop (early stopping, determinism) and the train/evaluate stages."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from gnnrec.artifacts import save_graph
from gnnrec.config import TrainConfig, params_from_dict
from gnnrec.constants import METRIC_NAMES
from gnnrec.evaluation import csr_union, evaluate_ranking
from gnnrec.graph import csr_from_pairs
from gnnrec.io import write_parquet
from gnnrec.models import LightGCN, Popularity, build_model
from gnnrec.paths import Paths
from gnnrec.sampling import UniformNegativeSampler
from gnnrec.training import InteractionData, TrainingError, bpr_loss, train_model, validation_scores


# ------------------------------------------------------------------------------------------ data
def planted(n_comm: int = 4, users_per: int = 10, items_per: int = 20, n_train: int = 8, n_val: int = 2,
            n_test: int = 2, seed: int = 0, anti_val: bool = False):
    """Users of community c interact only with items of community c (``anti_val``: validation items are
    drawn from the next community instead, so fitting the training data makes validation worse)."""
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in range(n_comm):
        for u in range(c * users_per, (c + 1) * users_per):
            items = c * items_per + rng.choice(items_per, n_train + n_val + n_test, replace=False)
            tr += [(u, i) for i in items[:n_train]]
            te += [(u, i) for i in items[n_train + n_val:]]
            if anti_val:
                other = ((c + 1) % n_comm) * items_per + rng.choice(items_per, n_val, replace=False)
                va += [(u, i) for i in other]
            else:
                va += [(u, i) for i in items[n_train:n_train + n_val]]
    tr, va, te = (np.array(x, dtype=np.int64) for x in (tr, va, te))
    n_users, n_items = n_comm * users_per, n_comm * items_per
    data = InteractionData(n_users, n_items, tr[:, 0], tr[:, 1], va[:, 0], va[:, 1])
    return data, te


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=30, batch_size=64, lr=0.05, l2=1e-4, patience=5)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------ negatives
def test_negative_sampler_never_returns_a_positive_and_is_uniform():
    # dense-ish: 5 users x 8 items, user 3 has 7 of 8 items, user 4 has none
    pos = {0: [0, 1, 2, 3], 1: [7], 2: [1, 3, 5, 6], 3: [0, 1, 2, 3, 4, 5, 7], 4: []}
    users = torch.tensor([u for u, its in pos.items() for _ in its])
    items = torch.tensor([i for its in pos.values() for i in its])
    sampler = UniformNegativeSampler(5, 8, users, items)
    g = torch.Generator().manual_seed(0)
    n = 8000
    for u, its in pos.items():
        draws = sampler.sample(torch.full((n,), u), g)
        counts = Counter(draws.tolist())
        allowed = set(range(8)) - set(its)
        assert set(counts) == allowed, u               # never a positive, every negative reachable
        expected = n / len(allowed)
        for item in allowed:                            # roughly uniform: 5 sigma of a binomial
            sd = np.sqrt(n * (1 / len(allowed)) * (1 - 1 / len(allowed)))
            assert abs(counts[item] - expected) < 5 * sd + 1, (u, item, counts)
    assert sampler.contains(torch.tensor([0, 0, 3]), torch.tensor([3, 4, 6])).tolist() == [True, False, False]


def test_negative_sampler_with_duplicate_edges_and_mixed_batch():
    users = torch.tensor([1, 1, 1, 0, 2, 2])
    items = torch.tensor([2, 2, 0, 5, 5, 4])
    sampler = UniformNegativeSampler(3, 6, users, items)
    g = torch.Generator().manual_seed(1)
    batch = torch.randint(0, 3, (20000,), generator=g)
    neg = sampler.sample(batch, g)
    assert neg.min() >= 0 and neg.max() < 6
    assert not sampler.contains(batch, neg).any()


def test_negative_sampler_is_deterministic_with_a_generator():
    sampler = UniformNegativeSampler(3, 50, torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]))
    u = torch.tensor([0, 1, 2] * 10)
    a = sampler.sample(u, torch.Generator().manual_seed(5))
    b = sampler.sample(u, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------------- loss
def test_bpr_loss_value():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    e = torch.tensor([[1.0, 2.0]])                                    # ||e||^2 = 5
    loss = bpr_loss(pos, neg, (e,), l2=0.1)
    expected = -(np.log(1 / (1 + np.exp(-2.0))) + np.log(1 / (1 + np.exp(1.0)))) / 2 + 0.1 * 5 / (2 * 2)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------------ training
def test_bpr_loss_decreases_on_planted_communities():
    data, _ = planted()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=16, num_layers=2)
    result = train_model(model, data, cfg(epochs=15, patience=100), seed=0)
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 15 and result.stopped == "max_epochs"
    assert losses[0] > 0.6                                            # ~log 2 at the start
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", ["lightgcn", "mf"])
def test_model_beats_random_on_planted_communities(name):
    data, test = planted()
    torch.manual_seed(0)
    kw = {"num_layers": 2} if name == "lightgcn" else {}
    model = build_model(name, n_users=data.n_users, n_items=data.n_items, embedding_dim=16, **kw)
    result = train_model(model, data, cfg(epochs=40, patience=10), seed=0)
    exclude = csr_union(data.train_csr(), data.val_csr(), data.n_items)
    with torch.no_grad():
        ue, ie = model.embed(data.adjacency())
    m = evaluate_ranking(ue, ie, exclude, csr_from_pairs(data.n_users, data.n_items, test[:, 0], test[:, 1]), [10])
    # random: 10 slots among 70 candidate items, 2 of them held out -> recall@10 ~ 0.14
    assert m["recall@10"] > 0.6, (m, result.best_epoch)
    assert result.best_score > 0.3


def test_early_stopping_stops_and_restores_the_best_epoch():
    data, _ = planted(anti_val=True)
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=16, num_layers=2)
    snapshots = {}

    def log(row):
        snapshots[row["epoch"]] = model.embedding.weight.detach().clone()

    patience = 3
    result = train_model(model, data, cfg(epochs=60, patience=patience), seed=0, log=log)
    scores = [row["val_score"] for row in result.history]
    assert result.stopped == "early_stop"
    assert result.epochs_run == result.best_epoch + patience < 60
    assert result.best_score == max(scores) == scores[result.best_epoch - 1]
    assert all(s < result.best_score for s in scores[result.best_epoch:])
    assert torch.equal(model.embedding.weight, snapshots[result.best_epoch])
    assert not torch.equal(model.embedding.weight, snapshots[result.epochs_run])
    again = validation_scores(model, data.adjacency(), data.train_csr(), data.val_csr(), [20], 1024)["ndcg@20"]
    assert again == pytest.approx(result.best_score)
    assert [row["epoch"] for row in result.history] == list(range(1, result.epochs_run + 1))
    seconds = [row["seconds"] for row in result.history]
    assert seconds == sorted(seconds) and result.train_seconds >= seconds[-1]


@pytest.mark.parametrize("metric", ["mrr@10", "map@10"])
def test_early_stopping_on_mrr_and_map(metric):
    data, _ = planted()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=1)
    result = train_model(model, data, cfg(epochs=4, patience=100), metric=metric, seed=0)
    scores = [row["val_score"] for row in result.history]
    assert len(scores) == 4 and all(0.0 <= s <= 1.0 for s in scores)
    assert result.best_score == max(scores)
    again = validation_scores(model, data.adjacency(), data.train_csr(), data.val_csr(), [10], 1024)[metric]
    assert again == pytest.approx(result.best_score)


def test_eval_every_and_patience_count_evaluations():
    data, _ = planted(anti_val=True)
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=16, num_layers=2)
    result = train_model(model, data, cfg(epochs=60, patience=2, eval_every=3), seed=0)
    evaluated = [row["epoch"] for row in result.history if row["val_score"] is not None]
    assert evaluated == list(range(3, result.epochs_run + 1, 3))
    assert result.best_epoch % 3 == 0
    assert result.stopped == "early_stop" and result.epochs_run == result.best_epoch + 2 * 3


def test_same_seed_same_training():
    data, _ = planted()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=2)
        result = train_model(model, data, cfg(epochs=4, patience=10), seed=11)
        runs.append(([(r["loss"], r["val_score"]) for r in result.history], model.embedding.weight.detach()))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])
    torch.manual_seed(3)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=2)
    other = train_model(model, data, cfg(epochs=4, patience=10), seed=12)
    assert [(r["loss"], r["val_score"]) for r in other.history] != runs[0][0]


def test_max_seconds_stops_after_the_epoch_that_spends_it():
    data, _ = planted()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=1)
    result = train_model(model, data, cfg(epochs=50, max_seconds=1e-6), seed=0)
    assert result.stopped == "max_seconds" and result.epochs_run == 1
    assert result.history[0]["val_score"] is not None and result.best_epoch == 1


def test_num_threads_is_honoured_and_restored():
    data, _ = planted()
    before = torch.get_num_threads()
    seen = []
    model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=1)
    train_model(model, data, cfg(epochs=1, num_threads=1), seed=0, log=lambda row: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == before


def test_popularity_is_not_trained_but_scored():
    data, _ = planted()
    model = Popularity(data.n_users, data.n_items)
    result = train_model(model, data, cfg(), seed=0)
    assert result.stopped == "no_training" and result.epochs_run == 0 and result.history == []
    assert model.counts.sum() == len(data.train_item)
    assert 0.0 <= result.best_score <= 1.0


def test_a_diverging_loss_is_a_clear_error():
    data, _ = planted()
    model = LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=1)
    with torch.no_grad():
        model.embedding.weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match="lower train.lr"):
        train_model(model, data, cfg(epochs=2), seed=0)


def test_unavailable_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    data, _ = planted()
    with pytest.raises(TrainingError, match="CUDA"):
        train_model(LightGCN(data.n_users, data.n_items), data, cfg(device="cuda"), seed=0)


# -------------------------------------------------------------------------------------- stages
def make_project(root, data: InteractionData, test: np.ndarray) -> Paths:
    paths = Paths(root)
    save_graph(paths, {"n_users": data.n_users, "n_items": data.n_items,
                       "train_user": data.train_user, "train_item": data.train_item,
                       "social_src": torch.zeros(0, dtype=torch.long), "social_dst": torch.zeros(0, dtype=torch.long)})

    def frame(u, i):
        return pd.DataFrame({"user_id": np.asarray(u, np.int64), "item_id": np.asarray(i, np.int64),
                             "weight": np.ones(len(u), np.float32),
                             "timestamp": pd.array([None] * len(u), dtype="Int64")})

    write_parquet(paths.split / "train.parquet", frame(data.train_user.numpy(), data.train_item.numpy()))
    write_parquet(paths.split / "val.parquet", frame(data.val_user.numpy(), data.val_item.numpy()))
    write_parquet(paths.split / "test.parquet", frame(test[:, 0], test[:, 1]))
    write_parquet(paths.dataset / "users.parquet", pd.DataFrame(
        {"user_id": np.arange(data.n_users), "raw_id": [f"u{k}" for k in range(data.n_users)]}))
    write_parquet(paths.dataset / "items.parquet", pd.DataFrame(
        {"item_id": np.arange(data.n_items), "raw_id": [f"i{k}" for k in range(data.n_items)],
         "name": [None] * data.n_items}))
    return paths


def test_train_and_evaluate_stages_write_the_contract(tmp_path):
    from gnnrec.stages import evaluate as evaluate_stage
    from gnnrec.stages import train as train_stage

    data, test = planted()
    params = params_from_dict({"models": ["lightgcn", "mf", "popularity"],
                               "train": {"epochs": 6, "batch_size": 64, "lr": 0.05, "patience": 3},
                               "lightgcn": {"embedding_dim": 16, "num_layers": 2, "epochs": 8},
                               "mf": {"embedding_dim": 8},
                               "evaluate": {"k": [5, 2], "chunk_size": 7}})
    outputs = []
    for run in range(2):
        paths = make_project(tmp_path / f"p{run}", data, test)
        for name in params.models:
            summary = train_stage.run(params, paths, name)
            assert summary["model"] == name
        evaluate_stage.run(params, paths)
        outputs.append(paths)

    paths = outputs[0]
    lg = json.loads(paths.train_summary("lightgcn").read_text())
    assert set(lg) == {"model", "description", "traits", "graph_model", "hyperparameters", "n_params", "epochs_run",
                       "best_epoch", "best_val", "early_stop_metric", "train_seconds", "stopped", "device"}
    assert lg["description"].startswith("LightGCN") and lg["graph_model"] is True
    assert lg["hyperparameters"]["epochs"] == 8 and lg["hyperparameters"]["embedding_dim"] == 16
    assert lg["n_params"] == (data.n_users + data.n_items) * 16 and lg["device"] == "cpu"
    assert lg["early_stop_metric"] == "ndcg@20" and lg["stopped"] in ("early_stop", "max_epochs")
    hist = pd.read_csv(paths.train_history("lightgcn"))
    assert list(hist.columns) == ["epoch", "loss", "val_score", "seconds"] and len(hist) == lg["epochs_run"]
    pop = json.loads(paths.train_summary("popularity").read_text())
    assert pop["stopped"] == "no_training" and pop["epochs_run"] == 0 and pop["n_params"] == 0
    assert 0 <= pop["fit_seconds"] <= pop["train_seconds"] and "fit_seconds" not in lg
    assert paths.train_history("popularity").read_text() == "epoch,loss,val_score,seconds\n"
    ckpt = torch.load(paths.model("mf"), weights_only=True)
    assert ckpt["model"] == "mf" and ckpt["kwargs"] == {"n_users": 40, "n_items": 80, "embedding_dim": 8,
                                                         "user_features": False}

    metrics = json.loads(paths.metrics.read_text())
    assert list(metrics) == sorted(["lightgcn", "mf", "popularity"])
    assert set(metrics["mf"]) == {f"{m}@{k}" for k in (2, 5) for m in METRIC_NAMES}
    assert metrics["lightgcn"]["recall@5"] > metrics["popularity"]["recall@5"]
    per_user = pd.read_parquet(paths.test_per_user)                  # the values behind the means, per test user
    assert list(per_user.columns) == ["model", "user_id", "ndcg@2", "recall@2", "ndcg@5", "recall@5"]
    for model in ("lightgcn", "mf", "popularity"):
        rows = per_user[per_user["model"] == model]
        assert rows["user_id"].is_unique and len(rows) > 0
        assert round(float(rows["ndcg@5"].mean()), 6) == metrics[model]["ndcg@5"]
    # deterministic: a second run from scratch writes the same metrics file
    assert paths.metrics.read_bytes() == outputs[1].metrics.read_bytes()
    details = json.loads(paths.eval_details.read_text())
    assert details["split"] == "test" and details["users_evaluated"] == 40 and details["k"] == [5, 2]
    assert set(details["models"]["mf"]) == {"seconds", "val"}

    recs = pd.read_parquet(paths.recommendations)
    assert list(recs.columns) == ["model", "user", "rank", "item", "score"]
    assert len(recs) == 3 * 40 * 5 and recs["rank"].between(1, 5).all()
    assert recs["score"].dtype == np.float32 and recs["user"].str.startswith("u").all()
    seen = {(f"u{u}", f"i{i}") for u, i in zip(np.r_[data.train_user.numpy(), data.val_user.numpy()],
                                              np.r_[data.train_item.numpy(), data.val_item.numpy()])}
    assert not any((u, i) in seen for u, i in zip(recs["user"], recs["item"]))
    top_pop = recs[(recs["model"] == "popularity") & (recs["rank"] == 1)]
    assert len(top_pop) == 40

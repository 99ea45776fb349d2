"""The pluggable training loss (train.loss: bpr | softmax): values, masking of duplicate positives, the
loop with each loss, and the params."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnnrec.config import TrainConfig, params_from_dict
from gnnrec.errors import ParamsError
from gnnrec.models import LightGCN
from gnnrec.training import InteractionData, batch_loss, bpr_loss, item_log_frequency, softmax_loss, train_model


def test_softmax_loss_is_cross_entropy_over_the_batch_cosines():
    torch.manual_seed(0)
    u, v = torch.randn(5, 4), torch.randn(5, 4)
    tau = 0.2
    expected = 0.0
    for b in range(5):
        logits = torch.stack([F.cosine_similarity(u[b], v[c], dim=0) for c in range(5)]) / tau
        expected += -torch.log_softmax(logits, 0)[b]
    torch.testing.assert_close(softmax_loss(u, v, tau), expected / 5)


def test_softmax_loss_does_not_treat_a_copy_of_the_positive_as_a_negative():
    torch.manual_seed(1)
    u, v = torch.randn(4, 3), torch.randn(4, 3)
    v[2] = v[0]                                                   # item 7 twice in the batch
    items = torch.tensor([7, 8, 7, 9])
    masked = softmax_loss(u, v, 0.5, items=items)
    logits = F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).t() / 0.5
    logits[0, 2] = logits[2, 0] = -math.inf
    torch.testing.assert_close(masked, F.cross_entropy(logits, torch.arange(4)))
    assert not torch.isclose(masked, softmax_loss(u, v, 0.5))


def test_logq_correction_subtracts_each_columns_log_frequency():
    """Hand computation: item frequencies 3/6, 2/6, 1/6 (an unseen item gets log 1/6 too, clamped); each
    column's logits lose its item's log frequency, positives included."""
    items = torch.tensor([0, 1, 0, 2, 0, 1])
    log_q = item_log_frequency(items, 4)
    torch.testing.assert_close(log_q, torch.log(torch.tensor([3 / 6, 2 / 6, 1 / 6, 1 / 6])))
    torch.manual_seed(2)
    u, v = torch.randn(3, 4), torch.randn(3, 4)
    batch_items = torch.tensor([0, 1, 2])
    expected = 0.0
    for b in range(3):
        logits = torch.stack([F.cosine_similarity(u[b], v[c], dim=0) / 0.2 - log_q[batch_items[c]]
                              for c in range(3)])
        expected += -torch.log_softmax(logits, 0)[b]
    corrected = softmax_loss(u, v, 0.2, items=batch_items, log_q=log_q[batch_items])
    torch.testing.assert_close(corrected, expected / 3)
    assert not torch.isclose(corrected, softmax_loss(u, v, 0.2, items=batch_items))


def _tiny_data(n_users=30, n_items=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    users = torch.arange(n_users).repeat_interleave(8)
    items = torch.stack([torch.randperm(n_items, generator=g)[:8] for _ in range(n_users)]).flatten()
    val = torch.arange(0, len(users), 8)
    train = torch.ones(len(users), dtype=torch.bool)
    train[val] = False
    return InteractionData(n_users, n_items, users[train], items[train], users[val], items[val])


def test_batch_loss_dispatches_on_train_loss():
    data = _tiny_data()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, 8, 2)
    adj = data.adjacency()
    u, i, j = data.train_user[:16], data.train_item[:16], torch.randint(0, data.n_items, (16,))
    bpr = batch_loss(model, adj, u, i, j, TrainConfig(l2=0.0))
    pos, neg = model(adj, u, i, j)
    torch.testing.assert_close(bpr, bpr_loss(pos, neg, (), 0.0))
    soft = batch_loss(model, adj, u, i, None, TrainConfig(loss="softmax", temperature=0.3, l2=0.0))
    ue, ie = model.embed(adj)
    torch.testing.assert_close(soft, softmax_loss(ue[u], ie[i], 0.3, items=i))
    log_q = item_log_frequency(data.train_item, data.n_items)
    corrected = batch_loss(model, adj, u, i, None, TrainConfig(loss="softmax", temperature=0.3, l2=0.0, logq=True),
                           log_q)
    torch.testing.assert_close(corrected, softmax_loss(ue[u], ie[i], 0.3, items=i, log_q=log_q[i]))


@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_training_with_each_loss_learns(loss):
    data = _tiny_data()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, 16, 1)
    cfg = TrainConfig(epochs=15, batch_size=64, lr=0.02, l2=0.0, loss=loss, temperature=0.2, patience=100)
    result = train_model(model, data, cfg, seed=0)
    losses = [row["loss"] for row in result.history]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


def test_train_logq_reaches_the_training_loop():
    data = _tiny_data()
    losses = {}
    for logq in (False, True):
        torch.manual_seed(0)
        model = LightGCN(data.n_users, data.n_items, 16, 1)
        cfg = TrainConfig(epochs=3, batch_size=64, lr=0.02, l2=0.0, loss="softmax", logq=logq, patience=100)
        losses[logq] = [row["loss"] for row in train_model(model, data, cfg, seed=0).history]
    assert losses[True][0] != pytest.approx(losses[False][0])
    with pytest.raises(ParamsError, match="train.logq"):
        params_from_dict({"train": {"logq": "yes"}})


def test_loss_params_are_checked():
    assert params_from_dict({}).train.loss == "bpr"
    assert params_from_dict({"train": {"loss": "softmax", "temperature": 0.1}}).train.temperature == 0.1
    with pytest.raises(ParamsError, match="train.loss"):
        params_from_dict({"train": {"loss": "hinge"}})
    with pytest.raises(ParamsError, match="train.temperature"):
        params_from_dict({"train": {"temperature": 0}})


@pytest.mark.parametrize("num_layers", [0, 2])
def test_lightgcn_batch_embeddings_are_embed_rows_with_the_same_gradient(num_layers):
    data = _tiny_data()
    torch.manual_seed(0)
    model = LightGCN(data.n_users, data.n_items, 8, num_layers)
    adj = data.adjacency()
    u, i = data.train_user[:20], data.train_item[:20]
    ue, ie = model.batch_embeddings(adj, u, i)
    (ue.sum() * 2 + ie.pow(2).sum()).backward()
    fused_grad = model.embedding.weight.grad.clone()
    model.embedding.weight.grad = None
    user_emb, item_emb = model.embed(adj)
    torch.testing.assert_close(ue, user_emb[u])
    torch.testing.assert_close(ie, item_emb[i])
    (user_emb[u].sum() * 2 + item_emb[i].pow(2).sum()).backward()
    torch.testing.assert_close(fused_grad, model.embedding.weight.grad)

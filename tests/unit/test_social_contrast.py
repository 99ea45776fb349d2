"""SocialGNN's friend contrast (``contrast_weight``): the InfoNCE of a user's final embedding against the gated mean
of its friends', checked against a hand-built dense computation on a tiny graph, added by the training loop's
batch loss, off by default and outside training, and refused on batch sub-graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gnnrec.graph import bipartite_adjacency
from gnnrec.models import build_model
from gnnrec.training import TrainConfig, batch_loss

N_USERS, N_ITEMS = 5, 3
TRAIN_U = np.array([0, 0, 1, 2, 3, 4])
TRAIN_I = np.array([0, 1, 1, 2, 0, 2])
SOCIAL = [(0, 1), (1, 2), (2, 0), (3, 0)]            # user 4 has no tie


def model(weight: float = 0.5, attention: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    m = build_model("social", n_users=N_USERS, n_items=N_ITEMS, embedding_dim=6, num_layers=2,
                    attention=attention, contrast_weight=weight, contrast_temperature=0.2)
    src, dst = (torch.tensor(c) for c in zip(*SOCIAL))
    m.prepare({"n_users": N_USERS, "n_items": N_ITEMS, "social_src": src, "social_dst": dst, "social_ties_in": 4})
    if attention:                                   # gates away from their uniform start, so the weighting shows
        with torch.no_grad():
            m.gate.weight.normal_(0, 3.0)
    return m.train()


def hand_contrast(m, users: list[int], weight: float) -> torch.Tensor:
    """The term written out: friends' mean weighted by the gates, cosines over 0.2, cross-entropy on the diagonal."""
    with torch.no_grad():                           # (a pass without gradients stores nothing for the term)
        z = m.propagate(adj())[:N_USERS].double()
    w = torch.zeros(N_USERS, N_USERS, dtype=torch.float64)       # w[u, v]: the gate of v's message to u
    for a, b in SOCIAL:
        for u, v in ((a, b), (b, a)):
            g = torch.sigmoid(m.gate(m.embedding.weight[u] * m.embedding.weight[v])).item() if m.gate else 1.0
            w[u, v] = g
    rows = [u for u in sorted(set(users)) if w[u].sum() > 0]
    means = (w @ z) / w.sum(1, keepdim=True).clamp_min(1e-12)
    logits = F.normalize(z[rows], dim=1) @ F.normalize(means[rows], dim=1).T / 0.2
    return weight * F.cross_entropy(logits, torch.arange(len(rows)))


def adj():
    return bipartite_adjacency(N_USERS, N_ITEMS, TRAIN_U, TRAIN_I)


@pytest.mark.parametrize("attention", [True, False])
def test_the_term_equals_the_hand_computation_and_skips_users_without_ties(attention):
    m = model(attention=attention)
    users = [0, 1, 1, 4, 3]                         # a repeated user counts once; user 4 (no tie) is left out
    m.propagate(adj())
    got = m.auxiliary_loss(torch.tensor(users))
    torch.testing.assert_close(got.double(), hand_contrast(m, users, 0.5), rtol=1e-5, atol=1e-6)
    assert m.auxiliary_loss(torch.tensor(users)) is None            # consumed: one term per forward pass


def test_the_gates_and_embeddings_get_its_gradient():
    m = model()
    m.propagate(adj())
    m.auxiliary_loss(torch.tensor([0, 1, 2, 3])).backward()
    assert m.gate.weight.grad.abs().sum() > 0 and m.embedding.weight.grad.abs().sum() > 0


def test_the_batch_loss_adds_it_under_bpr_and_softmax():
    u, i, j = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 0, 1])
    for loss in ("bpr", "softmax"):
        cfg = TrainConfig(loss=loss, l2=0.0)
        with_term = batch_loss(model(0.5), adj(), u, i, j, cfg)
        without = batch_loss(model(0.0), adj(), u, i, j, cfg)
        m = model(0.5)
        m.propagate(adj())
        expected = m.auxiliary_loss(u)
        torch.testing.assert_close(with_term - without, expected, rtol=1e-5, atol=1e-6)
        assert float(expected.detach()) > 0


def test_off_by_default_and_outside_training():
    m = model(0.0)
    m.propagate(adj())
    assert m.auxiliary_loss(torch.tensor([0, 1, 2])) is None
    m = model(0.5).eval()
    with torch.no_grad():
        m.propagate(adj())
    assert m.auxiliary_loss(torch.tensor([0, 1, 2])) is None
    assert build_model("social", n_users=2, n_items=2).contrast_weight == 0.0


def test_fewer_than_two_users_with_ties_gives_no_term():
    m = model()
    m.propagate(adj())
    assert m.auxiliary_loss(torch.tensor([4, 0])) is None


def test_bad_settings_and_sub_graph_steps_are_refused():
    with pytest.raises(ValueError, match="contrast_weight"):
        build_model("social", n_users=2, n_items=2, contrast_weight=-1.0)
    with pytest.raises(ValueError, match="contrast_temperature"):
        build_model("social", n_users=2, n_items=2, contrast_temperature=0.0)
    with pytest.raises(ValueError, match="whole-graph steps"):
        model().subgraph_forward(object())

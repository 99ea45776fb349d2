"""SocialLGN's propagation against a dense reference on a tiny hand-built graph (both normalisations), and its
place in the social report (no gate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.graph import bipartite_adjacency
from gnnrec.models import build_model

N_USERS, N_ITEMS, DIM = 4, 3, 5
TRAIN_U = np.array([0, 0, 1, 2, 2, 3])
TRAIN_I = np.array([0, 1, 1, 2, 0, 2])
SOCIAL = [(0, 1), (1, 0), (1, 2), (3, 2)]            # directed ties; (0, 1) given both ways, counted once


def dense_reference(model, norm: str) -> torch.Tensor:
    """The layers written out with dense matrices, from the model's own weights."""
    n = N_USERS + N_ITEMS
    a = torch.zeros(n, n, dtype=torch.float64)
    for u, i in zip(TRAIN_U, TRAIN_I):
        a[u, N_USERS + i] = a[N_USERS + i, u] = 1.0
    d = a.sum(1)
    a_hat = a / torch.sqrt(torch.outer(d, d)).clamp_min(1e-12) * (torch.outer(d, d) > 0)
    s = torch.zeros(N_USERS, N_USERS, dtype=torch.float64)
    for u, v in SOCIAL:
        s[u, v] = s[v, u] = 1.0                       # undirected, distinct
    ds = s.sum(1)
    s_hat = s / torch.sqrt(torch.outer(ds, ds)).clamp_min(1e-12) * (torch.outer(ds, ds) > 0)
    w = {k: v.detach().double() for k, v in model.state_dict().items()}
    x = w["embedding.weight"]
    layers = [x]
    for _ in range(model.num_layers):
        y = a_hat @ x
        social = s_hat @ x[:N_USERS]
        parts = [torch.tanh(social @ w["att_social.weight"].T), torch.tanh(y[:N_USERS] @ w["att_items.weight"].T)]
        h = torch.cat(parts, 1) @ w["fuse.weight"].T + w["fuse.bias"]
        h = h / (h.norm(dim=1, keepdim=True) if norm == "row" else h.norm())
        x = torch.cat([h, y[N_USERS:]])
        layers.append(x)
    return torch.stack(layers).mean(0)


@pytest.mark.parametrize("norm", ["global", "row"])
def test_propagation_equals_the_dense_layers(norm):
    torch.manual_seed(0)
    model = build_model("sociallgn", n_users=N_USERS, n_items=N_ITEMS, embedding_dim=DIM, num_layers=2,
                        fusion_norm=norm)
    src, dst = (torch.tensor(c) for c in zip(*SOCIAL))
    model.prepare({"n_users": N_USERS, "n_items": N_ITEMS, "train_user": torch.from_numpy(TRAIN_U),
                   "train_item": torch.from_numpy(TRAIN_I), "social_src": src, "social_dst": dst})
    adj = bipartite_adjacency(N_USERS, N_ITEMS, TRAIN_U, TRAIN_I)
    got = model.propagate(adj).double()
    torch.testing.assert_close(got, dense_reference(model, norm), rtol=1e-5, atol=1e-6)


def test_no_gate_every_tie_counts_and_bad_settings_are_refused():
    model = build_model("sociallgn", n_users=N_USERS, n_items=N_ITEMS, embedding_dim=DIM)
    assert model.gate is None
    with pytest.raises(ValueError, match="fusion_norm"):
        build_model("sociallgn", n_users=N_USERS, n_items=N_ITEMS, fusion_norm="l1")


def test_the_social_report_names_a_model_without_a_gate():
    import pandas as pd

    from gnnrec.reporting.social import social_section

    users = np.arange(6)
    per_user = pd.concat([pd.DataFrame({"model": "lightgcn", "user_id": users, "ndcg@10": 0.2}),
                          pd.DataFrame({"model": "sociallgn", "user_id": users, "ndcg@10": 0.1})])
    evaluation = {"models": {"sociallgn": {"social_ties": 8}, "lightgcn": {}}}
    s = social_section(["lightgcn", "sociallgn"], evaluation, {"social": {}}, per_user, None, seed=0)
    assert [r["model"] for r in s["rows"]] == ["sociallgn"] and s["rows"][0]["gates"] == {}
    assert s["verdict"].startswith("No, they hurt: sociallgn is -50.0%")

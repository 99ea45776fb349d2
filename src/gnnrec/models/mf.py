"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""

from __future__ import annotations

from typing import Any, Optional

import torch
from pydantic import StrictBool
from torch import Tensor, nn

from gnnrec.config.schema import ModelParams, PositiveInt
from gnnrec.models.base import Recommender
from gnnrec.models.user_features import UserFeatureEmbedding


class MF(Recommender):
    r"""Matrix factorisation: :math:`\hat y_{ui} = \mathbf{p}_u^\top \mathbf{q}_i`, from `"BPR: Bayesian
    Personalized Ranking from Implicit Feedback" <https://arxiv.org/abs/1205.2618>`_ (Rendle et al.,
    UAI 2009). The graph is ignored (``adj`` is accepted for a common interface).

    Args:
        n_users (int): number of users.
        n_items (int): number of items.
        embedding_dim (int): size of each embedding. (default: ``64``)
        init_std (float): standard deviation of the normal initialisation. (default: ``0.1``)

    Shapes:
        - users, pos, neg: ``[B]`` long; returns ``([B], [B])`` scores.
    """

    class Params(ModelParams):
        embedding_dim: PositiveInt = 64
        user_features: StrictBool = False

    description = "matrix factorisation (BPR)"
    graph_model = False
    entity_tables = {"user_embedding.weight": "users", "item_embedding.weight": "items"}

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, user_features: bool = False,
                 n_feature_levels: int = 0, init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items)
        self.embedding_dim = int(embedding_dim)
        self.init_std = float(init_std)
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_dim)  # [n_users, d]
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_dim)  # [n_items, d]
        self.user_features = (UserFeatureEmbedding(n_feature_levels, self.embedding_dim, self.init_std)
                              if user_features else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding.weight, std=self.init_std)
        nn.init.normal_(self.item_embedding.weight, std=self.init_std)
        if self.user_features is not None:
            self.user_features.reset_parameters()

    def prepare(self, graph: dict[str, Any]) -> "MF":
        """With ``user_features``: the users' feature codes from ``graph``."""
        if self.user_features is not None:
            self.user_features.prepare(graph, self.n_users, "mf")
        return self

    def user_rows(self, users: Optional[Tensor] = None) -> Tensor:
        """User vectors (all, or ``users``): the free rows plus the feature embeddings when learned."""
        rows = self.user_embedding.weight if users is None else self.user_embedding(users)
        return rows if self.user_features is None else rows + self.user_features.of_users(users)

    def embed(self, adj: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """``(user_emb [n_users, d], item_emb [n_items, d])``."""
        return self.user_rows(), self.item_embedding.weight

    def forward(self, adj: Optional[Tensor], users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        eu = self.user_rows(users)                    # [B, d]
        ep = self.item_embedding(pos)                 # [B, d]
        en = self.item_embedding(neg)                 # [B, d]
        return (eu * ep).sum(-1), (eu * en).sum(-1)

    def ego_embeddings(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return self.user_rows(users), self.item_embedding(items)

    #: the ridge penalty of the fold-in (candidates for the validation users)
    cold_start_settings = {"ridge": (1.0, 0.1, 0.01, 10.0)}

    @torch.no_grad()
    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    ridge: float = 1.0, **settings: Any) -> Tensor:
        r"""The usual fold-in: the user row that best predicts a 1 for each known item,
        :math:`\mathbf{p} = (\mathbf{Q}^\top\mathbf{Q} + \lambda\mathbf{I})^{-1}(\mathbf{Q}^\top\mathbf{1} +
        \lambda\mathbf{p}_0)` with :math:`\mathbf{Q}` the known items' trained rows, :math:`\lambda` = ``ridge``
        and :math:`\mathbf{p}_0` the prior: the learned feature embeddings of ``features`` (codes) with
        ``user_features``, else 0 (zeros without items)."""
        from gnnrec.models.inductive import pad_lists

        q_all = self.require_state(state)["item"]
        ids, mask = pad_lists(items, q_all.device)
        q = q_all[ids] * mask[..., None].to(q_all.dtype)                       # [m, f, d]
        gram = q.transpose(1, 2) @ q                                           # [m, d, d]
        gram += float(ridge) * torch.eye(q.shape[2], device=q.device, dtype=q.dtype)
        rhs = q.sum(1)                                                         # [m, d]
        if self.user_features is not None and features is not None:
            rhs = rhs + float(ridge) * self.user_features.rows(features).to(rhs)
        return torch.linalg.solve(gram, rhs)                                   # [m, d]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim})"

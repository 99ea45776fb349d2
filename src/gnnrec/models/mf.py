"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from gnnrec.config.schema import ModelParams, PositiveInt
from gnnrec.models.base import Recommender


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

    description = "matrix factorisation (BPR)"
    graph_model = False

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, init_std: float = 0.1) -> None:
        super().__init__(n_users, n_items)
        self.embedding_dim = int(embedding_dim)
        self.init_std = float(init_std)
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_dim)  # [n_users, d]
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_dim)  # [n_items, d]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding.weight, std=self.init_std)
        nn.init.normal_(self.item_embedding.weight, std=self.init_std)

    def embed(self, adj: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """``(user_emb [n_users, d], item_emb [n_items, d])``."""
        return self.user_embedding.weight, self.item_embedding.weight

    def forward(self, adj: Optional[Tensor], users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        eu = self.user_embedding(users)               # [B, d]
        ep = self.item_embedding(pos)                 # [B, d]
        en = self.item_embedding(neg)                 # [B, d]
        return (eu * ep).sum(-1), (eu * en).sum(-1)

    def ego_embeddings(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        return self.user_embedding(users), self.item_embedding(items)

    #: the ridge penalty of the fold-in (candidates for the validation users)
    cold_start_settings = {"ridge": (1.0, 0.1, 0.01, 10.0)}

    @torch.no_grad()
    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    ridge: float = 1.0, **settings: Any) -> Tensor:
        r"""The usual fold-in: the user row that best predicts a 1 for each known item,
        :math:`\mathbf{p} = (\mathbf{Q}^\top\mathbf{Q} + \lambda\mathbf{I})^{-1}\mathbf{Q}^\top\mathbf{1}` with
        :math:`\mathbf{Q}` the known items' trained rows and :math:`\lambda` = ``ridge`` (zeros without items)."""
        from gnnrec.models.inductive import pad_lists

        q_all = self.require_state(state)["item"]
        ids, mask = pad_lists(items, q_all.device)
        q = q_all[ids] * mask[..., None].to(q_all.dtype)                       # [m, f, d]
        gram = q.transpose(1, 2) @ q                                           # [m, d, d]
        gram += float(ridge) * torch.eye(q.shape[2], device=q.device, dtype=q.dtype)
        return torch.linalg.solve(gram, q.sum(1))                              # [m, d]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.n_users}, {self.n_items}, embedding_dim={self.embedding_dim})"

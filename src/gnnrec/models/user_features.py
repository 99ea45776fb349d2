"""Learned side-feature embeddings for users (``<model>.user_features: true``).

A user's layer-0 row becomes its free embedding plus the sum of the embeddings of its feature values
(codes from ``graph.npz``'s ``user_feature_codes``, :mod:`gnnrec.features`; ``-1``, an unknown value,
adds nothing). Trained with the rest of the model, they give a new user with no interaction at all an
embedding from its features alone, and a prior for one with few."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gnnrec.models.base import GraphInputError


class UserFeatureEmbedding(nn.Module):
    """One embedding per feature value; :meth:`rows` sums a user's values' embeddings."""

    def __init__(self, n_levels: int, dim: int, init_std: float = 0.1) -> None:
        super().__init__()
        self.n_levels = int(n_levels)
        if self.n_levels < 1:
            raise ValueError(f"user_features needs at least one feature value, got n_feature_levels={n_levels}")
        self.init_std = float(init_std)
        self.embedding = nn.Embedding(self.n_levels, int(dim))
        self.register_buffer("codes", torch.zeros(0, 0, dtype=torch.long), persistent=False)   # [n_users, F]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)

    def prepare(self, graph: dict[str, Any], n_users: int, model: str) -> None:
        codes = graph.get("user_feature_codes")
        if codes is None:
            raise GraphInputError(f"{model}.user_features needs user side features, but the dataset has none "
                                  "(set it to false, or give the source a users file)")
        codes = torch.as_tensor(codes).long()
        top = int(codes.max()) if codes.numel() else -1
        if codes.shape[0] != n_users or top >= self.n_levels:
            raise GraphInputError(f"{model}.user_features: the graph's feature codes ({tuple(codes.shape)}, up to "
                                  f"{top}) do not fit {n_users} users and {self.n_levels} feature values: retrain "
                                  "the model")
        self.codes = codes.to(self.embedding.weight.device)

    def rows(self, codes: Tensor) -> Tensor:
        """``[n, d]``: the sum of the embeddings of each row's known values (``codes [n, F]``, -1 unknown)."""
        codes = codes.to(self.embedding.weight.device).long()
        valid = (codes >= 0).to(self.embedding.weight.dtype)[..., None]           # [n, F, 1]
        return (self.embedding(codes.clamp_min(0)) * valid).sum(1)

    def of_users(self, users: Tensor | None = None) -> Tensor:
        """Rows of the known users (all of them, or ``users``)."""
        codes = self.codes if users is None else self.codes.index_select(0, users)
        return self.rows(codes)

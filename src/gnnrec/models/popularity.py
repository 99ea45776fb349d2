"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from gnnrec.models.base import Recommender


class Popularity(Recommender):
    r"""Non-personalised popularity ranking: :math:`\hat y_{ui} = |\{v : (v, i) \in \text{train}\}|`.

    Nothing is learned (``trainable = False``): :meth:`fit` counts the training interactions per item
    into the ``counts`` buffer (saved in the ``state_dict``). :meth:`embed` returns ones for the users
    and the counts for the items, so the shared evaluator's dot product is the popularity; it breaks
    ties by item id.

    Args:
        n_users (int): number of users.
        n_items (int): number of items.
    """

    description = "most-popular items"
    graph_model = False
    trainable = False
    personalised = False

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.register_buffer("counts", torch.zeros(self.n_items))  # [n_items] float32
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.counts.zero_()

    @torch.no_grad()
    def fit(self, data: Any) -> "Popularity":
        """Set ``counts`` from ``data.train_item``, the item ids of the training interactions (``[E]``)."""
        items = torch.as_tensor(data.train_item, dtype=torch.long).to(self.counts.device)
        self.counts.copy_(torch.bincount(items, minlength=self.n_items).to(self.counts.dtype))
        return self

    def embed(self, adj: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """``(ones [n_users, 1], counts [n_items, 1])``."""
        ones = torch.ones(self.n_users, 1, device=self.counts.device, dtype=self.counts.dtype)
        return ones, self.counts.unsqueeze(1)

    def forward(self, adj: Optional[Tensor], users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        return self.counts[pos], self.counts[neg]

    @torch.no_grad()
    def infer_users(self, items: list[Tensor], features: Optional[Tensor] = None,
                    friends: Optional[list[Tensor]] = None, *, state: Optional[dict[str, Any]] = None,
                    **settings: Any) -> Tensor:
        """Every new user gets the most popular items: ones ``[m, 1]`` (the fallback when nothing is known)."""
        return torch.ones(len(items), 1, device=self.counts.device, dtype=self.counts.dtype)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.n_users}, {self.n_items})"

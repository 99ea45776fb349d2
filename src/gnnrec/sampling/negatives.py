"""Negative sampling for BPR: items a user has not interacted with in training.

Everything is vectorised on the tensors' device: no Python loop over samples, no host synchronisation.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class UniformNegativeSampler:
    r"""Uniform negatives that exclude each user's training positives, exactly, in one pass.

    Instead of rejection sampling (which needs rounds and either a host sync to see whether collisions
    remain or a small chance of returning a positive), it draws the rank ``r`` of the negative among
    the user's non-positive items, :math:`r \sim U\{0, \dots, n_{items} - |P_u| - 1\}`, and maps it to
    an item id: with the user's sorted positives :math:`p_0 < p_1 < \dots` and
    :math:`q_k = p_k - k` (the number of non-positives below :math:`p_k`), the ``r``-th non-positive is
    :math:`r + |\{k : q_k \le r\}|`. The counts come from one ``torch.searchsorted`` over the global
    sorted key array ``user * n_items + q``.

    A user whose positives cover every item has no negative; it gets item ``n_items - 1`` (a positive).

    Args:
        n_users (int), n_items (int): sizes.
        users, items: ``[E]`` long, the training interactions (duplicates allowed).
        device: where the index lives and samples are drawn (default: ``users``' device).
    """

    def __init__(self, n_users: int, n_items: int, users: Tensor, items: Tensor,
                 device: Optional[torch.device | str] = None) -> None:
        device = torch.device(device) if device is not None else torch.as_tensor(users).device
        self.n_users = int(n_users)
        self.n_items = int(n_items)
        self.device = device
        users = torch.as_tensor(users, dtype=torch.long).to(device)
        items = torch.as_tensor(items, dtype=torch.long).to(device)
        keys = torch.unique(users * self.n_items + items)                   # [P] sorted, distinct
        self.keys = keys
        key_user = keys // self.n_items
        deg = torch.bincount(key_user, minlength=self.n_users)               # [n_users]
        self.indptr = torch.zeros(self.n_users + 1, dtype=torch.long, device=device)
        self.indptr[1:] = torch.cumsum(deg, 0)
        rank_in_row = torch.arange(len(keys), device=device) - self.indptr[key_user]
        # q_k = p_k - k, non-decreasing within a user, in [0, n_items): the keys stay globally sorted
        self.shifted = keys - rank_in_row                                     # [P]
        self.n_negatives = self.n_items - deg                                 # [n_users]

    def sample(self, users: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """One negative item per entry of ``users`` (``[B]`` long on the sampler's device) → ``[B]``."""
        n_neg = self.n_negatives[users].clamp_min(1)                                     # [B]
        u = torch.rand(users.shape, generator=generator, device=self.device, dtype=torch.float64)
        r = (u * n_neg).long().clamp_max(n_neg - 1)                                      # [B] rank among negatives
        below = torch.searchsorted(self.shifted, users * self.n_items + r, right=True)  # [B]
        item = r + (below - self.indptr[users])
        return item.clamp_max(self.n_items - 1)

    def contains(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each ``(user, item)`` pair is a training positive (``[B]`` bool)."""
        key = users * self.n_items + items
        pos = torch.searchsorted(self.keys, key).clamp_max(max(len(self.keys) - 1, 0))
        if len(self.keys) == 0:
            return torch.zeros_like(key, dtype=torch.bool)
        return self.keys[pos] == key


NEGATIVE_SAMPLERS = {"uniform": UniformNegativeSampler}

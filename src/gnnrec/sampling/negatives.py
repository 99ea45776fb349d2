"""Negative sampling for BPR: items a user has not interacted with in training.

Everything is vectorised on the tensors' device: no Python loop over samples, no host synchronisation.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class NegativeSampler:
    """What the training loop calls on a negative sampler: :meth:`sample` (``needs_model``: whether it
    takes the model and adjacency, to score candidates), :meth:`set_epoch` at the start of every epoch,
    :meth:`contains` (is an item a training positive of its user)."""

    needs_model = False

    def sample(self, users: Tensor, generator: Optional[torch.Generator] = None, **kwargs) -> Tensor:
        raise NotImplementedError

    def contains(self, users: Tensor, items: Tensor) -> Tensor:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch (a curriculum may change with it); default: nothing."""


class UniformNegativeSampler(NegativeSampler):
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


class PopularityNegativeSampler(NegativeSampler):
    r"""Negatives drawn with probability proportional to the item's training degree to the power
    ``alpha`` (word2vec's 0.75 by default; ``alpha = 0`` is uniform), excluding the user's positives.

    Draws go through the inverse CDF (one ``torch.searchsorted``). A draw that hits a positive is redrawn
    ``rounds`` times (always, vectorised: no host synchronisation); what still hits a positive after that
    (a user holding most of the popular mass) falls back to an exact uniform negative.

    Args:
        n_users (int), n_items (int), users, items, device: as :class:`UniformNegativeSampler`.
        alpha (float): the exponent of the degree. (default: ``0.75``)
        rounds (int): redraws of positives before the fallback. (default: ``3``)
    """

    def __init__(self, n_users: int, n_items: int, users: Tensor, items: Tensor,
                 device: Optional[torch.device | str] = None, alpha: float = 0.75, rounds: int = 3) -> None:
        self.exact = UniformNegativeSampler(n_users, n_items, users, items, device=device)
        self.device = self.exact.device
        self.n_items = int(n_items)
        self.alpha = float(alpha)
        self.rounds = int(rounds)
        items = torch.as_tensor(items, dtype=torch.long).to(self.device)
        deg = torch.bincount(items, minlength=self.n_items).to(torch.float64)
        weight = deg.pow(self.alpha) if self.alpha != 0 else torch.ones_like(deg)
        weight = torch.where(deg > 0, weight, torch.zeros_like(weight)) if self.alpha > 0 else weight
        if float(weight.sum()) <= 0:
            weight = torch.ones_like(weight)
        self.probs = weight / weight.sum()                                    # [n_items]
        self.cdf = torch.cumsum(self.probs, 0)

    def _draw(self, shape: torch.Size, generator: Optional[torch.Generator]) -> Tensor:
        u = torch.rand(shape, generator=generator, device=self.device, dtype=torch.float64) * self.cdf[-1]
        return torch.searchsorted(self.cdf, u, right=True).clamp_max(self.n_items - 1)

    def sample(self, users: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """One negative per entry of ``users`` → ``[B]``."""
        item = self._draw(users.shape, generator)
        for _ in range(self.rounds):
            item = torch.where(self.exact.contains(users, item), self._draw(users.shape, generator), item)
        return torch.where(self.exact.contains(users, item), self.exact.sample(users, generator), item)

    def contains(self, users: Tensor, items: Tensor) -> Tensor:
        return self.exact.contains(users, items)


class HardNegativeSampler(NegativeSampler):
    r"""Hard negatives scored by the current model: for each user, ``pool`` candidates are drawn by a
    base sampler (non-positives, uniform by default) and the one the model scores highest is the
    negative (dynamic negative sampling, Zhang et al., SIGIR 2013).

    The scores come from ``model.embed(adj)``, recomputed (without gradients, in eval mode) at the first
    draw of every epoch: the training loop calls :meth:`set_epoch` and passes ``model`` and ``adj`` to
    :meth:`sample` (``needs_model``). With ``share < 1`` only that share of the negatives is hard, the
    rest come from the base sampler; with ``curriculum_epochs > 0`` the share grows linearly from 0 at
    epoch 1 to ``share`` at epoch ``curriculum_epochs + 1`` (PinSage's curriculum).

    Args:
        n_users (int), n_items (int), users, items, device: as :class:`UniformNegativeSampler`.
        pool (int): candidates scored per negative. (default: ``16``)
        share (float): share of hard negatives (after the curriculum). (default: ``1.0``)
        curriculum_epochs (int): epochs of the linear ramp; 0: none. (default: ``0``)
        base: the candidate sampler (default: a :class:`UniformNegativeSampler` of the same data).
    """

    needs_model = True

    def __init__(self, n_users: int, n_items: int, users: Tensor, items: Tensor,
                 device: Optional[torch.device | str] = None, pool: int = 16, share: float = 1.0,
                 curriculum_epochs: int = 0, base=None) -> None:
        self.base = base if base is not None else UniformNegativeSampler(n_users, n_items, users, items, device)
        self.device = self.base.device
        self.pool = int(pool)
        self.share = float(share)
        self.curriculum_epochs = int(curriculum_epochs)
        if self.pool < 1 or not 0.0 <= self.share <= 1.0 or self.curriculum_epochs < 0:
            raise ValueError("pool must be >= 1, share in [0, 1] and curriculum_epochs >= 0")
        self.epoch = 1
        self._emb: Optional[tuple[Tensor, Tensor]] = None

    @classmethod
    def wrap(cls, base, pool: int = 16, share: float = 1.0, curriculum_epochs: int = 0) -> "HardNegativeSampler":
        """Hard negatives drawing their candidates from an existing sampler ``base``."""
        return cls(0, 0, None, None, pool=pool, share=share, curriculum_epochs=curriculum_epochs, base=base)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (1-based): the model's scores are recomputed at the next draw."""
        self.epoch = int(epoch)
        self._emb = None

    def current_share(self) -> float:
        if self.curriculum_epochs <= 0:
            return self.share
        return self.share * min(1.0, (self.epoch - 1) / self.curriculum_epochs)

    @torch.no_grad()
    def refresh(self, model, adj: Optional[Tensor]) -> None:
        was_training = model.training
        model.eval()
        user_emb, item_emb = model.embed(adj)
        model.train(was_training)
        self._emb = (user_emb.detach(), item_emb.detach())

    @torch.no_grad()
    def sample(self, users: Tensor, generator: Optional[torch.Generator] = None, model=None,
               adj: Optional[Tensor] = None) -> Tensor:
        """One negative per entry of ``users`` → ``[B]``; without ``model``, the base sampler's."""
        easy = self.base.sample(users, generator)
        share = self.current_share()
        if model is None or share <= 0:
            return easy
        if self._emb is None:
            self.refresh(model, adj)
        user_emb, item_emb = self._emb
        cand = self.base.sample(users.repeat_interleave(self.pool), generator).view(-1, self.pool)  # [B, P]
        scores = (user_emb[users][:, None, :] * item_emb[cand]).sum(-1)                           # [B, P]
        hard = cand.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)                          # [B]
        if share >= 1.0:
            return hard
        pick = torch.rand(users.shape, generator=generator, device=self.device) < share
        return torch.where(pick, hard, easy)

    def contains(self, users: Tensor, items: Tensor) -> Tensor:
        return self.base.contains(users, items)


NEGATIVE_SAMPLERS = {"uniform": UniformNegativeSampler, "popularity": PopularityNegativeSampler,
                     "hard": HardNegativeSampler}


def build_negative_sampler(name: str, n_users: int, n_items: int, users: Tensor, items: Tensor,
                           device: Optional[torch.device | str] = None, **options):
    """``NEGATIVE_SAMPLERS[name](...)`` with the ``options`` its constructor takes (``alpha`` for
    popularity, ``pool`` for hard); other options are ignored."""
    import inspect

    cls = NEGATIVE_SAMPLERS[name]
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    return cls(n_users, n_items, users, items, device=device, **kwargs)

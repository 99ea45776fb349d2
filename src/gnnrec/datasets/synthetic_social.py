"""The social ties of the synthetic dataset (:mod:`gnnrec.datasets.synthetic`): genuine, random and hard fakes.

:func:`social_ties` draws ``n_social`` directed ties without self loops or duplicates, each with a ``kind``
(:data:`KINDS`): ``genuine`` (``noise=0``) ties link users of the same primary community, preferring the
same favourite cluster (by :data:`SOCIAL_CLUSTER_BOOST`) and sociable users; ``noise_share`` of the ties are
``random`` (uniformly random pairs) and ``hard_fake_share`` are ``hard`` fakes: pairs of users of
*different* primary communities who both consumed at least :data:`HARD_MIN_TOP` of the most consumed items
(:func:`top_item_masks`) and share at least :data:`HARD_MIN_SHARED` of them, drawn uniformly among such
users. Both fake kinds have ``noise=1``. Hard fakes overlap in items about as much as genuine ties do (item
Jaccard about 0.043 against 0.055, random ties 0.018), so a filter that only counts common items keeps
them; only taste tells them apart.

The ties are drawn from the generator's own ``numpy.random.Generator``, after the interactions, with
element-wise arithmetic only, so the generator stays deterministic in its config and seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnnrec.config import SyntheticConfig
from gnnrec.errors import ParamsError
from gnnrec.social_noise import draw_new_pairs

#: the ``kind`` of a social tie (``noise`` is 0 for ``genuine``, 1 for the two fake kinds)
KINDS = ("genuine", "random", "hard")
SOCIAL_CLUSTER_BOOST = 3.0      # homophilous ties prefer users of the same cluster by this factor
HARD_TOP_SHARE = 0.01           # hard fakes look at the most consumed items: this share of the items ...
HARD_TOP_MIN, HARD_TOP_MAX = 10, 64  # ... but at least / at most this many (a 64-bit mask per user)
HARD_MIN_TOP = 2                # both ends of a hard fake consumed at least this many of those items ...
HARD_MIN_SHARED = 1             # ... and at least this many of them in common


def social_ties(cfg: SyntheticConfig, rng: np.random.Generator, users: pd.DataFrame, user_idx: np.ndarray,
                item_idx: np.ndarray, *, clusters: int, chunk_cells: int) -> pd.DataFrame:
    """Directed ties: homophilous ones (genuine), uniformly random ones and hard fakes (both noise).

    ``users`` is the generator's users table (``community``, ``cluster`` in 0..``clusters``-1 and
    ``sociability`` are read), ``user_idx`` / ``item_idx`` the 0-based interactions; ``chunk_cells`` bounds
    the user × user cells counted at once. Returns the ``social`` table (src, dst, noise, kind; sorted).
    """
    n = cfg.n_users
    n_random = int(round(cfg.n_social * cfg.noise_share))
    n_hard = min(int(round(cfg.n_social * cfg.hard_fake_share)), cfg.n_social - n_random)
    n_genuine = cfg.n_social - n_random - n_hard
    comm = users["community"].to_numpy()
    sizes = np.bincount(comm, minlength=cfg.n_communities)
    capacity = int((sizes * (sizes - 1)).sum())
    if n_genuine > capacity // 2 or cfg.n_social > n * (n - 1) // 2:
        raise ParamsError("data.synthetic.n_social", f"at most {min(capacity // 2, n * (n - 1) // 2)} genuine ties "
                          f"for {n} users in {cfg.n_communities} communities", cfg.n_social)
    genuine = _draw_pairs(n_genuine, np.empty(0, np.int64), n,
                          lambda m: _homophilous_pairs(rng, users, m, clusters))
    random = _draw_pairs(n_random, genuine, n, lambda m: (rng.integers(0, n, m), rng.integers(0, n, m)))
    hard = np.empty(0, np.int64)
    if n_hard > 0:
        mask = top_item_masks(cfg, user_idx, item_idx)
        eligible = np.flatnonzero(np.bitwise_count(mask) >= HARD_MIN_TOP)
        room = _hard_capacity(comm[eligible], mask[eligible], chunk_cells) - n_random
        if n_hard > room // 2:
            raise ParamsError("data.synthetic.hard_fake_share", f"at most {max(0, room // 2)} hard fakes here "
                              f"({n_hard} asked: users of different communities who share popular items are too "
                              "few)", cfg.hard_fake_share)
        hard = _draw_pairs(n_hard, np.concatenate([genuine, random]), n,
                           lambda m: _hard_pairs(rng, comm, mask, eligible, m))
    keys = np.concatenate([genuine, random, hard])
    kind = np.repeat(np.arange(len(KINDS)), [len(genuine), len(random), len(hard)])
    order = np.argsort(keys, kind="stable")
    return pd.DataFrame({"src": keys[order] // n + 1, "dst": keys[order] % n + 1,
                         "noise": (kind[order] > 0).astype(np.int64),
                         "kind": np.asarray(KINDS, dtype=object)[kind[order]]})


def top_item_masks(cfg: SyntheticConfig, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """Per user, a bit mask of the most consumed items it consumed (bit r: the item of rank r, from 0).

    The top items are the HARD_TOP_SHARE most consumed ones (at least HARD_TOP_MIN, at most HARD_TOP_MAX),
    ties broken by the lower item id.
    """
    top = min(cfg.n_items, max(HARD_TOP_MIN, min(HARD_TOP_MAX, int(round(HARD_TOP_SHARE * cfg.n_items)))))
    counts = np.bincount(item_idx, minlength=cfg.n_items)
    rank = np.full(cfg.n_items, -1, dtype=np.int64)
    rank[np.argsort(-counts, kind="stable")[:top]] = np.arange(top)
    hit = rank[item_idx] >= 0
    mask = np.zeros(cfg.n_users, dtype=np.uint64)
    np.bitwise_or.at(mask, user_idx[hit], np.left_shift(np.uint64(1), rank[item_idx[hit]].astype(np.uint64)))
    return mask


def _hard_capacity(comm: np.ndarray, mask: np.ndarray, chunk_cells: int) -> int:
    """How many directed pairs of these users are of different communities and share HARD_MIN_SHARED top items."""
    total = 0
    chunk = max(1, chunk_cells // max(1, len(comm)))
    for start in range(0, len(comm), chunk):
        rows = slice(start, start + chunk)
        ok = (comm[rows, None] != comm[None, :]) & (np.bitwise_count(mask[rows, None] & mask[None, :])
                                                    >= HARD_MIN_SHARED)
        total += int(np.count_nonzero(ok))
    return total


def _hard_pairs(rng: np.random.Generator, comm: np.ndarray, mask: np.ndarray, eligible: np.ndarray,
                m: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` candidate hard fakes: both ends drawn uniformly among the users with HARD_MIN_TOP top items, kept
    when of different communities with HARD_MIN_SHARED top items in common."""
    src = eligible[rng.integers(0, len(eligible), size=m)]
    dst = eligible[rng.integers(0, len(eligible), size=m)]
    ok = (comm[src] != comm[dst]) & (np.bitwise_count(mask[src] & mask[dst]) >= HARD_MIN_SHARED)
    return src[ok], dst[ok]


def _homophilous_pairs(rng: np.random.Generator, users: pd.DataFrame, m: int,
                       clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` candidate (src, dst): sociable sources, destinations in the same community (same cluster boosted)."""
    comm = users["community"].to_numpy()
    clus = users["cluster"].to_numpy()
    social = users["sociability"].to_numpy()
    src = rng.choice(len(users), size=m, p=social / social.sum())
    dst = np.empty(m, dtype=np.int64)
    for c in np.unique(comm[src]):
        members = np.flatnonzero(comm == c)
        for k in range(clusters):
            picks = np.flatnonzero((comm[src] == c) & (clus[src] == k))
            if len(picks) == 0:
                continue
            weight = social[members] * np.where(clus[members] == k, SOCIAL_CLUSTER_BOOST, 1.0)
            dst[picks] = members[rng.choice(len(members), size=len(picks), p=weight / weight.sum())]
    return src, dst


def _draw_pairs(count: int, taken: np.ndarray, n: int, sample) -> np.ndarray:
    """``count`` new distinct pair keys ``src * n + dst`` (no self loops, none in ``taken``), in draw order
    (:func:`gnnrec.social_noise.draw_new_pairs`, which the planted fakes use too)."""
    chosen = draw_new_pairs(count, taken, n, sample, rounds=10_000)
    if len(chosen) < count:
        raise RuntimeError(f"could not draw {count} distinct social ties")  # unreachable within the checked capacity
    return chosen

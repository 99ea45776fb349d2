"""Planted fake ties (``graph.social.noise``): known noise injected into the training social graph.

The build_graph stage adds ``share · |ties|`` directed fake ties to the ties it is given (those of the
training users), *before* the filter, and marks them, so that the filter's precision and recall and a
model's gate can be scored on real data, where nobody knows which ties are noise. Two kinds:

- ``random``: uniformly random pairs of distinct training users;
- ``hard``: pairs that look plausible to an overlap count but carry no taste: both users consumed at least
  :data:`HARD_MIN_TOP` of the most consumed training items (the top :data:`HARD_TOP_SHARE`, at least
  :data:`HARD_TOP_MIN`), they share at least one of those, and *no other* item.

Fakes are never an existing tie nor a self loop, are distinct, and join only users of the training graph:
they never reach the validation or test data, the held-out new users or their ties. NumPy only, seeded
(``graph.social.noise.seed``, else the run's ``seed``): the same inputs give the same fakes.
"""

from __future__ import annotations

import numpy as np

from gnnrec.errors import ParamsError
from gnnrec.social_ties import binary_interactions

HARD_TOP_SHARE = 0.01       # the "popular" items: this share of the items with training interactions ...
HARD_TOP_MIN = 10           # ... but at least this many
HARD_MIN_TOP = 2            # both ends of a hard fake consumed at least this many popular items


def plant_fake_ties(n_users: int, n_items: int, train_users: np.ndarray, train_items: np.ndarray,
                    src: np.ndarray, dst: np.ndarray, share: float, kind: str, seed: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``round(share · len(src))`` new directed ties ``(fake_src, fake_dst)`` of the given ``kind``.

    ``train_users`` / ``train_items`` are the training interactions (0-based ids), ``src`` / ``dst`` the
    existing ties (which the fakes never repeat). Raises a :class:`ParamsError` on ``graph.social.noise.share``
    when the graph has too few candidate pairs for that many fakes.
    """
    count = int(round(share * len(src)))
    empty = np.zeros(0, np.int64)
    if count == 0:
        return empty, empty
    rng = np.random.default_rng(seed)
    tu = np.asarray(train_users, np.int64)
    ti = np.asarray(train_items, np.int64)
    active = np.unique(tu)
    taken = np.asarray(src, np.int64) * n_users + np.asarray(dst, np.int64)
    if kind == "random":
        if count > len(active) * (len(active) - 1) - len(taken):
            raise ParamsError("graph.social.noise.share", f"at most {len(active) * (len(active) - 1) - len(taken)} "
                              f"random fakes among {len(active)} training users", share)
        keys = draw_new_pairs(count, taken, n_users,
                     lambda m: (active[rng.integers(0, len(active), m)], active[rng.integers(0, len(active), m)]))
    elif kind == "hard":
        sample = _hard_sampler(rng, n_users, n_items, tu, ti)
        keys = draw_new_pairs(count, taken, n_users, sample)
        if len(keys) < count:
            raise ParamsError("graph.social.noise.share", f"at most about {len(keys)} hard fakes here (users who "
                              "share popular items and nothing else are too few)", share)
    else:
        raise ParamsError("graph.social.noise.kind", "random or hard", kind)
    return keys // n_users, keys % n_users


def popular_items(n_items: int, train_items: np.ndarray) -> np.ndarray:
    """The most consumed training items (the top :data:`HARD_TOP_SHARE` of the consumed ones, at least
    :data:`HARD_TOP_MIN`), ties broken by the lower id: a bool mask over the items."""
    counts = np.bincount(np.asarray(train_items, np.int64), minlength=n_items)
    consumed = int(np.count_nonzero(counts))
    top = min(consumed, max(HARD_TOP_MIN, int(round(HARD_TOP_SHARE * consumed))))
    mask = np.zeros(n_items, dtype=bool)
    mask[np.argsort(-counts, kind="stable")[:top]] = True
    return mask


def _hard_sampler(rng: np.random.Generator, n_users: int, n_items: int, tu: np.ndarray, ti: np.ndarray):
    """A candidate sampler of hard fakes: pairs among the users with HARD_MIN_TOP popular items, kept when they
    share a popular item and no other item."""
    import scipy.sparse as sp

    top = popular_items(n_items, ti)
    r = binary_interactions(n_users, n_items, tu, ti)
    top_cols = sp.diags(top.astype(np.float32))
    r_top, r_rest = (r @ top_cols).tocsr(), (r @ sp.diags((~top).astype(np.float32))).tocsr()
    eligible = np.flatnonzero(np.asarray(r_top.sum(axis=1)).ravel() >= HARD_MIN_TOP)

    def sample(m: int) -> tuple[np.ndarray, np.ndarray]:
        if len(eligible) < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a = eligible[rng.integers(0, len(eligible), m)]
        b = eligible[rng.integers(0, len(eligible), m)]
        shared_top = np.asarray(r_top[a].multiply(r_top[b]).sum(axis=1)).ravel()
        shared_rest = np.asarray(r_rest[a].multiply(r_rest[b]).sum(axis=1)).ravel()
        ok = (shared_top >= 1) & (shared_rest == 0)
        return a[ok], b[ok]

    return sample


def draw_new_pairs(count: int, taken: np.ndarray, n: int, sample, rounds: int = 200) -> np.ndarray:
    """Up to ``count`` distinct new pair keys ``src * n + dst`` (no self loops, none in ``taken``), in draw order;
    fewer only when ``rounds`` rounds of candidates found no more. ``sample(m)`` gives ``m`` candidate
    ``(src, dst)`` arrays (the synthetic generator's ties are drawn the same way)."""
    chosen = np.zeros(0, dtype=np.int64)
    for _ in range(rounds):
        need = count - len(chosen)
        if need <= 0:
            break
        a, b = sample(2 * need + 64)
        keys = np.asarray(a, np.int64) * n + np.asarray(b, np.int64)
        keys = keys[(np.asarray(a) != np.asarray(b)) & ~np.isin(keys, taken) & ~np.isin(keys, chosen)]
        _, first = np.unique(keys, return_index=True)
        chosen = np.concatenate([chosen, keys[np.sort(first)][:need]])
    return chosen[:count]

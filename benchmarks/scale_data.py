"""Synthetic user–item graphs for the scale benchmarks: power-law, community-structured, built in memory.

``generate(n_edges, seed)`` returns exactly ``n_edges`` distinct training pairs (plus a validation slice)
on ``n_edges / 20`` users (:data:`MEAN_DEGREE`) and half as many items (:data:`ITEMS_PER_USER`), so every
size has the same shape and only the scale changes:

- **Communities.** Items are dealt round-robin into communities of :data:`COMMUNITY_ITEMS` items (their
  number grows with the graph); every user belongs to one, uniformly. A user's draw comes from its own
  community with probability :data:`P_IN`, otherwise from the whole catalogue by popularity.
- **Popularity.** Inside every community item ``r`` (a random rank) weighs ``r ** -ZIPF``: each
  community has its hits and its long tail, and item degrees are heavy-tailed.
- **Activity.** User degrees follow a Pareto law (tail exponent :data:`PARETO`, capped at a quarter of
  the catalogue), rescaled to sum to ``n_edges`` exactly (mean 20).
- **Distinct pairs.** Duplicates are redrawn (a few rounds by popularity, then uniformly) until every
  user has its degree. Each user also has ``max(1, round(VAL_SHARE * degree))`` validation pairs, drawn
  with its training pairs and set aside at random.

Vectorised numpy from ``numpy.random.Generator(PCG64(seed))``, in chunks of :data:`CHUNK` draws: the
same ``(n_edges, seed)`` give the same arrays. :func:`load_or_generate` caches them in a ``.npz``
(written atomically), so that every worker process of a size reads the same graph.

    python -m benchmarks.scale_data --edges 1e6 [--seed 0] [--cache .bench-work/scale]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

MEAN_DEGREE = 20.0        # training edges per user
ITEMS_PER_USER = 0.5      # items = users * this
COMMUNITY_ITEMS = 500     # items per community
P_IN = 0.8                # share of a user's draws from its own community
ZIPF = 0.8                # popularity exponent of an item's rank inside its community
PARETO = 2.2              # tail exponent of the user degrees (Lomax shape)
VAL_SHARE = 0.1           # validation pairs per training pair of a user (at least one each)
POPULAR_ROUNDS = 6        # duplicate redraws by popularity before uniform redraws
CHUNK = 4_000_000         # draws computed at once (bounds the generator's temporaries)
VERSION = 1               # bump when the generator changes (cache file names carry it)


@dataclass(frozen=True)
class ScaleData:
    """A generated graph: training and validation pairs (int32, sorted by user then item) and the
    ground-truth communities."""

    name: str
    n_users: int
    n_items: int
    train_user: np.ndarray
    train_item: np.ndarray
    val_user: np.ndarray
    val_item: np.ndarray
    user_community: np.ndarray
    item_community: np.ndarray

    def interaction_data(self):
        from gnnrec.training import InteractionData

        return InteractionData(self.n_users, self.n_items, self.train_user, self.train_item,
                               self.val_user, self.val_item)

    def describe(self) -> dict[str, int]:
        return {"users": self.n_users, "items": self.n_items, "train": int(len(self.train_user)),
                "val": int(len(self.val_user)), "communities": int(self.item_community.max()) + 1}


def size_tag(n_edges: float) -> str:
    """``1e6`` for a power of ten, else the integer (``20000``)."""
    n = int(n_edges)
    exp = round(np.log10(n)) if n > 0 else 0
    return f"1e{exp}" if n == 10 ** exp else str(n)


def shape(n_edges: int) -> tuple[int, int, int]:
    """``(users, items, communities)`` of a graph of ``n_edges`` training edges."""
    n_users = max(50, int(round(n_edges / MEAN_DEGREE)))
    n_items = max(40, int(round(n_users * ITEMS_PER_USER)))
    return n_users, n_items, max(2, n_items // COMMUNITY_ITEMS)


def _degrees(rng: np.random.Generator, n_users: int, n_edges: int, cap: int) -> np.ndarray:
    """Pareto degrees capped at ``cap``, rescaled to sum to ``n_edges`` exactly (largest remainders)."""
    # Pareto(x_m = 1) has mean PARETO / (PARETO - 1): the cap in those units, with a margin for the rescaling
    raw = np.minimum(1.0 + rng.pareto(PARETO, n_users), 0.8 * cap / MEAN_DEGREE * PARETO / (PARETO - 1))
    raw *= n_edges / raw.sum()
    deg = np.clip(np.floor(raw).astype(np.int64), 1, cap)
    short = n_edges - int(deg.sum())
    if short > 0:
        deg[np.argsort(deg - raw, kind="stable")[:short]] += 1          # the largest fractional parts
    while int(deg.sum()) > n_edges:                                     # only for absurdly small graphs
        deg[np.argmax(deg)] -= 1
    return deg


class _Catalogue:
    """Inverse-CDF draws of items: from a community by popularity, or from the whole catalogue."""

    def __init__(self, rng: np.random.Generator, n_items: int, n_comm: int) -> None:
        perm = rng.permutation(n_items)
        self.community = np.empty(n_items, dtype=np.int64)
        self.community[perm] = np.arange(n_items) % n_comm                  # balanced communities
        weight = np.empty(n_items, dtype=np.float64)
        weight[perm] = (np.arange(n_items) // n_comm + 1.0) ** -ZIPF        # a random rank inside each
        self.order = np.argsort(self.community, kind="stable")              # items grouped by community
        self.cum = np.cumsum(weight[self.order])
        ends = np.cumsum(np.bincount(self.community, minlength=n_comm))
        self.start, self.end = ends - np.bincount(self.community, minlength=n_comm), ends
        self.lo = np.where(self.start > 0, self.cum[np.maximum(self.start - 1, 0)], 0.0)
        self.hi = self.cum[self.end - 1]
        self.comm_cum = np.cumsum(self.hi - self.lo)                        # community mass, for global draws
        self.n_items = n_items

    def draw(self, rng: np.random.Generator, own: np.ndarray, uniform: bool) -> np.ndarray:
        """One item per entry of ``own`` (the drawing user's community)."""
        if uniform:
            return rng.integers(0, self.n_items, own.shape[0])
        glob = np.searchsorted(self.comm_cum, rng.random(own.shape[0]) * self.comm_cum[-1], side="right")
        c = np.where(rng.random(own.shape[0]) < P_IN, own, np.minimum(glob, len(self.comm_cum) - 1))
        r = self.lo[c] + rng.random(own.shape[0]) * (self.hi[c] - self.lo[c])
        pos = np.clip(np.searchsorted(self.cum, r, side="right"), self.start[c], self.end[c] - 1)
        return self.order[pos]


def _in_sorted(keys: np.ndarray, new: np.ndarray) -> np.ndarray:
    if keys.shape[0] == 0:
        return np.zeros(new.shape[0], dtype=bool)
    idx = np.minimum(np.searchsorted(keys, new), keys.shape[0] - 1)
    return keys[idx] == new


def generate(n_edges: int, seed: int = 0) -> ScaleData:
    """The graph of ``n_edges`` training edges (see the module docstring). Deterministic in ``(n_edges, seed)``."""
    n_edges = int(n_edges)
    rng = np.random.Generator(np.random.PCG64(seed))
    n_users, n_items, n_comm = shape(n_edges)
    cat = _Catalogue(rng, n_items, n_comm)
    user_comm = rng.integers(0, n_comm, n_users)
    deg = _degrees(rng, n_users, n_edges, cap=max(1, n_items // 4))
    val = np.maximum(1, np.round(VAL_SHARE * deg)).astype(np.int64)
    need = deg + val
    have = np.zeros(n_users, dtype=np.int64)
    keys = np.zeros(0, dtype=np.int64)                                       # sorted distinct user * n_items + item
    for rnd in range(POPULAR_ROUNDS + 200):
        deficit = need - have
        if not deficit.any():
            break
        users = np.repeat(np.arange(n_users, dtype=np.int64), deficit)
        parts = []
        for a in range(0, users.shape[0], CHUNK):
            u = users[a:a + CHUNK]
            parts.append(u * n_items + cat.draw(rng, user_comm[u], uniform=rnd >= POPULAR_ROUNDS))
        new = np.unique(np.concatenate(parts))
        new = new[~_in_sorted(keys, new)]
        keys = np.sort(np.concatenate([keys, new]), kind="stable")           # two sorted runs: a linear merge
        have += np.bincount(new // n_items, minlength=n_users)
    else:  # pragma: no cover - needs more distinct items than a quarter of the catalogue allows
        raise RuntimeError("the generator could not draw distinct pairs")
    user = keys // n_items
    # the validation pairs: each user's `val` pairs of smallest random priority
    order = np.argsort(user + rng.random(keys.shape[0]))
    start = np.concatenate([[0], np.cumsum(need)[:-1]])
    sorted_user = user[order]
    is_val = np.zeros(keys.shape[0], dtype=bool)
    is_val[order[np.arange(keys.shape[0]) - start[sorted_user] < val[sorted_user]]] = True
    item = keys % n_items
    return ScaleData(f"powerlaw-{size_tag(n_edges)}", n_users, n_items,
                     user[~is_val].astype(np.int32), item[~is_val].astype(np.int32),
                     user[is_val].astype(np.int32), item[is_val].astype(np.int32),
                     user_comm.astype(np.int32), cat.community.astype(np.int32))


def cache_path(folder: Path, n_edges: int, seed: int) -> Path:
    return Path(folder) / f"powerlaw-v{VERSION}-{size_tag(n_edges)}-seed{seed}.npz"


def load_or_generate(n_edges: int, seed: int = 0, folder: Optional[Path] = None) -> ScaleData:
    """The cached graph in ``folder`` if it is there, else generated (and, with a folder, cached atomically)."""
    path = cache_path(folder, n_edges, seed) if folder is not None else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return ScaleData(str(z["name"]), int(z["n_users"]), int(z["n_items"]),
                             *(z[k] for k in ("train_user", "train_item", "val_user", "val_item",
                                              "user_community", "item_community")))
    data = generate(n_edges, seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, name=data.name, n_users=data.n_users, n_items=data.n_items,
                     train_user=data.train_user, train_item=data.train_item, val_user=data.val_user,
                     val_item=data.val_item, user_community=data.user_community,
                     item_community=data.item_community)
        os.replace(tmp, path)
    return data


def main(argv=None) -> int:
    from benchmarks.common import WORK

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_data", description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=float, required=True, help="training edges (1e5, 1e6, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(WORK / "scale"), help="folder of the cached graphs")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    data = load_or_generate(int(args.edges), args.seed, Path(args.cache))
    print(json.dumps({**data.describe(), "seconds": round(time.perf_counter() - t0, 2),
                      "path": str(cache_path(Path(args.cache), int(args.edges), args.seed))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The embedded synthetic social-recommendation dataset: a generator and its loader.

The generator plants structure that a graph model can exploit and that a popularity ranking cannot:

- **Communities and clusters.** ``n_communities`` latent taste communities; every item has a home
  community and, inside it, one of :data:`CLUSTERS_PER_COMMUNITY` clusters. Every user has a primary
  community, a favourite cluster inside it and, for :data:`SECONDARY_SHARE` of users, a secondary
  community. Items of one cluster are consumed by the same users, so multi-hop co-consumption
  (user → item → user → item) carries information.
- **Popularity.** Item popularity follows a Zipf-like law ``rank ** -popularity_exponent`` (ranks
  shuffled, so every community has hits and a long tail).
- **Choice.** A user's items are drawn without replacement from the mixture
  ``(1 - community_affinity) * global popularity + community_affinity * taste``, where taste spreads
  over the primary community (popularity-weighted), with extra weight on the favourite cluster, and
  on the secondary community if any.
- **Activity.** Interactions per user are lognormal (median about half the mean, a long tail, capped),
  at least :data:`MIN_ACTIVITY`, scaled to exactly ``n_interactions`` distinct (user, item) pairs:
  many sparse users, for whom graph smoothing matters most.
- **Time and ratings.** Unix timestamps increase within a user (exponential gaps from a random start);
  ratings 1–5 are higher for items of the user's communities.
- **Social ties.** ``n_social`` directed ties without self loops or duplicates: ``noise_share`` of them
  are uniformly random pairs (``noise=1``), the rest link users of the same primary community,
  preferring the same favourite cluster and sociable users (``noise=0``).

Everything is drawn from ``numpy.random.Generator(PCG64(seed))`` with element-wise arithmetic only (no
BLAS reductions whose rounding could depend on the machine), and the CSV files hold integers and plain
strings in sorted order, so the same config and seed give byte-identical files: they are tracked by DVC
and may be regenerated on a fresh machine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gnnrec.config import SyntheticConfig
from gnnrec.datasets import RawTables, require_data_dir
from gnnrec.datasets.tabular import read_delimited, require_file
from gnnrec.errors import ParamsError
from gnnrec.io import write_csv

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params

INTERACTIONS_FILE = "interactions.csv"
SOCIAL_FILE = "social.csv"
ITEMS_FILE = "items.csv"
FILES = (INTERACTIONS_FILE, SOCIAL_FILE, ITEMS_FILE)
#: per table, internal column name -> the column of the CSV file
COLUMNS = {
    "interactions": {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"},
    "social": {"src": "src", "dst": "dst", "noise": "noise"},
    "items": {"item": "item_id", "name": "name"},
}

# Shape constants (the knobs users may want are in SyntheticConfig; these fix the generator's style).
CLUSTERS_PER_COMMUNITY = 4      # item clusters inside a community
CLUSTER_FOCUS = 0.5             # share of a user's community taste on the favourite cluster
SECONDARY_SHARE = 0.35          # share of users with a secondary community
SECONDARY_WEIGHT = 0.3          # share of such a user's taste on the secondary community
MIN_ACTIVITY = 5                # fewest interactions per user (when n_interactions allows)
MEDIAN_TO_MEAN = 0.5            # median / mean of user activity (lognormal)
SOCIAL_CLUSTER_BOOST = 3.0      # homophilous ties prefer users of the same cluster by this factor
START = 1_546_300_800           # 2019-01-01T00:00:00Z: first possible timestamp
START_SPREAD = 2 * 365 * 86_400  # users start within two years
MEAN_GAP = 86_400               # mean seconds between two interactions of a user
_CHUNK_CELLS = 4_000_000        # user × item cells scored at once (bounds memory)

TAGS = ("ambient", "bebop", "chiptune", "delta blues", "electro", "folk", "grunge", "highlife", "indie pop",
        "j-rock", "krautrock", "lo-fi", "metal", "neo-soul", "opera", "punk", "reggae", "synthwave",
        "trip-hop", "zydeco")


# ------------------------------------------------------------------------------------ generator
def generate(cfg: SyntheticConfig, seed: int) -> dict[str, pd.DataFrame]:
    """Generate the dataset. Deterministic in ``(cfg, seed)``.

    Returns:
        ``interactions`` (user_id, item_id, rating, timestamp), ``social`` (src, dst, noise) and
        ``items`` (item_id, name, community, cluster) as written to the CSV files (ids from 1; the
        ground-truth columns ``community`` and ``cluster`` are not written), plus ``users``
        (user_id, community, cluster, secondary; secondary is -1 for none), the planted ground truth.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    items = _items(cfg, rng)
    users = _users(cfg, rng)
    activity = _activity(cfg, rng)
    user_idx, item_idx = _choose_items(cfg, rng, users, items, activity)
    interactions = _interactions(rng, users, items, user_idx, item_idx)
    social = _social(cfg, rng, users)
    return {"interactions": interactions, "social": social, "items": items, "users": users}


def write_synthetic(cfg: SyntheticConfig, seed: int, out_dir: Path) -> None:
    """Generate the dataset and write ``interactions.csv``, ``social.csv`` and ``items.csv`` atomically."""
    out_dir = Path(out_dir)
    tables = generate(cfg, seed)
    write_csv(out_dir / INTERACTIONS_FILE, tables["interactions"])
    write_csv(out_dir / SOCIAL_FILE, tables["social"])
    write_csv(out_dir / ITEMS_FILE, tables["items"][["item_id", "name"]])


def _items(cfg: SyntheticConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Items with a popularity (Zipf over shuffled ranks), a community and a cluster (balanced)."""
    n = cfg.n_items
    rank = rng.permutation(n) + 1
    slot = rng.permutation(n)
    community = slot % cfg.n_communities
    cluster = (slot // cfg.n_communities) % CLUSTERS_PER_COMMUNITY
    item_id = np.arange(1, n + 1)
    width = max(4, len(str(n)))
    tags = [_tag(c) for c in range(cfg.n_communities)]
    names = [f"Item {i:0{width}d} · {tags[c]} {'abcdefghijklmnopqrstuvwxyz'[k]}"
             for i, c, k in zip(item_id.tolist(), community.tolist(), cluster.tolist())]
    return pd.DataFrame({"item_id": item_id, "name": names, "community": community, "cluster": cluster,
                         "popularity": rank.astype(np.float64) ** -cfg.popularity_exponent})


def _tag(community: int) -> str:
    return TAGS[community] if community < len(TAGS) else f"community {community + 1}"


def _users(cfg: SyntheticConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Users with a primary community, a favourite cluster in it and maybe a secondary community."""
    n, c = cfg.n_users, cfg.n_communities
    community = rng.integers(0, c, size=n)
    cluster = rng.integers(0, CLUSTERS_PER_COMMUNITY, size=n)
    has_secondary = rng.random(n) < SECONDARY_SHARE
    other = (community + rng.integers(1, c, size=n)) % c  # a community different from the primary one
    secondary = np.where(has_secondary, other, -1)
    sociability = rng.lognormal(0.0, 1.0, size=n)
    return pd.DataFrame({"user_id": np.arange(1, n + 1), "community": community, "cluster": cluster,
                         "secondary": secondary, "sociability": sociability})


def _activity(cfg: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: lognormal, at least MIN_ACTIVITY, capped, summing to n_interactions."""
    n, total = cfg.n_users, cfg.n_interactions
    mean = total / n
    sigma = math.sqrt(2.0 * math.log(1.0 / MEDIAN_TO_MEAN))
    raw = rng.lognormal(0.0, sigma, size=n)
    low = min(MIN_ACTIVITY, total // n)
    high = min(cfg.n_items, max(cfg.n_items // 4, math.ceil(2 * mean)))
    return _allocate(raw, total, low, high)


def _allocate(weights: np.ndarray, total: int, low: int, high: int) -> np.ndarray:
    """Integers proportional to ``weights``, clipped to [low, high], summing exactly to ``total``.

    Bisection on a common scale, then the remainder by largest fractional part (deterministic).
    """
    lo, hi = 0.0, float(total) / float(weights.min())
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.clip(np.floor(weights * mid), low, high).sum() <= total:
            lo = mid
        else:
            hi = mid
    scaled = weights * lo
    counts = np.clip(np.floor(scaled), low, high).astype(np.int64)
    deficit = total - int(counts.sum())
    while deficit > 0:
        room = np.flatnonzero(counts < high)
        order = room[np.argsort(-(scaled[room] - np.floor(scaled[room])), kind="stable")][:deficit]
        counts[order] += 1
        deficit -= len(order)
    return counts


def _choose_items(cfg: SyntheticConfig, rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame,
                  activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's items, without replacement, from its taste mixture (exponential-race sampling).

    Sampling k items without replacement proportionally to p is taking the k smallest ``E_i / p_i``
    with ``E_i ~ Exp(1)``; it needs only element-wise arithmetic, computed in chunks of users.
    """
    pop = items["popularity"].to_numpy()
    i_comm = items["community"].to_numpy()
    i_clus = i_comm * CLUSTERS_PER_COMMUNITY + items["cluster"].to_numpy()
    glob = pop / pop.sum()
    comm_share = pop / np.bincount(i_comm, weights=pop, minlength=cfg.n_communities)[i_comm]
    clus_share = pop / np.bincount(i_clus, weights=pop)[i_clus]
    u_comm = users["community"].to_numpy()
    u_clus = u_comm * CLUSTERS_PER_COMMUNITY + users["cluster"].to_numpy()
    u_sec = users["secondary"].to_numpy()
    alpha = cfg.community_affinity
    chunk = max(1, _CHUNK_CELLS // cfg.n_items)
    user_parts, item_parts = [], []
    for start in range(0, cfg.n_users, chunk):
        rows = slice(start, min(start + chunk, cfg.n_users))
        prim = u_comm[rows, None] == i_comm[None, :]
        fav = u_clus[rows, None] == i_clus[None, :]
        sec = u_sec[rows, None] == i_comm[None, :]
        w_sec = np.where(u_sec[rows] >= 0, SECONDARY_WEIGHT, 0.0)[:, None]
        taste = ((1.0 - w_sec) * ((1.0 - CLUSTER_FOCUS) * prim * comm_share + CLUSTER_FOCUS * fav * clus_share)
                 + w_sec * sec * comm_share)
        prob = (1.0 - alpha) * glob + alpha * taste + 1e-9 * glob  # the floor keeps every item reachable
        race = rng.standard_exponential(prob.shape) / prob
        k = activity[rows]
        kmax = int(k.max())
        if kmax == 0:
            continue
        first = np.argpartition(race, kmax - 1, axis=1)[:, :kmax] if kmax < cfg.n_items else \
            np.broadcast_to(np.arange(cfg.n_items), race.shape)
        order = np.take_along_axis(first, np.argsort(np.take_along_axis(race, first, axis=1), axis=1,
                                                     kind="stable"), axis=1)
        keep = np.arange(kmax)[None, :] < k[:, None]
        user_parts.append(np.broadcast_to(np.arange(rows.start, rows.stop)[:, None], keep.shape)[keep])
        item_parts.append(order[keep])
    return np.concatenate(user_parts), np.concatenate(item_parts)


def _interactions(rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame, user_idx: np.ndarray,
                  item_idx: np.ndarray) -> pd.DataFrame:
    """Timestamps (increasing per user, random order of the chosen items) and ratings 1–5."""
    n = len(user_idx)
    order = np.lexsort((rng.random(n), user_idx))  # per user, a random consumption order
    user_idx, item_idx = user_idx[order], item_idx[order]
    gaps = np.floor(rng.exponential(MEAN_GAP, size=n)).astype(np.int64) + 1
    csum = np.cumsum(gaps)
    first = np.r_[0, np.flatnonzero(np.diff(user_idx)) + 1]                 # first row of each user
    offset = np.repeat(csum[first] - gaps[first], np.diff(np.r_[first, n]))  # cumsum before the user
    start = START + rng.integers(0, START_SPREAD, size=len(users))
    timestamp = start[user_idx] + csum - offset

    u_comm = users["community"].to_numpy()[user_idx]
    u_sec = users["secondary"].to_numpy()[user_idx]
    i_comm = items["community"].to_numpy()[item_idx]
    liked = (u_comm == i_comm) | (u_sec == i_comm)
    user_bias = rng.normal(0.0, 0.5, size=len(users))[user_idx]
    quality = rng.normal(0.0, 0.5, size=len(items))[item_idx]
    noise = rng.normal(0.0, 0.8, size=n)
    rating = np.clip(np.rint(3.0 + 0.9 * liked - 0.3 + user_bias + quality + noise), 1, 5).astype(np.int64)
    return pd.DataFrame({"user_id": user_idx + 1, "item_id": item_idx + 1, "rating": rating,
                         "timestamp": timestamp})


def _social(cfg: SyntheticConfig, rng: np.random.Generator, users: pd.DataFrame) -> pd.DataFrame:
    """Directed ties: homophilous ones (same primary community) and uniformly random ones (noise)."""
    n = cfg.n_users
    n_noise = int(round(cfg.n_social * cfg.noise_share))
    n_homo = cfg.n_social - n_noise
    comm = users["community"].to_numpy()
    sizes = np.bincount(comm, minlength=cfg.n_communities)
    capacity = int((sizes * (sizes - 1)).sum())
    if n_homo > capacity // 2 or cfg.n_social > n * (n - 1) // 2:
        raise ParamsError("data.synthetic.n_social", f"at most {min(capacity // 2, n * (n - 1) // 2)} ties for "
                          f"{n} users in {cfg.n_communities} communities", cfg.n_social)
    homo = _draw_pairs(rng, n_homo, np.empty(0, np.int64), n, lambda m: _homophilous_pairs(rng, users, m))
    noise = _draw_pairs(rng, n_noise, homo, n, lambda m: (rng.integers(0, n, m), rng.integers(0, n, m)))
    keys = np.concatenate([homo, noise])
    is_noise = np.r_[np.zeros(len(homo), np.int64), np.ones(len(noise), np.int64)]
    order = np.argsort(keys, kind="stable")
    return pd.DataFrame({"src": keys[order] // n + 1, "dst": keys[order] % n + 1, "noise": is_noise[order]})


def _homophilous_pairs(rng: np.random.Generator, users: pd.DataFrame, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` candidate (src, dst): sociable sources, destinations in the same community (same cluster boosted)."""
    comm = users["community"].to_numpy()
    clus = users["cluster"].to_numpy()
    social = users["sociability"].to_numpy()
    src = rng.choice(len(users), size=m, p=social / social.sum())
    dst = np.empty(m, dtype=np.int64)
    for c in np.unique(comm[src]):
        members = np.flatnonzero(comm == c)
        for k in range(CLUSTERS_PER_COMMUNITY):
            picks = np.flatnonzero((comm[src] == c) & (clus[src] == k))
            if len(picks) == 0:
                continue
            weight = social[members] * np.where(clus[members] == k, SOCIAL_CLUSTER_BOOST, 1.0)
            dst[picks] = members[rng.choice(len(members), size=len(picks), p=weight / weight.sum())]
    return src, dst


def _draw_pairs(rng: np.random.Generator, count: int, taken: np.ndarray, n: int, sample) -> np.ndarray:
    """``count`` new distinct pair keys ``src * n + dst`` (no self loops, none in ``taken``), in draw order."""
    chosen = np.empty(0, dtype=np.int64)
    for _ in range(10_000):
        need = count - len(chosen)
        if need <= 0:
            return chosen[:count]
        src, dst = sample(2 * need + 64)
        keys = np.asarray(src, np.int64) * n + np.asarray(dst, np.int64)
        keys = keys[(src != dst) & ~np.isin(keys, taken) & ~np.isin(keys, chosen)]
        _, first = np.unique(keys, return_index=True)
        chosen = np.concatenate([chosen, keys[np.sort(first)][:need]])
    raise RuntimeError(f"could not draw {count} distinct social ties")  # unreachable within the checked capacity


# --------------------------------------------------------------------------------------- loader
def load(params: "Params") -> RawTables:
    """Read the three CSV files of the synthetic source from ``data.path``."""
    folder = require_data_dir(params, FILES)
    paths = {"interactions": require_file(folder / INTERACTIONS_FILE, "synthetic interactions"),
             "social": require_file(folder / SOCIAL_FILE, "synthetic social"),
             "items": require_file(folder / ITEMS_FILE, "synthetic items")}
    interactions = read_delimited(paths["interactions"], COLUMNS["interactions"])
    social = read_delimited(paths["social"], COLUMNS["social"], allow_empty=True)
    items = read_delimited(paths["items"], COLUMNS["items"])
    return RawTables(source=params.data.source, path=folder, interactions=interactions, social=social,
                     items=items, files=paths, columns={name: dict(cols) for name, cols in COLUMNS.items()})

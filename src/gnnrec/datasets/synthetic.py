"""The embedded synthetic social-recommendation dataset: a generator and its loader.

The generator plants structure that a graph model can exploit and that a popularity ranking cannot,
plus the ingredients of cold-start and social-filtering work (user features, taste drift, hard fakes):

- **Communities and clusters.** ``n_communities`` latent taste communities; every item has a home
  community and, inside it, one of :data:`CLUSTERS_PER_COMMUNITY` clusters. Every user has a primary
  community, a favourite cluster and a *drift* cluster (another one) inside it and, for
  :data:`SECONDARY_SHARE` of users, a secondary community. Items of one cluster are consumed by the same
  users, so multi-hop co-consumption (user → item → user → item) carries information.
- **User features.** ``users.csv`` gives every user three categorical features (plain strings, none
  missing): ``age_band`` (6 levels), ``region`` (8) and ``occupation`` (12), see :data:`FEATURES`. Each
  community prefers one level per feature (communities spread over the levels); a user's feature takes
  its community's level with probability :data:`FEATURE_AFFINITY`, else a uniformly random one. The
  features thus predict a new user's community well above chance but far from perfectly (with the
  defaults, the majority community of a feature combination is right for about 62% of held-out users,
  chance 10%), and say nothing of the cluster inside it.
- **Popularity.** Item popularity follows a Zipf-like law ``rank ** -popularity_exponent`` (ranks
  shuffled, so every community has hits and a long tail).
- **Choice.** A user's items are drawn without replacement from the mixture
  ``(1 - community_affinity) * global popularity + community_affinity * taste``, where taste spreads
  over the primary community (popularity-weighted), with :data:`CLUSTER_FOCUS` on the favourite cluster,
  and :data:`SECONDARY_WEIGHT` on the secondary community if any.
- **Taste drift.** Taste moves slowly over a user's history: at relative time t in [0, 1] (first to
  last interaction), ``DRIFT_SHARE * t`` of the favourite cluster's weight has moved to the drift
  cluster, so by the end ``community_affinity * CLUSTER_FOCUS * DRIFT_SHARE`` (15% with the defaults, less
  with a secondary community) of the user's mass has moved (:func:`_choice_weights`). The item
  set is drawn from the time-averaged mixture, then each item gets its time from the density that its
  time-dependent weight implies: drift-cluster items come late, favourite-cluster items early, and a
  temporal split's test items differ systematically from the early ones.
- **Activity.** A long tail: interactions per user are lognormal (sigma :data:`ACTIVITY_SIGMA`) for most
  users, and :data:`HEAVY_FACTOR` times more (sigma :data:`HEAVY_SIGMA`) for :data:`HEAVY_SHARE` of heavy
  users; at least :data:`MIN_ACTIVITY`, capped, scaled to exactly ``n_interactions`` distinct (user, item)
  pairs. With the defaults: median 11, mean 18, heavy users about 130 (about 4% of users have 100 or more,
  and the top 5% hold about 37% of the interactions); many sparse users, for whom graph smoothing matters most.
- **Time and ratings.** Unix timestamps increase within a user (exponential gaps from a random start) in
  the drifting order above; ratings 1–5 are higher for items of the user's communities.
- **Social ties.** ``n_social`` directed ties, each with a ``kind``: ``genuine`` ties inside a community
  (preferring the same favourite cluster), ``noise_share`` of ``random`` ones and ``hard_fake_share`` of
  ``hard`` fakes between communities that share popular items; drawn by
  :mod:`gnnrec.datasets.synthetic_social` (which documents them, and whose :data:`KINDS`, ``HARD_*``
  constants and :func:`top_item_masks` are importable from here too).

Everything is drawn from ``numpy.random.Generator(PCG64(seed))`` with element-wise arithmetic only (no
BLAS reductions whose rounding could depend on the machine), and the CSV files hold integers and plain
strings in sorted order, so the same config and seed give byte-identical files: they are tracked by DVC
and may be regenerated on a fresh machine.

Files: ``interactions.csv`` (user_id, item_id, rating, timestamp; sorted by user and time),
``social.csv`` (src, dst, noise, kind; sorted by src, dst), ``items.csv`` (item_id, name) and
``users.csv`` (user_id, age_band, region, occupation; one row per user).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gnnrec.config import SyntheticConfig
from gnnrec.datasets import RawTables, require_data_dir
from gnnrec.datasets.synthetic_social import (  # noqa: F401  (KINDS, HARD_*, top_item_masks: re-exported)
    HARD_MIN_SHARED,
    HARD_MIN_TOP,
    HARD_TOP_MAX,
    HARD_TOP_MIN,
    HARD_TOP_SHARE,
    KINDS,
    SOCIAL_CLUSTER_BOOST,
    social_ties,
    top_item_masks,
)
from gnnrec.datasets.tabular import read_delimited, require_file
from gnnrec.io import write_csv

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params

INTERACTIONS_FILE = "interactions.csv"
SOCIAL_FILE = "social.csv"
ITEMS_FILE = "items.csv"
USERS_FILE = "users.csv"
FILES = (INTERACTIONS_FILE, SOCIAL_FILE, ITEMS_FILE, USERS_FILE)

#: the user feature columns of ``users.csv`` and their levels (plain strings)
FEATURES: dict[str, tuple[str, ...]] = {
    "age_band": ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    "region": ("north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west"),
    "occupation": ("artist", "clerk", "driver", "engineer", "farmer", "manager", "nurse", "retired", "sales",
                   "student", "teacher", "technician"),
}
#: per table, internal column name -> the column of the CSV file
COLUMNS = {
    "interactions": {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"},
    "social": {"src": "src", "dst": "dst", "noise": "noise", "kind": "kind"},
    "items": {"item": "item_id", "name": "name"},
    "users": {"user": "user_id", **{name: name for name in FEATURES}},
}

# Shape constants (the knobs users may want are in SyntheticConfig; these fix the generator's style).
CLUSTERS_PER_COMMUNITY = 4      # item clusters inside a community
CLUSTER_FOCUS = 0.5             # share of a user's community taste on the favourite cluster
DRIFT_SHARE = 0.4               # share of the favourite cluster's weight on the drift cluster at a user's end
SECONDARY_SHARE = 0.35          # share of users with a secondary community
SECONDARY_WEIGHT = 0.3          # share of such a user's taste on the secondary community
FEATURE_AFFINITY = 0.5          # chance that a user feature takes its community's preferred level
MIN_ACTIVITY = 4                # fewest interactions per user (when n_interactions allows)
ACTIVITY_SIGMA = 0.5            # lognormal sigma of the activity of ordinary users
HEAVY_SHARE = 0.05              # share of heavy users ...
HEAVY_FACTOR = 12.0             # ... whose median activity is this many times the ordinary median
HEAVY_SIGMA = 0.35              # lognormal sigma of the activity of heavy users
START = 1_546_300_800           # 2019-01-01T00:00:00Z: first possible timestamp
START_SPREAD = 2 * 365 * 86_400  # users start within two years
MEAN_GAP = 86_400               # mean seconds between two interactions of a user
_CHUNK_CELLS = 4_000_000        # user × item (or user × user) cells computed at once (bounds memory)

TAGS = ("ambient", "bebop", "chiptune", "delta blues", "electro", "folk", "grunge", "highlife", "indie pop",
        "j-rock", "krautrock", "lo-fi", "metal", "neo-soul", "opera", "punk", "reggae", "synthwave",
        "trip-hop", "zydeco")


# ------------------------------------------------------------------------------------ generator
def generate(cfg: SyntheticConfig, seed: int) -> dict[str, pd.DataFrame]:
    """Generate the dataset. Deterministic in ``(cfg, seed)``.

    Returns:
        As written to the CSV files (ids from 1, rows sorted): ``interactions`` (user_id, item_id, rating,
        timestamp), ``social`` (src, dst, noise, kind) and, with ground-truth columns that are not
        written, ``items`` (item_id, name; community, cluster, popularity) and ``users`` (user_id and the
        :data:`FEATURES` columns; community, cluster, drift, secondary, heavy, sociability). ``cluster``
        and ``drift`` are cluster numbers inside the primary community, ``secondary`` is -1 for none.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    items = _items(cfg, rng)
    users = _users(cfg, rng)
    activity = _activity(cfg, rng, users["heavy"].to_numpy())
    user_idx, item_idx = _choose_items(cfg, rng, users, items, activity)
    interactions = _interactions(cfg, rng, users, items, user_idx, item_idx)
    social = social_ties(cfg, rng, users, user_idx, item_idx, clusters=CLUSTERS_PER_COMMUNITY,
                         chunk_cells=_CHUNK_CELLS)
    return {"interactions": interactions, "social": social, "items": items, "users": users}


def write_synthetic(cfg: SyntheticConfig, seed: int, out_dir: Path) -> None:
    """Generate the dataset and write the four :data:`FILES` atomically."""
    out_dir = Path(out_dir)
    tables = generate(cfg, seed)
    write_csv(out_dir / INTERACTIONS_FILE, tables["interactions"])
    write_csv(out_dir / SOCIAL_FILE, tables["social"])
    write_csv(out_dir / ITEMS_FILE, tables["items"][["item_id", "name"]])
    write_csv(out_dir / USERS_FILE, tables["users"][["user_id", *FEATURES]])


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
    """Users: taste (primary community, favourite and drift clusters, maybe a secondary community),
    heavy or not, sociability, and features that lean towards their primary community's levels."""
    n, c = cfg.n_users, cfg.n_communities
    community = rng.integers(0, c, size=n)
    cluster = rng.integers(0, CLUSTERS_PER_COMMUNITY, size=n)
    drift = (cluster + rng.integers(1, CLUSTERS_PER_COMMUNITY, size=n)) % CLUSTERS_PER_COMMUNITY  # another one
    has_secondary = rng.random(n) < SECONDARY_SHARE
    other = (community + rng.integers(1, c, size=n)) % c  # a community different from the primary one
    secondary = np.where(has_secondary, other, -1)
    heavy = np.zeros(n, dtype=bool)
    heavy[rng.permutation(n)[: int(round(HEAVY_SHARE * n))]] = True
    sociability = rng.lognormal(0.0, 1.0, size=n)
    out = {"user_id": np.arange(1, n + 1)}
    for name, levels in FEATURES.items():
        # each community prefers one level; communities spread over the levels (repeating when fewer levels)
        preferred = rng.permutation(len(levels))[np.arange(c) % len(levels)]
        level = np.where(rng.random(n) < FEATURE_AFFINITY, preferred[community],
                         rng.integers(0, len(levels), size=n))
        out[name] = np.asarray(levels, dtype=object)[level]
    out.update({"community": community, "cluster": cluster, "drift": drift, "secondary": secondary,
                "heavy": heavy, "sociability": sociability})
    return pd.DataFrame(out)


def _activity(cfg: SyntheticConfig, rng: np.random.Generator, heavy: np.ndarray) -> np.ndarray:
    """Interactions per user: lognormal, HEAVY_FACTOR times more for heavy users, at least MIN_ACTIVITY,
    capped, summing to n_interactions."""
    n, total = cfg.n_users, cfg.n_interactions
    mean = total / n
    ordinary = rng.lognormal(0.0, ACTIVITY_SIGMA, size=n)
    intense = rng.lognormal(math.log(HEAVY_FACTOR), HEAVY_SIGMA, size=n)
    raw = np.where(heavy, intense, ordinary)
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


def _item_shares(cfg: SyntheticConfig, items: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per item: community, global cluster number, and popularity as a share of all / its community / its cluster."""
    pop = items["popularity"].to_numpy()
    i_comm = items["community"].to_numpy()
    i_clus = i_comm * CLUSTERS_PER_COMMUNITY + items["cluster"].to_numpy()
    return {"comm": i_comm, "clus": i_clus, "glob": pop / pop.sum(),
            "comm_share": pop / np.bincount(i_comm, weights=pop, minlength=cfg.n_communities)[i_comm],
            "clus_share": pop / np.bincount(i_clus, weights=pop)[i_clus]}


def _user_taste(users: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per user: primary community, global favourite and drift cluster numbers, secondary community."""
    comm = users["community"].to_numpy()
    return {"comm": comm, "fav": comm * CLUSTERS_PER_COMMUNITY + users["cluster"].to_numpy(),
            "drift": comm * CLUSTERS_PER_COMMUNITY + users["drift"].to_numpy(), "sec": users["secondary"].to_numpy()}


def _choice_weights(alpha: float, u: dict[str, np.ndarray], i: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The chance weight of an item for a user at relative time ``t`` in [0, 1] of the user's history is
    ``a + b * t``; returns ``(a, b)`` (user and item arrays broadcast against each other).

    The mixture ``(1 - alpha) * global + alpha * taste``: taste spreads over the primary community
    (popularity-weighted), with CLUSTER_FOCUS on the favourite cluster, of which DRIFT_SHARE * t has moved
    to the drift cluster at time t, and SECONDARY_WEIGHT on the secondary community if any.
    """
    prim = u["comm"] == i["comm"]
    fav = u["fav"] == i["clus"]
    drift = u["drift"] == i["clus"]
    sec = u["sec"] == i["comm"]
    w_sec = np.where(u["sec"] >= 0, SECONDARY_WEIGHT, 0.0)
    community = (1.0 - w_sec) * alpha
    a = ((1.0 - alpha) * i["glob"] + 1e-9 * i["glob"]  # the floor keeps every item reachable
         + community * ((1.0 - CLUSTER_FOCUS) * prim * i["comm_share"] + CLUSTER_FOCUS * fav * i["clus_share"])
         + w_sec * alpha * sec * i["comm_share"])
    b = community * (CLUSTER_FOCUS * DRIFT_SHARE) * (drift.astype(np.float64) - fav) * i["clus_share"]
    return a, b


def _choose_items(cfg: SyntheticConfig, rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame,
                  activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's items, without replacement, from its taste mixture averaged over time (exponential race).

    Sampling k items without replacement proportionally to p is taking the k smallest ``E_i / p_i``
    with ``E_i ~ Exp(1)``; it needs only element-wise arithmetic, computed in chunks of users.
    """
    shares = {key: value[None, :] for key, value in _item_shares(cfg, items).items()}
    taste = _user_taste(users)
    chunk = max(1, _CHUNK_CELLS // cfg.n_items)
    user_parts, item_parts = [], []
    for start in range(0, cfg.n_users, chunk):
        rows = slice(start, min(start + chunk, cfg.n_users))
        a, b = _choice_weights(cfg.community_affinity, {key: value[rows, None] for key, value in taste.items()},
                               shares)
        prob = a + 0.5 * b  # the mean of a + b * t over t in [0, 1]
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


def _interactions(cfg: SyntheticConfig, rng: np.random.Generator, users: pd.DataFrame, items: pd.DataFrame,
                  user_idx: np.ndarray, item_idx: np.ndarray) -> pd.DataFrame:
    """Consumption order (drifting taste), timestamps (increasing per user) and ratings 1–5.

    An item whose chance weight is ``a + b * t`` over the relative time t of the user's history gets its
    relative time from the density proportional to ``1 + s * t`` on [0, 1] (``s = b / a > -1``), by the
    inverse of its distribution function; the user's items are consumed in that order.
    """
    n = len(user_idx)
    i = {key: value[item_idx] for key, value in _item_shares(cfg, items).items()}
    u = {key: value[user_idx] for key, value in _user_taste(users).items()}
    a, b = _choice_weights(cfg.community_affinity, u, i)
    slope = b / a
    level = rng.random(n) * (1.0 + 0.5 * slope)
    when = 2.0 * level / (1.0 + np.sqrt(1.0 + 2.0 * slope * level))  # solves t + s t^2 / 2 = level
    order = np.lexsort((when, user_idx))
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


# --------------------------------------------------------------------------------------- loader
def load(params: "Params") -> RawTables:
    """Read the four CSV files of the synthetic source from ``data.path``."""
    folder = require_data_dir(params, FILES)
    paths = {"interactions": require_file(folder / INTERACTIONS_FILE, "synthetic interactions"),
             "social": require_file(folder / SOCIAL_FILE, "synthetic social"),
             "items": require_file(folder / ITEMS_FILE, "synthetic items"),
             "users": require_file(folder / USERS_FILE, "synthetic users")}
    interactions = read_delimited(paths["interactions"], COLUMNS["interactions"])
    social = read_delimited(paths["social"], COLUMNS["social"], allow_empty=True)
    items = read_delimited(paths["items"], COLUMNS["items"])
    users = read_delimited(paths["users"], COLUMNS["users"])
    return RawTables(source=params.data.source, path=folder, interactions=interactions, social=social,
                     items=items, users=users, files=paths,
                     columns={name: dict(cols) for name, cols in COLUMNS.items()})

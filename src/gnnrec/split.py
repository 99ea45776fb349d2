"""Train / validation / test splits of the interactions (the protocol of docs/protocol.md).

- ``random``: per user, a seeded random share of the user's interactions goes to validation and test
  (the protocol of RecBole and RecBole-GNN);
- ``temporal``: per user, the latest interactions go to test and the ones before them to validation.

A user with fewer than ``min_user_interactions`` interactions stays in train only. Counts per user are
``floor(n · ratio)``, raised to 1 for a non-zero ratio while the user keeps at least one training item
(as RecBole does), so every eligible user has validation and test items.

Sources with a fixed test split (the LightGCN format) mark each interaction with ``split`` =
``"train"`` / ``"test"``: the marked test interactions are the test split, and validation is carved out
of the training interactions only (never out of the test file), per user by the same method, with the
share ``ratios[1] / (ratios[0] + ratios[1])`` of the user's training interactions (1/9 by default, so
train and validation keep their 80:10 proportion). The marker is not written to the outputs.

**Cold start** (:func:`hold_out_cold_start`, run before the split): a share of the *eligible* items (more
than ``max(k) + 1`` users) and then of the eligible users (more than ``max(k) + 1`` interactions, counted
after the items are gone) leave the interactions altogether, so that no training, validation or graph
input — and no fitted statistic such as a popularity count — ever sees them. Each held-out interaction
gets a ``reveal`` rank (``0`` first): a seeded random order, or the earliest first under the temporal
split; for each ``k`` the ranks ``< k`` are given to the model and the others are the targets. The user
holdout is drawn as two disjoint roles, ``test`` (the reported table) and ``val`` (the only data that
chooses cold-start settings). Held-out items keep only their known users' interactions (a held-out user's
interaction with a held-out item is dropped: neither side could be revealed). The draws use their own
random stream, so shares of 0 leave the ordinary split exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from gnnrec.errors import ParamsError


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def split_counts(n: np.ndarray, ratios: tuple[float, float, float], min_user_interactions: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Number of validation and test interactions for users with ``n`` interactions each."""
    n = np.asarray(n, dtype=np.int64)
    _, r_val, r_test = ratios
    n_test = np.floor(n * r_test + 1e-9).astype(np.int64)
    n_val = np.floor(n * r_val + 1e-9).astype(np.int64)
    if r_test > 0:
        bump = (n_test == 0) & (n - n_val - n_test > 1)
        n_test += bump
    if r_val > 0:
        bump = (n_val == 0) & (n - n_val - n_test > 1)
        n_val += bump
    small = n < min_user_interactions
    n_test[small] = 0
    n_val[small] = 0
    return n_val, n_test


FIXED_SPLIT_COLUMN = "split"


def split_interactions(interactions: pd.DataFrame, method: str, ratios: tuple[float, float, float],
                       seed: int, min_user_interactions: int = 3) -> Split:
    """Split canonical interactions (``user_id``, ``item_id``, ``weight``, ``timestamp``) per user.

    With a ``split`` column (a fixed test split), see :func:`split_fixed_test`."""
    if FIXED_SPLIT_COLUMN in interactions.columns:
        return split_fixed_test(interactions, method, ratios, seed, min_user_interactions)
    df = interactions.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(len(df))
    users = df["user_id"].to_numpy()
    if method == "random":
        order = np.lexsort((tiebreak, users))
    elif method == "temporal":
        ts = df["timestamp"]
        if ts.isna().any():
            raise ParamsError("split.method", "'random' for data without timestamps on every interaction",
                              "temporal")
        # latest first within each user; random order among equal timestamps
        order = np.lexsort((tiebreak, -ts.to_numpy(dtype=np.int64), users))
    else:
        raise ParamsError("split.method", "random or temporal", method)
    sorted_users = users[order]
    uniq, start, counts = np.unique(sorted_users, return_index=True, return_counts=True)
    rank = np.arange(len(df)) - np.repeat(start, counts)  # position within the user's ordering
    n_val, n_test = split_counts(counts, ratios, min_user_interactions)
    n_val_row, n_test_row = np.repeat(n_val, counts), np.repeat(n_test, counts)
    part = np.zeros(len(df), dtype=np.int8)  # 0 train, 1 val, 2 test
    part[rank < n_test_row + n_val_row] = 1
    part[rank < n_test_row] = 2
    assignment = np.empty(len(df), dtype=np.int8)
    assignment[order] = part
    return Split(*(df[assignment == p].reset_index(drop=True) for p in (0, 1, 2)))


def split_fixed_test(interactions: pd.DataFrame, method: str, ratios: tuple[float, float, float],
                     seed: int, min_user_interactions: int = 3) -> Split:
    """Honour the source's fixed split: rows with ``split == "test"`` are the test split; validation is
    carved out of the other rows per user (share ``ratios[1] / (ratios[0] + ratios[1])``), never out of
    the test rows. ``ratios[2]`` is not used (the source fixes the test share)."""
    marker = interactions[FIXED_SPLIT_COLUMN].astype("str")
    unknown = ~marker.isin(["train", "test"])
    if unknown.any():
        raise ValueError(f"split marker values must be 'train' or 'test', found {sorted(set(marker[unknown]))[:5]}")
    rest = interactions[marker.eq("train").to_numpy()].drop(columns=[FIXED_SPLIT_COLUMN])
    test = (interactions[marker.eq("test").to_numpy()].drop(columns=[FIXED_SPLIT_COLUMN])
            .sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True))
    r_train, r_val, _ = ratios
    val_share = r_val / (r_train + r_val)
    inner = split_interactions(rest, method, (1.0 - val_share, val_share, 0.0), seed, min_user_interactions)
    return Split(inner.train, inner.val, test)


COLD_COLUMNS = ["user_id", "item_id", "weight", "timestamp"]


@dataclass(frozen=True)
class ColdStart:
    """The held-out users and items (:func:`hold_out_cold_start`).

    ``users``: ``user_id``, ``role`` (``test`` / ``val``); ``user_interactions``: their interactions with
    ``role`` and ``reveal`` (rank within the user, 0 first); ``items``: ``item_id``; ``item_interactions``:
    the held-out items' interactions with known users, ``reveal`` ranked within the item; ``remaining``:
    every other interaction, for the ordinary split."""

    users: pd.DataFrame
    user_interactions: pd.DataFrame
    items: pd.DataFrame
    item_interactions: pd.DataFrame
    remaining: pd.DataFrame


def _eligible(counts: pd.Series, ks: Sequence[int]) -> np.ndarray:
    """Ids (the index of ``counts``) with more than ``max(k) + 1`` interactions, ascending."""
    return np.sort(counts.index[counts.to_numpy() > max(ks) + 1].to_numpy(np.int64))


def _reveal_rank(df: pd.DataFrame, key: str, method: str, rng: np.random.Generator) -> np.ndarray:
    """Rank of each row within its ``key`` group: a random order, or by timestamp (earliest first, random
    among ties) under the temporal method."""
    if df.empty:
        return np.zeros(0, dtype=np.int64)
    tiebreak = rng.random(len(df))
    groups = df[key].to_numpy()
    if method == "temporal":
        order = np.lexsort((tiebreak, df["timestamp"].to_numpy(dtype=np.int64), groups))
    else:
        order = np.lexsort((tiebreak, groups))
    sorted_groups = groups[order]
    _, start, counts = np.unique(sorted_groups, return_index=True, return_counts=True)
    rank = np.empty(len(df), dtype=np.int64)
    rank[order] = np.arange(len(df)) - np.repeat(start, counts)
    return rank


def hold_out_cold_start(interactions: pd.DataFrame, ks: Sequence[int], user_share: float, val_share: float,
                        item_share: float, method: str, seed: int) -> ColdStart:
    """Hold out new items, then new users (see the module docstring). Deterministic in ``seed``."""
    rng = np.random.default_rng([int(seed), 0xC01D])                       # its own stream
    df = interactions.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    if method == "temporal" and (user_share > 0 or val_share > 0 or item_share > 0) and df["timestamp"].isna().any():
        raise ParamsError("split.method", "'random' for data without timestamps on every interaction", "temporal")
    cold_cols = [c for c in COLD_COLUMNS if c in df.columns]

    eligible_items = _eligible(df.groupby("item_id").size(), ks)
    n_items = int(round(item_share * len(eligible_items)))
    cold_items = np.sort(rng.permutation(eligible_items)[:n_items])
    in_cold_item = df["item_id"].isin(cold_items).to_numpy()
    item_rows, df = df[in_cold_item], df[~in_cold_item]

    eligible_users = _eligible(df.groupby("user_id").size(), ks)
    n_test = int(round(user_share * len(eligible_users)))
    n_val = int(round(val_share * len(eligible_users)))
    drawn = rng.permutation(eligible_users)
    roles = pd.concat([pd.DataFrame({"user_id": np.sort(drawn[:n_test]), "role": "test"}),
                       pd.DataFrame({"user_id": np.sort(drawn[n_test:n_test + n_val]), "role": "val"})],
                      ignore_index=True)
    roles["role"] = roles["role"].astype("str")
    in_cold_user = df["user_id"].isin(roles["user_id"]).to_numpy()
    user_rows = df[in_cold_user][cold_cols].merge(roles, on="user_id", how="left").reset_index(drop=True)
    user_rows["reveal"] = _reveal_rank(user_rows, "user_id", method, rng)
    remaining = df[~in_cold_user].reset_index(drop=True)

    item_rows = item_rows[~item_rows["user_id"].isin(roles["user_id"]).to_numpy()][cold_cols].reset_index(drop=True)
    item_rows["reveal"] = _reveal_rank(item_rows, "item_id", method, rng)
    return ColdStart(users=roles.sort_values("user_id", kind="stable").reset_index(drop=True),
                     user_interactions=user_rows, items=pd.DataFrame({"item_id": cold_items.astype(np.int64)}),
                     item_interactions=item_rows, remaining=remaining)

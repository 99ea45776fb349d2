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
"""

from __future__ import annotations

from dataclasses import dataclass

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

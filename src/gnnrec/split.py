"""Train / validation / test splits of the interactions (DESIGN §5).

- ``random``: per user, a seeded random share of the user's interactions goes to validation and test
  (the protocol of RecBole and RecBole-GNN);
- ``temporal``: per user, the latest interactions go to test and the ones before them to validation.

A user with fewer than ``min_user_interactions`` interactions stays in train only. Counts per user are
``floor(n · ratio)``, raised to 1 for a non-zero ratio while the user keeps at least one training item
(as RecBole does), so every eligible user has validation and test items.
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


def split_interactions(interactions: pd.DataFrame, method: str, ratios: tuple[float, float, float],
                       seed: int, min_user_interactions: int = 3) -> Split:
    """Split canonical interactions (``user_id``, ``item_id``, ``weight``, ``timestamp``) per user."""
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

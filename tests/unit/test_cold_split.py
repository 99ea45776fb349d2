"""The cold-start holdout of the split stage: who is eligible, how many are drawn, what is revealed first,
and that nothing of a held-out user or item stays in the interactions that are split and trained on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnrec.cold_start import new_entities, reveal
from gnnrec.errors import ParamsError
from gnnrec.split import hold_out_cold_start, split_interactions

KS = (0, 1, 3, 5)


def frame(n_users: int = 60, n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = 3 + u % 15                                                        # 3..17 interactions
        for j, i in enumerate(sorted(rng.choice(n_items, n, replace=False))):
            rows.append((u, int(i), 1.0, 1_000_000 + 100 * u + (n - j)))       # later items have earlier times
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "timestamp"])
    df["timestamp"] = df["timestamp"].astype("Int64")
    return df


def test_held_out_users_are_eligible_disjoint_and_gone_from_the_rest():
    df = frame()
    cold = hold_out_cold_start(df, KS, user_share=0.2, val_share=0.1, item_share=0.0, method="random", seed=1)
    counts = df.groupby("user_id").size()
    eligible = counts[counts > max(KS) + 1].index
    roles = cold.users.set_index("user_id")["role"]
    assert (roles == "test").sum() == round(0.2 * len(eligible))
    assert (roles == "val").sum() == round(0.1 * len(eligible))
    assert set(roles.index) <= set(eligible)
    assert not set(roles.index) & set(cold.remaining["user_id"])
    assert len(cold.remaining) + len(cold.user_interactions) == len(df)
    # every held-out user keeps all its interactions, ranked 0..n-1 for revealing
    for user, group in cold.user_interactions.groupby("user_id"):
        assert sorted(group["reveal"]) == list(range(counts[user]))


def test_temporal_reveals_the_earliest_interactions_first():
    df = frame()
    cold = hold_out_cold_start(df, KS, 0.3, 0.0, 0.0, method="temporal", seed=2)
    ent = new_entities(cold.user_interactions, "user_id", "item_id", cold.users)
    for user, ordered in zip(ent.ids, ent.ordered):
        own = df[df["user_id"] == user].sort_values("timestamp")
        assert ordered.tolist() == own["item_id"].tolist()
    revealed, targets = reveal(ent, 3, 40)
    assert all(len(r) == 3 for r in revealed)
    # the targets of a user are exactly its other items
    for j, o in enumerate(ent.ordered):
        got = targets[1][targets[0][j]:targets[0][j + 1]].tolist()
        assert got == sorted(o[3:].tolist())


def test_held_out_items_leave_every_known_users_interactions():
    df = frame()
    cold = hold_out_cold_start(df, KS, 0.2, 0.1, item_share=0.25, method="random", seed=3)
    items = set(cold.items["item_id"])
    assert items and not items & set(cold.remaining["item_id"])
    assert not items & set(cold.user_interactions["item_id"])               # neither side could be revealed
    assert not set(cold.users["user_id"]) & set(cold.item_interactions["user_id"])
    assert set(cold.item_interactions["item_id"]) <= items


def test_shares_of_zero_leave_the_ordinary_split_unchanged():
    df = frame()
    cold = hold_out_cold_start(df, KS, 0.0, 0.0, 0.0, method="random", seed=4)
    assert len(cold.users) == 0 and len(cold.items) == 0
    a = split_interactions(cold.remaining, "random", (0.8, 0.1, 0.1), seed=4)
    b = split_interactions(df, "random", (0.8, 0.1, 0.1), seed=4)
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        pd.testing.assert_frame_equal(x, y)


def test_the_holdout_is_deterministic_in_its_seed():
    df = frame()
    a = hold_out_cold_start(df, KS, 0.2, 0.1, 0.1, "random", seed=5)
    b = hold_out_cold_start(df, KS, 0.2, 0.1, 0.1, "random", seed=5)
    c = hold_out_cold_start(df, KS, 0.2, 0.1, 0.1, "random", seed=6)
    pd.testing.assert_frame_equal(a.user_interactions, b.user_interactions)
    assert set(a.users["user_id"]) != set(c.users["user_id"])


def test_temporal_holdout_needs_timestamps():
    df = frame()
    df["timestamp"] = pd.array([pd.NA] * len(df), "Int64")
    with pytest.raises(ParamsError, match="split.method"):
        hold_out_cold_start(df, KS, 0.1, 0.0, 0.0, "temporal", seed=0)

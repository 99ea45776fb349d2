"""Per-user random and temporal splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnrec.errors import ParamsError
from gnnrec.split import split_counts, split_interactions


def interactions(counts: dict[int, int], with_ts: bool = True) -> pd.DataFrame:
    rows = [(u, i, 1.0, 1000 * u + i) for u, n in counts.items() for i in range(n)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "timestamp"])
    df["timestamp"] = df["timestamp"].astype("Int64") if with_ts else pd.array([pd.NA] * len(df), "Int64")
    return df


def test_split_counts_follow_recbole_rounding():
    n_val, n_test = split_counts(np.array([1, 2, 3, 10, 25]), (0.8, 0.1, 0.1), 3)
    assert n_val.tolist() == [0, 0, 1, 1, 2]
    assert n_test.tolist() == [0, 0, 1, 1, 2]


def test_random_split_partitions_every_users_interactions():
    df = interactions({0: 10, 1: 25, 2: 2, 3: 3})
    parts = split_interactions(df, "random", (0.8, 0.1, 0.1), seed=7)
    combined = pd.concat([parts.train, parts.val, parts.test])
    assert len(combined) == len(df)
    assert not combined.duplicated(["user_id", "item_id"]).any()
    sizes = {name: getattr(parts, name).groupby("user_id").size().to_dict() for name in ("val", "test")}
    assert sizes["test"] == {0: 1, 1: 2, 3: 1} and sizes["val"] == {0: 1, 1: 2, 3: 1}
    assert (parts.train["user_id"] == 2).sum() == 2  # too few interactions: train only


def test_random_split_is_seeded():
    df = interactions({u: 20 for u in range(5)})
    a = split_interactions(df, "random", (0.8, 0.1, 0.1), seed=1)
    b = split_interactions(df, "random", (0.8, 0.1, 0.1), seed=1)
    c = split_interactions(df, "random", (0.8, 0.1, 0.1), seed=2)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test.equals(c.test)


def test_temporal_split_holds_out_the_latest():
    df = interactions({0: 10, 1: 20})
    parts = split_interactions(df, "temporal", (0.8, 0.1, 0.1), seed=0)
    assert sorted(parts.test[parts.test.user_id == 0]["item_id"]) == [9]
    assert sorted(parts.val[parts.val.user_id == 0]["item_id"]) == [8]
    assert sorted(parts.test[parts.test.user_id == 1]["item_id"]) == [18, 19]
    assert parts.train.groupby("user_id")["timestamp"].max().lt(
        parts.test.groupby("user_id")["timestamp"].min()).all()


def test_temporal_split_needs_timestamps():
    with pytest.raises(ParamsError, match="split.method"):
        split_interactions(interactions({0: 5}, with_ts=False), "temporal", (0.8, 0.1, 0.1), seed=0)

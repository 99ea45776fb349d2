"""Stage ``split``: canonical interactions → ``artifacts/split/{train,val,test}.parquet``.

A source with a fixed test split (a ``split`` column, e.g. the LightGCN format) keeps its test set; the
validation set is then carved out of its training interactions (:func:`gnnrec.split.split_fixed_test`)."""

from __future__ import annotations

from typing import Any

from gnnrec.config import Params
from gnnrec.io import read_parquet, write_parquet
from gnnrec.paths import Paths
from gnnrec.split import split_interactions


def run(params: Params, paths: Paths) -> dict[str, Any]:
    interactions = read_parquet(paths.dataset / "interactions.parquet")
    cfg = params.split
    parts = split_interactions(interactions, cfg.method, cfg.ratios, params.split_seed,
                               cfg.min_user_interactions)
    for name in ("train", "val", "test"):
        write_parquet(paths.split / f"{name}.parquet", getattr(parts, name))
    return {"method": cfg.method, "fixed_test": "split" in interactions.columns,
            "train": len(parts.train), "val": len(parts.val), "test": len(parts.test),
            "test_users": int(parts.test["user_id"].nunique())}

"""Stage ``split``: canonical interactions → ``artifacts/split/{train,val,test}.parquet``.

A source with a fixed test split (a ``split`` column, e.g. the LightGCN format) keeps its test set; the
validation set is then carved out of its training interactions (:func:`gnnrec.split.split_fixed_test`)."""

from __future__ import annotations

from typing import Any

from gnnrec.config import Params
from gnnrec.io import read_parquet, write_parquet
from gnnrec.paths import Paths
from gnnrec.split import hold_out_cold_start, split_interactions

#: the cold-start holdout's files under artifacts/split/ (see gnnrec.split.ColdStart)
COLD_FILES = {"users": "cold_users.parquet", "user_interactions": "cold_user_interactions.parquet",
              "items": "cold_items.parquet", "item_interactions": "cold_item_interactions.parquet"}


def run(params: Params, paths: Paths) -> dict[str, Any]:
    interactions = read_parquet(paths.dataset / "interactions.parquet")
    cfg = params.split
    cs = cfg.cold_start
    cold = hold_out_cold_start(interactions, cs.k, cs.user_share, cs.val_share, cs.item_share, cfg.method,
                               params.split_seed)
    parts = split_interactions(cold.remaining, cfg.method, cfg.ratios, params.split_seed,
                               cfg.min_user_interactions)
    for name in ("train", "val", "test"):
        write_parquet(paths.split / f"{name}.parquet", getattr(parts, name))
    for name, file in COLD_FILES.items():
        write_parquet(paths.split / file, getattr(cold, name))
    roles = cold.users["role"].value_counts()
    return {"method": cfg.method, "fixed_test": "split" in interactions.columns,
            "train": len(parts.train), "val": len(parts.val), "test": len(parts.test),
            "test_users": int(parts.test["user_id"].nunique()),
            "cold_start": {"test_users": int(roles.get("test", 0)), "val_users": int(roles.get("val", 0)),
                           "items": int(len(cold.items)), "user_interactions": int(len(cold.user_interactions)),
                           "item_interactions": int(len(cold.item_interactions))}}

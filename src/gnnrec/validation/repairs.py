"""Repairs of the anomalies, once every check has passed: duplicates merged, self-loops and dangling ties dropped,
duplicate and unknown users of the features file dropped, missing feature values filled.

Each function takes a checked working table (with the derived columns of :mod:`gnnrec.validation.checks`)
and returns the clean table of :class:`~gnnrec.validation.ValidationResult` plus what it repaired, as
counts keyed like the report's ``repairs``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from gnnrec.constants import UNKNOWN_FEATURE
from gnnrec.validation.checks import InteractionTable, UserTable
from gnnrec.validation.gx import POS


def repair_interactions(table: InteractionTable) -> tuple[pd.DataFrame, dict[str, int]]:
    """Normalised ids, parsed values; each duplicate (user, item) pair keeps one row.

    The kept row is the one with the latest timestamp (equal timestamps: the last in file order), or the
    last row without timestamps. With a fixed split, a pair in both files stays in test only (test rows
    follow train rows).
    """
    inter = table.frame
    clean = pd.DataFrame({"user": inter["__id_user"], "item": inter["__id_item"]})
    if table.has_rating:
        clean["rating"] = inter["__num_rating"].astype("float64")
    if table.has_timestamps:
        clean["timestamp"] = inter["__ts_timestamp"].astype("Int64")
    clean["row"] = inter["row"].astype("int64")
    if table.has_split:
        clean["split"] = inter["split"].str.strip().astype("str")
    clean[POS] = inter[POS]
    if table.has_timestamps:  # stable sort: equal timestamps keep file order, so "last" is the last row
        ordered = clean.sort_values("timestamp", kind="mergesort", na_position="first")
    else:
        ordered = clean
    kept = ordered.drop_duplicates(["user", "item"], keep="last").sort_values(POS)
    merged = int(len(clean) - len(kept))
    return kept.drop(columns=[POS]).reset_index(drop=True), {"duplicate_interactions_merged": merged}


def empty_social() -> pd.DataFrame:
    """The clean social table of a source without social ties."""
    return pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str"),
                         "row": pd.Series([], dtype="int64")})


def repair_social(soc: Optional[pd.DataFrame], users: np.ndarray) -> tuple[pd.DataFrame, dict[str, int]]:
    """Self-loops dropped, then duplicate ties (the first of each kept), then ties naming a user outside
    ``users`` (the interactions' user ids). ``soc`` ``None``: the source has no social ties."""
    counts = {"social_self_loops_dropped": 0, "social_duplicates_dropped": 0, "social_unknown_users_dropped": 0}
    if soc is None:
        return empty_social(), counts
    clean = pd.DataFrame({"src": soc["__id_src"], "dst": soc["__id_dst"]})
    if "noise" in soc.columns:
        clean["noise"] = soc["noise"].str.strip().eq("1").astype(bool)
    if "kind" in soc.columns:
        clean["kind"] = soc["kind"].str.strip().astype("str")
    clean["row"] = soc["row"].astype("int64")
    loops = clean["src"] == clean["dst"]
    counts["social_self_loops_dropped"] = int(loops.sum())
    clean = clean[~loops]
    dups = clean.duplicated(["src", "dst"], keep="first")
    counts["social_duplicates_dropped"] = int(dups.sum())
    clean = clean[~dups]
    known = clean["src"].isin(users) & clean["dst"].isin(users)
    counts["social_unknown_users_dropped"] = int((~known).sum())
    return clean[known].reset_index(drop=True), counts


def repair_items(itm: Optional[pd.DataFrame]) -> pd.DataFrame:
    """Normalised item ids with their names, one row per item (the first); ``itm`` ``None``: no item file."""
    if itm is None:
        return pd.DataFrame({"item": pd.Series([], dtype="str"), "name": pd.Series([], dtype="str"),
                             "row": pd.Series([], dtype="int64")})
    clean = pd.DataFrame({"item": itm["__id_item"], "name": itm["name"].astype("str"),
                          "row": itm["row"].astype("int64")})
    return clean.drop_duplicates("item", keep="first").reset_index(drop=True)


def empty_users() -> pd.DataFrame:
    """The clean users table of a source without user features."""
    return pd.DataFrame({"user": pd.Series([], dtype="str"), "row": pd.Series([], dtype="int64")})


def repair_users(table: Optional[UserTable], users: np.ndarray) -> tuple[pd.DataFrame, dict[str, int], dict[str, int]]:
    """Normalised user ids and stripped feature values: duplicate users dropped (the first row of each kept),
    then users outside ``users`` (the interactions' user ids); missing values filled with ``"unknown"``.

    Returns the clean table (``user``, the features, ``row``), the repair counts and, per feature, how many
    values of the kept rows were filled. ``table`` ``None``: the source has no user features."""
    counts = {"user_features_duplicates_dropped": 0, "user_features_unknown_users_dropped": 0,
              "user_features_values_filled": 0}
    if table is None:
        return empty_users(), counts, {}
    usr = table.frame
    clean = pd.DataFrame({"user": usr["__id_user"]})
    for feature in table.features:
        clean[feature] = usr[f"__val_{feature}"].astype("str")
    clean["row"] = usr["row"].astype("int64")
    dups = clean.duplicated(["user"], keep="first")
    counts["user_features_duplicates_dropped"] = int(dups.sum())
    clean = clean[~dups]
    known = clean["user"].isin(users)
    counts["user_features_unknown_users_dropped"] = int((~known).sum())
    clean = clean[known].reset_index(drop=True)
    filled = {}
    for feature in table.features:
        missing = clean[feature].isna()
        filled[feature] = int(missing.sum())
        clean[feature] = clean[feature].fillna(UNKNOWN_FEATURE).astype("str")
    counts["user_features_values_filled"] = sum(filled.values())
    return clean, counts, filled


__all__ = ["empty_social", "empty_users", "repair_interactions", "repair_items", "repair_social", "repair_users"]

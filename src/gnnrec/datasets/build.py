"""The canonical dataset: validated tables filtered (``data.min_rating``, ``data.k_core``) and indexed.

Users and items get contiguous ids from 0 in a deterministic order (:func:`order_ids`); the result is
the canonical tables of ``docs/contracts.md`` plus the completed validation report. The users table
carries the users' side features (one str column per feature, after ``user_id`` and ``raw_id``): a user
without a row in the features file gets ``"unknown"`` for every feature, counted in the report's
``repairs.users_without_features_filled``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from gnnrec.constants import UNKNOWN_FEATURE
from gnnrec.errors import DataValidationError, ParamsError
from gnnrec.validation.core import ValidationResult
from gnnrec.validation.gx import CORRUPTION, POS, Check, gx, msg, new_context, run_checks
from gnnrec.validation.parsing import INT_RE


@dataclass
class Dataset:
    """The canonical tables (docs/contracts.md) and the complete validation report."""

    interactions: pd.DataFrame
    social: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def check_min_rating(min_rating: Optional[float], has_rating: bool) -> None:
    """``data.min_rating`` needs ratings: a ParamsError naming the key when the source has none."""
    if min_rating is not None and not has_rating:
        raise ParamsError("data.min_rating", "null (the data source has no rating column)", min_rating)


def apply_k_core(interactions: pd.DataFrame, k: Optional[int]) -> pd.DataFrame:
    """Iteratively drop the interactions of users and items with fewer than ``k`` interactions."""
    if k is None or k <= 1:
        return interactions
    df = interactions
    while True:
        user_counts = df.groupby("user", sort=False)["user"].transform("size")
        item_counts = df.groupby("item", sort=False)["item"].transform("size")
        keep = (user_counts >= k) & (item_counts >= k)
        if bool(keep.all()):
            return df
        df = df[keep]


def order_ids(raw_ids: Any) -> list[str]:
    """Distinct ids in a deterministic order: numeric when every id is an integer, else lexicographic.

    The ids are validated ones: integer ids are canonical and within int64."""
    unique = sorted(set(str(v) for v in raw_ids))
    if unique and all(INT_RE.fullmatch(v) for v in unique):
        return sorted(unique, key=int)
    return unique


def _filter(result: ValidationResult, report: dict[str, Any], min_rating: Optional[float],
            k_core: Optional[int]) -> pd.DataFrame:
    """The interactions kept by ``data.min_rating`` then ``data.k_core``; the drops counted in ``report``."""
    inter = result.interactions
    filters = report["filters"]
    if min_rating is not None:
        keep = inter["rating"] >= float(min_rating)
        filters["min_rating_dropped"] = int((~keep).sum())
        inter = inter[keep]
    before = len(inter)
    inter = apply_k_core(inter, k_core)
    filters["k_core_dropped_interactions"] = int(before - len(inter))
    inter = inter.reset_index(drop=True)
    if min_rating is not None or (k_core is not None and k_core > 1):
        _check_after_filters(report, inter, result.columns.get("interactions") or {})
    return inter


def build_dataset(result: ValidationResult, *, min_rating: Optional[float] = None,
                  k_core: Optional[int] = None) -> Dataset:
    """Filter (``data.min_rating``, then ``data.k_core``) and index the validated tables.

    Returns the canonical tables of docs/contracts.md and the completed report. Raises
    :class:`ParamsError` when ``min_rating`` is set but the source has no ratings, and
    :class:`~gnnrec.errors.DataValidationError` (with ``.report``) when fewer than two users or no items
    remain.
    """
    check_min_rating(min_rating, result.has_rating)
    report = copy.deepcopy(result.report)
    inter = _filter(result, report, min_rating, k_core)

    users = order_ids(inter["user"].unique())
    items = order_ids(inter["item"].unique())
    user_index = pd.Index(users, dtype="str")
    item_index = pd.Index(items, dtype="str")

    n = len(inter)
    canonical = pd.DataFrame({
        "user_id": user_index.get_indexer(inter["user"]).astype(np.int64),
        "item_id": item_index.get_indexer(inter["item"]).astype(np.int64),
        "weight": (inter["rating"].to_numpy(dtype=np.float32) if result.has_rating
                   else np.ones(n, dtype=np.float32)),
        "timestamp": (inter["timestamp"].astype("Int64").to_numpy() if result.has_timestamps
                      else pd.array([pd.NA] * n, dtype="Int64")),
    })
    canonical["timestamp"] = canonical["timestamp"].astype("Int64")
    if result.has_split:  # the source's fixed split, honoured by the split stage
        canonical["split"] = pd.Series(inter["split"].to_numpy(), dtype="str")

    social = _index_social(result, user_index, report)
    users_df = _users_table(result, users, report)
    names = result.items.set_index("item")["name"] if len(result.items) else pd.Series([], dtype="str")
    item_names = pd.Series(items, dtype="str").map(names).astype("str")
    items_df = pd.DataFrame({"item_id": np.arange(len(items), dtype=np.int64),
                             "raw_id": pd.Series(items, dtype="str"),
                             "name": item_names})

    report["stats"] = {
        "users": len(users), "items": len(items), "interactions": int(len(canonical)),
        "social_ties": int(len(social)), "has_timestamps": bool(result.has_timestamps),
        "has_item_names": bool(items_df["name"].notna().any()), "has_social": bool(result.has_social),
        "user_features": list(result.user_features),
    }
    return Dataset(canonical, social, users_df, items_df, report)


def _users_table(result: ValidationResult, users: list[str], report: dict[str, Any]) -> pd.DataFrame:
    """``user_id``, ``raw_id`` and one str column per side feature; users without a features row get
    ``"unknown"`` for every feature (counted in ``repairs.users_without_features_filled``)."""
    out = pd.DataFrame({"user_id": np.arange(len(users), dtype=np.int64), "raw_id": pd.Series(users, dtype="str")})
    features = list(result.user_features)
    if not features:
        return out
    rows = result.users.set_index("user")
    position = rows.index.get_indexer(out["raw_id"])
    found = position >= 0
    report["repairs"]["users_without_features_filled"] = int((~found).sum())
    for feature in features:
        values = rows[feature].to_numpy(dtype=object)
        column = np.full(len(out), UNKNOWN_FEATURE, dtype=object)
        column[found] = values[position[found]]
        out[feature] = pd.Series(column, dtype="str")
    return out


def _index_social(result: ValidationResult, user_index: pd.Index, report: dict[str, Any]) -> pd.DataFrame:
    """The ties between users that survived the filters, as user ids; the others counted as dropped."""
    soc = result.social
    src = user_index.get_indexer(soc["src"]).astype(np.int64)
    dst = user_index.get_indexer(soc["dst"]).astype(np.int64)
    known = (src >= 0) & (dst >= 0)
    report["repairs"]["social_unknown_users_dropped"] += int((~known).sum())
    social = pd.DataFrame({"src": src[known], "dst": dst[known],
                           "weight": np.ones(int(known.sum()), dtype=np.float32)})
    if result.has_noise:
        social["noise"] = soc["noise"].to_numpy(dtype=bool)[known]
    if "kind" in soc.columns:
        social["kind"] = pd.Series(soc["kind"].to_numpy(dtype=object)[known], dtype="str")
    return social


def _check_after_filters(report: dict, inter: pd.DataFrame, names: dict[str, str]) -> None:
    """At least two users and one item must survive data.min_rating / data.k_core (GX checks).

    The entries are appended to the interactions' checks; a failure is added to ``report["failures"]``
    and raised as a :class:`~gnnrec.errors.DataValidationError` carrying the report."""
    gxe = gx().expectations
    hint = "; relax data.k_core or data.min_rating"
    checks = [
        Check("filtered:users", gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="user", min_value=2, meta={"check": "filtered:users"}), "user", CORRUPTION, (),
            msg("at least two users remain after filtering",
                "{observed} user(s) remain after data.min_rating / data.k_core filtering; "
                "at least 2 are needed" + hint)),
        Check("filtered:items", gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="item", min_value=1, meta={"check": "filtered:items"}), "item", CORRUPTION, (),
            msg("items remain after filtering",
                "{observed} item(s) remain after data.min_rating / data.k_core filtering" + hint)),
    ]
    frame = pd.DataFrame({"user": inter["user"], "item": inter["item"], "row": inter["row"]})
    frame[POS] = np.arange(len(frame), dtype=np.int64)
    entries = run_checks(new_context(), "interactions-filtered", frame, checks, 1, names)
    table = report["tables"]["interactions"]
    table["checks"].extend(entries)
    failures = [{**e, "table": "interactions", "file": table["file"]} for e in entries if not e["success"]]
    if failures:
        report["failures"].extend(failures)
        report["success"] = False
        error = DataValidationError(failures)
        error.report = report
        raise error


__all__ = ["Dataset", "apply_k_core", "build_dataset", "check_min_rating", "order_ids"]

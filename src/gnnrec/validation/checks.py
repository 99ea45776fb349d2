"""The check list of each ingest table, one function per table.

Each function takes the raw table (every value as text), returns a working copy with derived columns
added (``__id_user``: the normalised id, ``__num_rating``: the parsed rating ...) and the
:class:`~gnnrec.validation.gx.Check` list to run on it. Where GX has no expectation for a rule ("is a
valid id", "is a finite number", "src != dst", "names a known user"), the derived column holds the
parsed value or the rule's outcome and a plain GX expectation is applied to it; the report names the
original column.

``names`` maps a table's internal column names to the source file's header names: the messages name
columns the way the user's file does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from gnnrec.constants import SOCIAL_KINDS, UNKNOWN_FEATURE
from gnnrec.datasets import feature_columns
from gnnrec.validation.gx import ANOMALY, CORRUPTION, POS, Check, all_true, exists, fmt_value, gx, label, msg, not_null
from gnnrec.validation.parsing import FLOAT32_MAX, normalise_ids, parse_numbers, parse_timestamps

REQUIRED_COLUMNS = {
    "interactions": ("user", "item", "row"),
    "social": ("src", "dst", "row"),
    "items": ("item", "name", "row"),
    "users": ("user", "row"),
}

BAD_ID = ("{n} value(s) cannot be ids: empty, a number that is not an integer (like '1.5', '1e3', "
          "'nan', 'inf') or an integer outside int64")


def as_text(df: Optional[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    """A copy of ``df`` with a RangeIndex, ``columns`` as text and the position column added."""
    out = (df if df is not None else pd.DataFrame()).reset_index(drop=True).copy()
    for c in out.columns:
        if c != "row" and c in columns:
            out[c] = out[c].astype("str")
    out[POS] = np.arange(len(out), dtype=np.int64)
    return out


def _id_check(table: str, frame: pd.DataFrame, column: str) -> Check:
    """Add ``__id_<column>`` (normalised ids) to ``frame``; the check that none is null."""
    derived = f"__id_{column}"
    frame[derived] = normalise_ids(frame[column])
    return not_null(f"{table}:id:{column}", derived, column, CORRUPTION, BAD_ID, (column,))


def _repair_action(strict: bool, repaired: str) -> str:
    return "the run fails (validate.strict)" if strict else repaired


# ---------------------------------------------------------------------------- interactions
@dataclass
class InteractionTable:
    """The interactions with their derived columns, the checks to run, and which optional columns exist."""

    frame: pd.DataFrame
    checks: list[Check]
    has_rating: bool
    has_timestamps: bool
    has_split: bool


def interaction_checks(interactions: pd.DataFrame, *, strict: bool,
                       names: Mapping[str, str]) -> InteractionTable:
    """Required columns, a non-empty table, valid ids, ratings, timestamps and split markers, at least
    two users (corruption); duplicate (user, item) pairs (an anomaly)."""
    inter = as_text(interactions, ("user", "item", "rating", "timestamp"))
    checks = [exists("interactions", c, list(interactions.columns), names) for c in REQUIRED_COLUMNS["interactions"]]
    gxe = gx().expectations
    checks.append(Check(
        "interactions:rows",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "interactions:rows"}),
        None, CORRUPTION, (), msg("table not empty", "the interactions table has no rows")))
    table = InteractionTable(inter, checks, has_rating="rating" in inter.columns,
                             has_timestamps="timestamp" in inter.columns, has_split="split" in inter.columns)
    for col in ("user", "item"):
        if col in inter.columns:
            checks.append(_id_check("interactions", inter, col))
    checks.extend(_value_checks(table))
    if "user" in inter.columns:
        checks.append(Check(
            "interactions:users",
            gxe.ExpectColumnUniqueValueCountToBeBetween(column="__id_user", min_value=2,
                                                        meta={"check": "interactions:users"}),
            "user", CORRUPTION, (),
            msg("at least two distinct users", "{observed} distinct valid user id(s); at least 2 are needed")))
    if "user" in inter.columns and "item" in inter.columns:
        rule = "the row with the latest timestamp" if table.has_timestamps else "the last row"
        pair = f"({label('user', names)}, {label('item', names)})"
        checks.append(Check(
            "interactions:pairs",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["__id_user", "__id_item"],
                                                meta={"check": "interactions:pairs"}),
            "user,item", ANOMALY, ("user", "item"),
            msg(f"no duplicate {pair} pairs",
                f"{{n}} rows share their {pair} pair with another row; "
                + _repair_action(strict, f"repaired: each pair keeps {rule}"))))
    return table


def _value_checks(table: InteractionTable) -> list[Check]:
    """Ratings (finite, within float32), timestamps (unix seconds or ISO-8601), split markers."""
    inter = table.frame
    checks = []
    if table.has_rating:
        ratings = parse_numbers(inter["rating"])
        inter["__num_rating"] = ratings.where(ratings.abs() <= FLOAT32_MAX)  # weights are float32
        checks.append(not_null("interactions:rating", "__num_rating", "rating", CORRUPTION,
                               "{n} value(s) are not finite numbers (at most 3.4e38 in absolute value: "
                               "ratings become float32 weights)", ("rating",)))
    if table.has_timestamps:
        inter["__ts_timestamp"] = parse_timestamps(inter["timestamp"])
        checks.append(not_null("interactions:timestamp", "__ts_timestamp", "timestamp", CORRUPTION,
                               "{n} value(s) are neither integral unix seconds nor ISO-8601 dates",
                               ("timestamp",)))
    if table.has_split:  # a fixed test split (LightGCN format): train / test
        inter["__ok_split"] = inter["split"].str.strip().isin(["train", "test"]).astype(bool)
        checks.append(all_true("interactions:split", "__ok_split", "split", CORRUPTION,
                               "{n} value(s) are not 'train' or 'test'", ("split",)))
    return checks


def known_users(inter: pd.DataFrame) -> np.ndarray:
    """The distinct valid user ids of the checked interactions (before any filter)."""
    if "__id_user" not in inter.columns:
        return np.array([], dtype=object)
    return pd.unique(inter["__id_user"].dropna())


# ---------------------------------------------------------------------------------- social
def social_checks(social: Optional[pd.DataFrame], users: np.ndarray, *, strict: bool,
                  names: Mapping[str, str]) -> tuple[pd.DataFrame, list[Check]]:
    """Required columns, valid ids and noise flags (corruption); self-loops, duplicate ties and ties
    naming a user without interactions (``users``: the interactions' user ids) (anomalies)."""
    soc = as_text(social, ("src", "dst", "noise", "kind"))
    present = list(social.columns) if social is not None else []
    checks = [exists("social", c, present, names) for c in REQUIRED_COLUMNS["social"]]
    for col in ("src", "dst"):
        if col in soc.columns:
            checks.append(_id_check("social", soc, col))
    if "noise" in soc.columns:
        soc["__ok_noise"] = soc["noise"].str.strip().isin(["0", "1"]).astype(bool)
        checks.append(all_true("social:noise", "__ok_noise", "noise", CORRUPTION,
                               "{n} value(s) are not '0' or '1'", ("noise",)))
    if "kind" in soc.columns:  # the synthetic source's ground truth: how each tie was drawn
        soc["__ok_kind"] = soc["kind"].str.strip().isin(list(SOCIAL_KINDS)).fillna(False).astype(bool)
        allowed = ", ".join(repr(k) for k in SOCIAL_KINDS)
        checks.append(all_true("social:kind", "__ok_kind", "kind", CORRUPTION,
                               f"{{n}} value(s) are not one of {allowed}", ("kind",)))
    src, dst = label("src", names), label("dst", names)
    if "src" in soc.columns and "dst" in soc.columns:
        soc["__ne_src_dst"] = (soc["__id_src"] != soc["__id_dst"]).fillna(True).astype(bool)
        checks.append(all_true("social:self_loops", "__ne_src_dst", "src,dst", ANOMALY,
                               f"{{n}} self-loop(s) ({src} == {dst}); " + _repair_action(strict, "dropped"),
                               ("src", "dst")))
        checks.append(Check(
            "social:pairs",
            gx().expectations.ExpectCompoundColumnsToBeUnique(column_list=["__id_src", "__id_dst"],
                                                              meta={"check": "social:pairs"}),
            "src,dst", ANOMALY, ("src", "dst"),
            msg("no duplicate ties", f"{{n}} rows share their ({src}, {dst}) tie with another row; "
                + _repair_action(strict, "the first of each is kept"))))
    for col in ("src", "dst"):
        if col in soc.columns:
            derived = f"__known_{col}"
            ids = soc[f"__id_{col}"]
            soc[derived] = (ids.isna() | ids.isin(users)).astype(bool)
            checks.append(all_true(f"social:known:{col}", derived, col, ANOMALY,
                                   "{n} tie(s) name a user without interactions; " + _repair_action(strict, "dropped"),
                                   ("src", "dst")))
    return soc, checks


def unmatched_social(soc: pd.DataFrame, inter: pd.DataFrame, users: np.ndarray, files: Mapping[str, Optional[str]],
                     *, strict: bool, names: Mapping[str, Mapping[str, str]]) -> Optional[str]:
    """A warning when ties exist but no social id matches any interaction user id (``users``; e.g. ``u7``
    against ``7``): every tie would then be dropped. The warning names both files and gives an example id
    of each. ``None`` otherwise."""
    if "__id_src" not in soc.columns or "__id_dst" not in soc.columns or not len(users):
        return None
    src, dst = soc["__id_src"], soc["__id_dst"]
    valid = src.notna() & dst.notna()
    if not valid.any() or bool((src.isin(users) | dst.isin(users)).any()):
        return None
    first = int(np.flatnonzero(valid.to_numpy())[0])
    user_pos = int(np.flatnonzero(inter["__id_user"].notna().to_numpy())[0])
    social_names, inter_names = names.get("social") or {}, names.get("interactions") or {}
    fate = "the run fails (validate.strict)" if strict else "every tie is dropped"
    return (f"no id of the social file ({files.get('social') or 'social table'}) matches a user id of the "
            f"interactions file ({files.get('interactions') or 'interactions table'}): {fate}. "
            f"E.g. social {label('src', social_names)}={fmt_value(src.iloc[first])} "
            f"(row {_row(soc, first)}) against interactions {label('user', inter_names)}="
            f"{fmt_value(inter['__id_user'].iloc[user_pos])} (row {_row(inter, user_pos)}); "
            "check that both files use the same user ids")


def _row(frame: pd.DataFrame, pos: int) -> Any:
    row = frame["row"].iloc[pos] if "row" in frame.columns else None
    return "?" if row is None or pd.isna(row) else int(row)


# ----------------------------------------------------------------------------------- items
def item_checks(items: Optional[pd.DataFrame], names: Mapping[str, str]) -> tuple[pd.DataFrame, list[Check]]:
    """Required columns and valid item ids (corruption)."""
    itm = as_text(items, ("item", "name"))
    present = list(items.columns) if items is not None else []
    checks = [exists("items", c, present, names) for c in REQUIRED_COLUMNS["items"]]
    if "item" in itm.columns:
        checks.append(_id_check("items", itm, "item"))
    return itm, checks


# ----------------------------------------------------------------------------------- users
@dataclass
class UserTable:
    """The users table (side features) with its derived columns, the checks to run and its feature columns."""

    frame: pd.DataFrame
    checks: list[Check]
    features: list[str]


def feature_values(values: pd.Series) -> pd.Series:
    """Feature values as stripped text; null where a value is missing (null, or empty once stripped)."""
    text = values.astype("str").str.strip()
    return text.where(text.notna() & (text != "")).astype("str")


def user_checks(users: Optional[pd.DataFrame], known: np.ndarray, *, strict: bool,
                names: Mapping[str, str]) -> UserTable:
    """Required columns (``user``, ``row`` and every column the manifest names) and valid user ids
    (corruption); duplicate users, users without interactions (``known``: the interactions' user ids) and
    missing feature values, one check per feature column (anomalies)."""
    present = list(users.columns) if users is not None else []
    features = feature_columns(users) if users is not None else []
    usr = as_text(users, ("user", *features))
    required = list(REQUIRED_COLUMNS["users"]) + [c for c in names if c not in REQUIRED_COLUMNS["users"]]
    checks = [exists("users", c, present, names) for c in required]
    if "user" in usr.columns:
        checks.append(_id_check("users", usr, "user"))
        user = label("user", names)
        checks.append(Check(
            "users:unique",
            gx().expectations.ExpectColumnValuesToBeUnique(column="__id_user", meta={"check": "users:unique"}),
            "user", ANOMALY, ("user",),
            msg(f"one row per {user}", f"{{n}} rows share their {user} with another row; "
                + _repair_action(strict, "the first of each is kept"))))
        ids = usr["__id_user"]
        usr["__known_user"] = (ids.isna() | ids.isin(known)).astype(bool)
        checks.append(all_true("users:known", "__known_user", "user", ANOMALY,
                               "{n} row(s) name a user without interactions; " + _repair_action(strict, "dropped"),
                               ("user",)))
    for feature in features:
        derived = f"__val_{feature}"
        usr[derived] = feature_values(usr[feature])
        checks.append(not_null(f"users:missing:{feature}", derived, feature, ANOMALY,
                               "{n} value(s) are empty; "
                               + _repair_action(strict, f"filled with {UNKNOWN_FEATURE!r}"), ("user", feature)))
    return UserTable(usr, checks, features)


def unmatched_users(usr: pd.DataFrame, inter: pd.DataFrame, known: np.ndarray, files: Mapping[str, Optional[str]],
                    *, strict: bool, names: Mapping[str, Mapping[str, str]]) -> Optional[str]:
    """A warning when the users file has valid ids but none matches an interaction user id (``known``; e.g.
    ``u7`` against ``7``): every row would be dropped and every user get ``unknown`` features. ``None``
    otherwise."""
    if "__id_user" not in usr.columns or not len(known):
        return None
    ids = usr["__id_user"]
    if not ids.notna().any() or bool(ids.isin(known).any()):
        return None
    first = int(np.flatnonzero(ids.notna().to_numpy())[0])
    user_pos = int(np.flatnonzero(inter["__id_user"].notna().to_numpy())[0])
    user_names, inter_names = names.get("users") or {}, names.get("interactions") or {}
    fate = ("the run fails (validate.strict)" if strict
            else f"every row is dropped and every user's features are {UNKNOWN_FEATURE!r}")
    return (f"no id of the users file ({files.get('users') or 'users table'}) matches a user id of the "
            f"interactions file ({files.get('interactions') or 'interactions table'}): {fate}. "
            f"E.g. users {label('user', user_names)}={fmt_value(ids.iloc[first])} (row {_row(usr, first)}) "
            f"against interactions {label('user', inter_names)}={fmt_value(inter['__id_user'].iloc[user_pos])} "
            f"(row {_row(inter, user_pos)}); check that both files use the same user ids")


__all__ = ["BAD_ID", "REQUIRED_COLUMNS", "InteractionTable", "UserTable", "as_text", "feature_values",
           "interaction_checks", "item_checks", "known_users", "social_checks", "unmatched_social",
           "unmatched_users", "user_checks"]

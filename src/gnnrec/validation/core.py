""":func:`validate_tables`: run every table's checks, decide the verdict, then repair the anomalies."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pandas as pd

from gnnrec.constants import TABLES
from gnnrec.errors import DataValidationError, ParamsError
from gnnrec.validation import checks as table_checks
from gnnrec.validation.gx import CORRUPTION, new_context, run_checks
from gnnrec.validation.repairs import repair_interactions, repair_items, repair_social, repair_users

logger = logging.getLogger("gnnrec.validation")

#: the report's ``repairs`` counters, in report order
REPAIRS = ("duplicate_interactions_merged", "social_self_loops_dropped", "social_duplicates_dropped",
           "social_unknown_users_dropped", "user_features_duplicates_dropped", "user_features_unknown_users_dropped",
           "user_features_values_filled", "users_without_features_filled")


@dataclass
class ValidationResult:
    """Checked and repaired raw tables (ids normalised, values parsed) plus the report so far.

    - ``interactions``: ``user`` str, ``item`` str, ``rating`` float64 (if the source has ratings),
      ``timestamp`` Int64 (if it has timestamps), ``row`` int64, ``split`` str (``"train"`` / ``"test"``,
      if the source has a fixed test split, e.g. the LightGCN format)
    - ``social``: ``src`` str, ``dst`` str, ``noise`` bool (if known), ``kind`` str (if known: ``genuine``,
      ``random`` or ``hard``), ``row`` int64
    - ``items``: ``item`` str, ``name`` str (nullable), ``row`` int64; one row per item
    - ``users``: ``user`` str, one str column per name of ``user_features`` (never null: a missing value
      is ``"unknown"``), ``row`` int64; one row per user that has interactions and a row in the features file
    - ``columns``: per table, internal column name → the source file's header name (where known)
    """

    interactions: pd.DataFrame
    social: pd.DataFrame
    items: pd.DataFrame
    report: dict[str, Any]
    has_rating: bool
    has_timestamps: bool
    has_noise: bool
    has_social: bool
    has_split: bool = False
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    users: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"user": pd.Series([], dtype="str"), "row": pd.Series([], dtype="int64")}))
    user_features: list[str] = field(default_factory=list)


def validate_tables(interactions: pd.DataFrame, social: Optional[pd.DataFrame],
                    items: Optional[pd.DataFrame], *, strict: bool, max_examples: int,
                    files: Mapping[str, Optional[str]],
                    columns: Optional[Mapping[str, Optional[Mapping[str, str]]]] = None,
                    users: Optional[pd.DataFrame] = None) -> ValidationResult:
    """Check the raw ingest tables with GX, then repair the anomalies (unless ``strict``).

    ``users`` is the side-features table (``user``, one text column per feature, ``row``), ``None`` or
    empty without a file: duplicate users keep their first row, users without interactions are dropped,
    empty feature values become ``"unknown"`` (each counted in ``repairs``, a failure under ``strict``;
    the filled values per feature are in ``tables.users.filled``).

    ``files`` maps a table name to its source file (``None``: the source has no such table; the
    table's report entry is then null when the table is also empty). ``columns`` maps a table name to
    its internal → source header names (the ingest manifest's ``columns``); messages, examples and the
    report's ``column`` use the header names, or the internal names where none is given. Raises
    :class:`DataValidationError` (with the report as its ``report`` attribute) when a check fails.
    When ties exist but no social id matches an interaction user id, the report's ``warnings`` say so
    and a warning is logged on the ``gnnrec.validation`` logger.
    """
    if max_examples < 1:
        raise ParamsError("validate.max_examples", "an integer >= 1", max_examples)
    names = {name: dict((columns or {}).get(name) or {}) for name in TABLES}
    context = new_context()
    tables: dict[str, Optional[dict[str, Any]]] = {}

    def entry(name: str, frame: pd.DataFrame, checks: list) -> dict[str, Any]:
        return {"file": files.get(name), "rows": int(len(frame)),
                "checks": run_checks(context, name, frame, checks, max_examples, names[name])}

    inter = table_checks.interaction_checks(interactions, strict=strict, names=names["interactions"])
    tables["interactions"] = entry("interactions", inter.frame, inter.checks)
    known = table_checks.known_users(inter.frame)  # users with interactions (pre-filter), for social and users

    warnings: list[str] = []
    has_social = _present(social, files.get("social"))
    soc = None
    if has_social:
        soc, checks = table_checks.social_checks(social, known, strict=strict, names=names["social"])
        tables["social"] = entry("social", soc, checks)
        unmatched = table_checks.unmatched_social(soc, inter.frame, known, files, strict=strict, names=names)
        if unmatched is not None:
            logger.warning(unmatched)
            warnings.append(unmatched)
    else:
        tables["social"] = None

    itm = None
    if _present(items, files.get("items")):
        itm, checks = table_checks.item_checks(items, names["items"])
        tables["items"] = entry("items", itm, checks)
    else:
        tables["items"] = None

    usr = None
    if _present(users, files.get("users")):
        _check_feature_names(users, files.get("users"))
        usr = table_checks.user_checks(users, known, strict=strict, names=names["users"])
        tables["users"] = entry("users", usr.frame, usr.checks)
        unmatched = table_checks.unmatched_users(usr.frame, inter.frame, known, files, strict=strict, names=names)
        if unmatched is not None:
            logger.warning(unmatched)
            warnings.append(unmatched)
    else:
        tables["users"] = None

    report = empty_report(strict, tables, inter.has_timestamps, has_social)
    report["warnings"] = warnings
    raise_on_failures(report, strict)

    clean, repairs = repair_interactions(inter)
    social_clean, social_repairs = repair_social(soc, known)
    users_clean, user_repairs, filled = repair_users(usr, known)
    report["repairs"].update(repairs, **social_repairs, **user_repairs)
    if tables["users"] is not None:
        tables["users"]["filled"] = filled
    features = list(usr.features) if usr is not None else []
    report["stats"]["user_features"] = features
    return ValidationResult(clean, social_clean, repair_items(itm), report, has_rating=inter.has_rating,
                            has_timestamps=inter.has_timestamps, has_noise=soc is not None and "noise" in soc.columns,
                            has_social=has_social, has_split=inter.has_split, columns=names, users=users_clean,
                            user_features=features)


def _check_feature_names(users: Optional[pd.DataFrame], file: Optional[str]) -> None:
    """A feature column may not take a name of the canonical users table (a DataError naming the file)."""
    from gnnrec.datasets import check_feature_names, feature_columns

    if users is not None:
        check_feature_names(feature_columns(users), file, "the users table's columns")


def _present(frame: Optional[pd.DataFrame], file: Optional[str]) -> bool:
    """Whether a table is part of the source: it has a file, or rows."""
    return not (file is None and (frame is None or len(frame) == 0))


def raise_on_failures(report: dict[str, Any], strict: bool) -> None:
    """The verdict: every failed corruption check (and under ``strict`` every failed anomaly check) goes into
    ``report["failures"]``; a :class:`DataValidationError` carrying the report is raised if there is any."""
    failures = []
    for name in TABLES:
        entry = report["tables"][name]
        if entry is None:
            continue
        for check in entry["checks"]:
            if not check["success"] and (check["kind"] == CORRUPTION or strict):
                failures.append({**check, "table": name, "file": entry["file"]})
    report["failures"] = failures
    report["success"] = not failures
    if failures:
        error = DataValidationError(failures)
        error.report = report
        raise error


def empty_report(strict: bool, tables: dict, has_timestamps: bool, has_social: bool) -> dict[str, Any]:
    """The report skeleton: the tables' check entries, zero repairs, filters and stats, no failures or warnings."""
    return {
        "success": True,
        "strict": bool(strict),
        "tables": tables,
        "repairs": {key: 0 for key in REPAIRS},
        "filters": {"min_rating_dropped": 0, "k_core_dropped_interactions": 0},
        "stats": {"users": 0, "items": 0, "interactions": 0, "social_ties": 0,
                  "has_timestamps": bool(has_timestamps), "has_item_names": False,
                  "has_social": bool(has_social), "user_features": []},
        "failures": [],
        "warnings": [],
    }


__all__ = ["REPAIRS", "ValidationResult", "empty_report", "raise_on_failures", "validate_tables"]

"""Data validation with Great Expectations: checks, repairs, filters and contiguous ids.

Input: the raw ingest tables (every value as text, ``row`` = line number in the source file).
Every check is a GX expectation in a suite built in code and run on an ephemeral context. Where GX has
no expectation for a rule ("is a valid id", "is a finite number", "src != dst", "names a known user"),
a derived column is computed in pandas first and a plain GX expectation is applied to it; the report
keeps the original column name.

Policy (DESIGN §2a):

- *corruption* always fails: a required column missing, an empty interactions table, ids that cannot
  be ids (empty, a non-integer number such as ``1.5`` / ``1e3`` / ``nan``, an integer outside int64),
  ratings that are not finite numbers, timestamps that are neither integral unix seconds nor ISO-8601
  dates, fewer than two distinct users.
- *anomalies* (duplicate (user, item) pairs, social self-loops, duplicate ties, ties naming a user
  without interactions) are repaired and counted, or fail under ``validate.strict``.

Ids: surrounding whitespace is stripped and integer ids are written in canonical form (``"007"`` and
``"+7"`` both become ``"7"``); any other string (``"u42"``) is a valid id as is.

:func:`validate_tables` checks and repairs; :func:`build_dataset` filters (``data.min_rating``,
``data.k_core``) and indexes the result into the canonical tables of ``docs/contracts.md``.
"""

from __future__ import annotations

import copy
import os
import re
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd

from gnnrec.errors import DataValidationError, ParamsError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

TABLES = ("interactions", "social", "items")
REQUIRED_COLUMNS = {
    "interactions": ("user", "item", "row"),
    "social": ("src", "dst", "row"),
    "items": ("item", "name", "row"),
}
CORRUPTION = "corruption"
ANOMALY = "anomaly"

_POS = "__pos"  # original position of a row (frames handed to GX keep a RangeIndex: GX reports positions)
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMERIC_RE = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE
)
_MISSING_MARKERS = {"none", "null", "<na>", "nat"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ISO_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ------------------------------------------------------------------------------------ results
@dataclass
class ValidationResult:
    """Checked and repaired raw tables (ids normalised, values parsed) plus the report so far.

    - ``interactions``: ``user`` str, ``item`` str, ``rating`` float64 (if the source has ratings),
      ``timestamp`` Int64 (if it has timestamps), ``row`` int64, ``split`` str (``"train"`` / ``"test"``,
      if the source has a fixed test split, e.g. the LightGCN format)
    - ``social``: ``src`` str, ``dst`` str, ``noise`` bool (if known), ``row`` int64
    - ``items``: ``item`` str, ``name`` str (nullable), ``row`` int64; one row per item
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


@dataclass
class Dataset:
    """The canonical tables (docs/contracts.md) and the complete validation report."""

    interactions: pd.DataFrame
    social: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------- value parsing
def _normalise_id(value: Any) -> Optional[str]:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if not text or text.lower() in _MISSING_MARKERS:
        return None
    if _INT_RE.fullmatch(text):
        number = int(text)
        return str(number) if _INT64_MIN <= number <= _INT64_MAX else None
    if _NUMERIC_RE.fullmatch(text):
        return None  # numeric-looking but not an integer: "1.5", "1e3", "nan", "inf"
    return text


def normalise_ids(values: pd.Series) -> pd.Series:
    """Ids as canonical strings; null where a value cannot be an id."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([_normalise_id(u) for u in uniques] + [None], dtype=object)
    out = mapped[codes]  # code -1 picks the trailing None
    return pd.Series(out, index=values.index, dtype="str")


def parse_numbers(values: pd.Series) -> pd.Series:
    """Finite float64 numbers; NaN where a value is not parseable or not finite."""
    text = values.astype("str").str.strip()
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return numbers.where(np.isfinite(numbers.to_numpy()))


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Unix seconds (Int64) from integral numbers or ISO-8601 dates/datetimes; null where invalid.

    Naive datetimes are read as UTC; fractions of a second are floored."""
    text = values.astype("str").str.strip()
    out = pd.Series(pd.NA, index=values.index, dtype="Int64")
    is_int = text.str.fullmatch(r"[+-]?[0-9]{1,18}").fillna(False).astype(bool)
    if is_int.any():
        out[is_int] = text[is_int].astype("int64")
    rest = ~is_int & text.notna()
    if rest.any():
        numbers = pd.to_numeric(text.where(rest), errors="coerce").astype("float64")
        arr = numbers.to_numpy()
        with np.errstate(invalid="ignore"):
            ok = rest.to_numpy() & np.isfinite(arr) & (np.floor(arr) == arr) & (np.abs(arr) < 2.0**62)
        if ok.any():
            out[ok] = arr[ok].astype("int64")
        iso = rest & ~ok & text.str.match(_ISO_RE).fillna(False).astype(bool)
        if iso.any():
            out[iso] = _iso_seconds(text[iso])
    return out


def _iso_seconds(text: pd.Series) -> pd.Series:
    """ISO-8601 dates/datetimes → unix seconds (Int64), null where invalid.

    pandas parses in bulk, in whatever resolution it infers; dates outside its nanosecond range (before
    1677 or after 2262, e.g. ``9999-12-31``) fall back to Python's ``datetime``."""
    stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    secs = stamps.dt.tz_localize(None).dt.floor("s").to_numpy(dtype="datetime64[s]")
    valid = ~np.isnat(secs)
    out = pd.Series(pd.NA, index=text.index, dtype="Int64")
    if valid.any():
        out[valid] = secs[valid].astype(np.int64)
    if not valid.all():
        out[~valid] = pd.array([_iso_seconds_one(v) for v in text[~valid]], dtype="Int64")
    return out


def _iso_seconds_one(value: str) -> Any:
    try:
        stamp = datetime.fromisoformat(value)
    except (ValueError, TypeError):
        return pd.NA
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    try:
        return (stamp - _EPOCH) // timedelta(seconds=1)
    except OverflowError:  # an offset that pushes year 1 / 9999 out of range
        return pd.NA


# ------------------------------------------------------------------------------------- checks
@dataclass
class _Check:
    key: str
    expectation: Any  # a GX expectation instance
    column: Optional[str]  # the original column name shown in the report
    kind: str
    example_columns: tuple[str, ...]
    message: Callable[[bool, int, Any], str]  # (success, unexpected_count, observed_value) -> text


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx  # imported lazily: it takes seconds

    return gx


def _new_context() -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _fmt_value(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return str(int(value))
    return repr(str(value))


def _example(frame: pd.DataFrame, pos: int, columns: tuple[str, ...]) -> str:
    row = frame["row"].iloc[pos] if "row" in frame.columns else None
    if row is not None and not pd.isna(row):
        where = f"row {int(row)}" if isinstance(row, (int, np.integer)) else f"row {row}"
    else:
        where = f"record {pos + 1} (no row number)"
    if "split" in frame.columns and "split" not in columns:  # two source files: say which one
        columns = (*columns, "split")
    shown = ", ".join(f"{c}={_fmt_value(frame[c].iloc[pos])}" for c in columns if c in frame.columns)
    return f"{where}: {shown}" if shown else where


def _unexpected_positions(result: dict) -> list[int]:
    """Positions of the first unexpected rows (the frames given to GX have a RangeIndex)."""
    positions = []
    for entry in result.get("partial_unexpected_index_list") or []:
        if isinstance(entry, (int, np.integer)):
            positions.append(int(entry))
    return sorted(set(positions))


def _exception_message(info: Any) -> Optional[str]:
    """The message of an exception GX caught while running an expectation, if any."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _run_checks(context: Any, table: str, frame: pd.DataFrame, checks: list[_Check],
                max_examples: int) -> list[dict[str, Any]]:
    """Run ``checks`` as one GX suite on ``frame``; one report entry per check, in ``checks`` order."""
    if not checks:
        return []
    gx = _gx()
    source = context.data_sources.add_pandas(f"gnnrec-{table}")
    batch_definition = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
    suite = gx.ExpectationSuite(name=f"gnnrec-{table}", expectations=[c.expectation for c in checks])
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(suite, result_format={
        "result_format": "SUMMARY",
        "partial_unexpected_count": max_examples,
        "return_unexpected_index_query": False,
    })
    by_key = {r.expectation_config.meta.get("check"): r for r in outcome.results}
    entries = []
    for check in checks:
        r = by_key[check.key]
        result = dict(r.result or {})
        error = _exception_message(r.exception_info)
        success = bool(r.success) and error is None
        if "unexpected_count" in result and result["unexpected_count"] is not None:
            unexpected = int(result["unexpected_count"])
        else:
            unexpected = 0 if success else 1
        if error is not None:
            message = f"the check could not run: {error}"
        else:
            message = check.message(success, unexpected, result.get("observed_value"))
        examples = [] if success else [
            _example(frame, p, check.example_columns) for p in _unexpected_positions(result)
        ][:max_examples]
        entries.append({
            "expectation": r.expectation_config.type,
            "column": check.column,
            "kind": check.kind,
            "success": success,
            "unexpected_count": unexpected,
            "examples": examples,
            "message": message,
        })
    return entries


def _msg(ok: str, bad: str) -> Callable[[bool, int, Any], str]:
    def message(success: bool, n: int, observed: Any) -> str:
        return ok if success else bad.replace("{n}", str(n)).replace("{observed}", str(observed))

    return message


def _exists(table: str, column: str, present: list[str]) -> _Check:
    gxe = _gx().expectations
    key = f"{table}:exists:{column}"
    return _Check(
        key, gxe.ExpectColumnToExist(column=column, meta={"check": key}), column, CORRUPTION, (),
        _msg("column present",
             f"required column '{column}' is missing (columns present: {', '.join(present) or 'none'})"),
    )


def _not_null(key: str, derived: str, column: str, kind: str, bad: str,
              example_columns: tuple[str, ...]) -> _Check:
    gxe = _gx().expectations
    return _Check(key, gxe.ExpectColumnValuesToNotBeNull(column=derived, meta={"check": key}),
                  column, kind, example_columns, _msg("all values valid", bad))


def _all_true(key: str, derived: str, column: str, kind: str, bad: str,
              example_columns: tuple[str, ...]) -> _Check:
    gxe = _gx().expectations
    return _Check(key, gxe.ExpectColumnValuesToBeInSet(column=derived, value_set=[True], meta={"check": key}),
                  column, kind, example_columns, _msg("all values valid", bad))


_BAD_ID = ("{n} value(s) cannot be ids: empty, a number that is not an integer (like '1.5', '1e3', "
           "'nan', 'inf') or an integer outside int64")


def _id_column(frame: pd.DataFrame, column: str) -> str:
    derived = f"__id_{column}"
    frame[derived] = normalise_ids(frame[column])
    return derived


def _as_text(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = df.reset_index(drop=True).copy()
    for c in out.columns:
        if c != "row" and c in columns:
            out[c] = out[c].astype("str")
    out[_POS] = np.arange(len(out), dtype=np.int64)
    return out


# ------------------------------------------------------------------------------ the entry point
def validate_tables(interactions: pd.DataFrame, social: Optional[pd.DataFrame],
                    items: Optional[pd.DataFrame], *, strict: bool, max_examples: int,
                    files: Mapping[str, Optional[str]]) -> ValidationResult:
    """Check the raw ingest tables with GX, then repair the anomalies (unless ``strict``).

    ``files`` maps a table name to its source file (``None``: the source has no such table; the
    table's report entry is then null when the table is also empty). Raises
    :class:`DataValidationError` (with the report as its ``report`` attribute) when a check fails.
    """
    if max_examples < 1:
        raise ParamsError("validate.max_examples", "an integer >= 1", max_examples)
    context = _new_context()
    action = "the run fails (validate.strict)" if strict else "repaired"
    tables: dict[str, Optional[dict[str, Any]]] = {}

    # ---- interactions
    inter = _as_text(interactions, ("user", "item", "rating", "timestamp"))
    present = [c for c in interactions.columns]
    checks = [_exists("interactions", c, present) for c in REQUIRED_COLUMNS["interactions"]]
    gxe = _gx().expectations
    checks.append(_Check(
        "interactions:rows",
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta={"check": "interactions:rows"}),
        None, CORRUPTION, (), _msg("table not empty", "the interactions table has no rows")))
    has_rating = "rating" in inter.columns
    has_timestamps = "timestamp" in inter.columns
    for col in ("user", "item"):
        if col in inter.columns:
            derived = _id_column(inter, col)
            checks.append(_not_null(f"interactions:id:{col}", derived, col, CORRUPTION, _BAD_ID, (col,)))
    if has_rating:
        ratings = parse_numbers(inter["rating"])
        inter["__num_rating"] = ratings.where(ratings.abs() <= _FLOAT32_MAX)  # weights are float32
        checks.append(_not_null("interactions:rating", "__num_rating", "rating", CORRUPTION,
                                "{n} value(s) are not finite numbers (at most 3.4e38 in absolute value: "
                                "ratings become float32 weights)", ("rating",)))
    if has_timestamps:
        inter["__ts_timestamp"] = parse_timestamps(inter["timestamp"])
        checks.append(_not_null("interactions:timestamp", "__ts_timestamp", "timestamp", CORRUPTION,
                                "{n} value(s) are neither integral unix seconds nor ISO-8601 dates",
                                ("timestamp",)))
    has_split = "split" in inter.columns          # a fixed test split (LightGCN format): train / test
    if has_split:
        inter["__ok_split"] = inter["split"].str.strip().isin(["train", "test"]).astype(bool)
        checks.append(_all_true("interactions:split", "__ok_split", "split", CORRUPTION,
                                "{n} value(s) are not 'train' or 'test'", ("split",)))
    if "user" in inter.columns:
        checks.append(_Check(
            "interactions:users",
            gxe.ExpectColumnUniqueValueCountToBeBetween(column="__id_user", min_value=2,
                                                        meta={"check": "interactions:users"}),
            "user", CORRUPTION, (),
            _msg("at least two distinct users",
                 "{observed} distinct valid user id(s); at least 2 are needed")))
    if "user" in inter.columns and "item" in inter.columns:
        ts_rule = "the row with the latest timestamp" if has_timestamps else "the last row"
        checks.append(_Check(
            "interactions:pairs",
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["__id_user", "__id_item"],
                                                meta={"check": "interactions:pairs"}),
            "user,item", ANOMALY, ("user", "item"),
            _msg("no duplicate (user, item) pairs",
                 "{n} rows share their (user, item) pair with another row; "
                 + (f"{action}: each pair keeps {ts_rule}" if not strict else action))))
    tables["interactions"] = {"file": files.get("interactions"), "rows": int(len(inter)),
                              "checks": _run_checks(context, "interactions", inter, checks, max_examples)}

    # users with interactions (pre-filter), for the social checks
    known_users = (pd.unique(inter["__id_user"].dropna()) if "__id_user" in inter.columns
                   else np.array([], dtype=object))

    # ---- social
    has_social = not (files.get("social") is None and (social is None or len(social) == 0))
    has_noise = False
    soc = None
    if has_social:
        soc = _as_text(social if social is not None else pd.DataFrame(), ("src", "dst", "noise"))
        present = list(social.columns) if social is not None else []
        checks = [_exists("social", c, present) for c in REQUIRED_COLUMNS["social"]]
        for col in ("src", "dst"):
            if col in soc.columns:
                derived = _id_column(soc, col)
                checks.append(_not_null(f"social:id:{col}", derived, col, CORRUPTION, _BAD_ID, (col,)))
        has_noise = "noise" in soc.columns
        if has_noise:
            soc["__ok_noise"] = soc["noise"].str.strip().isin(["0", "1"]).astype(bool)
            checks.append(_all_true("social:noise", "__ok_noise", "noise", CORRUPTION,
                                    "{n} value(s) are not '0' or '1'", ("noise",)))
        if "src" in soc.columns and "dst" in soc.columns:
            soc["__ne_src_dst"] = (soc["__id_src"] != soc["__id_dst"]).fillna(True).astype(bool)
            checks.append(_all_true("social:self_loops", "__ne_src_dst", "src,dst", ANOMALY,
                                    "{n} self-loop(s) (src == dst); " + (action if strict else "dropped"),
                                    ("src", "dst")))
            checks.append(_Check(
                "social:pairs",
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["__id_src", "__id_dst"],
                                                    meta={"check": "social:pairs"}),
                "src,dst", ANOMALY, ("src", "dst"),
                _msg("no duplicate ties",
                     "{n} rows share their (src, dst) tie with another row; "
                     + (action if strict else "the first of each is kept"))))
        for col in ("src", "dst"):
            if col in soc.columns:
                derived = f"__known_{col}"
                ids = soc[f"__id_{col}"]
                soc[derived] = (ids.isna() | ids.isin(known_users)).astype(bool)
                checks.append(_all_true(f"social:known:{col}", derived, col, ANOMALY,
                                        "{n} tie(s) name a user without interactions; "
                                        + (action if strict else "dropped"), ("src", "dst")))
        tables["social"] = {"file": files.get("social"), "rows": int(len(soc)),
                            "checks": _run_checks(context, "social", soc, checks, max_examples)}
    else:
        tables["social"] = None

    # ---- items
    has_items = not (files.get("items") is None and (items is None or len(items) == 0))
    itm = None
    if has_items:
        itm = _as_text(items if items is not None else pd.DataFrame(), ("item", "name"))
        present = list(items.columns) if items is not None else []
        checks = [_exists("items", c, present) for c in REQUIRED_COLUMNS["items"]]
        if "item" in itm.columns:
            derived = _id_column(itm, "item")
            checks.append(_not_null("items:id:item", derived, "item", CORRUPTION, _BAD_ID, ("item",)))
        tables["items"] = {"file": files.get("items"), "rows": int(len(itm)),
                           "checks": _run_checks(context, "items", itm, checks, max_examples)}
    else:
        tables["items"] = None

    # ---- verdict
    failures = []
    for name in TABLES:
        entry = tables[name]
        if entry is None:
            continue
        for check in entry["checks"]:
            if not check["success"] and (check["kind"] == CORRUPTION or strict):
                failures.append({**check, "table": name, "file": entry["file"]})
    report = _empty_report(strict, tables, has_timestamps, has_social)
    report["failures"] = failures
    report["success"] = not failures
    if failures:
        error = DataValidationError(failures)
        error.report = report
        raise error

    # ---- repairs
    repairs = report["repairs"]
    clean = pd.DataFrame({"user": inter["__id_user"], "item": inter["__id_item"]})
    if has_rating:
        clean["rating"] = inter["__num_rating"].astype("float64")
    if has_timestamps:
        clean["timestamp"] = inter["__ts_timestamp"].astype("Int64")
    clean["row"] = inter["row"].astype("int64")
    if has_split:  # a pair in both files stays in test only (the last row: test rows follow train rows)
        clean["split"] = inter["split"].str.strip().astype("str")
    clean[_POS] = inter[_POS]
    if has_timestamps:  # stable sort: equal timestamps keep file order, so "last" is the last row
        ordered = clean.sort_values("timestamp", kind="mergesort", na_position="first")
    else:
        ordered = clean
    kept = ordered.drop_duplicates(["user", "item"], keep="last").sort_values(_POS)
    repairs["duplicate_interactions_merged"] = int(len(clean) - len(kept))
    clean = kept.drop(columns=[_POS]).reset_index(drop=True)

    social_clean = pd.DataFrame({"src": pd.Series([], dtype="str"), "dst": pd.Series([], dtype="str"),
                                 "row": pd.Series([], dtype="int64")})
    if soc is not None:
        social_clean = pd.DataFrame({"src": soc["__id_src"], "dst": soc["__id_dst"]})
        if has_noise:
            social_clean["noise"] = soc["noise"].str.strip().eq("1").astype(bool)
        social_clean["row"] = soc["row"].astype("int64")
        loops = social_clean["src"] == social_clean["dst"]
        repairs["social_self_loops_dropped"] = int(loops.sum())
        social_clean = social_clean[~loops]
        dups = social_clean.duplicated(["src", "dst"], keep="first")
        repairs["social_duplicates_dropped"] = int(dups.sum())
        social_clean = social_clean[~dups]
        known = social_clean["src"].isin(known_users) & social_clean["dst"].isin(known_users)
        repairs["social_unknown_users_dropped"] = int((~known).sum())
        social_clean = social_clean[known].reset_index(drop=True)

    items_clean = pd.DataFrame({"item": pd.Series([], dtype="str"), "name": pd.Series([], dtype="str"),
                                "row": pd.Series([], dtype="int64")})
    if itm is not None:
        items_clean = pd.DataFrame({"item": itm["__id_item"], "name": itm["name"].astype("str"),
                                    "row": itm["row"].astype("int64")})
        items_clean = items_clean.drop_duplicates("item", keep="first").reset_index(drop=True)

    return ValidationResult(clean, social_clean, items_clean, report, has_rating=has_rating,
                            has_timestamps=has_timestamps, has_noise=has_noise, has_social=has_social,
                            has_split=has_split)


def _empty_report(strict: bool, tables: dict, has_timestamps: bool, has_social: bool) -> dict[str, Any]:
    return {
        "success": True,
        "strict": bool(strict),
        "tables": tables,
        "repairs": {"duplicate_interactions_merged": 0, "social_self_loops_dropped": 0,
                    "social_duplicates_dropped": 0, "social_unknown_users_dropped": 0},
        "filters": {"min_rating_dropped": 0, "k_core_dropped_interactions": 0},
        "stats": {"users": 0, "items": 0, "interactions": 0, "social_ties": 0,
                  "has_timestamps": bool(has_timestamps), "has_item_names": False,
                  "has_social": bool(has_social)},
        "failures": [],
    }


# ------------------------------------------------------------------------ filters and indexing
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
    """Distinct ids in a deterministic order: numeric when every id is an integer, else lexicographic."""
    unique = sorted(set(str(v) for v in raw_ids))
    if unique and all(_INT_RE.fullmatch(v) for v in unique):
        return sorted(unique, key=int)
    return unique


def build_dataset(result: ValidationResult, *, min_rating: Optional[float] = None,
                  k_core: Optional[int] = None) -> Dataset:
    """Filter (``data.min_rating``, then ``data.k_core``) and index the validated tables.

    Returns the canonical tables of docs/contracts.md and the completed report. Raises
    :class:`ParamsError` when ``min_rating`` is set but the source has no ratings, and
    :class:`DataValidationError` (with ``.report``) when fewer than two users or no items remain.
    """
    check_min_rating(min_rating, result.has_rating)
    report = copy.deepcopy(result.report)
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
        _check_after_filters(report, inter, result.report["tables"]["interactions"]["file"])

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

    soc = result.social
    src = user_index.get_indexer(soc["src"]).astype(np.int64)
    dst = user_index.get_indexer(soc["dst"]).astype(np.int64)
    known = (src >= 0) & (dst >= 0)
    report["repairs"]["social_unknown_users_dropped"] += int((~known).sum())
    social = pd.DataFrame({"src": src[known], "dst": dst[known],
                           "weight": np.ones(int(known.sum()), dtype=np.float32)})
    if result.has_noise:
        social["noise"] = soc["noise"].to_numpy(dtype=bool)[known]

    users_df = pd.DataFrame({"user_id": np.arange(len(users), dtype=np.int64),
                             "raw_id": pd.Series(users, dtype="str")})
    names = result.items.set_index("item")["name"] if len(result.items) else pd.Series([], dtype="str")
    item_names = pd.Series(items, dtype="str").map(names).astype("str")
    items_df = pd.DataFrame({"item_id": np.arange(len(items), dtype=np.int64),
                             "raw_id": pd.Series(items, dtype="str"),
                             "name": item_names})

    report["stats"] = {
        "users": len(users), "items": len(items), "interactions": int(len(canonical)),
        "social_ties": int(len(social)), "has_timestamps": bool(result.has_timestamps),
        "has_item_names": bool(items_df["name"].notna().any()), "has_social": bool(result.has_social),
    }
    return Dataset(canonical, social, users_df, items_df, report)


def _check_after_filters(report: dict, inter: pd.DataFrame, file: Optional[str]) -> None:
    """At least two users and one item must survive data.min_rating / data.k_core (GX checks)."""
    gxe = _gx().expectations
    hint = "; relax data.k_core or data.min_rating"
    checks = [
        _Check("filtered:users", gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="user", min_value=2, meta={"check": "filtered:users"}), "user", CORRUPTION, (),
            _msg("at least two users remain after filtering",
                 "{observed} user(s) remain after data.min_rating / data.k_core filtering; "
                 "at least 2 are needed" + hint)),
        _Check("filtered:items", gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="item", min_value=1, meta={"check": "filtered:items"}), "item", CORRUPTION, (),
            _msg("items remain after filtering",
                 "{observed} item(s) remain after data.min_rating / data.k_core filtering" + hint)),
    ]
    frame = pd.DataFrame({"user": inter["user"], "item": inter["item"], "row": inter["row"]})
    frame[_POS] = np.arange(len(frame), dtype=np.int64)
    entries = _run_checks(_new_context(), "interactions-filtered", frame, checks, 1)
    report["tables"]["interactions"]["checks"].extend(entries)
    failures = [{**e, "table": "interactions", "file": file} for e in entries if not e["success"]]
    if failures:
        report["failures"].extend(failures)
        report["success"] = False
        error = DataValidationError(failures)
        error.report = report
        raise error

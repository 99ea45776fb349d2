"""Value parsing for the validate stage: ids, numbers and timestamps from the ingest tables' text.

Every parser maps a text Series to parsed values, with null where a value is invalid; the checks then
count the nulls and quote the rows (the parsers never raise on bad values).

Ids: surrounding whitespace is stripped and integer ids are written in canonical form (``"007"`` and
``"+7"`` both become ``"7"``). An integer outside int64, however many digits it has, cannot be an id,
nor can empty text or a number not written as an integer (``"1.5"``, ``"1e3"``, ``"7.0"``, ``"nan"``,
``"inf"``); any other string (``"u42"``) is a valid id as is.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import numpy as np
import pandas as pd

INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMERIC_RE = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE
)
_MISSING_MARKERS = {"none", "null", "<na>", "nat"}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT64_DIGITS = len(str(_INT64_MAX))  # 19: more significant digits than this is outside int64
_ISO_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: the largest rating accepted: ratings become float32 weights
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def canonical_integer(text: str) -> Optional[str]:
    """The canonical form of an all-digit id (optional sign): sign ``+`` and leading zeros dropped.

    ``None`` when the integer is outside int64. Significant digits are counted before the conversion,
    so a digit string of any length is classified without Python's limit on converting long strings
    to ``int`` (4,300 digits), which would otherwise raise ``ValueError``."""
    sign = "-" if text.startswith("-") else ""
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > _INT64_DIGITS:
        return None
    number = int(sign + digits)
    return str(number) if _INT64_MIN <= number <= _INT64_MAX else None


def normalise_id(value: Any) -> Optional[str]:
    """One id in canonical form; ``None`` where the value cannot be an id (see the module docstring)."""
    if _is_missing(value):
        return None
    text = str(value).strip()
    if not text or text.lower() in _MISSING_MARKERS:
        return None
    if INT_RE.fullmatch(text):
        return canonical_integer(text)
    if _NUMERIC_RE.fullmatch(text):
        return None  # numeric-looking but not an integer: "1.5", "1e3", "nan", "inf"
    return text


def normalise_ids(values: pd.Series) -> pd.Series:
    """Ids as canonical strings; null where a value cannot be an id."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([normalise_id(u) for u in uniques] + [None], dtype=object)
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


__all__ = ["FLOAT32_MAX", "INT_RE", "canonical_integer", "normalise_id", "normalise_ids", "parse_numbers",
           "parse_timestamps"]

"""The Great Expectations (GX 1.x) adapter: an ephemeral context, a check list run as one suite, report entries.

A :class:`Check` pairs a GX expectation with what the report says about it: the column it is about, the
kind of problem (:data:`CORRUPTION` or :data:`ANOMALY`), which columns an offending row is quoted with,
and the message. Columns are named internally (``user``, ``item``, ``src`` ...); :func:`run_checks`
shows them under the source file's header names (a ``names`` mapping) in the report and the examples.

``great_expectations`` is imported on the first call that needs it (it takes seconds), never at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

CORRUPTION = "corruption"
ANOMALY = "anomaly"
#: the column holding each row's original position (frames handed to GX keep a RangeIndex: GX reports positions)
POS = "__pos"
#: values longer than this are shortened in examples
_MAX_SHOWN = 60


@dataclass
class Check:
    """One GX expectation and how the report describes it."""

    key: str  # unique within a suite; stored in the expectation's ``meta`` to match results to checks
    expectation: Any  # a GX expectation instance
    column: Optional[str]  # the internal column(s) the check is about, comma-separated; None: the table
    kind: str
    example_columns: tuple[str, ...]
    message: Callable[[bool, int, Any], str]  # (success, unexpected_count, observed_value) -> text


def gx() -> Any:
    """The ``great_expectations`` module (imported here, lazily)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def new_context() -> Any:
    """An ephemeral GX context with progress bars off."""
    module = gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = module.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


# ------------------------------------------------------------------------------------ names
def label(column: str, names: Mapping[str, str]) -> str:
    """The source header name of an internal column (the internal name when the header is unknown)."""
    return names.get(column) or column


def labels(columns: Optional[str], names: Mapping[str, str]) -> Optional[str]:
    """:func:`label` of each of comma-separated internal columns, comma-separated."""
    if columns is None:
        return None
    return ",".join(label(c, names) for c in columns.split(","))


def described(column: str, names: Mapping[str, str]) -> str:
    """``'user_id' (user)``: the header name quoted, the internal name after it when they differ."""
    shown = label(column, names)
    return repr(shown) if shown == column else f"{shown!r} ({column})"


# --------------------------------------------------------------------------------- examples
def fmt_value(value: Any) -> str:
    """A value as quoted in an example: ``null``, an integer, or the text's repr (shortened when long)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return str(int(value))
    text = str(value)
    if len(text) > _MAX_SHOWN:
        return f"{text[:_MAX_SHOWN - 20]!r}... ({len(text)} characters)"
    return repr(text)


def example(frame: pd.DataFrame, pos: int, columns: tuple[str, ...], names: Mapping[str, str]) -> str:
    """``row 4: user_id='1.5'``: where the row at position ``pos`` came from, and its values of ``columns``."""
    row = frame["row"].iloc[pos] if "row" in frame.columns else None
    if row is not None and not pd.isna(row):
        where = f"row {int(row)}" if isinstance(row, (int, np.integer)) else f"row {row}"
    else:
        where = f"record {pos + 1} (no row number)"
    if "split" in frame.columns and "split" not in columns:  # two source files: say which one
        columns = (*columns, "split")
    shown = ", ".join(f"{label(c, names)}={fmt_value(frame[c].iloc[pos])}" for c in columns if c in frame.columns)
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


# ------------------------------------------------------------------------------- running
def run_checks(context: Any, table: str, frame: pd.DataFrame, checks: list[Check], max_examples: int,
               names: Optional[Mapping[str, str]] = None) -> list[dict[str, Any]]:
    """Run ``checks`` as one GX suite on ``frame``; one report entry per check, in ``checks`` order.

    ``names`` maps internal column names to the source file's header names, used for the entries'
    ``column`` and in the examples.
    """
    if not checks:
        return []
    names = names or {}
    module = gx()
    source = context.data_sources.add_pandas(f"gnnrec-{table}")
    batch_definition = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
    suite = module.ExpectationSuite(name=f"gnnrec-{table}", expectations=[c.expectation for c in checks])
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
            example(frame, p, check.example_columns, names) for p in _unexpected_positions(result)
        ][:max_examples]
        entries.append({
            "expectation": r.expectation_config.type,
            "column": labels(check.column, names),
            "kind": check.kind,
            "success": success,
            "unexpected_count": unexpected,
            "examples": examples,
            "message": message,
        })
    return entries


# ------------------------------------------------------------------------------ check builders
def msg(ok: str, bad: str) -> Callable[[bool, int, Any], str]:
    """A message: ``ok`` on success, else ``bad`` with ``{n}`` (unexpected count) and ``{observed}`` filled in."""
    def message(success: bool, n: int, observed: Any) -> str:
        return ok if success else bad.replace("{n}", str(n)).replace("{observed}", str(observed))

    return message


def exists(table: str, column: str, present: list[str], names: Mapping[str, str]) -> Check:
    """The column ``column`` must exist (``present``: the columns the table has)."""
    gxe = gx().expectations
    key = f"{table}:exists:{column}"
    shown = ", ".join(label(c, names) for c in present) or "none"
    return Check(
        key, gxe.ExpectColumnToExist(column=column, meta={"check": key}), column, CORRUPTION, (),
        msg("column present", f"required column {described(column, names)} is missing (columns present: {shown})"),
    )


def not_null(key: str, derived: str, column: str, kind: str, bad: str,
             example_columns: tuple[str, ...]) -> Check:
    """The derived column ``derived`` (computed from ``column``) must have no nulls."""
    gxe = gx().expectations
    return Check(key, gxe.ExpectColumnValuesToNotBeNull(column=derived, meta={"check": key}),
                 column, kind, example_columns, msg("all values valid", bad))


def all_true(key: str, derived: str, column: str, kind: str, bad: str,
             example_columns: tuple[str, ...]) -> Check:
    """The derived boolean column ``derived`` (computed from ``column``) must be true on every row."""
    gxe = gx().expectations
    return Check(key, gxe.ExpectColumnValuesToBeInSet(column=derived, value_set=[True], meta={"check": key}),
                 column, kind, example_columns, msg("all values valid", bad))

"""validate stage: GX checks, repairs, filters, indexing and the report (docs/contracts.md)."""

from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gnnrec.config import Params  # noqa: E402
from gnnrec.datasets.build import apply_k_core, build_dataset, order_ids  # noqa: E402
from gnnrec.errors import DataValidationError, ParamsError  # noqa: E402
from gnnrec.io import write_json, write_parquet  # noqa: E402
from gnnrec.paths import Paths  # noqa: E402
from gnnrec.validation import normalise_ids, parse_numbers, parse_timestamps, validate_tables  # noqa: E402

FILES = {"interactions": "/data/ratings.csv", "social": "/data/trust.csv", "items": "/data/items.csv"}


# ------------------------------------------------------------------------------------ helpers
def table(columns: list[str], rows: list[tuple], first_row: int = 2) -> pd.DataFrame:
    """An ingest-style table: every value text, plus the 1-based source line number (header = 1)."""
    df = pd.DataFrame(rows, columns=columns, dtype=object)
    df = df.astype({c: "str" for c in columns})
    df["row"] = np.arange(first_row, first_row + len(df), dtype=np.int64)
    return df


def inter(rows: list[tuple], columns: tuple[str, ...] = ("user", "item")) -> pd.DataFrame:
    return table(list(columns), rows)


def no_social() -> pd.DataFrame:
    return table(["src", "dst"], [])


def no_items() -> pd.DataFrame:
    return table(["item", "name"], [])


BASE = [("1", "10"), ("2", "10"), ("2", "11"), ("3", "12")]


def validate(interactions: pd.DataFrame, social: Optional[pd.DataFrame] = None,
             items: Optional[pd.DataFrame] = None, strict: bool = False, max_examples: int = 5):
    files = {"interactions": FILES["interactions"],
             "social": FILES["social"] if social is not None else None,
             "items": FILES["items"] if items is not None else None}
    return validate_tables(interactions, social if social is not None else no_social(),
                           items if items is not None else no_items(),
                           strict=strict, max_examples=max_examples, files=files)


def failing(interactions: pd.DataFrame, **kwargs: Any) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        validate(interactions, **kwargs)
    return info.value


def the_failure(error: DataValidationError, column: str, table: str = "interactions") -> dict:
    matches = [f for f in error.failures if f["column"] == column and f["table"] == table]
    assert matches, f"no failure on {table}.{column}: {error.failures}"
    return matches[0]


# --------------------------------------------------------------------------- parsing helpers
def test_normalise_ids() -> None:
    raw = pd.Series(["42", " 7 ", "007", "+3", "-4", "u42", "a b", "", "   ", "1.5", "1e3", "nan", "NaN",
                     "inf", "-Infinity", ".5", "99999999999999999999", "9223372036854775807",
                     "-9223372036854775808", "9223372036854775808", None, "null"], dtype="str")
    got = normalise_ids(raw).tolist()
    expected = ["42", "7", "7", "3", "-4", "u42", "a b", None, None, None, None, None, None,
                None, None, None, None, "9223372036854775807", "-9223372036854775808", None, None, None]
    assert [None if pd.isna(v) else v for v in got] == expected
    assert str(normalise_ids(raw).dtype) == "str"


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_every_int64_is_an_id(n: int) -> None:
    assert normalise_ids(pd.Series([str(n)], dtype="str")).iloc[0] == str(n)


def test_parse_numbers() -> None:
    got = parse_numbers(pd.Series(["4", " 3.5 ", "-1e2", "abc", "", "nan", "inf", "-inf", None], dtype="str"))
    assert got.iloc[:3].tolist() == [4.0, 3.5, -100.0]
    assert got.iloc[3:].isna().all()


def test_parse_timestamps() -> None:
    raw = pd.Series(["1577836800", "+5", "1577836800.0", "2020-01-01", "2020-01-01T00:00:10Z",
                     "2020-01-01T02:00:00+02:00", "2020-01-01 00:01:00", "1.5", "2020-13-45", "soon",
                     "", "nan", "inf", None], dtype="str")
    got = parse_timestamps(raw)
    assert str(got.dtype) == "Int64"
    assert got.iloc[:7].tolist() == [1577836800, 5, 1577836800, 1577836800, 1577836810, 1577836800,
                                     1577836860]
    assert got.iloc[7:].isna().all()


def test_order_ids() -> None:
    assert order_ids(["10", "9", "-1", "2"]) == ["-1", "2", "9", "10"]
    assert order_ids(["u2", "u10", "u1", "3"]) == ["3", "u1", "u10", "u2"]


def test_k_core_by_hand() -> None:
    # item 3 has one interaction -> dropped; then user c has one -> dropped (second round)
    df = pd.DataFrame({"user": ["a", "a", "b", "b", "c", "c"], "item": ["1", "2", "1", "2", "1", "3"]})
    out = apply_k_core(df, 2)
    assert sorted(zip(out["user"], out["item"])) == [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2")]
    assert apply_k_core(df, None) is df and len(apply_k_core(df, 1)) == 6


# ------------------------------------------------------------------------------- corruption
@pytest.mark.parametrize("column,bad", [
    ("item", "1.5"), ("item", "1e3"), ("item", ""), ("user", "   "), ("user", "nan"),
    ("item", "99999999999999999999"), ("user", "-inf"),
])
def test_ids_that_cannot_be_ids_fail(column: str, bad: str) -> None:
    rows = [list(r) for r in BASE]
    rows[2][0 if column == "user" else 1] = bad  # source line 4
    error = failing(inter([tuple(r) for r in rows]))
    failure = the_failure(error, column)
    assert failure["kind"] == "corruption"
    assert failure["expectation"] == "expect_column_values_to_not_be_null"
    assert failure["unexpected_count"] == 1
    assert failure["examples"] == [f"row 4: {column}={bad!r}"]
    text = str(error)
    assert f"column '{column}'" in text and f"row 4: {column}={bad!r}" in text
    assert "interactions" in text and FILES["interactions"] in text


@pytest.mark.parametrize("bad", ["abc", "nan", "inf", "-inf", ""])
def test_bad_rating_fails(bad: str) -> None:
    rows = [("1", "10", "4"), ("2", "10", bad), ("2", "11", "3")]
    error = failing(inter(rows, ("user", "item", "rating")))
    failure = the_failure(error, "rating")
    assert failure["expectation"] == "expect_column_values_to_not_be_null"
    assert failure["examples"] == [f"row 3: rating={bad!r}"]
    assert "not finite numbers" in failure["message"]
    assert f"row 3: rating={bad!r}" in str(error)


@pytest.mark.parametrize("bad", ["yesterday", "2020-13-45", "1.5", "nan"])
def test_bad_timestamp_fails(bad: str) -> None:
    rows = [("1", "10", "100"), ("2", "10", "2020-01-01"), ("2", "11", bad)]
    error = failing(inter(rows, ("user", "item", "timestamp")))
    failure = the_failure(error, "timestamp")
    assert failure["examples"] == [f"row 4: timestamp={bad!r}"]
    assert "row 4" in str(error)


def test_missing_column_is_reported_and_other_checks_still_run() -> None:
    df = inter([("1", "10"), ("1.5", "11"), ("2", "12")]).drop(columns=["item"])
    error = failing(df)
    missing = the_failure(error, "item")
    assert missing["expectation"] == "expect_column_to_exist"
    assert "missing" in missing["message"]
    assert the_failure(error, "user")["examples"] == ["row 3: user='1.5'"]
    assert "expect_column_to_exist" in str(error) and "column 'item'" in str(error)


def test_empty_table_fails() -> None:
    error = failing(inter([]))
    assert any(f["expectation"] == "expect_table_row_count_to_be_between" for f in error.failures)
    assert "no rows" in str(error)


def test_one_user_fails() -> None:
    error = failing(inter([("1", "10"), ("1", "11")]))
    failure = the_failure(error, "user")
    assert failure["expectation"] == "expect_column_unique_value_count_to_be_between"
    assert "1 distinct" in failure["message"]


def test_bad_social_ids_and_noise_fail() -> None:
    social = table(["src", "dst", "noise"], [("1", "2", "0"), ("2", "1.5", "1"), ("1", "3", "yes")])
    error = failing(inter(BASE), social=social)
    assert the_failure(error, "dst", "social")["examples"] == ["row 3: dst='1.5'"]
    assert the_failure(error, "noise", "social")["examples"] == ["row 4: noise='yes'"]
    assert FILES["social"] in str(error)


def test_max_examples_limits_examples() -> None:
    rows = [("1", "10")] + [("2", f"{i}.5") for i in range(10)]
    error = failing(inter(rows), max_examples=3)
    failure = the_failure(error, "item")
    assert failure["unexpected_count"] == 10
    assert failure["examples"] == ["row 3: item='0.5'", "row 4: item='1.5'", "row 5: item='2.5'"]


# ------------------------------------------------------------------------- anomalies, repairs
def test_valid_data_passes_with_full_report() -> None:
    result = validate(inter(BASE))
    report = result.report
    assert report["success"] is True and report["failures"] == []
    assert report["tables"]["social"] is None and report["tables"]["items"] is None
    checks = report["tables"]["interactions"]["checks"]
    assert report["tables"]["interactions"]["rows"] == 4
    assert all(set(c) == {"expectation", "column", "kind", "success", "unexpected_count", "examples",
                          "message"} for c in checks)
    assert all(c["success"] for c in checks)
    json.dumps(report, allow_nan=False)


def test_duplicates_merged_keeping_latest_timestamp() -> None:
    rows = [("1", "10", "5", "300"), ("1", "10", "1", "900"), ("1", "10", "2", "100"),
            ("2", "10", "3", "1"), ("2", "11", "4", "7"), ("2", "11", "5", "7")]
    result = validate(inter(rows, ("user", "item", "rating", "timestamp")))
    assert result.report["repairs"]["duplicate_interactions_merged"] == 3
    check = [c for c in result.report["tables"]["interactions"]["checks"] if c["column"] == "user,item"][0]
    assert check["kind"] == "anomaly" and check["success"] is False and check["unexpected_count"] == 5
    assert check["examples"][0] == "row 2: user='1', item='10'"
    df = result.interactions
    assert df[["user", "item", "rating"]].values.tolist() == [
        ["1", "10", 1.0], ["2", "10", 3.0], ["2", "11", 5.0]]
    assert df["row"].tolist() == [3, 5, 7]  # equal timestamps: the last row wins


def test_duplicates_without_timestamps_keep_last_row() -> None:
    rows = [("1", "10", "5"), ("2", "10", "3"), ("1", "10", "1")]
    result = validate(inter(rows, ("user", "item", "rating")))
    assert result.report["repairs"]["duplicate_interactions_merged"] == 1
    kept = result.interactions[["user", "item", "rating"]].values.tolist()
    assert kept == [["2", "10", 3.0], ["1", "10", 1.0]]


SOCIAL_ROWS = [("1", "2", "0"), ("1", "1", "1"), ("1", "2", "1"), ("2", "9", "0"), ("3", "1", "1"),
               ("2", "3", "0")]


def test_social_repairs_are_counted() -> None:
    result = validate(inter(BASE), social=table(["src", "dst", "noise"], SOCIAL_ROWS))
    repairs = result.report["repairs"]
    assert repairs == {"duplicate_interactions_merged": 0, "social_self_loops_dropped": 1,
                       "social_duplicates_dropped": 1, "social_unknown_users_dropped": 1,
                       "user_features_duplicates_dropped": 0, "user_features_unknown_users_dropped": 0,
                       "user_features_values_filled": 0, "users_without_features_filled": 0}
    soc = result.social
    assert list(zip(soc["src"], soc["dst"], soc["noise"])) == [("1", "2", False), ("3", "1", True),
                                                               ("2", "3", False)]
    assert result.report["success"] is True
    social_checks = result.report["tables"]["social"]["checks"]
    failed = {c["column"] for c in social_checks if not c["success"]}
    assert failed == {"src,dst", "dst"}
    assert all(c["kind"] == "anomaly" for c in social_checks if not c["success"])


@pytest.mark.parametrize("case", ["duplicate_pair", "self_loop", "duplicate_tie", "unknown_user"])
def test_strict_turns_each_anomaly_into_a_failure(case: str) -> None:
    rows = list(BASE)
    social_rows = [("1", "2"), ("2", "3")]
    if case == "duplicate_pair":
        rows.append(("1", "10"))
    elif case == "self_loop":
        social_rows.append(("3", "3"))
    elif case == "duplicate_tie":
        social_rows.append(("1", "2"))
    else:
        social_rows.append(("1", "77"))
    social = table(["src", "dst"], social_rows)
    validate(inter(rows), social=social, strict=False)  # repaired by default
    with pytest.raises(DataValidationError) as info:
        validate(inter(rows), social=social, strict=True)
    assert len(info.value.failures) >= 1
    assert all(f["kind"] == "anomaly" for f in info.value.failures)
    assert info.value.report["strict"] is True and info.value.report["success"] is False
    # the clean version passes under strict
    validate(inter(BASE), social=table(["src", "dst"], [("1", "2"), ("2", "3")]), strict=True)


# ------------------------------------------------------------------------ filters, indexing
def test_string_ids_mapped_contiguously_and_sorted() -> None:
    rows = [("u2", "b"), ("u10", "a"), ("u1", "c"), ("u2", "a")]
    ds = build_dataset(validate(inter(rows)))
    assert ds.users["raw_id"].tolist() == ["u1", "u10", "u2"]
    assert ds.users["user_id"].tolist() == [0, 1, 2]
    assert ds.items["raw_id"].tolist() == ["a", "b", "c"]
    assert ds.interactions[["user_id", "item_id"]].values.tolist() == [[2, 1], [1, 0], [0, 2], [2, 0]]


def test_integer_ids_sorted_numerically_and_canonicalised() -> None:
    rows = [("10", "100"), ("9", "20"), ("007", "3"), ("10", "20")]
    ds = build_dataset(validate(inter(rows)))
    assert ds.users["raw_id"].tolist() == ["7", "9", "10"]
    assert ds.items["raw_id"].tolist() == ["3", "20", "100"]
    assert ds.interactions[["user_id", "item_id"]].values.tolist() == [[2, 2], [1, 1], [0, 0], [2, 1]]


def test_canonical_dtypes_weights_and_names() -> None:
    rows = [("1", "10", "4.5", "2020-01-01"), ("2", "10", "3", "1577836810"), ("2", "11", "1", "7")]
    items = table(["item", "name"], [("10", "Ten"), ("99", "unused"), ("10", "dup name")])
    social = table(["src", "dst", "noise"], [("1", "2", "1"), ("2", "1", "0")])
    ds = build_dataset(validate(inter(rows, ("user", "item", "rating", "timestamp")), social=social,
                                items=items))
    assert dict(ds.interactions.dtypes.astype(str)) == {"user_id": "int64", "item_id": "int64",
                                                        "weight": "float32", "timestamp": "Int64"}
    assert dict(ds.social.dtypes.astype(str)) == {"src": "int64", "dst": "int64", "weight": "float32",
                                                  "noise": "bool"}
    assert dict(ds.users.dtypes.astype(str)) == {"user_id": "int64", "raw_id": "str"}
    assert dict(ds.items.dtypes.astype(str)) == {"item_id": "int64", "raw_id": "str", "name": "str"}
    assert ds.interactions["weight"].tolist() == [4.5, 3.0, 1.0]
    assert ds.interactions["timestamp"].tolist() == [1577836800, 1577836810, 7]
    assert ds.items["name"].iloc[0] == "Ten" and pd.isna(ds.items["name"].iloc[1])
    assert ds.social["noise"].tolist() == [True, False]
    stats = ds.report["stats"]
    assert stats == {"users": 2, "items": 2, "interactions": 3, "social_ties": 2, "has_timestamps": True,
                     "has_item_names": True, "has_social": True, "user_features": []}


def test_no_ratings_no_timestamps_defaults() -> None:
    ds = build_dataset(validate(inter(BASE)))
    assert ds.interactions["weight"].tolist() == [1.0] * 4
    assert str(ds.interactions["timestamp"].dtype) == "Int64"
    assert ds.interactions["timestamp"].isna().all()
    assert list(ds.social.columns) == ["src", "dst", "weight"] and len(ds.social) == 0
    assert ds.items["name"].isna().all()
    assert ds.report["stats"]["has_timestamps"] is False
    assert ds.report["stats"]["has_item_names"] is False and ds.report["stats"]["has_social"] is False


def test_min_rating_filter() -> None:
    rows = [("1", "10", "4"), ("1", "11", "2"), ("2", "10", "5"), ("2", "12", "3.5"), ("3", "11", "1")]
    ds = build_dataset(validate(inter(rows, ("user", "item", "rating"))), min_rating=3.5)
    assert ds.report["filters"] == {"min_rating_dropped": 2, "k_core_dropped_interactions": 0}
    assert ds.users["raw_id"].tolist() == ["1", "2"] and ds.items["raw_id"].tolist() == ["10", "12"]
    assert ds.interactions["weight"].tolist() == [4.0, 5.0, 3.5]


def test_min_rating_without_ratings_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match="data.min_rating"):
        build_dataset(validate(inter(BASE)), min_rating=3.0)


def test_k_core_in_dataset_and_dangling_ties_after_filtering() -> None:
    rows = [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"), ("c", "1"), ("c", "3")]
    social = table(["src", "dst"], [("a", "b"), ("a", "c"), ("b", "a")])
    ds = build_dataset(validate(inter(rows), social=social), k_core=2)
    assert ds.report["filters"]["k_core_dropped_interactions"] == 2
    assert ds.users["raw_id"].tolist() == ["a", "b"] and ds.items["raw_id"].tolist() == ["1", "2"]
    assert len(ds.interactions) == 4
    assert ds.social[["src", "dst"]].values.tolist() == [[0, 1], [1, 0]]
    assert ds.report["repairs"]["social_unknown_users_dropped"] == 1  # a->c: c filtered out


def test_filters_leaving_too_few_users_fail_clearly() -> None:
    rows = [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"), ("c", "1"), ("c", "3")]
    with pytest.raises(DataValidationError) as info:
        build_dataset(validate(inter(rows)), k_core=3)
    text = str(info.value)
    assert "data.k_core" in text and "0 user(s) remain" in text
    assert info.value.report["success"] is False


# --------------------------------------------------------------------------------- the stage
def write_ingest(root: Path, interactions: pd.DataFrame, social: Optional[pd.DataFrame] = None,
                 items: Optional[pd.DataFrame] = None) -> Paths:
    paths = Paths(root)
    entries = {}
    for name, df, empty in [("interactions", interactions, None), ("social", social, no_social()),
                            ("items", items, no_items())]:
        write_parquet(paths.ingest / f"{name}.parquet", df if df is not None else empty)
        entries[name] = {"file": FILES[name], "rows": len(df)} if df is not None else None
    write_json(paths.ingest / "manifest.json", {"source": "csv", "path": "/data", "tables": entries})
    return paths


def with_params(**data: Any) -> Params:
    p = Params()
    return p.model_copy(update={"data": p.data.model_copy(update=data)})


def test_stage_writes_canonical_files_deterministically(tmp_path: Path) -> None:
    from gnnrec.stages import validate as stage

    rows = [("u1", "i1", "4", "2020-01-02"), ("u2", "i1", "5", "100"), ("u2", "i2", "3", "200"),
            ("u2", "i2", "1", "300")]
    paths = write_ingest(tmp_path, inter(rows, ("user", "item", "rating", "timestamp")),
                         social=table(["src", "dst"], [("u1", "u2"), ("u1", "u1"), ("u3", "u1")]),
                         items=table(["item", "name"], [("i1", "One")]))
    summary = stage.run(Params(), paths)
    assert summary["users"] == 2 and summary["items"] == 2 and summary["interactions"] == 3
    assert summary["repairs"]["duplicate_interactions_merged"] == 1
    assert summary["repairs"]["social_self_loops_dropped"] == 1
    assert summary["repairs"]["social_unknown_users_dropped"] == 1
    json.dumps(summary)
    expected = {
        "interactions": {"user_id": "int64", "item_id": "int64", "weight": "float32", "timestamp": "Int64"},
        "social": {"src": "int64", "dst": "int64", "weight": "float32"},
        "users": {"user_id": "int64", "raw_id": "str"},
        "items": {"item_id": "int64", "raw_id": "str", "name": "str"},
    }
    first = {}
    for name, dtypes in expected.items():
        path = paths.dataset / f"{name}.parquet"
        assert dict(pd.read_parquet(path).dtypes.astype(str)) == dtypes
        first[name] = path.read_bytes()
    report = json.loads(paths.validation_report.read_text())
    assert paths.validation_log.read_text() == paths.validation_report.read_text()
    assert set(report) == {"success", "strict", "tables", "repairs", "filters", "stats", "failures", "warnings"}
    assert report["success"] is True and report["tables"]["social"]["file"] == FILES["social"]
    assert report["stats"]["social_ties"] == 1
    report_text = paths.validation_report.read_text()
    stage.run(Params(), paths)  # same input -> identical outputs
    for name in expected:
        assert (paths.dataset / f"{name}.parquet").read_bytes() == first[name]
    assert paths.validation_report.read_text() == report_text


def test_stage_failure_still_writes_the_log(tmp_path: Path) -> None:
    from gnnrec.stages import validate as stage

    paths = write_ingest(tmp_path, inter([("1", "10"), ("2", "1.5"), ("2", "11")]))
    with pytest.raises(DataValidationError) as info:
        stage.run(Params(), paths)
    assert info.value.report_path == str(paths.validation_log)
    assert str(paths.validation_log) in str(info.value)
    log = json.loads(paths.validation_log.read_text())
    assert log["success"] is False and log["tables"]["social"] is None
    assert log["failures"][0]["column"] == "item" and log["failures"][0]["table"] == "interactions"
    assert log["failures"][0]["examples"] == ["row 3: item='1.5'"]
    assert not (paths.dataset / "interactions.parquet").exists()


def test_stage_strict_failure_and_filter_failure_write_the_log(tmp_path: Path) -> None:
    from gnnrec.stages import validate as stage

    paths = write_ingest(tmp_path, inter([("1", "10"), ("1", "10"), ("2", "11")]))
    strict = Params().model_copy(update={"validate_": Params().validate.model_copy(update={"strict": True})})
    with pytest.raises(DataValidationError):
        stage.run(strict, paths)
    assert json.loads(paths.validation_log.read_text())["failures"][0]["kind"] == "anomaly"
    paths.validation_log.unlink()
    with pytest.raises(DataValidationError, match="data.k_core"):
        stage.run(with_params(k_core=5), paths)
    assert json.loads(paths.validation_log.read_text())["success"] is False


def test_stage_min_rating_without_ratings(tmp_path: Path) -> None:
    from gnnrec.stages import validate as stage

    paths = write_ingest(tmp_path, inter(BASE))
    with pytest.raises(ParamsError, match="data.min_rating"):
        stage.run(with_params(min_rating=3.0), paths)


# ------------------------------------------------------------------------------ regressions
LONG_DIGITS = "1" * 5000  # beyond Python's int-str conversion limit (4,300 digits)


def test_an_all_digit_id_beyond_the_int_str_digit_limit_is_an_id_outside_int64() -> None:
    """Defect: an all-digit id longer than 4,300 characters crashed ``_normalise_id`` with Python's
    integer-conversion ``ValueError``; it is an integer outside int64, so it cannot be an id, like any
    other; leading zeros still do not count ("0...07" is "7")."""
    got = normalise_ids(pd.Series([LONG_DIGITS, "-" + LONG_DIGITS, "0" * 5000 + "7", "+" + "0" * 4400],
                                  dtype="str")).tolist()
    assert [None if pd.isna(v) else v for v in got] == [None, None, "7", "0"]


def test_an_all_digit_id_beyond_the_int_str_digit_limit_fails_validation_naming_file_row_and_column() -> None:
    """Defect: the same id crashed validation with a traceback; it is now a validation failure naming the
    file, row and column, what was expected, and the value shortened."""
    rows = [list(r) for r in BASE]
    rows[2][0] = LONG_DIGITS  # source line 4
    error = failing(inter([tuple(r) for r in rows]))
    failure = the_failure(error, "user")
    assert failure["unexpected_count"] == 1 and "outside int64" in failure["message"]
    assert failure["examples"] == [f"row 4: user={'1' * 40!r}... (5000 characters)"]
    text = str(error)
    assert FILES["interactions"] in text and "column 'user'" in text and "row 4: user=" in text
    assert len(text) < 2000


HEADERS = {"interactions": {"user": "user_id", "item": "item_id", "rating": "stars"},
           "social": {"src": "truster", "dst": "trustee"}, "items": {"item": "movie", "name": "title"}}


def test_messages_name_columns_by_the_source_header_not_the_internal_name() -> None:
    """Defect: messages said ``column 'user'`` where the user's file has ``user_id``; with the ingest
    manifest's column names they use the file's header, in the column, the message and the examples."""
    rows = [("1", "10", "4"), ("2", "1.5", "5"), ("2", "11", "x"), ("2", "11", "3")]
    with pytest.raises(DataValidationError) as info:
        validate_tables(inter(rows, ("user", "item", "rating")), no_social(), no_items(), strict=True,
                        max_examples=5, files=FILES, columns=HEADERS)
    error = info.value
    by_column = {f["column"]: f for f in error.failures}
    assert set(by_column) == {"item_id", "stars", "user_id,item_id"}
    assert by_column["item_id"]["examples"] == ["row 3: item_id='1.5'"]
    assert by_column["stars"]["examples"] == ["row 4: stars='x'"]
    assert "(user_id, item_id) pair" in by_column["user_id,item_id"]["message"]
    text = str(error)
    assert "column 'item_id'" in text and "column 'item'" not in text and "row 4: stars='x'" in text


def test_social_and_missing_column_messages_use_the_source_header() -> None:
    social = table(["src", "dst"], [("1", "1"), ("1", "2")])
    with pytest.raises(DataValidationError) as info:
        validate_tables(inter(BASE), social, table(["item"], [("10",)]), strict=True, max_examples=5,
                        files=FILES, columns=HEADERS)
    failures = {(f["table"], f["column"]): f for f in info.value.failures}
    loops = failures[("social", "truster,trustee")]
    assert "(truster == trustee)" in loops["message"] and loops["examples"] == ["row 2: truster='1', trustee='1'"]
    missing = failures[("items", "title")]
    assert "required column 'title' (name) is missing" in missing["message"]
    assert "columns present: movie, row" in missing["message"]


def test_ties_whose_ids_match_no_interaction_id_give_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Defect: when no social id matched an interaction id (``u7`` against ``7``) every tie was dropped
    and only counted; the report's ``warnings`` and a ``gnnrec`` logger warning now say so, naming both
    files with an example id of each."""
    social = table(["src", "dst"], [("u1", "u2"), ("u2", "u3")])
    with caplog.at_level("WARNING", logger="gnnrec"):
        result = validate(inter(BASE), social=social)
    assert result.report["repairs"]["social_unknown_users_dropped"] == 2
    [warning] = result.report["warnings"]
    assert FILES["social"] in warning and FILES["interactions"] in warning
    assert "no id of the social file" in warning and "matches a user id" in warning
    assert "src='u1' (row 2)" in warning and "user='1' (row 2)" in warning
    assert [r.getMessage() for r in caplog.records if r.name.startswith("gnnrec")] == [warning]


def test_no_warning_when_some_social_ids_match() -> None:
    social = table(["src", "dst"], [("1", "2"), ("u2", "u3")])
    result = validate(inter(BASE), social=social)
    assert result.report["warnings"] == []
    assert result.report["repairs"]["social_unknown_users_dropped"] == 1


def test_stage_report_uses_the_header_names_from_the_ingest_manifest(tmp_path: Path) -> None:
    from gnnrec.stages import validate as stage

    paths = write_ingest(tmp_path, inter([("1", "10"), ("2", "1.5"), ("2", "11")]))
    manifest = json.loads((paths.ingest / "manifest.json").read_text())
    manifest["tables"]["interactions"]["columns"] = {"user": "uid", "item": "iid"}
    write_json(paths.ingest / "manifest.json", manifest)
    with pytest.raises(DataValidationError, match="column 'iid'"):
        stage.run(Params(), paths)
    log = json.loads(paths.validation_log.read_text())
    assert log["failures"][0]["column"] == "iid" and log["failures"][0]["examples"] == ["row 3: iid='1.5'"]


def _cli(root: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    """``python -m gnnrec.cli <args> --root <root>`` in a subprocess (a fresh logging setup)."""
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "gnnrec.cli", *args, "--root", str(root)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_validate_prints_no_great_expectations_info_lines_and_exits_2_on_a_huge_digit_id(tmp_path: Path) -> None:
    """Defects: ``gnnrec stage validate`` printed ~200 INFO lines of Great Expectations registration noise
    (the CLI set the root logger to INFO), and a >4,300-digit id exited 1 with a traceback. Now only gnnrec's
    logger is at INFO, and the id is a validation failure: exit status 2, file, row and column named."""
    from gnnrec.stages import run_stage

    data = tmp_path / "data"
    data.mkdir()
    pairs = [(u, i) for u in range(1, 5) for i in range(1, 4)]
    (data / "ratings.csv").write_text("uid,iid\n" + "".join(f"{u},{i}\n" for u, i in pairs))
    (tmp_path / "params.yaml").write_text(
        f"data:\n  source: csv\n  path: {data}\n  tabular:\n    interactions: ratings.csv\n"
        "    columns: {user: uid, item: iid}\n")
    run_stage("ingest", root=tmp_path)
    good = _cli(tmp_path, "stage", "validate")
    assert good.returncode == 0, good.stderr
    assert "'users': 4" in good.stdout
    assert "great_expectations" not in good.stdout + good.stderr

    (data / "ratings.csv").write_text("uid,iid\n" + "".join(f"{u},{i}\n" for u, i in pairs) + f"{LONG_DIGITS},1\n")
    run_stage("ingest", root=tmp_path)
    bad = _cli(tmp_path, "stage", "validate")
    output = bad.stdout + bad.stderr
    assert bad.returncode == 2, output
    assert "Traceback" not in output and "great_expectations" not in output
    assert str(data / "ratings.csv") in output and "column 'uid'" in output
    assert f"row {len(pairs) + 2}: uid='{'1' * 40}'... (5000 characters)" in output
    assert "outside int64" in output

"""User side features (the ``users`` table) through ingest, validation and the canonical dataset; the
synthetic social table's ``kind`` column through validation."""

from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gnnrec.config import Params, params_from_dict  # noqa: E402
from gnnrec.constants import TABLES  # noqa: E402
from gnnrec.datasets import RawTables, load_source  # noqa: E402
from gnnrec.datasets.build import build_dataset  # noqa: E402
from gnnrec.datasets.movielens import AGE_BANDS, age_band  # noqa: E402
from gnnrec.errors import DataError, DataValidationError, ParamsError  # noqa: E402
from gnnrec.io import write_json, write_parquet  # noqa: E402
from gnnrec.paths import Paths  # noqa: E402
from gnnrec.stages import ingest  # noqa: E402
from gnnrec.stages import validate as validate_stage  # noqa: E402
from gnnrec.validation import validate_tables  # noqa: E402

GENRES = "|".join(["0"] * 19)
FILES = {"interactions": "/data/ratings.csv", "social": "/data/trust.csv", "items": None,
         "users": "/data/users.csv"}


# ------------------------------------------------------------------------------------ helpers
def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def make_params(source: str, path: Path | str, **tabular: Any):
    data: dict[str, Any] = {"source": source, "path": str(path)}
    if tabular:
        data["tabular"] = tabular
    return params_from_dict({"data": data})


def table(columns: list[str], rows: list[tuple], first_row: int = 2) -> pd.DataFrame:
    """An ingest-style table: every value text (``str``, missing where None), plus the source line number."""
    df = pd.DataFrame(rows, columns=columns, dtype=object)
    df = df.astype({c: "str" for c in columns})
    df["row"] = np.arange(first_row, first_row + len(df), dtype=np.int64)
    return df


INTER = [("1", "10"), ("1", "11"), ("2", "10"), ("2", "12"), ("3", "11"), ("3", "12")]


def inter(rows: list[tuple] = INTER) -> pd.DataFrame:
    return table(["user", "item"], rows)


def users(rows: list[tuple], features: tuple[str, ...] = ("age", "gender")) -> pd.DataFrame:
    return table(["user", *features], rows)


def validate(users_table: Optional[pd.DataFrame], interactions: Optional[pd.DataFrame] = None, *,
             strict: bool = False, social: Optional[pd.DataFrame] = None,
             columns: Optional[dict] = None, max_examples: int = 5):
    files = {**FILES, "users": FILES["users"] if users_table is not None else None,
             "social": FILES["social"] if social is not None else None}
    return validate_tables(interactions if interactions is not None else inter(), social, None, strict=strict,
                           max_examples=max_examples, files=files, columns=columns, users=users_table)


def failing(users_table: pd.DataFrame, **kwargs: Any) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        validate(users_table, **kwargs)
    return info.value


def the_failure(error: DataValidationError, column: str, table_name: str = "users") -> dict:
    matches = [f for f in error.failures if f["column"] == column and f["table"] == table_name]
    assert matches, f"no failure on {table_name}.{column}: {error.failures}"
    return matches[0]


def check(report: dict, key_part: str, column: str, table_name: str = "users") -> dict:
    entries = [c for c in report["tables"][table_name]["checks"] if c["column"] == column and key_part in c["message"]]
    assert len(entries) == 1, report["tables"][table_name]["checks"]
    return entries[0]


# -------------------------------------------------------------------------------- the table
def test_tables_include_users_and_raw_tables_default_to_an_empty_users_table(tmp_path: Path) -> None:
    assert TABLES == ("interactions", "social", "items", "users")
    raw = RawTables(source="csv", path=tmp_path, interactions=inter(), social=table(["src", "dst"], []),
                    items=table(["item", "name"], []))
    assert list(raw.users.columns) == ["user", "row"] and len(raw.users) == 0
    assert raw.users["user"].dtype == "str" and raw.users["row"].dtype == np.int64
    assert raw.table("users") is raw.users
    assert raw.rows() == {"interactions": 6, "social": 0, "items": 0, "users": 0}


# ---------------------------------------------------------------------------------- movielens
@pytest.fixture
def movielens_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ml"
    write(folder / "u.data", "1\t242\t3\t881250949\n2\t302\t3\t891717742\n3\t242\t1\t878887116\n"
                             "3\t302\t4\t878887117\n4\t242\t5\t878887118\n")
    write(folder / "u.item", f"242|Kolya (1996)|24-Jan-1997||http://x|{GENRES}\n"
                             f"302|L.A. Confidential (1997)|01-Jan-1997||http://y|{GENRES}\n")
    write(folder / "u.user", "1|24|M|technician|85711\n2|17|F|other|94043\n3|56|M|writer|32067\n"
                             "4|x|F|educator|15213\n9|33|F|none|00000\n")
    return folder


def test_age_bands_follow_movielens_1m() -> None:
    ages = pd.Series(["1", "17", "18", "24", "25", "34", "35", "44", "45", "49", "50", "55", "56", "73", " 30 ",
                      "", "x", "1.5", "-3", None], dtype="str")
    got = age_band(ages)
    assert got.dtype == "str"
    assert got.tolist()[:15] == ["under 18", "under 18", "18-24", "18-24", "25-34", "25-34", "35-44", "35-44",
                                 "45-49", "45-49", "50-55", "50-55", "56+", "56+", "25-34"]
    assert got.iloc[15:].isna().all()
    assert [label for _, label in AGE_BANDS] == ["under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"]


def test_movielens_reads_u_user_as_age_band_gender_occupation(movielens_dir: Path) -> None:
    tables = load_source(make_params("movielens-100k", movielens_dir))
    u = tables.users
    assert list(u.columns) == ["user", "age_band", "gender", "occupation", "row"]
    assert u.drop(columns="row").values.tolist()[:3] == [["1", "18-24", "M", "technician"],
                                                        ["2", "under 18", "F", "other"],
                                                        ["3", "56+", "M", "writer"]]
    assert pd.isna(u["age_band"].iloc[3])   # "x" is not an age: no band (validation fills "unknown")
    assert u["row"].tolist() == [1, 2, 3, 4, 5]
    assert all(u[c].dtype == "str" for c in ("user", "age_band", "gender", "occupation"))
    assert tables.files["users"] == movielens_dir / "u.user"
    assert tables.columns["users"] == {"user": "user_id", "age_band": "age", "gender": "gender",
                                       "occupation": "occupation"}


def test_movielens_without_u_user_has_no_features(movielens_dir: Path) -> None:
    (movielens_dir / "u.user").unlink()
    tables = load_source(make_params("movielens-100k", movielens_dir))
    assert list(tables.users.columns) == ["user", "row"] and len(tables.users) == 0
    assert tables.files["users"] is None and "users" not in tables.columns


def test_movielens_bad_u_user_line_names_the_file_and_row(movielens_dir: Path) -> None:
    write(movielens_dir / "u.user", "1|24|M|technician|85711\n2|17|F|other\n")
    with pytest.raises(DataError) as info:
        load_source(make_params("movielens-100k", movielens_dir))
    assert "u.user" in str(info.value) and info.value.row == 2 and "expected 5 fields" in str(info.value)


def test_movielens_users_end_to_end_through_ingest_and_validate(movielens_dir: Path, tmp_path: Path) -> None:
    paths = Paths(tmp_path / "project")
    params = make_params("movielens-100k", movielens_dir)
    ingest.run(params, paths)
    manifest = json.loads((paths.ingest / "manifest.json").read_text())
    assert manifest["tables"]["users"] == {"file": str((movielens_dir / "u.user").resolve()), "rows": 5,
                                           "columns": {"user": "user_id", "age_band": "age", "gender": "gender",
                                                       "occupation": "occupation"}}
    assert pd.read_parquet(paths.ingest / "users.parquet")["age_band"].dtype == "str"
    summary = validate_stage.run(params, paths)
    assert summary["user_features"] == ["age_band", "gender", "occupation"]
    assert summary["repairs"]["user_features_unknown_users_dropped"] == 1   # user 9 rated nothing
    assert summary["repairs"]["user_features_values_filled"] == 1           # user 4's age "x"
    out = pd.read_parquet(paths.dataset / "users.parquet")
    assert list(out.columns) == ["user_id", "raw_id", "age_band", "gender", "occupation"]
    assert out.values.tolist() == [[0, "1", "18-24", "M", "technician"], [1, "2", "under 18", "F", "other"],
                                   [2, "3", "56+", "M", "writer"], [3, "4", "unknown", "F", "educator"]]
    report = json.loads(paths.validation_report.read_text())
    assert report["tables"]["users"]["filled"] == {"age_band": 1, "gender": 0, "occupation": 0}
    assert report["stats"]["user_features"] == ["age_band", "gender", "occupation"]
    age = check(report, "empty", "age")   # messages name the file's field: age
    assert age["unexpected_count"] == 1 and age["examples"] == ["row 4: user_id='4', age=null"]


# ------------------------------------------------------------------------------- csv / parquet
def csv_dir(tmp_path: Path, users_csv: str) -> Path:
    write(tmp_path / "interactions.csv", "user_id,item_id\n1,10\n2,10\n2,11\n")
    write(tmp_path / "users.csv", users_csv)
    return tmp_path


def test_csv_users_with_every_other_column_as_a_feature(tmp_path: Path) -> None:
    folder = csv_dir(tmp_path, "country,user_id,plan\nFR,1,free\n,2,\"pro, yearly\"\n")
    tables = load_source(make_params("csv", folder, users="users.csv"))
    assert list(tables.users.columns) == ["user", "country", "plan", "row"]
    assert tables.users.drop(columns="row").values.tolist() == [["1", "FR", "free"], ["2", "", "pro, yearly"]]
    assert tables.users["row"].tolist() == [2, 3]
    assert tables.columns["users"] == {"user": "user_id", "country": "country", "plan": "plan"}
    assert tables.files["users"] == folder / "users.csv"
    assert all(tables.users[c].dtype == "str" for c in ("user", "country", "plan"))


def test_csv_users_with_listed_features_and_another_user_column(tmp_path: Path) -> None:
    folder = csv_dir(tmp_path, "uid,age,plan,zip\n1,30,free,75001\n2,40,pro,13001\n")
    tables = load_source(make_params("csv", folder, users="users.csv",
                                     user_columns={"user": "uid", "features": ["plan", "age"]}))
    assert list(tables.users.columns) == ["user", "plan", "age", "row"]
    assert tables.users["plan"].tolist() == ["free", "pro"]
    assert tables.columns["users"] == {"user": "uid", "plan": "plan", "age": "age"}


def test_csv_without_a_users_file_has_no_features(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id\n1,10\n")
    tables = load_source(make_params("csv", tmp_path))
    assert list(tables.users.columns) == ["user", "row"] and tables.files["users"] is None
    assert "users" not in tables.columns


@pytest.mark.parametrize("content, tabular, column", [
    ("id,age\n1,30\n", {}, "user_id"),                                                  # the user column
    ("user_id,age\n1,30\n", {"user_columns": {"features": ["age", "gender"]}}, "gender"),  # a listed feature
], ids=["user-column", "feature-column"])
def test_csv_users_missing_column_names_the_file_and_column(tmp_path: Path, content: str, tabular: dict,
                                                            column: str) -> None:
    folder = csv_dir(tmp_path, content)
    with pytest.raises(DataError) as info:
        load_source(make_params("csv", folder, users="users.csv", **tabular))
    assert info.value.column == column and "users.csv" in str(info.value) and f"'{column}'" in str(info.value)


def test_csv_users_missing_file_is_named(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id\n1,10\n")
    with pytest.raises(DataError) as info:
        load_source(make_params("csv", tmp_path, users="people.csv"))
    assert "people.csv" in str(info.value) and "missing" in str(info.value)


@pytest.mark.parametrize("header", ["user_id,row\n1,5\n", "user_id,raw_id\n1,5\n", "user_id,\n1,5\n"],
                         ids=["row", "raw_id", "unnamed"])
def test_csv_users_reserved_feature_names_are_refused(tmp_path: Path, header: str) -> None:
    folder = csv_dir(tmp_path, header)
    with pytest.raises(DataError) as info:
        load_source(make_params("csv", folder, users="users.csv"))
    assert "users.csv" in str(info.value) and "cannot be a user feature column" in str(info.value)
    assert "data.tabular.user_columns.features" in str(info.value)


def test_csv_users_header_only_file_gives_no_rows_but_the_features(tmp_path: Path) -> None:
    folder = csv_dir(tmp_path, "user_id,plan\n")
    tables = load_source(make_params("csv", folder, users="users.csv"))
    assert list(tables.users.columns) == ["user", "plan", "row"] and len(tables.users) == 0


@pytest.mark.parametrize("user_columns, key", [
    ({"user": "uid", "features": ["uid"]}, "features"),
    ({"features": ["age", "age"]}, "features"),
    ({"features": ["row"]}, "features"),
    ({"features": "age"}, "features"),
    ({"feature": ["age"]}, "feature"),
])
def test_user_columns_params_are_checked(user_columns: dict, key: str) -> None:
    with pytest.raises(ParamsError) as info:
        params_from_dict({"data": {"tabular": {"users": "u.csv", "user_columns": user_columns}}})
    assert f"data.tabular.user_columns.{key}" in str(info.value)


def test_parquet_users_become_text_and_skip_the_pandas_index(tmp_path: Path) -> None:
    pd.DataFrame({"user_id": ["1", "2"], "item_id": ["10", "11"]}).to_parquet(tmp_path / "i.parquet")
    frame = pd.DataFrame({"user_id": [1, 2, 3], "age": [30, None, 41],
                          "plan": pd.Categorical(["free", None, "pro"])}, index=[7, 8, 9])
    frame.to_parquet(tmp_path / "u.parquet")   # a non-default index: pandas stores it as __index_level_0__
    tables = load_source(make_params("parquet", tmp_path, interactions="i.parquet", users="u.parquet"))
    u = tables.users
    assert list(u.columns) == ["user", "age", "plan", "row"]
    assert u["user"].tolist() == ["1", "2", "3"] and u["age"].iloc[0] == "30" and pd.isna(u["age"].iloc[1])
    assert u["plan"].iloc[2] == "pro" and pd.isna(u["plan"].iloc[1])
    assert all(u[c].dtype == "str" for c in ("user", "age", "plan")) and u["row"].tolist() == [1, 2, 3]


def test_ingest_writes_the_users_table_and_its_manifest_entry(tmp_path: Path) -> None:
    folder = csv_dir(tmp_path / "data", "uid,plan\n1,free\n")
    paths = Paths(tmp_path / "project")
    summary = ingest.run(make_params("csv", folder, users="users.csv", user_columns={"user": "uid"}), paths)
    assert summary["rows"]["users"] == 1
    manifest = json.loads((paths.ingest / "manifest.json").read_text())
    assert manifest["tables"]["users"] == {"file": str((folder / "users.csv").resolve()), "rows": 1,
                                           "columns": {"user": "uid", "plan": "plan"}}
    written = pd.read_parquet(paths.ingest / "users.parquet")
    assert list(written.columns) == ["user", "plan", "row"] and written["plan"].dtype == "str"


def test_ingest_without_users_writes_an_empty_table_and_a_null_entry(tmp_path: Path) -> None:
    write(tmp_path / "data" / "interactions.csv", "user_id,item_id\n1,10\n")
    paths = Paths(tmp_path / "project")
    ingest.run(make_params("csv", tmp_path / "data"), paths)
    assert json.loads((paths.ingest / "manifest.json").read_text())["tables"]["users"] is None
    written = pd.read_parquet(paths.ingest / "users.parquet")
    assert list(written.columns) == ["user", "row"] and len(written) == 0


# --------------------------------------------------------------------------------- validation
def test_valid_users_pass_and_are_clean() -> None:
    result = validate(users([(" 1 ", "30", "M"), ("002", "40", " F "), ("3", "50", "M")]))
    report = result.report
    assert report["success"] is True and report["tables"]["users"]["file"] == FILES["users"]
    assert all(c["success"] for c in report["tables"]["users"]["checks"])
    assert report["tables"]["users"]["filled"] == {"age": 0, "gender": 0}
    assert result.user_features == ["age", "gender"] and report["stats"]["user_features"] == ["age", "gender"]
    assert result.users.drop(columns="row").values.tolist() == [["1", "30", "M"], ["2", "40", "F"], ["3", "50", "M"]]
    assert all(result.users[c].dtype == "str" for c in ("user", "age", "gender"))
    json.dumps(report, allow_nan=False)


def test_without_a_users_table_there_are_no_features() -> None:
    for given in (None, table(["user"], [])):   # no table, or the empty one of a source without the file
        result = validate_tables(inter(), None, None, strict=True, max_examples=5,
                                 files={**FILES, "social": None, "users": None}, users=given)
        assert result.report["tables"]["users"] is None and result.user_features == []
        assert result.report["stats"]["user_features"] == []
        ds = build_dataset(result)
        assert list(ds.users.columns) == ["user_id", "raw_id"] and ds.report["stats"]["user_features"] == []
        assert ds.report["repairs"]["users_without_features_filled"] == 0


def test_users_without_interactions_are_dropped_and_counted() -> None:
    rows = [("1", "30", "M"), ("77", "40", "F"), ("2", "50", "M"), ("u3", "20", "F")]
    result = validate(users(rows))
    assert result.report["repairs"]["user_features_unknown_users_dropped"] == 2
    assert result.users["user"].tolist() == ["1", "2"]
    entry = check(result.report, "without interactions", "user")
    assert entry["kind"] == "anomaly" and entry["unexpected_count"] == 2
    assert entry["examples"] == ["row 3: user='77'", "row 5: user='u3'"]
    error = failing(users(rows), strict=True)
    failure = the_failure(error, "user")
    assert failure["kind"] == "anomaly" and "validate.strict" in failure["message"]
    assert FILES["users"] in str(error) and "row 3: user='77'" in str(error)


def test_duplicate_users_keep_the_first_row_and_are_counted() -> None:
    rows = [("1", "30", "M"), ("2", "40", "F"), ("01", "99", "X"), ("1", "98", "Y")]
    result = validate(users(rows))
    assert result.report["repairs"]["user_features_duplicates_dropped"] == 2
    assert result.users.drop(columns="row").values.tolist() == [["1", "30", "M"], ["2", "40", "F"]]
    assert result.users["row"].tolist() == [2, 3]
    entry = check(result.report, "share their", "user")
    assert entry["unexpected_count"] == 3 and entry["examples"][0] == "row 2: user='1'"
    error = failing(users(rows), strict=True)
    assert "share their user" in the_failure(error, "user")["message"]


def test_missing_feature_values_are_filled_with_unknown_and_counted_per_column() -> None:
    rows = [("1", "", "M"), ("2", "  ", None), ("3", None, "F"), ("77", "", "")]
    result = validate(users(rows))
    assert result.users.drop(columns="row").values.tolist() == [["1", "unknown", "M"], ["2", "unknown", "unknown"],
                                                                ["3", "unknown", "F"]]
    # the dropped user 77 is not filled: counts are of the kept rows
    assert result.report["tables"]["users"]["filled"] == {"age": 3, "gender": 1}
    assert result.report["repairs"]["user_features_values_filled"] == 4
    age = check(result.report, "empty", "age")
    assert age["kind"] == "anomaly" and age["unexpected_count"] == 4 and "'unknown'" in age["message"]
    assert age["examples"][:3] == ["row 2: user='1', age=''", "row 3: user='2', age='  '", "row 4: user='3', age=null"]
    error = failing(users(rows[:3]), strict=True)
    assert {f["column"] for f in error.failures} == {"age", "gender"}
    assert all(f["kind"] == "anomaly" for f in error.failures) and "row 4: user='3', age=null" in str(error)


def test_interaction_users_without_a_features_row_get_unknown_and_are_counted() -> None:
    ds = build_dataset(validate(users([("2", "40", "F")]), strict=True))   # counted, not a strict failure
    assert ds.users.values.tolist() == [[0, "1", "unknown", "unknown"], [1, "2", "40", "F"],
                                        [2, "3", "unknown", "unknown"]]
    assert ds.report["repairs"]["users_without_features_filled"] == 2
    assert ds.report["success"] is True


def test_messages_use_the_users_file_header_names() -> None:
    names = {"users": {"user": "uid", "age": "Age", "gender": "sex"}}
    error = failing(users([("1", "", "M"), ("77", "3", "F")]), strict=True, columns=names)
    assert {f["column"] for f in error.failures} == {"uid", "Age"}
    assert the_failure(error, "Age")["examples"] == ["row 2: uid='1', Age=''"]
    assert "row 3: uid='77'" in str(error) and "column 'Age'" in str(error)


def test_a_missing_user_column_or_manifest_feature_column_fails_validation() -> None:
    names = {"users": {"user": "uid", "age": "age", "gender": "gender", "plan": "plan"}}
    error = failing(users([("1", "30", "M")]), columns=names)
    plan = the_failure(error, "plan")
    assert plan["kind"] == "corruption" and plan["expectation"] == "expect_column_to_exist"
    assert "required column 'plan' is missing" in plan["message"] and FILES["users"] in str(error)
    error = failing(table(["age"], [("30",)]), columns={"users": {"user": "uid"}})
    missing = the_failure(error, "uid")
    assert "required column 'uid' (user) is missing" in missing["message"]


def test_bad_user_ids_in_the_users_file_fail() -> None:
    error = failing(users([("1", "30", "M"), ("1.5", "40", "F")]))
    failure = the_failure(error, "user")
    assert failure["kind"] == "corruption" and failure["examples"] == ["row 3: user='1.5'"]


def test_a_feature_named_like_a_canonical_column_is_refused() -> None:
    with pytest.raises(DataError) as info:
        validate(table(["user", "raw_id"], [("1", "x")]))
    assert FILES["users"] in str(info.value) and "'raw_id'" in str(info.value)


def test_users_whose_ids_match_no_interaction_id_give_a_warning() -> None:
    result = validate(users([("u1", "30", "M"), ("u2", "40", "F")]))
    [warning] = result.report["warnings"]
    assert "no id of the users file" in warning and FILES["users"] in warning and FILES["interactions"] in warning
    assert "user='u1' (row 2)" in warning
    assert validate(users([("1", "30", "M"), ("u2", "40", "F")])).report["warnings"] == []


def test_a_header_only_users_file_gives_unknown_for_everyone() -> None:
    result = validate(users([]))
    assert result.report["success"] is True and result.user_features == ["age", "gender"]
    ds = build_dataset(result)
    assert ds.users["age"].tolist() == ["unknown"] * 3
    assert ds.report["repairs"]["users_without_features_filled"] == 3


# ------------------------------------------------------------------------- canonical dataset
def test_canonical_users_follow_the_filters_and_keep_their_first_columns() -> None:
    rows = [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"), ("c", "1"), ("c", "3")]
    result = validate(table(["user", "plan", "city"], [("c", "pro", "Lyon"), ("b", "free", ""), ("a", "pro", "Nice")]),
                      interactions=inter(rows))
    ds = build_dataset(result, k_core=2)   # c is filtered out
    assert list(ds.users.columns) == ["user_id", "raw_id", "plan", "city"]
    assert dict(ds.users.dtypes.astype(str)) == {"user_id": "int64", "raw_id": "str", "plan": "str", "city": "str"}
    assert ds.users.values.tolist() == [[0, "a", "pro", "Nice"], [1, "b", "free", "unknown"]]
    assert ds.report["stats"]["user_features"] == ["plan", "city"]
    assert ds.report["repairs"]["users_without_features_filled"] == 0


def test_object_dtype_input_gives_str_columns() -> None:
    frame = pd.DataFrame({"user": ["1", "2"], "plan": ["free", None], "row": [2, 3]}, dtype=object)
    frame["row"] = frame["row"].astype("int64")
    ds = build_dataset(validate(frame))
    assert ds.users["plan"].dtype == "str" and ds.users["plan"].tolist() == ["free", "unknown", "unknown"]


def write_ingest(root: Path, users_table: Optional[pd.DataFrame], columns: Optional[dict] = None,
                 social: Optional[pd.DataFrame] = None) -> Paths:
    paths = Paths(root)
    entries: dict[str, Any] = {"interactions": {"file": FILES["interactions"], "rows": 6}, "items": None}
    write_parquet(paths.ingest / "interactions.parquet", inter())
    write_parquet(paths.ingest / "items.parquet", table(["item", "name"], []))
    write_parquet(paths.ingest / "social.parquet", social if social is not None else table(["src", "dst"], []))
    entries["social"] = {"file": FILES["social"], "rows": len(social)} if social is not None else None
    if users_table is not None:
        write_parquet(paths.ingest / "users.parquet", users_table)
        entries["users"] = {"file": FILES["users"], "rows": len(users_table), "columns": columns or {}}
    write_json(paths.ingest / "manifest.json", {"source": "csv", "path": "/data", "tables": entries})
    return paths


def test_stage_writes_users_parquet_and_the_report(tmp_path: Path) -> None:
    paths = write_ingest(tmp_path, users([("1", "30", ""), ("1", "31", "F"), ("9", "1", "M")]),
                         columns={"user": "uid", "age": "age", "gender": "sex"})
    summary = validate_stage.run(Params(), paths)
    assert summary["user_features"] == ["age", "gender"]
    out = pd.read_parquet(paths.dataset / "users.parquet")
    assert dict(out.dtypes.astype(str)) == {"user_id": "int64", "raw_id": "str", "age": "str", "gender": "str"}
    assert out.values.tolist() == [[0, "1", "30", "unknown"], [1, "2", "unknown", "unknown"],
                                   [2, "3", "unknown", "unknown"]]
    report = json.loads(paths.validation_report.read_text())
    assert {k: v for k, v in report["repairs"].items() if k.startswith("user")} == {
        "user_features_duplicates_dropped": 1, "user_features_unknown_users_dropped": 1,
        "user_features_values_filled": 1, "users_without_features_filled": 2}
    assert report["tables"]["users"]["filled"] == {"age": 0, "gender": 1}
    assert report["stats"]["user_features"] == ["age", "gender"]
    assert {c["column"] for c in report["tables"]["users"]["checks"]} >= {"uid", "age", "sex"}


def test_stage_strict_fails_on_user_feature_repairs_and_writes_the_log(tmp_path: Path) -> None:
    paths = write_ingest(tmp_path, users([("1", "30", "")]), columns={"user": "uid", "gender": "sex"})
    strict = Params().model_copy(update={"validate_": Params().validate.model_copy(update={"strict": True})})
    with pytest.raises(DataValidationError) as info:
        validate_stage.run(strict, paths)
    log = json.loads(paths.validation_log.read_text())
    assert [(f["table"], f["column"], f["file"]) for f in log["failures"]] == [("users", "sex", FILES["users"])]
    assert "row 2: uid='1', sex=''" in str(info.value)


def test_stage_reads_an_ingest_without_users_parquet(tmp_path: Path) -> None:
    paths = write_ingest(tmp_path, None)   # written before the users table existed
    validate_stage.run(Params(), paths)
    out = pd.read_parquet(paths.dataset / "users.parquet")
    assert list(out.columns) == ["user_id", "raw_id"]
    report = json.loads(paths.validation_report.read_text())
    assert report["tables"]["users"] is None and report["stats"]["user_features"] == []


# ------------------------------------------------------------------------- social: kind
KIND_ROWS = [("1", "2", "1", "genuine"), ("2", "3", "0", " random "), ("3", "1", "1", "hard"), ("1", "9", "0", "hard")]


def test_social_kind_is_carried_into_the_canonical_social_table() -> None:
    social = table(["src", "dst", "noise", "kind"], KIND_ROWS)
    result = validate(None, social=social)
    assert result.social["kind"].tolist() == ["genuine", "random", "hard"]   # the tie to 9 dropped
    ds = build_dataset(result)
    assert list(ds.social.columns) == ["src", "dst", "weight", "noise", "kind"]
    assert ds.social["kind"].dtype == "str" and ds.social["kind"].tolist() == ["genuine", "random", "hard"]
    assert ds.social["noise"].tolist() == [True, False, True]


def test_social_kind_after_filters_stays_aligned() -> None:
    rows = [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"), ("c", "1"), ("c", "3")]
    social = table(["src", "dst", "kind"], [("a", "c", "random"), ("a", "b", "hard"), ("b", "a", "genuine")])
    ds = build_dataset(validate(None, interactions=inter(rows), social=social), k_core=2)
    assert ds.social[["src", "dst", "kind"]].values.tolist() == [[0, 1, "hard"], [1, 0, "genuine"]]


@pytest.mark.parametrize("bad", ["fake", "", "Genuine", None])
def test_bad_social_kind_fails_naming_the_row(bad: Optional[str]) -> None:
    social = table(["src", "dst", "kind"], [("1", "2", "genuine"), ("2", "1", bad)])
    error = failing(None, social=social)
    failure = the_failure(error, "kind", "social")
    assert failure["kind"] == "corruption"
    assert failure["examples"] == [f"row 3: kind={'null' if bad is None else repr(bad)}"]
    assert "'genuine', 'random', 'hard'" in failure["message"] and FILES["social"] in str(error)


def test_social_without_kind_has_no_kind_column() -> None:
    ds = build_dataset(validate(None, social=table(["src", "dst"], [("1", "2")])))
    assert list(ds.social.columns) == ["src", "dst", "weight"]


# ------------------------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_movielens_100k_users(shared_data_dir: Path) -> None:
    folder = shared_data_dir / "movielens-100k"
    if not folder.is_dir():
        reason = f"real dataset folder {folder} is absent"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: real-data tests must run)")
        pytest.skip(reason)
    u = load_source(make_params("movielens-100k", folder)).users
    assert len(u) == 943 and u["user"].tolist()[:2] == ["1", "2"] and u["row"].iloc[-1] == 943
    assert u.iloc[0].tolist() == ["1", "18-24", "M", "technician", 1]   # 1|24|M|technician|85711
    assert not u.isna().any().any()
    assert set(u["age_band"]) == {label for _, label in AGE_BANDS}
    assert set(u["gender"]) == {"M", "F"} and u["occupation"].nunique() == 21

"""Loaders and the ingest stage: values kept as text, line numbers right, every unreadable file a DataError."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gnnrec.config import params_from_dict
from gnnrec.datasets import load_source
from gnnrec.errors import DataError
from gnnrec.paths import Paths
from gnnrec.stages import ingest

GENRES = "|".join(["0"] * 19)


def make_params(source: str, path: Path | str, **tabular: Any):
    data: dict[str, Any] = {"source": source, "path": str(path)}
    if tabular:
        data["tabular"] = tabular
    return params_from_dict({"data": data})


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def csv_params(folder: Path, **tabular: Any):
    return make_params("csv", folder, **tabular)


def load_error(params) -> DataError:
    with pytest.raises(DataError) as info:
        load_source(params)
    return info.value


# ------------------------------------------------------------------------------------- movielens
@pytest.fixture
def movielens_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ml"
    write(folder / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    write(folder / "u.item", f"242|Kolya (1996)|24-Jan-1997||http://x|{GENRES}\n"
                             f"302|L.A. Confidential (1997)|01-Jan-1997||http://y|{GENRES}\n"
                             f"377|Café \"Noir\" (1995)|01-Jan-1995||http://z|{GENRES}\n", encoding="latin-1")
    return folder


def test_movielens_loader_reads_ratings_and_latin1_titles(movielens_dir: Path) -> None:
    tables = load_source(make_params("movielens-100k", movielens_dir))
    inter = tables.interactions
    assert list(inter.columns) == ["user", "item", "rating", "timestamp", "row"]
    assert inter.iloc[2].tolist() == ["22", "377", "1", "878887116", 3]
    assert inter["row"].tolist() == [1, 2, 3]     # no header: the first line is row 1
    assert tables.items["name"].tolist()[2] == 'Café "Noir" (1995)'
    assert tables.items["item"].tolist() == ["242", "302", "377"]
    assert len(tables.social) == 0 and list(tables.social.columns) == ["src", "dst", "row"]
    assert tables.files["social"] is None
    assert all(inter[c].dtype == "str" for c in ("user", "item", "rating", "timestamp"))
    assert inter["row"].dtype == np.int64


def test_movielens_wrong_field_count_names_the_line(movielens_dir: Path) -> None:
    write(movielens_dir / "u.data", "196\t242\t3\t881250949\n186\t302\t3\n")
    err = load_error(make_params("movielens-100k", movielens_dir))
    assert "u.data" in str(err) and "row 2" in str(err) and "expected 4 fields" in str(err)


# ---------------------------------------------------------------------------------------- lastfm
@pytest.fixture
def lastfm_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "lastfm"
    write(folder / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t7\n")
    write(folder / "user_friends.dat", "userID\tfriendID\n2\t3\n3\t2\n")
    write(folder / "artists.dat", "id\tname\turl\tpictureURL\n51\t\"Weird Al\" Yankovic\thttp://a\thttp://b\n"
                                  "52\tRoyce da 5'9\"\thttp://c\t\n")
    return folder


def test_lastfm_loader_reads_counts_friends_and_names_with_stray_quotes(lastfm_dir: Path) -> None:
    tables = load_source(make_params("lastfm-hetrec", lastfm_dir))
    assert tables.interactions.drop(columns="row").values.tolist() == [["2", "51", "13883"], ["2", "52", "11690"],
                                                                       ["3", "51", "7"]]
    assert "timestamp" not in tables.interactions.columns
    assert tables.interactions["row"].tolist() == [2, 3, 4]   # the header is line 1
    assert tables.social[["src", "dst"]].values.tolist() == [["2", "3"], ["3", "2"]]
    assert tables.items["name"].tolist() == ['"Weird Al" Yankovic', "Royce da 5'9\""]
    assert tables.files["items"] == lastfm_dir / "artists.dat"


def test_lastfm_missing_file_is_named(lastfm_dir: Path) -> None:
    (lastfm_dir / "artists.dat").unlink()
    err = load_error(make_params("lastfm-hetrec", lastfm_dir))
    assert "artists.dat" in str(err) and "missing" in str(err)


# ---------------------------------------------------------------------------------- generic csv
def test_csv_with_string_ids_bom_crlf_quotes_and_reordered_columns(tmp_path: Path) -> None:
    text = ('\ufeffts,extra,item,user\r\n'
            '100,x,"song, the first",alice\r\n'
            '\r\n'
            '200,y,"multi\r\nline title",bob\r\n'
            '300,z,"say ""hi""",carol\r\n')
    write(tmp_path / "interactions.csv", text)
    tables = load_source(csv_params(tmp_path, columns={"user": "user", "item": "item", "timestamp": "ts"}))
    inter = tables.interactions
    assert list(inter.columns) == ["user", "item", "timestamp", "row"]
    assert inter["user"].tolist() == ["alice", "bob", "carol"]
    assert inter["item"].tolist() == ["song, the first", "multi\nline title", 'say "hi"']
    assert inter["timestamp"].tolist() == ["100", "200", "300"]
    assert inter["row"].tolist() == [2, 4, 6]   # a blank line 3; bob's record spans lines 4-5
    assert len(tables.social) == 0 and len(tables.items) == 0


def test_csv_keeps_empty_cells_and_odd_values_as_text(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id,rating\n1,,NA\n2,007,nan\n")
    tables = load_source(csv_params(tmp_path, columns={"user": "user_id", "item": "item_id", "rating": "rating"}))
    assert tables.interactions["item"].tolist() == ["", "007"]
    assert tables.interactions["rating"].tolist() == ["NA", "nan"]
    assert not tables.interactions.isna().any().any()


def test_tab_separated_with_social_and_items_files(tmp_path: Path) -> None:
    write(tmp_path / "ratings.tsv", "u\ti\n1\t10\n2\t11\n")
    write(tmp_path / "trust.tsv", "a\tb\n1\t2\n")
    write(tmp_path / "titles.tsv", "i\ttitle\n10\tTen\n11\tEleven\n")
    params = csv_params(tmp_path, interactions="ratings.tsv", social="trust.tsv", items="titles.tsv", sep="\\t",
                        columns={"user": "u", "item": "i"}, social_columns={"src": "a", "dst": "b"},
                        item_columns={"item": "i", "name": "title"})
    tables = load_source(params)
    assert tables.social[["src", "dst", "row"]].values.tolist() == [["1", "2", 2]]
    assert tables.items["name"].tolist() == ["Ten", "Eleven"]
    assert tables.files == {"interactions": tmp_path / "ratings.tsv", "social": tmp_path / "trust.tsv",
                            "items": tmp_path / "titles.tsv", "users": None}


def test_items_file_without_a_name_column_gives_missing_names(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id\n1,10\n")
    write(tmp_path / "items.csv", "item_id,genre\n10,rock\n")
    tables = load_source(csv_params(tmp_path, items="items.csv"))
    assert list(tables.items.columns) == ["item", "name", "row"]
    assert tables.items["item"].tolist() == ["10"] and tables.items["name"].isna().all()


def test_absolute_file_names_are_taken_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = write(tmp_path / "elsewhere" / "inter.csv", "user_id,item_id\n1,2\n")
    monkeypatch.chdir(tmp_path)
    tables = load_source(csv_params("no-such-folder", interactions=str(elsewhere)))
    assert tables.interactions["item"].tolist() == ["2"]


def test_relative_data_path_resolves_against_the_working_folder(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "data" / "mine" / "interactions.csv", "user_id,item_id\n1,2\n")
    monkeypatch.chdir(tmp_path)
    tables = load_source(csv_params("data/mine"))
    assert tables.path == tmp_path.resolve() / "data" / "mine"


# ------------------------------------------------------------------------------------- parquet
def test_parquet_values_become_faithful_text(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "extra": ["a", "b", "c", "d", "e"],
        "rating": pa.array([3.0, 1.5, float("nan"), float("inf"), 4.0]),   # a real NaN, not a null
        "item_id": [1.5, 2.0, 3.0, 4.0, 324660.0],
        "user_id": pa.array([10, 11, 12, 13, None], pa.int64()),
        "when": pa.array(pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "1970-01-01"])),
    })
    pq.write_table(table, tmp_path / "inter.parquet")
    params = make_params("parquet", tmp_path, interactions="inter.parquet",
                         columns={"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "when"})
    inter = load_source(params).interactions
    assert list(inter.columns) == ["user", "item", "rating", "timestamp", "row"]
    assert inter["item"].tolist() == ["1.5", "2", "3", "4", "324660"]
    assert inter["rating"].tolist() == ["3", "1.5", "nan", "inf", "4"]
    assert inter["user"].tolist()[:4] == ["10", "11", "12", "13"] and pd.isna(inter["user"].iloc[4])
    assert inter["timestamp"].tolist() == ["1577836800", "1577923200", "1578009600", "1578096000", "0"]
    assert inter["row"].tolist() == [1, 2, 3, 4, 5]
    assert inter["item"].dtype == "str"


def test_parquet_string_ids_and_social(tmp_path: Path) -> None:
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"]}).to_parquet(tmp_path / "i.parquet")
    pd.DataFrame({"src": ["u1"], "dst": ["u2"]}).to_parquet(tmp_path / "s.parquet")
    tables = load_source(make_params("parquet", tmp_path, interactions="i.parquet", social="s.parquet"))
    assert tables.interactions["user"].tolist() == ["u1", "u2"]
    assert tables.social[["src", "dst", "row"]].values.tolist() == [["u1", "u2", 1]]


def test_parquet_errors_name_the_file_and_column(tmp_path: Path) -> None:
    write(tmp_path / "junk.parquet", b"PAR1 this is not parquet at all")
    err = load_error(make_params("parquet", tmp_path, interactions="junk.parquet"))
    assert "junk.parquet" in str(err) and "Parquet" in str(err)

    pd.DataFrame({"user_id": [1], "item": [2]}).to_parquet(tmp_path / "cols.parquet")
    err = load_error(make_params("parquet", tmp_path, interactions="cols.parquet"))
    assert "cols.parquet" in str(err) and "item_id" in str(err) and "'item'" in str(err)

    pd.DataFrame({"user_id": pd.Series([], dtype="int64"), "item_id": pd.Series([], dtype="int64")}) \
        .to_parquet(tmp_path / "empty.parquet")
    err = load_error(make_params("parquet", tmp_path, interactions="empty.parquet"))
    assert "empty.parquet" in str(err) and "no data rows" in str(err)


# ---------------------------------------------------------------------------------- error cases
def test_missing_data_folder_lists_the_expected_files(tmp_path: Path) -> None:
    err = load_error(make_params("movielens-100k", tmp_path / "nowhere"))
    assert "nowhere" in str(err) and "u.data" in str(err) and "u.item" in str(err)
    err = load_error(make_params("synthetic", tmp_path / "nowhere"))
    assert "interactions.csv" in str(err) and "social.csv" in str(err)


def test_missing_interactions_file_is_named(tmp_path: Path) -> None:
    err = load_error(csv_params(tmp_path, interactions="ratings.csv"))
    assert "ratings.csv" in str(err) and "missing" in str(err)


@pytest.mark.parametrize("content", ["", "\n\n", "user_id,item_id\n", "user_id,item_id\r\n\r\n"],
                         ids=["empty", "blank-lines", "header-only", "header-and-blank"])
def test_files_without_data_rows_are_refused(tmp_path: Path, content: str) -> None:
    write(tmp_path / "interactions.csv", content)
    err = load_error(csv_params(tmp_path))
    assert "interactions.csv" in str(err) and "no data rows" in str(err)


def test_missing_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user,item_id,score\n1,2,3\n")
    err = load_error(csv_params(tmp_path))
    assert err.column == "user_id"
    assert "interactions.csv" in str(err) and "'user_id'" in str(err)
    assert "'user', 'item_id', 'score'" in str(err)


@pytest.mark.parametrize("content, line, found", [
    ("user_id,item_id\n1,2\n3,4,5\n6,7\n", 3, 3),        # too many fields
    ("user_id,item_id\n1,2,9\n3,4\n", 2, 3),            # ... on the first data row (pandas would drop it)
    ("user_id,item_id,rating\n1,2,3\n4,5\n", 3, 2),      # too few fields (pandas would pad it)
    ("user_id,item_id\n1,2\n\n  \n5,6,7\n", 5, 3),      # blank and whitespace-only lines still counted
    ("user_id,item_id\n1,2\n9\n", 3, 1),                # a single field
], ids=["long", "long-first-row", "short", "after-blank-lines", "single"])
def test_wrong_field_count_names_the_line(tmp_path: Path, content: str, line: int, found: int) -> None:
    write(tmp_path / "interactions.csv", content)
    err = load_error(csv_params(tmp_path))
    assert "interactions.csv" in str(err) and f"row {line}" in str(err)
    assert f"found {found}" in str(err) and err.row == line


def test_quoted_record_with_wrong_field_count_names_its_start_line(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", 'user_id,item_id\n1,"a\nb"\n2,"c\nd",extra\n')
    err = load_error(csv_params(tmp_path))
    assert "row 4" in str(err) and "expected 2 fields" in str(err)


def test_unterminated_quote_names_the_line(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", 'user_id,item_id\n1,2\n3,"oops\n5,6\n')
    err = load_error(csv_params(tmp_path))
    assert "interactions.csv" in str(err) and "row 3" in str(err) and "quot" in str(err)


def test_non_utf8_bytes_name_the_line_and_offset(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", b"user_id,item_id\n1,2\n3,caf\xe9\n")
    err = load_error(csv_params(tmp_path))
    assert "interactions.csv" in str(err) and "row 3" in str(err)
    assert "UTF-8" in str(err).upper() and "byte offset 25" in str(err)   # 16 + 4 + len("3,caf")


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", bytes(range(256)) * 4)
    err = load_error(csv_params(tmp_path))
    assert "interactions.csv" in str(err) and "binary" in str(err)


def test_duplicated_header_column_is_ambiguous(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id,item_id\n1,2,3\n")
    err = load_error(csv_params(tmp_path))
    assert "item_id" in str(err) and "2 times" in str(err)


def test_errors_print_without_traceback_details(tmp_path: Path) -> None:
    write(tmp_path / "interactions.csv", "user_id,item_id\n1,2,3\n")
    err = load_error(csv_params(tmp_path))
    assert str(err).startswith(str(tmp_path / "interactions.csv") + ", row 2: ")
    assert err.__suppress_context__ or err.__cause__ is None


# ---------------------------------------------------------------------------------- ingest stage
def test_ingest_writes_tables_and_manifest(lastfm_dir: Path, tmp_path: Path) -> None:
    paths = Paths(tmp_path / "project")
    summary = ingest.run(make_params("lastfm-hetrec", lastfm_dir), paths)
    assert summary["source"] == "lastfm-hetrec"
    assert summary["rows"] == {"interactions": 3, "social": 2, "items": 2, "users": 0}
    json.dumps(summary)
    out = paths.ingest
    assert sorted(p.name for p in out.iterdir()) == ["interactions.parquet", "items.parquet", "manifest.json",
                                                     "social.parquet", "users.parquet"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "lastfm-hetrec"
    assert manifest["tables"]["social"] == {"file": str((lastfm_dir / "user_friends.dat").resolve()), "rows": 2,
                                            "columns": {"src": "userID", "dst": "friendID"}}
    assert manifest["tables"]["interactions"]["columns"] == {"user": "userID", "item": "artistID", "rating": "weight"}
    assert os.path.isabs(manifest["tables"]["interactions"]["file"]) and os.path.isabs(manifest["path"])
    inter = pd.read_parquet(out / "interactions.parquet")
    assert inter["user"].tolist() == ["2", "2", "3"] and inter["row"].dtype == np.int64
    assert inter["user"].dtype == "str"


def test_ingest_manifest_records_the_source_header_names_for_validation_messages(tmp_path: Path) -> None:
    """Defect: validation named columns by their internal names (``user``) because ingest kept no record of
    the file's header (``uid``); the manifest now maps each table column to its source column, and the
    parquet tables keep their internal column names."""
    data = tmp_path / "data"
    write(data / "ratings.csv", "uid,iid\n1,10\n2,11\n")
    write(data / "trust.csv", "a,b\n1,2\n")
    write(data / "titles.csv", "iid,genre\n10,rock\n")
    params = csv_params(data, interactions="ratings.csv", social="trust.csv", items="titles.csv",
                        columns={"user": "uid", "item": "iid"}, social_columns={"src": "a", "dst": "b"},
                        item_columns={"item": "iid", "name": None})
    paths = Paths(tmp_path / "project")
    ingest.run(params, paths)
    manifest = json.loads((paths.ingest / "manifest.json").read_text())
    assert manifest["tables"]["users"] is None
    assert {name: entry["columns"] for name, entry in manifest["tables"].items() if entry} == {
        "interactions": {"user": "uid", "item": "iid"}, "social": {"src": "a", "dst": "b"}, "items": {"item": "iid"}}
    assert list(pd.read_parquet(paths.ingest / "interactions.parquet").columns) == ["user", "item", "row"]
    assert list(pd.read_parquet(paths.ingest / "items.parquet").columns) == ["item", "name", "row"]


def test_every_loader_names_its_source_columns(movielens_dir: Path, lastfm_dir: Path) -> None:
    assert load_source(make_params("movielens-100k", movielens_dir)).columns["items"] == {"item": "movie_id",
                                                                                         "name": "title"}
    assert load_source(make_params("lastfm-hetrec", lastfm_dir)).columns["social"] == {"src": "userID",
                                                                                      "dst": "friendID"}


def test_ingest_writes_an_empty_social_table_and_a_null_manifest_entry(movielens_dir: Path, tmp_path: Path) -> None:
    paths = Paths(tmp_path / "project")
    ingest.run(make_params("movielens-100k", movielens_dir), paths)
    manifest = json.loads((paths.ingest / "manifest.json").read_text())
    assert manifest["tables"]["social"] is None
    assert manifest["tables"]["items"]["rows"] == 3
    social = pd.read_parquet(paths.ingest / "social.parquet")
    assert len(social) == 0 and list(social.columns) == ["src", "dst", "row"]


def test_ingest_failure_leaves_no_artifacts(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "project")
    write(tmp_path / "interactions.csv", "user_id,item_id\n")
    with pytest.raises(DataError):
        ingest.run(csv_params(tmp_path), paths)
    assert not paths.ingest.exists() or not any(paths.ingest.iterdir())


# ------------------------------------------------------------------------------------- real data
def _real(shared_data_dir: Path, name: str) -> Path:
    folder = shared_data_dir / name
    if not folder.is_dir():
        reason = f"real dataset folder {folder} is absent"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: real-data tests must run)")
        pytest.skip(reason)
    return folder


@pytest.mark.realdata
def test_real_movielens_100k(shared_data_dir: Path) -> None:
    tables = load_source(make_params("movielens-100k", _real(shared_data_dir, "movielens-100k")))
    assert tables.rows() == {"interactions": 100_000, "social": 0, "items": 1682, "users": 943}
    assert tables.interactions.iloc[0].tolist() == ["196", "242", "3", "881250949", 1]
    assert tables.interactions["row"].iloc[-1] == 100_000
    assert tables.items.set_index("item")["name"]["1"] == "Toy Story (1995)"


@pytest.mark.realdata
def test_real_lastfm_hetrec(shared_data_dir: Path) -> None:
    tables = load_source(make_params("lastfm-hetrec", _real(shared_data_dir, "lastfm-hetrec2011-2k")))
    assert tables.rows() == {"interactions": 92_834, "social": 25_434, "items": 17_632, "users": 0}
    assert tables.interactions.iloc[0].tolist() == ["2", "51", "13883", 2]
    names = tables.items.set_index("name")["row"]
    assert names['"Weird Al" Yankovic'] == 1679   # stray quotes kept, line number as in the file
    assert "MALICE MIZER" in names.index

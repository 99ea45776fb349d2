"""Headerless delimited files and columns named by position (``data.tabular.header``, integer columns)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gnnrec.config import params_from_dict
from gnnrec.datasets import load_source
from gnnrec.errors import DataError, ParamsError


def _params(folder: Path, **tabular):
    return params_from_dict({"data": {"source": tabular.pop("source", "csv"), "path": str(folder),
                                      "tabular": tabular}})


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def test_a_headerless_space_separated_pair_of_files_reads_by_position(tmp_path: Path) -> None:
    # the FilmTrust layout: "user item rating" and "trustor trustee value", no header, one space
    _write(tmp_path / "ratings.txt", "1 10 2\n1 11 3.5\n\n2 10 4\n")
    _write(tmp_path / "trust.txt", "2 1 1\n1 2 1\n")
    tables = load_source(_params(tmp_path, interactions="ratings.txt", social="trust.txt", sep=" ", header=False,
                                 columns={"user": 1, "item": 2, "rating": 3},
                                 social_columns={"src": 1, "dst": 2}))
    assert tables.interactions[["user", "item", "rating", "row"]].values.tolist() == [
        ["1", "10", "2", 1], ["1", "11", "3.5", 2], ["2", "10", "4", 4]]     # the first line is data; blank skipped
    assert tables.social[["src", "dst", "row"]].values.tolist() == [["2", "1", 1], ["1", "2", 2]]
    assert tables.columns["interactions"] == {"user": "field_1", "item": "field_2", "rating": "field_3"}


def test_positions_pick_columns_of_a_file_with_a_header_too(tmp_path: Path) -> None:
    _write(tmp_path / "i.csv", "when,who,what\n5,a,x\n6,b,y\n")
    tables = load_source(_params(tmp_path, interactions="i.csv", columns={"user": 2, "item": "what",
                                                                          "timestamp": 1}))
    assert tables.interactions[["user", "item", "timestamp"]].values.tolist() == [["a", "x", "5"], ["b", "y", "6"]]
    pd.DataFrame({"who": ["a"], "what": ["x"]}).to_parquet(tmp_path / "i.parquet")
    tables = load_source(_params(tmp_path, source="parquet", interactions="i.parquet", columns={"user": 1,
                                                                                               "item": 2}))
    assert tables.interactions[["user", "item"]].values.tolist() == [["a", "x"]]


def test_a_headerless_users_file_takes_every_other_field_as_a_feature(tmp_path: Path) -> None:
    _write(tmp_path / "i.txt", "u1|x\nu2|y\n")
    _write(tmp_path / "u.txt", "u1|young|nyc\nu2|old|sf\n")
    tables = load_source(_params(tmp_path, interactions="i.txt", users="u.txt", sep="|", header=False,
                                 columns={"user": 1, "item": 2}, user_columns={"user": 1}))
    assert list(tables.users.columns[:3]) == ["user", "field_2", "field_3"]
    assert tables.users["field_3"].tolist() == ["nyc", "sf"]
    tables = load_source(_params(tmp_path, interactions="i.txt", users="u.txt", sep="|", header=False,
                                 columns={"user": 1, "item": 2}, user_columns={"user": 1, "features": [3]}))
    assert [c for c in tables.users.columns if c != "row"] == ["user", "field_3"]


def test_a_position_past_the_last_field_names_the_file_and_the_key(tmp_path: Path) -> None:
    _write(tmp_path / "r.txt", "1 10\n2 11\n")
    with pytest.raises(DataError) as info:
        load_source(_params(tmp_path, interactions="r.txt", sep=" ", header=False,
                            columns={"user": 1, "item": 2, "rating": 3}))
    message = str(info.value)
    assert "r.txt" in message and "data.tabular.columns.rating is field 3" in message and "2 fields" in message


def test_a_short_line_of_a_headerless_file_names_the_line(tmp_path: Path) -> None:
    _write(tmp_path / "r.txt", "1 10 4\n2 11\n")
    with pytest.raises(DataError) as info:
        load_source(_params(tmp_path, interactions="r.txt", sep=" ", header=False, columns={"user": 1, "item": 2}))
    assert info.value.row == 2 and "r.txt" in str(info.value)


@pytest.mark.parametrize("columns, key, expected", [
    ({"user": "user_id", "item": 2}, "data.tabular.columns.user", "field position"),
    ({"user": 0, "item": 2}, "data.tabular.columns.user", ">= 1"),
    ({"user": 1, "item": 1.5}, "data.tabular.columns.item", "column name, or a field position"),
    ({"user": 1, "item": True}, "data.tabular.columns.item", "column name, or a field position"),
])
def test_bad_column_references_are_params_errors_naming_the_key(columns, key, expected) -> None:
    with pytest.raises(ParamsError) as info:
        params_from_dict({"data": {"source": "csv", "tabular": {"header": False, "columns": columns}}})
    assert info.value.key == key and expected in info.value.expected


def test_unused_default_column_names_do_not_block_a_headerless_source() -> None:
    params = params_from_dict({"data": {"source": "csv", "tabular": {"header": False,
                                                                     "columns": {"user": 1, "item": 2}}}})
    assert params.data.tabular.social_columns.src == "src"          # no social file: its defaults are unused
    with pytest.raises(ParamsError) as info:
        params_from_dict({"data": {"source": "csv", "tabular": {"header": False, "social": "s.txt",
                                                                "columns": {"user": 1, "item": 2}}}})
    assert info.value.key == "data.tabular.social_columns.src"

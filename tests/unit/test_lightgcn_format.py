"""The LightGCN-format source (train.txt / test.txt): parsing, the split marker through validate, and a
split stage that keeps the file's test set and carves validation out of train only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnnrec.config import params_from_dict
from gnnrec.datasets import LOADERS, load_source
from gnnrec.datasets.lightgcn_format import read_int_pairs, read_lightgcn_file
from gnnrec.errors import DataError, DataValidationError
from gnnrec.paths import Paths
from gnnrec.split import split_interactions
from gnnrec.stages import ingest, split, validate

TRAIN = "0 1 2 3 4\n1 2 3 4 5 6 7 8 9 10\n\n2 0 1 2 3 4 5 6 7 8 9\n3\n"
TEST = "0 5 6\n1 11\n2 10 11\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "lgcn" / "train.txt", TRAIN)
    write(tmp_path / "lgcn" / "test.txt", TEST)
    return tmp_path / "lgcn"


def params_for(folder: Path, **extra):
    return params_from_dict({"data": {"source": "lightgcn-format", "path": str(folder)}, **extra})


def test_source_is_registered():
    assert LOADERS["lightgcn-format"] == "gnnrec.datasets.lightgcn_format"
    assert params_for(Path("/x")).data.source == "lightgcn-format"


def test_parser_pairs_each_item_with_its_user_and_line(folder: Path):
    users, items, rows = read_lightgcn_file(folder / "train.txt")
    assert list(users[:4]) == ["0"] * 4
    assert list(items[:4]) == ["1", "2", "3", "4"]
    assert len(items) == 4 + 9 + 10                      # the user-only line "3" and the blank line add nothing
    assert rows[4] == 2 and rows[-1] == 4                # line numbers of the file, blank line counted
    u, i = read_int_pairs(folder / "test.txt")
    assert u.dtype == np.int64 and list(zip(u, i)) == [(0, 5), (0, 6), (1, 11), (2, 10), (2, 11)]


def test_parser_accepts_tabs_and_crlf(tmp_path: Path):
    path = write(tmp_path / "t.txt", b"7\t1 2\r\n8 3\r\n")
    users, items, rows = read_lightgcn_file(path)
    assert list(users) == ["7", "7", "8"] and list(items) == ["1", "2", "3"] and list(rows) == [1, 1, 2]


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"1 2\x00\n", "NUL")])
def test_unreadable_files_are_data_errors(tmp_path: Path, content: bytes, message: str):
    path = write(tmp_path / "t.txt", content)
    with pytest.raises(DataError, match=message):
        read_lightgcn_file(path)


def test_missing_test_file_names_it(tmp_path: Path):
    write(tmp_path / "d" / "train.txt", TRAIN)
    with pytest.raises(DataError, match="test.txt"):
        load_source(params_for(tmp_path / "d"))


def test_loader_marks_the_file_of_every_interaction(folder: Path):
    tables = load_source(params_for(folder))
    inter = tables.interactions
    assert list(inter.columns) == ["user", "item", "row", "split"]
    assert (inter["split"] == "train").sum() == 23 and (inter["split"] == "test").sum() == 5
    assert tables.files["interactions"] == folder / "train.txt"
    assert len(tables.social) == 0 and len(tables.items) == 0


def test_stages_keep_the_fixed_test_split(folder: Path, tmp_path: Path):
    paths = Paths(tmp_path / "project")
    params = params_for(folder, split={"ratios": [0.8, 0.1, 0.1], "min_user_interactions": 3})
    ingest.run(params, paths)
    validate.run(params, paths)
    dataset = pd.read_parquet(paths.dataset / "interactions.parquet")
    assert set(dataset["split"]) == {"train", "test"}
    summary = split.run(params, paths)
    assert summary["fixed_test"] is True
    parts = {name: pd.read_parquet(paths.split / f"{name}.parquet") for name in ("train", "val", "test")}
    assert all("split" not in p.columns for p in parts.values())
    users = pd.read_parquet(paths.dataset / "users.parquet").set_index("user_id")["raw_id"]
    items = pd.read_parquet(paths.dataset / "items.parquet").set_index("item_id")["raw_id"]

    def raw(frame):
        return sorted(zip(users[frame["user_id"]].astype(int), items[frame["item_id"]].astype(int)))

    assert raw(parts["test"]) == [(0, 5), (0, 6), (1, 11), (2, 10), (2, 11)]     # exactly test.txt
    train_file = set(zip(*read_int_pairs(folder / "train.txt")))
    assert set(raw(parts["val"])) <= train_file and set(raw(parts["train"])) <= train_file
    assert len(parts["train"]) + len(parts["val"]) == len(train_file)
    assert len(parts["val"]) == 1 + 1 + 1              # floor(n / 9), raised to 1, for each of the 3 users


def test_split_shares_follow_the_ratios():
    rng = np.random.default_rng(0)
    n_users, per_user = 50, 36
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(n_users), per_user),
                          "item_id": np.tile(np.arange(per_user), n_users)})
    frame["weight"] = np.float32(1)
    frame["timestamp"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame["split"] = np.where(rng.random(len(frame)) < 0.25, "test", "train")
    parts = split_interactions(frame, "random", (0.8, 0.1, 0.1), seed=1)
    assert len(parts.test) == (frame["split"] == "test").sum()
    n_train = (frame["split"] == "train").sum()
    assert len(parts.train) + len(parts.val) == n_train
    assert abs(len(parts.val) / n_train - 1 / 9) < 0.03
    keys = lambda f: set(zip(f["user_id"], f["item_id"]))  # noqa: E731
    assert keys(parts.test) == keys(frame[frame["split"] == "test"])
    assert not keys(parts.val) & keys(parts.test)


def test_a_bad_split_marker_fails_validation(folder: Path):
    from gnnrec import validation

    tables = load_source(params_for(folder))
    inter = tables.interactions.copy()
    inter.loc[3, "split"] = "valid"
    with pytest.raises(DataValidationError) as info:
        validation.validate_tables(inter, tables.social, tables.items, strict=False, max_examples=3,
                                   files={"interactions": "train.txt", "social": None, "items": None})
    failure = info.value.report["failures"][0]
    assert failure["column"] == "split" and failure["unexpected_count"] == 1
    assert "split='valid'" in failure["examples"][0]

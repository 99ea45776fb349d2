"""The LightGCN format (NGCF / LightGCN / many later papers): a fixed train/test split in two files.

``train.txt`` and ``test.txt`` under ``data.path``: one line per user, a user id then that user's item
ids, separated by spaces (or tabs); a line with only a user id has no interactions; blank lines are
skipped. Gowalla, Yelp2018 and Amazon-Book are distributed this way
(``../shared/data/gowalla-lightgcn``).

The test file **is** the test split: every interaction keeps a ``split`` marker (``"train"`` or
``"test"``) that the validate stage carries into the canonical interactions and the split stage honours
(validation for early stopping is carved out of the training interactions, never out of the test file).
``row`` is the line of the record's own file (``split`` names which file); the manifest names
``train.txt`` as the interactions file.

:func:`read_lightgcn_file` is the parser (text in, arrays out), shared by the loader and the benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gnnrec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params
    from gnnrec.datasets import RawTables

TRAIN_FILE = "train.txt"
TEST_FILE = "test.txt"
FILES = (TRAIN_FILE, TEST_FILE)
SPLIT_VALUES = ("train", "test")


def read_lightgcn_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse one LightGCN-format file → ``(users, items, rows)``, one entry per (user, item) token pair.

    ``users`` and ``items`` are arrays of the tokens as text (``str`` objects), ``rows`` the 1-based line
    of each pair (int64). A file that is missing, empty, binary or not valid UTF-8 is a DataError naming
    it; whether the tokens are valid ids is the validate stage's check.
    """
    from gnnrec.datasets.tabular import decode_text, read_bytes, require_file  # readers shared by every source

    path = require_file(Path(path), f"LightGCN-format {Path(path).name}")
    text = decode_text(read_bytes(path), path)
    if not text.strip():
        raise DataError("no data rows: the file is empty", file=str(path))
    users: list[str] = []
    counts: list[int] = []
    lines: list[int] = []
    items: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        tokens = line.split()
        if not tokens:
            continue
        users.append(tokens[0])
        counts.append(len(tokens) - 1)
        lines.append(number)
        items.extend(tokens[1:])
    count = np.asarray(counts, dtype=np.int64)
    user_col = np.repeat(np.asarray(users, dtype=object), count)
    row_col = np.repeat(np.asarray(lines, dtype=np.int64), count)
    return user_col, np.asarray(items, dtype=object), row_col


def read_int_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(users, items)`` as int64 arrays (for files whose ids are integers, like the published splits)."""
    users, items, _ = read_lightgcn_file(path)
    try:
        return users.astype(np.int64), items.astype(np.int64)
    except (ValueError, OverflowError) as exc:
        raise DataError(f"ids are not all integers ({exc})", file=str(path)) from None


def load(params: "Params") -> "RawTables":
    """Read ``train.txt`` and ``test.txt``: interactions with a ``split`` marker; no social ties, no names."""
    import pandas as pd

    from gnnrec.datasets import RawTables, empty_items, empty_social, require_data_dir

    folder = require_data_dir(params, FILES)
    frames = []
    paths = {}
    for split, name in zip(SPLIT_VALUES, FILES):
        path = folder / name
        users, items, rows = read_lightgcn_file(path)
        paths[split] = path
        frames.append(pd.DataFrame({"user": pd.Series(users, dtype="str"), "item": pd.Series(items, dtype="str"),
                                    "row": rows, "split": pd.Series([split] * len(rows), dtype="str")}))
    interactions = pd.concat(frames, ignore_index=True)
    if not len(frames[0]):
        raise DataError("no training interactions: every line has only a user id", file=str(paths["train"]))
    return RawTables(source=params.data.source, path=folder, interactions=interactions, social=empty_social(),
                     items=empty_items(), files={"interactions": paths["train"], "social": None, "items": None,
                                                 "users": None})

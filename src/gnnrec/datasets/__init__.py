"""Data sources: each turns a folder of raw files into :class:`RawTables` (every value kept as text).

One module per source family, each with ``load(params) -> RawTables``:

- :mod:`~gnnrec.datasets.synthetic`: the embedded synthetic dataset (and its generator),
- :mod:`~gnnrec.datasets.movielens`: MovieLens 100K (``u.data``, ``u.item``, optional ``u.user``),
- :mod:`~gnnrec.datasets.lastfm`: HetRec 2011 LastFM (``user_artists.dat``, ``user_friends.dat``, ``artists.dat``),
- :mod:`~gnnrec.datasets.tabular`: any ``csv`` / ``parquet`` files described in ``data.tabular`` (optional
  user side features in ``data.tabular.users``),
- :mod:`~gnnrec.datasets.lightgcn_format`: ``train.txt`` / ``test.txt`` with a fixed test split (Gowalla).

:mod:`~gnnrec.datasets.build` turns the validated tables into the canonical dataset (filters, contiguous ids).

:func:`load_source` dispatches on ``params.data.source``. The tables follow the *ingest* contract of
``docs/contracts.md``: text columns plus ``row``, the line of the source file each record came from.
Type checks are the validate stage's job; a loader only refuses files it cannot read as tables.

The ``users`` table holds the users' side features: ``user`` (the raw user id), one text column per
categorical feature (any name but those of :data:`~gnnrec.constants.RESERVED_FEATURE_NAMES`), and
``row``. A source without user features leaves it empty (columns ``user`` and ``row``, 0 rows).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import pandas as pd

from gnnrec.constants import RESERVED_FEATURE_NAMES, TABLES
from gnnrec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params

#: the module that loads each ``data.source``
LOADERS = {
    "synthetic": "gnnrec.datasets.synthetic",
    "movielens-100k": "gnnrec.datasets.movielens",
    "lastfm-hetrec": "gnnrec.datasets.lastfm",
    "csv": "gnnrec.datasets.tabular",
    "parquet": "gnnrec.datasets.tabular",
    "lightgcn-format": "gnnrec.datasets.lightgcn_format",
}


@dataclass(frozen=True)
class RawTables:
    """The raw tables of one source, every value as text, plus where each came from.

    ``files`` maps each table name to its source file, or ``None`` when the source has no such file
    (the table then has 0 rows). ``columns`` maps each table name to its columns' source names (internal
    name → the file's header name, or the field name of a header-less format such as ``u.data``); a table
    whose format names no columns (the LightGCN format) has no entry.

    ``users`` (side features; ``columns["users"]``: ``user`` and each feature → its source column) defaults
    to the empty table of a source without user features, and ``files["users"]`` to ``None``.
    """

    source: str
    path: Path
    interactions: pd.DataFrame
    social: pd.DataFrame
    items: pd.DataFrame
    files: dict[str, Optional[Path]] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    users: pd.DataFrame = field(default_factory=lambda: empty_users())

    def table(self, name: str) -> pd.DataFrame:
        """The table called ``name`` (one of :data:`TABLES`)."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
        return getattr(self, name)

    def rows(self) -> dict[str, int]:
        """Number of rows per table."""
        return {name: int(len(self.table(name))) for name in TABLES}


def load_source(params: "Params") -> RawTables:
    """Load the raw tables of ``params.data.source`` from the folder ``params.data.path``."""
    module = importlib.import_module(LOADERS[params.data.source])
    return module.load(params)


def data_dir(params: "Params") -> Path:
    """``data.path`` as an absolute path (a relative one is taken from the current working folder).

    A path the OS cannot take (a NUL byte, a name too long) is a DataError naming ``data.path``."""
    try:
        path = Path(params.data.path).expanduser()
        return (path if path.is_absolute() else Path.cwd() / path).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise DataError(f"data.path = {params.data.path!r} is not a usable path ({exc}); expected a folder"
                        ) from None


def path_kind(path: Path) -> str:
    """``"folder"``, ``"file"``, ``"missing"``; a path the OS refuses (too long, NUL byte) is ``"invalid"``."""
    try:
        if path.is_dir():
            return "folder"
        return "file" if path.exists() else "missing"
    except (OSError, ValueError):
        return "invalid"


def require_data_dir(params: "Params", expected: Iterable[str]) -> Path:
    """``data.path`` if it is an existing folder, else a DataError listing the files it should hold."""
    folder = data_dir(params)
    kind = path_kind(folder)
    if kind != "folder":
        what = {"file": "is not a folder", "missing": "does not exist",
                "invalid": "is not a usable path (too long, or a character the OS refuses)"}[kind]
        raise DataError(f"data folder {what} (data.path = {params.data.path!r}); the {params.data.source} source "
                        f"expects these files there: {', '.join(expected)}", file=str(folder))
    return folder


def empty_social() -> pd.DataFrame:
    """The social table of a source without social ties."""
    return empty_table(("src", "dst"))


def empty_items() -> pd.DataFrame:
    """The items table of a source without item names."""
    return empty_table(("item", "name"))


def empty_users() -> pd.DataFrame:
    """The users table of a source without user side features."""
    return empty_table(("user",))


def feature_columns(users: pd.DataFrame) -> list[str]:
    """The side-feature columns of a users table: every column but ``user``, ``row`` and derived ones (``__*``)."""
    return [str(c) for c in users.columns if c not in ("user", "row") and not str(c).startswith("__")]


def check_feature_names(names: Iterable[str], file: Optional[Path | str], what: str) -> None:
    """A DataError naming the file and column when a feature column has a reserved or unusable name.

    ``what`` says where the names come from (e.g. ``data.tabular.user_columns.features``)."""
    for name in names:
        if name in RESERVED_FEATURE_NAMES or name.startswith("__") or not name.strip():
            shown = repr(name) if name.strip() else "a column without a name"
            raise DataError(f"{shown} cannot be a user feature column: the names {', '.join(RESERVED_FEATURE_NAMES)}, "
                            f"empty names and names starting with '__' are reserved; list the features to use in "
                            f"{what}", file=None if file is None else str(file), column=name)


def empty_table(columns: Iterable[str]) -> pd.DataFrame:
    """A 0-row table with the given text columns and ``row``."""
    out = pd.DataFrame({name: pd.Series([], dtype="str") for name in columns})
    out["row"] = pd.Series([], dtype="int64")
    return out


__all__ = ["LOADERS", "TABLES", "RawTables", "check_feature_names", "data_dir", "empty_items", "empty_table",
           "empty_social", "empty_users", "feature_columns", "load_source", "path_kind", "require_data_dir"]

"""Data sources: each turns a folder of raw files into :class:`RawTables` (every value kept as text).

One module per source family, each with ``load(params) -> RawTables``:

- :mod:`~gnnrec.datasets.synthetic`: the embedded synthetic dataset (and its generator),
- :mod:`~gnnrec.datasets.movielens`: MovieLens 100K (``u.data``, ``u.item``),
- :mod:`~gnnrec.datasets.lastfm`: HetRec 2011 LastFM (``user_artists.dat``, ``user_friends.dat``, ``artists.dat``),
- :mod:`~gnnrec.datasets.tabular`: any ``csv`` / ``parquet`` files described in ``data.tabular``,
- :mod:`~gnnrec.datasets.lightgcn_format`: ``train.txt`` / ``test.txt`` with a fixed test split (Gowalla).

:mod:`~gnnrec.datasets.build` turns the validated tables into the canonical dataset (filters, contiguous ids).

:func:`load_source` dispatches on ``params.data.source``. The tables follow the *ingest* contract of
``docs/contracts.md``: text columns plus ``row``, the line of the source file each record came from.
Type checks are the validate stage's job; a loader only refuses files it cannot read as tables.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import pandas as pd

from gnnrec.constants import TABLES
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
    """

    source: str
    path: Path
    interactions: pd.DataFrame
    social: pd.DataFrame
    items: pd.DataFrame
    files: dict[str, Optional[Path]] = field(default_factory=dict)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)

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


def empty_table(columns: Iterable[str]) -> pd.DataFrame:
    """A 0-row table with the given text columns and ``row``."""
    out = pd.DataFrame({name: pd.Series([], dtype="str") for name in columns})
    out["row"] = pd.Series([], dtype="int64")
    return out


__all__ = ["LOADERS", "TABLES", "RawTables", "data_dir", "empty_items", "empty_table", "empty_social", "load_source",
           "path_kind", "require_data_dir"]

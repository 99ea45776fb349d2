"""The generic ``csv`` / ``parquet`` sources, and the readers every loader shares.

Readers keep every value as text (``str`` columns) and add ``row``, the 1-based line of the source file
where the record starts (header counted), so that the validate stage can point at the offending line.
Anything that prevents reading a file as a table raises :class:`~gnnrec.errors.DataError` naming the
file and, where it applies, the line or column: a missing or empty file, a missing column, a record with
the wrong number of fields, broken quoting, bytes that are not text in the expected encoding.

Here: :func:`require_file`, the Parquet readers (:func:`parquet_columns`, :func:`read_parquet_table`), the
users file's feature columns (:func:`user_feature_columns`) and the ``csv`` / ``parquet`` loader
(:func:`load`). The delimited-text reader (:func:`read_delimited`, :func:`delimited_header`,
:func:`read_bytes`, :func:`decode_text`) lives in :mod:`gnnrec.datasets.delimited`, which says how a
delimited file is read; it is re-exported here, where the loaders import it from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from gnnrec.datasets import (
    RawTables,
    check_feature_names,
    data_dir,
    empty_items,
    empty_social,
    empty_table,
    empty_users,
    path_kind,
    require_data_dir,
)
from gnnrec.datasets.delimited import (  # noqa: F401  (decode_text, read_bytes: re-exported for the loaders)
    column_positions,
    decode_text,
    delimited_header,
    read_bytes,
    read_delimited,
)
from gnnrec.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params


# ---------------------------------------------------------------------------------- file access
def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is an existing file, else raise a DataError saying what it should hold."""
    kind = path_kind(path)
    if kind == "folder":
        raise DataError(f"is a folder, expected the {what} file", file=str(path))
    if kind == "invalid":
        raise DataError(f"is not a usable file name (too long, or a character the OS refuses); expected the "
                        f"{what} file", file=str(path))
    if kind == "missing":
        raise DataError(f"required file is missing (the {what} file)", file=str(path))
    return path


# ------------------------------------------------------------------------------------- parquet
def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file (a DataError naming it when it is not a readable Parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_dir():
        raise DataError("is a folder, expected a Parquet file", file=str(path))
    if not path.exists():
        raise DataError("required file is missing", file=str(path))
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file ({exc})", file=str(path)) from None


def read_parquet_table(path: Path, columns: Mapping[str, str], *, allow_empty: bool = False) -> pd.DataFrame:
    """Read the named columns of a Parquet file as text, plus ``row`` (1-based position of the row).

    Values are converted faithfully (by Arrow's casts): integers as decimal strings, floats without a
    fraction as ``"3"`` and others as their shortest repr (``"1.5"``, ``"1e+20"``; ``"nan"``, ``"inf"``
    stay visible so that validation can reject them),
    booleans as ``"true"``/``"false"``, timestamps and dates as unix seconds; nulls stay missing.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_dir():
        raise DataError("is a folder, expected a Parquet file", file=str(path))
    if not path.exists():
        raise DataError("required file is missing", file=str(path))
    try:
        parquet = pq.ParquetFile(path)
        names = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file ({exc})", file=str(path)) from None
    positions = column_positions(names, columns, path, header=True)
    try:
        table = parquet.read(columns=list(dict.fromkeys(columns.values())))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read the Parquet data ({exc})", file=str(path)) from None
    if table.num_rows == 0:
        if allow_empty:
            return empty_table(columns)
        raise DataError("no data rows", file=str(path))
    out = pd.DataFrame({name: _arrow_to_text(table.column(names[pos]), path, names[pos])
                        for name, pos in positions.items()})
    out["row"] = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return out


def _arrow_to_text(column, path: Path, name: str) -> pd.Series:
    """One Arrow column → a pandas ``str`` Series (nulls stay missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    try:
        if pa.types.is_dictionary(kind):
            column = pc.cast(column, kind.value_type)
            kind = column.type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            column = pc.cast(pc.cast(column, pa.timestamp("s"), safe=False), pa.int64())
        elif pa.types.is_nested(kind):
            raise DataError(f"column has the nested type {kind}; expected plain values", file=str(path), column=name)
        text = pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"values of type {kind} cannot be read as text ({exc})", file=str(path),
                        column=name) from None
    return text.to_pandas().astype("str")


# ------------------------------------------------------------------------------------- loaders
def _source_file(data_dir: Path, name: str) -> Path:
    """A file named in ``data.tabular``: absolute as given, relative under ``data.path``."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else data_dir / path


def _separator(sep: str) -> str:
    return "\t" if sep in ("\\t", "\t") else sep


#: columns of a Parquet file written by pandas that hold its index, never a feature
_PANDAS_INDEX = re.compile(r"__index_level_[0-9]+__")


def user_feature_columns(names: Sequence[str], user: str, features: Optional[Sequence[str]], path: Path,
                         what: str = "data.tabular.user_columns.features") -> dict[str, str]:
    """``user`` and the feature columns of a users file with header ``names`` (internal → source name).

    ``features`` ``None``: every column but ``user`` (and a pandas index column of a Parquet file); a
    feature keeps its source name. A reserved or unnamed feature column is a DataError naming the file."""
    if features is None:
        features = [n for n in names if n != user and not _PANDAS_INDEX.fullmatch(n)]
    check_feature_names(features, path, what)
    return {"user": user, **{name: name for name in features}}


def column_names(path: Path, source: str, sep: str, header: bool) -> list[str]:
    """The columns of a table file as the loader names them: its header (a Parquet file's schema), or for a
    delimited file without a header ``field_1 .. field_n`` (``n`` = the fields of its first line)."""
    if source == "parquet":
        return parquet_columns(path)
    first = delimited_header(path, sep=sep)
    return list(first) if header else [f"field_{i}" for i in range(1, len(first) + 1)]


def resolve_column(ref: "str | int", names: Optional[Sequence[str]], path: Path, key: str) -> str:
    """A ``data.tabular`` column (a name, or a 1-based field position) → the column's name in the file."""
    if isinstance(ref, str):
        return ref
    assert names is not None
    if ref > len(names):
        raise DataError(f"{key} is field {ref}, but the file has {len(names)} field{'s' if len(names) != 1 else ''} "
                        "per line", file=str(path), column=f"field {ref}")
    return names[ref - 1]


_GROUPS = {"interactions": "columns", "social": "social_columns", "items": "item_columns", "users": "user_columns"}


def load(params: "Params") -> RawTables:
    """Load the generic ``csv`` or ``parquet`` source described by ``params.data.tabular``.

    Columns are named by their header names or by 1-based positions; a delimited file without a header
    (``data.tabular.header: false``) can only be addressed by position, and its fields are called
    ``field_1``, ``field_2``, ... in messages."""
    tab = params.data.tabular
    source = params.data.source
    sep = _separator(tab.sep)
    header = tab.header or source == "parquet"
    folder = data_dir(params)
    files = {"interactions": tab.interactions, "social": tab.social, "items": tab.items, "users": tab.users}
    paths = {table: _source_file(folder, name) for table, name in files.items() if name}
    if any(not Path(name).expanduser().is_absolute() for name in files.values() if name):
        require_data_dir(params, [name for name in files.values() if name])

    columns: dict[str, dict[str, str]] = {}

    def names_of(table: str, refs) -> Optional[list[str]]:
        """The file's column names, where they are needed (no header, or a column named by position)."""
        if header and not any(isinstance(ref, int) for ref in refs):
            return None
        return column_names(paths[table], source, sep, header)

    def read(table: str, cols: dict[str, "str | int | None"], allow_empty: bool = False,
             names: Optional[list[str]] = None) -> pd.DataFrame:
        path = require_file(paths[table], f"{table} (data.tabular.{table})")
        refs = {out: ref for out, ref in cols.items() if ref is not None}
        names = names if names is not None else names_of(table, refs.values())
        wanted = {out: resolve_column(ref, names, path, f"data.tabular.{_GROUPS[table]}.{out}")
                  for out, ref in refs.items()}
        columns[table] = wanted
        if source == "parquet":
            return read_parquet_table(path, wanted, allow_empty=allow_empty)
        return read_delimited(path, wanted, sep=sep, header=header, field_names=None if header else names,
                              allow_empty=allow_empty)

    def users_table() -> pd.DataFrame:
        path = require_file(paths["users"], "users (data.tabular.users)")
        names = column_names(path, source, sep, header)
        key = "data.tabular.user_columns"
        user = resolve_column(tab.user_columns.user, names, path, f"{key}.user")
        features = (None if tab.user_columns.features is None else
                    [resolve_column(ref, names, path, f"{key}.features") for ref in tab.user_columns.features])
        cols = user_feature_columns(names, user, features, path)
        return read("users", dict(cols), allow_empty=True, names=names)  # a header-only file: no features

    c = tab.columns
    interactions = read("interactions", {"user": c.user, "item": c.item, "rating": c.rating,
                                         "timestamp": c.timestamp})
    social = (read("social", {"src": tab.social_columns.src, "dst": tab.social_columns.dst})
              if "social" in paths else empty_social())
    items = empty_items()
    if "items" in paths:
        items = read("items", {"item": tab.item_columns.item, "name": tab.item_columns.name})
        if "name" not in items.columns:  # no name column configured: names unknown
            items.insert(1, "name", pd.Series([pd.NA] * len(items), dtype="str"))
    users = users_table() if "users" in paths else empty_users()
    return RawTables(source=source, path=folder, interactions=interactions, social=social, items=items,
                     users=users, files={table: paths.get(table) for table in files}, columns=columns)

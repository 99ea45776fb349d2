"""ingest stage: raw files of ``data.source`` → ``artifacts/ingest/{interactions,social,items,users}.parquet``.

Every value is kept as text and every record keeps ``row``, its line in the source file, so that the
validate stage can type-check the values and point at the offending lines. The four tables are always
written (0 rows when the source has no such file; ``users`` holds the user side features), then
``manifest.json`` names the source files and, per table, the source column behind each table column
(so that validation messages can name the columns as the user's file does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gnnrec.config import Params
from gnnrec.constants import TABLES
from gnnrec.datasets import RawTables, load_source
from gnnrec.io import write_json, write_parquet
from gnnrec.paths import Paths

MANIFEST = "manifest.json"


def run(params: Params, paths: Paths) -> dict[str, Any]:
    """Load the source, write the raw tables and the manifest; return the source and rows per table."""
    tables = load_source(rooted(params, paths.root))
    for name in TABLES:
        write_parquet(paths.ingest / f"{name}.parquet", tables.table(name))
    manifest = build_manifest(tables)
    write_json(paths.ingest / MANIFEST, manifest)
    return {"source": tables.source, "path": str(tables.path), "rows": tables.rows()}


def rooted(params: Params, root: Path) -> Params:
    """``params`` with a relative ``data.path`` taken from the project root (README: "absolute, or relative
    to the project root"), so that ``gnnrec stage ingest --root X`` reads X's data whatever the cwd."""
    try:
        relative = not Path(params.data.path).expanduser().is_absolute()
    except (OSError, ValueError, RuntimeError):  # an unusable path: the loader reports it
        return params
    if not relative or Path(root) == Path("."):
        return params
    data = params.data.model_copy(update={"path": str(Path(root) / params.data.path)})
    return params.model_copy(update={"data": data})


def build_manifest(tables: RawTables) -> dict[str, Any]:
    """The manifest of ``docs/contracts.md``: per table its source file, rows and ``columns`` (table column →
    source column, ``{}`` for a format without column names); ``None`` for a table without a file."""
    entries: dict[str, Any] = {}
    for name in TABLES:
        file = tables.files.get(name)
        entries[name] = None if file is None else {"file": str(file.resolve()), "rows": len(tables.table(name)),
                                                   "columns": dict(tables.columns.get(name) or {})}
    return {"source": tables.source, "path": str(tables.path), "tables": entries}

"""ingest stage: raw files of ``data.source`` → ``artifacts/ingest/{interactions,social,items}.parquet``.

Every value is kept as text and every record keeps ``row``, its line in the source file, so that the
validate stage can type-check the values and point at the offending lines. The three tables are always
written (0 rows when the source has no such file), then ``manifest.json`` names the source files.
"""

from __future__ import annotations

from typing import Any

from gnnrec.config import Params
from gnnrec.datasets import TABLES, RawTables, load_source
from gnnrec.io import write_json, write_parquet
from gnnrec.paths import Paths

MANIFEST = "manifest.json"


def run(params: Params, paths: Paths) -> dict[str, Any]:
    """Load the source, write the raw tables and the manifest; return the source and rows per table."""
    tables = load_source(params)
    for name in TABLES:
        write_parquet(paths.ingest / f"{name}.parquet", tables.table(name))
    manifest = build_manifest(tables)
    write_json(paths.ingest / MANIFEST, manifest)
    return {"source": tables.source, "path": str(tables.path), "rows": tables.rows()}


def build_manifest(tables: RawTables) -> dict[str, Any]:
    """The manifest of ``docs/contracts.md``: per table its source file and rows (``None``: no such file)."""
    entries: dict[str, Any] = {}
    for name in TABLES:
        file = tables.files.get(name)
        entries[name] = None if file is None else {"file": str(file.resolve()), "rows": len(tables.table(name))}
    return {"source": tables.source, "path": str(tables.path), "tables": entries}

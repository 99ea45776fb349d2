"""validate stage: ingest tables → checked, repaired, filtered canonical tables with contiguous ids.

Reads ``artifacts/ingest/{interactions,social,items,users}.parquet`` (``users.parquet`` may be absent:
no user features) and ``manifest.json`` (source files and column names: messages name columns as the
user's file does); writes ``artifacts/dataset/{interactions,social,users,items}.parquet`` (``users``
with the side features), ``reports/validation.json`` and a copy
of the report in ``logs/validation/latest.json``. When validation fails, both report files are written
before :class:`~gnnrec.errors.DataValidationError` is raised (its ``report_path`` is the log copy).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from gnnrec.config import Params
from gnnrec.constants import TABLES
from gnnrec.errors import DataError, DataValidationError
from gnnrec.io import read_json, read_parquet, write_json, write_parquet
from gnnrec.paths import Paths

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

Ingest = tuple[dict[str, Optional[pd.DataFrame]], dict[str, Optional[str]], dict[str, dict[str, str]]]


def _read_ingest(paths: Paths) -> Ingest:
    """The ingest tables (``None``: not written), their source files and their source column names."""
    manifest_path = paths.ingest / "manifest.json"
    if not manifest_path.exists():
        raise DataError("no ingest manifest: run the ingest stage first", file=str(manifest_path))
    manifest = read_json(manifest_path)
    entries = manifest.get("tables") or {}
    files: dict[str, Optional[str]] = {}
    columns: dict[str, dict[str, str]] = {}
    frames: dict[str, Optional[pd.DataFrame]] = {}
    for name in TABLES:
        entry = entries.get(name)
        files[name] = entry.get("file") if isinstance(entry, dict) else None
        named = entry.get("columns") if isinstance(entry, dict) else None  # absent in older manifests
        columns[name] = {str(k): str(v) for k, v in named.items()} if isinstance(named, dict) else {}
        path = paths.ingest / f"{name}.parquet"
        if path.exists():
            frames[name] = read_parquet(path)
        elif name == "interactions":
            raise DataError("missing ingest table: run the ingest stage first", file=str(path))
        else:
            frames[name] = None
    return frames, files, columns


def _write_reports(paths: Paths, report: dict[str, Any]) -> None:
    write_json(paths.validation_report, report)
    write_json(paths.validation_log, report)


def run(params: Params, paths: Paths) -> dict[str, Any]:
    """Validate the ingest tables and write the canonical dataset and the report; return the stats."""
    from gnnrec.datasets.build import build_dataset, check_min_rating
    from gnnrec.validation import validate_tables

    frames, files, columns = _read_ingest(paths)
    interactions = frames["interactions"]
    assert interactions is not None
    # a params error is cheaper to report before the checks run
    check_min_rating(params.data.min_rating, "rating" in interactions.columns)
    try:
        checked = validate_tables(
            interactions, frames["social"], frames["items"], strict=params.validate.strict,
            max_examples=params.validate.max_examples, files=files, columns=columns, users=frames["users"])
        dataset = build_dataset(checked, min_rating=params.data.min_rating, k_core=params.data.k_core)
    except DataValidationError as error:
        report = getattr(error, "report", None)
        if report is not None:
            _write_reports(paths, report)
            error.report_path = str(paths.validation_log)
        raise

    out: Path = paths.dataset
    write_parquet(out / "interactions.parquet", dataset.interactions)
    write_parquet(out / "social.parquet", dataset.social)
    write_parquet(out / "users.parquet", dataset.users)
    write_parquet(out / "items.parquet", dataset.items)
    _write_reports(paths, dataset.report)
    report = dataset.report
    return {**report["stats"], "repairs": dict(report["repairs"]), "filters": dict(report["filters"])}

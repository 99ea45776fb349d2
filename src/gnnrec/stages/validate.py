"""validate stage: ingest tables → checked, repaired, filtered canonical tables with contiguous ids.

Reads ``artifacts/ingest/{interactions,social,items}.parquet`` and ``manifest.json``; writes
``artifacts/dataset/{interactions,social,users,items}.parquet``, ``reports/validation.json`` and a copy
of the report in ``logs/validation/latest.json``. When validation fails, both report files are written
before :class:`~gnnrec.errors.DataValidationError` is raised (its ``report_path`` is the log copy).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from gnnrec.config import Params
from gnnrec.errors import DataError, DataValidationError
from gnnrec.io import read_json, read_parquet, write_json, write_parquet
from gnnrec.paths import Paths

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

TABLES = ("interactions", "social", "items")


def _read_ingest(paths: Paths) -> tuple[dict[str, Optional[pd.DataFrame]], dict[str, Optional[str]]]:
    manifest_path = paths.ingest / "manifest.json"
    if not manifest_path.exists():
        raise DataError("no ingest manifest: run the ingest stage first", file=str(manifest_path))
    manifest = read_json(manifest_path)
    entries = manifest.get("tables") or {}
    files: dict[str, Optional[str]] = {}
    frames: dict[str, Optional[pd.DataFrame]] = {}
    for name in TABLES:
        entry = entries.get(name)
        files[name] = entry.get("file") if isinstance(entry, dict) else None
        path = paths.ingest / f"{name}.parquet"
        if path.exists():
            frames[name] = read_parquet(path)
        elif name == "interactions":
            raise DataError("missing ingest table: run the ingest stage first", file=str(path))
        else:
            frames[name] = None
    return frames, files


def _write_reports(paths: Paths, report: dict[str, Any]) -> None:
    write_json(paths.validation_report, report)
    write_json(paths.validation_log, report)


def run(params: Params, paths: Paths) -> dict[str, Any]:
    from gnnrec import validation

    frames, files = _read_ingest(paths)
    interactions = frames["interactions"]
    assert interactions is not None
    # a params error is cheaper to report before the checks run
    validation.check_min_rating(params.data.min_rating, "rating" in interactions.columns)
    try:
        checked = validation.validate_tables(
            interactions, frames["social"], frames["items"], strict=params.validate.strict,
            max_examples=params.validate.max_examples, files=files)
        dataset = validation.build_dataset(checked, min_rating=params.data.min_rating,
                                           k_core=params.data.k_core)
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

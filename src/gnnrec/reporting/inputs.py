"""Readers of the stage outputs the report uses (paths from :class:`gnnrec.paths.Paths`).

A required input that is missing or not valid JSON raises :class:`~gnnrec.errors.DataError` naming the
file; an optional one that is missing yields ``None`` and appends a note (one sentence naming the file,
relative to the project root) to the ``notes`` list the caller passes, which the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from gnnrec.errors import DataError
from gnnrec.io import read_json
from gnnrec.paths import Paths

HISTORY_COLUMNS = ["epoch", "loss", "val_score", "seconds"]


def rel(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it lies inside it, else as given."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def require_json(path: Path, root: Path) -> Any:
    """A required JSON input; :class:`~gnnrec.errors.DataError` when it is missing or not valid JSON."""
    if not Path(path).is_file():
        raise DataError("missing input of the report stage (run the stages before it)", file=rel(path, root))
    try:
        return read_json(path)
    except ValueError as exc:
        raise DataError(f"not valid JSON: {exc}", file=rel(path, root)) from None


def optional_json(path: Path, root: Path, notes: list[str], what: str) -> Any:
    """An optional JSON input, ``None`` (and a note about ``what`` is left out) when missing or invalid."""
    if not Path(path).is_file():
        notes.append(f"{what}: {rel(path, root)} not found; section left out.")
        return None
    try:
        return read_json(path)
    except ValueError as exc:
        notes.append(f"{what}: {rel(path, root)} is not valid JSON ({exc}); section left out.")
        return None


def optional_parquet(path: Path, root: Path, notes: list[str], what: str,
                     columns: Optional[list[str]] = None, filters: Any = None) -> Optional[pd.DataFrame]:
    """An optional Parquet table (``columns`` and pyarrow ``filters`` as in :func:`pandas.read_parquet`),
    ``None`` and a note when missing."""
    if not Path(path).is_file():
        notes.append(f"{what}: {rel(path, root)} not found.")
        return None
    return pd.read_parquet(path, columns=columns, filters=filters)


def read_train_summary(paths: Paths, model: str) -> Optional[dict[str, Any]]:
    """``reports/train/<model>.json`` (the train stage's summary of one model), ``None`` when missing."""
    path = paths.train_summary(model)
    return read_json(path) if path.is_file() else None


def read_history(paths: Paths, model: str) -> Optional[pd.DataFrame]:
    """``reports/curves/<model>.csv`` (one row per epoch), ``None`` when missing; an empty or unreadable
    file gives an empty frame with the history columns."""
    path = paths.train_history(model)
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame(columns=HISTORY_COLUMNS)


def read_train_degrees(paths: Paths) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Per-user and per-item interaction counts of the training split, ``None`` without a split."""
    path = paths.split / "train.parquet"
    if not path.is_file():
        return None
    train = pd.read_parquet(path, columns=["user_id", "item_id"])
    return train["user_id"].value_counts().to_numpy(), train["item_id"].value_counts().to_numpy()


def read_user_degrees(paths: Paths) -> Optional[pd.Series]:
    """Training interactions per user id (a Series indexed by ``user_id``), ``None`` without a split."""
    path = paths.split / "train.parquet"
    if not path.is_file():
        return None
    return pd.read_parquet(path, columns=["user_id"])["user_id"].value_counts()


def read_test_per_user(paths: Paths, notes: list[str]) -> Optional[pd.DataFrame]:
    """The per-user test table of the evaluate stage (``model, user_id, ndcg@K, recall@K``), ``None`` and a note
    when it is missing (the paired comparisons between models are then left out)."""
    path = paths.test_per_user
    if not path.is_file():
        notes.append(f"Paired comparisons: {rel(path, Path(paths.root))} not found; left out.")
        return None
    table = pd.read_parquet(path)
    return table.assign(model=table["model"].astype(str))


@dataclass(frozen=True)
class ExampleTables:
    """The tables the example recommendations are built from."""

    users: pd.DataFrame           # artifacts/dataset/users.parquet: user_id, raw_id
    items: pd.DataFrame           # artifacts/dataset/items.parquet: item_id, raw_id[, name]
    test: Optional[pd.DataFrame]  # artifacts/split/test.parquet: user_id, item_id (None: no test split)


def read_example_tables(paths: Paths, notes: list[str]) -> Optional[ExampleTables]:
    """The user and item tables and the test split, ``None`` (with notes) when the users, the items or
    the recommendations are missing."""
    root = Path(paths.root)
    what = "Example recommendations"
    users = optional_parquet(paths.dataset / "users.parquet", root, notes, what)
    items = optional_parquet(paths.dataset / "items.parquet", root, notes, what)
    test = optional_parquet(paths.split / "test.parquet", root, notes, f"{what} (hits)",
                            columns=["user_id", "item_id"])
    if not paths.recommendations.is_file():
        notes.append(f"{what}: {rel(paths.recommendations, root)} not found.")
        return None
    if users is None or items is None:
        return None
    return ExampleTables(users=users, items=items, test=test)


def read_recommendations(paths: Paths, users: list[str], top_n: int) -> pd.DataFrame:
    """The top-``top_n`` rows of ``artifacts/recommendations.parquet`` (model, user, rank, item) of the
    given raw user ids only (a pyarrow filter: the file is not read whole)."""
    recs = pd.read_parquet(paths.recommendations, columns=["model", "user", "rank", "item"],
                           filters=[("user", "in", users)])
    return recs[recs["rank"] <= top_n]


def read_user_history(paths: Paths, user_ids: list[int]) -> Optional[pd.DataFrame]:
    """The training interactions (``user_id, item_id`` and ``timestamp`` when the split has one) of the
    given canonical user ids, in file order (a pyarrow filter: the file is not read whole); ``None`` without
    a training split."""
    path = paths.split / "train.parquet"
    if not path.is_file():
        return None
    names = pq.ParquetFile(path).schema_arrow.names
    columns = ["user_id", "item_id"] + (["timestamp"] if "timestamp" in names else [])
    return pd.read_parquet(path, columns=columns, filters=[("user_id", "in", [int(u) for u in user_ids])])


COLD_START_COLUMNS = ["model", "kind", "k", "id", "ndcg@20"]


def cold_start_per_user_path(paths: Paths) -> Path:
    """``artifacts/cold_start_per_user.parquet`` (the evaluate stage's per-user cold-start values)."""
    path = getattr(paths, "cold_start_per_user", None)
    return Path(path) if path is not None else Path(paths.root) / "artifacts" / "cold_start_per_user.parquet"


def read_cold_start_per_user(paths: Paths, notes: list[str]) -> Optional[pd.DataFrame]:
    """The per-user cold-start table (``model, kind, k, id, ndcg@20``), ``None`` and a note when it is
    missing or lacks a column (the paired tests are then left out)."""
    root = Path(paths.root)
    path = cold_start_per_user_path(paths)
    what = "New users (paired tests)"
    if not path.is_file():
        notes.append(f"{what}: {rel(path, root)} not found; paired tests left out.")
        return None
    names = pq.ParquetFile(path).schema_arrow.names
    missing = [c for c in COLD_START_COLUMNS if c not in names]
    if missing:
        notes.append(f"{what}: {rel(path, root)} lacks column(s) {', '.join(missing)}; paired tests left out.")
        return None
    return pd.read_parquet(path, columns=COLD_START_COLUMNS)


def read_timings(paths: Paths, notes: list[str]) -> Optional[list[dict[str, Any]]]:
    """``{stage, seconds, started}`` of every ``reports/timings/*.json`` except the report stage's own
    (it is written after the report, so it would be the previous run's), in file-name order; ``None``
    (and a note) when the folder is missing."""
    root = Path(paths.root)
    folder = paths.timing("report").parent
    if not folder.is_dir():
        notes.append(f"Stage timings: {rel(folder, root)} not found (stages run without the runner).")
        return None
    rows = []
    for path in sorted(folder.glob("*.json")):
        try:
            t = read_json(path)
        except (OSError, ValueError):
            notes.append(f"Stage timings: {rel(path, root)} is not valid JSON; skipped.")
            continue
        if not isinstance(t, dict):
            continue
        stage = str(t.get("stage") or path.stem)
        if stage == "report":
            continue
        rows.append({"stage": stage, "seconds": t.get("seconds"), "started": str(t.get("started") or "")})
    return rows


__all__ = [
    "ExampleTables", "rel", "require_json", "optional_json", "optional_parquet", "read_train_summary",
    "read_history", "read_train_degrees", "read_example_tables", "read_recommendations", "read_timings",
    "read_user_history", "cold_start_per_user_path", "read_cold_start_per_user", "COLD_START_COLUMNS",
]

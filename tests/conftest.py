"""Shared fixtures. Real datasets live in ../shared/data (never copied into the repo): tests that read
them are marked ``realdata``; they skip with the reason where the folder is absent, except under
``CI=true``, where a missing folder is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def require_shared(name: str = "") -> Path:
    """The folder ../shared/data/<name>; skip (or fail under CI=true) when it is absent."""
    path = SHARED_DATA / name if name else SHARED_DATA
    if not path.exists():
        reason = f"real dataset folder {path} is absent"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: real-data tests must run)")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_data_dir() -> Path:
    return require_shared()

"""The Prefect layer: retry policy, clean failures, and the stage flow on the ephemeral API."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from gnnrec.errors import DataError, ParamsError
from tests.conftest import BIN, REPO, base_env
from tasks.stages import is_transient


@pytest.mark.parametrize("exc, transient", [
    (OSError(errno.EIO, "I/O error"), True),
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (TimeoutError("read timed out"), True),
    (ConnectionResetError("reset"), True),
    (FileNotFoundError(errno.ENOENT, "missing"), False),
    (PermissionError(errno.EACCES, "denied"), False),
    (DataError("bad row", file="x.csv", row=3), False),
    (ParamsError("train.lr", "a number", "fast"), False),
    (ValueError("a bug"), False),
])
def test_only_transient_errors_are_retried(exc, transient):
    assert is_transient(exc) is transient


def test_stage_flow_fails_cleanly_on_bad_params_with_the_ephemeral_api(tmp_path):
    """No server configured: the flow runs on Prefect's ephemeral API; a params error exits 2 with the
    key in the message and no traceback."""
    (tmp_path / "params.yaml").write_text("train:\n  lr: fast\n")
    env = base_env(tmp_path / "prefect-home")
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "flows.stage", "ingest", "--root", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "train.lr" in out and "expected a number" in out
    assert "Traceback" not in out
    assert not (tmp_path / "artifacts").exists()

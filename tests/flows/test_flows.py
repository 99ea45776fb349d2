"""The Prefect layer: retry policy, clean failures, and the stage flow on the ephemeral API."""

from __future__ import annotations

import errno
import subprocess
import sys
import time

import pytest

from flows._local_api import healthy
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
    """No server configured and the shared local API off: the flow runs on Prefect's own temporary API;
    a params error exits 2 with the key in the message and no traceback."""
    (tmp_path / "params.yaml").write_text("train:\n  lr: fast\n")
    env = base_env(tmp_path / "prefect-home")
    env["PYTHONPATH"] = str(REPO)
    env["GNNREC_LOCAL_API"] = "0"
    proc = subprocess.run([sys.executable, "-m", "flows.stage", "ingest", "--root", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "train.lr" in out and "expected a number" in out
    assert "Traceback" not in out
    assert not (tmp_path / "artifacts").exists()


def test_stages_without_a_configured_api_share_one_local_server_that_stops_when_idle(tmp_path):
    """Plain ``dvc repro``: the first stage starts a local API server, the next stage uses the same one
    (no temporary server per stage), and it stops by itself once unused for the idle time."""
    (tmp_path / "params.yaml").write_text("train:\n  lr: fast\n")
    home = tmp_path / "prefect-home"
    env = base_env(home)
    # idle time: long enough to span the second stage's start-up (imports) on a loaded 2-core machine
    env.update({"PYTHONPATH": str(REPO), "GNNREC_LOCAL_API_IDLE_SECONDS": "30"})
    url_file = home / "gnnrec-local-api" / "url"
    urls = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "flows.stage", "ingest", "--root", str(tmp_path)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "train.lr" in out, out
        assert "Starting temporary server" not in out, out      # not Prefect's per-process server
        urls.append(url_file.read_text())
    assert urls[0] == urls[1] and urls[0].startswith("http://127.0.0.1:")
    deadline = time.monotonic() + 150
    while healthy(urls[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not healthy(urls[0]), "the shared server did not stop after its idle time"
    assert not url_file.exists()

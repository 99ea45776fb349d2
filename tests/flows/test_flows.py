"""The Prefect layer: retry policy, clean failures and exit statuses, what a stage prints, and the stage flow
on the ephemeral API and on the shared local API."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import time

import pytest
import yaml

from flows._local_api import healthy
from gnnrec.errors import DataError, ParamsError
from tasks.stages import is_transient
from tests.conftest import REPO, base_env
from tests.reliability.cases import CSV

CLOCK = r"\d\d:\d\d:\d\d"


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


@pytest.fixture(scope="module")
def stage_env(tmp_path_factory):
    """One PREFECT_HOME for this module's stage processes: they share one local API server."""
    env = base_env(tmp_path_factory.mktemp("prefect-home"))
    env.update({"PYTHONPATH": str(REPO), "GNNREC_LOCAL_API_IDLE_SECONDS": "30"})
    return env


def _csv_project(root):
    (root / "data").mkdir()
    (root / "data" / "interactions.csv").write_text(CSV)
    (root / "params.yaml").write_text(yaml.safe_dump({"data": {"source": "csv", "path": str(root / "data")}}))
    return root


def _run(env, *args, timeout=600):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return proc, proc.stdout + proc.stderr


def test_a_stage_through_a_pipe_prints_one_start_and_one_end_line_without_prefect_prefixes(tmp_path, stage_env):
    """The output is not a terminal (as under DVC or CI): plain lines, each with one time and the stage's
    name, no Prefect log prefix (a second time, a flow run name), no progress bar."""
    project = _csv_project(tmp_path)
    proc, out = _run(stage_env, "-m", "flows.stage", "ingest", "--root", str(project))
    assert proc.returncode == 0, out
    lines = proc.stdout.splitlines()
    assert [line for line in lines if re.fullmatch(rf"{CLOCK} ingest  started", line)] == [lines[0]], out
    ends = [line for line in lines if re.fullmatch(rf"{CLOCK} ingest  done in [0-9.]+ s \(work [0-9.]+ s\)", line)]
    assert ends == [lines[-1]], out
    assert not [line for line in out.splitlines() if len(re.findall(r"\d\d:\d\d:\d\d", line)) > 1], out
    assert "Flow run '" not in out and "Task run '" not in out and " | INFO " not in out, out
    assert "\x1b[" not in out, out
    assert (project / "artifacts" / "ingest" / "manifest.json").exists()


def test_a_bug_in_a_stage_exits_1_with_its_traceback(tmp_path, stage_env):
    """Not bad input: exit status 1 (2 is for bad input), the traceback shown, the flow run failed."""
    project = _csv_project(tmp_path)
    code = ("import sys, tasks.stages as t\n"
            "def bug(*a, **k): raise ValueError('a bug in a stage')\n"
            "t.run_stage = bug\n"
            "from flows.stage import main\n"
            f"sys.exit(main(['ingest', '--root', {str(project)!r}]))\n")
    proc, out = _run(stage_env, "-c", code)
    assert proc.returncode == 1, out
    assert "Traceback" in out and "ValueError: a bug in a stage" in out, out
    assert "gnnrec: stage ingest failed" in proc.stderr, out

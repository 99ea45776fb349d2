"""Concurrency outside DVC: one stage at a time per project (``artifacts/.lock``); a second one fails at
once with a message naming the running stage. (Two ``dvc repro`` / pipeline runs: test_dvc_reliability.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gnnrec.errors import ConcurrentRunError
from gnnrec.paths import Paths
from gnnrec.stages import holder_path, project_lock, run_stage
from tests.conftest import REPO
from tests.reliability.conftest import run_cli, write_params

# a stage holding the project's lock in another process until it is killed
_HOLDER = """
import sys, time
from pathlib import Path
from gnnrec.paths import Paths
from gnnrec.stages import project_lock
with project_lock(Paths(Path(sys.argv[1])), "train@mf"):
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def project(tmp_path):
    write_params(tmp_path, {"data": {"source": "csv", "path": str(tmp_path / "data")}})
    return tmp_path


def test_a_second_stage_fails_clearly_while_one_runs(project, record_case):
    record_case("concurrency", "two stages of one project at once (in process)", "the second fails, exit 2",
                "ConcurrentRunError names the running stage, its pid and the lock file")
    with project_lock(Paths(project), "train@lightgcn"):
        with pytest.raises(ConcurrentRunError) as info:
            run_stage("split", root=project)
        result = run_cli("stage", "evaluate", "--root", project)
    message = str(info.value)
    assert "another gnnrec stage is running" in message and "train@lightgcn" in message
    assert f"pid {os.getpid()}" in message and str(Paths(project).lock) in message
    assert result.code == 2 and "another gnnrec stage is running" in result.output
    assert "Traceback" not in result.output


def test_the_lock_is_released_when_a_stage_fails(project):
    for _ in range(2):   # a failing stage (no data folder) must not keep the project locked
        result = run_cli("stage", "ingest", "--root", project)
        assert result.code == 2 and "another gnnrec stage" not in result.output, result.output
    with project_lock(Paths(project), "check"):
        pass


def test_the_holder_is_named_in_a_file_beside_the_lock_and_removed_after(project):
    paths = Paths(project)
    with project_lock(paths, "split"):
        info = json.loads(holder_path(paths).read_text())
        assert holder_path(paths) == paths.lock.with_name(".lock.holder.json")
        assert info["stage"] == "split" and info["pid"] == os.getpid() and info["started"]
    assert not holder_path(paths).exists()


def test_a_killed_holder_leaves_no_stale_lock(project, record_case):
    record_case("concurrency", "a stage holding the lock is killed (SIGKILL)", "the next stage runs at once",
                "the OS drops the lock with its process; the holder file left behind is overwritten")
    paths = Paths(project)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(project)], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConcurrentRunError) as info:         # another process holds it: fails at once
            with project_lock(paths, "split"):
                pass
        assert "train@mf" in str(info.value) and f"pid {holder.pid}" in str(info.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert holder_path(paths).exists()                           # killed: it could not clean up
    t0 = time.monotonic()
    with project_lock(paths, "split"):
        assert time.monotonic() - t0 < 1.0
        assert json.loads(holder_path(paths).read_text())["stage"] == "split"

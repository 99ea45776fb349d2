"""Concurrency outside DVC: one stage at a time per project (``artifacts/.lock``); a second one fails at
once with a message naming the running stage. (Two ``dvc repro`` / pipeline runs: test_dvc_reliability.)"""

from __future__ import annotations

import os

import pytest

from gnnrec.errors import ConcurrentRunError
from gnnrec.paths import Paths
from gnnrec.stages import project_lock, run_stage
from tests.reliability.conftest import run_cli, write_params


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

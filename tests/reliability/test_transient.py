"""Transient vs permanent failures under Prefect (a real server: the session's ``prefect_server``).

A transient I/O error (EIO) injected once into a stage run is retried by the task's policy and the stage
succeeds; an input error (:class:`gnnrec.errors.DataError`) and a bug fail after one attempt, with the
original message in the flow run's state and in the CLI's output."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from gnnrec.errors import DataError
from tests.conftest import REPO, base_env
from tests.reliability.cases import CSV
from tests.reliability.conftest import write_params

pytestmark = [pytest.mark.slow]
GROUP = "transient and permanent failures"


@pytest.fixture(scope="module")
def prefect_api(prefect_server):
    """This process's Prefect client pointed at the session's server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"], PREFECT_HOME: prefect_server["home"]}):
        yield prefect_server


@pytest.fixture
def project(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "interactions.csv").write_text(CSV)
    write_params(tmp_path, {"data": {"source": "csv", "path": str(tmp_path / "data")}})
    return tmp_path


def _stage_with(monkeypatch, failures):
    """Make the stage task call fail with ``failures`` (one exception per call) before the real stage runs."""
    import tasks.stages as task_module

    real = task_module.run_stage
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return real(*args, **kwargs)

    monkeypatch.setattr(task_module, "run_stage", flaky)
    return calls


def _task_runs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def test_a_transient_io_error_is_retried_and_the_stage_succeeds(prefect_api, project, monkeypatch, record_case):
    from flows.stage import stage_flow

    record_case(GROUP, "OSError(EIO) injected once into a stage", "retried by Prefect; the stage succeeds",
                "task retries=2 with retry_condition_fn(is_transient)")
    calls = _stage_with(monkeypatch, [OSError(errno.EIO, "Input/output error (injected)")])
    state = stage_flow("ingest", root=str(project), return_state=True)
    assert state.is_completed(), state.message
    assert len(calls) == 2
    assert (project / "artifacts" / "ingest" / "manifest.json").exists()
    runs = [r for r in _task_runs(state.state_details.flow_run_id) if r.name.startswith("ingest")]
    assert len(runs) == 1 and runs[0].run_count == 2 and runs[0].state.is_completed()


def test_a_permanent_error_fails_fast_with_its_message(prefect_api, project, monkeypatch, record_case):
    from flows.stage import stage_flow

    record_case(GROUP, "DataError (bad input) in a stage", "fails after 1 attempt; message in the flow state")
    error = DataError("expected 2 fields, found 3", file="/data/interactions.csv", row=7)
    calls = _stage_with(monkeypatch, [error, error, error])
    state = stage_flow("ingest", root=str(project), return_state=True)
    assert state.is_failed()
    assert len(calls) == 1
    assert "/data/interactions.csv, row 7: expected 2 fields, found 3" in state.message
    runs = [r for r in _task_runs(state.state_details.flow_run_id) if r.name.startswith("ingest")]
    assert len(runs) == 1 and runs[0].run_count == 1


def test_a_bug_is_not_retried(prefect_api, project, monkeypatch, record_case):
    from flows.stage import stage_flow

    record_case(GROUP, "a bug (ValueError) in a stage", "fails after 1 attempt (not retried)")
    calls = _stage_with(monkeypatch, [ValueError("a bug"), ValueError("a bug"), ValueError("a bug")])
    state = stage_flow("ingest", root=str(project), return_state=True)
    assert state.is_failed() and len(calls) == 1 and "a bug" in state.message


def test_a_permanent_error_reaches_the_cli_output(prefect_server, project, record_case):
    record_case(GROUP, "bad input through python -m flows.stage (a real process)",
                "exit 2, the original message, no traceback")
    (project / "data" / "interactions.csv").write_bytes(b"user_id,item_id\n1,\x00\x01\n")
    env = base_env(prefect_server["home"])
    env.update({"PREFECT_API_URL": prefect_server["url"], "PYTHONPATH": str(REPO)})
    proc = subprocess.run([sys.executable, "-m", "flows.stage", "ingest", "--root", str(project)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "stage ingest failed" in proc.stderr and "interactions.csv, row 2: binary data" in proc.stderr, out
    assert "Traceback" not in out

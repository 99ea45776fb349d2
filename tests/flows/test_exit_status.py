"""Exit status 2 for bad input from every entry point a person types: a message naming what is wrong, no
traceback (``gnnrec.errors.GnnrecError``, a bad command line); 1 is for bugs. The stage flow's own cases
(bad params, a bug) are in test_flows.py, the pipeline's bad input in tests/e2e/test_pipeline_flow.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import BIN, REPO, base_env


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = base_env(tmp_path_factory.mktemp("prefect-home"))
    env["PYTHONPATH"] = str(REPO)
    return env


def _run(env, *args, timeout=300):
    proc = subprocess.run(list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, proc.stdout + proc.stderr


@pytest.mark.parametrize("args", [["nope"], ["train"], ["ingest", "--model", "mf"], ["--no-such-option"]])
def test_a_bad_stage_command_line_exits_2(args, env):
    proc, out = _run(env, sys.executable, "-m", "flows.stage", *args)
    assert proc.returncode == 2, out
    assert "Traceback" not in out and ("Invalid value" in out or "No such option" in out), out


@pytest.mark.parametrize("args, needle", [(["-S", "train.epochs"], "KEY=VALUE"), (["-S", "=3"], "KEY=VALUE"),
                                          (["--no-such-option"], "No such option")])
def test_a_bad_pipeline_command_line_exits_2(args, needle, tmp_path, env):
    proc, out = _run(env, sys.executable, "-m", "flows.pipeline", "--root", str(tmp_path), *args)
    assert proc.returncode == 2, out
    assert needle in out and "Traceback" not in out, out


def test_the_deployment_without_a_server_exits_2(env):
    proc, out = _run(env, sys.executable, "flows/deploy.py")
    assert proc.returncode == 2, out
    assert "set PREFECT_API_URL" in proc.stderr and "Traceback" not in out, out


def test_the_gnnrec_command_exits_2_on_bad_params(tmp_path, env):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": "fast"}}))
    proc, out = _run(env, str(BIN / "gnnrec"), "stage", "ingest", "--root", str(tmp_path))
    assert proc.returncode == 2, out
    assert "train.lr" in proc.stderr and "Traceback" not in out, out


def test_the_benchmarks_exit_2_on_a_missing_dataset_folder(tmp_path, env):
    proc, out = _run(env, sys.executable, "-m", "benchmarks", "--only", "eval", "--datasets", "movielens-100k",
                     "--data-root", str(tmp_path / "absent"), "--out", str(tmp_path / "out"), "--fresh")
    assert proc.returncode == 2, out
    assert "gnnrec: benchmark eval:" in proc.stderr and "data folder does not exist" in proc.stderr, out
    assert "Traceback" not in out, out
    bad = _run(env, sys.executable, "-m", "benchmarks", "--only", "nope")[0]
    assert bad.returncode == 2 and "unknown sub-benchmark" in bad.stderr

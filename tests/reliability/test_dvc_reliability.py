"""Reliability under DVC and Prefect, in a temporary copy of the repository (``dvc repro`` against the
session's real Prefect server): a SIGKILL during ``train@lightgcn`` and a rerun that resumes, two pipeline
runs at once, bad input that fails early and keeps the last good outputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from gnnrec.io import load_torch
from tests.conftest import BIN, base_env
from tests.e2e.conftest import make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# long enough training to kill it after epoch 2 (about 10 s in all on 2 idle cores)
RELIABLE = {"models": ["lightgcn", "popularity"],
            "data": {"synthetic": {"n_users": 200, "n_items": 300, "n_interactions": 8000, "n_social": 600}},
            "train": {"epochs": 60, "batch_size": 128, "patience": 1000, "num_threads": 1}}
# what dvc says when another dvc process holds the repo lock, or the outputs a stage needs (rwlock)
DVC_LOCKED = ("Unable to acquire lock", "is busy, it is being blocked by")


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_server):
    env = base_env(prefect_server["home"])
    env["PREFECT_API_URL"] = prefect_server["url"]
    proj = make_project(tmp_path_factory.mktemp("reliability-dvc"), env)
    proj.set_params(RELIABLE)
    proj.run("git", "commit", "-qam", "reliability params")
    proj.dvc("repro")
    return proj


def _lock_md5(project, path: str) -> str:
    lock = yaml.safe_load(project.read("dvc.lock"))
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] == path:
                return out["md5"]
    raise KeyError(path)


def _wait_for_epoch(project, proc, at_least: int, timeout: float = 300) -> int:
    """The epoch of ``proc``'s saved resume state once it is >= ``at_least``."""
    started = time.time() - 1
    deadline = started + timeout
    while True:
        assert proc.poll() is None, f"dvc repro ended (exit {proc.returncode}) before the kill"
        for path in (project.root / "artifacts" / "checkpoints").glob("train@lightgcn-*.pt"):
            try:
                if path.stat().st_mtime < started:
                    continue
                epoch = int(load_torch(path)["epoch"])
            except Exception:  # noqa: BLE001 - replaced meanwhile
                continue
            if epoch >= at_least:
                return epoch
        assert time.time() < deadline, "no resume state appeared"
        time.sleep(0.05)


def _spawn(project, *cmd: str) -> subprocess.Popen:
    return subprocess.Popen(list(cmd), cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_concurrent_runs_fail_clearly_and_nothing_is_corrupted(project, record_case):
    """While a stage runs under ``dvc repro``: a second pipeline run, a second ``dvc repro`` and a stage run
    outside DVC all fail at once with a clear message; afterwards the project checks out clean."""
    metrics = project.read("reports/metrics.json")
    project.set_params({"train": {"epochs": 100_000}})       # a holder that outlives every probe
    holder = _spawn(project, str(BIN / "dvc"), "repro", "--single-item", "train@lightgcn")
    try:
        _wait_for_epoch(project, holder, 1)
        probes = {
            "pipeline": _spawn(project, sys.executable, "-m", "flows.pipeline"),
            "dvc": _spawn(project, str(BIN / "dvc"), "repro"),
            "stage": _spawn(project, sys.executable, "-m", "flows.stage", "evaluate"),
        }
        outputs = {name: (p.communicate(timeout=600)[0], p.returncode) for name, p in probes.items()}
        assert holder.poll() is None, "the holder ended before the probes did"
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        project.run("git", "checkout", "-q", "params.yaml")
        shutil.rmtree(project.root / "artifacts" / "checkpoints", ignore_errors=True)  # the holder's stale state

    out, rc = outputs["pipeline"]
    assert rc != 0 and "gnnrec: pipeline failed: another DVC run" in out and "holds the lock" in out, out
    assert any(m in out for m in DVC_LOCKED) and "Traceback" not in out, out
    out, rc = outputs["dvc"]
    assert rc != 0 and any(m in out for m in DVC_LOCKED), out
    out, rc = outputs["stage"]
    assert rc == 2 and "another gnnrec stage is running" in out and "train@lightgcn" in out, out
    assert "Traceback" not in out, out
    record_case("concurrency", "python -m flows.pipeline while dvc repro runs", "fails at once, clear message",
                "'another DVC run ... holds the lock of the project ...: this run changed nothing'")
    record_case("concurrency", "dvc repro while dvc repro runs", "fails at once",
                "DVC: 'Unable to acquire lock' or '... is busy, it is being blocked by (PID ...)'")
    record_case("concurrency", "python -m flows.stage while dvc repro runs a stage", "fails at once, exit 2",
                "'another gnnrec stage is running in this project (stage train@lightgcn, pid ...)'")

    # nothing corrupted: the killed holder's outputs come back from DVC's cache, the rest never changed
    project.dvc("checkout")
    assert "up to date" in project.dvc("status").stdout
    assert project.read("reports/metrics.json") == metrics


def test_kill_during_dvc_repro_then_rerun_resumes(project, record_case):
    model_md5 = _lock_md5(project, "artifacts/models/lightgcn.pt")
    metrics = project.read("reports/metrics.json")
    train = _spawn(project, str(BIN / "dvc"), "repro", "--force", "--single-item", "train@lightgcn")
    try:
        killed_after = _wait_for_epoch(project, train, 2)
    finally:
        if train.poll() is None:
            os.killpg(train.pid, signal.SIGKILL)
        train.wait(timeout=60)

    # killed: nothing at the final paths, the other outputs untouched, DVC sees the stage as changed
    assert not (project.root / "artifacts" / "models" / "lightgcn.pt").exists()
    assert project.read("reports/metrics.json") == metrics
    assert "train@lightgcn" in project.dvc("status").stdout

    # --force: a plain dvc repro would restore the stage from DVC's run-cache instead of running it
    rerun = project.dvc("repro", "--force", "--single-item", "train@lightgcn")
    assert "resuming from the state saved after epoch" in rerun.stdout + rerun.stderr, rerun.stdout[-3000:]
    assert _lock_md5(project, "artifacts/models/lightgcn.pt") == model_md5   # bit-identical model
    assert not list((project.root / "artifacts" / "checkpoints").glob("*.pt"))
    project.dvc("repro")
    assert "up to date" in project.dvc("status").stdout
    assert project.read("reports/metrics.json") == metrics
    m = json.loads(metrics)["lightgcn"]
    record_case("crash safety and resume", "SIGKILL of dvc repro during train@lightgcn, then dvc repro",
                "resumes; same model md5 in dvc.lock; dvc status clean",
                f"killed after epoch >= 2 of {RELIABLE['train']['epochs']}; lightgcn ndcg@5 {m['ndcg@5']}, "
                f"recall@5 {m['recall@5']} before and after")
    assert killed_after >= 2


BAD = {
    "binary garbage as interactions.csv": ("ingest", "interactions.csv, row 1: binary data"),
    "unknown params key": ("report", "key 'trian': expected a known section"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_under_dvc_fails_early_and_the_last_good_outputs_come_back(project, tmp_path, case, record_case):
    stage, needle = BAD[case]
    record_case("bad input under dvc repro", case, f"reject at {stage}",
                "no traceback; later outputs untouched; dvc checkout restores the rest; dvc status clean")
    before = {rel: (project.root / rel).read_bytes() for rel in ("reports/metrics.json", "reports/report.html",
                                                                 "artifacts/ingest/interactions.parquet")}
    if case.startswith("binary"):
        (tmp_path / "interactions.csv").write_bytes(bytes(range(256)) * 4)
        project.set_params({"data": {"source": "csv", "path": str(tmp_path)}})
    else:
        (project.root / "params.yaml").write_text(project.read("params.yaml") + "trian:\n  lr: 0.1\n")
    try:
        result = project.dvc("repro", check=False)
        out = result.stdout + result.stderr
        assert result.returncode != 0
        assert needle in out and f"Running stage '{stage}'" in out, out[-3000:]
        assert "Traceback" not in out
        assert (project.root / "reports" / "metrics.json").read_bytes() == before["reports/metrics.json"]
        if stage == "ingest":
            assert "Running stage 'validate'" not in out
            assert (project.root / "reports" / "report.html").read_bytes() == before["reports/report.html"]
    finally:
        project.run("git", "checkout", "-q", "params.yaml")
    project.dvc("checkout")
    assert "up to date" in project.dvc("status").stdout
    for rel, data in before.items():
        assert (project.root / rel).read_bytes() == data, rel

"""Crash safety: a SIGKILL during training, then a rerun, resumes from the last checkpoint and ends with
the same metrics as an uninterrupted run; a kill in any stage leaves nothing partial at a final output
path (every write goes through :mod:`gnnrec.io`'s atomic helpers)."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from gnnrec.io import atomic_path, load_torch, write_text
from gnnrec.stages import run_stage
from tests.conftest import REPO
from tests.reliability.conftest import PY, copy_project, run_cli

GROUP = "crash safety and resume"
MODEL_OUTPUTS = ("artifacts/models/lightgcn.pt", "reports/train/lightgcn.json", "reports/curves/lightgcn.csv",
                 "reports/timings/train@lightgcn.json")


def _wait_for_checkpoint(root: Path, proc: subprocess.Popen, at_least: int, timeout: float = 240) -> int:
    """The epoch of the saved resume state once it is >= ``at_least`` (the process must still run)."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the train stage ended (exit {proc.returncode}) before it could be killed:\n{out[-3000:]}")
        for path in (root / "artifacts" / "checkpoints").glob("train@lightgcn-*.pt"):
            try:
                epoch = int(load_torch(path)["epoch"])   # written atomically: always a complete file
            except Exception:  # noqa: BLE001 - replaced between glob and open: look again
                continue
            if epoch >= at_least:
                return epoch
        assert time.time() < deadline, "no resume state appeared"
        time.sleep(0.02)


def test_sigkill_during_training_then_rerun_resumes_with_identical_metrics(pipeline_project, tmp_path, python_env,
                                                                          record_case):
    root = copy_project(pipeline_project, tmp_path / "killed")
    for rel in MODEL_OUTPUTS + ("reports/metrics.json",):   # as DVC does before it runs the stage
        (root / rel).unlink()
    epochs = 40
    proc = subprocess.Popen([PY, "-m", "gnnrec.cli", "stage", "train", "--model", "lightgcn", "--root", str(root)],
                            cwd=REPO, env=python_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        _wait_for_checkpoint(root, proc, at_least=1)
        # meanwhile, a second stage in the same project fails at once and clearly (the project lock)
        busy = run_cli("stage", "split", "--root", root)
        killed_after = _wait_for_checkpoint(root, proc, at_least=2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    assert busy.code == 2 and "another gnnrec stage is running" in busy.output, busy.output
    assert "train@lightgcn" in busy.output and f"pid {proc.pid}" in busy.output, busy.output
    for rel in MODEL_OUTPUTS:                               # nothing written at a final output path
        assert not (root / rel).exists(), rel

    summary = run_stage("train", model="lightgcn", root=root)
    assert summary["resumed_from_epoch"] >= killed_after >= 2
    assert summary["epochs_run"] == epochs
    assert not list((root / "artifacts" / "checkpoints").glob("*")), "the resume state outlived the stage"
    run_stage("evaluate", root=root)

    resumed = (root / "reports" / "metrics.json").read_bytes()
    uninterrupted = (pipeline_project / "reports" / "metrics.json").read_bytes()
    assert resumed == uninterrupted
    a = load_torch(pipeline_project / "artifacts" / "models" / "lightgcn.pt")["state_dict"]
    b = load_torch(root / "artifacts" / "models" / "lightgcn.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cols = ["epoch", "loss", "val_score"]
    pd.testing.assert_frame_equal(pd.read_csv(pipeline_project / "reports" / "curves" / "lightgcn.csv")[cols],
                                  pd.read_csv(root / "reports" / "curves" / "lightgcn.csv")[cols])
    leftovers = [p for p in (root / "artifacts").rglob("*.tmp")]
    assert not leftovers, leftovers

    import json
    m_a = json.loads(uninterrupted)["lightgcn"]
    m_b = json.loads(resumed)["lightgcn"]
    record_case(GROUP, "SIGKILL during train@lightgcn (in-process project), rerun", "resumes; same metrics.json bytes",
                f"killed after epoch >= 2 of {epochs}, resumed; lightgcn ndcg@10 {m_a['ndcg@10']} uninterrupted vs "
                f"{m_b['ndcg@10']} resumed, recall@10 {m_a['recall@10']} vs {m_b['recall@10']}; model weights equal")
    record_case("concurrency", "a second stage while train runs (outside DVC)", "fails at once, exit 2",
                "names the running stage and its pid (flock on artifacts/.lock)")


def test_a_resume_state_from_other_inputs_is_not_used(pipeline_project, tmp_path, record_case):
    """The state is keyed by the stage's inputs and params: after a change, a stale state is ignored."""
    from gnnrec.config import load_params
    from gnnrec.paths import Paths
    from gnnrec.stages.train import resume_path

    record_case(GROUP, "resume state of other params or a corrupt one", "ignored; training starts from epoch 1")
    root = copy_project(pipeline_project, tmp_path / "p")
    params = load_params(root / "params.yaml")
    key_before = resume_path(params, Paths(root), "mf", params.train_for("mf"))
    text = (root / "params.yaml").read_text().replace("seed: 11", "seed: 12")
    (root / "params.yaml").write_text(text)
    params2 = load_params(root / "params.yaml")
    assert resume_path(params2, Paths(root), "mf", params2.train_for("mf")) != key_before
    (root / "params.yaml").write_text(text.replace("seed: 12", "seed: 11"))
    # a corrupt state at the right key: warned about, removed, training starts from scratch
    key_before.parent.mkdir(parents=True, exist_ok=True)
    key_before.write_bytes(b"not a checkpoint")
    summary = run_stage("train", model="mf", root=root)
    assert summary["resumed_from_epoch"] == 0 and not key_before.exists()
    a = load_torch(pipeline_project / "artifacts" / "models" / "mf.pt")["state_dict"]
    b = load_torch(root / "artifacts" / "models" / "mf.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ atomic writes
WRITE_CALLS = {"to_parquet", "to_csv", "to_json", "to_pickle", "write_text", "write_bytes", "savefig", "save",
               "dump", "write_table", "to_feather", "to_hdf"}
ALLOWED = {("gnnrec/io.py", "*"),                      # the atomic helpers themselves (they write to a temp path)
           ("gnnrec/reporting/figures.py", "savefig")}  # renders PNG bytes into memory (io.BytesIO)


def _write_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        # methods and module functions (df.to_parquet, path.write_text, torch.save, json.dump); a bare
        # write_text(...) is gnnrec.io's atomic helper, imported by name
        name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if name in WRITE_CALLS:
            to_stream = len(node.args) > 1 or any(k.arg == "stream" for k in node.keywords)
            if name != "dump" or to_stream:          # yaml.dump(obj) / json.dumps return text
                found.append(name)
        if name == "open" and isinstance(node.func, ast.Name):
            mode = (node.args[1] if len(node.args) > 1
                    else next((k.value for k in node.keywords if k.arg == "mode"), None))
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                found.append("open")
    return found


def test_every_output_is_written_through_the_atomic_helpers(record_case):
    record_case(GROUP, "audit: no file write outside gnnrec.io's atomic helpers", "none found",
                "src/gnnrec, flows, tasks (AST scan)")
    offenders = []
    for base in (REPO / "src", REPO / "flows", REPO / "tasks"):
        for path in base.rglob("*.py"):
            rel = str(path.relative_to(REPO / "src" if base.name == "src" else REPO))
            for call in _write_calls(path):
                if (rel, "*") not in ALLOWED and (rel, call) not in ALLOWED:
                    offenders.append(f"{rel}: {call}(...)")
    assert not offenders, "write through gnnrec.io (atomic) instead: " + "; ".join(offenders)


def test_a_process_killed_mid_write_leaves_nothing_at_the_final_path(tmp_path, python_env, record_case):
    record_case(GROUP, "SIGKILL in the middle of a file write", "final path untouched; stale temp removed later")
    target = tmp_path / "out" / "table.parquet"
    write_text(target, "last good\n")
    code = ("import os, signal, sys\nfrom gnnrec.io import atomic_path\n"
            f"with atomic_path({str(target)!r}) as tmp:\n"
            "    tmp.write_bytes(b'half' * 1000)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([PY, "-c", code], env=python_env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "last good\n"
    stale = list(target.parent.glob(".table.parquet.*.tmp"))
    assert len(stale) == 1                        # the killed writer's temp file ...
    with atomic_path(target) as tmp:              # ... is removed by the next writer of that path
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and not list(target.parent.glob("*.tmp"))

"""One trial of a sweep: a DVC experiment run in a workspace of its own, then pushed back to the user's repo.

DVC's repository lock (``.dvc/tmp/lock``) and gnnrec's stage lock (``artifacts/.lock``) allow one run per
workspace, so a trial does not run in the user's workspace. It

1. clones the user's repository at the sweep's commit into a fresh folder (on whichever machine runs it),
2. points that clone's DVC cache at the shared cache (``cache.dir``: the user's cache, or one every machine
   mounts), so the data and every stage already run with the same inputs come from it (DVC's run cache: a
   trial that changes only ``train`` reruns only ``train`` and what follows),
3. checks out the data its ``.dvc`` files track, runs ``dvc exp run --name <trial> -S ...`` with the trial's
   overrides, with the clone's own code first on ``PYTHONPATH`` (the commit's code, not the installed one),
4. pushes the experiment to the user's repository (``dvc exp push --no-cache``: the outputs are in the shared
   cache already), where ``dvc exp show`` lists it with its params and metrics.

A trial whose ``dvc exp run`` fails leaves no experiment (DVC records one only when every stage ran), so the
trial records one itself: ``<trial>-failed``, a commit on the sweep's commit with the trial's ``params.yaml``
and without ``dvc.lock`` (no stage's outputs are claimed: ``dvc exp show`` lists its params and no metrics),
under DVC's experiment ref (``refs/exps/<commit[:2]>/<commit[2:]>/<name>``), pushed like the others.

It returns a plain dict (status, metrics, wall time, error) that crosses process and machine boundaries.
The workspace is removed after a success and kept after a failure (its path is in the result).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from gnnrec.sweep.grid import Trial

_STAGE_FAILED = "gnnrec: stage "
# Trials that run the same stage at once write the same objects into the shared DVC cache, and DVC can then
# read an object another process has not finished writing ("failed to load directory ... .dvc/cache/...").
# The experiment is rerun in its workspace (what finished is kept): at most this many times.
_CACHE_RETRIES = 2


def _cache_race(message: str, cache_dir: str) -> bool:
    return cache_dir in message and ("No such file or directory" in message or "failed to load" in message)


@dataclass(frozen=True)
class Source:
    """Where trials come from: the user's repository (a path or git URL), its commit, the shared DVC cache."""

    repo: str
    commit: str
    cache_dir: str
    dvc_files: tuple[str, ...] = ()        # the .dvc files to check out (data.dvc)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tools() -> tuple[str, str]:
    """The ``git`` and ``dvc`` executables (dvc next to this interpreter when it is not on ``PATH``)."""
    git = shutil.which("git") or "git"
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    return git, dvc


def trial_env(workspace: Path) -> dict[str, str]:
    """The environment of a trial's commands: this interpreter's folder first on ``PATH`` (the stages run
    ``python -m flows.stage``), the workspace's own code first on ``PYTHONPATH``, telemetry off."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    paths = [str(workspace / "src"), str(workspace)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update({"DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return env


class _StepFailed(Exception):
    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


def _error_text(proc: subprocess.CompletedProcess) -> str:
    """A failed command's reason: gnnrec's ``stage X failed`` lines, else DVC's ERROR line, else its tail."""
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith(_STAGE_FAILED)] or [ln for ln in lines if "ERROR" in ln]
    return " | ".join((picked or lines[-5:])[:3])[:1500] or f"exited with {proc.returncode}"


def _run(step: str, cmd: list[str], cwd: Path, env: dict[str, str], timeout: Optional[float]) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise _StepFailed(step, f"did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise _StepFailed(step, _error_text(proc))
    return proc.stdout


FAILED_SUFFIX = "-failed"
_FALLBACK_IDENTITY = ("-c", "user.name=gnnrec sweep", "-c", "user.email=gnnrec-sweep@localhost")


def record_failed(trial: Trial, source: Source, workspace: Path, env: dict[str, str], message: str,
                  timeout: Optional[float]) -> str:
    """Record the failed run as experiment ``<trial>-failed`` of the clone (see the module's docstring) and
    push it; its name. The commit is built in a temporary index: the workspace is left as the run left it."""
    git, dvc = tools()
    name = trial.name + FAILED_SUFFIX
    index = workspace / ".git" / "gnnrec-failed-index"
    genv = {**env, "GIT_INDEX_FILE": str(index)}
    _run("record failure", [git, "read-tree", source.commit], workspace, genv, timeout)
    _run("record failure", [git, "update-index", "--add", "params.yaml"], workspace, genv, timeout)
    _run("record failure", [git, "update-index", "--force-remove", "dvc.lock"], workspace, genv, timeout)
    tree = _run("record failure", [git, "write-tree"], workspace, genv, timeout).strip()
    commit_msg = f"gnnrec sweep: trial {trial.name} failed: {message}"[:4000]
    commit_cmd = ["commit-tree", tree, "-p", source.commit, "-m", commit_msg]
    try:
        commit = _run("record failure", [git, *commit_cmd], workspace, genv, timeout).strip()
    except _StepFailed:                 # no git identity configured on this machine
        commit = _run("record failure", [git, *_FALLBACK_IDENTITY, *commit_cmd], workspace, genv, timeout).strip()
    index.unlink(missing_ok=True)
    ref = f"refs/exps/{source.commit[:2]}/{source.commit[2:]}/{name}"
    _run("record failure", [git, "update-ref", ref, commit], workspace, env, timeout)
    _run("record failure", [dvc, "exp", "push", "--no-cache", "--force", "origin", name], workspace, env, timeout)
    return name


def read_metrics(workspace: Path) -> dict[str, Any]:
    """The trial's ``reports/metrics.json`` (model → metric → value, plus ``cold_start``)."""
    path = workspace / "reports" / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def run_trial(trial: Trial, source: Source, workdir: Optional[str] = None, timeout: Optional[float] = None,
              keep: bool = False, force: bool = False) -> dict[str, Any]:
    """Run ``trial`` as a DVC experiment in a fresh clone of ``source`` and push it back; never raises for a
    trial's own failure (the result says ``failed``, the step and DVC's or the stage's message). ``force``:
    every stage runs again (``dvc exp run --force``: nothing from the run cache, for timing a sweep)."""
    started = time.time()
    root = Path(workdir) if workdir else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f"{trial.name}-", dir=root))
    result: dict[str, Any] = {"name": trial.name, "overrides": list(trial.overrides),
                              "swept": {k: v for k, v in trial.swept}, "workspace": str(workspace),
                              "host": os.uname().nodename}
    git, dvc = tools()
    env = trial_env(workspace)
    try:
        _run("clone", [git, "clone", "--quiet", "--no-checkout", source.repo, str(workspace)], root, env, timeout)
        _run("checkout", [git, "checkout", "--quiet", source.commit], workspace, env, timeout)
        _run("cache", [dvc, "config", "--local", "cache.dir", source.cache_dir], workspace, env, timeout)
        if source.dvc_files:
            _run("data", [dvc, "checkout", "--quiet", *source.dvc_files], workspace, env, timeout)
        cmd = [dvc, "exp", "run", "--name", trial.name]
        for override in trial.overrides:
            cmd += ["-S", override]
        if force:
            cmd.append("--force")
        for attempt in range(1 + _CACHE_RETRIES):
            left = None if timeout is None else max(1.0, timeout - (time.time() - started))
            try:
                _run("dvc exp run", cmd, workspace, env, left)
                break
            except _StepFailed as exc:          # another trial was writing the same object into the shared cache
                if attempt == _CACHE_RETRIES or not _cache_race(exc.message, source.cache_dir):
                    raise
                result["retries"] = attempt + 1
                time.sleep(2.0 * (attempt + 1))
        result["metrics"] = read_metrics(workspace)
        result["experiment"] = trial.name
        _run("push", [dvc, "exp", "push", "--no-cache", "--force", "origin", trial.name], workspace, env, timeout)
        result["status"] = "completed"
    except _StepFailed as exc:
        result.update(status="failed", step=exc.step, error=exc.message)
        if exc.step == "dvc exp run":
            try:
                result["experiment"] = record_failed(trial, source, workspace, env, exc.message, timeout)
            except (_StepFailed, OSError) as again:       # reported with the trial; the others go on
                result["record_error"] = str(again)
    except OSError as exc:              # a missing git/dvc, a full disk: still one trial's failure
        result.update(status="failed", step="setup", error=f"{type(exc).__name__}: {exc}")
    result["wall_s"] = round(time.time() - started, 2)
    if result["status"] == "completed" and not keep:
        shutil.rmtree(workspace, ignore_errors=True)
        result["workspace"] = None
    return result

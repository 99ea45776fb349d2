"""Pipeline: wall time of every stage of ``dvc repro`` on the default data, and where it goes.

In a temporary copy of the repository (the files git would commit, as the e2e tests make it; its own git
repo, a fresh DVC cache and a fresh ``PREFECT_HOME``), the default synthetic data is generated and the
whole pipeline is run from scratch twice: the way ``make run`` runs it, ``python -m flows.pipeline --force``
(one Prefect flow around ``dvc repro --force``; each stage's command is a Prefect flow of its own), and as
a plain ``dvc repro --force`` from a shell.

Per stage: the wall time DVC spends on it (from its "Running stage" line to its "Updating lock file"
line, timestamped as the output streams) against the stage's own ``seconds`` in
``reports/timings/<stage>.json`` (the work inside ``gnnrec.stages.<name>.run``); the difference is the
orchestration overhead (a Python start, imports, the Prefect flow and task run, DVC's hashing and lock
file). The whole run's wall time has a target of <= 180 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, Result, loadavg

TARGET_SECONDS = 180.0
_RUNNING = re.compile(r"Running stage '([^']+)'")
_LOCK = re.compile(r"Updating lock file")
_SKIP_PREFIXES = ("data/", "reports/", "artifacts/", ".bench-", "dvc.lock")


def copy_project(dest: Path) -> Path:
    """The files git would commit (tracked, plus untracked but not ignored), without data and outputs."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith(_SKIP_PREFIXES) and rel != "data.dvc":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    bin_dir = str(Path(sys.executable).parent)
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "PREFECT_HOME": str(home),
                "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
                "GX_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"})
    return env


def _run(cmd: list[str], cwd: Path, env: dict) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def stage_walls(events: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Stage → seconds from its "Running stage" line to the next "Updating lock file" line (or the next
    stage, or ``end``). ``events`` are ``(time, line)`` in order; repeated lines (Prefect echoes what it
    prints) count once."""
    starts: list[tuple[str, float]] = []
    locks: list[float] = []
    for t, line in events:
        m = _RUNNING.search(line)
        if m and m.group(1) not in (s for s, _ in starts):
            starts.append((m.group(1), t))
        elif _LOCK.search(line):
            locks.append(t)
    walls = {}
    for k, (stage, t0) in enumerate(starts):
        nxt = starts[k + 1][1] if k + 1 < len(starts) else end
        lock = next((t for t in locks if t0 < t <= nxt), None)
        walls[stage] = (lock if lock is not None else nxt) - t0
    return walls


def _timed(cmd: list[str], project: Path, env: dict) -> dict:
    """Run ``cmd`` in ``project`` from scratch, timestamping its output; per-stage walls and own times."""
    events: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        events.append((time.perf_counter() - t0, line.rstrip("\n")))
    rc = proc.wait()
    total = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n" + "\n".join(line for _, line in events[-40:]))
    walls = stage_walls(events, total)
    own = {}
    for path in sorted((project / "reports" / "timings").glob("*.json")):
        entry = json.loads(path.read_text())
        own[entry.get("stage", path.stem)] = float(entry["seconds"])
    first = min((t for t, line in events if _RUNNING.search(line)), default=0.0)
    return {"total_seconds": total, "walls": walls, "own": own, "before_first_stage": first,
            "after_last_stage": total - first - sum(walls.values())}


def run_pipeline(keep: bool = False, log=print) -> dict[str, dict]:
    """Both ways of running the whole pipeline from scratch, one after the other in the same copy:
    ``python -m flows.pipeline --force`` (``make run``: one Prefect flow whose API every stage reports to)
    and a plain ``dvc repro --force`` from a shell (no Prefect API configured: each stage's flow starts a
    temporary local API of its own)."""
    root = Path(tempfile.mkdtemp(prefix="gnnrec-bench-pipeline-"))
    try:
        project = copy_project(root / "project")
        env = _env(root / "prefect-home")
        bin_dir = Path(sys.executable).parent
        _run([str(bin_dir / "gnnrec"), "data", "synthetic"], project, env)
        _run(["git", "init", "-q"], project, env)
        _run([str(bin_dir / "dvc"), "add", "-q", "data"], project, env)
        _run(["git", "add", "-A"], project, env)
        _run(["git", "commit", "-qm", "bench"], project, env)
        out = {}
        for label, cmd in (("python -m flows.pipeline --force", [sys.executable, "-m", "flows.pipeline", "--force"]),
                           ("dvc repro --force", [str(bin_dir / "dvc"), "repro", "--force"])):
            log(f"[pipeline] {label} in {project}")
            out[label] = _timed(cmd, project, env)
        return out
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def run(keep: bool = False) -> list[Result]:
    load_before = loadavg()
    runs = run_pipeline(keep=keep)
    results = []
    for label, out in runs.items():
        parts = []
        for stage, wall in out["walls"].items():
            own = out["own"].get(stage)
            overhead = wall - own if own is not None else None
            results.append(Result("synthetic (default)", "cpu", f"pipeline stage {stage} ({label})", wall * 1e3,
                                  extra={"stage_own_ms": None if own is None else own * 1e3,
                                         "orchestration_overhead_ms": None if overhead is None else overhead * 1e3}))
            parts.append(f"{stage} {wall:.1f} s (own {own:.1f} s)" if own is not None else f"{stage} {wall:.1f} s")
        own_total = sum(out["own"].get(s, 0.0) for s in out["walls"])
        total = out["total_seconds"]
        detail = (f"{total:.0f} s in all: stage work {own_total:.0f} s, per-stage orchestration "
                  f"{sum(out['walls'].values()) - own_total:.0f} s, before the first stage {out['before_first_stage']:.0f} s "
                  f"and after the last {out['after_last_stage']:.0f} s; " + ", ".join(parts))
        results.append(Result("synthetic (default)", "cpu", f"{label} of the default pipeline, from scratch",
                              total * 1e3, target=f"<= {TARGET_SECONDS:g} s", met=total <= TARGET_SECONDS,
                              extra={"stage_work_ms": own_total * 1e3, "flow_start_ms": out["before_first_stage"] * 1e3,
                                     "flow_end_ms": out["after_last_stage"] * 1e3, "loadavg_before": load_before,
                                     "loadavg_after": loadavg(), "detail": detail}))
        print(f"[pipeline] {label}: {detail}", flush=True)
    return results

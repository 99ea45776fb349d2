"""Pipeline: wall time of every stage of ``dvc repro`` on the default data, and where it goes.

In a temporary copy of the repository (the files git would commit, as the e2e tests make it; its own git
repo, a fresh DVC cache and a fresh ``PREFECT_HOME``), the default synthetic data is generated and the
whole pipeline is run from scratch twice: the way ``make run`` runs it, ``python -m flows.pipeline --force``
(one Prefect flow around ``dvc repro --force``; each stage's command is a Prefect flow of its own), and as
a plain ``dvc repro --force`` from a shell.

Per stage: the wall time DVC spends on it (from its "Running stage" line to its "Updating lock file"
line, timestamped as the output streams) against the stage's own work, ``seconds`` in
``reports/timings/<stage>.json`` (inside ``gnnrec.stages.<name>.run``); the difference is the
orchestration overhead, split by the stage process's first and last lines of output into the start (DVC
starting the process, Python, the entry point's imports), the inside (Prefect's import and API calls, the
flow and task run, the stage module's imports, ``import_seconds`` where the stage records it) and the end
(the process's exit, DVC hashing the outputs and writing the lock file). The whole run's wall time has a
target of <= 180 s on 2 cores.

    python -m benchmarks --only pipeline             # into reports/benchmarks.{json,md}
    python -m benchmarks.pipeline --modes dvc        # this benchmark alone, its tables on stdout
    python -m benchmarks.pipeline --modes dvc,dvc-warm --baseline 6863863   # before/after, back to back
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from benchmarks.common import REPO, Result, loadavg

TARGET_SECONDS = 180.0
_RUNNING = re.compile(r"Running stage '([^']+)'")
_LOCK = re.compile(r"(Updating|Generating) lock file")
_DVC_LINE = re.compile(r"^(> |Running stage |(Updating|Generating) lock file|(Stage )?'.*' didn't change)")
_SKIP_PREFIXES = ("data/", "reports/", "artifacts/", ".bench-", "dvc.lock")


def copy_project(dest: Path, repo: Path = REPO) -> Path:
    """The files git would commit (tracked, plus untracked but not ignored), without data and outputs."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=repo, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        src = repo / rel
        if src.is_file() and not rel.startswith(_SKIP_PREFIXES) and rel != "data.dvc":
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def project_env(home: Path, repo: Path = REPO) -> dict:
    """The environment of commands in a copy: this interpreter first on PATH, its own PREFECT_HOME, telemetry
    off, a git identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if repo != REPO:            # another checkout's library first (this one's is installed in the venv)
        paths = [str(repo / "src"), str(repo), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    bin_dir = str(Path(sys.executable).parent)
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "PREFECT_HOME": str(home),
                "PYTHONUNBUFFERED": "1", "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1",
                "GX_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"})
    return env


def init_project(project: Path, env: dict) -> None:
    """A copy made a project of its own: the synthetic data of its ``params.yaml``, a git repo, the data under
    ``data.dvc``, one commit."""
    bin_dir = Path(sys.executable).parent
    _run([str(bin_dir / "gnnrec"), "data", "synthetic"], project, env)
    _run(["git", "init", "-q"], project, env)
    _run([str(bin_dir / "dvc"), "add", "-q", "data"], project, env)
    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "benchmark project"], project, env)


def _run(cmd: list[str], cwd: Path, env: dict) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def stage_walls(events: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Stage → seconds from its "Running stage" line to the next "Updating lock file" line (or the next
    stage, or ``end``). ``events`` are ``(time, line)`` in order; repeated lines (Prefect echoes what it
    prints) count once."""
    return {stage: span["wall"] for stage, span in stage_spans(events, end).items()}


def stage_spans(events: list[tuple[float, str]], end: float) -> dict[str, dict[str, float]]:
    """Stage → ``wall`` (DVC's "Running stage" line to its "Updating lock file" line), ``to_first_line``
    (to the stage process's first line of output) and ``after_last_line`` (from its last line to the lock
    file update: the process's exit and DVC's hashing). The first and last lines are what the stage's
    command prints (its start and end lines, or Prefect's flow run lines where a stage prints none)."""
    starts: list[tuple[str, float, int]] = []
    locks: list[tuple[float, int]] = []
    for k, (t, line) in enumerate(events):
        m = _RUNNING.search(line)
        if m and m.group(1) not in (s for s, _, _ in starts):
            starts.append((m.group(1), t, k))
        elif _LOCK.search(line):
            locks.append((t, k))
    spans = {}
    for n, (stage, t0, k0) in enumerate(starts):
        nxt, k_nxt = (starts[n + 1][1], starts[n + 1][2]) if n + 1 < len(starts) else (end, len(events))
        lock = next(((t, k) for t, k in locks if t0 < t <= nxt and k0 < k < k_nxt), None)
        t1, k1 = lock if lock is not None else (nxt, k_nxt)
        own = [t for t, line in events[k0 + 1:k1] if line.strip() and not _DVC_LINE.search(line)]
        spans[stage] = {"wall": t1 - t0, "to_first_line": (own[0] - t0) if own else None,
                        "after_last_line": (t1 - own[-1]) if own else None}
    return spans


def _timed(cmd: list[str], project: Path, env: dict) -> dict:
    """Run ``cmd`` in ``project`` from scratch, timestamping its output; per-stage spans and own times."""
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
    spans = stage_spans(events, total)
    own, imports = {}, {}
    for path in sorted((project / "reports" / "timings").glob("*.json")):
        entry = json.loads(path.read_text())
        own[entry.get("stage", path.stem)] = float(entry["seconds"])
        if entry.get("import_seconds") is not None:
            imports[entry.get("stage", path.stem)] = float(entry["import_seconds"])
    first = min((t for t, line in events if _RUNNING.search(line)), default=0.0)
    walls = {stage: span["wall"] for stage, span in spans.items()}
    return {"total_seconds": total, "walls": walls, "spans": spans, "own": own, "imports": imports,
            "before_first_stage": first, "after_last_stage": total - first - sum(walls.values())}


def breakdown(out: dict) -> list[dict]:
    """Per stage: ``wall``, ``work`` (the stage's own ``run``), ``overhead`` (wall - work: everything but the
    work), and the parts of the overhead: ``to_first_line`` (DVC starting the process, Python, the entry
    point's imports), ``imports`` (the stage module's import: the libraries its work needs, where the stage
    records it), ``after_last_line`` (the process's exit, DVC hashing the outputs and writing the lock file)
    and ``inside`` (the rest: Prefect's import and API calls, the flow and task run; the stage module's
    import too where it is not recorded)."""
    rows = []
    for stage, span in out["spans"].items():
        work = out["own"].get(stage)
        row = {"stage": stage, "wall": span["wall"], "work": work, "imports": out["imports"].get(stage),
               "overhead": None if work is None else span["wall"] - work,
               "to_first_line": span["to_first_line"], "after_last_line": span["after_last_line"]}
        if None not in (work, span["to_first_line"], span["after_last_line"]):
            row["inside"] = (span["wall"] - work - span["to_first_line"] - span["after_last_line"]
                             - (row["imports"] or 0.0))
        rows.append(row)
    return rows


def format_breakdown(label: str, out: dict) -> str:
    """The per-stage table of :func:`breakdown` as text (seconds)."""
    def f(v):
        return "   -  " if v is None else f"{v:6.1f}"
    lines = [f"[pipeline] {label}: per stage, seconds (overhead = wall - work = start + imports + inside + end)",
             f"  {'stage':<18} {'wall':>6} {'work':>6} {'overh.':>6} {'start':>6} {'imports':>7} {'inside':>6} "
             f"{'end':>6}"]
    rows = breakdown(out)
    for r in rows:
        lines.append(f"  {r['stage']:<18} {f(r['wall'])} {f(r['work'])} {f(r['overhead'])} {f(r['to_first_line'])} "
                     f"{f(r['imports']):>7} {f(r.get('inside'))} {f(r['after_last_line'])}")
    over = [r["overhead"] for r in rows if r["overhead"] is not None]
    lines.append(f"  {'all stages':<18} {f(sum(r['wall'] for r in rows))} "
                 f"{f(sum(r['work'] or 0.0 for r in rows))} {f(sum(over))}   mean overhead per stage "
                 f"{(sum(over) / len(over)) if over else 0.0:.1f} s; before the first stage "
                 f"{out['before_first_stage']:.1f} s, after the last {out['after_last_stage']:.1f} s, "
                 f"total {out['total_seconds']:.1f} s")
    lines.append("  (start: DVC's 'Running stage' to the stage's first line; imports: the stage module's, where "
                 "recorded; end: the stage's last line to DVC's lock file update; inside: the rest, mostly Prefect)")
    return "\n".join(lines)


MODES = {"pipeline": "python -m flows.pipeline --force", "dvc": "dvc repro --force",
         "dvc-warm": "dvc repro --force, local API up"}


def run_pipeline(keep: bool = False, log=print, modes: tuple[str, ...] = ("pipeline", "dvc"),
                 repo: Path = REPO) -> dict[str, dict]:
    """The whole pipeline from scratch, each way of ``modes`` in turn in the same copy:
    ``python -m flows.pipeline --force`` (``make run``: one Prefect flow whose API every stage reports to;
    with ``--verbose`` where it has it, so that DVC's lines time the stages), a plain
    ``dvc repro --force`` from a shell (no Prefect API configured: the stages share the local API server
    that the first one starts) and ``dvc-warm``, the same again right after another mode, with that server
    still up (how the issue's "local API already up" figure was taken)."""
    root = Path(tempfile.mkdtemp(prefix="gnnrec-bench-pipeline-"))
    try:
        project = copy_project(root / "project", repo)
        env = project_env(root / "prefect-home", repo)
        bin_dir = Path(sys.executable).parent
        init_project(project, env)
        verbose = ["--verbose"] if "--verbose" in (project / "flows" / "pipeline.py").read_text() else []
        commands = {"pipeline": [sys.executable, "-m", "flows.pipeline", "--force", *verbose],
                    "dvc": [str(bin_dir / "dvc"), "repro", "--force"]}
        commands["dvc-warm"] = commands["dvc"]      # run after another mode: the shared local API is still up
        out = {}
        for mode in modes:
            log(f"[pipeline] {MODES[mode]} in {project}")
            out[MODES[mode]] = _timed(commands[mode], project, env)
        return out
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def run(keep: bool = False, modes: tuple[str, ...] = ("pipeline", "dvc")) -> list[Result]:
    load_before = loadavg()
    runs = run_pipeline(keep=keep, modes=modes)
    results = []
    for label, out in runs.items():
        parts = []
        rows = breakdown(out)
        for row in rows:
            stage, wall, own = row["stage"], row["wall"], row["work"]
            ms = {k: (None if row.get(k) is None else row[k] * 1e3)
                  for k in ("imports", "overhead", "to_first_line", "inside", "after_last_line")}
            results.append(Result("synthetic (default)", "cpu", f"pipeline stage {stage} ({label})", wall * 1e3,
                                  extra={"stage_own_ms": None if own is None else own * 1e3,
                                         "orchestration_overhead_ms": ms["overhead"],
                                         "stage_imports_ms": ms["imports"], "start_ms": ms["to_first_line"],
                                         "inside_ms": ms["inside"], "end_ms": ms["after_last_line"]}))
            parts.append(f"{stage} {wall:.1f} s (own {own:.1f} s)" if own is not None else f"{stage} {wall:.1f} s")
        own_total = sum(r["work"] or 0.0 for r in rows)
        overhead = [r["overhead"] for r in rows if r["overhead"] is not None]
        total = out["total_seconds"]
        detail = (f"{total:.0f} s in all: stage work {own_total:.0f} s, per-stage orchestration "
                  f"{sum(overhead):.0f} s ({sum(overhead) / max(len(overhead), 1):.1f} s a stage), "
                  f"before the first stage {out['before_first_stage']:.0f} s "
                  f"and after the last {out['after_last_stage']:.0f} s; " + ", ".join(parts))
        results.append(Result("synthetic (default)", "cpu", f"{label} of the default pipeline, from scratch",
                              total * 1e3, target=f"<= {TARGET_SECONDS:g} s", met=total <= TARGET_SECONDS,
                              extra={"stage_work_ms": own_total * 1e3, "overhead_ms": sum(overhead) * 1e3,
                                     "overhead_per_stage_ms": sum(overhead) / max(len(overhead), 1) * 1e3,
                                     "flow_start_ms": out["before_first_stage"] * 1e3,
                                     "flow_end_ms": out["after_last_stage"] * 1e3, "loadavg_before": load_before,
                                     "loadavg_after": loadavg(), "detail": detail}))
        print(format_breakdown(label, out), flush=True)
        print(f"[pipeline] {label}: {detail}", flush=True)
    return results


def _totals(out: dict) -> dict[str, float]:
    rows = breakdown(out)
    work = sum(r["work"] or 0.0 for r in rows)
    wall = sum(r["wall"] for r in rows)
    return {"wall": wall, "work": work, "overhead": sum(r["overhead"] for r in rows if r["overhead"] is not None),
            "per_stage": {r["stage"]: r["overhead"] for r in rows}}


def compare_with(rev: str, modes: tuple[str, ...], log=print) -> list[dict]:
    """Back to back on this machine: ``modes`` on a clone of this repository at ``rev`` (its own library on
    ``PYTHONPATH``), then on this working tree; per mode, the stages' wall, work and overhead of each and the
    ratio of the overheads (after / before)."""
    root = Path(tempfile.mkdtemp(prefix="gnnrec-bench-baseline-"))
    try:
        clone = root / "baseline"
        subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", rev], check=True)
        before = run_pipeline(modes=modes, repo=clone, log=log)
        after = run_pipeline(modes=modes, log=log)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = []
    for label in before:
        b, a = _totals(before[label]), _totals(after[label])
        rows.append({"mode": label, "before": b, "after": a, "ratio": a["overhead"] / b["overhead"]})
    return rows


def format_comparison(rev: str, rows: list[dict]) -> str:
    lines = [f"[pipeline] overhead (wall - work, s): {rev} against this tree, back to back",
             f"  {'run':<34} {'before wall/work/overhead':>26} {'after wall/work/overhead':>26} {'ratio':>6}"]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(f"  {r['mode']:<34} {b['wall']:8.1f} {b['work']:7.1f} {b['overhead']:7.1f}   "
                     f"{a['wall']:8.1f} {a['work']:7.1f} {a['overhead']:7.1f}   {r['ratio']:6.2f}")
        lines.append("    per stage: " + ", ".join(
            f"{stage} {b['per_stage'][stage]:.1f} -> {a['per_stage'].get(stage) or 0.0:.1f}"
            for stage in b["per_stage"] if b["per_stage"][stage] is not None))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m benchmarks.pipeline``: this benchmark alone, its tables printed and, with ``--json``, its
    results written there (``python -m benchmarks --only pipeline`` writes them into the report)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="pipeline,dvc", help="comma-separated among pipeline, dvc, dvc-warm "
                        "(dvc-warm after another mode: the local API is up)")
    parser.add_argument("--json", default=None, help="write the results (a JSON list) to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="run the modes on a clone at this git revision first, then on this tree, and "
                             "report the overhead of each and their ratio")
    args = parser.parse_args(argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes: choose among {', '.join(MODES)}")
    if args.baseline:
        rows = compare_with(args.baseline, modes)
        print(format_comparison(args.baseline, rows), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    results = run(keep=args.keep, modes=modes)
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

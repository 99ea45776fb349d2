"""Sweep: the wall time of an 8-trial sweep on a local 2-worker Dask cluster against the same 8 trials one after
another, and whether every trial reaches ``dvc exp show``.

In a temporary copy of the repository with the tiny synthetic data of the e2e tests (its own git repo, DVC
cache and ``PREFECT_HOME``), ``python -m flows.sweep --force`` runs the grid of :data:`MODELS` (one of them
made to fail: a model name that does not exist) with ``-S train.epochs=3``, first with ``--runner dask
--workers 2``, then with ``--runner process --workers 1`` (one trial at a time), each under its own sweep
name. ``--force`` reruns every stage of every trial, so neither run reuses the other's run cache.

    python -m benchmarks.sweep                     # writes reports/sweep_benchmark.{md,json}
    python -m benchmarks.sweep --keep              # keep the project to look at (dvc exp show there)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from benchmarks.common import REPO, loadavg, machine, save_report
from benchmarks.pipeline import copy_project, init_project, project_env
from tests.e2e.conftest import TINY, deep_update

MODELS = ("[mf]", "[lightgcn]", "[social]", "[ngcf]", "[gcn]", "[popularity]", "[bspm]", "[no_such_model]")
FAILING = "[no_such_model]"
RUNS = {"dask": ["--runner", "dask", "--workers", "2"], "serial": ["--runner", "process", "--workers", "1"]}


def _run(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def make_tiny_project(dest: Path, env: dict) -> Path:
    """The e2e tests' tiny project: the repository's files, the tiny params, its data under ``data.dvc``."""
    project = copy_project(dest)
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "params.yaml").write_text(yaml.safe_dump(deep_update(params, json.loads(json.dumps(TINY))),
                                                        sort_keys=False))
    init_project(project, env)
    return project


def experiments(project: Path, env: dict) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json``'s experiments: name → ``{"models": ..., "has_metrics": ...}``."""
    shown = json.loads(_run([str(Path(sys.executable).parent / "dvc"), "exp", "show", "--json"], project, env).stdout)
    out = {}
    for base in shown:
        for exp in base.get("experiments") or []:
            data = exp["revs"][0]["data"]
            metrics = (data.get("metrics") or {}).get("reports/metrics.json") or {}
            out[exp["name"]] = {"models": data["params"]["params.yaml"]["data"]["models"],
                                "has_metrics": "data" in metrics}
    return out


def run(keep: bool = False, log=print) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="gnnrec-bench-sweep-"))
    env = project_env(root / "prefect-home")
    try:
        project = make_tiny_project(root / "project", env)
        out: dict[str, Any] = {"models": list(MODELS), "failing": FAILING, "loadavg_before": loadavg(), "runs": {}}
        for label, runner in RUNS.items():
            cmd = [sys.executable, "-m", "flows.sweep", "--name", label, "--force", "--workdir", str(root / label),
                   "-S", "train.epochs=3", "-S", "models=" + ",".join(MODELS), *runner]
            log(f"[sweep] {' '.join(cmd[1:])}")
            started = time.perf_counter()
            proc = _run(cmd, project, env, check=False)
            wall = time.perf_counter() - started
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"the sweep failed to run ({proc.returncode}):\n{proc.stderr[-3000:]}")
            summary = json.loads((project / "reports" / "sweeps" / label / "sweep.json").read_text())
            trials = summary["trials"]
            out["runs"][label] = {
                "command": " ".join(["python", *cmd[1:]]), "exit_status": proc.returncode, "wall_s": round(wall, 1),
                "trial_s_sum": round(sum(t["wall_s"] for t in trials), 1),
                "trials": [{k: t.get(k) for k in ("name", "overrides", "status", "experiment", "wall_s", "error")}
                           | {"metrics": {m: v for m, v in (t.get("metrics") or {}).items() if m != "cold_start"}}
                           for t in trials]}
            log(f"[sweep] {label}: {wall:.0f} s, exit {proc.returncode}")
        shown = experiments(project, env)
        out["dvc_exp_show"] = shown
        for result in out["runs"].values():
            result["in_dvc_exp_show"] = sum(t["experiment"] in shown for t in result["trials"])
        out["speedup"] = round(out["runs"]["serial"]["wall_s"] / out["runs"]["dask"]["wall_s"], 2)
        out["same_metrics"] = ([t["metrics"] for t in out["runs"]["dask"]["trials"]]
                               == [t["metrics"] for t in out["runs"]["serial"]["trials"]])
        out["loadavg_after"] = loadavg()
        out["machine"] = machine()
        if keep:
            out["project"] = str(project)
        return out
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def markdown(out: dict[str, Any]) -> str:
    dask, serial = out["runs"]["dask"], out["runs"]["serial"]
    lines = ["# Sweep benchmark", "",
             "Written by `python -m benchmarks.sweep`: 8 trials (one made to fail) on the e2e tests' tiny project, "
             "`--force -S train.epochs=3`, every stage of every trial run.", "",
             f"- Local Dask cluster, 2 workers: **{dask['wall_s']:.0f} s** wall (the trials' own times add up to "
             f"{dask['trial_s_sum']:.0f} s).",
             f"- One trial after another (`--runner process --workers 1`): **{serial['wall_s']:.0f} s** "
             f"(**{out['speedup']:.2f}x** the Dask run's wall time).",
             f"- Same metrics for every trial in both runs: {'yes' if out['same_metrics'] else 'NO'}.",
             f"- In `dvc exp show`: {dask['in_dvc_exp_show']} of {len(dask['trials'])} Dask trials and "
             f"{serial['in_dvc_exp_show']} of {len(serial['trials'])} serial ones (the failed one as "
             "`<name>-failed`, with its params and no metrics).",
             f"- Load average before / after: {out['loadavg_before']} / {out['loadavg_after']}; "
             f"{out['machine'].get('cores', '?')} CPUs.", "",
             "| trial | models | status | experiment | Dask s | serial s | metrics (NDCG@10) |",
             "|---|---|---|---|---|---|---|"]
    for d, s in zip(dask["trials"], serial["trials"]):
        ndcg = ", ".join(f"{m} {v.get('ndcg@10', float('nan')):.4f}" for m, v in d["metrics"].items())
        detail = ndcg or (d["error"] or "")[:120]
        lines.append(f"| {d['name']} | `{d['overrides'][-1] if d['overrides'] else ''}` | {d['status']} | "
                     f"`{d['experiment']}` | {d['wall_s']:.0f} | {s['wall_s']:.0f} | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument("--out", default=str(REPO / "reports"), help="where sweep_benchmark.{md,json} go")
    args = parser.parse_args(argv)
    out = run(keep=args.keep)
    save_report(args.out, "sweep_benchmark", out, markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

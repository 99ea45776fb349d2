"""The sweep flow: a grid of settings, each combination a DVC experiment, run on a Prefect task runner.

    python -m flows.sweep -S 'models=[lightgcn],[mf]' -S train.lr=0.001,0.01          # 4 trials, 2 processes
    python -m flows.sweep --grid sweep.yaml --workers 4                                # the grid of a file
    python -m flows.sweep --grid sweep.yaml --runner dask --workers 2                  # a local Dask cluster
    python -m flows.sweep --grid sweep.yaml --runner dask --address tcp://sched:8786   # an existing cluster

Each trial clones this repository at HEAD into a workspace of its own (``--workdir``, default the system's
temporary folder), shares this project's DVC cache (``--cache-dir`` for one every machine mounts), runs
``dvc exp run --name <sweep>-NNN -S ...`` there and pushes the experiment back here (``--repo-url`` when the
workers reach this repository by another address), so ``dvc exp show`` lists every completed trial with its
params and metrics. A failed trial is reported (the report's table and its reason) and the others go on.
The report: ``reports/sweeps/<name>/sweep.{md,json,png}``. See ``gnnrec.sweep.grid`` for the grid file.

Runners: ``process`` (default; Prefect's process pool, ``--workers`` processes), ``dask`` (``prefect-dask``'s
``DaskTaskRunner``: a local cluster of ``--workers`` single-threaded worker processes, or ``--address``).

Exit status: 0 when every trial completed, 1 when any failed (the report says which and why), 2 for bad
input (a bad grid or command line, uncommitted changes, data that is not what its ``.dvc`` file records).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from flows import _env
from flows._flow import json_flow
from flows._local_api import use_shared_api
from flows.pipeline import _api
from gnnrec.errors import GnnrecError

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0],
                  context_settings={"help_option_names": ["-h", "--help"]})


def task_runner(runner: str, workers: int, address: Optional[str]) -> Any:
    """The Prefect task runner the trials go to."""
    if runner == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    raise GnnrecError(f"sweep: --runner {runner!r}: expected 'process' or 'dask'")


@json_flow(name="sweep", log_prints=True)
def sweep(trials: list[dict[str, Any]], source: dict[str, Any], workdir: Optional[str], timeout: Optional[float],
          keep: bool, force: bool) -> list[dict[str, Any]]:
    """Submit every trial at once; the runner decides how many run together. A trial whose task crashed
    (its worker died) is reported as failed like one whose experiment failed."""
    from tasks.sweep import trial_task

    futures = [trial_task.submit(t, source, workdir, timeout, keep, force) for t in trials]
    results = []
    for t, future in zip(trials, futures):
        state = future.wait() or future.state
        if state.is_completed():
            result = future.result()
        else:
            result = {"name": t["name"], "overrides": t["overrides"], "swept": dict(t["swept"]), "status": "failed",
                      "step": "task", "error": f"the trial's task ended {state.name}: {state.message}", "wall_s": 0.0,
                      "workspace": None, "host": "?"}
        print(f"trial {result['name']}: {result['status']}"
              + (f" ({result.get('step')}: {result.get('error')})" if result["status"] != "completed" else ""))
        results.append(result)
    return results


def run_sweep(grid_file: Optional[str], sets: list[str], name: Optional[str], metric: Optional[str], runner: str,
              workers: int, address: Optional[str], workdir: Optional[str], cache_dir: Optional[str],
              repo_url: Optional[str], timeout: Optional[float], keep: bool, force: bool, allow_dirty: bool,
              root: str = ".") -> int:
    """Prepare, run and report a sweep; the exit status (0, 1 when a trial failed, 2 for bad input)."""
    from gnnrec.io import write_text  # noqa: F401  (imported early: a broken install fails before any trial)
    from gnnrec.sweep import load_grid, pin_outside_paths, prepare_source, write_report

    project = Path(root).resolve()
    try:
        grid = load_grid(grid_file, sets, name, metric)
        pinned = pin_outside_paths(grid, project)
        source = prepare_source(project, repo_url, cache_dir, allow_dirty)
        runner_obj = task_runner(runner, workers, address)
    except GnnrecError as exc:
        print(f"gnnrec: sweep failed: {exc}", file=sys.stderr, flush=True)
        return 2
    for line in pinned:
        print(f"gnnrec: sweep: {line} (a relative path outside the project does not resolve in a trial's clone)")
    trials = [{"name": t.name, "overrides": list(t.overrides), "swept": [list(kv) for kv in t.swept]}
              for t in grid.trials()]
    print(f"gnnrec: sweep {grid.name}: {len(trials)} trials at {source.commit[:8]} on {runner}"
          f"{f' ({address})' if address else f' with {workers} workers'}", flush=True)
    try:
        url = use_shared_api()     # one Prefect API for the flow, its task workers and the trials' stages
    except RuntimeError as exc:
        print(f"gnnrec: sweep failed: {exc}", file=sys.stderr, flush=True)
        return 1
    started = time.time()
    with _api(url):
        results = sweep.with_options(task_runner=runner_obj)(trials, source.as_dict(), workdir, timeout, keep, force)
    wall = time.time() - started
    summary = {"name": grid.name, "metric": grid.metric, "commit": source.commit, "runner": runner,
               "workers": workers, "address": address, "axes": grid.axes, "fixed": grid.fixed,
               "wall_s": round(wall, 2), "trial_s_sum": round(sum(r.get("wall_s", 0.0) for r in results), 2),
               "trials": results}
    paths = write_report(summary, project / "reports" / "sweeps" / grid.name)
    failed = [r for r in results if r["status"] != "completed"]
    print(f"gnnrec: sweep {grid.name}: {len(results) - len(failed)} of {len(results)} trials completed in "
          f"{wall:.0f} s; report: {paths['md'].relative_to(project)}; `dvc exp show` lists them", flush=True)
    return 1 if failed else 0


@app.command()
def main_command(
    grid_file: Optional[str] = typer.Option(None, "--grid", help="a YAML grid file (name, metric, fixed, grid)"),
    sets: list[str] = typer.Option([], "-S", "--set", help="key=v1,v2,...: a swept setting (one value: fixed)"),
    name: Optional[str] = typer.Option(None, "--name", help="the sweep's name (default: the file's, or 'sweep')"),
    metric: Optional[str] = typer.Option(None, "--metric", help="the metric the report plots (default ndcg@20)"),
    runner: str = typer.Option("process", "--runner", help="process (a local pool) or dask"),
    workers: int = typer.Option(2, "--workers", min=1, help="processes of the pool / workers of the local cluster"),
    address: Optional[str] = typer.Option(None, "--address", help="a Dask scheduler to use instead of a local one"),
    workdir: Optional[str] = typer.Option(None, "--workdir", help="where trials' workspaces go (default: temp)"),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="the shared DVC cache (default: this one's)"),
    repo_url: Optional[str] = typer.Option(None, "--repo-url", help="this repository as the workers reach it"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds a trial may take (default: no limit)"),
    keep: bool = typer.Option(False, "--keep", help="keep completed trials' workspaces (failed ones are kept)"),
    force: bool = typer.Option(False, "--force", help="every stage of every trial runs again (no run cache)"),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="run HEAD although tracked files are modified"),
    root: str = typer.Option(".", "--root", help="the project's folder"),
) -> None:
    """Run a grid of settings as DVC experiments on a Prefect task runner and write the sweep report."""
    raise typer.Exit(run_sweep(grid_file, sets, name, metric, runner, workers, address, workdir, cache_dir, repo_url,
                               timeout, keep, force, allow_dirty, root))


def main(argv: Optional[list[str]] = None) -> int:
    """The command line (for tests and callers in Python): its exit status."""
    return _env.exit_status(app, "python -m flows.sweep", argv)


if __name__ == "__main__":
    _env.run_entry_point(app, "python -m flows.sweep")

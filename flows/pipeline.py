"""The pipeline flow: ``dvc repro`` (or ``dvc exp run -S key=value ...``) as one Prefect flow run.

    python -m flows.pipeline                                       # dvc repro
    python -m flows.pipeline --force                               # dvc repro --force: every stage again
    python -m flows.pipeline -S train.epochs=50 -S 'models=[mf]'   # dvc exp run -S ... (a DVC experiment)

DVC decides which stages are out of date; each stage's ``cmd`` is itself a Prefect flow
(``flows/stage.py``). The stages report to the same Prefect API as this flow: a server when
``PREFECT_API_URL`` is set, else the local API server of ``flows/_local_api.py`` (started if none runs;
``GNNREC_LOCAL_API=0``: this flow's own temporary server), whose address is handed to the ``dvc``
subprocess.

The console gets one line per stage start and end, the stages' own log lines (per-epoch lines) and, on a
terminal, a progress bar per running stage (``flows/_console.py``); DVC's bookkeeping lines (the stage's
command, lock file updates, git hints) are left out unless ``--verbose``. The flow run's logs get the same
lines.

Exit status: 0 when DVC succeeded; 2 for bad input (a stage failed on bad data or params, another run
holds the project's lock, a bad command line), with one message and no traceback; 1 for anything else (a
bug in a stage, whose traceback the stage printed, or a DVC error).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from flows import _env
from flows._console import PROGRESS_ENV, Console, clock, install, read_event, uninstall
from flows._flow import json_flow
from flows._local_api import use_shared_api
from tasks import BAD_INPUT

# what dvc prints when another dvc process holds the repo lock (.dvc/tmp/lock) or a stage's outputs (rwlock)
_LOCK_MARKERS = ("Unable to acquire lock", "is busy, it is being blocked by")
_RUNNING = re.compile(r"^Running stage '([^']+)':$")
_SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping$")
_STAGE_FAILED = re.compile(r"^gnnrec: stage (\S+) failed: (.*)$")
_EXITED = re.compile(r"failed to reproduce '([^']+)': failed to run: .*, exited with (\d+)")
# DVC's lines that say nothing a person running the pipeline needs (the stage lines say it)
_QUIET = (re.compile(r"^> "), re.compile(r"^(Updating|Generating) lock file "), re.compile(r"^'[^']+' didn't change"),
          re.compile(r"^Verifying data sources in stage"), re.compile(r"^Use `dvc push` to send"),
          re.compile(r"^To (track the changes with git|enable auto staging), run:$"),
          re.compile(r"^\s+(git add |dvc config core\.autostage)"), re.compile(r"^\s*$"))

_CONSOLE: dict[str, Console] = {}      # the console of `python -m flows.pipeline` (none when a deployment runs)

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0],
                  context_settings={"help_option_names": ["-h", "--help"]})


def _dvc_error(tail: list[str]) -> str:
    """dvc's ERROR line and the two lines after it (the process holding the lock), on one line."""
    start = next((i for i, line in enumerate(tail) if "ERROR" in line), max(len(tail) - 3, 0))
    return " ".join(line.strip() for line in tail[start:start + 3] if line.strip())[:600]


def dvc_command(set_params: Optional[list[str]] = None, experiment: bool = False,
                name: Optional[str] = None, force: bool = False) -> list[str]:
    """The ``dvc`` command line for a plain reproduction or an experiment with overrides."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    if set_params or experiment:
        cmd = [dvc, "exp", "run"]
        for kv in set_params or []:
            cmd += ["-S", kv]
        if name:
            cmd += ["--name", name]
    else:
        cmd = [dvc, "repro"]
    if force:
        cmd.append("--force")
    return cmd


class _Lines:
    """Turns dvc's output into the console's lines and the flow run's log lines."""

    def __init__(self, logger: Any, console: Optional[Console], verbose: bool = False) -> None:
        self.logger = logger
        self.console = console
        self.verbose = verbose                      # DVC's own lines too
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.failures: dict[str, str] = {}          # stage -> its "gnnrec: stage X failed: ..." message

    def show(self, text: str) -> None:
        if self.console is not None:
            self.console.line(text)
        self.logger.info(text)                      # to the API (the console handler leaves it out)

    def feed(self, line: str) -> None:
        event = read_event(line)
        if event is not None:                       # a stage's progress: a bar on a terminal, else nothing
            if self.console is not None:
                if event.get("end"):
                    self.console.close(str(event.get("key")))
                elif isinstance(event.get("done"), int):
                    self.console.update(str(event.get("key")), event["done"], event.get("total"),
                                        str(event.get("unit", "steps")))
            return
        if m := _STAGE_FAILED.match(line):          # said once, by this flow's own failure message
            self.failures[m.group(1)] = m.group(2)
            return
        if m := _RUNNING.match(line):
            self.ran.append(m.group(1))
        elif m := _SKIPPED.match(line):
            self.skipped.append(m.group(1))
            if not self.verbose:
                self.show(f"{clock()} {m.group(1)}  unchanged, skipped")
                return
        if self.verbose or not (_RUNNING.match(line) or any(p.match(line) for p in _QUIET)):
            self.show(line)


@json_flow(name="gnnrec-pipeline", persist_result=False)
def pipeline(set_params: Optional[list[str]] = None, experiment: bool = False, name: Optional[str] = None,
             force: bool = False, root: str = ".", verbose: bool = False, snapshot: Optional[str] = None) -> Any:
    """Reproduce the DVC pipeline (``dvc repro``), or run a DVC experiment when params are overridden
    (``dvc exp run -S key=value ...``); ``verbose`` shows DVC's own lines too. With ``snapshot`` (a folder
    under ``snapshots/``), first snapshot the current models there when the data changed since the last run
    (the nightly warm-start loop: ``train.warm_start`` names the same folder). Ends Failed, with one
    message, when a stage or DVC fails: named ``BadInput`` when a stage's input was at fault or another
    run holds the project."""
    from prefect import get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    _env.resume_gc()                 # the imports are done (flows/_env.py paused the collector for them)
    console = _CONSOLE.get("console")
    lines = _Lines(get_run_logger(), console, verbose)
    cmd = dvc_command(set_params, experiment, name, force)
    env = dict(os.environ)
    with get_client(sync_client=True) as client:
        env["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"                   # the stages' lines as they come
    env.pop(PROGRESS_ENV, None)
    if console is not None and console.bars:        # this process draws the stages' progress bars
        env[PROGRESS_ENV] = "events"
    command = " ".join(["dvc"] + cmd[1:])
    if snapshot:
        from gnnrec.errors import GnnrecError
        from gnnrec.warm_start import snapshot_before_new_data

        try:
            taken = snapshot_before_new_data(Path(root), Path(snapshot))
        except GnnrecError as exc:
            return Failed(name=BAD_INPUT, message=f"snapshot {snapshot}: {exc}")
        lines.show(f"{clock()} pipeline  " + (f"new data: snapshot of {', '.join(taken['models'])} in {snapshot}"
                                                if taken else f"no new data (or no models yet): {snapshot} kept"))
    lines.show(f"{clock()} pipeline  {command}")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.feed(line)
            tail = (tail + [line])[-40:]
        rc = proc.wait()
    finally:
        if console is not None:
            console.stop()
    seconds = round(time.perf_counter() - t0, 3)
    if rc == 0:
        lines.show(f"{clock()} pipeline  done in {seconds:.0f} s: {len(lines.ran)} stages run, "
                   f"{len(lines.skipped)} unchanged")
        return {"command": command, "seconds": seconds, "ran": lines.ran, "skipped": lines.skipped}
    lines.show(f"{clock()} pipeline  failed after {seconds:.0f} s")
    if any(marker in line for line in tail for marker in _LOCK_MARKERS):  # a clear failure, no traceback
        return Failed(name=BAD_INPUT, message=f"another DVC run (dvc repro / dvc exp run / python -m flows.pipeline) "
                                              f"holds the lock of the project at {Path(root).resolve()}: this run "
                                              f"changed nothing; wait for the other run to finish, then run again. "
                                              f"dvc said: " + _dvc_error(tail))
    exited = next((m for line in tail if (m := _EXITED.search(line))), None)
    if exited is not None:
        stage, status = exited.group(1), int(exited.group(2))
        said = lines.failures.get(stage)
        message = f"stage {stage} failed: {said}" if said else f"stage {stage} failed (exit status {status})"
        return Failed(name=BAD_INPUT if status == 2 else "Failed", message=message)
    return Failed(message=f"{command} failed (exit status {rc}): {_dvc_error(tail)}")


def _check_set_params(values: list[str]) -> list[str]:
    for kv in values:
        key, eq, _ = kv.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE (a params key such as train.epochs=50), got {kv!r}")
    return values


@app.command()
def run(
    set_params: list[str] = typer.Option([], "-S", "--set-param", metavar="KEY=VALUE", callback=_check_set_params,
                                         help="override a param (runs a DVC experiment); repeatable"),
    experiment: bool = typer.Option(False, "--experiment", help="run as a DVC experiment even without -S"),
    name: Optional[str] = typer.Option(None, "--name", help="experiment name"),
    force: bool = typer.Option(False, "--force", help="rerun every stage"),
    root: str = typer.Option(".", "--root", help="project root"),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="also show DVC's own lines (each stage's command, lock file updates)"),
    snapshot: Optional[str] = typer.Option(None, "--snapshot", metavar="FOLDER",
                                           help="first snapshot the current models into FOLDER when the data "
                                                "changed (warm-start loop; train.warm_start: FOLDER)"),
) -> None:
    """Reproduce the pipeline (dvc repro) as one Prefect flow run, or run a DVC experiment with -S."""
    raise typer.Exit(run_pipeline(set_params, experiment, name, force, root, verbose, snapshot=snapshot))


def run_pipeline(set_params: list[str], experiment: bool, name: Optional[str], force: bool, root: str,
                 verbose: bool = False, console: Optional[Console] = None, snapshot: Optional[str] = None) -> int:
    """Run the pipeline flow with its console; the process's exit status (0, 1, or 2 for bad input)."""
    console = console or Console()
    try:
        url = use_shared_api()
    except RuntimeError as exc:      # the local API server did not start: its log says why
        print(f"gnnrec: pipeline failed: {exc}", file=sys.stderr, flush=True)
        return 1
    handler = install("pipeline", console, events=False)
    _CONSOLE["console"] = console
    try:
        with _api(url):
            state = pipeline(set_params, experiment, name, force, root, verbose, snapshot, return_state=True)
    finally:
        _CONSOLE.clear()
        uninstall(handler)
    if state.is_completed():
        return 0
    print(f"gnnrec: pipeline failed: {state.message}", file=sys.stderr, flush=True)
    return 2 if state.name == BAD_INPUT else 1


def _api(url: Optional[str]) -> Any:
    """Prefect's settings with ``url`` (the shared local API) as its API, when there is one."""
    import contextlib

    if not url:
        return contextlib.nullcontext()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


def main(argv: Optional[list[str]] = None) -> int:
    """The command line (for tests and callers in Python): its exit status."""
    return _env.exit_status(app, "python -m flows.pipeline", argv)


if __name__ == "__main__":
    _env.run_entry_point(app, "python -m flows.pipeline")

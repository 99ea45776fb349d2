"""Run one pipeline stage as a Prefect flow: the ``cmd`` of every stage in ``dvc.yaml``.

    python -m flows.stage ingest
    python -m flows.stage train --model lightgcn

Works against a Prefect server when ``PREFECT_API_URL`` is set, else against a local API server shared by
the stages of one ``dvc repro`` (``flows/_local_api.py``: started by the first stage, stopped after a
minute unused; ``GNNREC_LOCAL_API=0`` gives each stage Prefect's own temporary server). The console shows
one line when the stage starts and one when it ends, gnnrec's log lines (per-epoch lines) and, on a
terminal, a progress bar (``flows/_console.py``); Prefect's own lines go to the run logs.

Exit status: 0 when the stage completed; 2 for bad input (bad data, bad params, another stage running, a
bad command line), with the message and no traceback, the flow run marked failed with the same message;
1 for anything else (a bug: its traceback is shown).

A stage process stays light: Prefect is imported only once the command line is checked and the API's
address is in the environment (so its settings are read once), the flow run's parameters skip FastAPI's
encoder (``flows/_flow.py``), the report's artifacts need no task run of their own, the flow run sends no
heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` turns them back on), the stage imports only the
libraries its own work needs, and the process ends without the interpreter's teardown (``flows/_env.py``).
And those libraries are imported ahead: the command DVC runs is a thin client that hands itself to a forked
child of a server that has them imported already (``flows/_preload.py``; ``GNNREC_PRELOAD=0`` runs it here).
"""

from __future__ import annotations

from flows import _preload

if __name__ == "__main__":      # hand the command to a preloaded process (flows/_preload.py) where one can run it
    _preload.delegate_stage()

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Optional

import typer

from flows import _env
from flows._console import PROGRESS_ENV, Console, clock, install, uninstall, write_event
from flows._local_api import use_shared_api
from gnnrec.stages import ON_IMPORTED, STAGES, stage_id
from tasks import BAD_INPUT

if TYPE_CHECKING:
    from flows._flow import JsonFlow

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0], context_settings={"help_option_names":
                                                                                          ["-h", "--help"]})


def _stage_flow(stage: str, model: Optional[str] = None, root: str = ".") -> Any:
    """One stage: the Prefect task around ``gnnrec.stages.<stage>.run``, plus the report's artifacts."""
    from prefect.states import Failed

    from tasks.stages import publish_report_artifacts, run_stage_task

    state = run_stage_task(stage, model=model, root=root)
    if not state.is_completed():
        return Failed(name=state.name, message=state.message)
    summary = state.result()
    if stage == "report":
        publish_report_artifacts(summary)
    return summary


def _flow_run_name() -> str:
    """``train@lightgcn``: the DVC name of the stage, as the flow run's name."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    return stage_id(parameters["stage"], parameters.get("model"))


def stage_flow_object() -> JsonFlow:
    """The stage flow (``gnnrec-stage``), built on first use: importing Prefect takes a second or more."""
    flow = globals().get("stage_flow")
    if flow is None:
        from flows._flow import json_flow

        flow = json_flow(name="gnnrec-stage", flow_run_name=_flow_run_name, log_prints=True,
                         persist_result=False)(_stage_flow)
        globals()["stage_flow"] = flow
    return flow


def __getattr__(name: str) -> Any:      # ``from flows.stage import stage_flow`` imports Prefect only then
    if name == "stage_flow":
        return stage_flow_object()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@app.command()
def run(
    stage: str = typer.Argument(..., help=f"the stage: {', '.join(STAGES)}", show_default=False),
    model: Optional[str] = typer.Option(None, help="model name (train stage only)"),
    root: str = typer.Option(".", help="project root"),
) -> None:
    """Run STAGE of the project at ROOT as a Prefect flow run (what ``dvc repro`` runs for each stage)."""
    if stage not in STAGES:
        raise typer.BadParameter(f"{stage!r} is not a stage; stages are {', '.join(STAGES)}", param_hint="STAGE")
    if (stage == "train") != (model is not None):
        raise typer.BadParameter("a model is needed for (and only for) the train stage", param_hint="--model")
    raise typer.Exit(run_stage_flow(stage, model, root))


def run_stage_flow(stage: str, model: Optional[str], root: str, console: Optional[Console] = None) -> int:
    """Run the stage flow with its console lines; the process's exit status (0, 1, or 2 for bad input)."""
    name = stage_id(stage, model)
    console = console or Console(bars=False if os.environ.get(PROGRESS_ENV) == "events" else None)
    console.line(f"{clock()} {name}  started")
    try:
        url = use_shared_api()       # before Prefect reads its settings, which then include this URL
    except RuntimeError as exc:      # the local API server did not start: its log says why
        print(f"gnnrec: stage {name} failed: {exc}", file=sys.stderr, flush=True)
        return 1
    flow = stage_flow_object()
    if _env.resume_gc not in ON_IMPORTED:
        ON_IMPORTED.append(_env.resume_gc)
    handler = install(name, console)
    try:
        with _settings(url):
            state = flow(stage, model=model, root=root, return_state=True)
    finally:
        uninstall(handler)
    wall = time.time() - _env.STARTED
    if handler.events:
        write_event(console.stream, {"key": name, "end": True})
    if state.is_completed():
        summary = state.result(raise_on_failure=False)
        work = summary.get("seconds") if isinstance(summary, dict) else None
        console.line(f"{clock()} {name}  done in {wall:.1f} s" + (f" (work {work:.1f} s)" if work is not None else ""))
        return 0
    console.line(f"{clock()} {name}  failed after {wall:.1f} s")
    print(f"gnnrec: stage {name} failed: {state.message}", file=sys.stderr, flush=True)
    return 2 if state.name == BAD_INPUT else 1


def _settings(url: Optional[str]) -> contextlib.AbstractContextManager:
    """Prefect's settings for a stage's flow run: ``url`` as the API when the settings were loaded before
    it was exported, and no flow run heartbeats unless ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` asks for them.

    Heartbeats let a server's automation spot a crashed run; a stage lasts seconds to minutes and DVC
    knows whether it finished, while Prefect's heartbeat thread, which sleeps in one-second steps, holds
    the end of every flow run for up to a second."""
    from prefect.settings import get_current_settings, temporary_settings

    updates: dict[str, Any] = {}
    if url and str(get_current_settings().api.url or "").rstrip("/") != url.rstrip("/"):
        updates["api.url"] = url
    if not os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
        updates["flows.heartbeat_frequency"] = None
    return temporary_settings(updates=updates) if updates else contextlib.nullcontext()


def main(argv: Optional[list[str]] = None) -> int:
    """The command line (for tests and callers in Python): its exit status."""
    return _env.exit_status(app, "python -m flows.stage", argv)


if __name__ == "__main__":
    _env.run_entry_point(app, "python -m flows.stage")

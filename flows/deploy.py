"""The pipeline deployment: a nightly schedule with parameters, served by this process.

    prefect server start                              # a real server: schedules need one
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python flows/deploy.py                            # registers and serves gnnrec-pipeline/nightly
    prefect deployment run 'gnnrec-pipeline/nightly'  # trigger a run now (or wait for the schedule)

Each run is ``dvc repro`` in this project (or ``dvc exp run -S ...`` when ``set_params`` is given); with
``--snapshot snapshots/latest`` (and ``train.warm_start: snapshots/latest`` in ``params.yaml``) each run first
snapshots the models when new data arrived, and the models fine-tune from them (README, warm start).
Without ``PREFECT_API_URL`` it exits with status 2 and a message saying so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import typer  # noqa: E402

from flows import _env  # noqa: E402,F401

DEPLOYMENT_NAME = "nightly"
SCHEDULE_CRON = "0 3 * * *"  # every day at 03:00
DEFAULT_PARAMETERS = {"set_params": [], "experiment": False, "force": False, "root": str(ROOT), "snapshot": None}

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0],
                  context_settings={"help_option_names": ["-h", "--help"]})


@app.command()
def serve(
    name: str = typer.Option(DEPLOYMENT_NAME, "--name", help="deployment name"),
    cron: str = typer.Option(SCHEDULE_CRON, "--cron", help="schedule (cron syntax)"),
    snapshot: str = typer.Option(None, "--snapshot", metavar="FOLDER",
                                 help="warm-start loop: each run first snapshots the models into FOLDER when the "
                                      "data changed (set train.warm_start: FOLDER in params.yaml)"),
) -> None:
    """Register the pipeline deployment (gnnrec-pipeline/NAME, on CRON) with the Prefect server and serve it."""
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo("gnnrec: set PREFECT_API_URL to a running Prefect server (prefect server start): "
                   "schedules need one", err=True)
        raise typer.Exit(code=2)
    from flows.pipeline import pipeline

    pipeline.serve(name=name, cron=cron, parameters={**DEFAULT_PARAMETERS, "snapshot": snapshot}, tags=["gnnrec"],
                   description="Nightly dvc repro of the gnnrec pipeline")


def main() -> None:
    """The command line (``python flows/deploy.py``)."""
    app(prog_name="python flows/deploy.py")


if __name__ == "__main__":
    main()

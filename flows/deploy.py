"""The pipeline deployment: a nightly schedule with parameters, served by this process.

    prefect server start                              # a real server: schedules need one
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python flows/deploy.py                            # registers and serves gnnrec-pipeline/nightly
    prefect deployment run 'gnnrec-pipeline/nightly'  # trigger a run now (or wait for the schedule)

Each run is ``dvc repro`` in this project (or ``dvc exp run -S ...`` when ``set_params`` is given).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import _env  # noqa: E402,F401
from flows.pipeline import pipeline  # noqa: E402

DEPLOYMENT_NAME = "nightly"
SCHEDULE_CRON = "0 3 * * *"  # every day at 03:00
DEFAULT_PARAMETERS = {"set_params": [], "experiment": False, "force": False, "root": str(ROOT)}


def main() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        sys.exit("gnnrec: set PREFECT_API_URL to a running Prefect server (prefect server start): "
                 "schedules need one")
    pipeline.serve(name=DEPLOYMENT_NAME, cron=SCHEDULE_CRON, parameters=DEFAULT_PARAMETERS,
                   tags=["gnnrec"], description="Nightly dvc repro of the gnnrec pipeline")


if __name__ == "__main__":
    main()

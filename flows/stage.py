"""Run one pipeline stage as a Prefect flow: the ``cmd`` of every stage in ``dvc.yaml``.

    python -m flows.stage ingest
    python -m flows.stage train --model lightgcn

Works against a Prefect server when ``PREFECT_API_URL`` is set, else against a local API server shared by
the stages of one ``dvc repro`` (``flows/_local_api.py``: started by the first stage, stopped after a
minute unused; ``GNNREC_LOCAL_API=0`` gives each stage Prefect's own temporary server). An input error (bad data, bad params) prints its message and exits with status 2, without a traceback;
the flow run is marked failed with the same message.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Any, Optional

from flows import _env  # noqa: F401
from flows._local_api import use_shared_api
from prefect import flow
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Failed

from gnnrec.stages import STAGES, stage_id
from tasks.stages import publish_report_artifacts, run_stage_task


@flow(name="gnnrec-stage", flow_run_name="{stage}", log_prints=True, persist_result=False)
def stage_flow(stage: str, model: Optional[str] = None, root: str = ".") -> Any:
    """One stage: the Prefect task around ``gnnrec.stages.<stage>.run``, plus the report's artifacts."""
    state = run_stage_task(stage, model=model, root=root)
    if not state.is_completed():
        return Failed(message=state.message)
    summary = state.result()
    if stage == "report":
        publish_report_artifacts(summary)
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    # per-epoch progress and stage notes: gnnrec's loggers reach the Prefect run logs (PREFECT_LOGGING_EXTRA_LOGGERS)
    logging.getLogger("gnnrec").setLevel(logging.INFO)
    parser = argparse.ArgumentParser(prog="python -m flows.stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--model", default=None, help="model name (train stage only)")
    parser.add_argument("--root", default=".", help="project root (default: current directory)")
    args = parser.parse_args(argv)
    name = stage_id(args.stage, args.model)
    url = use_shared_api()
    with temporary_settings(updates={PREFECT_API_URL: url}) if url else contextlib.nullcontext():
        state = stage_flow.with_options(flow_run_name=name)(args.stage, model=args.model, root=args.root,
                                                            return_state=True)
    if state.is_failed():
        print(f"gnnrec: stage {name} failed: {state.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

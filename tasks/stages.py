"""Prefect tasks around :func:`gnnrec.stages.run_stage`.

Transient failures (I/O errors such as a full disk or a flaky network filesystem) are retried;
input errors (:class:`gnnrec.errors.GnnrecError`: bad data, bad params) and bugs fail at once with
their original message; an input error's Failed state is named ``BadInput`` (``python -m flows.stage``
then exits with status 2, and with 1 for a bug).
"""

from __future__ import annotations

import errno
import logging
from typing import Any, Optional

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed, State

from gnnrec.errors import GnnrecError
from gnnrec.stages import run_stage, stage_id
from tasks import BAD_INPUT

logger = logging.getLogger("gnnrec.stages")    # one of gnnrec's loggers: the run logs and the console get it

# errnos that describe the input (a missing or unreadable file), not a passing condition
_PERMANENT_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.EPERM}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may go away on a retry."""
    if isinstance(exc, GnnrecError):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return isinstance(exc, OSError) and exc.errno not in _PERMANENT_ERRNOS


def _retry_transient(task, task_run, state) -> bool:  # Prefect's retry_condition_fn signature
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 — classify whatever the stage raised
        return is_transient(exc)
    return False


@task(name="gnnrec-stage", task_run_name="{stage}{model_suffix}", retries=2, retry_delay_seconds=2,
      retry_condition_fn=_retry_transient, cache_policy=None, persist_result=False)
def stage_task(stage: str, model: Optional[str] = None, root: str = ".", model_suffix: str = "") -> Any:
    """Run one pipeline stage (DVC caches across runs; Prefect retries transient failures).

    An input error ends the task as Failed, named ``BadInput``, with the error's message (no traceback:
    the message names the file, row, column or key at fault); a bug ends it as Failed after logging its
    traceback."""
    try:
        return run_stage(stage, model=model, root=root)
    except GnnrecError as exc:
        return Failed(name=BAD_INPUT, message=str(exc))
    except Exception as exc:
        if not is_transient(exc):     # a bug: Prefect logs no traceback for a failure it does not retry
            logger.error("%s: %s (a bug, not retried)", type(exc).__name__, exc, exc_info=True)
        raise


def run_stage_task(stage: str, model: Optional[str] = None, root: str = ".") -> State:
    """Submit :func:`stage_task` and return its final state."""
    return stage_task(stage, model=model, root=root, model_suffix=f"@{model}" if model else "",
                      return_state=True)


def publish_report_artifacts(summary: dict[str, Any]) -> None:
    """The report summary as a markdown artifact and the metrics as a table artifact, of the running flow
    run (called in it: no task run of its own)."""
    if summary.get("summary_markdown"):
        create_markdown_artifact(key="gnnrec-report-summary", markdown=summary["summary_markdown"],
                                 description="gnnrec report summary")
    if summary.get("metrics_table"):
        create_table_artifact(key="gnnrec-metrics", table=summary["metrics_table"],
                              description="Test metrics of every model")


__all__ = ["is_transient", "publish_report_artifacts", "run_stage_task", "stage_task", "stage_id"]

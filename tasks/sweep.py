"""The sweep's Prefect task: one trial (a DVC experiment in a workspace of its own), wherever the task runner
puts it (a process of a local pool, a Dask worker on another machine)."""

from __future__ import annotations

from typing import Any, Optional

from prefect import task

from gnnrec.sweep import Source, Trial, run_trial


@task(name="trial", task_run_name="{trial[name]}", retries=0)
def trial_task(trial: dict[str, Any], source: dict[str, Any], workdir: Optional[str], timeout: Optional[float],
               keep: bool, force: bool) -> dict[str, Any]:
    """Run one trial; a trial's own failure comes back as a result with ``status: failed``, not a raise."""
    one = Trial(name=trial["name"], overrides=tuple(trial["overrides"]),
                swept=tuple((k, v) for k, v in trial["swept"]))
    return run_trial(one, Source(**{**source, "dvc_files": tuple(source["dvc_files"])}), workdir, timeout, keep, force)

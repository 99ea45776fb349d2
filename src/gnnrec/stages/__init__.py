"""Pipeline stages: one module per DVC stage, each ``run(params, paths[, model]) -> dict``.

A stage reads files and writes files (atomically) and nothing else; :func:`run_stage` is the single
entry point used by the CLI and by the Prefect tasks. It loads and validates the params, runs the stage,
and records the stage's wall time in ``reports/timings/<stage>.json`` (timings never go into metrics).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Optional

from gnnrec.config import Params, load_params
from gnnrec.errors import ConcurrentRunError
from gnnrec.io import write_json
from gnnrec.paths import Paths

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory lock
    fcntl = None  # type: ignore[assignment]

STAGES = ("ingest", "validate", "split", "build_graph", "train", "evaluate", "report")


def stage_id(stage: str, model: Optional[str] = None) -> str:
    """DVC's name of a stage instance: ``train@lightgcn`` for a per-model stage."""
    return f"{stage}@{model}" if model else stage


def run_stage(stage: str, model: Optional[str] = None, root: str | Path = ".",
              params: Optional[Params] = None) -> dict[str, Any]:
    """Run one stage in the project at ``root`` and return its summary (with ``seconds``)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if (stage == "train") != (model is not None):
        raise ValueError("a model name is needed for (and only for) the train stage")
    root = Path(root)
    params = params if params is not None else load_params(root / "params.yaml")
    paths = Paths(root)
    module = importlib.import_module(f"gnnrec.stages.{stage}")
    name = stage_id(stage, model)
    with project_lock(paths, name):
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        summary = module.run(params, paths, model) if model else module.run(params, paths)
        seconds = time.perf_counter() - t0
        write_json(paths.timing(name), {"stage": name, "seconds": round(seconds, 3),
                                        "started": started.isoformat(timespec="seconds")})
    summary = dict(summary or {})
    summary["seconds"] = round(seconds, 3)
    return summary


@contextlib.contextmanager
def project_lock(paths: Paths, holder: str) -> Iterator[None]:
    """Hold the project's advisory lock (``artifacts/.lock``, ``flock``) while a stage runs.

    Two stages of one project never run at once: DVC serialises its own runs with its repo lock, and this
    lock covers stage runs outside DVC (``gnnrec stage``, ``python -m flows.stage``). A second run fails at
    once with :class:`ConcurrentRunError` naming the running stage. The kernel drops the lock when its
    process dies (even by SIGKILL), so a crash never leaves a stale lock behind."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock = paths.lock
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            raise ConcurrentRunError(f"another gnnrec stage is running in this project ({_holder(fd)}; lock "
                                     f"{lock}): wait for it to finish, then run again") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"stage": holder, "pid": os.getpid(),
                                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"stage {info['stage']}, pid {info['pid']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"

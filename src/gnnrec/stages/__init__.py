"""Pipeline stages: one module per DVC stage, each ``run(params, paths[, model]) -> dict``.

A stage reads files and writes files (atomically) and nothing else; :func:`run_stage` is the single
entry point used by the CLI and by the Prefect tasks. It loads and validates the params, runs the stage,
and records the stage's wall time in ``reports/timings/<stage>.json`` (timings never go into metrics):
``seconds`` is the stage's own work (``run``), ``import_seconds`` the import of its module (the
libraries it needs: pandas, torch ...), both measured inside the process.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from gnnrec.config import Params, load_params
from gnnrec.errors import ConcurrentRunError, ParamsError
from gnnrec.io import write_json
from gnnrec.paths import Paths

# called once a stage's module (and the libraries its work needs) is imported, just before its work: the
# stage entry point turns Python's garbage collector back on here (``flows/_env.py`` pauses it for imports)
ON_IMPORTED: list[Callable[[], None]] = []

STAGES = ("ingest", "validate", "split", "build_graph", "train", "oracle", "evaluate", "report")


def stage_id(stage: str, model: Optional[str] = None) -> str:
    """DVC's name of a stage instance: ``train@lightgcn`` for a per-model stage."""
    return f"{stage}@{model}" if model else stage


def run_stage(stage: str, model: Optional[str] = None, root: str | Path = ".",
              params: Optional[Params] = None) -> dict[str, Any]:
    """Run one stage in the project at ``root`` and return its summary (with ``seconds``, its own work)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if (stage == "train") != (model is not None):
        raise ValueError("a model name is needed for (and only for) the train stage")
    root = Path(root)
    # every stage checks the shared sections and the model names; a model's own section is checked by its
    # train stage, before any work (its schema lives in the model's file, which imports torch: the other
    # stages load params without importing torch, which would cost each of them about two seconds)
    loaded = params is None
    params = params if params is not None else load_params(root / "params.yaml", check_models=False)
    if model is not None:
        try:
            params.check_models([model])
        except ParamsError as exc:
            if loaded and exc.file is None:             # name the file, as the checks at load time do
                exc.file = str(root / "params.yaml")
            raise
    paths = Paths(root)
    t_import = time.perf_counter()
    module = importlib.import_module(f"gnnrec.stages.{stage}")
    import_seconds = time.perf_counter() - t_import
    for hook in ON_IMPORTED:
        hook()
    name = stage_id(stage, model)
    with project_lock(paths, name):
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        summary = module.run(params, paths, model) if model else module.run(params, paths)
        seconds = time.perf_counter() - t0
        write_json(paths.timing(name), {"stage": name, "seconds": round(seconds, 3),
                                        "import_seconds": round(import_seconds, 3),
                                        "started": started.isoformat(timespec="seconds")})
    summary = dict(summary or {})
    summary["seconds"] = round(seconds, 3)
    return summary


@contextlib.contextmanager
def project_lock(paths: Paths, holder: str) -> Iterator[None]:
    """Hold the project's lock (``artifacts/.lock``, a :class:`filelock.FileLock`) while a stage runs.

    Two stages of one project never run at once: DVC serialises its own runs with its repo lock, and this
    lock covers stage runs outside DVC (``gnnrec stage``, ``python -m flows.stage``). A second run fails at
    once with :class:`ConcurrentRunError` naming the running stage, its pid and when it started; the holder
    writes these to ``artifacts/.lock.holder.json`` (atomically) once it has the lock. The lock is an OS
    lock (``flock`` on POSIX, ``msvcrt`` locking on Windows), which the kernel drops when its process dies,
    even by SIGKILL, so a crash never leaves a stale lock behind: a holder file left by a killed holder is
    overwritten by the next one."""
    from filelock import FileLock, Timeout

    lock_file = paths.lock
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    holder_file = holder_path(paths)
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ConcurrentRunError(f"another gnnrec stage is running in this project ({_holder(holder_file)}; lock "
                                 f"{lock_file}): wait for it to finish, then run again") from None
    try:
        write_json(holder_file, {"stage": holder, "pid": os.getpid(),
                                 "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


def holder_path(paths: Paths) -> Path:
    """Where the holder of ``paths.lock`` names itself: ``artifacts/.lock.holder.json``."""
    return paths.lock.with_name(paths.lock.name + ".holder.json")


def _holder(holder_file: Path) -> str:
    try:
        info = json.loads(holder_file.read_text(encoding="utf-8"))
        return f"stage {info['stage']}, pid {info['pid']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):   # not written yet, or being replaced
        return "holder unknown"

"""Pipeline stages: one module per DVC stage, each ``run(params, paths[, model]) -> dict``.

A stage reads files and writes files (atomically) and nothing else; :func:`run_stage` is the single
entry point used by the CLI and by the Prefect tasks. It loads and validates the params, runs the stage,
and records the stage's wall time in ``reports/timings/<stage>.json`` (timings never go into metrics).
"""

from __future__ import annotations

import importlib
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from gnnrec.config import Params, load_params
from gnnrec.io import write_json
from gnnrec.paths import Paths

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
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    summary = module.run(params, paths, model) if model else module.run(params, paths)
    seconds = time.perf_counter() - t0
    name = stage_id(stage, model)
    write_json(paths.timing(name), {"stage": name, "seconds": round(seconds, 3),
                                    "started": started.isoformat(timespec="seconds")})
    summary = dict(summary or {})
    summary["seconds"] = round(seconds, 3)
    return summary

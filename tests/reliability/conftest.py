"""Fixtures of the reliability suite, and the collector behind ``reports/reliability.md``.

Every reliability test records what it tried with ``record_case(group, case, expected)`` (a pytest
``user_property``, so results reach the controller under xdist too). When the session ends, the results
are written to ``reports/reliability.md`` (:mod:`tests.reliability.report`) if the whole suite ran (every
case of the bad-input matrix and every group of checks; a filtered run leaves the last full report alone).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from tests.conftest import REPO
from tests.reliability import report as report_mod
from tests.reliability.cases import CASES

PROPERTY = "reliability"
_RESULTS: list[dict[str, Any]] = []


# ------------------------------------------------------------------------------ the collector
@pytest.fixture
def record_case(record_property) -> Callable[..., None]:
    """``record_case(group, case, expected, detail="")``: list this test's check in reports/reliability.md."""
    def record(group: str, case: str, expected: str, detail: str = "") -> None:
        record_property(PROPERTY, json.dumps({"group": group, "case": case, "expected": expected,
                                              "detail": detail}))
    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entries = [json.loads(v) for k, v in report.user_properties if k == PROPERTY]
    if not entries:
        return
    failed = report.failed
    if report.when == "call" or failed:
        for entry in entries:
            key = (entry["group"], entry["case"])
            _RESULTS[:] = [r for r in _RESULTS if (r["group"], r["case"]) != key]  # setup+call: keep the last
            _RESULTS.append({**entry, "passed": not failed and report.outcome == "passed",
                             "test": report.nodeid})


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):   # an xdist worker: the controller writes the report
        return
    matrix = {c.id for c in CASES}
    ran = {f"{r['group']}/{r['case']}" for r in _RESULTS}
    groups = {r["group"] for r in _RESULTS}
    if matrix <= ran and set(report_mod.GROUP_ORDER) <= groups:   # the whole suite ran: a complete report
        report_mod.write_report(_RESULTS, REPO / "reports" / "reliability.md")


# ------------------------------------------------------------------------------ the CLI, in process
class CliResult:
    def __init__(self, code: int, output: str, exception: BaseException | None):
        self.code = code
        self.output = output
        self.exception = exception


def run_cli(*args: str) -> CliResult:
    """``gnnrec <args>`` in this process (typer's runner): exit code and everything printed. The root
    logger's handlers are restored afterwards (the stage command installs one on the runner's stream)."""
    from typer.testing import CliRunner

    from gnnrec.cli import app

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    output = result.output
    if exc is not None:  # an unexpected exception: show it as the user would see it
        import traceback

        output += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return CliResult(result.exit_code, output, exc)


# ------------------------------------------------------------------------------ a small project
def write_params(root: Path, params: dict[str, Any]) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def tiny_params(data_dir: Path, **extra: Any) -> dict[str, Any]:
    """Params of the shared small csv project (fast: a few seconds per model on 2 cores)."""
    params: dict[str, Any] = {
        "seed": 11,
        "data": {"source": "csv", "path": str(data_dir),
                 "tabular": {"interactions": "interactions.csv", "social": "social.csv", "items": "items.csv",
                             "columns": {"user": "user_id", "item": "item_id", "rating": "rating",
                                         "timestamp": "timestamp"},
                             "social_columns": {"src": "src", "dst": "dst"},
                             "item_columns": {"item": "item_id", "name": "name"}}},
        "models": ["lightgcn", "mf", "popularity"],
        "train": {"epochs": 40, "batch_size": 256, "patience": 100, "num_threads": 1},
        "lightgcn": {"embedding_dim": 16, "num_layers": 2},
        "mf": {"embedding_dim": 16},
        "evaluate": {"k": [5, 10], "chunk_size": 64},
        "report": {"example_users": 3, "top_n": 5},
    }
    for key, value in extra.items():
        params[key] = value
    return params


#: item names that must come out of the HTML report as text, never as markup
HOSTILE_NAME = '<script>alert("item {i}")</script><img src=x onerror=alert({i})> & "q"'


def write_tiny_data(data_dir: Path, seed: int = 11) -> None:
    """A small social dataset (the synthetic generator's structure) as generic CSV files whose item names
    hold markup and user ids hold angle brackets."""
    from gnnrec.config import SyntheticConfig
    from gnnrec.datasets.synthetic import generate

    cfg = SyntheticConfig(n_users=150, n_items=240, n_interactions=6000, n_communities=4, n_social=400)
    tables = generate(cfg, seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    inter = tables["interactions"].copy()
    inter["user_id"] = "<u>" + inter["user_id"].astype(str)
    inter.to_csv(data_dir / "interactions.csv", index=False)
    social = tables["social"][["src", "dst"]].copy()
    social["src"] = "<u>" + social["src"].astype(str)
    social["dst"] = "<u>" + social["dst"].astype(str)
    social.to_csv(data_dir / "social.csv", index=False)
    items = tables["items"][["item_id"]].copy()
    items["name"] = [HOSTILE_NAME.format(i=i) for i in items["item_id"]]
    items.to_csv(data_dir / "items.csv", index=False)


PIPELINE = ("ingest", "validate", "split", "build_graph", ("train", "lightgcn"), ("train", "mf"),
            ("train", "popularity"), "evaluate", "report")


def run_pipeline(root: Path, stages=PIPELINE) -> dict[str, Any]:
    from gnnrec.stages import run_stage

    out = {}
    for stage in stages:
        if isinstance(stage, tuple):
            out[f"{stage[0]}@{stage[1]}"] = run_stage(stage[0], model=stage[1], root=root)
        else:
            out[stage] = run_stage(stage, root=root)
    return out


@pytest.fixture(scope="session")
def pipeline_project(tmp_path_factory) -> Path:
    """One full in-process pipeline run on the small csv project, shared by the crash, determinism, lock
    and report tests. Treat it as read-only: copy it (:func:`copy_project`) to change anything."""
    root = tmp_path_factory.mktemp("pipeline")
    write_tiny_data(root / "data")
    write_params(root, tiny_params(root / "data"))
    run_pipeline(root)
    return root


def copy_project(src: Path, dest: Path, *, outputs: bool = True) -> Path:
    """A copy of a project: params and data, and (``outputs``) its artifacts and reports."""
    dest.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((src / "params.yaml").read_text())
    shutil.copytree(src / "data", dest / "data")
    params["data"]["path"] = str(dest / "data")
    write_params(dest, params)
    if outputs:
        for folder in ("artifacts", "reports"):
            if (src / folder).exists():
                shutil.copytree(src / folder, dest / folder, ignore=shutil.ignore_patterns(".lock"))
    return dest


@pytest.fixture
def python_env() -> dict[str, str]:
    """Environment for a ``python -m gnnrec.cli`` subprocess (repo on the path, telemetry off)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return env


PY = sys.executable


@pytest.fixture(scope="session")
def good_outputs(tmp_path_factory) -> dict[str, bytes]:
    """The outputs of a good ingest + validate run (and a stand-in for the last run's metrics), keyed by
    path relative to the project: every bad-input case starts from them and must leave them intact."""
    from tests.reliability.cases import CSV_RT

    root = tmp_path_factory.mktemp("good")
    (root / "data").mkdir()
    (root / "data" / "interactions.csv").write_text(CSV_RT)
    write_params(root, {"data": {"source": "csv", "path": str(root / "data"),
                                 "tabular": {"columns": {"rating": "rating", "timestamp": "timestamp"}}}})
    run_pipeline(root, ("ingest", "validate"))
    (root / "reports" / "metrics.json").write_text('{"lightgcn": {"recall@10": 0.5}}\n')
    return {str(p.relative_to(root)): p.read_bytes() for folder in ("artifacts", "reports", "logs")
            for p in sorted((root / folder).rglob("*")) if p.is_file() and p.name != ".lock"}


def files_under(root: Path) -> Iterator[Path]:
    for folder in ("artifacts", "reports", "logs"):
        if (root / folder).exists():
            yield from (p for p in (root / folder).rglob("*") if p.is_file())

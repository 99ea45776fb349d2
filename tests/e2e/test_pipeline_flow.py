"""End to end: ``python -m flows.pipeline`` (what ``make run`` runs) on a tiny dataset in a temporary copy of
the repo, its output read through a pipe (not a terminal, as in CI or a log file): one line per stage start
and end, the stages' log lines without Prefect's prefixes, DVC's bookkeeping left out; a second run skips
every stage; bad params exit 2 with one message and no traceback."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import base_env
from tests.e2e.conftest import make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STAGES = ("ingest", "validate", "split", "build_graph", "train@lightgcn", "train@social", "train@mf",
          "train@popularity",
          "oracle", "evaluate", "report")
CLOCK = r"\d\d:\d\d:\d\d"


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_server):
    env = base_env(prefect_server["home"])
    env["PREFECT_API_URL"] = prefect_server["url"]
    return make_project(tmp_path_factory.mktemp("pipeline-flow"), env)


def _pipeline(project, *args):
    proc = project.run(sys.executable, "-m", "flows.pipeline", *args, check=False)
    return proc, proc.stdout + proc.stderr


def test_the_pipeline_flow_prints_one_start_and_one_end_line_per_stage(project):
    proc, out = _pipeline(project)
    assert proc.returncode == 0, out
    lines = proc.stdout.splitlines()
    for stage in STAGES:
        name = re.escape(stage)
        starts = [line for line in lines if re.fullmatch(rf"{CLOCK} {name}  started", line)]
        ends = [line for line in lines if re.fullmatch(rf"{CLOCK} {name}  done in [0-9.]+ s \(work [0-9.]+ s\)", line)]
        assert len(starts) == 1 and len(ends) == 1, (stage, out)
    assert re.search(rf"^{CLOCK} train@lightgcn  epoch 1  loss ", proc.stdout, re.M), out      # per-epoch lines
    summary = rf"^{CLOCK} pipeline  done in \d+ s: {len(STAGES)} stages run, 0 unchanged$"
    assert re.search(summary, proc.stdout, re.M), out
    doubled = [line for line in out.splitlines() if len(re.findall(r"\d\d:\d\d:\d\d", line)) > 1]
    assert not doubled, out
    assert "Flow run '" not in out and "Task run '" not in out and " | INFO " not in out, out
    assert "Running stage" not in out and "Updating lock file" not in out and "> python -m" not in out, out
    assert "\x1b[" not in out, out                                            # no progress bar off a terminal
    assert (project.root / "reports" / "metrics.json").exists()


def test_a_second_run_skips_every_stage(project):
    proc, out = _pipeline(project)
    assert proc.returncode == 0, out
    for stage in STAGES:
        assert re.search(rf"^{CLOCK} {re.escape(stage)}  unchanged, skipped$", proc.stdout, re.M), (stage, out)
    assert "started" not in proc.stdout and f"{len(STAGES)} stages run" not in proc.stdout
    assert re.search(rf"pipeline  done in \d+ s: 0 stages run, {len(STAGES)} unchanged", proc.stdout), out


def test_bad_params_exit_2_with_one_message_and_no_traceback(project):
    try:
        proc, out = _pipeline(project, "-S", "train.lr=fast")
        assert proc.returncode == 2, out
        # only the training stages read train.*: the first of them stops the run
        assert "gnnrec: pipeline failed: stage train@lightgcn failed: params.yaml: key 'train.lr'" in proc.stderr, out
        assert out.count("key 'train.lr'") == 1, out
        assert "Traceback" not in out and "train@mf  started" not in out, out
    finally:
        project.run("git", "checkout", "-q", "params.yaml")
        project.dvc("checkout", "-q", check=False)

"""The sweep flow end to end on the tiny project: trials on a local 2-worker Dask cluster, each a DVC
experiment of the project's repository, one made to fail without stopping the others."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BIN, base_env
from tests.e2e.conftest import make_project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sweep_project(tmp_path_factory, prefect_server):
    env = base_env(prefect_server["home"])
    env["PREFECT_API_URL"] = prefect_server["url"]
    return make_project(tmp_path_factory.mktemp("sweep-project"), env)


def test_a_sweep_on_dask_runs_each_trial_as_an_experiment_and_reports_the_failed_one(sweep_project, tmp_path):
    work = tmp_path / "work"
    proc = sweep_project.run(str(BIN / "python"), "-m", "flows.sweep", "--runner", "dask", "--workers", "2",
                             "--name", "tiny", "--workdir", str(work), "-S", "train.epochs=2",
                             "-S", "models=[mf],[lightgcn],[no_such_model]", check=False, timeout=1200)
    assert proc.returncode == 1, proc.stderr[-3000:]          # one trial failed: reported, exit status 1
    summary = json.loads(sweep_project.read("reports/sweeps/tiny/sweep.json"))
    by_name = {t["name"]: t for t in summary["trials"]}
    assert [by_name[n]["status"] for n in ("tiny-001", "tiny-002", "tiny-003")] == ["completed", "completed",
                                                                                      "failed"]
    assert "no_such_model" in by_name["tiny-003"]["error"]
    assert by_name["tiny-003"]["workspace"] and (work / by_name["tiny-003"]["workspace"].split("/")[-1]).is_dir()
    assert by_name["tiny-001"]["workspace"] is None                   # a completed trial's workspace is removed
    assert summary["metric"] == "ndcg@10"                             # the tiny project's largest k
    assert set(by_name["tiny-001"]["metrics"]) - {"cold_start"} == {"mf"}
    assert set(by_name["tiny-002"]["metrics"]) - {"cold_start"} == {"lightgcn"}
    report = sweep_project.read("reports/sweeps/tiny/sweep.md")
    assert "| tiny-003 | `[no_such_model]` | failed |" in report and "## Failed trials" in report
    assert (sweep_project.root / "reports/sweeps/tiny/sweep.png").read_bytes()[:4] == b"\x89PNG"

    shown = json.loads(sweep_project.dvc("exp", "show", "--json").stdout)
    exps = {exp["name"]: exp["revs"][0] for base in shown for exp in (base.get("experiments") or [])}
    assert {"tiny-001", "tiny-002", "tiny-003-failed"} <= set(exps) and "tiny-003" not in exps
    assert by_name["tiny-003"]["experiment"] == "tiny-003-failed"
    failed = exps["tiny-003-failed"]["data"]          # the failed run: its params, no metrics claimed
    assert failed["params"]["params.yaml"]["data"]["models"] == ["no_such_model"]
    assert "data" not in (failed.get("metrics") or {}).get("reports/metrics.json", {})
    for name, model in (("tiny-001", "mf"), ("tiny-002", "lightgcn")):
        data = exps[name]["data"]
        assert data["params"]["params.yaml"]["data"]["models"] == [model]
        assert data["params"]["params.yaml"]["data"]["train"]["epochs"] == 2
        metrics = data["metrics"]["reports/metrics.json"]["data"]
        assert metrics[model] == by_name[name]["metrics"][model]      # the pushed experiment is the trial's run

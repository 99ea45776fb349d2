"""End to end: the nightly warm-start loop through the pipeline flow. A first run; new data arrives (new users
and interactions appended to the raw files); ``python -m flows.pipeline --snapshot snapshots/latest`` snapshots
yesterday's models before ``dvc repro`` retrains, and the models fine-tune from them (known users by raw id,
new ones from the cold-start inference); a run without new data snapshots nothing and reruns nothing."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import base_env
from tests.e2e.conftest import make_project

pytestmark = pytest.mark.e2e

NEW_USERS = ("9001", "9002", "9003")


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_server):
    env = base_env(prefect_server["home"])
    env["PREFECT_API_URL"] = prefect_server["url"]
    project = make_project(tmp_path_factory.mktemp("warm-start"), env)
    project.set_params({"models": ["mf", "lightgcn"],
                        "train": {"warm_start": "snapshots/latest", "warm_start_epochs": 2}})
    project.run("git", "commit", "-qam", "warm start on")
    return project


def _pipeline(project):
    proc = project.run(sys.executable, "-m", "flows.pipeline", "--snapshot", "snapshots/latest", check=False,
                       timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_nightly_loop_snapshots_before_new_data_and_fine_tunes_from_it(project):
    out = _pipeline(project)                           # the first run: no models yet, so no snapshot; from scratch
    assert "no new data (or no models yet)" in out
    first = json.loads(project.read("reports/train/lightgcn.json"))
    assert "warm_start" not in first                   # the snapshot folder does not exist yet: a warning, scratch
    n_users = len(project.read("data/synthetic/users.csv").splitlines()) - 1

    rows = [f"{u},{i},4,{1_700_000_000 + k}" for k, u in enumerate(NEW_USERS) for i in (3, 5, 8, 13, 21, 34)]
    with open(project.root / "data/synthetic/interactions.csv", "a") as fh:      # tomorrow's data
        fh.write("\n".join(rows) + "\n")
    out = _pipeline(project)
    assert "new data: snapshot of lightgcn, mf in snapshots/latest" in out
    manifest = json.loads(project.read("snapshots/latest/manifest.json"))
    assert manifest["models"] == ["lightgcn", "mf"] and manifest["n_users"] <= n_users
    for model in ("mf", "lightgcn"):
        summary = json.loads(project.read(f"reports/train/{model}.json"))
        warm = summary["warm_start"]
        assert warm["from"].endswith("snapshots/latest") and summary["epochs_run"] <= 2
        # every user of yesterday's id map is still known (matched by raw id), the appended ones are the new ones
        assert (warm["known_users"], warm["new_users"], warm["dropped_users"]) == (manifest["n_users"],
                                                                                   len(NEW_USERS), 0)
        assert warm["new_rows"]

    before = (project.root / "snapshots/latest/manifest.json").read_text()
    out = _pipeline(project)                           # nothing new: no snapshot, every stage unchanged
    assert "no new data (or no models yet)" in out and "0 stages run" in out
    assert (project.root / "snapshots/latest/manifest.json").read_text() == before

"""End to end: ``dvc repro`` of the whole pipeline on a tiny dataset in a temporary copy of the repo,
every stage through its Prefect flow (against a real Prefect server)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from pydantic import Field, StrictInt
from torch import nn

from gnnrec.config import ModelParams
from gnnrec.constants import METRIC_NAMES
from gnnrec.models.base import Recommender
from tests.conftest import BIN
from tests.e2e.conftest import Project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODELS = ("lightgcn", "social", "mf", "popularity")   # the default models


def test_repro_writes_metrics_and_report(tiny_project):
    metrics = json.loads(tiny_project.read("reports/metrics.json"))
    assert sorted(metrics) == sorted([*MODELS, "cold_start"])
    for model in MODELS:
        assert sorted(metrics[model]) == sorted(f"{m}@{k}" for m in METRIC_NAMES for k in (5, 10))
        assert all(0.0 <= v <= 1.0 for v in metrics[model].values())
        assert metrics[model]["recall@10"] >= metrics[model]["recall@5"]
    html = tiny_project.read("reports/report.html")
    assert "lightgcn" in html and "<img" in html and "data:image/png;base64," in html
    assert "http://" not in html.replace("http://127.0.0.1", "") and "https://" not in html
    assert (tiny_project.root / "reports" / "report.md").exists()
    assert (tiny_project.root / "artifacts" / "recommendations.parquet").exists()
    for model in ("lightgcn", "mf"):
        curve = tiny_project.read(f"reports/curves/{model}.csv").splitlines()
        assert curve[0] == "epoch,loss,val_score,seconds" and len(curve) >= 2


def test_new_users_are_held_out_of_everything_fitted_and_scored_per_k(tiny_project):
    """No held-out user's interaction, revealed or target, reaches train/val/test, the graph (edges and
    ties) or a fitted statistic (popularity counts); every model is scored on them per k."""
    import numpy as np
    import pandas as pd

    root = tiny_project.root
    cold = pd.read_parquet(root / "artifacts/split/cold_users.parquet")
    cold_inter = pd.read_parquet(root / "artifacts/split/cold_user_interactions.parquet")
    cold_items = pd.read_parquet(root / "artifacts/split/cold_items.parquet")["item_id"]
    assert len(cold) > 0 and set(cold["role"]) == {"test", "val"}
    users = set(cold["user_id"])
    for part in ("train", "val", "test"):
        df = pd.read_parquet(root / f"artifacts/split/{part}.parquet")
        assert not users & set(df["user_id"]), part
        assert not set(cold_items) & set(df["item_id"]), part
    graph = np.load(root / "artifacts/graph/graph.npz")
    assert not users & set(graph["train_user"].tolist())
    assert not users & (set(graph["social_src"].tolist()) | set(graph["social_dst"].tolist()))
    ckpt = torch.load(root / "artifacts/models/popularity.pt", weights_only=True)
    counts = ckpt["state_dict"]["counts"]
    train = pd.read_parquet(root / "artifacts/split/train.parquet")
    assert counts.tolist() == np.bincount(train["item_id"], minlength=len(counts)).tolist()
    assert len(cold_inter) and set(cold_inter["user_id"]) <= users
    metrics = json.loads(tiny_project.read("reports/metrics.json"))["cold_start"]["users"]
    assert sorted(metrics) == sorted(MODELS)
    assert all(sorted(metrics[m]) == ["k=0", "k=1", "k=3", "k=5"] for m in MODELS)
    assert "New users" in tiny_project.read("reports/report.md")


def test_report_summary_and_metrics_are_published_as_prefect_artifacts(tiny_project):
    prefect = str(BIN / "prefect")
    summary = tiny_project.run(prefect, "artifact", "inspect", "gnnrec-report-summary").stdout
    assert "lightgcn" in summary
    table = tiny_project.run(prefect, "artifact", "inspect", "gnnrec-metrics").stdout
    assert "lightgcn" in table and "ndcg@10" in table


def test_status_is_clean_and_second_repro_skips_every_stage(tiny_project):
    status = tiny_project.dvc("status")
    assert "up to date" in status.stdout, status.stdout
    again = tiny_project.dvc("repro")
    assert "Running stage" not in again.stdout, again.stdout
    graph = json.loads(tiny_project.read("reports/graph.json"))
    assert graph["social"]["kept"] + graph["social"]["dropped"] == graph["social"]["ties_in"]
    assert graph["social"]["noise"] is not None


def test_retraining_with_the_same_seed_gives_identical_metrics(tiny_project):
    before = tiny_project.read("reports/metrics.json")
    for stage in ("train@lightgcn", "train@mf", "evaluate"):
        tiny_project.dvc("repro", "--force", "--single-item", stage)
    assert tiny_project.read("reports/metrics.json") == before


def test_stages_run_in_processes_of_their_own_give_the_metrics_of_the_preloaded_run(tiny_project):
    """``dvc repro`` ran each stage in a forked child of the preload server (``flows/_preload.py``); with
    ``GNNREC_PRELOAD=0`` each stage runs in the command's own fresh process: the same metrics, bit for bit."""
    before = tiny_project.read("reports/metrics.json")
    own = Project(tiny_project.root, {**tiny_project.env, "GNNREC_PRELOAD": "0"})
    for stage in ("train@lightgcn", "train@mf", "evaluate"):
        own.dvc("repro", "--force", "--single-item", stage)
    assert tiny_project.read("reports/metrics.json") == before


BAD_INPUTS = {
    "missing column": ("user_id,rating\n1,5\n2,4\n", "item_id"),
    "non-integral id": ("user_id,item_id\n1,10\n2,1.5\n3,11\n", "1.5"),
    "NaN rating": ("user_id,item_id,rating\n1,10,4\n2,11,nan\n3,12,5\n", "rating"),
    "empty file": ("", "interactions.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_csv_input_fails_early_and_keeps_last_good_outputs(tiny_project, tmp_path, case):
    text, needle = BAD_INPUTS[case]
    (tmp_path / "interactions.csv").write_text(text)
    metrics_before = tiny_project.read("reports/metrics.json")
    rating = "rating" if "rating" in text.split("\n")[0] else None
    tiny_project.set_params({"data": {"source": "csv", "path": str(tmp_path),
                                      "tabular": {"columns": {"rating": rating}}}})
    try:
        result = tiny_project.dvc("repro", check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert needle in output
        assert "Running stage 'split'" not in output  # nothing after the failing stage ran
        assert "Traceback" not in output
        assert tiny_project.read("reports/metrics.json") == metrics_before
        assert "changed" in tiny_project.dvc("status").stdout
    finally:
        tiny_project.run("git", "checkout", "-q", "params.yaml")


def test_anomalies_are_repaired_by_default_and_fail_when_strict(tiny_project, tmp_path):
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id\n" + "".join(f"u{u},i{i}\n" for u in range(6) for i in range(5)) + "u1,i1\n")
    (tmp_path / "social.csv").write_text("src,dst\nu1,u2\nu3,u3\nu4,ghost\n")
    tiny_project.set_params({"data": {"source": "csv", "path": str(tmp_path),
                                      "tabular": {"social": "social.csv"}}})
    try:
        tiny_project.dvc("repro", "validate")
        report = json.loads(tiny_project.read("reports/validation.json"))
        assert report["success"] is True
        assert report["repairs"]["duplicate_interactions_merged"] == 1
        assert report["repairs"]["social_self_loops_dropped"] == 1
        assert report["repairs"]["social_unknown_users_dropped"] == 1
        tiny_project.set_params({"validate": {"strict": True}})
        strict = tiny_project.dvc("repro", "validate", check=False)
        assert strict.returncode != 0
        out = strict.stdout + strict.stderr
        assert "duplicate" in out.lower() or "unique" in out.lower()
        kept = json.loads((tiny_project.root / "logs" / "validation" / "latest.json").read_text())
        assert kept["success"] is False and kept["failures"]
    finally:
        tiny_project.run("git", "checkout", "-q", "params.yaml")
        tiny_project.dvc("checkout", "-q", check=False)


def test_experiment_with_one_model_skips_unchanged_training(tiny_project):
    result = tiny_project.dvc("exp", "run", "-S", "models=[mf]", "--name", "only-mf")
    assert "Stage 'train@mf' didn't change, skipping" in result.stdout, result.stdout
    assert "Running stage 'evaluate'" in result.stdout
    shown = tiny_project.dvc("exp", "show", "--no-pager", "--csv")
    assert "only-mf" in shown.stdout


ZOO = ("lightgcn", "mf", "popularity", "ngcf", "gcn", "gat", "graphsage", "pinsage", "social")


def test_every_model_runs_in_one_experiment_and_the_report_compares_them(tiny_project):
    try:
        tiny_project.dvc("exp", "run", "-S", f"models=[{','.join(ZOO)}]", "--name", "zoo")
        metrics = json.loads(tiny_project.read("reports/metrics.json"))
        assert set(metrics) == {*ZOO, "cold_start"}
        assert set(metrics["cold_start"]["users"]) == set(ZOO)
        gates = json.loads(tiny_project.read("reports/evaluation.json"))["models"]["social"]["gates"]
        assert gates["ties"] > 0 and sum(gates["histogram"]["counts"]) == gates["ties"]
        assert 0.0 <= gates["auc"] <= 1.0 and gates["fake_ties"] > 0       # the tiny data's marked noise, kept
        for model in ZOO:
            summary = json.loads(tiny_project.read(f"reports/train/{model}.json"))
            assert (summary["n_params"] > 0) == (model != "popularity"), (model, summary["n_params"])
            assert 0.0 <= metrics[model]["ndcg@10"] <= 1.0 and 0.0 <= metrics[model]["recall@5"] <= 1.0
        markdown = tiny_project.read("reports/report.md")
        assert "| Training time | Parameters | Best epoch |" in markdown
        for model in ZOO:
            assert f"| {model} |" in markdown
    finally:
        tiny_project.run("git", "checkout", "-q", "params.yaml")
        tiny_project.dvc("checkout", "-q", check=False)


def test_social_model_on_data_without_ties_is_skipped_with_a_warning_and_a_report_line(tiny_project, tmp_path):
    """``social`` is in the default models: on data without ties it is skipped (not an error), and says so."""
    (tmp_path / "interactions.csv").write_text(
        "user_id,item_id\n" + "".join(f"u{u},i{(u * 7 + j) % 30}\n" for u in range(20) for j in range(8)))
    tiny_project.set_params({"data": {"source": "csv", "path": str(tmp_path)}, "models": ["social", "popularity"],
                             "split": {"cold_start": {"user_share": 0.0, "val_share": 0.0, "item_share": 0.0}}})
    try:
        result = tiny_project.dvc("repro", check=False)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-3000:]
        assert "train@social skipped: model 'social' needs social ties, but the dataset has none" in out, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        summary = json.loads(tiny_project.read("reports/train/social.json"))
        assert "the dataset has none" in summary["skipped"]
        metrics = json.loads(tiny_project.read("reports/metrics.json"))
        assert "social" not in metrics and "popularity" in metrics
        assert json.loads(tiny_project.read("reports/evaluation.json"))["models"]["social"] == {
            "skipped": summary["skipped"]}
        assert "social was not trained: model 'social' needs social ties" in tiny_project.read("reports/report.md")
    finally:
        tiny_project.run("git", "checkout", "-q", "params.yaml")
        tiny_project.dvc("checkout", "-q", check=False)


def test_scheduled_deployment_is_served_and_runs_the_pipeline(tiny_project):
    """flows/deploy.py registers the deployment with its cron schedule on the real server and serves it;
    a triggered run executes the pipeline flow (dvc repro) in the project and completes."""
    import subprocess
    import time

    serve = subprocess.Popen([sys.executable, "flows/deploy.py"], cwd=tiny_project.root, env=tiny_project.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            inspect = tiny_project.run(str(BIN / "prefect"), "deployment", "inspect", "gnnrec-pipeline/nightly",
                                       check=False)
            if inspect.returncode == 0:
                break
            assert serve.poll() is None and time.time() < deadline, inspect.stdout + inspect.stderr
            time.sleep(2)
        assert "0 3 * * *" in inspect.stdout
        run = tiny_project.run(str(BIN / "prefect"), "deployment", "run", "gnnrec-pipeline/nightly", "--watch",
                               "--watch-timeout", "600")
        assert "Completed" in run.stdout, run.stdout
    finally:
        serve.terminate()
        serve.wait(timeout=30)


class ToyModel(Recommender):
    """A user's own model, defined here and named in ``models`` by its import path: MF plus an item bias."""

    class Params(ModelParams):
        embedding_dim: StrictInt = Field(8, ge=1)

    description = "toy: MF with an item bias (defined in a test module)"
    traits = "an item bias"
    graph_model = False

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 8) -> None:
        super().__init__(n_users, n_items)
        self.embedding_dim = embedding_dim
        self.users = nn.Embedding(n_users, embedding_dim)
        self.items = nn.Embedding(n_items, embedding_dim)
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.users.weight, std=0.1)
        nn.init.normal_(self.items.weight, std=0.1)
        nn.init.zeros_(self.bias)

    def embed(self, adj):
        ones = torch.ones(self.n_users, 1, device=self.bias.device)
        return torch.cat([self.users.weight, ones], 1), torch.cat([self.items.weight, self.bias[:, None]], 1)

    def forward(self, adj, users, pos, neg):
        u = self.users(users)
        return (u * self.items(pos)).sum(-1) + self.bias[pos], (u * self.items(neg)).sum(-1) + self.bias[neg]

    def ego_embeddings(self, users, items):
        return self.users(users), self.items(items)


TOY = "toy"


def test_a_users_own_model_runs_through_train_evaluate_and_report_by_its_import_path(tiny_project):
    """Adding a model needs no change to gnnrec: the class above, named in ``models`` with its import path
    in its section, trains, is evaluated and appears in the report; the stages' subprocesses import it."""
    try:
        tiny_project.set_params({"models": ["mf", TOY],
                                 TOY: {"model": f"{__name__}:ToyModel", "embedding_dim": 4, "epochs": 3}})
        tiny_project.dvc("repro")
        metrics = json.loads(tiny_project.read("reports/metrics.json"))
        assert set(metrics) == {"mf", TOY, "cold_start"}
        assert set(metrics["cold_start"]["users"][TOY]) == {"k=0", "k=1", "k=3", "k=5"}   # the default fold-in
        assert set(metrics[TOY]) == {f"{m}@{k}" for k in (5, 10) for m in METRIC_NAMES}
        summary = json.loads(tiny_project.read(f"reports/train/{TOY}.json"))
        assert summary["description"] == ToyModel.description and summary["epochs_run"] <= 3
        assert summary["hyperparameters"]["embedding_dim"] == 4
        graph = json.loads(tiny_project.read("reports/graph.json"))
        assert summary["n_params"] == (graph["users"] + graph["items"]) * 4 + graph["items"]   # embeddings + bias
        markdown = tiny_project.read("reports/report.md")
        assert f"| {TOY} |" in markdown and ToyModel.description in markdown
    finally:
        tiny_project.run("git", "checkout", "-q", "params.yaml")
        tiny_project.dvc("checkout", "-q", check=False)

"""Determinism: two runs with the same params and thread count give byte-identical ``metrics.json`` on
CPU (ranking ties broken by item id), the same recommendations and the same weights."""

from __future__ import annotations

import json

import pandas as pd
import torch

from gnnrec.io import load_torch
from tests.reliability.conftest import PIPELINE, copy_project, run_pipeline


def test_a_second_run_gives_byte_identical_metrics(pipeline_project, tmp_path, record_case):
    record_case("determinism", "the whole pipeline twice, same params and threads (CPU)",
                "byte-identical metrics.json, same recommendations and weights")
    again = copy_project(pipeline_project, tmp_path / "again", outputs=False)
    run_pipeline(again, PIPELINE[:-1])                     # every stage up to evaluate, from the raw files
    first = (pipeline_project / "reports" / "metrics.json").read_bytes()
    second = (again / "reports" / "metrics.json").read_bytes()
    assert first == second
    assert set(json.loads(first)) == {"lightgcn", "mf", "popularity", "cold_start"}
    pd.testing.assert_frame_equal(pd.read_parquet(pipeline_project / "artifacts" / "recommendations.parquet"),
                                  pd.read_parquet(again / "artifacts" / "recommendations.parquet"))
    for model in ("lightgcn", "mf", "popularity"):
        a = load_torch(pipeline_project / "artifacts" / "models" / f"{model}.pt")["state_dict"]
        b = load_torch(again / "artifacts" / "models" / f"{model}.pt")["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), model

"""The report's "Do social ties help here?" section: lifts over LightGCN computed by hand from per-user values,
by activity, the filter's figures and the gates, and a verdict that follows the numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from gnnrec.reporting.cold_start import bootstrap_interval
from gnnrec.reporting.context import build_context
from gnnrec.reporting.render import render_html, render_markdown
from gnnrec.reporting.social import social_section
from tests.unit.test_report import make_inputs, make_params

LGN = np.array([0.2, 0.3, 0.1, 0.4, 0.2, 0.3])                 # LightGCN's per-user NDCG@10, users 0..5
LIFT = np.array([0.05, 0.05, 0.1, 0.0, 0.02, 0.02])            # social minus LightGCN
DEGREE = pd.Series([2, 2, 2, 8, 8, 8], index=range(6))          # users 0-2 sparse, 3-5 active (median 5)
GATES = {"ties": 20, "mean": 0.7, "quantiles": {"p10": 0.2, "p50": 0.8, "p90": 0.95},
         "histogram": {"edges": [i / 10 for i in range(11)], "counts": [2, 0, 0, 0, 0, 0, 0, 4, 6, 8]},
         "fake_ties": 4, "mean_real": 0.8, "mean_fake": 0.3, "auc": 0.9}


def per_user(lift=LIFT) -> pd.DataFrame:
    users = np.arange(6)
    return pd.concat([pd.DataFrame({"model": "lightgcn", "user_id": users, "ndcg@10": LGN}),
                      pd.DataFrame({"model": "social", "user_id": users, "ndcg@10": LGN + lift})])


def test_lifts_by_hand_overall_and_by_activity():
    evaluation = {"models": {"social": {"gates": GATES}, "lightgcn": {}}}
    graph = {"social": {"method": "taste", "kept": 15, "dropped": 5, "pi0": 0.25}}
    s = social_section(["lightgcn", "social"], evaluation, graph, per_user(), DEGREE, seed=0)
    row = s["rows"][0]
    o = row["overall"]
    assert o["n"] == 6 and o["diff"] == round(LIFT.mean(), 6) and o["baseline"] == round(LGN.mean(), 6)
    assert abs(o["rel"] - LIFT.mean() / LGN.mean()) < 1e-12
    lo, hi = bootstrap_interval(LIFT, 0)
    assert abs(o["lo"] - lo) < 1e-9 and abs(o["hi"] - hi) < 1e-9 and o["significant"] and lo > 0
    sparse, active = row["by_activity"]
    assert sparse["label"].startswith("sparse users (≤ 5") and sparse["n"] == 3
    assert abs(sparse["rel"] - LIFT[:3].mean() / LGN[:3].mean()) < 1e-12
    assert abs(active["rel"] - LIFT[3:].mean() / LGN[3:].mean()) < 1e-12
    assert s["verdict"].startswith(f"Yes: social lifts ndcg@10 over lightgcn by +{100 * LIFT.mean() / LGN.mean():.1f}%")
    assert f"for sparse users +{100 * LIFT[:3].mean() / LGN[:3].mean():.1f}%" in s["verdict"]


def test_the_verdict_follows_the_numbers():
    evaluation = {"models": {"social": {"gates": GATES}}}
    noise = np.array([0.01, -0.01, 0.02, -0.02, 0.0, 0.005])
    s = social_section(["lightgcn", "social"], evaluation, {"social": {}}, per_user(noise), DEGREE, seed=0)
    assert s["verdict"].startswith("Not measurably: social is") and "within the noise" in s["verdict"]
    s = social_section(["lightgcn", "social"], evaluation, {"social": {}}, per_user(-LIFT - 0.01), DEGREE, seed=0)
    assert s["verdict"].startswith("No, they hurt: social is -")
    over = {"social": {"over_filtered": True, "dropped_share": 0.95}}
    s = social_section(["social"], evaluation, over, per_user()[lambda d: d["model"] == "social"], DEGREE, seed=0)
    assert s["verdict"].startswith("No comparison: add lightgcn") and "dropped 95% of the ties" in s["verdict"]
    assert social_section(["lightgcn"], {"models": {"lightgcn": {}}}, {}, per_user(), DEGREE, seed=0) is None


def test_the_report_shows_the_section_with_its_tables(tmp_path):
    paths = make_inputs(tmp_path)
    metrics = json.loads(paths.metrics.read_text())
    metrics["social"] = dict(metrics["lightgcn"])
    paths.metrics.write_text(json.dumps(metrics))
    evaluation = json.loads(paths.eval_details.read_text())
    evaluation["models"]["social"] = {"seconds": 0.1, "val": {}, "gates": GATES}
    paths.eval_details.write_text(json.dumps(evaluation))
    per_user().to_parquet(paths.test_per_user)
    pd.DataFrame({"user_id": np.repeat(np.arange(6), DEGREE.to_numpy()), "item_id": 0}).to_parquet(
        paths.split / "train.parquet")
    params = make_params()
    params = params.model_copy(update={"models": (*params.models, "social")})
    ctx = build_context(params, paths)
    ids = [s["id"] for s in ctx["sections"]]
    assert ids.index("social") == ids.index("models") + 1              # (no new-users section in this run)
    html, md = render_html(ctx), render_markdown(ctx)
    for text in (html, md):
        assert "Do social ties help here?" in text and ctx["social"]["verdict"] in text
        assert f"+{100 * LIFT.mean() / LGN.mean():.1f}%" in text and "sparse users (≤ 5 training items) (3)" in text
    assert '<table id="social-gates">' in html and ">0.9<" in html.split('id="social-gates"')[1]
    # without ground truth the gates have no real / fake means and no AUC: the tables still render
    evaluation["models"]["social"]["gates"] = {k: v for k, v in GATES.items() if k not in ("mean_real", "mean_fake",
                                                                                         "auc", "fake_ties")}
    paths.eval_details.write_text(json.dumps(evaluation))
    ctx = build_context(params, paths)
    assert "Do social ties help here?" in render_html(ctx) and "Do social ties help here?" in render_markdown(ctx)
    # a social model without a learned gate (sociallgn): named, its gate row says so
    evaluation["models"]["social"] = {"seconds": 0.1, "val": {}, "social_ties": 20}
    paths.eval_details.write_text(json.dumps(evaluation))
    ctx = build_context(params, paths)
    html, md = render_html(ctx), render_markdown(ctx)
    assert "no learned gate: every kept tie counts fully" in html and "no learned gate" in md
    assert ctx["social"]["verdict"].startswith("Yes: social lifts")

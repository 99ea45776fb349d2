"""benchmarks.social: its paired lift and robustness checks against hand computation, and a tiny end-to-end grid
(every variant at every δ, planted fakes counted, the report and figure written, a rerun served from the cache)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import wilcoxon

from benchmarks import social
from benchmarks.social_report import merge, render, write_figure


def _per_user(values_by_seed: dict[int, list[float]]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"user_id": np.arange(len(v)), "ndcg@10": v, "seed": s})
                      for s, v in values_by_seed.items()], ignore_index=True)


def test_paired_lift_averages_the_seeds_per_user_then_compares_relative_to_the_reference():
    a = _per_user({42: [0.5, 0.2, 0.3], 1: [0.3, 0.2, 0.5]})          # per-user means 0.4, 0.2, 0.4
    b = _per_user({42: [0.2, 0.2, 0.2], 1: [0.2, 0.2, 0.2]})
    out = social.paired(a, b)
    assert out["users"] == 3
    assert out["lift"] == pytest.approx((0.4 - 0.2 + 0.0 + 0.4 - 0.2) / 3 / 0.2, abs=1e-4)      # 2/3
    lo, hi = out["ci"]
    assert 0.0 <= lo <= out["lift"] <= hi <= 1.0 + 1e-9          # bootstrap means of {0.2, 0, 0.2} / 0.2
    assert out["p"] == pytest.approx(float(wilcoxon([0.2, 0.0, 0.2]).pvalue))
    assert social.paired(b, b)["p"] == 1.0 and social.paired(b, b)["lift"] == 0.0


def test_checks_compare_delta_one_with_zero_and_with_lightgcn_within_its_spread():
    table = pd.DataFrame([
        {"kind": "random", "delta": 0.0, "variant": "lightgcn (no ties)", "ndcg@10_mean": 0.20, "ndcg@10_std": 0.01,
         "gate_auc": np.nan},
        {"kind": "random", "delta": 0.0, "variant": "filter", "ndcg@10_mean": 0.22, "ndcg@10_std": 0.0,
         "gate_auc": np.nan},
        {"kind": "random", "delta": 1.0, "variant": "filter", "ndcg@10_mean": 0.2178, "ndcg@10_std": 0.0,
         "gate_auc": np.nan},
        {"kind": "random", "delta": 0.0, "variant": "gate", "ndcg@10_mean": 0.21, "ndcg@10_std": 0.0,
         "gate_auc": np.nan},
        {"kind": "random", "delta": 1.0, "variant": "gate", "ndcg@10_mean": 0.185, "ndcg@10_std": 0.0,
         "gate_auc": 0.83},
    ])
    out = social.checks(table)
    assert set(out) == {"filter", "gate"}                            # no δ = 1 row: no check
    assert out["filter"]["change_delta1_vs_0"] == pytest.approx(-0.01) and out["filter"]["within_2pct"]
    assert out["filter"]["not_below_lightgcn_by_more_than_spread"]
    assert out["gate"]["change_delta1_vs_0"] == pytest.approx(-0.1190, abs=1e-4) and not out["gate"]["within_2pct"]
    assert not out["gate"]["not_below_lightgcn_by_more_than_spread"]   # 0.185 < 0.20 - 0.01
    assert out["gate"]["gate_auc_delta1"] == 0.83


def test_merge_replaces_the_datasets_this_run_trained_and_carries_the_others_with_their_run(tmp_path):
    old_run = {"cpu": "old box", "threads": 1, "seeds": [42, 1, 2], "cached_only": True}
    previous = tmp_path / "social_benchmark.json"
    previous.write_text(json.dumps({"machine": old_run, "datasets": [
        {"dataset": "default", "table": [], "filters": [], "checks": {}, "pending": ["random δ=2"], "tuned": None},
        {"dataset": "lastfm-hetrec", "table": [{"kind": "random", "delta": 0.0, "variant": "filter",
                                                "ndcg@10_mean": 0.19, "seeds": 3}],
         "filters": [], "checks": {}, "pending": ["hard δ=1"], "tuned": None}]}))
    new_run = {"cpu": "new box", "threads": 2, "seeds": [42]}
    fresh = {"dataset": "default", "table": [], "filters": [], "checks": {}, "pending": [], "tuned": None}
    extra = {**fresh, "dataset": "filmtrust"}
    out = merge([fresh, extra], previous, new_run)
    assert [s["dataset"] for s in out] == ["default", "lastfm-hetrec", "filmtrust"]     # the previous order first
    assert out[0]["pending"] == [] and out[0]["run"] == new_run and not out[0].get("carried")
    assert out[1]["carried"] and out[1]["run"] == old_run and out[1]["pending"] == ["hard δ=1"]
    assert out[1]["code"] == ["unrecorded"]          # a summary from before cells recorded their code
    assert out[1]["table"][0]["ndcg@10_mean"] == 0.19
    text = render(out, new_run)
    assert text.count("Carried over from an earlier run") == 1 and "old box, 1 torch threads" in text
    assert merge([fresh], tmp_path / "absent.json", new_run) == [{**fresh, "run": new_run}]


def test_the_report_names_the_code_its_cells_were_trained_at_and_warns_when_it_is_mixed():
    one = {"dataset": "d", "table": [], "filters": [], "checks": {}, "pending": [], "tuned": None}
    text = render([{**one, "code": ["abc1234"]}], {"seeds": [42]})
    assert "Cells trained at code abc1234." in text and "mixed" not in text
    for code in (["abc1234", "def5678"], ["abc1234+dirty"], ["unrecorded"]):
        assert "**mixed or unrecorded code versions**" in render([{**one, "code": code}], {"seeds": [42]})


@pytest.mark.slow
def test_a_tiny_grid_runs_every_variant_plants_the_fakes_and_reruns_from_its_cache(tmp_path, monkeypatch):
    from tests.e2e.conftest import TINY, deep_update

    base = deep_update(yaml.safe_load((social.REPO / "params.yaml").read_text()), copy.deepcopy(TINY))
    base["graph"]["social"]["taste"]["null_draws"] = 20
    ds = social.Dataset("default", tmp_path / "work", Path("unused"), base, None)
    result = social.run_dataset(ds, [42], [0.0, 1.0], [], published=False, log=lambda *_: None, tune=[0.25, 2.0])
    rows = result["rows"]
    assert set(zip(rows["delta"], rows["variant"])) == {
        (0.0, "lightgcn (no ties)"), (0.0, social.TUNED), *((d, v) for d in (0.0, 1.0) for v in social.VARIANTS)}
    tuned = result["tuned"]                          # β picked by the validation score, and trained with it
    assert set(tuned["validation"]) == {0.25, 2.0}
    assert tuned["social_weight"] == max(tuned["validation"], key=tuned["validation"].get)
    assert rows[["ndcg@10", "recall@10"]].apply(lambda c: c.between(0, 1)).all().all()
    unfiltered = result["filters"][("random", 1.0, "none")]
    real = result["filters"][("random", 0.0, "none")]["kept"]
    assert unfiltered["planted"] == real and unfiltered["kept"] == 2 * real      # δ = 1: one fake per real tie
    assert unfiltered["planted_noise"]["recall"] == 0.0                         # method none removes nothing
    gate = rows[(rows["variant"] == "gate") & (rows["delta"] == 1.0)]["gate_auc"].iloc[0]
    assert 0.0 <= gate <= 1.0                                                   # the planted fakes are scored
    summary = social.summarise("default", result)
    assert summary["code"] == [ds.code]          # every cell records the code it was trained at
    text = render([summary], {"seeds": [42], "threads": 2, "quick": True})
    assert "## default" in text and "| random δ=1 | gate |" in text and "Robustness at δ = 1" in text
    assert "one seed: no spread" in text
    assert write_figure([summary], tmp_path / "fig.png").stat().st_size > 0

    from gnnrec.stages import train
    monkeypatch.setattr(train, "run", lambda *a, **k: pytest.fail("a cached cell was retrained"))
    again = social.run_dataset(ds, [42], [0.0, 1.0], [], published=False, log=lambda *_: None, tune=[0.25, 2.0])
    pd.testing.assert_frame_equal(again["rows"], rows)

    # --cached-only: the done settings as before, the others pending, nothing trained or built
    monkeypatch.setattr(social.Dataset, "graph", _no_build(social.Dataset.graph))
    part = social.run_dataset(ds, [42], [0.0, 1.0, 2.0], [1.0], published=False, log=lambda *_: None,
                              cached_only=True, tune=[0.25, 2.0])
    pd.testing.assert_frame_equal(part["rows"], rows)
    assert part["pending"] == ["random δ=2", "hard δ=1"]
    text = render([social.summarise("default", part)], {"seeds": [42], "threads": 2, "cached_only": True})
    assert "Pending (not trained yet): random δ=2, hard δ=1." in text and "`--cached-only`" in text
    assert f"chosen β = {tuned['social_weight']:g}" in text and f"| random δ=0 | {social.TUNED} |" in text
    with pytest.raises(RuntimeError, match="the reference"):     # δ = 0 is required
        social.run_dataset(ds, [7], [0.0], [], published=False, log=lambda *_: None, cached_only=True)


def _no_build(graph):
    def wrapped(self, method, delta, kind, cached_only=False):
        assert cached_only, "a graph was built under --cached-only"
        return graph(self, method, delta, kind, cached_only)
    return wrapped

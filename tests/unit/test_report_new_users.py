"""The report's "New users" (cold-start) section and the example users' own recent items.

The stage outputs of :func:`tests.unit.test_report.make_inputs` plus, from :func:`add_cold_start`, the
evaluate stage's cold-start outputs: the ``cold_start`` keys of ``reports/metrics.json`` and
``reports/evaluation.json`` and ``artifacts/cold_start_per_user.parquet``, with per-user values chosen so
that every number of the section can be computed by hand.
"""

from __future__ import annotations

import base64
import json
import re

import markupsafe
import numpy as np
import pandas as pd
import pytest

from gnnrec.reporting import figures
from gnnrec.reporting.cold_start import bootstrap_interval, paired_test
from gnnrec.reporting.context import build_context
from gnnrec.reporting.inputs import cold_start_per_user_path
from gnnrec.reporting.render import metrics_table_rows, render_html, render_markdown
from gnnrec.stages import report as report_stage
from tests.unit.test_report import METRICS, MODELS, _rows, _table, make_inputs, make_params, write_json

KS = (0, 1, 3)
IDS = np.arange(100, 106)  # canonical ids of the six held-out test users
POP = np.array([0.1, 0.0, 0.2, 0.1, 0.0, 0.1])  # popularity's per-user NDCG@20, the same at every k
# per-user NDCG@20 minus popularity's, per model and k
DIFFS = {
    "lightgcn": {0: [0.03, -0.01, 0.01, -0.01, 0.0, 0.0],     # mean +0.0033: not significant
                 1: [0.1, 0.2, 0.1, 0.15, 0.1, 0.2],          # all positive: significantly better
                 3: [0.3] * 6},
    "mf": {0: [0.0] * 6,                                      # MF falls back to popularity at k = 0
           1: [0.05, 0.0, -0.05, 0.05, 0.0, 0.0],
           3: [0.1] * 6},
}
ORACLE = {1: 0.3, 3: 0.5}   # a retrained LightGCN, k >= 1 only, the same for every user
SE = 0.0123                 # every standard error evaluation.json reports (the table must show this one)


def per_user_values() -> dict[str, dict[int, np.ndarray]]:
    out = {"popularity": {k: POP.copy() for k in KS}, "oracle": {k: np.full(6, v) for k, v in ORACLE.items()}}
    for m, by_k in DIFFS.items():
        out[m] = {k: POP + np.array(d) for k, d in by_k.items()}
    return out


def add_cold_start(paths, *, metrics: bool = True, evaluation: bool = True, per_user: bool = True,
                   items: bool = True, features: bool = True, friends: bool = False, values=None):
    """The evaluate stage's cold-start outputs for :func:`per_user_values` (or ``values``)."""
    values = values or per_user_values()
    users = {m: {f"k={k}": {"ndcg@20": round(float(v.mean()), 6), "recall@20": 0.5} for k, v in by_k.items()}
             for m, by_k in values.items()}
    cold_items = {"lightgcn": {"k=0": {"ndcg@20": 0.0511}, "k=1": {"ndcg@20": 0.1222}},
                  "mf": {"k=0": {"ndcg@20": 0.0433}, "k=1": {"ndcg@20": 0.0987}}}
    if metrics:
        m = json.loads(paths.metrics.read_text(encoding="utf-8"))
        m["cold_start"] = {"users": users, **({"items": cold_items} if items else {})}
        write_json(paths.metrics, m)
    if evaluation:
        ev = json.loads(paths.eval_details.read_text(encoding="utf-8"))
        models = {}
        for name in ("lightgcn", "mf", "popularity"):
            models[name] = {
                "shrink": 2.0, "settings": {"alpha": 0.5} if name != "popularity" else {},
                "trials": [{"shrink": 2.0, "settings": {}, "ndcg@20": 0.1}],
                "users": {f"k={k}": {"n": 6, "ndcg@20_se": SE} for k in KS},
                "items": ({f"k={k}": {"n": 3, "ndcg@20_se": 0.0044} for k in (0, 1)}
                          if items and name != "popularity" else {}),
                "exact": {}, "gap": {},
                "latency_ms": {"lightgcn": 2.5, "mf": 0.5, "popularity": 0.1}[name], "latency_k": 3,
                "seconds": 1.0}
        models["lightgcn"]["exact"] = {"k=1": {"ndcg@20": 0.2}, "k=3": {"ndcg@20": 0.4}}
        models["lightgcn"]["gap"] = {"k=1": 0.025, "k=3": -0.016667}
        ev["cold_start"] = {"k": list(KS), "test_users": 6, "val_users": 3, "items": 3, "features": features,
                            "friends": friends, "models": models}
        write_json(paths.eval_details, ev)
    if per_user:
        rows = []
        for m, by_k in values.items():
            for k, v in by_k.items():
                order = np.arange(6)[::-1] if m == "popularity" else np.arange(6)  # paired by id, not by row
                rows += [(m, "users", k, int(IDS[i]), float(v[i]), 0.5) for i in order]
        rows.append(("popularity", "users", 1, 999, 0.9, 0.9))  # a user no other model has: never paired
        rows += [("lightgcn", "items", 0, 7, 0.05, 0.1)]
        df = pd.DataFrame(rows, columns=["model", "kind", "k", "id", "ndcg@20", "recall@20"]).astype(
            {"model": "str", "kind": "str", "k": "int64", "id": "int64"})
        path = cold_start_per_user_path(paths)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)
    return paths


@pytest.fixture(scope="module")
def cold_paths(tmp_path_factory):
    return add_cold_start(make_inputs(tmp_path_factory.mktemp("cold") / "proj"))


@pytest.fixture(scope="module")
def cold_ctx(cold_paths):
    return build_context(make_params(), cold_paths)


@pytest.fixture(scope="module")
def cold_html(cold_ctx):
    return render_html(cold_ctx)


@pytest.fixture(scope="module")
def cold_md(cold_ctx):
    return render_markdown(cold_ctx)


def _cells(row_html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def _body_rows(table_html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*)</tbody>", table_html, re.S).group(1)
    return [_cells(r) for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def _md_block(md: str, header: str) -> list[str]:
    """The Markdown table rows that follow the line starting with ``header``."""
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    out = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        out.append(ln)
    return out


# ------------------------------------------------------------------------------- not a model
def test_cold_start_key_is_never_a_model(cold_ctx, cold_html, cold_md, cold_paths):
    assert cold_ctx["models"] == list(MODELS)
    assert set(_rows(_table(cold_html, "test-metrics"))) == set(MODELS)
    assert set(_rows(_table(cold_html, "training-table"))) == set(MODELS)
    assert [c["key"] for c in cold_ctx["metrics"]["columns"]] == [
        f"{n}@{k}" for k in (10, 20) for n in ("recall", "ndcg", "precision", "hitrate")]
    assert [r["model"] for r in metrics_table_rows(cold_ctx)] == list(MODELS)
    assert "| cold_start |" not in cold_md and "| cold\\_start |" not in cold_md
    assert cold_ctx["notes"] == []  # no baseline note, no "training summary of cold_start not found"
    summary = report_stage.run(make_params(), cold_paths)
    assert summary["models"] == list(MODELS) and summary["best_model"] == "mf"
    assert summary["metrics_table"] == [{"model": m, **METRICS[m]} for m in MODELS]
    assert summary["new_users_verdict"] == cold_ctx["cold_start"]["verdict"] and len(summary["new_users_verdict"]) == 3
    json.dumps(summary)


# ------------------------------------------------------------------------------ section shown
def test_section_is_numbered_after_the_model_comparison(cold_html, cold_md):
    assert '<h2><span class="num">4</span>New users' in cold_html
    assert '<h2><span class="num">5</span>Training' in cold_html
    assert '<li><a href="#new-users">4. New users</a></li>' in cold_html
    assert "4. [New users](#4-new-users)\n5. [Training](#5-training)\n" in cold_md
    assert "\n## 4. New users\n" in cold_md and "\n## 10. " not in cold_md and "\n## 9. Provenance\n" in cold_md


def test_section_absent_without_cold_start_keys(tmp_path):
    paths = make_inputs(tmp_path / "p")
    add_cold_start(paths, metrics=False)  # evaluation.json and the per-user file alone do not make a section
    ctx = build_context(make_params(), paths)
    assert ctx["cold_start"] is None
    html, md = render_html(ctx), render_markdown(ctx)
    assert 'id="new-users"' not in html and "New users" not in html and "New users" not in md
    assert "4. [Training](#4-training)" in md and '<h2><span class="num">4</span>Training' in html
    assert [f["name"] for f in ctx["figures"]] == ["training_curves", "metrics", "degree_distribution"]


def test_new_users_table_shows_means_standard_errors_and_side_information(cold_html, cold_md):
    rows = _body_rows(_table(cold_html, "new-users-table"))
    header = re.findall(r"<th[^>]*>([^<]*)</th>", _table(cold_html, "new-users-table"))
    assert header == ["k", "Users", "lightgcn", "mf", "popularity", "oracle"]
    v = per_user_values()
    expected = []
    for k in KS:
        label = "k = 0 (with features)" if k == 0 else f"k = {k}"
        cells = [f"{round(float(v[m][k].mean()), 6):.4f} ± {SE:.4f}" for m in ("lightgcn", "mf", "popularity")]
        cells.append(f"{ORACLE[k]:.4f}" if k in ORACLE else "—")  # the oracle has no evaluation.json entry
        expected.append([label, "6", *cells])
    # the oracle's standard error comes from its per-user values (all equal: 0)
    expected[1][5], expected[2][5] = "0.3000 ± 0.0000", "0.5000 ± 0.0000"
    assert rows == expected
    assert "| k = 0 (with features) | 6 | **0.0867 ± 0.0123** | 0.0833 ± 0.0123 | 0.0833 ± 0.0123 | — |" in cold_md
    assert "| k = 3 | 6 | **0.3833 ± 0.0123** | 0.1833 ± 0.0123 | 0.0833 ± 0.0123 | 0.5000 ± 0.0000 |" in cold_md


@pytest.mark.parametrize("features, friends, label", [
    (True, True, "k = 0 (with features, with friends)"),
    (False, True, "k = 0 (with friends)"),
    (False, False, "k = 0 (no side information)"),
])
def test_k0_row_names_the_side_information_used(tmp_path, features, friends, label):
    paths = add_cold_start(make_inputs(tmp_path / "p"), features=features, friends=friends)
    html = render_html(build_context(make_params(), paths))
    assert _body_rows(_table(html, "new-users-table"))[0][0] == label


def test_paired_differences_equal_the_hand_computed_means(cold_ctx, cold_html, cold_md):
    groups = {g["baseline"]: g["rows"] for g in cold_ctx["cold_start"]["tests"]}
    assert list(groups) == ["popularity", "mf"]
    vs_pop = {(t["model"], t["k"]): t for t in groups["popularity"]}
    assert set(vs_pop) == {(m, k) for m in ("lightgcn", "mf") for k in KS} | {("oracle", 1), ("oracle", 3)}
    for (m, k), t in vs_pop.items():
        diff = np.array(DIFFS[m][k]) if m in DIFFS else np.full(6, ORACLE[k]) - POP
        assert t["n"] == 6  # user 999 (popularity only) is not paired
        assert t["diff"] == pytest.approx(diff.mean(), abs=1e-12)
        assert t["lo"] <= t["diff"] <= t["hi"] or np.ptp(diff) == 0
    assert vs_pop[("lightgcn", 1)]["direction"] == "better" and vs_pop[("lightgcn", 1)]["lo"] > 0
    assert vs_pop[("lightgcn", 0)]["direction"] == "no difference" and vs_pop[("lightgcn", 0)]["lo"] < 0
    assert vs_pop[("mf", 0)]["direction"] == "no difference" and vs_pop[("mf", 0)]["diff"] == 0
    # MF as baseline: lightgcn minus mf, popularity not compared again
    vs_mf = {(t["model"], t["k"]): t for t in groups["mf"]}
    assert ("popularity", 0) not in vs_mf
    assert vs_mf[("lightgcn", 3)]["diff"] == pytest.approx(0.2)
    # rendered: difference, interval and the significance mark
    rows = {(r[0], r[1]): r for r in _body_rows(_table(cold_html, "paired-vs-popularity"))}
    t = vs_pop[("lightgcn", 1)]
    assert rows[("1", "lightgcn")] == ["1", "lightgcn", "popularity", "6", "+0.1417",
                                       f"[{t['lo']:+.4f}, {t['hi']:+.4f}]", t["p_text"], "yes, better"]
    assert rows[("0", "lightgcn")][4] == "+0.0033" and rows[("0", "lightgcn")][-1] == "no"
    assert rows[("0", "mf")][4:6] == ["+0.0000", "[+0.0000, +0.0000]"] and rows[("0", "mf")][-1] == "no"
    assert _body_rows(_table(cold_html, "paired-vs-mf"))[0][:5] == ["0", "lightgcn", "mf", "6", "+0.0033"]
    assert (f"| 1 | lightgcn | popularity | 6 | +0.1417 | [{t['lo']:+.4f}, {t['hi']:+.4f}] | {t['p_text']} "
            "| yes, better |") in cold_md


def test_paired_test_pairs_by_id_and_bootstrap_is_seeded():
    per_user = pd.DataFrame({"model": ["a", "a", "b", "b", "b"], "kind": ["users"] * 5, "k": [1] * 5,
                             "id": [1, 2, 2, 1, 3], "ndcg@20": [0.5, 0.1, 0.0, 0.2, 0.9]})
    t = paired_test(per_user, "a", "b", "users", 1, seed=0)
    assert t["n"] == 2 and t["diff"] == pytest.approx(((0.5 - 0.2) + (0.1 - 0.0)) / 2)
    d = np.array([0.3, -0.1, 0.2, 0.05, 0.0, 0.4])
    assert bootstrap_interval(d, seed=3) == bootstrap_interval(d, seed=3)
    lo, hi = bootstrap_interval(d, seed=3)
    assert d.min() <= lo < d.mean() < hi <= d.max()
    assert bootstrap_interval(np.array([0.1]), seed=3) == (None, None)


def test_verdict_is_built_from_the_numbers(cold_ctx, cold_html, cold_md):
    verdict = cold_ctx["cold_start"]["verdict"]
    assert verdict == [
        "Best served model on new users' NDCG@20: k = 0: lightgcn (0.0867); k = 1: lightgcn (0.2250); "
        "k = 3: lightgcn (0.3833).",
        "The best model is significantly above popularity at k = 1 and 3, not significantly different from it "
        "at k = 0 (95% bootstrap interval of the paired per-user difference).",
        "At k = 3, lightgcn reaches 77% of the retrained oracle's NDCG@20 (0.3833 vs 0.5000).",
    ]
    assert str(markupsafe.escape(" ".join(verdict))) in cold_html
    assert "**Verdict.** Best served model on new users' NDCG@20: k = 0: lightgcn (0.0867)" in cold_md


def test_verdict_follows_other_numbers(tmp_path):
    values = per_user_values()
    values["lightgcn"][0] = POP - 0.05   # below popularity at k = 0
    values["mf"][0] = POP - 0.02
    values["mf"][3] = POP + 0.4          # mf overtakes lightgcn at k = 3
    del values["oracle"]
    paths = add_cold_start(make_inputs(tmp_path / "p"), values=values)
    verdict = build_context(make_params(), paths)["cold_start"]["verdict"]
    assert verdict == [
        "Best served model on new users' NDCG@20: k = 0: popularity (0.0833); k = 1: lightgcn (0.2250); "
        "k = 3: mf (0.4833).",
        "The best model is significantly above popularity at k = 1 and 3 (95% bootstrap interval of the paired "
        "per-user difference); popularity itself is best at k = 0.",
    ]


def test_new_items_exact_gap_and_latency_tables(cold_html, cold_md):
    assert _body_rows(_table(cold_html, "new-items-table")) == [
        ["k = 0", "3", "0.0511 ± 0.0044", "0.0433 ± 0.0044"], ["k = 1", "3", "0.1222 ± 0.0044", "0.0987 ± 0.0044"]]
    assert "| k = 1 | 3 | **0.1222 ± 0.0044** | 0.0987 ± 0.0044 |" in cold_md
    # served (metrics.json) against exact (evaluation.json), gap as evaluation.json gives it
    assert _body_rows(_table(cold_html, "exact-gap-table")) == [
        ["lightgcn", "1", "0.2250", "0.2000", "+0.0250"], ["lightgcn", "3", "0.3833", "0.4000", "-0.0167"]]
    assert "| lightgcn | 3 | 0.3833 | 0.4000 | -0.0167 |" in cold_md
    # latency per new user against retraining (1.50 s for lightgcn and mf, nothing for popularity)
    assert _body_rows(_table(cold_html, "latency-table")) == [
        ["lightgcn", "shrink=2, alpha=0.5", "2.5 ms (k = 3)", "1.50 s", "600×"],
        ["mf", "shrink=2, alpha=0.5", "0.5 ms (k = 3)", "1.50 s", "3,000×"],
        ["popularity", "shrink=2", "0.1 ms (k = 3)", "—", "—"]]
    assert "| mf | shrink=2, alpha=0.5 | 0.5 ms (k = 3) | 1.50 s | 3,000× |" in cold_md


def test_figure_is_embedded_and_written(cold_ctx, cold_html, tmp_path):
    fig = next(f for f in cold_ctx["figures"] if f["name"] == "cold_start")
    assert fig["png"].startswith(b"\x89PNG") and "popularity, oracle (reference lines)" in fig["caption"]
    assert base64.b64encode(fig["png"]).decode() in cold_html
    paths = add_cold_start(make_inputs(tmp_path / "p"))
    report_stage.run(make_params(), paths)
    assert (paths.figures / "cold_start.png").read_bytes() == fig["png"]  # deterministic
    assert "![New users: NDCG@20 against k](figures/cold_start.png)" in paths.report_md.read_text(encoding="utf-8")


def test_cold_start_curves_depend_on_the_values():
    series = {"a": {"k": [0, 1], "mean": [0.1, 0.2], "se": [0.01, None]},
              "popularity": {"k": [0, 1], "mean": [0.05, 0.05], "se": [None, None]}}
    a = figures.cold_start_curves([("New users", series)], references=["popularity"])
    assert a == figures.cold_start_curves([("New users", series)], references=["popularity"])
    changed = {**series, "a": {"k": [0, 1], "mean": [0.1, 0.3], "se": [0.01, None]}}
    assert a != figures.cold_start_curves([("New users", changed)], references=["popularity"])
    assert a != figures.cold_start_curves([("New users", series)], references=[])  # dashed reference line


# ---------------------------------------------------------------------------- missing inputs
def test_without_per_user_file_or_evaluation_details(tmp_path):
    paths = add_cold_start(make_inputs(tmp_path / "p"), evaluation=False, per_user=False)
    ctx = build_context(make_params(), paths)
    cs = ctx["cold_start"]
    assert cs is not None and cs["tests"] == [] and cs["latency"] == [] and cs["exact"] == []
    assert any("cold_start_per_user.parquet not found" in n for n in ctx["notes"])
    assert any("no cold_start details" in n for n in ctx["notes"])
    html, md = render_html(ctx), render_markdown(ctx)
    assert "paired tests left out" in html and 'id="paired-vs-popularity"' not in html
    rows = _body_rows(_table(html, "new-users-table"))
    assert rows[0] == ["k = 0", "—", "0.0867", "0.0833", "0.0833", "—"]  # no side flags, no n, no error
    assert "Verdict." in html and "significantly" not in " ".join(cs["verdict"])
    assert "## 4. New users" in md


def test_standard_error_from_per_user_values_without_evaluation_details(tmp_path):
    paths = add_cold_start(make_inputs(tmp_path / "p"), evaluation=False)
    ctx = build_context(make_params(), paths)
    row = _body_rows(_table(render_html(ctx), "new-users-table"))[1]  # k = 1
    v = POP + np.array(DIFFS["lightgcn"][1])
    # users counted per model from the per-user file: popularity's extra user 999 at k = 1 shows as a range
    assert row[:3] == ["k = 1", "6–7", f"{v.mean():.4f} ± {v.std(ddof=1) / np.sqrt(6):.4f}"]
    assert [g["baseline"] for g in ctx["cold_start"]["tests"]] == ["popularity", "mf"]


def test_per_user_file_without_a_column_is_noted(tmp_path):
    paths = add_cold_start(make_inputs(tmp_path / "p"))
    path = cold_start_per_user_path(paths)
    pd.read_parquet(path).drop(columns=["ndcg@20"]).to_parquet(path, index=False)
    ctx = build_context(make_params(), paths)
    assert ctx["cold_start"]["tests"] == [] and any("lacks column(s) ndcg@20" in n for n in ctx["notes"])


# ------------------------------------------------------------------------ own recent items
def test_example_users_show_their_own_recent_items_by_timestamp(tmp_path):
    paths = make_inputs(tmp_path / "p", timestamps=True)
    ctx = build_context(make_params(), paths)
    ex = ctx["examples"]
    assert ex["recent"] and ex["recent_by"] == "newest first, by timestamp"
    u10, u11 = ex["users"]
    # user 0's items 10..15; timestamps 300, -, 400, 100, 100, 50: newest first 12, 10, 13, 14, 15 (11 last)
    assert [r["label"] for r in u10["recent"]] == ["Film 12", "Film 10", "Film 13", "Film 14", "Film 15"]
    assert [r["recent"]["label"] for r in u10["rows"]] == ["Film 12", "Film 10", "Film 13", "Film 14", "Film 15"]
    assert u10["n_train"] == 6 and u10["recent_more"] == 1
    assert [r["label"] for r in u11["recent"]] == ["Film 13", "Film 11", "Film 14", "Film 15", "Film 16"]
    html, md = render_html(ctx), render_markdown(ctx)
    block = re.search(r'<div class="user-block" id="user-1">(.*?)</table>', html, re.S).group(1)
    assert "<th>Recent (own)</th><th>lightgcn</th>" in block
    assert '<tr><td class="num">1</td><td class="recent" title="item id i112">Film 12</td>' in block
    assert "6 training items; the 5 most recent shown beside the recommendations." in block
    assert "| 1 | Film 12 | ✓ **\\<script\\>alert(1)\\</script\\>** | Left \\| Right | i102 |" in md
    assert "| 5 | Film 15 | Film 04 | Film 05 | Film 06 |" in md
    assert "the user's own training items, newest first, by timestamp." in md


def test_examples_without_training_split_have_no_recent_column(tmp_path):
    paths = make_inputs(tmp_path / "p")
    (paths.split / "train.parquet").unlink()
    ctx = build_context(make_params(), paths)
    assert not ctx["examples"]["recent"] and len(ctx["examples"]["users"]) == 2
    assert any("own recent items" in n and "train.parquet not found" in n for n in ctx["notes"])
    html, md = render_html(ctx), render_markdown(ctx)
    assert "Recent (own)" not in html and "Recent (own)" not in md
    assert "| # | lightgcn | mf | popularity |" in md

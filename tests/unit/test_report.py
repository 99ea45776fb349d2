"""The report stage: self-contained HTML, Markdown, figures, escaping, tolerance of optional inputs, and
the content each section must show (metrics per model, baseline notes, example recommendations,
validation counts, parameters and provenance).

A complete set of stage outputs is built in ``tmp_path`` by ``make_inputs``.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import markupsafe
import numpy as np
import pandas as pd
import pytest

from gnnrec.config import params_from_dict
from gnnrec.paths import Paths
from gnnrec.reporting import figures, provenance
from gnnrec.reporting.context import build_context, metrics_table
from gnnrec.reporting.formatting import md_escape, metric_label
from gnnrec.reporting.insights import is_graph_model, model_traits
from gnnrec.reporting.render import metrics_table_rows, render_html, render_markdown, render_summary_markdown
from gnnrec.stages import report as report_stage

SCRIPT_NAME = "<script>alert(1)</script>"
PIPE_NAME = "Left | Right"
MODELS = ("lightgcn", "mf", "popularity")
N_USERS, N_ITEMS = 6, 25

# Distinct values so that each column's best model is known: lightgcn wins recall/ndcg@10,
# mf wins ndcg@20 / precision@20, popularity wins hitrate@10.
METRICS = {
    "lightgcn": {"recall@10": 0.4321, "ndcg@10": 0.3111, "precision@10": 0.0812, "hitrate@10": 0.6001,
                 "recall@20": 0.5555, "ndcg@20": 0.3456, "precision@20": 0.0601, "hitrate@20": 0.7777},
    "mf": {"recall@10": 0.4012, "ndcg@10": 0.3005, "precision@10": 0.0799, "hitrate@10": 0.5902,
           "recall@20": 0.5432, "ndcg@20": 0.3589, "precision@20": 0.0644, "hitrate@20": 0.7001},
    "popularity": {"recall@10": 0.1234, "ndcg@10": 0.0987, "precision@10": 0.0301, "hitrate@10": 0.6543,
                   "recall@20": 0.2001, "ndcg@20": 0.1102, "precision@20": 0.0250, "hitrate@20": 0.4001},
}

# The test-metrics table in Markdown (report.md and the run summary): best value per column in bold, then the
# cost columns (training time, or a training-free model's fit time; parameters; best epoch of epochs run, "—"
# where nothing was trained).
MD_METRICS_TABLE = """\
| Model | Recall@10 | NDCG@10 | Precision@10 | HitRate@10 | Recall@20 | NDCG@20 | Precision@20 | HitRate@20 \
| Training time | Parameters | Best epoch |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| lightgcn | **0.4321** | **0.3111** | **0.0812** | 0.6001 | **0.5555** | 0.3456 | 0.0601 | **0.7777** | 1.50 s | 248 \
| 3 of 5 |
| mf | 0.4012 | 0.3005 | 0.0799 | 0.5902 | 0.5432 | **0.3589** | **0.0644** | 0.7001 | 1.50 s | 248 | 3 of 5 |
| popularity | 0.1234 | 0.0987 | 0.0301 | **0.6543** | 0.2001 | 0.1102 | 0.0250 | 0.4001 | 0.25 s (fit) | 0 | — |
"""


def item_name(i: int):
    if i == 0:
        return SCRIPT_NAME
    if i == 1:
        return PIPE_NAME
    if i == 2:
        return None  # no name: the raw id is shown
    return f"Film {i:02d}"


def make_params(**report):
    return params_from_dict({"seed": 1, "models": list(MODELS),
                             "report": {"example_users": 2, "top_n": 5, **report}})


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


#: training timestamps of each user's j-th item (j = 10..15) when ``make_inputs(timestamps=True)``: newest
#: first that is j = 12, 10, 13, 14 (13 and 14 tie: file order), 15, and 11 (no timestamp) last
TRAIN_TIMESTAMPS = (300, None, 400, 100, 100, 50)


def make_inputs(root: Path, *, social: bool = True, noise: bool = True, timings: bool = True,
                timestamps: bool = False) -> Paths:
    """Every input of the report stage, per docs/contracts.md. ``timestamps``: the training split has
    timestamps (:data:`TRAIN_TIMESTAMPS`) and six items per user (10..15 after the user's id) instead of four
    without."""
    paths = Paths(root)
    raw_dir = root / "rawdata"
    raw_dir.mkdir(parents=True)
    (raw_dir / "ratings.csv").write_text("user,item\nu0,i0\n", encoding="utf-8")
    write_json(paths.ingest / "manifest.json", {
        "source": "csv", "path": str(raw_dir),
        "tables": {"interactions": {"file": str(raw_dir / "ratings.csv"), "rows": 1}, "social": None,
                   "items": None}})

    check = {"expectation": "expect_column_pair_values_to_be_unique", "column": None, "kind": "anomaly",
             "success": True, "unexpected_count": 3, "examples": ["row 7: u1,i2"],
             "message": "duplicate (user, item) pairs merged"}
    ok_check = {"expectation": "expect_column_values_to_not_be_null", "column": "user", "kind": "corruption",
                "success": True, "unexpected_count": 0, "examples": [], "message": ""}
    write_json(paths.validation_report, {
        "success": True, "strict": False,
        "tables": {"interactions": {"file": str(raw_dir / "ratings.csv"), "rows": 123, "checks": [check, ok_check]},
                   "social": ({"file": "social.csv", "rows": 40, "checks": [ok_check]} if social else None),
                   "items": {"file": "items.csv", "rows": N_ITEMS, "checks": []}},
        "repairs": {"duplicate_interactions_merged": 3, "social_self_loops_dropped": 2 if social else 0,
                    "social_duplicates_dropped": 1 if social else 0, "social_unknown_users_dropped": 0},
        "filters": {"min_rating_dropped": 0, "k_core_dropped_interactions": 0},
        "stats": {"users": N_USERS, "items": N_ITEMS, "interactions": 120, "social_ties": 37 if social else 0,
                  "has_timestamps": False, "has_item_names": True, "has_social": social},
        "failures": []})

    deg = {"min": 1, "p50": 4.0, "mean": 5.5, "p90": 9.0, "max": 17}
    social_stats = None
    if social:
        social_stats = {"ties_in": 37, "kept": 29, "dropped": 8, "min_common_items": 1, "min_jaccard": 0.0,
                        "out_degree_before": deg, "out_degree_after": deg,
                        "noise": ({"noisy_ties": 10, "dropped_noisy": 7, "dropped_genuine": 1,
                                   "precision": 0.875, "recall": 0.7} if noise else None)}
    write_json(paths.graph_stats, {"users": N_USERS, "items": N_ITEMS, "train_edges": 96, "density": 0.64,
                                   "user_degree": deg, "item_degree": deg, "social": social_stats})

    for m in MODELS:
        trained = m != "popularity"
        write_json(paths.train_summary(m), {
            "model": m, "hyperparameters": {"embedding_dim": 8} if trained else {},
            "n_params": 248 if trained else 0, "epochs_run": 5 if trained else 0, "best_epoch": 3 if trained else 0,
            "best_val": 0.3 if trained else 0.0, "early_stop_metric": "ndcg@20",
            "train_seconds": 1.5 if trained else 0.0, **({} if trained else {"fit_seconds": 0.25}),
            "stopped": "early_stop" if trained else "no_training", "device": "cpu"})
        hist = pd.DataFrame({"epoch": np.arange(1, 6), "loss": np.linspace(0.69, 0.3, 5),
                             "val_score": [0.1, 0.2, 0.3, 0.29, 0.28], "seconds": np.arange(1, 6) * 0.3})
        if not trained:
            hist = hist.iloc[:0]
        paths.train_history(m).parent.mkdir(parents=True, exist_ok=True)
        hist.to_csv(paths.train_history(m), index=False)

    write_json(paths.metrics, METRICS)
    write_json(paths.eval_details, {"split": "test", "users_evaluated": N_USERS, "k": [10, 20],
                                    "models": {m: {"seconds": 0.25, "val": {"ndcg@20": 0.3}} for m in MODELS}})

    paths.dataset.mkdir(parents=True, exist_ok=True)
    # Raw ids deliberately differ from canonical ids (u10.. / i100..): the mapping must be used.
    pd.DataFrame({"user_id": np.arange(N_USERS, dtype="int64"),
                  "raw_id": pd.array([f"u{10 + u}" for u in range(N_USERS)], dtype="str")}).to_parquet(
        paths.dataset / "users.parquet", index=False)
    pd.DataFrame({"item_id": np.arange(N_ITEMS, dtype="int64"),
                  "raw_id": pd.array([f"i{100 + i}" for i in range(N_ITEMS)], dtype="str"),
                  "name": pd.array([item_name(i) for i in range(N_ITEMS)], dtype="str")}).to_parquet(
        paths.dataset / "items.parquet", index=False)

    def interactions(pairs, ts=None):
        u, i = zip(*pairs)
        return pd.DataFrame({"user_id": np.array(u, dtype="int64"), "item_id": np.array(i, dtype="int64"),
                             "weight": np.ones(len(u), dtype="float32"),
                             "timestamp": pd.array(ts or [None] * len(u), dtype="Int64")})

    paths.split.mkdir(parents=True, exist_ok=True)
    # Test items: user 0 → item 0 (the <script> name) and item 3; user 1 → item 5; users 4, 5 → item 9.
    # Users 2 and 3 have no test item, so the examples are users 0 and 1.
    interactions([(0, 0), (0, 3), (1, 5), (4, 9), (5, 9)]).to_parquet(paths.split / "test.parquet", index=False)
    if timestamps:
        interactions([(u, (u + j) % N_ITEMS) for u in range(N_USERS) for j in range(10, 16)],
                     ts=list(TRAIN_TIMESTAMPS) * N_USERS).to_parquet(paths.split / "train.parquet", index=False)
    else:
        interactions([(u, (u + j) % N_ITEMS) for u in range(N_USERS) for j in range(10, 14)]).to_parquet(
            paths.split / "train.parquet", index=False)

    rows = []
    for mi, m in enumerate(MODELS):
        for u in range(N_USERS):
            for rank in range(1, 21):
                item = (rank - 1 + mi) % N_ITEMS  # lightgcn: items 0,1,2,…; mf: 1,2,3,…; popularity: 2,3,…
                rows.append((m, f"u{10 + u}", rank, f"i{100 + item}", np.float32(1.0 / rank)))
    pd.DataFrame(rows, columns=["model", "user", "rank", "item", "score"]).astype(
        {"model": "str", "user": "str", "item": "str", "rank": "int64", "score": "float32"}).to_parquet(
        paths.recommendations, index=False)

    if timings:
        for i, stage in enumerate(["ingest", "validate", "split", "build_graph", "train@lightgcn",
                                   "train@mf", "train@popularity", "evaluate"]):
            write_json(paths.timing(stage), {"stage": stage, "seconds": 1.25 * (i + 1),
                                             "started": f"2025-01-01T00:00:{i:02d}+00:00"})
        # the report stage's own timing is the previous run's: it must not be listed
        write_json(paths.timing("report"), {"stage": "report", "seconds": 777.0,
                                            "started": "2024-12-31T00:00:00+00:00"})
    return paths


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    """Shared, read-only inputs (tests that change files build their own with ``make_inputs``)."""
    return make_inputs(tmp_path_factory.mktemp("report") / "proj")


@pytest.fixture(scope="module")
def context(paths):
    return build_context(make_params(), paths)


@pytest.fixture(scope="module")
def html(context):
    return render_html(context)


@pytest.fixture(scope="module")
def markdown(context):
    return render_markdown(context)


def _table(html: str, table_id: str) -> str:
    m = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert m, f"no table {table_id}"
    return m.group(0)


def _rows(table_html: str) -> dict[str, str]:
    """``{first cell text: row html}`` of a table's body rows."""
    body = re.search(r"<tbody>(.*)</tbody>", table_html, re.S).group(1)
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        first = re.search(r"<td[^>]*>(.*?)</td>", row, re.S).group(1)
        out[re.sub(r"<[^>]+>", "", first).split()[0]] = row
    return out


# ------------------------------------------------------------------------------------ HTML
def test_html_is_self_contained(html):
    assert "http://" not in html and "https://" not in html
    for attr, value in re.findall(r'\b(src|href)\s*=\s*"([^"]*)"', html):
        assert value.startswith("data:image/png;base64,") if attr == "src" else value.startswith("#"), value
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, re.I)
    assert "url(" not in html and "@import" not in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # degree distribution, metrics, training curves
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")


def test_metrics_table_has_every_model_and_value(html):
    rows = _rows(_table(html, "test-metrics"))
    assert set(rows) == set(MODELS)
    for m, values in METRICS.items():
        cells = re.findall(r'<td class="num[^"]*">([^<]*)</td>', rows[m])
        # columns sorted by K, then recall, ndcg, precision, hitrate
        expected = [values[f"{name}@{k}"] for k in (10, 20) for name in ("recall", "ndcg", "precision", "hitrate")]
        assert cells[:8] == [f"{v:.4f}" for v in expected]
    # cost next to quality: training time (a training-free model's fit time), parameters, best epoch of epochs run
    # ("—" where nothing was trained)
    assert re.findall(r'<td class="num">([^<]*)</td>', rows["lightgcn"])[-3:] == ["1.50 s", "248", "3 of 5"]
    assert re.findall(r'<td class="num">([^<]*)</td>', rows["popularity"])[-3:] == ["0.25 s (fit)", "0", "—"]


def test_best_value_per_column_is_highlighted(html):
    rows = _rows(_table(html, "test-metrics"))
    best = {m: re.findall(r'<td class="num best">([^<]*)</td>', rows[m]) for m in MODELS}
    assert best["lightgcn"] == ["0.4321", "0.3111", "0.0812", "0.5555", "0.7777"]
    assert best["mf"] == ["0.3589", "0.0644"]
    assert best["popularity"] == ["0.6543"]


def test_data_strings_are_escaped_in_html(html):
    assert SCRIPT_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_example_recommendations_use_item_names_and_mark_hits(context, html):
    ex = context["examples"]
    assert [u["user"] for u in ex["users"]] == ["u10", "u11"]  # first two users with test items
    assert ex["models"] == list(MODELS)
    first = ex["users"][0]
    assert len(first["rows"]) == 5  # top_n
    rank1 = first["rows"][0]["cells"]
    # lightgcn's first item is i100 ('<script>' name, a test item of user 0); mf's is i101; popularity's
    # is i102, which has no name: its raw id is shown
    assert [c["label"] for c in rank1] == [SCRIPT_NAME, PIPE_NAME, "i102"]
    assert [c["hit"] for c in rank1] == [True, False, False]
    rank4 = first["rows"][3]["cells"]  # item i103 ('Film 03', test item) is 4th / 3rd / 2nd
    assert rank4[0]["label"] == "Film 03" and rank4[0]["hit"]
    assert first["hits"] == [{"model": "lightgcn", "hits": 2}, {"model": "mf", "hits": 1},
                             {"model": "popularity", "hits": 1}]
    assert "Film 04" in html and 'title="item id i104"' in html
    # hits in the top 5: user u10 (items 0, 3): 2 + 1 + 1; user u11 (item 5): mf and popularity
    assert html.count('<td class="hit"') == 4 + 2


def test_provenance_has_git_commit_field(context, html, markdown):
    git = context["provenance"]["git"]
    assert git["commit"] == "unknown" and git["dirty"] is None  # tmp_path is not a git checkout
    assert re.search(r"<th>Git commit</th><td[^>]*>unknown</td>", html)
    assert "| Git commit | `unknown` |" in markdown
    names = {p["name"]: p["version"] for p in context["provenance"]["packages"]}
    assert set(names) >= {"gnnrec", "torch", "torch_geometric", "numpy", "pandas", "great_expectations",
                          "prefect", "dvc"}
    assert names["pandas"] == pd.__version__
    assert context["provenance"]["device"]["configured"] == "cpu"


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_provenance_reads_commit_and_dirty_flag(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    (repo / "a.txt").write_text("a")
    subprocess.run(git + ["add", "a.txt"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "init"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert provenance.git_info(repo) == {"commit": head, "dirty": False}
    (repo / "a.txt").write_text("b")
    assert provenance.git_info(repo) == {"commit": head, "dirty": True}


def test_data_hash_from_data_dvc_for_synthetic_else_manifest_files(tmp_path):
    paths = make_inputs(tmp_path / "p")
    root = Path(paths.root)
    manifest = paths.ingest / "manifest.json"
    h = provenance.data_hash("csv", root, manifest)
    assert h["method"].startswith("sha256") and len(h["value"]) == 64
    assert [f["table"] for f in h["files"]] == ["interactions"]
    (root / "rawdata" / "ratings.csv").write_text("user,item\nu0,i1\n", encoding="utf-8")
    assert provenance.data_hash("csv", root, manifest)["value"] != h["value"]  # content changes the hash
    (root / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n")
    assert provenance.data_hash("synthetic", root, manifest)["value"] == "0123456789abcdef0123456789abcdef.dir"
    assert provenance.data_hash("csv", root, manifest)["method"].startswith("sha256")  # data.dvc only for synthetic
    assert provenance.data_hash("csv", tmp_path / "nowhere", tmp_path / "nowhere.json")["value"] == "unknown"


def test_dataset_and_graph_counts(html, markdown):
    # "items" is also a dict method: the templates must index, not getattr
    assert re.search(r"<th>Items</th><td class=\"num\">25</td>", html)
    assert html.count("<th>Items</th><td class=\"num\">25</td>") == 2  # dataset + graph
    assert markdown.count("| Items | 25 |") == 2
    assert "| Interactions | 120 |" in markdown and "| Training edges | 96 |" in markdown


def test_time_decay_appears_in_the_graph_section_only_when_on(tmp_path, markdown):
    import json

    assert "Time decay" not in markdown
    paths = make_inputs(tmp_path / "proj")
    stats = json.loads(paths.graph_stats.read_text())
    stats["time_decay"] = {"half_life_days": 30.0, "latest": 1, "weight_mean": 0.61, "weight_min": 0.01,
                           "share_below_half": 0.25}
    write_json(paths.graph_stats, stats)
    context = build_context(make_params(), paths)
    line = "| Time decay | half-life 30 days: mean edge weight 0.61, 25.0% of the edges below one half |"
    assert line in render_markdown(context)
    assert "half-life 30 days: mean edge weight 0.61" in render_html(context)


def test_graph_noise_precision_recall_and_social_counts(html, markdown):
    assert "Noise filter against ground truth" in html
    assert "<td class=\"num\">0.8750</td><td class=\"num\">0.7000</td>" in html
    assert "| 10 | 7 | 1 | 0.8750 | 0.7000 |" in markdown
    assert "| Social ties kept | 29 |" in markdown and "| Social ties dropped | 8 (21.6%) |" in markdown
    assert "Duplicate interactions merged" in html and "| Duplicate interactions merged | 3 |" in markdown


def test_training_summary_rows(html):
    rows = _rows(_table(html, "training-table"))
    assert set(rows) == set(MODELS)
    assert "early stop" in rows["lightgcn"] and "0.3000" in rows["lightgcn"] and ">248<" in rows["lightgcn"]
    assert "no training" in rows["popularity"]


def test_timings_listed_without_the_report_stage(context, html):
    stages = [r["stage"] for r in context["timings"]["rows"]]
    assert stages == ["ingest", "validate", "split", "build_graph", "train@lightgcn", "train@mf",
                      "train@popularity", "evaluate"]
    assert context["timings"]["total"] == pytest.approx(1.25 * sum(range(1, 9)))
    assert "2024-12-31" not in html and "12 min 57 s" not in html


# -------------------------------------------------------------------------------- Markdown
def test_markdown_metrics_table_and_escaping(markdown):
    # every model's row, in the configured order, with its formatted metrics and costs
    assert "Best value per column in bold.\n\n" + MD_METRICS_TABLE + "\n" in markdown
    # item names in the examples: '|' escaped, no raw tag, hits marked
    assert "Left \\| Right" in markdown and "Left | Right" not in markdown
    assert SCRIPT_NAME not in markdown
    assert "| 1 | Film 10 | ✓ **\\<script\\>alert(1)\\</script\\>** | Left \\| Right | i102 |" in markdown
    assert not re.search(r"\| \n", markdown)  # no trailing blanks after a row's last pipe
    assert "![Training curves](figures/training_curves.png)" in markdown
    # every table row of the Markdown file has a consistent column count
    for block in re.split(r"\n\s*\n", markdown):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines and len(lines) == len(block.strip().splitlines()):
            counts = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
            assert len(counts) == 1, block


def test_md_escape():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<b>x</b>\nnext") == "\\<b\\>x\\</b\\> next"
    assert md_escape(None) == ""


def test_summary_markdown_and_metrics_table_rows(context, paths):
    summary = render_summary_markdown(context)
    raw_dir = md_escape(str(Path(paths.root) / "rawdata"))
    assert summary == (
        "# gnnrec run summary\n\n"
        f"**Dataset:** csv ({raw_dir}): 6 users, 25 items, 120 interactions, 37 social ties (29 kept).\n\n"
        "**Best model:** mf (NDCG@20 = 0.3589 on the test split)\n\n"  # early_stop metric: ndcg@20
        + MD_METRICS_TABLE)
    rows = metrics_table_rows(context)
    assert [r["model"] for r in rows] == list(MODELS)
    assert rows[0] == {"model": "lightgcn", **METRICS["lightgcn"]}
    json.dumps(rows)


def test_markdown_example_users_list_each_models_recommended_items(markdown):
    # user u10 holds out i100 (the <script> name) and i103 (Film 03); u11 holds out i105 (Film 05).
    # lightgcn ranks i100, i101, …; mf i101, i102, …; popularity i102, i103, … (i102 has no name: raw id)
    script = "\\<script\\>alert(1)\\</script\\>"
    # Beside them, each user's own training items (users 0 and 1: items 10-13 and 11-14, no timestamps: file
    # order), one a row, "—" past them.
    u10 = (
        "### User u10\n\n"
        "2 held-out test items; hits: lightgcn 2, mf 1, popularity 1.\n\n"
        f"Held out: {script} · Film 03\n\n"
        "4 training items.\n\n"
        "| # | Recent (own) | lightgcn | mf | popularity |\n"
        "|---:|---|---|---|---|\n"
        f"| 1 | Film 10 | ✓ **{script}** | Left \\| Right | i102 |\n"
        "| 2 | Film 11 | Left \\| Right | i102 | ✓ **Film 03** |\n"
        "| 3 | Film 12 | i102 | ✓ **Film 03** | Film 04 |\n"
        "| 4 | Film 13 | ✓ **Film 03** | Film 04 | Film 05 |\n"
        "| 5 | — | Film 04 | Film 05 | Film 06 |\n")
    u11 = (
        "### User u11\n\n"
        "1 held-out test item; hits: lightgcn 0, mf 1, popularity 1.\n\n"
        "Held out: Film 05\n\n"
        "4 training items.\n\n"
        "| # | Recent (own) | lightgcn | mf | popularity |\n"
        "|---:|---|---|---|---|\n"
        f"| 1 | Film 11 | {script} | Left \\| Right | i102 |\n"
        "| 2 | Film 12 | Left \\| Right | i102 | Film 03 |\n"
        "| 3 | Film 13 | i102 | Film 03 | Film 04 |\n"
        "| 4 | Film 14 | Film 03 | Film 04 | ✓ **Film 05** |\n"
        "| 5 | — | Film 04 | ✓ **Film 05** | Film 06 |\n")
    assert u10 in markdown and u11 in markdown
    assert "Top 5 items per model for 2 users" in markdown and "### User u12" not in markdown
    assert "the user's own training items, in the training file's order (no timestamps)." in markdown
    assert "Film 07" not in markdown  # past every model's top 5


def test_validation_summary_counts(context, html, markdown):
    ds = context["dataset"]
    assert ds["success"] and not ds["strict"] and ds["repairs_total"] == 6 and ds["failures"] == 0
    assert [(t["name"], t["rows"], t["checks"], t["failed"]) for t in ds["tables"]] == [
        ("interactions", 123, 2, 0), ("social", 40, 1, 0), ("items", N_ITEMS, 0, 0)]
    assert "| Validation | passed (repair mode) |" in markdown
    assert "| social | social.csv | 40 | 1 | 0 |\n| items | items.csv | 25 | 0 | 0 |" in markdown
    assert re.search(r"\| interactions \| [^|]*ratings\.csv \| 123 \| 2 \| 0 \|", markdown)
    assert ("| Duplicate interactions merged | 3 |\n| Social self-loops dropped | 2 |\n"
            "| Duplicate social ties dropped | 1 |\n| Social ties naming unknown users dropped | 0 |") in markdown
    # the one check with unexpected rows (repaired, not failed) is listed with its count, message and example
    assert [(c["expectation"], c["unexpected_count"], c["success"]) for c in ds["flagged_checks"]] == [
        ("expect_column_pair_values_to_be_unique", 3, True)]
    assert ("| interactions | expect\\_column\\_pair\\_values\\_to\\_be\\_unique | — | anomaly | 3 | repaired "
            "| duplicate (user, item) pairs merged (e.g. row 7: u1,i2) |") in markdown
    assert ('<td class="mono small">social.csv</td><td class="num">40</td><td class="num">1</td>' in html
            and "duplicate (user, item) pairs merged" in html)
    assert '<tr><th>Validation</th><td><span class="badge ok">passed</span> <span class="badge">repair mode</span>' \
        in html


def test_parameters_and_provenance_sections(context, paths, html, markdown):
    # the validated params of this run, as YAML, in both files
    for line in ("seed: 1\n", "models: [lightgcn, mf, popularity]\n", "report:\n  example_users: 2\n  top_n: 5\n"):
        assert line in context["params_yaml"] and line in markdown
        assert str(markupsafe.escape(line)) in html
    assert context["params"]["report"] == {"example_users": 2, "top_n": 5}
    # the data hash is the manifest files' digest, shown with the file it covers
    expected = provenance.data_hash("csv", Path(paths.root), paths.ingest / "manifest.json")
    assert context["provenance"]["data_hash"] == expected
    assert f"| Data hash | `{expected['value']}` ({md_escape(expected['method'])}) |" in markdown
    assert f"ratings.csv: `{expected['files'][0]['sha256']}` |" in markdown
    assert f'<td class="mono small">{expected["value"]}</td>' in html
    assert "| Configured device | cpu |" in markdown and f"| pandas | {pd.__version__} |" in markdown


def test_baseline_note_for_a_graph_model_that_loses_to_mf(tmp_path):
    paths = make_inputs(tmp_path / "p")
    metrics = json.loads(json.dumps(METRICS))
    metrics["lightgcn"]["ndcg@10"] = 0.2  # below mf's 0.3005
    write_json(paths.metrics, metrics)
    summary = json.loads(paths.train_summary("lightgcn").read_text(encoding="utf-8"))
    # the traits come from the model's training summary (written by the train stage) when it has them
    write_json(paths.train_summary("lightgcn"), {**summary, "traits": "normalised <sum> propagation",
                                                 "graph_model": True})
    ctx = build_context(make_params(), paths)
    note = ("lightgcn does not beat MF-BPR on test NDCG@10 (0.2000 vs 0.3005): its validation score stopped "
            "improving at epoch 3 (2 more epochs without a better one before early stopping ended it at epoch 5), "
            "so more training would not close the gap: with these settings its normalised <sum> propagation fit "
            "this data worse than MF's free per-user and per-item embeddings (its section in params.yaml holds "
            "the settings to tune).")
    assert ctx["notes"] == [note]
    assert f"## Notes\n\n- {md_escape(note)}\n" in render_markdown(ctx)
    assert f"<li>{markupsafe.escape(note)}</li>" in render_html(ctx)
    # a model its summary marks as not a graph model gets no note
    write_json(paths.train_summary("lightgcn"), {**summary, "graph_model": False})
    assert build_context(make_params(), paths)["notes"] == []


def test_each_model_is_described_from_its_training_summary(tmp_path):
    """The model carries its description; the train stage writes it and the report lists it (escaped)."""
    paths = make_inputs(tmp_path / "p")
    summary = json.loads(paths.train_summary("mf").read_text(encoding="utf-8"))
    write_json(paths.train_summary("mf"), {**summary, "description": "matrix factorisation <BPR>"})
    ctx = build_context(make_params(), paths)
    assert "- **mf**: matrix factorisation \\<BPR\\>\n" in render_markdown(ctx)
    assert "<li><b>mf</b>: matrix factorisation &lt;BPR&gt;</li>" in render_html(ctx)
    assert "**lightgcn**:" not in render_markdown(ctx)      # no description in its summary: not listed


def test_model_traits_from_training_summary_else_builtin_table():
    assert model_traits("gat") == "sampled neighbourhoods (fanouts) and attention layers"
    assert model_traits("gat", {"traits": "attention over sampled neighbours"}) == "attention over sampled neighbours"
    assert model_traits("gat", {"traits": ""}) == model_traits("gat")
    assert model_traits("lightgcn") == "architecture"  # not in the table
    assert not is_graph_model("mf") and not is_graph_model("popularity") and is_graph_model("lightgcn")
    assert not is_graph_model("lightgcn", {"graph_model": False})
    assert is_graph_model("popularity", {"graph_model": True})


def test_mrr_and_map_are_labelled_and_ordered_after_the_other_metrics():
    assert metric_label("mrr@10") == "MRR@10" and metric_label("map@20") == "MAP@20"
    assert metric_label("ndcg@5") == "NDCG@5" and metric_label("novelty@5") == "novelty@5"
    table = metrics_table(["a", "b"], {"a": {"map@10": 0.1, "mrr@10": 0.2, "hitrate@10": 0.3, "ndcg@5": 0.4},
                                       "b": {"mrr@10": 0.5}}, primary="mrr@10")
    assert [c["label"] for c in table["columns"]] == ["NDCG@5", "HitRate@10", "MRR@10", "MAP@10"]
    assert [c["text"] for c in table["rows"][1]["cells"]] == ["—", "—", "0.5000", "—"]
    assert table["best_model"] == "b" and table["best_value"] == 0.5


# ------------------------------------------------------------------------------- tolerance
def test_renders_without_social_and_timings(tmp_path):
    paths = make_inputs(tmp_path / "p", social=False, timings=False)
    ctx = build_context(make_params(), paths)
    assert ctx["graph"]["social"] is None and ctx["timings"] is None
    html, md = render_html(ctx), render_markdown(ctx)
    assert "No social graph" in html and "Noise filter" not in html
    assert "No stage timings recorded" in html and "No stage timings recorded." in md
    assert "| Social graph | none (the source has no social ties) |" in md
    assert _rows(_table(html, "test-metrics")).keys() == set(MODELS)


def test_renders_without_noise_ground_truth_and_optional_files(tmp_path):
    paths = make_inputs(tmp_path / "p", noise=False)
    paths.recommendations.unlink()
    (paths.ingest / "manifest.json").unlink()
    paths.eval_details.unlink()
    ctx = build_context(make_params(), paths)
    html = render_html(ctx)
    assert "Noise filter" not in html and "29" in html
    assert ctx["examples"]["users"] == [] and ctx["val_metrics"] is None
    assert any("recommendations.parquet" in n for n in ctx["notes"])
    assert ctx["dataset"]["source"] == "synthetic"  # from params when the manifest is missing
    render_markdown(ctx)


def test_missing_required_input_names_the_file(tmp_path):
    from gnnrec.errors import DataError

    paths = make_inputs(tmp_path / "p")
    paths.metrics.unlink()
    with pytest.raises(DataError, match="metrics.json"):
        build_context(make_params(), paths)


def test_example_users_zero_disables_examples(paths):
    ctx = build_context(make_params(example_users=0), paths)
    assert ctx["examples"]["users"] == []
    assert "turned off" in render_html(ctx)


# --------------------------------------------------------------------------------- figures
def test_training_curves_png_is_deterministic_and_skips_untrained():
    h = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.7, 0.5, 0.4], "val_score": [0.1, 0.2, 0.15],
                      "seconds": [0.1, 0.2, 0.3]})
    empty = h.iloc[:0]
    a = figures.training_curves({"lightgcn": h, "popularity": empty}, "ndcg@20")
    b = figures.training_curves({"lightgcn": h, "popularity": empty}, "ndcg@20")
    assert a.startswith(b"\x89PNG") and a == b
    assert b"Software" not in a and b"matplotlib" not in a.lower()
    assert a != figures.training_curves({"lightgcn": h.assign(loss=[0.9, 0.8, 0.1])}, "ndcg@20")


# ---------------------------------------------------------------------------------- stage
def test_stage_writes_outputs_and_summary(tmp_path):
    paths = make_inputs(tmp_path / "p")
    (paths.figures).mkdir(parents=True)
    (paths.figures / "stale.png").write_bytes(b"old")
    summary = report_stage.run(make_params(), paths)
    assert paths.report_html.is_file() and paths.report_md.is_file()
    pngs = sorted(p.name for p in paths.figures.glob("*.png"))
    assert pngs == ["degree_distribution.png", "metrics.png", "training_curves.png"]
    md = paths.report_md.read_text(encoding="utf-8")
    for name in pngs:
        assert f"(figures/{name})" in md
        b64 = base64.b64encode((paths.figures / name).read_bytes()).decode()
        assert b64 in paths.report_html.read_text(encoding="utf-8")  # HTML embeds the same PNG
    assert MD_METRICS_TABLE in md and "### User u10" in md
    assert summary["best_model"] == "mf" and summary["best_metric"] == "ndcg@20" and summary["best_value"] == 0.3589
    assert summary["models"] == list(MODELS) and summary["example_users"] == 2 and summary["notes"] == []
    assert summary["metrics_table"] == [{"model": m, **METRICS[m]} for m in MODELS]
    assert summary["new_users_verdict"] is None  # no cold-start metrics
    assert summary["summary_markdown"].startswith("# gnnrec run summary\n")
    assert summary["summary_markdown"].endswith(MD_METRICS_TABLE)
    json.dumps(summary)
    assert not list(paths.figures.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_model_without_metrics_or_training_summary_still_listed(tmp_path):
    paths = make_inputs(tmp_path / "p")
    metrics = {m: v for m, v in METRICS.items() if m != "mf"}
    paths.metrics.write_text(json.dumps(metrics), encoding="utf-8")
    paths.train_summary("mf").unlink()
    paths.train_history("mf").unlink()
    ctx = build_context(make_params(), paths)
    html = render_html(ctx)
    rows = _rows(_table(html, "test-metrics"))
    assert set(rows) == set(MODELS) and "no metrics" in rows["mf"]
    # 8 metrics, then training time, parameters, best epoch
    assert re.findall(r'<td class="num[^"]*">([^<]*)</td>', rows["mf"]) == ["—"] * 11
    # with mf gone, lightgcn is best at ndcg@20 and becomes the best model
    assert ctx["metrics"]["best_model"] == "lightgcn"
    assert "no training summary" in _rows(_table(html, "training-table"))["mf"]
    assert any("mf" in n for n in ctx["notes"])
    assert "| mf | — | — |" in render_markdown(ctx)

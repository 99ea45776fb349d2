"""The sweep's grid: -S lists and YAML files into trials, and the errors for bad ones."""

from __future__ import annotations

import pytest

from gnnrec.sweep import SweepError, load_grid
from gnnrec.sweep.grid import split_values
from gnnrec.sweep.report import markdown, resolve_metric


def test_values_split_at_top_level_commas_only():
    assert split_values("[lightgcn],[mf,social], 0.01") == ["[lightgcn]", "[mf,social]", "0.01"]
    assert split_values("'a,b',{x: 1, y: 2}") == ["'a,b'", "{x: 1, y: 2}"]


def test_command_line_lists_make_the_cartesian_product_in_order_and_single_values_are_fixed():
    grid = load_grid(sets=["models=[lightgcn],[mf]", "train.lr=0.001,0.01", "train.epochs=5"], name="g")
    trials = grid.trials()
    assert [t.name for t in trials] == ["g-001", "g-002", "g-003", "g-004"]
    assert [t.overrides for t in trials] == [
        ("train.epochs=5", "models=[lightgcn]", "train.lr=0.001"),
        ("train.epochs=5", "models=[lightgcn]", "train.lr=0.01"),
        ("train.epochs=5", "models=[mf]", "train.lr=0.001"), ("train.epochs=5", "models=[mf]", "train.lr=0.01")]
    assert trials[2].swept == (("models", "[mf]"), ("train.lr", "0.001"))


def test_a_grid_file_gives_yaml_values_in_flow_style_and_the_command_line_adds_to_it(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("name: dims\nmetric: recall@20\nfixed: {train.epochs: 20}\n"
                    "grid:\n  models: [[lightgcn], [mf, social]]\n  lightgcn.embedding_dim: [32, 64]\n")
    grid = load_grid(path, sets=["seed=1,2"])
    assert (grid.name, grid.metric) == ("dims", "recall@20")
    assert grid.axes == {"models": ["[lightgcn]", "[mf, social]"], "lightgcn.embedding_dim": ["32", "64"],
                         "seed": ["1", "2"]}
    assert len(grid.trials()) == 8 and grid.trials()[0].overrides[0] == "train.epochs=20"


@pytest.mark.parametrize("text, message", [
    ("grid: {train.lr: 0.1}\n", "grid.train.lr: expected a non-empty list"),
    ("grids: {}\n", "unknown keys ['grids']"),
    ("- 1\n", "expected a mapping"),
    ("name: 'bad name'\ngrid: {seed: [1, 2]}\n", "name 'bad name'"),
])
def test_bad_grid_files_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(SweepError, match="grid file|name") as info:
        load_grid(path)
    assert message in str(info.value)


def test_bad_command_line_options_say_what_was_expected():
    with pytest.raises(SweepError, match="expected key=value"):
        load_grid(sets=["train.lr"])
    with pytest.raises(SweepError, match="nothing to sweep"):
        load_grid()


def _result(name, model, values, status="completed", **extra):
    return {"name": name, "swept": {"seed": name[-1]}, "status": status, "wall_s": 10.0,
            "metrics": {model: values, "cold_start": {}}, **extra}


def test_the_report_falls_back_to_the_largest_k_measured_and_lists_failures_with_their_reason():
    trials = [_result("s-1", "mf", {"ndcg@5": 0.1, "ndcg@10": 0.25}),
              _result("s-2", "mf", {}, status="failed", step="dvc exp run", error="unknown model 'x'",
                      workspace="/tmp/w", host="h")]
    assert resolve_metric(trials, "ndcg@20") == "ndcg@10"
    assert resolve_metric(trials, "recall@20") == "recall@20"         # nothing to fall back to: as asked
    text = markdown({"name": "s", "metric": "ndcg@10", "commit": "abcdef123", "runner": "dask",
                     "axes": {"seed": ["1", "2"]}, "fixed": {}, "wall_s": 12.0, "trial_s_sum": 20.0, "trials": trials})
    assert "| s-1 | `1` | completed | 10 | 0.2500 |" in text
    assert "- `s-2` (dvc exp run): unknown model 'x' (workspace kept: `/tmp/w` on h)" in text
    assert "1 completed, 1 failed" in text and "(1.67x the wall time)" in text


def test_only_a_missing_object_of_the_shared_cache_counts_as_the_race_that_is_retried():
    from gnnrec.sweep.trial import _cache_race

    cache = "/p/.dvc/cache"
    race = ("ERROR: failed to reproduce 'split': failed to load directory ('artifacts', 'dataset'): [Errno 2] "
            "No such file or directory: '/p/.dvc/cache/files/md5/4f/5b17.dir'")
    assert _cache_race(race, cache)
    assert not _cache_race("gnnrec: stage ingest failed: params.yaml: key 'models': expected ...", cache)
    assert not _cache_race("No such file or directory: '/elsewhere/x'", cache)

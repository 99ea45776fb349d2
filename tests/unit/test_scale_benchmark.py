"""The scale benchmark's parts: the power-law generator's shape, the growth fit, the worker's output, the
report, and the per-node references of the sub-graph samplers against the vectorised samplers. No timings
are asserted."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import scale, scale_data, subgraph_samplers
from benchmarks.scale_report import render, write_outputs

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------- generator
def test_generator_has_the_size_and_mean_degree_and_distinct_held_out_pairs():
    d = scale_data.generate(20_000, seed=0)
    assert (d.n_users, d.n_items) == (1000, 500) and len(d.train_user) == 20_000
    deg = np.bincount(d.train_user, minlength=d.n_users)
    assert deg.mean() == 20.0 and deg.min() >= 1
    train = d.train_user.astype(np.int64) * d.n_items + d.train_item
    val = d.val_user.astype(np.int64) * d.n_items + d.val_item
    assert len(np.unique(train)) == len(train) and len(np.unique(val)) == len(val)   # distinct pairs
    assert not np.isin(val, train).any()                                            # held out
    assert (np.bincount(d.val_user, minlength=d.n_users) >= 1).all()
    assert 0.08 < len(val) / len(train) < 0.12
    assert np.all(np.diff(train) > 0)                                               # sorted by user, item


def test_generator_is_power_law_and_community_structured():
    d = scale_data.generate(100_000, seed=0)
    user_deg = np.bincount(d.train_user, minlength=d.n_users)
    item_deg = np.bincount(d.train_item, minlength=d.n_items)
    assert item_deg.max() / np.median(item_deg) > 20                                # heavy-tailed items
    assert user_deg.max() / np.median(user_deg) > 10                                # and users
    top = np.sort(user_deg)[::-1]
    k = len(top) // 10
    hill = 1.0 / np.mean(np.log(top[:k] / top[k]))                                  # tail exponent estimate
    assert abs(hill - scale_data.PARETO) < 0.6, hill
    within = np.mean(d.user_community[d.train_user] == d.item_community[d.train_item])
    users_in = np.bincount(d.user_community, minlength=5) / d.n_users
    items_in = np.bincount(d.item_community, weights=item_deg, minlength=5) / item_deg.sum()
    chance = float(users_in @ items_in)                                             # same share, no structure
    assert within >= 0.75 and within > chance + 0.4, (within, chance)


def test_generator_is_deterministic_in_the_seed(tmp_path: Path):
    a, b, c = scale_data.generate(20_000, 3), scale_data.generate(20_000, 3), scale_data.generate(20_000, 4)
    for key in ("train_user", "train_item", "val_user", "val_item", "item_community"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert not np.array_equal(a.train_item, c.train_item)
    cached = scale_data.load_or_generate(20_000, 3, tmp_path)                       # written, then read back
    again = scale_data.load_or_generate(20_000, 3, tmp_path)
    assert scale_data.cache_path(tmp_path, 20_000, 3).exists()
    assert np.array_equal(cached.train_item, a.train_item) and np.array_equal(again.val_item, a.val_item)
    assert again.name == "powerlaw-20000" and scale_data.size_tag(1e7) == "1e7"


# --------------------------------------------------------------------------------------- growth fits
def test_growth_fit_recovers_a_known_exponent_and_projects():
    x = [1e5, 1e6, 1e7]
    fit = scale.fit_growth(x, [3.0 * v ** 0.75 for v in x])
    assert fit["exponent"] == pytest.approx(0.75) and fit["coef"] == pytest.approx(3.0)
    assert scale.project(fit, 1e8) == pytest.approx(3.0 * 1e8 ** 0.75)
    assert scale.fit_growth([1e5, 1e6], [5.0, 5.0])["exponent"] == pytest.approx(0.0)
    assert scale.fit_growth([1e5, 1e6, 1e7], [2.0, None, 0.0]) is None            # one usable point
    assert scale.project(None, 1e8) is None


def _row(edges, method, step_ms, above, peak):
    return {"edges": edges, "method": method, "users": edges // 20, "items": edges // 40, "step_ms": step_ms,
            "seconds_per_1000_steps": step_ms, "above_mb": above, "process_peak_mb": peak, "resident_mb": peak / 2,
            "positives_per_step": 2048.0, "batch_nodes": 5000.0, "steps_timed": 3}


def test_projection_and_report_mark_what_was_not_measured(tmp_path: Path):
    rows = [_row(10**5, "full", 10.0, 10.0, 300.0), _row(10**6, "full", 100.0, 100.0, 3000.0),
            _row(10**5, "cluster", 5.0, 8.0, 300.0), _row(10**6, "cluster", 5.0, 8.0, 600.0)]
    why = {(10**7, "full"): "above --scale-max-edges 1e+06"}
    proj = scale.projected_rows(rows, [10**5, 10**6, 10**7], why, ("full", "cluster"))
    by = {(r["edges"], r["method"]): r for r in proj}
    assert set(by) == {(10**7, "full"), (10**7, "cluster")}
    unfitted = scale.projected_rows(rows[:1], [10**5, 10**6], {}, ("full",))       # one size: no projection
    assert len(unfitted) == 1 and unfitted[0]["step_ms"] is None and "no fit" in unfitted[0]["why"]
    assert by[(10**7, "full")]["step_ms"] == pytest.approx(1000.0) and by[(10**7, "full")]["projected"]
    assert by[(10**7, "cluster")]["above_mb"] == pytest.approx(8.0)                 # flat stays flat
    assert by[(10**7, "full")]["why"].startswith("above")
    fitted = scale.fits(rows)
    assert fitted["full"]["above_mb"]["exponent"] == pytest.approx(1.0)
    settings = {"eval_users": 10_000, "train_steps": 500, "quality_max_edges": 1e6, "threads": 2, "device": "cpu",
                "bound_mb": 512.0, "flat_exponent": 0.3}
    md = render(rows, proj, fitted, settings, {"cpu": "test"})
    assert "| *1e7* | – | – | *full* |" in md and "projected (above --scale-max-edges 1e+06)" in md
    assert "**cluster**: at most 8.0 MB above" in md and "exponent 0.00 over 2 sizes: within the bound of 512 MB" in md
    assert "**full**: growth exponent 1.00" in md
    json_path, md_path = write_outputs(tmp_path, rows, proj, fitted, settings, {"cpu": "test"})
    payload = json.loads(json_path.read_text())
    assert len(payload["rows"]) == 6 and sum(bool(r.get("projected")) for r in payload["rows"]) == 2
    assert (tmp_path / "scale_benchmark.png").stat().st_size > 0 and md_path.read_text() == md


def test_memory_is_fitted_above_the_process_start_and_rows_check_the_bound():
    rows = [dict(_row(10**5, "cluster", 5.0, 8.0, 300.0), rss_start_mb=200.0),
            dict(_row(10**6, "cluster", 5.0, 8.0, 1200.0), rss_start_mb=200.0)]
    fitted = scale.fits(rows)
    assert fitted["cluster"]["process_peak_mb"]["exponent"] == pytest.approx(1.0)       # 100 MB → 1000 MB above start
    assert scale.project_row(fitted["cluster"], "process_peak_mb", 10**7) == pytest.approx(10_000.0 + 200.0)
    one = scale._result(rows[0], _row(10**5, "full", 10.0, 10.0, 300.0), rows[:1])
    assert one.met is None and one.speedup == pytest.approx(2.0)                        # one size: growth unknown
    assert scale._result(rows[1], None, rows).met is None                               # no full row: no target
    assert scale._result(rows[1], _row(10**6, "full", 100.0, 100.0, 3000.0), rows).met is True
    growing = [rows[0], dict(rows[1], above_mb=80.0)]
    assert scale._result(growing[1], _row(10**6, "full", 100.0, 100.0, 3000.0), growing).met is False


# ------------------------------------------------------------------------------------------- worker
@pytest.mark.parametrize("method", ["full", "cluster", "saint", "layerwise"])
def test_worker_reports_time_memory_and_quality(tmp_path: Path, method: str):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scale_worker", "--edges", "2e4", "--method", method,
                           "--steps", "2", "--warmup", "1", "--train-steps", "4", "--eval-users", "100",
                           "--threads", "1", "--cache", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("step_ms", "sample_ms", "seconds_per_1000_steps", "resident_mb", "step_peak_mb", "above_mb",
                "process_peak_mb", "ru_maxrss_mb", "graph_mb", "params_mb", "positives_per_step", "batch_nodes"):
        assert isinstance(out[key], float) and out[key] >= 0, key
    assert (out["edges"], out["method"], out["users"], out["items"]) == (20_000, method, 1000, 500)
    assert out["steps_timed"] == 2 and out["train_steps"] == 4 and out["eval_users"] == 100
    assert 0.0 <= out["ndcg@20"] <= 1.0 and 0.0 <= out["recall@20"] <= 1.0
    assert out["process_peak_mb"] >= out["resident_mb"] > out["rss_start_mb"]
    assert out["params_mb"] == pytest.approx(1500 * 64 * 4 / 2**20)
    if method == "full":
        assert out["positives_per_step"] == 2048 and out["batch_nodes"] == 1500
    else:
        assert 0 < out["batch_nodes"] <= 1500
    if method == "cluster":
        assert out["subgraph"] == {"method": "cluster", "sparse_grads": True, "num_parts": 10}   # num_parts: null
    if method != "full":
        assert out["subgraph"]["sparse_grads"] is True


# ------------------------------------------------------------------------------- sampler references
def _graph(edges: int = 4000):
    from gnnrec.graph import bipartite_adjacency
    from gnnrec.training import prepare_adjacency

    d = scale_data.generate(edges, seed=1)
    adj = prepare_adjacency(bipartite_adjacency(d.n_users, d.n_items, d.train_user, d.train_item))
    return d, adj, adj.crow_indices().tolist(), adj.col_indices().tolist(), adj.values().double().tolist()


def _same_batch(ours, ref):
    assert ours.nodes.tolist() == ref["nodes"]
    op = ours.layers[0]
    assert op.row.tolist() == ref["row"] and op.col.tolist() == ref["col"]
    assert ours.users.tolist() == ref["users"] and ours.pos.tolist() == ref["pos"]
    assert ours.neg.tolist() == ref["neg"]
    np.testing.assert_allclose(op.val.numpy(), ref["val"], rtol=1e-5)
    np.testing.assert_allclose(ours.weight.numpy(), ref["weight"], rtol=1e-5)
    np.testing.assert_allclose(ours.degree.numpy(), ref["degree"], rtol=1e-6)


def test_cluster_batch_equals_the_loop_built_batch():
    from gnnrec.sampling.subgraph import ClusterSampler

    d, adj, ptr, idx, vals = _graph()
    sampler = ClusterSampler(adj, d.n_users, num_parts=8, clusters_per_batch=3, seed=0)
    table = torch.randint(0, d.n_items, (d.n_users,), generator=torch.Generator().manual_seed(0))
    parts = torch.tensor([0, 3, 5])
    nodes = sampler.part_nodes(parts)
    ours = sampler.batch(nodes, lambda u, items, g: table[u], None)
    ref = subgraph_samplers.loop_induced_batch(ptr, idx, vals, nodes.tolist(), d.n_users, table.tolist())
    assert len(ref["users"]) > 0 and len(ref["nodes"]) > len(nodes)                 # positives, newcomers
    _same_batch(ours, ref)


def test_saint_batch_equals_the_loop_built_batch_and_walks_cover_alike():
    from gnnrec.sampling.subgraph import SaintSampler

    d, adj, ptr, idx, vals = _graph()
    sampler = SaintSampler(adj, d.n_users, roots=20, walk_length=2, coverage=5, seed=0)
    counts = {"node_count": sampler.node_count.tolist(), "entry_count": sampler.entry_count.tolist(),
              "n_presampled": sampler.n_presampled, "n_edges": sampler.n_edges, "degree": sampler.degree.tolist()}
    table = torch.randint(0, d.n_items, (d.n_users,), generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    nodes = sampler.sample_nodes(g)
    ours = sampler.batch(nodes, lambda u, items, gen: table[u], None)
    ref = subgraph_samplers.loop_induced_batch(ptr, idx, vals, nodes.tolist(), d.n_users, table.tolist(),
                                               saint=counts)
    _same_batch(ours, ref)
    # the walks: same distribution of sub-graph sizes (both visit about as many distinct nodes)
    rng = random.Random(0)
    pool = sampler.root_pool.tolist()
    loop_sizes = [len(subgraph_samplers.loop_saint_nodes(ptr, idx, pool, 20, 2, rng)) for _ in range(300)]
    our_sizes = [sampler.sample_nodes(g).shape[0] for _ in range(300)]
    assert abs(np.mean(loop_sizes) - np.mean(our_sizes)) < 0.05 * np.mean(our_sizes)
    walk = subgraph_samplers.loop_saint_nodes(ptr, idx, pool, 20, 2, rng)
    assert walk == sorted(set(walk)) and any(v < d.n_users for v in walk)


def _dense(rows, cols, vals, shape):
    out = np.zeros(shape)
    np.add.at(out, (np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)), vals)
    return out


def test_ladies_layer_loop_and_sampler_converge_to_the_adjacency_rows():
    """With many draws, c_j / (s q_j) → 1: both LADIES layers tend to Â restricted to the layer above."""
    from gnnrec.sampling.layerwise import LayerwiseSampler

    d, adj, ptr, idx, vals = _graph(2000)
    dense = adj.to_dense().double().numpy()
    dst = [0, 3, 7, d.n_users + 2, d.n_users + 5]
    s = 400_000
    (rows, cols, lv, n_dst, n_src), src = subgraph_samplers.loop_ladies_layer(ptr, idx, vals, dst, s,
                                                                              random.Random(0))
    assert src[:n_dst] == dst and n_src == len(src)
    target = dense[dst][:, src]
    np.testing.assert_allclose(_dense(rows, cols, lv, (n_dst, n_src)), target, rtol=0.1, atol=1e-9)
    sampler = LayerwiseSampler(adj, d.n_users, [s], "ladies")
    op, our_src = sampler.layer(torch.tensor(dst), s, torch.Generator().manual_seed(0))
    assert sorted(our_src.tolist()) == sorted(src) and our_src.tolist()[:n_dst] == dst
    ours = _dense(op.row.numpy(), op.col.numpy(), op.val.double().numpy(), (op.n_dst, op.n_src))
    np.testing.assert_allclose(ours, dense[dst][:, our_src.tolist()], rtol=0.1, atol=1e-7)


def test_ladies_batch_loop_has_the_sampler_structure():
    from gnnrec.sampling.layerwise import LayerwiseSampler

    d, adj, ptr, idx, vals = _graph(2000)
    u, i, j = [0, 1, 2, 2], [4, 5, 6, 9], [7, 7, 8, 1]
    nodes, layers, n_out = subgraph_samplers.loop_ladies_batch(ptr, idx, vals, u, i, j, d.n_users, 3, [30],
                                                               random.Random(0))
    ours = LayerwiseSampler(adj, d.n_users, [30], "ladies").batch(torch.tensor(u), torch.tensor(i), torch.tensor(j),
                                                                  3, torch.Generator().manual_seed(0))
    assert n_out == ours.n_out == len({0, 1, 2} | {d.n_users + x for x in i + j})
    assert len(layers) == len(ours.layers) == 3
    assert layers[-1][3] == n_out and [op[4] for op in layers[1:]] == [op[3] for op in layers[:-1]]
    assert nodes[:n_out] == sorted({0, 1, 2} | {d.n_users + x for x in i + j})
    assert layers[0][4] == len(nodes)


def test_sampler_benchmark_quick_has_the_subgraph_rows():
    from benchmarks import samplers

    rows = samplers.run(quick=True)
    whats = [r["what"].split(":")[0] for r in rows]
    assert {"cluster batch", "saint sub-graph", "ladies batch"} <= set(whats)
    for r in rows:
        assert r["ours_ms"] > 0 and r["reference_ms"] > 0 and r["edges"] > 0


def test_main_parses_the_scale_and_sampler_options():
    from benchmarks.__main__ import ALL, parse_args

    assert "scale" in ALL
    args = parse_args(["--only", "scale,samplers", "--scale-max-edges", "1e5", "--sampler-edges", "1e6,1e7"])
    assert args.only == ["scale", "samplers"] and args.scale_max_edges == 1e5
    assert args.sampler_edges == [10**6, 10**7] and args.scale_sizes == [10**5, 10**6, 10**7, 10**8]
    assert parse_args([]).scale_max_edges == 1e6 and parse_args(["--quick"]).scale_max_edges == 1e5
    assert parse_args(["--sampler-edges", ""]).sampler_edges == []

"""``python -m benchmarks.cold_start``: new users on real data, over three draws of the held-out users.

For each dataset (``movielens-100k`` with ``u.user`` side features, ``lastfm-hetrec`` with friendships) and
each ``split.seed`` (42, 1, 2 by default: three draws of the held-out users, training seed fixed), the
pipeline's own stages run in-process in ``.bench-work/cold_start/<dataset>-<seed>/``: ingest, validate,
split (the default ``split.cold_start``: 10% of the eligible users for the table, 5% for choosing settings),
build_graph, train (popularity, MF, LightGCN, and the social model where the data has ties), the retrained
oracle (LightGCN with the revealed items, per ``k >= 1``) and evaluate (with the meta-learned adaptation).

It reports, per dataset, model and ``k``: NDCG@20 as the mean ± standard deviation over the draws; and,
pooled over the draws' held-out users, a paired per-user comparison of the best model's inference
against popularity, the MF fold-in and the oracle: the mean difference, a seeded 95% bootstrap interval
and the Wilcoxon signed-rank p-value. Outputs: ``reports/cold_start_benchmark.{json,md}`` (committed).

    python -m benchmarks.cold_start                       # both datasets, 3 draws (about an hour on 2 cores)
    python -m benchmarks.cold_start --datasets movielens-100k --seeds 42 --no-oracle
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import yaml

from benchmarks.common import REPO, add_standard_args, data_root, machine

DATASETS = {"movielens-100k": ("movielens-100k", "movielens-100k", False),
            "lastfm-hetrec": ("lastfm-hetrec", "lastfm-hetrec2011-2k", True)}
BOOTSTRAP = 2000
#: what the best inference is compared with: popularity, MF's plain ridge fold-in (the usual baseline), MF with
#: gnnrec's similar-users blend, and LightGCN retrained with the revealed items
REFERENCES = ("popularity", "mf:fold-in", "mf", "oracle")
METRIC = "ndcg@20"


def run_one(dataset: str, seed: int, root: Path, data: Path, oracle: bool, meta: bool, epochs: Optional[int],
            base: dict[str, Any], reevaluate: bool = False) -> dict[str, Any]:
    """The pipeline's stages in-process on one draw; returns the metrics and the per-user values.

    ``base`` is params.yaml as read once at the start, so that an edit during a long run changes nothing. A
    finished draw leaves ``result.json`` and ``per_user.parquet`` in ``root``, keyed by the exact params: a
    rerun with the same params reuses it instead of training again (an interrupted benchmark resumes).
    ``reevaluate``: where the draw's trained models (and oracle) and its ``result.json`` are in ``root``, only the
    evaluate stage reruns, whatever the cache holds (after a change to the evaluation alone; the training
    timings are kept from the cached result).
    """
    from gnnrec.config import params_from_dict
    from gnnrec.paths import Paths
    from gnnrec.stages import build_graph, evaluate, ingest, split, train, validate
    from gnnrec.stages import oracle as oracle_stage

    source, folder, social = DATASETS[dataset]
    raw = copy.deepcopy(base)
    raw["data"].update({"source": source, "path": str(data / folder)})
    raw["split"]["seed"] = seed
    raw["models"] = ["popularity", "mf", "lightgcn", *(["social"] if social else [])]
    raw["evaluate"]["cold_start"].update({"oracle": oracle, "meta": meta, "fold_in_only": True})
    if epochs:
        raw["train"]["epochs"] = epochs
    params = params_from_dict(raw)
    key = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    cached, cached_users = root / "result.json", root / "per_user.parquet"
    if cached.exists() and cached_users.exists() and not reevaluate:
        result = json.loads(cached.read_text())
        if result.pop("params_key", None) == key:
            result["per_user"] = pd.read_parquet(cached_users)
            return result
    paths = Paths(root)
    timings = {}
    trained = all(paths.model(m).exists() for m in params.models) and (not oracle or paths.oracle.exists())
    if reevaluate and trained and cached.exists():
        timings = json.loads(cached.read_text()).get("timings", {})
        stages: tuple = ()
    else:
        stages = (("ingest", ingest), ("validate", validate), ("split", split), ("build_graph", build_graph))
    for name, stage in stages:
        t0 = time.perf_counter()
        stage.run(params, paths)
        timings[name] = round(time.perf_counter() - t0, 1)
    for model in params.models if stages else ():
        t0 = time.perf_counter()
        train.run(params, paths, model)
        timings[f"train@{model}"] = round(time.perf_counter() - t0, 1)
    for name, stage in (("oracle", oracle_stage), ("evaluate", evaluate)) if stages else (("evaluate", evaluate),):
        t0 = time.perf_counter()
        stage.run(params, paths)
        timings[name] = round(time.perf_counter() - t0, 1)
    metrics = json.loads(paths.metrics.read_text())
    details = json.loads(paths.eval_details.read_text())["cold_start"]
    per_user = pd.read_parquet(paths.cold_start_per_user)
    per_user["seed"] = seed
    result = {"seed": seed, "cold_start": metrics.get("cold_start", {}), "details": details, "timings": timings,
              "known": {m: v.get(METRIC) for m, v in metrics.items() if m != "cold_start"}}
    per_user.to_parquet(cached_users.with_suffix(".tmp"))
    cached_users.with_suffix(".tmp").replace(cached_users)
    cached.with_suffix(".tmp").write_text(json.dumps({**result, "params_key": key}, default=str))
    cached.with_suffix(".tmp").replace(cached)
    return {**result, "per_user": per_user}


def paired(a: pd.DataFrame, b: pd.DataFrame, seed: int = 0) -> Optional[dict[str, Any]]:
    """Paired comparison of ``a`` against ``b`` (per-user ``ndcg@20`` of the same users, keyed by seed and id)."""
    from scipy.stats import wilcoxon

    joined = a.merge(b, on=["seed", "id"], suffixes=("_a", "_b"))
    if joined.empty:
        return None
    diff = (joined[f"{METRIC}_a"] - joined[f"{METRIC}_b"]).to_numpy()
    rng = np.random.default_rng(seed)
    boots = rng.choice(diff, (BOOTSTRAP, len(diff)), replace=True).mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    return {"n": int(len(diff)), "diff": round(float(diff.mean()), 4), "ci": [round(float(lo), 4), round(float(hi), 4)],
            "p": p, "a": round(float(joined[f"{METRIC}_a"].mean()), 4),
            "b": round(float(joined[f"{METRIC}_b"].mean()), 4)}


def summarise(dataset: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over the draws per model and k; paired tests of the best model per k."""
    users = [r["cold_start"].get("users", {}) for r in runs]
    models = sorted({m for u in users for m in u})
    ks = sorted({k for u in users for m in u for k in u[m]}, key=lambda s: int(s.split("=")[1]))
    table = {}
    for m in models:
        table[m] = {}
        for k in ks:
            vals = [u[m][k][METRIC] for u in users if m in u and k in u[m]]
            if vals:
                table[m][k] = {"mean": round(float(np.mean(vals)), 4),
                               "std": round(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, 4),
                               "draws": [round(v, 4) for v in vals]}
    per_user = pd.concat([r["per_user"] for r in runs], ignore_index=True)
    per_user = per_user[per_user["kind"] == "users"]
    tests = {}
    inference = [m for m in models if m not in ("popularity", "oracle") and not m.endswith(":fold-in")]
    for k in ks:
        kk = int(k.split("=")[1])
        cands = [m for m in inference if k in table[m]]
        if not cands:
            continue
        best = max(cands, key=lambda m: table[m][k]["mean"])
        rows = per_user[per_user["k"] == kk]
        pick = {m: rows[rows["model"] == m][["seed", "id", METRIC]] for m in rows["model"].unique()}
        tests[k] = {"best": best}
        for ref in REFERENCES:
            if ref in pick and ref != best:
                tests[k][ref] = paired(pick[best], pick[ref])
    items = {}
    for m in sorted({m for r in runs for m in r["cold_start"].get("items", {})}):
        items[m] = {k: round(float(np.mean([r["cold_start"]["items"][m][k][METRIC] for r in runs
                                            if m in r["cold_start"].get("items", {})])), 4)
                    for k in ks if all(k in r["cold_start"].get("items", {}).get(m, {}) for r in runs)}
    latency = {m: [r["details"]["models"].get(m, {}).get("latency_ms") for r in runs] for m in models
               if m in runs[0]["details"]["models"]}
    oracle_seconds = [v.get("train_seconds") for r in runs
                      for v in (r["details"]["models"].get("oracle", {}).get("k", {}) or {}).values()]
    return {"dataset": dataset, "seeds": [r["seed"] for r in runs], "users": table, "tests": tests, "items": items,
            "latency_ms": latency, "oracle_train_seconds": oracle_seconds,
            "test_users": [r["details"]["test_users"] for r in runs],
            "features": runs[0]["details"]["features"], "friends": runs[0]["details"]["friends"],
            "known_ndcg@20": {m: [r["known"].get(m) for r in runs] for m in runs[0]["known"]},
            "timings": [r["timings"] for r in runs]}


def _sig(t: Optional[dict[str, Any]]) -> str:
    if not t:
        return "–"
    mark = "significant" if (t["ci"][0] > 0 or t["ci"][1] < 0) else "not significant"
    return f"{t['diff']:+.4f} [{t['ci'][0]:+.4f}, {t['ci'][1]:+.4f}], p = {t['p']:.2g} ({mark}, n = {t['n']})"


def render(summaries: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = ["# Cold start on real data", "",
             "`python -m benchmarks.cold_start` — NDCG@20 of held-out new users (full ranking over all items, the "
             "revealed items masked), mean ± std over the draws of the held-out users (`split.seed`); paired tests "
             "pool the draws' users (difference of the best model's inference minus the reference, 95% bootstrap "
             "interval, Wilcoxon p).", "",
             f"Machine: {info.get('cpu', '?')}, {info.get('threads', '?')} torch threads; "
             f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    for s in summaries:
        side = ", ".join(x for x, on in (("side features", s["features"]), ("friends", s["friends"])) if on) or "none"
        lines += [f"## {s['dataset']}", "",
                  f"Draws (split.seed): {s['seeds']}; held-out test users per draw: {s['test_users']}; side "
                  f"information of new users: {side}.", ""]
        ks = sorted({k for m in s["users"] for k in s["users"][m]}, key=lambda x: int(x.split("=")[1]))
        lines += ["| model | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks)]
        for m, row in s["users"].items():
            lines.append(f"| {m} | " + " | ".join(f"{row[k]['mean']:.4f} ± {row[k]['std']:.4f}" if k in row else "–"
                                                  for k in ks) + " |")
        lines += ["", "| k | best inference | vs popularity | vs MF fold-in (ridge) | vs MF + blend | "
                      "vs retrained oracle |", "|---|---|---|---|---|---|"]
        for k, t in s["tests"].items():
            lines.append(f"| {k} | {t['best']} | {_sig(t.get('popularity'))} | {_sig(t.get('mf:fold-in'))} | "
                         f"{_sig(t.get('mf'))} | {_sig(t.get('oracle'))} |")
        if s["items"]:
            lines += ["", "New items (NDCG@20 of ranking the known users, mean over draws): " + "; ".join(
                f"{m}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()) for m, row in s["items"].items())]
        lat = {m: [x for x in v if x is not None] for m, v in s["latency_ms"].items()}
        lines += ["", "Served path, one new user at a time (median ms per draw): " + "; ".join(
            f"{m} {v}" for m, v in lat.items() if v)]
        if s["oracle_train_seconds"]:
            lines.append(f"Oracle retraining (s, per draw and k): {s['oracle_train_seconds']}")
        lines += [f"Known users' test NDCG@20 per draw: {s['known_ndcg@20']}", ""]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="42,1,2", help="split.seed values: draws of the held-out users")
    parser.add_argument("--no-oracle", action="store_true", help="skip the retrained oracle (3 retrainings a draw)")
    parser.add_argument("--no-meta", action="store_true", help="skip the meta-learned adaptation")
    parser.add_argument("--epochs", type=int, default=None, help="cap the training epochs (default: params.yaml)")
    parser.add_argument("--reevaluate", action="store_true",
                        help="rerun only the evaluate stage where a draw's models are already trained")
    add_standard_args(parser)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    data = data_root(args.data_root)
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    summaries = []
    for dataset in [d for d in args.datasets.split(",") if d]:
        runs = []
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            root = REPO / ".bench-work" / "cold_start" / f"{dataset}-{seed}"
            t0 = time.perf_counter()
            runs.append(run_one(dataset, seed, root, data, not args.no_oracle, not args.no_meta, args.epochs, base,
                                args.reevaluate))
            print(f"{dataset} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        summaries.append(summarise(dataset, runs))
    info = {**machine(), "threads": args.threads}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cold_start_benchmark.json").write_text(json.dumps({"machine": info, "datasets": summaries}, indent=1,
                                                              default=str) + "\n")
    (out / "cold_start_benchmark.md").write_text(render(summaries, info))
    print(render(summaries, info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

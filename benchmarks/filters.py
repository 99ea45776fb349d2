"""Training-free graph filters on Gowalla: ``gfcf`` and ``bspm`` fitted and fully evaluated, against the published
Recall@20 / NDCG@20, with fit time, evaluation time and peak memory.

The data is ``gowalla-lightgcn`` through gnnrec's loader, validation and split (its fixed test split, the
validation slice carved from ``train.txt``, as the pipeline does). Each model runs in a fresh process
(``--worker``): the data is loaded, the peak-RSS counter is reset (``/proc/self/clear_refs``), then the model is
fitted with the ``params.yaml`` settings and every test user is ranked against every item (training and
validation items masked). Reported: fit seconds, evaluation seconds, their sum against the 5-minute target, and
the peak resident memory of fit plus evaluation against the 4 GB target. On MovieLens-100k and LastFM (the
pipeline's seed-42 random split, the same as the LightGCN rows of ``reports/benchmarks.md``) each model's settings
are chosen on validation NDCG@20 (:func:`tune`) and its test NDCG@10 and fit time reported.

    python -m benchmarks --only filters             # rows of reports/benchmarks.{md,json}
    python -m benchmarks.filters --models bspm      # on its own, the table on stdout
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

from benchmarks.common import REPO, Result

PUBLISHED = {"gfcf": (0.1849, 0.1518), "bspm": (0.1920, 0.1597)}    # Recall@20, NDCG@20 (their papers)
TARGET_SECONDS = 300.0
TARGET_RSS_MB = 4096.0
DATASET = "gowalla"


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:      # "5": reset the peak resident set size (Linux)
            fh.write("5")
        return True
    except OSError:
        return False


def worker(model_name: str, threads: int, data_root: Optional[str]) -> dict[str, Any]:
    """One model: load, fit, evaluate (in this process); the figures as a dict."""
    import numpy as np
    import torch

    from benchmarks.common import load_dataset
    from gnnrec.config import load_params
    from gnnrec.evaluation import csr_union, evaluate_ranking
    from gnnrec.graph import csr_from_pairs
    from gnnrec.models import build_model

    torch.set_num_threads(threads)
    params = load_params(REPO / "params.yaml")
    bench = load_dataset(DATASET, data_root)
    data = bench.interaction_data()
    graph = {"n_users": bench.n_users, "n_items": bench.n_items, "train_user": data.train_user,
             "train_item": data.train_item}
    reset = _reset_peak()
    model = build_model(model_name, n_users=bench.n_users, n_items=bench.n_items,
                        **params.model(model_name).architecture()).prepare(graph)
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    seen = csr_union(data.train_csr(), data.val_csr(), bench.n_items)
    test = csr_from_pairs(bench.n_users, bench.n_items, bench.test_user, bench.test_item)
    t1 = time.perf_counter()
    with torch.no_grad():
        user_emb, item_emb = model.embed(None)
        metrics = evaluate_ranking(user_emb, item_emb, seen, test, [20], params.evaluate.chunk_size)
    eval_s = time.perf_counter() - t1
    return {"model": model_name, "recall@20": float(metrics["recall@20"]), "ndcg@20": float(metrics["ndcg@20"]),
            "fit_s": round(fit_s, 1), "eval_s": round(eval_s, 1), "total_s": round(fit_s + eval_s, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 0), "peak_after_load": reset,
            "test_users": int(len(np.unique(bench.test_user))), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "settings": params.model(model_name).architecture()}


def measure(model_name: str, threads: int = 2, data_root: Optional[str] = None,
            blas_threads: Optional[int] = None) -> dict[str, Any]:
    """:func:`worker` in a fresh process (``blas_threads``: ``OPENBLAS_NUM_THREADS`` for it)."""
    env = dict(os.environ)
    if blas_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    cmd = [sys.executable, "-m", "benchmarks.filters", "--worker", model_name, "--threads", str(threads)]
    if data_root:
        cmd += ["--data-root", data_root]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks.filters --worker {model_name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: the validation grid on the smaller datasets: ranks for both, then each model's own settings
RANKS = (64, 128, 256, 512)
GRIDS = {"gfcf": [{"alpha": a} for a in (0.1, 0.3, 1.0)],
         "bspm": [{"idl_beta": b, "sharpen_time": t} for b in (0.1, 0.2, 0.5) for t in (1.0, 2.5)]}
TUNED = ("movielens-100k", "lastfm-hetrec")


def tune(dataset: str, model_name: str, data_root: Optional[str] = None, log=print) -> dict[str, Any]:
    """``model_name``'s settings chosen on validation NDCG@20 over :data:`RANKS` × :data:`GRIDS` (the SVD is
    computed once at the largest rank and truncated: its leading factors are the smaller ranks' SVDs), then
    test NDCG@10 / Recall@10 of the choice (training and validation masked) and a fresh fit's time."""
    import torch

    from benchmarks.common import load_dataset
    from gnnrec.config import load_params
    from gnnrec.evaluation import csr_union, evaluate_ranking
    from gnnrec.graph import csr_from_pairs
    from gnnrec.models import build_model

    params = load_params(REPO / "params.yaml")
    bench = load_dataset(dataset, data_root)
    data = bench.interaction_data()
    graph = {"n_users": bench.n_users, "n_items": bench.n_items, "train_user": data.train_user,
             "train_item": data.train_item}
    base = params.model(model_name).architecture()
    ranks = [k for k in RANKS if k < min(bench.n_users, bench.n_items)]
    full = build_model(model_name, n_users=bench.n_users, n_items=bench.n_items, **{**base, "factor_dim": ranks[-1]})
    full.fit(data)
    train, val = data.train_csr(), data.val_csr()

    def build(settings: dict[str, Any]) -> Any:
        model = build_model(model_name, n_users=bench.n_users, n_items=bench.n_items, **{**base, **settings})
        model.prepare(graph)
        with torch.no_grad():
            model.factors.copy_(full.factors[:, :model.rank])
            model.sigma.copy_(full.sigma[:model.rank])
        return model

    scores = []
    with torch.no_grad():
        for k in ranks:
            for extra in GRIDS[model_name]:
                settings = {"factor_dim": k, **extra}
                user_emb, item_emb = build(settings).embed(None)
                val_ndcg = evaluate_ranking(user_emb, item_emb, train, val, [20], params.evaluate.chunk_size)["ndcg@20"]
                scores.append((float(val_ndcg), settings))
        best_val, best = max(scores, key=lambda x: x[0])
        user_emb, item_emb = build(best).embed(None)
        test = csr_from_pairs(bench.n_users, bench.n_items, bench.test_user, bench.test_item)
        metrics = evaluate_ranking(user_emb, item_emb, csr_union(train, val, bench.n_items), test, [10],
                                   params.evaluate.chunk_size)
    model = build_model(model_name, n_users=bench.n_users, n_items=bench.n_items, **{**base, **best})
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    out = {"dataset": dataset, "model": model_name, "settings": best, "val_ndcg@20": round(best_val, 4),
           "ndcg@10": round(float(metrics["ndcg@10"]), 4), "recall@10": round(float(metrics["recall@10"]), 4),
           "fit_s": round(fit_s, 2), "grid": len(scores)}
    log(f"[filters] {dataset} {model_name}: {best} (validation NDCG@20 {best_val:.4f} of {len(scores)}); "
        f"test NDCG@10 {out['ndcg@10']:.4f}, fit {fit_s:.1f} s")
    return out


def run(models: Sequence[str] = ("gfcf", "bspm"), threads: int = 2, data_root: Optional[str] = None,
        log=print, tuned: Sequence[str] = TUNED) -> list[Result]:
    import torch

    torch.set_num_threads(threads)
    results = []
    for dataset in tuned:
        for name in models:
            out = tune(dataset, name, data_root, log)
            results.append(Result(dataset=dataset, device="cpu", what=f"{name}: test NDCG@10, settings tuned on "
                                  "validation (fit time, ms)", ours_ms=out["fit_s"] * 1000.0, extra=out))
    for name in models:
        out = measure(name, threads, data_root)
        recall, ndcg = PUBLISHED[name]
        met = out["total_s"] <= TARGET_SECONDS and out["peak_rss_mb"] <= TARGET_RSS_MB
        log(f"[filters] {name}: Recall@20 {out['recall@20']:.4f} NDCG@20 {out['ndcg@20']:.4f} (published "
            f"{recall} / {ndcg}); fit {out['fit_s']} s + evaluation {out['eval_s']} s; "
            f"peak {out['peak_rss_mb']:.0f} MB")
        results.append(Result(dataset=DATASET, device="cpu", what=f"{name}: fit + full evaluation (s)",
                              ours_ms=out["total_s"] * 1000.0, reference=None, reference_ms=None,
                              target=f"<= {TARGET_SECONDS:.0f} s, peak RSS <= {TARGET_RSS_MB / 1024:.0f} GB",
                              met=met, extra={**out, "published_recall@20": recall, "published_ndcg@20": ndcg}))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.filters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gfcf,bspm")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.data_root)))
        return 0
    for r in run(args.models.split(","), args.threads, args.data_root):
        print(json.dumps(r.extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time decay: LightGCN with and without ``graph.time_decay.half_life_days`` on a temporal split.

Each dataset is split per user by time (``split.method: temporal``, 80/10/10: a user's latest interactions are
its validation and test items). The half-life is chosen on validation (NDCG@20, training seed 42) among
:data:`HALF_LIVES` days; then LightGCN (default params) is trained with that half-life and without decay for
training seeds 42, 1 and 2 on the same split, and test NDCG@20 (full ranking, training and validation items
masked) is compared: mean ± standard deviation over the seeds, and the per-seed paired difference.

    python -m benchmarks --only time_decay          # writes reports/time_decay_benchmark.{md,json}
    python -m benchmarks.time_decay --datasets movielens-100k
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np
import torch

from benchmarks.common import REPO, add_standard_args, loadavg, machine, save_report
from benchmarks.replay import build

HALF_LIVES = (7.0, 30.0, 90.0, 365.0)
SEEDS = (42, 1, 2)
DEFAULT_DATASETS = ("default", "movielens-100k")
K = 20


def temporal_split(name: str, root: Optional[str], seed: int = 42) -> dict[str, Any]:
    from gnnrec.split import split_interactions

    dataset = build(name, root)
    parts = split_interactions(dataset.interactions, "temporal", (0.8, 0.1, 0.1), seed, 3)
    return {"n_users": len(dataset.users), "n_items": len(dataset.items), "train": parts.train, "val": parts.val,
            "test": parts.test}


def col(frame: Any, c: str) -> np.ndarray:
    return frame[c].to_numpy(np.int64)


def run_one(split: dict[str, Any], params: Any, seed: int, half_life: Optional[float]) -> dict[str, float]:
    from gnnrec.evaluation import evaluate_ranking
    from gnnrec.graph import csr_from_pairs
    from gnnrec.models import build_model
    from gnnrec.stages.build_graph import time_decay_weights
    from gnnrec.training import InteractionData, prepare_adjacency, train_model

    train, val, test = split["train"], split["val"], split["test"]
    n_users, n_items = split["n_users"], split["n_items"]
    weights = None if half_life is None else time_decay_weights(train["timestamp"], half_life, "train")[0]
    data = InteractionData(n_users, n_items, col(train, "user_id"), col(train, "item_id"), col(val, "user_id"),
                           col(val, "item_id"), train_weight=weights)
    torch.manual_seed(seed)
    model = build_model("lightgcn", n_users=n_users, n_items=n_items, **params.model("lightgcn").architecture())
    model.prepare({"n_users": n_users, "n_items": n_items, "train_user": data.train_user,
                   "train_item": data.train_item})
    cfg = params.train_for("lightgcn")
    result = train_model(model, data, cfg, metric=f"ndcg@{K}", seed=seed, chunk_size=params.evaluate.chunk_size,
                         checkpoint_path=None)
    model.eval()
    with torch.no_grad():
        user_emb, item_emb = model.embed(prepare_adjacency(data.adjacency()))
    seen = csr_from_pairs(n_users, n_items, np.concatenate([col(train, "user_id"), col(val, "user_id")]),
                          np.concatenate([col(train, "item_id"), col(val, "item_id")]))
    held = csr_from_pairs(n_users, n_items, col(test, "user_id"), col(test, "item_id"))
    metrics = evaluate_ranking(user_emb, item_emb, seen, held, [K])
    return {"val": float(result.best_score), "test": float(metrics[f"ndcg@{K}"]), "epochs": result.epochs_run,
            "seconds": round(result.train_seconds, 1)}


def measure(name: str, params: Any, root: Optional[str] = None, log=print) -> dict[str, Any]:
    split = temporal_split(name, root)
    choice = {}
    for h in HALF_LIVES:                                   # chosen on validation, seed 42
        choice[h] = run_one(split, params, SEEDS[0], h)
        log(f"[time_decay] {name} half-life {h:g} d: val {choice[h]['val']:.4f}")
    best = max(HALF_LIVES, key=lambda h: choice[h]["val"])
    runs = {"none": [], "decay": []}
    for seed in SEEDS:
        runs["none"].append(run_one(split, params, seed, None))
        runs["decay"].append(choice[best] if seed == SEEDS[0] else run_one(split, params, seed, best))
        log(f"[time_decay] {name} seed {seed}: none {runs['none'][-1]['test']:.4f}, "
            f"decay {runs['decay'][-1]['test']:.4f}")
    none = np.array([r["test"] for r in runs["none"]])
    decay = np.array([r["test"] for r in runs["decay"]])
    return {"dataset": name, "half_life_days": best, "validation": {str(h): v["val"] for h, v in choice.items()},
            "seeds": list(SEEDS), "runs": runs, "none_mean": float(none.mean()), "none_std": float(none.std(ddof=1)),
            "decay_mean": float(decay.mean()), "decay_std": float(decay.std(ddof=1)),
            "diff": (decay - none).tolist(), "lift": float(decay.mean() / none.mean() - 1)}


def markdown(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = ["# Time-decay benchmark", "",
             "Written by `python -m benchmarks --only time_decay` (`benchmarks/time_decay.py`). LightGCN (default "
             f"params) on a per-user temporal 80/10/10 split; the half-life chosen on validation NDCG@{K} (seed 42) "
             f"among {', '.join(f'{h:g}' for h in HALF_LIVES)} days; test NDCG@{K}, mean ± std over training seeds "
             f"{', '.join(map(str, SEEDS))}.", "",
             "| dataset | half-life (days) | without decay | with decay | lift | per-seed difference |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['dataset']} | {r['half_life_days']:g} | {r['none_mean']:.4f} ± {r['none_std']:.4f} | "
                     f"{r['decay_mean']:.4f} ± {r['decay_std']:.4f} | {100 * r['lift']:+.1f}% | "
                     f"{', '.join(f'{d:+.4f}' for d in r['diff'])} |")
    lines += ["", "Validation NDCG@20 per half-life (seed 42): " + "; ".join(
        f"{r['dataset']}: " + ", ".join(f"{h} d {v:.4f}" for h, v in r["validation"].items()) for r in results),
        "", f"Machine: {info.get('cores')} cores, torch {info.get('torch')}; load average {info.get('loadavg')}."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from gnnrec.config import load_params

    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_decay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS))
    add_standard_args(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_params(REPO / "params.yaml")
    results = [measure(name, params, args.data_root) for name in args.datasets.split(",") if name]
    info = {**machine(), "loadavg": loadavg()}
    save_report(args.out, "time_decay_benchmark", {"results": results, "machine": info}, markdown(results, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

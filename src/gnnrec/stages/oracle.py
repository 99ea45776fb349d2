"""Stage ``oracle``: the retrained reference for new users (``evaluate.cold_start.oracle``).

For each ``k >= 1`` of ``split.cold_start.k``, LightGCN is retrained from scratch with the held-out test
users' ``k`` revealed interactions added to its training edges — the same hyperparameters (``train`` with
the ``lightgcn`` section's overrides), seed and early stopping on the known users' validation split —
and ranks all items for those users against the same targets as the inference without retraining. It is
what retraining buys, and what it costs: ``reports/oracle.json`` has the metrics and the training time
per ``k``; ``artifacts/cold_start_oracle.parquet`` the per-user values (model ``oracle``) for the report's
paired tests. With ``evaluate.cold_start.oracle: false`` (the default) both are written empty at once.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from gnnrec import cold_start as cs
from gnnrec.artifacts import load_graph, load_interaction_data
from gnnrec.config import Params
from gnnrec.evaluation import ranking_metrics_per_user
from gnnrec.graph import csr_from_pairs
from gnnrec.io import read_parquet, write_json, write_parquet
from gnnrec.models import build_model
from gnnrec.paths import Paths
from gnnrec.stages.cold_start_eval import PER_USER_COLUMNS, empty_per_user
from gnnrec.training import InteractionData, prepare_adjacency, resolve_device, train_model

ORACLE_MODEL = "lightgcn"


def run(params: Params, paths: Paths) -> dict[str, Any]:
    enabled = params.evaluate.cold_start.oracle
    out: dict[str, Any] = {"enabled": enabled, "model": ORACLE_MODEL, "k": {}}
    frames = []
    if enabled:
        graph = load_graph(paths)
        data = load_interaction_data(paths, graph)
        roles = read_parquet(paths.split / "cold_users.parquet")
        inter = read_parquet(paths.split / "cold_user_interactions.parquet")
        test = cs.new_entities(inter, "user_id", "item_id", roles).select("test")
        for k in [k for k in params.split.cold_start.k if k >= 1]:
            metrics, per_user, info = retrain_for(params, data, test, k, graph)
            out["k"][f"k={k}"] = {"metrics": metrics, **info}
            frames.append(pd.DataFrame({"model": pd.Series(["oracle"] * len(per_user[0]), dtype="str"),
                                        "kind": pd.Series(["users"] * len(per_user[0]), dtype="str"),
                                        "k": np.full(len(per_user[0]), k, dtype=np.int64),
                                        "id": per_user[0].astype(np.int64),
                                        "ndcg@20": per_user[1]["ndcg@20"], "recall@20": per_user[1]["recall@20"]}))
    write_json(paths.oracle, out)
    write_parquet(paths.oracle_per_user, pd.concat(frames, ignore_index=True)[PER_USER_COLUMNS] if frames
                  else empty_per_user())
    return {"enabled": enabled, "k": {k: v["metrics"].get("ndcg@20") for k, v in out["k"].items()}}


def retrain_for(params: Params, data: InteractionData, test: cs.NewEntities, k: int, graph: dict[str, Any]
                ) -> tuple[dict[str, float], tuple[np.ndarray, dict[str, np.ndarray]], dict[str, Any]]:
    """LightGCN trained on the training edges plus the test users' first ``k`` interactions, scored on
    their other interactions (revealed items masked)."""
    revealed, targets = cs.reveal(test, k, data.n_items)
    new_u = np.repeat(test.ids, [len(r) for r in revealed])
    new_i = torch.cat(revealed).numpy() if revealed else np.zeros(0, np.int64)
    augmented = InteractionData(n_users=data.n_users, n_items=data.n_items,
                                train_user=np.concatenate([data.train_user.numpy(), new_u]),
                                train_item=np.concatenate([data.train_item.numpy(), new_i]),
                                val_user=data.val_user.numpy(), val_item=data.val_item.numpy(),
                                # the revealed interactions are the newest: weight 1 under graph.time_decay
                                train_weight=(None if data.train_weight is None else
                                              np.concatenate([data.train_weight.numpy(), np.ones(len(new_u))])))
    cfg = params.train_for(ORACLE_MODEL)
    device = resolve_device(cfg.device)
    kwargs = {"n_users": data.n_users, "n_items": data.n_items, **params.model(ORACLE_MODEL).architecture()}
    if kwargs.get("user_features"):
        kwargs["n_feature_levels"] = int(graph.get("n_feature_levels", 0))
    torch.manual_seed(params.seed)
    model = build_model(ORACLE_MODEL, **kwargs).prepare(graph)
    t0 = time.perf_counter()
    result = train_model(model, augmented, cfg, metric=cfg.early_stop, seed=params.seed,
                         chunk_size=params.evaluate.chunk_size)
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        user_emb, item_emb = model.embed(prepare_adjacency(augmented.adjacency(), device))
    rows = torch.from_numpy(test.ids)
    exclude = csr_from_pairs(len(test), data.n_items, np.repeat(np.arange(len(test)), [len(r) for r in revealed]),
                             new_i)
    metric_ks = sorted(set(params.evaluate.k) | {20})
    evaluated, per_user = ranking_metrics_per_user(user_emb[rows.to(device)], item_emb, exclude, targets, metric_ks,
                                                   params.evaluate.chunk_size)
    metrics = {name: round(float(v.mean()), 6) if v.numel() else 0.0 for name, v in per_user.items()}
    info = {"train_seconds": round(seconds, 3), "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
            "users": int(evaluated.numel())}
    return metrics, (test.ids[evaluated.cpu().numpy()], {m: v.cpu().numpy() for m, v in per_user.items()}), info


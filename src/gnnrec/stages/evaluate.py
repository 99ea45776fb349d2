"""Stage ``evaluate``: every trained model ranks all items for the test users, once.

For each model of ``params.models`` (in that order): load its checkpoint and the graph, compute the
embeddings, then

- test metrics, training **and** validation items masked → ``reports/metrics.json`` (metrics only,
  rounded to 6 decimals, deterministic);
- validation metrics (training items masked) and the wall time → ``reports/evaluation.json``;
- the top ``max(evaluate.k)`` items of every user with a training interaction (training and validation
  items masked, as for the test ranking), with raw ids → ``artifacts/recommendations.parquet``;
- the held-out new users and items (``split.cold_start``, :mod:`gnnrec.stages.cold_start_eval`): metrics
  per ``k`` under ``metrics.json``'s ``cold_start`` key (``users`` / ``items`` → model → ``k=<k>``), the
  chosen settings, exact-path gap and latency under ``evaluation.json``'s ``cold_start``, per-user values in
  ``artifacts/cold_start_per_user.parquet``. Held-out items are not in the known users' catalogue yet:
  they are masked in the known users' rankings;
- per known test user and model, NDCG and recall at every cut-off → ``artifacts/test_per_user.parquet`` (the
  report's paired comparisons between models).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from gnnrec.artifacts import load_graph, load_interaction_data
from gnnrec.config import Params
from gnnrec.errors import DataError
from gnnrec.evaluation import (
    DirectScores,
    csr_union,
    evaluable_users,
    evaluate_ranking,
    metrics_of_top_lists,
    ranking_metrics_per_user,
    top_k_items,
    top_k_items_masks,
)
from gnnrec.graph import csr_from_pairs
from gnnrec.io import load_torch, read_json, read_parquet, write_json, write_parquet
from gnnrec.models import model_from_checkpoint
from gnnrec.paths import Paths
from gnnrec.social_gates import fake_per_tie, gate_summary
from gnnrec.stages.cold_start_eval import ColdStartInputs, empty_per_user, evaluate_model
from gnnrec.training import prepare_adjacency, resolve_device

RECOMMENDATION_COLUMNS = ["model", "user", "rank", "item", "score"]


def _read(path) -> pd.DataFrame:
    if not path.exists():
        raise DataError("missing input: run the earlier stages first", file=str(path))
    return read_parquet(path)


def _gates(model: Any, graph: dict[str, Any]) -> dict[str, Any]:
    """The summary of a social model's learned tie gates, scored against the known fakes where there are some."""
    with torch.no_grad():
        gates = model.tie_weights().detach().cpu().numpy()
    src, dst = model.social_src.cpu().numpy(), model.social_dst.cpu().numpy()
    fake = None
    if "social_fake" in graph and bool(np.asarray(graph["social_fake"]).any()):
        fake = fake_per_tie(src, dst, int(graph["n_users"]), np.asarray(graph["social_src"]),
                            np.asarray(graph["social_dst"]), np.asarray(graph["social_fake"]))
    return gate_summary(gates, fake)


def _per_user_keys(ks) -> list[str]:
    """The per-user columns of ``test_per_user.parquet``: NDCG and recall at every cut-off."""
    return [f"{metric}@{k}" for k in sorted(ks) for metric in ("ndcg", "recall")]


def run(params: Params, paths: Paths) -> dict[str, Any]:
    graph = load_graph(paths)
    data = load_interaction_data(paths, graph)
    n_users, n_items = data.n_users, data.n_items
    test = _read(paths.split / "test.parquet")
    users_tbl = _read(paths.dataset / "users.parquet").sort_values("user_id")
    items_tbl = _read(paths.dataset / "items.parquet").sort_values("item_id")
    user_raw = users_tbl["raw_id"].astype(str).to_numpy()
    item_raw = items_tbl["raw_id"].astype(str).to_numpy()
    if len(user_raw) != n_users or len(item_raw) != n_items:
        raise DataError(f"id maps ({len(user_raw)} users, {len(item_raw)} items) do not match the graph "
                        f"({n_users} users, {n_items} items): rerun build_graph", file=str(paths.dataset))

    device = resolve_device(params.train.device)
    ks = list(params.evaluate.k)
    chunk = params.evaluate.chunk_size
    adj = prepare_adjacency(data.adjacency(), device)
    train_csr = data.train_csr()
    val_csr = data.val_csr()
    test_csr = csr_from_pairs(n_users, n_items, test["user_id"].to_numpy(np.int64),
                              test["item_id"].to_numpy(np.int64))
    cold = ColdStartInputs(params, paths, graph)
    seen_csr = csr_union(train_csr, val_csr, n_items)                  # masked for test and recommendations
    if len(cold.cold_items):                                            # new items: not in the catalogue yet
        every = np.arange(n_users, dtype=np.int64)
        seen_csr = csr_union(seen_csr, csr_from_pairs(n_users, n_items, np.repeat(every, len(cold.cold_items)),
                                                      np.tile(cold.cold_items, n_users)), n_items)
    rec_users = torch.unique(data.train_user).to(device)               # users with a training interaction
    n_test_users = int(len(evaluable_users(test_csr)))

    metrics: dict[str, dict[str, float]] = {}
    details: dict[str, Any] = {}
    recs = []
    cold_metrics: dict[str, Any] = {"users": {}, "items": {}}
    cold_details: dict[str, Any] = {}
    per_user = []
    known: list[pd.DataFrame] = []
    for name in params.models:
        ckpt_path = paths.model(name)
        if not ckpt_path.exists():
            raise DataError(f"no checkpoint for model {name!r}: run train@{name} first", file=str(ckpt_path))
        t0 = time.perf_counter()
        ckpt = load_torch(ckpt_path)
        if ckpt.get("skipped"):                        # not trainable on this data (train.skip): left out
            details[name] = {"skipped": ckpt["skipped"]}
            continue
        model = model_from_checkpoint(ckpt, graph).to(device).eval()   # + graph buffers
        with torch.no_grad():
            user_emb, item_emb = model.embed(adj)
            if isinstance(user_emb, DirectScores):        # scoring is the cost: one pass ranks test, val and recs
                test_users, test_values, val_m, (u, ids, scores) = _rank_once(
                    user_emb, seen_csr, train_csr, test_csr, val_csr, rec_users, ks, chunk)
                seconds = time.perf_counter() - t0
            else:
                test_users, test_values = ranking_metrics_per_user(user_emb, item_emb, seen_csr, test_csr, ks, chunk)
                seconds = time.perf_counter() - t0
                val_m = evaluate_ranking(user_emb, item_emb, train_csr, val_csr, ks, chunk)
                u, ids, scores = top_k_items(user_emb, item_emb, seen_csr, max(ks), chunk, users=rec_users)
            n = int(test_users.numel())
            test_m = {key: (float(values.sum()) / n if n else 0.0) for key, values in test_values.items()}
        metrics[name] = {key: round(value, 6) for key, value in test_m.items()}
        details[name] = {"seconds": round(seconds, 3), "val": {key: round(v, 6) for key, v in val_m.items()}}
        if hasattr(model, "tie_weights") and getattr(model, "num_ties", 0):    # a social model (and its gates)
            details[name]["social_ties"] = int(model.num_ties)
            if getattr(model, "gate", None) is not None:
                details[name]["gates"] = _gates(model, graph)
        recs.append(_recommendation_frame(name, u.cpu().numpy(), ids.cpu().numpy(), scores.cpu().numpy(),
                                          user_raw, item_raw))
        known.append(pd.DataFrame({"model": name, "user_id": test_users.cpu().numpy().astype(np.int64),
                                   **{key: test_values[key].cpu().numpy() for key in _per_user_keys(ks)}}))
        if cold.active:
            t0 = time.perf_counter()
            m_cold, d_cold, frames = evaluate_model(name, model, model.serving_state(adj), cold)
            d_cold["seconds"] = round(time.perf_counter() - t0, 3)
            for kind in ("users", "items"):
                if m_cold[kind]:
                    cold_metrics[kind][name] = m_cold[kind]
            if m_cold.get("fold_in"):
                cold_metrics["users"][f"{name}:fold-in"] = m_cold["fold_in"]
            if m_cold.get("meta"):
                cold_metrics["users"][f"{name}+meta"] = m_cold["meta"]
            cold_details[name] = d_cold
            per_user.extend(frames)

    oracle = read_json(paths.oracle) if paths.oracle.exists() else {}
    if oracle.get("enabled") and oracle.get("k") and cold.active:       # the retrained reference (stage oracle)
        cold_metrics["users"]["oracle"] = {k: v["metrics"] for k, v in oracle["k"].items()}
        cold_details["oracle"] = {"model": oracle.get("model"), "k": {k: {n: v for n, v in r.items() if n != "metrics"}
                                                                     for k, r in oracle["k"].items()}}
        per_user.append(read_parquet(paths.oracle_per_user))
    if cold.active:
        metrics["cold_start"] = {kind: v for kind, v in cold_metrics.items() if v}
    write_json(paths.metrics, metrics)
    write_json(paths.eval_details, {
        "split": "test", "users_evaluated": n_test_users, "k": ks, "models": details,
        "cold_start": {"k": cold.ks, "test_users": len(cold.test), "val_users": len(cold.val),
                       "items": len(cold.items), "features": cold.side.has_features,
                       "friends": bool(cold.side.friends), "models": cold_details}})
    frame = pd.concat(recs, ignore_index=True) if recs else pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    write_parquet(paths.recommendations, frame)
    columns = ["model", "user_id", *_per_user_keys(ks)]
    write_parquet(paths.test_per_user, pd.concat(known, ignore_index=True) if known else pd.DataFrame(columns=columns))
    write_parquet(paths.cold_start_per_user, pd.concat(per_user, ignore_index=True) if per_user else empty_per_user())
    return {"users_evaluated": n_test_users, "metrics": {m: v for m, v in metrics.items() if m != "cold_start"}}


def _rank_once(direct: DirectScores, seen_csr, train_csr, test_csr, val_csr, rec_users: torch.Tensor, ks: list[int],
               chunk: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, float], tuple]:
    """A model without embeddings (:class:`DirectScores`): every user's scores once, ranked with training
    and validation items masked (test metrics, recommendations) and with training items masked (validation
    metrics) — what the three separate rankings give, at a third of the scoring."""
    device = torch.device(direct.device)
    everyone = torch.unique(torch.cat([evaluable_users(test_csr).to(device), evaluable_users(val_csr).to(device),
                                       rec_users.to(device)]))
    (users, seen_ids, seen_scores), (_, train_ids, _) = top_k_items_masks(direct, None, [seen_csr, train_csr],
                                                                          max(ks), chunk, users=everyone)
    test_users, test_values = metrics_of_top_lists(users, seen_ids, test_csr, ks, direct.n_items)
    val_users, val_values = metrics_of_top_lists(users, train_ids, val_csr, ks, direct.n_items)
    n_val = int(val_users.numel())
    val_m = {key: (float(values.sum()) / n_val if n_val else 0.0) for key, values in val_values.items()}
    keep = torch.isin(users, rec_users.to(device))
    return test_users, test_values, val_m, (users[keep], seen_ids[keep], seen_scores[keep])


def _recommendation_frame(model: str, users: np.ndarray, ids: np.ndarray, scores: np.ndarray,
                          user_raw: np.ndarray, item_raw: np.ndarray) -> pd.DataFrame:
    """Long table of the top lists; masked items (score ``-inf``, only when a user has fewer unmasked
    items than K) are left out."""
    n, k = ids.shape
    rank = np.broadcast_to(np.arange(1, k + 1, dtype=np.int64), (n, k))
    keep = np.isfinite(scores)
    return pd.DataFrame({
        "model": pd.Series(np.full(int(keep.sum()), model), dtype=str),
        "user": pd.Series(user_raw[np.broadcast_to(users[:, None], (n, k))[keep]], dtype=str),
        "rank": rank[keep].astype(np.int64),
        "item": pd.Series(item_raw[ids[keep]], dtype=str),
        "score": scores[keep].astype(np.float32),
    })

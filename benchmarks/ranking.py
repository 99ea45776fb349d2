"""Full-ranking evaluation: gnnrec's chunked evaluator against a plain reference implementation.

Both rank all items for every test user with training and validation items masked, on the same
embeddings (a LightGCN model's propagated embeddings), and must agree on every metric (asserted: a
disagreement fails the benchmark). Timed: the ranking of all test users given the embeddings, medians
over repeats, the sides in turns. The comparison with RecBole's evaluation (propagation included) is
made by :mod:`benchmarks.recbole_bench`, which times gnnrec's side the same way as RecBole's.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from benchmarks.common import BenchData, Result, load_dataset, loadavg, median_ms, time_interleaved
from benchmarks.reference import plain_full_ranking

KS = (10, 20)


class MetricsDisagree(AssertionError):
    """gnnrec's evaluator and the plain reference gave different metrics."""


def seen_pairs(data: BenchData) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation pairs: masked when ranking for test."""
    return np.concatenate([data.train_user, data.val_user]), np.concatenate([data.train_item, data.val_item])


def embeddings(data: BenchData, seed: int = 0, device: str = "cpu", num_layers: int = 3) -> tuple[Tensor, Tensor]:
    """Propagated embeddings of a freshly initialised LightGCN (64 dims), as gnnrec ranks with them."""
    from gnnrec.models import LightGCN
    from gnnrec.training import prepare_adjacency

    torch.manual_seed(seed)
    model = LightGCN(data.n_users, data.n_items, 64, num_layers).to(device).eval()
    adj = prepare_adjacency(data.interaction_data().adjacency(), device)
    with torch.no_grad():
        return model.embed(adj)


def gnnrec_sets(data: BenchData):
    """``(seen, test)`` CSR sets, built once as the pipeline's evaluate stage does."""
    from gnnrec.graph import csr_from_pairs

    return (csr_from_pairs(data.n_users, data.n_items, *seen_pairs(data)),
            csr_from_pairs(data.n_users, data.n_items, data.test_user, data.test_item))


def gnnrec_metrics(data: BenchData, user_emb: Tensor, item_emb: Tensor, ks=KS,
                   chunk_size: Optional[int] = 1024, sets=None) -> dict[str, float]:
    from gnnrec.evaluation import evaluate_ranking

    seen, test = sets if sets is not None else gnnrec_sets(data)
    return evaluate_ranking(user_emb, item_emb, seen, test, ks, chunk_size)


def reference_metrics(data: BenchData, user_emb: Tensor, item_emb: Tensor, ks=KS) -> dict[str, float]:
    return plain_full_ranking(user_emb, item_emb, seen_pairs(data), (data.test_user, data.test_item), ks)


def check_agreement(ours: dict[str, float], ref: dict[str, float], tol: float = 1e-9) -> float:
    """Largest absolute difference; raises :class:`MetricsDisagree` above ``tol`` or on different keys."""
    if set(ours) != set(ref):
        raise MetricsDisagree(f"different metrics: {sorted(ours)} vs {sorted(ref)}")
    worst = max((abs(ours[k] - ref[k]) for k in ours), default=0.0)
    if not worst <= tol or any(not math.isfinite(v) for v in ours.values()):
        diffs = {k: (ours[k], ref[k]) for k in ours if abs(ours[k] - ref[k]) > tol}
        raise MetricsDisagree(f"gnnrec and the plain reference disagree: {diffs}")
    return worst


def run(datasets: list[str], repeats: int = 5, device: str = "cpu", data_root: Optional[str] = None) -> list[Result]:
    results = []
    for name in datasets:
        data = load_dataset(name, data_root)
        user_emb, item_emb = embeddings(data, device=device)
        ours_m = gnnrec_metrics(data, user_emb, item_emb)
        ref_m = reference_metrics(data, user_emb, item_emb)
        worst = check_agreement(ours_m, ref_m)
        sets = gnnrec_sets(data)
        fns = {"ours": lambda d=data, u=user_emb, i=item_emb, s=sets: gnnrec_metrics(d, u, i, sets=s),
               "reference": lambda d=data, u=user_emb, i=item_emb: reference_metrics(d, u, i)}
        times = time_interleaved(fns, repeats=repeats, warmup=1)
        ours, ref = median_ms(times["ours"]), median_ms(times["reference"])
        n_test_users = int(len(np.unique(data.test_user)))
        results.append(Result(
            name, device, "full-ranking evaluation of all test users (given embeddings)", ours,
            "plain reference (user batches, U @ I.T, mask, topk)", ref,
            extra={"repeats": repeats, "test_users": n_test_users, "metrics_agree": True,
                   "max_abs_metric_difference": worst, "ndcg@10": ours_m["ndcg@10"],
                   "loadavg": loadavg(), "threads": torch.get_num_threads()}))
        print(f"[eval] {name}: ours {ours:.1f} ms, plain {ref:.1f} ms; metrics agree (max diff {worst:.1e})",
              flush=True)
    return results

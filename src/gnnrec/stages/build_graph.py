"""Stage ``build_graph``: training interactions + social ties → ``graph.npz`` and ``reports/graph.json``.

The social graph keeps a tie only when the two users' *training* item sets overlap enough
(``graph.social.min_common_items``, ``graph.social.min_jaccard``); validation and test items never leak
into the filter. Where the data carries ground truth about noisy ties (the synthetic default), the
filter's precision and recall at removing them are reported; ``graph.social.noise`` plants known fake ties
among the training users before the filter (:mod:`gnnrec.social_noise`), scored the same way, and
``graph.npz``'s ``social_fake`` marks the kept ties that are known noise. A filter that drops more than
``graph.social.warn_drop_share`` of the ties is warned about (``over_filtered`` in ``reports/graph.json``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from gnnrec.config import Params
from gnnrec.features import encode_table, feature_columns, n_levels, vocabulary
from gnnrec.io import read_parquet, save_arrays, write_json
from gnnrec.paths import Paths
from gnnrec.social_filter import filter_by_taste
from gnnrec.social_noise import plant_fake_ties
from gnnrec.social_ties import filter_social_ties

log = logging.getLogger("gnnrec.build_graph")


def degree_summary(degrees: np.ndarray) -> dict[str, float]:
    d = np.asarray(degrees, dtype=np.float64)
    if len(d) == 0:
        return {"min": 0.0, "p50": 0.0, "mean": 0.0, "p90": 0.0, "max": 0.0}
    return {"min": float(d.min()), "p50": round(float(np.percentile(d, 50)), 3),
            "mean": round(float(d.mean()), 3), "p90": round(float(np.percentile(d, 90)), 3), "max": float(d.max())}


def noise_scores(noise: np.ndarray, keep: np.ndarray) -> dict[str, Any]:
    """How well dropping ties (``~keep``) removed the known noisy ones (``noise``)."""
    dropped = ~keep
    noisy = int(noise.sum())
    dropped_noisy = int((dropped & noise).sum())
    n_dropped = int(dropped.sum())
    return {"noisy_ties": noisy, "dropped_noisy": dropped_noisy, "dropped_genuine": n_dropped - dropped_noisy,
            "precision": round(dropped_noisy / n_dropped, 6) if n_dropped else 0.0,
            "recall": round(dropped_noisy / noisy, 6) if noisy else 0.0}


def _filter(params: Params, n_users: int, n_items: int, tu: np.ndarray, ti: np.ndarray, src: np.ndarray,
            dst: np.ndarray, features: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The kept ties by ``graph.social.method`` and that method's figures for graph.json."""
    cfg = params.graph.social
    if cfg.method == "none":
        return np.ones(len(src), dtype=bool), {}
    if cfg.method == "overlap":
        filt = filter_social_ties(n_users, n_items, tu, ti, src, dst, cfg.min_common_items, cfg.min_jaccard)
        return filt.keep, {"min_common_items": cfg.min_common_items, "min_jaccard": cfg.min_jaccard}
    taste = cfg.taste
    with_features = taste.use_features and "user_feature_codes" in features
    filt = filter_by_taste(n_users, n_items, tu, ti, src, dst, ranks=taste.ranks, null_draws=taste.null_draws,
                           max_lfdr=taste.max_lfdr, seed=params.seed,
                           feature_codes=features.get("user_feature_codes") if with_features else None,
                           n_levels=int(features.get("n_feature_levels", 0)) if with_features else 0)
    return filt.keep, {"pi0": round(filt.pi0, 6), "rank": filt.rank, "pi0_by_rank": filt.pi0_by_rank,
                       "max_lfdr": taste.max_lfdr, "null_draws": taste.null_draws, "with_features": with_features,
                       "similarity_kept_mean": round(float(filt.similarity[filt.keep].mean()), 6)
                       if filt.keep.any() else None}


def time_decay_weights(timestamps: Any, half_life_days: float, file: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """``0.5 ** (age / half_life_days)`` per training interaction (float32, floored at 1e-8 so that no edge
    weighs 0), its age in days counted back from the latest training timestamp (Unix seconds); and its summary
    for ``graph.json``. Every interaction needs a timestamp: a missing one is a :class:`DataError` naming the
    file and the count."""
    from gnnrec.errors import DataError

    ts = pd.Series(timestamps)
    missing = int(ts.isna().sum())
    if missing:
        raise DataError(f"column 'timestamp': {missing} of {len(ts)} training interactions have none; "
                        "graph.time_decay.half_life_days needs a timestamp on every one (or set it to null)",
                        file=str(file))
    t = ts.astype("int64").to_numpy(np.float64)
    age_days = (t.max() - t) / 86400.0 if len(t) else t
    weights = np.maximum(0.5 ** (age_days / float(half_life_days)), 1e-8).astype(np.float32)
    summary = {"half_life_days": float(half_life_days), "latest": int(t.max()) if len(t) else None,
               "weight_mean": round(float(weights.mean()), 6) if len(t) else None,
               "weight_min": round(float(weights.min()), 8) if len(t) else None,
               "share_below_half": round(float((weights < 0.5).mean()), 6) if len(t) else None}
    return weights, summary


def run(params: Params, paths: Paths) -> dict[str, Any]:
    train = read_parquet(paths.split / "train.parquet")
    users = read_parquet(paths.dataset / "users.parquet")
    items = read_parquet(paths.dataset / "items.parquet")
    social = read_parquet(paths.dataset / "social.parquet")
    n_users, n_items = len(users), len(items)
    tu = train["user_id"].to_numpy(np.int64)
    ti = train["item_id"].to_numpy(np.int64)

    stats: dict[str, Any] = {
        "users": n_users, "items": n_items, "train_edges": len(train),
        "density": round(len(train) / (n_users * n_items), 8),
        "user_degree": degree_summary(np.bincount(tu, minlength=n_users)),
        "item_degree": degree_summary(np.bincount(ti, minlength=n_items)),
        "social": None,
    }
    cold_path = paths.split / "cold_users.parquet"
    cold_users = read_parquet(cold_path)["user_id"].to_numpy(np.int64) if cold_path.exists() else np.zeros(0, np.int64)
    # a held-out (new) user is not in the graph: its ties are given to the models at inference only
    touches_cold = social["src"].isin(cold_users).to_numpy() | social["dst"].isin(cold_users).to_numpy()
    held_out_ties = int(touches_cold.sum())
    social = social[~touches_cold].reset_index(drop=True)
    src = social["src"].to_numpy(np.int64)
    dst = social["dst"].to_numpy(np.int64)
    known_noise = social["noise"].to_numpy(dtype=bool) if "noise" in social.columns else None
    kinds = social["kind"].astype(str).to_numpy() if "kind" in social.columns else None
    cfg = params.graph.social
    planted = np.zeros(len(src), dtype=bool)
    if len(social) and cfg.noise.share > 0:     # known fakes, before the filter, among the training users only
        seed = params.seed if cfg.noise.seed is None else cfg.noise.seed
        fake_src, fake_dst = plant_fake_ties(n_users, n_items, tu, ti, src, dst, cfg.noise.share, cfg.noise.kind,
                                             seed)
        src, dst = np.concatenate([src, fake_src]), np.concatenate([dst, fake_dst])
        planted = np.concatenate([planted, np.ones(len(fake_src), dtype=bool)])
        if known_noise is not None:
            known_noise = np.concatenate([known_noise, np.ones(len(fake_src), dtype=bool)])   # fakes are noise
        if kinds is not None:
            kinds = np.concatenate([kinds, np.full(len(fake_src), f"planted {cfg.noise.kind}")])
    features: dict[str, Any] = {}
    columns = feature_columns(users)
    if columns:          # side features as codes over the training users' values (models with user_features)
        table = users.set_index("user_id")[columns].astype(str)
        vocab = vocabulary(table, np.unique(tu))
        features = {"user_feature_codes": encode_table(table.reindex(np.arange(n_users)), vocab),
                    "n_feature_levels": np.int64(n_levels(vocab))}
        stats["user_features"] = {"columns": columns, "levels": int(features["n_feature_levels"])}
    keep = np.zeros(0, dtype=bool)
    if len(src):
        keep, method_stats = _filter(params, n_users, n_items, tu, ti, src, dst, features)
        dropped_share = float((~keep).mean())
        stats["social"] = {
            "ties_in": len(social), "held_out_user_ties": held_out_ties, "planted": int(planted.sum()),
            "method": cfg.method, **method_stats,
            "kept": int(keep.sum()), "dropped": int((~keep).sum()), "dropped_share": round(dropped_share, 6),
            "warn_drop_share": cfg.warn_drop_share, "over_filtered": dropped_share > cfg.warn_drop_share,
            "out_degree_before": degree_summary(np.bincount(src, minlength=n_users)),
            "out_degree_after": degree_summary(np.bincount(src[keep], minlength=n_users)),
            "noise": noise_scores(known_noise, keep) if known_noise is not None else None,
            # per kind of noise, against the genuine ties only (the other kinds left out)
            "noise_by_kind": ({k: noise_scores((kinds == k)[part], keep[part]) for k in sorted(set(kinds) - {"genuine"})
                               for part in [(kinds == k) | (kinds == "genuine")]} if kinds is not None else None),
            "planted_noise": ({"share": cfg.noise.share, "kind": cfg.noise.kind, **noise_scores(planted, keep)}
                              if planted.any() else None),
        }
        if dropped_share > cfg.warn_drop_share:
            why = (f"it estimates that {100 * method_stats['pi0']:.0f}% of the ties are no more alike in taste than "
                   "random pairs" if "pi0" in method_stats else "loosen min_common_items / min_jaccard")
            log.warning("the social filter (graph.social.method = %s) dropped %d of %d ties (%.1f%%, more than "
                        "graph.social.warn_drop_share = %g): the social models train on few ties; %s", cfg.method,
                        int((~keep).sum()), len(keep), 100 * dropped_share, cfg.warn_drop_share, why)
    arrays = {"n_users": np.int64(n_users), "n_items": np.int64(n_items),
              "train_user": tu, "train_item": ti, "social_src": src[keep], "social_dst": dst[keep],
              "social_ties_in": np.int64(len(src)),      # before the filter: 0 when the data has no ties
              # which kept ties are known noise (planted, or marked by the data): to score a model's gate
              "social_fake": (planted | (known_noise if known_noise is not None else False))[keep].astype(np.int8)}
    arrays.update(features)
    if params.graph.time_decay.half_life_days is not None:       # recent interactions weigh more
        arrays["train_weight"], stats["time_decay"] = time_decay_weights(
            train["timestamp"], params.graph.time_decay.half_life_days, paths.split / "train.parquet")
    # NumPy arrays (gnnrec.artifacts.load_graph hands them to the models as tensors): this stage needs no torch
    save_arrays(paths.graph, arrays)
    write_json(paths.graph_stats, stats)
    social_stats = stats["social"] or {}
    return {"users": n_users, "items": n_items, "train_edges": len(train),
            "social_kept": social_stats.get("kept", 0), "social_dropped": social_stats.get("dropped", 0)}

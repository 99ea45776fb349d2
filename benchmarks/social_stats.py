"""The social benchmark's statistics: the paired lift of a variant over LightGCN and the robustness checks."""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np
import pandas as pd

METRICS = ("ndcg@10", "recall@10")
REFERENCE = "lightgcn (no ties)"      # the variant every lift is measured against
TUNED = "filter + gate, β on validation"
BOOTSTRAP = 2000
#: variant → (graph.social.method, social model's attention); lightgcn and sociallgn are separate
VARIANTS = {"no protection": ("none", False), "filter": ("taste", False), "gate": ("none", True),
            "filter + gate": ("taste", True)}


def paired(a: pd.DataFrame, b: pd.DataFrame, seed: int = 0) -> Optional[dict[str, Any]]:
    """``a`` against ``b``: per-user NDCG@10 averaged over the seeds, then the mean difference (relative to
    ``b``'s mean), a 95% bootstrap interval and the Wilcoxon p-value."""
    from scipy.stats import wilcoxon

    ua = a.astype({"ndcg@10": "float64"}).groupby("user_id")["ndcg@10"].mean()
    ub = b.astype({"ndcg@10": "float64"}).groupby("user_id")["ndcg@10"].mean()
    joined = pd.concat([ua.rename("a"), ub.rename("b")], axis=1, join="inner")
    if joined.empty or joined["b"].mean() == 0:
        return None
    diff = (joined["a"] - joined["b"]).to_numpy()
    base = float(joined["b"].mean())
    boots = np.random.default_rng(seed).choice(diff, (BOOTSTRAP, len(diff)), replace=True).mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    return {"users": int(len(diff)), "lift": round(float(diff.mean()) / base, 4),
            "ci": [round(float(lo) / base, 4), round(float(hi) / base, 4)], "p": p}


def checks(table: pd.DataFrame) -> dict[str, Any]:
    """The issue's robustness criteria on this dataset's table (δ = 1 random against δ = 0)."""
    out: dict[str, Any] = {}
    ref = table[table["variant"] == REFERENCE]
    if ref.empty:
        return out
    lg, lg_std = float(ref["ndcg@10_mean"].iloc[0]), float(np.nan_to_num(ref["ndcg@10_std"].iloc[0]))
    at = {(r["kind"], r["delta"], r["variant"]): r for _, r in table.iterrows()}
    for variant in VARIANTS:
        zero, one = at.get(("random", 0.0, variant)), at.get(("random", 1.0, variant))
        if zero is None or one is None:
            continue
        drop = (float(one["ndcg@10_mean"]) - float(zero["ndcg@10_mean"])) / float(zero["ndcg@10_mean"])
        out[variant] = {"change_delta1_vs_0": round(drop, 4), "within_2pct": bool(drop >= -0.02),
                        "vs_lightgcn_delta1": round(float(one["ndcg@10_mean"]) - lg, 4),
                        "not_below_lightgcn_by_more_than_spread": bool(float(one["ndcg@10_mean"]) >= lg - lg_std),
                        "gate_auc_delta1": None if pd.isna(one["gate_auc"]) else round(float(one["gate_auc"]), 4)}
    return out


def summarise(name: str, result: dict[str, Any]) -> dict[str, Any]:
    rows, per_user = result["rows"], result["per_user"]
    table = (rows.groupby(["kind", "delta", "variant"], sort=False)
             .agg(**{f"{m}_mean": (m, "mean") for m in METRICS}, **{f"{m}_std": (m, "std") for m in METRICS},
                  gate_auc=("gate_auc", "mean"), gate_real=("gate_real", "mean"), gate_fake=("gate_fake", "mean"),
                  seeds=("seed", "count"), no_tie_kept=("no_tie_kept", "any"),
                  train_seconds=("train_seconds", "mean"))
             .reset_index())
    reference = per_user[per_user["variant"] == REFERENCE]
    lifts = []
    for (kind, delta, variant), frame in per_user.groupby(["kind", "delta", "variant"], sort=False):
        if variant != REFERENCE:
            lifts.append({"kind": kind, "delta": delta, "variant": variant, **(paired(frame, reference) or {})})
    table = table.merge(pd.DataFrame(lifts), on=["kind", "delta", "variant"], how="left") if lifts else table
    filters = [{"kind": k, "delta": d, "method": m, **v} for (k, d, m), v in result["filters"].items()]
    return {"dataset": name, "table": json.loads(table.to_json(orient="records")), "filters": filters,
            "checks": checks(table), "pending": result.get("pending", []), "tuned": result.get("tuned"),
            "code": sorted(set(rows["code"])) if "code" in rows else []}

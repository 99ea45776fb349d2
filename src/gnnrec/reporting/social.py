"""The report's "Do social ties help here?" section: each social model against LightGCN on this run's test
users (a paired bootstrap over users), by user activity, the social filter's effect and the learned gates,
with a one-line verdict in plain words.

A *social model* is one whose evaluation details carry ``social_ties`` (and, with a learned gate per tie,
``gates``: :mod:`gnnrec.social_gates`); the baseline is
``lightgcn`` when it is among the models. Inputs: ``evaluation.json``, ``graph.json``, the per-user test
table (``artifacts/test_per_user.parquet``) and the training degrees of the users.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from gnnrec.reporting.cold_start import bootstrap_interval, wilcoxon_p

BASELINE = "lightgcn"


def _lift(joined: pd.DataFrame, metric: str, seed: int) -> Optional[dict[str, Any]]:
    """Mean per-user difference (model − baseline) with its bootstrap interval, and the same relative to the
    baseline's mean."""
    if joined.empty:
        return None
    diff = (joined[f"{metric}_m"] - joined[f"{metric}_b"]).to_numpy(dtype=np.float64)
    base = float(joined[f"{metric}_b"].mean())
    lo, hi = bootstrap_interval(diff, seed)
    mean = float(diff.mean())

    def rel(value: Optional[float]) -> Optional[float]:
        return value / base if base > 0 and value is not None else None

    return {"n": int(len(diff)), "model": round(float(joined[f"{metric}_m"].mean()), 6), "baseline": round(base, 6),
            "diff": round(mean, 6), "lo": lo, "hi": hi, "p": wilcoxon_p(diff), "rel": rel(mean), "rel_lo": rel(lo),
            "rel_hi": rel(hi), "significant": lo is not None and hi is not None and (lo > 0 or hi < 0)}


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:+.1f}%"


def social_section(models: Sequence[str], evaluation: Optional[Mapping[str, Any]], graph: Mapping[str, Any],
                   per_user: Optional[pd.DataFrame], degree: Optional[pd.Series], seed: int,
                   metric: str = "ndcg@10") -> Optional[dict[str, Any]]:
    """The section's context; ``None`` when no model used social ties."""
    details = (evaluation or {}).get("models") or {}
    social = [m for m in models if isinstance(details.get(m), Mapping)
              and (details[m].get("gates") or details[m].get("social_ties"))]
    if not social:
        return None
    filt = graph.get("social") or {}
    if per_user is not None and metric not in per_user.columns:
        ndcg = [c for c in per_user.columns if c.startswith("ndcg@")]
        metric = ndcg[0] if ndcg else metric
    rows = []
    for m in social:
        row: dict[str, Any] = {"model": m, "gates": details[m].get("gates") or {}, "overall": None,
                               "by_activity": []}
        if per_user is not None and BASELINE in set(per_user["model"]) and metric in per_user.columns:
            mine = per_user[per_user["model"] == m][["user_id", metric]]
            base = per_user[per_user["model"] == BASELINE][["user_id", metric]]
            joined = mine.merge(base, on="user_id", suffixes=("_m", "_b"))
            row["overall"] = _lift(joined, metric, seed)
            if degree is not None and len(joined):
                d = degree.reindex(joined["user_id"]).fillna(0).to_numpy()
                median = float(np.median(d))
                for label, mask in ((f"sparse users (≤ {median:g} training items)", d <= median),
                                    (f"active users (> {median:g} training items)", d > median)):
                    lift = _lift(joined[mask], metric, seed)
                    if lift is not None:
                        row["by_activity"].append({"label": label, **lift})
        rows.append(row)
    verdict = _verdict(rows, filt, metric)
    return {"metric": metric, "baseline": BASELINE, "rows": rows, "filter": dict(filt), "verdict": verdict,
            "fmt_pct": _pct}


def _verdict(rows: list[dict[str, Any]], filt: Mapping[str, Any], metric: str) -> str:
    """One line in plain words: does the best social model lift the metric over LightGCN, significantly?"""
    scored = [r for r in rows if r["overall"]]
    over = (f" The filter dropped {100 * float(filt.get('dropped_share') or 0):.0f}% of the ties (more than "
            f"graph.social.warn_drop_share), so the social models saw few." if filt.get("over_filtered") else "")
    if not scored:
        return (f"No comparison: add {BASELINE} to models to measure what the social ties add." + over).strip()
    best = max(scored, key=lambda r: r["overall"]["diff"])
    o = best["overall"]
    ci = f"95% interval {_pct(o['rel_lo'])} to {_pct(o['rel_hi'])}, {o['n']} test users"
    sparse = next((a for a in best["by_activity"] if a["label"].startswith("sparse")), None)
    tail = f"; for sparse users {_pct(sparse['rel'])}" if sparse else ""
    if o["significant"] and o["diff"] > 0:
        head = f"Yes: {best['model']} lifts {metric} over {BASELINE} by {_pct(o['rel'])} ({ci}){tail}."
    elif o["significant"]:
        head = f"No, they hurt: {best['model']} is {_pct(o['rel'])} on {metric} against {BASELINE} ({ci}){tail}."
    else:
        head = (f"Not measurably: {best['model']} is {_pct(o['rel'])} on {metric} against {BASELINE}, within the "
                f"noise ({ci}){tail}.")
    return head + over

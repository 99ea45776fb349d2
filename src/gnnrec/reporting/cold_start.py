"""The "New users" section: how well each model serves users (and items) it never trained on.

Inputs (all written by the evaluate stage, all optional): the ``cold_start`` key of ``reports/metrics.json``
(``users`` / ``items`` → model → ``k=<k>`` → ``metric@K``), the ``cold_start`` key of
``reports/evaluation.json`` (held-out counts, the side information used, per model the chosen settings, the
standard errors, the exact path's NDCG@20 and gap, the served path's latency) and
``artifacts/cold_start_per_user.parquet`` (one row per held-out user or item, model and ``k``), from which the
paired tests against popularity and MF are computed here.

:func:`cold_start_section` is a pure function of what was read; it returns ``None`` when ``metrics.json`` has
no ``cold_start`` key (cold start off, or a run from before it existed). Every sentence of the verdict is
built from the numbers; nothing is claimed that the tables do not show.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from gnnrec.reporting.formatting import MISSING, fmt_float, fmt_int, fmt_seconds, fmt_value, is_num

#: the metric of the section (what the evaluate stage's standard errors, exact path and per-user file hold)
METRIC = "ndcg@20"
#: the models compared against (when they were evaluated), in this order
BASELINES = ("popularity", "mf")
#: drawn as dashed reference lines: the popularity baseline and the retrained oracle
POPULARITY, ORACLE = "popularity", "oracle"
BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95
# Bootstrap resamples drawn at once (bounds the index matrix at ~2 million entries).
_BOOTSTRAP_CELLS = 2_000_000


def parse_k(key: Any) -> Optional[int]:
    """``"k=3"`` → 3; anything else → ``None``."""
    m = re.fullmatch(r"k=(\d+)", str(key))
    return int(m.group(1)) if m else None


def model_order(models: Sequence[str], present: Sequence[str]) -> list[str]:
    """The configured models that are ``present``, then the others (sorted), the oracle last."""
    present_set = set(present)
    out = [m for m in models if m in present_set and m != ORACLE]
    out += sorted(m for m in present_set if m not in out and m != ORACLE)
    if ORACLE in present_set:
        out.append(ORACLE)
    return out


def side_label(features: Optional[bool], friends: Optional[bool]) -> str:
    """What the k = 0 row used to answer a user with no interaction: ``"with features, with friends"``,
    ``"no side information"``, or ``""`` when the evaluation details are missing."""
    if features is None and friends is None:
        return ""
    used = [label for flag, label in ((features, "with features"), (friends, "with friends")) if flag]
    return ", ".join(used) if used else "no side information"


def bootstrap_interval(diff: np.ndarray, seed: int, samples: int = BOOTSTRAP_SAMPLES,
                       level: float = LEVEL) -> tuple[Optional[float], Optional[float]]:
    """Percentile bootstrap interval of the mean of ``diff`` (seeded: the same values give the same
    interval); ``(None, None)`` with fewer than two values."""
    diff = np.asarray(diff, dtype=np.float64)
    n = diff.size
    if n < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = np.empty(samples, dtype=np.float64)
    step = max(1, _BOOTSTRAP_CELLS // n)
    for start in range(0, samples, step):
        stop = min(samples, start + step)
        means[start:stop] = diff[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def wilcoxon_p(diff: np.ndarray) -> Optional[float]:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (scipy), ``None`` when scipy is missing
    or every difference is zero."""
    try:
        from scipy.stats import wilcoxon
    except ImportError:  # pragma: no cover - scipy is in requirements.lock
        return None
    diff = np.asarray(diff, dtype=np.float64)
    if diff.size < 2 or not np.any(diff != 0):
        return None
    try:
        return float(wilcoxon(diff).pvalue)
    except ValueError:
        return None


def paired_test(per_user: pd.DataFrame, model: str, baseline: str, kind: str, k: int, seed: int,
                metric: str = METRIC) -> Optional[dict[str, Any]]:
    """``model`` minus ``baseline`` on ``metric``, per held-out user (item) both scored at ``k``: the mean
    difference, its bootstrap interval, the Wilcoxon p-value and whether the interval excludes 0."""
    sel = per_user[(per_user["kind"] == kind) & (per_user["k"] == k)]
    a = sel.loc[sel["model"] == model, ["id", metric]]
    b = sel.loc[sel["model"] == baseline, ["id", metric]]
    pairs = a.merge(b, on="id", suffixes=("_m", "_b"))
    if pairs.empty:
        return None
    diff = (pairs[f"{metric}_m"] - pairs[f"{metric}_b"]).to_numpy(dtype=np.float64)
    lo, hi = bootstrap_interval(diff, seed)
    significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
    direction = "better" if significant and lo > 0 else "worse" if significant else "no difference"
    return {"model": model, "baseline": baseline, "k": k, "n": int(diff.size), "diff": float(diff.mean()),
            "lo": lo, "hi": hi, "p": wilcoxon_p(diff), "significant": significant, "direction": direction}


def _signed(value: Optional[float]) -> str:
    return f"{value:+.4f}" if is_num(value) else MISSING


def _interval(lo: Optional[float], hi: Optional[float]) -> str:
    return f"[{lo:+.4f}, {hi:+.4f}]" if is_num(lo) and is_num(hi) else MISSING


def _fmt_p(p: Optional[float]) -> str:
    if not is_num(p):
        return MISSING
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def _per_user_stats(per_user: Optional[pd.DataFrame], kind: str, model: str, k: int,
                    metric: str = METRIC) -> tuple[Optional[int], Optional[float]]:
    """``(n, standard error)`` of ``metric`` from the per-user values (the fallback of evaluation.json's)."""
    if per_user is None:
        return None, None
    vals = per_user.loc[(per_user["kind"] == kind) & (per_user["model"] == model) & (per_user["k"] == k), metric]
    vals = vals.to_numpy(dtype=np.float64)
    if vals.size == 0:
        return None, None
    se = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else None
    return int(vals.size), se


def _kind_table(kind: str, models: Sequence[str], by_model: Mapping[str, Mapping[str, Any]],
                details: Mapping[str, Any], per_user: Optional[pd.DataFrame], side: str) -> Optional[dict]:
    """Rows = k, columns = models: mean ± standard error of NDCG@20 and the number of users (items)."""
    ks = sorted({k for m in models for key in (by_model.get(m) or {}) if (k := parse_k(key)) is not None})
    if not ks or not models:
        return None
    rows, series = [], {m: {"k": [], "mean": [], "se": []} for m in models}
    for k in ks:
        cells, ns = [], []
        means = {}
        for m in models:
            v = ((by_model.get(m) or {}).get(f"k={k}") or {}).get(METRIC)
            means[m] = float(v) if is_num(v) else None
        served = [v for m, v in means.items() if v is not None and m != ORACLE]
        best = max(served) if served else None
        for m in models:
            det = (((details.get(m) or {}).get(kind) or {}).get(f"k={k}") or {})
            n, se = det.get("n"), det.get(f"{METRIC}_se")
            n_pu, se_pu = _per_user_stats(per_user, kind, m, k)
            n = int(n) if is_num(n) else n_pu
            se = float(se) if is_num(se) else se_pu
            mean = means[m]
            if mean is not None and n is not None:
                ns.append(n)
            text = MISSING if mean is None else (f"{mean:.4f} ± {se:.4f}" if se is not None else f"{mean:.4f}")
            cells.append({"model": m, "mean": mean, "se": se, "n": n, "text": text,
                          "best": mean is not None and m != ORACLE and mean == best})
            if mean is not None:
                series[m]["k"].append(k)
                series[m]["mean"].append(mean)
                series[m]["se"].append(se)
        n_text = MISSING if not ns else (
            fmt_int(ns[0]) if min(ns) == max(ns) else f"{fmt_int(min(ns))}–{fmt_int(max(ns))}")
        label = f"k = {k}"
        if k == 0 and side:
            label += f" ({side})"
        rows.append({"k": k, "label": label, "n": n_text, "cells": cells})
    return {"kind": kind, "models": list(models), "ks": ks, "rows": rows, "series": series}


def _best_served(table: Mapping[str, Any], k: int) -> Optional[tuple[str, float]]:
    row = next(r for r in table["rows"] if r["k"] == k)
    cands = [(c["model"], c["mean"]) for c in row["cells"] if c["mean"] is not None and c["model"] != ORACLE]
    if not cands:
        return None
    return max(cands, key=lambda mc: mc[1])


def _join(parts: Sequence[str]) -> str:
    parts = list(parts)
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def verdict(users: Optional[Mapping[str, Any]], tests: Sequence[Mapping[str, Any]]) -> list[str]:
    """Sentences from the numbers: the best served model at each k, whether it is significantly above
    popularity there, and how close the best one comes to the retrained oracle at the largest k."""
    if not users:
        return []
    out = []
    best = {k: b for k in users["ks"] if (b := _best_served(users, k)) is not None}
    if not best:
        return []
    out.append("Best served model on new users' NDCG@20: "
               + "; ".join(f"k = {k}: {m} ({v:.4f})" for k, (m, v) in best.items()) + ".")
    vs_pop = {(t["model"], t["k"]): t for t in tests if t["baseline"] == POPULARITY}
    if vs_pop or any(m == POPULARITY for m, _ in best.values()):
        groups: dict[str, list[str]] = {"better": [], "worse": [], "no difference": [], "itself": [], "untested": []}
        for k, (m, _) in best.items():
            if m == POPULARITY:
                groups["itself"].append(str(k))
            elif (m, k) in vs_pop:
                groups[vs_pop[(m, k)]["direction"]].append(str(k))
            else:
                groups["untested"].append(str(k))
        parts = []
        if groups["better"]:
            parts.append(f"significantly above popularity at k = {_join(groups['better'])}")
        if groups["no difference"]:
            parts.append(f"not significantly different from it at k = {_join(groups['no difference'])}")
        if groups["worse"]:
            parts.append(f"significantly below it at k = {_join(groups['worse'])}")
        if groups["untested"]:
            parts.append(f"untested at k = {_join(groups['untested'])} (no per-user values)")
        sentence = ""
        if parts:
            sentence = f"The best model is {', '.join(parts)} ({int(LEVEL * 100)}% bootstrap interval of the " \
                       f"paired per-user difference)"
        if groups["itself"]:
            lead = f"popularity itself is best at k = {_join(groups['itself'])}"
            sentence = f"{sentence}; {lead}" if sentence else lead[0].upper() + lead[1:]
        if sentence:
            out.append(sentence + ".")
    k_max = max(best)
    row = next(r for r in users["rows"] if r["k"] == k_max)
    oracle = next((c["mean"] for c in row["cells"] if c["model"] == ORACLE), None)
    if oracle:
        m, v = best[k_max]
        out.append(f"At k = {k_max}, {m} reaches {100 * v / oracle:.0f}% of the retrained oracle's NDCG@20 "
                   f"({v:.4f} vs {oracle:.4f}).")
    return out


def _settings_text(det: Mapping[str, Any]) -> str:
    parts = []
    if is_num(det.get("shrink")):
        parts.append(f"shrink={float(det['shrink']):g}")
    for key, value in (det.get("settings") or {}).items():
        parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={fmt_value(value)}")
    return ", ".join(parts) or MISSING


def cold_start_section(models: Sequence[str], cold_metrics: Optional[Mapping[str, Any]],
                       cold_eval: Optional[Mapping[str, Any]], per_user: Optional[pd.DataFrame],
                       training: Sequence[Mapping[str, Any]], seed: int) -> Optional[dict[str, Any]]:
    """The section's context, ``None`` without cold-start metrics.

    ``cold_metrics``: ``metrics.json["cold_start"]``; ``cold_eval``: ``evaluation.json["cold_start"]``
    (may be ``None``); ``per_user``: the per-user table (``None``: no paired tests); ``training``: the
    training section's rows (for the retraining time); ``seed``: seeds the bootstrap.
    """
    if not isinstance(cold_metrics, Mapping) or not cold_metrics:
        return None
    cold_eval = cold_eval if isinstance(cold_eval, Mapping) else {}
    details = cold_eval.get("models") or {}
    features = cold_eval.get("features") if isinstance(cold_eval.get("features"), bool) else None
    friends = cold_eval.get("friends") if isinstance(cold_eval.get("friends"), bool) else None
    side = side_label(features, friends)
    if per_user is not None:
        per_user = per_user.assign(model=per_user["model"].astype(str), kind=per_user["kind"].astype(str),
                                   k=per_user["k"].astype("int64"))

    tables = {}
    for kind in ("users", "items"):
        by_model = cold_metrics.get(kind)
        if isinstance(by_model, Mapping) and by_model:
            order = model_order(models, [str(m) for m in by_model])
            tables[kind] = _kind_table(kind, order, by_model, details, per_user, side if kind == "users" else "")
        else:
            tables[kind] = None
    users, items = tables["users"], tables["items"]

    tests: list[dict[str, Any]] = []
    test_groups = []
    if users is not None and per_user is not None and len(per_user):
        scored = set(per_user.loc[per_user["kind"] == "users", "model"])
        for baseline in BASELINES:
            if baseline not in scored:
                continue
            rows = []
            for k in users["ks"]:
                for m in users["models"]:
                    if m == baseline or m not in scored or (baseline != POPULARITY and m == POPULARITY):
                        continue
                    t = paired_test(per_user, m, baseline, "users", k, seed)
                    if t is None:
                        continue
                    t.update({"diff_text": _signed(t["diff"]), "interval_text": _interval(t["lo"], t["hi"]),
                              "p_text": _fmt_p(t["p"]), "n_text": fmt_int(t["n"])})
                    rows.append(t)
            if rows:
                test_groups.append({"baseline": baseline, "rows": rows})
                tests.extend(rows)

    detail_order = model_order(models, [str(x) for x in details])
    exact_rows = []
    for m in detail_order:
        det = details.get(m) or {}
        for key, value in (det.get("exact") or {}).items():
            k = parse_k(key)
            if k is None:
                continue
            served = (((cold_metrics.get("users") or {}).get(m) or {}).get(key) or {}).get(METRIC)
            exact = (value or {}).get(METRIC)
            gap = (det.get("gap") or {}).get(key)
            if not is_num(gap) and is_num(served) and is_num(exact):
                gap = float(served) - float(exact)
            exact_rows.append({"model": m, "k": k, "served": fmt_float(served), "exact": fmt_float(exact),
                               "gap": _signed(gap)})
    exact_rows.sort(key=lambda r: (detail_order.index(r["model"]), r["k"]))

    by_train = {row["model"]: row for row in training}
    latency_rows = []
    for m in detail_order:
        det = details.get(m) or {}
        lat = det.get("latency_ms")
        t = by_train.get(m) or {}
        train_s = t.get("train_seconds") if t.get("trained", True) else None
        ratio = None
        if is_num(lat) and float(lat) > 0 and is_num(train_s) and float(train_s) > 0:
            ratio = float(train_s) * 1000.0 / float(lat)
        if not is_num(lat) and not det.get("settings") and not is_num(det.get("shrink")):
            continue
        latency_rows.append({
            "model": m, "settings": _settings_text(det),
            "latency_ms": float(lat) if is_num(lat) else None,
            "latency_text": f"{float(lat):.3g} ms" if is_num(lat) else MISSING,
            "latency_k": det.get("latency_k"),
            "train_seconds": float(train_s) if is_num(train_s) else None,
            "train_text": fmt_seconds(train_s) if is_num(train_s) and float(train_s) > 0 else MISSING,
            "ratio": ratio, "ratio_text": f"{ratio:,.0f}×" if ratio is not None else MISSING,
            "seconds_text": fmt_seconds(det.get("seconds")),
        })

    colored = list(dict.fromkeys((users or {}).get("models", []) + (items or {}).get("models", [])))
    return {
        "metric": METRIC,
        "level": int(LEVEL * 100),
        "bootstrap_samples": BOOTSTRAP_SAMPLES,
        "side": side,
        "counts": {"test_users": cold_eval.get("test_users"), "val_users": cold_eval.get("val_users"),
                   "items": cold_eval.get("items")},
        "models": colored,
        "references": [m for m in (POPULARITY, ORACLE) if m in colored],
        "users": users,
        "items": items,
        "tests": test_groups,
        "per_user": per_user is not None,
        "exact": exact_rows,
        "latency": latency_rows,
        "verdict": verdict(users, tests),
    }


__all__ = ["METRIC", "BASELINES", "POPULARITY", "ORACLE", "parse_k", "model_order", "side_label",
           "bootstrap_interval", "wilcoxon_p", "paired_test", "verdict", "cold_start_section"]

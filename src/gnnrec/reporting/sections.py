"""The report's section builders: pure functions of what :func:`gnnrec.reporting.context.build_context`
read, one plain dict (or list of rows) per section of the report.

Here: the dataset & validation section (:func:`dataset_section`), the graph (:func:`graph_section`), the
model comparison table (:func:`metrics_table`, with :func:`add_cost_columns`), the training rows
(:func:`training_section`) and the stage timings (:func:`timings_section`). The other sections have their
own modules (:mod:`~gnnrec.reporting.cold_start`, :mod:`~gnnrec.reporting.examples`); the context module
re-exports every name here.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from gnnrec.config import Params
from gnnrec.reporting.formatting import (
    METRIC_LABELS,
    STOP_LABELS,
    fmt_float,
    fmt_hyperparameter,
    fmt_int,
    fmt_seconds,
    is_num,
    metric_label,
    metric_sort_key,
)

REPAIR_LABELS = {
    "duplicate_interactions_merged": "Duplicate interactions merged",
    "social_self_loops_dropped": "Social self-loops dropped",
    "social_duplicates_dropped": "Duplicate social ties dropped",
    "social_unknown_users_dropped": "Social ties naming unknown users dropped",
}
#: the columns :func:`add_cost_columns` appends to a metrics table
COST_COLUMNS = ("Training time", "Parameters", "Best epoch")
_DEGREE_KEYS = ("min", "p50", "mean", "p90", "max")


def dataset_section(params: Params, validation: Mapping[str, Any], manifest: Optional[Mapping]) -> dict:
    """Source, table statistics, repairs, filters and the validation checks (flagged ones apart)."""
    stats = {k: None for k in ("users", "items", "interactions", "social_ties", "has_timestamps",
                               "has_item_names", "has_social")}
    stats.update(validation.get("stats") or {})
    repairs = [{"key": k, "label": REPAIR_LABELS.get(k, k.replace("_", " ").capitalize()), "count": v}
               for k, v in (validation.get("repairs") or {}).items()]
    filt = validation.get("filters") or {}
    filters = [
        {"label": "Minimum rating", "setting": "off" if params.data.min_rating is None
            else f"rating ≥ {params.data.min_rating:g}", "dropped": filt.get("min_rating_dropped")},
        {"label": "k-core", "setting": "off" if params.data.k_core is None else f"k = {params.data.k_core}",
         "dropped": filt.get("k_core_dropped_interactions")},
    ]
    known = {"min_rating_dropped", "k_core_dropped_interactions"}
    filters += [{"label": k.replace("_", " ").capitalize(), "setting": "", "dropped": v}
                for k, v in filt.items() if k not in known]
    tables, flagged, all_checks = [], [], []
    for name, table in (validation.get("tables") or {}).items():
        if not table:
            tables.append({"name": name, "present": False, "file": None, "rows": None, "checks": 0,
                           "failed": 0})
            continue
        checks = table.get("checks") or []
        tables.append({"name": name, "present": True, "file": table.get("file"), "rows": table.get("rows"),
                       "checks": len(checks), "failed": sum(1 for c in checks if not c.get("success", True))})
        for c in checks:
            row = {"table": name, "expectation": c.get("expectation", ""), "column": c.get("column"),
                   "kind": c.get("kind", ""), "success": bool(c.get("success", True)),
                   "unexpected_count": c.get("unexpected_count", 0) or 0,
                   "examples": [str(e) for e in (c.get("examples") or [])], "message": c.get("message", "")}
            all_checks.append(row)
            if not row["success"] or row["unexpected_count"]:
                flagged.append(row)
    return {
        "source": (manifest or {}).get("source") or params.data.source,
        "path": (manifest or {}).get("path") or params.data.path,
        "success": bool(validation.get("success", True)),
        "strict": bool(validation.get("strict", params.validate.strict)),
        "stats": stats,
        "repairs": repairs,
        "repairs_total": sum(int(r["count"] or 0) for r in repairs),
        "filters": filters,
        "tables": tables,
        "flagged_checks": flagged,
        "all_checks": all_checks,
        "failures": len(validation.get("failures") or []),
    }


def _degree_row(label: str, summary: Optional[Mapping[str, Any]]) -> dict:
    summary = summary or {}
    return {"label": label, "values": [summary.get(k) for k in _DEGREE_KEYS]}


def graph_section(graph: Mapping[str, Any]) -> dict:
    """Graph size, density, degree summaries and the social filter's counts (``social`` None without one)."""
    social = graph.get("social")
    social_ctx = None
    if social:
        noise = social.get("noise")
        ties_in = social.get("ties_in") or 0
        total = ties_in + (social.get("planted") or 0)
        planted = social.get("planted_noise")
        social_ctx = {
            "ties_in": ties_in, "kept": social.get("kept"), "dropped": social.get("dropped"),
            "dropped_share": social.get("dropped_share", (social.get("dropped") or 0) / total if total else None),
            "planted": social.get("planted") or 0, "planted_noise": dict(planted) if planted else None,
            "over_filtered": bool(social.get("over_filtered")), "warn_drop_share": social.get("warn_drop_share"),
            "method": social.get("method", "overlap"), "pi0": social.get("pi0"), "rank": social.get("rank"),
            "max_lfdr": social.get("max_lfdr"), "with_features": social.get("with_features"),
            "min_common_items": social.get("min_common_items"), "min_jaccard": social.get("min_jaccard"),
            "degrees": [_degree_row("Out-degree before filter", social.get("out_degree_before")),
                        _degree_row("Out-degree after filter", social.get("out_degree_after"))],
            "noise": dict(noise) if noise else None,
        }
    return {
        "users": graph.get("users"), "items": graph.get("items"), "train_edges": graph.get("train_edges"),
        "density": graph.get("density"),
        "degree_keys": ["min", "median", "mean", "p90", "max"],
        "degrees": [_degree_row("Users (items per user)", graph.get("user_degree")),
                    _degree_row("Items (users per item)", graph.get("item_degree"))],
        "social": social_ctx,
        "time_decay": dict(graph["time_decay"]) if graph.get("time_decay") else None,
    }


def metrics_table(models: Sequence[str], metrics: Mapping[str, Mapping[str, Any]], primary: str) -> dict:
    """Rows = models, columns = metric@K sorted by K then metric; best value per column flagged, and the
    best model on ``primary`` (the last column when ``primary`` was not evaluated)."""
    keys = sorted({k for m in models for k in (metrics.get(m) or {})}, key=metric_sort_key)
    best = {}
    for key in keys:
        vals = [float(metrics[m][key]) for m in models if is_num((metrics.get(m) or {}).get(key))]
        best[key] = max(vals) if vals else None
    rows = []
    for m in models:
        present = m in metrics
        cells = []
        for key in keys:
            v = (metrics.get(m) or {}).get(key)
            v = float(v) if is_num(v) else None
            cells.append({"key": key, "value": v, "text": fmt_float(v),
                          "best": v is not None and best[key] is not None and v == best[key]})
        rows.append({"model": m, "present": present, "cells": cells})
    groups: list[dict] = []
    for key in keys:
        _, _, k = key.partition("@")
        label = f"@{k}" if k else ""
        if groups and groups[-1]["k"] == label:
            groups[-1]["span"] += 1
        else:
            groups.append({"k": label, "span": 1})
    columns = [{"key": k, "label": metric_label(k), "short": METRIC_LABELS.get(k.partition("@")[0], k),
                "best": best[k]} for k in keys]
    if primary not in keys:
        primary = keys[-1] if keys else primary
    best_model, best_value = None, None
    for m in models:
        v = (metrics.get(m) or {}).get(primary)
        if is_num(v) and (best_value is None or float(v) > best_value):
            best_model, best_value = m, float(v)
    return {"columns": columns, "groups": groups, "rows": rows, "primary": primary,
            "best_model": best_model, "best_value": best_value}


def training_section(params: Params, models: Sequence[str], summaries: Mapping[str, Optional[Mapping]],
                     evaluation: Optional[Mapping]) -> list[dict]:
    """One row per model from its training summary (``available`` False without one), with its
    evaluation time and, when the summary carries them, its ``traits`` and ``graph_model`` flag."""
    rows = []
    eval_models = (evaluation or {}).get("models") or {}
    for m in models:
        summary = summaries.get(m)
        s = summary or {}
        hp = s.get("hyperparameters") or {}
        rows.append({
            "model": m, "available": summary is not None,
            "epochs_run": s.get("epochs_run"), "best_epoch": s.get("best_epoch"), "best_val": s.get("best_val"),
            "metric": s.get("early_stop_metric") or params.train.early_stop,
            "train_seconds": s.get("train_seconds"), "fit_seconds": s.get("fit_seconds"), "n_params": s.get("n_params"),
            "stopped": s.get("stopped"), "stopped_label": STOP_LABELS.get(s.get("stopped"), s.get("stopped") or "—"),
            "device": s.get("device"),
            "eval_seconds": (eval_models.get(m) or {}).get("seconds"),
            "hyperparameters": ", ".join(f"{k}={fmt_hyperparameter(v)}" for k, v in hp.items()),
            "trained": s.get("stopped") not in (None, "no_training"),
            "traits": s.get("traits"), "graph_model": s.get("graph_model"), "description": s.get("description"),
        })
    return rows


def add_cost_columns(table: dict, training: Sequence[Mapping[str, Any]]) -> None:
    """Training time (a training-free model's fit time, marked ``(fit)``), parameter count and the epoch the
    validation score picked (of the epochs run), next to each model's test metrics, so that quality and cost
    read side by side."""
    by_model = {row["model"]: row for row in training}
    table["extra_columns"] = list(COST_COLUMNS)
    for row in table["rows"]:
        t = by_model.get(row["model"]) or {}
        best, run, trained = t.get("best_epoch"), t.get("epochs_run"), t.get("trained", True)
        epoch = "—" if best is None or not trained else (
            f"{fmt_int(best)} of {fmt_int(run)}" if run is not None else fmt_int(best))
        fit = t.get("fit_seconds")
        cost = fmt_seconds(t.get("train_seconds")) if trained else (
            f"{fmt_seconds(fit)} (fit)" if is_num(fit) else "—")      # a training-free model: its one-pass fit
        row["extra"] = [cost, fmt_int(t.get("n_params")), epoch]


def timings_section(rows: Optional[list[dict[str, Any]]], notes: list[str]) -> Optional[dict]:
    """Stage timing rows sorted by start time, each with its share of the total; ``None`` without any."""
    if rows is None:
        return None
    if not rows:
        notes.append("Stage timings: no timing files found.")
        return None
    rows = sorted(rows, key=lambda r: (r["started"], r["stage"]))
    total = sum(float(r["seconds"]) for r in rows if is_num(r["seconds"]))
    for r in rows:
        r["share"] = float(r["seconds"]) / total if total and is_num(r["seconds"]) else 0.0
    return {"rows": rows, "total": total}

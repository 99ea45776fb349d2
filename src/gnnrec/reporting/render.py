"""Report context and rendering: read every stage's outputs into one plain dict, render it as
self-contained HTML (inline CSS, figures as base64 data URIs, no external resource) and as Markdown.

:func:`build_context` is the only function that touches files; :func:`render_html`,
:func:`render_markdown` and :func:`render_summary_markdown` are pure functions of the context.
Required inputs are ``reports/validation.json``, ``reports/graph.json`` and ``reports/metrics.json``;
everything else (social graph, training histories, recommendations, timings, manifest…) is optional
and its absence is stated in the report's notes.

Escaping: the HTML environment autoescapes every value (item names, ids, paths come from user data);
Markdown cells go through :func:`md_escape` (``|``, newlines and Markdown/HTML punctuation escaped).
"""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import jinja2
import numpy as np
import pandas as pd
import yaml

from gnnrec.config import METRIC_NAMES, Params, params_to_dict
from gnnrec.errors import DataError
from gnnrec.io import read_json
from gnnrec.paths import Paths
from gnnrec.reporting import figures as figs
from gnnrec.reporting import provenance as prov

TEMPLATES = Path(__file__).resolve().parent / "templates"
METRIC_LABELS = {"recall": "Recall", "ndcg": "NDCG", "precision": "Precision", "hitrate": "HitRate"}
REPAIR_LABELS = {
    "duplicate_interactions_merged": "Duplicate interactions merged",
    "social_self_loops_dropped": "Social self-loops dropped",
    "social_duplicates_dropped": "Duplicate social ties dropped",
    "social_unknown_users_dropped": "Social ties naming unknown users dropped",
}
STOP_LABELS = {
    "early_stop": "early stop",
    "max_epochs": "max epochs",
    "max_seconds": "time budget",
    "no_training": "no training",
}
# Candidates read from recommendations.parquet when picking example users (pyarrow filter size).
_EXAMPLE_CANDIDATES_EXTRA = 50


# ============================================================================ formatting helpers
def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def fmt_float(value: Any, digits: int = 4) -> str:
    """``0.12345`` → ``"0.1235"``; ``None``/NaN → ``"—"``."""
    return f"{float(value):.{digits}f}" if _is_num(value) else "—"


def fmt_int(value: Any) -> str:
    """``12345`` → ``"12,345"``; ``None`` → ``"—"``."""
    if isinstance(value, bool):
        return str(value)
    return f"{int(value):,}" if _is_num(value) else "—"


def fmt_seconds(value: Any) -> str:
    """``3.21`` → ``"3.2 s"``, ``125`` → ``"2 min 05 s"``, ``3725`` → ``"1 h 02 min"``."""
    if not _is_num(value):
        return "—"
    s = float(value)
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60)):02d} s"
    return f"{int(s // 3600)} h {int(round((s % 3600) / 60)):02d} min"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """``0.1234`` → ``"12.3%"``."""
    return f"{100 * float(value):.{digits}f}%" if _is_num(value) else "—"


def fmt_density(value: Any) -> str:
    if not _is_num(value):
        return "—"
    v = float(value)
    return f"{v:.3e} ({100 * v:.3g}%)" if v < 1e-3 else f"{v:.4f} ({100 * v:.3g}%)"


def fmt_value(value: Any) -> str:
    """Generic cell: ints with separators, floats with 4 significant decimals, None → —."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return fmt_int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "—"
        return f"{float(value):.4g}"
    return str(value)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md_escape(value: Any) -> str:
    """Text safe inside a Markdown table cell: ``|`` and Markdown/HTML punctuation backslash-escaped,
    line breaks turned into spaces (``<script>`` shows as text, never as a tag)."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def metric_label(key: str) -> str:
    """``"ndcg@20"`` → ``"NDCG@20"``."""
    name, sep, k = str(key).partition("@")
    return f"{METRIC_LABELS.get(name, name)}{sep}{k}"


def _metric_sort_key(key: str) -> tuple:
    name, _, k = str(key).partition("@")
    order = METRIC_NAMES.index(name) if name in METRIC_NAMES else len(METRIC_NAMES)
    return (int(k) if k.isdigit() else 10**9, order, name)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _md_fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


# ================================================================================ input reading
def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _require_json(path: Path, root: Path) -> Any:
    if not Path(path).is_file():
        raise DataError("missing input of the report stage (run the stages before it)", file=_rel(path, root))
    try:
        return read_json(path)
    except ValueError as exc:
        raise DataError(f"not valid JSON: {exc}", file=_rel(path, root)) from None


def _optional_json(path: Path, root: Path, notes: list[str], what: str) -> Any:
    if not Path(path).is_file():
        notes.append(f"{what}: {_rel(path, root)} not found; section left out.")
        return None
    try:
        return read_json(path)
    except ValueError as exc:
        notes.append(f"{what}: {_rel(path, root)} is not valid JSON ({exc}); section left out.")
        return None


def _optional_parquet(path: Path, root: Path, notes: list[str], what: str,
                      columns: Optional[list[str]] = None, filters: Any = None) -> Optional[pd.DataFrame]:
    if not Path(path).is_file():
        notes.append(f"{what}: {_rel(path, root)} not found.")
        return None
    return pd.read_parquet(path, columns=columns, filters=filters)


# ======================================================================================= context
def build_context(params: Params, paths: Paths) -> dict[str, Any]:
    """Read every input of the report stage into one plain dict for the templates.

    Raises :class:`~gnnrec.errors.DataError` when a required input (validation, graph or metrics
    report) is missing; optional inputs that are missing are listed in ``context["notes"]``.
    """
    root = Path(paths.root)
    notes: list[str] = []

    validation = _require_json(paths.validation_report, root)
    graph = _require_json(paths.graph_stats, root)
    metrics = _require_json(paths.metrics, root)
    evaluation = _optional_json(paths.eval_details, root, notes, "Evaluation details")
    manifest_path = paths.ingest / "manifest.json"
    manifest = _optional_json(manifest_path, root, notes, "Ingest manifest")

    models = _model_order(params.models, metrics)
    colors = figs.model_colors(models)

    dataset = _dataset_section(params, validation, manifest)
    graph_ctx = _graph_section(graph)
    metrics_ctx = _metrics_table(models, metrics, primary=params.train.early_stop)
    val_metrics = None
    if evaluation and evaluation.get("models"):
        val = {m: (v or {}).get("val") or {} for m, v in evaluation["models"].items()}
        if any(val.values()):
            val_metrics = _metrics_table(models, val, primary=params.train.early_stop)

    training, histories = _training_section(params, paths, models, evaluation, notes)
    notes.extend(baseline_notes(metrics, training))
    add_cost_columns(metrics_ctx, training)

    figures: list[dict[str, Any]] = []
    usable = {m: h for m, h in histories.items() if h is not None and len(h)}
    if usable:
        figures.append({
            "name": "training_curves", "filename": "training_curves.png", "title": "Training curves",
            "caption": f"Validation {metric_label(params.train.early_stop)} (dot: best epoch) and training loss per "
                       f"epoch; models without training are not drawn.",
            "png": figs.training_curves(histories, metric_label(params.train.early_stop), colors=colors)})
    if metrics_ctx["columns"] and metrics_ctx["rows"]:
        table = pd.DataFrame(
            [[cell["value"] if cell["value"] is not None else np.nan for cell in row["cells"]]
             for row in metrics_ctx["rows"]],
            index=[row["model"] for row in metrics_ctx["rows"]],
            columns=[c["key"] for c in metrics_ctx["columns"]], dtype=float)
        figures.append({
            "name": "metrics", "filename": "metrics.png", "title": "Test metrics by model",
            "caption": "Test-split metrics of every model (full ranking, training and validation items masked).",
            "png": figs.metrics_comparison(table, colors=colors)})
    train_split = paths.split / "train.parquet"
    if train_split.is_file():
        tr = pd.read_parquet(train_split, columns=["user_id", "item_id"])
        figures.append({
            "name": "degree_distribution", "filename": "degree_distribution.png",
            "title": "Degree distribution",
            "caption": "Number of users and items per training degree (log-log); dashed line: median.",
            "png": figs.degree_distribution(tr["user_id"].value_counts().to_numpy(),
                                            tr["item_id"].value_counts().to_numpy())})

    examples = _examples_section(params, paths, root, models, notes)
    timings = _timings_section(root / "reports" / "timings", root, notes)
    params_dict = params_to_dict(params)
    params_yaml = yaml.dump(params_dict, Dumper=_ParamsDumper, sort_keys=False, default_flow_style=False,
                            allow_unicode=True, width=100)
    provenance = prov.collect(params, root, manifest_path)

    best = metrics_ctx["best_model"]
    cards = [
        {"label": "Users", "value": fmt_int(dataset["stats"].get("users")), "sub": ""},
        {"label": "Items", "value": fmt_int(dataset["stats"].get("items")), "sub": ""},
        {"label": "Interactions", "value": fmt_int(dataset["stats"].get("interactions")),
         "sub": f"density {fmt_pct(graph_ctx['density'], 2)}" if _is_num(graph_ctx["density"]) else ""},
        {"label": "Social ties", "value": (fmt_int(graph_ctx["social"]["kept"]) if graph_ctx["social"]
                                           else fmt_int(dataset["stats"].get("social_ties"))),
         "sub": (f"kept of {fmt_int(graph_ctx['social']['ties_in'])}" if graph_ctx["social"] else "no social graph")},
        {"label": "Best model", "value": best or "—",
         "sub": (f"{metric_label(metrics_ctx['primary'])} {fmt_float(metrics_ctx['best_value'])}" if best else "")},
        {"label": "Pipeline time", "value": fmt_seconds(timings["total"]) if timings else "—",
         "sub": f"{len(timings['rows'])} stages" if timings else "no timings"},
    ]

    return {
        "title": "gnnrec report",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": models,
        "k": list(params.evaluate.k),
        "cards": cards,
        "dataset": dataset,
        "graph": graph_ctx,
        "metrics": metrics_ctx,
        "val_metrics": val_metrics,
        "users_evaluated": (evaluation or {}).get("users_evaluated"),
        "training": training,
        "figures": figures,
        "examples": examples,
        "timings": timings,
        "params": params_dict,
        "params_yaml": params_yaml,
        "provenance": provenance,
        "notes": notes,
    }


class _ParamsDumper(yaml.SafeDumper):
    """Block-style mappings (one key a line, like params.yaml) with short lists inline (``[0.8, 0.1, 0.1]``)."""


_ParamsDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def _model_order(configured: Sequence[str], metrics: Mapping[str, Any]) -> list[str]:
    out = list(configured)
    out += sorted(m for m in metrics if m not in out)
    return out


def _dataset_section(params: Params, validation: Mapping[str, Any], manifest: Optional[Mapping]) -> dict:
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


_DEGREE_KEYS = ("min", "p50", "mean", "p90", "max")


def _degree_row(label: str, summary: Optional[Mapping[str, Any]]) -> dict:
    summary = summary or {}
    return {"label": label, "values": [summary.get(k) for k in _DEGREE_KEYS]}


def _graph_section(graph: Mapping[str, Any]) -> dict:
    social = graph.get("social")
    social_ctx = None
    if social:
        noise = social.get("noise")
        ties_in = social.get("ties_in") or 0
        social_ctx = {
            "ties_in": ties_in, "kept": social.get("kept"), "dropped": social.get("dropped"),
            "dropped_share": (social.get("dropped") or 0) / ties_in if ties_in else None,
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
    }


def _metrics_table(models: Sequence[str], metrics: Mapping[str, Mapping[str, Any]], primary: str) -> dict:
    """Rows = models, columns = metric@K sorted by K then metric; best value per column flagged."""
    keys = sorted({k for m in models for k in (metrics.get(m) or {})}, key=_metric_sort_key)
    best = {}
    for key in keys:
        vals = [float(metrics[m][key]) for m in models if _is_num((metrics.get(m) or {}).get(key))]
        best[key] = max(vals) if vals else None
    rows = []
    for m in models:
        present = m in metrics
        cells = []
        for key in keys:
            v = (metrics.get(m) or {}).get(key)
            v = float(v) if _is_num(v) else None
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
        if _is_num(v) and (best_value is None or float(v) > best_value):
            best_model, best_value = m, float(v)
    return {"columns": columns, "groups": groups, "rows": rows, "primary": primary,
            "best_model": best_model, "best_value": best_value}


def _training_section(params: Params, paths: Paths, models: Sequence[str], evaluation: Optional[Mapping],
                      notes: list[str]) -> tuple[list[dict], dict[str, Optional[pd.DataFrame]]]:
    root = Path(paths.root)
    rows, histories = [], {}
    eval_models = (evaluation or {}).get("models") or {}
    for m in models:
        summary_path, history_path = paths.train_summary(m), paths.train_history(m)
        summary = read_json(summary_path) if summary_path.is_file() else None
        if summary is None and m in params.models:
            notes.append(f"Training summary of {m}: {_rel(summary_path, root)} not found.")
        history = None
        if history_path.is_file():
            try:
                history = pd.read_csv(history_path)
            except (pd.errors.EmptyDataError, pd.errors.ParserError):
                history = pd.DataFrame(columns=["epoch", "loss", "val_score", "seconds"])
        histories[m] = history
        s = summary or {}
        hp = s.get("hyperparameters") or {}
        rows.append({
            "model": m, "available": summary is not None,
            "epochs_run": s.get("epochs_run"), "best_epoch": s.get("best_epoch"), "best_val": s.get("best_val"),
            "metric": s.get("early_stop_metric") or params.train.early_stop,
            "train_seconds": s.get("train_seconds"), "n_params": s.get("n_params"),
            "stopped": s.get("stopped"), "stopped_label": STOP_LABELS.get(s.get("stopped"), s.get("stopped") or "—"),
            "device": s.get("device"),
            "eval_seconds": (eval_models.get(m) or {}).get("seconds"),
            "hyperparameters": ", ".join(f"{k}={_hp(v)}" for k, v in hp.items()),
            "trained": s.get("stopped") not in (None, "no_training"),
        })
    return rows, histories


COST_COLUMNS = ("Training time", "Parameters", "Best epoch")


def add_cost_columns(table: dict, training: Sequence[Mapping[str, Any]]) -> None:
    """Training time, parameter count and the epoch the validation score picked (of the epochs run), next
    to each model's test metrics, so that quality and cost read side by side."""
    by_model = {row["model"]: row for row in training}
    table["extra_columns"] = list(COST_COLUMNS)
    for row in table["rows"]:
        t = by_model.get(row["model"]) or {}
        best, run, trained = t.get("best_epoch"), t.get("epochs_run"), t.get("trained", True)
        epoch = "—" if best is None or not trained else (
            f"{fmt_int(best)} of {fmt_int(run)}" if run is not None else fmt_int(best))
        row["extra"] = [fmt_seconds(t.get("train_seconds")) if trained else "—", fmt_int(t.get("n_params")), epoch]


GRAPH_BASELINE = "mf"
# what sets a graph model apart from MF, named when it does not beat MF (LightGCN's paper: feature
# transforms and non-linearities hurt collaborative filtering; sampled models see bounded neighbourhoods)
MODEL_TRAITS = {
    "ngcf": "feature transforms and non-linear layers",
    "gcn": "feature transforms and non-linear layers",
    "gat": "sampled neighbourhoods (fanouts) and attention layers",
    "graphsage": "sampled, fixed-size neighbourhoods (fanouts) and non-linear layers",
    "pinsage": "top-k random-walk neighbourhoods and non-linear layers",
    "social": "propagation over social ties",
}
NON_GRAPH_MODELS = ("mf", "popularity")


def baseline_notes(metrics: Mapping[str, Mapping[str, Any]], training: Sequence[Mapping[str, Any]]) -> list[str]:
    """One note per graph model that does not beat MF-BPR on test NDCG@10 (the smallest NDCG cut-off
    evaluated), saying why as far as its training record tells: a time budget that ended while the
    validation score was still improving, or a validation score that had stopped improving (then more
    training would not help, and what sets the model apart from MF is named)."""
    base = metrics.get(GRAPH_BASELINE) or {}
    keys = sorted((k for k in base if k.startswith("ndcg@")), key=lambda k: int(k.split("@")[1]))
    if not keys:
        return []
    key = keys[0]
    by_model = {row["model"]: row for row in training}
    out = []
    for model, values in metrics.items():
        if model in NON_GRAPH_MODELS or values.get(key) is None or base.get(key) is None:
            continue
        if values[key] > base[key]:
            continue
        row = by_model.get(model) or {}
        best, run, stopped = row.get("best_epoch"), row.get("epochs_run"), row.get("stopped")
        if best is None or run is None:
            why = f"its training record is incomplete (stopped by {row.get('stopped_label', '—')})"
        elif stopped in ("max_seconds", "max_epochs") and run - best <= 2:
            why = (f"its training stopped at its {STOP_LABELS[stopped]} after {run} epochs "
                   f"({fmt_seconds(row.get('train_seconds'))}) while the validation score was still improving "
                   f"(best epoch {best}): it needs a larger train.max_seconds / epochs")
        else:
            ended = "early stopping" if stopped == "early_stop" else f"its {STOP_LABELS.get(stopped, stopped)}"
            why = (f"its validation score stopped improving at epoch {best} ({run - best} more epochs without a "
                   f"better one before {ended} ended it at epoch {run}), so more training would not close the gap: "
                   f"with these settings its {MODEL_TRAITS.get(model, 'architecture')} fit this data worse than "
                   f"MF's free per-user and per-item embeddings (its section in params.yaml holds the settings "
                   f"to tune)")
        out.append(f"{model} does not beat MF-BPR on test {metric_label(key)} "
                   f"({values[key]:.4f} vs {base[key]:.4f}): {why}.")
    return out


def _hp(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_hp(v) for v in value) + "]"
    return str(value)


def _item_label(name: Any, raw: str) -> str:
    if name is None or (isinstance(name, float) and math.isnan(name)) or pd.isna(name):
        return raw
    name = str(name).strip()
    return name or raw


def _examples_section(params: Params, paths: Paths, root: Path, models: Sequence[str],
                      notes: list[str]) -> dict:
    n_users, top_n = params.report.example_users, params.report.top_n
    out = {"enabled": n_users > 0, "top_n": top_n, "models": [], "users": [],
           "selection": "the first users (by canonical user id) with at least one held-out test item"}
    if n_users == 0:
        return out
    users = _optional_parquet(paths.dataset / "users.parquet", root, notes, "Example recommendations")
    items = _optional_parquet(paths.dataset / "items.parquet", root, notes, "Example recommendations")
    test = _optional_parquet(paths.split / "test.parquet", root, notes, "Example recommendations (hits)",
                             columns=["user_id", "item_id"])
    if not paths.recommendations.is_file() or users is None or items is None:
        if not paths.recommendations.is_file():
            notes.append(f"Example recommendations: {_rel(paths.recommendations, root)} not found.")
        out["enabled"] = False
        return out
    user_raw = dict(zip(users["user_id"].astype("int64"), users["raw_id"].astype(str)))
    item_raw = dict(zip(items["item_id"].astype("int64"), items["raw_id"].astype(str)))
    names = items["name"] if "name" in items.columns else pd.Series([None] * len(items))
    label_of = {raw: _item_label(name, raw) for raw, name in zip(items["raw_id"].astype(str), names)}

    if test is not None and len(test):
        candidates = sorted(int(u) for u in test["user_id"].unique())
    else:
        out["selection"] = "the first users (by canonical user id) with recommendations (no test split)"
        candidates = sorted(int(u) for u in users["user_id"])
    candidates = candidates[: n_users + _EXAMPLE_CANDIDATES_EXTRA]
    cand_raw = [user_raw[u] for u in candidates if u in user_raw]
    if not cand_raw:
        return out
    recs = pd.read_parquet(paths.recommendations, columns=["model", "user", "rank", "item"],
                           filters=[("user", "in", cand_raw)])
    recs = recs[recs["rank"] <= top_n]
    rec_models = [m for m in models if m in set(recs["model"].astype(str))]
    rec_models += sorted(set(recs["model"].astype(str)) - set(rec_models))
    out["models"] = rec_models
    by_user = {u: g for u, g in recs.groupby("user", sort=False)}
    test_by_user: dict[int, list[str]] = {}
    if test is not None:
        sel = test[test["user_id"].isin(candidates)].sort_values(["user_id", "item_id"])
        for u, g in sel.groupby("user_id", sort=True):
            test_by_user[int(u)] = [item_raw.get(int(i), str(i)) for i in g["item_id"]]

    for uid in candidates:
        raw = user_raw.get(uid)
        if raw is None or raw not in by_user:
            continue
        g = by_user[raw]
        held_out = test_by_user.get(uid, [])
        held = set(held_out)
        per_model = {}
        for m, gm in g.groupby("model", sort=False):
            gm = gm.sort_values("rank")
            per_model[str(m)] = {int(r): str(i) for r, i in zip(gm["rank"], gm["item"])}
        depth = max((max(v) for v in per_model.values() if v), default=0)
        rows = []
        for rank in range(1, min(depth, top_n) + 1):
            cells = []
            for m in rec_models:
                item = per_model.get(m, {}).get(rank)
                cells.append(None if item is None else
                             {"item": item, "label": label_of.get(item, item), "hit": item in held})
            rows.append({"rank": rank, "cells": cells})
        hits = {m: sum(1 for i in per_model.get(m, {}).values() if i in held) for m in rec_models}
        out["users"].append({
            "user": raw, "user_id": uid, "n_test": len(held_out),
            "test_items": [label_of.get(i, i) for i in held_out[:15]],
            "test_more": max(0, len(held_out) - 15),
            "rows": rows, "hits": [{"model": m, "hits": hits[m]} for m in rec_models],
        })
        if len(out["users"]) >= n_users:
            break
    return out


def _timings_section(folder: Path, root: Path, notes: list[str]) -> Optional[dict]:
    """Every ``reports/timings/*.json`` except the report stage's own (it is written after the report,
    so it would be the previous run's)."""
    if not folder.is_dir():
        notes.append(f"Stage timings: {_rel(folder, root)} not found (stages run without the runner).")
        return None
    rows = []
    for path in sorted(folder.glob("*.json")):
        try:
            t = read_json(path)
        except (OSError, ValueError):
            notes.append(f"Stage timings: {_rel(path, root)} is not valid JSON; skipped.")
            continue
        if not isinstance(t, dict):
            continue
        stage = str(t.get("stage") or path.stem)
        if stage == "report":
            continue
        rows.append({"stage": stage, "seconds": t.get("seconds"), "started": str(t.get("started") or "")})
    if not rows:
        notes.append("Stage timings: no timing files found.")
        return None
    rows.sort(key=lambda r: (r["started"], r["stage"]))
    total = sum(float(r["seconds"]) for r in rows if _is_num(r["seconds"]))
    for r in rows:
        r["share"] = float(r["seconds"]) / total if total and _is_num(r["seconds"]) else 0.0
    return {"rows": rows, "total": total}


# ====================================================================================== render
def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update({
        "f4": fmt_float, "n": fmt_int, "secs": fmt_seconds, "pct": fmt_pct, "density": fmt_density,
        "val": fmt_value, "metric_label": metric_label, "md": md_escape, "data_uri": _data_uri,
        "tojson_pretty": lambda v: json.dumps(v, indent=2, sort_keys=True, default=str),
    })
    env.globals.update({"md_metrics_table": markdown_metrics_table, "md_fence": _md_fence})
    return env


def render_html(context: Mapping[str, Any]) -> str:
    """The self-contained HTML report (inline CSS, figures as data URIs, everything escaped)."""
    return _environment(autoescape=True).get_template("report.html.j2").render(**context)


def render_markdown(context: Mapping[str, Any]) -> str:
    """The Markdown report; figures are referenced as ``figures/<name>.png`` next to it."""
    return _environment(autoescape=False).get_template("report.md.j2").render(**context)


def markdown_metrics_table(metrics: Mapping[str, Any]) -> str:
    """The model × metric table as a Markdown table, the best value of each column in bold."""
    cols = metrics["columns"]
    if not cols:
        return "_No metrics._\n"
    extra = list(metrics.get("extra_columns") or [])
    lines = ["| Model | " + " | ".join([c["label"] for c in cols] + extra) + " |",
             "|---|" + "---:|" * (len(cols) + len(extra))]
    for row in metrics["rows"]:
        cells = [f"**{c['text']}**" if c["best"] else c["text"] for c in row["cells"]]
        cells += [md_escape(v) for v in row.get("extra", ["—"] * len(extra))]
        lines.append(f"| {md_escape(row['model'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def metrics_table_rows(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"model": m, "recall@10": f, …}, …]``: the table artifact (raw floats, None where missing)."""
    return [{"model": row["model"], **{c["key"]: c["value"] for c in row["cells"]}}
            for row in context["metrics"]["rows"]]


def render_summary_markdown(context: Mapping[str, Any]) -> str:
    """A short Markdown summary: dataset line, best model, metrics table (the Prefect artifact)."""
    d, g, m = context["dataset"], context["graph"], context["metrics"]
    s = d["stats"]
    social = ""
    if g["social"]:
        social = f", {fmt_int(g['social']['ties_in'])} social ties ({fmt_int(g['social']['kept'])} kept)"
    elif s.get("social_ties"):
        social = f", {fmt_int(s.get('social_ties'))} social ties"
    lines = [
        "# gnnrec run summary",
        "",
        f"**Dataset:** {md_escape(d['source'])} ({md_escape(d['path'])}): {fmt_int(s.get('users'))} users, "
        f"{fmt_int(s.get('items'))} items, {fmt_int(s.get('interactions'))} interactions{social}.",
        "",
    ]
    if m["best_model"]:
        lines += [f"**Best model:** {md_escape(m['best_model'])} "
                  f"({metric_label(m['primary'])} = {fmt_float(m['best_value'])} on the test split)", ""]
    lines += [markdown_metrics_table(m)]
    return "\n".join(lines)


__all__ = [
    "build_context", "render_html", "render_markdown", "render_summary_markdown", "markdown_metrics_table",
    "metrics_table_rows", "md_escape", "fmt_float", "fmt_int", "fmt_seconds", "metric_label",
]

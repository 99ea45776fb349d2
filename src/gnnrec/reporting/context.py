"""The report context: every stage's outputs read into one plain dict, one entry per report section.

:func:`build_context` is the only function here that touches files (through
:mod:`gnnrec.reporting.inputs`); the section builders are pure functions of what was read: most are in
:mod:`gnnrec.reporting.sections` (re-exported here), the new-users and example sections in their own
modules, and this module adds the headline cards, the figures, the section list and the parameters. Required
inputs are ``reports/validation.json``, ``reports/graph.json`` and ``reports/metrics.json``; everything
else (social graph, training histories, recommendations, timings, manifest…) is optional and its
absence is stated in ``context["notes"]``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import yaml

from gnnrec.config import Params, params_to_dict
from gnnrec.paths import Paths
from gnnrec.reporting import figures as figs
from gnnrec.reporting import inputs
from gnnrec.reporting import provenance as prov
from gnnrec.reporting.cold_start import cold_start_section
from gnnrec.reporting.examples import examples_section
from gnnrec.reporting.formatting import (
    fmt_float,
    fmt_int,
    fmt_pct,
    fmt_seconds,
    is_num,
    metric_label,
)
from gnnrec.reporting.insights import baseline_notes
from gnnrec.reporting.sections import (
    COST_COLUMNS,
    REPAIR_LABELS,
    add_cost_columns,
    dataset_section,
    graph_section,
    metrics_table,
    timings_section,
    training_section,
)
from gnnrec.reporting.social import social_section

#: top-level keys of metrics.json that are not models
NON_MODEL_KEYS = frozenset({"cold_start"})
#: the report's sections (id, title) in order; "new-users" is left out without cold-start metrics
SECTIONS = (("dataset", "Dataset & validation"), ("graph", "Graph"), ("models", "Model comparison"),
            ("new-users", "New users"), ("social", "Do social ties help here?"), ("training", "Training"),
            ("examples", "Example recommendations"),
            ("timings", "Stage timings"), ("params", "Parameters"), ("provenance", "Provenance"))


def build_context(params: Params, paths: Paths) -> dict[str, Any]:
    """Read every input of the report stage into one plain dict for the templates.

    Raises :class:`~gnnrec.errors.DataError` when a required input (validation, graph or metrics
    report) is missing; optional inputs that are missing are listed in ``context["notes"]``.
    """
    root = Path(paths.root)
    notes: list[str] = []

    validation = inputs.require_json(paths.validation_report, root)
    graph = inputs.require_json(paths.graph_stats, root)
    metrics = inputs.require_json(paths.metrics, root)
    evaluation = inputs.optional_json(paths.eval_details, root, notes, "Evaluation details")
    manifest_path = paths.ingest / "manifest.json"
    manifest = inputs.optional_json(manifest_path, root, notes, "Ingest manifest")

    cold_metrics = metrics.get("cold_start") if isinstance(metrics, dict) else None
    metrics = model_metrics(metrics)
    models = _model_order(params.models, metrics)
    for m in list(models):                          # not trainable on this data (a social model without ties)
        summary = inputs.read_train_summary(paths, m)
        if m not in metrics and summary and summary.get("skipped"):
            models.remove(m)
            notes.append(f"{m} was not trained: {summary['skipped']}.")
    colors = figs.model_colors(models)

    dataset = dataset_section(params, validation, manifest)
    graph_ctx = graph_section(graph)
    metrics_ctx = metrics_table(models, metrics, primary=params.train.early_stop)
    val_metrics = None
    if evaluation and evaluation.get("models"):
        val = {m: (v or {}).get("val") or {} for m, v in evaluation["models"].items()}
        if any(val.values()):
            val_metrics = metrics_table(models, val, primary=params.train.early_stop)

    summaries, histories = {}, {}
    for m in models:
        summaries[m] = inputs.read_train_summary(paths, m)
        if summaries[m] is None and m in params.models:
            notes.append(f"Training summary of {m}: {inputs.rel(paths.train_summary(m), root)} not found.")
        histories[m] = inputs.read_history(paths, m)
    training = training_section(params, models, summaries, evaluation)
    notes.extend(baseline_notes(metrics, training))
    add_cost_columns(metrics_ctx, training)

    cold_eval = (evaluation or {}).get("cold_start") if isinstance(evaluation, dict) else None
    cold_start = None
    if isinstance(cold_metrics, dict) and cold_metrics:
        per_user = inputs.read_cold_start_per_user(paths, notes)
        cold_start = cold_start_section(models, cold_metrics, cold_eval, per_user, training, seed=params.seed)
        if cold_eval is None:
            notes.append("New users: reports/evaluation.json has no cold_start details (standard errors from the "
                         "per-user values where present; no latency or exact-path gap).")

    eval_models = (evaluation or {}).get("models") if isinstance(evaluation, dict) else None
    social = None
    if isinstance(eval_models, dict) and any(isinstance(v, dict) and (v.get("gates") or v.get("social_ties"))
                                                 for v in eval_models.values()):
        social = social_section(models, evaluation, graph, inputs.read_test_per_user(paths, notes),
                                inputs.read_user_degrees(paths), seed=params.seed)
    figures = _figures(params, metrics_ctx, histories, inputs.read_train_degrees(paths), colors, cold_start)
    examples = examples_section(params, paths, models, notes)
    timings = timings_section(inputs.read_timings(paths, notes), notes)
    params_dict = params_to_dict(params)
    params_yaml = yaml.dump(params_dict, Dumper=_ParamsDumper, sort_keys=False, default_flow_style=False,
                            allow_unicode=True, width=100)

    sections = report_sections(cold_start is not None, social is not None)
    return {
        "title": "gnnrec report",
        "sections": sections,
        "section_num": {s["id"]: s["num"] for s in sections},
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": models,
        "k": list(params.evaluate.k),
        "cards": _cards(dataset, graph_ctx, metrics_ctx, timings),
        "dataset": dataset,
        "graph": graph_ctx,
        "metrics": metrics_ctx,
        "val_metrics": val_metrics,
        "users_evaluated": (evaluation or {}).get("users_evaluated"),
        "training": training,
        "figures": figures,
        "examples": examples,
        "cold_start": cold_start,
        "social": social,
        "timings": timings,
        "params": params_dict,
        "params_yaml": params_yaml,
        "provenance": prov.collect(params, root, manifest_path),
        "notes": notes,
    }


class _ParamsDumper(yaml.SafeDumper):
    """Block-style mappings (one key a line, like params.yaml) with short lists inline (``[0.8, 0.1, 0.1]``)."""


_ParamsDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def model_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The per-model entries of ``metrics.json``: every top-level key but :data:`NON_MODEL_KEYS` (the
    ``cold_start`` block sits beside the models) and any value that is not a mapping."""
    return {m: v for m, v in metrics.items() if m not in NON_MODEL_KEYS and isinstance(v, Mapping)}


def _model_order(configured: Sequence[str], metrics: Mapping[str, Any]) -> list[str]:
    """The configured models, then any other model with metrics (sorted)."""
    out = list(configured)
    out += sorted(m for m in model_metrics(metrics) if m not in out)
    return out


def _slug(text: str) -> str:
    """GitHub's heading anchor: ``"1. Dataset & validation"`` → ``"1-dataset--validation"``."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def report_sections(new_users: bool, social: bool = False) -> list[dict[str, Any]]:
    """The report's sections in order, numbered (``{id, label, num, anchor}``: ``anchor`` is the Markdown
    heading's); the "New users" section only when there are cold-start metrics, the social one only when a
    model used social ties."""
    out = []
    for sid, label in SECTIONS:
        if (sid == "new-users" and not new_users) or (sid == "social" and not social):
            continue
        num = len(out) + 1
        out.append({"id": sid, "label": label, "num": num, "anchor": _slug(f"{num}. {label}")})
    return out


def _figures(params: Params, metrics_ctx: Mapping[str, Any], histories: Mapping[str, Optional[pd.DataFrame]],
             degrees: Optional[tuple[np.ndarray, np.ndarray]], colors: Mapping[str, Any],
             cold_start: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
    """Training curves, test metrics, degree distribution and the new users' NDCG@20 against k, each drawn
    when its inputs exist."""
    out: list[dict[str, Any]] = []
    primary = metric_label(params.train.early_stop)
    if any(h is not None and len(h) for h in histories.values()):
        out.append({
            "name": "training_curves", "filename": "training_curves.png", "title": "Training curves",
            "caption": f"Validation {primary} (dot: best epoch) and training loss per "
                       f"epoch; models without training are not drawn.",
            "png": figs.training_curves(histories, primary, colors=colors)})
    if metrics_ctx["columns"] and metrics_ctx["rows"]:
        table = pd.DataFrame(
            [[cell["value"] if cell["value"] is not None else np.nan for cell in row["cells"]]
             for row in metrics_ctx["rows"]],
            index=[row["model"] for row in metrics_ctx["rows"]],
            columns=[c["key"] for c in metrics_ctx["columns"]], dtype=float)
        out.append({
            "name": "metrics", "filename": "metrics.png", "title": "Test metrics by model",
            "caption": "Test-split metrics of every model (full ranking, training and validation items masked).",
            "png": figs.metrics_comparison(table, colors=colors)})
    if degrees is not None:
        out.append({
            "name": "degree_distribution", "filename": "degree_distribution.png",
            "title": "Degree distribution",
            "caption": "Number of users and items per training degree (log-log); dashed line: median.",
            "png": figs.degree_distribution(*degrees)})
    if cold_start is not None and (cold_start["users"] or cold_start["items"]):
        panels = [(title, table["series"]) for title, table in (("New users", cold_start["users"]),
                                                                 ("New items", cold_start["items"])) if table]
        cold_colors = dict(colors)
        for i, m in enumerate(m for m in cold_start["models"] if m not in cold_colors):
            cold_colors[m] = "#4b5563" if m == "oracle" else figs.PALETTE[(len(colors) + i) % len(figs.PALETTE)]
        out.append({
            "name": "cold_start", "filename": "cold_start.png", "title": "New users: NDCG@20 against k",
            "caption": "NDCG@20 of held-out users (items) never seen in training, against the number k of their "
                       "interactions revealed; error bars: ± one standard error; dashed: "
                       + (", ".join(cold_start["references"]) or "none") + " (reference lines).",
            "png": figs.cold_start_curves(panels, references=cold_start["references"], colors=cold_colors)})
    return out


def _cards(dataset: Mapping, graph: Mapping, metrics: Mapping, timings: Optional[Mapping]) -> list[dict]:
    """The headline figures at the top of the report: ``{label, value, sub}`` each."""
    stats, social, best = dataset["stats"], graph["social"], metrics["best_model"]
    return [
        {"label": "Users", "value": fmt_int(stats.get("users")), "sub": ""},
        {"label": "Items", "value": fmt_int(stats.get("items")), "sub": ""},
        {"label": "Interactions", "value": fmt_int(stats.get("interactions")),
         "sub": f"density {fmt_pct(graph['density'], 2)}" if is_num(graph["density"]) else ""},
        {"label": "Social ties", "value": fmt_int(social["kept"]) if social else fmt_int(stats.get("social_ties")),
         "sub": f"kept of {fmt_int(social['ties_in'])}" if social else "no social graph"},
        {"label": "Best model", "value": best or "—",
         "sub": f"{metric_label(metrics['primary'])} {fmt_float(metrics['best_value'])}" if best else ""},
        {"label": "Pipeline time", "value": fmt_seconds(timings["total"]) if timings else "—",
         "sub": f"{len(timings['rows'])} stages" if timings else "no timings"},
    ]


__all__ = ["build_context", "dataset_section", "graph_section", "metrics_table", "training_section",
           "add_cost_columns", "timings_section", "model_metrics", "report_sections", "COST_COLUMNS",
           "REPAIR_LABELS", "NON_MODEL_KEYS", "SECTIONS"]

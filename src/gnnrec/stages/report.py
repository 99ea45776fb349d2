"""Stage ``report``: every stage's outputs → ``reports/report.html`` (self-contained),
``reports/report.md`` and ``reports/figures/*.png``.

Reads (paths from :class:`gnnrec.paths.Paths`): ``reports/{validation,graph,metrics,evaluation}.json``,
``reports/train/<model>.json``, ``reports/curves/<model>.csv``, ``artifacts/recommendations.parquet``,
``artifacts/dataset/{users,items}.parquet``, ``artifacts/split/{train,test}.parquet``,
``artifacts/cold_start_per_user.parquet``, ``artifacts/ingest/manifest.json`` and whatever
``reports/timings/*.json`` exist. Only the validation, graph and metrics reports are required; the "New
users" section is drawn only when ``metrics.json`` has a ``cold_start`` key (never a model).
"""

from __future__ import annotations

from typing import Any

from gnnrec.config import Params
from gnnrec.paths import Paths
from gnnrec.reporting.context import build_context
from gnnrec.reporting.render import metrics_table_rows, render_summary_markdown, write_report


def run(params: Params, paths: Paths) -> dict[str, Any]:
    """Write the report files atomically and return a JSON-able summary.

    The summary carries ``summary_markdown`` (dataset line, best model, metrics table) and
    ``metrics_table`` (one dict per model: ``model`` plus each ``metric@K``), which the orchestration
    layer publishes as Prefect markdown and table artifacts, and ``new_users_verdict`` (the "New users"
    section's sentences; ``None`` without cold-start metrics).
    """
    context = build_context(params, paths)
    written = write_report(context, paths)
    metrics = context["metrics"]
    return {
        "html": str(paths.report_html),
        "markdown": str(paths.report_md),
        "figures": [str(paths.figures / name) for name in written],
        "models": list(context["models"]),
        "best_model": metrics["best_model"],
        "best_metric": metrics["primary"],
        "best_value": metrics["best_value"],
        "example_users": len(context["examples"]["users"]),
        "notes": list(context["notes"]),
        "summary_markdown": render_summary_markdown(context),
        "metrics_table": metrics_table_rows(context),
        "new_users_verdict": list(context["cold_start"]["verdict"]) if context["cold_start"] else None,
    }

"""Report rendering: the context of :func:`gnnrec.reporting.context.build_context` through the jinja2
templates of ``reporting/templates/`` into a self-contained HTML file (inline CSS, figures as base64 data
URIs, no external resource), a Markdown file with PNG figures beside it, and a short Markdown summary.

The ``render_*`` functions are pure functions of the context; :func:`write_report` writes the files,
each atomically (:mod:`gnnrec.io`).

Escaping: the HTML environment autoescapes every value (item names, ids, paths come from user data);
Markdown cells go through the ``md`` filter (:func:`~gnnrec.reporting.formatting.md_escape`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jinja2

from gnnrec.io import write_bytes, write_text
from gnnrec.paths import Paths
from gnnrec.reporting.formatting import (
    data_uri,
    fmt_density,
    fmt_float,
    fmt_int,
    fmt_pct,
    fmt_seconds,
    fmt_value,
    md_escape,
    md_fence,
    metric_label,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"


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
        "val": fmt_value, "metric_label": metric_label, "md": md_escape, "data_uri": data_uri,
    })
    env.globals.update({"md_fence": md_fence})
    return env


def render_html(context: Mapping[str, Any]) -> str:
    """The self-contained HTML report (inline CSS, figures as data URIs, everything escaped)."""
    return _environment(autoescape=True).get_template("report.html.j2").render(**context)


def render_markdown(context: Mapping[str, Any]) -> str:
    """The Markdown report; figures are referenced as ``figures/<name>.png`` next to it."""
    return _environment(autoescape=False).get_template("report.md.j2").render(**context)


def render_summary_markdown(context: Mapping[str, Any]) -> str:
    """A short Markdown summary: dataset line, best model, test metrics table (the Prefect artifact)."""
    return _environment(autoescape=False).get_template("summary.md.j2").render(**context)


def metrics_table_rows(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"model": m, "recall@10": f, …}, …]``: the table artifact (raw floats, None where missing)."""
    return [{"model": row["model"], **{c["key"]: c["value"] for c in row["cells"]}}
            for row in context["metrics"]["rows"]]


def write_report(context: Mapping[str, Any], paths: Paths) -> list[str]:
    """Write ``reports/figures/*.png``, ``reports/report.md`` and ``reports/report.html`` atomically and
    return the figure file names written. The figures folder is the report's own output: a PNG an earlier
    run wrote that this one did not is deleted."""
    html = render_html(context)
    markdown = render_markdown(context)
    written = []
    for fig in context["figures"]:
        write_bytes(paths.figures / fig["filename"], fig["png"])
        written.append(fig["filename"])
    if paths.figures.is_dir():
        for stale in paths.figures.glob("*.png"):
            if stale.name not in written:
                stale.unlink()
    write_text(paths.report_md, markdown)
    write_text(paths.report_html, html)
    return written


__all__ = ["TEMPLATES", "render_html", "render_markdown", "render_summary_markdown", "metrics_table_rows",
           "write_report"]

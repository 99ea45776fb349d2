"""Report rendering: one context dict from every stage's outputs, rendered as a self-contained HTML file
(inline CSS, figures as base64 PNG data URIs, no external resource) and as Markdown with PNG figures.

Modules: ``inputs`` reads the stage outputs, ``context`` builds the template context (``sections`` most of its
section builders, ``cold_start`` the "New users" section with its paired tests, ``examples`` the example
recommendations), ``insights`` writes the model-analysis notes, ``formatting``
holds the number / time / metric-label formatters, ``render`` the jinja2 rendering and atomic writes,
``figures`` the matplotlib figures (PNG bytes, fixed DPI, no volatile metadata) and ``provenance`` the
git / data / package / device description.
"""

from gnnrec.reporting.context import build_context
from gnnrec.reporting.render import render_html, render_markdown, render_summary_markdown, write_report

__all__ = ["build_context", "render_html", "render_markdown", "render_summary_markdown", "write_report"]

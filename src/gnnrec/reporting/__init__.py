"""Report rendering: one context dict from every stage's outputs, rendered as a self-contained HTML file
(inline CSS, figures as base64 PNG data URIs, no external resource) and as Markdown with PNG figures.

``render`` holds the context and templates, ``figures`` the matplotlib figures (PNG bytes, fixed DPI,
no volatile metadata), ``provenance`` the git / data / package / device description.
"""

from gnnrec.reporting.render import build_context, render_html, render_markdown, render_summary_markdown

__all__ = ["build_context", "render_html", "render_markdown", "render_summary_markdown"]

"""Formatters of the report: numbers, durations, shares, metric labels and Markdown-safe text.

Every formatter takes any value and returns a string; a missing or non-finite number (``None``, NaN,
infinity) is shown as ``"—"``. They are the filters of the report templates (see
:mod:`gnnrec.reporting.render`) and the building blocks of the context sections.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

import numpy as np

from gnnrec.constants import METRIC_NAMES

#: display name of each metric of :data:`gnnrec.constants.METRIC_NAMES`
METRIC_LABELS = {"recall": "Recall", "ndcg": "NDCG", "precision": "Precision", "hitrate": "HitRate",
                 "mrr": "MRR", "map": "MAP"}
#: how each value of a training summary's ``stopped`` field reads in the report
STOP_LABELS = {
    "early_stop": "early stop",
    "max_epochs": "max epochs",
    "max_seconds": "time budget",
    "no_training": "no training",
}
MISSING = "—"


def is_num(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (numpy scalars included, booleans excluded)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def fmt_float(value: Any, digits: int = 4) -> str:
    """``0.12345`` → ``"0.1235"``; ``None``/NaN → ``"—"``."""
    return f"{float(value):.{digits}f}" if is_num(value) else MISSING


def fmt_int(value: Any) -> str:
    """``12345`` → ``"12,345"``; a boolean → ``"True"``/``"False"``; ``None`` → ``"—"``."""
    if isinstance(value, bool):
        return str(value)
    return f"{int(value):,}" if is_num(value) else MISSING


def fmt_seconds(value: Any) -> str:
    """``3.21`` → ``"3.21 s"``, ``12.3`` → ``"12.3 s"``, ``125`` → ``"2 min 05 s"``, ``3725`` → ``"1 h 02 min"``."""
    if not is_num(value):
        return MISSING
    s = float(value)
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60)):02d} s"
    return f"{int(s // 3600)} h {int(round((s % 3600) / 60)):02d} min"


def fmt_pct(value: Any, digits: int = 1) -> str:
    """``0.1234`` → ``"12.3%"``."""
    return f"{100 * float(value):.{digits}f}%" if is_num(value) else MISSING


def fmt_density(value: Any) -> str:
    """A graph density with its percentage: ``0.64`` → ``"0.6400 (64%)"``, small values in scientific notation."""
    if not is_num(value):
        return MISSING
    v = float(value)
    return f"{v:.3e} ({100 * v:.3g}%)" if v < 1e-3 else f"{v:.4f} ({100 * v:.3g}%)"


def fmt_value(value: Any) -> str:
    """Generic cell: ints with separators, floats with 4 significant digits, booleans as yes/no, None → —."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return fmt_int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return MISSING
        return f"{float(value):.4g}"
    return str(value)


def fmt_hyperparameter(value: Any) -> str:
    """A hyperparameter value as written in a training summary: ``0.001`` → ``"0.001"``, lists bracketed."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt_hyperparameter(v) for v in value) + "]"
    return str(value)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md_escape(value: Any) -> str:
    """Text safe inside a Markdown table cell: ``|`` and Markdown/HTML punctuation backslash-escaped,
    line breaks turned into spaces (``<script>`` shows as text, never as a tag)."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def metric_label(key: str) -> str:
    """``"ndcg@20"`` → ``"NDCG@20"``, ``"mrr@10"`` → ``"MRR@10"``; an unknown name is kept as it is."""
    name, sep, k = str(key).partition("@")
    return f"{METRIC_LABELS.get(name, name)}{sep}{k}"


def metric_sort_key(key: str) -> tuple:
    """Sort key of ``metric@K`` columns: by K, then in :data:`~gnnrec.constants.METRIC_NAMES` order."""
    name, _, k = str(key).partition("@")
    order = METRIC_NAMES.index(name) if name in METRIC_NAMES else len(METRIC_NAMES)
    return (int(k) if k.isdigit() else 10**9, order, name)


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,…`` URI (figures embedded in the HTML report)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


__all__ = [
    "METRIC_LABELS", "STOP_LABELS", "MISSING", "is_num", "fmt_float", "fmt_int", "fmt_seconds", "fmt_pct",
    "fmt_density", "fmt_value", "fmt_hyperparameter", "md_escape", "md_fence", "metric_label", "metric_sort_key",
    "data_uri",
]

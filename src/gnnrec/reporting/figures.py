"""Report figures: matplotlib (Agg canvas, no pyplot global state) rendered to PNG bytes.

Every figure is drawn at a fixed size and DPI with the PNG ``Software`` metadata removed, so the same
inputs give byte-identical files (DVC sees no change when nothing changed).
"""

from __future__ import annotations

import io
import math
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from gnnrec.reporting.formatting import metric_label

DPI = 110
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
           "#4b5563", "#65a30d")

_STYLE = {
    "font.family": "DejaVu Sans",  # bundled with matplotlib: identical output on every machine
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.edgecolor": "#9ca3af",
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "svg.hashsalt": "gnnrec",
}


# Fixed margins (not constrained layout): as good for these simple grids, and twice as fast.
_MARGINS_2 = {"left": 0.07, "right": 0.985, "bottom": 0.14, "top": 0.9, "wspace": 0.22}


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """A stable colour per model (by position in ``models``), shared by every figure."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def to_png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (fixed DPI, no timestamped metadata, so the same figure gives the same bytes)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _usable_history(df: Optional[pd.DataFrame]) -> bool:
    return df is not None and len(df) > 0 and "epoch" in df.columns


def training_curves(histories: Mapping[str, pd.DataFrame], metric_name: str,
                    colors: Optional[Mapping[str, str]] = None) -> bytes:
    """Validation score and training loss per epoch, one line per model (PNG bytes).

    ``histories`` maps a model name to its ``reports/train/<model>.csv`` frame (``epoch, loss,
    val_score, seconds``). Models with no rows (no training, e.g. popularity) are skipped; the best
    validation epoch of each model is marked with a dot.
    """
    usable = {m: df for m, df in histories.items() if _usable_history(df)}
    colors = dict(colors or model_colors(list(histories)))
    with rc_context(_STYLE):
        fig = Figure(figsize=(10, 3.8), dpi=DPI)
        fig.subplots_adjust(**_MARGINS_2)
        ax_val, ax_loss = fig.subplots(1, 2)
        for model, df in usable.items():
            color = colors.get(model, PALETTE[len(colors) % len(PALETTE)])
            df = df.sort_values("epoch")
            if "val_score" in df.columns:
                val = df[["epoch", "val_score"]].apply(pd.to_numeric, errors="coerce").dropna()
                if len(val):
                    ax_val.plot(val["epoch"], val["val_score"], color=color, lw=1.8, label=model,
                                marker="o" if len(val) == 1 else None, ms=4)
                    best = val.loc[val["val_score"].idxmax()]
                    ax_val.scatter([best["epoch"]], [best["val_score"]], color=color, s=28, zorder=3,
                                   edgecolor="white", linewidth=1)
            if "loss" in df.columns:
                loss = df[["epoch", "loss"]].apply(pd.to_numeric, errors="coerce").dropna()
                if len(loss):
                    ax_loss.plot(loss["epoch"], loss["loss"], color=color, lw=1.8, label=model,
                                 marker="o" if len(loss) == 1 else None, ms=4)
        ax_val.set_title(f"Validation {metric_name}")
        ax_val.set_xlabel("epoch")
        ax_val.set_ylabel(metric_name)
        ax_loss.set_title("Training loss")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss")
        if usable:
            ax_val.legend(loc="lower right")
            ax_loss.legend(loc="upper right")
        else:
            for ax in (ax_val, ax_loss):
                ax.text(0.5, 0.5, "no trained model", ha="center", va="center", transform=ax.transAxes,
                        color="#6b7280")
        return to_png(fig)


def metrics_comparison(table: pd.DataFrame, colors: Optional[Mapping[str, str]] = None) -> bytes:
    """Grouped bars of the test metrics: one group per metric column, one bar per model (PNG bytes).

    ``table`` has one row per model (index = model name) and one column per metric (``recall@10``…);
    missing values are left out.
    """
    models = [str(m) for m in table.index]
    colors = dict(colors or model_colors(models))
    cols = list(table.columns)
    n = max(len(models), 1)
    width = 0.8 / n
    x = np.arange(len(cols))
    with rc_context(_STYLE):
        fig = Figure(figsize=(10, 3.6), dpi=DPI)
        fig.subplots_adjust(left=0.065, right=0.985, bottom=0.1, top=0.9)
        ax = fig.subplots()
        for i, model in enumerate(models):
            vals = pd.to_numeric(table.loc[model], errors="coerce").to_numpy(dtype=float)
            keep = ~np.isnan(vals)
            ax.bar(x[keep] - 0.4 + width * (i + 0.5), vals[keep], width=width * 0.92,
                   color=colors.get(model, PALETTE[i % len(PALETTE)]), label=model)
        ax.set_xticks(x, [metric_label(c) for c in cols])
        ax.set_title("Test metrics")
        ax.grid(axis="x", visible=False)
        ax.set_ylim(bottom=0)
        if models:
            ax.legend(ncols=min(len(models), 6), loc="upper left")
        return to_png(fig)


def degree_distribution(user_degrees: np.ndarray, item_degrees: np.ndarray) -> bytes:
    """Degree distributions of the training graph (users, items): number of nodes per degree, log-log."""
    with rc_context(_STYLE):
        fig = Figure(figsize=(10, 3.6), dpi=DPI)
        fig.subplots_adjust(**_MARGINS_2)
        axes = fig.subplots(1, 2)
        for ax, degrees, label, color in ((axes[0], user_degrees, "Users", PALETTE[0]),
                                          (axes[1], item_degrees, "Items", PALETTE[1])):
            degrees = np.asarray(degrees, dtype=np.int64)
            degrees = degrees[degrees > 0]
            ax.set_title(f"{label}: training degree")
            ax.set_xlabel("degree (training interactions)")
            ax.set_ylabel("number of nodes")
            if degrees.size == 0:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
                continue
            values, counts = np.unique(degrees, return_counts=True)
            ax.scatter(values, counts, s=10, color=color, alpha=0.8, edgecolor="none")
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis, vals in ((ax.xaxis, values), (ax.yaxis, counts)):  # plain numbers (50, 100), not 5×10¹
                axis.set_major_locator(LogLocator(base=10, subs=_log_subs(vals)))
                axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
                axis.set_minor_formatter(NullFormatter())
            median = float(np.median(degrees))
            ax.axvline(median, color="#374151", lw=1, ls="--")
            ax.text(median, 0.97, f" median {median:g} ", va="top", ha="left", color="#374151", fontsize=8,
                    transform=ax.get_xaxis_transform(),
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
        return to_png(fig)


def cold_start_curves(panels: Sequence[tuple[str, Mapping[str, Mapping[str, Sequence]]]],
                      references: Sequence[str] = (), colors: Optional[Mapping[str, str]] = None,
                      metric_name: str = "NDCG@20") -> bytes:
    """``metric_name`` against the number of revealed interactions ``k``, one line per model (PNG bytes).

    ``panels`` holds ``(title, series)`` pairs, one panel each (new users, new items); ``series`` maps a
    model to ``{"k": [...], "mean": [...], "se": [...]}`` (``se`` entries may be ``None``: no error bar).
    The ``references`` (popularity, a retrained oracle) are drawn dashed.
    """
    panels = list(panels) or [("New users", {})]
    models = list(dict.fromkeys(m for _, series in panels for m in series))
    colors = dict(colors or model_colors(models))
    refs = set(references)
    with rc_context(_STYLE):
        fig = Figure(figsize=(10 if len(panels) > 1 else 6.4, 3.8), dpi=DPI)
        if len(panels) > 1:
            fig.subplots_adjust(**_MARGINS_2)
        else:
            fig.subplots_adjust(left=0.11, right=0.975, bottom=0.14, top=0.9)
        axes = np.atleast_1d(fig.subplots(1, len(panels)))
        for ax, (title, series) in zip(axes, panels):
            ks_all: set[int] = set()
            for i, model in enumerate(models):
                s = series.get(model)
                if not s or not s["k"]:
                    continue
                ks = np.asarray(s["k"], dtype=float)
                mean = np.asarray(s["mean"], dtype=float)
                se = np.asarray([np.nan if v is None else v for v in s["se"]], dtype=float)
                ks_all.update(int(k) for k in s["k"])
                color = colors.get(model, "#4b5563" if model == "oracle" else PALETTE[i % len(PALETTE)])
                dashed = model in refs
                ax.errorbar(ks, mean, yerr=None if np.all(np.isnan(se)) else np.nan_to_num(se), color=color,
                            lw=1.6 if dashed else 1.9, ls="--" if dashed else "-", marker="o", ms=4,
                            capsize=2.5, elinewidth=0.9, label=model + (" (reference)" if dashed else ""))
            ax.set_title(title)
            ax.set_xlabel("k (interactions revealed per new user)" if "item" not in title.lower()
                          else "k (interactions revealed per new item)")
            ax.set_ylabel(metric_name)
            ax.set_ylim(bottom=0)
            if ks_all:
                ax.set_xticks(sorted(ks_all))
                ax.legend(loc="best", fontsize=8)
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#6b7280")
        return to_png(fig)


def _log_subs(values: np.ndarray) -> tuple[float, ...]:
    """Tick multiples per decade: denser when the data spans few decades, so labels never collide."""
    span = math.log10(max(float(values.max()), 1.0) / max(float(values.min()), 1.0))
    if span < 1:
        return (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    if span < 2.2:
        return (1.0, 2.0, 5.0)
    return (1.0,)


__all__ = ["training_curves", "metrics_comparison", "degree_distribution", "cold_start_curves", "model_colors",
           "DPI"]

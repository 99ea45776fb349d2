"""Model-analysis prose of the report: why a graph model does not beat the MF-BPR baseline.

What sets each model apart (its *traits*) and whether it is a graph model come through
:func:`model_traits` and :func:`is_graph_model`. Both read the model's training summary
(``reports/train/<model>.json``, keys ``"traits"`` and ``"graph_model"``) when it carries them and fall
back to a built-in table otherwise, so the report never imports the models (nor torch).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from gnnrec.reporting.formatting import STOP_LABELS, fmt_seconds, metric_label

GRAPH_BASELINE = "mf"
# Fallback for training summaries without "traits": what sets a graph model apart from MF, named when it
# does not beat MF (feature transforms and non-linearities hurt collaborative filtering; sampled models
# see bounded neighbourhoods).
MODEL_TRAITS = {
    "ngcf": "feature transforms and non-linear layers",
    "gcn": "feature transforms and non-linear layers",
    "gat": "sampled neighbourhoods (fanouts) and attention layers",
    "graphsage": "sampled, fixed-size neighbourhoods (fanouts) and non-linear layers",
    "pinsage": "top-k random-walk neighbourhoods and non-linear layers",
    "social": "propagation over social ties",
}
# Fallback for training summaries without "graph_model".
NON_GRAPH_MODELS = ("mf", "popularity")
DEFAULT_TRAITS = "architecture"


def model_traits(name: str, summary: Optional[Mapping[str, Any]] = None) -> str:
    """What sets model ``name`` apart from MF, as a noun phrase (``"feature transforms and non-linear
    layers"``): the ``"traits"`` of its training summary when present, else the built-in table, else
    ``"architecture"``."""
    traits = (summary or {}).get("traits")
    if isinstance(traits, str) and traits.strip():
        return traits.strip()
    return MODEL_TRAITS.get(name, DEFAULT_TRAITS)


def is_graph_model(name: str, summary: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether model ``name`` propagates over the interaction graph: the ``"graph_model"`` flag of its
    training summary when present, else every model but MF and popularity."""
    flag = (summary or {}).get("graph_model")
    if isinstance(flag, bool):
        return flag
    return name not in NON_GRAPH_MODELS


def baseline_notes(metrics: Mapping[str, Mapping[str, Any]], training: Sequence[Mapping[str, Any]]) -> list[str]:
    """One note per graph model that does not beat MF-BPR on test NDCG@K at the smallest NDCG cut-off
    evaluated, saying why as far as its training record tells: a time budget or epoch limit that ended
    training while the validation score was still improving, or a validation score that had stopped
    improving (then more training would not help, and what sets the model apart from MF is named).

    ``training`` holds one record per model: ``model``, ``best_epoch``, ``epochs_run``, ``stopped``,
    ``stopped_label``, ``train_seconds`` and, when its training summary has them, ``traits`` and
    ``graph_model`` (see :func:`model_traits`, :func:`is_graph_model`). No MF metrics: no notes.
    """
    base = metrics.get(GRAPH_BASELINE) or {}
    keys = sorted((k for k in base if k.startswith("ndcg@")), key=lambda k: int(k.split("@")[1]))
    if not keys:
        return []
    key = keys[0]
    by_model = {row["model"]: row for row in training}
    out = []
    for model, values in metrics.items():
        row = by_model.get(model) or {}
        if not is_graph_model(model, row) or values.get(key) is None or base.get(key) is None:
            continue
        if values[key] > base[key]:
            continue
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
                   f"with these settings its {model_traits(model, row)} fit this data worse than "
                   f"MF's free per-user and per-item embeddings (its section in params.yaml holds the settings "
                   f"to tune)")
        out.append(f"{model} does not beat MF-BPR on test {metric_label(key)} "
                   f"({values[key]:.4f} vs {base[key]:.4f}): {why}.")
    return out


__all__ = ["GRAPH_BASELINE", "MODEL_TRAITS", "NON_GRAPH_MODELS", "model_traits", "is_graph_model",
           "baseline_notes"]

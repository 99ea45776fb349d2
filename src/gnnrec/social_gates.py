"""How a social model weighs its ties: the learned gates summarised for the report (torch-free but for the
model call in :func:`gate_summary`'s caller). Where the kept ties carry ground truth (``graph.npz``'s
``social_fake``: planted fakes, or the data's marked noise), the gates are scored as a classifier of real
against fake ties (ROC AUC: the probability that a real tie's gate exceeds a fake one's)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

GATE_BINS = 10


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> Optional[float]:
    """P(a positive's score > a negative's), ties counted half (the Mann–Whitney statistic); None if a side
    is empty."""
    from scipy.stats import rankdata

    if len(positive) == 0 or len(negative) == 0:
        return None
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos = len(positive)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * len(negative)))


def fake_per_tie(tie_src: np.ndarray, tie_dst: np.ndarray, n_users: int, kept_src: np.ndarray,
                 kept_dst: np.ndarray, kept_fake: np.ndarray) -> np.ndarray:
    """Whether each of the model's (undirected, both directions) ties is known noise: a tie is fake when the kept
    tie it comes from (either direction) is marked in ``social_fake``."""
    fake_keys = np.concatenate([kept_src * n_users + kept_dst, kept_dst * n_users + kept_src])[
        np.concatenate([kept_fake, kept_fake]).astype(bool)]
    return np.isin(np.asarray(tie_src) * n_users + np.asarray(tie_dst), fake_keys)


def gate_summary(gates: np.ndarray, fake: Optional[np.ndarray]) -> dict[str, Any]:
    """Quantiles and a histogram of the gates; with ground truth, the mean gate of real and fake ties and the AUC."""
    g = np.asarray(gates, dtype=np.float64)
    counts, edges = np.histogram(g, bins=GATE_BINS, range=(0.0, 1.0))
    out: dict[str, Any] = {"ties": int(len(g)), "mean": round(float(g.mean()), 6) if len(g) else None,
                           "quantiles": {f"p{q}": round(float(np.percentile(g, q)), 6) for q in (10, 50, 90)}
                           if len(g) else {}, "histogram": {"edges": [round(float(e), 2) for e in edges],
                                                            "counts": counts.tolist()}}
    if fake is not None and len(g):
        fake = np.asarray(fake, dtype=bool)
        out.update({"fake_ties": int(fake.sum()),
                    "mean_real": round(float(g[~fake].mean()), 6) if (~fake).any() else None,
                    "mean_fake": round(float(g[fake].mean()), 6) if fake.any() else None,
                    "auc": None if (auc := roc_auc(g[~fake], g[fake])) is None else round(auc, 6)})
    return out

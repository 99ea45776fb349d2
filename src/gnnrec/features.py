"""User side features as integer codes (torch-free: the build_graph stage writes them into ``graph.npz``).

The vocabulary of each feature is the values its *known* users have (those with a training interaction),
sorted, numbered one feature after the other (``codes`` are global: feature ``f``'s levels follow
feature ``f - 1``'s). A value no known user has — a held-out user's rare value, or a typo at serving
time — is ``-1``: it cannot carry anything learned. The same vocabulary serves the similar-users scores
(:class:`gnnrec.cold_start.FeaturePopularity`) and the models' learned feature embeddings
(``<model>.user_features: true``), so their codes agree.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

#: the columns of ``users.parquet`` that are not side features
ID_COLUMNS = ("user_id", "raw_id")


def feature_columns(users_table: pd.DataFrame) -> list[str]:
    """The side-feature columns of ``users.parquet`` (every column but the ids), in file order."""
    return [c for c in users_table.columns if c not in ID_COLUMNS]


def vocabulary(features: pd.DataFrame, known: np.ndarray) -> dict[str, dict[str, int]]:
    """Per feature column of ``features`` (indexed by user id), value → global code, over the values of the
    ``known`` users (sorted; features numbered one after the other)."""
    vocab: dict[str, dict[str, int]] = {}
    offset = 0
    rows = features.reindex(known)
    for col in features.columns:
        values = sorted(set(rows[col].dropna().astype(str)))
        vocab[col] = {v: offset + j for j, v in enumerate(values)}
        offset += len(values)
    return vocab


def n_levels(vocab: Mapping[str, Mapping[str, int]]) -> int:
    return int(sum(len(v) for v in vocab.values()))


def encode(rows: Sequence[Optional[Mapping[str, str]]], vocab: Mapping[str, Mapping[str, int]]) -> np.ndarray:
    """``[len(rows), n_features]`` int64 codes of feature dicts (missing or unknown values: ``-1``)."""
    cols = list(vocab)
    out = np.full((len(rows), len(cols)), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            value = (row or {}).get(col)
            if value is not None:
                out[i, j] = vocab[col].get(str(value), -1)
    return out


def encode_table(features: pd.DataFrame, vocab: Mapping[str, Mapping[str, int]]) -> np.ndarray:
    """Codes of every row of a features table (columns in ``vocab``'s order), vectorised."""
    if not vocab:
        return np.zeros((len(features), 0), dtype=np.int64)
    return np.stack([features[col].astype(str).map(vocab[col]).fillna(-1).to_numpy(np.int64) for col in vocab], 1)

"""Loading the artifacts more than one stage reads (the graph, the training and validation interactions),
with errors that name the missing file and the stage that writes it."""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrec.errors import DataError
from gnnrec.io import load_torch, read_parquet
from gnnrec.paths import Paths
from gnnrec.training import InteractionData


def load_graph(paths: Paths) -> dict[str, Any]:
    if not paths.graph.exists():
        raise DataError("no graph: run the build_graph stage first", file=str(paths.graph))
    return load_torch(paths.graph)


def load_interaction_data(paths: Paths, graph: dict[str, Any]) -> InteractionData:
    """Training edges from ``graph.pt`` and validation pairs from ``val.parquet``."""
    val_path = paths.split / "val.parquet"
    if not val_path.exists():
        raise DataError("no validation split: run the split stage first", file=str(val_path))
    val = read_parquet(val_path)
    return InteractionData(
        n_users=int(graph["n_users"]), n_items=int(graph["n_items"]),
        train_user=graph["train_user"], train_item=graph["train_item"],
        val_user=val["user_id"].to_numpy(np.int64), val_item=val["item_id"].to_numpy(np.int64))

"""Loading the artifacts more than one stage reads (the graph, the training and validation interactions),
with errors that name the missing file and the stage that writes it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gnnrec.errors import DataError
from gnnrec.io import load_arrays, read_parquet, save_arrays
from gnnrec.paths import Paths
from gnnrec.training import InteractionData

GRAPH_ARRAYS = ("train_user", "train_item", "social_src", "social_dst")


def load_graph(paths: Paths) -> dict[str, Any]:
    """``graph.npz`` (written by the build_graph stage) as the dict the models' ``prepare`` takes:
    ``n_users``, ``n_items`` (ints), the int64 tensors ``train_user``, ``train_item``, ``social_src``,
    ``social_dst``, and ``social_ties_in`` (ties before the filter; ``None`` in a graph file that predates it)."""
    if not paths.graph.exists():
        raise DataError("no graph: run the build_graph stage first", file=str(paths.graph))
    arrays = load_arrays(paths.graph)
    missing = [k for k in ("n_users", "n_items", *GRAPH_ARRAYS) if k not in arrays]
    if missing:
        raise DataError(f"not a graph file: arrays {', '.join(missing)} missing; rerun the build_graph stage",
                        file=str(paths.graph))
    graph: dict[str, Any] = {"n_users": int(arrays["n_users"]), "n_items": int(arrays["n_items"])}
    graph.update({k: torch.from_numpy(np.ascontiguousarray(arrays[k], dtype=np.int64)) for k in GRAPH_ARRAYS})
    if "user_feature_codes" in arrays:       # side features ([n_users, F] codes, -1 unknown; gnnrec.features)
        graph["user_feature_codes"] = torch.from_numpy(np.ascontiguousarray(arrays["user_feature_codes"],
                                                                            dtype=np.int64))
        graph["n_feature_levels"] = int(arrays["n_feature_levels"])
    # the training ties before the social filter: 0 when the data has none (a social model is then skipped)
    graph["social_ties_in"] = int(arrays["social_ties_in"]) if "social_ties_in" in arrays else None
    if "train_weight" in arrays:             # per training edge: its time-decay weight (graph.time_decay)
        graph["train_weight"] = torch.from_numpy(np.ascontiguousarray(arrays["train_weight"], dtype=np.float32))
    if "social_fake" in arrays:              # per kept tie: known noise (planted or marked by the data)
        graph["social_fake"] = torch.from_numpy(np.ascontiguousarray(arrays["social_fake"], dtype=np.int8))
    return graph


def save_graph(paths: Paths, graph: dict[str, Any]) -> None:
    """Write a graph dict (tensors or arrays, as :func:`load_graph` returns it) to ``graph.npz``."""
    extra = {} if graph.get("social_ties_in") is None else {"social_ties_in": np.int64(graph["social_ties_in"])}
    save_arrays(paths.graph, {"n_users": np.int64(graph["n_users"]), "n_items": np.int64(graph["n_items"]),
                              **{k: np.asarray(graph[k], dtype=np.int64) for k in GRAPH_ARRAYS}, **extra})


def load_interaction_data(paths: Paths, graph: dict[str, Any]) -> InteractionData:
    """Training edges (with their time-decay weights, if any) from ``graph.npz`` and validation pairs from
    ``val.parquet``."""
    val_path = paths.split / "val.parquet"
    if not val_path.exists():
        raise DataError("no validation split: run the split stage first", file=str(val_path))
    val = read_parquet(val_path)
    return InteractionData(
        n_users=int(graph["n_users"]), n_items=int(graph["n_items"]),
        train_user=graph["train_user"], train_item=graph["train_item"],
        val_user=val["user_id"].to_numpy(np.int64), val_item=val["item_id"].to_numpy(np.int64),
        train_weight=graph.get("train_weight"))

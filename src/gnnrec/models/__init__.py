"""Recommendation models, one per file, PyG style, and the registry used by the stages.

Every model is an ``nn.Module`` built from plain numbers (``n_users``, ``n_items``, sizes) with:

- ``trainable`` (bool): whether the BPR loop trains it;
- ``forward(adj, users, pos, neg) -> (pos_scores [B], neg_scores [B])``;
- ``embed(adj) -> (user_emb [n_users, d], item_emb [n_items, d])``: scores are ``user_emb @ item_emb.T``;
- ``ego_embeddings(users, items)``: the layer-0 embeddings the L2 penalty applies to (trainable models);
- ``reset_parameters()`` and a ``__repr__`` naming its sizes.

A checkpoint is ``{"model": name, "kwargs": constructor kwargs, "state_dict": ...}`` (plain tensors and
numbers, loadable with ``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gnnrec.errors import ParamsError
from gnnrec.models.lightgcn import LightGCN, symmetric_spmm
from gnnrec.models.mf import MF
from gnnrec.models.popularity import Popularity

MODELS: dict[str, type[nn.Module]] = {
    "lightgcn": LightGCN,
    "mf": MF,
    "popularity": Popularity,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """``MODELS[name](**kwargs)``; an unknown name is a :class:`ParamsError` on ``models``."""
    if name not in MODELS:
        raise ParamsError("models", f"model names among {', '.join(MODELS)}", name)
    return MODELS[name](**kwargs)


def checkpoint(name: str, kwargs: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """The checkpoint dict of ``model`` (tensors detached and moved to the CPU)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"model": name, "kwargs": dict(kwargs), "state_dict": state}


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the model of a checkpoint dict and load its weights."""
    model = build_model(ckpt["model"], **ckpt["kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    return model


__all__ = ["MODELS", "LightGCN", "MF", "Popularity", "build_model", "checkpoint", "model_from_checkpoint",
           "symmetric_spmm"]

"""Recommendation models, one per file, PyG style, and the registry used by the stages.

Every model is an ``nn.Module`` built from plain numbers (``n_users``, ``n_items``, sizes) with:

- ``trainable`` (bool): whether the BPR loop trains it;
- ``forward(adj, users, pos, neg) -> (pos_scores [B], neg_scores [B])``;
- ``embed(adj) -> (user_emb [n_users, d], item_emb [n_items, d])``: scores are ``user_emb @ item_emb.T``;
- ``ego_embeddings(users, items)``: the layer-0 embeddings the L2 penalty applies to (trainable models);
- ``reset_parameters()`` and a ``__repr__`` naming its sizes;
- optionally ``prepare(graph)``: models that need more of the graph than the normalised adjacency (the
  social ties; the CSR their samplers walk) derive non-persistent buffers from ``graph.pt``'s dict. The
  stages call :func:`prepare_model` after building or loading a model, so a checkpoint holds only
  learned weights and is rebuilt with the same buffers;
- optionally ``negative_sampler(sampler) -> sampler``: a model may adapt the training loop's negative
  sampler (PinSage mixes in hard negatives by a curriculum).

A checkpoint is ``{"model": name, "kwargs": constructor kwargs, "state_dict": ...}`` (plain tensors and
numbers, loadable with ``torch.load(..., weights_only=True)``).
"""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from gnnrec.errors import ParamsError
from gnnrec.models.common import GraphInputError
from gnnrec.models.gat import GAT
from gnnrec.models.gcn import GCN
from gnnrec.models.graphsage import GraphSAGE
from gnnrec.models.lightgcn import LightGCN, symmetric_spmm
from gnnrec.models.mf import MF
from gnnrec.models.ngcf import NGCF
from gnnrec.models.pinsage import PinSage
from gnnrec.models.popularity import Popularity
from gnnrec.models.social import SocialGNN

MODELS: dict[str, type[nn.Module]] = {
    "lightgcn": LightGCN,
    "mf": MF,
    "popularity": Popularity,
    "ngcf": NGCF,
    "gcn": GCN,
    "gat": GAT,
    "graphsage": GraphSAGE,
    "pinsage": PinSage,
    "social": SocialGNN,
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


def prepare_model(model: nn.Module, graph: Optional[dict[str, Any]]) -> nn.Module:
    """Give ``model`` the graph inputs it needs (``model.prepare(graph)`` when it has that hook)."""
    if graph is not None and hasattr(model, "prepare"):
        model.prepare(graph)
    return model


def model_from_checkpoint(ckpt: dict[str, Any], graph: Optional[dict[str, Any]] = None) -> nn.Module:
    """Rebuild the model of a checkpoint dict and load its weights (and, given ``graph.pt``'s dict, the
    buffers it derives from the graph: :func:`prepare_model`)."""
    model = build_model(ckpt["model"], **ckpt["kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    return prepare_model(model, graph)


__all__ = ["GAT", "GCN", "MODELS", "NGCF", "GraphInputError", "GraphSAGE", "LightGCN", "MF", "PinSage",
           "Popularity", "SocialGNN", "build_model", "checkpoint", "model_from_checkpoint", "prepare_model",
           "symmetric_spmm"]

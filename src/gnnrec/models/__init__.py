"""Recommendation models, one per file, and the helpers the stages use to build, save and load them.

Every model implements :class:`gnnrec.models.base.Recommender` (the contract); the names in
``params.models`` resolve through :mod:`gnnrec.models.registry`. Importing this package imports no model
(and neither torch nor PyG): the classes load on first use (``from gnnrec.models import LightGCN``).
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

from gnnrec.models.registry import BUILTIN, build_model, model_class

_CLASSES = {target.partition(":")[2]: target for target in BUILTIN.values()}
_LAZY = {"Recommender": "gnnrec.models.base:Recommender", "NotSupportedError": "gnnrec.models.base:NotSupportedError",
         "GraphInputError": "gnnrec.models.base:GraphInputError",
         "NoSocialTiesError": "gnnrec.models.base:NoSocialTiesError", **_CLASSES}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attr = _LAZY[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def checkpoint(name: str, kwargs: dict[str, Any], model: Any, target: Optional[str] = None) -> dict[str, Any]:
    """The checkpoint dict of ``model`` (tensors detached and moved to the CPU); ``target``: the import path
    of a user's model class (kept so that the checkpoint loads without the params)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    out = {"model": name, "kwargs": dict(kwargs), "state_dict": state}
    return {**out, "target": target} if target else out


def model_from_checkpoint(ckpt: dict[str, Any], graph: Optional[dict[str, Any]] = None) -> Any:
    """Rebuild the model of a checkpoint dict and load its weights (and, given ``graph.npz``'s dict, the
    buffers it derives from the graph: ``model.prepare(graph)``)."""
    model = build_model(ckpt["model"], ckpt.get("target"), **ckpt["kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    return model.prepare(graph) if graph is not None else model


__all__ = ["BUILTIN", "build_model", "checkpoint", "model_class", "model_from_checkpoint", *_LAZY]

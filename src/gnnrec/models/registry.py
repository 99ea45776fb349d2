"""The model registry: names → model classes, resolved lazily (this module imports neither torch nor PyG).

A name in ``params.models`` is either a built-in model (a line of :data:`BUILTIN`) or a name of the user's
choosing whose section gives the import path ``package.module:ClassName`` of their own
:class:`gnnrec.models.base.Recommender` subclass under the key ``model`` (``shop: {model:
my_models.shop:ShopModel, ...}``), found on ``sys.path`` (the project root is on it when a stage runs).
The import path is not the name itself because DVC reads a dotted params key as nested sections. Adding a
built-in model is one model file plus one line here; a user's model needs no change to gnnrec at all.

Resolving a name imports the model's module (and so torch): the params loader does it only for the
stages that check model sections (:mod:`gnnrec.config.params`).
"""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from typing import Any, Optional

from gnnrec.errors import ParamsError

#: built-in models: name → ``module:Class``
BUILTIN: dict[str, str] = {
    "popularity": "gnnrec.models.popularity:Popularity",
    "mf": "gnnrec.models.mf:MF",
    "lightgcn": "gnnrec.models.lightgcn:LightGCN",
    "ngcf": "gnnrec.models.ngcf:NGCF",
    "gcn": "gnnrec.models.gcn:GCN",
    "gat": "gnnrec.models.gat:GAT",
    "graphsage": "gnnrec.models.graphsage:GraphSAGE",
    "pinsage": "gnnrec.models.pinsage:PinSage",
    "social": "gnnrec.models.social:SocialGNN",
    "sociallgn": "gnnrec.models.sociallgn:SocialLGN",
    "gfcf": "gnnrec.models.graph_filters:GFCF",
    "bspm": "gnnrec.models.bspm:BSPM",
}

_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_NAME = re.compile(r"^[A-Za-z_][\w-]*$")


def expected_names() -> str:
    return (f"model names among {', '.join(BUILTIN)}, or a name of your own whose section gives its class as "
            "'model: package.module:ClassName'")


def is_model_name(name: Any) -> bool:
    """Whether ``name`` can name a model (letters, digits, ``_`` and ``-``); nothing is imported."""
    return isinstance(name, str) and bool(_NAME.match(name))


def is_import_path(target: Any) -> bool:
    return isinstance(target, str) and bool(_IMPORT_PATH.match(target))


@lru_cache(maxsize=None)
def model_class(name: str, target: Optional[str] = None) -> type:
    """The model class of model ``name``: the built-in one, or the class at ``target``
    (``package.module:ClassName``). One that does not resolve to a ``Recommender`` subclass is a
    :class:`ParamsError` on ``models`` (or on ``<name>.model``) saying why."""
    from gnnrec.models.base import Recommender  # imports torch

    key = "models" if target is None else f"{name}.model"
    if target is None and name not in BUILTIN:
        raise ParamsError("models", expected_names(), name)
    if target is not None and not is_import_path(target):
        raise ParamsError(key, "an import path package.module:ClassName", target)
    module_name, _, attr = (target or BUILTIN[name]).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ParamsError(key, f"an importable model module for {name!r}", f"{type(exc).__name__}: {exc}") \
            from None
    cls = getattr(module, attr, None)
    if cls is None:
        raise ParamsError(key, f"a class {attr!r} in module {module_name!r}", "no such attribute")
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ParamsError(key, f"{name!r} to name a subclass of gnnrec.models.base.Recommender", repr(cls))
    return cls


def build_model(name: str, target: Optional[str] = None, **kwargs: Any) -> Any:
    """``model_class(name, target)(**kwargs)``."""
    return model_class(name, target)(**kwargs)

"""Serving recommendations from a run's model files, to known users and to new users (cold start).

:func:`load_service` reads, once, what a run wrote — ``artifacts/models/<model>.pt``, ``graph.npz``, the
validation split, the id maps and side features of ``artifacts/dataset`` and the cold-start settings the
evaluate stage chose — and returns a :class:`Service`; each request then costs one embedding and one
scoring pass over the items, raw ids in and out:

- :meth:`Service.recommend_known`: a user with training interactions gets the model's ranking embeddings'
  top items, training and validation items masked (and the items the split held out as new, which are not
  in the catalogue yet) — the ranking of ``artifacts/recommendations.parquet``, for any ``n``;
- :meth:`Service.recommend_new`: a user the model has never seen, given as the items it has touched, its
  friends (known users) and its side-feature values, gets :class:`gnnrec.cold_start.ColdStartScorer`'s
  scores — the model's served path (:meth:`~gnnrec.models.base.Recommender.infer_users`), blended with its
  similar users (its friends' mean embedding; the training items of the users who share its feature
  values), the popularity ranking when nothing is known — with the given items (and the held-out ones)
  masked. The blend's ``shrink``, whether a user without items is scored by its similar users
  (``zero_similar``) and the model's inference settings are those the evaluate stage chose on the
  validation users (``reports/evaluation.json`` → ``cold_start.models.<model>``); without that file, or
  where the evaluation had no side information to choose them with, :data:`DEFAULT_SHRINK`, similar users
  at ``k = 0`` and the model's default settings (the first of each ``cold_start_settings`` list).

Ids that the training data does not know (items, friends without training interactions, feature names or
values no training user has) raise :class:`UnknownIdsError`, which names every one of them in one line;
with ``ignore_unknown=True`` they are dropped with an :class:`UnknownIdsWarning` instead. A project without
a run raises :class:`NoRunError` (run ``make run`` or ``dvc repro`` first).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gnnrec import cold_start as cs
from gnnrec.artifacts import load_graph, load_interaction_data
from gnnrec.errors import DataError, GnnrecError
from gnnrec.evaluation import csr_union, score_rows, topk_tiebreak
from gnnrec.io import load_torch, read_json, read_parquet
from gnnrec.models import model_from_checkpoint
from gnnrec.paths import Paths
from gnnrec.training import prepare_adjacency, resolve_device

#: the similar-users blend's ``c`` when no evaluation chose one: a new user with few items leans on its
#: similar users (``λ = c / (c + k)``: 0.5 at ``k = 1``, 0.25 at ``k = 3``)
DEFAULT_SHRINK = 1.0
RUN_HINT = "run `make run` (or `dvc repro`) first"


class Recommendation(NamedTuple):
    """One recommended item: its raw id, its name (None where the data has none) and its score."""

    item: str
    name: Optional[str]
    score: float


class NoRunError(DataError):
    """The project has no (complete) run: a file the service loads is missing."""


class UnknownIdsError(GnnrecError, ValueError):
    """Ids (or feature names and values) that the training data does not know; ``unknown`` maps what they
    are (``users``, ``items``, ``friends``, ``features``, ``feature values``) to every such id, in order."""

    def __init__(self, unknown: Mapping[str, list[str]]) -> None:
        self.unknown = {kind: list(ids) for kind, ids in unknown.items() if ids}
        super().__init__(self.unknown)

    def __str__(self) -> str:
        return "unknown ids (not in the training data): " + describe_unknown(self.unknown)


class UnknownIdsWarning(UserWarning):
    """Unknown ids that a request with ``ignore_unknown=True`` dropped."""


def describe_unknown(unknown: Mapping[str, list[str]]) -> str:
    """``items 'a', 'b'; friends 'u9'; features 'height'`` (one line)."""
    return "; ".join(f"{kind} {', '.join(repr(str(x)) for x in ids)}" for kind, ids in unknown.items() if ids)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise NoRunError(f"{what} not found: no run yet? {RUN_HINT}", file=str(path))
    return path


class Service:
    """One trained model of a run, loaded once, answering requests by raw ids (see the module docstring).

    Attributes: ``model_name``, ``model``, ``state`` (its :meth:`serving_state`), ``scorer`` (the
    :class:`~gnnrec.cold_start.ColdStartScorer`), ``n_users``, ``n_items``, ``features`` (the side-feature
    names) and ``feature_values`` (those of training users), the cold-start settings in use — ``shrink``,
    ``zero_similar``, ``settings`` — with ``settings_source`` (``reports/evaluation.json`` or ``defaults``),
    ``load_seconds``."""

    def __init__(self, root: str | Path = ".", model: str = "lightgcn", device: str = "cpu") -> None:
        t0 = time.perf_counter()
        paths = Paths(Path(root))
        self.model_name = model
        for path, what in ((paths.graph, "graph"), (paths.split / "val.parquet", "validation split"),
                           (paths.dataset / "users.parquet", "user id map"),
                           (paths.dataset / "items.parquet", "item id map")):
            _require(path, what)
        ckpt_path = paths.model(model)
        if not ckpt_path.exists():
            trained = sorted(p.stem for p in ckpt_path.parent.glob("*.pt"))
            if not trained:
                _require(ckpt_path, f"model {model!r}")
            raise NoRunError(f"no trained model {model!r} (trained: {', '.join(trained)}): add it to params.yaml's "
                             "models and run `dvc repro`", file=str(ckpt_path))
        try:
            self.device = resolve_device(device)
        except RuntimeError as exc:                     # not a device name torch knows
            raise GnnrecError(f"device {device!r}: {str(exc).splitlines()[0]}") from None
        graph = load_graph(paths)
        data = load_interaction_data(paths, graph)
        self.n_users, self.n_items = data.n_users, data.n_items
        users_tbl = read_parquet(paths.dataset / "users.parquet").sort_values("user_id")
        items_tbl = read_parquet(paths.dataset / "items.parquet").sort_values("item_id")
        if len(users_tbl) != self.n_users or len(items_tbl) != self.n_items:
            raise DataError(f"id maps ({len(users_tbl)} users, {len(items_tbl)} items) do not match the graph "
                            f"({self.n_users} users, {self.n_items} items): rerun build_graph",
                            file=str(paths.dataset))
        ckpt = load_torch(ckpt_path)
        if ckpt.get("skipped"):
            raise NoRunError(f"model {model!r} was not trained on this data ({ckpt['skipped']})", file=str(ckpt_path))
        self.model = model_from_checkpoint(ckpt, graph).to(self.device).eval()
        adj = prepare_adjacency(data.adjacency(), self.device)
        with torch.no_grad():
            self.state = self.model.serving_state(adj)
            # the known users' ranking: ``embed`` as the evaluate stage computes it (the same bits as
            # recommendations.parquet; ``serving_state`` may sum the layers in another order)
            self.user_emb, self.item_emb = self.model.embed(adj)

        # id maps, names
        self.user_raw = users_tbl["raw_id"].astype(str).to_numpy()
        self.item_raw = items_tbl["raw_id"].astype(str).to_numpy()
        self.user_index = {raw: i for i, raw in enumerate(self.user_raw)}
        self.item_index = {raw: i for i, raw in enumerate(self.item_raw)}
        names = items_tbl["name"] if "name" in items_tbl.columns else pd.Series([None] * self.n_items)
        self.item_names = [n if isinstance(n, str) and n else None for n in names.tolist()]

        # training users, popularity, masks
        train_user = torch.as_tensor(graph["train_user"]).long()
        self.popularity = torch.bincount(torch.as_tensor(graph["train_item"]).long(),
                                         minlength=self.n_items).float().to(self.device)
        self.known = torch.unique(train_user).numpy()
        self.is_known = np.zeros(self.n_users, dtype=bool)
        self.is_known[self.known] = True
        self.seen = csr_union(data.train_csr(), data.val_csr(), self.n_items)      # masked for known users
        cold_path = paths.split / "cold_items.parquet"
        hidden = read_parquet(cold_path)["item_id"].to_numpy(np.int64) if cold_path.exists() else []
        self.hidden = torch.tensor(np.asarray(hidden, np.int64), device=self.device)

        # side features: the scorer's per-value tables of the training users' items (computed once)
        side = cs.side_info(users_tbl, pd.DataFrame({"src": [], "dst": []}), np.zeros(0, np.int64))
        self.scorer = cs.ColdStartScorer(self.model, self.state, self.popularity, self.known, side.features,
                                         train_user.numpy(), torch.as_tensor(graph["train_item"]).long().numpy())
        levels = self.scorer.similar.levels if self.scorer.similar is not None else {}
        self.features: list[str] = list(levels)
        self.feature_values = {c: set(values) for c, values in levels.items()}   # seen among training users
        self.shrink, self.zero_similar, self.settings, self.settings_source = \
            self._cold_start_settings(paths.eval_details)
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------ settings
    def _cold_start_settings(self, path: Path) -> tuple[float, bool, dict[str, Any], str]:
        """``(shrink, zero_similar, settings, source)``: the evaluation's choice where it made one."""
        grid = dict(getattr(self.model, "cold_start_settings", {}) or {})
        settings = {key: values[0] for key, values in grid.items()}
        chosen = None
        if path.exists():
            try:
                chosen = read_json(path).get("cold_start", {}).get("models", {}).get(self.model_name)
            except (OSError, ValueError, AttributeError):
                chosen = None
        if not isinstance(chosen, dict) or "shrink" not in chosen:
            return DEFAULT_SHRINK, True, settings, "defaults"
        settings.update({k: v for k, v in (chosen.get("settings") or {}).items() if k in grid})
        # shrink and zero_similar were chosen only where the evaluation had side information to try them with
        trials = [t for t in chosen.get("trials") or [] if isinstance(t, dict)]
        tried = {t.get("shrink") for t in trials if "shrink" in t}
        shrink = float(chosen["shrink"]) if len(tried) > 1 else DEFAULT_SHRINK
        zero = bool(chosen.get("zero_similar")) if any("zero_similar" in t for t in trials) else True
        return shrink, zero, settings, "reports/evaluation.json"

    # ------------------------------------------------------------------------------------ requests
    def recommend_known(self, user: str, n: int = 10) -> list[Recommendation]:
        """The top ``n`` items of a user with training interactions (raw id), training and validation items
        and the held-out new items masked."""
        uid = self.user_index.get(str(user))
        if uid is None or not self.is_known[uid]:
            raise UnknownIdsError({"users": [str(user)]})
        indptr, indices = self.seen
        with torch.no_grad():
            scores = score_rows(self.user_emb, self.item_emb, torch.tensor([uid], device=self.device))
            scores[0, indices[indptr[uid]:indptr[uid + 1]].to(scores.device)] = float("-inf")
            scores[0, self.hidden] = float("-inf")
        return self._top(scores, n)

    def recommend_new(self, items: Iterable[str] = (), friends: Iterable[str] = (),
                      features: Optional[Mapping[str, Any]] = None, n: int = 10,
                      ignore_unknown: bool = False) -> list[Recommendation]:
        """The top ``n`` items of a new user: the raw ids of the items it has touched (masked in the answer)
        and of its friends (known users), its side-feature values by feature name."""
        item_ids, friend_ids, values = self.resolve(items, friends, features, ignore_unknown)
        with torch.no_grad():
            user_rows, item_rows = self.embed_new(item_ids, friend_ids, values)
            scores = user_rows @ item_rows.t()
            if item_ids:
                scores[0, torch.tensor(item_ids, device=scores.device)] = float("-inf")
            scores[0, self.hidden] = float("-inf")
        return self._top(scores, n)

    def resolve(self, items: Iterable[str] = (), friends: Iterable[str] = (),
                features: Optional[Mapping[str, Any]] = None,
                ignore_unknown: bool = False) -> tuple[list[int], list[int], dict[str, str]]:
        """``(item ids, friend ids, {feature: value})`` of a request's raw ids (duplicates dropped, order
        kept); :class:`UnknownIdsError` naming every unknown one, or, with ``ignore_unknown``, a warning."""
        unknown: dict[str, list[str]] = {"items": [], "friends": [], "features": [], "feature values": []}
        item_ids: list[int] = []
        for raw in dict.fromkeys(str(x) for x in items):
            i = self.item_index.get(raw)
            if i is None:
                unknown["items"].append(raw)
            else:
                item_ids.append(i)
        friend_ids: list[int] = []
        for raw in dict.fromkeys(str(x) for x in friends):
            u = self.user_index.get(raw)
            if u is None or not self.is_known[u]:
                unknown["friends"].append(raw)
            else:
                friend_ids.append(u)
        values: dict[str, str] = {}
        for name, value in (features or {}).items():
            if name not in self.feature_values:
                unknown["features"].append(str(name))
            elif str(value) not in self.feature_values[name]:
                unknown["feature values"].append(f"{name}={value}")
            else:
                values[name] = str(value)
        if any(unknown.values()):
            if not ignore_unknown:
                raise UnknownIdsError(unknown)
            warnings.warn(f"ignoring unknown ids: {describe_unknown(unknown)}", UnknownIdsWarning, stacklevel=3)
        return item_ids, friend_ids, values

    @torch.no_grad()
    def embed_new(self, item_ids: list[int], friend_ids: list[int],
                  values: Mapping[str, str]) -> tuple[Tensor, Tensor]:
        """``(user row [1, *], item rows [n_items, *])`` of one new user (resolved ids) whose products are its
        scores: :meth:`ColdStartScorer.embed <gnnrec.cold_start.ColdStartScorer.embed>` with the settings in
        use, as the evaluate stage scores its held-out users."""
        items = [torch.tensor(item_ids, dtype=torch.long, device=self.device)]
        friends = [torch.tensor(friend_ids, dtype=torch.long, device=self.device)] if friend_ids else None
        return self.scorer.embed(items, self.shrink, self.settings, [dict(values)] if values else None, friends,
                                 zero_similar=self.zero_similar)

    def _top(self, scores: Tensor, n: int) -> list[Recommendation]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        vals, ids = topk_tiebreak(scores, n)
        out = []
        for v, i in zip(vals[0].tolist(), ids[0].tolist()):
            if np.isfinite(v):
                out.append(Recommendation(str(self.item_raw[i]), self.item_names[i], float(v)))
        return out


def load_service(root: str | Path = ".", model: str = "lightgcn", device: str = "cpu") -> Service:
    """Load model ``model`` of the run in project ``root`` for serving (see :class:`Service`)."""
    return Service(root, model, device)


__all__ = ["DEFAULT_SHRINK", "NoRunError", "Recommendation", "Service", "UnknownIdsError", "UnknownIdsWarning",
           "describe_unknown", "load_service"]

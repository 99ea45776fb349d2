"""The evaluate stage's cold-start part: every model scores the held-out users and items per ``k``.

Inputs (written by the split stage, :mod:`gnnrec.split`): ``cold_users.parquet`` (ids and roles),
``cold_user_interactions.parquet``, ``cold_items.parquet``, ``cold_item_interactions.parquet``; the side
information from ``artifacts/dataset`` (feature columns of ``users.parquet``, the ties of
``social.parquet``). For each model, :mod:`gnnrec.cold_start` chooses the inference settings on the
validation held-out users, then scores the test held-out users at every ``k`` (served path; the exact
path too for the models that have one, with the gap), new items, and the served path's latency for one
user at a time.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from gnnrec import cold_start as cs
from gnnrec.config import Params
from gnnrec.io import read_parquet
from gnnrec.models.base import NotSupportedError
from gnnrec.paths import Paths

PER_USER_COLUMNS = ["model", "kind", "k", "id", "ndcg@20", "recall@20"]


class ColdStartInputs:
    """The held-out users and items and their side information, read once for every model."""

    def __init__(self, params: Params, paths: Paths, graph: dict[str, Any]) -> None:
        self.ks = list(params.split.cold_start.k)
        self.metric_ks = sorted(set(params.evaluate.k) | {20})
        self.chunk = params.evaluate.chunk_size
        self.cfg = params.evaluate.cold_start
        self.seed = params.seed
        self.n_users, self.n_items = int(graph["n_users"]), int(graph["n_items"])
        split = paths.split
        roles = _read_optional(split / "cold_users.parquet", ["user_id", "role"])
        inter = _read_optional(split / "cold_user_interactions.parquet", ["user_id", "item_id", "reveal"])
        items = _read_optional(split / "cold_item_interactions.parquet", ["user_id", "item_id", "reveal"])
        self.cold_items = _read_optional(split / "cold_items.parquet", ["item_id"])["item_id"].to_numpy(np.int64)
        users = cs.new_entities(inter, "user_id", "item_id", roles)
        self.test, self.val = users.select("test"), users.select("val")
        self.items = cs.new_entities(items, "item_id", "user_id")
        self.cold_users = roles["user_id"].to_numpy(np.int64)
        train_user = torch.as_tensor(graph["train_user"]).long()
        train_item = torch.as_tensor(graph["train_item"]).long()
        self.popularity = torch.bincount(train_item, minlength=self.n_items).float()
        self.activity = torch.bincount(train_user, minlength=self.n_users).float()
        self.known = torch.unique(train_user).numpy()
        users_tbl = read_parquet(paths.dataset / "users.parquet")
        social_path = paths.dataset / "social.parquet"
        social = read_parquet(social_path) if social_path.exists() else pd.DataFrame({"src": [], "dst": []})
        self.side = cs.side_info(users_tbl, social, self.cold_users)
        self.graph = graph
        self.train_user, self.train_item = train_user.numpy(), train_item.numpy()

    @property
    def active(self) -> bool:
        return len(self.test) > 0 or len(self.items) > 0


def _read_optional(path, columns) -> pd.DataFrame:
    if path.exists():
        return read_parquet(path)
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c != "role" else "str") for c in columns})


def _summary(per_user: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: round(float(v.mean()), 6) if v.numel() else 0.0 for name, v in per_user.items()}


def _se(values: torch.Tensor) -> Optional[float]:
    n = values.numel()
    return round(float(values.std(unbiased=True)) / np.sqrt(n), 6) if n > 1 else None


def evaluate_model(name: str, model: Any, state: dict[str, Any], inp: ColdStartInputs
                   ) -> tuple[dict[str, Any], dict[str, Any], list[pd.DataFrame]]:
    """``(metrics, details, per-user frames)`` of one model on the held-out users and items."""
    scorer = cs.ColdStartScorer(model, state, inp.popularity, inp.known, inp.side.features, inp.train_user,
                                inp.train_item)
    choice = cs.choose_settings(scorer, inp.val, inp.side, inp.ks, inp.n_items, inp.chunk)
    shrink, settings, zero = choice.shrink, choice.settings, choice.zero_similar
    metrics: dict[str, Any] = {"users": {}, "items": {}}
    details: dict[str, Any] = {"shrink": shrink, "settings": settings, "zero_similar": zero,
                               "trials": choice.trials, "users": {}, "items": {}, "exact": {}, "gap": {}}
    frames = []
    if len(inp.test):
        served = cs.score_users(scorer, inp.test, inp.side, inp.ks, inp.n_items, inp.metric_ks, inp.chunk,
                                shrink, settings, zero_similar=zero)
        for k, (rows, per_user) in served.items():
            metrics["users"][f"k={k}"] = _summary(per_user)
            details["users"][f"k={k}"] = {"n": int(rows.numel()), "ndcg@20_se": _se(per_user["ndcg@20"])}
            frames.append(_frame(name, "users", k, inp.test.ids[rows.cpu().numpy()], per_user))
        if inp.cfg.exact:
            try:
                exact = cs.score_users(scorer, inp.test, inp.side, inp.ks, inp.n_items, [20], inp.chunk, shrink,
                                       settings, exact=lambda items, friends: model.exact_users(inp.graph, items,
                                                                                              friends),
                                       zero_similar=zero)
            except NotSupportedError:
                exact = None
            if exact is not None:
                for k, (_, per_user) in exact.items():
                    value = float(per_user["ndcg@20"].mean()) if per_user["ndcg@20"].numel() else 0.0
                    details["exact"][f"k={k}"] = {"ndcg@20": round(value, 6)}
                    details["gap"][f"k={k}"] = round(metrics["users"][f"k={k}"]["ndcg@20"] - value, 6)
        if inp.cfg.fold_in_only and scorer.personalised:
            own, own_frames = _fold_in_only(name, scorer, inp, choice)
            metrics["fold_in"] = own
            frames.extend(own_frames)
        if inp.cfg.meta and scorer.personalised:
            meta_metrics, meta_details, meta_frames = _meta(name, scorer, state, inp, choice)
            metrics["meta"], details["meta"] = meta_metrics, meta_details
            frames.extend(meta_frames)
        k_lat = max(inp.ks)
        details["latency_ms"] = cs.served_latency_ms(scorer, inp.test, inp.side, k_lat, choice,
                                                     inp.cfg.latency_users)
        details["latency_k"] = k_lat
    if len(inp.items):
        scored = cs.score_items(model, state, inp.items, inp.ks, inp.n_users, inp.cold_users, inp.activity,
                                inp.metric_ks, inp.chunk)
        for k, (rows, per_item) in scored.items():
            metrics["items"][f"k={k}"] = _summary(per_item)
            details["items"][f"k={k}"] = {"n": int(rows.numel()), "ndcg@20_se": _se(per_item["ndcg@20"])}
            frames.append(_frame(name, "items", k, inp.items.ids[rows.cpu().numpy()], per_item))
    return metrics, details, frames


def _fold_in_only(name: str, scorer: cs.ColdStartScorer, inp: ColdStartInputs, choice: cs.Choice
                  ) -> tuple[dict[str, Any], list[pd.DataFrame]]:
    """The model's own inference with no similar-users or feature blend (``shrink`` 0, popularity at ``k = 0``),
    its settings the best of the validation trials without a blend: ``<model>:fold-in``."""
    own = [t for t in choice.trials if t.get("shrink") == 0.0 and "settings" in t]
    settings = max(own, key=lambda t: t["ndcg@20"])["settings"] if own else choice.settings
    scored = cs.score_users(scorer, inp.test, inp.side, inp.ks, inp.n_items, inp.metric_ks, inp.chunk, 0.0,
                            settings, zero_similar=False)
    metrics = {f"k={k}": _summary(per_user) for k, (_, per_user) in scored.items()}
    frames = [_frame(f"{name}:fold-in", "users", k, inp.test.ids[rows.cpu().numpy()], per_user)
              for k, (rows, per_user) in scored.items()]
    return metrics, frames


def _meta(name: str, scorer: cs.ColdStartScorer, state: dict[str, Any], inp: ColdStartInputs, choice: cs.Choice
          ) -> tuple[dict[str, Any], dict[str, Any], list[pd.DataFrame]]:
    """The meta-learned adaptation (:mod:`gnnrec.meta`) in place of the served path, blended the same way:
    metrics per ``k`` (reported as ``<model>+meta``) and its meta-training time."""
    from gnnrec.graph import csr_from_pairs
    from gnnrec.meta import meta_train

    train_csr = csr_from_pairs(inp.n_users, inp.n_items, inp.train_user, inp.train_item)
    t0 = time.perf_counter()
    adapter = meta_train(state, train_csr, ks=[k for k in inp.ks if k > 0] or [1], steps=inp.cfg.meta_steps,
                         iterations=inp.cfg.meta_iterations, seed=inp.seed)
    seconds = time.perf_counter() - t0
    def adapted(items, friends):
        """The adapted embeddings; a user with no items keeps the model's served path (friends, for the
        social model): with nothing to adapt from, the adapter has nothing to add."""
        out = adapter.adapt(items, state)
        empty = torch.tensor([int(x.numel()) == 0 for x in items], device=out.device)
        if bool(empty.any()):
            served = scorer.model.infer_users(items, friends=friends, state=state, **choice.settings)
            out = torch.where(empty[:, None], served.to(out), out)
        return out

    scored = cs.score_users(scorer, inp.test, inp.side, inp.ks, inp.n_items, inp.metric_ks, inp.chunk,
                            choice.shrink, choice.settings, exact=adapted, zero_similar=choice.zero_similar)
    metrics = {f"k={k}": _summary(per_user) for k, (_, per_user) in scored.items()}
    frames = [_frame(f"{name}+meta", "users", k, inp.test.ids[rows.cpu().numpy()], per_user)
              for k, (rows, per_user) in scored.items()]
    return metrics, {"train_seconds": round(seconds, 3), "steps": inp.cfg.meta_steps}, frames


def _frame(model: str, kind: str, k: int, ids: np.ndarray, per_user: dict[str, torch.Tensor]) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame({"model": pd.Series([model] * n, dtype="str"), "kind": pd.Series([kind] * n, dtype="str"),
                         "k": np.full(n, k, dtype=np.int64), "id": ids.astype(np.int64),
                         "ndcg@20": per_user["ndcg@20"].cpu().numpy().astype(np.float64),
                         "recall@20": per_user["recall@20"].cpu().numpy().astype(np.float64)})


def empty_per_user() -> pd.DataFrame:
    return pd.DataFrame({"model": pd.Series([], dtype="str"), "kind": pd.Series([], dtype="str"),
                         "k": pd.Series([], dtype="int64"), "id": pd.Series([], dtype="int64"),
                         "ndcg@20": pd.Series([], dtype="float64"), "recall@20": pd.Series([], dtype="float64")})

"""Scoring new users and items from the few interactions they have — the cold-start protocol's evaluator.

The split stage holds users and items out of everything a model is trained or fitted on
(:func:`gnnrec.split.hold_out_cold_start`). For each ``k`` of ``split.cold_start.k`` a held-out user
reveals its first ``k`` interactions (``reveal < k``); only those items, its side features and its ties
to known users are given to the model; the rest are the targets, ranked against **all** items with the
revealed ones masked, by the metrics of :mod:`gnnrec.evaluation`.

A new user's embedding, with no gradient step on the trained weights:

1. the model's served path, :meth:`~gnnrec.models.base.Recommender.infer_users` (fold-in, learned
   aggregators, friends for the social model), with the model's ``cold_start_settings``;
2. blended with the **mean of similar users**, with weight ``λ_k = c / (c + k)``: the blend leans on
   similar users while the user has few interactions and fades as ``k`` grows. Similar users are the
   named friends (the mean of their ranking embeddings, both parts scaled to unit length) and, with side
   features, the training users who share each feature value: the mean of their training interactions,
   averaged over the features (:class:`FeaturePopularity`; both the model's and these scores scaled to
   unit spread over the items) — which keeps the popularity among similar users that a mean of their
   embeddings loses;
3. with nothing known at all (``k = 0``, no features, no friends): the training popularity ranking.

``c`` and the model's settings are chosen on the *validation* held-out users only (``role == "val"``),
by the mean NDCG@20 over the ``k`` values, and then applied unchanged to the test users.

New items: the mean ranking embedding of the ``k`` known users who touched the item (the model's
:meth:`~gnnrec.models.base.Recommender.infer_items`); they rank all known users, the revealed users
masked, against the other users who touched the item. The non-personalised baseline ranks users by
their training activity.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gnnrec.evaluation import ranking_metrics_per_user
from gnnrec.features import encode, encode_table, n_levels, vocabulary
from gnnrec.graph import csr_from_pairs
from gnnrec.models.inductive import mean_rows

#: candidates for the blend's ``c`` (0: no similar-users blend)
SHRINK_CANDIDATES = (0.0, 1.0, 3.0, 10.0)
SELECT_METRIC = "ndcg@20"


@dataclass
class NewEntities:
    """Held-out users (or items) with their interactions in reveal order.

    ``ids``: ``[m]`` ids; ``ordered``: per entity, the counterpart ids sorted by ``reveal`` (items of a
    user, users of an item); ``role``: ``test`` / ``val`` per entity."""

    ids: np.ndarray
    ordered: list[np.ndarray]
    role: np.ndarray

    def select(self, role: str) -> "NewEntities":
        keep = self.role == role
        return NewEntities(self.ids[keep], [o for o, k in zip(self.ordered, keep) if k], self.role[keep])

    def __len__(self) -> int:
        return int(len(self.ids))


def new_entities(frame: pd.DataFrame, key: str, other: str, roles: Optional[pd.DataFrame] = None) -> NewEntities:
    """Group held-out interactions (``key``, ``other``, ``reveal``) by ``key``, each in reveal order."""
    if frame.empty:
        return NewEntities(np.zeros(0, np.int64), [], np.zeros(0, dtype=object))
    df = frame.sort_values([key, "reveal"], kind="stable")
    ids, start = np.unique(df[key].to_numpy(np.int64), return_index=True)
    others = np.split(df[other].to_numpy(np.int64), start[1:])
    if roles is not None:
        role = roles.set_index(key)["role"].reindex(ids).fillna("test").astype(str).to_numpy()
    else:
        role = np.full(len(ids), "test", dtype=object)
    return NewEntities(ids, others, role)


def reveal(entities: NewEntities, k: int, n_cols: int) -> tuple[list[Tensor], tuple[Tensor, Tensor]]:
    """``(revealed id lists, targets CSR [m × n_cols])`` for ``k`` revealed interactions."""
    revealed = [torch.from_numpy(np.array(o[:k], dtype=np.int64)) for o in entities.ordered]
    rows = np.repeat(np.arange(len(entities)), [max(len(o) - k, 0) for o in entities.ordered])
    cols = np.concatenate([o[k:] for o in entities.ordered]) if len(entities) else np.zeros(0, np.int64)
    return revealed, csr_from_pairs(len(entities), n_cols, rows, cols)


@dataclass
class SideInfo:
    """What new users may bring besides items: the known users' feature table (``user_id`` → one str
    column per feature; the held-out users' rows give their own values) and, per new user, its friends
    (known users)."""

    features: Optional[pd.DataFrame] = None
    friends: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def has_features(self) -> bool:
        return self.features is not None and self.features.shape[1] > 0

    def feature_rows(self, users: np.ndarray) -> Optional[list[dict[str, str]]]:
        if not self.has_features:
            return None
        frame = self.features.reindex(users)
        return [{c: v for c, v in row.items() if isinstance(v, str)} for row in frame.to_dict("records")]

    def friend_lists(self, users: np.ndarray) -> Optional[list[Tensor]]:
        if not self.friends:
            return None
        return [torch.from_numpy(self.friends.get(int(u), np.zeros(0, np.int64))) for u in users]


def side_info(users_table: pd.DataFrame, social: pd.DataFrame, new_users: np.ndarray) -> SideInfo:
    """Feature columns of ``users.parquet`` (every column but ``user_id`` / ``raw_id``) and, per new user,
    its ties to *known* users (either direction of the ties file; ties between new users are dropped)."""
    feature_cols = [c for c in users_table.columns if c not in ("user_id", "raw_id")]
    features = users_table.set_index("user_id")[feature_cols].astype(str) if feature_cols else None
    friends: dict[int, np.ndarray] = {}
    if len(social) and len(new_users):
        src, dst = social["src"].to_numpy(np.int64), social["dst"].to_numpy(np.int64)
        a, b = np.concatenate([src, dst]), np.concatenate([dst, src])
        new = np.isin(a, new_users) & ~np.isin(b, new_users)
        pairs = np.unique(np.stack([a[new], b[new]], 1), axis=0) if new.any() else np.zeros((0, 2), np.int64)
        if len(pairs):
            ids, start = np.unique(pairs[:, 0], return_index=True)
            friends = dict(zip(ids.tolist(), np.split(pairs[:, 1], start[1:])))
    return SideInfo(features, friends)


class FeaturePopularity:
    """Mean of similar users in score space: per side-feature value, the distribution of the items that
    the known users with that value interacted with in training (rows sum to 1), stacked over the
    features into ``table [n_levels, n_items]``. A new user's similar-users scores are the mean of its
    values' rows — ``onehot(values) / n_features @ table`` — so they enter the dot-product ranking as extra
    columns."""

    def __init__(self, features: pd.DataFrame, known: np.ndarray, train_user: np.ndarray, train_item: np.ndarray,
                 n_items: int) -> None:
        self.columns = list(features.columns)
        self.levels = vocabulary(features, known)                          # value → global code (gnnrec.features)
        self.n_levels = n_levels(self.levels)
        codes = encode_table(features.reindex(train_user), self.levels)    # [E, F] the training edges' users
        counts = np.zeros((self.n_levels, n_items))
        for j in range(codes.shape[1]):
            ok = codes[:, j] >= 0
            np.add.at(counts, (codes[ok, j], train_item[ok]), 1.0)
        for index in self.levels.values():                                  # each value's row: a distribution
            rows = list(index.values())
            counts[rows] /= np.maximum(counts[rows].sum(1, keepdims=True), 1.0)
        self.table = torch.from_numpy(counts).float()

    def onehot(self, values: Sequence[Optional[dict[str, str]]]) -> Tensor:
        """``[m, n_levels]``: each user's known values, weighted ``1 / n_features`` (unseen values: zeros)."""
        out = torch.zeros(len(values), self.n_levels)
        for j, vals in enumerate(values):
            for col, value in (vals or {}).items():
                level = self.levels.get(col, {}).get(str(value))
                if level is not None:
                    out[j, level] = 1.0 / len(self.columns)
        return out

    def unknown(self, values: dict[str, str]) -> list[str]:
        """``name=value`` pairs of ``values`` that training never saw (unknown names or values)."""
        return [f"{c}={v}" for c, v in values.items() if str(v) not in self.levels.get(c, {})]


def shrink_weight(k: Tensor, shrink: float) -> Tensor:
    """``λ_k = shrink / (shrink + k)`` per user (0 when ``shrink`` is 0)."""
    if shrink <= 0:
        return torch.zeros_like(k, dtype=torch.float32)
    return shrink / (shrink + k.float())


def with_popularity(user_emb: Tensor, item_emb: Tensor, popularity: Tensor) -> tuple[Tensor, Tensor]:
    """Append a popularity column: users whose row is all zeros (nothing known) rank items by training
    popularity; every other user's scores are unchanged."""
    empty = (user_emb.abs().sum(1) == 0).to(user_emb.dtype)[:, None]
    pop = (popularity.to(item_emb) / popularity.max().clamp_min(1)).reshape(-1, 1)
    return torch.cat([user_emb, empty], 1), torch.cat([item_emb, pop], 1)


def _score_std(rows: Tensor, table: Tensor) -> Tensor:
    """Per user, the standard deviation of its scores ``rows @ table.T`` over the items ``[m]``."""
    return (rows @ table.t()).std(dim=1) if table.shape[0] > 1 else rows.new_ones(rows.shape[0])


class ColdStartScorer:
    """The rows whose dot products are new users' scores, for one trained model (see the module
    docstring): the served path, blended (weight ``λ_k``) with the similar users — friends' mean embedding
    and, with side features, the items of the users who share each value (:class:`FeaturePopularity`),
    each part scaled to unit spread first — and the popularity fallback when nothing is known."""

    def __init__(self, model: Any, state: dict[str, Any], popularity: Tensor, known_users: np.ndarray,
                 features: Optional[pd.DataFrame] = None, train_user: Optional[np.ndarray] = None,
                 train_item: Optional[np.ndarray] = None) -> None:
        self.model, self.state, self.popularity = model, state, popularity
        self.known = known_users
        self.personalised = getattr(model, "personalised", True)
        self.similar = None
        self._tables: dict[tuple[bool, bool], Tensor] = {}      # item rows per layout of parts, built once
        if features is not None and features.shape[1] and train_user is not None:
            self.similar = FeaturePopularity(features, known_users, train_user, train_item, int(len(popularity)))

    def embed(self, items: list[Tensor], shrink: float = 0.0, settings: Optional[dict[str, Any]] = None,
              features: Optional[Sequence[Optional[dict[str, str]]]] = None,
              friends: Optional[list[Tensor]] = None, infer: Optional[Any] = None,
              zero_similar: bool = True) -> tuple[Tensor, Tensor]:
        """``(user rows [m, *], item rows [n_items, *])`` for new users with known ``items`` (one id tensor
        each; ``k`` is its length), optional feature values and friends. ``infer(items, friends)`` replaces
        the model's served path (the exact path, blended the same way). ``zero_similar``: a user with no
        items is scored by its similar users (else by popularity, as when nothing at all is known)."""
        item_emb = self.state["item"]
        device = item_emb.device
        items = [x.to(device) for x in items]
        friends = [f.to(device) for f in friends] if friends is not None else None
        codes = None                      # learned feature embeddings (<model>.user_features): the values' codes
        if getattr(self.model, "user_features", None) is not None and self.similar is not None and features:
            codes = torch.from_numpy(encode(features, self.similar.levels)).to(device)
        if infer is None:
            emb = self.model.infer_users(items, codes, friends=friends, state=self.state, **(settings or {}))
        else:
            emb = infer(items, friends).to(item_emb)
        k = torch.tensor([int(x.numel()) for x in items], device=device)
        lam = shrink_weight(k, shrink)
        lam = torch.where(k == 0, float(zero_similar), lam)[:, None]        # k = 0: similar users, or popularity
        if not self.personalised or not bool((lam > 0).any()):
            return self._with_popularity(emb, (False, False), [item_emb])
        # similar users, each part (user rows, item table, who has it) scaled to unit spread of its scores
        parts: list[tuple[Tensor, Tensor, Tensor]] = []
        layout = [False, False]
        if friends is not None and any(int(f.numel()) for f in friends):     # friends: similar users we know
            layout[0] = True
            fmean = mean_rows(self.state["user"], friends)
            parts.append((fmean, item_emb, (fmean.abs().sum(1, keepdim=True) > 0).to(emb.dtype)))
        if self.similar is not None and features is not None:
            layout[1] = True
            onehot = self.similar.onehot(features).to(device=device, dtype=emb.dtype)
            table = self.similar.table.to(device=device, dtype=emb.dtype).t()
            parts.append((onehot, table, (onehot.sum(1, keepdim=True) > 0).to(emb.dtype)))
        if not parts:
            return self._with_popularity(emb, (False, False), [item_emb])
        n_parts = torch.stack([has for _, _, has in parts]).sum(0)           # [m, 1]
        lam = lam * (n_parts > 0).to(emb.dtype)
        rows = [(1 - lam) * emb / _score_std(emb, item_emb).clamp_min(1e-12)[:, None]]
        tables = [item_emb]
        for user_rows, table, has in parts:
            spread = _score_std(user_rows, table).clamp_min(1e-12)[:, None]
            rows.append(lam * has / n_parts.clamp_min(1) * user_rows / spread)
            tables.append(table)
        return self._with_popularity(torch.cat(rows, 1), (layout[0], layout[1]), tables)

    def _with_popularity(self, user_rows: Tensor, layout: tuple[bool, bool], tables: list[Tensor]
                         ) -> tuple[Tensor, Tensor]:
        """:func:`with_popularity` of ``user_rows`` and the item tables side by side; the item side depends
        only on which parts are present (``layout``), so it is built once per layout and reused (a served
        request then copies no ``n_items``-row table)."""
        table = self._tables.get(layout)
        if table is None or table.device != user_rows.device or table.dtype != user_rows.dtype:
            table = with_popularity(user_rows[:0], torch.cat(tables, 1), self.popularity)[1]
            self._tables[layout] = table
        empty = (user_rows.abs().sum(1) == 0).to(user_rows.dtype)[:, None]
        return torch.cat([user_rows, empty], 1), table

    def candidates(self, side: bool) -> list[tuple[float, dict[str, Any]]]:
        """Every ``(shrink, settings)`` the validation users choose among (the first is the default)."""
        grid = dict(getattr(self.model, "cold_start_settings", {}) or {})
        combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
        shrinks = SHRINK_CANDIDATES if (self.personalised and side) else (0.0,)
        return [(s, c) for s in shrinks for c in combos]


def score_users(scorer: ColdStartScorer, entities: NewEntities, side: SideInfo, ks: Sequence[int], n_items: int,
                metric_ks: Sequence[int], chunk: int, shrink: float, settings: dict[str, Any],
                exact: Optional[Any] = None, zero_similar: bool = True) -> dict[int, tuple[Tensor, dict[str, Tensor]]]:
    """Per ``k``: ``(evaluated rows, {metric: per-user values})`` of the entities' targets. ``exact``
    (a callable ``(items, friends) -> embeddings``) replaces the served path (the gap's measurement)."""
    out = {}
    features, friends = side.feature_rows(entities.ids), side.friend_lists(entities.ids)
    for k in ks:
        revealed, targets = reveal(entities, k, n_items)
        owners = np.repeat(np.arange(len(entities)), [len(r) for r in revealed])
        exclude = csr_from_pairs(len(entities), n_items, owners,
                                 torch.cat(revealed) if revealed else torch.zeros(0, dtype=torch.long))
        user_rows, item_rows = scorer.embed(revealed, shrink, settings, features, friends, infer=exact,
                                            zero_similar=zero_similar)
        out[k] = ranking_metrics_per_user(user_rows, item_rows, exclude, targets, metric_ks, chunk)
    return out


@dataclass
class Choice:
    """The cold-start settings chosen on the validation users: ``shrink`` (the blend's ``c``) and the
    model's ``settings``, picked by the mean NDCG@20 over the ``k >= 1``; ``zero_similar``: whether users
    with no items are scored by similar users (else popularity), picked at ``k = 0``."""

    shrink: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    zero_similar: bool = False
    trials: list[dict[str, Any]] = field(default_factory=list)


def choose_settings(scorer: ColdStartScorer, val: NewEntities, side: SideInfo, ks: Sequence[int], n_items: int,
                    chunk: int) -> Choice:
    """The :class:`Choice` of the validation users (the first candidate when there are none)."""
    has_side = side.has_features or bool(side.friends)
    candidates = scorer.candidates(has_side)
    positive = [k for k in ks if k > 0]
    choice = Choice(candidates[0][0], candidates[0][1], zero_similar=False)
    if len(val) == 0:
        return choice
    trials = []
    if positive and len(candidates) > 1:
        for shrink, settings in candidates:
            res = score_users(scorer, val, side, positive, n_items, [20], chunk, shrink, settings)
            value = float(np.mean([float(res[k][1][SELECT_METRIC].mean()) if len(res[k][0]) else 0.0
                                   for k in positive]))
            trials.append({"shrink": shrink, "settings": settings, SELECT_METRIC: round(value, 6)})
        best = max(range(len(trials)), key=lambda i: (trials[i][SELECT_METRIC], -i))
        choice = Choice(candidates[best][0], candidates[best][1])
    if 0 in ks and has_side and scorer.personalised:
        zero = {}
        for flag in (False, True):
            res = score_users(scorer, val, side, [0], n_items, [20], chunk, choice.shrink, choice.settings,
                              zero_similar=flag)[0]
            zero[flag] = float(res[1][SELECT_METRIC].mean()) if len(res[0]) else 0.0
            trials.append({"k": 0, "zero_similar": flag, SELECT_METRIC: round(zero[flag], 6)})
        choice.zero_similar = zero[True] > zero[False]
    choice.trials = trials
    return choice


def served_latency_ms(scorer: ColdStartScorer, entities: NewEntities, side: SideInfo, k: int, choice: Choice,
                      n: int, top: int = 20) -> Optional[float]:
    """Median milliseconds to answer one new user alone (embedding, scores over all items, top ``top``)."""
    n = min(n, len(entities))
    if n == 0:
        return None
    features, friends = side.feature_rows(entities.ids[:n]), side.friend_lists(entities.ids[:n])
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)             # one request, one thread: how a serving worker runs (gnnrec.serving)
    try:
        _answer_each(scorer, entities, k, choice, n, top, features, friends, times)
    finally:
        torch.set_num_threads(threads)
    return round(float(np.median(times)) * 1000, 3)


def _answer_each(scorer: ColdStartScorer, entities: NewEntities, k: int, choice: Choice, n: int, top: int,
                 features: Optional[list], friends: Optional[list], times: list[float]) -> None:
    for j in range(n):
        items = [torch.from_numpy(np.array(entities.ordered[j][:k], dtype=np.int64))]
        t0 = time.perf_counter()
        user_rows, item_rows = scorer.embed(items, choice.shrink, choice.settings,
                                            features[j:j + 1] if features else None,
                                            friends[j:j + 1] if friends else None, zero_similar=choice.zero_similar)
        scores = user_rows @ item_rows.t()
        if items[0].numel():
            scores[0, items[0].to(scores.device)] = float("-inf")
        torch.topk(scores, min(top, scores.shape[1]), dim=1)
        times.append(time.perf_counter() - t0)


def score_items(model: Any, state: dict[str, Any], entities: NewEntities, ks: Sequence[int], n_users: int,
                exclude_users: np.ndarray, activity: Tensor, metric_ks: Sequence[int],
                chunk: int) -> dict[int, tuple[Tensor, dict[str, Tensor]]]:
    """Per ``k``: new items' rankings of all known users (revealed and ``exclude_users`` masked)."""
    personalised = getattr(model, "personalised", True)
    out = {}
    for k in ks:
        revealed, targets = reveal(entities, k, n_users)
        rows = [np.full(len(r) + len(exclude_users), j) for j, r in enumerate(revealed)]
        cols = [np.concatenate([r.numpy(), exclude_users]) for r in revealed]
        exclude = csr_from_pairs(len(entities), n_users, np.concatenate(rows) if rows else np.zeros(0, np.int64),
                                 np.concatenate(cols) if cols else np.zeros(0, np.int64))
        if personalised:
            device = state["user"].device
            item_rows = model.infer_items([r.to(device) for r in revealed], state=state)
            user_table = state["user"]
        else:                                       # the non-personalised baseline: the most active users
            item_rows = torch.zeros(len(entities), 1)
            user_table = torch.zeros(n_users, 1)
        item_rows, user_table = with_popularity(item_rows, user_table, activity)   # nothing known: activity
        out[k] = ranking_metrics_per_user(item_rows, user_table, exclude, targets, metric_ks, chunk)
    return out

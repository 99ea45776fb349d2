"""The example-recommendations section: each model's top-N items, side by side, for a few users.

The users shown are the first ones (by canonical user id) with at least one held-out test item, or the
first ones with recommendations when there is no test split; items are shown by name (their raw id
when they have none) and a recommended item that is one of the user's test items is marked as a hit.
Beside the recommendations stand the user's own most recent training items (newest first by timestamp when
the training split has timestamps, else in the training file's order), so a reader can judge them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from gnnrec.config import Params
from gnnrec.paths import Paths
from gnnrec.reporting import inputs

# Candidates read from recommendations.parquet when picking example users (pyarrow filter size).
_EXAMPLE_CANDIDATES_EXTRA = 50
# Held-out test items listed per user (the rest are counted).
_TEST_ITEMS_SHOWN = 15


def recent_items(history: pd.DataFrame) -> tuple[list[int], bool]:
    """One user's training items, most recent first, and whether timestamps ordered them: by descending
    timestamp (ties and missing timestamps in file order, missing ones last) when any is known, else in
    file order."""
    if "timestamp" in history.columns:
        ts = history["timestamp"]
        if not pd.api.types.is_datetime64_any_dtype(ts):
            ts = pd.to_numeric(ts, errors="coerce")
        if ts.notna().any():
            order = history.assign(_ts=ts, _pos=np.arange(len(history)))
            order = order.sort_values(["_ts", "_pos"], ascending=[False, True], na_position="last", kind="stable")
            return [int(i) for i in order["item_id"]], True
    return [int(i) for i in history["item_id"]], False


def _item_label(name: Any, raw: str) -> str:
    if name is None or (isinstance(name, float) and math.isnan(name)) or pd.isna(name):
        return raw
    name = str(name).strip()
    return name or raw


def examples_section(params: Params, paths: Paths, models: Sequence[str], notes: list[str]) -> dict:
    """``{enabled, top_n, models, users, selection, recent, recent_by}``: per user, ``rows`` of one cell per
    model (``{item, label, hit}``, None past a model's list) and the user's own ``recent`` training item of
    that row (``{item, label}``, None past them), its held-out items, hits per model and ``n_train``
    training items in all; ``recent`` is False without a training split.
    ``enabled`` is False when ``report.example_users`` is 0 or an input is missing (with a note)."""
    n_users, top_n = params.report.example_users, params.report.top_n
    out = {"enabled": n_users > 0, "top_n": top_n, "models": [], "users": [],
           "selection": "the first users (by canonical user id) with at least one held-out test item",
           "recent": False, "recent_by": None}
    if n_users == 0:
        return out
    tables = inputs.read_example_tables(paths, notes)
    if tables is None:
        out["enabled"] = False
        return out
    users, items, test = tables.users, tables.items, tables.test
    user_raw = dict(zip(users["user_id"].astype("int64"), users["raw_id"].astype(str)))
    item_raw = dict(zip(items["item_id"].astype("int64"), items["raw_id"].astype(str)))
    names = items["name"] if "name" in items.columns else pd.Series([None] * len(items))
    label_of = {raw: _item_label(name, raw) for raw, name in zip(items["raw_id"].astype(str), names)}

    if test is not None and len(test):
        candidates = sorted(int(u) for u in test["user_id"].unique())
    else:
        out["selection"] = "the first users (by canonical user id) with recommendations (no test split)"
        candidates = sorted(int(u) for u in users["user_id"])
    candidates = candidates[: n_users + _EXAMPLE_CANDIDATES_EXTRA]
    cand_raw = [user_raw[u] for u in candidates if u in user_raw]
    if not cand_raw:
        return out
    recs = inputs.read_recommendations(paths, cand_raw, top_n)
    rec_models = [m for m in models if m in set(recs["model"].astype(str))]
    rec_models += sorted(set(recs["model"].astype(str)) - set(rec_models))
    out["models"] = rec_models
    by_user = {u: g for u, g in recs.groupby("user", sort=False)}
    test_by_user: dict[int, list[str]] = {}
    if test is not None:
        sel = test[test["user_id"].isin(candidates)].sort_values(["user_id", "item_id"])
        for u, g in sel.groupby("user_id", sort=True):
            test_by_user[int(u)] = [item_raw.get(int(i), str(i)) for i in g["item_id"]]

    history = inputs.read_user_history(paths, [u for u in candidates if u in user_raw])
    history_by_user = ({int(u): g for u, g in history.groupby("user_id", sort=False)}
                       if history is not None else {})
    if history is None:
        notes.append(f"Example recommendations (own recent items): "
                     f"{inputs.rel(paths.split / 'train.parquet', paths.root)} not found.")
    out["recent"] = history is not None
    by_timestamp = False

    for uid in candidates:
        raw = user_raw.get(uid)
        if raw is None or raw not in by_user:
            continue
        held_out = test_by_user.get(uid, [])
        held = set(held_out)
        per_model = {}
        for m, gm in by_user[raw].groupby("model", sort=False):
            gm = gm.sort_values("rank")
            per_model[str(m)] = {int(r): str(i) for r, i in zip(gm["rank"], gm["item"])}
        depth = max((max(v) for v in per_model.values() if v), default=0)
        own: list[int] = []
        if uid in history_by_user:
            own, timed = recent_items(history_by_user[uid])
            by_timestamp = by_timestamp or timed
        n_rows = min(depth, top_n)
        recent = [{"item": item_raw.get(i, str(i)), "label": label_of.get(item_raw.get(i, str(i)),
                                                                          item_raw.get(i, str(i)))}
                  for i in own[:n_rows]]
        rows = []
        for rank in range(1, n_rows + 1):
            cells = []
            for m in rec_models:
                item = per_model.get(m, {}).get(rank)
                cells.append(None if item is None else
                             {"item": item, "label": label_of.get(item, item), "hit": item in held})
            rows.append({"rank": rank, "cells": cells, "recent": recent[rank - 1] if rank <= len(recent) else None})
        hits = {m: sum(1 for i in per_model.get(m, {}).values() if i in held) for m in rec_models}
        out["users"].append({
            "user": raw, "user_id": uid, "n_test": len(held_out),
            "test_items": [label_of.get(i, i) for i in held_out[:_TEST_ITEMS_SHOWN]],
            "test_more": max(0, len(held_out) - _TEST_ITEMS_SHOWN),
            "rows": rows, "hits": [{"model": m, "hits": hits[m]} for m in rec_models],
            "recent": recent, "n_train": len(own), "recent_more": max(0, len(own) - len(recent)),
        })
        if len(out["users"]) >= n_users:
            break
    if out["recent"]:
        out["recent_by"] = ("newest first, by timestamp" if by_timestamp
                            else "in the training file's order (no timestamps)")
    return out


__all__ = ["examples_section"]

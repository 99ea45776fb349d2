"""Replay: warm start against full retraining and no update, as data arrives in time order.

Each dataset's interactions are sorted by timestamp and cut into ``T`` consecutive chunks of equal size
(``--chunks``). At step ``t`` (1 … T-1) the history is chunks ``0 … t-1`` and the test is chunk ``t``:

- training data: the history, each user's latest interaction (users with at least 3) held out for
  validation (early stopping), ids renumbered over the users and items the history has;
- **seen users**: users of the history with chunk-``t`` interactions on known items; their targets are those
  items (minus what they already had), ranked against every known item with their history masked;
- **new users**: users who first appear in chunk ``t`` with at least ``REVEAL + 1`` interactions on known
  items: the first ``REVEAL`` (by time) are given to the model's served cold-start path
  (:meth:`~gnnrec.models.base.Recommender.infer_users`), the rest are the targets.

Strategies, all LightGCN with the default ``params.yaml`` settings:

- ``full``: trained from scratch on the history (``train.epochs`` cap, early-stopped);
- ``warm``: the previous step's ``warm`` model, warm-started onto the new ids (:func:`gnnrec.warm_start.warm_start`:
  rows by raw id, new users and items from the cold-start inference) and fine-tuned (``warm_start_epochs`` cap);
- ``none``: the step-1 model, never trained again, carried onto the new ids the same way (its new users and
  items get the inferred rows only): the floor.

At step 1 all three are the same model. Reported per dataset and step: NDCG@20 of seen and new users and each
strategy's training time; the summary, over steps 2 … T-1, warm's share of full retraining's NDCG@20 (seen users)
and of its training time.

    python -m benchmarks --only replay                       # both datasets, writes reports/replay_benchmark.*
    python -m benchmarks.replay --datasets default --chunks 4 --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from benchmarks.common import DATASETS, REPO, add_standard_args, data_root, loadavg, machine, save_report

REVEAL = 3
DEFAULT_DATASETS = ("default", "movielens-100k")
K = 20


# ------------------------------------------------------------------------------------------ data
def build(name: str, root: Optional[str] = None) -> Any:
    """The dataset ``name`` through gnnrec's loader, validation and indexing (a ``gnnrec.datasets.build.Dataset``);
    ``default`` is the embedded synthetic data, generated from ``params.yaml``."""
    from gnnrec import validation
    from gnnrec.config import load_params, params_from_dict
    from gnnrec.datasets import load_source
    from gnnrec.datasets.build import build_dataset

    with tempfile.TemporaryDirectory(prefix="gnnrec-replay-") as tmp:
        if name == "default":
            from gnnrec.datasets.synthetic import write_synthetic

            base = load_params(REPO / "params.yaml")
            write_synthetic(base.data.synthetic, base.seed, Path(tmp))
            params = params_from_dict({"data": {"source": "synthetic", "path": tmp}})
        else:
            source, folder = DATASETS[name]
            params = params_from_dict({"data": {"source": source, "path": str(data_root(root) / folder)}})
        raw = load_source(params)
        files = {k: (str(v) if v is not None else None) for k, v in raw.files.items()}
        checked = validation.validate_tables(raw.interactions, raw.social, raw.items, strict=False,
                                             max_examples=5, files=files, users=getattr(raw, "users", None))
        return build_dataset(checked)


def load_timed(name: str, root: Optional[str] = None) -> pd.DataFrame:
    """``user``, ``item`` (raw ids, text) and ``timestamp`` of every interaction of :func:`build`'s dataset."""
    dataset = build(name, root)
    inter = dataset.interactions
    if inter["timestamp"].isna().any():
        raise ValueError(f"{name}: the replay needs a timestamp on every interaction")
    users = dataset.users.set_index("user_id")["raw_id"].astype(str)
    items = dataset.items.set_index("item_id")["raw_id"].astype(str)
    frame = pd.DataFrame({"user": users.loc[inter["user_id"]].to_numpy(),
                          "item": items.loc[inter["item_id"]].to_numpy(),
                          "timestamp": inter["timestamp"].astype("int64").to_numpy()})
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


@dataclass
class Step:
    """One step's training data (contiguous ids), raw ids, and test users' targets."""

    user_raw: np.ndarray
    item_raw: np.ndarray
    data: Any                                  # gnnrec.training.InteractionData
    graph: dict[str, Any]
    seen_users: np.ndarray                     # [m] ids
    seen_targets: list[np.ndarray]
    new_revealed: list[np.ndarray]             # per new user: revealed item ids
    new_targets: list[np.ndarray]


def make_step(history: pd.DataFrame, test: pd.DataFrame) -> Step:
    from gnnrec.training import InteractionData

    user_raw = pd.unique(history["user"])
    item_raw = pd.unique(history["item"])
    uidx, iidx = pd.Index(user_raw), pd.Index(item_raw)
    u = uidx.get_indexer(history["user"]).astype(np.int64)
    i = iidx.get_indexer(history["item"]).astype(np.int64)
    counts = np.bincount(u, minlength=len(user_raw))
    last = np.zeros(len(u), dtype=bool)                 # each user's latest interaction (history is time-sorted)
    rev = pd.Series(np.arange(len(u))[::-1]).groupby(u[::-1]).head(1).to_numpy()
    last[rev] = True
    val = last & (counts[u] >= 3)
    data = InteractionData(len(user_raw), len(item_raw), torch.from_numpy(u[~val]), torch.from_numpy(i[~val]),
                           torch.from_numpy(u[val]), torch.from_numpy(i[val]))
    graph = {"n_users": len(user_raw), "n_items": len(item_raw), "train_user": data.train_user,
             "train_item": data.train_item, "social_src": torch.zeros(0, dtype=torch.long),
             "social_dst": torch.zeros(0, dtype=torch.long)}
    had = set(zip(u.tolist(), i.tolist()))
    test = test[test["item"].isin(iidx)]
    tu, ti = uidx.get_indexer(test["user"]), iidx.get_indexer(test["item"])
    seen_users, seen_targets = [], []
    for user, items in pd.Series(ti[tu >= 0]).groupby(tu[tu >= 0]):
        targets = np.array(sorted({int(x) for x in items if (int(user), int(x)) not in had}), np.int64)
        if len(targets):
            seen_users.append(int(user))
            seen_targets.append(targets)
    new_revealed, new_targets = [], []
    fresh = test[tu < 0]
    for _, rows in fresh.groupby("user", sort=True):
        items = pd.unique(iidx.get_indexer(rows["item"]))
        if len(items) > REVEAL:
            new_revealed.append(items[:REVEAL].astype(np.int64))
            new_targets.append(items[REVEAL:].astype(np.int64))
    return Step(np.asarray(user_raw, dtype=str), np.asarray(item_raw, dtype=str), data, graph,
                np.array(seen_users, np.int64), seen_targets, new_revealed, new_targets)


# ------------------------------------------------------------------------------------------ models
@torch.no_grad()
def evaluate(model: Any, step: Step) -> dict[str, Optional[float]]:
    from gnnrec.evaluation import ranking_metrics_per_user
    from gnnrec.graph import csr_from_pairs
    from gnnrec.training import prepare_adjacency

    model.eval()
    adj = prepare_adjacency(step.data.adjacency())
    user_emb, item_emb = model.embed(adj)
    n_users, n_items = step.data.n_users, step.data.n_items
    history = csr_from_pairs(n_users, n_items, torch.cat([step.data.train_user, step.data.val_user]),
                             torch.cat([step.data.train_item, step.data.val_item]))
    out: dict[str, Optional[float]] = {"seen_users": len(step.seen_users), "new_users": len(step.new_targets)}
    rows = np.concatenate([np.full(len(t), u) for u, t in zip(step.seen_users, step.seen_targets)])
    test = csr_from_pairs(n_users, n_items, rows, np.concatenate(step.seen_targets))
    _, per_user = ranking_metrics_per_user(user_emb, item_emb, history, test, ks=(K,))
    out["seen"] = float(per_user[f"ndcg@{K}"].mean())
    if step.new_targets:
        state = model.serving_state(adj)
        emb = model.infer_users([torch.from_numpy(x) for x in step.new_revealed], state=state)
        m = len(step.new_targets)
        mask = csr_from_pairs(m, n_items, np.repeat(np.arange(m), [len(x) for x in step.new_revealed]),
                              np.concatenate(step.new_revealed))
        tgt = csr_from_pairs(m, n_items, np.repeat(np.arange(m), [len(x) for x in step.new_targets]),
                             np.concatenate(step.new_targets))
        _, per_new = ranking_metrics_per_user(emb, state["item"], mask, tgt, ks=(K,))
        out["new"] = float(per_new[f"ndcg@{K}"].mean())
    else:
        out["new"] = None
    return out


def new_model(params: Any, step: Step) -> Any:
    from gnnrec.models import build_model

    torch.manual_seed(params.seed)
    model = build_model("lightgcn", n_users=step.data.n_users, n_items=step.data.n_items,
                        **params.model("lightgcn").architecture())
    return model.prepare(step.graph)


def carry(params: Any, previous: Any, prev_step: Step, step: Step) -> tuple[Any, dict[str, Any]]:
    """``previous`` (trained on ``prev_step``'s ids) warm-started onto ``step``'s ids (no training)."""
    from gnnrec.models import checkpoint
    from gnnrec.training import prepare_adjacency
    from gnnrec.warm_start import Snapshot, warm_start

    model = new_model(params, step)
    ckpt = checkpoint("lightgcn", {}, previous)
    snap = Snapshot(Path("(previous step)"), ckpt, prev_step.user_raw, prev_step.item_raw)
    info = warm_start(model, snap, step.user_raw, step.item_raw, step.graph, prepare_adjacency(step.data.adjacency()))
    return model, info


def train(params: Any, model: Any, step: Step, epochs: int, patience: Optional[int] = None) -> tuple[Any, float, int]:
    from gnnrec.training import train_model

    cfg = params.train_for("lightgcn")
    cfg = cfg.model_copy(update={"epochs": epochs, "patience": patience or cfg.patience})
    t0 = time.perf_counter()
    result = train_model(model, step.data, cfg, metric=cfg.early_stop, seed=params.seed,
                         chunk_size=params.evaluate.chunk_size, checkpoint_path=None)
    return model, time.perf_counter() - t0, result.epochs_run


def replay(name: str, chunks: int, params: Any, log=print, root: Optional[str] = None) -> dict[str, Any]:
    frame = load_timed(name, root)
    bounds = np.linspace(0, len(frame), chunks + 1).round().astype(int)
    parts = [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    rows: list[dict[str, Any]] = []
    warm = none = prev = prev_none = None
    for t in range(1, chunks):
        step = make_step(pd.concat(parts[:t]), parts[t])
        full, full_s, full_epochs = train(params, new_model(params, step), step, params.train.epochs)
        row: dict[str, Any] = {"step": t, "users": step.data.n_users, "items": step.data.n_items,
                               "train_edges": len(step.data.train_user), "full_s": round(full_s, 2),
                               "full_epochs": full_epochs, "full": evaluate(full, step)}
        if t == 1:
            warm, none = full, full
            row.update(warm_s=row["full_s"], warm_epochs=full_epochs, warm=row["full"], none=row["full"])
        else:
            carried, info = carry(params, warm, prev, step)
            warm, warm_s, warm_epochs = train(params, carried, step, params.train.warm_start_epochs,
                                              params.train.warm_start_patience)
            none_now, _ = carry(params, none, prev_none, step)
            row.update(warm_s=round(warm_s, 2), warm_epochs=warm_epochs, warm=evaluate(warm, step),
                       none=evaluate(none_now, step), carried={k: v for k, v in info.items() if k != "from"})
        if t == 1:
            prev_none = step
        rows.append(row)
        prev = step
        log(f"[replay] {name} step {t}: full {row['full']['seen']:.4f} ({row['full_s']:.0f} s), "
            f"warm {row['warm']['seen']:.4f} ({row['warm_s']:.0f} s), none {row['none']['seen']:.4f}")
    later = [r for r in rows if r["step"] >= 2]
    summary = {"dataset": name, "interactions": len(frame), "chunks": chunks, "steps": rows}
    if later:
        summary["warm_quality_share"] = round(float(np.mean([r["warm"]["seen"] / r["full"]["seen"] for r in later])), 4)
        summary["warm_time_share"] = round(float(sum(r["warm_s"] for r in later) / sum(r["full_s"] for r in later)), 4)
        summary["none_quality_share"] = round(float(np.mean([r["none"]["seen"] / r["full"]["seen"] for r in later])), 4)
    return summary


# ------------------------------------------------------------------------------------------ report
def _f(v: Any) -> str:
    return "—" if v is None else f"{v:.4f}"


def markdown(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = ["# Replay benchmark: warm start, full retraining, no update", "",
             "Written by `python -m benchmarks --only replay` (`benchmarks/replay.py`: the protocol in its docstring). "
             f"LightGCN with the default params, NDCG@{K} on the next chunk; new users reveal {REVEAL} items to the "
             "served cold-start path. Times are each strategy's training (validation included). Settings: "
             + ", ".join(f"`{k}={v}`" for k, v in info.get("settings", {}).items()) + ".", ""]
    for res in results:
        lines += [f"## {res['dataset']} ({res['interactions']:,} interactions, {res['chunks']} chunks)", ""]
        if "warm_quality_share" in res:
            lines += [f"Over steps 2 … {res['chunks'] - 1}: warm start reaches "
                      f"**{100 * res['warm_quality_share']:.1f}%** of full retraining's NDCG@{K} for seen users "
                      f"in **{100 * res['warm_time_share']:.1f}%** of its training time; no update reaches "
                      f"{100 * res['none_quality_share']:.1f}%.", ""]
        lines += ["| step | users | items | seen / new test users | full: seen | new | s (epochs) | warm: seen | new | "
                  "s (epochs) | none: seen | new |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["steps"]:
            lines.append(f"| {r['step']} | {r['users']} | {r['items']} | {r['full']['seen_users']} / "
                         f"{r['full']['new_users']} | {_f(r['full']['seen'])} | {_f(r['full']['new'])} | "
                         f"{r['full_s']:.1f} ({r['full_epochs']}) | {_f(r['warm']['seen'])} | {_f(r['warm']['new'])} | "
                         f"{r['warm_s']:.1f} ({r['warm_epochs']}) | {_f(r['none']['seen'])} | {_f(r['none']['new'])} |")
        lines.append("")
    lines += [f"Machine: {info.get('cores')} cores, torch {info.get('torch')}; load average {info.get('loadavg')}."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from gnnrec.config import load_params

    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DEFAULT_DATASETS), help="default and/or benchmark datasets")
    parser.add_argument("--chunks", type=int, default=5, help="T: consecutive chunks by time")
    parser.add_argument("--quick", action="store_true", help="4 chunks, a 40-epoch cap for full retraining")
    parser.add_argument("-S", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a train setting for every strategy, e.g. -S warm_start_epochs=10 (repeatable)")
    add_standard_args(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = load_params(REPO / "params.yaml")
    chunks = 4 if args.quick else args.chunks
    updates: dict[str, Any] = {"epochs": 40} if args.quick else {}
    for kv in args.sets:
        key, _, value = kv.partition("=")
        updates[key] = type(getattr(params.train, key) or 0)(value)
    if updates:
        params = params.model_copy(update={"train": params.train.model_copy(update=updates)})
    results = [replay(name, chunks, params, root=args.data_root) for name in args.datasets.split(",") if name]
    t = params.train
    settings = {"epochs": t.epochs, "patience": t.patience, "warm_start_epochs": t.warm_start_epochs,
                "warm_start_patience": t.warm_start_patience or t.patience, "chunks": chunks}
    info = {**machine(), "loadavg": loadavg(), "settings": settings}
    save_report(args.out, "replay_benchmark", {"results": results, "machine": info, "quick": args.quick},
                markdown(results, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Warm start: tomorrow's model from today's, without training from scratch.

``gnnrec snapshot`` copies the current run's models and raw-id maps into a folder (default
``snapshots/latest``; see :func:`take_snapshot`), outside every DVC output, so that the train stage's declared
input (``snapshots/``) is never its own output. With ``train.warm_start`` naming that folder, the train stage
initialises each model from the snapshot's checkpoint of the same name (:func:`warm_start`):

- every weight with a row per user or item (the model's ``entity_tables``) is rebuilt row by row: a user or
  item whose **raw id** the snapshot knows gets its old row (ids are matched by raw id, never by position: the
  new data's contiguous ids are renumbered whenever users or items arrive or leave);
- a new user or item is initialised by the cold-start inference: the model's own served path
  (:meth:`~gnnrec.models.base.Recommender.infer_users` / ``infer_items``) from its training interactions with
  known items (users), computed with the transferred weights on the new graph; where that path's output is
  not the layer-0 table's width, the mean of those items' (users') layer-0 rows; with no known counterpart,
  the fresh random row;
- every other weight (layer transforms, gates) is copied as it is;

and the training loop then fine-tunes on the new data, early-stopped on validation as usual, capped at
``train.warm_start_epochs``. A snapshot whose model has other settings (another ``embedding_dim``) is an
error that says so; a model the snapshot lacks trains from scratch with a warning; training-free models
(``trainable = False``) are fitted afresh (their fit is one pass over the data anyway).

Layout of a snapshot folder::

    manifest.json          which models (with their files' SHA-256), the numbers of users and items
    models/<model>.pt      the checkpoints, as artifacts/models/ holds them
    users.parquet          user_id, raw_id of the snapshot's run
    items.parquet          item_id, raw_id
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from gnnrec.errors import DataError, GnnrecError
from gnnrec.io import load_torch, read_json, read_parquet, write_json, write_parquet
from gnnrec.paths import Paths

log = logging.getLogger("gnnrec.warm_start")
MANIFEST = "manifest.json"


class WarmStartError(GnnrecError, ValueError):
    """A snapshot that cannot initialise the model (missing files, other settings)."""


# ------------------------------------------------------------------------------------------ snapshot
def take_snapshot(paths: Paths, dest: Path, models: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Copy ``artifacts/models/<model>.pt`` (every one, or ``models``) and the raw-id maps of
    ``artifacts/dataset`` into ``dest`` (replacing what is there); the manifest written. The folder is built
    next to ``dest`` and renamed into place, so a failed snapshot leaves the previous one intact."""
    model_dir = paths.root / "artifacts" / "models"
    available = sorted(p.stem for p in model_dir.glob("*.pt"))
    wanted = list(models) if models else available
    missing = [m for m in wanted if m not in available]
    if not wanted or missing:
        raise DataError(f"no model checkpoint for {', '.join(missing) or 'any model'}: run the pipeline first "
                        "(dvc repro)", file=str(model_dir))
    maps = {kind: paths.dataset / f"{kind}.parquet" for kind in ("users", "items")}
    for kind, path in maps.items():
        if not path.exists():
            raise DataError(f"no {kind} id map: run the validate stage first", file=str(path))
    dest = Path(dest)
    staging = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "models").mkdir(parents=True)
    try:
        sizes = {}
        for kind, path in maps.items():
            key = "user_id" if kind == "users" else "item_id"
            table = read_parquet(path)[[key, "raw_id"]].sort_values(key)
            write_parquet(staging / f"{kind}.parquet", table.reset_index(drop=True))
            sizes[kind] = len(table)
        for m in wanted:
            shutil.copy2(model_dir / f"{m}.pt", staging / "models" / f"{m}.pt")
        # no timestamp: the same models give the same folder, so DVC (which hashes it as the train stages'
        # input) sees no change when a snapshot is taken again of unchanged models
        manifest = {"models": wanted, "n_users": sizes["users"], "n_items": sizes["items"],
                    "sha256": {m: hashlib.sha256((model_dir / f"{m}.pt").read_bytes()).hexdigest() for m in wanted}}
        write_json(staging / MANIFEST, manifest)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            staging.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


_CODE = ("src/", "flows/", "tasks/", "params.yaml")


def data_changed(root: Path) -> bool:
    """Whether the ingest stage's data changed since the last ``dvc repro`` here (``dvc status --json ingest``
    names a changed dependency that is not code or ``params.yaml``): the moment to snapshot the current models,
    before they are replaced."""
    import json
    import subprocess
    import sys

    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    proc = subprocess.run([dvc, "status", "--json", "ingest"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DataError(f"dvc status failed: {(proc.stderr or proc.stdout).strip()[-500:]}", file=str(root))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    status = json.loads(lines[-1]) if lines else {}
    changed = [dep for entry in status.get("ingest", []) if isinstance(entry, dict)
               for dep in (entry.get("changed deps") or {})]
    return any(not dep.startswith(_CODE) for dep in changed)


def snapshot_before_new_data(root: Path, dest: Path) -> Optional[dict[str, Any]]:
    """The nightly loop's step before ``dvc repro``: when the data changed and models exist, snapshot them into
    ``dest`` (the manifest); otherwise ``None`` (nothing new to train on, or nothing trained yet)."""
    paths = Paths(Path(root))
    if not any((paths.root / "artifacts" / "models").glob("*.pt")) or not data_changed(paths.root):
        return None
    target = Path(dest) if Path(dest).is_absolute() else paths.root / dest
    return take_snapshot(paths, target)


@dataclass
class Snapshot:
    """A model's checkpoint from a snapshot, with that run's raw ids (position = the old contiguous id)."""

    folder: Path
    checkpoint: dict[str, Any]
    user_raw: np.ndarray
    item_raw: np.ndarray

    @property
    def digest(self) -> str:
        """A hash of the checkpoint file and the id maps (keys the resume state of a warm-started run)."""
        h = hashlib.sha256()
        for raw in (self.user_raw, self.item_raw):
            h.update("\n".join(raw.tolist()).encode())
        h.update(repr(sorted((k, tuple(v.shape), float(v.float().sum())) for k, v in
                             self.checkpoint["state_dict"].items())).encode())
        return h.hexdigest()[:16]


def raw_ids(path: Path, key: str, fix: str = "take the snapshot again with `gnnrec snapshot`") -> np.ndarray:
    """The ``raw_id`` column of an id map (``users.parquet`` / ``items.parquet``) in ``key`` order, ``key``
    checked to be ``0 … n-1``; a missing file is a :class:`WarmStartError` saying ``fix``."""
    if not path.exists():
        raise WarmStartError(f"{path}: no id map ({fix})")
    table = read_parquet(path).sort_values(key)
    if not np.array_equal(table[key].to_numpy(np.int64), np.arange(len(table))):
        raise WarmStartError(f"{path}: column {key!r} is not 0..{len(table) - 1}")
    return table["raw_id"].astype(str).to_numpy()


def load_snapshot(folder: Path, model: str) -> Optional[Snapshot]:
    """The snapshot of ``model`` in ``folder``; ``None`` when the folder holds no checkpoint of it."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        raise WarmStartError(f"train.warm_start: {folder} is not a snapshot (no {MANIFEST}); take one with "
                             "`gnnrec snapshot`")
    read_json(folder / MANIFEST)
    path = folder / "models" / f"{model}.pt"
    if not path.exists():
        return None
    ckpt = load_torch(path)
    if ckpt.get("skipped") or "state_dict" not in ckpt:
        return None
    return Snapshot(folder, ckpt, raw_ids(folder / "users.parquet", "user_id"),
                    raw_ids(folder / "items.parquet", "item_id"))


# ------------------------------------------------------------------------------------------ transfer
def match_ids(old_raw: np.ndarray, new_raw: np.ndarray) -> np.ndarray:
    """For each new id, the old id with the same raw id, or -1 (``[len(new_raw)]`` int64)."""
    index = pd.Index(np.asarray(old_raw, dtype=object))
    return index.get_indexer(np.asarray(new_raw, dtype=object)).astype(np.int64)


def _remap(old: Tensor, new: Tensor, match: np.ndarray) -> Tensor:
    """``new`` with the rows that have a match replaced by their old rows."""
    out = new.detach().clone()
    known = torch.from_numpy(np.flatnonzero(match >= 0))
    if len(known):
        out[known] = old[torch.from_numpy(match[match >= 0])].to(out.dtype)
    return out


def _fold_in(table: Tensor, lists: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Mean of ``table``'s rows per list, and which lists were non-empty."""
    from gnnrec.models.base import mean_rows

    has = torch.tensor([len(x) > 0 for x in lists], dtype=torch.bool)
    return mean_rows(table, lists), has


def _neighbours(owner: Tensor, other: Tensor, targets: np.ndarray, known_other: np.ndarray) -> list[Tensor]:
    """Per target id (of ``owner``'s kind), its training counterparts that the snapshot knew."""
    owner_np, other_np = owner.numpy(), other.numpy()
    keep = known_other[other_np]
    owner_np, other_np = owner_np[keep], other_np[keep]
    order = np.argsort(owner_np, kind="stable")
    owner_np, other_np = owner_np[order], other_np[order]
    starts = np.searchsorted(owner_np, targets, side="left")
    ends = np.searchsorted(owner_np, targets, side="right")
    return [torch.from_numpy(other_np[s:e].copy()) for s, e in zip(starts, ends)]


def warm_start(model: Any, snapshot: Snapshot, user_raw: np.ndarray, item_raw: np.ndarray,
               graph: dict[str, Any], adj: Optional[Tensor]) -> dict[str, Any]:
    """Initialise ``model`` (built for the new data, ``prepare``\\ d on its graph) from ``snapshot`` as the
    module's docstring says; the counts of known and new users and items, and how new rows were initialised."""
    ckpt = snapshot.checkpoint
    name = ckpt.get("model")
    old_state, state = ckpt["state_dict"], model.state_dict()
    n_users, n_items = model.n_users, model.n_items
    if len(user_raw) != n_users or len(item_raw) != n_items:
        raise WarmStartError(f"id maps ({len(user_raw)} users, {len(item_raw)} items) do not match the model "
                             f"({n_users} users, {n_items} items)")
    old_users, old_items = len(snapshot.user_raw), len(snapshot.item_raw)
    umatch, imatch = match_ids(snapshot.user_raw, user_raw), match_ids(snapshot.item_raw, item_raw)
    tables = type(model).entity_tables
    other = sorted(set(state) ^ set(old_state))
    if other:
        raise WarmStartError(f"the snapshot's {name} has other weights ({', '.join(other[:4])}): its settings "
                             "differ from params.yaml's; take a new snapshot or set train.warm_start: null")
    new_state: dict[str, Tensor] = {}
    for key, value in state.items():
        old = old_state[key]
        layout = tables.get(key)
        rows = {"users": old_users, "items": old_items, "users+items": old_users + old_items}.get(layout)
        if layout is not None and (old.dim() != value.dim() or old.shape[0] != rows
                                   or old.shape[1:] != value.shape[1:]):
            raise WarmStartError(f"the snapshot's {name}.{key} is {tuple(old.shape)}, expected ({rows}, "
                                 f"{', '.join(map(str, value.shape[1:]))}): its settings differ from params.yaml's")
        if layout == "users":
            new_state[key] = _remap(old, value, umatch)
        elif layout == "items":
            new_state[key] = _remap(old, value, imatch)
        elif layout == "users+items":
            users = _remap(old[:old_users], value[:n_users], umatch)
            items = _remap(old[old_users:], value[n_users:], imatch)
            new_state[key] = torch.cat([users, items])
        elif old.shape != value.shape:
            raise WarmStartError(f"the snapshot's {name}.{key} is {tuple(old.shape)}, the model's "
                                 f"{tuple(value.shape)}: its settings differ from params.yaml's")
        else:
            new_state[key] = old.to(value.dtype)
    model.load_state_dict(new_state)
    init = _init_new_rows(model, graph, adj, umatch, imatch) if tables else {}
    return {"from": str(snapshot.folder), "known_users": int((umatch >= 0).sum()),
            "new_users": int((umatch < 0).sum()), "known_items": int((imatch >= 0).sum()),
            "new_items": int((imatch < 0).sum()), "dropped_users": old_users - int((umatch >= 0).sum()),
            "dropped_items": old_items - int((imatch >= 0).sum()), **init}


@torch.no_grad()
def _init_new_rows(model: Any, graph: dict[str, Any], adj: Optional[Tensor], umatch: np.ndarray,
                   imatch: np.ndarray) -> dict[str, Any]:
    new_users, new_items = np.flatnonzero(umatch < 0), np.flatnonzero(imatch < 0)
    if not len(new_users) and not len(new_items):
        return {"new_rows": "none"}
    tu, ti = graph["train_user"].cpu(), graph["train_item"].cpu()
    item_lists = _neighbours(tu, ti, new_users, imatch >= 0)      # a new user's known training items
    user_lists = _neighbours(ti, tu, new_items, umatch >= 0)      # a new item's known training users
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        state = model.serving_state(adj)
        served_u = model.infer_users([x.to(device) for x in item_lists], state=state).cpu() if len(new_users) else None
        served_i = model.infer_items([x.to(device) for x in user_lists], state=state).cpu() if len(new_items) else None
    finally:
        model.train(was_training)
    methods = set()
    params = dict(model.named_parameters())
    for key, layout in type(model).entity_tables.items():
        weight = params[key]
        base = model.n_users if layout == "users+items" else 0
        user_rows = weight[:model.n_users] if layout == "users+items" else weight
        item_rows = weight[model.n_users:] if layout == "users+items" else weight
        if layout in ("users", "users+items") and len(new_users):
            methods.add(_write_rows(weight, new_users, served_u, item_rows.detach().cpu(), item_lists, 0))
        if layout in ("items", "users+items") and len(new_items):
            methods.add(_write_rows(weight, new_items, served_i, user_rows.detach().cpu(), user_lists, base))
    return {"new_rows": "+".join(sorted(methods))}


def _write_rows(weight: Tensor, targets: np.ndarray, served: Optional[Tensor], counterpart_rows: Tensor,
                lists: list[Tensor], offset: int) -> str:
    """Rows ``offset + targets`` of ``weight`` from the served path (when its width fits), else the mean of
    the counterparts' layer-0 rows; rows with no known counterpart keep their fresh initialisation."""
    if served is not None and served.shape[1] == weight.shape[1]:
        values, method = served, "served path"
        has = torch.tensor([len(x) > 0 for x in lists], dtype=torch.bool)
    else:
        values, has = _fold_in(counterpart_rows, lists)
        method = "layer-0 mean"
    rows = torch.from_numpy(targets[has.numpy()] + offset).to(weight.device)
    if len(rows):
        weight.data[rows] = values[has].to(weight.device, weight.dtype)
    return method

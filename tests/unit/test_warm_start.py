"""Warm start: rows matched by raw id (never by position), new users and items from the cold-start inference,
other weights copied, a snapshot of other settings refused; ``gnnrec snapshot`` and the train stage with
``train.warm_start``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gnnrec.config import params_from_dict
from gnnrec.io import write_parquet
from gnnrec.models import build_model, checkpoint
from gnnrec.paths import Paths
from gnnrec.warm_start import Snapshot, WarmStartError, load_snapshot, match_ids, take_snapshot, warm_start

pytestmark = pytest.mark.usefixtures("one_thread")

OLD_USERS = np.array(["ann", "bob", "cid"])
OLD_ITEMS = np.array(["i0", "i1", "i2", "i3"])
# the new data: users renumbered (cid first), one new user "dan"; items renumbered, i3 gone, new item "i9"
NEW_USERS = np.array(["cid", "dan", "ann", "bob"])
NEW_ITEMS = np.array(["i2", "i9", "i0", "i1"])
# training interactions of the new data (new ids): dan (1) bought i2 (0) and i0 (2); i9 (1) was bought by ann (2)
NEW_TRAIN = [(0, 0), (1, 0), (1, 2), (2, 1), (2, 2), (3, 3), (0, 3)]


def graph(pairs, n_users, n_items):
    u, i = zip(*pairs)
    return {"n_users": n_users, "n_items": n_items, "train_user": torch.tensor(u), "train_item": torch.tensor(i),
            "social_src": torch.zeros(0, dtype=torch.long), "social_dst": torch.zeros(0, dtype=torch.long)}


def old_model(name, **kw):
    torch.manual_seed(0)
    model = build_model(name, n_users=3, n_items=4, embedding_dim=4, **kw)
    with torch.no_grad():                       # distinct, recognisable rows: row r holds r + 1 everywhere
        for key in type(model).entity_tables:
            weight = dict(model.named_parameters())[key]
            weight.copy_(torch.arange(1, weight.shape[0] + 1, dtype=torch.float32)[:, None].expand_as(weight))
    return model


def snapshot_of(model, name, **kw):
    ckpt = checkpoint(name, {"n_users": 3, "n_items": 4, "embedding_dim": 4, **kw}, model)
    return Snapshot(folder=None, checkpoint=ckpt, user_raw=OLD_USERS, item_raw=OLD_ITEMS)


def test_match_ids_is_by_raw_id():
    assert match_ids(OLD_USERS, NEW_USERS).tolist() == [2, -1, 0, 1]
    assert match_ids(OLD_ITEMS, NEW_ITEMS).tolist() == [2, -1, 0, 1]


def test_mf_rows_follow_their_raw_ids_and_new_ones_come_from_the_served_path():
    old = old_model("mf")
    new = build_model("mf", n_users=4, n_items=4, embedding_dim=4)
    g = graph(NEW_TRAIN, 4, 4)
    info = warm_start(new, snapshot_of(old, "mf"), NEW_USERS, NEW_ITEMS, g, adj=None)
    users, items = new.user_embedding.weight.detach(), new.item_embedding.weight.detach()
    old_users, old_items = old.user_embedding.weight.detach(), old.item_embedding.weight.detach()
    assert torch.equal(users[0], old_users[2]) and torch.equal(users[2], old_users[0])   # cid, ann: by raw id
    assert torch.equal(users[3], old_users[1])                                            # (by position: wrong)
    assert torch.equal(items[0], old_items[2]) and torch.equal(items[2], old_items[0]) and torch.equal(items[3],
                                                                                                       old_items[1])
    # dan's known items are i2 and i0 (old rows hold 3s and 1s): MF's served path, the ridge fold-in
    # p = (QᵀQ + I)⁻¹ Qᵀ1 with Q = [3·1ᵀ; 1·1ᵀ], QᵀQ = 10·J, Qᵀ1 = 4·1, and (10J + I)·1 = 41·1: p = 4/41 · 1
    assert torch.allclose(users[1], torch.full((4,), 4 / 41))
    # i9's known user is ann (old row 1): MF's infer_items is the mean of its users' embeddings
    assert torch.allclose(items[1], old_users[0])
    assert info == {"from": "None", "known_users": 3, "new_users": 1, "known_items": 3, "new_items": 1,
                    "dropped_users": 0, "dropped_items": 1, "new_rows": "served path"}


def test_lightgcn_maps_the_users_then_items_table_and_ngcf_copies_its_layers():
    old = old_model("ngcf", num_layers=1)
    new = build_model("ngcf", n_users=4, n_items=4, embedding_dim=4, num_layers=1)
    g = graph(NEW_TRAIN, 4, 4)
    from gnnrec.graph import bipartite_adjacency

    new.prepare(g)
    warm_start(new, snapshot_of(old, "ngcf", num_layers=1), NEW_USERS, NEW_ITEMS, g,
               adj=bipartite_adjacency(4, 4, g["train_user"], g["train_item"]))
    table, old_table = new.embedding.weight.detach(), old.embedding.weight.detach()
    assert [table[r, 0].item() for r in (0, 2, 3)] == [3.0, 1.0, 2.0]              # users cid, ann, bob
    assert [table[4 + r, 0].item() for r in (0, 2, 3)] == [6.0, 4.0, 5.0]          # items i2, i0, i1 (after 3 users)
    assert torch.equal(new.w1[0].weight, old.w1[0].weight)                          # a layer: copied as it is
    # NGCF's served output concatenates layers (wider than the table): dan gets the mean of i2's and i0's rows
    assert torch.allclose(table[1], (old_table[3 + 2] + old_table[3 + 0]) / 2)


def test_a_snapshot_of_other_settings_is_refused():
    old = old_model("mf")
    new = build_model("mf", n_users=4, n_items=4, embedding_dim=8)
    with pytest.raises(WarmStartError, match=r"user_embedding.weight is \(3, 4\), expected \(3, 8\)"):
        warm_start(new, snapshot_of(old, "mf"), NEW_USERS, NEW_ITEMS, graph(NEW_TRAIN, 4, 4), adj=None)


def project(root, users, items):
    paths = Paths(root)
    write_parquet(paths.dataset / "users.parquet", pd.DataFrame({"user_id": np.arange(len(users)), "raw_id": users}))
    write_parquet(paths.dataset / "items.parquet", pd.DataFrame({"item_id": np.arange(len(items)), "raw_id": items}))
    return paths


def test_snapshot_round_trip_and_a_failed_one_keeps_the_previous(tmp_path):
    from gnnrec.errors import DataError
    from gnnrec.io import save_torch

    paths = project(tmp_path, OLD_USERS, OLD_ITEMS)
    save_torch(paths.model("mf"), checkpoint("mf", {"n_users": 3, "n_items": 4, "embedding_dim": 4}, old_model("mf")))
    dest = tmp_path / "snapshots" / "latest"
    manifest = take_snapshot(paths, dest)
    assert manifest["models"] == ["mf"] and (manifest["n_users"], manifest["n_items"]) == (3, 4)
    snap = load_snapshot(dest, "mf")
    assert snap.user_raw.tolist() == OLD_USERS.tolist() and snap.item_raw.tolist() == OLD_ITEMS.tolist()
    assert load_snapshot(dest, "lightgcn") is None                     # not in the snapshot: trained from scratch
    with pytest.raises(DataError, match="no model checkpoint for lightgcn"):
        take_snapshot(paths, dest, ["lightgcn"])
    assert load_snapshot(dest, "mf").digest == snap.digest             # the previous snapshot is intact
    with pytest.raises(WarmStartError, match="not a snapshot"):
        load_snapshot(tmp_path / "snapshots", "mf")


def test_the_train_stage_fine_tunes_from_a_snapshot(tmp_path):
    from gnnrec.artifacts import save_graph
    from gnnrec.stages import train as train_stage

    rng = np.random.default_rng(0)
    n_users, n_items = 30, 40
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 400), rng.integers(0, n_items, 400))})
    users = np.array([f"u{k}" for k in range(n_users)])
    items = np.array([f"i{k}" for k in range(n_items)])

    def setup(root, perm_users):
        paths = project(root, users[perm_users], items)
        inv = np.argsort(perm_users)                                  # raw user u{k} has id inv[k] here
        u = [int(inv[a]) for a, _ in pairs]
        save_graph(paths, graph(list(zip(u, [b for _, b in pairs])), n_users, n_items))
        val = pd.DataFrame({"user_id": np.array(u[:30]), "item_id": np.array([b for _, b in pairs][:30]),
                            "weight": np.ones(30, np.float32), "timestamp": pd.array([None] * 30, dtype="Int64")})
        write_parquet(paths.split / "val.parquet", val)
        return paths

    base = {"models": ["mf"], "train": {"epochs": 5, "batch_size": 64, "patience": 5}, "mf": {"embedding_dim": 8}}
    first = setup(tmp_path / "a", np.arange(n_users))
    train_stage.run(params_from_dict(base), first, "mf")
    second = setup(tmp_path / "b", np.arange(n_users)[::-1].copy())   # the same users, renumbered
    take_snapshot(first, second.root / "snapshots" / "s1")
    warm = params_from_dict({**base, "train": {**base["train"], "warm_start": "snapshots/s1", "warm_start_epochs": 2,
                                               "lr": 1e-9}})          # (a step that cannot move the weights)
    summary = train_stage.run(warm, second, "mf")
    assert summary["epochs_run"] <= 2
    from gnnrec.io import load_torch, read_json

    before = load_torch(first.model("mf"))["state_dict"]["user_embedding.weight"]
    after = load_torch(second.model("mf"))["state_dict"]["user_embedding.weight"]
    assert torch.allclose(after, before.flip(0), atol=1e-6)            # user u{k}'s row followed its raw id
    record = read_json(second.train_summary("mf"))
    assert record["warm_start"]["known_users"] == n_users and record["warm_start"]["new_users"] == 0
    assert record["hyperparameters"]["warm_start"] == "snapshots/s1"
    outside = params_from_dict({**base, "train": {**base["train"], "warm_start": str(first.root)}})
    with pytest.raises(WarmStartError, match="not under snapshots/"):
        train_stage.run(outside, second, "mf")
    assert load_torch(second.model("mf"))["model"] == "mf"


def test_the_snapshot_command_writes_the_folder_and_says_how_to_use_it(tmp_path):
    from typer.testing import CliRunner

    from gnnrec.cli import app
    from gnnrec.io import save_torch

    paths = project(tmp_path, OLD_USERS, OLD_ITEMS)
    runner = CliRunner()
    empty = runner.invoke(app, ["snapshot", "--root", str(tmp_path)])
    assert empty.exit_code == 2 and "no model checkpoint" in empty.output      # nothing trained yet: exit 2
    save_torch(paths.model("mf"), checkpoint("mf", {"n_users": 3, "n_items": 4, "embedding_dim": 4}, old_model("mf")))
    done = runner.invoke(app, ["snapshot", "--root", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "train.warm_start: snapshots/latest" in done.output
    assert load_snapshot(tmp_path / "snapshots" / "latest", "mf") is not None

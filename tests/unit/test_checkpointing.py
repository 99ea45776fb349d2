"""Resumable training (gnnrec.checkpointing): a run interrupted after any epoch and resumed from its saved
state ends bit-identical to an uninterrupted run (CPU), including runs that stop early."""

from __future__ import annotations

import pytest
import torch

from gnnrec import checkpointing
from gnnrec.io import load_torch
from gnnrec.models import MF, LightGCN
from gnnrec.training import train_model
from tests.unit.test_training import cfg, planted


class Interrupt(Exception):
    pass


def _model(kind: str, data):
    torch.manual_seed(5)
    if kind == "lightgcn":
        return LightGCN(data.n_users, data.n_items, embedding_dim=8, num_layers=2)
    return MF(data.n_users, data.n_items, embedding_dim=8)


def _run(kind, data, config, path=None, stop_after=None, every=1):
    model = _model(kind, data)

    def log(row):
        if stop_after is not None and row["epoch"] == stop_after:
            raise Interrupt                      # like a kill: the state of this epoch is not saved yet

    result = train_model(model, data, config, seed=7, log=log, checkpoint_path=path, checkpoint_every=every)
    return model, result


def _same(a, b):
    assert [(r["epoch"], r["loss"], r["val_score"]) for r in a[1].history] == \
        [(r["epoch"], r["loss"], r["val_score"]) for r in b[1].history]
    assert (a[1].best_epoch, a[1].best_score, a[1].epochs_run, a[1].stopped) == \
        (b[1].best_epoch, b[1].best_score, b[1].epochs_run, b[1].stopped)
    sa, sb = a[0].state_dict(), b[0].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind, stop_after, every", [("lightgcn", 3, 1), ("mf", 5, 2), ("lightgcn", 1, 1)])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, kind, stop_after, every):
    data, _ = planted()
    config = cfg(epochs=8, patience=100)
    whole = _run(kind, data, config)
    path = tmp_path / "state.pt"
    with pytest.raises(Interrupt):
        _run(kind, data, config, path, stop_after=stop_after, every=every)
    last_saved = (stop_after - 1) // every * every
    if last_saved:
        saved = load_torch(path)                 # plain tensors and values: weights_only=True loads it
        assert saved["epoch"] == last_saved
    else:
        assert not path.exists()
    resumed = _run(kind, data, config, path, every=every)
    assert resumed[1].resumed_from == last_saved
    _same(whole, resumed)


def test_resuming_a_run_that_had_decided_to_stop_early(tmp_path):
    data, _ = planted(anti_val=True)
    config = cfg(epochs=60, patience=3)
    whole = _run("lightgcn", data, config)
    assert whole[1].stopped == "early_stop"
    path = tmp_path / "state.pt"
    _run("lightgcn", data, config, path)         # leaves the state of its last epoch (the stage deletes it)
    state = load_torch(path)
    assert state["stopped"] == "early_stop" and state["epoch"] == whole[1].epochs_run
    resumed = _run("lightgcn", data, config, path)
    assert resumed[1].resumed_from == whole[1].epochs_run
    _same(whole, resumed)                        # the best epoch's weights come back (not the last ones)


def test_a_state_that_does_not_fit_is_ignored_and_removed(tmp_path, caplog):
    data, _ = planted()
    config = cfg(epochs=3, patience=100)
    path = tmp_path / "state.pt"
    _run("mf", data, config, path)
    other = cfg(epochs=2, patience=100)          # a state past this run's last epoch
    fresh = _run("mf", data, other, path)
    assert fresh[1].resumed_from == 0 and "ignoring the resume state" in caplog.text
    _run("mf", data, config, path)
    small, _ = planted(users_per=5)               # other sizes: the weights do not fit
    fresh = _run("mf", small, cfg(epochs=3, patience=100), path)
    assert fresh[1].resumed_from == 0
    path.write_bytes(b"\x00garbage")
    assert checkpointing.load_state(path, _model("mf", data), 3) is None and not path.exists()


def test_input_key_depends_on_file_contents_and_config(tmp_path):
    a = tmp_path / "a"
    a.write_bytes(b"1")
    k1 = checkpointing.input_key([a], {"x": 1})
    assert k1 == checkpointing.input_key([a], {"x": 1})
    assert k1 != checkpointing.input_key([a], {"x": 2})
    a.write_bytes(b"2")
    assert k1 != checkpointing.input_key([a], {"x": 1})

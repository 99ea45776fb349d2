"""Planted fake ties (``graph.social.noise``): exactly the marked ones, of the asked kind, never outside training."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import pytest

from gnnrec.config import params_from_dict
from gnnrec.errors import ParamsError
from gnnrec.io import load_arrays
from gnnrec.paths import Paths
from gnnrec.social_noise import plant_fake_ties, popular_items
from gnnrec.stages import build_graph


def _graph(seed=0, n_users=24, n_items=40, n=260):
    rng = np.random.default_rng(seed)
    tu = rng.integers(0, n_users - 4, n)                       # the last 4 users have no training interaction
    ti = np.minimum(rng.zipf(1.4, n) - 1, n_items - 1)
    src, dst = np.array([0, 1, 2, 5]), np.array([1, 0, 3, 6])
    return n_users, n_items, tu, ti, src, dst


def _hard_pairs_by_hand(n_users, n_items, tu, ti):
    top = set(np.flatnonzero(popular_items(n_items, ti)).tolist())
    items = {u: set(ti[tu == u].tolist()) for u in range(n_users)}
    eligible = [u for u in range(n_users) if len(items[u] & top) >= 2]
    return {(a, b) for a, b in itertools.permutations(eligible, 2)
            if items[a] & items[b] & top and not (items[a] & items[b]) - top}


def test_popular_items_are_the_most_consumed_with_ties_to_the_lower_id():
    ti = np.array([3] * 5 + [1] * 2 + [0] * 2 + [2] + list(range(4, 14)))
    mask = popular_items(20, ti)
    assert mask.sum() == 10 and mask[[3, 0, 1, 2]].all()          # counts 5, 2, 2, 1 first, then ids 4, 5, ...
    assert mask[4:10].all() and not mask[10:].any()


def test_random_fakes_are_new_distinct_pairs_of_training_users_and_seeded():
    n_users, n_items, tu, ti, src, dst = _graph()
    fs, fd = plant_fake_ties(n_users, n_items, tu, ti, src, dst, 10.0, "random", seed=3)
    keys = fs * n_users + fd
    assert len(fs) == 40 and len(np.unique(keys)) == 40 and not (fs == fd).any()
    assert not np.isin(keys, src * n_users + dst).any()
    assert np.isin(fs, tu).all() and np.isin(fd, tu).all()        # never a user outside the training graph
    again = plant_fake_ties(n_users, n_items, tu, ti, src, dst, 10.0, "random", seed=3)
    other = plant_fake_ties(n_users, n_items, tu, ti, src, dst, 10.0, "random", seed=4)
    assert np.array_equal(again[0], fs) and np.array_equal(again[1], fd)
    assert not np.array_equal(other[0] * n_users + other[1], keys)
    assert plant_fake_ties(n_users, n_items, tu, ti, src, dst, 0.0, "random", seed=3)[0].size == 0


def test_hard_fakes_share_popular_items_and_nothing_else():
    n_users, n_items, tu, ti, src, dst = _graph(seed=1)
    expected = _hard_pairs_by_hand(n_users, n_items, tu, ti) - set(zip(src.tolist(), dst.tolist()))
    assert len(expected) >= 8
    count = len(expected)
    fs, fd = plant_fake_ties(n_users, n_items, tu, ti, src, dst, count / len(src), "hard", seed=0)
    assert set(zip(fs.tolist(), fd.tolist())) == expected          # every candidate, and only candidates
    with pytest.raises(ParamsError) as info:
        plant_fake_ties(n_users, n_items, tu, ti, src, dst, (count + 8) / len(src), "hard", seed=0)
    assert info.value.key == "graph.social.noise.share"


def _project(tmp_path, n_users=60, n_items=50):
    rng = np.random.default_rng(7)
    paths = Paths(tmp_path)
    (paths.split).mkdir(parents=True)
    (paths.dataset).mkdir(parents=True)
    tu = np.repeat(np.arange(n_users - 5), 6)                    # users 55..59: held out (cold)
    ti = rng.integers(0, n_items, len(tu))
    pd.DataFrame({"user_id": tu, "item_id": ti}).drop_duplicates().to_parquet(paths.split / "train.parquet")
    pd.DataFrame({"user_id": np.arange(n_users - 5, n_users)}).to_parquet(paths.split / "cold_users.parquet")
    pd.DataFrame({"user_id": np.arange(n_users), "raw_id": np.arange(n_users).astype(str)}).to_parquet(
        paths.dataset / "users.parquet")
    pd.DataFrame({"item_id": np.arange(n_items), "raw_id": np.arange(n_items).astype(str)}).to_parquet(
        paths.dataset / "items.parquet")
    src = rng.integers(0, n_users, 120)
    dst = (src + 1 + rng.integers(0, n_users - 1, 120)) % n_users
    social = pd.DataFrame({"src": src, "dst": dst}).drop_duplicates().reset_index(drop=True)
    social.to_parquet(paths.dataset / "social.parquet")
    return paths, social


def test_build_graph_plants_marks_and_scores_the_fakes(tmp_path, caplog):
    paths, social = _project(tmp_path)
    params = params_from_dict({"graph": {"social": {"method": "none",
                                                    "noise": {"share": 0.5, "kind": "random", "seed": 5}}}})
    build_graph.run(params, paths)
    graph = load_arrays(paths.graph)
    stats = pd.read_json(paths.graph_stats, typ="series")["social"]
    real = social[~social["src"].isin(range(55, 60)) & ~social["dst"].isin(range(55, 60))]
    assert stats["ties_in"] == len(real) and stats["planted"] == round(0.5 * len(real))
    assert stats["kept"] == len(real) + stats["planted"]                 # a filter that keeps everything
    fake = graph["social_fake"].astype(bool)
    assert fake.sum() == stats["planted"]
    real_keys = set(zip(real["src"], real["dst"]))
    kept = list(zip(graph["social_src"].tolist(), graph["social_dst"].tolist()))
    assert {k for k, f in zip(kept, fake) if not f} == real_keys         # the unmarked ties are the data's own
    assert not any(k in real_keys for k, f in zip(kept, fake) if f)
    fakes = np.array([k for k, f in zip(kept, fake) if f])
    assert not np.isin(fakes, np.arange(55, 60)).any()                  # never a held-out (new) user
    assert stats["planted_noise"]["recall"] == 0.0 and stats["over_filtered"] is False

    strict = params_from_dict({"graph": {"social": {"method": "overlap", "min_common_items": 50,
                                                    "warn_drop_share": 0.5,
                                                    "noise": {"share": 0.5, "seed": 5}}}})
    with caplog.at_level(logging.WARNING, logger="gnnrec.build_graph"):
        build_graph.run(strict, paths)
    stats = pd.read_json(paths.graph_stats, typ="series")["social"]
    assert stats["kept"] == 0 and stats["over_filtered"] is True and stats["planted_noise"]["recall"] == 1.0
    assert "more than graph.social.warn_drop_share = 0.5" in caplog.text

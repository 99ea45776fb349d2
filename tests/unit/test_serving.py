"""Serving a run's model files (:mod:`gnnrec.serving`, ``gnnrec recommend``): known answers of hand-set
models for known and new users, unknown ids, masks, the chosen cold-start settings, and agreement with the
evaluate stage's recommendations. Every run here is a tiny project written in ``tmp_path``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from gnnrec import cold_start as cs
from gnnrec.artifacts import save_graph
from gnnrec.cli import app
from gnnrec.config import params_from_dict
from gnnrec.evaluation import topk_tiebreak
from gnnrec.io import save_torch, write_json, write_parquet
from gnnrec.models import build_model, checkpoint
from gnnrec.paths import Paths
from gnnrec.serving import DEFAULT_SHRINK, NoRunError, UnknownIdsError, UnknownIdsWarning, load_service

pytestmark = pytest.mark.usefixtures("one_thread")

# ---------------------------------------------------------------------------------------- the world
# items 0-3 are group A (item 3 held out as new: never recommended), 4-7 group B; users 0-3 (club a) touch
# A items, users 4-5 (club b) B items; user 6 (club b, city paris) has no training interaction
N_USERS, N_ITEMS = 7, 8
TRAIN = [(u, i) for u in range(4) for i in (0, 1, 2)] + [(4, 4), (4, 5), (5, 5), (5, 6)]
VAL = [(4, 7)]
TIES = [(0, 1), (4, 5)]
CLUB = ["a", "a", "a", "a", "b", "b", "b"]
CITY = ["rome", "oslo", "rome", "oslo", "rome", "oslo", "paris"]
HIDDEN = [3]
POPULAR = ["i0", "i1", "i2", "i5", "i4", "i6"]          # training counts 4, 4, 4, 2, 1, 1 (ties by id)


def frame(pairs) -> pd.DataFrame:
    a = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return pd.DataFrame({"user_id": a[:, 0], "item_id": a[:, 1]})


def write_project(root: Path, n_users: int, n_items: int, train, val, ties=(), features=None,
                  hidden=(), names=True) -> Paths:
    paths = Paths(root)
    tr, so = np.array(train, dtype=np.int64), np.array(ties, dtype=np.int64).reshape(-1, 2)
    save_graph(paths, {"n_users": n_users, "n_items": n_items, "train_user": tr[:, 0], "train_item": tr[:, 1],
                       "social_src": so[:, 0], "social_dst": so[:, 1]})
    write_parquet(paths.split / "val.parquet", frame(val))
    write_parquet(paths.split / "test.parquet", frame(val))
    write_parquet(paths.split / "cold_items.parquet", pd.DataFrame({"item_id": np.array(hidden, dtype=np.int64)}))
    users = pd.DataFrame({"user_id": np.arange(n_users), "raw_id": pd.Series([f"u{k}" for k in range(n_users)],
                                                                            dtype="str")})
    for name, values in (features or {}).items():
        users[name] = pd.Series(values, dtype="str")
    write_parquet(paths.dataset / "users.parquet", users)
    write_parquet(paths.dataset / "items.parquet", pd.DataFrame(
        {"item_id": np.arange(n_items), "raw_id": pd.Series([f"i{k}" for k in range(n_items)], dtype="str"),
         "name": pd.Series([f"item {k}" if names else None for k in range(n_items)], dtype="str")}))
    write_parquet(paths.dataset / "social.parquet", pd.DataFrame({"src": so[:, 0], "dst": so[:, 1]}))
    return paths


def save_model(paths: Paths, name: str, model, **kwargs) -> None:
    save_torch(paths.model(name), checkpoint(name, {"n_users": model.n_users, "n_items": model.n_items, **kwargs},
                                             model))


def hand_set_mf() -> torch.nn.Module:
    """Group A users (1, 0), group B users (0, 1); item j of group A (1 + j/10, 0), of group B
    (0, 1 + (j-4)/10): users score their own group's items, the higher ids first."""
    model = build_model("mf", n_users=N_USERS, n_items=N_ITEMS, embedding_dim=2)
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 2 + [[0.5, 0.5]]))
        items = [[1 + j / 10, 0.0] for j in range(4)] + [[0.0, 1 + (j - 4) / 10] for j in range(4, 8)]
        model.item_embedding.weight.copy_(torch.tensor(items))
    return model


@pytest.fixture
def world(tmp_path) -> Paths:
    paths = write_project(tmp_path, N_USERS, N_ITEMS, TRAIN, VAL, TIES, {"club": CLUB, "city": CITY}, HIDDEN)
    save_model(paths, "mf", hand_set_mf(), embedding_dim=2)
    pop = build_model("popularity", n_users=N_USERS, n_items=N_ITEMS)
    pop.fit(SimpleNamespace(train_item=torch.tensor([i for _, i in TRAIN])))
    save_model(paths, "popularity", pop)
    return paths


def ids(recs) -> list[str]:
    return [r.item for r in recs]


# ------------------------------------------------------------------------------------ known answers
def test_popularity_gives_the_most_popular_unmasked_items(world):
    service = load_service(world.root, "popularity")
    assert ids(service.recommend_known("u4", 4)) == ["i0", "i1", "i2", "i6"]     # 4, 5 trained, 7 validation
    assert ids(service.recommend_new(items=["i0"], n=6)) == ["i1", "i2", "i5", "i4", "i6", "i7"]
    assert ids(service.recommend_new(n=6)) == POPULAR
    recs = service.recommend_new(items=["i0"], n=2)
    assert recs[0].name == "item 1" and recs[0].score == recs[1].score        # counts 4 and 4 (no fold-in)


def test_hand_set_mf_ranks_known_and_folded_in_users_by_their_group(world):
    service = load_service(world.root, "mf")
    assert ids(service.recommend_known("u4", 4)) == ["i6", "i0", "i1", "i2"]
    assert service.recommend_known("u4", 1)[0].score == pytest.approx(1.2)
    # fold-in of item 5 (0, 1.1), ridge 1: (0, 1.1 / 2.21); items masked: 5 given, 3 held out
    recs = service.recommend_new(items=["i5"], n=3)
    assert ids(recs) == ["i7", "i6", "i4"]
    assert recs[0].score == pytest.approx(1.3 * 1.1 / 2.21, rel=1e-5)


def test_new_user_with_only_features_or_friends_gets_the_similar_users_taste(world):
    service = load_service(world.root, "mf")
    assert (service.shrink, service.zero_similar, service.settings) == (DEFAULT_SHRINK, True, {"ridge": 1.0})
    assert service.settings_source == "defaults"
    assert ids(service.recommend_new(n=6)) == POPULAR                              # nothing known: popularity
    # club b: the training items of users 4 and 5 (5 twice, 4 and 6 once), not the popular A items
    assert ids(service.recommend_new(features={"club": "b"}, n=3)) == ["i5", "i4", "i6"]
    assert ids(service.recommend_new(features={"club": "a"}, n=3)) == ["i0", "i1", "i2"]
    # a friend: its embedding (0, 1) ranks the B items by their second coordinate
    assert ids(service.recommend_new(friends=["u4"], n=4)) == ["i7", "i6", "i5", "i4"]
    # zero_similar off (as an evaluation may choose): a user without items gets the popularity ranking
    service.zero_similar = False
    assert ids(service.recommend_new(features={"club": "b"}, n=6)) == POPULAR


def test_given_items_and_held_out_items_are_never_recommended(world):
    for name in ("mf", "popularity"):
        service = load_service(world.root, name)
        given = ["i7", "i6", "i0"]
        recs = service.recommend_new(items=given, friends=["u4"], features={"club": "b"}, n=N_ITEMS)
        assert len(recs) == N_ITEMS - 4 and not set(ids(recs)) & {*given, "i3"}
        assert all(np.isfinite(r.score) for r in recs)
        known = service.recommend_known("u0", N_ITEMS)
        assert "i3" not in ids(known) and not set(ids(known)) & {"i0", "i1", "i2"}


# ------------------------------------------------------------------------------------- unknown ids
def test_unknown_ids_are_all_named_in_one_error(world):
    service = load_service(world.root, "mf")
    with pytest.raises(UnknownIdsError) as info:
        service.recommend_new(items=["i1", "x1", "x2"], friends=["u4", "u6", "nobody"],
                              features={"club": "b", "city": "paris", "height": "180"})
    assert info.value.unknown == {"items": ["x1", "x2"], "friends": ["u6", "nobody"], "features": ["height"],
                                  "feature values": ["city=paris"]}            # u6, paris: no training user
    message = str(info.value)
    assert "\n" not in message and all(x in message for x in ("x1", "x2", "u6", "nobody", "height", "city=paris"))
    with pytest.raises(UnknownIdsError, match="u6"):
        service.recommend_known("u6")                                          # no training interaction


def test_ignore_unknown_drops_them_with_a_warning(world):
    service = load_service(world.root, "mf")
    with pytest.warns(UnknownIdsWarning, match="x1.*u6.*height.*city=paris"):
        recs = service.recommend_new(items=["i5", "x1"], friends=["u6"], features={"height": "1", "city": "paris"},
                                     n=3, ignore_unknown=True)
    assert ids(recs) == ids(service.recommend_new(items=["i5"], n=3))


def test_a_users_table_without_feature_columns_knows_no_feature(tmp_path):
    paths = write_project(tmp_path, N_USERS, N_ITEMS, TRAIN, VAL, TIES, None, HIDDEN, names=False)
    save_model(paths, "mf", hand_set_mf(), embedding_dim=2)
    service = load_service(tmp_path, "mf")
    assert service.features == []
    with pytest.raises(UnknownIdsError, match="features 'club'"):
        service.recommend_new(features={"club": "b"})
    assert service.recommend_new(friends=["u4"], n=1)[0].name is None


def test_missing_run_or_model_is_a_clear_error(world, tmp_path):
    with pytest.raises(NoRunError, match="make run"):
        load_service(tmp_path / "empty", "mf")
    with pytest.raises(NoRunError, match=r"no trained model 'gat' \(trained: mf, popularity\)"):
        load_service(world.root, "gat")


# ----------------------------------------------------------------------------------------- settings
def test_the_settings_the_evaluation_chose_are_reused(world):
    trials = [{"shrink": s, "settings": {"ridge": r}, "ndcg@20": 0.1} for s in (0.0, 3.0) for r in (1.0, 0.1)]
    write_json(world.eval_details, {"cold_start": {"models": {
        "mf": {"shrink": 3.0, "settings": {"ridge": 0.1}, "trials": trials},
        "popularity": {"shrink": 0.0, "settings": {}, "trials": []}}}})
    mf = load_service(world.root, "mf")
    assert (mf.shrink, mf.settings, mf.settings_source) == (3.0, {"ridge": 0.1}, "reports/evaluation.json")
    # one shrink tried (no side information in the evaluation): the serving default
    write_json(world.eval_details, {"cold_start": {"models": {"mf": {
        "shrink": 0.0, "settings": {"ridge": 10.0}, "trials": [{"shrink": 0.0, "settings": {"ridge": 10.0}}]}}}})
    mf = load_service(world.root, "mf")
    assert (mf.shrink, mf.settings) == (DEFAULT_SHRINK, {"ridge": 10.0})


SMALL = {
    "lightgcn": {"embedding_dim": 8, "num_layers": 2},
    "gcn": {"embedding_dim": 8, "num_layers": 2},
    "ngcf": {"embedding_dim": 8, "num_layers": 2, "message_dropout": 0.0},
    "social": {"embedding_dim": 8, "num_layers": 2},
    "graphsage": {"embedding_dim": 8, "fanouts": [3, 3]},
    "gat": {"embedding_dim": 8, "num_layers": 2, "heads": 2, "fanouts": [3, 3]},
    "pinsage": {"embedding_dim": 8, "num_layers": 2, "walk_length": 2, "num_walks": 10, "top_k": 3},
}


@pytest.mark.parametrize("name", list(SMALL))
def test_every_model_serves_known_and_new_users(world, name):
    torch.manual_seed(3)
    model = build_model(name, n_users=N_USERS, n_items=N_ITEMS, **SMALL[name])
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_model(world, name, model, **SMALL[name])
    service = load_service(world.root, name)
    for request in ({"items": ["i1", "i5"], "friends": ["u4"], "features": {"club": "b", "city": "rome"}},
                    {"friends": ["u0", "u5"]}, {"features": {"city": "oslo"}}, {"items": ["i6"]}, {}):
        recs = service.recommend_new(**request, n=5)
        assert len(recs) == 5 and not {*request.get("items", []), "i3"} & set(ids(recs)), request
        assert all(np.isfinite(r.score) for r in recs)
    assert len(service.recommend_known("u1", 3)) == 3


# --------------------------------------------------------------------------- agreement with evaluate
def test_known_users_get_the_evaluate_stages_recommendations_and_its_chosen_settings(tmp_path):
    from gnnrec.stages import evaluate as evaluate_stage
    from gnnrec.stages import train as train_stage

    rng = np.random.default_rng(0)
    n_comm, per, items_per = 3, 8, 10
    n_train_users = n_comm * per
    train, val, cold = [], [], []
    for u in range(n_train_users + 6):                  # the last 6: held out (3 validation, 3 test users)
        c = u % n_comm
        chosen = c * items_per + rng.choice(items_per, 7, replace=False)
        if u < n_train_users:
            train += [(u, int(i)) for i in chosen[:6]]
            val.append((u, int(chosen[6])))
        else:
            cold += [(u, int(i), r) for r, i in enumerate(chosen)]
    n_users, n_items = n_train_users + 6, n_comm * items_per
    club = [f"c{u % n_comm}" for u in range(n_users)]
    paths = write_project(tmp_path, n_users, n_items, train, val, [(0, 3), (1, 4), (24, 0)], {"club": club})
    write_parquet(paths.split / "cold_users.parquet", pd.DataFrame(
        {"user_id": np.arange(n_train_users, n_users, dtype=np.int64),
         "role": pd.Series(["val", "test"] * 3, dtype="str")}))
    cold_frame = pd.DataFrame(np.array(cold, dtype=np.int64), columns=["user_id", "item_id", "reveal"])
    write_parquet(paths.split / "cold_user_interactions.parquet", cold_frame)
    params = params_from_dict({"models": ["lightgcn", "mf", "popularity"],
                               "train": {"epochs": 3, "batch_size": 32, "lr": 0.05, "patience": 2},
                               "lightgcn": {"embedding_dim": 8, "num_layers": 2}, "mf": {"embedding_dim": 8},
                               "evaluate": {"k": [5], "cold_start": {"exact": False}}})
    for name in params.models:
        train_stage.run(params, paths, name)
    evaluate_stage.run(params, paths)
    recs = pd.read_parquet(paths.recommendations)
    chosen = json.loads(paths.eval_details.read_text())["cold_start"]["models"]
    for name in params.models:
        service = load_service(tmp_path, name)
        assert service.settings_source == "reports/evaluation.json"
        assert service.settings == chosen[name]["settings"]
        if name != "popularity":                                   # with features: several shrinks tried
            assert service.shrink == chosen[name]["shrink"]
        assert service.zero_similar == chosen[name]["zero_similar"] or name == "popularity"
        for user, rows in recs[recs["model"] == name].groupby("user"):
            rows = rows.sort_values("rank")
            got = service.recommend_known(user, 5)
            assert ids(got) == rows["item"].tolist(), (name, user)
            np.testing.assert_allclose([r.score for r in got], rows["score"], rtol=1e-5, atol=1e-6)
        # a held-out user by raw ids: the evaluation's scorer, settings and side information give the same
        side = cs.side_info(pd.read_parquet(paths.dataset / "users.parquet"),
                            pd.read_parquet(paths.dataset / "social.parquet"), np.array([n_train_users]))
        scorer = cs.ColdStartScorer(service.model, service.state, service.popularity, service.known,
                                    side.features, np.array(train)[:, 0],
                                    np.array(train)[:, 1])
        user = np.array([n_train_users])
        for k in (0, 1, 3):
            revealed = cold_frame[cold_frame["user_id"] == n_train_users].sort_values("reveal")["item_id"][:k]
            rows, cols = scorer.embed([torch.tensor(revealed.to_numpy())], service.shrink, service.settings,
                                      side.feature_rows(user), side.friend_lists(user),
                                      zero_similar=service.zero_similar)
            scores = rows @ cols.t()
            scores[0, torch.tensor(revealed.to_numpy(), dtype=torch.long)] = float("-inf")
            expected = [f"i{i}" for i in topk_tiebreak(scores, 5)[1][0].tolist()]
            got = service.recommend_new(items=[f"i{i}" for i in revealed], friends=["u0"],
                                        features={"club": club[n_train_users]}, n=5)
            assert ids(got) == expected, (name, k)


# ---------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, ["recommend", *args])


def test_cli_unknown_ids_exit_2_with_one_line_naming_all(world):
    result = cli("--items", "i1,x1,x2", "--friends", "u6,u4", "--feature", "club=z", "--feature", "height=1",
                 "--model", "mf", "--root", str(world.root))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert all(x in lines[0] for x in ("'x1'", "'x2'", "'u6'", "'height'", "'club=z'", "--ignore-unknown"))
    assert result.stdout == ""


def test_cli_ignore_unknown_warns_and_answers(world):
    result = cli("--items", "i5,x1", "--feature", "height=1", "--ignore-unknown", "--model", "mf", "-n", "3",
                 "--root", str(world.root))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "gnnrec: warning: ignoring unknown ids: items 'x1'; features 'height'"
    assert result.stdout.splitlines() == ["  1. i7  item 7  (0.6471)", "  2. i6  item 6  (0.5973)",
                                          "  3. i4  item 4  (0.4977)"]


def test_cli_new_user_from_features_and_known_user(world):
    result = cli("--feature", "club=b", "--model", "mf", "-n", "2", "--root", str(world.root))
    assert result.exit_code == 0 and [line.split()[1] for line in result.stdout.splitlines()] == ["i5", "i4"]
    result = cli("u4", "--model", "popularity", "-n", "2", "--root", str(world.root))
    assert result.exit_code == 0 and result.stdout.splitlines() == ["  1. i0  item 0  (4.0000)",
                                                                    "  2. i1  item 1  (4.0000)"]
    result = cli("u6", "--model", "mf", "--root", str(world.root))
    assert result.exit_code == 2 and "users 'u6'" in result.stderr and len(result.stderr.splitlines()) == 1


def test_cli_without_a_run_says_how_to_make_one(tmp_path):
    for args in (["u1"], ["--items", "i1"]):
        result = cli(*args, "--root", str(tmp_path))
        assert result.exit_code == 2 and "make run" in result.stderr and "dvc repro" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_cli_rejects_both_or_neither_kind_of_user_and_bad_features(world):
    for args in ([], ["u1", "--items", "i1"], ["--feature", "club"]):
        result = cli(*args, "--root", str(world.root))
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")                              # no stray warning on a clean request
        assert cli("--items", "i5", "--model", "mf", "--root", str(world.root)).exit_code == 0


# ---------------------------------------------------------------------------------------- benchmark
def test_the_serving_benchmark_times_every_model_of_a_run(world):
    from benchmarks import serving as bench

    write_parquet(world.split / "cold_user_interactions.parquet", pd.DataFrame(
        {"user_id": np.full(5, 6, dtype=np.int64), "item_id": np.array([0, 1, 4, 5, 6], dtype=np.int64),
         "reveal": np.arange(5, dtype=np.int64)}))
    requests = bench.new_user_requests(world.root)
    assert requests == [{"items": ["i0", "i1", "i4", "i5", "i6"], "friends": [],
                         "features": {"club": "b", "city": "paris"}}]
    rows = bench.run(root=world.root, requests=3)
    assert [r.what for r in rows] == [f"serving {m}: new user, k={k} (ms per request)"
                                      for m in ("mf", "popularity") for k in bench.KS]
    assert all(r.ours_ms > 0 and r.extra["by_threads"]["1"]["median_ms"] == r.ours_ms for r in rows)

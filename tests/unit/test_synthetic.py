"""The synthetic dataset: byte-identical regeneration, exact shape, planted structure, and its loader."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnrec.config import SyntheticConfig, params_from_dict
from gnnrec.datasets import load_source, synthetic
from gnnrec.datasets.synthetic import FEATURES, FILES, generate, write_synthetic
from gnnrec.errors import DataError, ParamsError

SMALL = SyntheticConfig(n_users=60, n_items=120, n_interactions=2400, n_communities=4, n_social=400,
                        noise_share=0.25)
DEFAULT = SyntheticConfig()


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def default_data() -> dict[str, pd.DataFrame]:
    """The default dataset (seed 42), generated once for the module."""
    return generate(DEFAULT, 42)


# ----------------------------------------------------------------------------------- determinism
def test_same_config_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    write_synthetic(DEFAULT, 42, tmp_path / "a")
    write_synthetic(DEFAULT, 42, tmp_path / "b")
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert set(first) == {"interactions.csv", "social.csv", "items.csv", "users.csv"}
    assert first == second
    assert all((tmp_path / "a" / name).stat().st_size > 0 for name in FILES)


def test_a_different_seed_gives_different_files(tmp_path: Path) -> None:
    write_synthetic(SMALL, 1, tmp_path / "a")
    write_synthetic(SMALL, 2, tmp_path / "b")
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    for name in ("interactions.csv", "social.csv", "users.csv"):
        assert first[name] != second[name], name


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    generate(DEFAULT, 7)
    assert time.perf_counter() - start < 6.0   # about 1 s on one core


def test_files_hold_integers_and_sorted_rows(tmp_path: Path) -> None:
    write_synthetic(SMALL, 3, tmp_path)
    lines = (tmp_path / "interactions.csv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "user_id,item_id,rating,timestamp"
    assert lines[-1] == "" and "\r" not in lines[1]
    assert all(field.isdigit() for line in lines[1:-1] for field in line.split(","))
    assert (tmp_path / "social.csv").read_text().startswith("src,dst,noise,kind\n")
    items = (tmp_path / "items.csv").read_text(encoding="utf-8").split("\n")
    assert items[0] == "item_id,name"
    assert items[1].startswith("1,Item 0001 · ")
    users = (tmp_path / "users.csv").read_text(encoding="utf-8").split("\n")
    assert users[0] == "user_id,age_band,region,occupation"
    assert [line.split(",")[0] for line in users[1:-1]] == [str(u) for u in range(1, SMALL.n_users + 1)]
    inter = pd.read_csv(tmp_path / "interactions.csv")
    assert inter.equals(inter.sort_values(["user_id", "timestamp"], ignore_index=True))
    social = pd.read_csv(tmp_path / "social.csv")
    assert social.equals(social.sort_values(["src", "dst"], ignore_index=True))


# ------------------------------------------------------------------------------------------ shape
def test_interactions_have_the_configured_shape(default_data: dict[str, pd.DataFrame]) -> None:
    inter = default_data["interactions"]
    assert len(inter) == DEFAULT.n_interactions
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert inter["user_id"].min() == 1 and inter["user_id"].nunique() == DEFAULT.n_users
    assert inter["item_id"].min() >= 1 and inter["item_id"].max() <= DEFAULT.n_items
    assert len(default_data["items"]) == DEFAULT.n_items
    assert default_data["items"]["item_id"].tolist() == list(range(1, DEFAULT.n_items + 1))
    assert set(inter["rating"].unique()) <= {1, 2, 3, 4, 5}
    assert inter["rating"].nunique() == 5


def test_user_activity_has_a_long_tail(default_data: dict[str, pd.DataFrame]) -> None:
    activity = default_data["interactions"].groupby("user_id").size()
    heavy = default_data["users"].set_index("user_id")["heavy"]
    assert activity.min() >= synthetic.MIN_ACTIVITY
    assert 10 <= activity.median() <= 15          # the median user is sparse ...
    assert 17 <= activity.mean() <= 20            # ... the mean (n_interactions / n_users) well above it
    assert (activity <= 6).mean() > 0.1           # many very sparse users
    assert 0.02 <= (activity >= 100).mean() <= 0.08   # a minority of heavy users with 100+
    top = activity.sort_values().iloc[-len(activity) // 20:]
    assert top.sum() / activity.sum() > 0.3       # the top 5% hold a large share
    assert abs(heavy.mean() - synthetic.HEAVY_SHARE) < 1e-3
    assert activity[heavy].median() >= 100 and activity[~heavy].quantile(0.99) < 100


def test_every_item_is_used_and_few_are_rare(default_data: dict[str, pd.DataFrame]) -> None:
    counts = default_data["interactions"]["item_id"].value_counts()
    assert len(counts) == DEFAULT.n_items
    assert (counts < 5).mean() < 0.05


def test_timestamps_increase_within_each_user(default_data: dict[str, pd.DataFrame]) -> None:
    inter = default_data["interactions"]
    steps = inter.groupby("user_id")["timestamp"].diff().dropna()
    assert (steps > 0).all()
    assert inter["timestamp"].min() >= 1_500_000_000   # after 2017
    assert inter["timestamp"].max() <= 1_900_000_000   # before 2030


def test_item_popularity_is_skewed(default_data: dict[str, pd.DataFrame]) -> None:
    counts = default_data["interactions"]["item_id"].value_counts()
    top = counts.iloc[: DEFAULT.n_items // 10].sum()
    assert top / counts.sum() > 0.30


def test_users_mostly_consume_their_community(default_data: dict[str, pd.DataFrame]) -> None:
    inter = default_data["interactions"]
    users = default_data["users"].set_index("user_id")
    items = default_data["items"].set_index("item_id")
    same = users.loc[inter["user_id"], "community"].to_numpy() == items.loc[inter["item_id"], "community"].to_numpy()
    light = (inter.groupby("user_id")["item_id"].transform("size") <= 50).to_numpy()
    chance = 1 / DEFAULT.n_communities
    assert same.mean() > 3 * chance
    assert same[light].mean() > 0.6   # light users: mostly community items (affinity 0.75)


# ---------------------------------------------------------------------------------------- drift
def _drift_shares(data: dict[str, pd.DataFrame]) -> dict[str, tuple[float, float]]:
    """Share of favourite- and drift-cluster items among the first and the last 30% of each user's history."""
    inter = data["interactions"]
    users = data["users"].set_index("user_id").loc[inter["user_id"]]
    items = data["items"].set_index("item_id").loc[inter["item_id"]]
    size = inter.groupby("user_id")["item_id"].transform("size").to_numpy()
    position = inter.groupby("user_id").cumcount().to_numpy() / np.maximum(size - 1, 1)
    home = users["community"].to_numpy() == items["community"].to_numpy()
    fav = home & (users["cluster"].to_numpy() == items["cluster"].to_numpy())
    drift = home & (users["drift"].to_numpy() == items["cluster"].to_numpy())
    early, late = (size >= 10) & (position <= 0.3), (size >= 10) & (position >= 0.7)
    return {"fav": (fav[early].mean(), fav[late].mean()), "drift": (drift[early].mean(), drift[late].mean())}


def test_taste_drifts_slowly_from_the_favourite_to_the_drift_cluster(default_data: dict[str, pd.DataFrame]) -> None:
    users = default_data["users"]
    assert (users["drift"] != users["cluster"]).all()
    assert users["drift"].between(0, synthetic.CLUSTERS_PER_COMMUNITY - 1).all()
    shares = _drift_shares(default_data)
    fav_early, fav_late = shares["fav"]
    drift_early, drift_late = shares["drift"]
    assert drift_late - drift_early > 0.05     # later items: more of the drift cluster (about 0.10 -> 0.19)
    assert fav_early - fav_late > 0.04         # ... and less of the favourite one (about 0.33 -> 0.25)
    assert fav_late > drift_late               # slow: the favourite cluster still leads at the end


def test_without_drift_early_and_late_items_look_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "DRIFT_SHARE", 0.0)
    shares = _drift_shares(generate(DEFAULT, 42))
    assert abs(shares["drift"][1] - shares["drift"][0]) < 0.015
    assert abs(shares["fav"][1] - shares["fav"][0]) < 0.015


# ------------------------------------------------------------------------------------- features
def _feature_accuracy(users: pd.DataFrame) -> float:
    """Held-out accuracy of predicting the community as the majority community of the feature combination
    (learnt on even user ids, scored on odd ones; an unseen combination counts as wrong)."""
    combo = users[list(FEATURES)].agg("|".join, axis=1)
    learn = (users["user_id"] % 2 == 0).to_numpy()
    majority = users[learn].groupby(combo[learn])["community"].agg(lambda s: s.value_counts().index[0])
    predicted = combo[~learn].map(majority)
    return float((predicted.to_numpy() == users.loc[~learn, "community"].to_numpy()).mean())


def test_every_user_has_complete_features(default_data: dict[str, pd.DataFrame]) -> None:
    users = default_data["users"]
    assert users["user_id"].tolist() == list(range(1, DEFAULT.n_users + 1))
    assert list(FEATURES) == ["age_band", "region", "occupation"]
    for name, levels in FEATURES.items():
        assert users[name].notna().all()
        assert all(isinstance(value, str) and value for value in users[name])
        assert set(users[name]) == set(levels)   # every level occurs
        assert len(set(levels)) == len(levels) and all("," not in level for level in levels)


def test_features_predict_the_community_well_but_not_perfectly(default_data: dict[str, pd.DataFrame]) -> None:
    accuracy = _feature_accuracy(default_data["users"])
    chance = default_data["users"]["community"].value_counts(normalize=True).max()
    assert accuracy > 4 * chance      # about 0.62 against 0.10
    assert accuracy < 0.8             # far from perfect


def test_features_without_affinity_predict_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "FEATURE_AFFINITY", 0.0)
    users = synthetic._users(DEFAULT, np.random.Generator(np.random.PCG64(42)))
    assert _feature_accuracy(users) < 0.15


# ---------------------------------------------------------------------------------------- social
def _top_items(inter: pd.DataFrame, count: int) -> set[int]:
    """The ``count`` most consumed items (ties: the lower id first)."""
    counts = inter.groupby("item_id").size().reset_index(name="n")
    return set(counts.sort_values(["n", "item_id"], ascending=[False, True])["item_id"].iloc[:count])


def _jaccard(items_of: pd.Series, social: pd.DataFrame) -> float:
    return float(np.mean([len(items_of[s] & items_of[d]) / len(items_of[s] | items_of[d])
                          for s, d in zip(social["src"], social["dst"])]))


def test_social_ties_have_the_configured_kinds(default_data: dict[str, pd.DataFrame]) -> None:
    social = default_data["social"]
    assert len(social) == DEFAULT.n_social
    assert not (social["src"] == social["dst"]).any()
    assert not social.duplicated(["src", "dst"]).any()
    kinds = social["kind"].value_counts().to_dict()
    assert kinds["random"] == round(DEFAULT.n_social * DEFAULT.noise_share)
    assert kinds["hard"] == round(DEFAULT.n_social * DEFAULT.hard_fake_share)
    assert kinds["genuine"] == DEFAULT.n_social - kinds["random"] - kinds["hard"]
    assert set(kinds) == {"genuine", "random", "hard"}
    assert (social["noise"] == (social["kind"] != "genuine").astype(int)).all()
    assert 4 <= len(social) / DEFAULT.n_users <= 6   # sparse: about 5 ties per user


def test_genuine_ties_are_homophilous_and_random_ones_are_not(default_data: dict[str, pd.DataFrame]) -> None:
    social = default_data["social"]
    community = default_data["users"].set_index("user_id")["community"]
    genuine = social[social["kind"] == "genuine"]
    assert (community.loc[genuine["src"]].to_numpy() == community.loc[genuine["dst"]].to_numpy()).all()
    noisy = social[social["kind"] == "random"]
    same = (community.loc[noisy["src"]].to_numpy() == community.loc[noisy["dst"]].to_numpy()).mean()
    assert same < 0.2   # random pairs: about 1 / n_communities


def test_hard_fakes_cross_communities_and_share_popular_items(default_data: dict[str, pd.DataFrame]) -> None:
    inter, social = default_data["interactions"], default_data["social"]
    community = default_data["users"].set_index("user_id")["community"]
    top = _top_items(inter, round(synthetic.HARD_TOP_SHARE * DEFAULT.n_items))
    top_of = inter[inter["item_id"].isin(top)].groupby("user_id")["item_id"].apply(set)
    top_of = top_of.reindex(range(1, DEFAULT.n_users + 1)).apply(lambda s: s if isinstance(s, set) else set())
    hard = social[social["kind"] == "hard"]
    assert (community.loc[hard["src"]].to_numpy() != community.loc[hard["dst"]].to_numpy()).all()
    shared = np.array([len(top_of[s] & top_of[d]) for s, d in zip(hard["src"], hard["dst"])])
    assert (shared >= 1).all()
    assert (top_of.loc[hard["src"]].apply(len) >= 2).all() and (top_of.loc[hard["dst"]].apply(len) >= 2).all()
    rand = social[social["kind"] == "random"]
    shared_random = np.array([len(top_of[s] & top_of[d]) for s, d in zip(rand["src"], rand["dst"])])
    assert shared.mean() > 2 * shared_random.mean()
    # hard to filter by item overlap: about as much in common as genuine ties, far more than random ones
    items_of = inter.groupby("user_id")["item_id"].apply(set)
    jaccard = {kind: _jaccard(items_of, social[social["kind"] == kind].iloc[:3000]) for kind in synthetic.KINDS}
    assert jaccard["hard"] > 1.5 * jaccard["random"]
    assert jaccard["hard"] > 0.5 * jaccard["genuine"]


def test_too_many_social_ties_is_a_params_error() -> None:
    cfg = SyntheticConfig(n_users=10, n_items=20, n_interactions=50, n_communities=5, n_social=80)
    with pytest.raises(ParamsError, match="n_social"):
        generate(cfg, 0)


def test_too_many_hard_fakes_is_a_params_error() -> None:
    cfg = SyntheticConfig(n_users=30, n_items=40, n_interactions=150, n_communities=3, n_social=200,
                          noise_share=0.0, hard_fake_share=0.9)
    with pytest.raises(ParamsError, match="hard_fake_share"):
        generate(cfg, 0)


def test_fake_shares_above_one_are_refused() -> None:
    with pytest.raises(ParamsError, match="hard_fake_share"):
        params_from_dict({"data": {"synthetic": {"noise_share": 0.8, "hard_fake_share": 0.3}}})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_users=st.integers(2, 40), n_items=st.integers(2, 60), density=st.floats(0.01, 0.5),
       n_communities=st.integers(2, 6), social_share=st.floats(0.0, 0.2), noise=st.floats(0.0, 1.0),
       hard=st.floats(0.0, 0.3), affinity=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_for_any_small_config(n_users: int, n_items: int, density: float, n_communities: int,
                                              social_share: float, noise: float, hard: float, affinity: float,
                                              seed: int) -> None:
    n_interactions = max(2, min(int(density * n_users * n_items), n_users * n_items // 2))
    n_social = int(social_share * n_users * (n_users - 1) / (2 * n_communities))
    cfg = SyntheticConfig(n_users=n_users, n_items=n_items, n_interactions=n_interactions,
                          n_communities=n_communities, n_social=n_social, noise_share=noise,
                          hard_fake_share=max(0.0, min(hard, 1.0 - noise - 1e-9)), community_affinity=affinity)
    try:
        data = generate(cfg, seed)
    except ParamsError:  # more ties than the drawn communities can hold: refused, by name
        return
    inter, social, users = data["interactions"], data["social"], data["users"]
    assert len(inter) == n_interactions and not inter.duplicated(["user_id", "item_id"]).any()
    assert inter["item_id"].between(1, n_items).all() and inter["user_id"].between(1, n_users).all()
    assert (inter.groupby("user_id")["timestamp"].diff().dropna() > 0).all()
    assert len(social) == n_social and not (social["src"] == social["dst"]).any()
    assert not social.duplicated(["src", "dst"]).any()
    assert (social["kind"] == "random").sum() == round(n_social * noise)
    assert (social["noise"] == (social["kind"] != "genuine").astype(int)).all()
    assert users["user_id"].tolist() == list(range(1, n_users + 1))
    assert users[list(FEATURES)].notna().all().all()


# ----------------------------------------------------------------------------------------- loader
def test_loader_reads_the_written_files_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synthetic(SMALL, 5, tmp_path / "data" / "synthetic")
    monkeypatch.chdir(tmp_path)
    tables = load_source(params_from_dict({"data": {"source": "synthetic", "path": "data/synthetic"}}))
    assert (len(tables.interactions), len(tables.social), len(tables.items), len(tables.users)) == \
        (SMALL.n_interactions, SMALL.n_social, SMALL.n_items, SMALL.n_users)
    assert list(tables.interactions.columns) == ["user", "item", "rating", "timestamp", "row"]
    assert list(tables.social.columns) == ["src", "dst", "noise", "kind", "row"]
    assert list(tables.items.columns) == ["item", "name", "row"]
    assert list(tables.users.columns) == ["user", "age_band", "region", "occupation", "row"]
    assert tables.interactions["row"].tolist() == list(range(2, SMALL.n_interactions + 2))
    assert tables.users["row"].tolist() == list(range(2, SMALL.n_users + 2))
    assert tables.users["user"].tolist() == [str(u) for u in range(1, SMALL.n_users + 1)]
    assert set(tables.social["noise"]) == {"0", "1"}
    assert set(tables.social["kind"]) == {"genuine", "random", "hard"}
    assert tables.items["name"].iloc[0].startswith("Item 0001 · ")
    assert tables.files["social"] == tmp_path / "data" / "synthetic" / "social.csv"
    assert tables.files["users"] == tmp_path / "data" / "synthetic" / "users.csv"
    assert tables.columns["users"] == {"user": "user_id", "age_band": "age_band", "region": "region",
                                       "occupation": "occupation"}
    assert tables.columns["social"]["kind"] == "kind"
    expected = generate(SMALL, 5)
    assert (tables.interactions["timestamp"].to_numpy() == expected["interactions"]["timestamp"].astype(str)
            .to_numpy()).all()
    assert (tables.users["occupation"].to_numpy() == expected["users"]["occupation"].to_numpy()).all()


def test_loader_accepts_a_dataset_without_social_ties(tmp_path: Path) -> None:
    cfg = SyntheticConfig(n_users=10, n_items=20, n_interactions=60, n_communities=2, n_social=0)
    write_synthetic(cfg, 0, tmp_path)
    tables = load_source(params_from_dict({"data": {"source": "synthetic", "path": str(tmp_path)}}))
    assert len(tables.social) == 0 and list(tables.social.columns) == ["src", "dst", "noise", "kind", "row"]
    assert np.issubdtype(tables.social["row"].dtype, np.integer)
    assert len(tables.users) == 10


def test_loader_names_a_missing_users_file(tmp_path: Path) -> None:
    write_synthetic(SMALL, 5, tmp_path)
    (tmp_path / "users.csv").unlink()
    with pytest.raises(DataError, match="synthetic users"):
        load_source(params_from_dict({"data": {"source": "synthetic", "path": str(tmp_path)}}))

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
from gnnrec.datasets import load_source
from gnnrec.datasets.synthetic import FILES, generate, write_synthetic
from gnnrec.errors import ParamsError

SMALL = SyntheticConfig(n_users=60, n_items=120, n_interactions=2400, n_communities=4, n_social=400,
                        noise_share=0.25)


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def default_data() -> dict[str, pd.DataFrame]:
    """The default dataset (seed 42), generated once for the module."""
    return generate(SyntheticConfig(), 42)


# ----------------------------------------------------------------------------------- determinism
def test_same_config_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    write_synthetic(SyntheticConfig(), 42, tmp_path / "a")
    write_synthetic(SyntheticConfig(), 42, tmp_path / "b")
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert first == second
    assert all((tmp_path / "a" / name).stat().st_size > 0 for name in FILES)


def test_a_different_seed_gives_different_files(tmp_path: Path) -> None:
    write_synthetic(SMALL, 1, tmp_path / "a")
    write_synthetic(SMALL, 2, tmp_path / "b")
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert first["interactions.csv"] != second["interactions.csv"]
    assert first["social.csv"] != second["social.csv"]


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    generate(SyntheticConfig(), 7)
    assert time.perf_counter() - start < 3.0


def test_files_hold_integers_and_sorted_rows(tmp_path: Path) -> None:
    write_synthetic(SMALL, 3, tmp_path)
    lines = (tmp_path / "interactions.csv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "user_id,item_id,rating,timestamp"
    assert lines[-1] == "" and "\r" not in lines[1]
    assert all(field.isdigit() for line in lines[1:-1] for field in line.split(","))
    assert (tmp_path / "social.csv").read_text().startswith("src,dst,noise\n")
    items = (tmp_path / "items.csv").read_text(encoding="utf-8").split("\n")
    assert items[0] == "item_id,name"
    assert items[1].startswith("1,Item 0001 · ")
    inter = pd.read_csv(tmp_path / "interactions.csv")
    assert inter.equals(inter.sort_values(["user_id", "timestamp"], ignore_index=True))
    social = pd.read_csv(tmp_path / "social.csv")
    assert social.equals(social.sort_values(["src", "dst"], ignore_index=True))


# ------------------------------------------------------------------------------------------ shape
def test_interactions_have_the_configured_shape(default_data: dict[str, pd.DataFrame]) -> None:
    cfg = SyntheticConfig()
    inter = default_data["interactions"]
    assert len(inter) == cfg.n_interactions
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert inter["user_id"].min() == 1 and inter["user_id"].nunique() == cfg.n_users
    assert inter["item_id"].min() >= 1 and inter["item_id"].max() <= cfg.n_items
    assert len(default_data["items"]) == cfg.n_items
    assert default_data["items"]["item_id"].tolist() == list(range(1, cfg.n_items + 1))
    assert set(inter["rating"].unique()) <= {1, 2, 3, 4, 5}
    assert inter["rating"].nunique() == 5


def test_user_activity_is_heterogeneous_with_many_sparse_users(default_data: dict[str, pd.DataFrame]) -> None:
    activity = default_data["interactions"].groupby("user_id").size()
    assert activity.min() >= 5
    assert 35 <= activity.median() <= 65            # sparse users: median about half the mean of 100
    assert activity.max() >= 5 * activity.median()  # a long tail
    assert (activity <= 20).mean() > 0.1


def test_timestamps_increase_within_each_user(default_data: dict[str, pd.DataFrame]) -> None:
    inter = default_data["interactions"]
    steps = inter.groupby("user_id")["timestamp"].diff().dropna()
    assert (steps > 0).all()
    assert inter["timestamp"].min() >= 1_500_000_000   # after 2017
    assert inter["timestamp"].max() <= 1_900_000_000   # before 2030


def test_item_popularity_is_skewed(default_data: dict[str, pd.DataFrame]) -> None:
    counts = default_data["interactions"]["item_id"].value_counts()
    top = counts.iloc[: SyntheticConfig().n_items // 10].sum()
    assert top / counts.sum() > 0.30


def test_users_mostly_consume_their_community(default_data: dict[str, pd.DataFrame]) -> None:
    inter = default_data["interactions"]
    users = default_data["users"].set_index("user_id")
    items = default_data["items"].set_index("item_id")
    same = users.loc[inter["user_id"], "community"].to_numpy() == items.loc[inter["item_id"], "community"].to_numpy()
    light = (inter.groupby("user_id")["item_id"].transform("size") <= 50).to_numpy()
    chance = 1 / SyntheticConfig().n_communities
    assert same.mean() > 3 * chance
    assert same[light].mean() > 0.6   # light users: mostly community items (affinity 0.75)


def test_social_ties_are_distinct_directed_and_homophilous(default_data: dict[str, pd.DataFrame]) -> None:
    cfg = SyntheticConfig()
    social = default_data["social"]
    community = default_data["users"].set_index("user_id")["community"]
    assert len(social) == cfg.n_social
    assert not (social["src"] == social["dst"]).any()
    assert not social.duplicated(["src", "dst"]).any()
    assert social["noise"].sum() == round(cfg.n_social * cfg.noise_share)
    genuine = social[social["noise"] == 0]
    assert (community.loc[genuine["src"]].to_numpy() == community.loc[genuine["dst"]].to_numpy()).all()
    noisy = social[social["noise"] == 1]
    same = (community.loc[noisy["src"]].to_numpy() == community.loc[noisy["dst"]].to_numpy()).mean()
    assert same < 0.25   # random pairs: about 1 / n_communities


def test_too_many_social_ties_is_a_params_error() -> None:
    cfg = SyntheticConfig(n_users=10, n_items=20, n_interactions=50, n_communities=5, n_social=80)
    with pytest.raises(ParamsError, match="n_social"):
        generate(cfg, 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_users=st.integers(2, 40), n_items=st.integers(2, 60), density=st.floats(0.01, 0.5),
       n_communities=st.integers(2, 6), social_share=st.floats(0.0, 0.2), noise=st.floats(0.0, 1.0),
       affinity=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_for_any_small_config(n_users: int, n_items: int, density: float, n_communities: int,
                                              social_share: float, noise: float, affinity: float, seed: int) -> None:
    n_interactions = max(2, min(int(density * n_users * n_items), n_users * n_items // 2))
    n_social = int(social_share * n_users * (n_users - 1) / (2 * n_communities))
    cfg = SyntheticConfig(n_users=n_users, n_items=n_items, n_interactions=n_interactions,
                          n_communities=n_communities, n_social=n_social, noise_share=noise,
                          community_affinity=affinity)
    try:
        data = generate(cfg, seed)
    except ParamsError:  # more ties than the drawn communities can hold: refused, by name
        return
    inter, social = data["interactions"], data["social"]
    assert len(inter) == n_interactions and not inter.duplicated(["user_id", "item_id"]).any()
    assert inter["item_id"].between(1, n_items).all() and inter["user_id"].between(1, n_users).all()
    assert (inter.groupby("user_id")["timestamp"].diff().dropna() > 0).all()
    assert len(social) == n_social and not (social["src"] == social["dst"]).any()
    assert not social.duplicated(["src", "dst"]).any()


# ----------------------------------------------------------------------------------------- loader
def test_loader_reads_the_written_files_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_synthetic(SMALL, 5, tmp_path / "data" / "synthetic")
    monkeypatch.chdir(tmp_path)
    tables = load_source(params_from_dict({"data": {"source": "synthetic", "path": "data/synthetic"}}))
    assert tables.rows() == {"interactions": SMALL.n_interactions, "social": SMALL.n_social, "items": SMALL.n_items}
    assert list(tables.interactions.columns) == ["user", "item", "rating", "timestamp", "row"]
    assert list(tables.social.columns) == ["src", "dst", "noise", "row"]
    assert list(tables.items.columns) == ["item", "name", "row"]
    assert tables.interactions["row"].tolist() == list(range(2, SMALL.n_interactions + 2))
    assert set(tables.social["noise"]) == {"0", "1"}
    assert tables.items["name"].iloc[0].startswith("Item 0001 · ")
    assert tables.files["social"] == tmp_path / "data" / "synthetic" / "social.csv"
    expected = generate(SMALL, 5)["interactions"].astype(str)
    assert (tables.interactions["timestamp"].to_numpy() == expected["timestamp"].to_numpy()).all()


def test_loader_accepts_a_dataset_without_social_ties(tmp_path: Path) -> None:
    cfg = SyntheticConfig(n_users=10, n_items=20, n_interactions=60, n_communities=2, n_social=0)
    write_synthetic(cfg, 0, tmp_path)
    tables = load_source(params_from_dict({"data": {"source": "synthetic", "path": str(tmp_path)}}))
    assert len(tables.social) == 0 and list(tables.social.columns) == ["src", "dst", "noise", "row"]
    assert np.issubdtype(tables.social["row"].dtype, np.integer)

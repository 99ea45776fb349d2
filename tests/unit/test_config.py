"""Params loading: defaults, per-model overrides, and errors that name the key."""

from __future__ import annotations

import pytest
import dataclasses

from gnnrec.config import MODEL_PARAMS, Params, load_params, params_from_dict, params_to_dict, parse_metric
from gnnrec.errors import ParamsError
from tests.conftest import REPO


def test_repo_params_file_states_every_default():
    """params.yaml shows users every knob: loading it gives exactly the built-in defaults."""
    params = load_params(REPO / "params.yaml")
    defaults = params_from_dict({})
    for f in dataclasses.fields(Params):
        if f.name != "model_params":
            assert getattr(params, f.name) == getattr(defaults, f.name), f.name
    for name in MODEL_PARAMS:
        assert params.model(name) == defaults.model(name)
        assert name in params.model_params, f"params.yaml has no section for model {name}"
    assert params.data.source == "synthetic" and params.models == ("lightgcn", "mf", "popularity")
    assert params.evaluate.k == (10, 20) and params.validate.strict is False
    assert "seed" in params_to_dict(params) and "min_common_items" in params_to_dict(params)["graph"]["social"]


def test_model_section_overrides_train_settings():
    params = params_from_dict({"train": {"lr": 0.01, "epochs": 5}, "mf": {"lr": 0.001}})
    assert params.train_for("mf").lr == 0.001
    assert params.train_for("mf").epochs == 5
    assert params.train_for("lightgcn").lr == 0.01


@pytest.mark.parametrize("name", [m for m in MODEL_PARAMS if m != "popularity"])
def test_every_trainable_model_section_takes_the_train_overrides(name):
    params = params_from_dict({"train": {"lr": 0.01, "patience": 3},
                               name: {"epochs": 7, "batch_size": 64, "lr": 0.002, "l2": 0.0}})
    cfg = params.train_for(name)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.l2, cfg.patience) == (7, 64, 0.002, 0.0, 3)
    keys = list(params_to_dict(params)[name])
    assert keys[-5:] == ["epochs", "batch_size", "lr", "l2", "patience"]      # the model's own keys first
    with pytest.raises(ParamsError, match=f"{name}.patience"):
        params_from_dict({name: {"patience": 0}})
    with pytest.raises(ParamsError, match=f"{name}.lr"):
        params_from_dict({name: {"lr": -1.0}})


@pytest.mark.parametrize("raw, key, expected", [
    ({"train": {"lr": "fast"}}, "train.lr", "a number"),
    ({"train": {"epochs": 1.5}}, "train.epochs", "an integer"),
    ({"train": {"epochs": True}}, "train.epochs", "an integer"),
    ({"train": {"learning_rate": 0.1}}, "train.learning_rate", "known key"),
    ({"nonsense": 1}, "nonsense", "known section"),
    ({"validate": {"strict": "yes"}}, "validate.strict", "true or false"),
    ({"data": {"source": "netflix"}}, "data.source", "one of"),
    ({"models": ["lightgcn", "transformer"]}, "models", "model names"),
    ({"models": []}, "models", "non-empty"),
    ({"evaluate": {"k": [0]}}, "evaluate.k", ">= 1"),
    ({"evaluate": {"k": "10"}}, "evaluate.k", "a list"),
    ({"split": {"ratios": [0.5, 0.5]}}, "split.ratios", "three"),
    ({"split": {"ratios": [0.8, 0.1, 0.2]}}, "split.ratios", "summing to 1"),
    ({"graph": {"social": {"min_jaccard": 2}}}, "graph.social.min_jaccard", "between 0 and 1"),
    ({"graph": {"social": {"min_common_items": -1}}}, "graph.social.min_common_items", ">= 0"),
    ({"train": {"early_stop": "auc"}}, "train.early_stop", "<metric>@<K>"),
    ({"train": {"device": "tpu"}}, "train.device", "cpu, cuda"),
    ({"train": {"lr": float("nan")}}, "train.lr", "finite"),
    ({"lightgcn": {"num_layers": "3"}}, "lightgcn.num_layers", "an integer"),
    ({"lightgcn": {"dropout": 0.1}}, "lightgcn.dropout", "known key"),
    ({"seed": -1}, "seed", ">= 0"),
    ({"data": "movielens"}, "data", "a mapping"),
])
def test_bad_params_name_the_key(raw, key, expected):
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw)
    assert err.value.key == key
    assert expected in str(err.value)
    assert f"'{key}'" in str(err.value)


def test_load_params_names_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  lr: [1\n")
    with pytest.raises(ParamsError, match="valid YAML"):
        load_params(bad)
    bad.write_text("train:\n  patience: 0\n")
    with pytest.raises(ParamsError) as err:
        load_params(bad)
    assert str(bad) in str(err.value) and "train.patience" in str(err.value)
    with pytest.raises(ParamsError, match="no such file"):
        load_params(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "params.yaml"
    evil.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ParamsError, match="valid YAML"):
        load_params(evil)


def test_parse_metric():
    assert parse_metric("ndcg@20") == ("ndcg", 20)
    assert parse_metric("recall@5") == ("recall", 5)
    with pytest.raises(ParamsError):
        parse_metric("ndcg")

"""Params loading: defaults, per-model overrides, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gnnrec.config import Params, load_params, params_from_dict, params_to_dict, parse_metric
from gnnrec.errors import ParamsError
from gnnrec.models.registry import BUILTIN, model_class
from tests.conftest import REPO

MODEL_NAMES = list(BUILTIN)


def test_repo_params_file_states_every_default():
    """params.yaml shows users every knob: loading it gives exactly the built-in defaults."""
    params = load_params(REPO / "params.yaml")
    defaults = params_from_dict({})
    for name in Params.model_fields:
        if name != "model_sections":
            assert getattr(params, name) == getattr(defaults, name), name
    for name in MODEL_NAMES:
        assert params.model(name) == defaults.model(name)
        assert name in params.model_sections, f"params.yaml has no section for model {name}"
    assert params.data.source == "synthetic" and params.models == ("lightgcn", "social", "mf", "popularity")
    assert params.evaluate.k == (10, 20) and params.validate.strict is False
    assert "seed" in params_to_dict(params) and "min_common_items" in params_to_dict(params)["graph"]["social"]


def test_model_section_overrides_train_settings():
    params = params_from_dict({"train": {"lr": 0.01, "epochs": 5}, "mf": {"lr": 0.001}})
    assert params.train_for("mf").lr == 0.001
    assert params.train_for("mf").epochs == 5
    assert params.train_for("lightgcn").lr == 0.01


@pytest.mark.parametrize("name", [m for m in MODEL_NAMES if model_class(m).trainable])
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
    ({"train": {"epochs": "3"}}, "train.epochs", "an integer"),
    ({"train": {"lr": "0.1"}}, "train.lr", "a number"),
    ({"train": {"lr": True}}, "train.lr", "a number"),
    ({"train": {"loss": "hinge"}}, "train.loss", "one of bpr, softmax"),
    ({"split": {"seed": "7"}}, "split.seed", "an integer"),
    ({"split": {"seed": -3}}, "split.seed", ">= 0"),
    ({"gcn": {"residual": "yes"}}, "gcn.residual", "true or false"),
    ({"gat": {"fanouts": [10, 0]}}, "gat.fanouts", "integers >= 1"),
    ({"data": {"tabular": {"columns": {"usr": "u"}}}}, "data.tabular.columns.usr", "known key"),
    ({"models": ["lightgcn", "lightgcn"]}, "models", "distinct"),
    ({"data": "movielens"}, "data", "a mapping"),
    ({"bspm": {"blur_solver": "dopri5"}}, "bspm.blur_solver", "one of"),
    ({"gfcf": {"epochs": 3}}, "gfcf.epochs", "None"),          # training-free: no training overrides
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


def test_params_are_frozen():
    params = params_from_dict({})
    with pytest.raises(Exception, match="frozen"):
        params.train.lr = 1.0          # type: ignore[misc]


def test_split_seed_defaults_to_seed_and_can_be_set_apart():
    """Several training seeds on one split: ``split.seed`` fixes the split while ``seed`` changes."""
    assert params_from_dict({"seed": 7}).split_seed == 7
    params = params_from_dict({"seed": 7, "split": {"seed": 3}})
    assert (params.seed, params.split_seed) == (7, 3)


def test_a_users_model_is_named_in_models_and_its_section_gives_the_import_path():
    params = params_from_dict({"models": ["mf", "toy"], "toy": {"model": "my_models.toy:ToyModel", "dim": 3}},
                              check_models=False)
    assert params.models == ("mf", "toy") and params.model_target("toy") == "my_models.toy:ToyModel"
    assert params.model_target("mf") is None
    with pytest.raises(ParamsError, match="'models'.*your own") as err:          # no section saying what it is
        params_from_dict({"models": ["toy"]}, check_models=False)
    assert "model: package.module:ClassName" in str(err.value)
    with pytest.raises(ParamsError, match="'toy.model'.*import path"):
        params_from_dict({"models": ["toy"], "toy": {"model": "not a path"}}, check_models=False)
    with pytest.raises(ParamsError, match="'mf.model'.*built-in"):
        params_from_dict({"mf": {"model": "x.y:Z"}}, check_models=False)
    with pytest.raises(ParamsError, match="'toy.model'.*importable"):         # checked: the module must import
        params_from_dict({"models": ["toy"], "toy": {"model": "no_such_pkg.mod:Toy"}})
    with pytest.raises(ParamsError, match="'models'"):
        params_from_dict({"models": ["not a name!"]})


def test_model_sections_can_be_checked_lazily():
    """A bad model section fails when it is checked (ingest, or the model's own stage), not before."""
    params = params_from_dict({"lightgcn": {"num_layers": "three"}}, check_models=False)
    with pytest.raises(ParamsError, match="lightgcn.num_layers"):
        params.model("lightgcn")
    with pytest.raises(ParamsError, match="lightgcn.num_layers"):
        params_from_dict({"lightgcn": {"num_layers": "three"}})


def test_a_bad_model_section_found_by_its_train_stage_names_the_params_file(tmp_path):
    """The train stage checks its model's section before any work; the error names the file, as the checks
    made when the file is loaded do."""
    from gnnrec.stages import run_stage

    (tmp_path / "params.yaml").write_text("lightgcn:\n  num_layers: three\n")
    with pytest.raises(ParamsError) as info:
        run_stage("train", model="lightgcn", root=tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'params.yaml'}: key 'lightgcn.num_layers': expected an integer")
    assert not (tmp_path / "artifacts").exists()


def test_param_schemas_import_without_torch():
    """Params load in every stage: loading them (without checking model sections) imports neither torch
    nor PyG."""
    code = ("import sys; from gnnrec.config import load_params; "
            f"load_params({str(REPO / 'params.yaml')!r}, check_models=False); "
            "print('torch' in sys.modules, 'torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

"""Typed params: one frozen dataclass per ``params.yaml`` section, loaded and validated in one place.

Every key is checked at load time: an unknown key, a wrong type or an out-of-range value raises
:class:`ParamsError` naming the dotted key (``train.lr``) and what was expected. The defaults here are
the defaults of the pipeline; ``params.yaml`` repeats them so that users see every knob.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gnnrec.errors import ParamsError

SOURCES = ("synthetic", "movielens-100k", "lastfm-hetrec", "csv", "parquet", "lightgcn-format")
SPLIT_METHODS = ("random", "temporal")
NEGATIVE_STRATEGIES = ("uniform", "popularity", "hard")
LAYER_COMBINATIONS = ("mean", "concat", "last")
SAGE_AGGREGATORS = ("mean", "pool", "lstm")
DEVICES = ("cpu", "cuda")
LOSSES = ("bpr", "softmax")
METRIC_NAMES = ("recall", "ndcg", "precision", "hitrate")


# ----------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class InteractionColumns:
    """Column names of the user's interactions file (generic ``csv`` / ``parquet`` sources)."""

    user: str = "user_id"
    item: str = "item_id"
    rating: Optional[str] = None
    timestamp: Optional[str] = None


@dataclass(frozen=True)
class SocialColumns:
    src: str = "src"
    dst: str = "dst"


@dataclass(frozen=True)
class ItemColumns:
    item: str = "item_id"
    name: Optional[str] = None


@dataclass(frozen=True)
class TabularConfig:
    """Files of the generic ``csv`` / ``parquet`` sources, relative to ``data.path`` (or absolute)."""

    interactions: str = "interactions.csv"
    social: Optional[str] = None
    items: Optional[str] = None
    sep: str = ","
    columns: InteractionColumns = field(default_factory=InteractionColumns)
    social_columns: SocialColumns = field(default_factory=SocialColumns)
    item_columns: ItemColumns = field(default_factory=ItemColumns)

    def __post_init__(self) -> None:
        if len(self.sep) != 1 and self.sep not in ("\\t", "\t"):
            raise ParamsError("data.tabular.sep", "a single character (or '\\t')", self.sep)
        if self.sep in ("\n", "\r", '"'):  # line breaks and the quote character cannot separate fields
            raise ParamsError("data.tabular.sep", "a single character other than a line break or '\"'",
                              repr(self.sep))


@dataclass(frozen=True)
class SyntheticConfig:
    """Shape of the embedded synthetic social-recommendation dataset (generated from ``seed``)."""

    n_users: int = 1000
    n_items: int = 2000
    n_interactions: int = 100_000
    n_communities: int = 10
    n_social: int = 10_000
    noise_share: float = 0.3
    popularity_exponent: float = 0.9
    community_affinity: float = 0.75

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_interactions", "n_communities"):
            if getattr(self, name) < 2:
                raise ParamsError(f"data.synthetic.{name}", "an integer >= 2", getattr(self, name))
        if self.n_social < 0:
            raise ParamsError("data.synthetic.n_social", "an integer >= 0", self.n_social)
        if self.n_interactions > self.n_users * self.n_items // 2:
            raise ParamsError(
                "data.synthetic.n_interactions", "at most half of n_users * n_items", self.n_interactions
            )
        _check_unit("data.synthetic.noise_share", self.noise_share)
        _check_unit("data.synthetic.community_affinity", self.community_affinity)
        if self.popularity_exponent < 0:
            raise ParamsError("data.synthetic.popularity_exponent", "a number >= 0", self.popularity_exponent)


@dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"
    path: str = "data/synthetic"
    min_rating: Optional[float] = None
    k_core: Optional[int] = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    tabular: TabularConfig = field(default_factory=TabularConfig)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ParamsError("data.source", f"one of {', '.join(SOURCES)}", self.source)
        if not self.path:
            raise ParamsError("data.path", "a non-empty path", self.path)
        if self.k_core is not None and self.k_core < 1:
            raise ParamsError("data.k_core", "null or an integer >= 1", self.k_core)
        if self.min_rating is not None and not math.isfinite(self.min_rating):
            raise ParamsError("data.min_rating", "null or a finite number", self.min_rating)


# ------------------------------------------------------------------------------------ validate
@dataclass(frozen=True)
class ValidateConfig:
    strict: bool = False
    max_examples: int = 5

    def __post_init__(self) -> None:
        if self.max_examples < 1:
            raise ParamsError("validate.max_examples", "an integer >= 1", self.max_examples)


# --------------------------------------------------------------------------------------- split
@dataclass(frozen=True)
class SplitConfig:
    method: str = "random"
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    min_user_interactions: int = 3

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise ParamsError("split.method", f"one of {', '.join(SPLIT_METHODS)}", self.method)
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise ParamsError("split.ratios", "three non-negative numbers (train, val, test) summing to 1",
                              list(self.ratios))
        if self.ratios[0] <= 0:
            raise ParamsError("split.ratios", "a train share > 0", list(self.ratios))
        if self.min_user_interactions < 1:
            raise ParamsError("split.min_user_interactions", "an integer >= 1", self.min_user_interactions)


# --------------------------------------------------------------------------------------- graph
@dataclass(frozen=True)
class SocialGraphConfig:
    min_common_items: int = 2
    min_jaccard: float = 0.04

    def __post_init__(self) -> None:
        if self.min_common_items < 0:
            raise ParamsError("graph.social.min_common_items", "an integer >= 0", self.min_common_items)
        _check_unit("graph.social.min_jaccard", self.min_jaccard)


@dataclass(frozen=True)
class GraphConfig:
    social: SocialGraphConfig = field(default_factory=SocialGraphConfig)


# --------------------------------------------------------------------------------------- train
@dataclass(frozen=True)
class TrainConfig:
    """The shared training loop. Any of ``epochs``, ``batch_size``, ``lr``, ``l2`` and ``patience`` can
    be overridden per model in that model's section."""

    epochs: int = 300
    batch_size: int = 2048
    lr: float = 0.005
    l2: float = 1e-4
    negatives: str = "uniform"
    negative_alpha: float = 0.75
    negative_pool: int = 16
    early_stop: str = "ndcg@20"
    patience: int = 10
    eval_every: int = 1
    device: str = "cpu"
    num_threads: Optional[int] = None
    max_seconds: Optional[float] = None
    checkpoint_every: int = 1
    loss: str = "bpr"                 # bpr (sampled negatives) | softmax (in-batch, L2-normalised embeddings)
    temperature: float = 0.12         # softmax only

    def __post_init__(self) -> None:
        _check_common_train(self, "train")
        if self.loss not in LOSSES:
            raise ParamsError("train.loss", f"one of {', '.join(LOSSES)}", self.loss)
        if not self.temperature > 0:
            raise ParamsError("train.temperature", "a number > 0", self.temperature)
        if self.checkpoint_every < 0:
            raise ParamsError("train.checkpoint_every", "an integer >= 0 (0: no resumable checkpoints)",
                              self.checkpoint_every)
        if self.negatives not in NEGATIVE_STRATEGIES:
            raise ParamsError("train.negatives", f"one of {', '.join(NEGATIVE_STRATEGIES)}", self.negatives)
        if self.negative_alpha < 0:
            raise ParamsError("train.negative_alpha", "a number >= 0", self.negative_alpha)
        if self.negative_pool < 1:
            raise ParamsError("train.negative_pool", "an integer >= 1", self.negative_pool)
        parse_metric(self.early_stop, "train.early_stop")
        if self.eval_every < 1:
            raise ParamsError("train.eval_every", "an integer >= 1", self.eval_every)
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ParamsError("train.device", "cpu, cuda or cuda:N", self.device)
        if self.num_threads is not None and self.num_threads < 1:
            raise ParamsError("train.num_threads", "null or an integer >= 1", self.num_threads)
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ParamsError("train.max_seconds", "null or a number > 0", self.max_seconds)


@dataclass(frozen=True, kw_only=True)      # keyword-only: a section's own fields keep their positions
class TrainOverrides:
    """What every trainable model's section may set to override the shared ``train`` section for that
    model alone (null: ``train``'s value). The model sections derive from it; ``params_to_dict`` lists
    these keys after the model's own."""

    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    l2: Optional[float] = None
    patience: Optional[int] = None


_TRAIN_OVERRIDES = tuple(f.name for f in dataclasses.fields(TrainOverrides))


@dataclass(frozen=True)
class LightGCNParams(TrainOverrides):
    embedding_dim: int = 64
    num_layers: int = 3

    def __post_init__(self) -> None:
        _check_positive("lightgcn.embedding_dim", self.embedding_dim)
        if self.num_layers < 0:
            raise ParamsError("lightgcn.num_layers", "an integer >= 0", self.num_layers)
        _check_common_train(self, "lightgcn", optional=True)


@dataclass(frozen=True)
class MFParams(TrainOverrides):
    embedding_dim: int = 64

    def __post_init__(self) -> None:
        _check_positive("mf.embedding_dim", self.embedding_dim)
        _check_common_train(self, "mf", optional=True)


@dataclass(frozen=True)
class PopularityParams:
    """Popularity needs no training: it ranks items by their number of training interactions."""


def _check_layers(section: str, obj: Any, min_layers: int = 0) -> None:
    """Checks shared by the graph models' sections (only the fields a section has)."""
    _check_positive(f"{section}.embedding_dim", obj.embedding_dim)
    if hasattr(obj, "num_layers") and obj.num_layers < min_layers:
        raise ParamsError(f"{section}.num_layers", f"an integer >= {min_layers}", obj.num_layers)
    for name in ("dropout", "message_dropout", "attention_dropout", "edge_dropout"):
        if hasattr(obj, name) and not 0.0 <= getattr(obj, name) < 1.0:
            raise ParamsError(f"{section}.{name}", "a number in [0, 1)", getattr(obj, name))
    if hasattr(obj, "layer_combination") and obj.layer_combination not in LAYER_COMBINATIONS:
        raise ParamsError(f"{section}.layer_combination", f"one of {', '.join(LAYER_COMBINATIONS)}",
                          obj.layer_combination)
    if hasattr(obj, "fanouts") and (not obj.fanouts or any(f < 1 for f in obj.fanouts)):
        raise ParamsError(f"{section}.fanouts", "a non-empty list of integers >= 1", list(obj.fanouts))
    _check_common_train(obj, section, optional=True)


@dataclass(frozen=True)
class NGCFParams(TrainOverrides):
    embedding_dim: int = 64
    num_layers: int = 3
    message_dropout: float = 0.1
    edge_dropout: float = 0.0
    layer_combination: str = "concat"

    def __post_init__(self) -> None:
        _check_layers("ngcf", self)


@dataclass(frozen=True)
class GCNParams(TrainOverrides):
    embedding_dim: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    edge_dropout: float = 0.0
    residual: bool = False
    layer_combination: str = "mean"

    def __post_init__(self) -> None:
        _check_layers("gcn", self)


@dataclass(frozen=True)
class GATParams(TrainOverrides):
    embedding_dim: int = 64
    num_layers: int = 2
    heads: int = 4
    fanouts: tuple[int, ...] = (10, 10)
    replace: bool = False
    dropout: float = 0.0
    attention_dropout: float = 0.0
    edge_dropout: float = 0.0
    residual: bool = False
    layer_combination: str = "mean"

    def __post_init__(self) -> None:
        _check_layers("gat", self, min_layers=1)
        if self.heads < 1 or self.embedding_dim % self.heads:
            raise ParamsError("gat.heads", f"an integer >= 1 dividing gat.embedding_dim ({self.embedding_dim})",
                              self.heads)
        if len(self.fanouts) != self.num_layers:
            raise ParamsError("gat.fanouts", f"one fanout per layer (gat.num_layers = {self.num_layers})",
                              list(self.fanouts))


@dataclass(frozen=True)
class GraphSAGEParams(TrainOverrides):
    """The number of layers is ``len(fanouts)``."""

    embedding_dim: int = 64
    aggregator: str = "mean"
    fanouts: tuple[int, ...] = (10, 5)
    replace: bool = True
    dropout: float = 0.0
    edge_dropout: float = 0.0
    residual: bool = False
    layer_combination: str = "mean"

    def __post_init__(self) -> None:
        _check_layers("graphsage", self)
        if self.aggregator not in SAGE_AGGREGATORS:
            raise ParamsError("graphsage.aggregator", f"one of {', '.join(SAGE_AGGREGATORS)}", self.aggregator)


@dataclass(frozen=True)
class PinSageParams(TrainOverrides):
    embedding_dim: int = 64
    num_layers: int = 2
    walk_length: int = 3
    num_walks: int = 20
    top_k: int = 10
    dropout: float = 0.0
    residual: bool = False
    layer_combination: str = "mean"
    hard_negatives: float = 0.5
    curriculum_epochs: int = 10
    hard_pool: int = 16

    def __post_init__(self) -> None:
        _check_layers("pinsage", self, min_layers=1)
        for name in ("walk_length", "num_walks", "top_k", "hard_pool"):
            if getattr(self, name) < 1:
                raise ParamsError(f"pinsage.{name}", "an integer >= 1", getattr(self, name))
        _check_unit("pinsage.hard_negatives", self.hard_negatives)
        if self.curriculum_epochs < 0:
            raise ParamsError("pinsage.curriculum_epochs", "an integer >= 0", self.curriculum_epochs)


@dataclass(frozen=True)
class SocialParams(TrainOverrides):
    embedding_dim: int = 64
    num_layers: int = 3
    social_weight: float = 0.5
    attention: bool = True
    edge_dropout: float = 0.0

    def __post_init__(self) -> None:
        _check_layers("social", self)
        if self.social_weight < 0:
            raise ParamsError("social.social_weight", "a number >= 0", self.social_weight)


MODEL_PARAMS: dict[str, type] = {
    "lightgcn": LightGCNParams,
    "mf": MFParams,
    "popularity": PopularityParams,
    "ngcf": NGCFParams,
    "gcn": GCNParams,
    "gat": GATParams,
    "graphsage": GraphSAGEParams,
    "pinsage": PinSageParams,
    "social": SocialParams,
}


# ------------------------------------------------------------------------------------ evaluate
@dataclass(frozen=True)
class EvaluateConfig:
    k: tuple[int, ...] = (10, 20)
    chunk_size: int = 1024

    def __post_init__(self) -> None:
        if not self.k or any(k < 1 for k in self.k):
            raise ParamsError("evaluate.k", "a non-empty list of integers >= 1", list(self.k))
        if len(set(self.k)) != len(self.k):
            raise ParamsError("evaluate.k", "distinct values", list(self.k))
        _check_positive("evaluate.chunk_size", self.chunk_size)


# -------------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class ReportConfig:
    example_users: int = 5
    top_n: int = 10

    def __post_init__(self) -> None:
        if self.example_users < 0:
            raise ParamsError("report.example_users", "an integer >= 0", self.example_users)
        _check_positive("report.top_n", self.top_n)


# -------------------------------------------------------------------------------------- params
@dataclass(frozen=True)
class Params:
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    models: tuple[str, ...] = ("lightgcn", "mf", "popularity")
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    model_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**63:  # torch and numpy seed from 64-bit integers
            raise ParamsError("seed", "an integer >= 0 and < 2**63", self.seed)
        if not self.models:
            raise ParamsError("models", f"a non-empty list of model names ({', '.join(MODEL_PARAMS)})", [])
        for name in self.models:
            if name not in MODEL_PARAMS:
                raise ParamsError("models", f"model names among {', '.join(MODEL_PARAMS)}", name)
        if len(set(self.models)) != len(self.models):
            raise ParamsError("models", "distinct model names", list(self.models))

    def model(self, name: str) -> Any:
        """The hyperparameters of model ``name`` (its section, or the defaults)."""
        if name not in MODEL_PARAMS:
            raise ParamsError("models", f"model names among {', '.join(MODEL_PARAMS)}", name)
        return self.model_params.get(name) or MODEL_PARAMS[name]()

    def train_for(self, name: str) -> TrainConfig:
        """The training settings of model ``name``: ``train`` with the model section's overrides."""
        section = self.model(name)
        overrides = {k: getattr(section, k) for k in _TRAIN_OVERRIDES
                     if getattr(section, k, None) is not None}
        return dataclasses.replace(self.train, **overrides)


# ------------------------------------------------------------------------------------- loading
_SECTIONS = {f.name for f in dataclasses.fields(Params)} - {"model_params"}


def params_from_dict(raw: Any) -> Params:
    """Build :class:`Params` from the parsed YAML mapping, validating every key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError("<top level>", "a mapping of sections", type(raw).__name__)
    known = {}
    model_params = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ParamsError(str(key), "string keys", key)
        if key in _SECTIONS:
            known[key] = value
        elif key in MODEL_PARAMS:
            model_params[key] = _build(MODEL_PARAMS[key], value if value is not None else {}, key)
        else:
            allowed = sorted(_SECTIONS | set(MODEL_PARAMS))
            raise ParamsError(key, f"a known section ({', '.join(allowed)})", "unknown key")
    params = _build(Params, known, "")
    return dataclasses.replace(params, model_params=model_params)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml`` (safe YAML loading). Errors name the file and the key."""
    import yaml  # here, not at module level: the library core (models, training) runs with torch only

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError("<file>", f"a params file at {path}", "no such file") from None
    except UnicodeDecodeError as exc:
        raise ParamsError("<file>", f"UTF-8 text in {path}", f"undecodable byte at offset {exc.start}") from None
    except OSError as exc:  # a folder, no permission
        raise ParamsError("<file>", f"a readable params file at {path}", exc.strerror or str(exc)) from None
    try:
        raw = yaml.load(text, Loader=_safe_unique_key_loader())  # safe loading; duplicate keys are errors
    except yaml.YAMLError as exc:
        raise ParamsError("<file>", f"valid YAML in {path}", str(exc).replace("\n", " ")) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor refused a value, e.g. 2020-02-30
        raise ParamsError("<file>", f"valid YAML values in {path}", str(exc)) from None
    except RecursionError:
        raise ParamsError("<file>", f"YAML nested at most a few hundred levels deep in {path}",
                          "deeper nesting") from None
    try:
        return params_from_dict(raw)
    except ParamsError as exc:
        exc.file = str(path)
        raise


@functools.lru_cache(maxsize=None)
def _safe_unique_key_loader() -> type:
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the last).
    Built on first use so that importing this module does not import yaml."""
    import yaml

    class _SafeUniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor" may be overridden by design
                    continue
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} appears twice (lines {seen[key]} and {line})",
                            key_node.start_mark)
                    seen[key] = line
                except TypeError:  # an unhashable key: SafeLoader's own error follows
                    break
            return super().construct_mapping(node, deep=deep)

    return _SafeUniqueKeyLoader


def params_to_dict(params: Params) -> dict[str, Any]:
    """Plain-dict view of the params (for reports and provenance)."""
    out = dataclasses.asdict(params)
    model_params = out.pop("model_params")
    for name, section in model_params.items():       # the model's own keys first, then its train overrides
        out[name] = {k: v for k, v in section.items() if k not in _TRAIN_OVERRIDES} | \
            {k: section[k] for k in _TRAIN_OVERRIDES if k in section}
    return _plain(out)


def parse_metric(spec: str, key: str = "metric") -> tuple[str, int]:
    """``"ndcg@20"`` → ``("ndcg", 20)``."""
    name, sep, k = str(spec).partition("@")
    if not sep or name not in METRIC_NAMES or not k.isdigit() or int(k) < 1:
        raise ParamsError(key, f"<metric>@<K> with metric in {', '.join(METRIC_NAMES)} (e.g. ndcg@20)", spec)
    return name, int(k)


# ------------------------------------------------------------------------------------ internals
def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _check_unit(key: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):
        raise ParamsError(key, "a number between 0 and 1", value)


def _check_positive(key: str, value: float) -> None:
    if not value > 0:
        raise ParamsError(key, "a number > 0", value)


def _check_common_train(obj: Any, section: str, optional: bool = False) -> None:
    for name in _TRAIN_OVERRIDES:
        value = getattr(obj, name)
        if value is None and optional:
            continue
        if name == "l2":
            if value < 0:
                raise ParamsError(f"{section}.l2", "a number >= 0", value)
        elif name == "patience":
            if value < 1:
                raise ParamsError(f"{section}.patience", "an integer >= 1", value)
        elif not value > 0:
            raise ParamsError(f"{section}.{name}", "a number > 0", value)


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ParamsError(prefix or "<top level>", "a mapping", _describe(raw))
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields or key == "model_params":
            allowed = ", ".join(n for n in sorted(fields, key=lambda n: n in _TRAIN_OVERRIDES)  # own keys first
                                if n != "model_params") or "none"
            raise ParamsError(dotted, f"a known key (allowed here: {allowed})", "unknown key")
        kwargs[key] = _coerce(hints[key], value, dotted)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(key, "a list", _describe(value))
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(key, "true or false", _describe(value))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(key, "an integer", _describe(value))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(key, "a number", _describe(value))
        if not math.isfinite(value):
            raise ParamsError(key, "a finite number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(key, "a string", _describe(value))
        return value
    if tp is Any or origin is dict:
        return value
    raise TypeError(f"unsupported params type {tp!r} for {key}")  # a bug in this module, not user input


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"

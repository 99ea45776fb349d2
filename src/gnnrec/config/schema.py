"""The params schema: one frozen pydantic model per ``params.yaml`` section (torch-free).

Every section forbids unknown keys, takes its choices as ``Literal`` types and its bounds as ``Field``
constraints, and is strict where a coercion would hide a mistake: ``"yes"`` is not a bool, ``"3"`` is
not an integer, ``1.5`` is not an integer and ``"0.1"`` is not a number. The defaults here are the
pipeline's defaults; ``params.yaml`` repeats them so that users see every knob.

A model's own section is declared by the model class (``Model.Params``, a :class:`ModelParams`): see
:mod:`gnnrec.models.registry`. Loading and the translation of validation errors into
:class:`gnnrec.errors.ParamsError` live in :mod:`gnnrec.config.loading`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from gnnrec.constants import (
    METRIC_NAMES,
    LayerCombination,
    LossName,
    NegativeStrategy,
    SageAggregator,
    SourceName,
    SplitMethod,
)
from gnnrec.errors import ParamsError

#: a strict finite number (an integer is accepted, a string, a bool, NaN or inf is not)
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Unit = Annotated[Number, Field(ge=0, le=1)]                 # a share: 0 ≤ x ≤ 1
OpenUnit = Annotated[Number, Field(ge=0, lt=1)]             # a dropout probability: 0 ≤ p < 1
PositiveInt = Annotated[StrictInt, Field(gt=0)]
PositiveNumber = Annotated[Number, Field(gt=0)]


def _check_positive_ints(value: tuple[int, ...]) -> tuple[int, ...]:
    if not value or any(f < 1 for f in value):
        raise ParamsError("", "a non-empty list of integers >= 1", list(value))
    return value


#: a non-empty list of integers >= 1 (checked as a whole, so the error names the list)
PositiveInts = Annotated[tuple[StrictInt, ...], AfterValidator(_check_positive_ints)]
#: sampled neighbours per hop, one entry per layer
Fanouts = PositiveInts



class Section(BaseModel):
    """Base of every section: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)


def parse_metric(spec: str, key: str = "metric") -> tuple[str, int]:
    """``"ndcg@20"`` → ``("ndcg", 20)``; anything else is a :class:`ParamsError` on ``key``."""
    name, sep, k = str(spec).partition("@")
    if not sep or name not in METRIC_NAMES or not k.isdigit() or int(k) < 1:
        raise ParamsError(key, f"<metric>@<K> with metric in {', '.join(METRIC_NAMES)} (e.g. ndcg@20)", spec)
    return name, int(k)


# ----------------------------------------------------------------------------------------- data
def _column_ref(value: Any) -> Union[str, int]:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ParamsError("", "a field position >= 1 (1 = the first field)", value)
        return value
    raise ParamsError("", "a column name, or a field position (1 = the first field)", repr(value))


#: a column of a table file: its header name (a string), or its position counted from 1 (an integer;
#: the only way to name a column of a file without a header, ``data.tabular.header: false``)
ColumnRef = Annotated[Union[str, int], PlainValidator(_column_ref)]


class InteractionColumns(Section):
    """Columns of the user's interactions file (generic ``csv`` / ``parquet`` sources): names or positions."""

    user: ColumnRef = "user_id"
    item: ColumnRef = "item_id"
    rating: Optional[ColumnRef] = None
    timestamp: Optional[ColumnRef] = None


class SocialColumns(Section):
    src: ColumnRef = "src"
    dst: ColumnRef = "dst"


class ItemColumns(Section):
    item: ColumnRef = "item_id"
    name: Optional[ColumnRef] = None


class TabularConfig(Section):
    """Files of the generic ``csv`` / ``parquet`` sources, relative to ``data.path`` (or absolute).

    ``users`` names an optional file of user side features; ``user_columns.user`` is its user id column
    and ``user_columns.features`` the columns to use as categorical features (``None``: every column but
    the user id column)."""

    class UserColumns(Section):
        """Columns of the user side-features file (``data.tabular.users``)."""

        user: ColumnRef = "user_id"
        #: source columns used as categorical features; None: every column but ``user``
        features: Optional[tuple[ColumnRef, ...]] = None

        @model_validator(mode="after")
        def _check_features(self) -> "TabularConfig.UserColumns":
            from gnnrec.constants import RESERVED_FEATURE_NAMES

            if self.features is None:
                return self
            seen: set[str] = set()
            for name in self.features:
                if name == self.user:
                    raise ParamsError("features", f"feature columns other than the user id column {self.user!r}",
                                      list(self.features))
                if name in seen:
                    raise ParamsError("features", f"distinct column names ({name!r} is listed twice)",
                                      list(self.features))
                if isinstance(name, int):
                    continue
                if name in RESERVED_FEATURE_NAMES or name.startswith("__") or not name.strip():
                    raise ParamsError("features", f"column names other than {', '.join(RESERVED_FEATURE_NAMES)}, "
                                      "empty names and names starting with '__' (reserved)", list(self.features))
                seen.add(name)
            return self

    interactions: StrictStr = "interactions.csv"
    social: Optional[StrictStr] = None
    items: Optional[StrictStr] = None
    users: Optional[StrictStr] = None
    sep: StrictStr = ","
    #: false: the delimited files have no header line; columns are then named by position (1 = first)
    header: StrictBool = True
    columns: InteractionColumns = InteractionColumns()
    social_columns: SocialColumns = SocialColumns()
    item_columns: ItemColumns = ItemColumns()
    user_columns: UserColumns = UserColumns()

    @model_validator(mode="after")
    def _check_sep(self) -> "TabularConfig":
        if len(self.sep) != 1 and self.sep not in ("\\t", "\t"):
            raise ParamsError("sep", "a single character (or '\\t')", self.sep)
        if self.sep in ("\n", "\r", '"'):  # line breaks and the quote character cannot separate fields
            raise ParamsError("sep", "a single character other than a line break or '\"'", repr(self.sep))
        if not self.header:
            groups = {"columns": True, "social_columns": self.social, "item_columns": self.items,
                      "user_columns": self.users}          # the column maps of the files in use
            named = [(f"{group}.{key}", value) for group, used in groups.items() if used
                     for key, value in getattr(self, group).model_dump().items()
                     if key != "features" and isinstance(value, str)]
            if self.users:
                named += [("user_columns.features", v) for v in self.user_columns.features or ()
                          if isinstance(v, str)]
            if named:
                key, value = named[0]
                raise ParamsError(key, "a field position (1 = the first field): data.tabular.header is false, "
                                  "so the files' columns have no names", value)
        return self


class SyntheticConfig(Section):
    """Shape of the embedded synthetic social-recommendation dataset (generated from ``seed``)."""

    n_users: Annotated[StrictInt, Field(ge=2)] = 5500
    n_items: Annotated[StrictInt, Field(ge=2)] = 3000
    n_interactions: Annotated[StrictInt, Field(ge=2)] = 100_000
    n_communities: Annotated[StrictInt, Field(ge=2)] = 10
    n_social: Annotated[StrictInt, Field(ge=0)] = 27_500
    #: share of the social ties that are uniformly random pairs (``kind`` random, ``noise`` 1)
    noise_share: Unit = 0.3
    #: share of the social ties that are hard fakes: users of different communities who share popular
    #: items (``kind`` hard, ``noise`` 1)
    hard_fake_share: Unit = 0.1
    popularity_exponent: Annotated[Number, Field(ge=0)] = 0.9
    community_affinity: Unit = 0.75

    @model_validator(mode="after")
    def _check_density(self) -> "SyntheticConfig":
        if self.n_interactions > self.n_users * self.n_items // 2:
            raise ParamsError("n_interactions", "at most half of n_users * n_items", self.n_interactions)
        if self.noise_share + self.hard_fake_share > 1:
            raise ParamsError("hard_fake_share", f"at most 1 - noise_share = {1 - self.noise_share:g} (both are "
                              "shares of n_social)", self.hard_fake_share)
        return self


class DataConfig(Section):
    source: SourceName = "synthetic"
    path: Annotated[StrictStr, Field(min_length=1)] = "data/synthetic"
    min_rating: Optional[Number] = None
    k_core: Optional[PositiveInt] = None
    synthetic: SyntheticConfig = SyntheticConfig()
    tabular: TabularConfig = TabularConfig()


class ValidateConfig(Section):
    strict: StrictBool = False
    max_examples: PositiveInt = 5


class ColdStartSplit(Section):
    """Users and items held out of training, validation and the graph, to measure new users and items
    (:mod:`gnnrec.split`, ``docs/protocol.md``). Shares are of the *eligible* users (items): those with more
    than ``max(k) + 1`` interactions; 0 turns a holdout off."""

    user_share: Unit = 0.1          # held-out test users: the cold-start table's figures
    val_share: Unit = 0.05          # held-out validation users: the only data that picks cold-start settings
    item_share: Unit = 0.02         # held-out items, revealed by k of the users who touched them
    k: Annotated[tuple[Annotated[StrictInt, Field(ge=0)], ...], Field(min_length=1)] = (0, 1, 3, 5)

    @model_validator(mode="after")
    def _check(self) -> "ColdStartSplit":
        if len(set(self.k)) != len(self.k):
            raise ParamsError("k", "distinct integers >= 0", list(self.k))
        if self.user_share + self.val_share >= 1:
            raise ParamsError("val_share", f"user_share + val_share < 1 (user_share = {self.user_share})",
                              self.val_share)
        return self


class SplitConfig(Section):
    method: SplitMethod = "random"
    ratios: tuple[Number, ...] = (0.8, 0.1, 0.1)
    min_user_interactions: PositiveInt = 3
    #: seeds the split alone; null: the top-level ``seed`` (so several training seeds can share a split)
    seed: Optional[Annotated[StrictInt, Field(ge=0, lt=2**63)]] = None
    cold_start: ColdStartSplit = ColdStartSplit()

    @model_validator(mode="after")
    def _check_ratios(self) -> "SplitConfig":
        r = self.ratios
        if len(r) != 3 or any(x < 0 for x in r) or abs(sum(r) - 1) > 1e-6:
            raise ParamsError("ratios", "three non-negative numbers (train, val, test) summing to 1", list(r))
        if r[0] <= 0:
            raise ParamsError("ratios", "a train share > 0", list(r))
        return self


class PlantedNoiseConfig(Section):
    """Fake ties planted into the training social graph before the filter (:mod:`gnnrec.social_noise`)."""

    #: fakes per existing tie (``share · |ties|`` are added; 0: none)
    share: Annotated[Number, Field(ge=0, le=100)] = 0.0
    kind: Literal["random", "hard"] = "random"
    #: seeds the fakes; None: the run's ``seed``
    seed: Optional[StrictInt] = None


class SocialGraphConfig(Section):
    min_common_items: Annotated[StrictInt, Field(ge=0)] = 2
    min_jaccard: Unit = 0.04
    #: build_graph warns (and the report says so) when the filter drops more than this share of the ties
    warn_drop_share: Unit = 0.9
    noise: PlantedNoiseConfig = PlantedNoiseConfig()


class GraphConfig(Section):
    social: SocialGraphConfig = SocialGraphConfig()


# --------------------------------------------------------------------------------------- train
class TrainConfig(Section):
    """The shared training loop. Any of ``epochs``, ``batch_size``, ``lr``, ``l2`` and ``patience`` can
    be overridden per model in that model's section (:class:`ModelParams`)."""

    epochs: PositiveInt = 300
    batch_size: PositiveInt = 2048
    lr: PositiveNumber = 0.005
    l2: Annotated[Number, Field(ge=0)] = 1e-4
    loss: LossName = "bpr"             # bpr (sampled negatives) | softmax (in-batch, L2-normalised embeddings)
    temperature: PositiveNumber = 0.12  # softmax only
    negatives: NegativeStrategy = "uniform"
    negative_alpha: Annotated[Number, Field(ge=0)] = 0.75
    negative_pool: PositiveInt = 16
    early_stop: StrictStr = "ndcg@20"
    patience: PositiveInt = 10
    eval_every: PositiveInt = 1
    device: Annotated[StrictStr, Field(pattern=r"^(cpu|cuda|cuda:\d+)$")] = "cpu"
    num_threads: Optional[PositiveInt] = None
    max_seconds: Optional[PositiveNumber] = None
    checkpoint_every: Annotated[StrictInt, Field(ge=0)] = 1   # 0: no resumable checkpoints

    @model_validator(mode="after")
    def _check_metric(self) -> "TrainConfig":
        parse_metric(self.early_stop, "early_stop")
        return self


TRAIN_OVERRIDES = ("epochs", "batch_size", "lr", "l2", "patience")


class ModelParams(Section):
    """Base of a model's section: its architecture keys (declared by the subclass) plus the training
    settings it may override for itself (null: the ``train`` section's value)."""

    epochs: Optional[PositiveInt] = None
    batch_size: Optional[PositiveInt] = None
    lr: Optional[PositiveNumber] = None
    l2: Optional[Annotated[Number, Field(ge=0)]] = None
    patience: Optional[PositiveInt] = None

    def architecture(self) -> dict[str, Any]:
        """The constructor keywords of the model: every key but the training overrides, in declared order."""
        return {k: getattr(self, k) for k in type(self).model_fields if k not in TRAIN_OVERRIDES}

    def as_dict(self) -> dict[str, Any]:
        """The model's own keys first, then its training overrides (how ``params.yaml`` lists them)."""
        own = self.architecture()
        return _plain({**own, **{k: getattr(self, k) for k in TRAIN_OVERRIDES}})


class NoParams(ModelParams):
    """A model with no settings and no training (its section may only be empty)."""

    epochs: None = None
    batch_size: None = None
    lr: None = None
    l2: None = None
    patience: None = None

    def as_dict(self) -> dict[str, Any]:
        return {}


# --------------------------------------------------------------------------------- evaluate, report
class ColdStartEvaluate(Section):
    """How the evaluate stage scores the held-out users and items (``split.cold_start``)."""

    exact: StrictBool = True          # also the exact path (whole-graph models): the gap to the served path
    oracle: StrictBool = False        # LightGCN retrained with the revealed items (its own stage, slow)
    latency_users: Annotated[StrictInt, Field(ge=0)] = 100   # new users answered one at a time, for the latency
    meta: StrictBool = False          # also a meta-learned adaptation (MAML-style, gnnrec.meta) per model
    meta_steps: Annotated[StrictInt, Field(ge=0)] = 3
    meta_iterations: PositiveInt = 200


class EvaluateConfig(Section):
    k: PositiveInts = (10, 20)
    chunk_size: PositiveInt = 1024
    cold_start: ColdStartEvaluate = ColdStartEvaluate()

    @model_validator(mode="after")
    def _check_distinct(self) -> "EvaluateConfig":
        if len(set(self.k)) != len(self.k):
            raise ParamsError("k", "distinct values", list(self.k))
        return self


class ReportConfig(Section):
    example_users: Annotated[StrictInt, Field(ge=0)] = 5
    top_n: PositiveInt = 10


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = ["ColdStartEvaluate", "ColdStartSplit", "DataConfig", "EvaluateConfig",
            "Fanouts", "GraphConfig", "InteractionColumns", "ItemColumns",
           "LayerCombination", "ModelParams", "NoParams", "Number", "OpenUnit", "PositiveInt", "PositiveNumber",
           "PlantedNoiseConfig", "ReportConfig", "SageAggregator", "Section", "SocialColumns", "SocialGraphConfig",
           "SplitConfig", "SyntheticConfig",
           "TRAIN_OVERRIDES", "TabularConfig", "TrainConfig", "Unit", "ValidateConfig", "parse_metric"]

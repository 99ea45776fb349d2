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

from typing import Annotated, Any, Literal, Optional

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from gnnrec.config.base import (  # noqa: F401  (re-exported: the schema's building blocks)
    Fanouts,
    Number,
    OpenUnit,
    PositiveInt,
    PositiveInts,
    PositiveNumber,
    Section,
    Unit,
)
from gnnrec.config.data_schema import (  # noqa: F401  (re-exported: the data section)
    ColumnRef,
    DataConfig,
    InteractionColumns,
    ItemColumns,
    SocialColumns,
    SyntheticConfig,
    TabularConfig,
)
from gnnrec.constants import (
    METRIC_NAMES,
    LayerCombination,
    LossName,
    NegativeStrategy,
    SageAggregator,
    SplitMethod,
    SubgraphMethod,
)
from gnnrec.errors import ParamsError


def parse_metric(spec: str, key: str = "metric") -> tuple[str, int]:
    """``"ndcg@20"`` → ``("ndcg", 20)``; anything else is a :class:`ParamsError` on ``key``."""
    name, sep, k = str(spec).partition("@")
    if not sep or name not in METRIC_NAMES or not k.isdigit() or int(k) < 1:
        raise ParamsError(key, f"<metric>@<K> with metric in {', '.join(METRIC_NAMES)} (e.g. ndcg@20)", spec)
    return name, int(k)


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


class TasteFilterConfig(Section):
    """The ``taste`` social filter (:mod:`gnnrec.social_filter`)."""

    #: SVD ranks tried for the taste vectors; the one under which the ties look least random is used
    ranks: PositiveInts = (4, 6, 8, 10, 12, 16, 24, 32, 48, 64)
    #: users of about the tie's degree drawn per tie for its p-value
    null_draws: Annotated[StrictInt, Field(ge=10)] = 100
    #: keep a tie when its estimated probability of being noise is below this
    max_lfdr: Annotated[Number, Field(gt=0, le=1)] = 0.5
    #: add the users' side features (where the data has them) to the taste vectors
    use_features: StrictBool = True


class SocialGraphConfig(Section):
    #: taste (significance of taste similarity against a degree-matched null), overlap (fixed thresholds), none
    method: Literal["taste", "overlap", "none"] = "taste"
    taste: TasteFilterConfig = TasteFilterConfig()
    min_common_items: Annotated[StrictInt, Field(ge=0)] = 2          # overlap: this many common training items
    min_jaccard: Unit = 0.04                                         # ... and this Jaccard similarity
    #: build_graph warns (and the report says so) when the filter drops more than this share of the ties
    warn_drop_share: Unit = 0.9
    noise: PlantedNoiseConfig = PlantedNoiseConfig()


class TimeDecayConfig(Section):
    """Recent interactions count more: a training edge's weight is ``0.5 ** (age / half_life_days)``, its age
    counted back from the latest training timestamp, in the normalised adjacency every whole-graph model (and
    sub-graph sampler) propagates over. ``null``: every edge weighs 1."""

    half_life_days: Optional[PositiveNumber] = None


class GraphConfig(Section):
    social: SocialGraphConfig = SocialGraphConfig()
    time_decay: TimeDecayConfig = TimeDecayConfig()


# --------------------------------------------------------------------------------------- train
class SubgraphConfig(Section):
    """How the whole-graph models (LightGCN, NGCF, GCN, social) train: on the whole graph every step
    (``full``) or on a batch sub-graph (:mod:`gnnrec.sampling.subgraph`). Models that train on their own
    sampled blocks (GraphSAGE, GAT, PinSage), MF and SocialLGN ignore it (a log line says so)."""

    method: SubgraphMethod = "full"
    #: BPR negatives: from ``all`` items (as in full training) or only the batch sub-graph's items
    negatives: Literal["all", "subgraph"] = "all"
    #: cluster: METIS parts of the user–item graph; null: sized by the graph, ceil(training edges ·
    #: clusters_per_batch / (4 · batch_size)): a batch's parts hold about 4 · batch_size edges at any size, of
    #: which about batch_size are within them (positives), so a step's memory does not grow with the graph
    num_parts: Optional[PositiveInt] = None
    clusters_per_batch: PositiveInt = 4       # cluster: parts merged per batch (edges between them kept)
    walk_length: PositiveInt = 2              # saint: random-walk length from each root
    #: saint: walk roots (users) per sub-graph; null: batch_size / walk_length
    roots: Optional[PositiveInt] = None
    #: saint: sub-graphs per epoch; null: training edges / the mean positives of a sub-graph
    num_steps: Optional[PositiveInt] = None
    sample_coverage: PositiveInt = 20         # saint: pre-sampled sub-graphs hold about this many copies of each node
    #: saint: at most this many pre-sampled sub-graphs (a warning below a quarter of sample_coverage); null: no cap
    max_presample: Optional[PositiveInt] = None
    #: layerwise: nodes sampled per layer, from the output layer down (the last entry repeats for deeper models)
    layer_sizes: PositiveInts = (1024,)
    importance: Literal["ladies", "fastgcn"] = "ladies"     # layerwise: the importance distribution
    #: sparse gradient for the embedding table and lazy Adam (gnnrec.optim.LazyAdam: only the batch's rows are
    #: updated) instead of a dense [N, d] gradient and Adam over every row; false: dense, as full training
    sparse_grads: StrictBool = True

    @model_validator(mode="after")
    def _check_parts(self) -> "SubgraphConfig":
        if self.num_parts is not None and self.clusters_per_batch > self.num_parts:
            raise ParamsError("clusters_per_batch", f"at most num_parts ({self.num_parts})", self.clusters_per_batch)
        return self


class DistributedConfig(Section):
    """Data-parallel training on ``torch.distributed`` (:mod:`gnnrec.distributed`): with ``nproc_per_node`` > 1
    the train stage launches itself on that many local processes through ``torchrun`` (gloo on CPU, NCCL on
    CUDA: one GPU per process); 1 trains in the stage's own process. Several machines: ``torchrun --nnodes``
    by hand (README)."""

    nproc_per_node: PositiveInt = 1


class TrainConfig(Section):
    """The shared training loop. Any of ``epochs``, ``batch_size``, ``lr``, ``l2`` and ``patience`` can
    be overridden per model in that model's section (:class:`ModelParams`)."""

    epochs: PositiveInt = 300
    batch_size: PositiveInt = 2048
    lr: PositiveNumber = 0.005
    l2: Annotated[Number, Field(ge=0)] = 1e-4
    loss: LossName = "bpr"             # bpr (sampled negatives) | softmax (in-batch, L2-normalised embeddings)
    temperature: PositiveNumber = 0.12  # softmax only
    #: softmax only: subtract log(item training frequency) from each logit (the sampled-softmax correction for
    #: in-batch negatives, which are drawn in proportion to popularity; Yi et al., RecSys 2019)
    logq: StrictBool = False
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
    subgraph: SubgraphConfig = SubgraphConfig()
    distributed: DistributedConfig = DistributedConfig()
    warm_start: Optional[StrictStr] = None       # a snapshot folder under snapshots/ (gnnrec snapshot); null: off
    warm_start_epochs: PositiveInt = 30          # the epoch cap of a warm-started run (early stopping as usual)
    warm_start_patience: Optional[PositiveInt] = None   # its early-stopping patience; null: patience

    @model_validator(mode="after")
    def _check_metric(self) -> "TrainConfig":
        parse_metric(self.early_stop, "early_stop")
        if self.subgraph.method != "full" and self.loss != "bpr":
            raise ParamsError("subgraph.method", "full with train.loss softmax (the sub-graph methods train BPR)",
                              self.subgraph.method)
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
    #: also each personalised model's own inference without the similar-users / feature blend, reported as
    #: ``<model>:fold-in`` (for MF the usual fold-in baseline: a ridge solve against the revealed items)
    fold_in_only: StrictBool = False


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
           "SplitConfig", "SubgraphConfig", "SyntheticConfig", "TasteFilterConfig",
           "TRAIN_OVERRIDES", "TabularConfig", "TrainConfig", "Unit", "ValidateConfig", "parse_metric"]

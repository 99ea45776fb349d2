"""Choice constants, defined once (torch-free: the params schema and every stage import them).

Each choice is a ``Literal`` type (what the params schema validates against) and the tuple of its values
(what code and messages list), derived from it."""

from __future__ import annotations

from typing import Literal, get_args

#: data sources of ``data.source``
SourceName = Literal["synthetic", "movielens-100k", "lastfm-hetrec", "csv", "parquet", "lightgcn-format"]
SplitMethod = Literal["random", "temporal"]
NegativeStrategy = Literal["uniform", "popularity", "hard"]
LossName = Literal["bpr", "softmax"]
#: how a model combines its layer outputs (against over-smoothing)
LayerCombination = Literal["mean", "concat", "last"]
SageAggregator = Literal["mean", "pool", "lstm"]
#: how the whole-graph models train (``train.subgraph.method``): the whole graph per step, or a batch sub-graph
SubgraphMethod = Literal["full", "cluster", "saint", "layerwise"]

SOURCES: tuple[str, ...] = get_args(SourceName)
SPLIT_METHODS: tuple[str, ...] = get_args(SplitMethod)
NEGATIVE_STRATEGIES: tuple[str, ...] = get_args(NegativeStrategy)
LOSSES: tuple[str, ...] = get_args(LossName)
LAYER_COMBINATIONS: tuple[str, ...] = get_args(LayerCombination)
SAGE_AGGREGATORS: tuple[str, ...] = get_args(SageAggregator)
SUBGRAPH_METHODS: tuple[str, ...] = get_args(SubgraphMethod)

#: the canonical tables of ingest and validate (``users``: the side features of users, 0 rows without a file)
TABLES = ("interactions", "social", "items", "users")
#: the value a missing user side feature gets (an empty cell, or a user without a row in the features file)
UNKNOWN_FEATURE = "unknown"
#: column names a user side feature cannot have (the users tables' own columns, at ingest and in the dataset)
RESERVED_FEATURE_NAMES = ("user", "row", "user_id", "raw_id")
#: the values of the synthetic social table's optional ``kind`` column (ground truth of each tie)
SOCIAL_KINDS = ("genuine", "random", "hard")
#: ranking metrics ``<name>@K`` of :mod:`gnnrec.evaluation`, in the report's column order
METRIC_NAMES = ("recall", "ndcg", "precision", "hitrate", "mrr", "map")

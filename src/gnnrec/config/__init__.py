"""Typed params (pydantic v2, torch-free): the schema of every ``params.yaml`` section
(:mod:`gnnrec.config.schema`), the whole file with the models' own sections (:mod:`gnnrec.config.params`)
and loading with errors that name the key (:mod:`gnnrec.config.loading`)."""

from gnnrec.config.loading import load_params, params_from_dict
from gnnrec.config.params import Params, params_to_dict
from gnnrec.config.schema import (
                                  TRAIN_OVERRIDES,
                                  DataConfig,
                                  EvaluateConfig,
                                  GraphConfig,
                                  ModelParams,
                                  NoParams,
                                  ReportConfig,
                                  SplitConfig,
                                  SyntheticConfig,
                                  TabularConfig,
                                  TrainConfig,
                                  ValidateConfig,
                                  parse_metric,
)
from gnnrec.constants import METRIC_NAMES

__all__ = ["DataConfig", "EvaluateConfig", "GraphConfig", "METRIC_NAMES", "ModelParams", "NoParams", "Params",
           "ReportConfig", "SplitConfig", "SyntheticConfig", "TRAIN_OVERRIDES", "TabularConfig", "TrainConfig",
           "ValidateConfig", "load_params", "params_from_dict", "params_to_dict", "parse_metric"]

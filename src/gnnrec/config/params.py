"""The whole params file: the shared sections, the model list, and the models' own sections.

A model's section is validated by that model's schema (``Model.Params``, declared in the model's file),
which means importing the model, and so torch. :class:`Params` therefore keeps the sections as given and
validates one on first use (:meth:`Params.model`) or all at once (:meth:`Params.check_models`): the
first stage (``ingest``) and the stages that build models check them; ``validate``, ``split``,
``build_graph`` and ``report`` load params without importing torch.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field, PrivateAttr, StrictInt, field_validator

from gnnrec.config.schema import (
    TRAIN_OVERRIDES,
    DataConfig,
    EvaluateConfig,
    GraphConfig,
    ModelParams,
    ReportConfig,
    Section,
    SplitConfig,
    TrainConfig,
    ValidateConfig,
    _plain,
)
from gnnrec.errors import ParamsError
from gnnrec.models.registry import BUILTIN, expected_names, is_import_path, is_model_name, model_class

SECTIONS = ("seed", "data", "validate", "split", "graph", "models", "train", "evaluate", "report")


class Params(Section):
    """Every knob of the pipeline (``params.yaml``)."""

    #: seeds data generation, the split (unless ``split.seed`` is set) and training
    seed: Annotated[StrictInt, Field(ge=0, lt=2**63)] = 42
    data: DataConfig = DataConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    split: SplitConfig = SplitConfig()
    graph: GraphConfig = GraphConfig()
    models: Annotated[tuple[str, ...], Field(min_length=1)] = ("lightgcn", "social", "mf", "popularity")
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    report: ReportConfig = ReportConfig()
    #: the models' own sections as given (validated by each model's schema on first use)
    model_sections: dict[str, Any] = {}
    _checked: dict[str, ModelParams] = PrivateAttr(default_factory=dict)

    model_config = Section.model_config | {"populate_by_name": True}

    @field_validator("models", mode="before")
    @classmethod
    def _check_models(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            for name in value:
                if not is_model_name(name):
                    raise ParamsError("", expected_names(), name)
            if len(set(value)) != len(value):
                raise ParamsError("", "distinct model names", list(value))
        return value

    @property
    def validate(self) -> ValidateConfig:  # type: ignore[override]  # the section, not BaseModel.validate
        return self.validate_

    @property
    def split_seed(self) -> int:
        """The seed of the split: ``split.seed``, or ``seed`` when that is null."""
        return self.seed if self.split.seed is None else self.split.seed

    def model_target(self, name: str) -> Optional[str]:
        """The import path of a user's model (its section's ``model`` key); None for a built-in model."""
        return (self.model_sections.get(name) or {}).get("model")

    def model(self, name: str) -> ModelParams:
        """The validated section of model ``name`` (its defaults when the file has none)."""
        from gnnrec.config.loading import validate_section

        if name not in self._checked:
            cls = model_class(name, self.model_target(name))
            raw = {k: v for k, v in (self.model_sections.get(name) or {}).items() if k != "model"}
            self._checked[name] = validate_section(cls.Params, raw, name)
        return self._checked[name]

    def check_models(self, names: Optional[list[str]] = None) -> "Params":
        """Validate the sections of ``names`` (default: every listed model and every section present)."""
        for name in names if names is not None else dict.fromkeys([*self.models, *self.model_sections]):
            self.model(name)
        return self

    def train_for(self, name: str) -> TrainConfig:
        """The training settings of model ``name``: ``train`` with the model section's overrides."""
        section = self.model(name)
        overrides = {k: getattr(section, k) for k in TRAIN_OVERRIDES if getattr(section, k) is not None}
        return self.train.model_copy(update=overrides)


def split_sections(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(shared sections, model sections)`` of a params mapping; an unknown key is a :class:`ParamsError`."""
    shared, models = {}, {}
    listed = raw.get("models") if isinstance(raw.get("models"), (list, tuple)) else ()
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ParamsError(str(key), "string keys", key)
        if key in SECTIONS:
            shared[key] = value
        elif key in BUILTIN or key in listed:
            if value is not None and not isinstance(value, dict):
                raise ParamsError(key, "a mapping", f"{value!r} ({type(value).__name__})")
            target = (value or {}).get("model")
            if key in BUILTIN and target is not None:
                raise ParamsError(f"{key}.model", f"no 'model' key: {key!r} is a built-in model", target)
            if key not in BUILTIN and not is_import_path(target):
                raise ParamsError(f"{key}.model", "the import path package.module:ClassName of the model", target)
            models[key] = value
        else:
            allowed = sorted(set(SECTIONS) | set(BUILTIN))
            raise ParamsError(key, f"a known section ({', '.join(allowed)})", "unknown key")
    for name in listed:
        if isinstance(name, str) and is_model_name(name) and name not in BUILTIN and name not in models:
            raise ParamsError("models", expected_names(), name)
    return shared, models


def params_to_dict(params: Params) -> dict[str, Any]:
    """Plain-dict view of the params (for reports and provenance): the model sections that have been
    validated with their defaults filled in, the others as given."""
    out = params.model_dump(by_alias=True, exclude={"model_sections"})
    for name, raw in params.model_sections.items():
        checked = params._checked.get(name)
        target = {"model": params.model_target(name)} if params.model_target(name) else {}
        out[name] = {**target, **checked.as_dict()} if checked is not None else (raw or {})
    for name in params.models:
        if name not in out and name in params._checked:
            out[name] = params._checked[name].as_dict()
    return _plain(out)

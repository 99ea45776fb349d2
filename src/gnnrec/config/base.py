"""Building blocks of the params schema: strict number and share types, and :class:`Section`, the base of
every section (re-exported by :mod:`gnnrec.config.schema`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictInt

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

"""The ``data`` section of the params schema: the sources, the generic tables' files and columns, and the
synthetic default's shape (re-exported by :mod:`gnnrec.config.schema`)."""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import Field, PlainValidator, StrictBool, StrictInt, StrictStr, model_validator

from gnnrec.config.base import Number, PositiveInt, Section, Unit
from gnnrec.constants import SourceName
from gnnrec.errors import ParamsError


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

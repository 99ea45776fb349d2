"""MovieLens 100K (GroupLens): ``u.data`` ratings, ``u.item`` titles, optional ``u.user`` demographics; no social ties.

- ``u.data``: tab-separated, no header: user id, item id, rating (1–5), unix timestamp.
- ``u.item``: ``|``-separated, no header, latin-1: movie id, title, release date, video release date,
  IMDb URL, then 19 genre flags (24 fields in all).
- ``u.user`` (optional: without it users have no side features): ``|``-separated, no header: user id,
  age, gender, occupation, zip code. The user features are ``age_band`` (the age binned into
  MovieLens-1M's bands, :data:`AGE_BANDS`), ``gender`` and ``occupation``; the zip code is not used.
  An age that is not a whole number of years gets no band (an empty value: validation fills it with
  ``"unknown"`` and counts it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gnnrec.datasets import RawTables, empty_social, empty_users, path_kind, require_data_dir
from gnnrec.datasets.tabular import read_delimited, require_file

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params

RATINGS_FILE = "u.data"
ITEMS_FILE = "u.item"
USERS_FILE = "u.user"
FILES = (RATINGS_FILE, ITEMS_FILE)

RATING_FIELDS = ("user_id", "item_id", "rating", "timestamp")
ITEM_FIELDS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url",
               *(f"genre_{i}" for i in range(19)))
USER_FIELDS = ("user_id", "age", "gender", "occupation", "zip_code")
#: per table, internal column name -> the field of the header-less file (named as in the GroupLens README)
COLUMNS = {
    "interactions": {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"},
    "items": {"item": "movie_id", "name": "title"},
    "users": {"user": "user_id", "age_band": "age", "gender": "gender", "occupation": "occupation"},
}
#: MovieLens-1M's age bands: (lowest age, label), ascending; an age belongs to the last band it reaches
AGE_BANDS = ((0, "under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-49"), (50, "50-55"),
             (56, "56+"))


def age_band(ages: pd.Series) -> pd.Series:
    """Ages (text) → their band label of :data:`AGE_BANDS`; missing where an age is not a whole number >= 0."""
    text = ages.astype("str").str.strip()
    valid = text.str.fullmatch(r"[0-9]{1,3}").fillna(False).astype(bool).to_numpy()
    years = np.where(valid, pd.to_numeric(text.where(valid), errors="coerce").fillna(-1).to_numpy(), -1)
    lows = np.array([low for low, _ in AGE_BANDS])
    labels = np.array([label for _, label in AGE_BANDS], dtype=object)
    band = labels[np.clip(np.searchsorted(lows, years, side="right") - 1, 0, None)]
    return pd.Series(np.where(valid, band, None), index=ages.index, dtype="str")


def read_users(path) -> pd.DataFrame:
    """``u.user`` → the users table: ``user``, ``age_band``, ``gender``, ``occupation`` (text) and ``row``."""
    fields = {"user": "user_id", "age": "age", "gender": "gender", "occupation": "occupation"}
    raw = read_delimited(path, fields, sep="|", header=False, field_names=USER_FIELDS, encoding="latin-1",
                         quoting=False)
    return pd.DataFrame({"user": raw["user"], "age_band": age_band(raw["age"]), "gender": raw["gender"],
                         "occupation": raw["occupation"], "row": raw["row"]})


def load(params: "Params") -> RawTables:
    """Read ``u.data`` (interactions with ratings and timestamps), ``u.item`` (titles) and, if present,
    ``u.user`` (user features)."""
    folder = require_data_dir(params, FILES)
    ratings = require_file(folder / RATINGS_FILE, "MovieLens ratings")
    titles = require_file(folder / ITEMS_FILE, "MovieLens items")
    interactions = read_delimited(ratings, COLUMNS["interactions"], sep="\t", header=False, field_names=RATING_FIELDS)
    items = read_delimited(titles, COLUMNS["items"], sep="|", header=False, field_names=ITEM_FIELDS,
                           encoding="latin-1", quoting=False)
    demographics = folder / USERS_FILE
    has_users = path_kind(demographics) != "missing"  # optional; a folder of that name is still an error
    users = read_users(require_file(demographics, "MovieLens users")) if has_users else empty_users()
    columns = {name: dict(cols) for name, cols in COLUMNS.items() if has_users or name != "users"}
    return RawTables(source=params.data.source, path=folder, interactions=interactions, social=empty_social(),
                     items=items, users=users,
                     files={"interactions": ratings, "social": None, "items": titles,
                            "users": demographics if has_users else None},
                     columns=columns)

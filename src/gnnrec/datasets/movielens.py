"""MovieLens 100K (GroupLens): ``u.data`` ratings and ``u.item`` titles; no social ties.

- ``u.data``: tab-separated, no header: user id, item id, rating (1–5), unix timestamp.
- ``u.item``: ``|``-separated, no header, latin-1: movie id, title, release date, video release date,
  IMDb URL, then 19 genre flags (24 fields in all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnnrec.datasets import RawTables, empty_social, require_data_dir
from gnnrec.datasets.tabular import read_delimited, require_file

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params

RATINGS_FILE = "u.data"
ITEMS_FILE = "u.item"
FILES = (RATINGS_FILE, ITEMS_FILE)

RATING_FIELDS = ("user_id", "item_id", "rating", "timestamp")
ITEM_FIELDS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url",
               *(f"genre_{i}" for i in range(19)))
#: per table, internal column name -> the field of the header-less file (named as in the GroupLens README)
COLUMNS = {
    "interactions": {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"},
    "items": {"item": "movie_id", "name": "title"},
}


def load(params: "Params") -> RawTables:
    """Read ``u.data`` (interactions with ratings and timestamps) and ``u.item`` (titles)."""
    folder = require_data_dir(params, FILES)
    ratings = require_file(folder / RATINGS_FILE, "MovieLens ratings")
    titles = require_file(folder / ITEMS_FILE, "MovieLens items")
    interactions = read_delimited(ratings, COLUMNS["interactions"], sep="\t", header=False, field_names=RATING_FIELDS)
    items = read_delimited(titles, COLUMNS["items"], sep="|", header=False, field_names=ITEM_FIELDS,
                           encoding="latin-1", quoting=False)
    return RawTables(source=params.data.source, path=folder, interactions=interactions, social=empty_social(),
                     items=items, files={"interactions": ratings, "social": None, "items": titles},
                     columns={name: dict(cols) for name, cols in COLUMNS.items()})

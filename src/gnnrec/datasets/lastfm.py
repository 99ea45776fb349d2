"""HetRec 2011 LastFM (2K users): listening counts, friendships and artist names; no timestamps.

All files are tab-separated with a header line:

- ``user_artists.dat``: ``userID artistID weight`` (weight = listening count → ``rating``),
- ``user_friends.dat``: ``userID friendID`` (each friendship listed in both directions),
- ``artists.dat``: ``id name url pictureURL``; names contain stray ``"`` characters, so quoting is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gnnrec.datasets import RawTables, require_data_dir
from gnnrec.datasets.tabular import read_delimited, require_file

if TYPE_CHECKING:  # pragma: no cover
    from gnnrec.config import Params

INTERACTIONS_FILE = "user_artists.dat"
SOCIAL_FILE = "user_friends.dat"
ITEMS_FILE = "artists.dat"
FILES = (INTERACTIONS_FILE, SOCIAL_FILE, ITEMS_FILE)
#: per table, internal column name -> the column of the file's header
COLUMNS = {
    "interactions": {"user": "userID", "item": "artistID", "rating": "weight"},
    "social": {"src": "userID", "dst": "friendID"},
    "items": {"item": "id", "name": "name"},
}


def load(params: "Params") -> RawTables:
    """Read the user–artist counts, the friendships and the artist names."""
    folder = require_data_dir(params, FILES)
    paths = {
        "interactions": require_file(folder / INTERACTIONS_FILE, "LastFM user-artist"),
        "social": require_file(folder / SOCIAL_FILE, "LastFM friendship"),
        "items": require_file(folder / ITEMS_FILE, "LastFM artist"),
    }
    tables = {name: read_delimited(paths[name], COLUMNS[name], sep="\t", quoting=False) for name in COLUMNS}
    return RawTables(source=params.data.source, path=folder, interactions=tables["interactions"],
                     social=tables["social"], items=tables["items"], files={**paths, "users": None},
                     columns={name: dict(cols) for name, cols in COLUMNS.items()})

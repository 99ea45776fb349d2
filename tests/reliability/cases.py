"""The bad-input matrix: one :class:`Case` per input a user might point gnnrec at.

Every case is a folder of raw files plus params overrides, run through the real CLI (``gnnrec stage ingest``
then ``gnnrec stage validate``) in a project whose last good outputs are already in place. ``expect`` says
what must happen:

- ``reject``: exit status 2 at ``stage`` (``ingest`` covers a params error, found when the first stage
  loads the params), a message holding every string of ``needles`` (the file, row, column or key, and
  what was expected), no traceback, the failing stage's earlier outputs untouched, no temporary file left;
- ``accept``: both stages succeed; ``check(root)`` looks at the outputs (repairs counted, ids mapped ...).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pandas as pd

Content = Union[str, bytes, Callable[[Path], None]]

# ------------------------------------------------------------------------------------------ data
# 6 users x 5 items, a few missing pairs: every user and item keeps several interactions
PAIRS = [(u, i) for u in range(1, 7) for i in range(1, 6) if (u + i) % 4]
CSV = "user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i in PAIRS)
CSV_RT = "user_id,item_id,rating,timestamp\n" + "".join(
    f"{u},{i},{(u * i) % 5 + 1},{1_600_000_000 + 3600 * (u * 10 + i)}\n" for u, i in PAIRS)
GENRES = "|".join(["0"] * 19)
UDATA = "".join(f"{u}\t{i}\t{(u * i) % 5 + 1}\t{881_250_000 + u * 10 + i}\n" for u, i in PAIRS)
UITEM = "".join(f"{i}|Movie {i} (199{i})|01-Jan-199{i}||http://example.invalid/{i}|{GENRES}\n" for i in range(1, 6))
USER_ARTISTS = "userID\tartistID\tweight\n" + "".join(f"{u}\t{i}\t{u * 100 + i}\n" for u, i in PAIRS)
USER_FRIENDS = "userID\tfriendID\n1\t2\n2\t1\n3\t4\n4\t3\n"
ARTISTS = "id\tname\turl\tpictureURL\n" + "".join(f"{i}\tArtist \"{i}\"\thttp://a/{i}\thttp://p/{i}\n"
                                                  for i in range(1, 6))
SYN_INTER = "user_id,item_id,rating,timestamp\n" + "".join(
    f"{u},{i},{(u + i) % 5 + 1},{1_546_300_800 + u * 100 + i}\n" for u, i in PAIRS)
SYN_SOCIAL = "src,dst,noise,kind\n1,2,0,genuine\n2,3,1,random\n4,5,0,genuine\n"
SYN_USERS = "user_id,age_band,region,occupation\n" + "".join(f"{u},18-24,north,writer\n" for u in range(1, 7))
SYN_ITEMS = "item_id,name\n" + "".join(f"{i},Item {i}\n" for i in range(1, 6))
BINARY = bytes(range(256)) * 8                            # NUL bytes and every other byte value
HIGH_BYTES = bytes(range(0x80, 0x100)) * 8                # no NUL, but not UTF-8 either


def parquet(frame: dict[str, Any], schema: Optional[Any] = None) -> Callable[[Path], None]:
    """A writer of a Parquet file built from column lists (or pyarrow arrays)."""
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(frame, schema=schema) if schema is not None else pa.table(frame)
        pq.write_table(table, path)
    return write


def truncated_parquet(path: Path) -> None:
    buf = io.BytesIO()
    pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 2, 3]}).to_parquet(buf, index=False)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


ROW = len(PAIRS) + 2          # the line number of a row appended to CSV (header counted)
PQ_U = [u for u, _ in PAIRS]
PQ_I = [i for _, i in PAIRS]


# ------------------------------------------------------------------------------------------ checks
def read_report(root: Path) -> dict:
    return json.loads((root / "reports" / "validation.json").read_text())


def described(desc: str, check: Callable[[Path], None]) -> Callable[[Path], None]:
    check.desc = desc  # type: ignore[attr-defined]
    return check


def _kv(expected: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in expected.items())


def stats(**expected: Any) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        got = read_report(root)["stats"]
        for key, value in expected.items():
            assert got[key] == value, f"stats[{key!r}] = {got[key]!r}, expected {value!r}"
    return described(f"accepted: {_kv(expected)}", check)


def repairs(**expected: int) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        report = read_report(root)
        assert report["success"] is True
        for key, value in expected.items():
            assert report["repairs"][key] == value, f"repairs[{key!r}] = {report['repairs'][key]}, expected {value}"
    return described(f"accepted, repaired and counted: {_kv(expected)}", check)


def warned(*needles: str) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        warnings = read_report(root)["warnings"]
        assert any(all(n in w for n in needles) for w in warnings), f"no warning with {needles}: {warnings}"
    return described("accepted with a warning: " + ", ".join(repr(n) for n in needles), check)


def all_of(*checks: Callable[[Path], None]) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        for c in checks:
            c(root)
    return described("; ".join(getattr(c, "desc", "") for c in checks), check)


def raw_ids(kind: str, expected: list[str]) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        table = pd.read_parquet(root / "artifacts" / "dataset" / f"{kind}.parquet")
        assert sorted(table["raw_id"].astype(str)) == sorted(expected), sorted(table["raw_id"])
    return described(f"accepted: {kind} {', '.join(repr(e) for e in expected)}", check)


def item_name_length(at_least: int) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        items = pd.read_parquet(root / "artifacts" / "dataset" / "items.parquet")
        assert items["name"].dropna().str.len().max() >= at_least
    return described(f"accepted: an item name of {at_least} characters kept", check)


def timestamps_include(*expected: int) -> Callable[[Path], None]:
    def check(root: Path) -> None:
        inter = pd.read_parquet(root / "artifacts" / "dataset" / "interactions.parquet")
        got = set(int(t) for t in inter["timestamp"])
        assert set(expected) <= got, f"timestamps {sorted(set(expected) - got)} missing"
    return described(f"accepted: unix seconds {', '.join(map(str, expected))}", check)


# ------------------------------------------------------------------------------------------ cases
@dataclass
class Case:
    group: str
    name: str
    expect: str                                   # "reject" | "accept"
    files: dict[str, Content] = field(default_factory=dict)
    source: str = "csv"
    params: dict[str, Any] = field(default_factory=dict)
    params_text: Optional[Union[str, bytes]] = None  # raw params.yaml (DATA is replaced by the data folder)
    write_params: bool = True
    stage: str = "ingest"                         # where a rejection must happen (or train@<model>)
    needles: tuple[str, ...] = ()
    check: Optional[Callable[[Path], None]] = None
    note: str = ""                                # shown in reports/reliability.md

    @property
    def id(self) -> str:
        return f"{self.group}/{self.name}"


def tab(**kw: Any) -> dict[str, Any]:
    return {"data": {"tabular": kw}}


def cols(**kw: Any) -> dict[str, Any]:
    return tab(columns=kw)


RT = cols(rating="rating", timestamp="timestamp")
STRICT = {"validate": {"strict": True}}
SOCIAL = tab(social="social.csv")
ITEMS = tab(items="items.csv", item_columns={"item": "item_id", "name": "name"})


def merge(*dicts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


CSV_LOADER = "csv loader"
VALIDATION = "validation (csv source)"

CASES: list[Case] = [
    # ------------------------------------------------------------------------------ csv: rejected
    Case(CSV_LOADER, "unterminated quote", "reject", {"interactions.csv": CSV + '7,"8\n9,1\n'},
         needles=("interactions.csv", f"row {ROW}", "quot")),
    Case(CSV_LOADER, "row with a missing field", "reject", {"interactions.csv": CSV.replace("\n1,2\n", "\n1\n")},
         needles=("interactions.csv", "row 3", "expected 2 fields")),
    Case(CSV_LOADER, "row with an extra field", "reject", {"interactions.csv": CSV + "7,1,5\n"},
         needles=("interactions.csv", f"row {ROW}", "expected 2 fields", "found 3")),
    Case(CSV_LOADER, "wrong delimiter (semicolons, sep ',')", "reject", {"interactions.csv": CSV.replace(",", ";")},
         needles=("interactions.csv", "missing column 'user_id'", "separator", "data.tabular.sep")),
    Case(CSV_LOADER, "comma file read with sep tab", "reject", {"interactions.csv": CSV}, params=tab(sep="\t"),
         needles=("interactions.csv", "missing column 'user_id'", "data.tabular.sep")),
    Case(CSV_LOADER, "non-UTF-8 bytes (latin-1 é)", "reject",
         {"interactions.csv": CSV.encode() + "caf\u00e9,1\n".encode("latin-1")},
         needles=("interactions.csv", f"row {ROW}", "not valid utf-8", "byte 0xe9")),
    Case(CSV_LOADER, "UTF-16 file", "reject", {"interactions.csv": CSV.encode("utf-16")},
         needles=("interactions.csv", "UTF-16", "UTF-8")),
    Case(CSV_LOADER, "empty file (0 bytes)", "reject", {"interactions.csv": ""},
         needles=("interactions.csv", "empty")),
    Case(CSV_LOADER, "whitespace only", "reject", {"interactions.csv": " \n\n \n"},
         needles=("interactions.csv", "empty")),
    Case(CSV_LOADER, "header only", "reject", {"interactions.csv": "user_id,item_id\n"},
         needles=("interactions.csv", "no data rows", "only a header")),
    Case(CSV_LOADER, "header then blank lines", "reject", {"interactions.csv": "user_id,item_id\n\n\n\n"},
         needles=("interactions.csv", "no data rows")),
    Case(CSV_LOADER, "missing column", "reject", {"interactions.csv": CSV.replace("user_id,item_id", "user_id,x")},
         needles=("interactions.csv", "missing column 'item_id'", "columns found in the header: 'user_id', 'x'")),
    Case(CSV_LOADER, "renamed column", "reject", {"interactions.csv": CSV.replace("user_id,", "userid,")},
         needles=("interactions.csv", "column 'user_id'", "'userid'")),
    Case(CSV_LOADER, "column name with spaces", "reject",
         {"interactions.csv": CSV.replace("user_id,item_id", "user_id , item_id")},
         needles=("interactions.csv", "missing column 'user_id'", "did you mean 'user_id '")),
    Case(CSV_LOADER, "duplicated header column", "reject",
         {"interactions.csv": "user_id,item_id,user_id\n" + "".join(f"{u},{i},{u}\n" for u, i in PAIRS)},
         needles=("interactions.csv", "column 'user_id'", "appears 2 times")),
    Case(CSV_LOADER, "binary garbage", "reject", {"interactions.csv": BINARY},
         needles=("interactions.csv", "binary data", "NUL byte")),
    Case(CSV_LOADER, "binary garbage without NUL bytes", "reject", {"interactions.csv": HIGH_BYTES},
         needles=("interactions.csv", "row 1", "not valid utf-8")),
    Case(CSV_LOADER, "a 400 KB line without separators", "reject", {"interactions.csv": CSV + "x" * 400_000 + "\n"},
         needles=("interactions.csv", f"row {ROW}", "expected 2 fields", "found 1")),
    Case(CSV_LOADER, "interactions file is a folder", "reject", {"interactions.csv/readme.txt": "a folder"},
         needles=("interactions.csv", "is a folder")),
    Case(CSV_LOADER, "social file missing", "reject", {"interactions.csv": CSV}, params=SOCIAL,
         needles=("social.csv", "missing", "data.tabular.social")),
    # ------------------------------------------------------------------------------ csv: accepted
    Case(CSV_LOADER, "UTF-8 BOM and CRLF line endings", "accept",
         {"interactions.csv": b"\xef\xbb\xbf" + CSV.replace("\n", "\r\n").encode()}, check=stats(users=6, items=5)),
    Case(CSV_LOADER, "CR-only line endings", "accept", {"interactions.csv": CSV.replace("\n", "\r")},
         check=stats(users=6, items=5, interactions=len(PAIRS))),
    Case(CSV_LOADER, "quoted fields with separators and line breaks", "accept",
         {"interactions.csv": 'user_id,item_id\n"a, b",1\n"a, b",2\n"c\nd",1\n"c\nd",3\n"e ""q""",2\n'},
         check=raw_ids("users", ["a, b", "c\nd", 'e "q"'])),
    Case(CSV_LOADER, "reordered and extra columns", "accept",
         {"interactions.csv": "comment,item_id,extra,user_id\n" + "".join(f"c,{i},x,{u}\n" for u, i in PAIRS)},
         check=stats(users=6, items=5)),
    Case(CSV_LOADER, "blank lines between rows", "accept", {"interactions.csv": CSV.replace("\n2,", "\n\n\n2,")},
         check=stats(interactions=len(PAIRS))),
    Case(CSV_LOADER, "string ids are mapped", "accept",
         {"interactions.csv": CSV.replace("\n1,", "\nalice,").replace("\n2,", "\nbob,")},
         check=raw_ids("users", ["alice", "bob", "3", "4", "5", "6"])),
    Case(CSV_LOADER, "300 KB quoted item name", "accept",
         {"interactions.csv": CSV, "items.csv": 'item_id,name\n1,"' + "n" * 300_000 + '"\n2,"short, quoted"\n'},
         params=ITEMS, check=item_name_length(300_000), note="csv's 128 KiB field limit used to reject it"),
    Case(CSV_LOADER, "300 KB id", "accept", {"interactions.csv": CSV + ("z" * 300_000 + ",1\n") * 2},
         check=stats(users=7)),
    # ------------------------------------------------------------------------------ validation: rejected
    Case(VALIDATION, "empty user id", "reject", {"interactions.csv": CSV + ",1\n"}, stage="validate",
         needles=("interactions.csv", "column 'user_id'", "cannot be ids", f"row {ROW}")),
    Case(VALIDATION, "non-integral id 1.5", "reject", {"interactions.csv": CSV + "1.5,1\n"}, stage="validate",
         needles=("column 'user_id'", "cannot be ids", f"row {ROW}: user_id='1.5'")),
    Case(VALIDATION, "id 1e3", "reject", {"interactions.csv": CSV + "1,1e3\n"}, stage="validate",
         needles=("column 'item_id'", f"row {ROW}: item_id='1e3'")),
    Case(VALIDATION, "id beyond int64", "reject", {"interactions.csv": CSV + "9223372036854775808,1\n"},
         stage="validate", needles=("column 'user_id'", "outside int64", f"row {ROW}")),
    Case(VALIDATION, "NaN rating", "reject", {"interactions.csv": CSV_RT + "1,5,nan,1600000000\n"}, params=RT,
         stage="validate", needles=("column 'rating'", "not finite numbers", f"row {ROW}: rating='nan'")),
    Case(VALIDATION, "inf rating", "reject", {"interactions.csv": CSV_RT + "1,5,-inf,1600000000\n"}, params=RT,
         stage="validate", needles=("column 'rating'", f"row {ROW}: rating='-inf'")),
    Case(VALIDATION, "rating beyond float32", "reject", {"interactions.csv": CSV_RT + "1,5,1e39,1600000000\n"},
         params=RT, stage="validate", needles=("column 'rating'", "float32", f"row {ROW}: rating='1e39'"),
         note="was accepted and became an infinite weight"),
    Case(VALIDATION, "non-numeric rating", "reject", {"interactions.csv": CSV_RT + "1,5,five,1600000000\n"},
         params=RT, stage="validate", needles=("column 'rating'", f"row {ROW}: rating='five'")),
    Case(VALIDATION, "NaN timestamp", "reject", {"interactions.csv": CSV_RT + "1,5,3,NaN\n"}, params=RT,
         stage="validate", needles=("column 'timestamp'", "unix seconds", f"row {ROW}: timestamp='NaN'")),
    Case(VALIDATION, "inf timestamp", "reject", {"interactions.csv": CSV_RT + "1,5,3,inf\n"}, params=RT,
         stage="validate", needles=("column 'timestamp'", f"row {ROW}: timestamp='inf'")),
    Case(VALIDATION, "unparseable timestamp", "reject", {"interactions.csv": CSV_RT + "1,5,3,yesterday\n"},
         params=RT, stage="validate", needles=("column 'timestamp'", "ISO-8601", f"row {ROW}: timestamp='yesterday'")),
    Case(VALIDATION, "impossible date 2021-02-30", "reject", {"interactions.csv": CSV_RT + "1,5,3,2021-02-30\n"},
         params=RT, stage="validate", needles=("column 'timestamp'", f"row {ROW}: timestamp='2021-02-30'")),
    Case(VALIDATION, "one user", "reject", {"interactions.csv": "user_id,item_id\n1,1\n1,2\n1,3\n"},
         stage="validate", needles=("interactions.csv", "column 'user_id'", "1 distinct valid user id", "at least 2")),
    Case(VALIDATION, "k-core filter empties every user", "reject", {"interactions.csv": CSV},
         params={"data": {"k_core": 50}}, stage="validate",
         needles=("0 user(s) remain", "data.k_core", "at least 2")),
    Case(VALIDATION, "min_rating leaves one user", "reject",
         {"interactions.csv": CSV_RT + "1,3,9,1600000000\n"}, params=merge(RT, {"data": {"min_rating": 6}}),
         stage="validate", needles=("1 user(s) remain", "data.min_rating")),
    Case(VALIDATION, "min_rating without a rating column", "reject", {"interactions.csv": CSV},
         params={"data": {"min_rating": 3}}, stage="validate",
         needles=("data.min_rating", "no rating column")),
    Case(VALIDATION, "social tie with a bad id", "reject",
         {"interactions.csv": CSV, "social.csv": "src,dst\n1,2\n2,2.5\n"}, params=SOCIAL, stage="validate",
         needles=("social.csv", "column 'dst'", "row 3: dst='2.5'")),
    Case(VALIDATION, "item name file with a bad id", "reject",
         {"interactions.csv": CSV, "items.csv": "item_id,name\n1,a\nnan,b\n"}, params=ITEMS, stage="validate",
         needles=("items.csv", "column 'item_id'", "row 3: item_id='nan'")),
    Case(VALIDATION, "id of 5000 digits", "reject", {"interactions.csv": CSV + "1" * 5000 + ",1\n"},
         stage="validate", needles=("interactions.csv", "column 'user_id'", "outside int64",
                                    f"row {ROW}: user_id='111", "(5000 characters)"),
         note="was a ValueError traceback (Python's 4,300-digit limit on int conversion), exit status 1"),
    Case(VALIDATION, "columns named as in the file's header", "reject",
         {"interactions.csv": CSV.replace("user_id,item_id", "uid,iid") + "1,1.5\n"},
         params=cols(user="uid", item="iid"), stage="validate",
         needles=("interactions.csv", "column 'iid'", f"row {ROW}: iid='1.5'"),
         note="messages used the internal names (column 'item')"),
    # ------------------------------------------------------------------------ validation: repaired / strict
    Case(VALIDATION, "duplicate pairs repaired and counted", "accept",
         {"interactions.csv": CSV + "1,1\n1,1\n2,3\n"}, check=repairs(duplicate_interactions_merged=3)),
    Case(VALIDATION, "duplicate pairs rejected when strict", "reject",
         {"interactions.csv": CSV + "1,1\n1,1\n2,3\n"}, params=STRICT, stage="validate",
         needles=("interactions.csv", "column 'user_id,item_id'", "share their (user_id, item_id) pair",
                  "validate.strict")),
    Case(VALIDATION, "social self-loops repaired and counted", "accept",
         {"interactions.csv": CSV, "social.csv": "src,dst\n1,2\n3,3\n4,4\n"}, params=SOCIAL,
         check=repairs(social_self_loops_dropped=2)),
    Case(VALIDATION, "social self-loops rejected when strict", "reject",
         {"interactions.csv": CSV, "social.csv": "src,dst\n1,2\n3,3\n4,4\n"}, params=merge(SOCIAL, STRICT),
         stage="validate", needles=("social.csv", "self-loop", "row 3: src='3', dst='3'", "validate.strict")),
    Case(VALIDATION, "ties to unknown users repaired and counted", "accept",
         {"interactions.csv": CSV, "social.csv": "src,dst\n1,2\n1,ghost\nnobody,2\n"}, params=SOCIAL,
         check=repairs(social_unknown_users_dropped=2)),
    Case(VALIDATION, "ties to unknown users rejected when strict", "reject",
         {"interactions.csv": CSV, "social.csv": "src,dst\n1,2\n1,ghost\n"}, params=merge(SOCIAL, STRICT),
         stage="validate", needles=("social.csv", "user without interactions", "row 3", "validate.strict")),
    Case(VALIDATION, "social ids that match no interaction id", "accept",
         {"interactions.csv": CSV, "social.csv": "src,dst\nu1,u2\nu2,u3\n"}, params=SOCIAL,
         check=all_of(repairs(social_unknown_users_dropped=2), warned("social.csv", "interactions.csv",
                                                                      "no id of the social file", "src='u1'")),
         note="every tie was dropped with no more than a count"),
    Case(VALIDATION, "duplicate ties repaired and counted", "accept",
         {"interactions.csv": CSV, "social.csv": "src,dst\n1,2\n1,2\n2,1\n"}, params=SOCIAL,
         check=repairs(social_duplicates_dropped=1)),
    Case(VALIDATION, "ISO-8601 timestamps, up to year 9999", "accept",
         {"interactions.csv": CSV_RT + "1,3,2,9999-12-31T23:59:59\n2,2,3,2020-01-01T01:00:00+01:00\n"},
         params=RT, check=all_of(stats(has_timestamps=True), timestamps_include(253402300799, 1577836800)),
         note="a date past 2262 used to crash with OutOfBoundsDatetime"),
    Case(VALIDATION, "integer ids canonicalised ('007', '+7', ' 7 ')", "accept",
         {"interactions.csv": CSV + "007,1\n+7,2\n 7 ,3\n"},
         check=all_of(raw_ids("users", ["1", "2", "3", "4", "5", "6", "7"]), stats(interactions=len(PAIRS) + 3))),
    # ------------------------------------------------------------------------------ movielens-100k
    Case("movielens-100k", "valid files with latin-1 titles", "accept",
         {"u.data": UDATA, "u.item": UITEM.replace("Movie 1", "Caf\u00e9 \"Noir\"").encode("latin-1")},
         source="movielens-100k", check=stats(users=6, items=5, has_item_names=True, has_timestamps=True)),
    Case("movielens-100k", "comma-separated u.data", "reject", {"u.data": UDATA.replace("\t", ","), "u.item": UITEM},
         source="movielens-100k", needles=("u.data", "row 1", "expected 4 fields", "found 1")),
    Case("movielens-100k", "u.item missing", "reject", {"u.data": UDATA}, source="movielens-100k",
         needles=("u.item", "missing", "MovieLens items")),
    Case("movielens-100k", "header line in u.data", "reject",
         {"u.data": "user id\titem id\trating\ttimestamp\n" + UDATA, "u.item": UITEM}, source="movielens-100k",
         stage="validate", needles=("u.data", "column 'rating'", "row 1: rating='rating'")),
    Case("movielens-100k", "NaN rating", "reject", {"u.data": UDATA + "7\t1\tNaN\t881250949\n", "u.item": UITEM},
         source="movielens-100k", stage="validate",
         needles=("u.data", "column 'rating'", f"row {ROW - 1}: rating='NaN'")),
    Case("movielens-100k", "data.path holds the synthetic files", "reject",
         {"interactions.csv": SYN_INTER, "social.csv": SYN_SOCIAL, "items.csv": SYN_ITEMS}, source="movielens-100k",
         needles=("u.data", "missing", "MovieLens ratings")),
    # ------------------------------------------------------------------------------ lastfm-hetrec
    Case("lastfm-hetrec", "valid files", "accept",
         {"user_artists.dat": USER_ARTISTS, "user_friends.dat": USER_FRIENDS, "artists.dat": ARTISTS},
         source="lastfm-hetrec", check=stats(users=6, items=5, social_ties=4)),
    Case("lastfm-hetrec", "renamed column artistID", "reject",
         {"user_artists.dat": USER_ARTISTS.replace("artistID", "artist"), "user_friends.dat": USER_FRIENDS,
          "artists.dat": ARTISTS}, source="lastfm-hetrec",
         needles=("user_artists.dat", "missing column 'artistID'", "'artist'")),
    Case("lastfm-hetrec", "friend self-loop and unknown friend repaired", "accept",
         {"user_artists.dat": USER_ARTISTS, "user_friends.dat": USER_FRIENDS + "5\t5\n6\t999\n",
          "artists.dat": ARTISTS}, source="lastfm-hetrec",
         check=repairs(social_self_loops_dropped=1, social_unknown_users_dropped=1)),
    Case("lastfm-hetrec", "friend self-loop rejected when strict", "reject",
         {"user_artists.dat": USER_ARTISTS, "user_friends.dat": USER_FRIENDS + "5\t5\n", "artists.dat": ARTISTS},
         source="lastfm-hetrec", params=STRICT, stage="validate",
         needles=("user_friends.dat", "self-loop", "row 6")),
    Case("lastfm-hetrec", "artists.dat is binary garbage", "reject",
         {"user_artists.dat": USER_ARTISTS, "user_friends.dat": USER_FRIENDS, "artists.dat": BINARY},
         source="lastfm-hetrec", needles=("artists.dat", "binary data")),
    Case("lastfm-hetrec", "user_friends.dat header only", "reject",
         {"user_artists.dat": USER_ARTISTS, "user_friends.dat": "userID\tfriendID\n", "artists.dat": ARTISTS},
         source="lastfm-hetrec", needles=("user_friends.dat", "no data rows")),
    # ------------------------------------------------------------------------------ synthetic
    Case("synthetic", "valid files", "accept",
         {"interactions.csv": SYN_INTER, "social.csv": SYN_SOCIAL, "items.csv": SYN_ITEMS, "users.csv": SYN_USERS},
         source="synthetic",
         check=stats(users=6, social_ties=3)),
    Case("synthetic", "data.path does not exist", "reject", {}, source="synthetic",
         params={"data": {"path": "/nonexistent/gnnrec-data"}},
         needles=("data folder does not exist", "data.path", "interactions.csv, social.csv, items.csv")),
    Case("synthetic", "data.path is a file", "reject", {"interactions.csv": SYN_INTER}, source="synthetic",
         params={"data": {"path": "DATA/interactions.csv"}}, needles=("is not a folder", "data.path")),
    Case("synthetic", "data.path holds the MovieLens files", "reject", {"u.data": UDATA, "u.item": UITEM},
         source="synthetic", needles=("interactions.csv", "missing", "synthetic interactions")),
    Case("synthetic", "noise flag not 0/1", "reject",
         {"interactions.csv": SYN_INTER, "social.csv": SYN_SOCIAL.replace("2,3,1", "2,3,yes"), "items.csv": SYN_ITEMS,
          "users.csv": SYN_USERS},
         source="synthetic", stage="validate", needles=("social.csv", "column 'noise'", "row 3: noise='yes'")),
    # ------------------------------------------------------------------------------ parquet
    Case("parquet", "valid file (string and integer ids)", "accept",
         {"i.parquet": parquet({"user_id": [f"u{u}" for u in PQ_U], "item_id": PQ_I})}, source="parquet",
         params=tab(interactions="i.parquet"), check=stats(users=6, items=5)),
    Case("parquet", "CSV text named .parquet", "reject", {"i.parquet": CSV}, source="parquet",
         params=tab(interactions="i.parquet"), needles=("i.parquet", "not a readable Parquet file")),
    Case("parquet", "truncated file", "reject", {"i.parquet": truncated_parquet}, source="parquet",
         params=tab(interactions="i.parquet"), needles=("i.parquet", "Parquet")),
    Case("parquet", "missing column", "reject", {"i.parquet": parquet({"uid": PQ_U, "item_id": PQ_I})},
         source="parquet", params=tab(interactions="i.parquet"),
         needles=("i.parquet", "missing column 'user_id'", "'uid'")),
    Case("parquet", "NaN rating", "reject",
         {"i.parquet": parquet({"user_id": PQ_U, "item_id": PQ_I, "r": [float("nan")] + [1.0] * (len(PQ_U) - 1)})},
         source="parquet", params=merge(tab(interactions="i.parquet"), cols(rating="r")), stage="validate",
         needles=("i.parquet", "column 'r'", "row 1: r='nan'")),
    Case("parquet", "float ids with a fraction", "reject",
         {"i.parquet": parquet({"user_id": [1.5] + [float(u) for u in PQ_U[1:]], "item_id": PQ_I})},
         source="parquet", params=tab(interactions="i.parquet"), stage="validate",
         needles=("i.parquet", "column 'user_id'", "row 1: user_id='1.5'")),
    Case("parquet", "null ids", "reject", {"i.parquet": parquet({"user_id": [None] + PQ_U[1:], "item_id": PQ_I})},
         source="parquet", params=tab(interactions="i.parquet"), stage="validate",
         needles=("i.parquet", "column 'user_id'", "row 1: user_id=null")),
    Case("parquet", "nested list column", "reject",
         {"i.parquet": parquet({"user_id": [[u] for u in PQ_U], "item_id": PQ_I})}, source="parquet",
         params=tab(interactions="i.parquet"), needles=("i.parquet", "column 'user_id'", "nested type")),
    Case("parquet", "binary column that is not UTF-8", "reject",
         {"i.parquet": parquet({"user_id": [b"\xff\xfe"] * len(PQ_U), "item_id": PQ_I})}, source="parquet",
         params=tab(interactions="i.parquet"), needles=("i.parquet", "column 'user_id'", "cannot be read as text")),
    Case("parquet", "no rows", "reject", {"i.parquet": parquet({"user_id": [1][:0], "item_id": [1][:0]})},
         source="parquet", params=tab(interactions="i.parquet"), needles=("i.parquet", "no data rows")),
    # ------------------------------------------------------------------------------ lightgcn-format
    Case("lightgcn-format", "valid train.txt and test.txt", "accept",
         {"train.txt": "0 1 2 3\n1 2 3 4\n2 0 1\n\n3 1 4\n", "test.txt": "0 4\n1 0\n2 3\n3\n"},
         source="lightgcn-format", check=stats(users=4, items=5)),
    Case("lightgcn-format", "test.txt missing", "reject", {"train.txt": "0 1 2\n1 2 3\n"}, source="lightgcn-format",
         needles=("test.txt", "missing")),
    Case("lightgcn-format", "train.txt is binary garbage", "reject", {"train.txt": BINARY, "test.txt": "0 1\n"},
         source="lightgcn-format", needles=("train.txt", "binary data")),
    Case("lightgcn-format", "train.txt empty", "reject", {"train.txt": "", "test.txt": "0 1\n"},
         source="lightgcn-format", needles=("train.txt", "empty")),
    Case("lightgcn-format", "comma-separated lines", "reject", {"train.txt": "0,1,2\n1,2,3\n", "test.txt": "0,3\n"},
         source="lightgcn-format", needles=("train.txt", "only a user id")),
    Case("lightgcn-format", "non-integral item id", "reject", {"train.txt": "0 1 2\n1 2.5 3\n", "test.txt": "0 3\n"},
         source="lightgcn-format", stage="validate", needles=("train.txt", "column 'item'", "row 2: item='2.5'")),
    # ------------------------------------------------------------------------------ params
    Case("params", "wrong type", "reject", params_text="train:\n  lr: fast\n",
         needles=("train.lr", "a number", "fast")),
    Case("params", "unknown section", "reject", params_text="trian:\n  lr: 0.1\n",
         needles=("'trian'", "a known section")),
    Case("params", "unknown key in a section", "reject", params_text="train:\n  learning_rate: 0.1\n",
         needles=("train.learning_rate", "allowed here")),
    Case("params", "out of range (epochs 0)", "reject", params_text="train:\n  epochs: 0\n",
         needles=("train.epochs", "> 0")),
    Case("params", "ratios that do not sum to 1", "reject", params_text="split:\n  ratios: [0.5, 0.3, 0.1]\n",
         needles=("split.ratios", "summing to 1")),
    Case("params", "unknown model", "reject", params_text="models: [lightgcn, transformer]\n",
         needles=("models", "transformer")),
    Case("params", "unknown data source", "reject", params_text="data:\n  source: excel\n",
         needles=("data.source", "excel", "movielens-100k")),
    Case("params", "model hyperparameter of the wrong type", "reject", {"interactions.csv": CSV},
         params={"lightgcn": {"num_layers": "three"}}, stage="train@lightgcn",
         needles=("lightgcn.num_layers", "an integer"),
         note="checked by the model's own train stage, before it reads any input"),
    Case("params", "NaN where a number is expected", "reject", params_text="data:\n  min_rating: .nan\n",
         needles=("data.min_rating", "finite")),
    Case("params", "seed beyond 64 bits", "reject", params_text="seed: 99999999999999999999999\n",
         needles=("seed", "2**63"), note="was accepted, then crashed training (torch.manual_seed overflow)"),
    Case("params", "field separator that is a line break", "reject",
         params_text='data:\n  source: csv\n  path: DATA\n  tabular:\n    sep: "\\n"\n',
         needles=("data.tabular.sep", "line break")),
    Case("params", "invalid YAML", "reject", params_text="train: [\n", needles=("valid YAML", "params.yaml")),
    Case("params", "tab indentation", "reject", params_text="train:\n\tlr: 0.1\n",
         needles=("valid YAML", "'\\t'")),
    Case("params", "not UTF-8", "reject", params_text=b"seed: 4\xff\n", needles=("UTF-8", "params.yaml", "offset 7")),
    Case("params", "a list instead of a mapping", "reject", params_text="- seed\n- 4\n",
         needles=("<top level>", "a mapping of sections")),
    Case("params", "a key given twice", "reject", params_text="seed: 1\ntrain: {lr: 0.1}\nseed: 2\n",
         needles=("'seed' appears twice", "lines 1 and 3"), note="YAML silently kept the last value"),
    Case("params", "an impossible date value", "reject", params_text="seed: 2021-02-30\n",
         needles=("params.yaml", "day is out of range"), note="was a bare ValueError traceback"),
    Case("params", "nesting thousands of levels deep", "reject", params_text="seed: " + "[" * 3000 + "]" * 3000 + "\n",
         needles=("params.yaml", "nested"), note="was a RecursionError traceback"),
    Case("params", "python object tag (unsafe YAML)", "reject",
         params_text="seed: !!python/object/apply:os.system ['echo unsafe']\n",
         needles=("valid YAML", "python/object/apply:os.system")),
    Case("params", "params.yaml missing", "reject", write_params=False, needles=("params.yaml", "no such file")),
    Case("params", "data.path with a NUL byte", "reject",
         params_text='data:\n  source: csv\n  path: "DATA\\0x"\n', needles=("data.path", "not a usable path"),
         note="was a bare ValueError traceback"),
    Case("params", "data.path too long for the OS", "reject",
         params_text="data:\n  source: csv\n  path: DATA/" + "d" * 5000 + "\n",
         needles=("data.path", "not a usable path"), note="was an OSError traceback"),
    Case("params", "file name too long for the OS", "reject",
         params_text="data:\n  source: csv\n  path: DATA\n  tabular:\n    interactions: " + "f" * 300 + ".csv\n",
         needles=("fff.csv", "not a usable file name"), note="was an OSError traceback"),
]

MISSING_PARAMS = "params.yaml missing"
assert len({c.id for c in CASES}) == len(CASES), "case names must be unique within a group"

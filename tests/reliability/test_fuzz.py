"""Property-based tests: any input either loads or raises a :class:`gnnrec.errors.GnnrecError` subclass
(which the CLI and the Prefect tasks turn into a message and exit status 2), never another exception.

Fuzzed: the delimited-text reader every CSV loader shares, the generic csv and parquet sources, the value
parsers of the validate stage, the params parser (from Python values and from YAML text)."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnnrec.config import load_params, params_from_dict
from gnnrec.datasets import load_source
from gnnrec.datasets.tabular import read_delimited
from gnnrec.errors import GnnrecError
from gnnrec.validation import normalise_ids, parse_numbers, parse_timestamps

FUZZ = settings(max_examples=250, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_CHARS = st.sampled_from(list('ab19,;\t|\n\r" \x00\ufeff.-e\u00e9\u2028') + ["nan", "inf", "1e400", "\r\n", '""'])
TEXT = st.lists(_CHARS, max_size=80).map("".join)
BYTES = st.binary(max_size=120)


def _loads_or_gnnrec_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except GnnrecError:
        return None


_TMP = Path(tempfile.gettempdir())   # set to the test's tmp_path by test_fuzz


@FUZZ
@given(body=st.one_of(TEXT.map(lambda t: t.encode("utf-8")), BYTES), header=st.booleans(),
       sep=st.sampled_from([",", ";", "\t", "|"]), quoting=st.booleans(),
       encoding=st.sampled_from(["utf-8", "latin-1"]), prefix_header=st.booleans())
def _delimited_reader_loads_or_raises_a_gnnrec_error(body, header, sep, quoting, encoding, prefix_header):
    path = _TMP / "f.csv"
    head = f"a{sep}b\n".encode() if header and prefix_header else b""
    path.write_bytes(head + body)
    kwargs = {} if header else {"header": False, "field_names": ["a", "b"]}
    out = _loads_or_gnnrec_error(read_delimited, path, {"user": "a", "item": "b"}, sep=sep, quoting=quoting,
                                 encoding=encoding, **kwargs)
    if out is not None:
        assert list(out.columns) == ["user", "item", "row"]
        assert out["row"].is_monotonic_increasing


@FUZZ
@given(interactions=st.one_of(TEXT.map(lambda t: ("user_id,item_id\n" + t).encode()), BYTES),
       social=st.one_of(st.none(), TEXT.map(lambda t: ("src,dst\n" + t).encode())),
       sep=st.sampled_from([",", "\t", ";"]))
def _csv_source_loads_or_raises_a_gnnrec_error(interactions, social, sep):
    folder = _TMP / "csv"
    folder.mkdir(exist_ok=True)
    (folder / "interactions.csv").write_bytes(interactions)
    tabular = {"sep": sep}
    if social is not None:
        (folder / "social.csv").write_bytes(social)
        tabular["social"] = "social.csv"
    params = params_from_dict({"data": {"source": "csv", "path": str(folder), "tabular": tabular}})
    _loads_or_gnnrec_error(load_source, params)


_PARQUET_VALUES = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), min_size=0, max_size=6),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), min_size=0, max_size=6),
    st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=0, max_size=6),
    st.lists(st.one_of(st.none(), st.binary(max_size=4)), min_size=0, max_size=6),
    st.lists(st.booleans(), min_size=0, max_size=6),
)


@FUZZ
@given(users=_PARQUET_VALUES, items=_PARQUET_VALUES, garbage=st.one_of(st.none(), BYTES))
def _parquet_source_loads_or_raises_a_gnnrec_error(users, items, garbage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _TMP / "pq"
    folder.mkdir(exist_ok=True)
    path = folder / "i.parquet"
    if garbage is not None:
        path.write_bytes(garbage)
    else:
        n = min(len(users), len(items))
        buf = io.BytesIO()
        pq.write_table(pa.table({"user_id": pa.array(users[:n]), "item_id": pa.array(items[:n])}), buf)
        path.write_bytes(buf.getvalue())
    params = params_from_dict({"data": {"source": "parquet", "path": str(folder),
                                        "tabular": {"interactions": "i.parquet"}}})
    _loads_or_gnnrec_error(load_source, params)


@FUZZ
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=30), _CHARS,
                                 st.from_regex(r"[+-]?[0-9]{1,25}(\.[0-9]{0,3})?(e[+-]?[0-9]{1,3})?", fullmatch=True),
                                 st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?"
                                               r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?)?", fullmatch=True)),
                       max_size=12))
def _value_parsers_never_raise(values):
    series = pd.Series(values, dtype="str")
    ids = normalise_ids(series)
    numbers = parse_numbers(series)
    stamps = parse_timestamps(series)
    assert len(ids) == len(numbers) == len(stamps) == len(values)


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                  st.sampled_from(["csv", "lightgcn", "ndcg@20", "cpu", "cuda:0", "\t", "random", "uniform"]))
_KEYS = st.sampled_from(["seed", "data", "validate", "split", "graph", "models", "train", "evaluate", "report",
                         "lightgcn", "mf", "popularity", "source", "path", "tabular", "synthetic", "columns", "sep",
                         "epochs", "lr", "k", "ratios", "strict", "user", "n_users", "social", "min_jaccard",
                         "checkpoint_every", "unknown"])
_TREE = st.recursive(_LEAF,
                     lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
                     max_leaves=12)


@FUZZ
@given(raw=st.one_of(_TREE, st.dictionaries(_KEYS, _TREE, max_size=6)))
def _params_parser_returns_params_or_raises_a_gnnrec_error(raw):
    _loads_or_gnnrec_error(params_from_dict, raw)


_YAML_CHARS = st.sampled_from(list("ab:-[]{}#&*!|>'\"%@`,?\n\t 019.") + ["seed", "train", "lr", "!!python/object",
                                                                        "2020-02-30", "<<", "~", ".nan"])


@FUZZ
@given(text=st.one_of(st.lists(_YAML_CHARS, max_size=60).map("".join),
                      _TREE.map(lambda t: yaml.safe_dump(t)), st.binary(max_size=60)))
def _params_file_loads_or_raises_a_gnnrec_error(text):
    path = _TMP / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    _loads_or_gnnrec_error(load_params, path)


FUZZED = {
    "delimited reader (text and bytes, any separator, quoting, encoding)":
        _delimited_reader_loads_or_raises_a_gnnrec_error,
    "csv source (interactions and social files)": _csv_source_loads_or_raises_a_gnnrec_error,
    "parquet source (typed columns and garbage bytes)": _parquet_source_loads_or_raises_a_gnnrec_error,
    "id / number / timestamp parsers of the validate stage": _value_parsers_never_raise,
    "params from parsed values": _params_parser_returns_params_or_raises_a_gnnrec_error,
    "params file from YAML text and bytes": _params_file_loads_or_raises_a_gnnrec_error,
}


@pytest.mark.parametrize("surface", list(FUZZED))
def test_fuzz(surface, record_case, tmp_path):
    global _TMP
    _TMP = tmp_path
    record_case("fuzzing", surface, "loads or raises a GnnrecError", f"{FUZZ.max_examples} examples (hypothesis)")
    FUZZED[surface]()

"""Reading delimited text files (CSV, TSV, ...) as tables of text columns: :func:`read_delimited`,
:func:`delimited_header` and the byte-level helpers :func:`read_bytes` and :func:`decode_text`.

Shared by every loader (through :mod:`gnnrec.datasets.tabular`, which re-exports them). Values stay text
(``str`` columns) and ``row`` is the 1-based line of the source file where the record starts (header
counted); anything that prevents reading the file as a table raises :class:`~gnnrec.errors.DataError`
naming the file and, where it applies, the line or column. :func:`column_positions` maps wanted columns
to header positions for the Parquet reader too.

How a delimited file is read
----------------------------
1. The bytes are checked for NUL (binary data) and decoded strictly (UTF-8 with an optional BOM, or
   another codec such as latin-1); CRLF and CR line endings become LF.
2. Every record is located first, giving its start line and its field count: with a vectorised scan of
   the bytes when no record can span lines (no quote character, or quoting off), else with
   :mod:`csv` in strict mode, which also rejects broken quoting. Records with the wrong number of
   fields are errors here, because pandas' C parser silently pads short rows and, in some layouts,
   drops the extra fields of long ones.
3. pandas' C parser then splits the values (``skip_blank_lines=False``, so its rows line up with the
   records located in step 2; the two counts are checked to agree). Blank lines are dropped.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from gnnrec.datasets import empty_table
from gnnrec.errors import DataError

QUOTE = '"'
_NEWLINE, _TAB, _SPACE = 10, 9, 32


# ------------------------------------------------------------------------------------ file text
def read_bytes(path: Path) -> bytes:
    """The file's bytes; OS errors become DataErrors naming the file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError("required file is missing", file=str(path)) from None
    except IsADirectoryError:
        raise DataError("is a folder, expected a data file", file=str(path)) from None
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None


def decode_text(raw: bytes, path: Path, encoding: str = "utf-8") -> str:
    """Decode ``raw`` strictly and normalise line endings to ``\\n``.

    A UTF-8 byte-order mark is dropped. NUL bytes (binary data) and undecodable bytes raise a DataError
    naming the byte offset and the line.
    """
    if (raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            and encoding.replace("_", "-").lower() in ("utf-8", "utf8")):
        raise DataError("UTF-16 text (it starts with a UTF-16 byte-order mark); expected UTF-8: save the file as UTF-8",
                        file=str(path), row=1)
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"binary data, not a text table: NUL byte at byte offset {nul} (line {_line_at(raw, nul)})",
                        file=str(path), row=_line_at(raw, nul))
    base = 0
    if codecs.lookup(encoding).name == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        base = len(codecs.BOM_UTF8)
    try:
        text = raw[base:].decode(encoding)
    except UnicodeDecodeError as exc:
        offset = base + exc.start
        line = _line_at(raw, offset)
        raise DataError(f"not valid {encoding} text: byte 0x{raw[offset]:02x} at byte offset {offset} (line {line}) "
                        f"cannot be decoded; save the file as {encoding}", file=str(path), row=line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _line_at(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


# ------------------------------------------------------------------------------- record location
@dataclass(frozen=True)
class _Records:
    """Every record (logical row, header and blank lines included) of a text, in order."""

    line: np.ndarray     # int64 [R]: 1-based line where the record starts
    fields: np.ndarray   # int64 [R]: number of fields
    blank: np.ndarray    # bool  [R]: the record is an empty or whitespace-only line
    header: list[str]    # fields of the first record


def _line_stats(buf: np.ndarray, sep_byte: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per physical line of ``buf`` (UTF-8 bytes, LF endings): separator count and blankness."""
    ends = np.flatnonzero(buf == _NEWLINE)
    if len(buf) and buf[-1] != _NEWLINE:
        ends = np.append(ends, len(buf))
    n_lines = len(ends)

    def per_line(mask: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(ends, np.flatnonzero(mask)), minlength=n_lines)

    content = (buf != _NEWLINE) & (buf != _TAB) & (buf != _SPACE)
    blank = per_line(content) == 0
    seps = per_line(buf == sep_byte) if sep_byte is not None else np.zeros(n_lines, dtype=np.int64)
    return seps, blank


def _scan_plain(text: str, sep: str) -> _Records:
    """Records of a text where each record is one line (no quoting): fully vectorised."""
    buf = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    seps, blank = _line_stats(buf, ord(sep))
    first = text.split("\n", 1)[0]
    return _Records(line=np.arange(1, len(seps) + 1, dtype=np.int64), fields=seps + 1, blank=blank,
                    header=first.split(sep))


def _scan_quoted(text: str, sep: str, path: Path) -> _Records:
    """Records of a text with quoted fields (which may span lines), with :mod:`csv` in strict mode."""
    buf = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _, line_blank = _line_stats(buf, None)
    reader = csv.reader(io.StringIO(text), delimiter=sep, quotechar=QUOTE, doublequote=True, strict=True)
    starts: list[int] = []
    counts: list[int] = []
    header: list[str] = []
    consumed = 0
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, len(text) + 1))  # a long field is not malformed (default limit: 128 KiB)
    try:
        for record in reader:
            if not starts:
                header = record
            starts.append(consumed + 1)
            counts.append(len(record))
            consumed = reader.line_num
    except csv.Error as exc:
        raise DataError(f"malformed CSV in the record starting on this line: {exc} (check the quoting)",
                        file=str(path), row=consumed + 1) from None
    finally:
        csv.field_size_limit(old_limit)
    line = np.asarray(starts, dtype=np.int64)
    return _Records(line=line, fields=np.asarray(counts, dtype=np.int64), blank=line_blank[line - 1],
                    header=header)


# ------------------------------------------------------------------------------------- the reader
def read_delimited(path: Path, columns: Mapping[str, str], *, sep: str = ",", header: bool = True,
                   field_names: Optional[Sequence[str]] = None, encoding: str = "utf-8", quoting: bool = True,
                   allow_empty: bool = False) -> pd.DataFrame:
    """Read a delimited text file into a table of text columns plus ``row``.

    Args:
        path: the file.
        columns: output column → source column (a header name, or one of ``field_names``).
        sep: the field separator (one character).
        header: whether the first line names the columns. Without one, ``field_names`` names every field
            and fixes how many fields each line must have.
        field_names: the fields of a header-less file, in order.
        encoding: the text encoding (``utf-8`` accepts a byte-order mark).
        quoting: whether ``"`` quotes fields (off for files whose values contain stray quotes).
        allow_empty: accept a file without data rows (a 0-row table) instead of raising.

    Returns:
        One ``str`` column per key of ``columns`` (in that order) and ``row`` (int64, 1-based line of
        the source file where the record starts, header counted).
    """
    text = decode_text(read_bytes(path), path, encoding)
    if not text.strip():
        raise DataError("no data rows: the file is empty", file=str(path))
    records = _locate_records(text, sep, quoting, path)
    names = list(records.header) if header else list(field_names or ())
    if not names:
        raise DataError("the first line (the header) is empty", file=str(path), row=1)
    positions = column_positions(names, columns, path, header, sep)
    _check_field_counts(records, len(names), path, header)
    data_mask = ~records.blank
    if header:
        data_mask[0] = False
    if not data_mask.any():
        if allow_empty:
            return empty_table(columns)
        raise DataError("no data rows" + (" (only a header)" if header else ""), file=str(path))
    frame = _parse_values(text, sep, quoting, len(names), sorted(set(positions.values())), path)
    if len(frame) != len(records.line):
        raise DataError(f"could not split the file into rows consistently ({len(frame)} rows parsed, "
                        f"{len(records.line)} records found): check the quoting", file=str(path))
    kept = frame.loc[data_mask]
    out = pd.DataFrame({name: kept[pos].to_numpy() for name, pos in positions.items()}, dtype="str")
    out["row"] = records.line[data_mask]
    return out


def _locate_records(text: str, sep: str, quoting: bool, path: Path) -> _Records:
    if len(sep) == 1 and sep.isascii() and (not quoting or QUOTE not in text):
        return _scan_plain(text, sep)
    if not quoting:  # a non-ASCII separator without quoting: split lines in Python (rare)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return _Records(line=np.arange(1, len(lines) + 1, dtype=np.int64),
                        fields=np.array([ln.count(sep) + 1 for ln in lines], dtype=np.int64),
                        blank=np.array([not ln.strip() for ln in lines], dtype=bool),
                        header=lines[0].split(sep) if lines else [])
    return _scan_quoted(text, sep, path)


def column_positions(names: Sequence[str], columns: Mapping[str, str], path: Path, header: bool,
                      sep: Optional[str] = None) -> dict[str, int]:
    """Output column → field position; a DataError names a missing or ambiguous column."""
    positions: dict[str, int] = {}
    for out_name, source in columns.items():
        hits = [i for i, name in enumerate(names) if name == source]
        if not hits:
            found = ", ".join(repr(n) for n in names[:50]) + (f", ... ({len(names)} in all)" if len(names) > 50 else "")
            where = "columns found in the header" if header else "fields"
            raise DataError(f"missing column '{source}' (needed for {out_name}); {where}: {found}"
                            f"{_column_hint(names, source, sep) if header else ''}", file=str(path), column=source)
        if len(hits) > 1:
            raise DataError(f"column '{source}' appears {len(hits)} times in the header", file=str(path),
                            column=source)
        positions[out_name] = hits[0]
    return positions


_OTHER_SEPARATORS = {",": "','", ";": "';'", "\t": "a tab ('\\t')", "|": "'|'"}


def _column_hint(names: Sequence[str], wanted: str, sep: Optional[str]) -> str:
    """A hint for a missing column: another separator in a one-field header, or a near-identical name."""
    if sep is not None and len(names) == 1:
        for other, label in _OTHER_SEPARATORS.items():
            if other != sep and other in names[0]:
                shown = "a tab ('\\t')" if sep == "\t" else repr(sep)
                return (f"; the header is one field containing {label}: the file's separator is probably not "
                        f"{shown} (set data.tabular.sep)")
    near = [n for n in names if n.strip().casefold() == wanted.strip().casefold() and n != wanted]
    if near:
        return f"; did you mean {near[0]!r}? (names must match exactly, spaces and case included)"
    return ""


def _check_field_counts(records: _Records, expected: int, path: Path, header: bool) -> None:
    bad = np.flatnonzero((records.fields != expected) & ~records.blank)
    if len(bad) == 0:
        return
    first = bad[0]
    what = "the header has" if header else "the format has"
    more = f"; {len(bad)} malformed lines in all" if len(bad) > 1 else ""
    raise DataError(f"malformed line: expected {expected} fields ({what} {expected}), found {records.fields[first]}"
                    f"{more} (check the separator and quoting)", file=str(path), row=int(records.line[first]))


def _parse_values(text: str, sep: str, quoting: bool, n_fields: int, usecols: list[int], path: Path) -> pd.DataFrame:
    """Split the values with pandas' C parser: every record (blank lines included) becomes one row."""
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, header=None, names=list(range(n_fields)), usecols=usecols,
                           dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                           quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE, quotechar=QUOTE,
                           engine="c", on_bad_lines="error")
    except (pd.errors.ParserError, ValueError) as exc:  # the record scan should have caught these
        raise DataError(f"malformed file: {exc}".strip(), file=str(path)) from None


def delimited_header(path: Path, *, sep: str = ",", encoding: str = "utf-8", quoting: bool = True) -> list[str]:
    """The column names of a delimited file's header (its first record), as :func:`read_delimited` sees them."""
    text = decode_text(read_bytes(path), path, encoding)
    if not text.strip():
        raise DataError("no data rows: the file is empty", file=str(path))
    return list(_locate_records(text, sep, quoting, path).header)

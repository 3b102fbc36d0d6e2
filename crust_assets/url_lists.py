"""Read an input list of profile URLs and turn it into valid URLs plus rejects.

Input contract (``<data>/input/<YYYY-MM-DD>.csv``):

* A CSV with a header row that has a URL column (matched after trimming,
  case-insensitively, in any position), or
* no header: one URL per line. Each whole line is the value, so an unquoted URL
  containing commas stays one value.

The URL column is the one named by ``CRUST_URL_COLUMN`` when that is set (and then
it must exist), else ``profile_url``, else the first of the common aliases
(``URL_COLUMN_ALIASES``) found, with a note saying which. "Has a header" means: the
first non-blank line, parsed as CSV, has such a cell. Otherwise a first line that
looks like a URL, or has a single cell, starts a header-less list; a first line
with several cells and no URL column is an error (a header with the column
misnamed: guessing which column holds the URLs would enrich, and bill, the wrong
thing).

Every other column is the user's and is kept, as text, row for row
(``UrlList.cells``): a CRM export goes in, and each of its rows comes back with
its own columns (``enriched_list``). Names are kept exactly as written; a blank
name becomes ``column_<position>``, a repeated one ``<name>_<k>``, and one that
clashes with a column the pipeline adds (``profile_url``, ``line_number``,
``status``, ...) ``input_<name>``, each with a note. A short row's missing cells
are null; a row with more cells than the header keeps the extra ones, CSV-encoded,
in the column ``extra_cells`` (added only when such a row exists), so nothing is
silently dropped.

Every data line is a row, including blank ones (they become ``empty`` rejects, so
a user can see them), except that a final newline does not start a row, blank
lines before a header are not data, and a file with nothing but blank lines is an
empty list like an empty file (editors save "empty" files as a lone newline).

Each row keeps its 1-based line number in the file (the first line of a record when
a quoted value spans lines), which is what a user needs to find it in an editor.

A quote that is never closed is an error naming the line where it opens. CSV lets a
quoted value run over many lines, so the only other reading of such a file is "the
rest of the file is one value", which silently drops every later row.

Bounded input (:class:`InputLimits`): the file's size is checked against a cap
before a byte is read, the file is read as a stream (line by line, rows collected
into Arrow arrays every ``_CHUNK_ROWS`` rows, so a row costs its bytes plus 12, not
a Python object), and a list may hold at most a capped number of rows. A value
longer than any URL the normaliser accepts (``MAX_URL_LENGTH``) is kept as its first
``MAX_STORED_VALUE_CHARS`` characters plus ``…[truncated N characters]``: it can only
be a ``too_long`` reject, and a 100 MB cell must not be stored whole. A file that
looks like UTF-16 or UTF-32 without a byte-order mark is an encoding error, not a
reject per line.

The stdlib ``csv`` module parses the lines that hold a double quote, rather than
``pyarrow.csv``: the reader must report file line numbers and keep blank lines as
rows, which ``pyarrow.csv`` does neither of. A line without any double quote skips
even that (a record is then the line, a field what lies between commas).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.profile_urls import MAX_URL_LENGTH, RejectReason, normalize_profile_urls

__all__ = [
    "DEFAULT_INPUT_MAX_BYTES",
    "DEFAULT_INPUT_MAX_ROWS",
    "EXTRA_CELLS_COLUMN",
    "LINES_FILE",
    "LINES_SCHEMA",
    "MAX_STORED_VALUE_CHARS",
    "PROFILE_URL_COLUMN",
    "RESERVED_COLUMNS",
    "URL_COLUMN_ALIASES",
    "InputLimits",
    "PreparedUrlList",
    "UrlList",
    "UrlListError",
    "check_input_size",
    "parse_url_list",
    "prepare_url_list",
    "read_url_list",
    "read_url_list_stream",
    "truncated_value",
]

PROFILE_URL_COLUMN = "profile_url"
#: 512 MiB: far above any list a credit budget allows, far below what breaks a worker.
DEFAULT_INPUT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_INPUT_MAX_ROWS = 5_000_000
#: Characters of an over-long value that are kept (the rest is cut, with a marker).
MAX_STORED_VALUE_CHARS = MAX_URL_LENGTH
BYTES_SETTING = "CRUST_INPUT_MAX_BYTES"
ROWS_SETTING = "CRUST_INPUT_MAX_ROWS"
URL_COLUMN_SETTING = "CRUST_URL_COLUMN"
#: Header names other tools give the profile URL column, in the order they are tried.
URL_COLUMN_ALIASES = ("linkedin_url", "linkedin", "person_linkedin_url", "profile")
EXTRA_CELLS_COLUMN = "extra_cells"
#: Columns the pipeline adds to each line (here and in enriched_list): a user column with one of
#: these names is stored as ``input_<name>``.
RESERVED_COLUMNS = frozenset(
    {
        "line_number",
        "raw_value",
        "profile_url",
        "reason",
        "message",
        "duplicate_of_line",
        "status",
        "detail",
        "date",
        "business_emails",
        "personal_emails",
        "phone_numbers",
        "primary_business_email",
        "matched",
        "crustdata_person_id",
        "batch_id",
        "enriched_at",
        EXTRA_CELLS_COLUMN,
    }
)
#: The per-line staging file's name, under staging/contact_url_list/date=<date>/.
LINES_FILE = "lines.parquet"
#: Field metadata key holding a user column's header as written in the file.
HEADER_KEY = b"crust:header"

RAW_SCHEMA = pa.schema([pa.field("line_number", pa.int64()), pa.field("raw", pa.string())])
VALID_SCHEMA = pa.schema(
    [pa.field("profile_url", pa.string()), pa.field("line_number", pa.int64())]
)
REJECTS_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64()),
        pa.field("raw_value", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("message", pa.string()),
    ]
)

#: The per-line table after the user's columns: every input line, valid or not.
LINES_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64()),
        pa.field("raw_value", pa.string()),
        pa.field("profile_url", pa.string()),  # normalised; null when rejected
        pa.field("reason", pa.string()),  # a RejectReason value; null when valid
        pa.field("message", pa.string()),
        pa.field("duplicate_of_line", pa.int64()),  # the first line with the same URL
    ]
)

_CHUNK_ROWS = 65_536
_SNIFF_BYTES = 4096
_LINE_BREAK_BYTES_RE = re.compile(rb"\r\n|\r|\n")
# A first line that is data, not a header: a scheme, "www." or a LinkedIn host.
_URL_LIKE_RE = re.compile(r"^\W*(?:[a-z][a-z0-9+.\-]*://|www\.|[\w.\-]*linkedin\.)", re.I)


class UrlListError(ValueError):
    """The input file cannot be read as a URL list. The message names the file."""


@dataclass(frozen=True)
class InputLimits:
    """How big an input list may be; each is a setting (see ``BYTES_SETTING``/``ROWS_SETTING``)."""

    max_bytes: int = DEFAULT_INPUT_MAX_BYTES
    max_rows: int = DEFAULT_INPUT_MAX_ROWS


@dataclass(frozen=True, eq=False)
class UrlList:
    """Raw values of one input file, in file order, before any normalisation."""

    path: str
    #: ``line_number`` (int64, 1-based line in the file), ``raw`` (string, as written,
    #: or cut with :func:`truncated_value` when longer than ``MAX_URL_LENGTH``).
    table: pa.Table
    has_header: bool
    #: The header's cells as written (trimmed), or ``()`` without a header.
    columns: tuple[str, ...] = ()
    #: 0-based position of the ``profile_url`` column, ``None`` without a header.
    profile_url_column: int | None = None
    #: Line number -> length in characters of each value that was cut.
    truncated_lengths: Mapping[int, int] = field(default_factory=dict)
    #: Every column of the header, as text, row for row with `table` (stored names, the header
    #: as written in each field's metadata; the URL column holds `raw`), ``None`` without one.
    cells: pa.Table | None = None
    #: What a user should know about the header: renamed columns, the URL column's alias.
    notes: tuple[str, ...] = ()
    #: Rows with fewer cells than the header (the missing ones are null), and with more (the
    #: extra ones are kept in ``extra_cells``).
    short_rows: int = 0
    long_rows: int = 0

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


@dataclass(frozen=True, eq=False)
class PreparedUrlList:
    """Unique valid URLs to enrich, and every rejected row with its reason."""

    #: ``profile_url`` (canonical, unique), ``line_number`` of its first occurrence.
    valid: pa.Table
    #: ``line_number``, ``raw_value``, ``reason`` (a RejectReason value), ``message``.
    rejects: pa.Table
    rows_read: int
    #: Rows whose canonical URL already appeared on an earlier line (not rejects).
    duplicates: int
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    #: Every input line in file order: the user's columns, then ``LINES_SCHEMA``.
    lines: pa.Table | None = None

    @property
    def valid_count(self) -> int:
        return self.valid.num_rows

    @property
    def rejected(self) -> int:
        return self.rejects.num_rows

    @property
    def counts(self) -> dict[str, int | dict[str, int]]:
        """The figures for asset metadata; ``rows_read = valid + duplicates + rejected``."""
        return {
            "rows_read": self.rows_read,
            "valid": self.valid_count,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
        }


# ---- entry points ---------------------------------------------------------------------------
def read_url_list(
    path: str | os.PathLike[str],
    limits: InputLimits | None = None,
    *,
    url_column: str | None = None,
) -> UrlList:
    """Read an input CSV on the local disk into raw values with their line numbers.

    Raises :class:`UrlListError` (naming the file) when the file is missing, over a limit,
    not UTF-8 (with the byte offset and line of the first bad byte), has a header without a
    ``profile_url`` column, or has a quote that is never closed.
    """
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        return read_url_list_stream(
            name, lambda: open(name, "rb"), size=size, limits=limits, url_column=url_column
        )
    except OSError as exc:
        raise UrlListError(f"{name}: cannot read the file: {exc.strerror or exc}") from exc


def parse_url_list(name: str, data: bytes, limits: InputLimits | None = None) -> UrlList:
    """Parse an input CSV's bytes, as :func:`read_url_list` does; `name` is what errors show."""
    return read_url_list_stream(name, lambda: io.BytesIO(data), size=len(data), limits=limits)


def read_url_list_stream(
    name: str,
    opener: Callable[[], BinaryIO],
    *,
    size: int,
    limits: InputLimits | None = None,
    url_column: str | None = None,
) -> UrlList:
    """Read a list from any binary stream (a local file, an object in a bucket).

    `size` is the file's size from a stat or a listing: it is checked against the limit
    before `opener` is called. `opener` may be called a second time, only to locate an
    invalid UTF-8 byte for the error message. `url_column` (``CRUST_URL_COLUMN``) names the
    URL column; by default ``profile_url`` or one of ``URL_COLUMN_ALIASES``.
    """
    limits = limits or InputLimits()
    check_input_size(name, size, limits.max_bytes)
    with opener() as stream:
        head = stream.read(_SNIFF_BYTES)
        _check_encoding(name, head)
        stream.seek(0)
        capped = io.BufferedReader(_CappedReader(name, stream, limits.max_bytes), 1 << 16)
        text = io.TextIOWrapper(capped, encoding="utf-8-sig", newline="")
        try:
            return _read_lines(name, iter(text), limits.max_rows, url_column)
        except UnicodeDecodeError:
            pass
    with opener() as stream:
        raise _utf8_error(name, stream)


def check_input_size(name: str, size: int, max_bytes: int) -> None:
    """Refuse a file over the cap before reading it: the error says how to get past it."""
    if size > max_bytes:
        raise UrlListError(
            f"{name}: the file is {size:,} bytes ({size / 2**20:,.1f} MiB), over the input "
            f"limit of {max_bytes:,} bytes ({max_bytes / 2**20:,.1f} MiB); split the list, or "
            f"raise the limit with {BYTES_SETTING}"
        )


class _CappedReader(io.RawIOBase):
    """`stream`, refusing to deliver more than `limit` bytes in all.

    The size is checked before reading, but a file can grow between the stat and the read (a
    list still being uploaded or appended to): what is read is bounded, not just what was seen.
    """

    def __init__(self, name: str, stream: BinaryIO, limit: int) -> None:
        self.name, self.stream, self.limit = name, stream, limit
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.stream.read(len(buffer))
        self.delivered += len(data)
        if self.delivered > self.limit:
            raise UrlListError(
                f"{self.name}: the file grew past the input limit of {self.limit:,} bytes "
                f"while it was read; split the list, or raise the limit with {BYTES_SETTING}"
            )
        buffer[: len(data)] = data
        return len(data)


def truncated_value(value: str, keep: int = MAX_STORED_VALUE_CHARS) -> str:
    """The first `keep` characters of `value`, and a marker saying how many were cut."""
    return f"{value[:keep]}…[truncated {len(value) - keep} characters]"


# ---- encodings ------------------------------------------------------------------------------
def _check_encoding(name: str, head: bytes) -> None:
    """UTF-16 (with or without a byte-order mark) and UTF-32 are named, not read as UTF-8.

    Without a BOM such a file is valid UTF-8 (NUL is a character), so each line would become
    a `control_character` reject. Text in a CSV never holds NULs every other byte.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UrlListError(
            f"{name}: the file is UTF-16 (byte-order mark at byte offset 0); save it as UTF-8 CSV"
        )
    guess = _guess_wide_encoding(head)
    if guess:
        raise UrlListError(
            f"{name}: the file looks like {guess} without a byte-order mark (NUL bytes in the "
            f"first {len(head):,} bytes: {head.count(0):,}); save it as UTF-8 CSV"
        )


def _guess_wide_encoding(head: bytes) -> str | None:
    """The likely encoding when NULs fill a large share of the first bytes, else None."""
    if len(head) < 4 or head.count(0) < len(head) // 5:
        return None
    even, odd = head[0::2], head[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.6 and even_nul < 0.1:
        return "UTF-16-LE"
    if even_nul > 0.6 and odd_nul < 0.1:
        return "UTF-16-BE"
    return "UTF-32 or another multi-byte encoding"


def _utf8_error(name: str, stream: BinaryIO) -> UrlListError:
    """Find the first invalid UTF-8 byte, reading block by block, and say where it is."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    base = breaks = 0  # bytes before `block`; line breaks in them
    after_cr = False  # the previous block ended with CR (a CRLF may straddle two blocks)
    while True:
        block = stream.read(1 << 20)
        pending = decoder.getstate()[0]
        try:
            decoder.decode(block, final=not block)
        except UnicodeDecodeError as exc:
            offset = base - len(pending) + exc.start
            bad = (pending + block)[exc.start]
            line = breaks + _count_breaks(block[: max(0, offset - base)], after_cr) + 1
            return UrlListError(
                f"{name}: not valid UTF-8: byte 0x{bad:02X} at byte offset {offset} "
                f"(line {line}); save the file as UTF-8"
            )
        if not block:  # the stream decoded after all (it changed since): say so plainly
            return UrlListError(f"{name}: not valid UTF-8; save the file as UTF-8")
        breaks += _count_breaks(block, after_cr)
        after_cr = block.endswith(b"\r")
        base += len(block)


def _count_breaks(data: bytes, after_cr: bool) -> int:
    count = len(_LINE_BREAK_BYTES_RE.findall(data))
    return count - 1 if after_cr and data.startswith(b"\n") else count


# ---- lines and records ----------------------------------------------------------------------
class _Rows:
    """Rows collected in Python lists, moved to Arrow every `_CHUNK_ROWS` rows.

    With a header of `width` columns each row's cells are kept too: one string array per
    column per chunk (the URL column is `raw` itself, not a second copy), short rows padded
    with nulls, the cells past the header CSV-encoded into one extra value.
    """

    def __init__(
        self, name: str, max_rows: int, width: int = 0, url_column: int | None = None
    ) -> None:
        self.name, self.max_rows = name, max_rows
        self.width, self.url_column = width, url_column
        self.numbers: list[int] = []
        self.values: list[str] = []
        self.records: list[list[str]] = []
        self.truncated: dict[int, int] = {}
        self.short = self.long = 0
        self._chunks: list[pa.RecordBatch] = []
        self._cells: list[list[pa.Array | None]] = []
        self._extra: list[pa.Array] = []
        self._count = 0

    def add(self, number: int, value: str, cells: list[str] | None = None) -> None:
        """One row; a value longer than any URL the normaliser accepts is cut."""
        if len(value) > MAX_URL_LENGTH:
            self.truncated[number] = len(value)
            value = truncated_value(value)
        self.numbers.append(number)
        self.values.append(value)
        if self.width:
            cells = [] if cells is None or cells == [""] else cells
            if len(cells) != self.width and cells:
                if len(cells) < self.width:
                    self.short += 1
                else:
                    self.long += 1
            self.records.append(cells)
        if len(self.values) >= _CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.values:
            return
        self._count += len(self.values)
        if self._count > self.max_rows:
            raise UrlListError(
                f"{self.name}: more than {self.max_rows:,} rows, the input limit; split the "
                f"list, or raise the limit with {ROWS_SETTING}"
            )
        arrays = [pa.array(self.numbers, pa.int64()), pa.array(self.values, pa.string())]
        self._chunks.append(pa.RecordBatch.from_arrays(arrays, schema=RAW_SCHEMA))
        if self.width:
            self._flush_cells()
        self.numbers.clear()
        self.values.clear()
        self.records.clear()

    def _flush_cells(self) -> None:
        width, records = self.width, self.records
        if all(len(record) == width for record in records):
            columns: list[Sequence[str | None]] = list(zip(*records, strict=True))
        else:
            columns = [
                [record[i] if i < len(record) else None for record in records] for i in range(width)
            ]
        self._cells.append(
            [
                None if i == self.url_column else pa.array(columns[i], pa.string())
                for i in range(width)
            ]
        )
        extra = [_csv_text(r[width:]) if len(r) > width else None for r in records]
        self._extra.append(pa.array(extra, pa.string()))

    def table(self) -> pa.Table:
        self.flush()
        return pa.Table.from_batches(self._chunks, schema=RAW_SCHEMA)

    def cells(self, header: Sequence[str], raw: pa.Table) -> tuple[pa.Table, list[str]]:
        """The user's columns under their stored names, and the notes on renamed ones."""
        names, notes = stored_column_names(header)
        fields, arrays = [], []
        for i, (name, cell) in enumerate(zip(names, header, strict=True)):
            fields.append(pa.field(name, pa.string(), metadata={HEADER_KEY: cell.encode()}))
            if i == self.url_column:
                arrays.append(raw.column("raw"))
            else:
                arrays.append(pa.chunked_array([c[i] for c in self._cells], pa.string()))
        if self.long:
            extra_name = stored_column_names([*header, EXTRA_CELLS_COLUMN], reserved=False)[0][-1]
            fields.append(pa.field(extra_name, pa.string()))
            arrays.append(pa.chunked_array(self._extra, pa.string()))
            notes.append(
                f"{self.long:,} rows have more cells than the header; their extra cells are "
                f"kept, CSV-encoded, in the column {extra_name!r}"
            )
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields)), notes


def _csv_text(cells: Sequence[str]) -> str:
    """Cells as one CSV line (quoted where needed), so a value with a comma stays one."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def stored_column_names(
    header: Sequence[str], *, reserved: bool = True
) -> tuple[list[str], list[str]]:
    """Each header cell's stored name, and a note per renamed one (see the module doc).

    Names are compared trimmed and without case, as DuckDB and most CRMs compare them.
    """
    names: list[str] = []
    notes: list[str] = []
    taken: set[str] = set()
    for position, cell in enumerate(header, 1):
        name, why = cell, ""
        if not cell.strip():
            name, why = f"column_{position}", "has no name"
        elif reserved and cell.strip().lower() in RESERVED_COLUMNS:
            name, why = f"input_{cell.strip()}", "is a name the pipeline adds to each line"
        base, k = name, 2
        while (key := name.strip().lower()) in taken or (reserved and key in RESERVED_COLUMNS):
            name, why = f"{base.strip()}_{k}", why or "repeats an earlier column's name"
            k += 1
        taken.add(key)
        names.append(name)
        if name != cell:
            notes.append(f"column {position} ({cell!r}) {why}: stored as {name!r}")
    return names, notes


def _read_lines(
    name: str, lines: Iterator[str], max_rows: int, url_column: str | None = None
) -> UrlList:
    """Find the header (or its absence), then read every row after it."""
    rows = _Rows(name, max_rows)  # blank lines first: rows of a header-less list
    number = 0
    for line in lines:
        number += 1
        if line.strip():
            break
        _add_line(rows, number, line)
    else:  # empty, or nothing but blank lines (an editor's lone newline)
        return UrlList(name, _Rows(name, max_rows).table(), has_header=False)
    cells, closed = _header_cells(line)
    column, note = _find_url_column(name, number, cells, url_column)
    if column is not None:
        if not closed:
            raise _unclosed_quote(name, number)
        rows = _Rows(name, max_rows, width=len(cells), url_column=column)
        _read_records(name, lines, number, column, rows)
        table = rows.table()
        user_cells, notes = rows.cells(cells, table)
        return UrlList(
            name,
            table,
            has_header=True,
            columns=tuple(c.strip() for c in cells),
            profile_url_column=column,
            truncated_lengths=rows.truncated,
            cells=user_cells,
            notes=tuple(([note] if note else []) + notes),
            short_rows=rows.short,
            long_rows=rows.long,
        )
    if len(cells) > 1 and not _URL_LIKE_RE.match(line):
        wanted = (
            f"{url_column!r} column ({URL_COLUMN_SETTING})"
            if url_column
            else f"{PROFILE_URL_COLUMN} column (nor {', '.join(URL_COLUMN_ALIASES)})"
        )
        raise UrlListError(
            f"{name}: no {wanted} in the header on line {number}; "
            f"columns found: {[c.strip() for c in cells]}"
        )
    # No header: every line (blank ones included) is one value, as written.
    _add_line(rows, number, line)
    for later, text in enumerate(lines, number + 1):
        _add_line(rows, later, text)
    return UrlList(name, rows.table(), has_header=False, truncated_lengths=rows.truncated)


def _find_url_column(
    name: str, number: int, cells: Sequence[str], configured: str | None
) -> tuple[int | None, str | None]:
    """The URL column's position in a header (None: not a header), and a note on an alias."""
    keys = [cell.strip().lower() for cell in cells]
    wanted = [configured.strip().lower()] if configured else [PROFILE_URL_COLUMN]
    if not configured:
        wanted += list(URL_COLUMN_ALIASES)
    for key in wanted:
        if key not in keys:
            continue
        if keys.count(key) > 1:
            raise UrlListError(
                f"{name}: the header on line {number} has several {key} "
                f"columns: {[c.strip() for c in cells]}"
            )
        position = keys.index(key)
        if configured or key == PROFILE_URL_COLUMN:
            return position, None
        return position, (
            f"no {PROFILE_URL_COLUMN} column: the URLs are read from {cells[position].strip()!r} "
            f"(column {position + 1}); set {URL_COLUMN_SETTING} to choose another"
        )
    return None, None


def _add_line(rows: _Rows, number: int, line: str) -> None:
    rows.add(number, line.rstrip("\r\n"))


def _read_records(name: str, lines: Iterator[str], header: int, column: int, rows: _Rows) -> None:
    """Add the `column` value of each record after the header line (empty if the row is short).

    Lines come in batches: a batch without a double quote is split at commas (a record is
    then a line, a field what lies between commas, exactly as the csv module would read it,
    at a fraction of the cost); any other batch goes through the csv module.
    """
    number = header  # lines read so far
    while batch := list(itertools.islice(lines, _CHUNK_ROWS)):
        if any('"' in line for line in batch):
            number += _read_csv_batch(name, batch, lines, number, column, rows)
            continue
        first, number = number + 1, number + len(batch)
        for line_number, line in enumerate(batch, first):
            cells = line.rstrip("\r\n").split(",")
            rows.add(line_number, cells[column] if column < len(cells) else "", cells)


def _read_csv_batch(
    name: str, batch: list[str], lines: Iterator[str], before: int, column: int, rows: _Rows
) -> int:
    """Read the records that start in `batch` (the last may go on into `lines`); lines used."""
    source = _Source(batch, lines)
    reader = csv.reader(source)
    used = 0
    while used < len(batch):
        start = before + used + 1
        try:
            cells = next(reader)
        except csv.Error as exc:
            raise UrlListError(f"{name}: line {start}: not valid CSV: {exc}") from None
        if source.ran_out:
            raise _unclosed_quote(name, start)
        used = reader.line_num
        rows.add(start, cells[column] if column < len(cells) else "", cells)
    return used


class _Source:
    """Lines for the csv module: `first`, then `rest`; notes when `rest` has run out.

    The csv module asks for another line only to start a record or while a quoted value is
    open, so running out in the middle of a record is exactly an unclosed quote.
    """

    def __init__(self, first: Iterable[str], rest: Iterator[str]) -> None:
        self.first, self.rest = first, rest
        self.ran_out = False

    def __iter__(self) -> Iterator[str]:
        yield from self.first
        # Not `yield from`: closing this generator would close `rest`, the open file.
        for more in self.rest:  # noqa: UP028
            yield more
        self.ran_out = True


def _header_cells(line: str) -> tuple[list[str], bool]:
    """The first non-blank line's cells, and whether its quotes are all closed."""
    source = _Source((line,), iter(()))
    cells = next(csv.reader(source), [])
    return cells, not source.ran_out


def _unclosed_quote(name: str, number: int) -> UrlListError:
    return UrlListError(
        f'{name}: line {number}: a quoted value opens on this line with " and is never closed, '
        f"so every later line would be read as part of it; remove the stray quote, or close it "
        f'(a quote inside a quoted value is written "")'
    )


# ---- preparing ------------------------------------------------------------------------------
def prepare_url_list(table: pa.Table | UrlList) -> PreparedUrlList:
    """Normalise every raw value, keep the first occurrence of each valid URL.

    ``table`` is a :class:`UrlList` or its table (``raw``, optional ``line_number``;
    without it rows are numbered 1..n). Duplicates are counted, not rejected: the
    same person twice in a list is not an error, but must be enriched (and billed)
    once.
    """
    truncated: Mapping[int, int] = {}
    cells: pa.Table | None = None
    if isinstance(table, UrlList):
        table, truncated, cells = table.table, table.truncated_lengths, table.cells
    raw = table.column("raw")
    if "line_number" in table.column_names:
        line_number = table.column("line_number").cast(pa.int64())
    else:
        line_number = pa.chunked_array([pa.array(range(1, table.num_rows + 1), pa.int64())])
    normalized = normalize_profile_urls(raw, include_messages=True)

    valid_mask = pc.is_valid(normalized.column("profile_url"))
    valid, codes = _first_occurrences(normalized.column("profile_url"), line_number)
    rejects = _rejects(line_number, normalized, pc.invert(valid_mask), truncated)
    return PreparedUrlList(
        valid=valid,
        rejects=rejects,
        rows_read=table.num_rows,
        duplicates=(pc.sum(valid_mask).as_py() or 0) - valid.num_rows,
        rejected_by_reason=_count_reasons(rejects),
        lines=_lines(
            cells, line_number, normalized, valid.column("line_number").take(codes), truncated
        ),
    )


def _lines(
    cells: pa.Table | None,
    line_number: pa.ChunkedArray,
    normalized: pa.Table,
    first: pa.ChunkedArray,
    truncated: Mapping[int, int],
) -> pa.Table:
    """Every line: the user's columns, then ``LINES_SCHEMA``; `first` is each line's first line
    with the same URL (null when rejected), so a duplicate names the line it repeats."""
    urls = normalized.column("profile_url")
    duplicate_of = pc.if_else(pc.equal(first, line_number), None, first)
    reasons = normalized.column("reject_reason")
    messages = normalized.column("reject_message")
    if truncated:
        messages = _explain_truncated(line_number, messages.combine_chunks(), truncated)
    fixed = pa.Table.from_arrays(
        [line_number, normalized.column("raw"), urls, reasons, messages, duplicate_of],
        schema=LINES_SCHEMA,
    )
    if cells is None:
        return fixed
    for field_, column in zip(fixed.schema, fixed.columns, strict=True):
        cells = cells.append_column(field_, column)
    return cells


def _first_occurrences(
    urls: pa.ChunkedArray, line_number: pa.ChunkedArray
) -> tuple[pa.Table, pa.ChunkedArray]:
    """Each distinct URL once, in the order of its first line, with that line's number; and
    each row's position in that table (null for a null URL), which finds a duplicate's first line.

    A dictionary encoding numbers the distinct values in order of first appearance, so a
    row is a first occurrence exactly where the running maximum of those numbers grows.
    This needs a hash of the distinct values only: a group-by over millions of rows took
    four times the memory of the URLs themselves.
    """
    encoded = pc.dictionary_encode(urls)
    if encoded.num_chunks == 0 or len(encoded) == 0:
        return VALID_SCHEMA.empty_table(), pa.chunked_array([pa.nulls(len(urls), pa.int32())])
    codes = pa.chunked_array([chunk.indices for chunk in encoded.chunks], pa.int32())
    running_max = pc.cumulative_max(pc.fill_null(codes, -1))
    previous = pa.chunked_array([pa.array([-1], pa.int32()), *running_max[:-1].chunks])
    first = pc.greater(running_max, previous)
    dictionary = encoded.chunk(encoded.num_chunks - 1).dictionary
    valid = pa.Table.from_arrays(
        [dictionary, line_number.filter(first).combine_chunks()], schema=VALID_SCHEMA
    )
    return valid, codes


def _rejects(
    line_number: pa.ChunkedArray,
    normalized: pa.Table,
    mask: pa.ChunkedArray,
    truncated: Mapping[int, int],
) -> pa.Table:
    """The rejected rows; a cut value's message gives the length it had in the file."""
    numbers = line_number.filter(mask).combine_chunks()
    messages = normalized.column("reject_message").filter(mask).combine_chunks()
    if truncated:
        messages = _explain_truncated(numbers, messages, truncated)
    return pa.Table.from_arrays(
        [
            numbers,
            normalized.column("raw").filter(mask),
            normalized.column("reject_reason").filter(mask),
            messages,
        ],
        schema=REJECTS_SCHEMA,
    )


def _explain_truncated(
    numbers: pa.Array | pa.ChunkedArray, messages: pa.Array, truncated: Mapping[int, int]
) -> pa.Array:
    """A cut value's message gives the length it had in the file."""
    cut = pc.is_in(numbers, value_set=pa.array(list(truncated), pa.int64()))
    if isinstance(cut, pa.ChunkedArray):
        cut = cut.combine_chunks()
    explained = [
        f"value has {truncated[n]:,} characters; the limit is {MAX_URL_LENGTH:,} "
        f"(stored cut to its first {MAX_STORED_VALUE_CHARS:,})"
        for n in numbers.filter(cut).to_pylist()
    ]
    return pc.replace_with_mask(messages, cut, pa.array(explained, pa.string()))


def _count_reasons(rejects: pa.Table) -> dict[str, int]:
    by_reason = {
        row["values"]: row["counts"]
        for row in pc.value_counts(rejects.column("reason")).to_pylist()
        if row["values"] is not None
    }
    return {r.value: by_reason[r.value] for r in RejectReason if r.value in by_reason}

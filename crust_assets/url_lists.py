"""Read an input list of profile URLs and turn it into valid URLs plus rejects.

Input contract (``<data>/input/<YYYY-MM-DD>.csv``):

* A CSV with a header row that has a ``profile_url`` column (matched after
  trimming, case-insensitively, in any position; other columns are ignored), or
* no header: one URL per line. Each whole line is the value, so an unquoted URL
  containing commas stays one value.

"Has a header" means: the first non-blank line, parsed as CSV, has a cell equal to
``profile_url``. Otherwise a first line that looks like a URL, or has a single cell,
starts a header-less list; a first line with several cells and no ``profile_url``
is an error (a header with the column misnamed: guessing which column holds the
URLs would enrich, and bill, the wrong thing).

Every data line is a row, including blank ones (they become ``empty`` rejects, so
a user can see them), except that a final newline does not start a row, blank
lines before a header are not data, and a file with nothing but blank lines is an
empty list like an empty file (editors save "empty" files as a lone newline).

Each row keeps its 1-based line number in the file (the first line of a record when
a quoted value spans lines), which is what a user needs to find it in an editor.

The stdlib ``csv`` module is used rather than ``pyarrow.csv``: the reader must
report file line numbers and keep blank lines as rows, which ``pyarrow.csv`` does
neither of. A file without any double quote skips even that (a record is then a
line, a field what lies between commas): 100,000 lines read in about 0.1 s, and
in about 0.2-0.3 s through the csv module.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.profile_urls import RejectReason, normalize_profile_urls

__all__ = [
    "PROFILE_URL_COLUMN",
    "PreparedUrlList",
    "UrlList",
    "UrlListError",
    "prepare_url_list",
    "read_url_list",
]

PROFILE_URL_COLUMN = "profile_url"

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

_LINE_BREAK_BYTES_RE = re.compile(rb"\r\n|\r|\n")
# A first line that is data, not a header: a scheme, "www." or a LinkedIn host.
_URL_LIKE_RE = re.compile(r"^\W*(?:[a-z][a-z0-9+.\-]*://|www\.|[\w.\-]*linkedin\.)", re.I)


class UrlListError(ValueError):
    """The input file cannot be read as a URL list. The message names the file."""


@dataclass(frozen=True, eq=False)
class UrlList:
    """Raw values of one input file, in file order, before any normalisation."""

    path: str
    #: ``line_number`` (int64, 1-based line in the file), ``raw`` (string, as written).
    table: pa.Table
    has_header: bool
    #: The header's cells as written (trimmed), or ``()`` without a header.
    columns: tuple[str, ...] = ()
    #: 0-based position of the ``profile_url`` column, ``None`` without a header.
    profile_url_column: int | None = None

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


def read_url_list(path: str | os.PathLike[str]) -> UrlList:
    """Read an input CSV into raw values with their line numbers.

    Raises :class:`UrlListError` (naming the file) when the file is missing, is not
    UTF-8 (with the byte offset and line of the first bad byte), has a header
    without a ``profile_url`` column, or is not parseable CSV.
    """
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise UrlListError(f"{name}: cannot read the file: {exc.strerror or exc}") from exc
    return parse_url_list(name, data)


def parse_url_list(name: str, data: bytes) -> UrlList:
    """Parse an input CSV's bytes, as :func:`read_url_list` does; `name` is what errors show.

    For lists that do not live on the local disk (an object store): the caller fetches the bytes.
    """
    text = _decode(name, data)
    lines = _split_lines(text)
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one

    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:  # empty, or nothing but blank lines (an editor's lone newline)
        return UrlList(name, _raw_table([], []), has_header=False)
    cells = _parse_first_row(name, lines[first], first + 1)
    keys = [cell.strip().lower() for cell in cells]
    if PROFILE_URL_COLUMN in keys:
        if keys.count(PROFILE_URL_COLUMN) > 1:
            raise UrlListError(
                f"{name}: the header on line {first + 1} has several {PROFILE_URL_COLUMN} "
                f"columns: {[c.strip() for c in cells]}"
            )
        column = keys.index(PROFILE_URL_COLUMN)
        if '"' in text:
            return _read_with_header(name, text, first, cells, column)
        # No quoting anywhere: a record is a line and a field is what lies between
        # commas, exactly as the csv module would read it, at a fraction of the cost.
        body = lines[first + 1 :]
        values = [(line.split(",", column + 1) + [""] * column)[column] for line in body]
        return UrlList(
            name,
            _raw_table(range(first + 2, first + 2 + len(body)), values),
            has_header=True,
            columns=tuple(c.strip() for c in cells),
            profile_url_column=column,
        )
    if len(cells) > 1 and not _URL_LIKE_RE.match(lines[first]):
        raise UrlListError(
            f"{name}: no {PROFILE_URL_COLUMN} column in the header on line {first + 1}; "
            f"columns found: {[c.strip() for c in cells]}"
        )
    # No header: every line (blank ones included) is one value, as written.
    return UrlList(name, _raw_table(range(1, len(lines) + 1), lines), has_header=False)


def _split_lines(text: str) -> list[str]:
    """Split at CRLF, CR or LF (what the csv module accepts), not at other separators."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _decode(name: str, data: bytes) -> str:
    """UTF-8 (an optional BOM is dropped) or a UrlListError saying where it is not."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UrlListError(
            f"{name}: the file is UTF-16 (byte-order mark at byte offset 0); save it as UTF-8 CSV"
        )
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = len(_LINE_BREAK_BYTES_RE.findall(data, 0, offset)) + 1
        raise UrlListError(
            f"{name}: not valid UTF-8: byte 0x{data[offset]:02X} at byte offset {offset} "
            f"(line {line}); save the file as UTF-8"
        ) from None


def _parse_first_row(name: str, line: str, line_number: int) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        raise UrlListError(f"{name}: line {line_number}: not valid CSV: {exc}") from None


def _read_with_header(
    name: str, text: str, header_index: int, cells: list[str], column: int
) -> UrlList:
    """CSV rows after the header; the value of ``column`` (empty if the row is short)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    line_numbers: list[int] = []
    values: list[str] = []
    consumed = 0  # physical lines read so far
    try:
        for row in reader:
            start = consumed + 1
            consumed = reader.line_num
            if start <= header_index + 1:
                continue  # blank lines before the header, and the header itself
            line_numbers.append(start)
            values.append(row[column] if column < len(row) else "")
    except csv.Error as exc:
        raise UrlListError(f"{name}: line {consumed + 1}: not valid CSV: {exc}") from None
    return UrlList(
        name,
        _raw_table(line_numbers, values),
        has_header=True,
        columns=tuple(c.strip() for c in cells),
        profile_url_column=column,
    )


def _raw_table(line_numbers: range | list[int], values: list[str]) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(line_numbers, pa.int64()), pa.array(values, pa.string())], schema=RAW_SCHEMA
    )


def prepare_url_list(table: pa.Table | UrlList) -> PreparedUrlList:
    """Normalise every raw value, keep the first occurrence of each valid URL.

    ``table`` is a :class:`UrlList` or its table (``raw``, optional ``line_number``;
    without it rows are numbered 1..n). Duplicates are counted, not rejected: the
    same person twice in a list is not an error, but must be enriched (and billed)
    once.
    """
    if isinstance(table, UrlList):
        table = table.table
    raw = table.column("raw")
    if "line_number" in table.column_names:
        line_number = table.column("line_number").cast(pa.int64())
    else:
        line_number = pa.chunked_array([pa.array(range(1, table.num_rows + 1), pa.int64())])
    normalized = normalize_profile_urls(raw, include_messages=True)

    valid_mask = pc.is_valid(normalized.column("profile_url"))
    valid_rows = pa.table(
        {
            "profile_url": normalized.column("profile_url"),
            "line_number": line_number,
            "_row": pa.array(range(table.num_rows), pa.int64()),
        }
    ).filter(valid_mask)
    first = valid_rows.group_by("profile_url", use_threads=False).aggregate([("_row", "min")])
    order = pc.sort_indices(first.column("_row_min"))
    first_rows = pc.take(first.column("_row_min"), order)
    valid = pa.table(
        {
            "profile_url": pc.take(normalized.column("profile_url"), first_rows),
            "line_number": pc.take(line_number, first_rows),
        },
        schema=VALID_SCHEMA,
    )

    reject_mask = pc.invert(valid_mask)
    rejects = pa.Table.from_arrays(
        [
            line_number.filter(reject_mask),
            normalized.column("raw").filter(reject_mask),
            normalized.column("reject_reason").filter(reject_mask),
            normalized.column("reject_message").filter(reject_mask),
        ],
        schema=REJECTS_SCHEMA,
    )
    by_reason = {
        row["values"]: row["counts"]
        for row in pc.value_counts(rejects.column("reason")).to_pylist()
        if row["values"] is not None
    }
    ordered = {r.value: by_reason[r.value] for r in RejectReason if r.value in by_reason}
    return PreparedUrlList(
        valid=valid,
        rejects=rejects,
        rows_read=table.num_rows,
        duplicates=valid_rows.num_rows - valid.num_rows,
        rejected_by_reason=ordered,
    )

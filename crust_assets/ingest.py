"""Result files -> `enriched_contacts` record batches at close to pyarrow speed, in constant memory.

Why this module exists: a partition can hold hundreds of thousands of profiles, and turning every
record into a Python object (pydantic model, then a row dict) costs tens of microseconds per
record. The documented envelope form is regular enough for `pyarrow.json` to parse it with an
explicit schema, block by block, and every table column can then be derived with vectorised
`pyarrow.compute` kernels. The asset (`enriched_contacts`, via `ContactsLoader`) and the
`crust-assets ingest` command use the same code.

Correctness comes first, speed second:

* **Identical rows either way.** The client's Python parser (`parse_result_line`) is the
  reference: it accepts both record forms (envelope and flat), bare-string emails, single values
  where lists are expected, and it tells "field absent" (null = not requested) from "present but
  null" ([] = requested, nothing found). The fast path only accepts a part when it can *prove*
  that its output equals the reference's; anything else (flat records, bare strings, single
  values, explicit nulls where absence would mean something else, odd line layout, ...) sends
  the whole part to the reference parser. `crust_assets_tests/test_ingest.py` checks both paths
  give equal tables on the same data.
* **Nothing of a bad part is yielded** (the asset: `verify_first=True`). A part is parsed,
  converted and checked completely before its first batch is handed out (the client verified the
  gzip stream before yielding the part); a part larger than `SPILL_BYTES` of Arrow data is
  buffered in an Arrow IPC temp file, so memory stays bounded. A corrupt line therefore raises
  the client's `ResultParseError` (from the fallback's first pass) before any row of that part
  reaches the caller. `crust-assets ingest` streams instead (`verify_first=False`): its output
  is renamed into place only after the last row, so a failure leaves nothing anyway, and a
  block the fast path cannot prove hands the rest of that part to the reference parser.
* **Constant memory.** Parts are read in newline-aligned blocks of `BLOCK_BYTES` (decompression
  of the next block runs in a helper thread while Arrow parses the current one); nothing holds a
  whole file. Per-job bookkeeping (`JobLedger`) is vectorised with `pyarrow.compute.index_in`.
"""

from __future__ import annotations

import contextlib
import gzip
import queue
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from crust_assets.crustdata import BatchStatus, CrustdataClient, DownloadLimits, parse_result_line
from crust_assets.crustdata.download import open_decoded
from crust_assets.crustdata.records import normalise_result_line
from crust_assets.storage import write_parquet_atomic
from crust_assets.table import (
    EMAIL_TYPE,
    ENRICHED_CONTACTS_SCHEMA,
    record_to_row,
    rows_to_batches,
)

__all__ = [
    "BLOCK_BYTES",
    "ENVELOPE_SCHEMA",
    "SPILL_BYTES",
    "IngestReport",
    "JobLedger",
    "LoadedPart",
    "PartStats",
    "ResultFileError",
    "SeenUrls",
    "coalesce_batches",
    "default_batch_id",
    "empty_batch",
    "in_thread",
    "ingest_files",
    "job_batches",
    "load_part",
    "open_result_file",
]

#: Decompressed bytes per parsed block (~30,000 records); also the read size of the helper thread.
BLOCK_BYTES = 8 * 1024 * 1024
#: Arrow bytes of one part kept in memory before the rest is buffered in an IPC temp file.
SPILL_BYTES = 16 * 1024 * 1024
#: Longest result line read (env CRUST_RESULT_MAX_LINE_BYTES); a job's record is a few KiB.
MAX_LINE_BYTES = DownloadLimits().max_line_bytes
#: Rows per record batch handed to the Parquet writer by `coalesce_batches` (= row group size).
COALESCE_ROWS = 65_536

_EMAILS = pa.list_(EMAIL_TYPE)
_PHONES = pa.list_(pa.string())
# Keys the reference parser also reads (aliases, the flat form's leaves) are declared with the
# `null` type: any non-null value there fails the Arrow parse and sends the part to the reference
# parser; a literal null parses, and the ambiguity scan below decides whether it matters.
_ALIAS = pa.null()
ENVELOPE_SCHEMA = pa.schema(
    [
        pa.field("original_identifier", pa.string()),
        pa.field("internal_id", pa.int64()),
        pa.field("person_id", _ALIAS),
        pa.field("crustdata_person_id", _ALIAS),
        pa.field(
            "data",
            pa.struct(
                [
                    pa.field("business_email", _EMAILS),
                    pa.field(
                        "personal_contact_info",
                        pa.struct(
                            [
                                pa.field("personal_emails", _EMAILS),
                                pa.field("phone_numbers", _PHONES),
                                pa.field("personal_email", _ALIAS),
                                pa.field("phone_number", _ALIAS),
                            ]
                        ),
                    ),
                    pa.field("business_emails", _ALIAS),
                    pa.field("personal_emails", _ALIAS),
                    pa.field("personal_email", _ALIAS),
                    pa.field("phone_numbers", _ALIAS),
                    pa.field("phone_number", _ALIAS),
                    pa.field("internal_id", _ALIAS),
                    pa.field("person_id", _ALIAS),
                    pa.field("crustdata_person_id", _ALIAS),
                ]
            ),
        ),
    ]
)
_PARSE_OPTIONS = pajson.ParseOptions(
    explicit_schema=ENVELOPE_SCHEMA, unexpected_field_behavior="ignore"
)
_READ_OPTIONS = pajson.ReadOptions(use_threads=True, block_size=1024 * 1024)

# Arrow cannot tell `"key": null` from an absent key; the reference parser can (null -> [],
# absent -> None). When a block has a null where the distinction matters, this scan of its raw
# bytes looks for an explicit null of any such key (or of any key written with escapes, which
# could decode to one of them). RE2 (via pyarrow.compute) scans at hundreds of MB/s.
_AMBIGUOUS_NULL = (
    r'"(?:data|business_emails?|personal_contact_info|personal_emails?|phone_numbers?'
    r'|[^"\\]*\\[^"]*)"\s*:\s*null'
)
# What `str.strip()` removes (`str.isspace()`): the reference parser's idea of a blank string.
_PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_JSON_WHITESPACE = b" \t\r\n"
_TIMESTAMP = ENRICHED_CONTACTS_SCHEMA.field("enriched_at").type


class ResultFileError(Exception):
    """A result file given by hand is not a complete gzip/JSONL file (truncated, corrupt)."""


class _NotFast(Exception):
    """Internal: this part is not provably in the documented envelope; use the reference parser."""


# ---- one part -------------------------------------------------------------------------------
@dataclass
class LoadedPart:
    """One part, ready to hand out its rows through `batches()`.

    `mode` is "arrow" (fast path), "python" (the client's record parser) or "arrow+python" (a
    streamed part that switched to the reference parser at a block the fast path could not
    prove); `reason` says why it fell back. `rows` is final once `batches()` is exhausted. The
    stream must stay open until then.
    """

    part: str
    mode: str
    rows: int
    reason: str | None
    _batches: Callable[[LoadedPart], Iterator[pa.RecordBatch]]

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self._batches(self)


def load_part(
    stream: IO[bytes],
    *,
    batch_id: str,
    part: str,
    enriched_at: datetime | None,
    verify_first: bool = True,
    block_bytes: int = BLOCK_BYTES,
    spill_bytes: int = SPILL_BYTES,
    tmp_dir: str | None = None,
    force_python: bool = False,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> LoadedPart:
    """One decompressed, seekable result part as record batches of the table.

    With `verify_first` (the asset), the whole part is read, converted and checked here, before
    any row is handed out: a bad record raises the client's `ResultParseError` (naming the
    line) and a broken gzip stream `ResultFileError` from this call, and a part the fast path
    cannot prove is re-read entirely by the reference parser. Without it (`crust-assets ingest`,
    whose output file is written atomically, so a failure leaves nothing behind anyway), blocks
    stream through as they are converted, and a block the fast path cannot prove hands the rest
    of the part to the reference parser, from that block's first line. `force_python` skips the
    fast path (tests and the benchmark compare the two). A line longer than `max_line_bytes` is
    a `ResultFileError`, raised before more than that much of it is held in memory.
    """
    if not verify_first:
        return LoadedPart(
            part,
            "python" if force_python else "arrow",
            0,
            "forced" if force_python else None,
            lambda loaded: _streamed(
                loaded,
                stream,
                batch_id=batch_id,
                enriched_at=enriched_at,
                block_bytes=block_bytes,
                fast=not force_python,
                max_line_bytes=max_line_bytes,
            ),
        )
    reason: str | None = "forced" if force_python else None
    if not force_python:
        spool = _Spool(spill_bytes, tmp_dir)
        try:
            # closing(): the reader thread must be stopped before the stream is read again.
            with contextlib.closing(_blocks(stream, block_bytes, part, max_line_bytes)) as blocks:
                for block in blocks:
                    batch, _ = _fast_block(block, batch_id=batch_id, enriched_at=enriched_at)
                    spool.add(batch)
        except _NotFast as why:
            spool.close()
            reason = str(why)
        except BaseException:
            spool.close()
            raise
        else:
            return LoadedPart(part, "arrow", spool.rows, None, lambda _: spool.drain())
    stream.seek(0)
    rows = _check_lines(stream, batch_id=batch_id, part=part, max_line_bytes=max_line_bytes)

    def python_batches(_: LoadedPart) -> Iterator[pa.RecordBatch]:
        stream.seek(0)
        yield from _python_batches(
            stream,
            batch_id=batch_id,
            part=part,
            enriched_at=enriched_at,
            max_line_bytes=max_line_bytes,
        )

    return LoadedPart(part, "python", rows, reason, python_batches)


def _streamed(
    loaded: LoadedPart,
    stream: IO[bytes],
    *,
    batch_id: str,
    enriched_at: datetime | None,
    block_bytes: int,
    fast: bool,
    max_line_bytes: int,
) -> Iterator[pa.RecordBatch]:
    offset = lines = 0
    if fast:
        try:
            blocks = _blocks(stream, block_bytes, loaded.part, max_line_bytes)
            with contextlib.closing(blocks):
                for block in blocks:
                    batch, newlines = _fast_block(block, batch_id=batch_id, enriched_at=enriched_at)
                    offset += len(block)
                    lines += newlines
                    loaded.rows += batch.num_rows
                    yield batch
            return
        except _NotFast as why:
            loaded.reason = str(why)
            loaded.mode = "arrow+python" if offset else "python"
    stream.seek(offset)
    for batch in _python_batches(
        stream,
        batch_id=batch_id,
        part=loaded.part,
        enriched_at=enriched_at,
        first_line=lines + 1,
        max_line_bytes=max_line_bytes,
    ):
        loaded.rows += batch.num_rows
        yield batch


def _python_batches(
    stream: IO[bytes],
    *,
    batch_id: str,
    part: str,
    enriched_at: datetime | None,
    first_line: int = 1,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[pa.RecordBatch]:
    """The reference: the client's record parser and `record_to_row`, line by line."""
    records = _parse_lines(
        stream, batch_id=batch_id, part=part, first_line=first_line, max_line_bytes=max_line_bytes
    )
    yield from rows_to_batches(
        record_to_row(record, batch_id=batch_id, enriched_at=enriched_at) for record in records
    )


def _check_lines(stream: IO[bytes], *, batch_id: str, part: str, max_line_bytes: int) -> int:
    """The reference parser's first pass: check every line, keep nothing; returns records."""
    rows = 0
    try:
        for line_number, line in _lines(stream, part, max_line_bytes):
            if line.strip():
                normalise_result_line(line, batch_id=batch_id, part=part, line_number=line_number)
                rows += 1
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _file_error(part, error) from None
    return rows


def _parse_lines(
    stream: IO[bytes], *, batch_id: str, part: str, first_line: int = 1, max_line_bytes: int
) -> Iterator[Any]:
    try:
        for line_number, line in _lines(stream, part, max_line_bytes, first_line):
            if line.strip():
                yield parse_result_line(line, batch_id=batch_id, part=part, line_number=line_number)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _file_error(part, error) from None


def _lines(
    stream: IO[bytes], part: str, max_line_bytes: int, first_line: int = 1
) -> Iterator[tuple[int, bytes]]:
    """`enumerate(stream)`, but a line is never read past `max_line_bytes` (+ its line break)."""
    line_number = first_line
    while line := stream.readline(max_line_bytes + 1):
        if len(line) - line.endswith(b"\n") > max_line_bytes:
            raise _line_error(part, line_number, max_line_bytes)
        yield line_number, line
        line_number += 1


def _line_error(part: str, line_number: int | None, max_line_bytes: int) -> ResultFileError:
    where = f"line {line_number}" if line_number is not None else "a line"
    return ResultFileError(
        f"{part}: {where} is longer than {max_line_bytes} bytes (limit max_line_bytes; raise "
        "it with CRUST_RESULT_MAX_LINE_BYTES)"
    )


def _file_error(part: str, error: BaseException) -> ResultFileError:
    if isinstance(error, EOFError):
        return ResultFileError(f"{part}: gzip stream is truncated (ends before its end marker)")
    return ResultFileError(f"{part}: gzip stream is corrupt ({type(error).__name__})")


def _read(stream: IO[bytes], size: int, part: str) -> bytes:
    try:
        return stream.read(size)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _file_error(part, error) from None


def _blocks(stream: IO[bytes], block_bytes: int, part: str, max_line_bytes: int) -> Iterator[bytes]:
    """Newline-aligned blocks of a stream, from its start; later blocks come from a thread.

    zlib releases the GIL while it inflates and Arrow while it parses, so on two cores reading
    the next block overlaps with parsing this one. A part that fits in one block (every part of
    a <= 300-URL job) never starts the thread. No block holds a line over `max_line_bytes`, and
    an unfinished line is dropped with an error as soon as it grows past that.
    """
    stream.seek(0)
    first = _read(stream, block_bytes, part)
    if len(first) < block_bytes:
        more = _read(stream, block_bytes, part)  # a short read is the end, but make sure
        if not more:
            if first:
                yield _short_lines(first, part, max_line_bytes)
            return
        first += more
    yield from in_thread(lambda: _split_blocks(stream, first, block_bytes, part, max_line_bytes))


def _split_blocks(
    stream: IO[bytes], first: bytes, block_bytes: int, part: str, max_line_bytes: int
) -> Iterator[bytes]:
    rest = b""
    data = first
    while data:
        data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut:
            yield _short_lines(data[:cut], part, max_line_bytes)
        rest = data[cut:]
        if len(rest) > max_line_bytes:
            raise _line_error(part, None, max_line_bytes)
        data = _read(stream, block_bytes, part)
    if rest:
        yield rest


def _short_lines(block: bytes, part: str, max_line_bytes: int) -> bytes:
    """`block`, after checking (at memory speed) that none of its lines is over the cap."""
    if len(block) <= max_line_bytes:
        return block
    breaks = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
    bounds = np.concatenate(([-1], breaks, [len(block)]))
    if int(np.diff(bounds).max()) - 1 > max_line_bytes:
        raise _line_error(part, None, max_line_bytes)
    return block


T = TypeVar("T")


def in_thread(make: Callable[[], Iterator[T]], depth: int = 2) -> Iterator[T]:
    """Run the iterator `make()` in a helper thread, `depth` items ahead of the consumer.

    Exceptions are raised in the consumer. Closing this generator (or an exception in the
    consumer) stops the helper, which closes its iterator in its own thread, before returning.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = make()
        try:
            for item in iterator:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as error:  # handed to the consumer, raised there
            put("error", error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="crust-ingest", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.05)
        thread.join()


class _Spool:
    """A part's converted batches: in memory up to a limit, then in an Arrow IPC temp file."""

    def __init__(self, limit: int, tmp_dir: str | None) -> None:
        self.limit = limit
        self.tmp_dir = tmp_dir
        self.rows = 0
        self.nbytes = 0
        self.batches: list[pa.RecordBatch] = []
        self._file: IO[bytes] | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self._writer is not None:
            self._writer.write_batch(batch)
            return
        self.batches.append(batch)
        self.nbytes += batch.nbytes
        if self.nbytes > self.limit:
            self._file = tempfile.TemporaryFile(dir=self.tmp_dir)  # noqa: SIM115 - closed in close()
            self._writer = pa.ipc.new_stream(
                pa.PythonFile(self._file, mode="w"), ENRICHED_CONTACTS_SCHEMA
            )
            for held in self.batches:
                self._writer.write_batch(held)
            self.batches = []

    def drain(self) -> Iterator[pa.RecordBatch]:
        try:
            if self._writer is None:
                batches, self.batches = self.batches, []
                yield from batches
                return
            assert self._file is not None
            self._writer.close()
            self._file.seek(0)
            yield from pa.ipc.open_stream(pa.PythonFile(self._file, mode="r"))
        finally:
            self.close()

    def close(self) -> None:
        self.batches = []
        if self._file is not None:
            self._file.close()
            self._file = None


# ---- the fast path ----------------------------------------------------------------------------
def _fast_block(
    block: bytes, *, batch_id: str, enriched_at: datetime | None
) -> tuple[pa.RecordBatch, int]:
    """One newline-aligned block of envelope records as (batch, newlines), or `_NotFast`."""
    try:
        # Arrow parses the block's 1 MiB chunks on all cores (measured: much faster than one
        # chunk per block, even with reading and writing in their own threads).
        table = pajson.read_json(
            pa.py_buffer(block), read_options=_READ_OPTIONS, parse_options=_PARSE_OPTIONS
        )
    except (pa.ArrowException, ValueError) as error:
        # Not the envelope's shape (flat form, bare strings, single values, bad JSON, ...).
        first_line = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise _NotFast(f"not the documented envelope ({first_line})") from None
    newlines = _check_one_object_per_line(block, table.num_rows)
    if table.column(0).num_chunks != 1:
        table = table.combine_chunks()
    batch, ambiguous = _convert(table, batch_id=batch_id, enriched_at=enriched_at)
    if ambiguous and _has_ambiguous_null(block):
        raise _NotFast("a contact field is an explicit null (the reference parser reads it as [])")
    return batch, newlines


def _check_one_object_per_line(block: bytes, rows: int) -> int:
    """The reference parser reads one object per non-blank line; Arrow reads any JSON stream.

    If every non-blank line (stripped) starts with `{` and ends with `}`, no object spans two
    lines (a line break inside an object leaves a line ending in something else, or a next line
    starting with `,` `}` or `]`), so each line holds at least one object, and `rows == lines`
    means exactly one. The common layout is checked with numpy at memory speed; others line by line.
    """
    raw = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 0x0A)
    ends_with_newline = bool(len(raw)) and raw[-1] == 0x0A
    lines = len(newlines) + (0 if ends_with_newline else 1)
    followers = newlines[:-1] if ends_with_newline else newlines
    if (
        len(raw)
        and raw[0] == 0x7B  # {
        and (ends_with_newline or raw[-1] == 0x7D)  # }
        and bool((raw[newlines - 1] == 0x7D).all())
        and bool((raw[followers + 1] == 0x7B).all())
    ):
        if rows == lines:
            return len(newlines)
        raise _NotFast("not one JSON object per line")
    nonblank = 0
    for line in block.split(b"\n"):
        if not line.strip():  # the reference parser's blank-line test
            continue
        nonblank += 1
        body = line.strip(_JSON_WHITESPACE)
        if body[:1] != b"{" or body[-1:] != b"}":
            raise _NotFast("not one JSON object per line")
    if nonblank != rows:
        raise _NotFast("not one JSON object per line")
    return len(newlines)


def _has_ambiguous_null(block: bytes) -> bool:
    raw = pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.array([0, len(block)], pa.int64()).buffers()[1], pa.py_buffer(block)],
    )
    return bool(pc.match_substring_regex(raw, _AMBIGUOUS_NULL)[0].as_py())


def _non_blank(strings: pa.Array) -> pa.Array:
    """True where a string has a character `str.strip()` keeps (null -> False)."""
    trimmed = pc.utf8_trim(strings, characters=_PY_WHITESPACE)
    return pc.fill_null(pc.greater(pc.utf8_length(trimmed), 0), False)


def _all_true(mask: pa.Array) -> bool:
    return mask.null_count == 0 and mask.false_count == 0


def _check_emails(emails: pa.Array, name: str) -> None:
    flat = emails.flatten()
    if flat.null_count:
        raise _NotFast(f"{name} has a null entry")
    if not _all_true(_non_blank(pc.struct_field(flat, "email"))):
        raise _NotFast(f"{name} has an entry without an email address")


def _non_empty(lists: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.list_value_length(lists), 0), False)


def _convert(
    table: pa.Table, *, batch_id: str, enriched_at: datetime | None
) -> tuple[pa.RecordBatch, bool]:
    """Map parsed envelope records to table columns; returns (batch, needs the null scan).

    Raises `_NotFast` where the reference parser could read a record differently.
    """
    n = table.num_rows
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=ENRICHED_CONTACTS_SCHEMA), False
    columns = {name: table.column(name).chunk(0) for name in table.column_names}
    data = columns["data"]
    if data.null_count:
        raise _NotFast("a record has no 'data' object (flat form?)")
    urls = columns["original_identifier"]
    if not _all_true(_non_blank(urls)):
        raise _NotFast("a record has no original_identifier")
    business = pc.struct_field(data, "business_email")
    contact_info = pc.struct_field(data, "personal_contact_info")
    personal = pc.struct_field(contact_info, "personal_emails")
    phones = pc.struct_field(contact_info, "phone_numbers")
    _check_emails(business, "business_email")
    _check_emails(personal, "personal_emails")
    phone_values = phones.flatten()
    if phone_values.null_count or not _all_true(pc.not_equal(phone_values, "")):
        raise _NotFast("phone_numbers has a null or empty entry")
    # `{}` (reference: both []) and `{"other": 1}` (reference: both None) parse alike.
    empty_info = pc.and_(
        pc.is_valid(contact_info), pc.and_(pc.is_null(personal), pc.is_null(phones))
    )
    if empty_info.true_count:
        raise _NotFast("personal_contact_info without personal_emails or phone_numbers")
    ambiguous = bool(business.null_count or personal.null_count or phones.null_count)
    matched = pc.or_(pc.or_(_non_empty(business), _non_empty(personal)), _non_empty(phones))
    batch = pa.RecordBatch.from_arrays(
        [
            urls,
            business,
            personal,
            phones,
            columns["internal_id"],
            pa.repeat(pa.scalar(batch_id, pa.string()), n),
            pa.repeat(_timestamp(enriched_at), n),
            matched,
            _primary_emails(business),
        ],
        schema=ENRICHED_CONTACTS_SCHEMA,
    )
    return batch, ambiguous


def _timestamp(value: datetime | None) -> pa.Scalar:
    return pa.scalar(value, _TIMESTAMP)


def _primary_emails(business: pa.Array) -> pa.Array:
    """Per row: the first deliverable business email, else the first (`table._primary_email`)."""
    n = len(business)
    flat = business.flatten()
    if len(flat) == 0:
        return pa.nulls(n, pa.string())
    lengths = pc.fill_null(pc.list_value_length(business), 0).to_numpy()
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    choice = np.where(lengths > 0, starts, -1)
    deliverable = pc.fill_null(pc.equal(pc.struct_field(flat, "status"), "deliverable"), False)
    hits = np.flatnonzero(deliverable.to_numpy(zero_copy_only=False))
    if len(hits):
        parents = pc.list_parent_indices(business).to_numpy()[hits]
        rows, first = np.unique(parents, return_index=True)
        choice[rows] = hits[first]
    index = pa.array(choice, mask=choice < 0)
    return pc.take(pc.struct_field(flat, "email"), index)


# ---- per job: bookkeeping ---------------------------------------------------------------------
class JobLedger:
    """Which of a job's submitted URLs were delivered; duplicates and strangers counted.

    The same rules as the record-by-record loop it replaces, vectorised: a record must be one of
    the job's URLs (else `unexpected`, counted each time), the first record of a URL is kept and
    later ones are `duplicates`, URLs never delivered are `missing()` in submission order.
    """

    def __init__(self, expected: pa.Array | pa.ChunkedArray | Sequence[str]) -> None:
        if isinstance(expected, pa.ChunkedArray):
            expected = expected.combine_chunks()
        elif not isinstance(expected, pa.Array):
            expected = pa.array(list(expected), pa.string())
        self.expected: pa.Array = pc.unique(expected.cast(pa.string()))
        self.delivered = np.zeros(len(self.expected), dtype=bool)
        self.duplicates = 0
        self.unexpected = 0

    def admit(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The rows of `batch` to keep, in file order."""
        if batch.num_rows == 0:
            return batch
        position = pc.index_in(batch.column("profile_url"), value_set=self.expected)
        self.unexpected += position.null_count
        positions = pc.fill_null(position, -1).to_numpy()
        rows = np.flatnonzero(positions >= 0)
        if len(rows) == 0:
            return batch.slice(0, 0)
        wanted = positions[rows]
        unique_positions, first = np.unique(wanted, return_index=True)
        fresh = ~self.delivered[unique_positions]
        keep = np.sort(rows[first[fresh]])
        self.delivered[unique_positions[fresh]] = True
        self.duplicates += len(rows) - len(keep)
        if len(keep) == batch.num_rows:
            return batch
        return batch.take(pa.array(keep))

    def deliver_all(self) -> None:
        self.delivered[:] = True

    def missing(self) -> list[str]:
        return self.expected.filter(pa.array(~self.delivered)).to_pylist()


def empty_batch(
    urls: pa.Array, *, columns: set[str], batch_id: str, enriched_at: datetime | None
) -> pa.RecordBatch:
    """Rows for a job with `result_count: 0` (no file): requested fields [], others null.

    Same rows as `table.empty_row` for each URL, built column-wise.
    """
    n = len(urls)
    offsets = pa.array(np.zeros(n + 1, dtype=np.int32))

    def lists(name: str, type_: pa.ListType) -> pa.Array:
        if name not in columns:
            return pa.nulls(n, type_)
        return pa.ListArray.from_arrays(offsets, pa.array([], type_.value_type), type=type_)

    return pa.RecordBatch.from_arrays(
        [
            urls.cast(pa.string()),
            lists("business_emails", _EMAILS),
            lists("personal_emails", _EMAILS),
            lists("phone_numbers", _PHONES),
            pa.nulls(n, pa.int64()),
            pa.repeat(pa.scalar(batch_id, pa.string()), n),
            pa.repeat(_timestamp(enriched_at), n),
            pa.repeat(pa.scalar(False), n),
            pa.nulls(n, pa.string()),
        ],
        schema=ENRICHED_CONTACTS_SCHEMA,
    )


@dataclass
class PartStats:
    """How a job's (or a file set's) parts were read: for metadata and the benchmark."""

    arrow_parts: int = 0
    python_parts: int = 0
    fallback_reasons: list[str] = field(default_factory=list)

    def add(self, loaded: LoadedPart) -> None:
        if loaded.mode == "arrow":
            self.arrow_parts += 1
        else:
            self.python_parts += 1
            if loaded.reason and len(self.fallback_reasons) < 10:
                self.fallback_reasons.append(f"{loaded.part}: {loaded.mode}: {loaded.reason}")


def job_batches(
    client: CrustdataClient,
    status: BatchStatus,
    ledger: JobLedger,
    *,
    columns: set[str],
    stats: PartStats | None = None,
    tmp_dir: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Every row a completed job delivers for its submitted URLs (the ledger counts the rest)."""
    batch_id = status.batch_id
    enriched_at = status.completed_at
    if (status.result_count or 0) == 0:
        # Nothing found for any URL: the API writes no file (its URL answers 404).
        ledger.deliver_all()
        yield empty_batch(
            ledger.expected, columns=columns, batch_id=batch_id, enriched_at=enriched_at
        )
        return
    for part, stream in client.open_result_parts(status):
        loaded = load_part(
            stream,
            batch_id=batch_id,
            part=part,
            enriched_at=enriched_at,
            tmp_dir=tmp_dir,
            max_line_bytes=client.download_limits.max_line_bytes,
        )
        if stats is not None:
            stats.add(loaded)
        for batch in loaded.batches():
            kept = ledger.admit(batch)
            if kept.num_rows:
                yield kept


def coalesce_batches(
    batches: Iterable[pa.RecordBatch], rows: int = COALESCE_ROWS
) -> Iterator[pa.RecordBatch]:
    """Join small batches (one per <= 300-URL job) into batches of about `rows` rows.

    Each batch becomes at least one Parquet row group; thousands of tiny row groups make the
    file slow to read. Memory stays bounded by `rows`.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows >= rows and not held:
            yield batch
            continue
        held.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield _concat(held)
            held, count = [], 0
    if held:
        yield _concat(held)


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    if hasattr(pa, "concat_batches"):  # pyarrow >= 19
        return pa.concat_batches(batches)
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


# ---- files given by hand (`crust-assets ingest`) ----------------------------------------------
class SeenUrls:
    """Exact duplicate check across input files when no submitted-URL list is given.

    It holds every distinct URL (as bytes, about 110 bytes each with the set's overhead): the
    only state of the file ingest that grows with the input; `--urls` (a job's list, checked
    with a `JobLedger`) or `--keep-duplicates` avoid it. A batch without duplicates (the
    normal case) costs two C-level passes over the set; only a batch with one goes row by row.
    """

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.duplicates = 0

    def admit(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        urls = batch.column("profile_url")
        keys = urls.cast(pa.binary()).to_pylist()
        seen = self.seen
        if pc.count_distinct(urls).as_py() == len(keys) and seen.isdisjoint(keys):
            seen.update(keys)
            return batch
        keep: list[bool] = []
        for key in keys:
            if key in seen:
                keep.append(False)
            else:
                seen.add(key)
                keep.append(True)
        self.duplicates += len(keep) - sum(keep)
        return batch.filter(pa.array(keep, pa.bool_()))


def default_batch_id(path: Path) -> str:
    """`RESULTS.jsonl.gz` -> `RESULTS`: the file name without its data suffixes."""
    name = path.name
    for suffix in (".gz", ".jsonl", ".ndjson", ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


@contextlib.contextmanager
def open_result_file(path: Path) -> Iterator[IO[bytes]]:
    """A decompressed, seekable stream of a result file: gzip (by magic bytes) or plain JSONL."""
    with open(path, "rb") as raw:
        stream = open_decoded(raw)
        try:
            yield stream
        finally:
            if stream is not raw:
                stream.close()


@dataclass
class IngestReport:
    """What `ingest_files` did; printed by the CLI as JSON."""

    out: str
    files: int = 0
    records: int = 0
    rows: int = 0
    duplicates: int = 0
    unexpected: int = 0
    missing: int = 0
    missing_sample: list[str] = field(default_factory=list)
    arrow_parts: int = 0
    python_parts: int = 0
    fallback_reasons: list[str] = field(default_factory=list)


def ingest_files(
    paths: Sequence[Path],
    out: Path,
    *,
    batch_id: str | None = None,
    enriched_at: datetime | None = None,
    expected_urls: Sequence[str] | pa.Array | None = None,
    dedupe: bool = True,
    force_python: bool = False,
    tmp_dir: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> IngestReport:
    """Turn result files into one `enriched_contacts` Parquet file, written atomically.

    The same parsing as the asset (`load_part`), streamed (`verify_first=False`): the file is
    only renamed into place once everything was read, so a bad record leaves nothing behind.

    `batch_id` defaults to each file's name without suffixes, `enriched_at` to now. With
    `expected_urls` (the job's submitted URLs) the asset's bookkeeping applies: only those URLs
    are kept, duplicates and strangers are counted, missing URLs reported. Without it,
    duplicates of a profile URL are dropped (first kept) unless `dedupe` is False.
    """
    when = enriched_at or datetime.now(timezone.utc)
    report = IngestReport(out=str(out))
    stats = PartStats()
    ledger = JobLedger(expected_urls) if expected_urls is not None else None
    seen = SeenUrls() if ledger is None and dedupe else None

    def batches() -> Iterator[pa.RecordBatch]:
        for path in paths:
            report.files += 1
            with open_result_file(path) as stream:
                loaded = load_part(
                    stream,
                    batch_id=batch_id or default_batch_id(path),
                    part=str(path),
                    enriched_at=when,
                    verify_first=False,
                    tmp_dir=tmp_dir,
                    force_python=force_python,
                    max_line_bytes=max_line_bytes,
                )
                for batch in loaded.batches():
                    if ledger is not None:
                        batch = ledger.admit(batch)
                    elif seen is not None:
                        batch = seen.admit(batch)
                    if batch.num_rows:
                        yield batch
                report.records += loaded.rows
                stats.add(loaded)

    # Parsing runs in a helper thread while this one writes Parquet (both release the GIL).
    report.rows = write_parquet_atomic(out, in_thread(batches), ENRICHED_CONTACTS_SCHEMA)
    if ledger is not None:
        missing = ledger.missing()
        report.duplicates, report.unexpected = ledger.duplicates, ledger.unexpected
        report.missing, report.missing_sample = len(missing), missing[:10]
    elif seen is not None:
        report.duplicates = seen.duplicates
    report.arrow_parts, report.python_parts = stats.arrow_parts, stats.python_parts
    report.fallback_reasons = stats.fallback_reasons
    return report

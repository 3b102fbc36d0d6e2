"""A result part (decompressed, seekable) to `enriched_contacts` record batches, in constant memory.

Why a reader apart from the fast path: reading is where the part's bytes are bounded (blocks of
`BLOCK_BYTES`, no line over `max_line_bytes`, a big checked part spilled to disk) and where it
is decided which parser a part gets. The client's Python parser (`parse_result_line`) is the
reference: `fast.fast_block` is used only while it can prove it reads the same; anything else
goes to the reference parser, line by line.

* With `verify_first` (the asset), a part is parsed, converted and checked completely before
  its first batch is handed out; a part larger than `SPILL_BYTES` of Arrow data is buffered in
  an Arrow IPC temp file. A corrupt line therefore raises the client's `ResultParseError`
  before any row of that part reaches the caller.
* Without it (`crust-assets ingest`, whose output is renamed into place only after the last
  row), blocks stream through, and a block the fast path cannot prove hands the rest of the
  part to the reference parser.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import numpy as np
import pyarrow as pa

from crust_assets.crustdata.limits import DownloadLimits
from crust_assets.ingest.fast import NotFast, fast_block
from crust_assets.ingest.prefetch import in_thread
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA, record_to_row, rows_to_batches

__all__ = [
    "BLOCK_BYTES",
    "MAX_LINE_BYTES",
    "SPILL_BYTES",
    "LoadedPart",
    "PartStats",
    "ResultFileError",
    "load_part",
]

#: Decompressed bytes per parsed block (~30,000 records); also the read size of the helper thread.
BLOCK_BYTES = 8 * 1024 * 1024
#: Arrow bytes of one part kept in memory before the rest is buffered in an IPC temp file.
SPILL_BYTES = 16 * 1024 * 1024
#: Longest result line read (env CRUST_RESULT_MAX_LINE_BYTES); a job's record is a few KiB.
MAX_LINE_BYTES = DownloadLimits().max_line_bytes


class ResultFileError(Exception):
    """A result file given by hand is not a complete gzip/JSONL file (truncated, corrupt)."""


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
        mode, why = ("python", "forced") if force_python else ("arrow", None)
        stream_part = functools.partial(
            _streamed,
            stream=stream,
            batch_id=batch_id,
            enriched_at=enriched_at,
            block_bytes=block_bytes,
            fast=not force_python,
            max_line_bytes=max_line_bytes,
        )
        return LoadedPart(part, mode, 0, why, stream_part)
    reason = "forced"
    if not force_python:
        spooled = _spooled_fast(
            stream,
            batch_id=batch_id,
            part=part,
            enriched_at=enriched_at,
            block_bytes=block_bytes,
            spool=_Spool(spill_bytes, tmp_dir),
            max_line_bytes=max_line_bytes,
        )
        if isinstance(spooled, LoadedPart):
            return spooled
        reason = spooled
    return _checked_python(
        stream,
        batch_id=batch_id,
        part=part,
        enriched_at=enriched_at,
        reason=reason,
        max_line_bytes=max_line_bytes,
    )


def _spooled_fast(
    stream: IO[bytes],
    *,
    batch_id: str,
    part: str,
    enriched_at: datetime | None,
    block_bytes: int,
    spool: _Spool,
    max_line_bytes: int,
) -> LoadedPart | str:
    """The whole part through the fast path into `spool`; or why the fast path cannot take it."""
    try:
        # closing(): the reader thread must be stopped before the stream is read again.
        with contextlib.closing(_blocks(stream, block_bytes, part, max_line_bytes)) as blocks:
            for block in blocks:
                batch, _ = fast_block(block, batch_id=batch_id, enriched_at=enriched_at)
                spool.add(batch)
    except NotFast as why:
        spool.close()
        return str(why)
    except BaseException:
        spool.close()
        raise
    return LoadedPart(part, "arrow", spool.rows, None, lambda _: spool.drain())


def _checked_python(
    stream: IO[bytes],
    *,
    batch_id: str,
    part: str,
    enriched_at: datetime | None,
    reason: str,
    max_line_bytes: int,
) -> LoadedPart:
    """The reference parser: every line checked first (nothing kept), then read again for rows."""
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
                    batch, newlines = fast_block(block, batch_id=batch_id, enriched_at=enriched_at)
                    offset += len(block)
                    lines += newlines
                    loaded.rows += batch.num_rows
                    yield batch
            return
        except NotFast as why:
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
    # Imported here: the parser loads pydantic, which a part the fast path takes never needs.
    from crust_assets.crustdata.records import normalise_result_line

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
    from crust_assets.crustdata.records import parse_result_line

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
) -> Iterator[bytes | bytearray]:
    """`first` and the rest of the stream, cut after each block's last line break.

    Each block is read in place after the unfinished line the one before left over, and cut
    where it is: no block is copied on its way to the parser (it was copied twice, each time
    into fresh pages, which showed in a profile as memory copies and page faults).
    """
    block = bytearray(first)
    read = len(first)
    while read:
        cut = block.rfind(b"\n") + 1
        rest = bytes(block[cut:])
        del block[cut:]
        if block:
            yield _short_lines(block, part, max_line_bytes)
        if len(rest) > max_line_bytes:
            raise _line_error(part, None, max_line_bytes)
        block, read = _read_after(stream, rest, block_bytes, part)
    if block:
        yield block  # a last line without a line break


def _read_after(stream: IO[bytes], head: bytes, size: int, part: str) -> tuple[bytearray, int]:
    """`head` and up to `size` more bytes of `stream` in one new buffer; and how many were read."""
    block = bytearray(len(head) + size)
    block[: len(head)] = head
    readinto = getattr(stream, "readinto", None)
    try:
        if readinto is None:
            data = stream.read(size)
            block[len(head) : len(head) + len(data)] = data
            read = len(data)
        else:
            with memoryview(block)[len(head) :] as tail:
                read = readinto(tail)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise _file_error(part, error) from None
    del block[len(head) + read :]
    return block, read


def _short_lines(block: bytes, part: str, max_line_bytes: int) -> bytes:
    """`block`, after checking (at memory speed) that none of its lines is over the cap."""
    if len(block) <= max_line_bytes:
        return block
    breaks = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
    bounds = np.concatenate(([-1], breaks, [len(block)]))
    if int(np.diff(bounds).max()) - 1 > max_line_bytes:
        raise _line_error(part, None, max_line_bytes)
    return block


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

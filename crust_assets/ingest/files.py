"""`crust-assets ingest`: result files given by hand into one `enriched_contacts` Parquet file.

Why apart: the command is run as a process of its own, so what it imports is paid before it
reads a byte; this module and what it imports stay free of pandas, httpx and Dagster. It uses
the asset's reader (`parse.load_part`) streamed, and the asset's ledger when given the job's URLs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.crustdata.gzipped import open_decoded
from crust_assets.ingest import buffers
from crust_assets.ingest.ledger import JobLedger
from crust_assets.ingest.parse import MAX_LINE_BYTES, PartStats, load_part
from crust_assets.ingest.prefetch import in_thread
from crust_assets.storage import write_parquet_atomic
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

__all__ = [
    "DICTIONARY_COLUMNS",
    "IngestReport",
    "SeenUrls",
    "default_batch_id",
    "ingest_files",
    "open_result_file",
]

#: The written file's dictionary-encoded columns: those with few distinct values (one batch id
#: and one time per file, a handful of email statuses). Profile URLs, emails, phones and ids are
#: nearly unique, so a dictionary for them is built and then dropped in every row group: with
#: them, writing 600k records took about a fifth more CPU and the file was 17% larger.
DICTIONARY_COLUMNS = [
    "batch_id",
    "enriched_at",
    "business_emails.list.element.status",
    "personal_emails.list.element.status",
]


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
        return batch.filter(buffers.booleans(np.array(keep, dtype=bool)))


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
    report = IngestReport(out=str(out))
    stats = PartStats()
    ledger = JobLedger(expected_urls) if expected_urls is not None else None
    seen = SeenUrls() if ledger is None and dedupe else None
    admit = ledger.admit if ledger is not None else seen.admit if seen is not None else None
    batches = _FileBatches(
        paths,
        report,
        stats,
        admit,
        batch_id=batch_id,
        enriched_at=enriched_at or datetime.now(timezone.utc),
        force_python=force_python,
        tmp_dir=tmp_dir,
        max_line_bytes=max_line_bytes,
    )
    # Parsing runs in a helper thread while this one writes Parquet (both release the GIL).
    report.rows = write_parquet_atomic(
        out, in_thread(batches), ENRICHED_CONTACTS_SCHEMA, use_dictionary=DICTIONARY_COLUMNS
    )
    if ledger is not None:
        missing = ledger.missing()
        report.duplicates, report.unexpected = ledger.duplicates, ledger.unexpected
        report.missing, report.missing_sample = len(missing), missing[:10]
    elif seen is not None:
        report.duplicates = seen.duplicates
    report.arrow_parts, report.python_parts = stats.arrow_parts, stats.python_parts
    report.fallback_reasons = stats.fallback_reasons
    return report


@dataclass
class _FileBatches:
    """The kept rows of every file in turn, counting files, records and parts as it goes.

    A callable (not a closure in `ingest_files`) so the helper thread has one thing to run.
    """

    paths: Sequence[Path]
    report: IngestReport
    stats: PartStats
    admit: Callable[[pa.RecordBatch], pa.RecordBatch] | None
    batch_id: str | None
    enriched_at: datetime
    force_python: bool
    tmp_dir: str | None
    max_line_bytes: int

    def __call__(self) -> Iterator[pa.RecordBatch]:
        for path in self.paths:
            self.report.files += 1
            with open_result_file(path) as stream:
                loaded = load_part(
                    stream,
                    batch_id=self.batch_id or default_batch_id(path),
                    part=str(path),
                    enriched_at=self.enriched_at,
                    verify_first=False,
                    tmp_dir=self.tmp_dir,
                    force_python=self.force_python,
                    max_line_bytes=self.max_line_bytes,
                )
                for batch in loaded.batches():
                    if self.admit is not None:
                        batch = self.admit(batch)
                    if batch.num_rows:
                        yield batch
                self.report.records += loaded.rows
                self.stats.add(loaded)

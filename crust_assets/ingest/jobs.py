"""A completed job's rows: its downloaded parts read into batches, kept by its ledger.

Why apart from the reader: this is where the client (downloads, their limits) meets the parser,
and where a job with no result file (`result_count: 0`) still yields its rows. The client is
only a parameter here, so importing this module does not import the HTTP stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from crust_assets.ingest.fast import EMAILS, PHONES, timestamp
from crust_assets.ingest.ledger import JobLedger
from crust_assets.ingest.parse import PartStats, load_part
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

if TYPE_CHECKING:
    from crust_assets.crustdata import BatchStatus, CrustdataClient

__all__ = ["COALESCE_ROWS", "coalesce_batches", "empty_batch", "job_batches"]

#: Rows per record batch handed to the Parquet writer by `coalesce_batches` (= row group size).
COALESCE_ROWS = 65_536


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
            lists("business_emails", EMAILS),
            lists("personal_emails", EMAILS),
            lists("phone_numbers", PHONES),
            pa.nulls(n, pa.int64()),
            pa.repeat(pa.scalar(batch_id, pa.string()), n),
            pa.repeat(timestamp(enriched_at), n),
            pa.repeat(pa.scalar(False), n),
            pa.nulls(n, pa.string()),
        ],
        schema=ENRICHED_CONTACTS_SCHEMA,
    )


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

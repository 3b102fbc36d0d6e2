"""Result files -> `enriched_contacts` record batches at close to pyarrow speed, in constant memory.

Why this package exists: a partition can hold hundreds of thousands of profiles, and turning every
record into a Python object (pydantic model, then a row dict) costs tens of microseconds per
record. The documented envelope form is regular enough for `pyarrow.json` to parse it with an
explicit schema, block by block, and every table column can then be derived with vectorised
`pyarrow.compute` kernels. The asset (`enriched_contacts`, via `crust_assets.loading`) and the
`crust-assets ingest` command use the same code. One module per job:

* `fast`: one block of envelope records to table columns, or a refusal (`NotFast`) wherever the
  client's reference parser could read it differently: identical rows either way.
* `parse`: a part read in bounded, newline-aligned blocks (the next one decompressed by
  `prefetch.in_thread` while this one is parsed), given to the fast path or to the reference
  parser; a part checked before its first row is spilled to an Arrow IPC temp file when large.
* `ledger`: per job, which submitted URLs were delivered; duplicates and strangers counted.
* `jobs`: a completed job's parts, downloaded by the client, through the reader and the ledger.
* `files`: the `crust-assets ingest` command's files, written atomically to one Parquet file.
* `buffers`: the few Arrow constants and arrays the others make from, or read back into, numpy,
  built from their buffers so that pyarrow never looks for pandas.

Neither importing any of it nor running `crust-assets ingest` loads pandas, httpx or Dagster: the
command pays for what it uses.
"""

from __future__ import annotations

from crust_assets.ingest.fast import ENVELOPE_SCHEMA
from crust_assets.ingest.files import (
    IngestReport,
    SeenUrls,
    default_batch_id,
    ingest_files,
    open_result_file,
)
from crust_assets.ingest.jobs import COALESCE_ROWS, coalesce_batches, empty_batch, job_batches
from crust_assets.ingest.ledger import JobLedger
from crust_assets.ingest.parse import (
    BLOCK_BYTES,
    MAX_LINE_BYTES,
    SPILL_BYTES,
    LoadedPart,
    PartStats,
    ResultFileError,
    load_part,
)
from crust_assets.ingest.prefetch import in_thread

__all__ = [
    "BLOCK_BYTES",
    "COALESCE_ROWS",
    "ENVELOPE_SCHEMA",
    "MAX_LINE_BYTES",
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

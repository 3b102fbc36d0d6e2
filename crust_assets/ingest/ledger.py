"""Per job: which of its submitted URLs a result delivered, and what else it carried.

Why apart: the asset, borrowing and `crust-assets ingest --urls` apply the same rules to a job's
rows, and these rules decide which rows are kept and which URLs are reported missing. It is
vectorised with `pyarrow.compute.index_in`, so a job's bookkeeping costs no Python per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.ingest import buffers

__all__ = ["JobLedger"]

_NOT_FOUND = buffers.integer(-1, pa.int32())  # index_in's positions are int32


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
            expected = buffers.strings(list(expected))
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
        positions = buffers.integers_to_numpy(pc.fill_null(position, _NOT_FOUND))
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
        return batch.take(buffers.integers(keep))

    def deliver_all(self) -> None:
        self.delivered[:] = True

    def missing(self) -> list[str]:
        return self.expected.filter(buffers.booleans(~self.delivered)).to_pylist()

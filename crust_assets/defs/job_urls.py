"""The URLs a job's submit carries: its rows of the plan file, minus the people erased since.

A plan made before a `crust-assets forget` must not buy the people it erased, unless
re-enriching erased people is allowed. The erasure log is read once per tick, at the first
submit; when it cannot be read, nothing is sent this tick: sending a person who asked to be
forgotten is worse than waiting.
"""

from pathlib import PurePath

import pyarrow.parquet as pq

from crust_assets.erasure import erased_urls
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.storage import DataLayout


def read_job_urls(
    plan_file: PurePath, index: int, expected: int, layout: DataLayout | None = None
) -> list[str]:
    """The URLs of job `index`: row group `index` of the plan file (one row group per job).

    Read through `layout`'s filesystem (local disk when None): on S3, two ranged GETs.
    """
    parquet = layout.parquet_file(plan_file) if layout else pq.ParquetFile(plan_file)
    table = parquet.read_row_group(index, columns=["job_index", "profile_url"])
    indexes = set(table.column("job_index").to_pylist())
    if indexes != {index} or table.num_rows != expected:
        raise RuntimeError(
            f"plan file {plan_file} is inconsistent at job {index}: "
            f"{table.num_rows} rows, job indexes {sorted(indexes)[:5]}"
        )
    return table.column("profile_url").to_pylist()


class JobUrls:
    """One tick's reader of job URLs, with the erasure log read at most once."""

    def __init__(self, layout: DataLayout, allow_reenrich_erased: bool) -> None:
        self.layout = layout
        self.allow_erased = allow_reenrich_erased
        self.erased: frozenset[str] | None = None
        self.problem: str | None = None

    def to_send(self, plan: PlanState, index: int) -> tuple[list[str], int] | None:
        """Job `index`'s URLs to send and how many erased people were left out; None (send
        nothing this tick, `problem` says why) when the erasure log cannot be read."""
        files = self.layout.plan_files_at(plan.plan_path)
        urls = read_job_urls(files.submit, index, plan.job_size(index), self.layout)
        if self.allow_erased:
            return urls, 0
        if self.erased is None:
            try:
                self.erased = frozenset(erased_urls(self.layout))
            except Exception as error:  # a bucket raises botocore's own errors, not OSError
                self.problem = (
                    f"erasure log unreadable ({type(error).__name__}); not submitting this tick"
                )
                return None
        kept = [url for url in urls if url not in self.erased]
        return kept, len(urls) - len(kept)

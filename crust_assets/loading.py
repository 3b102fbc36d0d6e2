"""Loading a plan's results into its partition of enriched_contacts, and what the load found.

`load_partition` streams the plan's rows (rows reused from other partitions, rows borrowed from
other days' plans, then every delivered job's records), publishes them through the erasure
fence, and only then returns a `LoadReport`: the rows as written, the counts, the URLs with no
record and the fill figures. No Dagster here: the asset turns the report into checks and
metadata, and tests read it directly.
"""

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.crustdata import CrustdataClient
from crust_assets.erasure import erased_urls, publish_contacts
from crust_assets.ingest import JobLedger, PartStats, coalesce_batches, job_batches
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.storage import DataLayout, write_parquet_atomic
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA, FillStats, requested_columns


class BorrowedSource(Protocol):
    """The rows of the URLs a plan borrowed, downloaded from the lenders' delivered jobs
    (`defs.borrowing.BorrowedRows`); its figures are final once `batches` is drained."""

    missing: list[str]
    batch_ids: list[str]
    rows: int

    def batches(self, client: CrustdataClient) -> Iterator[pa.RecordBatch]: ...


@dataclass(frozen=True)
class LoadReport:
    """What one load wrote and found, known only after the file is published."""

    file: PurePath  # the partition's file
    table: pa.Table  # the partition as published, read back
    schema: pa.Schema  # the published file's own schema
    rows: int
    expected: int  # rows the plan must have: its URLs, reused and borrowed, less the erased
    rows_from_jobs: int
    rows_reused: int
    rows_borrowed: int
    duplicates: int  # a second record for a URL of the same job, dropped
    unexpected: int  # records for URLs the job was not sent
    erased_dropped: int  # rows of people erased since the plan was made, not written
    erased_not_delivered: int  # planned URLs not delivered because the person was erased
    missing: list[str]  # our jobs' URLs with no record
    missing_borrowed: list[str]  # borrowed URLs their lender did not deliver
    batch_ids: list[str]
    lender_batch_ids: list[str]
    jobs_delivered: int
    jobs_not_delivered: int
    failure_reasons: list[str]  # why the undelivered jobs were not delivered
    fill: FillStats


def load_partition(
    layout: DataLayout,
    plan: PlanState,
    completed: Mapping[int, Mapping[str, Any]],
    abandoned: Mapping[int, str],
    borrowed: BorrowedSource,
    client: CrustdataClient,
) -> LoadReport:
    """Write `plan`'s partition of enriched_contacts and report on it.

    `completed` maps a job index to its completion (with `batch_id`; none when every URL of the
    job was erased before it was sent) and `abandoned` a job index to why it was given up, as
    the event log says.
    """
    rows = _PlanRows(layout, plan, completed, borrowed)
    target = layout.warehouse_partition("enriched_contacts", plan.date)
    published = publish_contacts(
        layout,
        target,
        lambda path: write_parquet_atomic(path, rows.batches(client), ENRICHED_CONTACTS_SCHEMA),
        f"enriched_contacts[{plan.date}]",
    )
    rows.erased_dropped += published.dropped  # erased while the rows were downloaded
    written = layout.read_table(target, schema=ENRICHED_CONTACTS_SCHEMA)
    fill = FillStats()
    fill.add(written)
    undelivered = sorted(set(range(plan.job_count)) - set(completed))
    return LoadReport(
        file=target,
        table=written,
        schema=layout.read_schema(target),
        rows=published.rows,
        expected=rows.expected_urls(),
        rows_from_jobs=rows.rows_from_jobs,
        rows_reused=rows.rows_reused,
        rows_borrowed=borrowed.rows,
        duplicates=rows.duplicates,
        unexpected=rows.unexpected,
        erased_dropped=rows.erased_dropped,
        erased_not_delivered=rows.erased_not_delivered,
        missing=list(rows.missing),
        missing_borrowed=rows.missing_borrowed(),
        batch_ids=list(rows.batch_ids),
        lender_batch_ids=list(borrowed.batch_ids),
        jobs_delivered=len(completed),
        jobs_not_delivered=len(undelivered),
        failure_reasons=sorted({abandoned.get(i, "not delivered") for i in undelivered}),
        fill=fill,
    )


class _PlanRows:
    """Streams a plan's rows: reused rows, borrowed rows, then every delivered job's records,
    deduplicated (the three URL sets are disjoint by construction of the plan), tallying what
    it sees; `load_partition` reads the tallies once the stream is written."""

    def __init__(
        self,
        layout: DataLayout,
        plan: PlanState,
        completed: Mapping[int, Mapping[str, Any]],
        borrowed: BorrowedSource,
    ) -> None:
        self.layout = layout
        self.plan = plan
        self.completed = completed
        self.borrowed = borrowed
        self.paths = layout.plan_files_at(plan.plan_path)
        self.plan_file = layout.parquet_file(self.paths.submit)
        self.columns = requested_columns(plan.fields)
        self.batch_ids: list[str] = []
        self.missing: list[str] = []
        self.duplicates = self.unexpected = self.rows_from_jobs = self.rows_reused = 0
        self.parts = PartStats()
        # People erased with `crust-assets forget` after this plan was made are not written back.
        erased = erased_urls(layout)
        self.erased = pa.array(sorted(erased), pa.string()) if erased else None
        self.erased_dropped = 0
        # Planned URLs a job did not deliver because the person was erased (the sensor does
        # not send them): not missing, and not expected in the file.
        self.erased_not_delivered = 0

    def expected_urls(self) -> int:
        """Rows the partition must have: every URL of the plan plus the reused and borrowed
        ones, but the people erased since the plan was made."""
        borrowed_erased = len(self.borrowed.missing) - len(self.missing_borrowed())
        return (
            self.plan.url_count
            + self.rows_reused
            + self.plan.borrowed
            - self.erased_dropped
            - borrowed_erased
            - self.erased_not_delivered
        )

    def missing_borrowed(self) -> list[str]:
        """Borrowed URLs their lender did not deliver; an erased person is not missing (they
        would not be written anyway), so they count as dropped instead."""
        return self._not_erased(self.borrowed.missing)[0]

    def _not_erased(self, urls: Sequence[str]) -> tuple[list[str], int]:
        """`urls` without the erased people, and how many were erased."""
        if self.erased is None or not urls:
            return list(urls), 0
        values = pa.array(urls, pa.string())
        erased = pc.is_in(values, value_set=self.erased)
        return values.filter(pc.invert(erased)).to_pylist(), pc.sum(erased).as_py() or 0

    def batches(self, client: CrustdataClient) -> Iterator[pa.RecordBatch]:
        for batch in self._all_batches(client):
            if self.erased is not None:
                keep = pc.invert(pc.is_in(batch.column("profile_url"), value_set=self.erased))
                kept = batch.filter(keep)
                self.erased_dropped += batch.num_rows - kept.num_rows
                batch = kept
            if batch.num_rows:
                yield batch

    def _all_batches(self, client: CrustdataClient) -> Iterator[pa.RecordBatch]:
        if self.layout.exists(self.paths.reused):
            reused = self.layout.parquet_file(self.paths.reused)
            for batch in reused.iter_batches(batch_size=8192):
                self.rows_reused += batch.num_rows
                yield pa.RecordBatch.from_arrays(batch.columns, schema=ENRICHED_CONTACTS_SCHEMA)
        # One small batch per job (ours, then each lender job's borrowed URLs), joined so that
        # the file has a few large row groups.
        borrowed = self.borrowed.batches(client)
        jobs = (
            batch for index in sorted(self.completed) for batch in self._job_batches(client, index)
        )
        yield from coalesce_batches(itertools.chain(jobs, borrowed))

    def _job_batches(self, client: CrustdataClient, index: int) -> Iterator[pa.RecordBatch]:
        """A job's rows through the fast ingest path (crust_assets.ingest), with its bookkeeping:
        only the job's URLs, first record kept, duplicates and strangers counted, missing listed.
        """
        urls = self.plan_file.read_row_group(index, columns=["profile_url"]).column(0)
        ledger = JobLedger(urls)
        batch_id = self.completed[index].get("batch_id")
        if batch_id:  # none when every URL was erased before the job was sent
            self.batch_ids.append(str(batch_id))
            status = client.status(str(batch_id))
            parts = job_batches(client, status, ledger, columns=self.columns, stats=self.parts)
            for batch in parts:
                self.rows_from_jobs += batch.num_rows
                yield batch
        self.duplicates += ledger.duplicates
        self.unexpected += ledger.unexpected
        missing, erased = self._not_erased(ledger.missing())
        self.missing.extend(missing)
        self.erased_not_delivered += erased

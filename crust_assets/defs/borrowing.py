"""Borrowing: a URL another partition's unfinished plan is already buying is not bought again.

`recent_enrichments` only sees rows already written to `enriched_contacts`. A 30-day backfill
plans 30 partitions before any job is done, so a person in several days' lists would be bought
once per day. When a partition is planned, its URLs that an earlier, unfinished plan of another
partition (the lender) has submitted or will submit are *borrowed*: recorded in
`<plan_id>.borrowed.parquet` (URL, lender date, lender plan id, lender job index) instead of being
submitted. The sensor requests the borrower's `enriched_contacts` run only once every lender has
settled, and the borrower's loader downloads the lenders' delivered job results again (downloads
are free), keeping only the borrowed URLs.

What may lend, and why:
- only a plan made earlier (it exists when the borrower is planned): no two plans ever wait for
  each other, and a borrower never lends what it borrowed (only a plan file's own URLs lend);
- only the newest plan of its partition, made within the re-enrichment window, not superseded,
  and whose results are not loaded yet (a loaded plan's rows are reused through
  `recent_enrichments`, its undelivered URLs must be bought);
- only from jobs not given up, and only if the lender asked for every field the borrower wants.
"""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.crustdata import CrustdataClient
from crust_assets.defs.job_events import (
    find_plan,
    fold_plans,
    iter_materializations,
    iter_plan_records,
    metadata_values,
    plan_from_record,
    plan_outcome,
)
from crust_assets.ingest import JobLedger, job_batches
from crust_assets.lifecycle.ledger import PlanState, plan_key
from crust_assets.names import current
from crust_assets.planning import BORROWED_SCHEMA, Lender, lender_keys
from crust_assets.storage import DataLayout
from crust_assets.table import project_to_columns, requested_columns


def lender_plans(
    instance: dg.DagsterInstance, date: str, fields: list[str], since: datetime
) -> list[Lender]:
    """Plans of other partitions that `date`'s new plan may borrow from, oldest first: the
    ledger's rules (`Ledger.lenders_for`) over the newest plan of each date made since `since`,
    folded in one pass over the event log."""
    newest: dict[str, PlanState] = {}
    for record in iter_plan_records(instance, after_timestamp=since.timestamp()):
        plan = plan_from_record(record)
        if plan is not None and plan.date != date:
            newest[plan.date] = plan  # oldest first: the last one seen is the partition's newest
    wanted = requested_columns(fields)
    ledger = fold_plans(instance, newest.values())
    lenders = ledger.lenders_for(
        date,
        lambda lender_fields: wanted <= requested_columns(lender_fields),
        loaded_plan_keys(instance, since),
    )
    return [Lender(plan, abandoned) for plan, abandoned in lenders]


def loaded_plan_keys(instance: dg.DagsterInstance, since: datetime) -> set[str]:
    """The plans whose results their partition's enriched_contacts holds (its newest load),
    among the loads written since `since`."""
    newest: dict[str, str] = {}
    for record in iter_materializations(instance, current().contacts_key, since.timestamp()):
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        plan_id = metadata_values(dict(materialization.metadata)).get("plan_id")
        newest[materialization.partition] = plan_key(materialization.partition, str(plan_id))
    return set(newest.values())


class BorrowedRows:
    """The borrowed URLs' rows, downloaded again from the lenders' delivered jobs.

    Why the lender's job results and not the lender's enriched_contacts file: the sensor requests
    the lender's and the borrower's runs in the same tick, so the lender's file may not be
    written yet (or may be rewritten by a later plan of that date); waiting for it would need a
    second kind of wait in the sensor. A delivered job's results are fixed, downloading them is
    free, `GET /batch/{id}` gives fresh pre-signed URLs exactly as for our own jobs, and the rows
    are the very rows the lender writes (same batch id, `enriched_at` and values). URLs a lender
    did not deliver (job given up, record missing, lender superseded) are listed in `missing`.
    """

    def __init__(self, instance: dg.DagsterInstance, layout: DataLayout, plan: PlanState) -> None:
        self.instance = instance
        self.layout = layout
        self.path = layout.plan_files_at(plan.plan_path).borrowed
        self.columns = requested_columns(plan.fields)
        self.missing: list[str] = []
        self.batch_ids: list[str] = []
        self.rows = 0

    def table(self) -> pa.Table:
        if not self.layout.exists(self.path):
            return BORROWED_SCHEMA.empty_table()
        return self.layout.read_table(self.path, schema=BORROWED_SCHEMA)

    def batches(self, client: CrustdataClient) -> Iterator[pa.RecordBatch]:
        borrowed = self.table()
        for key in lender_keys(borrowed):
            date, plan_id = key.split("/", 1)
            lent = borrowed.filter(
                pc.and_(
                    pc.equal(borrowed.column("lender_date"), date),
                    pc.equal(borrowed.column("lender_plan_id"), plan_id),
                )
            )
            yield from self._lender_batches(client, date, plan_id, lent)

    def _lender_batches(
        self, client: CrustdataClient, date: str, plan_id: str, lent: pa.Table
    ) -> Iterator[pa.RecordBatch]:
        lender = find_plan(self.instance, date, plan_id)
        delivered = plan_outcome(self.instance, lender).completed if lender else {}
        for index in sorted(set(lent.column("lender_job_index").to_pylist())):
            urls = lent.filter(pc.equal(lent.column("lender_job_index"), index))
            urls = urls.column("profile_url")
            event = delivered.get(index)
            # Given up, the lender was superseded, or (no batch id) every URL of the lender's
            # job was erased before it was sent: never delivered. The borrower's loader does
            # not count an erased person as missing.
            if event is None or not event.get("batch_id"):
                self.missing.extend(urls.to_pylist())
                continue
            batch_id = str(event["batch_id"])
            self.batch_ids.append(batch_id)
            ledger = JobLedger(urls)  # only the borrowed URLs: the lender's others are skipped
            status = client.status(batch_id)
            for batch in job_batches(client, status, ledger, columns=self.columns):
                self.rows += batch.num_rows
                # The lender may have bought more fields than this plan asks for.
                yield project_to_columns(batch, self.columns)
            self.missing.extend(ledger.missing())

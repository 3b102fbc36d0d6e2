"""The pipeline's assets: URL list -> enqueued jobs -> enriched contacts -> coverage and latest.

No asset here submits a job: `contact_enrichment_batch` only plans and enqueues, and the
`contact_enrichment_sensor` submits (see sensors.py). All I/O is explicit Parquet under the data
root, written atomically with the contract schema; Dagster keeps lineage and metadata.
"""

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from crust_assets.crustdata import CrustdataClient
from crust_assets.defs.borrowing import (
    BorrowedRows,
    borrow,
    lender_keys,
    lender_plans,
)
from crust_assets.defs.catalog_tags import asset_owners, asset_tags
from crust_assets.defs.checks import (
    ENRICHED_CONTACTS_CHECKS,
    contract_schema_check,
    one_row_per_url_check,
    unique_profile_url_check,
)
from crust_assets.defs.job_events import find_plan, plan_outcome
from crust_assets.defs.metadata import (
    column_schema,
    coverage_trend_markdown,
    fill_rate_metadata,
    markdown_counts,
)
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.pools import PLANNER_POOL
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.defs.spend import spend_metadata
from crust_assets.defs.table_metadata import (
    TABLE_IO_MANAGER_KEY,
    latest_column_lineage,
    table_definition_metadata,
)
from crust_assets.erasure import erased_urls, erasure_fence, publish_contacts
from crust_assets.ingest import JobLedger, PartStats, coalesce_batches, job_batches
from crust_assets.job_queue import MAX_URLS_PER_JOB, PlanState, job_count_for
from crust_assets.storage import (
    PARTITION_FILE,
    DataLayout,
    PlanFiles,
    write_parquet_atomic,
    write_table_atomic,
)
from crust_assets.table import (
    COLUMN_CREDITS,
    ENRICHED_CONTACTS_SCHEMA,
    REJECTS_SCHEMA,
    URL_LIST_SCHEMA,
    FillStats,
    covers_columns,
    project_to_columns,
    requested_columns,
    worst_case_credits,
)
from crust_assets.url_lists import (
    LINES_FILE,
    UrlListError,
    prepare_url_list,
    read_url_list_stream,
)
from crust_assets.warehouse_tables import COVERAGE_SCHEMA

GROUP = "contact_enrichment"
PLAN_SCHEMA = pa.schema(
    [pa.field("job_index", pa.int32(), nullable=False), pa.field("profile_url", pa.string())]
)
PARTITIONED_CONTACTS_SCHEMA = ENRICHED_CONTACTS_SCHEMA.append(pa.field("date", pa.string()))

download_retry_policy = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
)


# ---- contact_url_list ---------------------------------------------------------------------------
@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    owners=asset_owners(),
    tags=asset_tags(pii=True),
    kinds={"csv", "parquet"},
    description="A day's profile URLs: normalised, validated, deduplicated; rejects kept.",
)
def contact_url_list(
    context: dg.AssetExecutionContext, data_root: DataRoot, enrichment: EnrichmentSettings
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    path = layout.input_file(date)
    if not layout.is_file(path):
        raise dg.Failure(
            description=f"No input list for {date}: expected a CSV file at {layout.url(path)}",
            allow_retries=False,
        )
    size = layout.size(path)
    try:  # streamed, and refused before the first byte when over CRUST_INPUT_MAX_BYTES
        raw = read_url_list_stream(
            layout.url(path),
            lambda: layout.open_binary(path),
            size=size,
            limits=enrichment.input_limits(),
            url_column=enrichment.url_column or None,
        )
    except UrlListError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    prepared = prepare_url_list(raw)
    valid = prepared.valid.select(URL_LIST_SCHEMA.names).cast(URL_LIST_SCHEMA)
    rejects = prepared.rejects.select(REJECTS_SCHEMA.names).cast(REJECTS_SCHEMA)
    list_file = layout.staging_partition("contact_url_list", date)
    rejects_file = layout.warehouse_partition("rejected_urls", date)
    layout.write_table(list_file, valid)
    layout.write_table(rejects_file, rejects)
    # Every line with the user's own columns, for enriched_list (one row per input line).
    lines_file = layout.staging_partition("contact_url_list", date, LINES_FILE)
    layout.write_table(lines_file, prepared.lines)
    for note in raw.notes:
        context.log.info(f"{layout.url(path)}: {note}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": valid.num_rows,
            "rows_read": prepared.rows_read,
            "valid": prepared.valid_count,
            "duplicates": prepared.duplicates,
            "rejected": prepared.rejected,
            "rejected_by_reason": dg.MetadataValue.md(
                markdown_counts(prepared.rejected_by_reason, "reason")
            ),
            "input_file": dg.MetadataValue.path(layout.url(path)),
            "input_bytes": size,
            "rejects_file": dg.MetadataValue.path(layout.url(rejects_file)),
            "input_columns": dg.MetadataValue.json(list(raw.columns)),
            "header_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in raw.notes) or "none"),
            "rows_short": raw.short_rows,
            "rows_long": raw.long_rows,
            "lines_file": dg.MetadataValue.path(layout.url(lines_file)),
        }
    )


# ---- contact_enrichment_batch -------------------------------------------------------------------
class BatchConfig(dg.Config):
    """Run-time choices for planning a partition."""

    replace_unfinished_plan: bool = False
    """Plan again even though the previous plan of this date still has jobs running."""


@dg.asset(
    partitions_def=daily_partitions,
    deps=[contact_url_list],
    group_name=GROUP,
    owners=asset_owners(),
    tags=asset_tags(pii=True),
    pool=PLANNER_POOL,
    kinds={"crustdata"},
    description=(
        "Enqueued Crustdata jobs (<= 300 URLs each) for a day's list; recently enriched URLs are "
        "reused and URLs other partitions' plans are buying are borrowed, not re-bought. The "
        "sensor submits; job events appear here."
    ),
)
def contact_enrichment_batch(
    context: dg.AssetExecutionContext,
    config: BatchConfig,
    data_root: DataRoot,
    enrichment: EnrichmentSettings,
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    fields = enrichment.api_fields()
    if not config.replace_unfinished_plan:
        refusal = unfinished_plan_failure(context.instance, date)
        if refusal is not None:
            raise refusal
    urls = layout.read_table(
        layout.staging_partition("contact_url_list", date), columns=["profile_url"]
    )
    # People erased with `crust-assets forget` are not bought back unless explicitly allowed.
    erased = set() if enrichment.allow_reenrich_erased else erased_urls(layout)
    refused_erased = 0
    if erased:
        not_erased = pc.invert(
            pc.is_in(urls.column("profile_url"), value_set=pa.array(sorted(erased), pa.string()))
        )
        kept = urls.filter(not_erased)
        refused_erased = urls.num_rows - kept.num_rows
        urls = kept
    if refused_erased:
        context.log.warning(
            f"{refused_erased} URLs of {date} were erased with `crust-assets forget`: not "
            "enriched (set CRUST_ALLOW_REENRICH_ERASED=true to enrich them again)"
        )
    since = datetime.now(timezone.utc) - timedelta(days=enrichment.reenrich_window_days)
    reused = recent_enrichments(
        layout, urls.column("profile_url"), since, requested_columns(fields)
    )
    not_reused = without_urls(urls, reused.column("profile_url"))
    # URLs another partition's unfinished plan is already buying: borrowed, not bought again.
    lenders = lender_plans(context.instance, date, fields, since)
    borrowed = borrow(layout, not_reused.column("profile_url"), lenders)
    to_submit = without_urls(not_reused, borrowed.column("profile_url"))
    estimate = worst_case_credits(to_submit.num_rows, fields)
    if estimate > enrichment.credit_budget:
        raise dg.Failure(
            description=(
                f"Partition {date}: {to_submit.num_rows} URLs to enrich could cost up to "
                f"{estimate} "
                f"credits (fields {', '.join(fields)}), above the budget of "
                f"{enrichment.credit_budget}. Raise CRUST_CREDIT_BUDGET or split the list."
            ),
            metadata={"credits_estimate": estimate, "credit_budget": enrichment.credit_budget},
            allow_retries=False,
        )
    plan_id = context.run.run_id
    files = write_plan_files(
        layout,
        date,
        plan_id,
        PlanTables(to_submit, reused, borrowed),
        refuse_erased=not enrichment.allow_reenrich_erased,
    )
    to_submit, reused, borrowed = files.tables.to_submit, files.tables.reused, files.tables.borrowed
    refused_erased += files.refused_late
    job_count = job_count_for(to_submit.num_rows)
    if borrowed.num_rows:
        context.log.info(
            f"{borrowed.num_rows} URLs of {date} are already being bought by "
            f"{', '.join(lender_keys(borrowed))}: borrowed, not submitted again; "
            "enriched_contacts waits for those plans"
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": to_submit.num_rows,
            "plan_id": plan_id,
            "job_count": job_count,
            "urls_to_submit": to_submit.num_rows,
            "urls_reused": reused.num_rows,
            "urls_borrowed": borrowed.num_rows,
            "lender_plans": dg.MetadataValue.json(lender_keys(borrowed)),
            "urls_refused_erased": refused_erased,
            "reenrich_window_days": enrichment.reenrich_window_days,
            "fields": ",".join(fields),
            "credits_estimate_worst_case": estimate,
            "credit_budget": enrichment.credit_budget,
            "plan_file": str(files.paths.submit.relative_to(layout.root)),
            "reused_file": str(files.paths.reused.relative_to(layout.root)),
            "borrowed_file": str(files.paths.borrowed.relative_to(layout.root)),
        }
    )


@dataclass(frozen=True)
class PlanTables:
    """What a plan writes: URLs to submit, rows reused from partitions, URLs borrowed."""

    to_submit: pa.Table
    reused: pa.Table
    borrowed: pa.Table


@dataclass(frozen=True)
class WrittenPlan:
    """The staging files a plan wrote, the tables as written, and the late erasures dropped."""

    paths: PlanFiles
    tables: PlanTables
    refused_late: int


def write_plan_files(
    layout: DataLayout, date: str, plan_id: str, tables: PlanTables, *, refuse_erased: bool
) -> WrittenPlan:
    """Write a plan's three staging files inside the erasure fence (see erasure.py).

    The plan read the erasure log when it started, and a `forget` may have run since. Inside the
    fence the log is read again and the people it names are dropped from the reused rows (contact
    data, never published for an erased person) and, unless re-enriching them is allowed, from
    the URLs to submit and to borrow: a plan made during a `forget` neither stores nor buys them.
    """
    paths = layout.plan_files(date, plan_id)
    with erasure_fence(layout, f"contact_enrichment_batch[{date}]") as erased:
        gone = pa.array(sorted(erased), pa.string())
        reused = without_urls(tables.reused, gone)
        to_submit, borrowed = tables.to_submit, tables.borrowed
        if refuse_erased:
            to_submit, borrowed = without_urls(to_submit, gone), without_urls(borrowed, gone)
        refused = tables.to_submit.num_rows + tables.borrowed.num_rows
        refused -= to_submit.num_rows + borrowed.num_rows
        job_index = pa.array(
            [i // MAX_URLS_PER_JOB for i in range(to_submit.num_rows)], type=pa.int32()
        )
        plan_table = pa.table(
            {"job_index": job_index, "profile_url": to_submit.column("profile_url")},
            schema=PLAN_SCHEMA,
        )
        # One row group per job: the sensor reads exactly one job's URLs at submit time.
        layout.write_table(paths.submit, plan_table, row_group_size=MAX_URLS_PER_JOB)
        layout.write_table(paths.reused, reused)
        layout.write_table(paths.borrowed, borrowed)
    written = PlanTables(to_submit, reused, borrowed)
    return WrittenPlan(paths, written, refused)


def unfinished_plan_failure(instance: dg.DagsterInstance, date: str) -> dg.Failure | None:
    """Why a new plan of `date` must not replace the previous one yet (None: it may).

    The previous plan may have jobs running, or be done with its own jobs but wait for the plans
    it borrowed URLs from: either way its results are not loaded, and a new plan would buy them
    again (a plan never borrows from its own partition's earlier plan).
    """
    previous = find_plan(instance, date)
    if previous is None:
        return None
    outcome = plan_outcome(instance, previous)
    if outcome.outcome is None and previous.job_count > 0:
        unfinished = previous.job_count - len(outcome.completed)
        reason = f"{unfinished} of {previous.job_count} jobs not finished"
    elif outcome.outcome != "superseded" and (waiting := unsettled_lenders(instance, previous)):
        reason = (
            f"{previous.borrowed} URLs borrowed from plans still running ({', '.join(waiting)})"
        )
    else:
        return None
    return dg.Failure(
        description=(
            f"Partition {date} already has plan {previous.plan_id} with {reason}. Wait for "
            "contact_enrichment_sensor to finish it (is the sensor running?), or launch with "
            "config replace_unfinished_plan: true (its running jobs are still billed)."
        ),
        allow_retries=False,
    )


def without_urls(table: pa.Table, urls: pa.ChunkedArray | pa.Array) -> pa.Table:
    """The rows of `table` whose profile_url is not one of `urls`."""
    return table.filter(pc.invert(pc.is_in(table.column("profile_url"), value_set=urls)))


def contacts_dataset(layout: DataLayout) -> ds.Dataset | None:
    """All partitions of enriched_contacts, with `date` from the directory names."""
    root = layout.warehouse_dataset("enriched_contacts")
    if not layout.is_dir(root):
        return None
    return layout.dataset(
        root,
        format="parquet",
        schema=PARTITIONED_CONTACTS_SCHEMA,
        partitioning=ds.partitioning(pa.schema([pa.field("date", pa.string())]), flavor="hive"),
    )


def recent_enrichments(
    layout: DataLayout, urls: pa.ChunkedArray, since: datetime, columns: set[str]
) -> pa.Table:
    """For each of `urls`, the newest row enriched at or after `since` in any partition that was
    bought with every one of `columns`, shown with those columns only (`project_to_columns`)."""
    dataset = contacts_dataset(layout)
    if dataset is None or len(urls) == 0:
        return ENRICHED_CONTACTS_SCHEMA.empty_table()
    found = dataset.to_table(
        filter=(ds.field("enriched_at") >= pa.scalar(since, pa.timestamp("us", tz="UTC")))
        & ds.field("profile_url").isin(urls.combine_chunks())
    )
    found = found.filter(covers_columns(found, columns))
    newest = (
        newest_per_profile(found)
        .select(ENRICHED_CONTACTS_SCHEMA.names)
        .cast(ENRICHED_CONTACTS_SCHEMA)
    )
    batches = [project_to_columns(batch, columns) for batch in newest.to_batches()]
    return pa.Table.from_batches(batches, schema=ENRICHED_CONTACTS_SCHEMA)


def newest_per_profile(table: pa.Table) -> pa.Table:
    """Keep one row per profile_url: the latest enriched_at (then the latest partition)."""
    if table.num_rows == 0:
        return table
    sort_keys = [("profile_url", "ascending"), ("enriched_at", "descending")]
    if "date" in table.column_names:
        sort_keys.append(("date", "descending"))
    ordered = table.sort_by(sort_keys)
    urls = ordered.column("profile_url").combine_chunks()
    first = pa.array([True])
    changed = pc.not_equal(urls[1:], urls[:-1]) if len(urls) > 1 else pa.array([], pa.bool_())
    return ordered.filter(pa.concat_arrays([first, changed.cast(pa.bool_())]))


# ---- enriched_contacts --------------------------------------------------------------------------
@dg.asset(
    partitions_def=daily_partitions,
    deps=[contact_enrichment_batch],
    group_name=GROUP,
    owners=asset_owners(),
    tags=asset_tags(pii=True),
    kinds={"parquet", "crustdata"},
    check_specs=ENRICHED_CONTACTS_CHECKS,
    retry_policy=download_retry_policy,
    pool="crustdata_downloads",
    description="Contact data per profile URL of a day's list: one row per unique valid URL.",
    io_manager_key=TABLE_IO_MANAGER_KEY,
    metadata=table_definition_metadata("enriched_contacts"),
)
def enriched_contacts(
    context: dg.AssetExecutionContext, crustdata: CrustdataResource, data_root: DataRoot
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    plan_id = context.run.tags.get("crust/plan_id")
    plan = find_plan(context.instance, date, plan_id)
    if plan is None:
        raise dg.Failure(
            description=f"No plan for {date}: materialise contact_enrichment_batch[{date}] first.",
            allow_retries=False,
        )
    outcome = plan_outcome(context.instance, plan)
    if outcome.outcome is None and len(outcome.completed) + len(outcome.abandoned) < plan.job_count:
        raise dg.Failure(
            description=(
                f"Plan {plan.plan_id} of {date} is still running: {len(outcome.completed)} of "
                f"{plan.job_count} jobs completed. contact_enrichment_sensor requests this run "
                "when they are all done."
            ),
            allow_retries=False,
        )
    waiting = unsettled_lenders(context.instance, plan)
    if waiting:
        raise dg.Failure(
            description=(
                f"Plan {plan.plan_id} of {date} borrowed {plan.borrowed} URLs from plans still "
                f"running ({', '.join(waiting)}). contact_enrichment_sensor requests this run "
                "when they are settled."
            ),
            allow_retries=False,
        )
    loader = ContactsLoader(
        layout, plan, outcome.completed, BorrowedRows(context.instance, layout, plan)
    )
    target = layout.warehouse_partition("enriched_contacts", date)
    with crustdata.client() as client:
        published = publish_contacts(
            layout,
            target,
            lambda path: write_parquet_atomic(
                path, loader.batches(client), ENRICHED_CONTACTS_SCHEMA
            ),
            f"enriched_contacts[{date}]",
        )
    loader.erased_dropped += published.dropped  # erased while the rows were downloaded
    rows = published.rows
    written = layout.read_table(target, schema=ENRICHED_CONTACTS_SCHEMA)
    stats = FillStats()
    stats.add(written)
    missing_jobs = sorted(set(range(plan.job_count)) - set(outcome.completed))
    failure_reasons = sorted({outcome.abandoned.get(i, "not delivered") for i in missing_jobs})
    check_results = [
        one_row_per_url_check(
            written,
            expected=loader.expected_urls(),
            missing_records=loader.missing,
            missing_borrowed=loader.missing_borrowed,
            undelivered_jobs=len(missing_jobs),
            reasons=failure_reasons,
            date=date,
        ),
        unique_profile_url_check(written),
        contract_schema_check(layout.read_schema(target)),
    ]
    credits = stats.credits(COLUMN_CREDITS)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": column_schema(),
            "plan_id": plan.plan_id,
            "batch_ids": dg.MetadataValue.json(loader.batch_ids),
            "jobs_delivered": len(outcome.completed),
            "jobs_not_delivered": len(missing_jobs),
            "rows_from_jobs": loader.rows_from_jobs,
            "rows_reused": loader.rows_reused,
            "rows_borrowed": loader.borrowed.rows,
            "lender_plans": dg.MetadataValue.json(plan.lenders),
            "lender_batch_ids": dg.MetadataValue.json(loader.borrowed.batch_ids),
            "matched": stats.matched,
            **fill_rate_metadata(stats),
            "credits": credits,
            "missing_records": len(loader.missing),
            "missing_borrowed": len(loader.missing_borrowed),
            "rows_dropped_erased": loader.erased_dropped,
            "urls_erased_not_delivered": loader.erased_not_delivered,
            "duplicate_records_dropped": loader.duplicates,
            "unexpected_records": loader.unexpected,
            "file": dg.MetadataValue.path(layout.url(target)),
        },
        check_results=check_results,
    )


def unsettled_lenders(instance: dg.DagsterInstance, plan: PlanState) -> list[str]:
    """The plan's lenders that may still deliver (no outcome in the event log yet)."""
    waiting = []
    for key in plan.lenders:
        date, plan_id = key.split("/", 1)
        lender = find_plan(instance, date, plan_id)
        if lender is not None and plan_outcome(instance, lender).outcome is None:
            waiting.append(key)
    return waiting


class ContactsLoader:
    """Streams a plan's rows: reused rows, borrowed rows, then every delivered job's records,
    deduplicated (the three URL sets are disjoint by construction of the plan)."""

    def __init__(
        self,
        layout: DataLayout,
        plan: PlanState,
        completed: dict[int, dict[str, Any]],
        borrowed: BorrowedRows,
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
        self.duplicates = 0
        self.unexpected = 0
        self.rows_from_jobs = 0
        self.rows_reused = 0
        self.parts = PartStats()
        # People erased with `crust-assets forget` after this plan was made are not written back.
        erased = erased_urls(layout)
        self.erased = pa.array(sorted(erased), pa.string()) if erased else None
        self.erased_dropped = 0
        # Planned URLs a job did not deliver because the person was erased (the sensor does
        # not send them): not missing, and not expected in the file.
        self.erased_not_delivered = 0

    def job_urls(self, index: int) -> pa.ChunkedArray:
        return self.plan_file.read_row_group(index, columns=["profile_url"]).column(0)

    def expected_urls(self) -> int:
        """Rows the partition must have: every URL of the plan plus the reused and borrowed
        ones, but the people erased since the plan was made."""
        borrowed_erased = len(self.borrowed.missing) - len(self.missing_borrowed)
        return (
            self.plan.url_count
            + self.rows_reused
            + self.plan.borrowed
            - self.erased_dropped
            - borrowed_erased
            - self.erased_not_delivered
        )

    @property
    def missing_borrowed(self) -> list[str]:
        """Borrowed URLs their lender did not deliver; an erased person is not missing (they
        would not be written anyway), so they count as dropped instead."""
        if self.erased is None:
            return self.borrowed.missing
        missing = pa.array(self.borrowed.missing, pa.string())
        erased = pc.is_in(missing, value_set=self.erased)
        return missing.filter(pc.invert(erased)).to_pylist()

    def _without_erased(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if self.erased is not None:
                keep = pc.invert(pc.is_in(batch.column("profile_url"), value_set=self.erased))
                kept = batch.filter(keep)
                self.erased_dropped += batch.num_rows - kept.num_rows
                batch = kept
            if batch.num_rows:
                yield batch

    def batches(self, client: CrustdataClient) -> Iterator[pa.RecordBatch]:
        yield from self._without_erased(self._all_batches(client))

    def _all_batches(self, client: CrustdataClient) -> Iterator[pa.RecordBatch]:
        reused_path = self.paths.reused
        if self.layout.exists(reused_path):
            reused = self.layout.parquet_file(reused_path)
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
        ledger = JobLedger(self.job_urls(index))
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
        self._note_missing(ledger.missing())

    def _note_missing(self, urls: list[str]) -> None:
        """A job's URLs with no record: missing, but the erased ones (not sent, or not kept)."""
        if self.erased is None or not urls:
            self.missing.extend(urls)
            return
        missing = pa.array(urls, pa.string())
        erased = pc.is_in(missing, value_set=self.erased)
        self.erased_not_delivered += pc.sum(erased).as_py() or 0
        self.missing.extend(missing.filter(pc.invert(erased)).to_pylist())


# ---- contact_coverage ---------------------------------------------------------------------------
# Run when enriched_contacts gets a new partition (or this one is missing while its input exists),
# once per change, never while the input is being written, and only if its blocking checks passed.
automation = (
    (
        dg.AutomationCondition.any_deps_updated()
        | (
            dg.AutomationCondition.missing()
            & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing())
        )
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("when enriched_contacts changes and its checks pass")


@dg.asset(
    partitions_def=daily_partitions,
    deps=[enriched_contacts],
    group_name=GROUP,
    owners=asset_owners(),
    tags=asset_tags(pii=False),
    kinds={"parquet"},
    automation_condition=automation,
    description="Per partition: profiles requested and matched, fill rate per field, credits.",
    io_manager_key=TABLE_IO_MANAGER_KEY,
    metadata=table_definition_metadata("contact_coverage"),
)
def contact_coverage(
    context: dg.AssetExecutionContext, data_root: DataRoot, enrichment: EnrichmentSettings
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    table = layout.read_table(
        layout.warehouse_partition("enriched_contacts", date), schema=ENRICHED_CONTACTS_SCHEMA
    )
    stats = FillStats()
    stats.add(table)
    rates = stats.fill_rates()
    row = {
        "requested": stats.rows,
        "matched": stats.matched,
        **{f"{name}_fill_rate": rate for name, rate in rates.items()},
        "credits": stats.credits(COLUMN_CREDITS),
        "computed_at": datetime.now(timezone.utc),
    }
    target = layout.warehouse_partition("contact_coverage", date)
    layout.write_table(target, pa.Table.from_pylist([row], schema=COVERAGE_SCHEMA))
    history = coverage_dataset(layout).to_table().to_pylist()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 1,
            "requested": stats.rows,
            "matched": stats.matched,
            **fill_rate_metadata(stats),
            "credits": row["credits"],
            **spend_metadata(
                context.instance, layout, row["computed_at"], enrichment.monthly_credit_budget
            ),
            "fill_rates_over_time": dg.MetadataValue.md(coverage_trend_markdown(history)),
            "file": dg.MetadataValue.path(layout.url(target)),
        }
    )


def coverage_dataset(layout: DataLayout) -> ds.Dataset:
    """Every partition's coverage row, with `date` from the directory names."""
    return layout.dataset(
        layout.warehouse_dataset("contact_coverage"),
        format="parquet",
        schema=COVERAGE_SCHEMA.append(pa.field("date", pa.string())),
        partitioning=ds.partitioning(pa.schema([pa.field("date", pa.string())]), flavor="hive"),
    )


# ---- contacts_latest ----------------------------------------------------------------------------
@dg.asset(
    deps=[enriched_contacts],
    group_name=GROUP,
    owners=asset_owners(),
    tags=asset_tags(pii=True),
    kinds={"parquet"},
    automation_condition=automation,
    description="The newest record per profile across all partitions: what a CRM sync reads.",
    io_manager_key=TABLE_IO_MANAGER_KEY,
    metadata={
        **table_definition_metadata("contacts_latest"),
        "dagster/column_lineage": latest_column_lineage(),
    },
)
def contacts_latest(context: dg.AssetExecutionContext, data_root: DataRoot) -> dg.MaterializeResult:
    layout = data_root.layout()
    dataset = contacts_dataset(layout)
    table = dataset.to_table() if dataset is not None else PARTITIONED_CONTACTS_SCHEMA.empty_table()
    latest = newest_per_profile(table).cast(PARTITIONED_CONTACTS_SCHEMA)
    target = layout.warehouse_dataset("contacts_latest") / PARTITION_FILE
    # The partitions were read above; people erased since are dropped as the file is published.
    published = publish_contacts(
        layout, target, lambda path: write_table_atomic(path, latest), "contacts_latest"
    )
    partitions = len(pc.unique(table.column("date"))) if table.num_rows else 0
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": published.rows,
            "rows_dropped_erased": published.dropped,
            "dagster/column_schema": column_schema(with_date=True),
            "partitions_read": partitions,
            "rows_read": table.num_rows,
            "file": dg.MetadataValue.path(layout.url(target)),
        }
    )


# ---- contacts_duckdb ----------------------------------------------------------------------------
DUCKDB_FILE = "contacts.duckdb"


def duckdb_view_sql(layout: DataLayout) -> dict[str, str]:
    """The views, over the hive-partitioned files: always current, nothing copied.

    On a remote root they name `s3://...` URLs: a connection needs that filesystem (an fsspec
    one registered with `register_filesystem`, or DuckDB's httpfs) to query them.
    """

    def glob(dataset: str) -> str:
        return layout.url(layout.warehouse_dataset(dataset) / "*" / "*.parquet").replace("'", "''")

    latest = layout.url(layout.warehouse_dataset("contacts_latest") / PARTITION_FILE)
    latest = latest.replace("'", "''")
    return {
        "enriched_contacts": (
            f"SELECT * FROM read_parquet('{glob('enriched_contacts')}', hive_partitioning = true,"
            " hive_types = {'date': DATE}, union_by_name = true)"
        ),
        "contact_coverage": (
            f"SELECT * FROM read_parquet('{glob('contact_coverage')}', hive_partitioning = true,"
            " hive_types = {'date': DATE})"
        ),
        "rejected_urls": (
            f"SELECT * FROM read_parquet('{glob('rejected_urls')}', hive_partitioning = true,"
            " hive_types = {'date': DATE})"
        ),
        "contacts_latest": f"SELECT * FROM read_parquet('{latest}')",
    }


@dg.asset(
    deps=[contacts_latest, contact_coverage],
    group_name=GROUP,
    owners=asset_owners(),
    tags=asset_tags(pii=True),
    kinds={"duckdb"},
    automation_condition=automation,
    description="A DuckDB database of views over the warehouse: open it and query, no setup.",
)
def contacts_duckdb(context: dg.AssetExecutionContext, data_root: DataRoot) -> dg.MaterializeResult:
    """On an object-store root the database is built in a local spool file, with views that
    name `s3://` URLs, and uploaded beside the warehouse like every other file: the views stay
    current, and the row counts below are read through the same fsspec filesystem."""
    import duckdb

    layout = data_root.layout()
    target = layout.warehouse_dir / DUCKDB_FILE
    views = {
        name: sql
        for name, sql in duckdb_view_sql(layout).items()
        if layout.glob(layout.warehouse_dataset(name), "**/*.parquet")
    }

    def build(path: Path) -> dict[str, int]:
        with private_build_path(path) as built:
            connection = duckdb.connect(str(built))
            try:
                if not layout.is_local:
                    connection.register_filesystem(layout.fs)
                for name, sql in views.items():
                    connection.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
                return {
                    name: connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                    for name in views
                }
            finally:
                connection.close()

    counts = layout.publish(target, build)
    return dg.MaterializeResult(
        metadata={
            "file": dg.MetadataValue.path(layout.url(target)),
            "views": dg.MetadataValue.json(sorted(views)),
            **{f"rows_{name}": count for name, count in counts.items()},
            "open_with": dg.MetadataValue.md(duckdb_open_note(layout, layout.url(target))),
        }
    )


@contextlib.contextmanager
def private_build_path(path: Path) -> Iterator[Path]:
    """A path for a file that DuckDB creates itself, in an owner-only directory beside `path`;
    on success the finished file (CRUST_FILE_MODE) is moved to `path`.

    DuckDB refuses a file created beforehand with the right mode, and makes its file and its
    `.wal` with the process umask (0644 under the usual 022): inside a 0700 directory nobody
    else can open them while they are built. Beside `path`, so the move is a rename.
    """
    import os
    import tempfile

    from crust_assets.storage import configured_file_mode

    with tempfile.TemporaryDirectory(prefix=".duckdb-build-", dir=path.parent) as private:
        built = Path(private) / path.name  # mkdtemp makes the directory 0700 whatever the umask
        yield built
        os.chmod(built, configured_file_mode())
        os.replace(built, path)


def duckdb_open_note(layout: DataLayout, target: str) -> str:
    """How to open the database: directly when local; with the filesystem registered when not."""
    if layout.is_local:
        return f"```\nduckdb {target}\nSELECT * FROM contacts_latest LIMIT 10;\n```"
    protocol = target.split("://", 1)[0]
    return (
        "The views read the Parquet files from the object store: query them with that "
        "filesystem registered (same credentials and endpoint env vars as the pipeline), or "
        "ATTACH the file with DuckDB's httpfs extension and an S3 secret.\n"
        f"```python\nimport duckdb, fsspec\nfs = fsspec.filesystem({protocol!r})\n"
        f"fs.get({target!r}, 'contacts.duckdb')\n"
        "con = duckdb.connect('contacts.duckdb', read_only=True)\n"
        "con.register_filesystem(fs)\n"
        "con.sql('SELECT * FROM contacts_latest LIMIT 10').show()\n```"
    )

"""The pipeline's assets: URL list -> enqueued jobs -> enriched contacts -> coverage and latest.

No asset here submits a job: `contact_enrichment_batch` only plans and enqueues, and the
`contact_enrichment_sensor` submits (see submitter.py). All I/O is explicit Parquet under the data
root, written atomically with the contract schema; Dagster keeps lineage and metadata.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import PurePath
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds

from crust_assets.contact_history import (
    PARTITIONED_CONTACTS_SCHEMA,
    all_contacts,
    newest_per_profile,
    partition_count,
)
from crust_assets.defs.borrowing import BorrowedRows, lender_plans
from crust_assets.defs.catalog_tags import asset_owners, asset_tags
from crust_assets.defs.checks import (
    contract_schema_check,
    enriched_contacts_checks,
    one_row_per_url_check,
    unique_profile_url_check,
)
from crust_assets.defs.freshness import enriched_contacts_freshness_policy
from crust_assets.defs.metadata import (
    column_schema,
    coverage_trend_markdown,
    fill_rate_metadata,
    markdown_counts,
)
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.plan_gates import loadable_plan, unfinished_plan_failure
from crust_assets.defs.planned_lists import INPUT_MODIFIED_NS
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.defs.spend import spend_metadata, with_month_to_date
from crust_assets.defs.table_metadata import (
    latest_column_lineage,
    table_definition_metadata,
)
from crust_assets.duckdb_views import (
    DUCKDB_FILE,
    build_database,
    duckdb_open_note,
    present_views,
)
from crust_assets.erasure import erased_urls, publish_contacts
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.loading import LoadReport, load_partition
from crust_assets.names import DEFAULT_NAMES, Names, using
from crust_assets.planning import Plan, PlanRequest, make_plan, write_plan
from crust_assets.storage import (
    PARTITION_FILE,
    DataLayout,
    PlanFiles,
    write_table_atomic,
)
from crust_assets.table import (
    COLUMN_CREDITS,
    ENRICHED_CONTACTS_SCHEMA,
    REJECTS_SCHEMA,
    URL_LIST_SCHEMA,
    FillStats,
)
from crust_assets.url_lists import (
    LINES_FILE,
    PreparedUrlList,
    UrlList,
    UrlListError,
    prepare_url_list,
    read_url_list_stream,
)
from crust_assets.warehouse_tables import COVERAGE_SCHEMA

download_retry_policy = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
)


# ---- contact_url_list ---------------------------------------------------------------------------
def prepare_list(
    context: dg.AssetExecutionContext, data_root: DataRoot, enrichment: EnrichmentSettings
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    source = InputList(layout, date)
    raw = source.read(enrichment)
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
        context.log.info(f"{source.url}: {note}")
    files = (layout.url(rejects_file), layout.url(lines_file))
    return dg.MaterializeResult(metadata=url_list_metadata(source, raw, prepared, *files))


@dataclass(frozen=True)
class InputList:
    """A day's input file; reading it refuses a missing, oversized or unreadable file with a
    `dg.Failure` that says which file and what is wrong."""

    layout: DataLayout
    date: str

    @property
    def path(self) -> PurePath:
        return self.layout.input_file(self.date)

    @property
    def url(self) -> str:
        return self.layout.url(self.path)

    @cached_property
    def size(self) -> int:
        return self.layout.size(self.path)

    @cached_property
    def modified_ns(self) -> int:
        """The file's modification time, taken before its first byte is read (`read` takes it):
        the file sensor compares it with the file's time to tell an unchanged list."""
        return self.layout.modified_ns(self.path)

    def read(self, enrichment: EnrichmentSettings) -> UrlList:
        if not self.layout.is_file(self.path):
            raise dg.Failure(
                description=f"No input list for {self.date}: expected a CSV file at {self.url}",
                allow_retries=False,
            )
        _ = self.modified_ns  # taken before the read: a change during it is a new version
        try:  # streamed, and refused before the first byte when over CRUST_INPUT_MAX_BYTES
            return read_url_list_stream(
                self.url,
                lambda: self.layout.open_binary(self.path),
                size=self.size,
                limits=enrichment.input_limits(),
                url_column=enrichment.url_column or None,
            )
        except UrlListError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None


def url_list_metadata(
    source: InputList, raw: UrlList, prepared: PreparedUrlList, rejects_url: str, lines_url: str
) -> dict[str, object]:
    """What the UI shows of a read list: the counts, why rows were rejected, the columns."""
    return {
        "dagster/row_count": prepared.valid.num_rows,
        "rows_read": prepared.rows_read,
        "valid": prepared.valid_count,
        "duplicates": prepared.duplicates,
        "rejected": prepared.rejected,
        "rejected_by_reason": dg.MetadataValue.md(
            markdown_counts(prepared.rejected_by_reason, "reason")
        ),
        "input_file": dg.MetadataValue.path(source.url),
        "input_bytes": source.size,
        INPUT_MODIFIED_NS: source.modified_ns,
        "rejects_file": dg.MetadataValue.path(rejects_url),
        "input_columns": dg.MetadataValue.json(list(raw.columns)),
        "header_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in raw.notes) or "none"),
        "rows_short": raw.short_rows,
        "rows_long": raw.long_rows,
        "lines_file": dg.MetadataValue.path(lines_url),
    }


# ---- contact_enrichment_batch -------------------------------------------------------------------
class BatchConfig(dg.Config):
    """Run-time choices for planning a partition."""

    replace_unfinished_plan: bool = False
    """Plan again even though the previous plan of this date still has jobs running."""


def plan_partition(
    context: dg.AssetExecutionContext,
    config: BatchConfig,
    data_root: DataRoot,
    enrichment: EnrichmentSettings,
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    if not config.replace_unfinished_plan:
        refusal = unfinished_plan_failure(context.instance, date)
        if refusal is not None:
            raise refusal
    request = plan_request(enrichment, date)
    request = with_month_to_date(request, context.instance)  # for the monthly budget
    urls = layout.read_table(
        layout.staging_partition("contact_url_list", date), columns=["profile_url"]
    )
    # People erased with `crust-assets forget` are not bought back unless explicitly allowed.
    erased = erased_urls(layout) if request.refuse_erased else set()
    # URLs another partition's unfinished plan is already buying: borrowed, not bought again.
    lenders = lender_plans(context.instance, date, list(request.fields), request.since)
    plan = make_plan(layout, urls, erased, lenders, request)
    for reason in plan.reasons:
        (context.log.warning if reason.warning else context.log.info)(reason.text)
    if plan.refusal is not None:
        raise dg.Failure(
            description=plan.refusal.description,
            metadata=plan.refusal.metadata,
            allow_retries=False,
        )
    files = layout.plan_files(date, context.run.run_id)
    plan = write_plan(layout, files, plan)
    return dg.MaterializeResult(metadata=plan_metadata(layout, context.run.run_id, files, plan))


def plan_request(enrichment: EnrichmentSettings, date: str) -> PlanRequest:
    """What a plan of `date` is made with, from the settings, as of now."""
    return PlanRequest(
        date=date,
        fields=tuple(enrichment.api_fields()),
        reenrich_window_days=enrichment.reenrich_window_days,
        credit_budget=enrichment.credit_budget,
        monthly_credit_budget=enrichment.monthly_credit_budget,
        refuse_erased=not enrichment.allow_reenrich_erased,
        now=datetime.now(timezone.utc),
    )


def plan_metadata(
    layout: DataLayout, plan_id: str, files: PlanFiles, plan: Plan
) -> dict[str, object]:
    """A written plan as the UI shows it; the sensor and the loader read plans back from it."""
    return {
        "dagster/row_count": plan.to_submit.num_rows,
        "plan_id": plan_id,
        "job_count": plan.job_count,
        "urls_to_submit": plan.to_submit.num_rows,
        "urls_reused": plan.reused.num_rows,
        "urls_borrowed": plan.borrowed.num_rows,
        "lender_plans": dg.MetadataValue.json(plan.lender_keys),
        "urls_refused_erased": plan.refused_erased,
        "reenrich_window_days": plan.request.reenrich_window_days,
        "fields": ",".join(plan.request.fields),
        "credits_estimate_worst_case": plan.credits_estimate,
        "credit_budget": plan.request.credit_budget,
        "plan_file": str(files.submit.relative_to(layout.root)),
        "reused_file": str(files.reused.relative_to(layout.root)),
        "borrowed_file": str(files.borrowed.relative_to(layout.root)),
    }


# ---- enriched_contacts --------------------------------------------------------------------------
def load_contacts(
    context: dg.AssetExecutionContext, crustdata: CrustdataResource, data_root: DataRoot
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    plan_id = context.run.tags.get("crust/plan_id")
    plan, outcome = loadable_plan(context.instance, date, plan_id)
    borrowed = BorrowedRows(context.instance, layout, plan)
    with crustdata.client() as client:
        report = load_partition(
            layout, plan, outcome.completed, outcome.abandoned, borrowed, client
        )
    return dg.MaterializeResult(
        metadata=load_metadata(layout, plan, report),
        check_results=[
            one_row_per_url_check(
                report.table,
                expected=report.expected,
                missing_records=report.missing,
                missing_borrowed=report.missing_borrowed,
                undelivered_jobs=report.jobs_not_delivered,
                reasons=report.failure_reasons,
                date=date,
            ),
            unique_profile_url_check(report.table),
            contract_schema_check(report.schema),
        ],
    )


def load_metadata(layout: DataLayout, plan: PlanState, report: LoadReport) -> dict[str, object]:
    """A load as the UI shows it; borrowing reads `plan_id` back to know what is loaded."""
    return {
        "dagster/row_count": report.rows,
        "dagster/column_schema": column_schema(),
        "plan_id": plan.plan_id,
        "batch_ids": dg.MetadataValue.json(report.batch_ids),
        "jobs_delivered": report.jobs_delivered,
        "jobs_not_delivered": report.jobs_not_delivered,
        "rows_from_jobs": report.rows_from_jobs,
        "rows_reused": report.rows_reused,
        "rows_borrowed": report.rows_borrowed,
        "lender_plans": dg.MetadataValue.json(plan.lenders),
        "lender_batch_ids": dg.MetadataValue.json(report.lender_batch_ids),
        "matched": report.fill.matched,
        **fill_rate_metadata(report.fill),
        "credits": report.fill.credits(COLUMN_CREDITS),
        "missing_records": len(report.missing),
        "missing_borrowed": len(report.missing_borrowed),
        "rows_dropped_erased": report.erased_dropped,
        "urls_erased_not_delivered": report.erased_not_delivered,
        "duplicate_records_dropped": report.duplicates,
        "unexpected_records": report.unexpected,
        "file": dg.MetadataValue.path(layout.url(report.file)),
    }


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


def measure_coverage(
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
                context.instance, row["computed_at"], enrichment.monthly_credit_budget
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
def build_latest(context: dg.AssetExecutionContext, data_root: DataRoot) -> dg.MaterializeResult:
    layout = data_root.layout()
    table = all_contacts(layout)
    latest = newest_per_profile(table).cast(PARTITIONED_CONTACTS_SCHEMA)
    target = layout.warehouse_dataset("contacts_latest") / PARTITION_FILE
    # The partitions were read above; people erased since are dropped as the file is published.
    published = publish_contacts(
        layout, target, lambda path: write_table_atomic(path, latest), "contacts_latest"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": published.rows,
            "rows_dropped_erased": published.dropped,
            "dagster/column_schema": column_schema(with_date=True),
            "partitions_read": partition_count(table),
            "rows_read": table.num_rows,
            "file": dg.MetadataValue.path(layout.url(target)),
        }
    )


# ---- contacts_duckdb ----------------------------------------------------------------------------
def build_duckdb(context: dg.AssetExecutionContext, data_root: DataRoot) -> dg.MaterializeResult:
    """On an object-store root the database is built in a local spool file, with views that
    name `s3://` URLs, and uploaded beside the warehouse like every other file: the views stay
    current, and the row counts below are read through the same fsspec filesystem."""
    layout = data_root.layout()
    target = layout.warehouse_dir / DUCKDB_FILE
    views = present_views(layout)
    counts = layout.publish(target, lambda path: build_database(layout, views, path))
    return dg.MaterializeResult(
        metadata={
            "file": dg.MetadataValue.path(layout.url(target)),
            "views": dg.MetadataValue.json(sorted(views)),
            **{f"rows_{name}": count for name, count in counts.items()},
            "open_with": dg.MetadataValue.md(duckdb_open_note(layout, layout.url(target))),
        }
    )


# ---- the assets of one copy of the pipeline -----------------------------------------------------
def _resources(context: dg.AssetExecutionContext, names: Names, *params: str) -> dict[str, Any]:
    """The copy's resources by the bodies' parameter names (`crustdata` is `<prefix>_crustdata`)."""
    return {param: getattr(context.resources, names.name(param)) for param in params}


def _resource_keys(names: Names, *params: str) -> set[str]:
    return {names.name(param) for param in params}


def _url_list_asset(names: Names, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.url_list_key,
        partitions_def=partitions,
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=True),
        kinds={"csv", "parquet"},
        required_resource_keys=_resource_keys(names, "data_root", "enrichment"),
        description="A day's profile URLs: normalised, validated, deduplicated; rejects kept.",
    )
    def contact_url_list(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with using(names):
            return prepare_list(context, **_resources(context, names, "data_root", "enrichment"))

    return contact_url_list


def _batch_asset(names: Names, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.batch_key,
        partitions_def=partitions,
        deps=[names.url_list_key],
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=True),
        pool=names.planner_pool,
        kinds={"crustdata"},
        required_resource_keys=_resource_keys(names, "data_root", "enrichment"),
        description=(
            "Enqueued Crustdata jobs (<= 300 URLs each) for a day's list; recently enriched URLs "
            "are reused and URLs other partitions' plans are buying are borrowed, not re-bought. "
            "The sensor submits; job events appear here."
        ),
    )
    def contact_enrichment_batch(
        context: dg.AssetExecutionContext, config: BatchConfig
    ) -> dg.MaterializeResult:
        with using(names):
            resources = _resources(context, names, "data_root", "enrichment")
            return plan_partition(context, config, **resources)

    return contact_enrichment_batch


def _contacts_asset(
    names: Names, partitions: dg.PartitionsDefinition, data_dir: str | None
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.contacts_key,
        partitions_def=partitions,
        deps=[names.batch_key],
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=True),
        kinds={"parquet", "crustdata"},
        check_specs=enriched_contacts_checks(names.contacts_key),
        freshness_policy=enriched_contacts_freshness_policy(),
        retry_policy=download_retry_policy,
        pool=names.downloads_pool,
        description="Contact data per profile URL of a day's list: one row per unique valid URL.",
        io_manager_key=names.tables_io_manager,
        required_resource_keys=_resource_keys(names, "crustdata", "data_root"),
        metadata=table_definition_metadata("enriched_contacts", data_dir),
    )
    def enriched_contacts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with using(names):
            return load_contacts(context, **_resources(context, names, "crustdata", "data_root"))

    return enriched_contacts


def _coverage_asset(
    names: Names, partitions: dg.PartitionsDefinition, data_dir: str | None
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.coverage_key,
        partitions_def=partitions,
        deps=[names.contacts_key],
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=False),
        kinds={"parquet"},
        automation_condition=automation,
        description="Per partition: profiles requested and matched, fill rate per field, credits.",
        io_manager_key=names.tables_io_manager,
        required_resource_keys=_resource_keys(names, "data_root", "enrichment"),
        metadata=table_definition_metadata("contact_coverage", data_dir),
    )
    def contact_coverage(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with using(names):
            resources = _resources(context, names, "data_root", "enrichment")
            return measure_coverage(context, **resources)

    return contact_coverage


def _latest_asset(names: Names, data_dir: str | None) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.latest_key,
        deps=[names.contacts_key],
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=True),
        kinds={"parquet"},
        automation_condition=automation,
        description="The newest record per profile across all partitions: what a CRM sync reads.",
        io_manager_key=names.tables_io_manager,
        required_resource_keys=_resource_keys(names, "data_root"),
        metadata={
            **table_definition_metadata("contacts_latest", data_dir),
            "dagster/column_lineage": latest_column_lineage(names.contacts_key),
        },
    )
    def contacts_latest(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with using(names):
            return build_latest(context, **_resources(context, names, "data_root"))

    return contacts_latest


def _duckdb_asset(names: Names) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.duckdb_key,
        deps=[names.latest_key, names.coverage_key],
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=True),
        kinds={"duckdb"},
        automation_condition=automation,
        required_resource_keys=_resource_keys(names, "data_root"),
        description="A DuckDB database of views over the warehouse: open it and query, no setup.",
    )
    def contacts_duckdb(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with using(names):
            return build_duckdb(context, **_resources(context, names, "data_root"))

    return contacts_duckdb


def pipeline_assets(
    names: Names, partitions: dg.PartitionsDefinition, data_dir: str | None = None
) -> list[dg.AssetsDefinition]:
    """The six assets of one copy, keyed, grouped, pooled and resourced by `names`; each body
    runs with the copy's names in scope (`crust_assets.names.using`)."""
    return [
        _url_list_asset(names, partitions),
        _batch_asset(names, partitions),
        _contacts_asset(names, partitions, data_dir),
        _coverage_asset(names, partitions, data_dir),
        _latest_asset(names, data_dir),
        _duckdb_asset(names),
    ]


# The unprefixed code location's assets (crust_assets.definitions), as they have always been.
(
    contact_url_list,
    contact_enrichment_batch,
    enriched_contacts,
    contact_coverage,
    contacts_latest,
    contacts_duckdb,
) = pipeline_assets(DEFAULT_NAMES, daily_partitions)

"""enriched_list: the input list back, one row per line, with its own columns and its contacts.

The work is in `crust_assets.enriched_list` (status, CSV, masking); this module reads the staged
lines and the partition's `enriched_contacts`, publishes the Parquet file (and the CSV) through
the erasure fence, and turns the result into a check and metadata.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path, PurePath

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.defs.catalog_tags import asset_owners, asset_tags
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.resources import DataRoot, EnrichmentSettings
from crust_assets.defs.table_metadata import table_definition_metadata
from crust_assets.enriched_list import (
    ENRICHED_LIST_SCHEMA,
    build_enriched_list,
    csv_bytes,
    mark_erased,
    preview_markdown,
    status_counts,
)
from crust_assets.erasure import ErasureSettings, erased_urls, erasure_fence
from crust_assets.names import DEFAULT_NAMES, Names, current, using
from crust_assets.storage import DataLayout, atomic_path, write_parquet_atomic
from crust_assets.table import COLUMN_DESCRIPTIONS, ENRICHED_CONTACTS_SCHEMA
from crust_assets.url_lists import LINES_FILE

ASSET = "enriched_list"
EVERY_LINE_ONCE = "every_input_line_once"
CSV_SUFFIX = ".enriched.csv"


# Runs when enriched_contacts gets a new partition (a new list alone waits for its contacts),
# once per change, not while a dependency runs, and only if the load's blocking checks passed.
def per_line_automation(url_list: dg.AssetKey) -> dg.AutomationCondition:
    """The condition above, ignoring the copy's `contact_url_list`."""
    lists = dg.AssetSelection.assets(url_list)
    return (
        (
            dg.AutomationCondition.any_deps_updated().ignore(lists)
            | (
                dg.AutomationCondition.missing()
                & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).ignore(
                    lists
                )
            )
        ).since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("when enriched_contacts changes and its checks pass")


def csv_path(layout: DataLayout, date: str) -> PurePath:
    """`<input stem>.enriched.csv` beside the partition's Parquet file."""
    stem = PurePath(layout.input_file(date).name).stem
    return layout.warehouse_partition(ASSET, date).parent / f"{stem}{CSV_SUFFIX}"


def build_enriched_list_table(
    context: dg.AssetExecutionContext, data_root: DataRoot, enrichment: EnrichmentSettings
) -> dg.MaterializeResult:
    layout = data_root.layout()
    date = context.partition_key
    lines_file = layout.staging_partition("contact_url_list", date, LINES_FILE)
    contacts_file = layout.warehouse_partition("enriched_contacts", date)
    for path, asset in ((lines_file, "contact_url_list"), (contacts_file, "enriched_contacts")):
        if not layout.exists(path):
            raise dg.Failure(
                description=f"{layout.url(path)} does not exist: materialise {asset}[{date}] first",
                allow_retries=False,
            )
    lines = layout.read_table(lines_file)
    contacts = layout.read_table(contacts_file, schema=ENRICHED_CONTACTS_SCHEMA)
    table = build_enriched_list(lines, contacts, erased_urls(layout))
    target = layout.warehouse_partition(ASSET, date)
    csv_target = csv_path(layout, date) if enrichment.export_csv else None
    published = publish_enriched_list(layout, target, csv_target, table, f"{ASSET}[{date}]")
    written = layout.read_table(target, columns=["line_number", "status"])
    files = (layout.url(target), layout.url(csv_target) if csv_target else None)
    return dg.MaterializeResult(
        metadata=list_metadata(written, published, *files),
        check_results=[every_line_once_check(lines.column("line_number"), written)],
    )


def list_metadata(
    written: pa.Table, published: "PublishedList", file_url: str, csv_url: str | None
) -> dict[str, object]:
    """What the UI shows of the per-line table: lines by status, a masked preview, its files."""
    counts = status_counts(written)
    return {
        "dagster/row_count": written.num_rows,
        "dagster/column_schema": list_column_schema(published.table.schema),
        **{f"lines_{status}": count for status, count in counts.items()},
        "lines_by_status": dg.MetadataValue.md(
            "| status | lines |\n|---|---|\n"
            + "\n".join(f"| {s} | {n:,} |" for s, n in counts.items())
        ),
        "preview": dg.MetadataValue.md(preview_markdown(published.table)),
        "lines_erased_at_publish": published.erased,
        "file": dg.MetadataValue.path(file_url),
        "csv_file": dg.MetadataValue.path(csv_url) if csv_url else "off",
    }


def every_line_once_check(expected: pa.ChunkedArray, written: pa.Table) -> dg.AssetCheckResult:
    """Passed when the file's line numbers are exactly the input's, each once."""
    actual = written.column("line_number")
    distinct = len(pc.unique(actual)) if len(actual) else 0
    missing = pc.invert(pc.is_in(expected, value_set=actual)) if len(expected) else expected
    missing_lines = expected.filter(missing).to_pylist() if len(expected) else []
    extra = pc.invert(pc.is_in(actual, value_set=expected)) if len(actual) else actual
    extra_lines = actual.filter(extra).to_pylist() if len(actual) else []
    repeated = len(actual) - distinct
    passed = not missing_lines and not extra_lines and repeated == 0
    problems = [
        f"{len(missing_lines)} input lines missing" if missing_lines else "",
        f"{len(extra_lines)} rows for lines not in the input" if extra_lines else "",
        f"{repeated} lines more than once" if repeated else "",
    ]
    return dg.AssetCheckResult(
        check_name=EVERY_LINE_ONCE,
        asset_key=current().list_key,
        passed=passed,
        description="every input line once"
        if passed
        else "; ".join(p for p in problems if p)
        + ". Materialise contact_url_list and then enriched_list again.",
        metadata={
            "input_lines": len(expected),
            "rows": len(actual),
            "missing_sample": dg.MetadataValue.json(missing_lines[:10]),
            "repeated": repeated,
        },
    )


def list_column_schema(schema: pa.Schema) -> dg.TableSchema:
    """The UI's column list: the user's columns (as text), then the contract's."""
    fixed = set(ENRICHED_LIST_SCHEMA.names)
    notes = {
        "line_number": "The line of the input file (1 = the header).",
        "status": "enriched, not_found, rejected, duplicate, not_delivered or erased.",
        "reason": "A code: the reject reason, duplicate, not_delivered, erased, ...",
        "detail": "What happened to the line, and what to do about it.",
        "duplicate_of_line": "A duplicate's first line; it carries the same values.",
    }
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=notes.get(field.name, COLUMN_DESCRIPTIONS.get(field.name))
                if field.name in fixed
                else "Your column, as text.",
            )
            for field in schema
        ]
    )


@dataclass(frozen=True)
class PublishedList:
    table: pa.Table  # as published
    erased: int  # lines of people erased while the table was built, marked at publish time


def publish_enriched_list(
    layout: DataLayout,
    target: PurePath,
    csv_target: PurePath | None,
    table: pa.Table,
    writer: str,
    settings: ErasureSettings | None = None,
) -> PublishedList:
    """Write the Parquet file (and the CSV) privately, then publish both inside the erasure fence
    (see erasure.py): the log is read again there and lines of people erased meanwhile are marked
    `erased` and blanked before anything is renamed or uploaded. On an object store the log is
    read once more after the upload, as `publish_contacts` does, and the files fixed if needed."""
    settings = settings or ErasureSettings.from_env()
    erased_lines = 0
    with contextlib.ExitStack() as stack:
        staged = [stack.enter_context(layout.staged(target))]
        if csv_target is not None:
            staged.append(stack.enter_context(layout.staged(csv_target)))
        _write_files(table, [s.path for s in staged])
        with erasure_fence(layout, writer, settings) as erased:
            table, found = mark_erased(table, erased)
            if found:
                _write_files(table, [s.path for s in staged])
                erased_lines += len(found)
            for file in staged:
                file.commit()
        for _ in range(0 if layout.is_local else settings.verify_rounds):
            table, found = mark_erased(table, erased_urls(layout))
            if not found:
                break
            erased_lines += len(found)
            _write_files(table, [s.path for s in staged])
            for file in staged:
                file.commit()
    return PublishedList(table, erased_lines)


def _write_files(table: pa.Table, paths: list[Path]) -> None:
    """The Parquet file at paths[0], the CSV (if asked for) at paths[1]: owner-only, atomic."""
    write_parquet_atomic(paths[0], table.to_batches(), table.schema)
    if len(paths) > 1:
        write_csv_file(paths[1], table)


def write_csv_file(path: Path, table: pa.Table) -> None:
    """The CSV of `table` at a local `path`, created owner-only before a byte is written."""
    with atomic_path(path, create=True) as temp:
        temp.write_bytes(csv_bytes(table))


def enriched_list_asset(
    names: Names, partitions: dg.PartitionsDefinition, data_dir: str | None = None
) -> dg.AssetsDefinition:
    """The copy's enriched_list, keyed, grouped and resourced by `names`."""
    resource_keys = {names.data_root, names.enrichment}

    @dg.asset(
        key=names.list_key,
        partitions_def=partitions,
        deps=[names.url_list_key, names.contacts_key],
        group_name=names.group,
        owners=asset_owners(),
        tags=asset_tags(pii=True),
        kinds={"parquet", "csv"},
        automation_condition=per_line_automation(names.url_list_key),
        check_specs=[
            dg.AssetCheckSpec(
                EVERY_LINE_ONCE,
                asset=names.list_key,
                blocking=True,
                description="Every line of the input list has exactly one row.",
            )
        ],
        description="The input list back, one row per line: your columns, contacts and a status.",
        io_manager_key=names.tables_io_manager,
        required_resource_keys=resource_keys,
        metadata=table_definition_metadata("enriched_list", data_dir),
    )
    def enriched_list(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with using(names):
            data_root = getattr(context.resources, names.data_root)
            enrichment = getattr(context.resources, names.enrichment)
            return build_enriched_list_table(context, data_root, enrichment)

    return enriched_list


# The unprefixed code location's enriched_list, as it has always been.
enriched_list = enriched_list_asset(DEFAULT_NAMES, daily_partitions)

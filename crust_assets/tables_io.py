"""`ContactTablesIOManager`: downstream assets get the warehouse tables as pandas, polars or Arrow.

The pipeline's table assets write their own Parquet atomically and return `MaterializeResult`, so
Dagster's default IO manager would look for a pickle that was never written. This IO manager
stores nothing and loads the table from the data root instead, by asset key: the key's last part
names the dataset `warehouse/<name>/`. It follows Dagster's partition mappings (same day, a
window, every partition for an unpartitioned downstream) and works the same in this code location
and in another one that declares the tables as `dg.AssetSpec`s.

Per-input options, as Dagster's DuckDB and Delta Lake integrations take them, in
`AssetIn(metadata=...)`: `columns` (only those are read) and `allow_missing_partitions` (load the
mapped partitions that exist instead of failing on the others).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from crust_assets.defaults import DATA_DIR_ENV, DEFAULT_DATA_DIR
from crust_assets.storage import DataLayout
from crust_assets.table_reader import (
    POLARS_KINDS,
    FrameKind,
    MissingPartitionsError,
    existing_partitions,
    frame_kind,
    frame_shape,
    missing_partitions_message,
    native_polars_scan_fits,
    read_partitions,
    read_single,
    scan_partitions_polars,
    single_file,
    to_frame,
)
from crust_assets.warehouse_tables import WarehouseTable, table_for


def record_input_metadata(context: dg.InputContext, metadata: dict[str, Any], text: str) -> None:
    """Put `metadata` on the run's LOADED_INPUT event (and, for one partition, an observation).

    Dagster files input metadata under a single upstream partition, so for a multi-partition
    input `add_input_metadata` stores the entries and then fails while building the observation;
    the entries are kept and the dates are also said in the run's log.
    """
    single = not context.has_asset_partitions or len(context.asset_partition_keys) == 1
    if single:
        context.add_input_metadata(metadata, description=text)
        return
    # Dagster's check of the single partition fails after the entries are stored.
    with contextlib.suppress(Exception):
        context.add_input_metadata(metadata, description=text)
    dates = metadata.get("partition_dates")
    context.log.info(
        f"Loaded {text}: {metadata.get('partitions_loaded', 0)} partitions "
        f"{getattr(dates, 'value', dates)}"
    )


def downstream_is_partitioned(context: dg.InputContext) -> bool:
    """Does the run materialise partitions (one, or a range in a single backfill run)?

    If not, the downstream asset is unpartitioned and Dagster maps it to every partition of the
    table, of which only those with files are read.
    """
    if context.has_partition_key:
        return True
    try:
        return bool(context.step_context.has_partition_key_range)
    except dg.DagsterInvariantViolationError:  # a context built without a step
        return False


class ContactTablesIOManager(dg.ConfigurableIOManager):
    """Loads the warehouse tables (enriched_contacts, enriched_list, contact_coverage,
    contacts_latest) from the data root into the annotated frame type; stores nothing."""

    data_dir: str | None = Field(
        default=None,
        description="The data root (path or s3:// URL); unset: env CRUST_DATA_DIR, else data/",
    )

    def layout(self) -> DataLayout:
        location = self.data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
        return DataLayout.from_location(location)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        """Nothing to store: the asset already wrote its files (atomically, with its schema)."""
        if obj is not None:
            raise TypeError(
                f"ContactTablesIOManager stores nothing, but {context.asset_key.to_user_string()} "
                f"returned a {type(obj).__name__}: write the files in the asset and return "
                "dg.MaterializeResult, or use another IO manager for it."
            )

    def load_input(self, context: dg.InputContext) -> Any:
        kind = frame_kind(context.dagster_type.typing_type)
        table = table_for(context.asset_key.path[-1])
        options = context.definition_metadata or {}
        columns: Sequence[str] | None = options.get("columns")
        layout = self.layout()
        dates = self._dates(context, layout, table, options)
        if dates is None:
            frame: Any = to_frame(read_single(layout, table, columns), kind)
        elif kind in POLARS_KINDS and native_polars_scan_fits(layout, table):
            scan = scan_partitions_polars(layout, table, dates, columns)
            frame = scan if kind is FrameKind.POLARS_LAZY else scan.collect()
        else:
            frame = to_frame(read_partitions(layout, table, dates, columns), kind)
        rows, names = frame_shape(frame)
        metadata: dict[str, Any] = {
            "dagster/row_count": rows,
            "source": dg.MetadataValue.path(layout.url(layout.warehouse_dataset(table.name))),
            "columns_read": dg.MetadataValue.json(names),
        }
        if dates is not None:
            metadata["partitions_loaded"] = len(dates)
            metadata["partition_dates"] = dg.MetadataValue.json(list(dates))
        record_input_metadata(context, metadata, f"{table.name} from the data root")
        return frame

    def _dates(
        self,
        context: dg.InputContext,
        layout: DataLayout,
        table: WarehouseTable,
        options: dict[str, Any],
    ) -> list[str] | None:
        """The partitions to read, from the files; None for a table stored as one file."""
        location = layout.url(layout.warehouse_dataset(table.name))
        if not context.has_asset_partitions and layout.is_file(single_file(layout, table.name)):
            return None
        existing = existing_partitions(layout, table.name)
        if context.has_asset_partitions and downstream_is_partitioned(context):
            # A partitioned downstream: exactly the mapped partitions, every one of them present.
            mapped = list(context.asset_partition_keys)
            have = set(existing)
            missing = [d for d in mapped if d not in have]
            if missing and not options.get("allow_missing_partitions", False):
                raise MissingPartitionsError(
                    missing_partitions_message(table.name, missing, location)
                )
            return [d for d in mapped if d in have]
        # An unpartitioned downstream (or upstream declared without partitions): all that exist.
        if not existing:
            raise MissingPartitionsError(
                f"{table.name} has no files under {location}: materialise {table.name} first."
            )
        return existing

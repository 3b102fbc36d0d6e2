"""Gathers the month's spend for `monthly_budget`: the warehouse's rows and the recorded plans.

Delivered credits come from the rows themselves (what the API delivered is what it billed);
pending ones from the plans' own materialisations (`credits_estimate_worst_case`) whose plan id
no `enriched_contacts` materialisation has loaded yet. Both are read from what Dagster and the
warehouse already hold, so nothing new is recorded to know the month's spend.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds

from crust_assets.monthly_budget import (
    MonthToDate,
    delivered_credits,
    month_of,
    month_start,
    monthly_metadata,
)
from crust_assets.names import current
from crust_assets.planning import PlanRequest
from crust_assets.storage import DataLayout
from crust_assets.table import COLUMN_CREDITS, ENRICHED_CONTACTS_SCHEMA

_PAGE = 500


def month_to_date(instance: dg.DagsterInstance, layout: DataLayout, now: datetime) -> MonthToDate:
    """The calendar month of `now`: credits delivered, and the worst case of unloaded plans."""
    start = month_start(now)
    delivered = delivered_credits(rows_enriched_since(layout, start), COLUMN_CREDITS)
    return MonthToDate(month_of(now), delivered, pending_plan_credits(instance, start))


def rows_enriched_since(layout: DataLayout, start: datetime) -> pa.Table:
    """Every partition's rows whose job completed at or after `start`."""
    root = layout.warehouse_dataset("enriched_contacts")
    if not layout.is_dir(root):
        return ENRICHED_CONTACTS_SCHEMA.empty_table()
    dataset = layout.dataset(root, format="parquet", schema=ENRICHED_CONTACTS_SCHEMA)
    since = pa.scalar(start, pa.timestamp("us", tz="UTC"))
    return dataset.to_table(filter=ds.field("enriched_at") >= since)


def _metadata_since(instance: dg.DagsterInstance, key: dg.AssetKey, start: datetime) -> Iterator:
    """The metadata of each materialisation of `key` recorded at or after `start`."""
    records_filter = dg.AssetRecordsFilter(asset_key=key, after_timestamp=start.timestamp())
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=_PAGE, cursor=cursor)
        for record in page.records:
            materialization = record.asset_materialization
            if materialization is not None:
                yield {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        if not page.has_more:
            return
        cursor = page.cursor


def pending_plan_credits(instance: dg.DagsterInstance, start: datetime) -> int:
    """Worst-case credits of plans made since `start` whose rows are not loaded yet."""
    names = current()
    loaded = {
        str(meta.get("plan_id")) for meta in _metadata_since(instance, names.contacts_key, start)
    }
    return sum(
        int(meta.get("credits_estimate_worst_case") or 0)
        for meta in _metadata_since(instance, names.batch_key, start)
        if str(meta.get("plan_id")) not in loaded
    )


def spend_metadata(
    instance: dg.DagsterInstance, layout: DataLayout, now: datetime, budget: int | None
) -> dict[str, int | float]:
    """The month's credits (and the budget, when set) as numbers the asset's plots can show."""
    return monthly_metadata(month_to_date(instance, layout, now), budget)


def with_month_to_date(
    request: PlanRequest, instance: dg.DagsterInstance, layout: DataLayout
) -> PlanRequest:
    """The request with the month so far, when CRUST_MONTHLY_CREDIT_BUDGET is set."""
    if request.monthly_credit_budget is None:
        return request
    return replace(request, month=month_to_date(instance, layout, request.now))

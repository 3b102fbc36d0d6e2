"""Warehouse files for the IO manager's tests, written the way the pipeline writes them.

Each partition is written through `DataLayout.write_table` (atomic, owner-only, on a local root or
an object store) with the table's contract schema, exactly as the assets write them. Values are
derived from the date, so a test can say which rows must come back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa

from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

DAYS = [(date(2026, 11, 20) + timedelta(days=i)).isoformat() for i in range(9)]  # 20..28 Nov
EMPTY_DAY = "2026-11-25"  # nothing found for anyone: every list column is []


def contact_rows(day: str, count: int) -> list[dict]:
    """`count` rows for `day`; on EMPTY_DAY every list is empty (the list<null> pitfall)."""
    found = day != EMPTY_DAY
    stamp = datetime.fromisoformat(day).replace(hour=7, tzinfo=timezone.utc)
    rows = []
    for i in range(count):
        email = f"p{i}@{day}.example.com"
        rows.append(
            {
                "profile_url": f"https://www.linkedin.com/in/person-{day}-{i}",
                "business_emails": [{"email": email, "status": "deliverable"}] if found else [],
                "personal_emails": [],
                "phone_numbers": [f"+1555{i:07d}"] if found else [],
                "crustdata_person_id": i,
                "batch_id": f"batch-{day}",
                "enriched_at": stamp,
                "matched": found,
                "primary_business_email": email if found else None,
            }
        )
    return rows


def write_contacts(layout: DataLayout, days: Iterable[str], rows_per_day: int = 3) -> None:
    for day in days:
        table = pa.Table.from_pylist(
            contact_rows(day, rows_per_day), schema=ENRICHED_CONTACTS_SCHEMA
        )
        layout.write_table(layout.warehouse_partition("enriched_contacts", day), table)


def write_list(layout: DataLayout, day: str, user_columns: Sequence[str], rows: int = 2) -> None:
    """An enriched_list partition: the user's columns first, then the pipeline's. The contact
    lists are given without a schema, so an all-empty one is stored as list<null>."""
    records = []
    for i, row in enumerate(contact_rows(day, rows)):
        user = {name: f"{name}-{i}" for name in user_columns}
        extra = {"business_emails": [], "personal_emails": [], "phone_numbers": []}
        records.append({**user, "line_number": i + 2, **row, **extra, "status": "not_found"})
    layout.write_table(
        layout.warehouse_partition("enriched_list", day), pa.Table.from_pylist(records)
    )


def write_latest(layout: DataLayout, days: Iterable[str]) -> None:
    """contacts_latest as its asset stores it: one file, the partition date as text."""
    rows = [{**row, "date": day} for day in days for row in contact_rows(day, 2)]
    schema = ENRICHED_CONTACTS_SCHEMA.append(pa.field("date", pa.string()))
    target = layout.warehouse_dataset("contacts_latest") / "data.parquet"
    layout.write_table(target, pa.Table.from_pylist(rows, schema=schema))

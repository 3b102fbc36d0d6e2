"""The warehouse's tables as readers see them: where each lives, its Arrow schema, its columns.

One catalog, so the writers, the IO manager that loads the tables into downstream assets and the
definitions' column schemas (what the catalog UI shows before a first run) cannot disagree. A
table with a fixed contract is always read with that schema: pyarrow and polars would infer an
all-empty list column as `list<null>`, and a partition with no hits would then clash with the
others. `enriched_list` keeps the user's own columns, so only the columns the pipeline adds have
a fixed type there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from crust_assets.enriched_list import ENRICHED_LIST_SCHEMA
from crust_assets.table import COLUMN_DESCRIPTIONS, ENRICHED_CONTACTS_SCHEMA

DATE_TYPE = pa.date32()
DATE_DESCRIPTION = "The input list's date (the partition, from the directory date=YYYY-MM-DD)."

COVERAGE_SCHEMA = pa.schema(
    [
        pa.field("requested", pa.int64()),
        pa.field("matched", pa.int64()),
        pa.field("business_emails_fill_rate", pa.float64()),
        pa.field("personal_emails_fill_rate", pa.float64()),
        pa.field("phone_numbers_fill_rate", pa.float64()),
        pa.field("credits", pa.int64()),
        pa.field("computed_at", pa.timestamp("us", tz="UTC")),
    ]
)

COVERAGE_DESCRIPTIONS: dict[str, str] = {
    "requested": "Unique valid profile URLs of the day (rows of enriched_contacts).",
    "matched": "Rows with at least one contact value.",
    "business_emails_fill_rate": "Share of rows with a business email, among rows that asked.",
    "personal_emails_fill_rate": "Share of rows with a personal email, among rows that asked.",
    "phone_numbers_fill_rate": "Share of rows with a phone number, among rows that asked.",
    "credits": "Credits the delivered values cost, at the published per-field prices.",
    "computed_at": "When this row was computed (UTC).",
}

LIST_DESCRIPTIONS: dict[str, str] = {
    "line_number": "The line of the input file (the header is line 1).",
    **COLUMN_DESCRIPTIONS,
    "profile_url": "The line's URL, normalised (null when the line was rejected).",
    "status": "enriched, not_found, rejected, duplicate, not_delivered or erased.",
    "reason": "A short code: the reject reason, duplicate, not_delivered, ...",
    "detail": "The same for a person: what happened and what to do.",
    "duplicate_of_line": "For a duplicate, the first line with the same person (same values).",
}


@dataclass(frozen=True)
class WarehouseTable:
    """A dataset under `warehouse/<name>/`: one `data.parquet`, or one per `date=<d>/`."""

    name: str
    partitioned: bool
    # The full file schema, or None when the user's columns make it vary (then `known` types).
    schema: pa.Schema | None
    descriptions: dict[str, str] = field(default_factory=dict)
    known: pa.Schema | None = None

    def column_types(self) -> pa.Schema:
        """The columns whose type is fixed (all of them when `schema` is set)."""
        return self.schema if self.schema is not None else (self.known or pa.schema([]))


TABLES: dict[str, WarehouseTable] = {
    "enriched_contacts": WarehouseTable(
        "enriched_contacts",
        partitioned=True,
        schema=ENRICHED_CONTACTS_SCHEMA,
        descriptions=COLUMN_DESCRIPTIONS,
    ),
    "contact_coverage": WarehouseTable(
        "contact_coverage",
        partitioned=True,
        schema=COVERAGE_SCHEMA,
        descriptions=COVERAGE_DESCRIPTIONS,
    ),
    # Stored with the partition date as text; readers get it as a date like the others.
    "contacts_latest": WarehouseTable(
        "contacts_latest",
        partitioned=False,
        schema=ENRICHED_CONTACTS_SCHEMA.append(pa.field("date", pa.string())),
        descriptions={**COLUMN_DESCRIPTIONS, "date": "The partition the newest row came from."},
    ),
    "enriched_list": WarehouseTable(
        "enriched_list",
        partitioned=True,
        schema=None,
        known=ENRICHED_LIST_SCHEMA,
        descriptions=LIST_DESCRIPTIONS,
    ),
    "rejected_urls": WarehouseTable("rejected_urls", partitioned=True, schema=None),
}


def table_for(name: str) -> WarehouseTable:
    """The catalog entry of `name`; an unknown dataset is read as it is stored, partitioned."""
    return TABLES.get(name) or WarehouseTable(name, partitioned=True, schema=None)


def dataset_uri(data_dir: str, name: str) -> str:
    """Where a dataset lives, as a person (or DuckDB) would name it: a path or an `s3://` URL.

    Pure string work (no filesystem client is built): it is computed when definitions load.
    """
    if "://" in data_dir and not data_dir.startswith("file://"):
        return f"{data_dir.rstrip('/')}/warehouse/{name}"
    local = data_dir.removeprefix("file://")
    return str(Path(local).expanduser().resolve() / "warehouse" / name)

"""The `enriched_contacts` table contract, as Arrow types, and the mapping from API records.

Everything that writes or reads the table goes through `ENRICHED_CONTACTS_SCHEMA` so that every
partition has the same schema: pyarrow would infer an all-empty list column as `list<null>`, and a
partition with no hits would then disagree with the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from crust_assets.crustdata import ResultRecord


EMAIL_TYPE = pa.struct([pa.field("email", pa.string()), pa.field("status", pa.string())])

ENRICHED_CONTACTS_SCHEMA = pa.schema(
    [
        pa.field("profile_url", pa.string(), nullable=False),
        pa.field("business_emails", pa.list_(EMAIL_TYPE)),
        pa.field("personal_emails", pa.list_(EMAIL_TYPE)),
        pa.field("phone_numbers", pa.list_(pa.string())),
        pa.field("crustdata_person_id", pa.int64()),
        pa.field("batch_id", pa.string()),
        pa.field("enriched_at", pa.timestamp("us", tz="UTC")),
        pa.field("matched", pa.bool_()),
        pa.field("primary_business_email", pa.string()),
    ]
)

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "profile_url": "Normalised profile URL, exactly as submitted.",
    "business_emails": "null = not requested; [] = requested, none found.",
    "personal_emails": "null = not requested; [] = requested, none found.",
    "phone_numbers": "E.164 phone numbers; null = not requested; [] = none found.",
    "crustdata_person_id": "The record's internal_id / person_id.",
    "batch_id": "The Crustdata job that delivered the row.",
    "enriched_at": "The job's completed_at.",
    "matched": "True when at least one contact value was delivered.",
    "primary_business_email": "First deliverable business email, else the first one.",
}

CONTACT_FIELDS = ("business_emails", "personal_emails", "phone_numbers")

# Which table column each API `fields` value fills.
COLUMNS_FOR_API_FIELD: dict[str, tuple[str, ...]] = {
    "business_email": ("business_emails",),
    "personal_contact_info": ("personal_emails", "phone_numbers"),
    "personal_contact_info.personal_emails": ("personal_emails",),
    "personal_contact_info.phone_numbers": ("phone_numbers",),
}

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64()),
        pa.field("raw_value", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("message", pa.string()),
    ]
)

URL_LIST_SCHEMA = pa.schema(
    [pa.field("profile_url", pa.string(), nullable=False), pa.field("line_number", pa.int64())]
)


def requested_columns(api_fields: Iterable[str]) -> set[str]:
    """The table columns a job with these API `fields` fills (the others stay null)."""
    columns: set[str] = set()
    for api_field in api_fields:
        columns.update(COLUMNS_FOR_API_FIELD[api_field])
    return columns


def covers_columns(table: pa.Table, columns: Iterable[str]) -> pa.Array:
    """Per row: was every one of `columns` requested when the row was bought (not null)?

    A row bought without a field the new plan wants must be bought again, not reused.
    """
    covered = pa.array([True] * table.num_rows, pa.bool_())
    for name in columns:
        covered = pc.and_(covered, pc.is_valid(table.column(name)))
    return covered


def project_to_columns(batch: pa.RecordBatch, columns: set[str]) -> pa.RecordBatch:
    """A row bought with more fields than a plan asks for, as that plan would have got it.

    The contact columns it did not request are null ("not requested", as for its own rows),
    and `matched` and `primary_business_email` follow from what is left: a deployment that asks
    for business emails only must not end up holding personal emails through a reused row.
    """
    arrays = dict(zip(batch.schema.names, batch.columns, strict=True))
    for name in CONTACT_FIELDS:
        if name not in columns:
            arrays[name] = pa.nulls(batch.num_rows, batch.schema.field(name).type)
    if "business_emails" not in columns:
        arrays["primary_business_email"] = pa.nulls(batch.num_rows, pa.string())
    matched = pa.array([False] * batch.num_rows, pa.bool_())
    for name in CONTACT_FIELDS:
        if name in columns:
            has_value = pc.fill_null(pc.greater(pc.list_value_length(arrays[name]), 0), False)
            matched = pc.or_(matched, has_value)
    arrays["matched"] = matched
    return pa.RecordBatch.from_arrays(list(arrays.values()), schema=batch.schema)


def _emails(values: Sequence[Any] | None) -> list[dict[str, str | None]] | None:
    if values is None:
        return None
    return [{"email": v.email, "status": v.status} for v in values]


def _primary_email(values: Sequence[Any] | None) -> str | None:
    if not values:
        return None
    for value in values:
        if value.status == "deliverable":
            return value.email
    return values[0].email


def record_to_row(record: ResultRecord, *, batch_id: str, enriched_at: datetime | None) -> dict:
    """One API record as one table row; `None` lists stay `None` (field not requested)."""
    business = _emails(record.business_emails)
    personal = _emails(record.personal_emails)
    phones = list(record.phone_numbers) if record.phone_numbers is not None else None
    return {
        "profile_url": record.profile_url,
        "business_emails": business,
        "personal_emails": personal,
        "phone_numbers": phones,
        "crustdata_person_id": record.person_id,
        "batch_id": batch_id,
        "enriched_at": enriched_at,
        "matched": bool(business or personal or phones),
        "primary_business_email": _primary_email(record.business_emails),
    }


def empty_row(
    profile_url: str, *, columns: set[str], batch_id: str, enriched_at: datetime | None
) -> dict:
    """The row of a URL whose job delivered no file (`result_count: 0`): nothing found."""
    return {
        "profile_url": profile_url,
        "business_emails": [] if "business_emails" in columns else None,
        "personal_emails": [] if "personal_emails" in columns else None,
        "phone_numbers": [] if "phone_numbers" in columns else None,
        "crustdata_person_id": None,
        "batch_id": batch_id,
        "enriched_at": enriched_at,
        "matched": False,
        "primary_business_email": None,
    }


def rows_to_batches(rows: Iterable[dict], *, batch_rows: int = 8192) -> Iterator[pa.RecordBatch]:
    """Chunk rows into record batches of the contract schema, so memory stays bounded."""
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch_rows:
            yield pa.RecordBatch.from_pylist(chunk, schema=ENRICHED_CONTACTS_SCHEMA)
            chunk = []
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=ENRICHED_CONTACTS_SCHEMA)


@dataclass
class FillStats:
    """Running counts for the figures a user looks for: how much was found, per field."""

    rows: int = 0
    matched: int = 0
    requested: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONTACT_FIELDS, 0))
    filled: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONTACT_FIELDS, 0))

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        self.matched += int(pc.sum(batch.column("matched")).as_py() or 0)
        for name in CONTACT_FIELDS:
            column = batch.column(name)
            self.requested[name] += batch.num_rows - column.null_count
            lengths = pc.list_value_length(column)
            self.filled[name] += int(pc.sum(pc.greater(lengths, 0)).as_py() or 0)

    def fill_rates(self) -> dict[str, float | None]:
        """Share of rows with a value, among rows where the field was requested."""
        return {
            name: (self.filled[name] / self.requested[name]) if self.requested[name] else None
            for name in CONTACT_FIELDS
        }

    def credits(self, field_credits: dict[str, int]) -> int:
        """Credits the delivered values cost, at the published per-field prices."""
        return sum(self.filled[name] * field_credits[name] for name in CONTACT_FIELDS)


# Credits per table column, at the published batch prices (a field with nothing found is free).
COLUMN_CREDITS: dict[str, int] = {
    "business_emails": 1,
    "personal_emails": 2,
    "phone_numbers": 2,
}


def worst_case_credits(url_count: int, api_fields: Iterable[str]) -> int:
    """What a job set costs if every requested field is found for every URL."""
    return url_count * sum(COLUMN_CREDITS[c] for c in requested_columns(api_fields))

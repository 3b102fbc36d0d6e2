"""The per-line results of a list: each input line, its own columns, its contacts, its status.

`enriched_contacts` is keyed by person (one row per unique valid URL): right for analytics, but
a user sending emails back to a CRM needs *their* rows back, duplicates and rejects included,
each with the reason it has no contact data. This module is the pure part: how a line's status
is decided, how the table is assembled from the per-line staging table and the partition's
contacts, how erased people are blanked, how the CSV is made safe to open in a spreadsheet, and
how values are masked for the UI preview. The asset (`defs/enriched_list.py`) does the I/O.

The table: the user's columns (strings, stored names; ``crust:header`` field metadata keeps the
header as written), then ``ENRICHED_LIST_SCHEMA``. Its number of user columns differs between
lists, so the fixed part is the contract; `enriched_list_schema` gives a file's whole schema.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets.url_lists import HEADER_KEY, LINES_SCHEMA

__all__ = [
    "CONTACT_COLUMNS",
    "CSV_CONTACT_COLUMNS",
    "ENRICHED_LIST_SCHEMA",
    "LineStatus",
    "build_enriched_list",
    "csv_bytes",
    "enriched_list_schema",
    "formula_safe",
    "line_status",
    "mark_erased",
    "mask_email",
    "mask_phone",
    "preview_markdown",
    "status_counts",
    "user_columns",
]

#: The contact columns, with the names and types of `enriched_contacts`.
CONTACT_COLUMNS = tuple(n for n in ENRICHED_CONTACTS_SCHEMA.names if n != "profile_url")

#: Every column after the user's: what downstream code (and the IO manager) can rely on.
ENRICHED_LIST_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("profile_url", pa.string()),  # normalised; null when the line was rejected
        *[ENRICHED_CONTACTS_SCHEMA.field(name) for name in CONTACT_COLUMNS],
        pa.field("status", pa.string(), nullable=False),  # a LineStatus value
        pa.field("reason", pa.string()),  # a short code: the reject reason, "duplicate", ...
        pa.field("detail", pa.string()),  # the same for a person: what happened, what to do
        pa.field("duplicate_of_line", pa.int64()),  # a duplicate's first line (same values)
    ]
)

#: The CSV's columns after the user's, in order.
CSV_CONTACT_COLUMNS = (
    "business_email",
    "business_email_status",
    "all_business_emails",
    "personal_emails",
    "phone_numbers",
    "status",
    "reason",
)


class LineStatus(StrEnum):
    """What became of an input line."""

    ENRICHED = "enriched"  # contact data found
    NOT_FOUND = "not_found"  # looked up, nothing found (and nothing billed)
    REJECTED = "rejected"  # not a profile URL: never submitted
    DUPLICATE = "duplicate"  # same person as an earlier line, which carries the same values
    NOT_DELIVERED = "not_delivered"  # its job failed or was refused: re-planning fixes it
    ERASED = "erased"  # removed with `crust-assets forget`: no values, ever


def line_status(
    *,
    reject_reason: str | None,
    duplicate_of: int | None,
    erased: bool,
    delivered: bool,
    matched: bool | None,
) -> LineStatus:
    """A line's status. An erasure wins over everything but a reject (a rejected line names
    nobody); a duplicate is one whatever its first line became, since it carries its values."""
    if reject_reason is not None:
        return LineStatus.REJECTED
    if erased:
        return LineStatus.ERASED
    if duplicate_of is not None:
        return LineStatus.DUPLICATE
    if not delivered:
        return LineStatus.NOT_DELIVERED
    return LineStatus.ENRICHED if matched else LineStatus.NOT_FOUND


def _explain(
    status: LineStatus, reject_reason: str | None, message: str | None, duplicate_of: int | None
) -> tuple[str | None, str | None]:
    """(reason, detail) of a line: a code to filter on, and a sentence for a person."""
    if status is LineStatus.REJECTED:
        return reject_reason, message
    if status is LineStatus.DUPLICATE:
        return "duplicate", f"same person as line {duplicate_of}; the values are that line's"
    if status is LineStatus.NOT_DELIVERED:
        return "not_delivered", (
            "its job failed or was refused, or its record was missing: materialise "
            "contact_enrichment_batch again to submit it (delivered people are reused)"
        )
    if status is LineStatus.ERASED:
        return "erased", "erased with crust-assets forget: contact values removed"
    if status is LineStatus.NOT_FOUND:
        return "no_contact_data", "looked up; no contact data found"
    return None, None


def user_columns(schema: pa.Schema) -> list[str]:
    """The user's columns of a per-line table, in order (everything the pipeline did not add)."""
    ours = set(ENRICHED_LIST_SCHEMA.names) | set(LINES_SCHEMA.names)
    return [name for name in schema.names if name not in ours]


def enriched_list_schema(lines_schema: pa.Schema) -> pa.Schema:
    """The whole schema of a partition: its user columns (as staged), then the fixed part."""
    user = [lines_schema.field(name) for name in user_columns(lines_schema)]
    return pa.schema([*user, *ENRICHED_LIST_SCHEMA])


def build_enriched_list(lines: pa.Table, contacts: pa.Table, erased: Iterable[str]) -> pa.Table:
    """One row per line of `lines` (the staged per-line table), in its order.

    `contacts` is the partition's `enriched_contacts`; a line finds its row by `profile_url`
    (duplicates find the same row). `erased` people get status `erased` and no values.
    """
    urls = lines.column("profile_url")
    found = pc.index_in(urls, value_set=contacts.column("profile_url"))
    picked = contacts.select(list(CONTACT_COLUMNS)).take(found)
    gone = _erased_mask(urls, erased)
    statuses, reasons, details = [], [], []
    columns = zip(
        lines.column("reason").to_pylist(),
        lines.column("message").to_pylist(),
        lines.column("duplicate_of_line").to_pylist(),
        gone.to_pylist(),
        pc.is_valid(found).to_pylist(),
        picked.column("matched").to_pylist(),
        strict=True,
    )
    for reject, message, duplicate_of, is_erased, delivered, matched in columns:
        status = line_status(
            reject_reason=reject,
            duplicate_of=duplicate_of,
            erased=bool(is_erased),
            delivered=delivered,
            matched=matched,
        )
        reason, detail = _explain(status, reject, message, duplicate_of)
        statuses.append(status.value)
        reasons.append(reason)
        details.append(detail)
    schema = enriched_list_schema(lines.schema)
    arrays = [lines.column(name) for name in user_columns(lines.schema)]
    arrays += [lines.column("line_number"), urls]
    arrays += [_blank(picked.column(name), gone) for name in CONTACT_COLUMNS]
    arrays += [pa.array(v, pa.string()) for v in (statuses, reasons, details)]
    arrays.append(lines.column("duplicate_of_line"))
    return pa.Table.from_arrays(arrays, schema=schema)


def _erased_mask(urls: pa.ChunkedArray | pa.Array, erased: Iterable[str]) -> pa.ChunkedArray:
    value_set = pa.array(sorted(set(erased)), pa.string())
    hit = pc.fill_null(pc.is_in(urls, value_set=value_set), False)
    return hit if isinstance(hit, pa.ChunkedArray) else pa.chunked_array([hit])


def _blank(column: pa.ChunkedArray, mask: pa.ChunkedArray) -> pa.ChunkedArray:
    """`column` with nulls where `mask` is true."""
    if not pc.any(mask).as_py():
        return column
    return pc.if_else(mask, pa.scalar(None, column.type), column)


def mark_erased(table: pa.Table, erased: Iterable[str]) -> tuple[pa.Table, list[str]]:
    """`table` (an enriched_list partition) with the lines of `erased` people blanked and
    marked `erased`; and the URLs of the lines that were not marked yet (empty: nothing to do).

    The lines stay: every input line is in the table exactly once, and a CRM importing the file
    learns which of its records lost their contact data."""
    hit = _erased_mask(table.column("profile_url"), erased)
    hit = pc.and_(hit, pc.not_equal(table.column("status"), LineStatus.ERASED.value))
    found = table.column("profile_url").filter(hit).to_pylist()
    if not found:
        return table, []
    reason, detail = _explain(LineStatus.ERASED, None, None, None)
    changed = {name: _blank(table.column(name), hit) for name in CONTACT_COLUMNS}
    changed["status"] = pc.if_else(hit, LineStatus.ERASED.value, table.column("status"))
    changed["reason"] = pc.if_else(hit, reason, table.column("reason"))
    changed["detail"] = pc.if_else(hit, detail, table.column("detail"))
    arrays = [changed.get(name, table.column(name)) for name in table.schema.names]
    return pa.Table.from_arrays(arrays, schema=table.schema), found


def status_counts(table: pa.Table) -> dict[str, int]:
    """Lines per status, every status named (zeros included), in `LineStatus` order."""
    counted = {
        row["values"]: row["counts"] for row in pc.value_counts(table.column("status")).to_pylist()
    }
    return {status.value: int(counted.get(status.value, 0)) for status in LineStatus}


# ---- the CSV ----------------------------------------------------------------------------------
# A cell a spreadsheet would read as a formula (OWASP "CSV injection"), and the exception: a
# number, a phone number or a list of them, which cannot call anything and must reach the CRM
# as it is (a phone number imported as "'+1555..." is a broken phone number).
_FORMULA_START = r"^[=+\-@\t\r]"
_NUMERIC = r"^[+\-]?[0-9][0-9 ()+\-.;,/]*$"


def formula_safe(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Strings that a spreadsheet would run get a leading `'`; numeric-looking ones do not."""
    risky = pc.and_(
        pc.match_substring_regex(column, _FORMULA_START),
        pc.invert(pc.match_substring_regex(column, _NUMERIC)),
    )
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def _csv_headers(table: pa.Table) -> list[str]:
    """The user's header as written where it is a usable CSV name, else the stored name."""
    used = {name.lower() for name in CSV_CONTACT_COLUMNS}
    headers = []
    for name in user_columns(table.schema):
        metadata = table.schema.field(name).metadata or {}
        written = metadata.get(HEADER_KEY, b"").decode()
        header = written if written.strip() and written.lower() not in used else name
        if header.lower() in used:
            header = name
        used.add(header.lower())
        headers.append(header)
    return headers


def _joined(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A list<string> column as `;`-joined text (null stays null)."""
    return pc.binary_join(values, ";")


def _emails(column: pa.ChunkedArray) -> pa.Array:
    """A list<struct<email, status>> column as list<string> of the emails."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = pc.list_flatten(array)
    emails = pc.struct_field(flat, "email") if len(flat) else pa.array([], pa.string())
    offsets = array.offsets
    return pa.ListArray.from_arrays(offsets, emails, mask=array.is_null())


def _primary_status(table: pa.Table) -> pa.Array:
    """The deliverability status of each line's primary business email."""
    business = table.column("business_emails").combine_chunks()
    primary = table.column("primary_business_email").to_pylist()
    flat = pc.list_flatten(business)
    statuses: list[str | None] = [None] * table.num_rows
    if len(flat):
        parents = pc.list_parent_indices(business).to_pylist()
        emails = pc.struct_field(flat, "email").to_pylist()
        states = pc.struct_field(flat, "status").to_pylist()
        for parent, email, state in zip(parents, emails, states, strict=True):
            if statuses[parent] is None and email == primary[parent]:
                statuses[parent] = state
    return pa.array(statuses, pa.string())


def csv_table(table: pa.Table) -> pa.Table:
    """The CSV's table: user columns first, then the flat contact columns, every cell safe."""
    reason = pc.if_else(
        pc.is_valid(table.column("detail")),
        pc.binary_join_element_wise(table.column("reason"), table.column("detail"), ": "),
        table.column("reason"),
    )
    flat = {
        "business_email": table.column("primary_business_email"),
        "business_email_status": _primary_status(table),
        "all_business_emails": _joined(_emails(table.column("business_emails"))),
        "personal_emails": _joined(_emails(table.column("personal_emails"))),
        "phone_numbers": _joined(table.column("phone_numbers")),
        "status": table.column("status"),
        "reason": reason,
    }
    arrays = [table.column(name) for name in user_columns(table.schema)]
    arrays += [flat[name] for name in CSV_CONTACT_COLUMNS]
    names = [*_csv_headers(table), *CSV_CONTACT_COLUMNS]
    safe = [formula_safe(array) for array in arrays]
    return pa.Table.from_arrays(safe, schema=pa.schema([(n, pa.string()) for n in names]))


def csv_bytes(table: pa.Table) -> bytes:
    """The CSV file of an enriched_list partition: UTF-8, a header row, quoted where needed."""
    out = io.BytesIO()
    options = pacsv.WriteOptions(quoting_style="needed")
    pacsv.write_csv(csv_table(table), out, write_options=options)
    return out.getvalue()


# ---- the UI preview ---------------------------------------------------------------------------
def mask_email(email: str | None) -> str:
    """`john.doe@acme.com` -> `j***@acme.com`: enough to recognise a domain, not a person."""
    if not email:
        return ""
    local, _, domain = email.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(phone: str | None) -> str:
    """`+15551234567` -> `+1*******67`."""
    if not phone:
        return ""
    if len(phone) <= 4:
        return "*" * len(phone)
    return phone[:2] + "*" * (len(phone) - 4) + phone[-2:]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")[:60]


def preview_markdown(table: pa.Table, rows: int = 10, user: int = 4) -> str:
    """The first `rows` lines as a markdown table for the UI: the first `user` user columns,
    status, and the contact values masked (the domain of an email stays readable)."""
    head = table.slice(0, rows).to_pylist()
    shown = user_columns(table.schema)[:user]
    headers = ["line", *shown, "status", "business_email", "personal_email", "phone", "reason"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in head:
        personal = [e["email"] for e in row["personal_emails"] or []]
        phones = row["phone_numbers"] or []
        cells: Sequence[object] = [
            row["line_number"],
            *[row[name] for name in shown],
            row["status"],
            mask_email(row["primary_business_email"]),
            mask_email(personal[0] if personal else None),
            mask_phone(phones[0] if phones else None),
            row["reason"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if table.num_rows > rows:
        lines.append(f"\n{table.num_rows - rows:,} more lines")
    return "\n".join(lines)

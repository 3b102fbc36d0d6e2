"""The fast path: a newline-aligned block of documented-envelope records to table columns.

Why it is separate from the reader: this is the only code that must agree, byte for byte, with
the client's reference parser (`parse_result_line` + `record_to_row`). Every check here either
proves a block reads the same as the reference would read it, or raises `NotFast` so the caller
hands the block (or the part) to the reference parser. `pyarrow.json` parses with an explicit
schema and `pyarrow.compute` derives every column, so no record becomes a Python object.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from crust_assets.ingest import buffers
from crust_assets.table import EMAIL_TYPE, ENRICHED_CONTACTS_SCHEMA

__all__ = ["EMAILS", "ENVELOPE_SCHEMA", "PHONES", "NotFast", "fast_block", "timestamp"]

EMAILS = pa.list_(EMAIL_TYPE)
PHONES = pa.list_(pa.string())
# Keys the reference parser also reads (aliases, the flat form's leaves) are declared with the
# `null` type: any non-null value there fails the Arrow parse and sends the part to the reference
# parser; a literal null parses, and the ambiguity scan below decides whether it matters.
_ALIAS = pa.null()
ENVELOPE_SCHEMA = pa.schema(
    [
        pa.field("original_identifier", pa.string()),
        pa.field("internal_id", pa.int64()),
        pa.field("person_id", _ALIAS),
        pa.field("crustdata_person_id", _ALIAS),
        pa.field(
            "data",
            pa.struct(
                [
                    pa.field("business_email", EMAILS),
                    pa.field(
                        "personal_contact_info",
                        pa.struct(
                            [
                                pa.field("personal_emails", EMAILS),
                                pa.field("phone_numbers", PHONES),
                                pa.field("personal_email", _ALIAS),
                                pa.field("phone_number", _ALIAS),
                            ]
                        ),
                    ),
                    pa.field("business_emails", _ALIAS),
                    pa.field("personal_emails", _ALIAS),
                    pa.field("personal_email", _ALIAS),
                    pa.field("phone_numbers", _ALIAS),
                    pa.field("phone_number", _ALIAS),
                    pa.field("internal_id", _ALIAS),
                    pa.field("person_id", _ALIAS),
                    pa.field("crustdata_person_id", _ALIAS),
                ]
            ),
        ),
    ]
)
_PARSE_OPTIONS = pajson.ParseOptions(
    explicit_schema=ENVELOPE_SCHEMA, unexpected_field_behavior="ignore"
)
_READ_OPTIONS = pajson.ReadOptions(use_threads=True, block_size=1024 * 1024)

# Arrow cannot tell `"key": null` from an absent key; the reference parser can (null -> [],
# absent -> None). When a block has a null where the distinction matters, this scan of its raw
# bytes looks for an explicit null of any such key (or of any key written with escapes, which
# could decode to one of them). RE2 (via pyarrow.compute) scans at hundreds of MB/s.
_AMBIGUOUS_NULL = (
    r'"(?:data|business_emails?|personal_contact_info|personal_emails?|phone_numbers?'
    r'|[^"\\]*\\[^"]*)"\s*:\s*null'
)
# What `str.strip()` removes (`str.isspace()`): the reference parser's idea of a blank string.
_PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_JSON_WHITESPACE = b" \t\r\n"
_TIMESTAMP = ENRICHED_CONTACTS_SCHEMA.field("enriched_at").type
# The constants compared with, typed as the columns they meet (see `buffers`: no pandas).
_ZERO = buffers.integer(0, pa.int32())  # utf8_length and list_value_length are int32
_FALSE = buffers.boolean(False)
_EMPTY = buffers.string("")
_DELIVERABLE = buffers.string("deliverable")


class NotFast(Exception):
    """This block is not provably in the documented envelope; use the reference parser."""


def fast_block(
    block: bytes, *, batch_id: str, enriched_at: datetime | None
) -> tuple[pa.RecordBatch, int]:
    """One newline-aligned block of envelope records as (batch, newlines), or `NotFast`."""
    try:
        # Arrow parses the block's 1 MiB chunks on all cores (measured: much faster than one
        # chunk per block, even with reading and writing in their own threads).
        table = pajson.read_json(
            pa.py_buffer(block), read_options=_READ_OPTIONS, parse_options=_PARSE_OPTIONS
        )
    except (pa.ArrowException, ValueError) as error:
        # Not the envelope's shape (flat form, bare strings, single values, bad JSON, ...).
        first_line = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise NotFast(f"not the documented envelope ({first_line})") from None
    newlines = _check_one_object_per_line(block, table.num_rows)
    if table.column(0).num_chunks != 1:
        table = table.combine_chunks()
    batch, ambiguous = _convert(table, batch_id=batch_id, enriched_at=enriched_at)
    if ambiguous and _has_ambiguous_null(block):
        raise NotFast("a contact field is an explicit null (the reference parser reads it as [])")
    return batch, newlines


def _check_one_object_per_line(block: bytes, rows: int) -> int:
    """The reference parser reads one object per non-blank line; Arrow reads any JSON stream.

    If every non-blank line (stripped) starts with `{` and ends with `}`, no object spans two
    lines (a line break inside an object leaves a line ending in something else, or a next line
    starting with `,` `}` or `]`), so each line holds at least one object, and `rows == lines`
    means exactly one. The common layout is checked with numpy at memory speed; others line by line.
    """
    raw = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 0x0A)
    ends_with_newline = bool(len(raw)) and raw[-1] == 0x0A
    lines = len(newlines) + (0 if ends_with_newline else 1)
    followers = newlines[:-1] if ends_with_newline else newlines
    if (
        len(raw)
        and raw[0] == 0x7B  # {
        and (ends_with_newline or raw[-1] == 0x7D)  # }
        and bool((raw[newlines - 1] == 0x7D).all())
        and bool((raw[followers + 1] == 0x7B).all())
    ):
        if rows == lines:
            return len(newlines)
        raise NotFast("not one JSON object per line")
    nonblank = 0
    for line in block.split(b"\n"):
        if not line.strip():  # the reference parser's blank-line test
            continue
        nonblank += 1
        body = line.strip(_JSON_WHITESPACE)
        if body[:1] != b"{" or body[-1:] != b"}":
            raise NotFast("not one JSON object per line")
    if nonblank != rows:
        raise NotFast("not one JSON object per line")
    return len(newlines)


def _has_ambiguous_null(block: bytes) -> bool:
    raw = pa.Array.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, len(block)], dtype=np.int64)), pa.py_buffer(block)],
    )
    return bool(pc.match_substring_regex(raw, _AMBIGUOUS_NULL)[0].as_py())


def _non_blank(strings: pa.Array) -> pa.Array:
    """True where a string has a character `str.strip()` keeps (null -> False)."""
    trimmed = pc.utf8_trim(strings, characters=_PY_WHITESPACE)
    return pc.fill_null(pc.greater(pc.utf8_length(trimmed), _ZERO), _FALSE)


def _all_true(mask: pa.Array) -> bool:
    return mask.null_count == 0 and mask.false_count == 0


def _check_emails(emails: pa.Array, name: str) -> None:
    flat = emails.flatten()
    if flat.null_count:
        raise NotFast(f"{name} has a null entry")
    if not _all_true(_non_blank(pc.struct_field(flat, "email"))):
        raise NotFast(f"{name} has an entry without an email address")


def _non_empty(lists: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.list_value_length(lists), _ZERO), _FALSE)


def _convert(
    table: pa.Table, *, batch_id: str, enriched_at: datetime | None
) -> tuple[pa.RecordBatch, bool]:
    """Map parsed envelope records to table columns; returns (batch, needs the null scan).

    Raises `NotFast` where the reference parser could read a record differently.
    """
    n = table.num_rows
    if n == 0:
        empty = [pa.nulls(0, column.type) for column in ENRICHED_CONTACTS_SCHEMA]
        return pa.RecordBatch.from_arrays(empty, schema=ENRICHED_CONTACTS_SCHEMA), False
    columns = {name: table.column(name).chunk(0) for name in table.column_names}
    data = columns["data"]
    if data.null_count:
        raise NotFast("a record has no 'data' object (flat form?)")
    urls = columns["original_identifier"]
    if not _all_true(_non_blank(urls)):
        raise NotFast("a record has no original_identifier")
    business = pc.struct_field(data, "business_email")
    contact_info = pc.struct_field(data, "personal_contact_info")
    personal = pc.struct_field(contact_info, "personal_emails")
    phones = pc.struct_field(contact_info, "phone_numbers")
    _check_emails(business, "business_email")
    _check_emails(personal, "personal_emails")
    phone_values = phones.flatten()
    if phone_values.null_count or not _all_true(pc.not_equal(phone_values, _EMPTY)):
        raise NotFast("phone_numbers has a null or empty entry")
    # `{}` (reference: both []) and `{"other": 1}` (reference: both None) parse alike.
    empty_info = pc.and_(
        pc.is_valid(contact_info), pc.and_(pc.is_null(personal), pc.is_null(phones))
    )
    if empty_info.true_count:
        raise NotFast("personal_contact_info without personal_emails or phone_numbers")
    ambiguous = bool(business.null_count or personal.null_count or phones.null_count)
    matched = pc.or_(pc.or_(_non_empty(business), _non_empty(personal)), _non_empty(phones))
    batch = pa.RecordBatch.from_arrays(
        [
            urls,
            business,
            personal,
            phones,
            columns["internal_id"],
            pa.repeat(buffers.string(batch_id), n),
            pa.repeat(timestamp(enriched_at), n),
            matched,
            _primary_emails(business),
        ],
        schema=ENRICHED_CONTACTS_SCHEMA,
    )
    return batch, ambiguous


def timestamp(value: datetime | None) -> pa.Scalar:
    """`enriched_at` as the table's timestamp (a naive time is UTC)."""
    return buffers.timestamp(value, _TIMESTAMP)


def _primary_emails(business: pa.Array) -> pa.Array:
    """Per row: the first deliverable business email, else the first (`table._primary_email`)."""
    n = len(business)
    flat = business.flatten()
    if len(flat) == 0:
        return pa.nulls(n, pa.string())
    lengths = buffers.integers_to_numpy(pc.fill_null(pc.list_value_length(business), _ZERO))
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    choice = np.where(lengths > 0, starts, -1)
    deliverable = pc.fill_null(pc.equal(pc.struct_field(flat, "status"), _DELIVERABLE), _FALSE)
    hits = np.flatnonzero(buffers.booleans_to_numpy(deliverable))
    if len(hits):
        parents = buffers.integers_to_numpy(pc.list_parent_indices(business))[hits]
        rows, first = np.unique(parents, return_index=True)
        choice[rows] = hits[first]
    index = buffers.integers(choice, valid=choice >= 0)
    return pc.take(pc.struct_field(flat, "email"), index)

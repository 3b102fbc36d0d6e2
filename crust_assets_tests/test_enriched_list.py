"""The pure parts of enriched_list, in milliseconds: status, assembly, erasure marks, CSV, masks."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from crust_assets.enriched_list import (
    CSV_CONTACT_COLUMNS,
    ENRICHED_LIST_SCHEMA,
    LineStatus,
    build_enriched_list,
    csv_bytes,
    formula_safe,
    line_status,
    mark_erased,
    mask_email,
    mask_phone,
    preview_markdown,
    status_counts,
)
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets.url_lists import parse_url_list, prepare_url_list

JOHN = "https://www.linkedin.com/in/john-doe"
JANE = "https://www.linkedin.com/in/jane-roe"
GONE = "https://www.linkedin.com/in/gone-person"
LOST = "https://www.linkedin.com/in/lost-person"
NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"reject_reason": "empty"}, LineStatus.REJECTED),
        ({"reject_reason": "empty", "erased": True}, LineStatus.REJECTED),
        ({"erased": True, "duplicate_of": 2, "delivered": True}, LineStatus.ERASED),
        ({"duplicate_of": 2, "delivered": False}, LineStatus.DUPLICATE),
        ({"delivered": False}, LineStatus.NOT_DELIVERED),
        ({"delivered": True, "matched": False}, LineStatus.NOT_FOUND),
        ({"delivered": True, "matched": True}, LineStatus.ENRICHED),
    ],
)
def test_line_status(kwargs: dict, expected: LineStatus) -> None:
    base = {
        "reject_reason": None,
        "duplicate_of": None,
        "erased": False,
        "delivered": True,
        "matched": False,
    }
    assert line_status(**{**base, **kwargs}) is expected


def contact(url: str, business: list[str], phones: list[str], matched: bool = True) -> dict:
    return {
        "profile_url": url,
        "business_emails": [{"email": e, "status": "deliverable"} for e in business],
        "personal_emails": [],
        "phone_numbers": phones,
        "crustdata_person_id": 7,
        "batch_id": "b-1",
        "enriched_at": NOW,
        "matched": matched,
        "primary_business_email": business[0] if business else None,
    }


# A CRM export and what the API returned for it: formulas in user cells AND in API values.
EXPORT = (
    "crm_id,profile_url,owner\n"
    f'"=HYPERLINK(""http://evil"",""x"")",{JOHN},al\n'
    "C2,linkedin.com/in/john-doe/,\"=cmd|' /C calc'!A0\"\n"
    "C3,https://www.linkedin.com/company/acme,@SUM(A1:A9)\n"
    f"C4,{JANE},-12\n"
    f"C5,{GONE},+15551234567\n"
    f"C6,{LOST},-2+3+cmd|' /C calc'!A0\n"
)
CONTACTS = pa.Table.from_pylist(
    [
        contact(JOHN, ["=cmd|' /C calc'!A0@evil.com", "john@acme.com"], ["+15551234567"]),
        contact(JANE, [], [], matched=False),
        contact(GONE, ["g@x.com"], ["+16665550000"]),
    ],
    schema=ENRICHED_CONTACTS_SCHEMA,
)


def enriched(erased: list[str] = ()) -> pa.Table:  # type: ignore[assignment]
    lines = prepare_url_list(parse_url_list("crm.csv", EXPORT.encode())).lines
    return build_enriched_list(lines, CONTACTS, erased)


def test_one_row_per_line_with_statuses_and_contact_types() -> None:
    table = enriched()
    assert table.schema.names[:3] == ["crm_id", "input_profile_url", "owner"]
    assert table.schema.remove_metadata().names[3:] == ENRICHED_LIST_SCHEMA.names
    for name in ENRICHED_CONTACTS_SCHEMA.names:
        assert table.schema.field(name).type == ENRICHED_CONTACTS_SCHEMA.field(name).type
    rows = table.to_pylist()
    assert [r["status"] for r in rows] == [
        "enriched",
        "duplicate",
        "rejected",
        "not_found",
        "enriched",
        "not_delivered",
    ]
    assert (
        rows[1]["duplicate_of_line"] == 2
        and rows[1]["business_emails"] == rows[0]["business_emails"]
    )
    assert rows[2]["reason"] == "not_a_profile" and rows[2]["business_emails"] is None
    assert rows[5]["reason"] == "not_delivered" and "contact_enrichment_batch" in rows[5]["detail"]
    assert status_counts(table) == {
        "enriched": 2,
        "not_found": 1,
        "rejected": 1,
        "duplicate": 1,
        "not_delivered": 1,
        "erased": 0,
    }


def test_erased_people_have_no_values_at_build_and_when_marked_later() -> None:
    at_build = enriched(erased=[GONE, JOHN]).to_pylist()
    assert [r["status"] for r in at_build][:2] == ["erased", "erased"]  # the line and its duplicate
    assert at_build[4]["status"] == "erased"
    for row in (at_build[0], at_build[1], at_build[4]):
        assert row["business_emails"] is None and row["phone_numbers"] is None
        assert row["primary_business_email"] is None and row["crustdata_person_id"] is None
    marked, found = mark_erased(enriched(), [GONE])
    assert found == [GONE]
    assert marked.to_pylist()[4]["status"] == "erased"
    assert marked.to_pylist()[4]["phone_numbers"] is None
    assert marked.schema == enriched().schema  # the header metadata survives
    assert mark_erased(marked, [GONE])[1] == []  # nothing left to mark


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("+cmd|x", "'+cmd|x"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-", "'-"),
        ("+15551234567", "+15551234567"),
        ("+15551234567;+16661234567", "+15551234567;+16661234567"),
        ("+1 (555) 123-4567", "+1 (555) 123-4567"),
        ("-12", "-12"),
        ("-2+3", "-2+3"),
        ("john@acme.com", "john@acme.com"),
        ("", ""),
        (None, None),
    ],
)
def test_formula_safe(value: str | None, written: str | None) -> None:
    assert formula_safe(pa.array([value], pa.string())).to_pylist() == [written]


def test_csv_has_user_columns_first_and_nothing_executable() -> None:
    text = csv_bytes(enriched()).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["crm_id", "profile_url", "owner", *CSV_CONTACT_COLUMNS]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "@", "\t", "\r")), cell
            if cell.startswith(("+", "-")):
                assert set(cell) <= set("0123456789+-;() "), cell
    john, duplicate, rejected, jane, gone, lost = (
        dict(zip(rows[0], r, strict=True)) for r in rows[1:]
    )
    assert john["crm_id"].startswith("'=HYPERLINK")
    assert duplicate["owner"] == "'=cmd|' /C calc'!A0" and rejected["owner"] == "'@SUM(A1:A9)"
    assert jane["owner"] == "-12" and gone["owner"] == "+15551234567"
    assert lost["owner"].startswith("'-2+3+cmd")
    # values the API returned get the same treatment, phone numbers stay numbers
    assert john["business_email"] == "'=cmd|' /C calc'!A0@evil.com"
    assert john["business_email_status"] == "deliverable"
    assert john["all_business_emails"] == "'=cmd|' /C calc'!A0@evil.com;john@acme.com"
    assert john["phone_numbers"] == "+15551234567" and gone["phone_numbers"] == "+16665550000"
    assert rejected["status"] == "rejected" and rejected["reason"].startswith("not_a_profile: ")
    assert duplicate["status"] == "duplicate" and "line 2" in duplicate["reason"]


def test_csv_header_keeps_the_users_names_unless_they_clash() -> None:
    export = "Status,,email,email,profile_url\nA,B,C,D,https://www.linkedin.com/in/john-doe\n"
    lines = prepare_url_list(parse_url_list("x.csv", export.encode())).lines
    text = csv_bytes(build_enriched_list(lines, CONTACTS, [])).decode()
    header = next(csv.reader(io.StringIO(text)))
    assert header[:5] == ["input_Status", "column_2", "email", "email_2", "profile_url"]


def test_masks_keep_the_domain_only() -> None:
    assert mask_email("john.doe@acme.com") == "j***@acme.com"
    assert mask_email(None) == "" and mask_email("nodomain") == "***"
    assert mask_phone("+15551234567") == "+1********67"
    assert mask_phone("123") == "***"
    preview = preview_markdown(enriched())
    assert "calc'!A0@evil.com" not in preview and "=***@evil.com" in preview
    assert "+15551234567" not in preview.split("| owner |")[1].split("C5")[0]
    assert "+1********67" in preview
    assert "\\|" in preview  # a pipe in a cell does not break the table

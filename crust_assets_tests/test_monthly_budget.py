"""The monthly budget's decision and the month's delivered credits: pure, millisecond tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from crust_assets.monthly_budget import (
    MonthToDate,
    delivered_credits,
    month_of,
    month_start,
    monthly_metadata,
    monthly_refusal,
)
from crust_assets.table import COLUMN_CREDITS, ENRICHED_CONTACTS_SCHEMA

MONTH = MonthToDate("2026-12", delivered=700, pending=200)


def test_no_budget_never_refuses() -> None:
    assert monthly_refusal("2026-12-01", 10**9, MONTH, None) is None


def test_a_plan_that_reaches_the_budget_exactly_fits_one_more_credit_does_not() -> None:
    assert monthly_refusal("2026-12-01", 100, MONTH, 1000) is None
    text = monthly_refusal("2026-12-01", 101, MONTH, 1000)
    assert text is not None
    assert "Partition 2026-12-01" in text and "up to 101 credits" in text
    assert "700 credits delivered" in text and "up to 200 in plans not loaded" in text
    assert "reach 1001" in text and "CRUST_MONTHLY_CREDIT_BUDGET=1000" in text


def test_a_plan_that_buys_nothing_is_never_refused_even_over_budget() -> None:
    assert monthly_refusal("2026-12-01", 0, MonthToDate("2026-12", 5000, 0), 1000) is None


def test_a_zero_budget_refuses_any_purchase() -> None:
    assert monthly_refusal("2026-12-01", 1, MonthToDate("2026-12", 0, 0), 0) is not None


def test_the_month_is_the_utc_calendar_month() -> None:
    late_local = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert month_of(late_local) == "2026-11"  # 22:30 UTC on 30 November
    assert month_start(datetime(2026, 12, 31, 23, 59)) == datetime(2026, 12, 1, tzinfo=timezone.utc)


def _rows(*rows: tuple[str | None, str, int, int, int]) -> pa.Table:
    """(batch_id, url, business emails, personal emails, phones) -> enriched_contacts rows."""
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    return pa.Table.from_pylist(
        [
            {
                "profile_url": url,
                "business_emails": [{"email": f"b{i}@x.test", "status": "ok"} for i in range(b)],
                "personal_emails": [{"email": f"p{i}@x.test", "status": "ok"} for i in range(p)],
                "phone_numbers": [f"+1555000{i}" for i in range(ph)],
                "batch_id": batch,
                "enriched_at": at,
            }
            for batch, url, b, p, ph in rows
        ],
        schema=ENRICHED_CONTACTS_SCHEMA,
    )


def test_delivered_credits_price_found_values_and_count_each_jobs_row_once() -> None:
    rows = _rows(
        ("job-1", "u1", 2, 1, 0),  # 1 + 2 (a list is one value, however long)
        ("job-1", "u2", 0, 0, 1),  # 2
        ("job-1", "u1", 2, 1, 0),  # the same row reused by another day: not bought again
        ("job-2", "u1", 1, 0, 0),  # bought again by another job: 1
        (None, "u3", 0, 0, 0),  # nothing found: free
    )
    assert delivered_credits(rows, COLUMN_CREDITS) == 3 + 2 + 1
    assert delivered_credits(rows.slice(0, 0), COLUMN_CREDITS) == 0


def test_not_requested_columns_are_free() -> None:
    table = _rows(("job-1", "u1", 1, 1, 1))
    nulls = pa.nulls(1, ENRICHED_CONTACTS_SCHEMA.field("phone_numbers").type)
    table = table.set_column(table.schema.get_field_index("phone_numbers"), "phone_numbers", nulls)
    assert delivered_credits(table, COLUMN_CREDITS) == 3


def test_metadata_is_numbers_and_names_the_budget_only_when_set() -> None:
    assert monthly_metadata(MONTH, None) == {
        "credits_month_to_date": 700,
        "credits_month_pending": 200,
    }
    assert monthly_metadata(MONTH, 1200)["monthly_budget_used"] == 0.75

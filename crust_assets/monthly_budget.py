"""The month's spend against CRUST_MONTHLY_CREDIT_BUDGET: what was delivered, what may still be.

A per-partition budget stops one big list, but thirty small ones add up; finance plans by the
calendar month (UTC). A new plan is refused when, at its worst case, it would take the month past
the budget. What counts for the month:
- **delivered:** the credits of the values jobs delivered this month, each job's row counted once
  (a row reused or borrowed by another day is the same purchase, not a new one);
- **pending:** the worst case of plans made this month whose rows are not loaded yet (their jobs
  may still deliver, and are billed when they do).

Pure: the figures are gathered by `crust_assets.defs.spend`; this module decides and words it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

MONTHLY_BUDGET_ENV = "CRUST_MONTHLY_CREDIT_BUDGET"


@dataclass(frozen=True)
class MonthToDate:
    """The calendar month's credits (UTC): delivered by jobs, and the worst case still pending."""

    month: str  # YYYY-MM
    delivered: int
    pending: int

    @property
    def committed(self) -> int:
        return self.delivered + self.pending


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s calendar month, in UTC (a naive `now` is taken as UTC)."""
    utc = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_of(now: datetime) -> str:
    return month_start(now).strftime("%Y-%m")


def delivered_credits(rows: pa.Table, column_credits: dict[str, int]) -> int:
    """Credits of `rows` (enriched_contacts rows), each (batch_id, profile_url) counted once.

    A value is billed when found: a non-empty list in a contact column costs that column's price.
    """
    if rows.num_rows == 0:
        return 0
    keys = pc.binary_join_element_wise(
        pc.fill_null(rows.column("batch_id"), ""), rows.column("profile_url"), "\x1f"
    )
    first = pc.equal(pa.array(range(rows.num_rows), pa.int64()), _first_index(keys))
    unique = rows.filter(first)
    total = 0
    for column, price in column_credits.items():
        if column in unique.column_names:
            found = pc.greater(pc.fill_null(pc.list_value_length(unique.column(column)), 0), 0)
            total += price * (pc.sum(found.cast(pa.int64())).as_py() or 0)
    return total


def _first_index(keys: pa.ChunkedArray | pa.Array) -> pa.Array:
    """For each row, the index of the first row with the same key."""
    table = pa.table({"key": keys, "i": pa.array(range(len(keys)), pa.int64())})
    firsts = table.group_by("key").aggregate([("i", "min")])
    lookup = pc.index_in(table.column("key"), value_set=firsts.column("key"))
    return pc.take(firsts.column("i_min"), lookup)


def monthly_refusal(date: str, estimate: int, month: MonthToDate, budget: int | None) -> str | None:
    """Why a plan of `date` costing up to `estimate` must not be made this month (None: it may).

    A plan that buys nothing is never refused, even in a month already over its budget.
    """
    if budget is None or estimate <= 0:
        return None
    total = month.committed + estimate
    if total <= budget:
        return None
    return (
        f"Partition {date}: this plan could cost up to {estimate} credits. {month.month} has "
        f"{month.delivered} credits delivered and up to {month.pending} in plans not loaded "
        f"yet, so the month could reach {total}, above {MONTHLY_BUDGET_ENV}={budget}. Raise "
        f"{MONTHLY_BUDGET_ENV}, plan fewer URLs, or wait for the next month."
    )


def monthly_metadata(month: MonthToDate, budget: int | None) -> dict[str, int | float]:
    """Numbers for the asset's metadata (the UI plots numeric metadata over materialisations)."""
    out: dict[str, int | float] = {
        "credits_month_to_date": month.delivered,
        "credits_month_pending": month.pending,
    }
    if budget is not None:
        out["monthly_credit_budget"] = budget
        out["monthly_budget_used"] = round(month.committed / budget, 4) if budget else 1.0
    return out

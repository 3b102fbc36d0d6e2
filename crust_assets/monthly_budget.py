"""The month's spend against CRUST_MONTHLY_CREDIT_BUDGET: what was bought, what may still be.

A per-partition budget stops one big list, but thirty small ones add up; finance plans by the
calendar month (UTC). A new plan is refused when, at its worst case, it would take the month past
the budget. Both figures come from the job lifecycle's event log, the durable record of what was
bought, never from the warehouse's rows: `crust-assets forget` erases rows and a re-plan replaces
a day's file, and neither un-buys anything.

- **delivered:** every job whose `job_completed` event was recorded this month, once (by batch
  id), whichever plan it belonged to (superseded, failed and not-yet-loaded plans included). The
  API bills only the values it finds, but its status reports no credits, only
  `entities_fulfilled` (profiles with at least one value found); the per-field counts are in the
  result files, which only a load downloads, and not for every job (a superseded plan is never
  loaded). So a job counts its fulfilled profiles at the price of every field it asked for: an
  upper bound of its bill, exact when every field asked was found, and never lowered later.
  Without `entities_fulfilled` (an older event) its `result_count` is used, then its size.
- **pending:** the worst case of the jobs of plans still running (no outcome in the log) that
  have neither delivered nor been given up: they may still deliver, and are billed when they do.
  A plan that completed, failed or was superseded owes nothing more.

Pure: `crust_assets.defs.spend` folds the log with the lifecycle's ledger and hands the plans and
the completed jobs here; this module computes the figures, decides and words the refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from crust_assets.lifecycle.events import JobCompleted
from crust_assets.lifecycle.ledger import PlanState, plan_key
from crust_assets.table import COLUMN_CREDITS, worst_case_credits

MONTHLY_BUDGET_ENV = "CRUST_MONTHLY_CREDIT_BUDGET"


@dataclass(frozen=True)
class MonthToDate:
    """The calendar month's credits (UTC): bought by jobs, and the worst case still pending."""

    month: str  # YYYY-MM
    delivered: int
    pending: int

    @property
    def committed(self) -> int:
        return self.delivered + self.pending


@dataclass(frozen=True)
class Delivery:
    """One completed job, as its `job_completed` event recorded it."""

    key: str  # the batch id (or plan key and job index): a job is counted once
    at: float  # when the event was recorded (unix seconds)
    profiles: int  # profiles with a value found
    fields: tuple[str, ...]  # the API fields the job asked for (empty: unknown, every field)

    @property
    def credits(self) -> int:
        """At most what the job was billed: every field asked, for every profile fulfilled."""
        if not self.fields:
            return self.profiles * sum(COLUMN_CREDITS.values())
        return worst_case_credits(self.profiles, self.fields)


def month_start(now: datetime) -> datetime:
    """The first instant of `now`'s calendar month, in UTC (a naive `now` is taken as UTC)."""
    utc = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def previous_month_start(now: datetime) -> datetime:
    """The first instant of the month before `now`'s: plans made since then may still run."""
    return month_start(month_start(now) - timedelta(days=1))


def month_of(now: datetime) -> str:
    return month_start(now).strftime("%Y-%m")


def delivery(event: JobCompleted, at: float, plan: PlanState | None) -> Delivery:
    """What a `job_completed` event (recorded at `at`) of `plan` (None: not found) bought."""
    size = plan.job_size(event.job_index) if plan is not None else 0
    profiles = next(
        (n for n in (event.entities_fulfilled, event.result_count) if n is not None), size
    )
    key = event.batch_id or f"{plan_key(event.date, event.plan_id)}#{event.job_index}"
    fields = tuple(plan.fields) if plan is not None else ()
    return Delivery(key, at, max(0, profiles), fields)


def delivered_credits(deliveries: Iterable[Delivery], since: datetime) -> int:
    """Credits of the jobs completed at or after `since`, each job once."""
    start, seen, total = since.timestamp(), set(), 0
    for item in deliveries:
        if item.at >= start and item.key not in seen:
            seen.add(item.key)
            total += item.credits
    return total


def pending_credits(plans: Iterable[PlanState]) -> int:
    """Worst case of the running plans' jobs that have neither delivered nor been given up.

    `plans` are folded with their deliveries (a ledger made with `record_deliveries`).
    """
    total = 0
    for plan in plans:
        if plan.outcome is not None:
            continue
        settled = set(plan.delivered) | set(plan.abandoned_reasons())
        for index in range(plan.job_count):
            if index not in settled:
                job = plan.jobs.get(str(index))
                size = plan.sent_size(job) if job is not None else plan.job_size(index)
                total += worst_case_credits(size, plan.fields)
    return total


def month_to_date(
    now: datetime, plans: Sequence[PlanState], deliveries: Iterable[Delivery]
) -> MonthToDate:
    """The figures of `now`'s month from the folded plans and the recorded completions."""
    return MonthToDate(
        month_of(now), delivered_credits(deliveries, month_start(now)), pending_credits(plans)
    )


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
        f"up to {month.delivered} credits bought by completed jobs and up to {month.pending} "
        f"in jobs still running or queued, so the month could reach {total}, above "
        f"{MONTHLY_BUDGET_ENV}={budget}. Raise {MONTHLY_BUDGET_ENV}, plan fewer URLs, or wait "
        "for the next month."
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

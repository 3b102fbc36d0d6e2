"""The monthly budget's decision and the month's figures: pure, millisecond tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from crust_assets.lifecycle.events import JobCompleted
from crust_assets.lifecycle.ledger import Job, JobState, Outcome, PlanState, job_count_for
from crust_assets.monthly_budget import (
    Delivery,
    MonthToDate,
    delivered_credits,
    delivery,
    month_of,
    month_start,
    month_to_date,
    monthly_metadata,
    monthly_refusal,
    pending_credits,
    previous_month_start,
)

MONTH = MonthToDate("2026-12", delivered=700, pending=200)
DEC = datetime(2026, 12, 1, tzinfo=timezone.utc)
ALL = ["business_email", "personal_contact_info"]  # 5 credits a profile


def test_no_budget_never_refuses() -> None:
    assert monthly_refusal("2026-12-01", 10**9, MONTH, None) is None


def test_a_plan_that_reaches_the_budget_exactly_fits_one_more_credit_does_not() -> None:
    assert monthly_refusal("2026-12-01", 100, MONTH, 1000) is None
    text = monthly_refusal("2026-12-01", 101, MONTH, 1000)
    assert text is not None
    assert "Partition 2026-12-01" in text and "up to 101 credits" in text
    assert "up to 700 credits bought by completed jobs" in text
    assert "up to 200 in jobs still running or queued" in text
    assert "reach 1001" in text and "CRUST_MONTHLY_CREDIT_BUDGET=1000" in text


def test_a_plan_that_buys_nothing_is_never_refused_even_over_budget() -> None:
    assert monthly_refusal("2026-12-01", 0, MonthToDate("2026-12", 5000, 0), 1000) is None


def test_a_zero_budget_refuses_any_purchase() -> None:
    assert monthly_refusal("2026-12-01", 1, MonthToDate("2026-12", 0, 0), 0) is not None


def test_the_month_is_the_utc_calendar_month() -> None:
    late_local = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert month_of(late_local) == "2026-11"  # 22:30 UTC on 30 November
    assert month_start(datetime(2026, 12, 31, 23, 59)) == DEC
    assert previous_month_start(datetime(2026, 1, 15)) == datetime(2025, 12, 1, tzinfo=timezone.utc)


def _plan(plan_id: str, urls: int, fields: list[str] = ALL, date: str = "2026-12-01") -> PlanState:
    plan = PlanState(date, plan_id, job_count_for(urls), urls, fields, "plan.parquet", 1)
    plan.next_index = 0
    return plan


def _completed(plan: PlanState, index: int, batch: str | None, **counts: int) -> JobCompleted:
    return JobCompleted(
        date=plan.date, plan_id=plan.plan_id, job_index=index, batch_id=batch, **counts
    )


def test_a_job_counts_its_fulfilled_profiles_at_the_price_of_every_field_it_asked() -> None:
    emails = _plan("p", 600, ["business_email"])  # 1 credit a profile found
    job = delivery(_completed(emails, 0, "b-1", entities_fulfilled=40, result_count=500), 0, emails)
    assert (job.key, job.profiles, job.credits) == ("b-1", 40, 40)
    every = _plan("q", 600)
    assert delivery(_completed(every, 0, "b-2", entities_fulfilled=40), 0, every).credits == 200


def test_an_older_event_falls_back_to_its_records_then_its_size_an_unknown_plan_to_all_fields():
    plan = _plan("p", 400, ["business_email"])  # jobs of 300 and 100
    assert delivery(_completed(plan, 0, "b", result_count=30), 0, plan).profiles == 30
    assert delivery(_completed(plan, 1, None), 0, plan).profiles == 100  # the last job's size
    unknown = delivery(_completed(plan, 0, "b", entities_fulfilled=3), 0, None)
    assert unknown.credits == 15
    assert delivery(_completed(plan, 1, None), 0, plan).key == "2026-12-01/p#1"


def test_delivered_counts_this_months_completions_once_each() -> None:
    start = DEC.timestamp()
    deliveries = [
        Delivery("b-1", start + 10, 10, ("business_email",)),  # 10
        Delivery("b-1", start + 20, 10, ("business_email",)),  # the same job recorded again
        Delivery("b-2", start + 30, 2, tuple(ALL)),  # 10
        Delivery("b-old", start - 1, 100, tuple(ALL)),  # November's
    ]
    assert delivered_credits(deliveries, DEC) == 20
    assert delivered_credits([], DEC) == 0


def test_pending_is_the_worst_case_of_running_plans_jobs_not_delivered_nor_given_up() -> None:
    running = _plan("running", 700)  # jobs of 300, 300, 100
    running.delivered[0] = "b-0"  # delivered: counted as bought, not pending
    running.jobs["1"] = Job(1, JobState.ABANDONED, error="refused")  # given up: never delivers
    running.next_index = 2
    assert pending_credits([running]) == 100 * 5  # only the third job may still deliver

    in_flight = _plan("erased", 300)
    in_flight.jobs["0"] = Job(0, JobState.ACTIVE, batch_id="b", url_count=280)  # 20 erased
    skipped = _plan("skipped", 600)
    skipped.skipped_from, skipped.next_index = 0, 2  # credits ran out: nothing sent
    assert pending_credits([in_flight, skipped]) == 280 * 5


def test_settled_and_superseded_plans_owe_nothing_more() -> None:
    plans = [_plan(name, 1_000) for name in ("completed", "failed", "superseded")]
    for plan, outcome in zip(
        plans, (Outcome.COMPLETED, Outcome.FAILED, Outcome.SUPERSEDED), strict=True
    ):
        plan.outcome = outcome
    assert pending_credits(plans) == 0


def test_month_to_date_combines_both() -> None:
    plan = _plan("running", 200, ["business_email"])
    month = month_to_date(
        DEC + timedelta(days=3), [plan], [Delivery("b", DEC.timestamp(), 7, ("business_email",))]
    )
    assert month == MonthToDate("2026-12", delivered=7, pending=200)


def test_metadata_is_numbers_and_names_the_budget_only_when_set() -> None:
    assert monthly_metadata(MONTH, None) == {
        "credits_month_to_date": 700,
        "credits_month_pending": 200,
    }
    assert monthly_metadata(MONTH, 1200)["monthly_budget_used"] == 0.75

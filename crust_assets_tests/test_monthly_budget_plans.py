"""CRUST_MONTHLY_CREDIT_BUDGET on real plans: a real instance, data root and emulator process.

The first plan of the month is recorded (its worst case is pending while its jobs may deliver);
the next one that would take the month past the budget is refused with the figures, like the
per-partition budget, and nothing is submitted. A plan that fits exactly is made. Once a plan's
jobs have delivered, the month counts what they bought from their completion events: erasing the
people with `forget` does not lower it, and the next plans are judged against it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from crust_assets.defs.spend import month_to_date
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.erasure import forget
from crust_assets_tests.pipeline_harness import Pipeline, make_urls


def _failure_text(result: object) -> str:
    events = getattr(result, "all_events", [])
    return " ".join(str(e.event_specific_data) for e in events if e.is_failure)


def test_a_plan_that_would_cross_the_monthly_budget_is_refused(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    settings = {"monthly_credit_budget": 2_500}
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings=settings)
    pipeline.write_list("2026-11-20", make_urls("month-a", 400))  # worst case 400 * 5 = 2000
    assert pipeline.plan("2026-11-20").success

    pipeline.write_list("2026-11-21", make_urls("month-b", 200))  # 1000 more: 3000 > 2500
    refused = pipeline.plan("2026-11-21", raise_on_error=False)
    assert not refused.success
    text = _failure_text(refused)
    assert "Partition 2026-11-21: this plan could cost up to 1000 credits" in text
    assert "up to 0 credits bought by completed jobs and up to 2000 in jobs still running" in text
    assert "could reach 3000, above CRUST_MONTHLY_CREDIT_BUDGET=2500" in text

    pipeline.write_list("2026-11-22", make_urls("month-c", 100))  # 500: exactly 2500 fits
    assert pipeline.plan("2026-11-22").success
    assert emulator.admin.submissions() == []  # planning never submits


def test_without_a_monthly_budget_nothing_is_refused_for_the_month(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    for day, prefix in (("2026-11-20", "free-a"), ("2026-11-21", "free-b")):
        pipeline.write_list(day, make_urls(prefix, 400))
        assert pipeline.plan(day).success


def test_what_jobs_bought_counts_for_the_month_and_forget_does_not_lower_it(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("month-d", 60)
    pipeline.write_list("2026-11-20", urls)
    assert pipeline.plan("2026-11-20").success
    [load] = pipeline.drive(until_runs=1)
    assert load.success

    month = month_to_date(pipeline.instance, datetime.now(timezone.utc))
    fulfilled = sum(
        int(event["entities_fulfilled"])
        for event in pipeline.observations("2026-11-20")
        if event["event"] == "job_completed"
    )
    billed = sum(job["credits_billed"] for job in emulator.admin.submissions())
    assert month.pending == 0  # the plan completed: nothing more to deliver
    assert month.delivered == 5 * fulfilled >= billed > 0  # at most 5 a profile found

    forget(pipeline.layout, urls)
    assert not pipeline.table("2026-11-20")
    assert month_to_date(pipeline.instance, datetime.now(timezone.utc)) == month

    # The budget leaves exactly one 20-URL plan (100 credits) after what was bought.
    tight = Pipeline(
        tmp_path / "data",
        emulator.base_url,
        settings={"monthly_credit_budget": month.delivered + 100},
        instance=pipeline.instance,
    )
    tight.write_list("2026-11-21", make_urls("month-e", 20))
    assert tight.plan("2026-11-21").success
    tight.write_list("2026-11-22", make_urls("month-f", 1))
    refused = tight.plan("2026-11-22", raise_on_error=False)
    assert not refused.success
    assert f"up to {month.delivered} credits bought by completed jobs" in _failure_text(refused)
    assert "up to 100 in jobs still running or queued" in _failure_text(refused)

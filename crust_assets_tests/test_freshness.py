"""When a day is due and why it is late: pure decisions, millisecond tests with a fixed clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from crust_assets.freshness import (
    DEFAULT_DEADLINE_CRON,
    DayFacts,
    deadline_of,
    due_day,
    late_verdict,
    window_before_deadline,
)

DAY = date(2026, 12, 1)
DEADLINE = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("now", "cron", "due"),
    [
        ("2026-12-01T09:59:59", DEFAULT_DEADLINE_CRON, "2026-11-30"),
        ("2026-12-01T10:00:00", DEFAULT_DEADLINE_CRON, "2026-12-01"),
        ("2026-12-01T23:59:00", DEFAULT_DEADLINE_CRON, "2026-12-01"),
        # A deadline after midnight still belongs to the day the schedule planned.
        ("2026-12-02T01:59:00", "0 2 * * *", "2026-11-30"),
        ("2026-12-02T02:00:00", "0 2 * * *", "2026-12-01"),
    ],
)
def test_the_due_day_is_the_newest_day_whose_deadline_passed(now: str, cron: str, due: str) -> None:
    assert due_day(at(now), cron).isoformat() == due


def test_a_days_deadline_is_the_first_deadline_tick_after_its_schedule() -> None:
    assert deadline_of(DAY, DEFAULT_DEADLINE_CRON) == DEADLINE
    assert deadline_of(DAY, "0 2 * * *") == at("2026-12-02T02:00:00")


def test_the_policys_window_runs_from_the_schedule_to_the_deadline() -> None:
    assert window_before_deadline(DEFAULT_DEADLINE_CRON) == timedelta(hours=4)
    assert window_before_deadline("0 2 * * *") == timedelta(hours=20)
    assert window_before_deadline("0 6 * * *") == timedelta(days=1)  # never an empty window


def facts(**changes: object) -> DayFacts:
    base: dict[str, object] = {
        "day": DAY,
        "loaded": False,
        "expected": True,
        "input_file": "/data/input/2026-12-01.csv",
        "input_exists": True,
        "plan_made": True,
        "jobs_total": 3,
        "jobs_done": 3,
    }
    return DayFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_a_loaded_day_passes() -> None:
    verdict = late_verdict(facts(loaded=True), DEADLINE)
    assert verdict is not None and verdict.passed and verdict.cause == "loaded"


def test_a_day_nobody_expects_is_not_judged() -> None:
    assert (
        late_verdict(facts(expected=False, input_exists=False, plan_made=False), DEADLINE) is None
    )


@pytest.mark.parametrize(
    ("changes", "cause", "words"),
    [
        (
            {"input_exists": False, "plan_made": False},
            "no_input_file",
            "no input file at /data/input/2026-12-01.csv",
        ),
        ({"plan_made": False}, "plan_not_made", "contact_enrichment_batch[2026-12-01] was not"),
        ({"jobs_done": 1}, "jobs_running", "1 of 3 jobs done"),
        ({"load_failed": "run 1a2b3c4d: store down"}, "load_failed", "load failed: run 1a2b3c4d"),
        ({}, "load_pending", "the load has not run yet"),
    ],
)
def test_a_late_day_names_its_partition_deadline_and_cause(
    changes: dict[str, object], cause: str, words: str
) -> None:
    verdict = late_verdict(facts(**changes), DEADLINE)
    assert verdict is not None and not verdict.passed
    assert verdict.cause == cause
    assert verdict.text.startswith(
        "enriched_contacts[2026-12-01] is late (due 2026-12-01 10:00 UTC)"
    )
    assert words in verdict.text

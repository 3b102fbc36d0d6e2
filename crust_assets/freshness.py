"""When a day's `enriched_contacts` is due, and, when it is late, why: pure decisions.

The daily schedule plans `<day>.csv` at 06:00 UTC on that day; the day's table is due by the
next tick of CRUST_FRESHNESS_DEADLINE_CRON (default 10:00 UTC, four hours later). Dagster's own
`FreshnessPolicy.cron` on the asset says the same for the catalog and Dagster+, but open-source
Dagster evaluates it on the asset's newest materialisation of any partition: a backfill of an
old day makes the asset look fresh while today's partition is missing. So the project also names
the due partition and its cause in an asset check (defs/freshness.py), from these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dagster._utils.schedules import get_latest_completed_cron_tick

SCHEDULE_CRON = "0 6 * * *"
DEADLINE_ENV = "CRUST_FRESHNESS_DEADLINE_CRON"
DEFAULT_DEADLINE_CRON = "0 10 * * *"
TIMEZONE = "UTC"
DAY = timedelta(days=1)


def _latest_tick(cron: str, now: datetime) -> datetime:
    """The newest tick of `cron` at or before `now` (a tick at `now` itself counts)."""
    return get_latest_completed_cron_tick(cron, now, TIMEZONE)


def due_day(now: datetime, deadline_cron: str, schedule_cron: str = SCHEDULE_CRON) -> date:
    """The newest day whose deadline has passed: the day of the last schedule tick before the
    last deadline tick (with the defaults, today from 10:00 UTC on, yesterday before)."""
    deadline = _latest_tick(deadline_cron, now)
    return _latest_tick(schedule_cron, deadline).date()


def deadline_of(day: date, deadline_cron: str, schedule_cron: str = SCHEDULE_CRON) -> datetime:
    """When `day` is due: the first deadline tick at or after the day's schedule tick."""
    from dagster._utils.schedules import cron_string_iterator

    start = _latest_tick(schedule_cron, datetime(day.year, day.month, day.day, 23, 59))
    ticks = cron_string_iterator(start.timestamp(), deadline_cron, TIMEZONE)
    return next(ticks)


def window_before_deadline(deadline_cron: str, schedule_cron: str = SCHEDULE_CRON) -> timedelta:
    """`FreshnessPolicy.cron`'s lower bound: from the schedule's tick to the deadline (at most
    a day, as Dagster requires for a daily deadline)."""
    reference = datetime(2026, 1, 15, 12)  # any day: daily crons give the same gap
    deadline = _latest_tick(deadline_cron, reference)
    window = deadline - _latest_tick(schedule_cron, deadline)
    return window if timedelta(0) < window <= DAY else DAY


@dataclass(frozen=True)
class DayFacts:
    """What the instance and the data root say about the due day."""

    day: date
    loaded: bool
    expected: bool  # the schedule is on, or the day has a list or a plan
    input_file: str  # where the list is expected
    input_exists: bool
    plan_made: bool
    jobs_total: int = 0
    jobs_done: int = 0
    load_failed: str | None = None  # the last failed load's reason, when one failed


@dataclass(frozen=True)
class Verdict:
    """The check's answer: None when the day is not expected (nothing to say)."""

    passed: bool
    cause: str
    text: str


def late_verdict(facts: DayFacts, deadline: datetime) -> Verdict | None:
    """On time, late with its cause, or nothing to check (no schedule, no list, no plan)."""
    name = f"enriched_contacts[{facts.day.isoformat()}]"
    due = deadline.strftime("%Y-%m-%d %H:%M UTC")
    if facts.loaded:
        return Verdict(True, "loaded", f"{name} is loaded (due {due})")
    if not facts.expected:
        return None
    cause, what = _cause(facts)
    return Verdict(False, cause, f"{name} is late (due {due}): {what}")


def _cause(facts: DayFacts) -> tuple[str, str]:
    day = facts.day.isoformat()
    if not facts.input_exists and not facts.plan_made:
        return "no_input_file", f"no input file at {facts.input_file}"
    if not facts.plan_made:
        return "plan_not_made", (
            f"the list is there but contact_enrichment_batch[{day}] was not materialised "
            "(is the schedule or the file sensor on? launch it from the UI)"
        )
    if facts.load_failed:
        return "load_failed", f"the load failed: {facts.load_failed}"
    if facts.jobs_done < facts.jobs_total:
        return "jobs_running", (
            f"{facts.jobs_done} of {facts.jobs_total} jobs done; contact_enrichment_sensor "
            "loads the day when they are all done (is it running?)"
        )
    return "load_pending", "every job is done; the load has not run yet (is the sensor on?)"

"""A lasting failure is posted when new, then once per reminder interval, then when it clears:
millisecond tests of the pure rule, the failures' own timestamps as the clock."""

from __future__ import annotations

import pytest

from crust_assets.alert_reminders import (
    MAX_STANDING,
    Kind,
    Seen,
    Standing,
    condition,
    from_json,
    reminder_seconds,
    step,
    to_json,
)

TICKS = "tick:contact_enrichment_sensor"
HOUR = 3600.0


def refused(until: str) -> str:
    return f"Crustdata refused the API key (401). Submitting and polling are paused until {until}"


def waiting(hours: float, done: int) -> str:
    return f"2026-11-30: plan 1a2b3c4d has waited {hours:.1f} h: {done} of 12 done"


def run(outcomes: list[tuple[float, str | None]], reminder: float = HOUR) -> list[tuple]:
    """The posts a sequence of tick outcomes makes, from nothing standing."""
    standing: dict[str, Standing] = {}
    posts = []
    for at, failure in outcomes:
        post, standing = step(standing, Seen(TICKS, at, failure), reminder)
        if post is not None:
            posts.append((post.kind, at, post.since))
    return posts


def test_a_refused_key_failing_every_30_s_posts_once_then_hourly() -> None:
    ticks = [
        (t * 30.0, refused(f"2026-12-01 10:{(t * 30 // 300) * 5 % 60:02d}:00 UTC"))
        for t in range(0, 250)
    ]
    posts = run(ticks)
    assert [kind for kind, *_ in posts] == [Kind.NEW, Kind.REMINDER, Kind.REMINDER]
    assert [at for _, at, _ in posts] == [0.0, HOUR, 2 * HOUR]
    assert all(since == 0.0 for *_, since in posts)


def test_a_plan_waiting_with_progress_is_one_condition() -> None:
    ticks = [(t * 30.0, waiting(24 + t / 120, t // 10)) for t in range(100)]
    assert len(run(ticks)) == 1


def test_a_new_condition_is_posted_at_once_and_the_end_once() -> None:
    posts = run(
        [
            (0.0, refused("2026-12-01 10:05:00 UTC")),
            (30.0, refused("2026-12-01 10:05:00 UTC")),
            (60.0, waiting(24.2, 3)),  # another condition: posted at once
            (90.0, None),  # a tick that passes clears it
            (120.0, None),
            (150.0, waiting(24.3, 3)),  # back: new again
        ]
    )
    assert posts == [
        (Kind.NEW, 0.0, 0.0),
        (Kind.NEW, 60.0, 60.0),
        (Kind.CLEARED, 90.0, 60.0),
        (Kind.NEW, 150.0, 150.0),
    ]


def test_streams_are_apart_and_zero_reminder_posts_every_failure() -> None:
    standing: dict[str, Standing] = {}
    first, standing = step(standing, Seen("check:a[2026-12-01]", 0.0, "late"), HOUR)
    other, standing = step(standing, Seen("check:a[2026-12-02]", 1.0, "late"), HOUR)
    again, standing = step(standing, Seen("check:a[2026-12-01]", 2.0, "late"), HOUR)
    assert first and other and again is None
    assert len(run([(0.0, "x"), (1.0, "x"), (2.0, "x")], reminder=0.0)) == 3


def test_numbers_are_blanked_dates_and_ids_kept() -> None:
    assert condition(waiting(25.3, 7)) == "2026-11-30: plan 1a2b3c4d has waited # h: # of # done"
    assert condition("until 2026-12-01 10:05:00 UTC") == "until 2026-12-01 #:#:# UTC"
    assert condition("batch 7f3e9c1a-0b2d failed") == "batch 7f3e9c1a-0b2d failed"
    assert condition("out of credits for 2026-12-01") != condition("out of credits for 2026-12-02")


def test_the_reminder_setting_and_the_remembered_state() -> None:
    assert reminder_seconds(None) == reminder_seconds(" ") == HOUR
    assert reminder_seconds("0.5") == 30.0 and reminder_seconds("0") == 0.0
    for wrong in ("-1", "soon", "nan", "inf"):
        with pytest.raises(ValueError, match="CRUST_SLACK_REMINDER_MINUTES"):
            reminder_seconds(wrong)
    standing = {TICKS: Standing("c", 1.0, 2.0)}
    assert from_json(to_json(standing)) == standing
    many: dict[str, Standing] = {}
    for i in range(MAX_STANDING + 5):
        _, many = step(many, Seen(f"check:{i}", float(i), "late"), HOUR)
    assert len(many) == MAX_STANDING and "check:0" not in many

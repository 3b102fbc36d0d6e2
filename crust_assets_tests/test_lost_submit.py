"""The lost-submit look-up as a pure function: window, skew, size and known jobs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from crust_assets.crustdata import BatchStatus, find_lost_submit

SENT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def job(seconds_after_send: float, size: int = 3) -> BatchStatus:
    return BatchStatus(
        batch_id=str(uuid.uuid4()),
        status="pending",
        identifier_count=size,
        created_at=SENT + timedelta(seconds=seconds_after_send),
    )


def candidates(listed: list[BatchStatus], **kw: object) -> list[str]:
    args: dict[str, object] = {
        "sent_from": SENT,
        "sent_until": SENT + timedelta(seconds=10),
        "identifier_count": 3,
        "skew_seconds": 5.0,
    }
    args.update(kw)
    return [b.batch_id for b in find_lost_submit(listed, **args).candidates]  # type: ignore[arg-type]


def test_a_job_inside_the_window_widened_by_the_skew_matches() -> None:
    early, inside, late = job(-4.9), job(7), job(14.9)
    assert candidates([early, inside, late]) == [early.batch_id, inside.batch_id, late.batch_id]


def test_a_job_outside_the_skew_or_of_another_size_does_not() -> None:
    assert candidates([job(-5.1), job(15.1), job(3, size=4)]) == []
    assert candidates([job(-4)], skew_seconds=2.0) == []


def test_a_known_job_of_the_same_size_is_not_the_lost_one() -> None:
    ours, lost = job(1), job(2)
    found = find_lost_submit(
        [ours, lost],
        sent_from=SENT,
        sent_until=SENT + timedelta(seconds=10),
        identifier_count=3,
        skew_seconds=5.0,
        known_ids={ours.batch_id},
    )
    assert found.match == lost and not found.ambiguous


def test_two_fitting_jobs_are_ambiguous_and_none_is_chosen() -> None:
    a, b = job(1), job(2)
    found = find_lost_submit(
        [a, b],
        sent_from=SENT,
        sent_until=SENT + timedelta(seconds=10),
        identifier_count=3,
        skew_seconds=0.0,
    )
    assert found.ambiguous and found.match is None and found.candidates == (a, b)


def test_a_job_without_a_creation_time_or_naive_times_are_handled() -> None:
    undated = BatchStatus(batch_id=str(uuid.uuid4()), status="pending", identifier_count=3)
    naive = job(1).model_copy(update={"created_at": SENT.replace(tzinfo=None)})
    assert candidates([undated, naive], sent_from=SENT.replace(tzinfo=None)) == [naive.batch_id]

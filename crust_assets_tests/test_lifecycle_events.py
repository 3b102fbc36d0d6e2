"""Typed job events read and write exactly the observation metadata the sensor always wrote."""

from __future__ import annotations

import pytest

from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.events import EventName, parse_event

JOB = {"date": "2026-11-20", "plan_id": "p1", "job_index": 2, "attempt": 1, "job_count": 4}
BATCH = "0f0e0d0c-aaaa-bbbb-cccc-000000000001"

# Metadata as the sensor before the lifecycle package wrote it, one per kind (None values were
# dropped before writing, so they are absent here too).
WRITTEN_BEFORE = [
    {"event": "job_submitting", **JOB, "window_start": 100.5, "url_count": 300,
     "erased_not_submitted": 0},
    {"event": "job_submitted", **JOB, "batch_id": BATCH, "status": "pending", "url_count": 300},
    {"event": "job_submitted", **JOB, "batch_id": BATCH, "status": "processing",
     "reconciled": True},
    {"event": "job_processing", **JOB, "batch_id": BATCH, "status": "processing"},
    {"event": "job_completed", **JOB, "batch_id": BATCH, "status": "completed",
     "result_count": 299, "entities_fulfilled": 280, "completed_at": "2026-11-20T10:00:00+00:00"},
    {"event": "job_failed", **JOB, "batch_id": BATCH, "status": "failed", "message": "boom",
     "retry_at": 160.0},
    {"event": "job_failed", **JOB, "batch_id": BATCH, "status": "failed", "message": "boom"},
    {"event": "job_deferred", **JOB, "message": "the account already has 5 active jobs",
     "retry_at": 100.0},
    {"event": "job_submission_unconfirmed", **JOB, "reconcile_tries": 0, "message": "timeout"},
    {"event": "job_abandoned", **JOB, "message": "failed 3 times; last error: boom"},
    {"event": "job_not_submitted_erased", **JOB, "url_count": 0, "erased_not_submitted": 3},
    {"event": "jobs_not_submitted", "date": "2026-11-20", "plan_id": "p1",
     "first_job_index": 2, "message": "out of credits"},
    {"event": "plan_completed", "date": "2026-11-20", "plan_id": "p1"},
    {"event": "plan_failed", "date": "2026-11-20", "plan_id": "p1", "message": "1 of 4 jobs"},
    {"event": "plan_superseded", "date": "2026-11-20", "plan_id": "p1"},
    {"event": "load_requested", "date": "2026-11-20", "plan_id": "p1", "attempt": 2,
     "run_key": "enriched_contacts:2026-11-20:p1:attempt-2"},
    {"event": "load_failed", "date": "2026-11-20", "plan_id": "p1", "attempt": 1,
     "message": "503", "failed_at": 10.0, "retry_at": 70.0},
    {"event": "load_given_up", "date": "2026-11-20", "plan_id": "p1", "attempt": 6,
     "message": "gone"},
    # The sensor's own state, so that a failed tick (no cursor saved) replays it.
    {"event": "submissions_paused", "date": "2026-11-20", "plan_id": "p1",
     "cause": "key_refused", "until": 400.0, "message": "the API refused the key: 401"},
    {"event": "credits_exhausted", "date": "2026-11-20", "plan_id": "p1", "message": "402"},
    {"event": "api_unreachable", "date": "2026-11-20", "plan_id": "p1", "since": 100.0,
     "message": "connection refused"},
    {"event": "api_reachable", "date": "2026-11-20", "plan_id": "p1", "down_since": 100.0},
    {"event": "alert_raised", "date": "2026-11-20", "plan_id": "p1", "alert": "plan_failed"},
]  # fmt: skip


@pytest.mark.parametrize("written", WRITTEN_BEFORE, ids=lambda m: str(m["event"]))
def test_each_kind_reads_and_writes_the_same_metadata(written: dict[str, object]) -> None:
    event = parse_event(written, description="shown in the UI")
    assert event is not None and written["event"] == event.NAME
    assert event.metadata() == written
    assert event.description == "shown in the UI"
    assert "description" not in event.metadata()


def test_names_are_the_values_always_written() -> None:
    assert {str(name) for name in EventName} == {str(m["event"]) for m in WRITTEN_BEFORE}
    assert EventName.JOB_SUBMISSION_UNCONFIRMED == "job_submission_unconfirmed"
    assert EventName.JOB_NOT_SUBMITTED_ERASED == "job_not_submitted_erased"
    assert EventName.JOBS_NOT_SUBMITTED == "jobs_not_submitted"


def test_missing_optional_fields_get_defaults_and_values_are_coerced() -> None:
    old = {"event": "job_submitting", "date": "2026-11-20", "plan_id": "p1", "job_index": "3"}
    event = parse_event(old)
    assert event == ev.JobSubmitting(date="2026-11-20", plan_id="p1", job_index=3)
    assert isinstance(event, ev.JobSubmitting) and event.attempt == 1
    assert event.window_start is None and event.url_count is None


@pytest.mark.parametrize(
    "metadata",
    [
        {"event": "job_teleported", "date": "2026-11-20", "plan_id": "p1"},  # unknown name
        {"date": "2026-11-20", "plan_id": "p1"},  # not a job event at all
        {"event": "job_completed", "date": "2026-11-20", "plan_id": "p1"},  # no job_index
        {"event": "job_completed", "date": "2026-11-20", "plan_id": "p1", "job_index": "x"},
        {"event": "jobs_not_submitted", "date": "2026-11-20", "plan_id": "p1"},
    ],
)
def test_what_is_not_an_event_parses_to_none(metadata: dict[str, object]) -> None:
    assert parse_event(metadata) is None


def test_none_values_are_left_out_of_the_metadata() -> None:
    last = ev.JobFailed(**JOB, batch_id=BATCH, status="failed", message="boom", retry_at=None)  # type: ignore[arg-type]
    assert "retry_at" not in last.metadata()
    assert last.metadata()["event"] == "job_failed" and type(last.metadata()["event"]) is str

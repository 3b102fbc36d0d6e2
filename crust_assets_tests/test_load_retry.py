"""Loads that heal by themselves: a failed enriched_contacts run is requested again, with backoff.

The decision is pure and tested on a fake clock; the fold of the load events is tested on the
queue state; one end-to-end test drives the real sensor and real runs against the emulator while
its object store is down, then back.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets.lifecycle.events import EventName, PlanEvent, parse_event
from crust_assets.lifecycle.ledger import MAX_ACTIVE_JOBS, Ledger, PlanState
from crust_assets.load_retry import (
    LoadAction,
    LoadDecision,
    LoadRetryPolicy,
    decide_load_retry,
    load_run_key,
    short_reason,
)
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-21"
POLICY = LoadRetryPolicy(max_attempts=4, first_backoff_seconds=60, max_backoff_seconds=150)


# ---- the decision, on a fake clock --------------------------------------------------------------
def test_backoff_doubles_from_the_first_wait_and_is_capped() -> None:
    assert [POLICY.backoff(n) for n in range(5)] == [0, 60, 120, 150, 150]
    huge = LoadRetryPolicy(max_attempts=10_000, first_backoff_seconds=1, max_backoff_seconds=9)
    assert huge.backoff(5_000) == 9  # no overflow however many attempts


def test_a_failed_attempt_waits_its_backoff_then_requests_the_next() -> None:
    failed_at = 1_000.0
    assert decide_load_retry(1, failed_at, failed_at, POLICY) == LoadDecision(
        LoadAction.WAIT, 1, at=1_060.0
    )
    assert decide_load_retry(1, failed_at, 1_059.9, POLICY).action == LoadAction.WAIT
    assert decide_load_retry(1, failed_at, 1_060.0, POLICY) == LoadDecision(LoadAction.REQUEST, 2)
    assert decide_load_retry(2, failed_at, 1_119.0, POLICY).at == 1_120.0
    assert decide_load_retry(3, failed_at, 1_150.0, POLICY) == LoadDecision(LoadAction.REQUEST, 4)


def test_attempts_are_bounded() -> None:
    assert decide_load_retry(4, 0.0, 10**9, POLICY) == LoadDecision(LoadAction.GIVE_UP, 4)
    once = LoadRetryPolicy(max_attempts=1)
    assert decide_load_retry(1, 0.0, 0.0, once).action == LoadAction.GIVE_UP
    no_wait = LoadRetryPolicy(first_backoff_seconds=0)
    assert decide_load_retry(1, 5.0, 5.0, no_wait) == LoadDecision(LoadAction.REQUEST, 2)


@pytest.mark.parametrize(
    "bad",
    [{"max_attempts": 0}, {"first_backoff_seconds": -1}, {"max_backoff_seconds": -5}],
)
def test_a_nonsense_policy_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="load"):
        LoadRetryPolicy(**bad)


def test_run_keys_carry_the_attempt_and_attempt_one_keeps_the_old_key() -> None:
    assert load_run_key(DATE, "p1", 1) == f"enriched_contacts:{DATE}:p1"
    assert load_run_key(DATE, "p1", 3) == f"enriched_contacts:{DATE}:p1:attempt-3"


def test_a_reason_is_one_short_line() -> None:
    text = "DownloadError:\n  HTTP 503\tSlowDown"
    assert short_reason(text) == "DownloadError: HTTP 503 SlowDown"
    assert short_reason("x" * 1_000, 20) == "x" * 17 + "..."


# ---- the fold: the cursor is a snapshot of the events --------------------------------------------
def plan(plan_id: str, storage_id: int, date: str = DATE, jobs: int = 1) -> PlanState:
    return PlanState(date, plan_id, jobs, 10 * jobs, ["business_email"], "p.parquet", storage_id)


def event(name: str, plan_id: str, **fields: object) -> PlanEvent:
    parsed = parse_event({"event": name, "date": DATE, "plan_id": plan_id, **fields})
    assert parsed is not None
    return parsed


def completed_and_requested(state: Ledger, plan_id: str) -> PlanState:
    state.apply(event(EventName.PLAN_COMPLETED, plan_id), 1.0)
    state.apply(event(EventName.LOAD_REQUESTED, plan_id, attempt=1), 2.0)
    return state.plans[f"{DATE}/{plan_id}"]


def test_a_requested_load_keeps_the_plan_until_it_is_settled() -> None:
    state = Ledger()
    state.add_plan(plan("a", 1))
    tracked = completed_and_requested(state, "a")
    state.forget_finished()
    assert state.plans and tracked.load_pending and state.loadable_plans() == [tracked]
    state.apply(event(EventName.LOAD_FAILED, "a", attempt=1, message="503", retry_at=70.0), 10.0)
    restored = Ledger.from_cursor(state.to_cursor())
    waiting = restored.plans[tracked.key]
    assert (waiting.load_state, waiting.load_attempt, waiting.load_retry_at) == ("waiting", 1, 70)
    assert (waiting.load_failed_at, waiting.load_error) == (10.0, "503")
    restored.apply(event(EventName.LOAD_REQUESTED, "a", attempt=2), 71.0)
    restored.apply(event(EventName.LOAD_GIVEN_UP, "a", attempt=2, message="gone"), 90.0)
    assert restored.loadable_plans() == []
    restored.forget_finished()
    assert restored.plans == {}


def test_a_load_being_retried_holds_no_slot_and_blocks_no_plan() -> None:
    state = Ledger()
    state.add_plan(plan("a", 1))
    completed_and_requested(state, "a")
    state.apply(event(EventName.LOAD_FAILED, "a", attempt=1, message="503", retry_at=70.0), 10.0)
    other = plan("b", 2, date="2026-11-22", jobs=7)
    state.add_plan(other)
    assert state.free_slots() == MAX_ACTIVE_JOBS
    assert state.open_plans() == [other]


def test_a_new_plan_of_the_day_supersedes_a_load_being_retried() -> None:
    state = Ledger()
    state.add_plan(plan("a", 1))
    old = completed_and_requested(state, "a")
    state.apply(event(EventName.LOAD_FAILED, "a", attempt=1, message="503", retry_at=70.0), 10.0)
    assert state.add_plan(plan("b", 2)) == [old]
    state.apply(event(EventName.PLAN_SUPERSEDED, "a"), 11.0)
    assert [p.plan_id for p in state.loadable_plans()] == []
    state.forget_finished()
    assert [p.plan_id for p in state.plans.values()] == ["b"]


def test_cursors_written_before_load_tracking_still_load() -> None:
    state = Ledger()
    state.add_plan(plan("a", 1))
    current = state.to_cursor()
    assert '"v":3' in current
    old = current.replace('"v":3', '"v":1')
    for field in ("load_state", "load_attempt", "load_failed_at", "load_retry_at", "load_error"):
        old = old.replace(f'"{field}":null,', "").replace(f'"{field}":0,', "")
    assert "load_" not in old
    restored = Ledger.from_cursor(old)
    assert restored.plans[f"{DATE}/a"].load_state is None
    with pytest.raises(ValueError, match="version 4"):
        Ledger.from_cursor(current.replace('"v":3', '"v":4'))


# ---- end to end: the store is down, then back; nobody steps in ----------------------------------
@pytest.fixture
def emulator(tmp_path: Path):
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.2, processing_seconds=0.4, part_size=120
    ) as process:
        yield process


def summary(result: dg.SensorResult) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def load_events(pipeline: Pipeline) -> list[dict]:
    return [e for e in pipeline.observations(DATE) if str(e["event"]).startswith("load_")]


def test_a_load_failing_while_the_store_is_down_is_requested_again_and_loads(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    settings = {"load_retry_seconds": 1, "max_load_attempts": 3}
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings=settings)
    urls = make_urls("storedown", 150)
    pipeline.write_list(DATE, urls)
    pipeline.plan(DATE)
    emulator.admin.set_faults(store_down_after_completion_seconds=3_600)
    [first] = pipeline.drive(until_runs=1)  # the run's own retries run out: the store is down
    assert not first.success
    emulator.admin.set_faults(store_down_after_completion_seconds=0)  # the store is back
    deadline = time.monotonic() + 30
    waited = []
    while True:
        assert time.monotonic() < deadline, waited
        before = pipeline.cursor
        result = pipeline.tick()
        if result.run_requests:
            break
        waited.append(summary(result))
        state = Ledger.from_cursor(pipeline.cursor)
        assert state.free_slots() == MAX_ACTIVE_JOBS  # a load being retried holds no job slot
        time.sleep(0.3)
    # The tick summary said which attempt comes next and why the last one failed.
    said = " ".join(waited)
    assert "load attempt 1 of 3 failed (attempt 2 at " in said
    assert "503" in said and "SlowDown" in said
    [request] = result.run_requests
    assert request.run_key.endswith(":attempt-2") and request.tags["crust/load_attempt"] == "2"
    # Replayed from the cursor before it (the tick died unsaved): the same request, no event.
    count = len(pipeline.observations(DATE))
    replay = Pipeline(
        pipeline.data_dir, pipeline.base_url, settings=settings, instance=pipeline.instance
    )
    replay.cursor = before
    assert [r.run_key for r in replay.tick().run_requests] == [request.run_key]
    assert len(pipeline.observations(DATE)) == count
    [second] = pipeline.run_requests(result)
    assert second.success
    assert {r["profile_url"] for r in pipeline.table(DATE)} == set(urls)
    # The partition's events tell the story; then the plan leaves the cursor.
    story = [(e["event"], e["attempt"]) for e in load_events(pipeline)]
    assert story == [
        (EventName.LOAD_REQUESTED, 1),
        (EventName.LOAD_FAILED, 1),
        (EventName.LOAD_REQUESTED, 2),
    ]
    failed = load_events(pipeline)[1]
    assert "503" in failed["message"] and failed["retry_at"] > failed["failed_at"]
    assert not pipeline.tick().run_requests
    assert Ledger.from_cursor(pipeline.cursor).plans == {}
    assert len(emulator.admin.submissions()) == 1  # loading again never buys again
    # A sensor whose cursor was reset finds the loaded run: nothing requested, nothing written.
    count = len(pipeline.observations(DATE))
    fresh = Pipeline(pipeline.data_dir, pipeline.base_url, instance=pipeline.instance).tick()
    assert not fresh.run_requests and len(pipeline.observations(DATE)) == count


def test_a_load_run_someone_canceled_is_not_requested_again(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"load_retry_seconds": 0})
    pipeline.write_list(DATE, make_urls("canceled", 5))
    pipeline.plan(DATE)
    deadline = time.monotonic() + 30
    while not (result := pipeline.tick()).run_requests:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    [request] = result.run_requests
    # What the daemon launches for the request, and a person then stops in the UI.
    job = pipeline.defs.resolve_job_def("load_enriched_contacts")
    run = pipeline.instance.create_run_for_job(
        job, tags={**request.tags, "dagster/partition": DATE}, status=dg.DagsterRunStatus.STARTED
    )
    pipeline.instance.report_run_canceled(run)
    after = pipeline.tick()
    assert not after.run_requests
    assert "load given up after attempt 1" in summary(after) and "canceled" in summary(after)
    [given_up] = [e for e in load_events(pipeline) if e["event"] == EventName.LOAD_GIVEN_UP]
    assert "not retried" in given_up["message"]
    assert Ledger.from_cursor(pipeline.cursor).plans == {}

"""Trouble is a failed tick of contact_enrichment_sensor, end to end.

Each case drives the real sensor against the emulator over HTTP through Dagster's own tick
machinery (`submitter_daemon`), on a real instance, and checks what a user sees: the tick's
status and error text, that the tick after the fault clears resumes, and, with the emulator's
submission log, that no job was lost or submitted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus

from crust_assets.defs.job_events import find_plan, record_event
from crust_assets.emulator import EmulatorProcess
from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.ledger import Ledger
from crust_assets_tests.pipeline_harness import Pipeline, make_urls
from crust_assets_tests.submitter_daemon import DaemonSensor, daemon_sensor

DAY = "2026-11-24"
RIGHT_KEY = "right-key-0123"
WRONG_KEY = "wrong-key-4567"
PAUSE = 2  # CRUST_REFUSAL_PAUSE_SECONDS of these tests


def failed(tick: InstigatorTick) -> str:
    """The failed tick's error text, as the UI and the Slack alert show it."""
    assert tick.status == TickStatus.FAILURE, (tick.status, tick.skip_reason)
    assert tick.error is not None
    return tick.error.message


def not_failed(tick: InstigatorTick) -> None:
    assert tick.status in (TickStatus.SKIPPED, TickStatus.SUCCESS), tick.error


def tick_until(sensor: DaemonSensor, done: Callable[[], bool], ticks: int = 40) -> None:
    for _ in range(ticks):
        if done():
            return
        not_failed(sensor.tick())
    raise AssertionError(f"not done after {ticks} ticks")


def loaded(instance: dg.DagsterInstance, date: str) -> bool:
    runs = instance.get_runs(
        dg.RunsFilter(job_name="load_enriched_contacts", tags={"dagster/partition": date})
    )
    return any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)


def submitted_once(emulator: EmulatorProcess, urls: list[str]) -> None:
    """Every accepted submit's URLs, together, are `urls`, each exactly once."""
    sent = [s["identifier_count"] for s in emulator.admin.submissions()]
    assert sum(sent) == len(urls), sent


def test_a_refused_key_fails_every_tick_until_the_key_works(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory(api_key=RIGHT_KEY)
    urls = make_urls("alarm-key", 350)
    data = tmp_path / "data"
    settings = {"refusal_pause_seconds": PAUSE}
    with daemon_sensor(
        tmp_path, base_url=emulator.base_url, data_dir=data, api_key=WRONG_KEY, settings=settings
    ) as sensor:
        pipeline = Pipeline(data, emulator.base_url, instance=sensor.instance)
        pipeline.write_list(DAY, urls)
        pipeline.plan(DAY)
        first = failed(sensor.tick())
        assert "Crustdata refused the API key" in first and "CRUSTDATA_API_KEY" in first
        assert WRONG_KEY not in first and RIGHT_KEY not in first
        assert sensor.cursor() is None  # the failed tick kept no cursor: the log is the truth
        again = failed(sensor.tick())  # paused: no call, still failing
        assert "Crustdata refused the API key" in again
        assert emulator.log_text().count("POST /batch/person/contact/enrich 401") == 1
        # The key is accepted again (the emulator now takes any key); after the pause the
        # next tick submits, and the day loads with each URL sent once.
        emulator.stop()
        fixed = EmulatorProcess(emulator.state_dir, port=emulator.port, pending_seconds=0.2)
        fixed.start()
        time.sleep(PAUSE)
        try:
            tick_until(sensor, lambda: loaded(sensor.instance, DAY))
            submitted_once(fixed, urls)
        finally:
            fixed.stop()
        not_failed(sensor.tick())
        assert Ledger.from_cursor(sensor.cursor()).plans == {}  # loaded, done with


def test_a_plan_without_contact_access_fails_every_tick_until_access_is_granted(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory(faults={"deny_contact_access": True})
    urls = make_urls("alarm-access", 350)
    data = tmp_path / "data"
    settings = {"refusal_pause_seconds": PAUSE}
    with daemon_sensor(
        tmp_path, base_url=emulator.base_url, data_dir=data, settings=settings
    ) as sensor:
        pipeline = Pipeline(data, emulator.base_url, instance=sensor.instance)
        pipeline.write_list(DAY, urls)
        pipeline.plan(DAY)
        first = failed(sensor.tick())
        assert "Crustdata denied this key access" in first and "permission_denied" in first
        assert "out of credits" not in first  # no access is not a credits problem
        assert "Use a key whose plan includes batch contact enrichment" in first
        assert sensor.cursor() is None  # the failed tick kept no cursor: the log is the truth
        again = failed(sensor.tick())  # paused: no call, still failing
        assert "Crustdata denied this key access" in again
        assert emulator.log_text().count("POST /batch/person/contact/enrich 403") == 1
        assert emulator.admin.submissions() == []  # nothing submitted, nothing billed
        # Access is granted; after the pause the next tick submits, and the day loads with
        # each URL sent once.
        emulator.admin.set_faults(deny_contact_access=False)
        time.sleep(PAUSE)
        tick_until(sensor, lambda: loaded(sensor.instance, DAY))
        submitted_once(emulator, urls)
        not_failed(sensor.tick())


def test_out_of_credits_fails_one_tick_after_the_load_is_requested(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory(credits=0)
    urls = make_urls("alarm-credits", 350)
    data = tmp_path / "data"
    with daemon_sensor(tmp_path, base_url=emulator.base_url, data_dir=data) as sensor:
        pipeline = Pipeline(data, emulator.base_url, instance=sensor.instance)
        pipeline.write_list(DAY, urls)
        pipeline.plan(DAY)
        # 402: both jobs given up, the plan failed, its load requested. A failed tick's run
        # requests are dropped, so this tick succeeds and launches the load...
        assert sensor.tick().status == TickStatus.SUCCESS
        check = sensor.instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey("enriched_contacts"), "one_row_per_submitted_url")
        )
        assert check is not None and check.event is not None
        evaluation = check.event.dagster_event.event_specific_data  # type: ignore[union-attr]
        assert not evaluation.passed and "ran out of credits" in str(evaluation.description)
        # ...and the next one fails, once, saying both what happened and what to do.
        text = failed(sensor.tick())
        assert "out of credits" in text and "Add credits" in text
        assert f"{DAY}: plan" in text and "one_row_per_submitted_url" in text
        not_failed(sensor.tick())
        not_failed(sensor.tick())
    assert emulator.admin.submissions() == []  # nothing bought, nothing sent again
    assert emulator.log_text().count("POST /batch/person/contact/enrich 402") == 1


def test_a_failed_plan_fails_one_tick_and_its_check(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory(faults={"fail_next_jobs": 1})
    urls = make_urls("alarm-failed", 120)
    data = tmp_path / "data"
    settings = {"max_job_attempts": 1}
    with daemon_sensor(
        tmp_path, base_url=emulator.base_url, data_dir=data, settings=settings
    ) as sensor:
        pipeline = Pipeline(data, emulator.base_url, instance=sensor.instance)
        pipeline.write_list(DAY, urls)
        pipeline.plan(DAY)
        ticks: list[InstigatorTick] = []
        while not ticks or ticks[-1].status != TickStatus.FAILURE:
            assert len(ticks) < 40, [t.status for t in ticks]
            ticks.append(sensor.tick())
            time.sleep(0.2)
        assert ticks[-2].status == TickStatus.SUCCESS  # the tick that launched the load
        text = failed(ticks[-1])
        assert f"{DAY}: plan" in text and "1 of 1 jobs not delivered" in text
        assert f"Re-materialise contact_enrichment_batch[{DAY}]" in text
        not_failed(sensor.tick())  # a one-off fact: reported once
    submitted_once(emulator, urls)  # one attempt allowed: sent once


@pytest.mark.slow
def test_an_unreachable_api_fails_ticks_after_the_bound_and_resumes(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory()
    urls = make_urls("alarm-down", 350)
    data = tmp_path / "data"
    settings = {"api_down_alert_minutes": 0.02}  # 1.2 s
    with daemon_sensor(
        tmp_path, base_url=emulator.base_url, data_dir=data, settings=settings
    ) as sensor:
        pipeline = Pipeline(data, emulator.base_url, instance=sensor.instance)
        pipeline.write_list(DAY, urls)
        pipeline.plan(DAY)
        emulator.stop()
        not_failed(sensor.tick())  # down, but not for long yet
        time.sleep(1.5)
        text = failed(sensor.tick())
        assert "The Crustdata API has not answered since" in text
        assert "CRUST_API_DOWN_ALERT_MINUTES=0.02" in text and "No job is lost" in text
        emulator.start()
        tick_until(sensor, lambda: loaded(sensor.instance, DAY))
    submitted_once(emulator, urls)


def test_a_plan_waiting_longer_than_the_bound_fails_ticks_until_it_moves(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulator_factory(pending_seconds=3.0)
    urls = make_urls("alarm-wait", 350)
    data = tmp_path / "data"
    settings = {"plan_wait_alert_hours": 0.0005}  # 1.8 s
    with daemon_sensor(
        tmp_path, base_url=emulator.base_url, data_dir=data, settings=settings
    ) as sensor:
        pipeline = Pipeline(data, emulator.base_url, instance=sensor.instance)
        pipeline.write_list(DAY, urls)
        pipeline.plan(DAY)
        not_failed(sensor.tick())  # both jobs submitted
        time.sleep(2.0)
        text = failed(sensor.tick())
        assert f"{DAY}: plan" in text and "CRUST_PLAN_WAIT_ALERT_HOURS=0.0005" in text
        assert "for its jobs: 0 of 2 done, 2 submitted, 0 queued" in text
        time.sleep(2.0)  # the jobs are done now
        tick_until(sensor, lambda: loaded(sensor.instance, DAY))
    submitted_once(emulator, urls)


def test_failing_ticks_replay_the_log_and_record_nothing_twice(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorProcess]
) -> None:
    """Ticks that fail keep no cursor: each replays the log, and a plan made meanwhile
    supersedes the old one once, not once per failed tick."""
    emulator = emulator_factory(api_key=RIGHT_KEY)
    settings = {"refusal_pause_seconds": 60}
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, api_key=WRONG_KEY, settings=settings)
    pipeline.write_list(DAY, make_urls("alarm-replan", 10))
    pipeline.plan(DAY)
    pipeline.tick()  # 401: the pause is recorded, the tick fails
    pipeline.plan(DAY, replace_unfinished_plan=True)
    for _ in range(3):
        pipeline.tick()
    assert len(pipeline.failed_ticks) == 4 and pipeline.cursor is None
    assert all("Crustdata refused the API key" in text for text in pipeline.failed_ticks)
    names = [str(o["event"]) for o in pipeline.observations(DAY)]
    assert names.count("plan_superseded") == 1, names
    assert names.count("submissions_paused") == 1 and names.count("job_submitting") == 1


def test_a_failure_already_in_the_log_is_history_for_a_new_cursor(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """A plan failure a version before these alarms recorded (no alert_raised after it) does
    not fail the first tick of a new cursor: it is history, not news."""
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    pipeline.write_list(DAY, make_urls("alarm-history", 10))
    pipeline.plan(DAY)
    plan = find_plan(pipeline.instance, DAY)
    assert plan is not None
    old = ev.PlanFailed(date=DAY, plan_id=plan.plan_id, message="1 of 1 jobs not delivered")
    record_event(pipeline.instance, old)
    pipeline.run_requests(pipeline.tick())  # no cursor: the whole log is folded, load requested
    pipeline.tick()
    assert pipeline.failed_ticks == []

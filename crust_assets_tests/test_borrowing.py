"""Borrowing: a URL in flight for one partition is never bought again for another.

Real emulator over HTTP, real Dagster instance, real sensor ticks and runs (pipeline_harness):
the emulator's submission log is the bill.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets.lifecycle.events import EventName, parse_event
from crust_assets.lifecycle.ledger import Ledger, PlanState
from crust_assets_tests.pipeline_harness import Pipeline, make_urls
from crust_assets_tests.test_pipeline import expected_row

OLDER, NEWER = "2026-11-10", "2026-11-11"


@pytest.fixture
def emulator(tmp_path: Path):
    # Slow enough that both partitions are planned and submitted before any job is done.
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.5, processing_seconds=1.5, part_size=120
    ) as process:
        yield process


@pytest.fixture
def pipeline(tmp_path: Path, emulator: EmulatorProcess) -> Pipeline:
    return Pipeline(tmp_path / "data", emulator.base_url)


def plan_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node("contact_enrichment_batch")
    return {k: v.value for k, v in materialization.metadata.items()}


def submitted(emulator: EmulatorProcess, status: str | None = None) -> Counter:
    """How often each URL was submitted (only jobs in `status`, when given)."""
    return Counter(
        url
        for s in emulator.admin.submissions()
        if status is None or s["status"] == status
        for url in s["urls"]
    )


def plan_settled(pipeline: Pipeline, date: str) -> bool:
    events = {e["event"] for e in pipeline.observations(date)}
    return bool(events & {EventName.PLAN_COMPLETED, EventName.PLAN_FAILED})


def summary(result: dg.SensorResult) -> str:
    """What the sensor's tick says (shown in the UI's tick history)."""
    return result.skip_reason.skip_message if result.skip_reason else ""


def drive_checking_lenders(pipeline: Pipeline) -> dict[str, dg.ExecuteInProcessResult]:
    """Drive both days to their runs; assert NEWER's run is only requested once OLDER's plan is
    settled. Returns the runs by partition."""

    def check(result: dg.SensorResult) -> None:
        if any(r.partition_key == NEWER for r in result.run_requests or []):
            assert plan_settled(pipeline, OLDER), "borrower loaded before its lender was done"

    return pipeline.drive_partitions({OLDER, NEWER}, on_tick=check)


def test_overlapping_partitions_buy_each_shared_url_once(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    shared, only_older, only_newer = (
        make_urls("shared", 120),
        make_urls("only-older", 250),
        make_urls("only-newer", 30),
    )
    pipeline.write_list(OLDER, shared + only_older)  # 370 URLs: 2 jobs, shared ones in job 1
    pipeline.write_list(NEWER, only_newer + shared)
    lender = plan_metadata(pipeline.plan(OLDER))
    borrower = plan_metadata(pipeline.plan(NEWER))  # before any tick: nothing submitted yet
    assert borrower["urls_borrowed"] == 120
    assert borrower["urls_to_submit"] == 30
    assert borrower["lender_plans"] == [f"{OLDER}/{lender['plan_id']}"]
    assert lender["urls_borrowed"] == 0 and lender["urls_to_submit"] == 370

    first = pipeline.tick()
    assert not first.run_requests
    assert f"{NEWER}: 120 URLs borrowed from plans still running ({OLDER})" in summary(first)
    runs = drive_checking_lenders(pipeline)

    counts = submitted(emulator)
    assert set(counts) == set(shared + only_older + only_newer)
    assert set(counts.values()) == {1}  # every distinct URL bought exactly once
    assert all(run.success for run in runs.values())
    assert set(pipeline.check_results(runs[NEWER]).values()) == {True}
    older_rows = {r["profile_url"]: r for r in pipeline.table(OLDER)}
    newer_rows = {r["profile_url"]: r for r in pipeline.table(NEWER)}
    assert set(older_rows) == set(shared + only_older)
    assert set(newer_rows) == set(only_newer + shared)
    for url in shared:  # the lender's very rows: same values, same delivering job
        assert newer_rows[url] == older_rows[url]
        assert {k: newer_rows[url][k] for k in expected_row(url)} == expected_row(url)
    meta = pipeline.latest_materialization("enriched_contacts", NEWER).metadata
    assert meta["rows_borrowed"].value == 120
    assert meta["missing_borrowed"].value == 0


def test_a_borrower_whose_own_jobs_finish_first_waits_for_its_lender(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:

    pipeline = Pipeline(
        tmp_path / "data", emulator.base_url, settings={"retry_cooldown_seconds": 3}
    )
    emulator.admin.set_faults(fail_next_jobs=1)  # the lender's job (submitted first) fails once
    shared = make_urls("late", 50)
    pipeline.write_list(OLDER, shared)
    pipeline.write_list(NEWER, shared + make_urls("early", 10))
    pipeline.plan(OLDER)
    pipeline.plan(NEWER)
    waited: list[str] = []

    def check(result: dg.SensorResult) -> None:
        requested = {r.partition_key for r in result.run_requests or []}
        if plan_settled(pipeline, NEWER) and not plan_settled(pipeline, OLDER):
            assert NEWER not in requested
            waited.append(summary(result))

    runs = pipeline.drive_partitions({OLDER, NEWER}, on_tick=check)
    assert waited, "the borrower's own job never finished before the lender's"
    assert f"{NEWER}: 50 URLs borrowed from plans still running ({OLDER})" in waited[0]
    assert all(run.success for run in runs.values())
    assert {r["profile_url"] for r in pipeline.table(NEWER)} == set(shared + make_urls("early", 10))
    assert set(submitted(emulator, "completed").values()) == {1}


def test_a_lender_that_never_delivers_leaves_the_borrowed_urls_missing_then_bought_once(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"max_job_attempts": 2})
    emulator.admin.set_faults(job_failure_rate=1.0)
    shared = make_urls("doomed", 40)
    pipeline.write_list(OLDER, shared + make_urls("lonely", 10))
    pipeline.write_list(NEWER, shared)
    pipeline.plan(OLDER)
    borrower = plan_metadata(pipeline.plan(NEWER))
    assert borrower["urls_borrowed"] == 40 and borrower["job_count"] == 0

    runs = drive_checking_lenders(pipeline)
    check = {e.check_name: e for e in runs[NEWER].get_asset_check_evaluations()}
    one_row = check["one_row_per_submitted_url"]
    assert not one_row.passed
    assert "40 borrowed URLs were not delivered" in one_row.description
    assert "Re-materialise contact_enrichment_batch" in one_row.description
    assert pipeline.table(NEWER) == []

    # The recovery path: re-plan the borrower; the lender is settled, so the URLs are bought.
    emulator.admin.reset_faults()
    again = plan_metadata(pipeline.plan(NEWER))
    assert again["urls_to_submit"] == 40 and again["urls_borrowed"] == 0
    [run] = pipeline.drive(until_runs=1)
    assert run.success and pipeline.check_results(run)["one_row_per_submitted_url"]
    assert {r["profile_url"] for r in pipeline.table(NEWER)} == set(shared)
    bought = submitted(emulator, "completed")
    assert {bought[url] for url in shared} == {1}  # bought exactly once, by the re-plan
    assert {submitted(emulator, "failed")[url] for url in shared} == {2}  # never billed


def test_replayed_and_lost_cursor_ticks_change_nothing(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    shared = make_urls("replayed", 60)
    pipeline.write_list(OLDER, shared + make_urls("replay-older", 20))
    pipeline.write_list(NEWER, shared + make_urls("replay-newer", 20))
    pipeline.plan(OLDER)
    pipeline.plan(NEWER)
    pipeline.tick(keep_cursor=False)  # submitted both partitions' jobs; its cursor is lost
    assert len(emulator.admin.submissions()) == 2
    pipeline.tick()  # replays the event log from the old cursor
    assert len(emulator.admin.submissions()) == 2

    import time

    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline
        before = pipeline.cursor
        result = pipeline.tick()
        keys = {r.run_key for r in result.run_requests or []}
        if any(r.partition_key == NEWER for r in result.run_requests or []):
            break
        time.sleep(0.3)
    # The tick that requested the borrower's run, replayed from its starting cursor and from no
    # cursor at all: the same run keys (the daemon launches a run key once), no new submission.
    for cursor in (before, None):
        replay = Pipeline(
            pipeline.data_dir, pipeline.base_url, instance=pipeline.instance, cursor=cursor
        ).tick()
        assert {r.run_key for r in replay.run_requests or []} <= keys | {
            k for k in pipeline.requested_run_keys
        }
        assert NEWER in {r.partition_key for r in replay.run_requests or []}
    runs = pipeline.run_requests(result)
    assert all(run.success for run in runs)
    assert not pipeline.tick().run_requests  # the borrower left the cursor: nothing more
    assert len(emulator.admin.submissions()) == 2
    assert set(submitted(emulator).values()) == {1}
    assert len(pipeline.table(NEWER)) == 80 and len(pipeline.table(OLDER)) == 80


def test_a_borrowed_person_erased_before_the_load_is_not_written_back(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    from crust_assets.erasure import forget

    shared = make_urls("erased-shared", 30)
    pipeline.write_list(OLDER, shared)
    pipeline.write_list(NEWER, shared + make_urls("erased-newer", 5))
    pipeline.plan(OLDER)
    assert plan_metadata(pipeline.plan(NEWER))["urls_borrowed"] == 30
    pipeline.tick()  # submitted; the person asks to be forgotten before anything is loaded
    forget(pipeline.layout, [shared[7]])
    runs = drive_checking_lenders(pipeline)
    assert set(pipeline.check_results(runs[NEWER]).values()) == {True}
    assert {r["profile_url"] for r in pipeline.table(NEWER)} == (
        set(shared + make_urls("erased-newer", 5)) - {shared[7]}
    )
    meta = pipeline.latest_materialization("enriched_contacts", NEWER).metadata
    assert meta["rows_dropped_erased"].value == 1 and meta["rows_borrowed"].value == 30
    assert set(submitted(emulator).values()) == {1}


def test_borrowing_needs_the_fields_and_the_window(tmp_path: Path) -> None:
    """Planning only (nothing is submitted): what may lend."""
    data = tmp_path / "data"
    shared = make_urls("fields", 10)
    emails_only = Pipeline(data, "http://127.0.0.1:9", settings={"fields": "business_email"})
    everything = Pipeline(data, "http://127.0.0.1:9", instance=emails_only.instance)
    for pipeline, date in ((emails_only, "2026-11-01"), (everything, "2026-11-02")):
        pipeline.write_list(date, shared)
    emails_only.plan("2026-11-01")
    # The lender asked for fewer fields: buy.
    assert plan_metadata(everything.plan("2026-11-02"))["urls_borrowed"] == 0
    # Asking for fewer fields than a lender did: borrow.
    emails_only.write_list("2026-11-03", shared)
    assert plan_metadata(emails_only.plan("2026-11-03"))["urls_borrowed"] == 10
    # A plan older than the re-enrichment window does not lend.
    no_window = Pipeline(
        data,
        "http://127.0.0.1:9",
        instance=emails_only.instance,
        settings={"fields": "business_email", "reenrich_window_days": 0},
    )
    no_window.write_list("2026-11-04", shared)
    assert plan_metadata(no_window.plan("2026-11-04"))["urls_borrowed"] == 0


def test_a_plan_waiting_for_its_lenders_is_not_replaced_by_accident(tmp_path: Path) -> None:
    """Its own results are not loaded yet: a new plan of that day would buy them again."""
    pipeline = Pipeline(tmp_path / "data", "http://127.0.0.1:9")  # planning calls no API
    shared = make_urls("waiting", 10)
    pipeline.write_list(OLDER, shared)
    pipeline.write_list(NEWER, shared)
    pipeline.plan(OLDER)
    pipeline.plan(NEWER)
    refused = pipeline.plan(NEWER, raise_on_error=False)
    assert not refused.success
    text = " ".join(str(e.event_specific_data) for e in refused.all_events if e.is_failure)
    assert "10 URLs borrowed from plans still running" in text
    assert "replace_unfinished_plan" in text


def test_cursor_keeps_lenders_and_reads_cursors_without_them() -> None:
    state = Ledger()
    lender = PlanState(OLDER, "a", 1, 10, ["business_email"], "p/a.parquet", storage_id=1)
    borrower = PlanState(NEWER, "b", 0, 0, ["business_email"], "p/b.parquet", storage_id=2)
    borrower.lenders, borrower.borrowed = [lender.key], 5
    state.add_plan(lender)
    state.add_plan(borrower)  # no jobs of its own: completed at once, but waits for the lender
    state.forget_finished()
    restored = Ledger.from_cursor(state.to_cursor())
    assert restored.waits_for_lenders(restored.plans[borrower.key])
    assert restored.plans[borrower.key].borrowed == 5
    replacement = PlanState(NEWER, "c", 1, 10, ["business_email"], "p/c.parquet", storage_id=3)
    assert Ledger.from_cursor(state.to_cursor()).add_plan(replacement) == [
        restored.plans[borrower.key]
    ]  # a waiting plan is superseded like an open one: its run is never requested
    restored.apply(
        parse_event({"event": EventName.PLAN_COMPLETED, "date": OLDER, "plan_id": "a"}), 0.0
    )
    restored.forget_finished()
    assert restored.plans == {}
    old_cursor = state.to_cursor().replace('"lenders":["2026-11-10/a"],"borrowed":5,', "")
    assert Ledger.from_cursor(old_cursor).plans[borrower.key].lenders == []

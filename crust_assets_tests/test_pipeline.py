"""The pipeline through a real Dagster instance and real sensor ticks, against the emulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets.emulator.synth import synthetic_contacts
from crust_assets.lifecycle.events import EventName
from crust_assets.lifecycle.ledger import Ledger
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-20"
FIELDS = ["business_email", "personal_contact_info"]


@pytest.fixture
def emulator(tmp_path: Path):
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.2, processing_seconds=0.4, part_size=120
    ) as process:
        yield process


@pytest.fixture
def pipeline(tmp_path: Path, emulator: EmulatorProcess) -> Pipeline:
    return Pipeline(tmp_path / "data", emulator.base_url)


def expected_row(url: str, fields: list[str] = FIELDS) -> dict:
    record = synthetic_contacts(url, fields)
    data = record["data"]
    pci = data.get("personal_contact_info", {})
    return {
        "business_emails": data.get("business_email"),
        "personal_emails": pci.get("personal_emails"),
        "phone_numbers": pci.get("phone_numbers"),
        "crustdata_person_id": record["internal_id"],
    }


def submitted_url_counts(emulator: EmulatorProcess) -> Counter:
    return Counter(url for s in emulator.admin.submissions() for url in s["urls"])


def test_partition_end_to_end_matches_the_api_row_for_row(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    urls = make_urls("e2e", 650)
    messy = [u.replace("https://www.", "http://") + "/?utm_source=x" for u in urls[:20]]
    bad = ["https://www.linkedin.com/company/acme", "", "not a url", "javascript:alert(1)"]
    pipeline.write_list(DATE, urls + messy + bad)

    plan_run = pipeline.plan(DATE)
    plan = plan_run.asset_materializations_for_node("contact_enrichment_batch")[0].metadata
    assert plan["job_count"].value == 3
    assert plan["urls_to_submit"].value == 650
    url_list = pipeline.latest_materialization("contact_url_list", DATE).metadata
    assert url_list["duplicates"].value == 20
    assert url_list["rejected"].value == 4

    [run] = pipeline.drive(until_runs=1)
    assert run.success
    assert pipeline.check_results(run) == {
        "one_row_per_submitted_url": True,
        "unique_profile_url": True,
        "schema_as_contracted": True,
    }

    rows = {r["profile_url"]: r for r in pipeline.table(DATE)}
    assert set(rows) == set(urls)
    for url in urls:
        row = rows[url]
        assert {k: row[k] for k in expected_row(url)} == expected_row(url), url
        assert row["batch_id"] and row["enriched_at"] is not None
        assert row["matched"] == bool(
            row["business_emails"] or row["personal_emails"] or row["phone_numbers"]
        )

    # Each URL submitted exactly once; nothing invalid ever reached the API.
    counts = submitted_url_counts(emulator)
    assert set(counts) == set(urls) and set(counts.values()) == {1}

    # The UI shows every job's id and status on contact_enrichment_batch[date].
    events = pipeline.observations(DATE)
    completed = [e for e in events if e["event"] == EventName.JOB_COMPLETED]
    assert sorted(e["job_index"] for e in completed) == [0, 1, 2]
    assert {e["batch_id"] for e in completed} == {
        s["batch_id"] for s in emulator.admin.submissions()
    }

    meta = pipeline.latest_materialization("enriched_contacts", DATE).metadata
    assert meta["dagster/row_count"].value == 650
    assert meta["credits"].value == emulator.admin.billing()["credits_used"]
    assert 0 < meta["fill_rate_business_emails"].value < 1

    rejects = pq.read_table(pipeline.layout.warehouse_partition("rejected_urls", DATE))
    assert rejects.num_rows == 4
    assert None not in rejects.column("reason").to_pylist()


def test_large_partition_runs_in_rounds_of_at_most_five_jobs(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    urls = make_urls("big", 1_650)  # 6 jobs: 5 at once, then the sixth
    pipeline.write_list(DATE, urls)
    pipeline.plan(DATE)
    first = pipeline.tick()
    assert not first.run_requests
    assert len(Ledger.from_cursor(pipeline.cursor).slot_holders()) == 5
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    assert pipeline.max_slot_holders_seen <= 5
    assert len(pipeline.table(DATE)) == 1_650
    deferred = [e for e in pipeline.observations(DATE) if e["event"] == EventName.JOB_DEFERRED]
    assert deferred == []  # the sensor never hit the API's 5-job limit
    assert set(submitted_url_counts(emulator).values()) == {1}


def test_second_partition_waits_behind_the_first(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    emulator.admin.config(pending_seconds=0.5, processing_seconds=1.5)
    older, newer = "2026-11-10", "2026-11-11"
    pipeline.write_list(older, make_urls("older", 1_200))  # 4 jobs
    pipeline.plan(older)
    pipeline.tick()
    pipeline.write_list(newer, make_urls("newer", 900))  # 3 jobs, planned while older is in flight
    pipeline.plan(newer)
    pipeline.tick()
    state = Ledger.from_cursor(pipeline.cursor)
    assert len(state.slot_holders()) == 5
    runs = pipeline.drive(until_runs=2, timeout=120)
    assert all(r.success for r in runs)
    # Oldest partition first: every job of `older` was submitted before any job of `newer`.
    dates = [
        "older" if "/older-" in s["urls"][0] else "newer" for s in emulator.admin.submissions()
    ]
    assert dates == ["older"] * 4 + ["newer"] * 3
    assert len(pipeline.table(older)) == 1_200 and len(pipeline.table(newer)) == 900


def test_recently_enriched_urls_are_reused_not_bought_again(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    first, second = "2026-11-01", "2026-11-02"
    shared = make_urls("shared", 200)
    pipeline.write_list(first, shared)
    pipeline.plan(first)
    pipeline.drive(until_runs=1)
    fresh = make_urls("fresh", 100)
    pipeline.write_list(second, shared + fresh)
    meta = pipeline.plan(second).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert meta.metadata["urls_to_submit"].value == 100
    assert meta.metadata["urls_reused"].value == 200
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    rows = {r["profile_url"]: r for r in pipeline.table(second)}
    assert set(rows) == set(shared + fresh)
    first_rows = {r["profile_url"]: r for r in pipeline.table(first)}
    for url in shared:  # copied as delivered, with the job that delivered it
        assert rows[url] == first_rows[url]
    assert set(submitted_url_counts(emulator).values()) == {1}


def test_reenrichment_window_zero_buys_again(pipeline: Pipeline, emulator: EmulatorProcess) -> None:
    pipeline.write_list(DATE, make_urls("again", 50))
    pipeline.plan(DATE)
    pipeline.drive(until_runs=1)
    again = Pipeline(
        pipeline.data_dir,
        pipeline.base_url,
        instance=pipeline.instance,
        settings={"reenrich_window_days": 0},
    )
    meta = again.plan(DATE).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert meta.metadata["urls_to_submit"].value == 50


def test_budget_refusal_is_a_clear_failure(tmp_path: Path, emulator: EmulatorProcess) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"credit_budget": 1_000})
    pipeline.write_list(DATE, make_urls("budget", 400))  # worst case 400 * 5 = 2000 credits
    result = pipeline.plan(DATE, raise_on_error=False)
    assert not result.success
    text = " ".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert "2000 credits" in text and "1000" in text and "CRUST_CREDIT_BUDGET" in text
    pipeline.tick()
    assert emulator.admin.submissions() == []


def test_failed_job_is_resubmitted_after_cooldown(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    emulator.admin.set_faults(fail_next_jobs=1)
    urls = make_urls("retry", 120)
    pipeline.write_list(DATE, urls)
    pipeline.plan(DATE)
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    assert {r["profile_url"] for r in pipeline.table(DATE)} == set(urls)
    submissions = emulator.admin.submissions()
    assert [s["status"] for s in submissions] == ["failed", "completed"]
    assert submissions[0]["urls_sha256"] == submissions[1]["urls_sha256"]
    assert submissions[0]["credits_billed"] == 0
    events = [e["event"] for e in pipeline.observations(DATE)]
    assert events.count(EventName.JOB_FAILED) == 1 and events.count(EventName.JOB_SUBMITTED) == 2


def test_job_failing_every_attempt_fails_the_partition_with_the_api_message(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"max_job_attempts": 2})
    emulator.admin.set_faults(job_failure_rate=1.0)
    pipeline.write_list(DATE, make_urls("doomed", 10))
    pipeline.plan(DATE)
    [run] = pipeline.drive(until_runs=1)
    checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
    one_row = checks["one_row_per_submitted_url"]
    assert not one_row.passed
    assert "1 jobs were not delivered" in one_row.description
    assert "failed 2 times" in one_row.description
    assert len(emulator.admin.submissions()) == 2  # bounded: no third attempt


def test_a_tick_that_dies_after_submitting_is_replayed_not_resubmitted(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    pipeline.write_list(DATE, make_urls("crash", 900))
    pipeline.plan(DATE)
    pipeline.tick(keep_cursor=False)  # submitted 3 jobs, but its cursor was never saved
    assert len(emulator.admin.submissions()) == 3
    # Restarts from the old cursor and replays the event log. On a slow machine the jobs may
    # already be done, and this tick requests the run: launch it rather than drop it.
    runs = pipeline.run_requests(pipeline.tick())
    assert len(emulator.admin.submissions()) == 3
    [run] = runs or pipeline.drive(until_runs=1)
    assert run.success and len(pipeline.table(DATE)) == 900
    assert set(submitted_url_counts(emulator).values()) == {1}


def test_missing_input_file_names_the_expected_path(pipeline: Pipeline) -> None:
    result = pipeline.plan("2026-11-03", raise_on_error=False)
    assert not result.success
    text = " ".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)
    assert str(pipeline.layout.input_file("2026-11-03")) in text


def test_empty_list_is_a_valid_empty_partition(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    pipeline.write_list(DATE, [])
    pipeline.plan(DATE)
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    assert pipeline.table(DATE) == []
    schema = pq.read_schema(pipeline.layout.warehouse_partition("enriched_contacts", DATE))
    assert schema.remove_metadata().equals(ENRICHED_CONTACTS_SCHEMA.remove_metadata())
    assert emulator.admin.submissions() == []


def test_partition_with_no_hits_keeps_the_contract_schema(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    # Phone numbers only, for profiles the emulator finds nothing for: every list is empty.
    pipeline = Pipeline(
        tmp_path / "data",
        emulator.base_url,
        settings={"fields": "personal_contact_info.phone_numbers"},
    )
    from crust_assets.emulator.synth import synthetic_profile

    nobody = [u for u in make_urls("nobody", 400) if synthetic_profile(u).is_empty][:20]
    assert len(nobody) == 20
    pipeline.write_list(DATE, nobody)
    pipeline.plan(DATE)
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    schema = pq.read_schema(pipeline.layout.warehouse_partition("enriched_contacts", DATE))
    assert (
        schema.field("phone_numbers").type == ENRICHED_CONTACTS_SCHEMA.field("phone_numbers").type
    )
    rows = pipeline.table(DATE)
    assert {r["phone_numbers"] == [] for r in rows} == {True}
    assert {r["business_emails"] is None for r in rows} == {True}  # not requested


def automation_requests(pipeline: Pipeline, cursor=None):
    result = dg.evaluate_automation_conditions(
        defs=pipeline.defs, instance=pipeline.instance, cursor=cursor
    )
    requested = {r.key.to_user_string(): r.true_subset.size for r in result.results}
    return requested, result.cursor


def test_coverage_and_latest_follow_enriched_contacts(pipeline: Pipeline) -> None:
    requested, cursor = automation_requests(pipeline)
    assert requested == {
        "contact_coverage": 0,
        "contacts_latest": 0,
        "contacts_duckdb": 0,
        "enriched_list": 0,
    }
    for date, prefix in (("2026-11-04", "cov-a"), ("2026-11-05", "cov-b")):
        pipeline.write_list(date, make_urls(prefix, 30) + make_urls("cov-both", 5))
        pipeline.plan(date)
        pipeline.drive(until_runs=1)
    requested, cursor = automation_requests(pipeline, cursor)
    # the views are requested with their inputs: they run after them in the same launch
    assert requested == {
        "contact_coverage": 2,
        "contacts_latest": 1,
        "contacts_duckdb": 1,
        "enriched_list": 2,
    }

    for date in ("2026-11-04", "2026-11-05"):
        pipeline.materialize("contact_coverage", partition=date)
    pipeline.materialize("contacts_latest")
    requested, cursor = automation_requests(pipeline, cursor)
    assert requested["contact_coverage"] == 0 and requested["contacts_latest"] == 0  # once
    result = pipeline.materialize("contacts_duckdb")
    import duckdb

    database = pipeline.layout.root / "warehouse" / "contacts.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        per_day = connection.execute(
            "SELECT date::VARCHAR, count(*) FROM enriched_contacts GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert per_day == [("2026-11-04", 35), ("2026-11-05", 35)]
        assert connection.execute("SELECT count(*) FROM contacts_latest").fetchone() == (65,)
        assert connection.execute("SELECT count(*) FROM contact_coverage").fetchone() == (2,)
    assert result.success
    trend = pipeline.latest_materialization("contact_coverage", "2026-11-05").metadata
    assert "2026-11-04" in trend["fill_rates_over_time"].value
    assert "█" in trend["fill_rates_over_time"].value

    coverage = pq.read_table(
        pipeline.layout.warehouse_partition("contact_coverage", "2026-11-04")
    ).to_pylist()
    assert coverage[0]["requested"] == 35
    latest = pq.read_table(pipeline.layout.warehouse_dataset("contacts_latest")).to_pylist()
    assert len(latest) == 65  # 30 + 30 + 5 shared, each profile once
    assert len({r["profile_url"] for r in latest}) == 65
    shared = [r for r in latest if "/cov-both-" in r["profile_url"]]
    first_day = {r["profile_url"]: r for r in pipeline.table("2026-11-04")}
    assert len(shared) == 5
    for row in shared:  # reused on the 5th: same delivery, newest partition wins the tie
        assert row["date"] == "2026-11-05"
        assert row["batch_id"] == first_day[row["profile_url"]]["batch_id"]


def test_a_person_erased_while_their_job_runs_is_not_written_back(
    pipeline: Pipeline, emulator: EmulatorProcess
) -> None:
    from crust_assets.erasure import forget

    urls = make_urls("erase", 30)
    pipeline.write_list(DATE, urls)
    pipeline.plan(DATE)
    pipeline.tick()  # submitted; the person asks to be forgotten before the results are loaded
    forget(pipeline.layout, [urls[3].replace("https://www.", "http://").upper()])
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    assert pipeline.check_results(run)["one_row_per_submitted_url"] is True
    rows = {r["profile_url"] for r in pipeline.table(DATE)}
    assert rows == set(urls) - {urls[3]}
    meta = pipeline.latest_materialization("enriched_contacts", DATE).metadata
    assert meta["rows_dropped_erased"].value == 1

"""Borrowing and reuse at their edges: field subsets, erasure, chains of lenders, queued lenders.

Same harness as test_borrowing.py: real emulator over HTTP, real Dagster instance, real sensor
ticks and real runs. The two field tests failed before rows from another plan (reused or
borrowed) were limited to, and required to cover, the fields the plan asks for.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets.lifecycle.events import EventName
from crust_assets_tests.pipeline_harness import Pipeline, make_urls
from crust_assets_tests.test_borrowing import plan_metadata, plan_settled, submitted
from crust_assets_tests.test_pipeline import expected_row

OLDER, NEWER, NEWEST = "2026-11-10", "2026-11-11", "2026-11-12"


@pytest.fixture
def emulator(tmp_path: Path):
    # Slow enough that partitions are planned and submitted before any job is done.
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.5, processing_seconds=1.5, part_size=120
    ) as process:
        yield process


# ---- field subsets ----------------------------------------------------------------------------
def test_borrowed_rows_carry_only_the_fields_the_borrower_requested(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """A borrower asking for fewer fields than its lender must not get the lender's extra fields.

    Contract (design.md, the enriched_contacts table): a list column is null when its field
    was not requested. A partition planned with CRUST_FIELDS=business_email gets, for its
    borrowed URLs, the personal emails and phone numbers its lender (all fields) bought: the
    loader downloads the lender's job results and keeps every column (BorrowedRows uses the
    lender's requested columns). The same URL bought by the borrower itself would have null
    there, so the partition would mix both meanings, and its coverage/credits count fields it
    never asked for (a deployment restricted to business emails would store personal contacts).
    """
    data = tmp_path / "data"
    everything = Pipeline(data, emulator.base_url)  # default fields: all three columns
    emails_only = Pipeline(
        data, emulator.base_url, instance=everything.instance, settings={"fields": "business_email"}
    )
    shared, own = make_urls("fields-shared", 40), make_urls("fields-own", 10)
    everything.write_list(OLDER, shared)
    emails_only.write_list(NEWER, shared + own)
    everything.plan(OLDER)
    borrower = plan_metadata(emails_only.plan(NEWER))
    assert borrower["urls_borrowed"] == 40 and borrower["urls_to_submit"] == 10

    runs = everything.drive_partitions({OLDER, NEWER})
    assert all(run.success for run in runs.values())
    assert set(submitted(emulator).values()) == {1}
    rows = {r["profile_url"]: r for r in emails_only.table(NEWER)}
    assert set(rows) == set(shared + own)
    # The borrower's own rows follow the contract: personal fields not requested -> null.
    assert all(rows[u]["personal_emails"] is None for u in own)
    assert all(rows[u]["phone_numbers"] is None for u in own)
    # The emulator does have personal data for some shared people (the lender's rows show it).
    lender_rows = {r["profile_url"]: r for r in everything.table(OLDER)}
    assert any(lender_rows[u]["personal_emails"] or lender_rows[u]["phone_numbers"] for u in shared)
    # The borrowed rows must look like rows the borrower bought itself.
    for url in shared:
        assert rows[url]["business_emails"] == expected_row(url)["business_emails"]
        assert rows[url]["personal_emails"] is None, f"{url}: personal emails not requested"
        assert rows[url]["phone_numbers"] is None, f"{url}: phone numbers not requested"


# ---- erasure, chains, queued lenders ------------------------------------------------------------
def test_an_erased_borrowed_person_the_lender_never_delivered_is_not_counted_missing(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """Edge case (passes): the check's arithmetic when a borrowed URL is both erased and never
    delivered by its lender (job given up): it is neither a missing row nor an expected one,
    while the other undelivered borrowed URLs still fail the check."""
    from crust_assets.erasure import forget

    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"max_job_attempts": 1})
    shared = make_urls("erased-undelivered", 20)
    own = make_urls("erased-undelivered-own", 5)
    pipeline.write_list(OLDER, shared)
    pipeline.write_list(NEWER, shared + own)
    pipeline.plan(OLDER)
    assert plan_metadata(pipeline.plan(NEWER))["urls_borrowed"] == 20
    emulator.admin.set_faults(fail_next_jobs=1)  # the lender's only job (submitted first) fails
    pipeline.tick()
    forget(pipeline.layout, [shared[3]])
    runs = pipeline.drive_partitions({OLDER, NEWER})
    check = {e.check_name: e for e in runs[NEWER].get_asset_check_evaluations()}
    one_row = check["one_row_per_submitted_url"]
    assert not one_row.passed
    assert "19 borrowed URLs were not delivered" in one_row.description
    meta = {k: v.value for k, v in one_row.metadata.items()}
    assert meta["expected_rows"] == 5 + 20 - 1 and meta["rows"] == 5
    assert {r["profile_url"] for r in pipeline.table(NEWER)} == set(own)


def test_a_chain_of_lenders_buys_each_person_once_and_fills_every_day(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """Edge case (passes): A <- B <- C. B borrows from A and buys its own URLs; C borrows some
    URLs from A (A's own) and some from B (B's own), never what B itself borrowed. B's own job
    finishes before A's (A's first attempt fails), so B waits for A while C only waits for
    what it borrowed; every day gets every row and each person is bought once."""
    pipeline = Pipeline(
        tmp_path / "data", emulator.base_url, settings={"retry_cooldown_seconds": 2}
    )
    a_only, ab, b_only, abc, bc = (
        make_urls("chain-a", 10),
        make_urls("chain-ab", 10),
        make_urls("chain-b", 10),
        make_urls("chain-abc", 10),
        make_urls("chain-bc", 10),
    )
    pipeline.write_list(OLDER, a_only + ab + abc)
    pipeline.write_list(NEWER, ab + b_only + abc + bc)
    pipeline.write_list(NEWEST, abc + bc + make_urls("chain-c", 5))
    emulator.admin.set_faults(fail_next_jobs=1)
    a = plan_metadata(pipeline.plan(OLDER))
    b = plan_metadata(pipeline.plan(NEWER))
    c = plan_metadata(pipeline.plan(NEWEST))
    assert b["urls_borrowed"] == 20 and b["lender_plans"] == [f"{OLDER}/{a['plan_id']}"]
    assert c["urls_borrowed"] == 20 and c["urls_to_submit"] == 5
    assert c["lender_plans"] == sorted([f"{OLDER}/{a['plan_id']}", f"{NEWER}/{b['plan_id']}"])
    runs = pipeline.drive_partitions({OLDER, NEWER, NEWEST})
    assert all(run.success for run in runs.values())
    for run in runs.values():
        assert set(pipeline.check_results(run).values()) == {True}
    assert set(submitted(emulator, "completed").values()) == {1}
    assert {r["profile_url"] for r in pipeline.table(NEWEST)} == set(
        abc + bc + make_urls("chain-c", 5)
    )
    assert {r["profile_url"] for r in pipeline.table(NEWER)} == set(ab + b_only + abc + bc)


def test_a_borrower_of_an_older_day_waits_for_a_lender_whose_job_is_still_queued(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """Edge case (passes): the lender is a *later* day planned first, so the borrower (an
    earlier day) gets the slots first ("oldest partition first"). The lender's job holding the
    shared URLs is still queued (5 slots) when the borrower's own job is done: the borrower
    waits, is loaded only after the lender settles, and nobody is bought twice."""
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    lender_own = make_urls("queued-lender", 1200)  # jobs 1-4 (300 each)
    shared = make_urls("queued-shared", 50)  # job 5 of the lender
    borrower_own = make_urls("queued-borrower", 10)
    pipeline.write_list(NEWER, lender_own + shared)
    pipeline.write_list(OLDER, borrower_own + shared)
    lender = plan_metadata(pipeline.plan(NEWER))
    borrower = plan_metadata(pipeline.plan(OLDER))
    assert lender["job_count"] == 5 and borrower["urls_borrowed"] == 50
    assert borrower["lender_plans"] == [f"{NEWER}/{lender['plan_id']}"]
    first = pipeline.tick()
    assert not first.run_requests
    queued = {s["urls"][0] for s in emulator.admin.submissions()}
    assert borrower_own[0] in queued and shared[0] not in queued  # the shared job is queued
    waits: list[bool] = []

    def check(result: dg.SensorResult) -> None:
        if not plan_settled(pipeline, NEWER):  # the lender
            assert OLDER not in {r.partition_key for r in result.run_requests or []}
            own_done = EventName.PLAN_COMPLETED in {
                e["event"] for e in pipeline.observations(OLDER)
            }
            waits.append(own_done)

    runs = pipeline.drive_partitions({OLDER, NEWER}, on_tick=check)
    assert any(waits), "the borrower's own job never finished while the lender still ran"
    assert all(run.success for run in runs.values())
    assert set(pipeline.check_results(runs[OLDER]).values()) == {True}
    assert {r["profile_url"] for r in pipeline.table(OLDER)} == set(borrower_own + shared)
    assert set(submitted(emulator).values()) == {1}


# ---- reuse and fields ---------------------------------------------------------------------------
def test_rows_bought_without_a_wanted_field_are_bought_again_not_reused(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """Borrowing checks that the lender asked for every field the borrower wants; reuse must
    too. Once an emails-only partition is loaded, a later all-fields partition must not reuse
    its rows: the personal emails and phones it asks for would never be bought."""
    data = tmp_path / "data"
    emails_only = Pipeline(data, emulator.base_url, settings={"fields": "business_email"})
    everything = Pipeline(data, emulator.base_url, instance=emails_only.instance)
    shared = make_urls("reuse-fields", 10)
    emails_only.write_list(OLDER, shared)
    everything.write_list(NEWER, shared)
    emails_only.plan(OLDER)
    emails_only.drive_partitions({OLDER})
    plan = plan_metadata(everything.plan(NEWER))
    assert plan["urls_reused"] == 0, "rows without the requested personal fields were reused"


def test_reused_rows_carry_only_the_fields_the_new_plan_asks_for(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """An emails-only partition reusing rows bought with every field gets them as if it had
    bought them itself: personal columns null (not requested), `matched` from what is left."""
    data = tmp_path / "data"
    everything = Pipeline(data, emulator.base_url)
    emails_only = Pipeline(
        data, emulator.base_url, instance=everything.instance, settings={"fields": "business_email"}
    )
    shared = make_urls("reuse-more", 30)
    everything.write_list(OLDER, shared)
    emails_only.write_list(NEWER, shared)
    everything.plan(OLDER)
    everything.drive_partitions({OLDER})
    plan = plan_metadata(emails_only.plan(NEWER))
    assert plan["urls_reused"] == 30 and plan["urls_to_submit"] == 0
    emails_only.drive_partitions({NEWER})
    full = {r["profile_url"]: r for r in everything.table(OLDER)}
    rows = {r["profile_url"]: r for r in emails_only.table(NEWER)}
    assert set(rows) == set(shared)
    assert any(full[u]["personal_emails"] or full[u]["phone_numbers"] for u in shared)
    for url in shared:
        assert rows[url]["business_emails"] == full[url]["business_emails"]
        assert rows[url]["personal_emails"] is None and rows[url]["phone_numbers"] is None
        assert rows[url]["matched"] == bool(full[url]["business_emails"])
        assert rows[url]["primary_business_email"] == full[url]["primary_business_email"]
    assert any(full[u]["matched"] and not rows[u]["matched"] for u in shared)

"""load_partition's report: the figures the asset shows, returned after the file is written.

A real data root in tmp_path, plans written by `write_plan`, a real erasure log (`forget`), a
real client against the emulator where a job's results are downloaded, and the real
`BorrowedRows` on an ephemeral instance (these plans borrow nothing, so it reads no events).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.crustdata import CrustdataClient
from crust_assets.defs.borrowing import BorrowedRows
from crust_assets.emulator import EmulatorProcess
from crust_assets.erasure import forget
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.loading import LoadReport, load_partition
from crust_assets.planning import Plan, make_plan, write_plan
from crust_assets.storage import DataLayout
from crust_assets_tests.test_planning import (
    NOW,
    load_partition_file,
    loaded_row,
    request,
    url,
    urls,
)

DATE = "2026-03-10"
NOWHERE = "http://127.0.0.1:9"  # a client that is never asked anything: no job was sent


def planned(layout: DataLayout, *people: int) -> tuple[Plan, PlanState]:
    """A plan of DATE written to disk, and the plan as its event would record it."""
    plan = make_plan(layout, urls(*people), set(), [], request(date=DATE))
    files = layout.plan_files(DATE, "run-1")
    plan = write_plan(layout, files, plan)
    recorded = PlanState(
        date=DATE,
        plan_id="run-1",
        job_count=plan.job_count,
        url_count=plan.to_submit.num_rows,
        fields=list(plan.request.fields),
        plan_path=str(files.submit.relative_to(layout.root)),
        storage_id=1,
        lenders=plan.lender_keys,
        borrowed=plan.borrowed.num_rows,
    )
    return plan, recorded


def load(
    layout: DataLayout,
    plan: PlanState,
    completed: dict[int, dict[str, object]],
    abandoned: dict[int, str],
    api: tuple[str, str] = ("key", NOWHERE),
) -> LoadReport:
    with dg.DagsterInstance.ephemeral() as instance, CrustdataClient(*api) as client:
        borrowed = BorrowedRows(instance, layout, plan)
        return load_partition(layout, plan, completed, abandoned, borrowed, client)


def test_reused_rows_are_written_and_a_given_up_job_is_reported_not_delivered(
    tmp_path: Path,
) -> None:
    layout = DataLayout(tmp_path)
    recent = NOW - timedelta(days=1)
    load_partition_file(
        layout, "2026-03-01", [loaded_row(n, recent, phones=["+1555000"]) for n in (1, 2, 3)]
    )
    plan, recorded = planned(layout, 1, 2, 3, 4, 5)
    assert (plan.reused.num_rows, plan.to_submit.num_rows) == (3, 2)

    report = load(layout, recorded, completed={}, abandoned={0: "no answer in 3 lookups"})
    assert report.table.column("profile_url").to_pylist() == [url(1), url(2), url(3)]
    assert pq.read_table(report.file).num_rows == report.rows == 3
    assert (report.rows_reused, report.rows_from_jobs, report.rows_borrowed) == (3, 0, 0)
    assert report.expected == 5  # the two planned URLs of the given-up job are still owed
    assert (report.jobs_delivered, report.jobs_not_delivered) == (0, 1)
    assert report.failure_reasons == ["no answer in 3 lookups"]
    assert report.missing == [] and report.batch_ids == []
    assert (report.fill.rows, report.fill.matched) == (3, 3)
    assert report.schema.names == report.table.schema.names


def test_a_job_whose_people_were_all_erased_before_it_was_sent_is_not_missing(
    tmp_path: Path,
) -> None:
    layout = DataLayout(tmp_path)
    recent = NOW - timedelta(days=1)
    load_partition_file(layout, "2026-03-01", [loaded_row(1, recent, phones=[])])
    _, recorded = planned(layout, 1, 2, 3)
    forget(layout, [url(1), url(2), url(3)], now=NOW)  # also scrubs the plan's reused rows

    # The sensor records the job done without a batch id: nobody was left to send.
    report = load(layout, recorded, completed={0: {"job_index": 0}}, abandoned={})
    assert report.rows == 0 and report.table.num_rows == 0
    assert report.rows_reused == 0
    assert report.erased_not_delivered == 2 and report.missing == []
    assert report.expected == 0 and report.jobs_not_delivered == 0


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    return emulator_factory(part_size=5)


def test_a_delivered_job_is_counted_and_a_person_erased_since_is_dropped(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    layout = DataLayout(tmp_path / "data")
    plan, recorded = planned(layout, *range(12))
    job_urls = plan.to_submit.column("profile_url").to_pylist()
    with CrustdataClient(emulator.api_key, emulator.base_url, timeout=5.0) as client:
        batch_id = client.submit(job_urls, list(plan.request.fields)).batch_id
        assert client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=20).is_terminal
    forget(layout, [url(0)], now=NOW, new_root=True)  # after the job delivered them

    completed = {0: {"job_index": 0, "batch_id": batch_id}}
    report = load(layout, recorded, completed, {}, (emulator.api_key, emulator.base_url))
    written = sorted(report.table.column("profile_url").to_pylist())
    assert written == sorted(url(n) for n in range(1, 12))
    assert (report.rows, report.rows_from_jobs, report.erased_dropped) == (11, 12, 1)
    assert report.expected == 11 and report.missing == []
    assert report.batch_ids == [batch_id] and report.jobs_delivered == 1
    assert report.duplicates == 0 and report.unexpected == 0

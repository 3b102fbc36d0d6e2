"""What was spent, at a glance: contact_coverage's credits, match rate and the month's figures.

A real instance and real materialisations: the day's rows are a real Parquet partition, the plans
are materialisations of contact_enrichment_batch and their jobs' events are observations, as the
planner and the sensor record them, and contact_coverage is materialised as Dagster runs it.
The numbers are those the asset's metadata plots show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from crust_assets.defs.assets import contact_coverage
from crust_assets.defs.job_events import record_event
from crust_assets.defs.resources import DataRoot, EnrichmentSettings
from crust_assets.defs.spend import month_to_date
from crust_assets.defs.table_metadata import TABLE_IO_MANAGER_KEY
from crust_assets.lifecycle.events import JobCompleted, PlanCompleted, PlanSuperseded
from crust_assets.lifecycle.ledger import job_count_for
from crust_assets.monthly_budget import MonthToDate, month_start
from crust_assets.storage import DataLayout, write_table_atomic
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA, worst_case_credits
from crust_assets.tables_io import ContactTablesIOManager

NOW = datetime.now(timezone.utc)
DAY = NOW.date().isoformat()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _resources(root: Path, budget: int | None = None) -> dict[str, object]:
    return {
        "data_root": DataRoot(data_dir=str(root)),
        "enrichment": EnrichmentSettings(monthly_credit_budget=budget),
        TABLE_IO_MANAGER_KEY: ContactTablesIOManager(data_dir=str(root)),
    }


def _row(batch: str, url: str, *, business: int, phones: int, at: datetime) -> dict:
    return {
        "profile_url": url,
        "business_emails": [{"email": f"{i}@x.test", "status": "ok"} for i in range(business)],
        "personal_emails": [],
        "phone_numbers": [f"+4930000{i}" for i in range(phones)],
        "batch_id": batch,
        "enriched_at": at,
        "matched": bool(business or phones),
    }


def _write_day(layout: DataLayout, date: str, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows, schema=ENRICHED_CONTACTS_SCHEMA)
    write_table_atomic(Path(layout.warehouse_partition("enriched_contacts", date)), table)


def _plan(instance: dg.DagsterInstance, date: str, plan_id: str, urls: int, fields: str) -> None:
    """A plan as contact_enrichment_batch records it (the metadata the sensor reads back)."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="contact_enrichment_batch",
            partition=date,
            metadata={
                "plan_id": plan_id,
                "job_count": job_count_for(urls),
                "urls_to_submit": urls,
                "fields": fields,
                "plan_file": f"staging/{plan_id}.parquet",
                "credits_estimate_worst_case": worst_case_credits(urls, fields.split(",")),
            },
        )
    )


def test_coverage_shows_credits_match_rate_and_the_month_against_its_budget(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    layout = DataLayout.from_location(tmp_path / "data")
    last_month = month_start(NOW) - timedelta(days=2)
    _write_day(
        layout,
        DAY,
        [
            _row("job-a", "https://www.linkedin.com/in/a", business=1, phones=1, at=NOW),  # 3
            _row("job-a", "https://www.linkedin.com/in/b", business=0, phones=0, at=NOW),  # 0
            _row("job-old", "https://www.linkedin.com/in/c", business=1, phones=0, at=last_month),
        ],
    )
    # Completed and loaded: 4 profiles found, asked for every field (5 credits each): at most 20.
    _plan(instance, DAY, "p-done", 4, "business_email,personal_contact_info")
    done = {"date": DAY, "plan_id": "p-done"}
    record_event(
        instance, JobCompleted(**done, job_index=0, batch_id="job-a", entities_fulfilled=4)
    )
    record_event(instance, PlanCompleted(**done))
    # Superseded after one job of two delivered 2 profiles (business emails, 1 credit each):
    # it counts those 2, and its second job will never be sent.
    old = {"date": "2026-01-05", "plan_id": "p-old"}
    _plan(instance, "2026-01-05", "p-old", 400, "business_email")
    record_event(instance, JobCompleted(**old, job_index=0, batch_id="job-o", entities_fulfilled=2))
    record_event(instance, PlanSuperseded(**old))
    # Still running, nothing delivered yet: its worst case, 40 URLs at 1 credit.
    _plan(instance, "2026-01-05", "p-running", 40, "business_email")

    result = dg.materialize(
        [contact_coverage],
        partition_key=DAY,
        instance=instance,
        resources=_resources(tmp_path / "data", budget=100),
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("contact_coverage")
    meta = {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}
    assert meta["credits"] == 4  # the day's delivered values, last month's row included
    assert meta["match_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert meta["credits_month_to_date"] == 20 + 2
    assert meta["credits_month_pending"] == 40
    assert meta["monthly_credit_budget"] == 100
    assert meta["monthly_budget_used"] == pytest.approx(0.62)


def test_erasing_rows_or_a_reload_does_not_lower_what_the_month_bought(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    layout = DataLayout.from_location(tmp_path / "data")
    _plan(instance, DAY, "p-1", 10, "business_email")
    done = {"date": DAY, "plan_id": "p-1"}
    record_event(
        instance, JobCompleted(**done, job_index=0, batch_id="job-1", entities_fulfilled=9)
    )
    record_event(instance, PlanCompleted(**done))
    _write_day(
        layout, DAY, [_row("job-1", "https://www.linkedin.com/in/x", business=1, phones=0, at=NOW)]
    )
    before = month_to_date(instance, NOW)
    _write_day(layout, DAY, [])  # the day's rows erased (forget) or replaced by a re-plan's load
    assert month_to_date(instance, NOW) == before == MonthToDate(before.month, 9, 0)


def test_without_a_budget_the_month_is_shown_and_no_budget_is_named(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    layout = DataLayout.from_location(tmp_path / "data")
    month = month_to_date(instance, NOW)
    assert (month.delivered, month.pending) == (0, 0)  # no plans, no jobs
    _plan(instance, DAY, "p-z", 1, "business_email")
    done = {"date": DAY, "plan_id": "p-z"}
    record_event(
        instance, JobCompleted(**done, job_index=0, batch_id="job-z", entities_fulfilled=1)
    )
    _write_day(
        layout, DAY, [_row("job-z", "https://www.linkedin.com/in/z", business=2, phones=0, at=NOW)]
    )
    result = dg.materialize(
        [contact_coverage],
        partition_key=DAY,
        instance=instance,
        resources=_resources(tmp_path / "data"),
    )
    [materialization] = result.asset_materializations_for_node("contact_coverage")
    assert materialization.metadata["credits_month_to_date"].value == 1
    assert "monthly_credit_budget" not in materialization.metadata

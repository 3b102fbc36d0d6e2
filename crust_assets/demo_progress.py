"""Watching a partition go through the pipeline, from Dagster's own event log; the end summary.

Used by `make demo` and by the end-to-end test: both read the same instance the daemon writes,
so what they report is what the UI shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from crust_assets.defs.job_events import find_plan, fold_plans
from crust_assets.lifecycle.ledger import JobState, PlanState
from crust_assets.storage import DataLayout
from crust_assets.table import COLUMN_CREDITS, ENRICHED_CONTACTS_SCHEMA, FillStats

ENRICHED = dg.AssetKey("enriched_contacts")
COVERAGE = dg.AssetKey("contact_coverage")
LATEST = dg.AssetKey("contacts_latest")


class PartitionFailed(RuntimeError):
    """A run of the partition failed: the message says which and where to look."""


def job_progress(instance: dg.DagsterInstance, plan: PlanState) -> tuple[int, int, int]:
    """(queued, active, done) for a plan, from the sensor's job events."""
    folded = fold_plans(instance, [plan]).plans[plan.key]
    sent = (JobState.SUBMITTING, JobState.ACTIVE)
    active = sum(1 for job in folded.jobs.values() if job.state in sent)
    return plan.job_count - folded.done - active, active, folded.done


def _materialized_after(
    instance: dg.DagsterInstance, key: dg.AssetKey, after: int, partition: str | None
) -> int | None:
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key,
            asset_partitions=[partition] if partition else None,
            after_storage_id=after,
        ),
        limit=1,
    )
    return result.records[0].storage_id if result.records else None


def _failed_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun | None:
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags=tags, statuses=[dg.DagsterRunStatus.FAILURE]), limit=1
    )
    return runs[0] if runs else None


def wait_for_partition(
    date: str,
    *,
    plan_run_id: str,
    timeout: float,
    echo: Callable[[str], None] = print,
    instance: dg.DagsterInstance | None = None,
) -> None:
    """Block until enriched_contacts[date], contact_coverage[date] and contacts_latest are done."""
    instance = instance or dg.DagsterInstance.get()
    deadline = time.monotonic() + timeout
    last = ""
    plan: PlanState | None = None
    enriched_id: int | None = None
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(plan_run_id)
        if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
            raise PartitionFailed(f"run {plan_run_id} (plan_contact_enrichment) failed")
        if plan is None:
            plan = find_plan(instance, date, plan_run_id)
        if plan is not None:
            if _failed_run(instance, {"crust/plan_id": plan.plan_id}):
                raise PartitionFailed(f"the enriched_contacts[{date}] run failed")
            queued, active, done = job_progress(instance, plan)
            line = f"jobs: queued {queued}, active {active}, done {done} of {plan.job_count}"
            if enriched_id is None:
                enriched_id = _materialized_after(instance, ENRICHED, plan.storage_id, date)
            if enriched_id is not None:
                coverage = _materialized_after(instance, COVERAGE, enriched_id, date)
                latest = _materialized_after(instance, LATEST, enriched_id, None)
                line += f"; enriched_contacts[{date}] written"
                line += "; contact_coverage " + ("done" if coverage else "pending")
                line += "; contacts_latest " + ("done" if latest else "pending")
                if coverage and latest:
                    echo(line)
                    return
            if line != last:
                echo(line)
                last = line
        time.sleep(1.0)
    raise TimeoutError(f"partition {date} not finished after {timeout:.0f} s")


def summarise(data_dir: Path, date: str) -> str:
    """The end-of-demo report: where the table is and what is in it."""
    layout = DataLayout(data_dir)
    table_path = layout.warehouse_partition("enriched_contacts", date)
    table = pq.read_table(table_path, schema=ENRICHED_CONTACTS_SCHEMA)
    stats = FillStats()
    stats.add(table)
    rejects_path = layout.warehouse_partition("rejected_urls", date)
    rejects = pq.read_table(rejects_path)
    reasons = rejects.group_by("reason").aggregate([("reason", "count")]).to_pylist()
    rates = stats.fill_rates()
    lines = [
        "",
        f"enriched_contacts[{date}]: {table_path}",
        f"  rows {stats.rows}, matched {stats.matched} ({stats.matched / max(stats.rows, 1):.0%})",
        "  fill rates: "
        + ", ".join(f"{name} {rate:.0%}" for name, rate in rates.items() if rate is not None),
        f"  credits for delivered values: {stats.credits(COLUMN_CREDITS)}",
        f"rejected URLs: {rejects.num_rows} ({rejects_path})",
    ]
    lines += [f"  {r['reason']}: {r['reason_count']}" for r in reasons]
    per_line = layout.warehouse_partition("enriched_list", date)
    lines += [
        f"enriched_list[{date}] (one row per input line, your columns, for the CRM): {per_line}",
        f"  and {per_line.parent / f'{date}.enriched.csv'}"
        + ("" if Path(per_line).exists() else " (written by contact_automation_sensor shortly)"),
        f"contacts_latest: {layout.warehouse_dataset('contacts_latest') / 'data.parquet'}",
        "",
        "Query it (DuckDB, from the repo root):",
        '  .venv/bin/python -c "import duckdb; duckdb.sql(\\"SELECT date, count(*), '
        "avg(matched::INT) FROM read_parquet('data/warehouse/enriched_contacts/*/*.parquet', "
        'hive_partitioning = true) GROUP BY date\\").show()"',
    ]
    return "\n".join(lines)

"""Measurement 4: the submitter sensor's tick with 200 partitions queued.

The tick (`SubmitterTick`, the real class the sensor runs) is driven directly, on a real SQLite
Dagster instance in a temp dir (what `dagster dev` uses) and the emulator over HTTP. The 200
plans are put in the event log as the materialisations `contact_enrichment_batch` writes (same
metadata, real plan files with one row group per job), so setting up does not take 200 runs.

Three kinds of tick are timed: the first (it discovers 200 plans and fills 5 slots), refill
ticks (every active job has finished: 5 polls and 5 submits), and steady ticks (5 long jobs
running: 5 polls). HTTP calls are the tick's own count, checked against the budget "one per
active job plus one per submission".
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from crust_assets.crustdata import CrustdataClient
from crust_assets.crustdata.models import MAX_URLS_PER_JOB
from crust_assets.defs.job_events import BATCH_ASSET_KEY
from crust_assets.defs.resources import DataRoot, EnrichmentSettings
from crust_assets.defs.sensors import SubmitterTick
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.lifecycle.ledger import MAX_ACTIVE_JOBS, Ledger, job_count_for
from crust_assets.planning import PLAN_SCHEMA
from crust_assets.storage import DataLayout, write_table_atomic

FIELDS = "business_email,personal_contact_info"
FIRST_DATE = date(2026, 2, 1)


def add_plan(
    instance: dg.DagsterInstance, layout: DataLayout, day: str, urls: list[str], *, fields: str
) -> str:
    """Write a plan file and record the plan as `contact_enrichment_batch` would."""
    plan_id = str(uuid.uuid4())
    plan_file = layout.staging_partition("contact_enrichment_batch", day, f"{plan_id}.parquet")
    table = pa.table(
        {
            "job_index": pa.array(
                [i // MAX_URLS_PER_JOB for i in range(len(urls))], type=pa.int32()
            ),
            "profile_url": pa.array(urls, pa.string()),
        },
        schema=PLAN_SCHEMA,
    )
    write_table_atomic(plan_file, table, row_group_size=MAX_URLS_PER_JOB)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=BATCH_ASSET_KEY,
            partition=day,
            metadata={
                "dagster/row_count": len(urls),
                "plan_id": plan_id,
                "job_count": job_count_for(len(urls)),
                "urls_to_submit": len(urls),
                "urls_reused": 0,
                "fields": fields,
                "plan_file": str(plan_file.relative_to(layout.root)),
            },
        )
    )
    return plan_id


class TickDriver:
    """Evaluate the submitter as the daemon does: cursor carried from tick to tick."""

    def __init__(self, instance: dg.DagsterInstance, base_url: str, data_dir: Path) -> None:
        self.instance = instance
        self.client = CrustdataClient("bench", base_url, timeout=10.0, max_retry_seconds=5.0)
        self.settings = EnrichmentSettings(retry_cooldown_seconds=0, credit_budget=10**9)
        self.data_root = DataRoot(data_dir=str(data_dir))
        self.cursor: str | None = None

    def tick(self) -> dict[str, Any]:
        before = Ledger.from_cursor(self.cursor)
        active = len(before.slot_holders())
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor)
        tick = SubmitterTick(context, self.client, self.settings, self.data_root)
        wall0 = time.perf_counter()
        result = tick.run()
        seconds = time.perf_counter() - wall0
        self.cursor = result.cursor
        after = Ledger.from_cursor(self.cursor)
        # New jobs this tick: how far each plan's next job moved (finished plans leave the cursor
        # only once every job of theirs was submitted, so they add nothing new).
        submitted = sum(
            plan.next_index - (before.plans[key].next_index if key in before.plans else 0)
            for key, plan in after.plans.items()
        )
        return {
            "seconds": seconds,
            "calls": tick.calls,
            "active_before": active,
            "submitted": submitted,
            "within_budget": tick.calls <= active + submitted,
            "active_after": len(after.slot_holders()),
            "cursor_bytes": len(self.cursor or ""),
        }

    def close(self) -> None:
        self.client.close()


def _summary(ticks: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [t["seconds"] for t in ticks]
    return {
        "ticks": len(ticks),
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
        "calls_max": max(t["calls"] for t in ticks),
        "calls_median": statistics.median(t["calls"] for t in ticks),
        "submitted_median": statistics.median(t["submitted"] for t in ticks),
        "active_before_median": statistics.median(t["active_before"] for t in ticks),
        "all_within_call_budget": all(t["within_budget"] for t in ticks),
    }


def bench_sensor_tick(work_dir: Path, *, partitions: int = 200, ticks: int = 30) -> dict[str, Any]:
    # Enough queued jobs that the slots never run dry: the first tick, `ticks` refills, the long
    # jobs' refill, and some to spare.
    jobs_per_partition = max(2, -(-MAX_ACTIVE_JOBS * (ticks + 4) // partitions))
    root = work_dir / "sensor_tick"
    data_dir = root / "data"
    layout = DataLayout(data_dir)
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    with (
        dg.DagsterInstance.local_temp(str(home)) as instance,
        EmulatorProcess(root / "emulator", pending_seconds=0.1, processing_seconds=0.3) as emu,
    ):
        for p in range(partitions):
            day = (FIRST_DATE + timedelta(days=p)).isoformat()
            urls = [
                f"https://www.linkedin.com/in/tick-{p:03d}-{i:05d}"
                for i in range(jobs_per_partition * MAX_URLS_PER_JOB)
            ]
            add_plan(instance, layout, day, urls, fields=FIELDS)
        driver = TickDriver(instance, emu.base_url, data_dir)
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)  # the tick logs a summary line per tick
        try:
            first = driver.tick()
            refill = []
            for _ in range(ticks):
                time.sleep(0.6)  # every active job has finished by the next tick
                refill.append(driver.tick())
            emu.admin.config(processing_seconds=3600.0)
            time.sleep(0.6)
            driver.tick()  # refills the slots with long jobs
            steady = [driver.tick() for _ in range(ticks)]
        finally:
            logging.disable(previous)
            driver.close()
    return {
        "partitions": partitions,
        "jobs_queued": partitions * jobs_per_partition,
        "first_tick": first,
        "refill": _summary(refill),
        "steady": _summary(steady),
        "cursor_bytes": steady[-1]["cursor_bytes"],
    }

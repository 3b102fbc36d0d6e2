"""Measurement 5: one partition of 1,000,000 URLs, and `contacts_latest` at 100 x 10,000.

* Plan and enqueue: the real `plan_contact_enrichment` job (`contact_url_list` +
  `contact_enrichment_batch`) on a 1,000,000-line input list, in a fresh child process on a
  SQLite instance in a temp DAGSTER_HOME: wall time and the child's peak RSS. Then the submitter
  tick on that instance with the emulator: the first tick with 3,334 jobs queued, the cursor
  size, and the bytes stored in Dagster per job (the serialised event-log entries the sensor
  writes for each job from submit to completion, i.e. the `event` column of their rows).
* `contacts_latest` over a warehouse of 100 partitions x 10,000 rows (each profile in 4
  partitions), each in a fresh child process: the asset's body (pyarrow dataset, sort, write),
  the same query in DuckDB (`QUALIFY row_number() ...` to Parquet), and the whole asset run
  through `dg.materialize` (Dagster's run overhead included); time and peak RSS each.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from crust_assets.bench.common import child_peak_rss, self_peak_rss_mib

PLAN_DATE = "2026-04-01"
LATEST_FIRST = date(2026, 5, 1)


# ---- plan + enqueue, in a child -----------------------------------------------------------------
def write_input(data_dir: Path, urls: int) -> Path:
    path = data_dir / "input" / f"{PLAN_DATE}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("profile_url\n")
        for start in range(0, urls, 100_000):
            out.write(
                "".join(
                    f"https://www.linkedin.com/in/scale-{i:07d}\n"
                    for i in range(start, min(urls, start + 100_000))
                )
            )
    return path


def planning_job(data_dir: str) -> Any:
    """The real `plan_contact_enrichment` job on `data_dir`, with a budget that never refuses."""
    import dagster as dg

    from crust_assets.defs.assets import contact_enrichment_batch, contact_url_list
    from crust_assets.defs.jobs import plan_contact_enrichment_job
    from crust_assets.defs.resources import DataRoot, EnrichmentSettings

    return dg.Definitions(
        assets=[contact_url_list, contact_enrichment_batch],
        jobs=[plan_contact_enrichment_job],
        resources={
            "data_root": DataRoot(data_dir=data_dir),
            "enrichment": EnrichmentSettings(credit_budget=10**9),
        },
    ).resolve_job_def("plan_contact_enrichment")


def _plan_child(home: str, data_dir: str) -> None:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(home)
    job = planning_job(data_dir)
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, partition_key=PLAN_DATE)
    seconds = time.perf_counter() - started
    meta = result.asset_materializations_for_node("contact_enrichment_batch")[0].metadata
    print(
        json.dumps(
            {
                "seconds": seconds,
                "job_count": meta["job_count"].value,
                "peak_rss_mib": self_peak_rss_mib(),
            }
        )
    )


def _event_bytes(instance: Any) -> dict[str, Any]:
    """Serialised size of the job events (the `event` column of their rows), per finished job."""
    import dagster as dg
    from dagster._serdes import serialize_value

    from crust_assets.defs.job_events import BATCH_ASSET_KEY, iter_observations, metadata_values

    per_job: dict[int, int] = {}
    events: dict[int, int] = {}
    for record in iter_observations(instance, partition=PLAN_DATE):
        observation = record.asset_observation
        if observation is None:
            continue
        meta = metadata_values(dict(observation.metadata))
        index = meta.get("job_index")
        if index is None:
            continue
        size = len(serialize_value(record.event_log_entry))
        per_job[int(index)] = per_job.get(int(index), 0) + size
        events[int(index)] = events.get(int(index), 0) + 1
    done = [i for i in per_job if events[i] >= 3]
    plan = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BATCH_ASSET_KEY, asset_partitions=[PLAN_DATE]), limit=1
    ).records[0]
    return {
        "jobs_measured": len(done),
        "bytes_per_job": sum(per_job[i] for i in done) / max(1, len(done)),
        "events_per_job": sum(events[i] for i in done) / max(1, len(done)),
        "plan_materialization_bytes": len(serialize_value(plan.event_log_entry)),
    }


def bench_plan(work_dir: Path, *, urls: int = 1_000_000, echo: Any = print) -> dict[str, Any]:
    import dagster as dg

    from crust_assets.bench.sensor_tick import TickDriver
    from crust_assets.emulator.process import EmulatorProcess

    root = work_dir / "scale_plan"
    data_dir = root / "data"
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    write_input(data_dir, urls)
    child = child_peak_rss(["crust_assets.bench.scale", "plan", str(home), str(data_dir)])
    echo(f"scale: planned {urls} URLs in {child['seconds']:.1f} s")
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with (
            dg.DagsterInstance.from_config(str(home)) as instance,
            EmulatorProcess(root / "emulator", pending_seconds=0.1, processing_seconds=0.3) as emu,
        ):
            driver = TickDriver(instance, emu.base_url, data_dir)
            try:
                first = driver.tick()
                for _ in range(3):  # fill, complete and refill the slots a few times
                    time.sleep(0.6)
                    driver.tick()
            finally:
                driver.close()
            stored = _event_bytes(instance)
    finally:
        logging.disable(previous)
    return {
        "urls": urls,
        "jobs": child["job_count"],
        "plan_seconds": child["seconds"],
        "plan_peak_rss_mib": child["peak_rss_mib"],
        "first_tick_seconds": first["seconds"],
        "first_tick_calls": first["calls"],
        "cursor_bytes": first["cursor_bytes"],
        **stored,
    }


# ---- contacts_latest, in a child ----------------------------------------------------------------
def write_warehouse(
    data_dir: Path, *, partitions: int = 100, rows: int = 10_000, overlap: int = 4
) -> int:
    """`partitions` partition files of `rows` rows; every profile is in `overlap` partitions."""
    from crust_assets.storage import DataLayout, write_table_atomic
    from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

    layout = DataLayout(data_dir)
    pool = partitions * rows // overlap
    email = pa.struct([pa.field("email", pa.string()), pa.field("status", pa.string())])
    for p in range(partitions):
        day = LATEST_FIRST + timedelta(days=p)
        ids = [(p * (rows // overlap) + j) % pool for j in range(rows)]
        business = [
            [{"email": f"p{i}@acme.example", "status": "deliverable"}] if i % 3 else [] for i in ids
        ]
        phones = [["+14155550100"] if i % 2 else [] for i in ids]
        table = pa.table(
            {
                "profile_url": [f"https://www.linkedin.com/in/latest-{i:07d}" for i in ids],
                "business_emails": pa.array(business, pa.list_(email)),
                "personal_emails": pa.array([[] for _ in ids], pa.list_(email)),
                "phone_numbers": pa.array(phones, pa.list_(pa.string())),
                "crustdata_person_id": pa.array(ids, pa.int64()),
                "batch_id": [f"batch-{p}-{j // 300}" for j in range(rows)],
                "enriched_at": pa.repeat(
                    pa.scalar(
                        datetime(2026, 5, 1, tzinfo=timezone.utc) + timedelta(days=p),
                        pa.timestamp("us", tz="UTC"),
                    ),
                    rows,
                ),
                "matched": [bool(b or ph) for b, ph in zip(business, phones, strict=True)],
                "primary_business_email": [b[0]["email"] if b else None for b in business],
            },
            schema=ENRICHED_CONTACTS_SCHEMA,
        )
        write_table_atomic(layout.warehouse_partition("enriched_contacts", day.isoformat()), table)
    return pool


def _latest_child(mode: str, data_dir: str) -> None:
    """Timed from after each mode's own imports (dagster alone takes seconds to import)."""
    if mode == "logic":
        # What the asset's body does, without Dagster's run around it.
        from crust_assets.contact_history import (
            PARTITIONED_CONTACTS_SCHEMA,
            contacts_dataset,
            newest_per_profile,
        )
        from crust_assets.storage import DataLayout, write_table_atomic

        started = time.perf_counter()
        dataset = contacts_dataset(DataLayout(Path(data_dir)))
        assert dataset is not None
        latest = newest_per_profile(dataset.to_table()).cast(PARTITIONED_CONTACTS_SCHEMA)
        write_table_atomic(Path(data_dir) / "logic_latest.parquet", latest)
        rows = latest.num_rows
    elif mode == "asset":
        import dagster as dg

        from crust_assets.definitions import with_table_io_manager
        from crust_assets.defs.assets import contacts_latest
        from crust_assets.defs.resources import DataRoot

        started = time.perf_counter()
        result = dg.materialize(
            [contacts_latest],
            resources=with_table_io_manager({"data_root": DataRoot(data_dir=data_dir)}),
        )
        rows = (
            result.asset_materializations_for_node("contacts_latest")[0]
            .metadata["dagster/row_count"]
            .value
        )
    else:
        import duckdb

        started = time.perf_counter()
        source = str(Path(data_dir) / "warehouse" / "enriched_contacts" / "*" / "*.parquet")
        target = str(Path(data_dir) / "duckdb_latest.parquet")
        connection = duckdb.connect()
        connection.execute(
            f"COPY (SELECT * FROM read_parquet('{source}', hive_partitioning = true) "
            "QUALIFY row_number() OVER (PARTITION BY profile_url "
            "ORDER BY enriched_at DESC, date DESC) = 1) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        )
        row = connection.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
        rows = row[0] if row else 0
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "rows": rows,
                "peak_rss_mib": self_peak_rss_mib(),
            }
        )
    )


def bench_latest(
    work_dir: Path,
    *,
    partitions: int = 100,
    rows: int = 10_000,
    rounds: int = 2,
    echo: Any = print,
) -> dict[str, Any]:
    data_dir = work_dir / "scale_latest" / "data"
    pool = write_warehouse(data_dir, partitions=partitions, rows=rows)
    results = {}
    for mode in ["logic", "duckdb"] * rounds + ["asset"]:
        result = child_peak_rss(["crust_assets.bench.scale", "latest", mode, str(data_dir)])
        best = results.get(mode)
        if best is None or result["seconds"] < best["seconds"]:
            results[mode] = result
    echo(f"scale: contacts_latest over {partitions} x {rows} rows")
    return {
        "partitions": partitions,
        "rows_per_partition": rows,
        "profiles": pool,
        "logic": results["logic"],
        "asset_run": results["asset"],
        "duckdb": results["duckdb"],
        "rows_equal": results["logic"]["rows"]
        == results["asset"]["rows"]
        == results["duckdb"]["rows"]
        == pool,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["plan"]:
        _plan_child(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["latest"]:
        _latest_child(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(
            "usage: python -m crust_assets.bench.scale plan HOME DATA | latest MODE DATA"
        )

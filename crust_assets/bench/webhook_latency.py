"""Webhook measurement: completion-to-download latency, with and without the job-complete webhook.

Measured, not modelled: the same work is run twice through a real `dagster dev` (webserver +
daemon) against the emulator, at the production polling interval (CRUST_POLL_INTERVAL_SECONDS
=30):

* **polling**: no CRUST_WEBHOOK_URL; the submitter sensor is evaluated every 30 s and learns of a
  finished job on its next poll.
* **webhook**: `crust-assets webhook` runs as its own process; jobs are submitted with its URL,
  the emulator calls it when a job ends, and the sensor (now evaluated every 5 s) polls the
  hinted job at once. Polling every 30 s stays on as the fallback.

Each partition is one job, launched together; the emulator gives each job its own length
(processing jitter drawn from the batch id), so jobs end at every phase of the polling cycle, as
real jobs do. Latency of a partition = the first download of its results (the emulator's log)
minus the moment its job ended (`completed_at`). It is split where the timestamps allow:
*detected* (the sensor's `job_completed` event in Dagster's event log), *run created* (the
sensor's run request for `enriched_contacts`), *run started* (the run worker is up). The two
modes share the machine and the run launcher, so their difference is the sensor's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from math import nan
from pathlib import Path
from typing import Any

import httpx

from crust_assets.demo import demo_environment, free_port, launch_partition, start_dagster_dev
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.lifecycle.events import EventName

PRODUCTION_POLL_SECONDS = 30
FIRST_DATE = date(2026, 4, 1)
URLS_PER_PARTITION = 40


def _when(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _write_lists(data_dir: Path, partitions: int) -> dict[str, str]:
    """One small list per day; returns {url prefix: partition} to map jobs back to days."""
    owners: dict[str, str] = {}
    for index in range(partitions):
        day = (FIRST_DATE + timedelta(days=index)).isoformat()
        prefix = f"latency{index:02d}-"
        lines = ["profile_url"] + [
            f"https://www.linkedin.com/in/{prefix}{i:04d}" for i in range(URLS_PER_PARTITION)
        ]
        path = data_dir / "input" / f"{day}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        owners[prefix] = day
    return owners


class WebhookReceiver:
    """`crust-assets webhook` as its own process, the way it is deployed."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/crustdata/{self.token}"

    def __enter__(self) -> WebhookReceiver:
        command = [
            str(Path(sys.executable).parent / "crust-assets"),
            "webhook",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, "CRUST_WEBHOOK_TOKEN": self.token},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"webhook receiver exited; see {self.log_path}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).is_success:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("webhook receiver did not start")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _dagster_timings(
    home: Path,
) -> tuple[dict[str, float], dict[str, tuple[float, float, float]]]:
    """(batch id -> when the sensor recorded it completed,
    partition -> (run created, run dequeued and launched, run worker started))."""
    import dagster as dg

    from crust_assets.defs.job_events import iter_job_events

    with dg.DagsterInstance.from_config(str(home)) as instance:
        detected = {
            str(values["batch_id"]): record.timestamp
            for record, values in iter_job_events(instance)
            if values.get("event") == EventName.JOB_COMPLETED and values.get("batch_id")
        }
        runs: dict[str, tuple[float, float, float]] = {}
        for record in instance.get_run_records(
            filters=dg.RunsFilter(job_name="load_enriched_contacts")
        ):
            partition = record.dagster_run.tags.get("dagster/partition")
            if partition and record.start_time is not None:
                created = record.create_timestamp.timestamp()
                launched = [
                    entry.timestamp
                    for entry in instance.all_logs(
                        record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_STARTING
                    )
                ]
                if partition not in runs or created < runs[partition][0]:
                    runs[partition] = (created, min(launched, default=nan), record.start_time)
    return detected, runs


def measure_mode(
    work_dir: Path,
    *,
    webhook: bool,
    partitions: int,
    processing_seconds: float,
    jitter_seconds: float,
    timeout: float = 900.0,
    echo: Any = print,
) -> dict[str, Any]:
    """Run `partitions` one-job partitions through `dagster dev`; latencies from both logs."""
    data_dir = work_dir / "data"
    home = work_dir / "dagster_home"
    owners = _write_lists(data_dir, partitions)
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(
            EmulatorProcess(
                work_dir / "emulator",
                pending_seconds=1.0,
                processing_seconds=processing_seconds,
                processing_jitter_seconds=jitter_seconds,
            )
        )
        env = demo_environment(emulator.base_url, data_dir, PRODUCTION_POLL_SECONDS)
        if webhook:
            receiver = stack.enter_context(WebhookReceiver(data_dir, work_dir / "webhook.log"))
            env["CRUST_WEBHOOK_URL"] = receiver.hook_url
        dev = start_dagster_dev(home, env)
        try:
            dev.wait_ready()
            for day in owners.values():
                launch_partition(dev.url, "plan_contact_enrichment", day)
            deadline = time.monotonic() + timeout
            while True:
                log = emulator.admin.submissions()
                fetched = [row for row in log if row["first_download_at"]]
                if len(log) >= partitions and len(fetched) >= len(log):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{len(fetched)} of {partitions} partitions downloaded after {timeout} s"
                    )
                time.sleep(1.0)
        finally:
            dev.stop()
    detected, runs = _dagster_timings(home)
    rows = []
    for row in log:
        partition = next(day for prefix, day in owners.items() if prefix in row["urls"][0])
        ended = _when(row["terminal_at"])
        downloaded = _when(row["first_download_at"])
        assert ended is not None and downloaded is not None
        created, launched, started = runs.get(partition, (nan, nan, nan))
        rows.append(
            {
                "partition": partition,
                "latency": downloaded - ended,
                "detected": detected.get(row["batch_id"], float("nan")) - ended,
                "run_created": created - ended,
                "run_launched": launched - ended,
                "run_started": started - ended,
                "webhook_delivered": (_when(row["webhook_delivered_at"]) or nan) - ended,
            }
        )
    latencies = sorted(r["latency"] for r in rows)
    echo(
        f"latency ({'webhook' if webhook else 'polling'}): {len(rows)} partitions, median "
        f"{statistics.median(latencies):.1f} s"
    )
    return {
        "mode": "webhook" if webhook else "polling",
        "partitions": len(rows),
        "poll_interval_seconds": PRODUCTION_POLL_SECONDS,
        "job_seconds": [1.0 + processing_seconds, 1.0 + processing_seconds + jitter_seconds],
        "median": statistics.median(latencies),
        "max": latencies[-1],
        "min": latencies[0],
        "mean": statistics.fmean(latencies),
        "median_detected": statistics.median(r["detected"] for r in rows),
        "median_run_created": statistics.median(r["run_created"] for r in rows),
        "median_run_launched": statistics.median(r["run_launched"] for r in rows),
        "median_run_started": statistics.median(r["run_started"] for r in rows),
        "rows": rows,
    }


def bench_webhook_latency(
    work_dir: Path, *, quick: bool = False, echo: Any = print
) -> dict[str, Any]:
    """Both modes on the same work; polling first, then webhook."""
    settings = {
        "partitions": 4 if quick else 8,
        "processing_seconds": 4.0,
        "jitter_seconds": 20.0 if quick else 40.0,
    }
    polling = measure_mode(work_dir / "polling", webhook=False, echo=echo, **settings)
    webhook = measure_mode(work_dir / "webhook", webhook=True, echo=echo, **settings)
    return {
        "polling": polling,
        "webhook": webhook,
        "median_ratio": webhook["median"] / polling["median"],
    }

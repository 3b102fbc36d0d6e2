"""Measurement 1: how busy the account's 5 job slots are kept.

Two figures:

* **Measured**, with the real daemon: the emulator with a fixed job time (20 s: pending +
  processing), two partitions whose plans add up to 30 jobs, `dagster dev` (webserver + daemon)
  on a temporary DAGSTER_HOME and data dir with `CRUST_POLL_INTERVAL_SECONDS=1`, both partitions
  launched through GraphQL as the UI does. Utilisation = busy slot-seconds / (5 x makespan), from
  the emulator's own submissions log (`created_at`) and each job's `completed_at`.
* **Modelled**, at real settings (job ~150 s, sensor interval 30 s, daemon loop 5 s), and the
  same model at the measured settings as a check of the model against the daemon. A freed slot
  is refilled at the first sensor evaluation after the job ends: the daemon evaluates a sensor
  on its 5 s loop once `minimum_interval_seconds` has passed since the last evaluation. With
  the webhook receiver the sensor learns of a finished job from a hint instead; modelled as a
  refill at the next daemon loop (the sensor can never run between loops).
"""

from __future__ import annotations

import math
import random
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from crust_assets.crustdata import CrustdataClient
from crust_assets.crustdata.models import MAX_URLS_PER_JOB
from crust_assets.defs.resources import EMULATOR_PLACEHOLDER_KEY
from crust_assets.demo import demo_environment, launch_partition, start_dagster_dev
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.lifecycle.ledger import MAX_ACTIVE_JOBS

DAEMON_LOOP_SECONDS = 5.0
FIRST_DATE = date(2026, 3, 1)


# ---- the model ----------------------------------------------------------------------------------
def simulate(
    jobs: int,
    *,
    job_seconds: float | tuple[float, float],
    interval: float,
    loop: float = DAEMON_LOOP_SECONDS,
    tick_seconds: float = 0.5,
    webhook: bool = False,
    seed: int = 5,
) -> float:
    """Utilisation of a single submitter working `jobs` queued jobs through 5 slots.

    `job_seconds` is fixed or (low, high) uniform. The daemon loop runs every `loop` seconds
    with a random phase; the sensor is evaluated on a loop once `interval` has passed since its
    last evaluation (or, with `webhook`, on every loop after a job finished). An evaluation
    takes `tick_seconds` before its submissions land.
    """
    rng = random.Random(seed)
    phase = rng.uniform(0, loop)
    last_eval = -math.inf
    now = phase
    queued = jobs
    running: list[float] = []  # end times
    intervals: list[tuple[float, float]] = []
    while queued or running:
        due = now - last_eval >= interval - 1e-9
        finished = [end for end in running if end <= now]
        if due or (webhook and finished):
            last_eval = now
            running = [end for end in running if end > now]
            while queued and len(running) < MAX_ACTIVE_JOBS:
                start = now + tick_seconds
                duration = (
                    job_seconds
                    if isinstance(job_seconds, (int, float))
                    else rng.uniform(*job_seconds)
                )
                running.append(start + duration)
                intervals.append((start, start + duration))
                queued -= 1
        now += loop
    busy = sum(end - start for start, end in intervals)
    makespan = max(end for _, end in intervals) - min(start for start, _ in intervals)
    return busy / (MAX_ACTIVE_JOBS * makespan)


def model_figures(jobs: int = 3334) -> dict[str, float]:
    """The model at real settings (and at the measured settings, to check it)."""
    return {
        "real_fixed_150s": simulate(jobs, job_seconds=150, interval=30),
        "real_120_180s": simulate(jobs, job_seconds=(120, 180), interval=30),
        "real_120_180s_webhook": simulate(jobs, job_seconds=(120, 180), interval=30, webhook=True),
        "bench_20s_interval_1s": simulate(30, job_seconds=20, interval=1),
        "ceiling_20s": 20 / (20 + DAEMON_LOOP_SECONDS / 2),
    }


# ---- the real daemon ----------------------------------------------------------------------------
def _write_list(data_dir: Path, day: date, prefix: str, count: int) -> None:
    lines = ["profile_url"] + [
        f"https://www.linkedin.com/in/{prefix}-{i:06d}" for i in range(count)
    ]
    path = data_dir / "input" / f"{day.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure_daemon(
    work_dir: Path,
    *,
    jobs: int = 30,
    job_seconds: float = 20.0,
    poll_seconds: int = 1,
    timeout: float = 900.0,
    echo: Any = print,
) -> dict[str, Any]:
    """Run `jobs` jobs (half per partition) through `dagster dev`; utilisation from the log."""
    data_dir = work_dir / "data"
    home = work_dir / "dagster_home"
    per_partition = [jobs // 2, jobs - jobs // 2]
    days = [FIRST_DATE, FIRST_DATE + timedelta(days=1)]
    for index, (day, count) in enumerate(zip(days, per_partition, strict=True)):
        _write_list(data_dir, day, f"slots{index}", count * MAX_URLS_PER_JOB)
    pending = 1.0
    with EmulatorProcess(
        work_dir / "emulator", pending_seconds=pending, processing_seconds=job_seconds - pending
    ) as emulator:
        env = demo_environment(emulator.base_url, data_dir, poll_seconds)
        dev = start_dagster_dev(home, env)
        started = time.monotonic()
        try:
            dev.wait_ready()
            ready = time.monotonic() - started
            for day in days:
                launch_partition(dev.url, "plan_contact_enrichment", day.isoformat())
            deadline = time.monotonic() + timeout
            while True:
                submissions = emulator.admin.submissions()
                done = sum(1 for s in submissions if s["status"] == "completed")
                if len(submissions) >= jobs and done >= jobs:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{done} of {jobs} jobs done after {timeout:.0f} s")
                time.sleep(2.0)
        finally:
            dev.stop()
        # Jobs belong to the key that submitted them: the pipeline's placeholder key.
        with CrustdataClient(EMULATOR_PLACEHOLDER_KEY, emulator.base_url, timeout=10.0) as client:
            spans = []
            for submission in submissions:
                status = client.status(submission["batch_id"])
                assert status.created_at is not None and status.completed_at is not None
                spans.append((status.created_at.timestamp(), status.completed_at.timestamp()))
    busy = sum(end - start for start, end in spans)
    first = min(start for start, _ in spans)
    last = max(end for _, end in spans)
    makespan = last - first
    starts = sorted(start for start, _ in spans)
    ends = sorted(end for _, end in spans)
    # How long a freed slot stayed empty: each submit after the first five waited for an end.
    refill = [start - end for start, end in zip(starts[MAX_ACTIVE_JOBS:], ends, strict=False)]
    echo(f"slots: {len(spans)} jobs, makespan {makespan:.1f} s")
    return {
        "jobs": len(spans),
        "job_seconds": job_seconds,
        "poll_interval_seconds": poll_seconds,
        "dagster_ready_seconds": ready,
        "makespan_seconds": makespan,
        "busy_slot_seconds": busy,
        "utilisation": busy / (MAX_ACTIVE_JOBS * makespan),
        "ideal_makespan_seconds": math.ceil(len(spans) / MAX_ACTIVE_JOBS) * job_seconds,
        "refill_wait_median_seconds": sorted(refill)[len(refill) // 2] if refill else 0.0,
        "refill_wait_max_seconds": max(refill) if refill else 0.0,
    }


def bench_slots(work_dir: Path, *, quick: bool = False, echo: Any = print) -> dict[str, Any]:
    measured = measure_daemon(
        work_dir / "slots",
        jobs=10 if quick else 30,
        job_seconds=6.0 if quick else 20.0,
        echo=echo,
    )
    model = model_figures(jobs=300 if quick else 3334)
    model["bench_settings"] = simulate(
        measured["jobs"], job_seconds=measured["job_seconds"], interval=1
    )
    return {"measured": measured, "model": model}

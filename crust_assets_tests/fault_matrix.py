"""The fault matrix: every failure mode the pipeline promises to survive, injected for real.

Each scenario runs end to end through Dagster against the emulator over HTTP: a real SQLite
instance in a scratch DAGSTER_HOME (in RAM when /dev/shm exists), the real
`contact_enrichment_sensor` evaluated tick by tick (the `Pipeline` harness) or by the real daemon
(`dagster dev`), and real runs. Faults come from
the emulator's fault controls, from process kills (SIGKILL) and from the emulator being restarted.
Nothing of ours is mocked.

After every scenario the four invariants the pipeline promises are checked on what is left on disk:

1. every valid URL of a partition is exactly one (correct) row of `enriched_contacts`, or the
   partition is reported failed with a reason a user can act on;
2. no URL set is submitted twice except after an API-reported failure (the emulator's
   submission log, `urls_sha256`), and no URL is delivered (billed) by two jobs;
3. no Parquet file is visible half-written (pyarrow and DuckDB read the warehouse);
4. the API key and every pre-signed URL signature the emulator issued appear nowhere: not in
   DAGSTER_HOME, the data dir, the emulator's state dir and log, captured logs or exception texts.

`python -m crust_assets_tests.fault_matrix` runs the whole matrix (`make faults`) and prints one
line per scenario; `--only NAME` runs some; the exit status is non-zero if any scenario fails.
`crust_assets_tests/test_fault_matrix.py` runs a fast subset under pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from crust_assets.crustdata import CrustdataClient
from crust_assets.demo import DAGSTER_YAML, launch_partition, start_dagster_dev
from crust_assets.demo_progress import wait_for_partition
from crust_assets.emulator.admin import EmulatorAdmin
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.emulator.results import AMZ_DATE_FORMAT, sign_path
from crust_assets.emulator.store import RESULTS_DIR, SECRET_NAME
from crust_assets.emulator.synth import synthetic_contacts
from crust_assets.lifecycle.events import EventName
from crust_assets.lifecycle.ledger import Ledger
from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

# Unmistakable: if this string turns up anywhere on disk or in a text, it leaked.
SECRET_KEY = "sk-live-UNMISTAKABLE-c0ffee"
KEY_ENV = "CRUSTDATA_API_KEY"
FIELDS = ["business_email", "personal_contact_info"]
DEFAULT_URL_EXPIRY_SECONDS = 432_000
ENRICHED_JOB = "load_enriched_contacts"
CHECK_ONE_ROW = "one_row_per_submitted_url"
# A fast clock (jobs done in 0.7 s) and several result parts per job, unless a scenario says.
FAST_EMULATOR = {"pending_seconds": 0.2, "processing_seconds": 0.5, "part_size": 120}
EXTERNAL_PREFIX = "external"  # URLs of jobs a scenario submits itself, outside the pipeline
HEX64 = re.compile(rb"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


# ---- expectations and results -----------------------------------------------------------------
@dataclass
class Partition:
    """One partition of a scenario: its valid URLs and what must become of them."""

    date: str
    urls: list[str]
    expect: str = "rows"  # rows: every URL a row; failed: reported failed; either
    reason: str | None = None  # a phrase the failure report must contain


@dataclass
class PartitionReport:
    """What the instance says about the newest enriched_contacts run of a partition."""

    status: str  # ok | check_failed | run_failed | run_unfinished | no_run
    text: str = ""


@dataclass
class Verdict:
    name: str
    rows_expected: int = 0
    rows_got: int = 0
    submits: int = 0
    duplicate_submits: int = 0
    credits_billed: int = 0
    outcome: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{self.name:<30} rows {self.rows_got:>5}/{self.rows_expected:<5} "
            f"submits {self.submits:>3}  dup {self.duplicate_submits}  "
            f"credits {self.credits_billed:>6}  {verdict:<4} {self.seconds:5.1f}s  {self.outcome}"
        )


class ScenarioError(AssertionError):
    """A scenario's own expectation did not hold (the message says which)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ScenarioError(message)


# ---- one scenario's world ---------------------------------------------------------------------
@dataclass
class World:
    """Directories, processes and instance of one scenario; everything lives under `root`."""

    name: str
    root: Path
    emulator: EmulatorProcess
    settings: dict[str, Any]
    partitions: list[Partition] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # exception texts, child output...
    expiry_values: set[int] = field(default_factory=lambda: {DEFAULT_URL_EXPIRY_SECONDS})
    allow_hidden_leftovers: bool = False
    notes: list[str] = field(default_factory=list)
    _instance: dg.DagsterInstance | None = None
    _pipeline: Pipeline | None = None

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def admin(self) -> EmulatorAdmin:
        return self.emulator.admin

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = open_instance(self.home)
        return self._instance

    @property
    def pipeline(self) -> Pipeline:
        """The harness on this scenario's on-disk instance, with the key from the environment."""
        if self._pipeline is None:
            self._pipeline = Pipeline(
                self.data_dir,
                self.emulator.base_url,
                api_key=dg.EnvVar(KEY_ENV),  # as in production: never a literal in the code
                settings=self.settings,
                instance=self.instance,
            )
        return self._pipeline

    def partition(self, date: str, urls: list[str], **kwargs: Any) -> Partition:
        """Write a day's list and register what is expected of it."""
        part = Partition(date, urls, **kwargs)
        self.partitions.append(part)
        self.pipeline.write_list(date, urls)
        return part

    def config(self, **changes: Any) -> None:
        if "url_expiry_seconds" in changes:
            self.expiry_values.add(int(changes["url_expiry_seconds"]))
        self.admin.config(**changes)

    def client(self) -> CrustdataClient:
        """A client of our own on the same account (for jobs submitted outside the pipeline)."""
        return CrustdataClient(SECRET_KEY, self.emulator.base_url, timeout=10.0)

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None


def scratch_dir(prefix: str = "crust-faults-") -> Path:
    """A fresh directory, in RAM (/dev/shm) when there is one.

    SQLite syncs every event-log write; on a disk that makes each scenario a third slower. The
    scenarios are about visibility and ordering (kills, atomic renames), not power loss.
    """
    shm = Path("/dev/shm")
    in_ram = shm.is_dir() and os.access(shm, os.W_OK)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=shm if in_ram else None))


def open_instance(home: Path) -> dg.DagsterInstance:
    """A persistent SQLite instance in `home` (so the secret scan has real files to search)."""
    home.mkdir(parents=True, exist_ok=True)
    yaml = home / "dagster.yaml"
    if not yaml.exists():
        yaml.write_text(DAGSTER_YAML)
    return dg.DagsterInstance.from_config(str(home))


@dataclass
class Scenario:
    name: str
    run: Callable[[World], None]
    fast: bool = False  # part of test_fault_matrix.py
    emulator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


# ---- helpers used by scenarios ----------------------------------------------------------------
def drive(world: World, runs: int = 1, timeout: float = 120.0) -> list[dg.ExecuteInProcessResult]:
    return world.pipeline.drive(until_runs=runs, timeout=timeout)


def drive_until_loaded(world: World, date: str, timeout: float) -> list[dg.ExecuteInProcessResult]:
    """Tick and run whatever the sensor requests (loads retried included) until a run of
    enriched_contacts[date] succeeds; every run launched, in order."""
    runs: list[dg.ExecuteInProcessResult] = []
    deadline = time.monotonic() + timeout
    while not any(r.success for r in runs):
        expect(
            time.monotonic() < deadline,
            f"{date} not loaded after {timeout:.0f} s, {len(runs)} runs",
        )
        runs += world.pipeline.run_requests(world.pipeline.tick())
        time.sleep(0.5)
    return runs


def latest_enriched_run(instance: dg.DagsterInstance, date: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=ENRICHED_JOB, tags={"dagster/partition": date}), limit=1
    )
    return runs[0] if runs else None


def run_failure_texts(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every error text Dagster recorded for a run (step failures, retries, run failure)."""
    texts = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            texts.append(error.to_string())
        elif event.is_failure and entry.user_message:
            texts.append(entry.user_message)
    return texts


def run_failure_causes(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The root cause of each recorded error (e.g. the DownloadError under a retry request)."""
    causes = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None and error.message.strip() not in causes:
            causes.append(error.message.strip())
    return causes


def check_evaluation(instance: dg.DagsterInstance, run_id: str, check: str) -> Any | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if data is not None and data.check_name == check:
            return data
    return None


def partition_report(instance: dg.DagsterInstance, date: str) -> PartitionReport:
    run = latest_enriched_run(instance, date)
    if run is None:
        return PartitionReport("no_run")
    evaluation = check_evaluation(instance, run.run_id, CHECK_ONE_ROW)
    if evaluation is not None and not evaluation.passed:
        # A failed blocking check also fails the run: the check's text is the report.
        return PartitionReport("check_failed", evaluation.description or "")
    if run.status == dg.DagsterRunStatus.FAILURE:
        # The first error is the cause (e.g. the DownloadError); later ones say retries ran out.
        causes = run_failure_causes(instance, run.run_id)
        texts = run_failure_texts(instance, run.run_id)
        return PartitionReport("run_failed", "\n".join(causes + texts))
    if run.status != dg.DagsterRunStatus.SUCCESS:
        return PartitionReport("run_unfinished", str(run.status))
    if evaluation is None:
        return PartitionReport("run_failed", "no one_row_per_submitted_url evaluation")
    return PartitionReport("ok")


def pipeline_submissions(world: World) -> list[dict[str, Any]]:
    return [
        s
        for s in world.admin.submissions()
        if not all(f"/in/{EXTERNAL_PREFIX}" in u for u in s["urls"])
    ]


def emulator_log_lines(world: World, pattern: str) -> list[str]:
    return [line for line in world.emulator.log_text().splitlines() if re.search(pattern, line)]


def events(world: World, date: str, name: str) -> list[dict[str, Any]]:
    return [e for e in world.pipeline.observations(date) if e.get("event") == name]


def child(world: World, *args: str, log_name: str) -> subprocess.Popen[bytes]:
    """Start `python -m crust_assets_tests.fault_matrix --child ...` on this world's instance."""
    log = open(world.root / log_name, "wb")  # noqa: SIM115 - handed to the child
    command = [
        sys.executable,
        "-m",
        "crust_assets_tests.fault_matrix",
        "--child",
        *args,
        "--home",
        str(world.home),
        "--data",
        str(world.data_dir),
        "--base-url",
        world.emulator.base_url,
    ]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DAGSTER_HOME": str(world.home)},  # the key travels in the env only
        start_new_session=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    log.close()
    return process


def sigkill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


# ---- the scenarios ----------------------------------------------------------------------------
def s_server_errors(world: World) -> None:
    """5xx (500/502/503) on 30 % of API calls, seeded; the client retries, the sensor carries on."""
    world.partition("2026-11-01", make_urls("e5xx", 650))
    world.admin.set_faults(error_rate=0.3, seed=7)
    world.pipeline.plan("2026-11-01")
    drive(world)
    served = len(emulator_log_lines(world, r" 50[023] "))
    expect(served > 0, "no 5xx was served: the fault did not fire")
    world.notes.append(f"{served} 5xx served")


def s_active_job_limit(world: World) -> None:
    """Three jobs of the same account started elsewhere: the pipeline meets the 5-job 429."""
    world.partition("2026-11-02", make_urls("slots", 1_200))  # 4 jobs, 2 slots free
    world.pipeline.plan("2026-11-02")
    world.config(pending_seconds=0.5, processing_seconds=4.0)  # the 3 stay active a while
    with world.client() as client:
        for i in range(3):
            client.submit(make_urls(f"{EXTERNAL_PREFIX}{i}", 1), FIELDS)
    drive(world)
    deferred = events(world, "2026-11-02", EventName.JOB_DEFERRED)
    expect(bool(deferred), "the sensor never met the 5-active-jobs limit")
    expect(all("5 active jobs" in str(e.get("message")) for e in deferred), "wrong defer reason")
    world.notes.append(f"{len(deferred)} deferred by the 5-job limit")


def s_rate_limited(world: World) -> None:
    """Bursts of 429 with x-ratelimit-reset / Retry-After on every kind of call."""
    world.partition("2026-11-03", make_urls("rate", 650))
    world.admin.set_faults(rate_limit_burst=6, rate_limit_reset_seconds=1.0)
    world.pipeline.plan("2026-11-03")
    world.pipeline.tick()
    world.admin.set_faults(rate_limit_burst=6)  # another burst while polling and loading
    drive(world)
    served = len(emulator_log_lines(world, r" 429 "))
    expect(world.admin.faults()["rate_limit_burst"] == 0, "the second burst was not consumed")
    world.notes.append(f"{served} 429s served")


def s_jobs_fail_then_succeed(world: World) -> None:
    """The API reports two jobs failed: each is resubmitted after the cool-down, once."""
    world.partition("2026-11-04", make_urls("flaky", 650))
    world.admin.set_faults(fail_next_jobs=2)
    world.pipeline.plan("2026-11-04")
    drive(world)
    statuses = Counter(s["status"] for s in pipeline_submissions(world))
    expect(statuses == Counter(completed=3, failed=2), f"submissions {dict(statuses)}")


def s_jobs_always_fail(world: World) -> None:
    """Every job fails: bounded resubmission, then the partition fails with the API's message."""
    world.partition("2026-11-05", make_urls("doomed", 10), expect="failed", reason="failed 2 times")
    world.admin.set_faults(job_failure_rate=1.0)
    world.pipeline.plan("2026-11-05")
    drive(world)
    expect(len(pipeline_submissions(world)) == 2, "not bounded by max_job_attempts=2")
    world.pipeline.tick()  # the tick after the one that requested the load reports the failure
    failures = [t for t in world.pipeline.failed_ticks if "2026-11-05: plan" in t]
    expect(len(failures) == 1, f"not one failed tick saying the plan failed: {failures}")


def s_lost_submit_reconciled(world: World) -> None:
    """A submit is accepted but its answer never arrives (read timeout): found via GET /batch.

    The lost submit is the second partition's job, after the first partition's job (same size)
    has completed: the look-up must not mistake that finished job for the lost one.
    """
    world.partition("2026-11-06", make_urls("lost-a", 300))
    world.partition("2026-11-07", make_urls("lost-b", 300))
    world.pipeline.plan("2026-11-06")
    world.pipeline.tick()  # job A submitted
    world.pipeline.plan("2026-11-07")
    world.admin.set_faults(delay_next_submits=1, submit_delay_seconds=8.0)  # > 5 s read timeout
    drive(world, runs=2)
    unconfirmed = events(world, "2026-11-07", EventName.JOB_SUBMISSION_UNCONFIRMED)
    confirmed = [
        e for e in events(world, "2026-11-07", EventName.JOB_SUBMITTED) if e.get("reconciled")
    ]
    expect(bool(unconfirmed), "the submit answer was not lost")
    expect(len(confirmed) == 1, "the lost submit was not confirmed through GET /batch")


def s_lost_submit_unmatched(world: World) -> None:
    """The submit's answer is lost and no job can be found: given up, never resubmitted."""
    world.partition(
        "2026-11-08", make_urls("unmatched", 120), expect="failed", reason="not resubmitted"
    )
    world.pipeline.plan("2026-11-08")
    # The first API call of the first tick is the submit: it hangs (the job is not created
    # before the scenario ends), the client times out, and GET /batch never shows a job.
    world.admin.set_faults(hang_next_calls=1, hang_seconds=600.0)
    drive(world, timeout=120)
    expect(pipeline_submissions(world) == [], "a job was created or the URLs were resubmitted")


def s_slow_and_hanging(world: World) -> None:
    """Every call slow (0.5 s), and calls that hang past the read timeout while jobs run."""
    world.partition("2026-11-09", make_urls("slow", 900))
    world.admin.set_faults(latency_seconds=0.5)
    world.pipeline.plan("2026-11-09")
    world.pipeline.tick()
    world.admin.set_faults(hang_next_calls=2, hang_seconds=8.0)
    drive(world, timeout=180)
    expect(world.admin.faults()["hang_next_calls"] == 0, "the hangs never fired")


def s_truncated_download(world: World) -> None:
    """The first result download is cut in half: the client fetches that part again, no step
    retry needed."""
    world.partition("2026-11-10", make_urls("trunc", 650))
    world.pipeline.plan("2026-11-10")
    world.admin.set_faults(truncate_next_downloads=1)
    [run] = drive(world)
    expect(world.admin.faults()["truncate_next_downloads"] == 0, "no download was truncated")
    downloads = len(emulator_log_lines(world, r"GET /_files/\S+ 200"))
    expect(downloads == 8, f"{downloads} downloads of 7 parts: the truncation was not detected")
    retried = run_failure_texts(world.instance, run.run_id)
    expect(retried == [], f"the truncated part failed the step: {retried}")


def s_corrupt_download(world: World) -> None:
    """A result part with a broken line inside valid gzip: detected, retried, loaded."""
    world.partition("2026-11-11", make_urls("corrupt", 650))
    world.pipeline.plan("2026-11-11")
    world.admin.set_faults(corrupt_next_downloads=1)
    [run] = drive(world)
    expect(world.admin.faults()["corrupt_next_downloads"] == 0, "no download was corrupted")
    expect(bool(run_failure_texts(world.instance, run.run_id)), "the corruption went unnoticed")


def s_download_always_broken(world: World) -> None:
    """Every download truncated: after the RetryPolicy's attempts, a clear run failure."""
    world.partition(
        "2026-11-12", make_urls("broken", 120), expect="failed", reason="gzip stream is truncated"
    )
    world.pipeline.plan("2026-11-12")
    world.admin.set_faults(truncate_next_downloads=1_000)
    [run] = drive(world)
    expect(not run.success, "the run succeeded on broken files")
    expect(not world.layout.warehouse_partition("enriched_contacts", "2026-11-12").exists(), "")


def s_expired_urls(world: World) -> None:
    """Pre-signed URLs valid 1 s and one record per part: URLs expire between parts."""
    world.config(url_expiry_seconds=1, part_size=1)
    world.partition("2026-11-13", make_urls("expiry", 600))
    world.pipeline.plan("2026-11-13")
    drive(world, timeout=180)
    expired = len(emulator_log_lines(world, r"GET /_files/\S+ 403"))
    expect(expired > 0, "no download met an expired URL")
    world.notes.append(f"{expired} downloads refused as expired, refreshed")


def s_corrupt_first_download(world: World) -> None:
    """Every result part is a complete 200 holding a truncated gzip on its first download, and
    fine afterwards: each part is fetched again on its own, and the day loads in one run."""
    date = "2026-11-27"
    world.partition(date, make_urls("firstbad", 650))  # 3 jobs, 7 parts of <= 120 records
    world.admin.set_faults(truncate_first_downloads=True)
    world.pipeline.plan(date)
    runs = drive_until_loaded(world, date, timeout=240)
    downloads = len(emulator_log_lines(world, r"GET /_files/\S+ 200"))
    expect(downloads >= 14, f"only {downloads} downloads: the parts were not all broken once")
    expect(len(runs) == 1, f"{len(runs)} enriched_contacts runs, expected all rows in one")
    retries = len(run_failure_texts(world.instance, runs[0].dagster_run.run_id))
    world.notes.append(f"7 parts broken once, {downloads} downloads, {retries} step retries")


def s_store_down_two_minutes(world: World) -> None:
    """The object store answers 503 for 2 minutes after each job completes: the load run fails
    after its own retries, the sensor requests it again with backoff, and the day loads with
    nobody stepping in."""
    date = "2026-11-28"
    world.partition(date, make_urls("storedown", 650))
    world.admin.set_faults(store_down_after_completion_seconds=120.0)
    world.pipeline.plan(date)
    runs = drive_until_loaded(world, date, timeout=330)
    failed = events(world, date, EventName.LOAD_FAILED)
    requested = [int(e["attempt"]) for e in events(world, date, EventName.LOAD_REQUESTED)]
    expect(len(runs) >= 2 and bool(failed), "no load failed: the store was never down for it")
    expect(requested == list(range(1, len(runs) + 1)), f"load attempts requested {requested}")
    expect(all("503" in str(e.get("message")) for e in failed), f"failures said {failed}")
    expect(not events(world, date, EventName.LOAD_GIVEN_UP), "the load was given up")
    world.notes.append(
        f"loaded by attempt {len(runs)}; {len(failed)} failed while the store was down"
    )


def s_missing_and_duplicate_records(world: World) -> None:
    """Results lose 2 records and repeat 2 per job: the check says so; re-planning fixes it."""
    date = "2026-11-14"
    world.partition(date, make_urls("holes", 600))
    world.admin.set_faults(drop_records_per_job=2, duplicate_records_per_job=2)
    world.pipeline.plan(date)
    drive(world)
    report = partition_report(world.instance, date)
    expect(report.status == "check_failed", f"missing records not reported: {report}")
    expect("4 submitted URLs have no record" in report.text, report.text)
    expect("Re-materialise contact_enrichment_batch" in report.text, report.text)
    rows = world.pipeline.table(date)
    expect(len(rows) == 596 and len({r["profile_url"] for r in rows}) == 596, "duplicates kept")
    world.admin.reset_faults()
    meta = world.pipeline.plan(date).asset_materializations_for_node("contact_enrichment_batch")
    expect(meta[0].metadata["urls_to_submit"].value == 4, "re-plan did not submit only the 4")
    drive(world)
    world.notes.append("check failed with the 4 missing URLs; re-plan submitted only those 4")


def s_overlapping_backfill(world: World) -> None:
    """Three days planned at once, sharing people, 5xx on 20 % of calls: each person is bought
    once (later days borrow from earlier days' running plans) and every day gets every row."""
    people = make_urls("backfill", 600)
    days = {"2026-11-24": people[:300], "2026-11-25": people[150:450], "2026-11-26": people[100:]}
    for date, urls in days.items():
        world.partition(date, urls)
    world.admin.set_faults(error_rate=0.2, seed=11)
    borrowed = []
    for date in days:
        meta = world.pipeline.plan(date).asset_materializations_for_node("contact_enrichment_batch")
        borrowed.append(meta[0].metadata["urls_borrowed"].value)
    expect(borrowed == [0, 150, 350], f"borrowed {borrowed}, expected [0, 150, 350]")
    drive(world, runs=3, timeout=150)
    world.notes.append("days 2 and 3 borrowed 150 and 350 URLs; 600 people bought once")


def s_flat_records(world: World) -> None:
    """Records without the envelope (the form a live client saw): parsed the same."""
    world.partition("2026-11-15", make_urls("flat", 650))
    world.admin.set_faults(flat_records=True)
    world.pipeline.plan("2026-11-15")
    drive(world)
    expect(all(s["flat_records"] for s in pipeline_submissions(world)), "jobs not flat")


def s_emulator_restart(world: World) -> None:
    """The API goes away mid-flight (process stopped) and comes back with the same state."""
    world.config(pending_seconds=1.0, processing_seconds=2.0)
    world.partition("2026-11-16", make_urls("restart", 1_650))  # 6 jobs
    world.pipeline.plan("2026-11-16")
    world.pipeline.tick()  # 5 jobs submitted
    world.emulator.stop()
    for _ in range(2):
        world.pipeline.tick()  # API unreachable: the ticks note it and carry on
    world.emulator.start()
    world.config(pending_seconds=0.2, processing_seconds=0.5)
    drive(world, timeout=150)


def s_tick_lost_cursor(world: World) -> None:
    """A tick that submitted jobs dies before its cursor is saved: replayed, not resubmitted."""
    world.partition("2026-11-17", make_urls("replay", 900))
    world.pipeline.plan("2026-11-17")
    world.pipeline.tick(keep_cursor=False)
    expect(len(pipeline_submissions(world)) == 3, "first tick did not submit 3 jobs")
    drive(world)


def s_tick_killed_mid_submit(world: World) -> None:
    """The sensor process is SIGKILLed while its POST is in flight (job created, no answer)."""
    date = "2026-11-18"
    world.partition(date, make_urls("midsubmit", 600))
    world.pipeline.plan(date)
    world.admin.set_faults(delay_next_submits=1, submit_delay_seconds=60.0)
    process = child(world, "tick", log_name="child-tick.log")
    deadline = time.monotonic() + 60
    while not pipeline_submissions(world):
        expect(process.poll() is None, "the child tick exited early")
        expect(time.monotonic() < deadline, "the child never submitted")
        time.sleep(0.1)
    time.sleep(0.2)
    sigkill(process)
    world.texts.append((world.root / "child-tick.log").read_text(errors="replace"))
    drive(world)  # from the cursor the dead tick never saved
    confirmed = [e for e in events(world, date, EventName.JOB_SUBMITTED) if e.get("reconciled")]
    expect(len(confirmed) == 1, "the in-flight submit was not reconciled")


def s_run_killed_mid_write(world: World) -> None:
    """A run writing enriched_contacts is SIGKILLed mid-file: the old file stays, readers fine.

    The second day reuses the first day's 600 rows (written first, straight away) and has one
    job of its own, whose status call the emulator holds for 3 s: the writer is killed then,
    with the reused rows already in its temp file.
    """
    first_day, date = "2026-11-18", "2026-11-19"
    world.allow_hidden_leftovers = True
    shared = make_urls("midwrite", 600)
    world.partition(first_day, shared)
    world.pipeline.plan(first_day)
    drive(world)
    world.partition(date, [*shared, *make_urls("midwrite-new", 300)])
    world.pipeline.plan(date)
    [loaded] = drive(world)
    target = world.layout.warehouse_partition("enriched_contacts", date)
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    plan_id = loaded.dagster_run.tags["crust/plan_id"]
    world.admin.set_faults(latency_seconds=3.0)  # the job's status call: the writer waits
    process = child(world, "load", "--date", date, "--plan-id", plan_id, log_name="child.log")
    deadline = time.monotonic() + 90
    temp: Path | None = None
    while temp is None:
        expect(process.poll() is None, "the loading child exited before it could be killed")
        expect(time.monotonic() < deadline, "no partial temp file appeared")
        partial = [p for p in target.parent.glob(".*") if p.stat().st_size > 1_000]
        temp = partial[0] if partial else None
        time.sleep(0.05)
    sigkill(process)
    world.texts.append((world.root / "child.log").read_text(errors="replace"))
    expect(hashlib.sha256(target.read_bytes()).hexdigest() == before, "the old file changed")
    expect(temp.exists(), "the temp file vanished: the kill came too late")
    readable = ds.dataset(target.parent, format="parquet")
    expect(readable.to_table().num_rows == 900, "pyarrow sees more than the old file")
    world.notes.append(f"killed with {temp.stat().st_size} bytes in {temp.name[:22]}...")
    world.admin.reset_faults()
    world.pipeline.defs.resolve_job_def(ENRICHED_JOB).execute_in_process(
        instance=world.instance, partition_key=date, tags={"crust/plan_id": plan_id}
    )


def _credits_out(world: World, status: int) -> None:
    sizes = {"2026-10-01": 600, "2026-10-02": 600, "2026-10-03": 900}  # 7 jobs
    for date, size in sizes.items():
        world.partition(date, make_urls(f"credit{date[-1]}", size))
        world.pipeline.plan(date)
    last = "2026-10-03"
    world.admin.set_faults(insufficient_credits_status=status)
    world.pipeline.tick()  # 5 jobs: both of the first two days, the first of the third
    expect(len(pipeline_submissions(world)) == 5, "the first tick did not fill the 5 slots")
    world.admin.set_balance(0)  # spent elsewhere: the next submit is refused
    drive(world, runs=3)
    refused = emulator_log_lines(world, rf"POST /batch/person/contact/enrich {status}")
    expect(len(refused) == 1, f"{len(refused)} submits refused: submitting did not stop")
    expect(len(pipeline_submissions(world)) == 5, "a job was submitted after the refusal")
    kept = {r["profile_url"] for r in world.pipeline.table(last)}
    expect(len(kept) == 300, "the delivered job of the third day was not kept")
    report = partition_report(world.instance, last)
    expect(report.status == "check_failed", f"{last}: {report}")
    expect("ran out of credits" in report.text and "add credits" in report.text, report.text)
    expect("2 jobs were not delivered" in report.text, report.text)
    # The advice works: add credits, re-plan the day; only the undelivered URLs are bought.
    world.admin.set_balance(1_000_000)
    world.pipeline.plan(last)
    drive(world)
    expect(len(pipeline_submissions(world)) == 7, "recovery did not submit exactly 2 jobs")
    # The tick after the ones that requested the loads failed, once, saying so.
    alarms = [t for t in world.pipeline.failed_ticks if "out of credits" in t]
    expect(len(alarms) == 1, f"not one failed tick saying out of credits: {alarms}")
    world.notes.append(f"{status} once, stopped; 300 of 900 kept; recovered with 2 more jobs")


def s_credits_out_402(world: World) -> None:
    """Credits run out mid-backfill (402): stop, report, keep what was delivered."""
    _credits_out(world, 402)


def s_credits_out_403(world: World) -> None:
    """The same with the API answering 403 for insufficient credits."""
    _credits_out(world, 403)


def s_daemon_sigkill(world: World) -> None:
    """`dagster dev` (daemon + webserver) SIGKILLed mid-flight, restarted on the same home."""
    date = "2026-10-10"
    world.config(pending_seconds=1.0, processing_seconds=8.0, part_size=120)
    world.partition(date, make_urls("daemon", 2_400))  # 8 jobs
    env = {
        "CRUSTDATA_BASE_URL": world.emulator.base_url,
        "CRUST_DATA_DIR": str(world.data_dir),
        "CRUST_POLL_INTERVAL_SECONDS": "2",
        "CRUST_RETRY_COOLDOWN_SECONDS": "5",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    dev = start_dagster_dev(world.home, env)
    try:
        dev.wait_ready()
        run_id = launch_partition(dev.url, "plan_contact_enrichment", date)
        deadline = time.monotonic() + 120
        while not pipeline_submissions(world):
            expect(time.monotonic() < deadline, "the daemon never submitted a job")
            time.sleep(0.2)
        time.sleep(1.0)
        submitted_before = len(pipeline_submissions(world))
        os.killpg(dev.process.pid, signal.SIGKILL)
        dev.process.wait(timeout=30)
    finally:
        dev.stop()
    world.notes.append(f"killed with {submitted_before} of 8 jobs submitted")
    dev = start_dagster_dev(world.home, env)
    try:
        dev.wait_ready()
        instance = open_instance(world.home)
        try:
            wait_for_partition(
                date, plan_run_id=run_id, timeout=240, echo=lambda _: None, instance=instance
            )
        finally:
            instance.dispose()
    finally:
        dev.stop()
    world.texts.append(dev.log_path.read_text(errors="replace"))
    expect(len(pipeline_submissions(world)) == 8, "jobs were resubmitted or lost")


SCENARIOS: list[Scenario] = [
    Scenario("5xx-30pct", s_server_errors, fast=True),
    Scenario("429-five-job-limit", s_active_job_limit),
    Scenario("429-rate-limit-reset", s_rate_limited),
    Scenario("job-failed-resubmitted", s_jobs_fail_then_succeed),
    Scenario("job-fails-every-attempt", s_jobs_always_fail, settings={"max_job_attempts": 2}),
    Scenario("lost-submit-reconciled", s_lost_submit_reconciled, fast=True),
    Scenario("lost-submit-unmatched", s_lost_submit_unmatched),
    Scenario("slow-and-hanging", s_slow_and_hanging),
    Scenario("truncated-download", s_truncated_download, fast=True),
    Scenario("corrupt-download", s_corrupt_download),
    Scenario("download-always-broken", s_download_always_broken),
    Scenario("expired-presigned-urls", s_expired_urls),
    Scenario("corrupt-first-download", s_corrupt_first_download),
    Scenario(
        "store-down-2-minutes",
        s_store_down_two_minutes,
        settings={"load_retry_seconds": 20, "load_retry_max_seconds": 60},
    ),
    Scenario("missing-duplicate-records", s_missing_and_duplicate_records, fast=True),
    Scenario("overlapping-backfill", s_overlapping_backfill, fast=True),
    Scenario("flat-records", s_flat_records),
    Scenario("emulator-restart", s_emulator_restart),
    Scenario("tick-lost-cursor", s_tick_lost_cursor, fast=True),
    Scenario("tick-killed-mid-submit", s_tick_killed_mid_submit),
    Scenario("run-killed-mid-write", s_run_killed_mid_write),
    Scenario("credits-out-402", s_credits_out_402, fast=True),
    Scenario("credits-out-403", s_credits_out_403),
    Scenario("daemon-sigkill", s_daemon_sigkill),
]
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


# ---- invariants -------------------------------------------------------------------------------
def expected_contacts(url: str) -> dict[str, Any]:
    record = synthetic_contacts(url, FIELDS)
    pci = record["data"].get("personal_contact_info", {})
    return {
        "business_emails": record["data"].get("business_email"),
        "personal_emails": pci.get("personal_emails"),
        "phone_numbers": pci.get("phone_numbers"),
    }


def check_rows(world: World, verdict: Verdict) -> list[str]:
    """Invariant 1: every valid URL one correct row, or a partition reported failed."""
    outcomes = []
    for part in world.partitions:
        verdict.rows_expected += len(part.urls)
        path = world.layout.warehouse_partition("enriched_contacts", part.date)
        rows = (
            pq.read_table(path, schema=ENRICHED_CONTACTS_SCHEMA).to_pylist()
            if path.exists()
            else []
        )
        counts = Counter(r["profile_url"] for r in rows)
        wanted = set(part.urls)
        verdict.rows_got += len(wanted & set(counts))
        if dups := [u for u, n in counts.items() if n > 1]:
            verdict.problems.append(f"{part.date}: {len(dups)} URLs have several rows")
        if foreign := set(counts) - wanted:
            verdict.problems.append(f"{part.date}: {len(foreign)} rows for URLs not in the list")
        wrong = [r["profile_url"] for r in rows if r["profile_url"] in wanted and not _row_ok(r)]
        if wrong:
            verdict.problems.append(f"{part.date}: {len(wrong)} rows differ from the API's data")
        complete = set(counts) == wanted and not dups
        report = partition_report(world.instance, part.date)
        if complete and report.status == "ok":
            if part.expect == "failed":
                verdict.problems.append(f"{part.date}: expected a failure report, got every row")
            outcomes.append("all rows")
            continue
        if complete and not wanted and report.status == "no_run":
            outcomes.append("empty")
            continue
        if report.status not in ("check_failed", "run_failed") or not report.text.strip():
            verdict.problems.append(
                f"{part.date}: {len(wanted - set(counts))} URLs without a row and no failure "
                f"report ({report.status})"
            )
            continue
        if part.expect == "rows":
            verdict.problems.append(f"{part.date}: reported failed: {report.text[:300]}")
        if part.reason and part.reason not in report.text:
            verdict.problems.append(
                f"{part.date}: the report does not say {part.reason!r}: {report.text[:300]}"
            )
        outcomes.append(f"reported failed ({_first_line(report.text)})")
    return outcomes


def _row_ok(row: dict[str, Any]) -> bool:
    expected = expected_contacts(row["profile_url"])
    return all(row[k] == v for k, v in expected.items()) and row["batch_id"] is not None


def _first_line(text: str, limit: int = 90) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^\w+(\.\w+)*Error: ", "", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def check_submissions(world: World, verdict: Verdict) -> None:
    """Invariant 2: no URL set twice unless the API said failed; no URL billed by two jobs."""
    subs = pipeline_submissions(world)
    verdict.submits = len(subs)
    verdict.credits_billed = sum(int(s["credits_billed"] or 0) for s in subs)
    seen: dict[str, list[str]] = {}
    for sub in subs:
        earlier = seen.setdefault(sub["urls_sha256"], [])
        if any(status != "failed" for status in earlier):
            verdict.duplicate_submits += 1
        earlier.append(sub["status"])
    if verdict.duplicate_submits:
        verdict.problems.append(f"{verdict.duplicate_submits} URL sets submitted twice")
    max_attempts = int(world.settings.get("max_job_attempts", 3))
    if over := [h for h, st in seen.items() if st.count("failed") > max_attempts]:
        verdict.problems.append(f"{len(over)} URL sets resubmitted beyond max_job_attempts")
    delivered: Counter[str] = Counter()
    for sub in subs:
        if sub["status"] == "completed":
            delivered.update(set(delivered_urls(world, sub["batch_id"])))
    if twice := [u for u, n in delivered.items() if n > 1]:
        verdict.duplicate_submits += len(twice)
        verdict.problems.append(f"{len(twice)} URLs delivered and billed by two jobs")


def delivered_urls(world: World, batch_id: str) -> Iterator[str]:
    for part in sorted((world.emulator.state_dir / RESULTS_DIR / batch_id).glob("part-*")):
        with gzip.open(part, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                yield record.get("original_identifier") or record.get("professional_network_url")


def check_files(world: World, verdict: Verdict) -> None:
    """Invariant 3: every visible Parquet file complete; readers see no temp file."""
    hidden: list[Path] = []
    for directory in (world.data_dir / "warehouse", world.data_dir / "staging"):
        for path in sorted(directory.rglob("*")) if directory.exists() else []:
            if path.is_dir():
                continue
            if path.name.startswith("."):
                hidden.append(path)
                continue
            if path.suffix not in (".parquet", ".duckdb") and not path.name.endswith(
                ".enriched.csv"
            ):
                verdict.problems.append(f"visible file of unknown kind {path.name}")
                continue
            try:
                if path.suffix == ".duckdb":  # contacts_duckdb: views over the Parquet files
                    duckdb.connect(str(path), read_only=True).close()
                elif path.suffix == ".csv":
                    check_enriched_csv(path)
                else:
                    pq.read_table(path)
            except Exception as error:
                verdict.problems.append(f"unreadable {path.relative_to(world.data_dir)}: {error}")
    if hidden and not world.allow_hidden_leftovers:
        verdict.problems.append(f"{len(hidden)} temp files left behind, e.g. {hidden[0].name}")
    dataset_dir = world.layout.warehouse_dataset("enriched_contacts")
    if not dataset_dir.is_dir():
        return
    files = list(dataset_dir.glob("date=*/data.parquet"))
    if not files:
        return
    try:
        expected = sum(pq.read_metadata(p).num_rows for p in files)
        seen = ds.dataset(dataset_dir, format="parquet", partitioning="hive").count_rows()
        glob = str(dataset_dir / "*" / "*.parquet")
        duck = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchall()[0][0]
    except Exception as error:
        verdict.problems.append(f"the warehouse cannot be read: {error}")
        return
    if seen != expected or duck != expected:
        verdict.problems.append(f"readers see {seen} (pyarrow) / {duck} (DuckDB), not {expected}")


def check_enriched_csv(path: Path) -> None:
    """enriched_list's CSV is whole: one record per row of the Parquet file written beside it."""
    with path.open(newline="", encoding="utf-8") as handle:
        records = sum(1 for _ in csv.reader(handle)) - 1  # the header
    rows = pq.read_metadata(path.with_name("data.parquet")).num_rows
    if records != rows:
        raise ValueError(f"{records} CSV records beside {rows} Parquet rows")


def issued_signatures(
    state_dir: Path, submissions: list[dict[str, Any]], expiry_values: set[int], until: float
) -> set[bytes]:
    """Every X-Amz-Signature the emulator in `state_dir` can have issued for these jobs.

    Recomputed from the emulator's signing secret: one per job, part, second since the job was
    created, and URL lifetime in use. Cheap (HMACs) and complete, unlike capturing responses.
    """
    secret = bytes.fromhex((state_dir / SECRET_NAME).read_text().strip())
    key = hmac.new(secret, b"presign", hashlib.sha256).digest()
    signatures: set[bytes] = set()
    for sub in submissions:
        if sub["status"] != "completed":
            continue
        created = datetime.fromisoformat(sub["created_at"].replace("Z", "+00:00")).timestamp()
        results = state_dir / RESULTS_DIR / sub["batch_id"]
        parts = max(1, len(list(results.glob("part-*"))))
        for second in range(int(created) - 1, int(until) + 2):
            amz_date = time.strftime(AMZ_DATE_FORMAT, time.gmtime(second))
            for index in range(parts):
                path = f"/_files/{sub['batch_id']}/part-{index:03d}.jsonl.gz"
                for expires in expiry_values:
                    signatures.add(sign_path(key, path, amz_date, expires).encode())
    return signatures


def check_secrets(world: World, verdict: Verdict, captured: list[str]) -> None:
    """Invariant 4: the key and the issued signatures appear in no file and no text."""
    needles = secret_needles(SECRET_KEY)
    signatures = issued_signatures(
        world.emulator.state_dir, world.admin.submissions(), world.expiry_values, time.time()
    )
    texts = world.texts + captured + all_run_error_texts(world.instance)
    findings = scan_paths([world.root], needles, signatures)
    for index, text in enumerate(texts):
        data = text.encode("utf-8", "replace")
        findings += [f"text #{index}: {hit}" for hit in scan_bytes(data, needles, signatures)]
    if findings:
        verdict.problems.append(f"secret leaked: {'; '.join(findings[:5])}")


def secret_needles(key: str, webhook_token: str | None = None) -> dict[str, bytes]:
    """The key (and the webhook token, the secret path of CRUST_WEBHOOK_URL, when given) as
    bytes in the encodings a file could hold them in."""
    import base64

    needles = {}
    for name, value in (("API key", key), ("webhook token", webhook_token)):
        if value:
            needles[name] = value.encode()
            needles[f"{name} (UTF-16)"] = value.encode("utf-16-le")
            needles[f"{name} (base64)"] = base64.b64encode(value.encode())[:-4]
    return needles


def scan_bytes(data: bytes, needles: dict[str, bytes], signatures: set[bytes]) -> list[str]:
    hits = [name for name, needle in needles.items() if needle in data]
    if b"X-Amz-Signature=" in data:
        hits.append("an X-Amz-Signature query parameter")
    if signatures and any(m.group(0).lower() in signatures for m in HEX64.finditer(data)):
        hits.append("an issued pre-signed URL signature")
    return hits


def scan_paths(roots: list[Path], needles: dict[str, bytes], signatures: set[bytes]) -> list[str]:
    """Search every file under `roots`, byte for byte (SQLite files and WAL included)."""
    findings = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            findings += [f"{hit} in {path}" for hit in scan_bytes(data, needles, signatures)]
    return findings


def all_run_error_texts(instance: dg.DagsterInstance) -> list[str]:
    texts = []
    for run in instance.get_runs():
        texts += run_failure_texts(instance, run.run_id)
    return texts


# ---- running ----------------------------------------------------------------------------------
class _Capture(logging.Handler):
    """Every log record emitted in this process during a scenario, formatted with its args."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.lines.append(text)


@contextlib.contextmanager
def capture_logs() -> Iterator[_Capture]:
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in ("", "dagster", "httpx", "httpcore", "crust_assets")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
    for name in ("httpx", "httpcore", "crust_assets"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send fd 2 (Dagster's console loggers, warnings) to a file inside the scanned tree."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_scenario(scenario: Scenario, workdir: Path) -> Verdict:
    """Run one scenario in `workdir` (created empty) and check the invariants afterwards."""
    started = time.monotonic()
    verdict = Verdict(scenario.name)
    root = workdir / scenario.name
    root.mkdir(parents=True)
    emulator = EmulatorProcess(
        root / "emulator",
        api_key=SECRET_KEY,
        **{**FAST_EMULATOR, **scenario.emulator},
    )
    world = World(
        scenario.name,
        root,
        emulator,
        {"retry_cooldown_seconds": 0, **scenario.settings},
    )
    with (
        _env(**{KEY_ENV: SECRET_KEY}),
        _stderr_to(root / "stderr.log"),
        capture_logs() as captured,
    ):
        emulator.start()
        try:
            try:
                scenario.run(world)
            except ScenarioError as error:
                verdict.problems.append(f"scenario: {error}")
            except Exception as error:
                text = "".join(traceback.format_exception(error))
                world.texts.append(text)
                verdict.problems.append(f"scenario raised {type(error).__name__}: {error}")
            if not emulator.is_running:
                emulator.start()
            outcomes = check_rows(world, verdict)
            check_submissions(world, verdict)
            check_files(world, verdict)
            check_secrets(world, verdict, captured.lines)
            summary = Counter(outcomes)
            verdict.outcome = "; ".join(
                f"{k}" + (f" x{n}" if n > 1 else "") for k, n in summary.items()
            )
            if world.notes:
                verdict.outcome += " | " + "; ".join(world.notes)
        finally:
            world.close()
            emulator.stop()
    verdict.seconds = time.monotonic() - started
    return verdict


def run_matrix(
    scenarios: list[Scenario], workdir: Path, echo: Callable[[str], None] = print
) -> list[Verdict]:
    verdicts = []
    for scenario in scenarios:
        verdict = run_scenario(scenario, workdir)
        verdicts.append(verdict)
        echo(verdict.line())
        for problem in verdict.problems:
            echo(f"    ! {problem}")
    return verdicts


# ---- child processes (killed by the scenarios) ------------------------------------------------
def _child_main(args: argparse.Namespace) -> int:
    pipeline = Pipeline(
        Path(args.data),
        args.base_url,
        api_key=dg.EnvVar(KEY_ENV),
        settings={"retry_cooldown_seconds": 0},
        instance=open_instance(Path(args.home)),
    )
    if args.child == "tick":
        result = pipeline.tick()
        print(f"tick done: {result.skip_reason}", flush=True)
        print(json.dumps(len(Ledger.from_cursor(result.cursor).slot_holders())))
        return 0
    print("loading", flush=True)
    pipeline.defs.resolve_job_def(ENRICHED_JOB).execute_in_process(
        instance=pipeline.instance, partition_key=args.date, tags={"crust/plan_id": args.plan_id}
    )
    print("loaded", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crust_assets_tests.fault_matrix", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    parser.add_argument("--fast", action="store_true", help="only the fast subset")
    parser.add_argument("--keep", action="store_true", help="keep the scenario directories")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--child", choices=("tick", "load"), help=argparse.SUPPRESS)
    for name in ("--home", "--data", "--base-url", "--date", "--plan-id"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args)
    if args.list:
        for scenario in SCENARIOS:
            doc = (scenario.run.__doc__ or "").strip().splitlines()[0]
            print(f"{scenario.name:<30} {'fast ' if scenario.fast else '     '}{doc}")
        return 0
    chosen = [s for s in SCENARIOS if (not args.fast or s.fast)]
    if args.only:
        unknown = [n for n in args.only if n not in SCENARIOS_BY_NAME]
        if unknown:
            parser.error(f"unknown scenarios {unknown}; see --list")
        chosen = [s for s in chosen if s.name in args.only]
    workdir = scratch_dir()
    started = time.monotonic()
    print(f"{'scenario':<30} {'rows got/expected':<17} submits dup credits verdict  time  outcome")
    try:
        verdicts = run_matrix(chosen, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [v.name for v in verdicts if not v.passed]
    print(
        f"{len(verdicts) - len(failed)} of {len(verdicts)} scenarios passed in "
        f"{time.monotonic() - started:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    if args.keep:
        print(f"scenario directories kept in {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

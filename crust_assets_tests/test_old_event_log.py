"""An instance written by an older release still works: its jobs finish, none is sent twice.

The fixture (`fixtures/old_event_log.tar.xz`, made by `fixtures/make_old_event_log.py` with the
code from before the job-lifecycle package) is a real SQLite instance, data root and emulator
state dir, left with jobs completed, processing, pending and never sent across five days. Here
the current sensor picks it up, from the cursor the old sensor saved and from no cursor at all
(everything replayed from the event log), and runs what it asks for, as the daemon would,
until every day is loaded. The emulator's own log of accepted submits is the judge.
"""

from __future__ import annotations

import json
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets.emulator.synth import synthetic_contacts
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

FIXTURE = Path(__file__).parent / "fixtures" / "old_event_log.tar.xz"
API_KEY = "old-event-log-fixture-key"  # the key the fixture's jobs were submitted with
SENSOR_NAME = "contact_enrichment_sensor"
LOAD_JOB = "load_enriched_contacts"
FIELDS = ["business_email", "personal_contact_info"]
TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class OldInstance:
    """The fixture, unpacked: where each part is, and what the old code recorded."""

    home: Path
    data: Path
    emulator_dir: Path
    manifest: dict[str, Any]

    @property
    def urls(self) -> dict[str, list[str]]:
        """Each day's input URLs, as the generator wrote them."""
        return {
            date: make_urls(f"old-log-{date}", count)
            for date, count in self.manifest["partitions"].items()
        }


def unpack(tmp_path: Path) -> OldInstance:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")  # no links out, no absolute paths
    manifest = json.loads((tmp_path / "fixture.json").read_text())
    return OldInstance(
        tmp_path / "dagster_home", tmp_path / "data", tmp_path / "emulator", manifest
    )


def launch(pipeline: Pipeline, result: dg.SensorResult) -> None:
    """Launch the requested runs as the daemon does: once per run key, tagged with it."""
    for request in result.run_requests or []:
        tags = {"dagster/run_key": request.run_key}
        if pipeline.instance.get_run_records(dg.RunsFilter(tags=tags), limit=1):
            continue
        pipeline.defs.resolve_job_def(LOAD_JOB).execute_in_process(
            instance=pipeline.instance,
            partition_key=request.partition_key,
            tags={**request.tags, **tags, "dagster/sensor_name": SENSOR_NAME},
            raise_on_error=False,
        )


def load_runs(instance: dg.DagsterInstance) -> Counter[str]:
    """Successful enriched_contacts runs by day."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=LOAD_JOB, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    return Counter(run.tags["dagster/partition"] for run in runs)


def loaded_days(instance: dg.DagsterInstance) -> set[str]:
    return set(load_runs(instance))


def drive_until_loaded(pipeline: Pipeline, days: set[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while not days <= loaded_days(pipeline.instance):
        assert time.monotonic() < deadline, f"loaded {sorted(loaded_days(pipeline.instance))}"
        launch(pipeline, pipeline.tick())
        time.sleep(0.3)


def expected_row(url: str) -> dict[str, Any]:
    record = synthetic_contacts(url, FIELDS)
    contact = record["data"].get("personal_contact_info", {})
    return {
        "profile_url": url,
        "business_emails": record["data"].get("business_email"),
        "personal_emails": contact.get("personal_emails"),
        "phone_numbers": contact.get("phone_numbers"),
        "crustdata_person_id": record["internal_id"],
    }


def test_the_fixture_holds_jobs_in_every_state_and_no_secret() -> None:
    """What the guard below relies on: the old log left work active and queued."""
    data = FIXTURE.read_bytes()
    assert len(data) < 1_000_000
    with tarfile.open(FIXTURE) as tar:
        bodies = {m.name: handle.read() for m in tar if (handle := tar.extractfile(m))}
    for name, body in bodies.items():
        assert API_KEY.encode() not in body and b"X-Amz-Signature" not in body, name
    manifest = json.loads(bodies["fixture.json"])
    states = [state for day in manifest["job_states"].values() for state in day]
    assert {"queued", "active:pending", "active:processing", "done"} <= set(states)
    assert manifest["jobs_submitted"] == 11


@pytest.mark.parametrize("cursor", ["saved by the old sensor", "none: replay the event log"])
def test_an_old_instance_resumes_and_sends_every_job_once(tmp_path: Path, cursor: str) -> None:
    old = unpack(tmp_path)
    with EmulatorProcess(old.emulator_dir, pending_seconds=0.2, processing_seconds=0.5) as emulator:
        sent_before = emulator.admin.submissions()
        assert len(sent_before) == old.manifest["jobs_submitted"]
        instance = dg.DagsterInstance.from_config(str(old.home))
        pipeline = Pipeline(old.data, emulator.base_url, api_key=API_KEY, instance=instance)
        pipeline.cursor = old.manifest["cursor"] if cursor.startswith("saved") else None
        drive_until_loaded(pipeline, set(old.urls))
        for _ in range(3):  # settled: later ticks send nothing and request nothing new
            launch(pipeline, pipeline.tick())
        sent = emulator.admin.submissions()
        assert load_runs(instance) == dict.fromkeys(old.urls, 1), "a day loaded twice"
        instance.dispose()

    every_url = [url for urls in old.urls.values() for url in urls]
    per_url = Counter(url for submission in sent for url in submission["urls"])
    assert per_url == Counter(every_url), "a URL was sent twice, or never"
    assert len(sent) == 12  # one more than the old code had sent: the queued job
    assert {s["batch_id"] for s in sent_before} <= {s["batch_id"] for s in sent}
    for date, urls in old.urls.items():
        rows = pipeline.table(date)
        assert len(rows) == len(urls), date
        keys = list(expected_row(urls[0]))
        assert sorted(({k: r[k] for k in keys} for r in rows), key=lambda r: r["profile_url"]) == [
            expected_row(url) for url in sorted(urls)
        ], date

"""Every fault fires when set, is consumed when counted, and can be switched off."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from crust_assets.crustdata import CrustdataClient, InsufficientCreditsError, PermissionDeniedError
from crust_assets.emulator import (
    FAULT_NAMES,
    EmulatorAdminError,
    EmulatorProcess,
    EmulatorStartError,
    synthetic_contacts,
    to_flat,
    urls_sha256,
)
from crust_assets_tests._emulator_http import (
    SEED_FIELDS,
    SEED_URLS,
    SUBMIT_PATH,
    api_client,
    download,
    profile_urls,
    records_of,
    submit,
    wait_for,
)


def test_error_rate_answers_5xx_before_anything_else(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(error_rate=1.0, seed=7)
    statuses = Counter()
    with api_client(emulator, version=False) as client:
        client.headers.pop("authorization")  # even auth comes after the fault
        for _ in range(30):
            statuses[client.get("/batch").status_code] += 1
        response = client.get("/batch")
    assert set(statuses) == {500, 502, 503}
    if response.status_code == 502:
        assert response.headers["content-type"].startswith("text/html")
    else:
        assert "message" in response.json()
    assert emulator.admin.health()  # admin endpoints are never faulted
    emulator.admin.reset_faults()
    with api_client(emulator) as client:
        assert client.get("/batch").status_code == 200


def test_rate_limit_burst_sends_headers_and_is_consumed(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(rate_limit_burst=2, rate_limit_reset_seconds=3)
    with api_client(emulator) as client:
        for _ in range(2):
            response = client.get("/batch")
            assert response.status_code == 429
            assert response.headers["x-ratelimit-limit"] == "60"
            assert response.headers["x-ratelimit-remaining"] == "0"
            assert response.headers["x-ratelimit-reset"] == "3"
            assert response.headers["retry-after"] == "3"
            assert response.json()["error"]["type"] == "rate_limit_exceeded"
        assert client.get("/batch").status_code == 200
    assert emulator.admin.faults()["rate_limit_burst"] == 0


def test_job_failures_by_rate_and_by_count(emulator: EmulatorProcess) -> None:
    with api_client(emulator) as client:
        emulator.admin.set_faults(fail_next_jobs=1)
        failed = submit(client, SEED_URLS)["batch_id"]
        completed = submit(client, SEED_URLS)["batch_id"]
        emulator.admin.set_faults(job_failure_rate=1.0)
        also_failed = submit(client, SEED_URLS)["batch_id"]
        for batch_id in (failed, also_failed):
            doc = wait_for(client, batch_id)
            assert doc["status"] == "failed"
            assert doc["error_message"]
            assert doc["download_url"] is None and doc["download_urls"] is None
            assert doc["completed_at"] is not None
            assert doc["result_count"] == doc["entities_fulfilled"] == 0
        assert wait_for(client, completed)["status"] == "completed"
    billed = {s["batch_id"]: s["credits_billed"] for s in emulator.admin.submissions()}
    assert billed[failed] == billed[also_failed] == 0
    assert emulator.admin.billing()["credits_used"] == billed[completed]


def test_latency_and_hang(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(latency_seconds=0.3)
    with api_client(emulator) as client:
        started = time.monotonic()
        assert client.get("/batch").status_code == 200
        assert time.monotonic() - started >= 0.3
    emulator.admin.set_faults(latency_seconds=0, hang_next_calls=1, hang_seconds=1.5)
    with api_client(emulator, timeout=0.4) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/batch")
        started = time.monotonic()
        assert client.get("/batch").status_code == 200
        assert time.monotonic() - started < 0.4
    assert emulator.admin.faults()["hang_next_calls"] == 0


def test_delayed_submit_still_creates_the_job(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(delay_next_submits=1, submit_delay_seconds=1.5)
    body = {"professional_network_profile_urls": SEED_URLS, "fields": SEED_FIELDS}
    with api_client(emulator, timeout=0.4) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(SUBMIT_PATH, json=body)
        # The job exists although the client never saw its id: list finds it.
        jobs = client.get("/batch").json()["jobs"]
        assert len(jobs) == 1 and jobs[0]["identifier_count"] == 2
        submissions = emulator.admin.submissions()
        assert [s["batch_id"] for s in submissions] == [jobs[0]["batch_id"]]
        assert submissions[0]["urls_sha256"] == urls_sha256(SEED_URLS)
        assert client.post(SUBMIT_PATH, json=body).status_code == 200


def test_truncated_and_corrupted_downloads(emulator: EmulatorProcess) -> None:
    with api_client(emulator) as client:
        batch_id = submit(client, profile_urls(20, "dl"))["batch_id"]
        url = wait_for(client, batch_id, ["completed"])["download_url"]
    good = download(url).content
    emulator.admin.set_faults(truncate_next_downloads=1, corrupt_next_downloads=1)
    truncated = download(url)
    assert truncated.status_code == 200 and len(truncated.content) < len(good)
    with pytest.raises(EOFError):
        gzip.decompress(truncated.content)
    corrupted = download(url)
    lines = gzip.decompress(corrupted.content).splitlines()  # valid gzip...
    assert len(lines) == 20
    bad = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            bad.append(line)
    assert len(bad) == 1  # ...with exactly one broken line
    assert download(url).content == good
    assert emulator.admin.faults()["truncate_next_downloads"] == 0


def test_flat_records(emulator: EmulatorProcess) -> None:
    urls = profile_urls(6, "flat")
    emulator.admin.set_faults(flat_records=True)
    with api_client(emulator) as client:
        flat_id = submit(client, urls, ["business_email"])["batch_id"]
        emulator.admin.set_faults(flat_records=False)
        normal_id = submit(client, urls, ["business_email"])["batch_id"]
        flat = records_of(wait_for(client, flat_id, ["completed"]))
        normal = records_of(wait_for(client, normal_id, ["completed"]))
    assert flat == [to_flat(synthetic_contacts(u, ["business_email"])) for u in urls]
    assert set(flat[0]) == {"professional_network_url", "person_id", "business_email"}
    assert "original_identifier" in normal[0]


def test_dropped_and_duplicated_records(emulator: EmulatorProcess) -> None:
    urls = profile_urls(10, "dd")
    with api_client(emulator) as client:
        emulator.admin.set_faults(drop_records_per_job=2)
        dropped_id = submit(client, urls, SEED_FIELDS)["batch_id"]
        emulator.admin.set_faults(drop_records_per_job=0, duplicate_records_per_job=1)
        dup_id = submit(client, urls, SEED_FIELDS)["batch_id"]
        dropped_doc = wait_for(client, dropped_id, ["completed"])
        dup_doc = wait_for(client, dup_id, ["completed"])
    dropped = [r["original_identifier"] for r in records_of(dropped_doc)]
    assert len(dropped) == 8 and set(dropped) < set(urls)
    assert dropped == [u for u in urls if u in dropped]  # order kept
    duplicated = Counter(r["original_identifier"] for r in records_of(dup_doc))
    assert sum(duplicated.values()) == 11 and set(duplicated) == set(urls)
    assert sorted(duplicated.values())[-1] == 2
    assert dup_doc["result_count"] == 11 and dropped_doc["result_count"] == 8


def test_denied_contact_access_refuses_every_submit_with_a_permission_403(
    emulator: EmulatorProcess,
) -> None:
    emulator.admin.set_faults(deny_contact_access=True)
    billing = emulator.admin.billing()
    with CrustdataClient(emulator.api_key, emulator.base_url, timeout=5.0) as client:
        for _ in range(2):  # a flag, not a count: every submit while set
            with pytest.raises(PermissionDeniedError) as info:
                client.submit(profile_urls(2, "denied"), ["business_email"])
            error = info.value
            assert not isinstance(error, InsufficientCreditsError)  # no access, not credits
            assert error.status_code == 403 and error.error_type == "permission_denied"
            assert "contact enrichment" in str(error)
        assert list(client.list_batches()) == []  # listing still works; no job was created
        assert emulator.admin.submissions() == [] and emulator.admin.billing() == billing
        emulator.admin.set_faults(deny_contact_access=False)
        client.submit(profile_urls(2, "denied"), ["business_email"])
    assert len(emulator.admin.submissions()) == 1


def test_fault_admin_validation_and_reset(emulator: EmulatorProcess) -> None:
    faults = emulator.admin.faults()
    assert set(faults) == set(FAULT_NAMES)
    assert faults["error_rate"] == 0 and faults["flat_records"] is False
    for bad in (
        {"no_such_fault": 1},
        {"error_rate": 2},
        {"rate_limit_burst": -1},
        {"flat_records": "yes"},
        {"insufficient_credits_status": 500},
    ):
        with pytest.raises(EmulatorAdminError) as excinfo:
            emulator.admin.set_faults(**bad)
        assert excinfo.value.status_code == 400
    assert emulator.admin.faults() == faults  # a rejected PATCH changes nothing
    emulator.admin.set_faults(error_rate=0.5, fail_next_jobs=3)
    assert emulator.admin.reset_faults() == faults


def test_faults_at_start_from_the_command_line(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(faults={"rate_limit_burst": 1, "flat_records": True})
    assert emulator.admin.faults()["flat_records"] is True
    with api_client(emulator) as client:
        assert client.get("/batch").status_code == 429
        assert client.get("/batch").status_code == 200
    with pytest.raises(EmulatorStartError, match="unknown fault"):
        emulator_factory(faults={"bogus": 1})

"""Result downloads against the emulator's pre-signed object store.

Multi-part files, both record forms, expired URLs, truncated and corrupt
files, and the ``result_count: 0`` quirk. Every download here would be refused
(400 InvalidArgument) if the client sent its API key along.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
import pytest

from crust_assets.crustdata import (
    BatchStatus,
    CrustdataClient,
    DownloadError,
    DownloadLimits,
    Email,
    ResultParseError,
    ResultRecord,
)
from crust_assets.emulator import EmulatorProcess, synthetic_contacts, synthetic_profile

FIELDS = ["business_email", "personal_contact_info"]


def profile_urls(n: int, prefix: str = "client-dl") -> list[str]:
    return [f"https://www.linkedin.com/in/{prefix}-{i}" for i in range(n)]


def make_client(emulator: EmulatorProcess, **kw: object) -> CrustdataClient:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("backoff_base", 0.05)
    return CrustdataClient(emulator.api_key, emulator.base_url, **kw)  # type: ignore[arg-type]


def run_job(client: CrustdataClient, urls: list[str], fields: list[str] = FIELDS) -> BatchStatus:
    batch_id = client.submit(urls, fields).batch_id
    return client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)


def expected_record(url: str, fields: list[str] = FIELDS) -> ResultRecord:
    doc = synthetic_contacts(url, fields)
    data = doc["data"]
    pci = data.get("personal_contact_info", {})

    def emails(values: list[dict[str, str]] | None) -> list[Email] | None:
        return None if values is None else [Email(**v) for v in values]

    return ResultRecord(
        profile_url=url,
        person_id=doc["internal_id"],
        business_emails=emails(data.get("business_email")),
        personal_emails=emails(pci.get("personal_emails")),
        phone_numbers=pci.get("phone_numbers"),
    )


def test_multi_part_results_stream_part_by_part(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(part_size=3)
    urls = profile_urls(8)
    with make_client(emulator) as client:
        batch = run_job(client, urls)
        assert batch.result_count == 8
        assert batch.part_names == ["part-000.jsonl.gz", "part-001.jsonl.gz", "part-002.jsonl.gz"]

        seen: list[tuple[str, int]] = []
        for name, stream in client.open_result_parts(batch):
            lines = [line for line in stream if line.strip()]
            assert all(line.startswith(b"{") for line in lines)  # decompressed JSONL
            seen.append((name, len(lines)))
        assert seen == [
            ("part-000.jsonl.gz", 3),
            ("part-001.jsonl.gz", 3),
            ("part-002.jsonl.gz", 2),
        ]

        records = list(client.iter_results(batch))
    assert records == [expected_record(u) for u in urls]


def test_flat_records_parse_like_envelopes(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(flat_records=True)
    urls = profile_urls(5, "flat")
    with make_client(emulator) as client:
        batch = run_job(client, urls)
        parts = client.open_result_parts(batch)
        _, stream = next(parts)
        assert b'"professional_network_url"' in stream.readline()  # really the flat form
        parts.close()
        records = list(client.iter_results(batch))
    assert records == [expected_record(u) for u in urls]


def test_zero_results_means_no_download(emulator: EmulatorProcess) -> None:
    nobody = [
        u
        for u in (f"https://www.linkedin.com/in/nobody-{i}" for i in range(60))
        if synthetic_profile(u).is_empty
    ][:3]
    assert len(nobody) == 3
    with make_client(emulator) as client:
        batch = run_job(client, nobody)
        assert batch.status == "completed" and batch.result_count == 0
        assert batch.download_url  # the quirk: a URL whose object was never written
        assert list(client.open_result_parts(batch)) == []
        assert list(client.iter_results(batch)) == []
    assert httpx.get(batch.download_url, trust_env=False).status_code == 404


def test_expired_urls_are_refreshed_once(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.admin.config(url_expiry_seconds=2)
    urls = profile_urls(4, "expiry")
    caplog.set_level(logging.INFO, logger="crust_assets.crustdata")
    with make_client(emulator) as client:
        batch = run_job(client, urls)
        stale = batch.download_url
        assert stale is not None
        time.sleep(2.1)
        assert httpx.get(stale, trust_env=False).status_code == 403  # really expired
        records = list(client.iter_results(batch))
    assert [r.profile_url for r in records] == urls
    assert any("fetching fresh URLs" in r.getMessage() for r in caplog.records)


def test_failed_job_has_no_results(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(fail_next_jobs=1)
    with make_client(emulator) as client:
        batch = run_job(client, profile_urls(2, "fails"))
        assert batch.status == "failed" and batch.error_message
        with pytest.raises(ValueError, match="only completed jobs have results"):
            client.iter_results(batch)


def test_truncated_download_is_a_download_error_then_a_retry_works(
    emulator: EmulatorProcess,
) -> None:
    urls = profile_urls(5, "trunc")
    # One download per part: what the caller sees once a part's own attempts are used up.
    with make_client(emulator, download_limits=DownloadLimits(part_attempts=1)) as client:
        batch = run_job(client, urls)
        emulator.admin.set_faults(truncate_next_downloads=1)
        got: list[ResultRecord] = []
        with pytest.raises(DownloadError) as info:
            got.extend(client.iter_results(batch))
        assert got == []  # nothing of the bad part was yielded
        err = info.value
        assert (err.batch_id, err.part) == (batch.batch_id, "part-000.jsonl.gz")
        message = str(err)
        assert "truncated" in message and batch.batch_id in message
        assert "part-000.jsonl.gz?<redacted>" in message and "X-Amz-Signature" not in message
        # The caller decides to retry: the part restarts cleanly, each record once.
        assert [r.profile_url for r in client.iter_results(batch)] == urls


def test_a_part_truncated_on_its_first_downloads_heals_by_itself(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(part_size=3)
    urls = profile_urls(8, "trunc-heal")
    with make_client(emulator) as client:
        batch = run_job(client, urls)
        # Three broken downloads in a row (default: 4 downloads per part), then good ones.
        emulator.admin.set_faults(truncate_next_downloads=3)
        records = list(client.iter_results(batch))
    assert [r.profile_url for r in records] == urls  # each record once, in order
    assert emulator.admin.faults()["truncate_next_downloads"] == 0


def test_truncation_in_a_later_part_yields_no_record_of_that_part(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(part_size=3)
    urls = profile_urls(7, "trunc-late")
    with make_client(emulator, download_limits=DownloadLimits(part_attempts=1)) as client:
        batch = run_job(client, urls)
        records = client.iter_results(batch)
        got = [next(records) for _ in range(3)]  # all of part-000
        emulator.admin.set_faults(truncate_next_downloads=1)
        with pytest.raises(DownloadError) as info:
            got.extend(records)
    assert info.value.part == "part-001.jsonl.gz"
    assert [r.profile_url for r in got] == urls[:3]


def test_corrupt_line_is_a_parse_error_naming_part_and_line(emulator: EmulatorProcess) -> None:
    urls = profile_urls(5, "corrupt")
    with make_client(emulator) as client:
        batch = run_job(client, urls)
        emulator.admin.set_faults(corrupt_next_downloads=1)
        got: list[ResultRecord] = []
        with pytest.raises(ResultParseError) as info:
            got.extend(client.iter_results(batch))
        err = info.value
        assert got == []  # the whole part is checked before its first record is yielded
        assert (err.batch_id, err.part, err.line_number) == (batch.batch_id, "part-000.jsonl.gz", 3)
        assert f"batch {batch.batch_id} part-000.jsonl.gz line 3" in str(err)
        assert [r.profile_url for r in client.iter_results(batch)] == urls

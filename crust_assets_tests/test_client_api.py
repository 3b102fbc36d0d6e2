"""CrustdataClient against the emulator over real HTTP: the happy path and every 4xx.

Each test gets its own emulator process (fast clock: pending 0.2 s, processing
0.5 s) so counts, credits and the active-jobs limit are its own.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from crust_assets.crustdata import (
    API_VERSION,
    FIELDS,
    AuthenticationError,
    BatchStatus,
    CrustdataClient,
    Email,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TooManyActiveJobsError,
)
from crust_assets.crustdata.client import SUBMIT_PATH
from crust_assets.emulator import EmulatorProcess, synthetic_contacts


def profile_urls(n: int, prefix: str = "client-api") -> list[str]:
    return [f"https://www.linkedin.com/in/{prefix}-{i}" for i in range(n)]


def make_client(emulator: EmulatorProcess, **kw: object) -> CrustdataClient:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("backoff_base", 0.05)
    return CrustdataClient(emulator.api_key, emulator.base_url, **kw)  # type: ignore[arg-type]


def expected_emails(values: list[dict[str, str]]) -> list[Email]:
    return [Email(email=v["email"], status=v["status"]) for v in values]


def test_submit_poll_and_read_results(emulator: EmulatorProcess) -> None:
    urls = profile_urls(6)
    fields = ["business_email", "personal_contact_info"]
    with make_client(emulator) as client:
        submitted = client.submit(urls, fields)
        assert submitted.status == "pending"
        assert submitted.identifier_count == submitted.entities_requested == 6
        assert submitted.status_url == f"/batch/{submitted.batch_id}"

        first = client.status(submitted.batch_id)
        assert first.is_active and not first.is_terminal and first.part_urls == []

        batch = client.wait_until_terminal(submitted.batch_id, poll_interval=0.1, timeout=10)
        assert batch.status == "completed" and batch.is_terminal
        assert batch.result_count == 6 and batch.identifier_count == 6
        assert batch.created_at is not None and batch.completed_at is not None
        assert batch.created_at.tzinfo is not None

        records = list(client.iter_results(batch))
    # One record per URL, in file order, matching the emulator's deterministic data.
    assert [r.profile_url for r in records] == urls
    for record, url in zip(records, urls, strict=True):
        expected = synthetic_contacts(url, fields)
        assert record.person_id == expected["internal_id"]
        assert record.business_emails == expected_emails(expected["data"]["business_email"])
        pci = expected["data"]["personal_contact_info"]
        assert record.personal_emails == expected_emails(pci["personal_emails"])
        assert record.phone_numbers == pci["phone_numbers"]
    sub = emulator.admin.submissions()
    assert [s["batch_id"] for s in sub] == [submitted.batch_id]
    assert sub[0]["fields"] == fields and sub[0]["urls"] == urls


def test_sub_field_request_leaves_other_fields_none(emulator: EmulatorProcess) -> None:
    urls = profile_urls(4, "phones-only")
    with make_client(emulator) as client:
        batch_id = client.submit(urls, ["personal_contact_info.phone_numbers"]).batch_id
        batch = client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)
        records = list(client.iter_results(batch)) if batch.result_count else []
    for record in records:
        assert record.business_emails is None and record.personal_emails is None
        assert isinstance(record.phone_numbers, list)


def test_list_batches_pages_lazily_and_caps_total(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    with make_client(emulator) as client:
        ids = [
            client.submit(profile_urls(1, f"list-{i}"), ["business_email"]).batch_id
            for i in range(5)
        ]
        newest_first = list(reversed(ids))

        assert [b.batch_id for b in client.list_batches(page_size=2)] == newest_first
        assert [b.batch_id for b in client.list_batches(limit=3, page_size=2)] == newest_first[:3]
        assert list(client.list_batches(limit=0)) == []

        caplog.clear()
        with caplog.at_level(logging.INFO, logger="httpx"):
            lazy = client.list_batches(page_size=2)
            assert [b.batch_id for b in itertools.islice(lazy, 3)] == newest_first[:3]
        list_calls = [
            r for r in caplog.records if r.name == "httpx" and "/batch?" in r.getMessage()
        ]
        assert len(list_calls) == 2  # the third page was never requested

        for batch_id in ids:
            client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)
        completed = list(client.list_batches(status="completed", page_size=100))
        assert {b.batch_id for b in completed} == set(ids)
        assert all(isinstance(b, BatchStatus) and b.part_urls for b in completed)
        assert list(client.list_batches(status="pending")) == []


def test_unknown_batch_is_not_found(emulator: EmulatorProcess) -> None:
    with make_client(emulator) as client, pytest.raises(NotFoundError) as info:
        client.status("00000000-0000-4000-8000-000000000000")
    assert info.value.status_code == 404
    assert "Batch not found" in str(info.value)


def test_missing_and_wrong_keys_are_authentication_errors(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(api_key="the-right-key")
    started = time.monotonic()
    with (
        CrustdataClient(None, emulator.base_url) as client,
        pytest.raises(AuthenticationError, match="Missing API key") as info,
    ):
        client.submit(profile_urls(1), ["business_email"])
    assert info.value.status_code == 401
    with CrustdataClient("the-wrong-key", emulator.base_url) as client:
        with pytest.raises(AuthenticationError, match="Invalid API key"):
            client.status("00000000-0000-4000-8000-000000000000")
        with pytest.raises(AuthenticationError):
            list(client.list_batches())
    assert time.monotonic() - started < 2.0  # 401 is never retried
    assert emulator.admin.submissions() == []


def test_bad_request_carries_details(emulator: EmulatorProcess) -> None:
    with make_client(emulator) as client:
        with pytest.raises(InvalidRequestError) as info:
            client.submit(
                ["https://www.linkedin.com/in/ok-person", "https://www.linkedin.com/company/acme"],
                ["business_email"],
            )
        err = info.value
        assert err.status_code == 400 and err.error_type == "invalid_request_error"
        assert err.details["invalid_identifiers"] == ["https://www.linkedin.com/company/acme"]

    # The client refuses unknown fields itself; send one anyway, as another client could, to
    # check the server names the fields it accepts.
    answer = httpx.post(
        emulator.base_url + SUBMIT_PATH,
        json={"professional_network_profile_urls": profile_urls(1), "fields": ["x"]},
        headers={"authorization": f"Bearer {emulator.api_key}", "x-api-version": API_VERSION},
        timeout=5.0,
    )
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["metadata"]["available_fields"] == list(FIELDS)
    assert "Invalid field" in error["message"]
    assert emulator.admin.submissions() == []


@pytest.mark.parametrize("status", [402, 403])
def test_insufficient_credits(emulator: EmulatorProcess, status: int) -> None:
    emulator.admin.config(insufficient_credits_status=status)
    emulator.admin.set_balance(0)
    started = time.monotonic()
    with make_client(emulator) as client, pytest.raises(InsufficientCreditsError) as info:
        client.submit(profile_urls(2), ["business_email"])
    assert time.monotonic() - started < 1.0  # never retried
    err = info.value
    assert err.status_code == status
    assert isinstance(err, PermissionDeniedError)
    assert err.error_type == "insufficient_credits" and err.details == {"balance": 0}
    assert emulator.admin.submissions() == []


def test_sixth_active_job_is_too_many_and_not_retried(emulator: EmulatorProcess) -> None:
    emulator.admin.config(pending_seconds=60)  # keep the first five active
    with make_client(emulator, max_attempts=5, max_retry_seconds=30) as client:
        for i in range(5):
            client.submit(profile_urls(1, f"slot-{i}"), ["business_email"])
        started = time.monotonic()
        with pytest.raises(TooManyActiveJobsError) as info:
            client.submit(profile_urls(1, "slot-6"), ["business_email"])
        assert time.monotonic() - started < 1.0
    err = info.value
    assert err.status_code == 429 and err.error_type == "too_many_active_jobs"
    assert err.details == {"active_jobs": 5, "max_active_jobs": 5}
    assert len(emulator.admin.submissions()) == 5

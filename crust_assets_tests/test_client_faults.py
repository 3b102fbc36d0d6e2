"""Retries, budgets and the non-idempotent submit, against the emulator's fault injection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from crust_assets.crustdata import (
    AmbiguousSubmissionError,
    CrustdataClient,
    RateLimitedError,
    ServerError,
    TooManyActiveJobsError,
    TransportError,
    find_lost_submit,
)
from crust_assets.crustdata.lost_submit import LostSubmitLookup
from crust_assets.emulator import EmulatorProcess, free_port


def profile_urls(n: int, prefix: str = "client-faults") -> list[str]:
    return [f"https://www.linkedin.com/in/{prefix}-{i}" for i in range(n)]


def look_up(client: CrustdataClient, error: AmbiguousSubmissionError) -> LostSubmitLookup:
    """The lost submit looked for in the emulator's GET /batch, with 2 s of clock skew."""
    return find_lost_submit(
        client.list_batches(),
        sent_from=error.window_start,
        sent_until=error.window_end,
        identifier_count=error.identifier_count,
        skew_seconds=2.0,
    )


def make_client(emulator: EmulatorProcess, **kw: object) -> CrustdataClient:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("backoff_base", 0.05)
    kw.setdefault("backoff_max", 0.2)
    return CrustdataClient(emulator.api_key, emulator.base_url, **kw)  # type: ignore[arg-type]


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("crust_assets.crustdata") and "retry" in r.getMessage()
    ]


def test_server_errors_are_retried_then_succeed(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    # Seeded: the first call draws a 5xx; about half of all calls fail.
    emulator.admin.set_faults(error_rate=0.5, seed=1)
    caplog.set_level(logging.WARNING, logger="crust_assets.crustdata")
    with make_client(emulator, max_attempts=12, max_retry_seconds=20) as client:
        batch_id = client.submit(profile_urls(3), ["business_email"]).batch_id
        batch = client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=20)
        assert len(list(client.iter_results(batch))) == 3
    assert retry_warnings(caplog), "expected at least one retried 5xx"
    assert any("HTTP 50" in w for w in retry_warnings(caplog))
    # The 5xx fault answers before the job exists, so retrying the submit made one job.
    assert [s["batch_id"] for s in emulator.admin.submissions()] == [batch_id]


def test_server_errors_beyond_attempts_raise_server_error(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(error_rate=1.0)
    with make_client(emulator, max_attempts=3) as client, pytest.raises(ServerError) as info:
        client.status("00000000-0000-4000-8000-000000000000")
    assert info.value.status_code in (500, 502, 503)
    assert "gave up after 3 attempt(s)" in str(info.value)


def test_a_retry_that_would_overrun_the_budget_is_not_attempted(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.admin.set_faults(error_rate=1.0)
    caplog.set_level(logging.WARNING, logger="crust_assets.crustdata")
    with (
        make_client(emulator, max_attempts=10, max_retry_seconds=0.0) as client,
        pytest.raises(ServerError, match="gave up after 1 attempt"),
    ):
        client.submit(profile_urls(1), ["business_email"])
    assert retry_warnings(caplog) == []
    assert emulator.admin.submissions() == []


def test_rate_limit_waits_for_the_reset_then_succeeds(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.admin.set_faults(rate_limit_burst=2, rate_limit_reset_seconds=0.3)
    caplog.set_level(logging.WARNING, logger="crust_assets.crustdata")
    with make_client(emulator, max_attempts=5) as client:
        started = time.monotonic()
        submitted = client.submit(profile_urls(2), ["business_email"])
        elapsed = time.monotonic() - started
    assert submitted.identifier_count == 2
    # Two 429s, each honoured: at least 2 x 0.3 s (plus jitter), far less than Retry-After=1.
    assert 0.6 <= elapsed < 2.0
    assert len(retry_warnings(caplog)) == 2
    assert emulator.admin.faults()["rate_limit_burst"] == 0
    assert len(emulator.admin.submissions()) == 1


def test_rate_limit_longer_than_the_budget_raises_rate_limited(
    emulator: EmulatorProcess,
) -> None:
    emulator.admin.set_faults(rate_limit_burst=1, rate_limit_reset_seconds=5)
    started = time.monotonic()
    with (
        make_client(emulator, max_retry_seconds=2.0) as client,
        pytest.raises(RateLimitedError) as info,
    ):
        client.status("00000000-0000-4000-8000-000000000000")
    assert time.monotonic() - started < 1.0  # did not sleep 5 s first
    err = info.value
    assert err.status_code == 429 and err.retry_after == 5.0
    assert not isinstance(err, TooManyActiveJobsError)


def test_hung_get_is_retried_after_a_read_timeout(emulator: EmulatorProcess) -> None:
    with make_client(emulator) as client:
        batch_id = client.submit(profile_urls(1), ["business_email"]).batch_id
    emulator.admin.set_faults(hang_next_calls=1, hang_seconds=1.5)
    with make_client(emulator, timeout=0.3) as client:
        started = time.monotonic()
        assert client.status(batch_id).batch_id == batch_id
        assert time.monotonic() - started < 1.2  # did not wait out the hang


def test_lost_submit_answer_is_ambiguous_and_reconciles_to_the_created_job(
    emulator: EmulatorProcess,
) -> None:
    with make_client(emulator) as client:
        earlier = client.submit(profile_urls(2, "earlier"), ["business_email"]).batch_id
    emulator.admin.set_faults(delay_next_submits=1, submit_delay_seconds=1.0)
    urls = profile_urls(3, "ambiguous")
    fields = ["business_email", "personal_contact_info.phone_numbers"]
    with make_client(emulator, timeout=0.3, max_attempts=5) as client:
        before = datetime.now().astimezone()
        with pytest.raises(AmbiguousSubmissionError) as info:
            client.submit(urls, fields)
        err = info.value
        assert before <= err.window_start <= err.window_end
        assert err.identifier_count == 3 and err.fields == tuple(fields)
        assert "not retried" in str(err) and "ReadTimeout" in str(err)

        # Not retried: exactly one job was created (plus the earlier, unrelated one).
        submissions = emulator.admin.submissions()
        assert len(submissions) == 2
        created = submissions[-1]
        assert created["urls"] == urls

        found = look_up(client, err).match
        assert found is not None and found.batch_id == created["batch_id"] != earlier
        assert look_up(client, err).candidates == (found,)


def test_reconcile_finds_nothing_or_refuses_to_guess(emulator: EmulatorProcess) -> None:
    with make_client(emulator) as client:
        start = datetime.now().astimezone()
        a = client.submit(profile_urls(2, "twin-a"), ["business_email"]).batch_id
        b = client.submit(profile_urls(2, "twin-b"), ["business_email"]).batch_id
        end = datetime.now().astimezone()

        def lost(count: int) -> AmbiguousSubmissionError:
            return AmbiguousSubmissionError(
                "lost",
                window_start=start,
                window_end=end,
                identifier_count=count,
                fields=("business_email",),
            )

        nothing = look_up(client, lost(7))  # no job of that size
        assert nothing.match is None and not nothing.ambiguous and nothing.candidates == ()
        twins = look_up(client, lost(2))  # two jobs of that size in the window
        assert twins.ambiguous and twins.match is None
        assert {job.batch_id for job in twins.candidates} == {a, b}


def test_connect_errors_on_submit_are_retried_until_the_server_is_up(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(start=False, port=free_port())
    starter = threading.Timer(0.5, emulator.start)
    starter.start()
    try:
        with make_client(emulator, max_attempts=40, max_retry_seconds=15.0) as client:
            submitted = client.submit(profile_urls(1), ["business_email"])
    finally:
        starter.join()
    assert [s["batch_id"] for s in emulator.admin.submissions()] == [submitted.batch_id]


def test_connection_refused_raises_transport_error_after_retries() -> None:
    port = free_port()  # nothing listens there
    with CrustdataClient(
        "k", f"http://127.0.0.1:{port}", max_attempts=3, backoff_base=0.01
    ) as client:
        with pytest.raises(TransportError, match="could not connect") as info:
            client.submit(profile_urls(1), ["business_email"])
        assert "gave up after 3 attempt(s)" in str(info.value)
        with pytest.raises(TransportError):
            client.status("00000000-0000-4000-8000-000000000000")

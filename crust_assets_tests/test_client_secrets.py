"""No API key and no pre-signed signature in any log, repr, exception text or traceback.

The emulator requires one distinctive key; a full submit/poll/download run plus
the error paths (wrong key, 404, rate limit, expired URL, truncated download,
lost submit answer) run with every logger at DEBUG, captured both by caplog and
by a plain stderr handler (what ``logging.basicConfig`` users would see).
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator

import pytest

from crust_assets.crustdata import (
    AmbiguousSubmissionError,
    AuthenticationError,
    CrustdataClient,
    CrustdataError,
    DownloadError,
    InvalidRequestError,
    NotFoundError,
)
from crust_assets.crustdata.redact import SecretScrubber, url_secrets
from crust_assets.emulator import EmulatorProcess

KEY = "sk-test-UNMISTAKABLE-7f3a"
SIGNATURE = re.compile(r"X-Amz-Signature=(?!<redacted>)", re.IGNORECASE)


@pytest.fixture
def stderr_logging() -> Iterator[None]:
    """Root logger at DEBUG with a handler on (pytest-captured) stderr."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def assert_clean(text: str, what: str) -> None:
    assert KEY not in text, f"API key leaked into {what}"
    assert not SIGNATURE.search(text), f"pre-signed URL signature leaked into {what}"


def test_no_key_or_signature_anywhere(
    emulator_factory: Callable[..., EmulatorProcess],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    stderr_logging: None,
) -> None:
    emulator = emulator_factory(api_key=KEY, url_expiry_seconds=2)
    assert emulator.api_key == KEY
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    urls = [f"https://www.linkedin.com/in/secret-test-{i}" for i in range(4)]

    client = CrustdataClient(KEY, emulator.base_url, timeout=5.0, backoff_base=0.05)
    with client:
        # Full run: submit, poll, download (signed URLs go through httpx's request log).
        batch_id = client.submit(urls, ["business_email", "personal_contact_info"]).batch_id
        batch = client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)
        assert batch.download_url and "X-Amz-Signature=" in batch.download_url
        assert len(list(client.iter_results(batch))) == 4
        assert_clean(repr(batch), "repr(BatchStatus)")

        # Rate limited once (retried), then fine.
        emulator.admin.set_faults(rate_limit_burst=1, rate_limit_reset_seconds=0.1)
        client.status(batch_id)

        # Expired URL: refreshed through status().
        time.sleep(2.1)
        assert len(list(client.iter_results(batch))) == 4

        # Truncated download (every try, so the per-part retries give up): DownloadError
        # mentions the (redacted) URL.
        emulator.admin.set_faults(truncate_next_downloads=100)
        fresh = client.status(batch_id)
        with pytest.raises(DownloadError) as info:
            list(client.iter_results(fresh))
        errors.append(info.value)
        emulator.admin.set_faults(truncate_next_downloads=0)

        # Unknown batch.
        with pytest.raises(NotFoundError) as info:
            client.status("00000000-0000-4000-8000-000000000000")
        errors.append(info.value)

        # Lost submit answer.
        emulator.admin.set_faults(delay_next_submits=1, submit_delay_seconds=0.8)
        with CrustdataClient(KEY, emulator.base_url, timeout=0.3) as impatient:
            with pytest.raises(AmbiguousSubmissionError) as info:
                impatient.submit(urls[:1], ["business_email"])
            errors.append(info.value)
            assert_clean(repr(impatient), "repr(client)")

        assert_clean(repr(client), "repr(client)")
        assert_clean(repr(vars(client)), "vars(client)")

    # A wrong key: the error names neither key.
    wrong = "sk-test-WRONG-KEY-0000"
    with CrustdataClient(wrong, emulator.base_url) as other:
        with pytest.raises(AuthenticationError) as info:
            other.status(batch_id)
        errors.append(info.value)
        assert wrong not in repr(other)
    assert wrong not in str(info.value)

    for err in errors:
        assert isinstance(err, CrustdataError)
        assert_clean(str(err), f"str({type(err).__name__})")
        assert_clean(repr(err), f"repr({type(err).__name__})")
        formatted = "".join(traceback.format_exception(err))
        assert_clean(formatted, f"traceback of {type(err).__name__}")
        assert wrong not in formatted

    captured = capsys.readouterr()
    logged = caplog.text
    # The logs really did record the traffic (so the checks below are not vacuous).
    assert "HTTP Request: GET" in logged and "_files/" in logged
    assert "part-000.jsonl.gz?<redacted>" in logged
    assert "HTTP Request: GET" in captured.err
    for text, what in ((logged, "caplog"), (captured.out, "stdout"), (captured.err, "stderr")):
        assert_clean(text, what)
        assert wrong not in text


TOKEN = "whk-TOKEN-UNMISTAKABLE-93b1c0de"
HOOK = f"http://127.0.0.1:9/hooks/crustdata/{TOKEN}"


def assert_no_secret(value: object, what: str) -> None:
    text = repr(value)
    assert KEY not in text, f"API key leaked into {what}"
    assert TOKEN not in text and "/hooks/crustdata" not in text, f"token leaked into {what}"


def test_echoed_key_and_webhook_url_are_scrubbed(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    """A 400 and a failed job that echo the key and the webhook URL, over real HTTP."""
    emulator = emulator_factory(api_key=KEY, faults={"echo_secrets": True})
    urls = ["https://www.linkedin.com/in/echo-test"]
    with CrustdataClient(KEY, emulator.base_url, timeout=5.0) as client:
        emulator.admin.set_faults(reject_next_submits=1)
        with pytest.raises(InvalidRequestError) as info:
            client.submit(urls, ["business_email"], webhook_url=HOOK)
        error = info.value
        # The server did echo both (so the checks below are not vacuous) ...
        assert "webhook_url: http://127.0.0.1:9/***" in str(error)
        assert error.details["api_key"] == "***" and error.details["parameter"] == "webhook_url"
        assert error.details["webhook_url"] == "http://127.0.0.1:9/***"
        # ... and nothing of them reached the exception.
        for text, what in (
            (str(error), "str(error)"),
            ("".join(traceback.format_exception(error)), "traceback"),
            (error.details, "details"),
            (error.args, "args"),
        ):
            assert_no_secret(text, what)

        emulator.admin.set_faults(fail_next_jobs=1)
        batch_id = client.submit(urls, ["business_email"], webhook_url=HOOK).batch_id
        failed = client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)
        assert failed.status == "failed" and failed.error_message
        assert "request key ***, callback http://127.0.0.1:9/***" in failed.error_message
        assert_no_secret(failed, "status()")
        assert_no_secret(list(client.list_batches()), "list_batches()")


def test_a_configured_webhook_url_is_scrubbed_without_a_submit(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    """A poll-only client (a sensor tick that submits nothing) still knows the token."""
    emulator = emulator_factory(api_key=KEY, faults={"echo_secrets": True, "fail_next_jobs": 1})
    with CrustdataClient(KEY, emulator.base_url) as submitter:
        batch_id = submitter.submit(
            ["https://www.linkedin.com/in/echo-poll"], ["business_email"], webhook_url=HOOK
        ).batch_id
    with CrustdataClient(KEY, emulator.base_url, secrets=[HOOK]) as poller:
        failed = poller.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)
    assert failed.error_message and "callback http://127.0.0.1:9/***" in failed.error_message
    assert_no_secret(failed, "status()")
    with CrustdataClient(KEY, emulator.base_url) as unaware:  # proves the echo is real
        assert TOKEN in (unaware.status(batch_id).error_message or "")


def test_scrubber_masks_known_values_keeps_ordinary_words() -> None:
    scrubber = SecretScrubber(KEY, HOOK, None, "")
    text = (
        f"key {KEY}; hook {HOOK}; token alone {TOKEN}; json-escaped "
        f"{HOOK.replace('/', chr(92) + '/')}; hooks and crustdata are words"
    )
    clean = scrubber.text(text)
    assert KEY not in clean and TOKEN not in clean
    assert "hook http://127.0.0.1:9/***;" in clean  # the host stays readable
    assert "hooks and crustdata are words" in clean
    assert scrubber.text("x" * 50, limit=10) == "x" * 10 + "..."
    value = {"list": [KEY, ("t", TOKEN)], KEY: 3, "n": None}
    assert scrubber.value(value) == {"list": ["***", ("t", "***")], "***": 3, "n": None}
    assert KEY not in repr(scrubber) and TOKEN not in repr(scrubber)


def test_secret_parts_of_a_url() -> None:
    pairs = dict(
        url_secrets("https://u:pass-word-123@h.example/a/tok-0123456789?sig=abcdefgh12&x=1")
    )
    assert pairs["/a/tok-0123456789"] == "/***"
    assert {"tok-0123456789", "abcdefgh12", "pass-word-123"} <= set(pairs)
    assert "1" not in pairs and "a" not in pairs  # short parts are not tokens

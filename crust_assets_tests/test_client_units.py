"""Client pieces that need no server: redaction, retry timing, part verification, inputs."""

from __future__ import annotations

import gzip
import logging
import random
import tempfile

import pytest

from crust_assets.crustdata import (
    FIELD_CREDITS,
    FIELDS,
    BatchStatus,
    CrustdataClient,
    DownloadError,
    leaf_fields,
    max_credits_per_record,
    redact_text,
    redact_url,
)
from crust_assets.crustdata.download import open_decoded, verify_part
from crust_assets.crustdata.redact import RedactingLogFilter, install_log_redaction
from crust_assets.crustdata.retry import RetryPolicy, parse_retry_after

KEY = "sk-test-UNMISTAKABLE-7f3a"
SIGNED = (
    "https://bucket.s3.amazonaws.com/b1/part-000.jsonl.gz"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260528T100000Z"
    "&X-Amz-Expires=432000&X-Amz-Signature=deadbeefcafe"
)


# -- redaction -------------------------------------------------------------------------


def test_redact_url_drops_query_and_userinfo() -> None:
    assert redact_url(SIGNED) == "https://bucket.s3.amazonaws.com/b1/part-000.jsonl.gz?<redacted>"
    assert redact_url("https://user:pw@host/p?q=1") == "https://<redacted>@host/p?<redacted>"
    assert redact_url("http://127.0.0.1:8711/batch/x") == "http://127.0.0.1:8711/batch/x"


def test_redact_text_masks_urls_bearer_and_signature_params() -> None:
    text = f"GET {SIGNED} with authorization: Bearer {KEY} and X-Amz-Signature=abc123"
    out = redact_text(text)
    assert "deadbeefcafe" not in out and KEY not in out and "abc123" not in out
    assert "part-000.jsonl.gz?<redacted>" in out


def test_log_filter_redacts_httpx_style_records_and_is_idempotent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    install_log_redaction()
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        filters = [f for f in logging.getLogger(name).filters if isinstance(f, RedactingLogFilter)]
        assert len(filters) == 1, name
    with caplog.at_level(logging.DEBUG):
        # Same call shape as httpx's own request log line (URL passed as an argument).
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"', "GET", SIGNED, "HTTP/1.1", 200, "OK"
        )
    assert "X-Amz-Signature=" not in caplog.text
    assert "part-000.jsonl.gz?<redacted>" in caplog.text


# -- retry timing ----------------------------------------------------------------------


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"x-ratelimit-reset": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"x-ratelimit-reset": "1.5", "retry-after": "2"}) == 1.5
    assert parse_retry_after({"x-ratelimit-reset": "1000000010"}, now=1_000_000_000) == 10.0
    http_date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after({"retry-after": http_date}, now=1445412480.0) == 10.0
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_full_jitter_backoff_is_bounded_and_spread() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0)
    rng = random.Random(1)
    for retry in range(1, 8):
        ceiling = min(4.0, 0.5 * 2 ** (retry - 1))
        delays = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert min(delays) < ceiling * 0.2 and max(delays) > ceiling * 0.8  # full jitter
    waits = [policy.rate_limit_delay(2.0, rng) for _ in range(100)]
    assert all(2.0 <= w <= 3.0 for w in waits) and len(set(waits)) > 1


def test_budget_refuses_a_retry_that_would_overrun() -> None:
    budget = RetryPolicy(max_attempts=3, max_retry_seconds=1.0).start()
    budget.note_attempt()
    assert budget.can_retry(0.5)
    assert not budget.can_retry(1.5)
    budget.note_attempt()
    budget.note_attempt()
    assert not budget.can_retry(0.0)


# -- part verification -----------------------------------------------------------------


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _file(data: bytes) -> tempfile.SpooledTemporaryFile[bytes]:
    fh = tempfile.SpooledTemporaryFile()  # noqa: SIM115 - returned; callers use `with`
    fh.write(data)
    return fh


JSONL = b'{"original_identifier": "u1", "data": {}}\n{"original_identifier": "u2", "data": {}}\n'


@pytest.mark.parametrize(
    "body",
    [_gz(JSONL), JSONL, _gz(_gz(JSONL)), _gz(JSONL[:30]) + _gz(JSONL[30:])],
    ids=["gzip", "plain", "double-gzip", "multi-member"],
)
def test_verify_and_decode_accepts_gzip_plain_and_layers(body: bytes) -> None:
    with _file(body) as fh:
        verify_part(fh, batch_id="b", part="part-000.jsonl.gz", url="u")
        assert open_decoded(fh).read() == JSONL


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_gz(JSONL)[:-9], "truncated"),
        (_gz(JSONL)[: len(_gz(JSONL)) // 2], "truncated"),
        (_gz(JSONL)[:-8] + b"\x00\x00\x00\x00" + _gz(JSONL)[-4:], "corrupt"),  # CRC
        (
            _gz(JSONL)[:12] + bytes(b ^ 0xFF for b in _gz(JSONL)[12:20]) + _gz(JSONL)[20:],
            "corrupt",
        ),
        (b"\xff\xfe\xfd not text", "neither gzip nor UTF-8"),
    ],
    ids=["no-trailer", "half", "bad-crc", "flipped-bytes", "binary"],
)
def test_verify_rejects_truncated_and_corrupt_parts(body: bytes, reason: str) -> None:
    with _file(body) as fh, pytest.raises(DownloadError) as info:
        verify_part(fh, batch_id="b-1", part="part-003.jsonl.gz", url="https://h/p?<redacted>")
    message = str(info.value)
    assert reason in message and "b-1" in message and "part-003.jsonl.gz" in message
    assert (info.value.batch_id, info.value.part) == ("b-1", "part-003.jsonl.gz")


def test_open_decoded_streams_without_reading_everything() -> None:
    big = b"".join(b'{"original_identifier": "u%d"}\n' % i for i in range(50_000))
    with _file(_gz(big)) as fh:
        stream = open_decoded(fh)
        assert isinstance(stream, gzip.GzipFile)  # lazy decompression, not a bytes blob
        assert stream.readline() == b'{"original_identifier": "u0"}\n'
        assert fh.tell() < len(_gz(big))  # only the first block(s) were read


# -- models and input validation --------------------------------------------------------


def test_fields_and_credits() -> None:
    assert FIELDS == (
        "business_email",
        "personal_contact_info",
        "personal_contact_info.personal_emails",
        "personal_contact_info.phone_numbers",
    )
    assert FIELD_CREDITS == {"business_email": 1, "personal_emails": 2, "phone_numbers": 2}
    assert leaf_fields(["personal_contact_info"]) == {"personal_emails", "phone_numbers"}
    assert max_credits_per_record(FIELDS) == 5
    assert max_credits_per_record(["personal_contact_info.phone_numbers"]) == 2


def test_batch_status_properties_and_repr_hides_urls() -> None:
    doc = {
        "batch_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "status": "completed",
        "download_url": SIGNED,
        "download_urls": None,
        "created_at": "2026-05-28T10:00:00.123456Z",
        "some_new_field": 1,
    }
    batch = BatchStatus.model_validate(doc)
    assert batch.is_terminal and not batch.is_active
    assert batch.part_urls == [SIGNED] and batch.part_names == ["part-000.jsonl.gz"]
    assert batch.created_at is not None and batch.created_at.tzinfo is not None
    assert "Signature" not in repr(batch)
    pending = BatchStatus.model_validate(
        {"batch_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "status": "pending"}
    )
    assert pending.is_active and pending.part_urls == []


def test_inputs_are_validated_before_any_request() -> None:
    # Port 9 (discard) is closed: any request would fail with a transport error,
    # so getting ValueError proves nothing was sent.
    with CrustdataClient(KEY, "http://127.0.0.1:9", max_attempts=1) as client:
        url = "https://www.linkedin.com/in/ada"
        with pytest.raises(ValueError, match="at most 300"):
            client.submit([url] * 301, ["business_email"])
        with pytest.raises(ValueError, match="empty"):
            client.submit([], ["business_email"])
        with pytest.raises(ValueError, match="not a single string"):
            client.submit(url, ["business_email"])
        with pytest.raises(ValueError, match="unknown field"):
            client.submit([url], ["business_email", "work_email"])
        with pytest.raises(ValueError, match="fields is empty"):
            client.submit([url], [])
        with pytest.raises(ValueError, match="urls\\[1\\]"):
            client.submit([url, ""], ["business_email"])
        with pytest.raises(ValueError, match="page_size"):
            client.list_batches(page_size=101)
        with pytest.raises(ValueError, match="completed"):
            client.iter_results(
                BatchStatus(batch_id="0f8fad5b-d9cb-469f-a165-70867728950e", status="processing")
            )
        for bad_id in ("..", "../batch", "b-1", "0f8fad5b-d9cb-469f-a165-70867728950e\n", 7):
            with pytest.raises(ValueError, match="UUID"):
                client.status(bad_id)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        CrustdataClient(KEY, "ftp://example.com")


def test_repr_and_vars_never_show_the_key() -> None:
    client = CrustdataClient(KEY, "http://127.0.0.1:9")
    try:
        assert KEY not in repr(client)
        assert "api_key='***'" in repr(client)
        assert KEY not in repr(vars(client))
        assert KEY not in str(vars(client))
    finally:
        client.close()

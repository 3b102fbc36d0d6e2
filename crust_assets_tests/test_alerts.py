"""Alert texts are safe to post: millisecond tests of the redaction and the wording."""

from __future__ import annotations

from urllib.parse import quote

from crust_assets.alerts import (
    check_failure_message,
    cleared_message,
    env_secrets,
    reminder_message,
    run_failure_message,
    safe_text,
    tick_failure_message,
)
from crust_assets.crustdata.redact import redact_text

KEY = "sk-live-4f9a8b7c6d5e"


def test_secrets_pre_signed_queries_and_contact_values_never_pass() -> None:
    text = (
        f"GET https://store.example.com/results/part-0.jsonl.gz?X-Amz-Signature=abc123&exp=9 "
        f"failed with key {KEY} for ana.lopez@corp.example.com, phone +1 (415) 555-0100, "
        "https://www.linkedin.com/in/ana-lopez-42 and http://127.0.0.1:8712/hooks/crustdata/tok3n"
    )
    out = safe_text(text, [KEY, "http://127.0.0.1:8712/hooks/crustdata/tok3n", None, ""])
    for leaked in (KEY, "X-Amz-Signature", "abc123", "ana.lopez", "415", "ana-lopez-42", "tok3n"):
        assert leaked not in out, leaked
    assert "https://store.example.com/results/part-0.jsonl.gz?<redacted>" in out
    assert "<email>" in out and "<phone>" in out and "<profile URL>" in out and "***" in out


def test_ordinary_words_numbers_dates_and_ids_stay_readable() -> None:
    text = (
        "Plan 1a2b3c4d of 2026-12-01: 3 of 12 jobs failed (batch 7f3e9c1a-0b2d) at "
        "2026-12-01 10:05:00"
    )
    assert safe_text(text) == text


def test_one_line_and_bounded() -> None:
    out = safe_text("a\n  b\tc " + "x" * 1000, limit=50)
    assert out.startswith("a b c x") and len(out) == 50 and out.endswith("…")


def test_messages_name_what_failed_and_where() -> None:
    run = run_failure_message(
        "load_enriched_contacts", "0123456789ab", "2026-12-01", f"401 key {KEY}", [KEY]
    )
    assert run == (
        ":red_circle: Run 01234567 of load_enriched_contacts for 2026-12-01 failed: 401 key ***"
    )
    check = check_failure_message(
        "enriched_contacts", "enriched_contacts_on_time", None, "late: no input file", []
    )
    assert check.startswith(":warning: Check enriched_contacts_on_time of enriched_contacts failed")
    tick = tick_failure_message("contact_enrichment_sensor", "10:05 UTC", "key refused", [])
    assert "contact_enrichment_sensor failed its tick at 10:05 UTC: key refused" in tick


WEBHOOK_TOKEN = "9f3c2a7b41d8e6f05a1b2c3d4e5f6a7b"
WEBHOOK_URL = f"https://hooks.example.com/hooks/crustdata/{WEBHOOK_TOKEN}"


def test_the_webhook_token_is_masked_without_its_full_url() -> None:
    for text in (
        f"POST /hooks/crustdata/{WEBHOOK_TOKEN} refused",
        f"callback token {WEBHOOK_TOKEN} rejected",
        f"webhook_url={quote(WEBHOOK_URL, safe='')} invalid",
    ):
        assert WEBHOOK_TOKEN not in safe_text(text, [WEBHOOK_URL]), text


def test_the_webhook_token_variable_is_a_secret_read_from_the_environment() -> None:
    secrets = env_secrets({"CRUST_WEBHOOK_TOKEN": WEBHOOK_TOKEN})
    assert safe_text(f"token {WEBHOOK_TOKEN} refused", secrets) == "token *** refused"


def test_a_bearer_token_is_masked_even_when_it_is_not_the_known_key() -> None:
    out = safe_text("server said: authorization: Bearer sk-other-0123456789 invalid", [KEY])
    assert "sk-other-0123456789" not in out and "Bearer <redacted>" in out


def test_signatures_in_json_escaped_urls_and_bare_parameters_are_masked() -> None:
    escaped = (
        '{"url": "https:\\/\\/bucket.s3.amazonaws.com\\/r\\/part-0.jsonl.gz'
        '?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeefcafe"}'
    )
    bare = "signature mismatch: X-Amz-Signature=feedface0123 for part-0"
    for text in (escaped, bare):
        out = safe_text(text)
        for leaked in ("deadbeefcafe", "AKIAEXAMPLE", "feedface0123"):
            assert leaked not in out, out
    encoded = quote("https://bucket.s3.amazonaws.com/r/p.gz?X-Amz-Signature=deadbeefcafe", safe="")
    assert "deadbeefcafe" not in redact_text(f"bad url {encoded}")  # the client's helper too


def test_profile_urls_without_a_scheme_or_json_escaped_are_replaced() -> None:
    for text in (
        "no match for linkedin.com/in/ana-lopez-42",
        "no match for www.linkedin.com/in/ana-lopez-42",
        'no match for "https:\\/\\/www.linkedin.com\\/in\\/ana-lopez-42"',
    ):
        out = safe_text(text)
        assert "ana-lopez-42" not in out and "<profile URL>" in out, out


def test_reminder_and_cleared_messages_say_since_when() -> None:
    subject = "Sensor contact_enrichment_sensor"
    assert reminder_message(subject, "10:00 UTC", "11:00 UTC", "key refused") == (
        ":repeat: Sensor contact_enrichment_sensor still failing since 10:00 UTC "
        "(again at 11:00 UTC): key refused"
    )
    assert cleared_message(subject, "10:00 UTC", "11:30 UTC") == (
        ":large_green_circle: Sensor contact_enrichment_sensor no longer failing at 11:30 UTC "
        "(failing since 10:00 UTC)"
    )

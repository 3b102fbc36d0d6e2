"""Alert texts are safe to post: millisecond tests of the redaction and the wording."""

from __future__ import annotations

from crust_assets.alerts import (
    check_failure_message,
    run_failure_message,
    safe_text,
    tick_failure_message,
)

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

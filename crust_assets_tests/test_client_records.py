"""parse_result_line on hand-written lines: both record forms, loose values, errors.

No server needed: the parser is a pure function, and these lines are the
shapes the vendor's docs and a public client report (crustdata-api-notes.md).
"""

from __future__ import annotations

import json
import traceback

import pytest

from crust_assets.crustdata import Email, ResultParseError, ResultRecord, parse_result_line

URL = "https://www.linkedin.com/in/ada-lovelace"


def parse(line: str | bytes, line_number: int = 7) -> ResultRecord:
    return parse_result_line(
        line, batch_id="batch-123", part="part-001.jsonl.gz", line_number=line_number
    )


def test_envelope_record_with_every_field() -> None:
    line = json.dumps(
        {
            "original_identifier": URL,
            "internal_id": 4242,
            "data": {
                "business_email": [{"email": "ada@acme.com", "status": "deliverable"}],
                "personal_contact_info": {
                    "personal_emails": [{"email": "ada@gmail.com", "status": "catch_all"}],
                    "phone_numbers": ["+14155550123"],
                },
            },
        }
    )
    record = parse(line)
    assert record == ResultRecord(
        profile_url=URL,
        person_id=4242,
        business_emails=[Email(email="ada@acme.com", status="deliverable")],
        personal_emails=[Email(email="ada@gmail.com", status="catch_all")],
        phone_numbers=["+14155550123"],
    )


def test_flat_record_form() -> None:
    line = json.dumps(
        {
            "professional_network_url": URL,
            "person_id": 99,
            "business_email": [{"email": "ada@acme.com", "status": "invalid"}],
            "personal_contact_info": {"personal_emails": [], "phone_numbers": []},
        }
    )
    record = parse(line)
    assert record.profile_url == URL
    assert record.person_id == 99
    assert record.business_emails == [Email(email="ada@acme.com", status="invalid")]
    assert record.personal_emails == []
    assert record.phone_numbers == []


def test_missing_field_is_none_and_empty_field_is_empty_list() -> None:
    # Only business_email requested, nothing found; personal_contact_info not requested.
    record = parse(
        json.dumps(
            {"original_identifier": URL, "internal_id": None, "data": {"business_email": []}}
        )
    )
    assert record.business_emails == []
    assert record.personal_emails is None
    assert record.phone_numbers is None
    assert record.person_id is None


def test_sub_field_request_only_has_that_sub_key() -> None:
    line = json.dumps(
        {
            "original_identifier": URL,
            "internal_id": 1,
            "data": {"personal_contact_info": {"phone_numbers": ["+447700900123"]}},
        }
    )
    record = parse(line)
    assert record.business_emails is None
    assert record.personal_emails is None
    assert record.phone_numbers == ["+447700900123"]


def test_bare_string_emails_and_single_values_instead_of_lists() -> None:
    line = json.dumps(
        {
            "professional_network_url": URL,
            "person_id": "17",
            "business_email": "ada@acme.com",
            "personal_contact_info": {
                "personal_emails": ["ada@gmail.com", {"email": "ada2@gmail.com"}],
                "phone_numbers": "+14155550123",
            },
        }
    )
    record = parse(line)
    assert record.person_id == 17
    assert record.business_emails == [Email(email="ada@acme.com", status=None)]
    assert record.personal_emails == [
        Email(email="ada@gmail.com", status=None),
        Email(email="ada2@gmail.com", status=None),
    ]
    assert record.phone_numbers == ["+14155550123"]


def test_single_email_object_and_null_values() -> None:
    line = json.dumps(
        {
            "original_identifier": URL,
            "internal_id": 5,
            "data": {
                "business_email": {"email": "ada@acme.com", "status": "unknown"},
                "personal_contact_info": None,
            },
        }
    )
    record = parse(line)
    assert record.business_emails == [Email(email="ada@acme.com", status="unknown")]
    # Present-but-null means requested and nothing found.
    assert record.personal_emails == []
    assert record.phone_numbers == []


def test_unknown_keys_are_ignored_and_bytes_accepted() -> None:
    line = json.dumps(
        {
            "original_identifier": URL,
            "internal_id": 3,
            "confidence": 0.9,
            "data": {
                "business_email": [{"email": "a@b.co", "status": "deliverable", "source": "x"}],
                "job_title": "CTO",
            },
        }
    ).encode()
    record = parse(line + b"\n")
    assert record.business_emails == [Email(email="a@b.co", status="deliverable")]


def test_url_is_kept_byte_for_byte() -> None:
    odd = "https://www.linkedin.com/in/j%C3%BCrgen-m%C3%BCller"
    assert parse(json.dumps({"original_identifier": odd, "data": {}})).profile_url == odd


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"original_identifier": "https://www.linkedin.com/in/x", "data": {', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"internal_id": 1, "data": {"business_email": []}}', "no identifier"),
        ('{"original_identifier": "", "data": {}}', "no identifier"),
        ('{"original_identifier": "u", "data": {"business_email": [42]}}', "not an email"),
        ('{"original_identifier": "u", "data": {"business_email": [{"status": "x"}]}}', "no email"),
        ('{"original_identifier": "u", "data": {"personal_contact_info": "x"}}', "not an object"),
        ('{"original_identifier": "u", "internal_id": "abc", "data": {}}', "not an integer"),
        ('{"original_identifier": "u", "data": "oops"}', "not an object"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
)
def test_malformed_lines_raise_result_parse_error(line: str | bytes, reason: str) -> None:
    with pytest.raises(ResultParseError) as info:
        parse(line)
    err = info.value
    assert (err.batch_id, err.part, err.line_number) == ("batch-123", "part-001.jsonl.gz", 7)
    message = str(err)
    assert "batch-123" in message and "part-001.jsonl.gz" in message and "line 7" in message
    assert reason in message
    # No raw json traceback: the decoder error is not chained or mentioned.
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__
    formatted = "".join(traceback.format_exception(err))
    assert "JSONDecodeError" not in formatted

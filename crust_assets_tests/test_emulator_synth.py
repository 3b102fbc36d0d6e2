"""The synthetic data generator: deterministic, realistic fill, fields honoured.

Pure-function tests (no server needed): ``synthetic_contacts`` is what tests
and the pipeline use to compute the emulator's expected answers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from crust_assets.emulator import (
    FIELDS,
    leaf_fields,
    profile_key,
    record_credits,
    synthetic_contacts,
    synthetic_profile,
    to_flat,
)

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
EMAIL = re.compile(r"^[a-z0-9.]+@[a-z0-9.-]+\.[a-z]{2,}$")


def test_same_url_same_data_in_another_interpreter() -> None:
    url = "https://www.linkedin.com/in/cassandrebay"
    here = synthetic_contacts(url, FIELDS)
    code = (
        "import json; from crust_assets.emulator import synthetic_contacts, FIELDS;"
        f"print(json.dumps(synthetic_contacts({url!r}, FIELDS)))"
    )
    # A fresh interpreter with a different hash seed must agree (no use of hash()).
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(other.stdout) == here


def test_profile_key_ignores_url_cosmetics_but_not_member_id_case() -> None:
    same = {
        profile_key(u)
        for u in (
            "https://www.linkedin.com/in/Jane-Doe",
            "http://linkedin.com/in/jane-doe/",
            "https://de.linkedin.com/in/jane-doe?trk=x",
            "https://m.linkedin.com/in/jane-doe#about",
        )
    }
    assert same == {"in/jane-doe"}
    assert profile_key("https://www.linkedin.com/in/ACoAAB1x") != profile_key(
        "https://www.linkedin.com/in/ACoAAB1X"
    )
    assert synthetic_profile("https://www.linkedin.com/in/Jane-Doe") == synthetic_profile(
        "https://linkedin.com/in/jane-doe/"
    )


def test_fill_rates_are_realistic() -> None:
    profiles = [synthetic_profile(f"https://www.linkedin.com/in/rate-{i}") for i in range(4000)]
    n = len(profiles)
    empty = sum(p.is_empty for p in profiles) / n
    business = sum(bool(p.business_emails) for p in profiles) / n
    personal = sum(bool(p.personal_emails) for p in profiles) / n
    phones = sum(bool(p.phone_numbers) for p in profiles) / n
    assert 0.18 <= empty <= 0.27
    assert 0.55 <= business <= 0.66
    assert 0.30 <= personal <= 0.40
    assert 0.35 <= phones <= 0.45
    assert any(len(p.business_emails) == 2 for p in profiles)
    assert any(len(p.personal_emails) == 2 for p in profiles)
    assert any(len(p.phone_numbers) == 2 for p in profiles)
    statuses = Counter(
        e["status"] for p in profiles for e in (*p.business_emails, *p.personal_emails)
    )
    assert set(statuses) == {"deliverable", "catch_all", "invalid", "unknown"}
    for p in profiles:
        assert (p.internal_id is None) == (not p.found)
        assert p.found != p.is_empty
        assert all(E164.match(phone) for phone in p.phone_numbers)
        assert all(EMAIL.match(e["email"]) for e in (*p.business_emails, *p.personal_emails))
        if p.internal_id is not None:
            assert isinstance(p.internal_id, int) and 0 < p.internal_id < 2**63


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["business_email"], {"business_email": None}),
        (
            ["personal_contact_info"],
            {"personal_contact_info": {"personal_emails", "phone_numbers"}},
        ),
        (["personal_contact_info.personal_emails"], {"personal_contact_info": {"personal_emails"}}),
        (["personal_contact_info.phone_numbers"], {"personal_contact_info": {"phone_numbers"}}),
        (
            ["business_email", "personal_contact_info.phone_numbers", "personal_contact_info"],
            {"business_email": None, "personal_contact_info": {"personal_emails", "phone_numbers"}},
        ),
    ],
)
def test_requested_fields_exactly(fields: list[str], expected: dict[str, set[str] | None]) -> None:
    for i in range(50):
        url = f"https://www.linkedin.com/in/fields-{i}"
        record = synthetic_contacts(url, fields)
        assert record["original_identifier"] == url
        assert set(record["data"]) == set(expected)
        for key, sub in expected.items():
            if sub is not None:
                assert set(record["data"][key]) == sub
        flat = to_flat(record)
        assert flat["professional_network_url"] == url
        assert flat["person_id"] == record["internal_id"]
        assert record_credits(flat) == record_credits(record)


def test_credits_count_only_delivered_fields() -> None:
    def has_everything(url: str) -> bool:
        p = synthetic_profile(url)
        return bool(p.business_emails and p.personal_emails and p.phone_numbers)

    url = next(
        u
        for u in (f"https://www.linkedin.com/in/credit-{i}" for i in range(1000))
        if has_everything(u)
    )
    assert record_credits(synthetic_contacts(url, FIELDS)) == 5
    assert record_credits(synthetic_contacts(url, ["business_email"])) == 1
    assert record_credits(synthetic_contacts(url, ["personal_contact_info"])) == 4
    with pytest.raises(ValueError):
        leaf_fields(["mobile"])

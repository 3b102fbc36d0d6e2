"""Result files, pre-signed downloads and billing, checked over real HTTP."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from crust_assets.emulator import (
    FIELDS,
    EmulatorProcess,
    record_credits,
    synthetic_contacts,
    synthetic_profile,
)
from crust_assets_tests._emulator_http import (
    SEED_URLS,
    SUBMIT_PATH,
    api_client,
    download,
    profile_urls,
    records_of,
    submit,
    wait_for,
)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def _urls_where(predicate: Callable[[str], bool], count: int, prefix: str) -> list[str]:
    found = [u for u in profile_urls(2000, prefix) if predicate(u)]
    assert len(found) >= count
    return found[:count]


def test_envelope_records_honour_requested_fields(emulator: EmulatorProcess) -> None:
    # As submitted, byte for byte: mixed case and a trailing slash are echoed unchanged.
    urls = [*profile_urls(12), "https://www.linkedin.com/in/Mixed-Case-Slug/", SEED_URLS[0]]
    cases = {
        ("business_email",): {"business_email"},
        ("personal_contact_info",): {"personal_contact_info"},
        ("personal_contact_info.phone_numbers",): {"personal_contact_info"},
        tuple(FIELDS): {"business_email", "personal_contact_info"},
    }
    with api_client(emulator) as client:
        batches = {fields: submit(client, urls, fields)["batch_id"] for fields in cases}
        for fields, data_keys in cases.items():
            doc = wait_for(client, batches[fields], ["completed"])
            records = records_of(doc)
            assert records == [synthetic_contacts(url, fields) for url in urls]
            assert [r["original_identifier"] for r in records] == urls
            assert doc["result_count"] == len(urls)
            assert doc["entities_fulfilled"] == sum(1 for r in records if record_credits(r) > 0)
            for record in records:
                assert set(record) == {"original_identifier", "internal_id", "data"}
                assert set(record["data"]) == data_keys
                if fields == ("personal_contact_info.phone_numbers",):
                    assert set(record["data"]["personal_contact_info"]) == {"phone_numbers"}
                if fields == ("personal_contact_info",):
                    assert set(record["data"]["personal_contact_info"]) == {
                        "personal_emails",
                        "phone_numbers",
                    }
                profile = synthetic_profile(record["original_identifier"])
                assert record["internal_id"] == profile.internal_id
                if not profile.found:
                    assert record["internal_id"] is None


def test_results_are_split_into_parts(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    emulator = emulator_factory(part_size=4)
    urls = profile_urls(10, "parts")
    with api_client(emulator) as client:
        doc = wait_for(client, submit(client, urls, FIELDS)["batch_id"], ["completed"])
    assert doc["result_count"] == 10
    names = [urlsplit(u).path.rsplit("/", 1)[1] for u in doc["download_urls"]]
    assert names == ["part-000.jsonl.gz", "part-001.jsonl.gz", "part-002.jsonl.gz"]
    assert doc["download_url"] == doc["download_urls"][0]
    sizes = [len(gzip.decompress(download(u).content).splitlines()) for u in doc["download_urls"]]
    assert sizes == [4, 4, 2]
    assert [r["original_identifier"] for r in records_of(doc)] == urls


def test_presigned_download_behaves_like_an_object_store(emulator: EmulatorProcess) -> None:
    with api_client(emulator) as client:
        doc = wait_for(client, submit(client, SEED_URLS)["batch_id"], ["completed"])
    url = doc["download_url"]
    ok = download(url)
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in ok.headers
    assert ok.content[:2] == b"\x1f\x8b"
    assert len(gzip.decompress(ok.content).splitlines()) == 2

    rejected = download(url, authorization=f"Bearer {emulator.api_key}")
    assert rejected.status_code == 400
    assert "<Code>InvalidArgument</Code>" in rejected.text
    assert "Only one auth mechanism allowed" in rejected.text

    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    for bad_url in (
        _with_query(url, **{"X-Amz-Signature": tampered}),
        _with_query(url, **{"X-Amz-Expires": "999999"}),
        url.replace("part-000", "part-001"),
    ):
        response = download(bad_url)
        assert response.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    unsigned = download(url.split("?")[0])
    assert unsigned.status_code == 403
    assert "<Code>AccessDenied</Code>" in unsigned.text


def test_presigned_urls_expire_and_are_signed_fresh(emulator: EmulatorProcess) -> None:
    emulator.admin.config(url_expiry_seconds=1)
    with api_client(emulator) as client:
        batch_id = submit(client, SEED_URLS)["batch_id"]
        old = wait_for(client, batch_id, ["completed"])["download_url"]
        assert "X-Amz-Expires=1&" in old
        time.sleep(2.1)
        expired = download(old)
        assert expired.status_code == 403
        assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in expired.text
        fresh = client.get(f"/batch/{batch_id}").json()["download_url"]
    assert fresh != old
    assert download(fresh).status_code == 200


def test_all_empty_job_completes_with_result_count_zero_and_no_file(
    emulator: EmulatorProcess,
) -> None:
    nobody = _urls_where(lambda u: synthetic_profile(u).is_empty, 3, "ghost")
    no_phone = _urls_where(
        lambda u: (
            synthetic_profile(u).found
            and not synthetic_profile(u).phone_numbers
            and not synthetic_profile(u).personal_emails
        ),
        2,
        "np",
    )
    with api_client(emulator) as client:
        ids = [
            submit(client, urls, fields)["batch_id"]
            for urls, fields in ((nobody, FIELDS), (no_phone, ["personal_contact_info"]))
        ]
        for batch_id in ids:
            doc = wait_for(client, batch_id, ["completed"])
            assert doc["result_count"] == 0
            assert doc["entities_fulfilled"] == 0
            assert doc["download_url"] is not None
            missing = download(doc["download_url"])
            assert missing.status_code == 404
            assert "<Code>NoSuchKey</Code>" in missing.text
    submissions = emulator.admin.submissions()
    assert [s["credits_billed"] for s in submissions] == [0, 0]


def test_billing_matches_delivered_records(emulator: EmulatorProcess) -> None:
    before = emulator.admin.billing()
    assert before == {"credits_used": 0, "balance": 1_000_000}
    jobs = [
        (profile_urls(40, "bill-a"), FIELDS),
        (profile_urls(25, "bill-b"), ["business_email"]),
        (profile_urls(25, "bill-c"), ["personal_contact_info.personal_emails"]),
    ]
    total = 0
    with api_client(emulator) as client:
        ids = [submit(client, urls, fields)["batch_id"] for urls, fields in jobs]
        per_job = []
        for batch_id in ids:
            records = records_of(wait_for(client, batch_id, ["completed"]))
            per_job.append(sum(record_credits(r) for r in records))
        total = sum(per_job)
    assert total > 0
    after = emulator.admin.billing()
    assert after == {"credits_used": total, "balance": 1_000_000 - total}
    assert [s["credits_billed"] for s in emulator.admin.submissions()] == per_job
    # Business email costs 1 per record that has one.
    expected_b = sum(1 for u in jobs[1][0] if synthetic_profile(u).business_emails)
    assert per_job[1] == expected_b


def test_exhausted_balance_is_402_or_403(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    body = {"professional_network_profile_urls": SEED_URLS, "fields": ["business_email"]}
    expected_error = {
        "error": {
            "type": "insufficient_credits",
            "message": "Insufficient credits",
            "metadata": {"balance": 0},
        }
    }
    emulator = emulator_factory(credits=0)
    with api_client(emulator) as client:
        response = client.post(SUBMIT_PATH, json=body)
        assert response.status_code == 402
        assert response.json() == expected_error
        emulator.admin.set_faults(insufficient_credits_status=403)
        assert client.post(SUBMIT_PATH, json=body).status_code == 403
        emulator.admin.reset_faults()
        emulator.admin.set_balance(10)
        assert client.post(SUBMIT_PATH, json=body).status_code == 200
    assert emulator.admin.submissions()[0]["identifier_count"] == 2

    configured = emulator_factory(credits=0, insufficient_credits_status=403)
    with api_client(configured) as client:
        response = client.post(SUBMIT_PATH, json=body)
        assert response.status_code == 403
        assert response.json() == expected_error


def test_credits_run_out_after_billing(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    emulator = emulator_factory(credits=1)
    urls = _urls_where(lambda u: bool(synthetic_profile(u).business_emails), 3, "rich")
    with api_client(emulator) as client:
        doc = wait_for(client, submit(client, urls, ["business_email"])["batch_id"])
        assert doc["status"] == "completed"
        response = client.post(
            SUBMIT_PATH,
            json={"professional_network_profile_urls": urls, "fields": ["business_email"]},
        )
    assert response.status_code == 402
    assert emulator.admin.billing() == {"credits_used": 3, "balance": 0}

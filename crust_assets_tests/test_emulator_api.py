"""The emulator's API endpoints answer the wire contract (submit, status, list, auth).

Everything goes over real HTTP to an emulator process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from crust_assets.emulator import FIELDS, EmulatorProcess
from crust_assets_tests._emulator_http import (
    SEED_FIELDS,
    SEED_URLS,
    SUBMIT_PATH,
    api_client,
    download,
    profile_urls,
    submit,
    unique_key,
    wait_for,
)

STATUS_KEYS = {
    "batch_id",
    "status",
    "entity",
    "action",
    "identifier_count",
    "result_count",
    "entities_requested",
    "entities_fulfilled",
    "created_at",
    "completed_at",
    "download_url",
    "download_urls",
    "error_message",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator for the tests that only validate requests; each uses its own key."""
    with EmulatorProcess(tmp_path_factory.mktemp("shared-emulator")) as process:
        yield process


def _parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def test_seed_submit_example_answers_in_the_seed_shape(emulator: EmulatorProcess) -> None:
    with api_client(emulator, "YOUR_API_KEY") as client:
        response = client.post(
            SUBMIT_PATH,
            headers={"content-type": "application/json"},
            json={"professional_network_profile_urls": SEED_URLS, "fields": SEED_FIELDS},
        )
    assert response.status_code == 200
    body = response.json()
    batch_id = body["batch_id"]
    assert str(uuid.UUID(batch_id)) == batch_id
    assert body == {
        "batch_id": batch_id,
        "status": "pending",
        "entity": "person",
        "action": "contact_enrich",
        "identifier_count": 2,
        "entities_requested": 2,
        "status_url": f"/batch/{batch_id}",
    }


def test_seed_status_example_answers_in_the_seed_shape(emulator: EmulatorProcess) -> None:
    with api_client(emulator, "YOUR_API_KEY") as client:
        batch_id = submit(client, SEED_URLS, SEED_FIELDS)["batch_id"]
        doc = wait_for(client, batch_id, ["completed"])
        # The seed's own GET example: status_url with both headers.
        again = client.get(f"/batch/{batch_id}").json()
    assert set(doc) == STATUS_KEYS
    assert doc["batch_id"] == batch_id
    assert (doc["entity"], doc["action"]) == ("person", "contact_enrich")
    assert doc["identifier_count"] == doc["entities_requested"] == 2
    assert doc["result_count"] == 2
    assert 0 <= doc["entities_fulfilled"] <= 2
    assert _parse_time(doc["completed_at"]) > _parse_time(doc["created_at"])
    assert doc["download_url"].startswith(f"{emulator.base_url}/_files/{batch_id}/part-000")
    assert "X-Amz-Expires=432000" in doc["download_url"]
    assert doc["download_urls"] == [doc["download_url"]]
    assert doc["error_message"] is None
    assert again["status"] == "completed"


def test_missing_and_empty_keys_are_401(shared: EmulatorProcess) -> None:
    body = {"professional_network_profile_urls": SEED_URLS, "fields": SEED_FIELDS}
    with api_client(shared, unique_key()) as client:
        for headers in ({"authorization": ""}, {"authorization": "Bearer"}):
            response = client.post(SUBMIT_PATH, json=body, headers=headers)
            assert response.status_code == 401
            assert response.json() == {"message": "Missing API key in request"}
        response = client.post(SUBMIT_PATH, json=body, headers={"authorization": "Basic abc"})
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid API key in request"}
        client.headers.pop("authorization")
        assert client.get("/batch").status_code == 401
        assert client.get(f"/batch/{uuid.uuid4()}").status_code == 401


def test_any_non_empty_key_is_accepted_without_env_key(shared: EmulatorProcess) -> None:
    assert not shared.requires_fixed_key
    with api_client(shared, unique_key()) as client:
        assert submit(client, SEED_URLS)["status"] == "pending"


def test_env_key_is_the_only_accepted_key(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(api_key="sk-right-key")
    assert emulator.api_key == "sk-right-key"
    with api_client(emulator, "sk-wrong-key") as client:
        response = client.post(
            SUBMIT_PATH,
            json={"professional_network_profile_urls": SEED_URLS, "fields": SEED_FIELDS},
        )
        assert response.status_code == 401
        assert response.json() == {"message": "Invalid API key in request"}
        assert client.get("/batch").status_code == 401
    with api_client(emulator) as client:
        assert submit(client, SEED_URLS)["status"] == "pending"


def test_x_api_version_is_required_on_submit_only(shared: EmulatorProcess) -> None:
    body = {"professional_network_profile_urls": SEED_URLS, "fields": SEED_FIELDS}
    with api_client(shared, unique_key(), version=False) as client:
        response = client.post(SUBMIT_PATH, json=body)
        assert response.status_code == 400
        assert response.json() == {"message": "Missing required header: x-api-version"}
        response = client.post(SUBMIT_PATH, json=body, headers={"x-api-version": "2024-01-01"})
        assert response.status_code == 400
        assert "x-api-version" in response.json()["message"]
        batch_id = client.post(
            SUBMIT_PATH, json=body, headers={"x-api-version": "2025-11-01"}
        ).json()["batch_id"]
        assert client.get(f"/batch/{batch_id}").status_code == 200
        assert client.get("/batch").status_code == 200


def test_300_urls_is_the_cap(shared: EmulatorProcess) -> None:
    with api_client(shared, unique_key()) as client:
        ok = submit(client, profile_urls(300), ["business_email"])
        assert ok["identifier_count"] == ok["entities_requested"] == 300
        response = client.post(
            SUBMIT_PATH,
            json={"professional_network_profile_urls": profile_urls(301), "fields": FIELDS[:1]},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["metadata"]["max_identifiers"] == 300
    assert "300" in error["message"]


def test_url_validation(shared: EmulatorProcess) -> None:
    with api_client(shared, unique_key()) as client:
        for urls in (None, [], "", " , "):
            body = {"fields": SEED_FIELDS}
            if urls is not None:
                body["professional_network_profile_urls"] = urls
            response = client.post(SUBMIT_PATH, json=body)
            assert response.status_code == 400, urls
            assert response.json()["error"]["type"] == "invalid_request_error"
        bad = ["https://www.linkedin.com/company/acme", "https://example.com/in/x", "garbage"]
        response = client.post(
            SUBMIT_PATH,
            json={"professional_network_profile_urls": [SEED_URLS[0], *bad], "fields": FIELDS},
        )
        assert response.status_code == 400
        assert response.json()["error"]["metadata"]["invalid_identifiers"] == bad
        # One comma-separated string is accepted too.
        accepted = submit(client, ", ".join(SEED_URLS), ["business_email"])
        assert accepted["identifier_count"] == 2


def test_field_validation_lists_available_fields(shared: EmulatorProcess) -> None:
    with api_client(shared, unique_key()) as client:
        for fields in (["business_email", "mobile_phone"], [], None, ["personal_emails"]):
            body: dict[str, object] = {"professional_network_profile_urls": SEED_URLS}
            if fields is not None:
                body["fields"] = fields
            response = client.post(SUBMIT_PATH, json=body)
            assert response.status_code == 400, fields
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert error["metadata"]["available_fields"] == [
                "business_email",
                "personal_contact_info",
                "personal_contact_info.personal_emails",
                "personal_contact_info.phone_numbers",
            ]
        for field in FIELDS:
            submit(client, SEED_URLS[:1], [field])


def test_five_active_jobs_per_key_then_a_slot_frees(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(pending_seconds=0.3, processing_seconds=0.7)
    with api_client(emulator, unique_key()) as client:
        first = submit(client, SEED_URLS)
        for _ in range(4):
            submit(client, SEED_URLS)
        response = client.post(
            SUBMIT_PATH,
            json={"professional_network_profile_urls": SEED_URLS, "fields": SEED_FIELDS},
        )
        assert response.status_code == 429
        assert response.json() == {
            "error": {
                "type": "too_many_active_jobs",
                "message": "Too many active batch jobs (max 5 per user)",
                "metadata": {"active_jobs": 5, "max_active_jobs": 5},
            }
        }
        for header in ("x-ratelimit-reset", "retry-after", "x-ratelimit-limit"):
            assert header not in response.headers
        # The limit is per key: another key is not affected.
        with api_client(emulator, unique_key()) as other:
            submit(other, SEED_URLS)
        wait_for(client, first["batch_id"])
        submit(client, SEED_URLS)


def test_lifecycle_pending_processing_completed(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(pending_seconds=0.4, processing_seconds=0.6)
    with api_client(emulator) as client:
        batch_id = submit(client, SEED_URLS)["batch_id"]
        seen: list[str] = []
        docs = {}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            doc = client.get(f"/batch/{batch_id}").json()
            if not seen or seen[-1] != doc["status"]:
                seen.append(doc["status"])
                docs[doc["status"]] = doc
            if doc["status"] == "completed":
                break
            time.sleep(0.05)
    assert seen == ["pending", "processing", "completed"]
    for status in ("pending", "processing"):
        doc = docs[status]
        assert doc["completed_at"] is None
        assert doc["download_url"] is None and doc["download_urls"] is None
        assert doc["error_message"] is None
        assert doc["result_count"] == 0
    done = docs["completed"]
    elapsed = _parse_time(done["completed_at"]) - _parse_time(done["created_at"])
    assert elapsed.total_seconds() == pytest.approx(1.0, abs=0.01)
    assert done["download_url"] is not None


def test_jitter_spreads_job_times_and_the_log_keeps_completion_and_first_download(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    """Latency benchmarks need jobs that end at different times, and both ends of the wait."""
    emulator = emulator_factory(
        pending_seconds=0.1, processing_seconds=0.2, processing_jitter_seconds=1.0
    )
    with api_client(emulator) as client:
        batch_ids = [submit(client, profile_urls(2, f"jit{i}"))["batch_id"] for i in range(5)]
        docs = [wait_for(client, batch_id) for batch_id in batch_ids]
        log = {row["batch_id"]: row for row in emulator.admin.submissions()}
        assert all(log[b]["first_download_at"] is None for b in batch_ids)
        assert download(docs[0]["download_urls"][0]).status_code == 200
        after = {row["batch_id"]: row for row in emulator.admin.submissions()}
        time.sleep(0.05)
        assert download(docs[0]["download_urls"][0]).status_code == 200
        again = {row["batch_id"]: row for row in emulator.admin.submissions()}
    spans = [
        (_parse_time(d["completed_at"]) - _parse_time(d["created_at"])).total_seconds()
        for d in docs
    ]
    assert all(0.3 - 0.01 <= span <= 1.3 + 0.01 for span in spans), spans
    assert max(spans) - min(spans) > 0.05, "five jobs with 1 s of jitter all took the same time"
    row = after[batch_ids[0]]
    assert row["terminal_at"] == docs[0]["completed_at"]
    downloaded = _parse_time(row["first_download_at"])
    assert downloaded >= _parse_time(row["terminal_at"])
    # The second download does not move it: it is the *first* fetch of the results.
    assert again[batch_ids[0]]["first_download_at"] == row["first_download_at"]
    assert all(after[b]["first_download_at"] is None for b in batch_ids[1:])


def test_jitter_is_a_run_time_setting(shared: EmulatorProcess) -> None:
    assert shared.admin.config(processing_jitter_seconds=0.5)["processing_jitter_seconds"] == 0.5
    assert shared.admin.config(processing_jitter_seconds=0)["processing_jitter_seconds"] == 0.0


def test_unknown_or_foreign_batch_is_404(shared: EmulatorProcess) -> None:
    with api_client(shared, unique_key()) as owner, api_client(shared, unique_key()) as other:
        batch_id = submit(owner, SEED_URLS)["batch_id"]
        for client, path in ((owner, f"/batch/{uuid.uuid4()}"), (other, f"/batch/{batch_id}")):
            response = client.get(path)
            assert response.status_code == 404
            assert response.json() == {"message": "Batch not found"}
        assert other.get("/batch").json()["jobs"] == []


def test_list_pages_most_recent_first_with_cursor(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(pending_seconds=0, processing_seconds=0)
    with api_client(emulator, unique_key()) as client:
        ids = [submit(client, SEED_URLS)["batch_id"] for _ in range(7)]
        pages = []
        params: dict[str, str | int] = {"limit": 3}
        while True:
            body = client.get("/batch", params=params).json()
            pages.append(body)
            if not body["has_more"]:
                assert body["next_cursor"] is None
                break
            params = {"limit": 3, "cursor": body["next_cursor"]}
        assert [len(page["jobs"]) for page in pages] == [3, 3, 1]
        listed = [job["batch_id"] for page in pages for job in page["jobs"]]
        assert listed == ids[::-1]
        job = pages[0]["jobs"][0]
        assert set(job) == STATUS_KEYS
        assert job["status"] == "completed" and job["download_url"]

        default = client.get("/batch").json()
        assert len(default["jobs"]) == 7 and default["has_more"] is False
        completed = client.get("/batch", params={"status": "completed"}).json()["jobs"]
        assert len(completed) == 7
        assert client.get("/batch", params={"status": "pending"}).json()["jobs"] == []
        for bad in (
            {"limit": 0},
            {"limit": 101},
            {"limit": "x"},
            {"status": "done"},
            {"cursor": "not-a-cursor"},
        ):
            response = client.get("/batch", params=bad)
            assert response.status_code == 400, bad
            assert response.json()["error"]["type"] == "invalid_request_error"


def test_openapi_describes_the_emulated_endpoints(shared: EmulatorProcess) -> None:
    with api_client(shared, unique_key()) as client:
        doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/batch/person/contact/enrich",
        "/batch",
        "/batch/{batch_id}",
        "/_files/{batch_id}/{part}",
        "/_emulator/faults",
    ):
        assert path in doc["paths"], path
    submit_schema = doc["components"]["schemas"]["SubmitRequest"]
    assert submit_schema["properties"]["fields"]["items"]["enum"] == list(FIELDS)
    assert set(doc["components"]["schemas"]["BatchStatus"]["required"]) == STATUS_KEYS


def test_unknown_route_and_admin_health(shared: EmulatorProcess) -> None:
    with api_client(shared, unique_key()) as client:
        response = client.get("/nope")
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}
        assert client.get("/_emulator/health").json() == {"ok": True}
        assert client.delete(SUBMIT_PATH).status_code == 405

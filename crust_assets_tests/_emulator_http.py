"""Plain-httpx helpers for the emulator tests (deliberately not the project's client).

Why not ``crust_assets.crustdata``: these tests pin down the wire contract
itself, so they speak raw HTTP and look at raw status codes, headers and
bytes.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from crust_assets.emulator import EmulatorProcess

API_VERSION = "2025-11-01"
SUBMIT_PATH = "/batch/person/contact/enrich"
SEED_URLS = [
    "https://www.linkedin.com/in/cassandrebay",
    "https://www.linkedin.com/in/ruchavora",
]
SEED_FIELDS = ["business_email", "personal_contact_info"]
TERMINAL = ("completed", "failed")


def profile_urls(count: int, prefix: str = "person") -> list[str]:
    return [f"https://www.linkedin.com/in/{prefix}-{i}" for i in range(count)]


def api_client(
    emulator: EmulatorProcess,
    key: str | None = None,
    *,
    timeout: float = 10.0,
    version: bool = True,
) -> httpx.Client:
    """An httpx client with bearer auth (``key`` or one the emulator accepts)."""
    headers = {"authorization": f"Bearer {key or emulator.api_key}"}
    if version:
        headers["x-api-version"] = API_VERSION
    return httpx.Client(
        base_url=emulator.base_url, headers=headers, timeout=timeout, trust_env=False
    )


def unique_key() -> str:
    """A fresh API key: jobs (and the 5-job limit) are per key."""
    return f"test-key-{uuid.uuid4().hex[:12]}"


def submit(
    client: httpx.Client,
    urls: Sequence[str] | str,
    fields: Sequence[str] = tuple(SEED_FIELDS),
    **extra: Any,
) -> dict[str, Any]:
    body = {"professional_network_profile_urls": urls, "fields": list(fields), **extra}
    response = client.post(SUBMIT_PATH, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(
    client: httpx.Client,
    batch_id: str,
    statuses: Iterable[str] = TERMINAL,
    timeout: float = 10.0,
) -> dict[str, Any]:
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/batch/{batch_id}")
        assert response.status_code == 200, response.text
        doc = dict(response.json())
        if doc["status"] in wanted:
            return doc
        assert time.monotonic() < deadline, f"batch stuck in {doc['status']}"
        time.sleep(0.05)


def download(url: str, **headers: str) -> httpx.Response:
    """GET a pre-signed URL the way an object-store client must: no API auth."""
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        return client.get(url, headers=headers)


def records_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Download and parse every part of a completed job, in order."""
    records: list[dict[str, Any]] = []
    for url in doc["download_urls"]:
        response = download(url)
        assert response.status_code == 200, response.text
        records += [json.loads(line) for line in gzip.decompress(response.content).splitlines()]
    return records

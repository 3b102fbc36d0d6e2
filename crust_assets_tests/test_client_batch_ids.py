"""Batch ids from the API are UUIDs, or the answer is refused before the id is used.

An id goes into request paths (``/batch/{id}``) and file names. A hostile or broken API
answering ``..`` (or a megabyte of text) must get a clear "unexpected response shape"
error naming the field, never a request to ``/batch/..``. A tiny HTTP server on 127.0.0.1
plays that API (the emulator only issues UUIDs).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crust_assets.crustdata import (
    BATCH_ID_PATTERN,
    AmbiguousSubmissionError,
    CrustdataClient,
    CrustdataError,
    is_batch_id,
)

GOOD = "3f2b8c1e-9a4d-4e6f-8b7a-0c1d2e3f4a5b"
LONG = "x" * 10_000


@dataclass
class FakeApi:
    """Answers every API call with ``doc`` (a status document) and records the paths asked."""

    doc: dict[str, Any] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    base_url: str = ""


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            fake.paths.append(self.path)
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            listing = self.path.startswith("/batch?")
            payload = {"jobs": [fake.doc], "has_more": False} if listing else fake.doc
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def test_the_pattern_is_the_canonical_uuid_form() -> None:
    assert is_batch_id(GOOD) and is_batch_id(GOOD.upper())
    for bad in ("..", "", GOOD + "\n", GOOD[:-1], GOOD.replace("-", ""), f"{{{GOOD}}}", None, 7):
        assert not is_batch_id(bad), bad
    assert BATCH_ID_PATTERN.fullmatch(GOOD)


@pytest.mark.parametrize("bad_id", ["..", "../../etc", "a/b", LONG])
def test_status_and_listing_refuse_a_non_uuid_id_from_the_api(api: FakeApi, bad_id: str) -> None:
    api.doc = {"batch_id": bad_id, "status": "completed", "result_count": 0}
    with CrustdataClient("k", api.base_url, max_attempts=1) as client:
        with pytest.raises(CrustdataError, match="unexpected response shape") as polled:
            client.status(GOOD)
        with pytest.raises(CrustdataError, match="unexpected response shape") as listed:
            list(client.list_batches())
    for error in (polled.value, listed.value):
        assert "batch_id: " in str(error) and "UUID" in str(error)
        assert len(str(error)) < 300  # a long id is named, not copied
        assert LONG not in str(error)
    assert api.paths == [f"/batch/{GOOD}", "/batch?limit=100"]  # the bad id was never a path


def test_a_submit_answered_with_a_non_uuid_id_is_ambiguous(api: FakeApi) -> None:
    """The job may exist (200), but its id cannot be used: reconcile, never poll ``..``."""
    api.doc = {"batch_id": "..", "status": "pending", "identifier_count": 1}
    client = CrustdataClient("k", api.base_url, max_attempts=1)
    with client, pytest.raises(AmbiguousSubmissionError) as info:
        client.submit(["https://www.linkedin.com/in/id-test"], ["business_email"])
    assert "unexpected response shape (batch_id: " in str(info.value)
    assert info.value.identifier_count == 1
    assert api.paths == ["/batch/person/contact/enrich"]


def test_status_refuses_a_non_uuid_argument_before_any_request(api: FakeApi) -> None:
    with CrustdataClient("k", api.base_url) as client:
        for bad in ("..", "../batch", f"{GOOD}/../x", ""):
            with pytest.raises(ValueError, match="UUID"):
                client.status(bad)
    assert api.paths == []

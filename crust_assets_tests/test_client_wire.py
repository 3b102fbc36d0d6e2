"""What the client puts on the wire, seen by a tiny recording HTTP server on 127.0.0.1.

The emulator checks some of this (it rejects a download that carries an
``authorization`` header, and a submit without ``x-api-version``); this server
records every request's headers so the rest is checked too: the API headers
on *every* API call, none of them on downloads, and result files served in
the encodings a real object store or CDN may use (``Content-Encoding: gzip``
over a ``.gz`` object, plain JSONL, httpx-decoded ``gzip``).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crust_assets.crustdata import API_VERSION, BatchStatus, CrustdataClient, DownloadError

KEY = "wire-test-key"
BATCH = "6f1c2b9e-3d4a-4c8e-9b7a-1e2f3a4b5c6d"
LINES = [
    {"original_identifier": "https://www.linkedin.com/in/wire-a", "internal_id": 1, "data": {}},
    {"original_identifier": "https://www.linkedin.com/in/wire-b", "internal_id": 2, "data": {}},
]
JSONL = b"".join(json.dumps(line).encode() + b"\n" for line in LINES)


@dataclass
class Recorder:
    """Requests seen (path, headers) and how to serve the result file."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    body: bytes = b""
    content_encoding: str | None = None
    base_url: str = ""
    # Statuses for the next downloads, consumed in order (then 200).
    file_statuses: list[int] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like any real API server

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            rec.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            rec.client_ports.append(self.client_address[1])
            if self.path.startswith("/_files/"):
                if rec.file_statuses:
                    status = rec.file_statuses.pop(0)
                    xml = f"<Error><Code>E{status}</Code><Message>nope</Message></Error>"
                    self._send(status, xml.encode(), {"content-type": "application/xml"})
                    return
                headers = {"content-type": "application/octet-stream"}
                if rec.content_encoding:
                    headers["content-encoding"] = rec.content_encoding
                self._send(200, rec.body, headers)
                return
            doc = {
                "batch_id": BATCH,
                "status": "completed",
                "result_count": 2,
                "download_url": (
                    f"{rec.base_url}/_files/{BATCH}/part-000.jsonl.gz?X-Amz-Signature=abc"
                ),
            }
            payload = {"jobs": [doc], "next_cursor": None, "has_more": False}
            body = json.dumps(payload if self.path.startswith("/batch?") else doc).encode()
            self._send(200, body, {"content-type": "application/json"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (gzip.compress(JSONL), None),  # S3 style: .gz bytes, no Content-Encoding
        (gzip.compress(gzip.compress(JSONL)), "gzip"),  # .gz object served with CE: gzip
        (gzip.compress(JSONL), "gzip"),  # CE: gzip over plain JSONL (a CDN compressing)
        (JSONL, None),  # plain JSONL
    ],
    ids=["gz-no-ce", "gz-object-with-ce", "ce-gzip-plain", "plain"],
)
def test_headers_on_api_calls_and_none_on_downloads(
    recorder: Recorder, body: bytes, encoding: str | None
) -> None:
    recorder.body, recorder.content_encoding = body, encoding
    with CrustdataClient(KEY, recorder.base_url) as client:
        batch = client.status(BATCH)
        assert [b.batch_id for b in client.list_batches()] == [BATCH]
        records = list(client.iter_results(batch))
    assert [r.person_id for r in records] == [1, 2]

    api = [(p, h) for p, h in recorder.requests if not p.startswith("/_files/")]
    downloads = [(p, h) for p, h in recorder.requests if p.startswith("/_files/")]
    assert len(api) == 2 and len(downloads) == 1
    for _, headers in api:
        assert headers["authorization"] == f"Bearer {KEY}"
        assert headers["x-api-version"] == API_VERSION
        assert headers["user-agent"].startswith("crust-assets/")
    path, headers = downloads[0]
    assert "X-Amz-Signature=abc" in path
    assert "authorization" not in headers and "x-api-version" not in headers
    assert headers["user-agent"].startswith("crust-assets/")


def test_one_pooled_connection_is_reused(recorder: Recorder) -> None:
    recorder.body = gzip.compress(JSONL)
    with CrustdataClient(KEY, recorder.base_url) as client:
        for _ in range(3):
            client.status(BATCH)
        list(client.list_batches())
    # Every API call came over the same TCP connection (same client port).
    assert len(recorder.client_ports) == 4 and len(set(recorder.client_ports)) == 1


def test_batch_status_from_wire_has_part_urls(recorder: Recorder) -> None:
    with CrustdataClient(KEY, recorder.base_url) as client:
        batch = client.status(BATCH)
    assert isinstance(batch, BatchStatus)
    assert batch.part_names == ["part-000.jsonl.gz"]


def test_refused_download_refreshes_urls_once_then_gives_up(recorder: Recorder) -> None:
    recorder.body = gzip.compress(JSONL)
    recorder.file_statuses = [403, 403, 403]
    with CrustdataClient(KEY, recorder.base_url) as client:
        batch = client.status(BATCH)
        with pytest.raises(DownloadError) as info:
            list(client.iter_results(batch))
    err = info.value
    assert err.status_code == 403 and err.part == "part-000.jsonl.gz"
    assert "after refreshing the download URLs" in str(err)
    assert "part-000.jsonl.gz?<redacted>" in str(err) and "abc" not in str(err)
    paths = [p.partition("?")[0] for p, _ in recorder.requests]
    # status, download (403), status again for fresh URLs, download (403), stop.
    part = f"/_files/{BATCH}/part-000.jsonl.gz"
    assert paths == [f"/batch/{BATCH}", part, f"/batch/{BATCH}", part]
    assert recorder.file_statuses == [403]


def test_bad_request_on_download_refreshes_and_succeeds(recorder: Recorder) -> None:
    recorder.body = gzip.compress(JSONL)
    recorder.file_statuses = [400]
    with CrustdataClient(KEY, recorder.base_url) as client:
        records = list(client.iter_results(client.status(BATCH)))
    assert len(records) == 2
    assert sum(p.startswith("/batch/") for p, _ in recorder.requests) == 2


def test_object_store_5xx_is_retried_without_refresh(recorder: Recorder) -> None:
    recorder.body = gzip.compress(JSONL)
    recorder.file_statuses = [503, 500]
    with CrustdataClient(KEY, recorder.base_url, backoff_base=0.01) as client:
        records = list(client.iter_results(client.status(BATCH)))
    assert len(records) == 2
    assert sum(p.startswith("/batch/") for p, _ in recorder.requests) == 1
    assert sum(p.startswith("/_files/") for p, _ in recorder.requests) == 3


def test_missing_object_is_a_download_error_not_retried(recorder: Recorder) -> None:
    recorder.file_statuses = [404]
    with CrustdataClient(KEY, recorder.base_url) as client:
        batch = client.status(BATCH)
        with pytest.raises(DownloadError, match="HTTP 404 E404"):
            list(client.iter_results(batch))
    assert sum(p.startswith("/_files/") for p, _ in recorder.requests) == 1

"""A hostile object store (and API) on 127.0.0.1 for the download tests.

Real HTTP over a real socket, so the client's streaming, timeouts, redirects and caps meet the
bytes the way they would meet a broken or malicious server. Each path is answered by a plain
function of the request and of how many times that path was asked for; the server counts
requests and bytes sent, so a test can tell what the client fetched and when it stopped reading.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

BATCH_ID = "3f2a0c1e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"


@dataclass
class Reply:
    """One answer: status, headers and a body (bytes, or chunks produced as they are sent)."""

    status: int = 200
    body: bytes | Iterator[bytes] = b""
    headers: dict[str, str] | None = None
    length: int | None = None  # Content-Length to declare; None = len(body) for bytes


Route = Callable[[int], Reply]  # (1-based request number of this path) -> reply


class HostileStore:
    """``with HostileStore() as store: store.route("/p", fn); url = store.url("/p")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                store._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str, signature: str = "sig-1") -> str:
        return f"{self.base_url}{path}?X-Amz-Signature={signature}"

    def route(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.hits[path] += 1
            number = self.hits[path]
        route = self.routes.get(path)
        reply = route(number) if route else Reply(404, b"no such path")
        body = reply.body
        try:
            handler.send_response(reply.status)
            for name, value in (reply.headers or {}).items():
                handler.send_header(name, value)
            length = reply.length if reply.length is not None else None
            if length is None and isinstance(body, bytes):
                length = len(body)
            if length is not None:
                handler.send_header("Content-Length", str(length))
            handler.end_headers()
            for chunk in [body] if isinstance(body, bytes) else body:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                with self._lock:
                    self.sent[path] += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: what the caps are for

    def __enter__(self) -> HostileStore:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- bodies -------------------------------------------------------------------------------------
def record_line(url: str) -> bytes:
    doc = {
        "original_identifier": url,
        "internal_id": 7,
        "data": {"business_email": [{"email": "a@example.com", "status": "deliverable"}]},
    }
    return json.dumps(doc).encode() + b"\n"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def members(data: bytes, count: int) -> bytes:
    """``count`` gzip members of ``data`` back to back: a valid gzip of ``count * data``.

    Builds a multi-GB bomb in milliseconds (compressing that much would take minutes).
    """
    return gzip.compress(data, compresslevel=9, mtime=0) * count


def status_doc(urls: list[str], result_count: int) -> bytes:
    doc = {
        "batch_id": BATCH_ID,
        "status": "completed",
        "result_count": result_count,
        "download_url": urls[0] if urls else None,
        "download_urls": urls,
    }
    return json.dumps(doc).encode()


def trickle(every: float, total: int = 10_000) -> Iterator[bytes]:
    """One byte every ``every`` seconds: each read is inside any read timeout above ``every``."""
    for _ in range(total):
        yield b"{"
        time.sleep(every)


def endless(chunk: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * chunk
    while True:
        yield block

"""An S3-compatible object store for tests: moto in server mode, a real HTTP endpoint on 127.0.0.1.

Why a server and not moto's in-process mock: s3fs (aiobotocore), DuckDB's fsspec bridge and boto3
must all reach the same store over real HTTP, exactly as they reach S3 in production; the only
thing that differs is AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from crust_assets.emulator.process import free_port

# Env for the store: dummy credentials, and nothing of the developer's own AWS setup.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "crust-test",
    "AWS_SECRET_ACCESS_KEY": "crust-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class MotoServer:
    """`python -m moto.server` on a free port, in its own process group; `stop()` ends the group."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1.0).status_code < 500:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server not up after {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def log_tail(self, limit: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-limit:]
        return ""


class BucketWatcher:
    """Lists a bucket over and over from a thread, recording every (key, size) it ever sees.

    It uses its own boto3 client (no s3fs listing cache): what it sees is what any reader of the
    bucket could have seen at that moment.
    """

    def __init__(self, bucket: str, interval: float = 0.01) -> None:
        import boto3

        self.bucket = bucket
        self.interval = interval
        self.client = boto3.client("s3")
        self.sizes: dict[str, set[int]] = {}
        self.listings = 0
        self.absent: dict[str, int] = {}  # key -> listings in which it was not there
        self.watch_for: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bucket-watcher", daemon=True)
        self._error: BaseException | None = None

    def _list(self) -> dict[str, int]:
        found: dict[str, int] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = int(item["Size"])
        return found

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                found = self._list()
                self.listings += 1
                for key, size in found.items():
                    self.sizes.setdefault(key, set()).add(size)
                for key in self.watch_for - set(found):
                    self.absent[key] = self.absent.get(key, 0) + 1
                self._stop.wait(self.interval)
        except BaseException as error:  # surfaced by stop(): a watcher that died saw nothing
            self._error = error

    def __enter__(self) -> BucketWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._error is not None:
            raise RuntimeError("bucket watcher failed") from self._error


@contextlib.contextmanager
def aws_env(endpoint_url: str) -> Iterator[None]:
    """Point every AWS client in this process at `endpoint_url`, with dummy credentials."""
    saved = {k: os.environ.get(k) for k in (*DUMMY_AWS_ENV, *UNSET_AWS_ENV, "AWS_ENDPOINT_URL")}
    os.environ.update(DUMMY_AWS_ENV, AWS_ENDPOINT_URL=endpoint_url)
    for key in UNSET_AWS_ENV:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

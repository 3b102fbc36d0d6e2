"""The emulator as a process: restarts, webhooks, logs, determinism and the CLI."""

from __future__ import annotations

import hashlib
import json
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crust_assets.emulator import EmulatorProcess, EmulatorStartError, synthetic_contacts
from crust_assets_tests._emulator_http import (
    SEED_FIELDS,
    SEED_URLS,
    api_client,
    download,
    profile_urls,
    records_of,
    submit,
    wait_for,
)


class _Receiver:
    """A tiny webhook receiver on 127.0.0.1 that fails its first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls.append(
                    {"path": self.path, "body": json.loads(body), "headers": dict(self.headers)}
                )
                status = 500 if len(receiver.calls) <= receiver.failures else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/crust?token=abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.calls) < count:
            assert time.monotonic() < deadline, f"only {len(self.calls)} webhook call(s)"
            time.sleep(0.05)
        return self.calls

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    yield server
    server.close()


def test_jobs_survive_a_restart(emulator_factory: Callable[..., EmulatorProcess]) -> None:
    # Long enough that a restart on a loaded machine still finds the job running.
    emulator = emulator_factory(pending_seconds=0.3, processing_seconds=5.0)
    port = emulator.port
    with api_client(emulator) as client:
        done = wait_for(client, submit(client, SEED_URLS)["batch_id"], ["completed"])
        running = submit(client, profile_urls(5, "restart"))
        before = client.get(f"/batch/{running['batch_id']}").json()
    emulator.admin.set_balance(5000)
    billing_before = emulator.admin.billing()
    old_pid = emulator.pid

    emulator.restart()
    assert emulator.port == port and emulator.pid != old_pid

    with api_client(emulator) as client:
        after = client.get(f"/batch/{running['batch_id']}").json()
        assert after["created_at"] == before["created_at"]
        assert after["status"] in ("pending", "processing")
        finished = wait_for(client, running["batch_id"], ["completed"])
        assert len(records_of(finished)) == 5
        again = client.get(f"/batch/{done['batch_id']}").json()
        assert again["completed_at"] == done["completed_at"]
        assert records_of(again) == records_of(done)
        listed = [job["batch_id"] for job in client.get("/batch").json()["jobs"]]
    assert listed == [running["batch_id"], done["batch_id"]]
    assert [s["batch_id"] for s in emulator.admin.submissions()] == listed[::-1]
    assert emulator.admin.billing()["balance"] <= billing_before["balance"]
    assert emulator.admin.billing()["credits_used"] >= billing_before["credits_used"]


def test_results_are_deterministic_across_restarts(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    urls = profile_urls(30, "determinism")
    emulator = emulator_factory(pending_seconds=0, processing_seconds=0.1)
    with api_client(emulator) as client:
        first = wait_for(client, submit(client, urls, SEED_FIELDS)["batch_id"], ["completed"])
        first_bytes = download(first["download_url"]).content
    emulator.restart()
    with api_client(emulator) as client:
        same = client.get(f"/batch/{first['batch_id']}").json()
        assert download(same["download_url"]).content == first_bytes  # never rewritten
        second = wait_for(client, submit(client, urls, SEED_FIELDS)["batch_id"], ["completed"])
        assert records_of(second) == records_of(first)
    # A different state dir (a different machine) computes the same data too.
    other = emulator_factory(pending_seconds=0, processing_seconds=0.1)
    with api_client(other) as client:
        third = wait_for(client, submit(client, urls, SEED_FIELDS)["batch_id"], ["completed"])
        assert records_of(third) == [synthetic_contacts(u, SEED_FIELDS) for u in urls]


def test_webhook_is_posted_when_the_job_ends(
    emulator: EmulatorProcess, receiver: _Receiver
) -> None:
    with api_client(emulator) as client:
        batch_id = submit(client, SEED_URLS, webhook_url=receiver.url)["batch_id"]
        call = receiver.wait_for_calls(1)[0]
        doc = client.get(f"/batch/{batch_id}").json()
    assert call["path"] == "/hooks/crust?token=abc"
    assert call["headers"]["Content-Type"] == "application/json"
    payload = call["body"]
    assert payload["batch_id"] == batch_id and payload["status"] == "completed"
    assert "download_url" not in payload and "download_urls" not in payload
    assert payload == {k: v for k, v in doc.items() if not k.startswith("download_url")}
    time.sleep(0.3)
    assert len(receiver.calls) == 1
    submission = emulator.admin.submissions()[0]
    assert submission["webhook_delivered"] is True and submission["webhook_attempts"] == 1


def test_webhook_is_retried_and_failed_jobs_notify_too(emulator: EmulatorProcess) -> None:
    receiver = _Receiver(failures=2)
    try:
        emulator.admin.set_faults(fail_next_jobs=1)
        with api_client(emulator) as client:
            submit(client, SEED_URLS, webhook_url=receiver.url)
            calls = receiver.wait_for_calls(3)
        assert all(c["body"]["status"] == "failed" for c in calls)
        assert calls[0]["body"]["error_message"]
        time.sleep(0.3)
        submission = emulator.admin.submissions()[0]
        assert submission["webhook_delivered"] is True and submission["webhook_attempts"] == 3
    finally:
        receiver.close()


def test_webhook_url_must_be_http(emulator: EmulatorProcess) -> None:
    with api_client(emulator) as client:
        response = client.post(
            "/batch/person/contact/enrich",
            json={
                "professional_network_profile_urls": SEED_URLS,
                "fields": SEED_FIELDS,
                "webhook_url": "ftp://example.com/x",
            },
        )
    assert response.status_code == 400
    assert response.json()["error"]["metadata"] == {"parameter": "webhook_url"}


def test_logs_never_show_the_key_or_a_signature(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    key = "sk-live-very-secret-0123456789"
    emulator = emulator_factory(api_key=key, pending_seconds=0, processing_seconds=0.1)
    with api_client(emulator) as client:
        doc = wait_for(client, submit(client, SEED_URLS)["batch_id"], ["completed"])
        client.get("/batch", params={"limit": 5})
    url = doc["download_url"]
    assert download(url).status_code == 200
    assert download(url, authorization=f"Bearer {key}").status_code == 400
    with api_client(emulator, "sk-wrong-but-also-secret") as wrong:
        assert wrong.get("/batch").status_code == 401
    emulator.stop()
    log = emulator.log_text()
    signature = url.split("X-Amz-Signature=")[1]
    for secret in (key, "sk-wrong-but-also-secret", signature, "X-Amz-Signature", "limit=5"):
        assert secret not in log
    assert f"GET /_files/{doc['batch_id']}/part-000.jsonl.gz 200" in log
    assert "POST /batch/person/contact/enrich 200" in log
    assert key not in repr(emulator)
    for path in emulator.state_dir.rglob("*"):
        if path.is_file() and not path.name.endswith(".gz"):
            assert key.encode() not in path.read_bytes(), path


def test_state_dir_layout_and_secret_permissions(emulator: EmulatorProcess) -> None:
    with api_client(emulator) as client:
        batch_id = wait_for(client, submit(client, SEED_URLS)["batch_id"], ["completed"])[
            "batch_id"
        ]
    secret = emulator.state_dir / "signing.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (emulator.state_dir / "emulator.sqlite3").is_file()
    parts = sorted(p.name for p in (emulator.state_dir / "results" / batch_id).iterdir())
    assert parts == ["part-000.jsonl.gz"]  # no temp files left behind


def test_config_admin_changes_new_jobs_only(emulator: EmulatorProcess) -> None:
    config = emulator.admin.config()
    assert config["pending_seconds"] == 0.2 and config["part_size"] == 1000
    assert "api_key" not in config
    with api_client(emulator) as client:
        emulator.admin.config(pending_seconds=0, processing_seconds=0, part_size=1)
        doc = wait_for(client, submit(client, SEED_URLS)["batch_id"], ["completed"])
        assert len(doc["download_urls"]) == 2
    with pytest.raises(Exception, match="part_size"):
        emulator.admin.config(part_size=0)
    with pytest.raises(Exception, match="unknown"):
        emulator.admin.config(api_key="x")


def test_start_failure_surfaces_the_log(tmp_path: Path) -> None:
    process = EmulatorProcess(tmp_path / "bad", extra_args=["--part-size", "0"])
    with pytest.raises(EmulatorStartError, match="part-size"):
        process.start()
    assert not process.is_running
    # Port taken by someone else: a clear error, not a hang.
    with EmulatorProcess(tmp_path / "one") as first:
        clash = EmulatorProcess(tmp_path / "two", port=first.port, startup_timeout=10)
        with pytest.raises(EmulatorStartError, match=r"exited|not healthy"):
            clash.start()
        assert first.admin.health()
        # Same state dir as a running emulator: refused (it would double-bill jobs).
        twin = EmulatorProcess(first.state_dir)
        with pytest.raises(EmulatorStartError, match="in use by another emulator"):
            twin.start()
        assert first.admin.health()


def test_process_lifecycle_and_context_manager(tmp_path: Path) -> None:
    with EmulatorProcess(tmp_path / "ctx") as emulator:
        assert emulator.is_running and emulator.admin.health()
        pid = emulator.pid
        assert repr(emulator).startswith("EmulatorProcess(base_url='http://127.0.0.1:")
    assert not emulator.is_running
    # Idempotent; uvicorn re-raises SIGTERM after its clean shutdown.
    assert emulator.stop() in (0, -signal.SIGTERM)
    assert pid is not None
    owned = EmulatorProcess()
    with owned:
        assert owned.state_dir.is_dir()
    assert not owned.state_dir.exists()  # a temp state dir it created is removed


def test_cli_help_and_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crust_assets.cli", "emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for flag in (
        "--host",
        "--port",
        "--state-dir",
        "--pending-seconds",
        "--processing-seconds",
        "--part-size",
        "--url-expiry-seconds",
        "--credits",
        "--faults",
        "--insufficient-credits-status",
    ):
        assert flag in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "crust_assets.cli", "emulator", "--faults", "{not json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "--faults" in bad.stderr
    none = subprocess.run(
        [sys.executable, "-m", "crust_assets.cli"], capture_output=True, text=True, timeout=30
    )
    assert none.returncode == 2


def test_urls_sha256_proves_a_list_was_submitted_once(emulator: EmulatorProcess) -> None:
    urls = profile_urls(7, "once")
    with api_client(emulator) as client:
        submit(client, urls)
        submit(client, SEED_URLS)
    digests = [s["urls_sha256"] for s in emulator.admin.submissions()]
    expected = hashlib.sha256("\n".join(urls).encode()).hexdigest()
    assert digests.count(expected) == 1
    assert emulator.admin.submissions()[0]["urls"] == urls

"""The callback receiver under hostile clients, and what its hints may cost.

The receiver runs as the real `crust-assets webhook` process; slow clients are raw sockets on
127.0.0.1, bounded in number and time. Body parsing and the hint cap also have millisecond tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crust_assets.demo import free_port
from crust_assets.storage import DataLayout
from crust_assets.webhook import (
    BadCallback,
    ReceiverLimits,
    add_hint,
    batch_id_from_body,
    read_hints,
    write_hint,
)
from crust_assets_tests.test_webhook import TOKEN, running_receiver

HOOK = f"/hooks/crustdata/{TOKEN}"
BATCH = "c97333e3-046f-4fd2-b888-a5b07793a0ac"


def new_id() -> str:
    return str(uuid.uuid4())


# ---- bodies: pure ---------------------------------------------------------------------------
def test_a_callback_body_names_one_uuid_batch_id() -> None:
    assert batch_id_from_body(json.dumps({"batch_id": BATCH, "n": 12, "f": 1.5}).encode()) == BATCH
    for body, reason in (
        (b'{"batch_id": "%s", "n": %s}' % (BATCH.encode(), b"6" * 60_000), "number"),
        (b'{"batch_id": "%s", "f": 1.%s}' % (BATCH.encode(), b"6" * 60_000), "number"),
        (b'{"batch_id": "%s", "x": %s%s}' % (BATCH.encode(), b"[" * 10_000, b"]" * 10_000), "nest"),
        (b"[" * 10_000 + b"]" * 10_000, "nest"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b'{"batch_id": ".."}', "batch_id"),
        (b'{"batch_id": "%s\\n"}' % BATCH.encode(), "batch_id"),
        (b'["%s"]' % BATCH.encode(), "batch_id"),
    ):
        with pytest.raises(BadCallback, match=reason):
            batch_id_from_body(body)


def test_limits_come_from_the_environment_and_flags_win() -> None:
    assert ReceiverLimits.from_env({}) == ReceiverLimits(10.0, 10.0, 100, 1000)
    env = {
        "CRUST_WEBHOOK_HEADER_TIMEOUT_SECONDS": "2.5",
        "CRUST_WEBHOOK_BODY_TIMEOUT_SECONDS": "4",
        "CRUST_WEBHOOK_MAX_CONCURRENT": "7",
        "CRUST_WEBHOOK_MAX_HINTS": "9",
    }
    assert ReceiverLimits.from_env(env) == ReceiverLimits(2.5, 4.0, 7, 9)
    assert ReceiverLimits.from_env(env, max_hints=3, body_timeout=None).max_hints == 3
    with pytest.raises(ValueError, match="CRUST_WEBHOOK_MAX_HINTS is not a number"):
        ReceiverLimits.from_env({"CRUST_WEBHOOK_MAX_HINTS": "lots"})
    with pytest.raises(ValueError, match="CRUST_WEBHOOK_HEADER_TIMEOUT_SECONDS must be above 0"):
        ReceiverLimits.from_env({"CRUST_WEBHOOK_HEADER_TIMEOUT_SECONDS": "0"})


def test_hints_hold_only_the_id_and_a_full_store_refuses_new_ids(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    ids = [new_id() for _ in range(4)]
    assert [add_hint(layout, batch_id, max_hints=3) for batch_id in ids] == [True] * 3 + [False]
    assert add_hint(layout, ids[0], max_hints=3)  # a repeat overwrites its own hint
    assert set(read_hints(layout)) == set(ids[:3])
    for batch_id, path in read_hints(layout).items():
        assert json.loads(Path(path).read_bytes()) == {"batch_id": batch_id}
    with pytest.raises(ValueError, match="not a batch id"):
        write_hint(layout, "../escape")


# ---- the receiver as a process ----------------------------------------------------------------
@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_huge_numbers_and_deep_nesting_are_a_400_without_a_traceback(data_dir: Path) -> None:
    log: list[str] = []
    with running_receiver(str(data_dir), log=log) as url:
        number = b'{"batch_id": "%s", "n": %s}' % (BATCH.encode(), b"9" * 60_000)
        nested = b'{"batch_id": "%s", "x": %s%s}' % (BATCH.encode(), b"[" * 10_000, b"]" * 10_000)
        for body in (number, nested, b"{" * 30_000):
            response = httpx.post(url + HOOK, content=body)
            assert response.status_code == 400, response.text
        assert httpx.post(url + HOOK, json={"batch_id": BATCH}).status_code == 202
    [output] = log
    assert "Traceback" not in output and "Error" not in output, output[-2000:]
    assert set(read_hints(DataLayout(data_dir))) == {BATCH}


def test_forged_hints_are_capped_and_hold_only_their_id(data_dir: Path) -> None:
    """3,000 forged 60 KB callbacks took 188 MB when hints stored the body's status."""
    accepted, codes = [], []
    with running_receiver(str(data_dir), "--max-hints", "100") as url, httpx.Client() as client:
        started = time.monotonic()
        for _ in range(300):
            batch_id = new_id()
            body = {"batch_id": batch_id, "status": "x" * 60_000}
            codes.append(client.post(url + HOOK, json=body).status_code)
            if codes[-1] == 202:
                accepted.append(batch_id)
        elapsed = time.monotonic() - started
        assert client.post(url + HOOK, json={"batch_id": accepted[0]}).status_code == 202
    assert codes == [202] * 100 + [503] * 200
    files = list((data_dir / "webhooks").iterdir())
    assert sorted(f.name.removesuffix(".json") for f in files) == sorted(accepted)
    assert sum(f.stat().st_size for f in files) <= 100 * 60  # ~50 bytes each
    print(f"300 forged 60 KB callbacks in {elapsed:.1f} s; hints on disk: {len(files)}")


@dataclass
class SlowClient:
    """A raw socket that holds a connection: head never finished, or body never sent."""

    sock: socket.socket
    trickles: bool  # sends one more header line now and then: no idle timer may reset
    opened: float
    closed: float | None = None
    received: bytes = field(default=b"")


def open_slow_clients(port: int, heads: int, bodies: int) -> list[SlowClient]:
    clients = []
    partial_head = f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 0\r\n".encode()
    body_head = (
        f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode() + b'{"batch_id": '  # then nothing more
    for index in range(heads + bodies):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        sock.sendall(partial_head if index < heads else body_head)
        clients.append(SlowClient(sock, trickles=index < heads, opened=time.monotonic()))
    return clients


def watch_until_closed(clients: list[SlowClient], deadline: float) -> None:
    """Keep the slow clients slow (a header line every 0.5 s); note when the server closes each."""
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    next_trickle = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            client = key.data
            try:
                chunk = client.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            client.received += chunk
            if not chunk:
                client.closed = time.monotonic()
                selector.unregister(client.sock)
        if time.monotonic() >= next_trickle:
            next_trickle += 0.5
            for client in clients:
                if client.trickles and client.closed is None:
                    with contextlib.suppress(OSError):  # closed: the read above sees it
                        client.sock.send(b"X-Slow: 1\r\n")
    selector.close()


def test_slow_clients_are_cut_off_and_a_real_callback_still_gets_through(data_dir: Path) -> None:
    timeout, slack = 3.0, 4.0
    log: list[str] = []
    flags = ("--header-timeout", str(timeout), "--body-timeout", str(timeout))
    with running_receiver(str(data_dir), *flags, log=log) as url:
        clients = open_slow_clients(urlsplit(url).port or 0, heads=150, bodies=50)
        try:
            started = time.monotonic()
            response = httpx.post(url + HOOK, json={"batch_id": BATCH}, timeout=10)
            callback_seconds = time.monotonic() - started
            watch_until_closed(clients, deadline=time.monotonic() + timeout + slack)
        finally:
            for client in clients:
                client.sock.close()
    assert response.status_code == 202 and callback_seconds < 2.0, callback_seconds
    assert set(read_hints(DataLayout(data_dir))) == {BATCH}
    still_open = [c for c in clients if c.closed is None]
    assert not still_open, f"{len(still_open)} slow connections still open"
    held = [c.closed - c.opened for c in clients if c.closed is not None]
    assert timeout - 0.5 <= min(held) and max(held) <= timeout + slack, (min(held), max(held))
    for client in clients[150:]:  # a declared body that never came: told so, then closed
        assert client.received.startswith(b"HTTP/1.1 408"), client.received[:80]
    assert "Traceback" not in log[0]
    print(
        f"callback accepted in {callback_seconds * 1000:.0f} ms beside 200 slow clients; "
        f"slow connections held {min(held):.1f}-{max(held):.1f} s (timeout {timeout} s)"
    )


def test_callbacks_beyond_the_concurrency_limit_are_refused_until_slots_free(
    data_dir: Path,
) -> None:
    flags = ("--max-concurrent", "5", "--body-timeout", "3")
    with running_receiver(str(data_dir), *flags) as url:
        port = urlsplit(url).port or 0
        holders = open_slow_clients(port, heads=0, bodies=5)
        time.sleep(0.5)  # all five are inside the app, waiting for their bodies
        busy = httpx.post(url + HOOK, json={"batch_id": BATCH}, timeout=10)
        try:
            watch_until_closed(holders, deadline=time.monotonic() + 8)
        finally:
            for client in holders:
                client.sock.close()
        freed = httpx.post(url + HOOK, json={"batch_id": BATCH}, timeout=10)
    assert busy.status_code == 503 and busy.headers["retry-after"]
    assert all(c.closed is not None and c.received.startswith(b"HTTP/1.1 408") for c in holders)
    assert freed.status_code == 202


def test_a_bad_limit_is_refused_at_start(data_dir: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "crust_assets.cli", "webhook", "--data-dir", str(data_dir)],
        env={**os.environ, "CRUST_WEBHOOK_TOKEN": TOKEN, "CRUST_WEBHOOK_MAX_CONCURRENT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "CRUST_WEBHOOK_MAX_CONCURRENT must be above 0" in result.stderr


# ---- stale hints: the sensor deletes what no job can use ------------------------------------
def summary(result: dg.SensorResult) -> str:
    return result.skip_reason.skip_message or "" if result.skip_reason else ""


def write_forged_hints(layout: DataLayout, count: int) -> set[str]:
    ids = {new_id() for _ in range(count)}
    for batch_id in ids:
        write_hint(layout, batch_id)
    return ids


def test_the_sensor_deletes_hints_when_no_plan_is_open(tmp_path: Path) -> None:
    from crust_assets_tests.pipeline_harness import Pipeline

    closed = f"http://127.0.0.1:{free_port()}"  # no plan: the tick calls no API
    pipeline = Pipeline(
        tmp_path / "data", closed, settings={"webhook_url": f"{closed}/hooks/crustdata/{TOKEN}"}
    )
    write_forged_hints(pipeline.layout, 3)
    result = pipeline.tick()
    assert read_hints(pipeline.layout) == {}
    assert "3 stale webhook hint(s) deleted: no plan is open" in summary(result)
    assert "stale" not in summary(pipeline.tick())  # nothing left to delete


def test_the_sensor_deletes_hints_when_no_webhook_is_configured(tmp_path: Path) -> None:
    from crust_assets.emulator.process import EmulatorProcess
    from crust_assets_tests.pipeline_harness import Pipeline, make_urls

    with EmulatorProcess(tmp_path / "emu", pending_seconds=30) as emulator:
        pipeline = Pipeline(tmp_path / "data", emulator.base_url)
        pipeline.write_list("2026-11-22", make_urls("stale-hints", 5))
        pipeline.plan("2026-11-22")  # a plan is open: the tick submits its job and polls
        write_forged_hints(pipeline.layout, 4)
        result = pipeline.tick()
        assert len(emulator.admin.submissions()) == 1
    assert read_hints(pipeline.layout) == {}
    assert "4 stale webhook hint(s) deleted: CRUST_WEBHOOK_URL is not set" in summary(result)


# ---- the DuckDB file is owner-only while it is built ----------------------------------------
@dataclass
class ModeWatcher:
    """Lists a directory tree as fast as it can, noting every entry's mode and its parent's."""

    root: Path
    seen: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for directory, dirs, files in os.walk(self.root):
                for name in dirs + files:
                    path = Path(directory, name)
                    try:
                        modes = (path.stat().st_mode, Path(directory).stat().st_mode)
                    except FileNotFoundError:
                        continue
                    self.seen.setdefault(str(path.relative_to(self.root)), set()).add(modes)


@contextlib.contextmanager
def watching_modes(root: Path) -> Iterator[ModeWatcher]:
    watcher = ModeWatcher(root)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        yield watcher
    finally:
        watcher.stop.set()
        thread.join(timeout=10)


def test_the_duckdb_file_and_its_wal_are_never_readable_by_others(tmp_path: Path) -> None:
    import duckdb

    from crust_assets_tests.pipeline_harness import Pipeline

    pipeline = Pipeline(tmp_path / "data", f"http://127.0.0.1:{free_port()}")
    warehouse = Path(pipeline.layout.root) / "warehouse"
    table = pa.table({"profile_url": [f"https://www.linkedin.com/in/m-{i}" for i in range(500)]})
    # The usual umask: files DuckDB creates itself would be 0644, and the warehouse a user made
    # with mkdir is 0755, so only the build's private directory keeps others out.
    previous = os.umask(0o022)
    try:
        for day in range(1, 6):
            partition = warehouse / "enriched_contacts" / f"date=2026-11-0{day}"
            partition.mkdir(parents=True)
            pq.write_table(table, partition / "data.parquet")
        assert stat.S_IMODE(warehouse.stat().st_mode) == 0o755
        with watching_modes(warehouse) as watcher:
            result = pipeline.materialize("contacts_duckdb")
    finally:
        os.umask(previous)
    assert result.success
    built = {p: m for p, m in watcher.seen.items() if ".duckdb" in p}
    # Seen mid-build: the database and its write-ahead log, inside the private directory.
    private = {Path(p).name for p in built if p.startswith(".duckdb-build-") and "/" in p}
    assert {name.endswith(".wal") for name in private} == {True, False}, sorted(built)
    for path, modes in built.items():
        for mode, parent_mode in modes:
            kind = "directory" if stat.S_ISDIR(mode) else "file"
            if path.startswith(".duckdb-build-") and "/" in path:
                assert stat.S_IMODE(parent_mode) == 0o700, (path, oct(parent_mode))
            elif kind == "directory":
                assert stat.S_IMODE(mode) == 0o700, (path, oct(mode))
            else:
                assert stat.S_IMODE(mode) == 0o600, (path, oct(mode))
    leftovers = sorted(p.name for p in warehouse.iterdir() if "duckdb" in p.name)
    assert leftovers == ["contacts.duckdb"]
    assert stat.S_IMODE((warehouse / "contacts.duckdb").stat().st_mode) == 0o600
    with duckdb.connect(str(warehouse / "contacts.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM enriched_contacts").fetchone() == (2500,)

"""The callback receiver as a real server: the emulator calls it when a job finishes."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import httpx
import pytest

from crust_assets.demo import free_port
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.storage import DataLayout
from crust_assets.webhook import read_hints

TOKEN = "hook-token-0123456789abcdef"


@contextlib.contextmanager
def running_receiver(data_dir: str, *flags: str, log: list[str] | None = None) -> Iterator[str]:
    """`crust-assets webhook` as a process writing hints under `data_dir` (a path or a URL).

    It inherits this process's environment (an object store's AWS_* variables included), as a
    pod inherits its deployment's; yields the receiver's base URL. `flags` are added to the
    command line; what the process printed is appended to `log` once it has stopped.
    """
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crust_assets.cli",
            "webhook",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
            *flags,
        ],
        env={**os.environ, "CRUST_WEBHOOK_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("webhook receiver did not start")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
        if log is not None:
            log.append(output)
        assert TOKEN not in output  # never logged: the path carries it


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, DataLayout]]:
    data_dir = tmp_path / "data"
    with running_receiver(str(data_dir)) as url:
        yield url, DataLayout.from_location(data_dir)


def test_a_finished_job_leaves_a_hint(receiver: tuple[str, DataLayout], tmp_path: Path) -> None:
    url, layout = receiver
    with EmulatorProcess(tmp_path / "emu", pending_seconds=0.1, processing_seconds=0.2) as emu:
        response = httpx.post(
            f"{emu.base_url}/batch/person/contact/enrich",
            headers={"authorization": "Bearer k", "x-api-version": "2025-11-01"},
            json={
                "professional_network_profile_urls": ["https://www.linkedin.com/in/hooked"],
                "fields": ["business_email"],
                "webhook_url": f"{url}/hooks/crustdata/{TOKEN}",
            },
        )
        batch_id = response.json()["batch_id"]
        deadline = time.monotonic() + 15
        while batch_id not in read_hints(layout) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert batch_id in read_hints(layout)


def test_wrong_token_oversized_or_garbage_bodies_are_refused(
    receiver: tuple[str, DataLayout],
) -> None:
    url, layout = receiver
    good = {"batch_id": "c97333e3-046f-4fd2-b888-a5b07793a0ac", "status": "completed"}
    assert httpx.post(f"{url}/hooks/crustdata/wrong-token-0000000000", json=good).status_code == 401
    huge = {"batch_id": good["batch_id"], "pad": "x" * 70_000}
    assert httpx.post(f"{url}/hooks/crustdata/{TOKEN}", json=huge).status_code == 413
    assert httpx.post(f"{url}/hooks/crustdata/{TOKEN}", content=b"{not json").status_code == 400
    for bad in ("../../etc/passwd", "..", "0f0e0d0c-aaaa-bbbb-cccc-00000000000g", "a" * 36):
        bad_id = {"batch_id": bad}  # ids are UUIDs: anything else names no job, and no file
        assert httpx.post(f"{url}/hooks/crustdata/{TOKEN}", json=bad_id).status_code == 400
    assert read_hints(layout) == {}
    newline = {"batch_id": good["batch_id"] + "\n"}  # `$` alone would let this name a file
    assert httpx.post(f"{url}/hooks/crustdata/{TOKEN}", json=newline).status_code == 400
    assert read_hints(layout) == {}
    assert httpx.post(f"{url}/hooks/crustdata/{TOKEN}", json=good).status_code == 202
    assert set(read_hints(layout)) == {good["batch_id"]}
    # Written whole, owner-only (CRUST_FILE_MODE / CRUST_DIR_MODE defaults), no temp file left.
    [hint] = Path(layout.root, "webhooks").iterdir()
    assert hint.name == f"{good['batch_id']}.json"
    assert json.loads(hint.read_bytes()) == {"batch_id": good["batch_id"]}  # not the status
    assert stat.S_IMODE(hint.stat().st_mode) == 0o600
    assert stat.S_IMODE(hint.parent.stat().st_mode) == 0o700


def test_a_wrong_token_is_a_401_and_any_other_path_a_404_as_the_readme_says(
    receiver: tuple[str, DataLayout],
) -> None:
    url, layout = receiver
    good = {"batch_id": "c97333e3-046f-4fd2-b888-a5b07793a0ac"}
    for token in ("wrong-token-0000000000", TOKEN[:-1], TOKEN + "x", "x"):
        assert httpx.post(f"{url}/hooks/crustdata/{token}", json=good).status_code == 401
    for path in ("/", "/hooks", "/hooks/crustdata/", f"/hooks/crustdata/{TOKEN}/x", "/h/x"):
        assert httpx.post(f"{url}{path}", json=good).status_code == 404, path
        assert httpx.get(f"{url}{path}").status_code == 404, path
    assert httpx.get(f"{url}/hooks/crustdata/{TOKEN}").status_code == 405
    assert httpx.post(f"{url}/health").status_code == 405
    assert read_hints(layout) == {}
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    webhook_section = readme.split("### Webhook", 1)[1].split("\n### ", 1)[0]
    said = " ".join(webhook_section.split())
    assert "with a wrong token is a 401, any other path a 404" in said
    assert "known path a 405" in said


def test_callbacks_drive_the_sensor_when_polling_is_rare(
    receiver: tuple[str, DataLayout], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crust_assets_tests.pipeline_harness import Pipeline, make_urls

    url, layout = receiver
    monkeypatch.setenv("CRUST_POLL_INTERVAL_SECONDS", "3600")  # polling alone would take an hour
    with EmulatorProcess(tmp_path / "emu", pending_seconds=0.2, processing_seconds=0.5) as emu:
        pipeline = Pipeline(
            layout.root, emu.base_url, settings={"webhook_url": f"{url}/hooks/crustdata/{TOKEN}"}
        )
        pipeline.write_list("2026-11-21", make_urls("hooked", 650))
        pipeline.plan("2026-11-21")
        [run] = pipeline.drive(until_runs=1, timeout=60)
        submissions = emu.admin.submissions()
        # A callback can land just after the tick whose poll already saw its job completed (one
        # hint makes the tick poll every active job); the next tick, with no plan open, deletes
        # such late hints, so none piles up in the store.
        pipeline.tick()
    assert run.success and len(pipeline.table("2026-11-21")) == 650
    assert len(submissions) == 3
    assert read_hints(layout) == {}  # every hint consumed or deleted


def test_hints_are_consumed_and_an_unreachable_store_only_means_polling(tmp_path: Path) -> None:
    """The sensor reads hints with `hinted_batch_ids`: a bucket that does not answer (a closed
    port here, through real s3fs/botocore) must cost a note, never the tick."""
    import s3fs

    from crust_assets.defs.hints import hinted_batch_ids
    from crust_assets.webhook import write_hint

    local = DataLayout(tmp_path / "data")
    write_hint(local, "0f0e0d0c-aaaa-bbbb-cccc-000000000001")
    assert hinted_batch_ids(local) == ({"0f0e0d0c-aaaa-bbbb-cccc-000000000001"}, None)
    assert read_hints(local) == {}  # consumed

    closed = free_port()  # nothing listens there
    fs = s3fs.S3FileSystem(
        key="test",
        secret="test",
        client_kwargs={"endpoint_url": f"http://127.0.0.1:{closed}"},
        config_kwargs={"connect_timeout": 1, "retries": {"max_attempts": 1}},
    )
    remote = DataLayout(PurePosixPath("bucket/crust"), fs)
    started = time.monotonic()
    hints, problem = hinted_batch_ids(remote)
    assert hints == set()
    assert problem is not None and "unreadable" in problem and "polling" in problem
    assert time.monotonic() - started < 30

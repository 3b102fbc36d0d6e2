"""`crust-assets doctor` against a real emulator process and a real Dagster instance directory.

Each fault a first real run can meet is set up for real (a key the emulator refuses, a port with
nothing on it, a data root that cannot be written, a stopped sensor in the instance's own
storage, a missing list), and the test reads the line a user reads.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import httpx
import pytest

from crust_assets.doctor import Finding, run_doctor
from crust_assets.emulator import EmulatorProcess

KEY = "doctor-test-key-7f3a"
DAY = date(2026, 11, 30)


@pytest.fixture
def key_emulator(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    """An emulator that accepts exactly KEY, as the real API accepts only the user's key."""
    return emulator_factory(api_key=KEY)


@pytest.fixture
def setup(
    tmp_path: Path, key_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A healthy first-run setup: right key, persistent instance, writable root, today's list."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")  # the default: SQLite storage in DAGSTER_HOME
    data = tmp_path / "data"
    (data / "input").mkdir(parents=True)
    (data / "input" / f"{DAY.isoformat()}.csv").write_text("profile_url\nhttps://x.test/in/a\n")
    env = {
        "CRUSTDATA_API_KEY": KEY,
        "CRUSTDATA_BASE_URL": key_emulator.base_url,
        "DAGSTER_HOME": str(home),
        "CRUST_DATA_DIR": str(data),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CRUST_FILE_MODE", raising=False)
    yield env


def _doctor(setup: dict[str, str]) -> dict[str, Finding]:
    return {f.what: f for f in run_doctor(setup["CRUST_DATA_DIR"], DAY)}


def _cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crust_assets.cli", "doctor", "--date", DAY.isoformat()],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_healthy_setup_is_all_ok_exit_0_and_spends_nothing(
    setup: dict[str, str], key_emulator: EmulatorProcess
) -> None:
    done = _cli(setup)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("ok") for line in lines), lines
    assert f"accepted by {key_emulator.base_url}" in done.stdout
    assert "persistent" in done.stdout and "owner only" in done.stdout
    assert "contact_enrichment_sensor is on" in done.stdout
    assert KEY not in done.stdout + done.stderr
    listed = httpx.get(
        f"{key_emulator.base_url}/batch",
        headers={"authorization": f"Bearer {KEY}", "x-api-version": "2025-11-01"},
        timeout=10,
    )
    assert listed.status_code == 200 and listed.json()["jobs"] == []  # nothing was submitted


def test_a_refused_key_is_named_and_the_exit_code_is_1(setup: dict[str, str]) -> None:
    done = _cli({**setup, "CRUSTDATA_API_KEY": "not-the-key"})
    assert done.returncode == 1
    assert "FAIL  API key: key refused by" in done.stdout
    assert "not-the-key" not in done.stdout + done.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_api_names_the_base_url_it_tried(
    setup: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("CRUSTDATA_BASE_URL", base)
    key = _doctor(setup)["API key"]
    assert not key.ok and f"no answer from {base}" in key.text


def test_a_data_root_that_cannot_be_written_is_reported(
    setup: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    found = {f.what: f for f in run_doctor(str(blocker / "data"), DAY)}
    assert not found["data root"].ok and "cannot write to" in found["data root"].text


def test_files_readable_by_others_are_reported_with_the_setting_to_change(
    setup: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRUST_FILE_MODE", "0644")
    root = _doctor(setup)["data root"]
    assert not root.ok and "come out 0644" in root.text and "CRUST_FILE_MODE" in root.text
    assert not list(Path(setup["CRUST_DATA_DIR"]).glob(".crust-doctor-*"))  # the probe is gone


def test_no_dagster_home_means_a_temporary_instance(
    setup: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME")
    found = _doctor(setup)
    assert not found["Dagster instance"].ok
    assert "DAGSTER_HOME is not set" in found["Dagster instance"].text
    assert not found["submitter"].ok


def test_storage_without_concurrency_pools_is_refused(setup: dict[str, str]) -> None:
    home = Path(setup["DAGSTER_HOME"])
    (home / "dagster.yaml").write_text(
        "event_log_storage:\n  module: dagster._core.storage.event_log\n"
        "  class: InMemoryEventLogStorage\n"
    )
    instance = _doctor(setup)["Dagster instance"]
    assert not instance.ok and "no concurrency pools" in instance.text
    assert "crustdata_planner" in instance.text


def test_a_stopped_submitter_fails_and_the_schedule_state_is_read_from_the_instance(
    setup: dict[str, str],
) -> None:
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = LoadableTargetOrigin(
        executable_path=sys.executable, module_name="crust_assets.definitions"
    )
    with dg.DagsterInstance.get() as instance, in_process_test_workspace(instance, origin) as ws:
        location = next(iter(ws.code_locations))
        repo = next(iter(location.get_repositories().values()))
        sensor = repo.get_sensor("contact_enrichment_sensor")
        instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
        instance.start_schedule(repo.get_schedule("daily_contact_enrichment_schedule"))
    found = _doctor(setup)
    assert not found["submitter"].ok and "is stopped" in found["submitter"].text
    starts = found["starts"].text
    assert "daily_contact_enrichment_schedule on" in starts
    assert "contact_url_list_file_sensor off" in starts


def test_a_missing_list_for_the_day_is_named(setup: dict[str, str]) -> None:
    os.remove(Path(setup["CRUST_DATA_DIR"]) / "input" / f"{DAY.isoformat()}.csv")
    found = _doctor(setup)
    assert not found["today's input"].ok
    assert f"{DAY.isoformat()}.csv is missing" in found["today's input"].text
    assert all(f.ok for what, f in found.items() if what != "today's input")

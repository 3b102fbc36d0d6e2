"""The emulator keeps what it holds private: file modes, its log, and its admin API.

Its state dir holds the submitted profile URLs and each job's webhook URL (whose path is the
receiver's token): the dir must be 0700 and its SQLite files 0600 even under a permissive
umask, its log must never print a token, and with a fixed key its admin API (which lists
submissions and steers faults and credits) must ask for that key.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from crust_assets.emulator import EmulatorAdmin, EmulatorAdminError, EmulatorProcess
from crust_assets_tests._emulator_http import api_client, profile_urls, submit, wait_for

KEY = "sk-admin-FIXED-KEY-5e1d"
TOKEN = "hook-token-DO-NOT-LOG-8c2f1a9b7e"
ADMIN_PATHS = (
    "/_emulator/submissions",
    "/_emulator/billing",
    "/_emulator/faults",
    "/_emulator/config",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 022 in this process, inherited by the emulator child (files 0644 by default)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_state_dir_is_private_under_a_permissive_umask(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path, permissive_umask: None
) -> None:
    state_dir = tmp_path / "state"
    emulator = emulator_factory(state_dir=state_dir)
    with api_client(emulator) as client:  # a job: the database and its WAL get written
        wait_for(client, submit(client, profile_urls(2, "modes"))["batch_id"])
    database = state_dir / "emulator.sqlite3"
    companions = [state_dir / f"emulator.sqlite3{s}" for s in ("-wal", "-shm", "-journal")]
    present = [p for p in companions if p.exists()]
    assert state_dir / "emulator.sqlite3-wal" in present  # WAL mode: not a vacuous check
    assert mode(state_dir) == 0o700
    for path in (database, *present, state_dir / "emulator.log", state_dir / "signing.key"):
        assert mode(path) == 0o600, f"{path.name} is {oct(mode(path))}"
    # A file made now in the same process is 0644: the umask really was permissive.
    probe = tmp_path / "probe"
    probe.touch()
    assert mode(probe) == 0o644


def test_an_existing_state_dir_is_tightened_on_start(
    emulator_factory: Callable[..., EmulatorProcess], tmp_path: Path, permissive_umask: None
) -> None:
    state_dir = tmp_path / "old-state"
    first = emulator_factory(state_dir=state_dir)
    first.stop()
    os.chmod(state_dir, 0o755)
    os.chmod(state_dir / "emulator.sqlite3", 0o644)
    emulator_factory(state_dir=state_dir)
    assert mode(state_dir) == 0o700 and mode(state_dir / "emulator.sqlite3") == 0o600


def test_log_names_the_webhook_host_but_never_its_token(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory()
    hook = f"http://127.0.0.1:9/hooks/crustdata/{TOKEN}?sig={TOKEN}"  # port 9: nobody listens
    with api_client(emulator) as client:
        wait_for(client, submit(client, profile_urls(1, "hooklog"), webhook_url=hook)["batch_id"])
    deadline = time.monotonic() + 10
    while "webhook for batch" not in emulator.log_text():
        assert time.monotonic() < deadline, "no failed delivery was logged"
        time.sleep(0.1)
    log = emulator.log_text()
    assert "to http://127.0.0.1:9/<redacted> failed" in log
    assert TOKEN not in log and "/hooks/" not in log


def test_admin_api_requires_the_fixed_key(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(api_key=KEY)
    with httpx.Client(base_url=emulator.base_url, timeout=10, trust_env=False) as http:
        for path in ADMIN_PATHS:
            assert http.get(path).status_code == 401, path
            wrong = http.get(path, headers={"authorization": "Bearer not-the-key"})
            assert wrong.status_code == 401, path
            right = http.get(path, headers={"authorization": f"Bearer {KEY}"})
            assert right.status_code == 200, path
        # Changes are refused too, and nothing changed.
        assert http.patch("/_emulator/faults", json={"error_rate": 1.0}).status_code == 401
        assert http.post("/_emulator/billing", json={"balance": 0}).status_code == 401
        assert http.delete("/_emulator/faults").status_code == 401
        # Readiness probes and the API description stay open.
        assert http.get("/_emulator/health").json() == {"ok": True}
        assert http.get("/openapi.json").status_code == 200
    assert emulator.admin.faults()["error_rate"] == 0  # the project's own admin sends the key
    assert emulator.admin.billing()["balance"] > 0
    with pytest.raises(EmulatorAdminError) as info:
        EmulatorAdmin(emulator.base_url).submissions()
    assert info.value.status_code == 401
    assert KEY not in repr(emulator.admin)


def test_admin_api_stays_open_without_a_fixed_key(emulator: EmulatorProcess) -> None:
    with httpx.Client(base_url=emulator.base_url, timeout=10, trust_env=False) as http:
        for path in ADMIN_PATHS:
            assert http.get(path).status_code == 200, path
    assert EmulatorAdmin(emulator.base_url).billing()["balance"] > 0

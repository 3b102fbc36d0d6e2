"""The emulator's object-store faults behind the load-retry scenarios, over raw HTTP.

A part served broken once (then fine) and a store that is down for a while after each job
completes: the fault matrix relies on both doing exactly that, so it is pinned down here.
"""

from __future__ import annotations

import gzip
import time

import pytest

from crust_assets.emulator import EmulatorProcess
from crust_assets.emulator.faults import FaultConfigError, validate_faults
from crust_assets_tests._emulator_http import (
    api_client,
    download,
    profile_urls,
    submit,
    wait_for,
)


def completed_urls(emulator: EmulatorProcess, count: int, prefix: str) -> list[str]:
    """Part URLs of a completed job of `count` URLs (one part per 2 records)."""
    emulator.admin.config(part_size=2)
    with api_client(emulator) as client:
        batch_id = submit(client, profile_urls(count, prefix))["batch_id"]
        return wait_for(client, batch_id, ["completed"])["download_urls"]


def test_each_part_is_truncated_on_its_first_download_only(emulator: EmulatorProcess) -> None:
    emulator.admin.set_faults(truncate_first_downloads=True)
    urls = completed_urls(emulator, 6, "first")
    assert len(urls) == 3
    for url in urls:
        first = download(url)
        assert first.status_code == 200  # a complete response...
        assert int(first.headers["content-length"]) == len(first.content)
        with pytest.raises(EOFError):  # ...holding a gzip cut short
            gzip.decompress(first.content)
        again = download(url)
        assert len(gzip.decompress(again.content).splitlines()) == 2
        assert download(url).content == again.content
    emulator.admin.reset_faults()
    emulator.admin.set_faults(truncate_first_downloads=True)  # a reset forgets the parts seen
    with pytest.raises(EOFError):
        gzip.decompress(download(urls[0]).content)


def test_the_store_is_down_for_a_while_after_each_job_completes(
    emulator: EmulatorProcess,
) -> None:
    emulator.admin.set_faults(store_down_after_completion_seconds=1.5)
    [url] = completed_urls(emulator, 2, "down")
    with api_client(emulator) as client:  # the API itself is fine meanwhile
        assert client.get("/batch").status_code == 200
    down = download(url)
    assert down.status_code == 503
    assert "<Code>SlowDown</Code>" in down.text
    time.sleep(1.6)
    back = download(url)
    assert back.status_code == 200
    assert len(gzip.decompress(back.content).splitlines()) == 2


def test_the_new_faults_are_validated() -> None:
    assert validate_faults({"store_down_after_completion_seconds": 120}) == {
        "store_down_after_completion_seconds": 120.0
    }
    for bad in (
        {"store_down_after_completion_seconds": -1},
        {"truncate_first_downloads": 1},
    ):
        with pytest.raises(FaultConfigError):
            validate_faults(bad)

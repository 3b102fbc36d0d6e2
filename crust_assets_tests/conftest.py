"""Shared fixtures: real emulator processes on 127.0.0.1.

Why processes and not an in-process app: everything that talks to the API
(client, sensor, demo) does so over real HTTP, so the tests do too. Every
fixture stops the processes it started, even when a test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crust_assets import erasure
from crust_assets.emulator import EmulatorProcess

# A fast clock: a job is pending for 0.2 s, then processing for 0.5 s.
FAST_PENDING_SECONDS = 0.2
FAST_PROCESSING_SECONDS = 0.5


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """A running emulator (fast clock, any non-empty key accepted) in its own state dir."""
    process = EmulatorProcess(
        tmp_path / "emulator",
        pending_seconds=FAST_PENDING_SECONDS,
        processing_seconds=FAST_PROCESSING_SECONDS,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def hooks() -> Iterator[list[Callable[[str, str], None]]]:
    """The erasure fence's pause points (`erasure.publish_hooks`); emptied after the test."""
    try:
        yield erasure.publish_hooks
    finally:
        erasure.publish_hooks.clear()


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Start emulators with custom arguments: ``emulator_factory(api_key="k", part_size=3)``.

    Takes ``EmulatorProcess`` keyword arguments (fast clock unless overridden),
    plus ``state_dir`` (default: a fresh dir under tmp_path) and ``start``
    (default True). All processes are stopped at teardown.
    """
    processes: list[EmulatorProcess] = []

    def factory(**kwargs: Any) -> EmulatorProcess:
        kwargs.setdefault("pending_seconds", FAST_PENDING_SECONDS)
        kwargs.setdefault("processing_seconds", FAST_PROCESSING_SECONDS)
        state_dir = kwargs.pop("state_dir", None) or tmp_path / f"emulator-{len(processes)}"
        start = kwargs.pop("start", True)
        process = EmulatorProcess(state_dir, **kwargs)
        processes.append(process)
        if start:
            process.start()
        return process

    try:
        yield factory
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(scope="session")
def emulator_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator for a whole session, for read-mostly tests.

    Shared state (faults, credits) is visible to every user; tests that change
    it should use ``emulator`` instead, and tests that submit should use their
    own API key (any key works) so the 5-active-jobs limit is theirs alone.
    """
    process = EmulatorProcess(
        tmp_path_factory.mktemp("emulator-session"),
        pending_seconds=FAST_PENDING_SECONDS,
        processing_seconds=FAST_PROCESSING_SECONDS,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()

"""The real thing: `dagster dev` (webserver + daemon) on a free port, driven like the UI drives it.

The partition is launched through the GraphQL API the UI uses; the sensor is evaluated by the
real daemon; the test only watches the instance and reads the table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.demo import demo_environment, launch_partition, start_dagster_dev
from crust_assets.demo_progress import summarise, wait_for_partition
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import make_urls

DATE = "2026-11-25"


@pytest.mark.slow
def test_dagster_dev_runs_a_partition_launched_through_graphql(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    urls = make_urls("daemon", 420)
    lines = ["profile_url", *urls, "https://www.linkedin.com/company/acme"]
    (data_dir / "input" / f"{DATE}.csv").write_text("\n".join(lines) + "\n")
    home = tmp_path / "dagster_home"
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.5, processing_seconds=1.0
    ) as emulator:
        dev = start_dagster_dev(home, demo_environment(emulator.base_url, data_dir, 2))
        try:
            dev.wait_ready()
            run_id = launch_partition(dev.url, "plan_contact_enrichment", DATE)
            instance = dg.DagsterInstance.from_config(str(home))
            progress: list[str] = []
            wait_for_partition(
                DATE, plan_run_id=run_id, timeout=300, echo=progress.append, instance=instance
            )
        finally:
            dev.stop()
        submissions = emulator.admin.submissions()
    table = pq.read_table(
        data_dir / "warehouse" / "enriched_contacts" / f"date={DATE}" / "data.parquet",
        schema=ENRICHED_CONTACTS_SCHEMA,
    )
    assert sorted(table.column("profile_url").to_pylist()) == sorted(urls)
    assert len(submissions) == 2  # 420 URLs: two jobs, each submitted once
    assert any("done 2 of 2" in line for line in progress)
    summary = summarise(data_dir, DATE)
    assert "rows 420" in summary and "rejected URLs: 1" in summary
    assert dev.process.poll() is not None  # the whole group is gone


def _processes_naming(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (a temp dir only this test uses)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline[:200])
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_make_ui_stops_everything_it_started_when_killed(tmp_path: Path, signum: int) -> None:
    """`kill`, a closed terminal or a CI timeout must not leave dagster dev or the emulator
    running (they hold ports and the instance); the demo cleans up as on Ctrl-C."""
    home, state = tmp_path / "dagster_home", tmp_path / "emulator"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CRUST_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "crust_assets.demo", "--ui", "--emulator-state", str(state)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        assert lines and "Press Ctrl-C" in lines[-1], "".join(lines)
        assert _processes_naming(str(home)), "dagster dev should be running"
        assert _processes_naming(str(state)), "the emulator should be running"
        demo.send_signal(signum)
        assert demo.wait(timeout=60) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
    deadline = time.monotonic() + 15
    while (_processes_naming(str(home)) or _processes_naming(str(state))) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert _processes_naming(str(home)) == []
    assert _processes_naming(str(state)) == []

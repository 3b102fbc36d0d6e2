"""Plans are made one at a time (pool `crustdata_planner`, limit 1): each sees those before.

A backfill launches several plan runs at once; borrowing only sees recorded plans, so two plans
made at the same moment would both buy the URLs they share. These tests use a real SQLite
instance in a temp DAGSTER_HOME (the ephemeral one has no pools) and a real `dagster asset
materialize` process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from crust_assets.defs.pools import PLANNER_POOL
from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-12"


def _limit(instance: dg.DagsterInstance) -> int | None:
    limits = instance.event_log_storage.get_pool_limits()
    return next((p.limit for p in limits if p.name == PLANNER_POOL), None)


def test_the_sensor_limits_the_planner_pool_to_one_and_keeps_a_deliberate_limit(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        pipeline = Pipeline(tmp_path / "data", emulator.base_url, instance=instance)
        assert _limit(instance) is None
        pipeline.tick()
        assert _limit(instance) == 1
        instance.event_log_storage.set_concurrency_slots(PLANNER_POOL, 3)
        result = pipeline.tick()
        assert _limit(instance) == 3  # somebody chose it: kept, but said on every tick
        assert f"pool {PLANNER_POOL} allows 3 plans at once" in result.skip_reason.skip_message


def _plan_process(home: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    """The planning assets of one day, materialised the way the CLI or a run worker does."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "crust_assets.definitions",
            "--select",
            "contact_url_list,contact_enrichment_batch",
            "--partition",
            DATE,
        ],
        env={
            **os.environ,
            "DAGSTER_HOME": str(home),
            "CRUST_DATA_DIR": str(data_dir),
            "DAGSTER_DISABLE_TELEMETRY": "1",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _plans(instance: dg.DagsterInstance) -> int:
    result = instance.fetch_materializations(dg.AssetKey("contact_enrichment_batch"), limit=10)
    return len(result.records)


def _list_read(instance: dg.DagsterInstance) -> bool:
    result = instance.fetch_materializations(dg.AssetKey("contact_url_list"), limit=1)
    return bool(result.records)


def test_a_plan_waits_while_another_plan_holds_the_planner_slot(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    home, data_dir = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        pipeline = Pipeline(data_dir, emulator.base_url, instance=instance)
        pipeline.tick()  # as the daemon's first tick does: the pool gets its limit of 1
        pipeline.write_list(DATE, make_urls("pool", 20))
        storage = instance.event_log_storage
        # Another plan is being made: it holds the only slot.
        claim = storage.claim_concurrency_slot(PLANNER_POOL, "another-plan-run", "plan-step")
        assert claim.is_claimed
        planner = _plan_process(home, data_dir)
        try:
            # Its first step (reading the list) is not in the pool: once it is done, the plan
            # step is next, and must wait for the slot.
            deadline = time.monotonic() + 60
            while not _list_read(instance):
                assert planner.poll() is None, planner.communicate()[0].decode()[-2000:]
                assert time.monotonic() < deadline, "the list was never read"
                time.sleep(0.3)
            time.sleep(4.0)
            assert planner.poll() is None, planner.communicate()[0].decode()[-2000:]
            assert _plans(instance) == 0  # waiting for the slot, nothing planned
            storage.free_concurrency_slots_for_run("another-plan-run")
            output = planner.communicate(timeout=120)[0].decode()
        finally:
            if planner.poll() is None:
                planner.kill()
        assert planner.returncode == 0, output[-2000:]
        assert _plans(instance) == 1

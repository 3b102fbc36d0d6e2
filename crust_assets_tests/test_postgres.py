"""Production storage, for real: the whole flow with Dagster's storage on a PostgreSQL server.

`deploy/dagster.yaml` is copied unchanged into a temp DAGSTER_HOME, its `DAGSTER_PG_*` variables
point at a throwaway server (Debian's PostgreSQL, `postgres_server.py`), and `dagster dev`
(webserver + daemon) runs a partition launched through GraphQL against the emulator. The test
then reads the table and asks Postgres itself what it holds: the runs, the job events the sensor
wrote, the sensor's ticks, and not the API key.

Needs the PostgreSQL server binaries (CI installs them). Without them the test FAILS, saying what
to install; a developer may skip it explicitly with `-m "not postgres"` or CRUST_SKIP_POSTGRES=1.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.demo import demo_environment, launch_partition, start_dagster_dev
from crust_assets.demo_progress import wait_for_partition
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import make_urls
from crust_assets_tests.postgres_server import INSTALL_HINT, PostgresServer, find_bin_dir

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
SKIP_VAR = "CRUST_SKIP_POSTGRES"
DATE = "2026-11-24"
# A key that must never reach Dagster's storage (the emulator accepts exactly this key).
CANARY_KEY = "crust-canary-key-6f1d2a9e"


def _require_postgres() -> None:
    """Skip only when asked to (never in CI); fail, saying what to install, when PG is missing."""
    if os.environ.get(SKIP_VAR) == "1":
        if os.environ.get("CI"):
            pytest.fail(f"{SKIP_VAR}=1 is set in CI: the Postgres tests must run there")
        pytest.skip(f"{SKIP_VAR}=1: Postgres end-to-end test skipped on request")
    if find_bin_dir() is None:
        pytest.fail(f"PostgreSQL is not installed on this machine: {INSTALL_HINT}")
    missing = [tool for tool in ("runuser", "setpriv") if shutil.which(tool) is None]
    if missing and os.geteuid() == 0:
        pytest.fail(f"running as root without {missing} (util-linux) to run PostgreSQL as its user")


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    _require_postgres()
    started = time.monotonic()
    with PostgresServer() as server:
        print(f"postgres: up on port {server.port} in {time.monotonic() - started:.1f} s")
        yield server


def test_dagster_dev_on_postgres_runs_a_partition_end_to_end(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    urls = make_urls("postgres", 120)
    lines = ["profile_url", *urls, "https://www.linkedin.com/company/acme"]
    (data_dir / "input" / f"{DATE}.csv").write_text("\n".join(lines) + "\n")

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_DAGSTER_YAML, home / "dagster.yaml")  # the shipped file, unchanged
    for name, value in postgres.dagster_env().items():
        monkeypatch.setenv(name, value)  # this process loads the same instance to watch it

    started = time.monotonic()
    with EmulatorProcess(
        tmp_path / "emulator", api_key=CANARY_KEY, pending_seconds=0.5, processing_seconds=1.0
    ) as emulator:
        env = {
            **demo_environment(emulator.base_url, data_dir, poll_seconds=2),
            **postgres.dagster_env(),
            "CRUSTDATA_API_KEY": CANARY_KEY,
        }
        dev = start_dagster_dev(home, env)
        try:
            dev.wait_ready()
            ready = time.monotonic()
            run_id = launch_partition(dev.url, "plan_contact_enrichment", DATE)
            instance = dg.DagsterInstance.from_config(str(home))
            _assert_production_instance(instance)
            progress: list[str] = []
            wait_for_partition(
                DATE, plan_run_id=run_id, timeout=240, echo=progress.append, instance=instance
            )
            done = time.monotonic()
        finally:
            dev.stop()
        submissions = emulator.admin.submissions()
    print(
        f"dagster dev ready in {ready - started:.1f} s; partition done "
        f"{done - ready:.1f} s after launch"
    )

    table = pq.read_table(
        data_dir / "warehouse" / "enriched_contacts" / f"date={DATE}" / "data.parquet",
        schema=ENRICHED_CONTACTS_SCHEMA,
    )
    assert sorted(table.column("profile_url").to_pylist()) == sorted(urls)
    assert len(submissions) == 1  # 120 URLs: one job, submitted once
    assert any("done 1 of 1" in line for line in progress), progress

    _assert_runs_and_events_in_postgres(postgres, run_id)
    # Nothing fell back to SQLite under DAGSTER_HOME.
    assert not [p for p in home.rglob("*.db")], list(home.rglob("*.db"))
    # The API key reached the code location (the emulator accepted it) but not the storage.
    assert CANARY_KEY not in postgres.dump()


def _assert_production_instance(instance: dg.DagsterInstance) -> None:
    """What deploy/dagster.yaml promises, as the loaded instance sees it."""
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
    from dagster_postgres.schedule_storage import PostgresScheduleStorage

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert {"key": "crust/pipeline", "value": "contact_enrichment", "limit": 4} in (
        queue.tag_concurrency_limits
    )
    assert instance.run_monitoring_enabled


def _assert_runs_and_events_in_postgres(postgres: PostgresServer, plan_run_id: str) -> None:
    """Ask the database, not Dagster's API: the state is really in Postgres."""
    runs = postgres.query("SELECT run_id, pipeline_name, status FROM runs")
    by_job: dict[str, list[str]] = {}
    for _run_id, job, status in runs:
        by_job.setdefault(job, []).append(status)
    assert (plan_run_id, "plan_contact_enrichment", "SUCCESS") in runs, runs
    assert by_job.get("load_enriched_contacts") == ["SUCCESS"], runs
    # Every run carries the tag deploy/dagster.yaml's concurrency limit keys on.
    tagged = postgres.query("SELECT count(*) FROM run_tags WHERE key = 'crust/pipeline'")
    assert int(tagged[0][0]) >= 2, tagged

    def events(asset: str, event_type: str, partition: str | None = DATE) -> int:
        sql = "SELECT count(*) FROM event_logs WHERE asset_key = %s AND dagster_event_type = %s"
        params: tuple = (json.dumps([asset]), event_type)
        if partition is not None:
            sql += " AND partition = %s"
            params += (partition,)
        return int(postgres.query(sql, params)[0][0])

    assert events("enriched_contacts", "ASSET_MATERIALIZATION") == 1
    assert events("contact_coverage", "ASSET_MATERIALIZATION") == 1
    assert events("contacts_latest", "ASSET_MATERIALIZATION", partition=None) >= 1
    # The sensor's job queue: submitted / completed events on contact_enrichment_batch[date].
    assert events("contact_enrichment_batch", "ASSET_OBSERVATION") >= 2
    # Sensor state lives in schedule storage: its state row (with the cursor) and its ticks.
    sensor = '%"contact_enrichment_sensor"%'
    states = postgres.query(
        "SELECT status FROM instigators WHERE instigator_type = 'SENSOR' "
        "AND instigator_body LIKE %s",
        (sensor,),
    )
    assert states, "no contact_enrichment_sensor state row in Postgres"
    ticks = postgres.query(
        "SELECT count(*) FROM job_ticks WHERE type = 'SENSOR' AND tick_body LIKE %s", (sensor,)
    )
    assert int(ticks[0][0]) >= 2

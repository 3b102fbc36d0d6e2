"""A real Dagster instance, the real sensor and real runs, against the emulator over HTTP.

`Pipeline` is what a test drives: write an input list, materialise the plan, evaluate the sensor
tick by tick (exactly as the daemon would, with the cursor carried between ticks), and run what
it requests. Nothing of ours is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import dagster as dg

from crust_assets.definitions import ALL_ASSETS, build_definitions, with_table_io_manager
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.defs.sensors import contact_enrichment_sensor
from crust_assets.defs.submitter import SubmitterAlarm
from crust_assets.lifecycle.ledger import Ledger
from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

__all__ = ["ALL_ASSETS", "Pipeline", "make_urls"]


def make_urls(prefix: str, count: int) -> list[str]:
    """Distinct canonical profile URLs, unique to a test so emulator logs can be filtered."""
    return [f"https://www.linkedin.com/in/{prefix}-{i:05d}" for i in range(count)]


@dataclass
class Pipeline:
    data_dir: Path | str  # a directory, or an fsspec URL such as s3://bucket/prefix
    base_url: str
    api_key: str = "test-key"
    settings: dict[str, Any] = field(default_factory=dict)
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    cursor: str | None = None
    requested_run_keys: list[str] = field(default_factory=list)
    max_slot_holders_seen: int = 0
    failed_ticks: list[str] = field(default_factory=list)  # each failed tick's error text

    def __post_init__(self) -> None:
        self.layout = DataLayout.from_location(self.data_dir)
        if self.layout.is_local:
            Path(self.layout.input_dir).mkdir(parents=True, exist_ok=True)
        self.resources = {
            "crustdata": CrustdataResource(
                api_key=self.api_key, base_url=self.base_url, timeout_seconds=5.0
            ),
            "enrichment": EnrichmentSettings(**{"retry_cooldown_seconds": 0, **self.settings}),
            "data_root": DataRoot(data_dir=str(self.data_dir)),
        }
        self.resources = with_table_io_manager(self.resources)
        self.defs = build_definitions(self.resources)

    # ---- inputs and planning -----------------------------------------------------------
    def write_list(self, date: str, values: Sequence[str], header: bool = True) -> PurePath:
        path = self.layout.input_file(date)
        lines = (["profile_url"] if header else []) + [_csv_cell(v) for v in values]
        text = "\n".join(lines) + "\n"
        if self.layout.is_local:
            Path(path).write_text(text, encoding="utf-8")
        else:  # one PUT through the data root's filesystem
            self.layout.fs.pipe_file(str(path), text.encode("utf-8"))
        return path

    def plan(
        self, date: str, *, raise_on_error: bool = True, **config: Any
    ) -> dg.ExecuteInProcessResult:
        run_config = {"ops": {"contact_enrichment_batch": {"config": config}}} if config else None
        return self.defs.resolve_job_def("plan_contact_enrichment").execute_in_process(
            instance=self.instance,
            partition_key=date,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    def materialize(
        self, *selection: str, partition: str | None = None
    ) -> dg.ExecuteInProcessResult:
        """Materialise some assets of the code location (the views, coverage) as the UI would."""
        return dg.materialize(
            ALL_ASSETS,
            partition_key=partition,
            instance=self.instance,
            resources=self.resources,
            selection=list(selection),
        )

    # ---- the sensor, as the daemon runs it ----------------------------------------------
    def tick(self, *, keep_cursor: bool = True) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources,
            definitions=self.defs,
        )
        try:
            result = contact_enrichment_sensor(context)
        except SubmitterAlarm as alarm:  # a failed tick: the daemon keeps no cursor and no runs
            self.failed_ticks.append(str(alarm))
            return dg.SensorResult(run_requests=[])
        assert isinstance(result, dg.SensorResult)
        if keep_cursor:
            self.cursor = result.cursor
            state = Ledger.from_cursor(self.cursor)
            self.max_slot_holders_seen = max(self.max_slot_holders_seen, len(state.slot_holders()))
        return result

    def run_requests(self, result: dg.SensorResult) -> list[dg.ExecuteInProcessResult]:
        """Launch what the sensor asked for, skipping run keys already used (as the daemon does)."""
        outcomes = []
        for request in result.run_requests or []:
            if request.run_key in self.requested_run_keys:
                continue
            self.requested_run_keys.append(request.run_key)
            outcomes.append(
                self.defs.resolve_job_def("load_enriched_contacts").execute_in_process(
                    instance=self.instance,
                    partition_key=request.partition_key,
                    tags=request.tags,
                    raise_on_error=False,
                )
            )
        return outcomes

    def drive(self, *, until_runs: int = 1, timeout: float = 90.0, pause: float = 0.3) -> list:
        """Tick and run until `until_runs` enriched_contacts runs have been launched."""
        runs: list[dg.ExecuteInProcessResult] = []
        deadline = time.monotonic() + timeout
        while len(runs) < until_runs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(runs)} runs after {timeout} s; cursor {self.cursor}")
            runs += self.run_requests(self.tick())
            time.sleep(pause)
        return runs

    def drive_partitions(
        self,
        partitions: set[str],
        *,
        on_tick: Callable[[dg.SensorResult], None] | None = None,
        timeout: float = 120.0,
        pause: float = 0.3,
    ) -> dict[str, dg.ExecuteInProcessResult]:
        """Tick and run until each of `partitions` has had its enriched_contacts run; the runs
        by partition. `on_tick` sees each tick's result before its runs are launched."""
        runs: dict[str, dg.ExecuteInProcessResult] = {}
        deadline = time.monotonic() + timeout
        while not partitions <= set(runs):
            assert time.monotonic() < deadline, f"only {sorted(runs)} after {timeout} s"
            result = self.tick()
            if on_tick is not None:
                on_tick(result)
            for run in self.run_requests(result):
                runs[run.dagster_run.tags["dagster/partition"]] = run
            time.sleep(pause)
        return runs

    # ---- reading results ----------------------------------------------------------------
    def table(self, date: str) -> list[dict[str, Any]]:
        path = self.layout.warehouse_partition("enriched_contacts", date)
        return self.layout.read_table(path, schema=ENRICHED_CONTACTS_SCHEMA).to_pylist()

    def observations(self, date: str) -> list[dict[str, Any]]:
        records = self.instance.fetch_observations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("contact_enrichment_batch"), asset_partitions=[date]
            ),
            limit=10_000,
            ascending=True,
        ).records
        return [
            {k: v.value for k, v in r.asset_observation.metadata.items()}
            for r in records
            if r.asset_observation is not None
        ]

    def latest_materialization(self, key: str, date: str | None = None) -> dg.AssetMaterialization:
        result = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(key), asset_partitions=[date] if date else None
            ),
            limit=1,
        )
        assert result.records, f"{key}[{date}] was never materialised"
        materialization = result.records[0].asset_materialization
        assert materialization is not None
        return materialization

    def check_results(self, run: dg.ExecuteInProcessResult) -> dict[str, bool]:
        return {e.check_name: e.passed for e in run.get_asset_check_evaluations()}


def _csv_cell(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value

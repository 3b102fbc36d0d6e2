"""The submitter evaluated by Dagster's own sensor-daemon tick machinery, in this process.

A test gets a real instance, the project's code location loaded as the daemon loads it (on the
test's emulator and data root, from a small generated module), and `tick()`: one evaluation of
`contact_enrichment_sensor` through the daemon's tick function, so the tick's status, error
text and cursor are exactly what the daemon records (a failed tick keeps no cursor and launches
no run), and the runs it requests are launched (synchronously) as the daemon launches them.
Dagster's clock is moved a minute per tick so the sensor's minimum interval never skips one.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.sensor_definition import DefaultSensorStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorTick,
    InstigatorType,
    SensorInstigatorData,
)
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.sensor import _process_tick_generator

SENSOR = "contact_enrichment_sensor"
LOCATION = '''"""One test's code location: the project's definitions on its emulator and data."""
from crust_assets.definitions import build_definitions
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings

defs = build_definitions(
    {{
        "crustdata": CrustdataResource(api_key={key!r}, base_url={base_url!r}, timeout_seconds=5.0),
        "enrichment": EnrichmentSettings(**{settings!r}),
        "data_root": DataRoot(data_dir={data_dir!r}),
    }}
)
'''


@dataclass
class DaemonSensor:
    instance: dg.DagsterInstance
    workspace: WorkspaceProcessContext
    clock: float

    def tick(self) -> InstigatorTick:
        """One tick of the submitter as the daemon runs it; the tick as the daemon recorded it."""
        self.clock = max(self.clock + 60.0, time.time())
        with freeze_time(self.clock):
            location = next(iter(self.workspace.create_request_context().code_locations))
            repo = next(iter(location.get_repositories().values()))
            sensor = repo.get_sensor(SENSOR)
            assert sensor.default_status == DefaultSensorStatus.RUNNING
            origin_id, selector_id = sensor.get_remote_origin_id(), sensor.selector_id
            state = self.instance.get_instigator_state(origin_id, selector_id)
            if state is None:  # what the daemon stores at a default-on sensor's first tick
                state = InstigatorState(
                    sensor.get_remote_origin(),
                    InstigatorType.SENSOR,
                    InstigatorStatus.DECLARED_IN_CODE,
                    SensorInstigatorData(
                        min_interval=sensor.min_interval_seconds,
                        last_sensor_start_timestamp=self.clock,
                        sensor_type=sensor.sensor_type,
                    ),
                )
                self.instance.add_instigator_state(state)
            retention = self.instance.get_tick_retention_settings(InstigatorType.SENSOR)
            # The daemon logs a failed evaluation's error and yields it; the tick records it.
            for _ in _process_tick_generator(
                self.workspace, logging.getLogger(SENSOR), sensor, state, None, retention, None
            ):
                pass
        return self.instance.get_ticks(origin_id, selector_id, limit=1)[0]

    def cursor(self) -> str | None:
        """The cursor the daemon kept (a failed tick's is not kept)."""
        [state] = [
            s
            for s in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
            if s.instigator_name == SENSOR
        ]
        data = state.instigator_data
        return data.cursor if isinstance(data, SensorInstigatorData) else None


@contextmanager
def daemon_sensor(
    tmp_path: Path,
    *,
    base_url: str,
    data_dir: Path,
    api_key: str = "test-key",
    settings: Mapping[str, Any] | None = None,
) -> Iterator[DaemonSensor]:
    """A real instance (runs launched synchronously, in this process) and the code location."""
    module = tmp_path / f"location_{abs(hash((str(tmp_path), api_key))):x}.py"
    module.write_text(
        LOCATION.format(
            key=api_key,
            base_url=base_url,
            data_dir=str(data_dir),
            settings={"retry_cooldown_seconds": 0, **(settings or {})},
        )
    )
    origin = LoadableTargetOrigin(
        executable_path=sys.executable,
        python_file=str(module),
        attribute="defs",
        working_directory=str(tmp_path),
    )
    with ExitStack() as stack:
        instance = stack.enter_context(
            dg.instance_for_test(synchronous_run_launcher=True, synchronous_run_coordinator=True)
        )
        target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
        workspace = stack.enter_context(WorkspaceProcessContext(instance, target))
        yield DaemonSensor(instance, workspace, time.time())

"""The file sensor does not plan a list again that was planned as the file is now.

Dagster keeps the file sensor's cursor and run keys per code-location name: after a rename the
sensor starts with neither. The rule (`already_read`) is tested on values; the whole case runs
through Dagster's own sensor-daemon tick function on one real instance: the sensor, on under the
old location name, plans a list; under the new name, turned on again with an empty cursor, it
requests nothing for that list, and requests it again once the file changes.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.external import RemoteSensor
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.sensor import _process_tick_generator

from crust_assets.defs.planned_lists import ListRead, already_read
from crust_assets_tests.pipeline_harness import make_urls

URL = "file:///srv/crust/input/2026-11-06.csv"
DATE = "2026-11-06"
SENSOR = "contact_url_list_file_sensor"
LOCATION = '''"""The project's definitions on one test's data root (no API call is made)."""
from crust_assets.definitions import build_definitions
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings

defs = build_definitions(
    {{
        "crustdata": CrustdataResource(api_key="test-key", base_url="http://127.0.0.1:9"),
        "enrichment": EnrichmentSettings(),
        "data_root": DataRoot(data_dir={data_dir!r}),
    }}
)
'''


# ---- the rule, on values ------------------------------------------------------------------------
def test_a_list_read_as_it_is_now_is_not_planned_again() -> None:
    read = ListRead(input_url=URL, modified_ns=1_000, recorded_ns=5_000)
    assert already_read(URL, 1_000, read)


def test_a_changed_file_is_planned_again_newer_or_older() -> None:
    read = ListRead(input_url=URL, modified_ns=1_000, recorded_ns=5_000)
    assert not already_read(URL, 1_001, read)
    assert not already_read(URL, 999, read)  # replaced by an older copy: another file
    # Changed during the read: the recorded time is the one before, so it is not the same file.
    assert not already_read(URL, 4_000, read)


def test_a_day_never_planned_or_read_from_another_file_is_planned() -> None:
    assert not already_read(URL, 1_000, None)
    moved = ListRead(input_url="s3://old/input/2026-11-06.csv", modified_ns=1_000, recorded_ns=1)
    assert not already_read(URL, 1_000, moved)


def test_a_materialisation_older_than_the_time_record_goes_by_its_own_time() -> None:
    before = ListRead(input_url=URL, modified_ns=None, recorded_ns=5_000)
    assert already_read(URL, 4_999, before)
    assert already_read(URL, 5_000, before)
    assert not already_read(URL, 5_001, before)  # written after that plan read the list
    assert already_read(URL, 10, ListRead(input_url=None, modified_ns=None, recorded_ns=5_000))


# ---- through the daemon's tick function, across a rename ---------------------------------------
class Location:
    """One code-location name's file sensor, ticked as the sensor daemon ticks it."""

    def __init__(self, instance: dg.DagsterInstance, workspace: WorkspaceProcessContext) -> None:
        self.instance, self.workspace = instance, workspace
        self.clock = time.time()
        with freeze_time(self.clock):
            sensor = self._sensor()
            instance.start_sensor(sensor)  # what the UI's toggle does: the user turns it on
            self.ids = sensor.get_remote_origin_id(), sensor.selector_id

    def _sensor(self) -> RemoteSensor:
        location = next(iter(self.workspace.create_request_context().code_locations))
        return next(iter(location.get_repositories().values())).get_sensor(SENSOR)

    def tick(self) -> InstigatorTick:
        self.clock = max(self.clock + 60.0, time.time())  # past the 30 s minimum interval
        with freeze_time(self.clock):
            sensor = self._sensor()
            state = self.instance.get_instigator_state(*self.ids)
            assert state is not None and state.is_running
            retention = self.instance.get_tick_retention_settings(state.instigator_type)
            for _ in _process_tick_generator(
                self.workspace, logging.getLogger(SENSOR), sensor, state, None, retention, None
            ):
                pass
        return self.instance.get_ticks(*self.ids, limit=1)[0]


@contextmanager
def locations(tmp_path: Path, data_dir: Path) -> Iterator[dict[str, Location]]:
    """The same definitions under the old and the new location name, on one real instance."""
    module = tmp_path / "renamed_location.py"
    module.write_text(LOCATION.format(data_dir=str(data_dir)))
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
        found = {}
        for name in ("crust_assets.definitions", "crust_assets"):
            target = InProcessTestWorkspaceLoadTarget(
                InProcessCodeLocationOrigin(origin, location_name=name)
            )
            workspace = stack.enter_context(WorkspaceProcessContext(instance, target))
            found[name] = Location(instance, workspace)
        yield found


def write_list(data_dir: Path, urls: list[str]) -> Path:
    path = data_dir / "input" / f"{DATE}.csv"
    path.write_text("profile_url\n" + "\n".join(urls) + "\n", encoding="utf-8")
    return path


def reads(instance: dg.DagsterInstance, asset: str = "contact_url_list") -> int:
    """How many times the day's list was read (or, for the batch asset, planned)."""
    records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[DATE])
    return len(instance.fetch_materializations(records_filter, limit=100).records)


def test_a_renamed_location_does_not_plan_a_planned_list_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    path = write_list(data_dir, make_urls("renamed", 3))
    with locations(tmp_path, data_dir) as found:
        old, new = found["crust_assets.definitions"], found["crust_assets"]
        tick = old.tick()
        assert tick.status == TickStatus.SUCCESS and len(tick.run_ids) == 1
        assert reads(old.instance) == 1  # the old location read the list
        assert reads(old.instance, "contact_enrichment_batch") == 1  # and planned the day

        # Renamed: the new name's sensor, turned on again, has no cursor and no run key.
        tick = new.tick()
        assert tick.status == TickStatus.SKIPPED and not tick.run_ids
        assert "1 already planned as they are now" in (tick.skip_reason or "")
        assert reads(new.instance) == 1

        # The list changes: the new name's sensor requests the day again, and the run reads it
        # (planning then waits for the unfinished plan's jobs, as it does for any re-plan).
        write_list(data_dir, make_urls("renamed", 4))
        later = time.time_ns() + 2_000_000_000
        os.utime(path, ns=(later, later))
        tick = new.tick()
        assert tick.status == TickStatus.SUCCESS and len(tick.run_ids) == 1
        [run] = new.instance.get_runs(dg.RunsFilter(run_ids=list(tick.run_ids)))
        assert run.tags["dagster/partition"] == DATE and run.tags["crust/input"] == path.name
        assert reads(new.instance) == 2
        assert new.tick().status == TickStatus.SKIPPED  # and once only

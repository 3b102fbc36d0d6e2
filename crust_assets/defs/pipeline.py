"""One copy of the pipeline as `Definitions`, for a `Names`: the code location and the Component.

The unprefixed copy (`Names()`) is `crust_assets.definitions`, exactly as it always was; the
Component builds one copy per `defs.yaml`, each with its own prefix, data root and API key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from crust_assets.defs.assets import pipeline_assets
from crust_assets.defs.enriched_list_asset import enriched_list_asset
from crust_assets.defs.freshness import freshness_sensor, on_time_check
from crust_assets.defs.jobs import pipeline_jobs
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.resources import DataRoot
from crust_assets.defs.schedules import daily_schedule
from crust_assets.defs.sensors import automation_sensor, file_sensor, submitter_sensor
from crust_assets.names import Names
from crust_assets.tables_io import ContactTablesIOManager


@dataclass(frozen=True)
class PipelineOptions:
    """What differs between copies besides their names and resources."""

    partitions: dg.PartitionsDefinition = daily_partitions
    schedule_on: bool = False  # the daily schedule's default status
    file_sensor_on: bool = False  # the new-list sensor's default status
    data_dir: str | None = None  # for the catalog's table URIs (default: CRUST_DATA_DIR)


def copy_resources(names: Names, resources: Mapping[str, object]) -> dict[str, object]:
    """`resources` keyed as the unprefixed copy's, under the copy's keys, plus the tables' IO
    manager on the same data root if they lack one."""
    out = {names.name(key): value for key, value in resources.items()}
    if names.tables_io_manager not in out:
        data_root = out.get(names.data_root)
        out[names.tables_io_manager] = ContactTablesIOManager(
            data_dir=data_root.data_dir if isinstance(data_root, DataRoot) else None
        )
    return out


def pipeline_assets_of(names: Names, options: PipelineOptions) -> list[dg.AssetsDefinition]:
    """The seven assets of a copy, upstream first."""
    return [
        *pipeline_assets(names, options.partitions, options.data_dir),
        enriched_list_asset(names, options.partitions, options.data_dir),
    ]


def build_pipeline(
    names: Names,
    resources: Mapping[str, object],
    options: PipelineOptions | None = None,
    *,
    assets: Sequence[dg.AssetsDefinition] | None = None,
    extra_sensors: Sequence[dg.SensorDefinition] = (),
) -> dg.Definitions:
    """The copy's Definitions; `resources` are keyed as the unprefixed copy's (crustdata, ...).

    No executor: the jobs carry their own, so the result merges into any project."""
    options = options or PipelineOptions()
    plan_job, load_job = pipeline_jobs(names)
    return dg.Definitions(
        assets=list(assets) if assets is not None else pipeline_assets_of(names, options),
        asset_checks=[on_time_check(names, schedule_on=options.schedule_on)],
        jobs=[plan_job, load_job],
        sensors=[
            submitter_sensor(names, load_job),
            file_sensor(names, plan_job, options.partitions, on=options.file_sensor_on),
            automation_sensor(names),
            freshness_sensor(names, schedule_on=options.schedule_on),
            *extra_sensors,
        ],
        schedules=[daily_schedule(names, plan_job, on=options.schedule_on)],
        resources=copy_resources(names, resources),
    )

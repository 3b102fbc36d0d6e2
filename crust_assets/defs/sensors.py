"""Sensors: the one job submitter, and the watcher that starts a partition when its list lands.

`contact_enrichment_sensor` is the ONLY code that submits jobs: the account allows 5 active jobs
in total, and a single writer (the daemon serialises a sensor's ticks) is what keeps a 30-day
backfill from fighting over the slots or billing a job twice. The rules are in
`crust_assets.lifecycle`; `crust_assets.defs.submitter` runs them.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import dagster as dg

from crust_assets.defs.hints import poll_interval_seconds, sensor_interval_seconds
from crust_assets.defs.jobs import (
    PIPELINE_RUN_TAGS,
    enriched_contacts_job,
    plan_contact_enrichment_job,
)
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.planned_lists import already_read, last_read
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.defs.submitter import SubmitterTick
from crust_assets.lifecycle.settings import SENSOR_CALL_TIMEOUT_SECONDS, SENSOR_RETRY_SECONDS
from crust_assets.names import DEFAULT_NAMES, Names, current, using

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def submitter_sensor(names: Names, job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """The copy's submitter: the only code of the copy that submits, on its own API key."""

    @dg.sensor(
        name=names.submitter_sensor,
        job=job,
        minimum_interval_seconds=sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={names.crustdata, names.enrichment, names.data_root},
        description=(
            "The only job submitter: keeps up to 5 Crustdata jobs active across all partitions "
            "(oldest first), polls them, records each job's life on contact_enrichment_batch, "
            "and requests enriched_contacts[date] when a partition's jobs are all done (again, "
            "with backoff, if that run fails before loading)."
        ),
    )
    # `**_`: called directly (a test), Dagster also passes the required resources by key.
    def contact_enrichment_sensor(
        context: dg.SensorEvaluationContext, **_: object
    ) -> dg.SensorResult:
        resources = context.resources
        with using(names):
            return submit_tick(
                context,
                getattr(resources, names.crustdata),
                getattr(resources, names.enrichment),
                getattr(resources, names.data_root),
            )

    return contact_enrichment_sensor


def submit_tick(
    context: dg.SensorEvaluationContext,
    crustdata: CrustdataResource,
    enrichment: EnrichmentSettings,
    data_root: DataRoot,
) -> dg.SensorResult:
    # Short calls and retry budget: the tick must end well inside Dagster's 60 s limit (a shorter
    # timeout set on the resource wins, and is the one the look-up window uses). The webhook URL
    # holds the receiver's token: the client masks it in every server text, even when polling.
    timeout = min(crustdata.timeout_seconds, SENSOR_CALL_TIMEOUT_SECONDS)
    masked, keys = (enrichment.webhook_url,), (crustdata.api_key,)
    with crustdata.client(
        timeout=timeout, max_retry_seconds=SENSOR_RETRY_SECONDS, secrets=masked
    ) as client:
        tick = SubmitterTick(
            context, client, enrichment, data_root, call_timeout=timeout, secrets=keys
        )
        return tick.run()


INPUT_FILE_PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv$")


def file_sensor(
    names: Names,
    job: UnresolvedAssetJobDefinition,
    partitions: dg.PartitionsDefinition,
    *,
    on: bool = False,
) -> dg.SensorDefinition:
    """The copy's watcher of its data root's input folder; stopped unless `on`."""

    @dg.sensor(
        name=names.file_sensor,
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED,
        required_resource_keys={names.data_root},
        description=(
            "Starts a partition when a new or changed <data>/input/<YYYY-MM-DD>.csv appears. "
            "Stopped by default: turning it on spends credits on every list that lands."
        ),
    )
    def contact_url_list_file_sensor(
        context: dg.SensorEvaluationContext, **_: object
    ) -> dg.SensorResult:
        with using(names):
            return new_lists(context, getattr(context.resources, names.data_root), partitions)

    return contact_url_list_file_sensor


def new_lists(
    context: dg.SensorEvaluationContext, data_root: DataRoot, partitions: dg.PartitionsDefinition
) -> dg.SensorResult:
    layout = data_root.layout()
    input_dir = layout.input_dir
    watermark, seen_at_watermark = parse_file_cursor(context.cursor)
    newest, seen_at_newest = watermark, set(seen_at_watermark)
    requests, planned = [], []
    valid_keys = set(partitions.get_partition_keys())
    # Listed through the data root's filesystem: on S3 the time is the object's LastModified,
    # in whole seconds, so a list landing in the second of the watermark is told apart by name.
    for name, modified in layout.list_files(input_dir):
        match = INPUT_FILE_PATTERN.match(name)
        if not match:
            continue
        if modified < watermark or (modified == watermark and name in seen_at_watermark):
            continue
        if modified > newest:
            newest, seen_at_newest = modified, set()
        if modified == newest:
            seen_at_newest.add(name)
        date = match.group(1)
        if date not in valid_keys:
            context.log.warning(f"{name}: {date} is not a partition of this pipeline")
            continue
        # Without a cursor (a new sensor, or a renamed code location) every list is new to the
        # cursor: the event log says which ones were already planned as they are now.
        read = last_read(context.instance, current().url_list_key, date)
        if already_read(layout.url(layout.input_file(date)), modified, read):
            planned.append(name)
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{date}:{modified}", partition_key=date, tags={"crust/input": name}
            )
        )
    skip = f"no new list in {layout.url(input_dir)}"
    if planned:
        context.log.info(
            f"{len(planned)} list(s) already planned as they are now, not planned again: "
            f"{', '.join(planned[:10])}{' ...' if len(planned) > 10 else ''}"
        )
        skip += f" ({len(planned)} already planned as they are now)"
    return dg.SensorResult(
        run_requests=requests,
        cursor=file_cursor(newest, seen_at_newest),
        skip_reason=None if requests else skip,
    )


def file_cursor(mtime_ns: int, names: set[str]) -> str:
    """The watermark, plus the (few) names already seen at exactly that time."""
    if not names:
        return str(mtime_ns)
    return json.dumps({"mtime_ns": mtime_ns, "names": sorted(names)})


def parse_file_cursor(cursor: str | None) -> tuple[int, set[str]]:
    """Reads both forms: a bare watermark (older cursors) and the watermark with names."""
    if not cursor:
        return 0, set()
    if cursor.lstrip().startswith("{"):
        value = json.loads(cursor)
        return int(value["mtime_ns"]), set(value["names"])
    return int(cursor), set()


# contact_coverage and contacts_latest carry automation conditions; this sensor evaluates them
# (on by default, so they follow enriched_contacts without anyone clicking).
def automation_sensor(names: Names) -> dg.AutomationConditionSensorDefinition:
    """The copy's evaluator of the automation conditions of its downstream assets."""
    return dg.AutomationConditionSensorDefinition(
        names.automation_sensor,
        target=dg.AssetSelection.assets(
            names.coverage_key, names.latest_key, names.duckdb_key, names.list_key
        ),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=poll_interval_seconds(),
        run_tags=PIPELINE_RUN_TAGS,
        description="Updates contact_coverage, contacts_latest and enriched_list when "
        "enriched_contacts changes.",
    )


# The unprefixed code location's sensors.
contact_enrichment_sensor = submitter_sensor(DEFAULT_NAMES, enriched_contacts_job)
contact_url_list_file_sensor = file_sensor(
    DEFAULT_NAMES, plan_contact_enrichment_job, daily_partitions
)
contact_automation_sensor = automation_sensor(DEFAULT_NAMES)

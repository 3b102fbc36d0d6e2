"""Sensors: the one job submitter, and the watcher that starts a partition when its list lands.

`contact_enrichment_sensor` is the ONLY code that submits jobs: the account allows 5 active jobs
in total, and a single writer (the daemon serialises a sensor's ticks) is what keeps a 30-day
backfill from fighting over the slots or billing a job twice. The rules are in
`crust_assets.lifecycle`; `crust_assets.defs.submitter` runs them.
"""

import json
import re

import dagster as dg

from crust_assets.defs.hints import poll_interval_seconds, sensor_interval_seconds
from crust_assets.defs.jobs import (
    PIPELINE_RUN_TAGS,
    enriched_contacts_job,
    plan_contact_enrichment_job,
)
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.defs.submitter import SubmitterTick
from crust_assets.lifecycle.settings import SENSOR_CALL_TIMEOUT_SECONDS

# One API call's retry budget inside a tick.
SENSOR_RETRY_SECONDS = 5.0


@dg.sensor(
    name="contact_enrichment_sensor",
    job=enriched_contacts_job,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "The only job submitter: keeps up to 5 Crustdata jobs active across all partitions "
        "(oldest first), polls them, records each job's life on contact_enrichment_batch, and "
        "requests enriched_contacts[date] when a partition's jobs are all done (again, with "
        "backoff, if that run fails before loading)."
    ),
)
def contact_enrichment_sensor(
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


@dg.sensor(
    name="contact_url_list_file_sensor",
    job=plan_contact_enrichment_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Starts a partition when a new or changed <data>/input/<YYYY-MM-DD>.csv appears. Stopped "
        "by default: turning it on spends credits on every list that lands."
    ),
)
def contact_url_list_file_sensor(
    context: dg.SensorEvaluationContext, data_root: DataRoot
) -> dg.SensorResult:
    layout = data_root.layout()
    input_dir = layout.input_dir
    watermark, seen_at_watermark = parse_file_cursor(context.cursor)
    newest, seen_at_newest = watermark, set(seen_at_watermark)
    requests = []
    valid_keys = set(daily_partitions.get_partition_keys())
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
        requests.append(
            dg.RunRequest(
                run_key=f"{date}:{modified}", partition_key=date, tags={"crust/input": name}
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        cursor=file_cursor(newest, seen_at_newest),
        skip_reason=None if requests else f"no new list in {layout.url(input_dir)}",
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
contact_automation_sensor = dg.AutomationConditionSensorDefinition(
    "contact_automation_sensor",
    target=dg.AssetSelection.assets(
        "contact_coverage", "contacts_latest", "contacts_duckdb", "enriched_list"
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=poll_interval_seconds(),
    run_tags=PIPELINE_RUN_TAGS,
    description="Updates contact_coverage, contacts_latest and enriched_list when "
    "enriched_contacts changes.",
)

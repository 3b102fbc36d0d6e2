"""The daily schedule: plan today's list, if it has landed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from crust_assets.defs.jobs import plan_contact_enrichment_job
from crust_assets.defs.resources import DataRoot
from crust_assets.freshness import SCHEDULE_CRON
from crust_assets.names import DEFAULT_NAMES, Names, using

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def daily_schedule(
    names: Names, job: UnresolvedAssetJobDefinition, *, on: bool = False
) -> dg.ScheduleDefinition:
    """The copy's schedule of its plan job; stopped unless `on`."""

    @dg.schedule(
        name=names.schedule,
        job=job,
        cron_schedule=SCHEDULE_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED,
        required_resource_keys={names.data_root},
        description=(
            "Every day at 06:00 UTC: read <data>/input/<today>.csv and enqueue its jobs. Skips, "
            "naming the expected file, when the list is not there."
        ),
    )
    def daily_contact_enrichment_schedule(
        context: dg.ScheduleEvaluationContext, **_: object
    ) -> dg.RunRequest | dg.SkipReason:
        with using(names):
            return plan_today(context, getattr(context.resources, names.data_root))

    return daily_contact_enrichment_schedule


def plan_today(
    context: dg.ScheduleEvaluationContext, data_root: DataRoot
) -> dg.RunRequest | dg.SkipReason:
    date = context.scheduled_execution_time.date().isoformat()
    layout = data_root.layout()
    path = layout.input_file(date)
    if not layout.is_file(path):
        return dg.SkipReason(f"No list for {date}: expected {layout.url(path)}")
    return dg.RunRequest(run_key=f"scheduled:{date}", partition_key=date)


# The unprefixed code location's schedule.
daily_contact_enrichment_schedule = daily_schedule(DEFAULT_NAMES, plan_contact_enrichment_job)

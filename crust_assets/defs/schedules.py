"""The daily schedule: plan today's list, if it has landed."""

import dagster as dg

from crust_assets.defs.jobs import plan_contact_enrichment_job
from crust_assets.defs.resources import DataRoot
from crust_assets.freshness import SCHEDULE_CRON


@dg.schedule(
    name="daily_contact_enrichment_schedule",
    job=plan_contact_enrichment_job,
    cron_schedule=SCHEDULE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Every day at 06:00 UTC: read <data>/input/<today>.csv and enqueue its jobs. Skips, "
        "naming the expected file, when the list is not there."
    ),
)
def daily_contact_enrichment_schedule(
    context: dg.ScheduleEvaluationContext, data_root: DataRoot
) -> dg.RunRequest | dg.SkipReason:
    date = context.scheduled_execution_time.date().isoformat()
    layout = data_root.layout()
    path = layout.input_file(date)
    if not layout.is_file(path):
        return dg.SkipReason(f"No list for {date}: expected {layout.url(path)}")
    return dg.RunRequest(run_key=f"scheduled:{date}", partition_key=date)

"""When `enriched_contacts[day]` is due, said to Dagster twice: a policy and a check.

- `FreshnessPolicy.cron` on the asset, so the catalog and Dagster+ show the deadline and alert
  on it. Open-source Dagster's freshness daemon evaluates it on the asset's newest
  materialisation of ANY partition, so a backfill of an old day makes it pass while the due day
  is missing, and it never names a partition.
- The non-blocking check `enriched_contacts_on_time`, which names the due partition and why it is
  late (no input file, plan not made, jobs running, load failed). A sensor records it once per
  change (no run is launched); in a load run it checks the run's own partition.

A day is only expected when the daily schedule is on or the day has a list or a plan: with the
schedule off and no list, nothing is late and nothing is recorded (the demo stays as it was).
"""

import os
from datetime import date, datetime

import dagster as dg
from dagster._time import get_current_datetime

from crust_assets.crustdata.redact import SecretScrubber
from crust_assets.defs.loads import run_failure_reason
from crust_assets.defs.resources import DataRoot
from crust_assets.doctor import instigator_on
from crust_assets.freshness import (
    DEADLINE_ENV,
    DEFAULT_DEADLINE_CRON,
    DayFacts,
    Verdict,
    deadline_of,
    due_day,
    late_verdict,
    window_before_deadline,
)
from crust_assets.names import DEFAULT_NAMES, Names, current, using
from crust_assets.storage import DataLayout

ON_TIME = "enriched_contacts_on_time"


def deadline_cron() -> str:
    """CRUST_FRESHNESS_DEADLINE_CRON, checked when the code location loads."""
    from dagster._utils.schedules import is_valid_cron_string

    cron = os.environ.get(DEADLINE_ENV, "").strip() or DEFAULT_DEADLINE_CRON
    if not is_valid_cron_string(cron):
        raise ValueError(f"{DEADLINE_ENV} must be a cron string such as '0 10 * * *', got {cron!r}")
    return cron


def enriched_contacts_freshness_policy() -> dg.FreshnessPolicy:
    """Due by the deadline, materialised after the schedule's tick that precedes it."""
    cron = deadline_cron()
    return dg.FreshnessPolicy.cron(
        deadline_cron=cron, lower_bound_delta=window_before_deadline(cron), timezone="UTC"
    )


def _has_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, day: str) -> bool:
    records = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day])
    return bool(instance.fetch_materializations(records, limit=1).records)


def _load_failure(instance: dg.DagsterInstance, day: str) -> str | None:
    """The reason of the newest load run of `day`, when that run failed, with the API key and
    the webhook URL's token masked (the reason becomes the check's description)."""
    newest = instance.get_run_records(
        dg.RunsFilter(job_name=current().load_job, tags={"dagster/partition": day}), limit=1
    )
    if not newest or newest[0].dagster_run.status != dg.DagsterRunStatus.FAILURE:
        return None
    run_id = newest[0].dagster_run.run_id
    secrets = SecretScrubber(os.getenv("CRUSTDATA_API_KEY"), os.getenv("CRUST_WEBHOOK_URL"))
    reason = run_failure_reason(instance, run_id, secrets).splitlines()[0][:300]
    return f"run {run_id[:8]}: {reason}"


def day_facts(
    instance: dg.DagsterInstance, layout: DataLayout, day: date, schedule_on: bool
) -> DayFacts:
    """What the instance and the data root say about `day`."""
    from crust_assets.defs.job_events import find_plan, plan_outcome

    key = day.isoformat()
    path = layout.input_file(key)
    plan = find_plan(instance, key)
    done = total = 0
    if plan is not None:
        outcome = plan_outcome(instance, plan)
        total, done = plan.job_count, len(outcome.completed) + len(outcome.abandoned)
    input_exists = layout.is_file(path)
    return DayFacts(
        day=day,
        loaded=_has_materialization(instance, current().contacts_key, key),
        expected=schedule_on or input_exists or plan is not None,
        input_file=layout.url(path),
        input_exists=input_exists,
        plan_made=plan is not None,
        jobs_total=total,
        jobs_done=done,
        load_failed=_load_failure(instance, key) if plan is not None else None,
    )


def verdict_for(
    instance: dg.DagsterInstance,
    layout: DataLayout,
    now: datetime,
    day: date | None = None,
    *,
    schedule_on_by_default: bool = False,
) -> tuple[date, Verdict | None]:
    """The verdict on `day` (default: the newest day due at `now`). A day is expected when the
    copy's schedule is on: as the instance records it, else the schedule's code default."""
    cron = deadline_cron()
    day = day or due_day(now, cron)
    deadline = deadline_of(day, cron)
    if now < deadline and not _has_materialization(instance, current().contacts_key, str(day)):
        return day, None  # not due yet
    schedule_on = instigator_on(instance, current().schedule, on_by_default=schedule_on_by_default)
    return day, late_verdict(day_facts(instance, layout, day, schedule_on), deadline)


def evaluation(day: date, verdict: Verdict) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=current().contacts_key,
        check_name=ON_TIME,
        passed=verdict.passed,
        description=verdict.text,
        metadata={"partition": day.isoformat(), "cause": verdict.cause},
        severity=dg.AssetCheckSeverity.ERROR,
    )


def on_time_check(names: Names, *, schedule_on: bool = False) -> dg.AssetChecksDefinition:
    """The copy's `enriched_contacts_on_time` check; `schedule_on` is the copy's schedule's
    default status (a day is expected while the schedule is on)."""

    @dg.asset_check(
        asset=names.contacts_key,
        name=ON_TIME,
        blocking=False,
        required_resource_keys={names.data_root},
        description=(
            "The day due by CRUST_FRESHNESS_DEADLINE_CRON (default 10:00 UTC) is loaded; when "
            "late, names the partition and why: no input file, plan not made, jobs running, "
            "load failed."
        ),
    )
    def enriched_contacts_on_time(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        with using(names):
            data_root = getattr(context.resources, names.data_root)
            return on_time_result(context, data_root, schedule_on=schedule_on)

    return enriched_contacts_on_time


def on_time_result(
    context: dg.AssetCheckExecutionContext, data_root: DataRoot, *, schedule_on: bool = False
) -> dg.AssetCheckResult:
    partition = context.run.tags.get("dagster/partition")
    day = date.fromisoformat(partition) if partition else None
    now = get_current_datetime()
    day, verdict = verdict_for(
        context.instance, data_root.layout(), now, day, schedule_on_by_default=schedule_on
    )
    if verdict is None:
        verdict = Verdict(True, "not_due", f"enriched_contacts[{day.isoformat()}] is not due")
    return dg.AssetCheckResult(
        passed=verdict.passed,
        description=verdict.text,
        metadata={"partition": day.isoformat(), "cause": verdict.cause},
    )


def freshness_sensor(names: Names, *, schedule_on: bool = False) -> dg.SensorDefinition:
    """The copy's `enriched_contacts_freshness_sensor`: records the check, launches nothing;
    `schedule_on` is the copy's schedule's default status."""

    @dg.sensor(
        name=names.freshness_sensor,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={names.data_root},
        description=(
            "Records enriched_contacts_on_time for the day due by CRUST_FRESHNESS_DEADLINE_CRON, "
            "once per change: late (with the cause) or loaded. Launches nothing."
        ),
    )
    def enriched_contacts_freshness_sensor(
        context: dg.SensorEvaluationContext, **_: object
    ) -> dg.SensorResult | dg.SkipReason:
        with using(names):
            data_root = getattr(context.resources, names.data_root)
            return record_freshness(context, data_root, schedule_on=schedule_on)

    return enriched_contacts_freshness_sensor


def record_freshness(
    context: dg.SensorEvaluationContext, data_root: DataRoot, *, schedule_on: bool = False
) -> dg.SensorResult | dg.SkipReason:
    now = get_current_datetime()
    layout = data_root.layout()
    day, verdict = verdict_for(context.instance, layout, now, schedule_on_by_default=schedule_on)
    if verdict is None:
        return dg.SkipReason(f"enriched_contacts[{day.isoformat()}] is not expected or not due")
    state = f"{day.isoformat()}:{verdict.cause}"
    if state == context.cursor:
        return dg.SkipReason(f"unchanged: {verdict.text}")
    return dg.SensorResult(asset_events=[evaluation(day, verdict)], cursor=state)


enriched_contacts_on_time = on_time_check(DEFAULT_NAMES)
enriched_contacts_freshness_sensor = freshness_sensor(DEFAULT_NAMES)

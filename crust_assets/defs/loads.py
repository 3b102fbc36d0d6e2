"""The instance's side of the sensor's loads: the runs of `enriched_contacts[date]` requested for
a settled plan, how they stand, and the run requests (the decisions are in
`crust_assets.lifecycle.decide`: request, watch, request again after a backoff, give up).

Why the sensor and not the run's RetryPolicy: a RetryPolicy retries within seconds, inside one
run; an object store that is down for minutes outlasts it. The sensor already ticks forever,
so it is the one place that can wait minutes and try again with no person involved.

What survives a crash: each request, failure and give-up is an event on
`contact_enrichment_batch[date]` (folded by the ledger), and a run is found again by its
tags (`crust/plan_id`, `crust/load_attempt`), so a replayed tick reaches the same state. A
request is repeated only with the same run key, which the daemon launches at most once.
"""

import re

import dagster as dg

from crust_assets.crustdata.redact import SecretScrubber
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.load_retry import LoadRun, LoadRunStatus, load_run_key
from crust_assets.names import current

PLAN_TAG = "crust/plan_id"
ATTEMPT_TAG = "crust/load_attempt"
# Runs of one plan looked at, newest first: its attempts, plus a few runs launched by hand.
MAX_RUNS_PER_PLAN = 50
_MODULE_PATH = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=\w+: )")
_ENDED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def latest_load_run(
    instance: dg.DagsterInstance,
    plan_id: str,
    attempt: int | None = None,
    scrubber: SecretScrubber | None = None,
) -> LoadRun | None:
    """The newest load run of the plan (of `attempt`, if given). Runs requested before load
    attempts were tagged count as attempt 1. A failure text goes into events and the sensor's
    summary: `scrubber` masks any secret in it."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=current().load_job, tags={PLAN_TAG: plan_id}),
        limit=MAX_RUNS_PER_PLAN,
    )
    for record in records:
        run = record.dagster_run
        run_attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
        if attempt is None or run_attempt == attempt:
            status, reason = _run_status(instance, run, scrubber or SecretScrubber())
            return LoadRun(run.run_id, run_attempt, status, record.end_time, reason)
    return None


def _run_status(
    instance: dg.DagsterInstance, run: dg.DagsterRun, scrubber: SecretScrubber
) -> tuple[LoadRunStatus, str]:
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return LoadRunStatus.LOADED, ""
    if run.status not in _ENDED:
        return LoadRunStatus.RUNNING, ""
    # Written, then a blocking check failed: the check's report is the answer, not a retry.
    written = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1
    ).records
    if written:
        return LoadRunStatus.LOADED, ""
    if run.status == dg.DagsterRunStatus.CANCELED:
        return LoadRunStatus.CANCELED, f"run {run.run_id[:8]} was canceled"
    return LoadRunStatus.FAILED, run_failure_reason(instance, run.run_id, scrubber)


def run_failure_reason(instance: dg.DagsterInstance, run_id: str, scrubber: SecretScrubber) -> str:
    """The root cause of the run's last step failure (e.g. the DownloadError), else the run's
    own failure message: what a person would look for in the run's logs. It goes into events,
    check descriptions and the sensor's summary, so `scrubber` masks every secret in it."""
    step_failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    run_failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    for entry in [*reversed(step_failures), *run_failures]:
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        while error is not None and error.cause is not None:
            error = error.cause
        text = error.message if error is not None else entry.user_message
        if text and text.strip():
            return scrubber.text(_MODULE_PATH.sub("", text.strip()))
    return "the run failed"


def load_run_request(plan: PlanState, attempt: int) -> dg.RunRequest:
    """The run of one load attempt: the same run key every time, so it is launched once."""
    return dg.RunRequest(
        run_key=load_run_key(plan.date, plan.plan_id, attempt),
        partition_key=plan.date,
        tags={
            PLAN_TAG: plan.plan_id,
            "crust/plan_outcome": str(plan.outcome),
            ATTEMPT_TAG: str(attempt),
        },
    )


def pending_load_done(instance: dg.DagsterInstance, plan: PlanState) -> bool:
    """Whether the plan's pending load has in fact loaded."""
    run = latest_load_run(instance, plan.plan_id, plan.load_attempt or None)
    return run is not None and run.status == LoadRunStatus.LOADED

"""The sensor's loads: request `enriched_contacts[date]` for a settled plan, watch that run, and
request it again after a backoff when it failed, until it loads or the attempts run out.

Why the sensor and not the run's RetryPolicy: a RetryPolicy retries within seconds, inside one
run; an object store that is down for minutes outlasts it. The sensor already ticks forever,
so it is the one place that can wait minutes and try again with no person involved.

What survives a crash: each request, failure and give-up is an event on
`contact_enrichment_batch[date]` (folded by `QueueState.apply`), and a run is found again by its
tags (`crust/plan_id`, `crust/load_attempt`), so a replayed tick reaches the same state. A
request is repeated only with the same run key, which the daemon launches at most once.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

from crust_assets.crustdata.redact import SecretScrubber
from crust_assets.defs.jobs import enriched_contacts_job
from crust_assets.job_queue import JobEvent, PlanState, QueueState
from crust_assets.load_retry import (
    LoadAction,
    LoadRetryPolicy,
    LoadRunStatus,
    decide_load_retry,
    load_run_key,
    short_reason,
)

PLAN_TAG = "crust/plan_id"
ATTEMPT_TAG = "crust/load_attempt"
# Runs of one plan looked at, newest first: its attempts, plus a few runs launched by hand.
MAX_RUNS_PER_PLAN = 50
_MODULE_PATH = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=\w+: )")
_ENDED = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass(frozen=True)
class LoadRun:
    """The newest run of one load attempt, and how it stands."""

    run_id: str
    attempt: int
    status: LoadRunStatus
    ended_at: float | None
    reason: str = ""


def latest_load_run(
    instance: dg.DagsterInstance, plan_id: str, attempt: int | None = None
) -> LoadRun | None:
    """The newest load run of the plan (of `attempt`, if given). Runs requested before load
    attempts were tagged count as attempt 1."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=enriched_contacts_job.name, tags={PLAN_TAG: plan_id}),
        limit=MAX_RUNS_PER_PLAN,
    )
    for record in records:
        run = record.dagster_run
        run_attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
        if attempt is None or run_attempt == attempt:
            status, reason = _run_status(instance, run)
            return LoadRun(run.run_id, run_attempt, status, record.end_time, reason)
    return None


def _run_status(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[LoadRunStatus, str]:
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
    return LoadRunStatus.FAILED, run_failure_reason(instance, run.run_id)


def run_failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """The root cause of the run's last step failure (e.g. the DownloadError), else the run's
    own failure message: what a person would look for in the run's logs."""
    step_failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    run_failures = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    for entry in [*reversed(step_failures), *run_failures]:
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        while error is not None and error.cause is not None:
            error = error.cause
        text = error.message if error is not None else entry.user_message
        if text and text.strip():
            return _MODULE_PATH.sub("", text.strip())
    return "the run failed"


class LoadTracker:
    """One tick's work on the loads of settled plans; returns the run requests to make."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        state: QueueState,
        policy: LoadRetryPolicy,
        emit: Callable[..., None],
        notes: list[str],
        clock: Callable[[], float],
        scrubber: SecretScrubber,
    ) -> None:
        self.instance = instance
        self.state = state
        self.policy = policy
        self.emit = emit
        self.notes = notes
        self.clock = clock
        self.scrubber = scrubber

    def run_requests(self) -> list[dg.RunRequest]:
        requests = []
        for plan in self.state.loadable_plans():
            request = self._step(plan)
            if request is not None:
                requests.append(request)
        return requests

    def loaded(self, plan: PlanState) -> bool:
        """Whether the plan's pending load has in fact loaded (marks it so)."""
        run = latest_load_run(self.instance, plan.plan_id, plan.load_attempt or None)
        if run is not None and run.status == LoadRunStatus.LOADED:
            plan.load_state = "loaded"
            return True
        return False

    def _step(self, plan: PlanState) -> dg.RunRequest | None:
        if plan.load_state == "waiting":
            return self._retry_when_due(plan)
        if plan.load_state is None:
            # Not requested as far as the events say; a run of it may still exist (requested
            # before load attempts were recorded, or the cursor was reset): adopt that run.
            run = latest_load_run(self.instance, plan.plan_id)
            if run is None:
                return self._request(plan, 1)
            plan.load_state, plan.load_attempt = "requested", run.attempt
        else:
            run = latest_load_run(self.instance, plan.plan_id, plan.load_attempt)
        return self._settle(plan, run)

    def _settle(self, plan: PlanState, run: LoadRun | None) -> dg.RunRequest | None:
        label = f"{plan.date}: load attempt {plan.load_attempt}"
        if run is None:  # requested, not launched (yet): the same run key, launched once
            self.notes.append(f"{label} requested again (no run yet)")
            return self._run_request(plan, plan.load_attempt)
        if run.status == LoadRunStatus.RUNNING:
            self.notes.append(f"{label} running")
            return None
        if run.status == LoadRunStatus.LOADED:
            plan.load_state = "loaded"
            if plan.load_attempt > 1:
                self.notes.append(f"{label} loaded")
            return None
        reason = self.scrubber.text(run.reason)
        if run.status == LoadRunStatus.CANCELED:
            self._give_up(plan, f"{reason}; a person stopped it, so it is not retried")
            return None
        failed_at = run.ended_at or self.clock()
        decision = decide_load_retry(plan.load_attempt, failed_at, self.clock(), self.policy)
        if decision.action == LoadAction.GIVE_UP:
            self._failed(plan, reason, failed_at, retry_at=None)
            self._give_up(plan, f"failed {plan.load_attempt} times; last error: {reason}")
            return None
        retry_at = failed_at + self.policy.backoff(plan.load_attempt)
        self._failed(plan, reason, failed_at, retry_at=retry_at)
        if decision.action == LoadAction.REQUEST:
            return self._request(plan, decision.attempt)
        return None

    def _retry_when_due(self, plan: PlanState) -> dg.RunRequest | None:
        failed_at = plan.load_failed_at if plan.load_failed_at is not None else self.clock()
        decision = decide_load_retry(plan.load_attempt, failed_at, self.clock(), self.policy)
        if decision.action == LoadAction.REQUEST:
            return self._request(plan, decision.attempt)
        why = short_reason(plan.load_error or "unknown error", 120)
        if decision.action == LoadAction.GIVE_UP:  # the limit was lowered meanwhile
            self._give_up(plan, f"failed {plan.load_attempt} times; last error: {why}")
            return None
        self.notes.append(
            f"{plan.date}: load attempt {plan.load_attempt} failed ({why}); attempt "
            f"{plan.load_attempt + 1} of {self.policy.max_attempts} at {_clock_text(decision.at)}"
        )
        return None

    def _request(self, plan: PlanState, attempt: int) -> dg.RunRequest:
        text = f"{plan.date}: loading enriched_contacts, attempt {attempt} of "
        text += f"{self.policy.max_attempts}"
        if attempt > 1 and plan.load_error:
            text += f" (attempt {attempt - 1} failed: {short_reason(plan.load_error, 120)})"
        self.emit(
            plan,
            JobEvent.LOAD_REQUESTED,
            text,
            attempt=attempt,
            run_key=load_run_key(plan.date, plan.plan_id, attempt),
        )
        if attempt > 1:
            self.notes.append(text)
        return self._run_request(plan, attempt)

    def _failed(
        self, plan: PlanState, reason: str, failed_at: float, retry_at: float | None
    ) -> None:
        attempt = plan.load_attempt
        then = (
            "the last" if retry_at is None else f"attempt {attempt + 1} at {_clock_text(retry_at)}"
        )
        text = f"{plan.date}: load attempt {attempt} of {self.policy.max_attempts} failed "
        text += f"({then}): {short_reason(reason)}"
        self.emit(
            plan,
            JobEvent.LOAD_FAILED,
            text,
            attempt=attempt,
            message=short_reason(reason),
            failed_at=failed_at,
            retry_at=retry_at,
        )
        self.notes.append(text)

    def _give_up(self, plan: PlanState, message: str) -> None:
        text = (
            f"{plan.date}: load given up after attempt {plan.load_attempt}: "
            f"{short_reason(message)}. Materialise enriched_contacts[{plan.date}] to load it."
        )
        self.emit(
            plan,
            JobEvent.LOAD_GIVEN_UP,
            text,
            attempt=plan.load_attempt,
            message=short_reason(message),
        )
        self.notes.append(text)

    def _run_request(self, plan: PlanState, attempt: int) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=load_run_key(plan.date, plan.plan_id, attempt),
            partition_key=plan.date,
            tags={
                PLAN_TAG: plan.plan_id,
                "crust/plan_outcome": str(plan.outcome),
                ATTEMPT_TAG: str(attempt),
            },
        )


def _clock_text(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%S UTC")

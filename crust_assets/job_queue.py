"""The durable job queue the sensor owns: plans, job states, and the events that change them.

The truth is the sequence of job events the sensor writes to Dagster's event log (one
`AssetObservation` per event, written the moment it happens). The sensor cursor is only a snapshot
of `fold(events)` up to a watermark: if a tick dies before its cursor is saved, the next tick
replays the events after the watermark and reaches the same state, so an accepted job is never
forgotten and never submitted again. Nothing here knows Dagster or HTTP.

Cursor size is bounded by the work in flight (open plans and at most a handful of active jobs),
not by history: finished plans leave the cursor once loaded, done jobs are only counted. A plan
whose load run is requested stays until that run is seen to have loaded it, and a failed load is
requested again later (`crust_assets.load_retry`), so a day never stays empty for want of a person.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

# The API's limit, defined with the API's documents; the queue cuts plans into jobs of it.
from crust_assets.crustdata.models import MAX_URLS_PER_JOB as MAX_URLS_PER_JOB

MAX_ACTIVE_JOBS = 5
CURSOR_VERSION = 2  # 2 added the load fields of PlanState; version 1 cursors read as before
READABLE_CURSOR_VERSIONS = (1, 2)


class JobEvent:
    """The event names written as `event` metadata on `contact_enrichment_batch` observations."""

    SUBMITTING = "job_submitting"  # intent, written before the POST: a crash after it is reconciled
    SUBMITTED = "job_submitted"
    PROCESSING = "job_processing"
    COMPLETED = "job_completed"
    FAILED = "job_failed"  # the API said failed; retried after a cool-down while attempts remain
    DEFERRED = "job_deferred"  # not accepted (no slot, API trouble): back in the queue, not billed
    # Sent, no answer, not found (yet) in GET /batch.
    SUBMISSION_UNCONFIRMED = "job_submission_unconfirmed"
    ABANDONED = "job_abandoned"  # gave up: attempts exhausted, refused, or unconfirmable
    # Every URL of the job was erased (`crust-assets forget`) before it was sent: nothing to buy
    # or deliver, so it counts as done and the plan completes without it.
    NOT_SUBMITTED_ERASED = "job_not_submitted_erased"
    JOBS_NOT_SUBMITTED = "jobs_not_submitted"  # e.g. credits ran out: jobs >= first_job_index
    PLAN_COMPLETED = "plan_completed"
    PLAN_FAILED = "plan_failed"
    PLAN_SUPERSEDED = "plan_superseded"
    LOAD_REQUESTED = "load_requested"  # enriched_contacts[date] requested for the plan (attempt n)
    LOAD_FAILED = "load_failed"  # that run failed before loading; retried after `retry_at`
    LOAD_GIVEN_UP = "load_given_up"  # attempts exhausted, or a person canceled the run


PLAN_EVENTS = frozenset(
    {
        JobEvent.PLAN_COMPLETED,
        JobEvent.PLAN_FAILED,
        JobEvent.PLAN_SUPERSEDED,
        JobEvent.JOBS_NOT_SUBMITTED,
    }
)
LOAD_EVENTS = frozenset({JobEvent.LOAD_REQUESTED, JobEvent.LOAD_FAILED, JobEvent.LOAD_GIVEN_UP})


@dataclass
class JobState:
    """One job of a plan that has left the queue and is not yet done."""

    index: int
    state: str  # submitting | active | waiting | ambiguous | abandoned
    attempt: int = 1
    batch_id: str | None = None
    status: str | None = None
    since: float = 0.0  # when the current state began (unix seconds)
    retry_at: float | None = None
    window_start: float | None = None
    reconcile_tries: int = 0
    error: str | None = None
    # URLs actually sent (the job's plan rows minus the people erased by then): the size a lost
    # submit is looked for by in GET /batch. None in cursors written before it was kept.
    url_count: int | None = None


@dataclass
class PlanState:
    """A materialisation of `contact_enrichment_batch[date]`: the jobs to run, in order."""

    date: str
    plan_id: str
    job_count: int
    url_count: int
    fields: list[str]
    plan_path: str
    storage_id: int
    next_index: int = 0
    done: int = 0
    jobs: dict[str, JobState] = field(default_factory=dict)
    skipped: int = 0  # never-submitted jobs given up (from `next_index - skipped` on)
    skip_reason: str | None = None
    outcome: str | None = None  # None while open; completed | failed | superseded
    failure: str | None = None
    # Plans of other partitions, made earlier, whose jobs deliver `borrowed` of this plan's URLs
    # (see crust_assets.defs.borrowing): this plan is loaded only once they are all settled.
    lenders: list[str] = field(default_factory=list)
    borrowed: int = 0
    # The load of enriched_contacts[date] once the plan is settled: None (not requested yet),
    # requested, waiting (attempt `load_attempt` failed; request again at `load_retry_at`),
    # loaded, given_up.
    load_state: str | None = None
    load_attempt: int = 0
    load_failed_at: float | None = None
    load_retry_at: float | None = None
    load_error: str | None = None

    @property
    def key(self) -> str:
        return plan_key(self.date, self.plan_id)

    def job_size(self, index: int) -> int:
        """URLs in job `index`: every job is full but the last."""
        if index < self.job_count - 1:
            return MAX_URLS_PER_JOB
        return self.url_count - MAX_URLS_PER_JOB * (self.job_count - 1)

    def sent_size(self, job: JobState) -> int:
        """URLs the job's submit carried (fewer than its plan rows when people were erased)."""
        return job.url_count if job.url_count is not None else self.job_size(job.index)

    @property
    def load_pending(self) -> bool:
        """Its load run is requested, or failed and is to be requested again."""
        return self.load_state in ("requested", "waiting")

    @property
    def abandoned(self) -> list[JobState]:
        return [j for j in self.jobs.values() if j.state == "abandoned"]

    def ready_jobs(self, now: float) -> list[JobState]:
        """Jobs back in the queue (deferred, or failed and cooled down), oldest first."""
        ready = [
            j
            for j in self.jobs.values()
            if j.state == "waiting" and (j.retry_at is None or j.retry_at <= now)
        ]
        return sorted(ready, key=lambda j: j.index)

    @property
    def settled(self) -> bool:
        """Every job is done or given up: nothing more will happen to this plan by itself."""
        unsubmitted = self.job_count - self.next_index
        pending = [j for j in self.jobs.values() if j.state != "abandoned"]
        return unsubmitted == 0 and not pending


def plan_key(date: str, plan_id: str) -> str:
    return f"{date}/{plan_id}"


def job_count_for(url_count: int) -> int:
    return math.ceil(url_count / MAX_URLS_PER_JOB) if url_count else 0


@dataclass
class QueueState:
    """Everything the sensor needs between ticks; serialised as the sensor cursor."""

    observation_watermark: int = 0
    plan_watermark: int = 0
    plans: dict[str, PlanState] = field(default_factory=dict)
    paused_until: float | None = None
    pause_reason: str | None = None
    last_poll_at: float = 0.0

    # ---- (de)serialisation -------------------------------------------------------------
    def to_cursor(self) -> str:
        data = {
            "v": CURSOR_VERSION,
            "ow": self.observation_watermark,
            "pw": self.plan_watermark,
            "paused_until": self.paused_until,
            "pause_reason": self.pause_reason,
            "last_poll_at": self.last_poll_at,
            "plans": [
                {
                    **{k: v for k, v in asdict(p).items() if k != "jobs"},
                    "jobs": list(p.jobs.values()),
                }
                for p in self.plans.values()
            ],
        }
        return json.dumps(data, default=_job_to_json, separators=(",", ":"))

    @classmethod
    def from_cursor(cls, cursor: str | None) -> QueueState:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if data.get("v") not in READABLE_CURSOR_VERSIONS:
            raise ValueError(f"unsupported sensor cursor version {data.get('v')!r}")
        state = cls(
            observation_watermark=data["ow"],
            plan_watermark=data["pw"],
            paused_until=data.get("paused_until"),
            pause_reason=data.get("pause_reason"),
            last_poll_at=float(data.get("last_poll_at", 0.0)),
        )
        for raw in data["plans"]:
            jobs = {str(j["index"]): JobState(**j) for j in raw.pop("jobs")}
            plan = PlanState(**raw, jobs=jobs)
            state.plans[plan.key] = plan
        return state

    # ---- queries -----------------------------------------------------------------------
    def open_plans(self) -> list[PlanState]:
        """Open plans, oldest partition first (then oldest plan): the submission order."""
        return sorted(
            (p for p in self.plans.values() if p.outcome is None),
            key=lambda p: (p.date, p.storage_id),
        )

    def slot_holders(self) -> list[tuple[PlanState, JobState]]:
        """Jobs that may occupy one of the account's 5 slots, as far as we know."""
        return [
            (plan, job)
            for plan in self.plans.values()
            for job in plan.jobs.values()
            if job.state in ("submitting", "active", "ambiguous")
        ]

    def free_slots(self) -> int:
        return max(0, MAX_ACTIVE_JOBS - len(self.slot_holders()))

    def open_lenders(self, plan: PlanState) -> list[PlanState]:
        """The lenders of `plan` that may still deliver: tracked and without an outcome.

        A lender no longer tracked has settled and been forgotten (plans are discovered in
        storage order, and a lender is always older than its borrower), so it is not waited for.
        """
        lenders = (self.plans.get(key) for key in plan.lenders)
        return [lender for lender in lenders if lender is not None and lender.outcome is None]

    def waits_for_lenders(self, plan: PlanState) -> bool:
        """Finished with its own jobs, but some URLs are still being delivered to a lender."""
        return plan.outcome in ("completed", "failed") and bool(self.open_lenders(plan))

    def loadable_plans(self) -> list[PlanState]:
        """Settled plans whose load is not requested yet or not seen to succeed, oldest first.

        They hold no job slot and are not in `open_plans`, so a load being retried never
        holds up another plan's submissions.
        """
        return sorted(
            (
                p
                for p in self.plans.values()
                if p.outcome in ("completed", "failed")
                and p.load_state not in ("loaded", "given_up")
                and not self.waits_for_lenders(p)
            ),
            key=lambda p: (p.date, p.storage_id),
        )

    # ---- plan discovery ----------------------------------------------------------------
    def add_plan(self, plan: PlanState) -> list[PlanState]:
        """Track a new plan; returns the plans of the same date that it supersedes: open ones,
        finished ones still waiting for their lenders (their run is not requested yet), and ones
        whose load is pending (not retried any more: the new plan's load writes the day)."""
        if plan.key in self.plans:
            return []
        superseded = [
            p
            for p in self.plans.values()
            if p.date == plan.date
            and (p.outcome is None or self.waits_for_lenders(p) or p.load_pending)
        ]
        self.plans[plan.key] = plan
        if plan.job_count == 0:
            plan.outcome = "completed"
        return superseded

    # ---- event folding -----------------------------------------------------------------
    def apply(self, event: dict[str, Any], timestamp: float) -> None:
        """Fold one recorded event into the state. Unknown plans are ignored (already gone)."""
        plan = self.plans.get(plan_key(str(event.get("date")), str(event.get("plan_id"))))
        if plan is None:
            return
        name = event["event"]
        if name in LOAD_EVENTS:
            _apply_load_event(plan, event, timestamp)
            return
        if name in PLAN_EVENTS:
            _apply_plan_event(plan, event)
            return
        index = int(event["job_index"])
        key = str(index)
        job = plan.jobs.get(key)
        if name == JobEvent.NOT_SUBMITTED_ERASED:
            plan.jobs.pop(key, None)
            plan.next_index = max(plan.next_index, index + 1)
            plan.done += 1
            return
        if name == JobEvent.SUBMITTING:
            attempt = int(event.get("attempt", 1))
            if job is None:
                job = JobState(index=index, state="submitting", attempt=attempt)
                plan.jobs[key] = job
                plan.next_index = max(plan.next_index, index + 1)
            job.state, job.attempt, job.since = "submitting", attempt, timestamp
            job.window_start = float(event.get("window_start", timestamp))
            job.retry_at = None
            sent = event.get("url_count")
            job.url_count = int(sent) if sent is not None else None
            return
        if job is None:
            return
        if name == JobEvent.SUBMITTED:
            job.state, job.batch_id, job.status = "active", event.get("batch_id"), "pending"
            job.since = timestamp
            job.reconcile_tries = 0
        elif name == JobEvent.PROCESSING:
            job.status = "processing"
        elif name == JobEvent.COMPLETED:
            del plan.jobs[key]
            plan.done += 1
        elif name == JobEvent.FAILED:
            job.state, job.status = "waiting", "failed"
            job.error = event.get("message")
            job.retry_at = float(event.get("retry_at", timestamp))
            job.batch_id = None
        elif name == JobEvent.DEFERRED:
            job.state, job.status = "waiting", None
            job.error = event.get("message")
            job.retry_at = float(event.get("retry_at", timestamp))
        elif name == JobEvent.SUBMISSION_UNCONFIRMED:
            job.state = "ambiguous"
            job.reconcile_tries = int(event.get("reconcile_tries", job.reconcile_tries + 1))
            job.error = event.get("message")
        elif name == JobEvent.ABANDONED:
            job.state = "abandoned"
            job.error = event.get("message")

    def forget_finished(self) -> None:
        """Drop plans whose outcome is settled and whose load is not pending (a plan still
        waiting for its lenders has had no run requested, and a plan whose load run is
        requested or to be retried is watched until it loads: they stay)."""
        finished = [
            k
            for k, p in self.plans.items()
            if p.outcome is not None
            and not self.waits_for_lenders(p)
            and (p.outcome == "superseded" or not p.load_pending)
        ]
        for key in finished:
            del self.plans[key]


def _apply_plan_event(plan: PlanState, event: dict[str, Any]) -> None:
    name = event["event"]
    if name == JobEvent.PLAN_COMPLETED:
        plan.outcome = "completed"
    elif name == JobEvent.PLAN_FAILED:
        plan.outcome = "failed"
        plan.failure = event.get("message")
    elif name == JobEvent.PLAN_SUPERSEDED:
        plan.outcome = "superseded"
    elif name == JobEvent.JOBS_NOT_SUBMITTED:
        first = int(event["first_job_index"])
        plan.skipped += max(0, plan.job_count - max(first, plan.next_index))
        plan.next_index = plan.job_count
        plan.skip_reason = event.get("message")


def _apply_load_event(plan: PlanState, event: dict[str, Any], timestamp: float) -> None:
    name = event["event"]
    attempt = int(event.get("attempt", plan.load_attempt or 1))
    plan.load_attempt = max(plan.load_attempt, attempt)
    if name == JobEvent.LOAD_REQUESTED:
        plan.load_state, plan.load_retry_at = "requested", None
    elif name == JobEvent.LOAD_FAILED:
        plan.load_state = "waiting"
        plan.load_failed_at = float(event.get("failed_at", timestamp))
        retry_at = event.get("retry_at")
        plan.load_retry_at = float(retry_at) if retry_at is not None else None
        plan.load_error = event.get("message")
    elif name == JobEvent.LOAD_GIVEN_UP:
        plan.load_state, plan.load_retry_at = "given_up", None
        plan.load_error = event.get("message")


def _job_to_json(value: Any) -> Any:
    if isinstance(value, JobState):
        return asdict(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")

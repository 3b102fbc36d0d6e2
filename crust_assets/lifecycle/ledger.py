"""The ledger: the one fold from job events to the state of every plan and job.

The truth is the sequence of events the sensor writes to Dagster's event log (one observation
per event, written the moment it happens). The sensor cursor is only a snapshot of this fold up
to a watermark: if a tick dies before its cursor is saved, the next tick replays the events after
the watermark and reaches the same state, so an accepted job is never forgotten and never
submitted again. The assets fold the same events with the same code to learn a plan's outcome,
which job delivered which part of it, and whether the plans it borrowed from are settled.

Cursor size is bounded by the work in flight (open plans and at most a handful of active jobs),
not by history: finished plans leave the cursor once loaded, done jobs are only counted (a
ledger made with `record_deliveries` also keeps each delivered job's batch id, for the assets).
Nothing here knows Dagster or HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from crust_assets.crustdata.models import MAX_URLS_PER_JOB
from crust_assets.lifecycle import events as ev
from crust_assets.load_retry import LoadRun

MAX_ACTIVE_JOBS = 5
# 3 renamed a job's `state`/`status` to `state`/`api_status`; 2 added the load fields.
CURSOR_VERSION = 3
READABLE_CURSOR_VERSIONS = (1, 2, 3)


class JobState(StrEnum):
    """Where a job that has left the queue stands (a done job leaves the ledger)."""

    SUBMITTING = "submitting"  # intent recorded, answer not (yet) known
    ACTIVE = "active"  # accepted: has a batch id, polled
    WAITING = "waiting"  # back in the queue (deferred, or failed and cooling down)
    UNCONFIRMED = "unconfirmed"  # sent, no answer: looked up in GET /batch, never resent
    ABANDONED = "abandoned"  # given up


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class LoadState(StrEnum):
    REQUESTED = "requested"
    WAITING = "waiting"  # the attempt failed; requested again at `load_retry_at`
    LOADED = "loaded"
    GIVEN_UP = "given_up"


class Phase(StrEnum):
    """The parts of a tick, in order (see `crust_assets.lifecycle.decide`)."""

    POLL = "poll"
    LOOKUP = "lookup"
    SUBMIT = "submit"
    FINISH = "finish"
    LOAD_FACTS = "load_facts"
    LOAD = "load"
    NOTE = "note"


@dataclass
class TickFacts:
    """What only the instance, the clock or this tick's own calls know; put in by the
    executor before `decide` is asked, never part of the cursor."""

    finished: set[Phase] = field(default_factory=set)
    poll_due: bool = False
    polled: set[tuple[str, int]] = field(default_factory=set)  # (plan key, job index)
    polls_stopped: bool = False  # the API refused the key
    submits_stopped: bool = False  # an answer or an unreadable erasure log said stop
    deadline: float = math.inf  # the end of the tick's time budget (unix seconds)
    # (plan key, load attempt or None for any) -> the newest load run (None: there is none)
    load_runs: dict[tuple[str, int | None], LoadRun | None] = field(default_factory=dict)


SLOT_STATES = (JobState.SUBMITTING, JobState.ACTIVE, JobState.UNCONFIRMED)


@dataclass
class Job:
    """One job of a plan that has left the queue and is not yet done."""

    index: int
    state: JobState
    attempt: int = 1
    batch_id: str | None = None
    api_status: str | None = None  # the API's own word: pending, processing, failed
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
    jobs: dict[str, Job] = field(default_factory=dict)
    skipped: int = 0  # never-submitted jobs given up (from `skipped_from` on)
    skip_reason: str | None = None
    outcome: Outcome | None = None  # None while open
    failure: str | None = None
    # Plans of other partitions, made earlier, whose jobs deliver `borrowed` of this plan's URLs
    # (see crust_assets.defs.borrowing): this plan is loaded only once they are all settled.
    lenders: list[str] = field(default_factory=list)
    borrowed: int = 0
    load_state: LoadState | None = None  # None: not requested yet
    load_attempt: int = 0
    load_failed_at: float | None = None
    load_retry_at: float | None = None
    load_error: str | None = None
    skipped_from: int | None = None
    # Job index -> the batch id that delivered it (None: all its URLs were erased, nothing sent).
    # Only kept by a ledger made with `record_deliveries`; never in the cursor.
    delivered: dict[int, str | None] = field(default_factory=dict)
    planned_at: float | None = None  # when it was materialised (None: a cursor older than that)

    @property
    def key(self) -> str:
        return plan_key(self.date, self.plan_id)

    def job_size(self, index: int) -> int:
        """URLs in job `index`: every job is full but the last."""
        if index < self.job_count - 1:
            return MAX_URLS_PER_JOB
        return self.url_count - MAX_URLS_PER_JOB * (self.job_count - 1)

    def sent_size(self, job: Job) -> int:
        """URLs the job's submit carried (fewer than its plan rows when people were erased)."""
        return job.url_count if job.url_count is not None else self.job_size(job.index)

    @property
    def load_pending(self) -> bool:
        """Its load run is requested, or failed and is to be requested again."""
        return self.load_state in (LoadState.REQUESTED, LoadState.WAITING)

    @property
    def abandoned(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state == JobState.ABANDONED]

    def abandoned_reasons(self) -> dict[int, str]:
        """Job index -> why it was given up (never-submitted jobs included)."""
        reasons = {j.index: j.error or "" for j in self.abandoned}
        if self.skipped_from is not None:
            for index in range(self.skipped_from, self.job_count):
                reasons.setdefault(index, self.skip_reason or "")
        return reasons

    def ready_jobs(self, now: float) -> list[Job]:
        """Jobs back in the queue (deferred, or failed and cooled down), oldest first."""
        ready = [
            j
            for j in self.jobs.values()
            if j.state == JobState.WAITING and (j.retry_at is None or j.retry_at <= now)
        ]
        return sorted(ready, key=lambda j: j.index)

    @property
    def settled(self) -> bool:
        """Every job is done or given up: nothing more will happen to this plan by itself."""
        pending = [j for j in self.jobs.values() if j.state != JobState.ABANDONED]
        return self.next_index >= self.job_count and not pending


def plan_key(date: str, plan_id: str) -> str:
    return f"{date}/{plan_id}"


@dataclass(frozen=True)
class PendingAlert:
    """A one-off fact (a plan failed, credits ran out) no failed tick has reported yet."""

    kind: str  # the event name: plan_failed or credits_exhausted
    date: str
    plan_id: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{plan_key(self.date, self.plan_id)}"


def job_count_for(url_count: int) -> int:
    return math.ceil(url_count / MAX_URLS_PER_JOB) if url_count else 0


@dataclass
class Ledger:
    """Every tracked plan's state; serialised as the sensor cursor."""

    observation_watermark: int = 0
    plan_watermark: int = 0
    plans: dict[str, PlanState] = field(default_factory=dict)
    paused_until: float | None = None
    pause_reason: str | None = None
    pause_cause: str | None = None  # an events.PauseCause; None in older cursors: the key
    api_down_since: float | None = None  # the first of the calls failing since (connection, 5xx)
    api_error: str | None = None
    alerts: dict[str, PendingAlert] = field(default_factory=dict)  # by PendingAlert.key
    last_poll_at: float = 0.0
    record_deliveries: bool = False
    facts: TickFacts = field(default_factory=TickFacts, repr=False, compare=False)

    # ---- (de)serialisation -------------------------------------------------------------
    def to_cursor(self) -> str:
        plans = []
        for plan in self.plans.values():
            raw = asdict(plan)
            raw.pop("delivered")
            raw["jobs"] = list(raw["jobs"].values())
            plans.append(raw)
        data = {
            "v": CURSOR_VERSION,
            "ow": self.observation_watermark,
            "pw": self.plan_watermark,
            "paused_until": self.paused_until,
            "pause_reason": self.pause_reason,
            "pause_cause": self.pause_cause,
            "api_down_since": self.api_down_since,
            "api_error": self.api_error,
            "alerts": [asdict(alert) for alert in self.alerts.values()],
            "last_poll_at": self.last_poll_at,
            "plans": plans,
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_cursor(cls, cursor: str | None) -> Ledger:
        """Reads every cursor version the sensor ever wrote."""
        if not cursor:
            return cls()
        data = json.loads(cursor)
        version = data.get("v")
        if version not in READABLE_CURSOR_VERSIONS:
            raise ValueError(f"unsupported sensor cursor version {version!r}")
        ledger = cls(
            observation_watermark=data["ow"],
            plan_watermark=data["pw"],
            paused_until=data.get("paused_until"),
            pause_reason=data.get("pause_reason"),
            pause_cause=data.get("pause_cause"),
            api_down_since=data.get("api_down_since"),
            api_error=data.get("api_error"),
            last_poll_at=float(data.get("last_poll_at", 0.0)),
        )
        for raw_alert in data.get("alerts", []):
            alert = PendingAlert(**raw_alert)
            ledger.alerts[alert.key] = alert
        for raw in data["plans"]:
            plan = _plan_from_json(raw, version)
            ledger.plans[plan.key] = plan
        return ledger

    # ---- the sensor's questions --------------------------------------------------------
    def open_plans(self) -> list[PlanState]:
        """Open plans, oldest partition first (then oldest plan): the submission order."""
        return sorted(
            (p for p in self.plans.values() if p.outcome is None),
            key=lambda p: (p.date, p.storage_id),
        )

    def slot_holders(self) -> list[tuple[PlanState, Job]]:
        """Jobs that may occupy one of the account's 5 slots, as far as we know."""
        return [
            (plan, job)
            for plan in self.plans.values()
            for job in plan.jobs.values()
            if job.state in SLOT_STATES
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
        finished = plan.outcome in (Outcome.COMPLETED, Outcome.FAILED)
        return finished and bool(self.open_lenders(plan))

    def loadable_plans(self) -> list[PlanState]:
        """Settled plans whose load is not requested yet or not seen to succeed, oldest first.

        They hold no job slot and are not in `open_plans`, so a load being retried never
        holds up another plan's submissions.
        """
        return sorted(
            (
                p
                for p in self.plans.values()
                if p.outcome in (Outcome.COMPLETED, Outcome.FAILED)
                and p.load_state not in (LoadState.LOADED, LoadState.GIVEN_UP)
                and not self.waits_for_lenders(p)
            ),
            key=lambda p: (p.date, p.storage_id),
        )

    def lenders_for(
        self, date: str, lends_fields: Callable[[list[str]], bool], loaded: Collection[str]
    ) -> list[tuple[PlanState, set[int]]]:
        """The plans a new plan of `date` may borrow from, oldest first, with their given-up
        jobs (which lend nothing): the newest tracked plan of each other date that has jobs,
        asked for the fields (`lends_fields`), is not loaded (`loaded` plan keys: its rows are
        reused instead) and is not superseded."""
        newest: dict[str, PlanState] = {}
        for plan in sorted(self.plans.values(), key=lambda p: p.storage_id):
            if plan.date != date:
                newest[plan.date] = plan
        return [
            (plan, set(plan.abandoned_reasons()))
            for plan in sorted(newest.values(), key=lambda p: p.storage_id)
            if plan.job_count > 0
            and lends_fields(plan.fields)
            and plan.key not in loaded
            and plan.outcome != Outcome.SUPERSEDED
        ]

    def unconfirmed(self) -> list[tuple[PlanState, Job]]:
        """Jobs whose submit was sent and not (yet) answered or found: looked up, not resent."""
        waiting = (JobState.SUBMITTING, JobState.UNCONFIRMED)
        return [(plan, job) for plan, job in self.slot_holders() if job.state in waiting]

    def pause_active(self, now: float) -> bool:
        """Submissions are paused (the API refused the key)."""
        return self.paused_until is not None and now < self.paused_until

    def pause(self, until: float, reason: str, cause: str | None = None) -> None:
        self.paused_until, self.pause_reason, self.pause_cause = until, reason, cause

    def key_refused(self, now: float) -> bool:
        """Paused because the API refused the key: every call would fail, polls wait too."""
        return self.pause_active(now) and self.pause_cause in (None, ev.PauseCause.KEY_REFUSED)

    def start_tick(self, now: float, deadline: float, poll_due: bool) -> TickFacts:
        """Fresh facts for a tick starting at `now`; an expired pause is lifted."""
        self.facts = TickFacts(poll_due=poll_due, deadline=deadline)
        if poll_due:
            self.last_poll_at = now
        if not self.pause_active(now):
            self.paused_until = self.pause_reason = self.pause_cause = None
        return self.facts

    def not_superseded_yet(self, superseding: list[ev.PlanEvent]) -> list[ev.PlanEvent]:
        """The superseding events the log does not already hold: after a failed tick (whose
        cursor Dagster did not keep) the same plans are discovered again, and the replay has
        already folded the events that tick recorded."""
        return [
            event
            for event in superseding
            if (plan := self.plans.get(plan_key(event.date, event.plan_id))) is not None
            and plan.outcome != Outcome.SUPERSEDED
        ]

    def known_batch_ids(self) -> set[str]:
        """Batch ids of the jobs in flight: ours, so never a lost submit's."""
        return {job.batch_id for _, job in self.slot_holders() if job.batch_id is not None}

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
            plan.outcome = Outcome.COMPLETED
        return superseded

    def plan_failures_as_history(self) -> None:
        """For a new cursor, which folds the whole log: the plan failures in it are history
        (versions before the alarms recorded them and no alert_raised). An unreported
        credits_exhausted is still news: only versions that report it write it, so it stays
        even when the first tick died before reporting it."""
        failed = str(ev.EventName.PLAN_FAILED)
        self.alerts = {key: a for key, a in self.alerts.items() if a.kind != failed}

    def forget_finished(self) -> None:
        """Drop plans whose outcome is settled and whose load is not pending (a plan still
        waiting for its lenders has had no run requested, and a plan whose load run is
        requested or to be retried is watched until it loads: they stay)."""
        finished = [
            k
            for k, p in self.plans.items()
            if p.outcome is not None
            and not self.waits_for_lenders(p)
            and (p.outcome == Outcome.SUPERSEDED or not p.load_pending)
        ]
        for key in finished:
            del self.plans[key]

    # ---- the fold ----------------------------------------------------------------------
    def apply(self, event: ev.PlanEvent, timestamp: float) -> None:
        """Fold one recorded event in. Events of plans not tracked are ignored (already gone),
        but for those about the sensor itself."""
        if isinstance(event, ev.SENSOR_EVENTS):
            self._apply_sensor_event(event)
            return
        plan = self.plans.get(plan_key(event.date, event.plan_id))
        if plan is None:
            return
        if isinstance(event, ev.PlanFailed):
            self._add_alert(event, event.message)
        if isinstance(event, ev.JobEvent):
            self._apply_job_event(plan, event, timestamp)
        elif isinstance(event, ev.LoadRequested | ev.LoadFailed | ev.LoadGivenUp):
            _apply_load_event(plan, event, timestamp)
        else:
            _apply_plan_event(plan, event)

    def _apply_sensor_event(self, event: ev.PlanEvent) -> None:
        if isinstance(event, ev.SubmissionsPaused):
            self.pause(event.until, event.message or event.cause, event.cause)
        elif isinstance(event, ev.CreditsExhausted):
            self._add_alert(event, event.message)
        elif isinstance(event, ev.ApiUnreachable) and self.api_down_since is None:
            self.api_down_since, self.api_error = event.since, event.message
        elif isinstance(event, ev.ApiReachable):
            self.api_down_since = self.api_error = None
        elif isinstance(event, ev.AlertRaised):
            self.alerts.pop(f"{event.alert}:{plan_key(event.date, event.plan_id)}", None)

    def _add_alert(self, event: ev.PlanEvent, message: str | None) -> None:
        alert = PendingAlert(str(event.NAME), event.date, event.plan_id, message or "")
        self.alerts[alert.key] = alert

    def _apply_job_event(self, plan: PlanState, event: ev.JobEvent, timestamp: float) -> None:
        key = str(event.job_index)
        job = plan.jobs.get(key)
        if isinstance(event, ev.JobNotSubmittedErased):
            plan.jobs.pop(key, None)
            plan.next_index = max(plan.next_index, event.job_index + 1)
            plan.done += 1
            if self.record_deliveries:
                plan.delivered[event.job_index] = None
        elif isinstance(event, ev.JobSubmitting):
            if job is None:
                job = plan.jobs[key] = Job(event.job_index, JobState.SUBMITTING)
                plan.next_index = max(plan.next_index, event.job_index + 1)
            job.state, job.attempt, job.since = JobState.SUBMITTING, event.attempt, timestamp
            job.window_start = event.window_start if event.window_start is not None else timestamp
            job.retry_at, job.url_count = None, event.url_count
        elif isinstance(event, ev.JobCompleted) and job is not None:
            del plan.jobs[key]
            plan.done += 1
            if self.record_deliveries:
                plan.delivered[event.job_index] = event.batch_id or job.batch_id
        elif job is not None:
            _apply_to_job(job, event, timestamp)


def _apply_to_job(job: Job, event: ev.JobEvent, timestamp: float) -> None:
    """The events that change a job in flight (it exists: submitting was recorded first)."""
    if isinstance(event, ev.JobSubmitted):
        job.state, job.batch_id, job.api_status = JobState.ACTIVE, event.batch_id, "pending"
        job.since, job.reconcile_tries = timestamp, 0
    elif isinstance(event, ev.JobProcessing):
        job.api_status = "processing"
    elif isinstance(event, ev.JobFailed):
        job.state, job.api_status, job.error = JobState.WAITING, "failed", event.message
        job.retry_at = event.retry_at if event.retry_at is not None else timestamp
        job.batch_id = None
    elif isinstance(event, ev.JobDeferred):
        job.state, job.api_status, job.error = JobState.WAITING, None, event.message
        job.retry_at = event.retry_at if event.retry_at is not None else timestamp
    elif isinstance(event, ev.JobSubmissionUnconfirmed):
        job.state, job.error = JobState.UNCONFIRMED, event.message
        tries = event.reconcile_tries
        job.reconcile_tries = tries if tries is not None else job.reconcile_tries + 1
    elif isinstance(event, ev.JobAbandoned):
        job.state, job.error = JobState.ABANDONED, event.message


def _apply_plan_event(plan: PlanState, event: ev.PlanEvent) -> None:
    if isinstance(event, ev.PlanCompleted):
        plan.outcome = Outcome.COMPLETED
    elif isinstance(event, ev.PlanFailed):
        plan.outcome, plan.failure = Outcome.FAILED, event.message
    elif isinstance(event, ev.PlanSuperseded):
        plan.outcome = Outcome.SUPERSEDED
    elif isinstance(event, ev.JobsNotSubmitted):
        first = max(event.first_job_index, plan.next_index)
        plan.skipped += max(0, plan.job_count - first)
        plan.skipped_from = first if plan.skipped_from is None else min(first, plan.skipped_from)
        plan.next_index = plan.job_count
        plan.skip_reason = event.message


def _apply_load_event(
    plan: PlanState, event: ev.LoadRequested | ev.LoadFailed | ev.LoadGivenUp, timestamp: float
) -> None:
    attempt = event.attempt if event.attempt is not None else (plan.load_attempt or 1)
    plan.load_attempt = max(plan.load_attempt, attempt)
    if isinstance(event, ev.LoadRequested):
        plan.load_state, plan.load_retry_at = LoadState.REQUESTED, None
    elif isinstance(event, ev.LoadFailed):
        plan.load_state = LoadState.WAITING
        plan.load_failed_at = event.failed_at if event.failed_at is not None else timestamp
        plan.load_retry_at, plan.load_error = event.retry_at, event.message
    else:
        plan.load_state, plan.load_retry_at = LoadState.GIVEN_UP, None
        plan.load_error = event.message


_OLD_JOB_STATES = {"ambiguous": JobState.UNCONFIRMED}


def _plan_from_json(raw: dict[str, Any], version: int) -> PlanState:
    """A plan of a cursor of `version`: before 3, a job's `status` was the API's status and
    an unconfirmed job's state was `ambiguous`."""
    jobs = {}
    for job in raw.pop("jobs"):
        if version < 3:
            job["api_status"] = job.pop("status", None)
        state = job.pop("state")
        job["state"] = _OLD_JOB_STATES.get(state) or JobState(state)
        jobs[str(job["index"])] = Job(**job)
    plan = PlanState(**raw, jobs=jobs)
    plan.outcome = Outcome(plan.outcome) if plan.outcome else None
    plan.load_state = LoadState(plan.load_state) if plan.load_state else None
    return plan

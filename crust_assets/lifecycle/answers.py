"""What the API's answer to one of the sensor's calls means for the job: the events to record.

Each function takes the answer as a value (the document, or the client's exception: the
exceptions are plain classes, no HTTP here), the clock as a number and the settings, so every
row of the README's trouble table is a millisecond test. The executor records the events in
order and folds them, then the ones `consequences` adds (a pause, credits given up), and
`reachability`'s: whether the API answered at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from crust_assets.crustdata.errors import (
    AmbiguousSubmissionError,
    AuthenticationError,
    CrustdataError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    TooManyActiveJobsError,
    TransportError,
)
from crust_assets.crustdata.lost_submit import LostSubmitLookup, find_lost_submit
from crust_assets.crustdata.models import BatchStatus, SubmitResponse
from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.ledger import Job, JobState, Ledger, PlanState
from crust_assets.lifecycle.settings import LifecycleSettings


@dataclass(frozen=True)
class Answer:
    """The events an answer calls for, and what the tick does next."""

    events: tuple[ev.PlanEvent, ...] = ()
    notes: tuple[str, ...] = ()
    pause: str | None = None  # stop submitting for `pause_seconds`, for this reason
    pause_cause: ev.PauseCause | None = None
    stop: bool = False  # no more calls of this kind this tick
    credits_exhausted: str | None = None  # the API's text: give up every job not yet accepted


def label(plan: PlanState, job: Job | int) -> str:
    index = job if isinstance(job, int) else job.index
    return f"{plan.date} job {index + 1}/{plan.job_count}"


def job_fields(plan: PlanState, job: Job | int, attempt: int = 1) -> dict[str, object]:
    """The fields every job event carries (`attempt` is the job's own unless given an index)."""
    index, attempt = (job, attempt) if isinstance(job, int) else (job.index, job.attempt)
    return {
        "date": plan.date,
        "plan_id": plan.plan_id,
        "job_index": index,
        "attempt": attempt,
        "job_count": plan.job_count,
    }


# ---- submit --------------------------------------------------------------------------------
def submit_answer(
    plan: PlanState, job: Job, answer: SubmitResponse | CrustdataError, now: float
) -> Answer:
    """The submit of `job` (its intent already recorded) got `answer`."""
    text = label(plan, job)
    if isinstance(answer, SubmitResponse):
        submitted = ev.JobSubmitted(
            **job_fields(plan, job),
            batch_id=answer.batch_id,
            status=answer.status,
            url_count=answer.identifier_count,
            description=f"{text} submitted: batch {answer.batch_id} "
            f"({answer.identifier_count} URLs)",
        )
        return Answer((submitted,))
    if isinstance(answer, AmbiguousSubmissionError):
        unconfirmed = ev.JobSubmissionUnconfirmed(
            **job_fields(plan, job),
            reconcile_tries=0,
            message=str(answer),
            description=f"{text}: submit sent but no answer; will look for it in GET /batch",
        )
        return Answer((unconfirmed,), stop=True)
    if isinstance(answer, InvalidRequestError):
        message = f"the API rejected the job: {answer}"
        return Answer((abandoned(plan, job, f"{text} given up: {message}", message),))
    return _not_accepted(plan, job, answer, now)


def _not_accepted(plan: PlanState, job: Job, error: CrustdataError, now: float) -> Answer:
    """Not accepted, not billed: the job goes back in the queue, and submitting stops."""
    if isinstance(error, TooManyActiveJobsError):
        return Answer(
            (deferred(plan, job, "the account already has 5 active jobs", now),), stop=True
        )
    if isinstance(error, InsufficientCreditsError):
        event = deferred(plan, job, f"insufficient credits: {error}", now)
        return Answer((event,), stop=True, credits_exhausted=str(error))
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        event = deferred(plan, job, str(error), now)
        cause = ev.PauseCause.KEY_REFUSED
        if not isinstance(error, AuthenticationError):
            cause = ev.PauseCause.NO_ACCESS
        pause = f"the API refused the key: {error}"
        return Answer((event,), stop=True, pause=pause, pause_cause=cause)
    return Answer((deferred(plan, job, f"submit failed, will retry: {error}", now),), stop=True)


def deferred(plan: PlanState, job: Job, reason: str, now: float) -> ev.JobDeferred:
    return ev.JobDeferred(
        **job_fields(plan, job),
        message=reason,
        retry_at=now,
        description=f"{label(plan, job)} not accepted, back in the queue: {reason}",
    )


def abandoned(plan: PlanState, job: Job, description: str, message: str) -> ev.JobAbandoned:
    return ev.JobAbandoned(**job_fields(plan, job), message=message, description=description)


def credits_exhausted(
    ledger: Ledger, error: str, settings: LifecycleSettings
) -> list[ev.PlanEvent]:
    """Stop spending: give up every job not yet accepted; running jobs still deliver."""
    message = (
        f"not submitted: the account ran out of credits ({error}). Delivered jobs are kept; "
        f"add credits, then re-materialise {settings.batch_asset} for this date: only URLs "
        "not enriched yet will be submitted"
    )
    given_up: list[ev.PlanEvent] = []
    for plan in ledger.open_plans():
        for job in plan.jobs.values():
            if job.state == JobState.WAITING:
                given_up.append(abandoned(plan, job, f"{label(plan, job)} {message}", message))
        if plan.next_index < plan.job_count:
            given_up.append(
                ev.JobsNotSubmitted(
                    date=plan.date,
                    plan_id=plan.plan_id,
                    first_job_index=plan.next_index,
                    message=message,
                    description=f"{plan.date}: jobs {plan.next_index + 1}-{plan.job_count} "
                    f"{message}",
                )
            )
    return given_up


def consequences(
    ledger: Ledger,
    plan: PlanState,
    answer: Answer,
    raw: object,
    now: float,
    settings: LifecycleSettings,
) -> Answer:
    """What follows a call's answer (`raw`, read as `answer`) once its own events are folded:
    whether the API answered at all (`reachability`), the pause it calls for, and, when
    credits ran out, every job not yet accepted given up. All are events, so a tick that fails
    after them (Dagster keeps no cursor of a failed tick) replays them."""
    found: list[ev.PlanEvent] = list(reachability(ledger, plan, raw, now))
    notes: list[str] = []
    if answer.pause:
        until = now + settings.pause_seconds
        cause = answer.pause_cause or ev.PauseCause.KEY_REFUSED
        found.append(
            ev.SubmissionsPaused(
                date=plan.date,
                plan_id=plan.plan_id,
                cause=str(cause),
                until=until,
                message=answer.pause,
                description=f"submissions paused until {_clock(until)}: {answer.pause}",
            )
        )
        notes.append(f"submissions paused: {answer.pause}")
    if error := answer.credits_exhausted:
        text = f"{plan.date}: out of credits: {error}"
        found.append(
            ev.CreditsExhausted(
                date=plan.date, plan_id=plan.plan_id, message=error, description=text
            )
        )
        found += credits_exhausted(ledger, error, settings)
        notes.append(text)
    return Answer(tuple(found), tuple(notes))


def reachability(
    ledger: Ledger, plan: PlanState, answer: object, now: float
) -> tuple[ev.PlanEvent, ...]:
    """Whether the API answered `answer` at all, recorded when that changes: the first call
    that fails with a connection error or a 5xx (after the client's retries) marks the API down
    since `now`, the first answer after that marks it back. (A submit whose answer was lost
    tells neither.)"""
    fields = {"date": plan.date, "plan_id": plan.plan_id}
    if isinstance(answer, TransportError | ServerError):
        if ledger.api_down_since is not None:
            return ()
        text = f"the Crustdata API did not answer: {answer}"
        return (ev.ApiUnreachable(**fields, since=now, message=str(answer), description=text),)
    if ledger.api_down_since is None or isinstance(answer, AmbiguousSubmissionError):
        return ()
    down = ledger.api_down_since
    text = f"the Crustdata API answers again (it did not since {_clock(down)})"
    return (ev.ApiReachable(**fields, down_since=down, description=text),)


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- poll ----------------------------------------------------------------------------------
def poll_answer(
    plan: PlanState,
    job: Job,
    answer: BatchStatus | CrustdataError,
    now: float,
    settings: LifecycleSettings,
) -> Answer:
    """`GET /batch/{id}` of an active job answered `answer`."""
    if isinstance(answer, NotFoundError):
        return Answer(job_failed(plan, job, "the API no longer knows this batch id", now, settings))
    if isinstance(answer, AuthenticationError):
        return Answer(
            pause=f"API key refused: {answer}", stop=True, pause_cause=ev.PauseCause.KEY_REFUSED
        )
    if isinstance(answer, CrustdataError):
        return Answer(notes=(f"could not poll {job.batch_id}: {answer}",))
    if answer.status == "completed":
        return Answer((_completed(plan, job, answer),))
    if answer.status == "failed":
        message = answer.error_message or "the API reported failed"
        return Answer(job_failed(plan, job, message, now, settings))
    if answer.status == "processing" and job.api_status != "processing":
        processing = ev.JobProcessing(
            **job_fields(plan, job),
            batch_id=job.batch_id,
            status="processing",
            description=f"{label(plan, job)} processing: batch {job.batch_id}",
        )
        return Answer((processing,))
    return Answer()


def _completed(plan: PlanState, job: Job, status: BatchStatus) -> ev.JobCompleted:
    return ev.JobCompleted(
        **job_fields(plan, job),
        batch_id=job.batch_id,
        status="completed",
        result_count=status.result_count,
        entities_fulfilled=status.entities_fulfilled,
        completed_at=status.completed_at.isoformat() if status.completed_at else None,
        description=f"{label(plan, job)} completed: batch {job.batch_id}, "
        f"{status.entities_fulfilled} of {status.identifier_count} profiles fulfilled",
    )


def job_failed(
    plan: PlanState, job: Job, message: str, now: float, settings: LifecycleSettings
) -> tuple[ev.PlanEvent, ...]:
    """The API failed the job: resubmitted after the cool-down while attempts remain."""
    text = label(plan, job)
    common = {**job_fields(plan, job), "batch_id": job.batch_id, "status": "failed"}
    if job.attempt < settings.max_job_attempts:
        cooldown = settings.retry_cooldown_seconds
        return (
            ev.JobFailed(
                **common,
                message=message,
                retry_at=now + cooldown,
                description=f"{text} failed (attempt {job.attempt}): {message}; resubmitting "
                f"after {cooldown:.0f} s",
            ),
        )
    return (
        ev.JobFailed(
            **common,
            message=message,
            description=f"{text} failed (attempt {job.attempt}, the last): {message}",
        ),
        abandoned(
            plan,
            job,
            f"{text} given up after {job.attempt} attempts: {message}",
            f"failed {job.attempt} times; last error: {message}",
        ),
    )


# ---- lost submits --------------------------------------------------------------------------
def lost_submit_answer(
    unconfirmed: Iterable[tuple[PlanState, Job]],
    listed: list[BatchStatus],
    known: set[str],
    settings: LifecycleSettings,
) -> Answer:
    """Each submit that got no answer, looked for among the listed jobs: confirmed when exactly
    one fits, given up when several fit or none after `max_reconcile_tries` look-ups."""
    known = set(known)
    found: list[ev.PlanEvent] = []
    for plan, job in unconfirmed:
        window_start = job.window_start or job.since
        sent_from = datetime.fromtimestamp(window_start, tz=timezone.utc)
        sent_until = max(job.since, job.window_start or 0) + settings.call_timeout_seconds
        lookup = find_lost_submit(
            listed,
            sent_from=sent_from,
            sent_until=datetime.fromtimestamp(sent_until, tz=timezone.utc),
            identifier_count=plan.sent_size(job),
            skew_seconds=settings.clock_skew_seconds,
            known_ids=known,
        )
        if lookup.match is not None:
            known.add(lookup.match.batch_id)
        found.append(_looked_up(plan, job, lookup, sent_from, settings))
    return Answer(tuple(found))


def _looked_up(
    plan: PlanState,
    job: Job,
    lookup: LostSubmitLookup,
    sent_from: datetime,
    settings: LifecycleSettings,
) -> ev.PlanEvent:
    text = label(plan, job)
    if lookup.match is not None:
        return ev.JobSubmitted(
            **job_fields(plan, job),
            batch_id=lookup.match.batch_id,
            status=lookup.match.status,
            reconciled=True,
            description=f"{text} confirmed through GET /batch: batch {lookup.match.batch_id}",
        )
    tries = job.reconcile_tries + 1
    if lookup.ambiguous:
        ids = ", ".join(b.batch_id for b in lookup.candidates)
        message = (
            f"its submit got no answer and {len(lookup.candidates)} jobs in GET /batch could "
            f"be it ({ids}); not resubmitted, so as not to pay twice"
        )
    elif tries >= settings.max_reconcile_tries:
        message = (
            f"its submit got no answer and no job in GET /batch matches it "
            f"({plan.sent_size(job)} URLs, sent at {sent_from.isoformat()}); not resubmitted, "
            "so as not to pay twice. Check the account's jobs, then re-materialise "
            f"{settings.batch_asset} for this date"
        )
    else:
        return ev.JobSubmissionUnconfirmed(
            **job_fields(plan, job),
            reconcile_tries=tries,
            message="submit sent, no answer received",
            description=f"{text}: submission not confirmed yet (look-up {tries} of "
            f"{settings.max_reconcile_tries})",
        )
    return abandoned(plan, job, f"{text} given up: {message}", message)

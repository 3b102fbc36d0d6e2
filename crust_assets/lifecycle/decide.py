"""What the submitter does next: a pure function of the ledger, the clock and the settings.

A tick runs in phases, in this order: poll the active jobs (when a poll is due), look up the
submits that got no answer, submit queued jobs into the free slots (polls and submits one at a
time: each answer changes what comes next), finish the plans whose jobs are all settled,
request or re-request their loads, and say which plans wait for their lenders. `decide` returns
the actions of the first phase not finished yet; the executor runs them, records the events
they produce, marks the phase finished (the poll and submit phases end when `decide` offers no
more) and asks again.
What only the instance knows (a load run's status) is asked for with an action too
(`LookUpLoadRun`), and put into `ledger.facts` before the next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.answers import job_fields, label
from crust_assets.lifecycle.ledger import JobState, Ledger, LoadState, Phase, PlanState
from crust_assets.lifecycle.settings import LifecycleSettings
from crust_assets.load_retry import (
    LoadAction,
    LoadRun,
    LoadRunStatus,
    decide_load_retry,
    load_run_key,
    short_reason,
)


@dataclass(frozen=True)
class Poll:
    plan_key: str
    job_index: int
    batch_id: str


@dataclass(frozen=True)
class FindLostSubmit:
    """Look every unconfirmed submit up in one `GET /batch`."""


@dataclass(frozen=True)
class Submit:
    plan_key: str
    job_index: int
    attempt: int


@dataclass(frozen=True)
class Record:
    """Events that need no call (a plan finished, a load failed): record them in order."""

    events: tuple[ev.PlanEvent, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class LookUpLoadRun:
    """Put the newest load run of the plan (of `attempt`; any when None) into the facts."""

    plan_key: str
    attempt: int | None


@dataclass(frozen=True)
class SetLoadState:
    """What the instance showed about a load that no event records: a run the events do not
    name is watched as attempt `attempt` (requested), or the load's run succeeded (loaded)."""

    plan_key: str
    state: LoadState
    attempt: int
    note: str | None = None


@dataclass(frozen=True)
class RequestLoad:
    """Request enriched_contacts[date] for the plan (the same run key is launched once)."""

    plan_key: str
    attempt: int
    event: ev.LoadRequested | None  # None: requested before, its run is not there yet
    note: str | None = None


Action = Poll | FindLostSubmit | Submit | Record | Note | LookUpLoadRun | SetLoadState | RequestLoad


@dataclass(frozen=True)
class Step:
    """The actions of one phase, and the phases finished once they ran: the phases passed
    over, and this one, unless it offers one poll or one submit (it is asked again after
    each: the answer changes what comes next)."""

    finishes: frozenset[Phase]
    actions: list[Action]


def decide(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    """The actions of the first phase of this tick that is not finished ([]: the tick is)."""
    return next_step(ledger, now, settings).actions


def next_step(ledger: Ledger, now: float, settings: LifecycleSettings) -> Step:
    """`decide`, saying which phase the actions belong to: the executor marks it finished in
    `ledger.facts` once they ran."""
    steps = (
        (Phase.POLL, _polls),
        (Phase.LOOKUP, _lookups),
        (Phase.SUBMIT, _submits),
        (Phase.FINISH, _plan_endings),
        (Phase.LOAD_FACTS, _load_facts),
        (Phase.LOAD, _loads),
        (Phase.NOTE, _borrower_notes),
    )
    passed: set[Phase] = set()
    for phase, step in steps:
        if phase not in ledger.facts.finished:
            actions = step(ledger, now, settings)
            if actions:
                if not (len(actions) == 1 and isinstance(actions[0], Poll | Submit)):
                    passed.add(phase)
                return Step(frozenset(passed), actions)
        passed.add(phase)
    return Step(frozenset(passed), [])


def _polls(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    """The next active job not polled yet this tick, while there is time for a call (none while
    the key is refused: every call would be refused too)."""
    facts = ledger.facts
    if not ledger.open_plans() or not facts.poll_due or facts.polls_stopped:
        return []
    if ledger.key_refused(now):
        return []
    due = [
        Poll(plan.key, job.index, job.batch_id)
        for plan, job in ledger.slot_holders()
        if job.state == JobState.ACTIVE
        and job.batch_id
        and (plan.key, job.index) not in facts.polled
    ]
    if due and facts.deadline - now <= settings.call_reserve_seconds:
        return [Note("tick budget reached while polling")]
    return due[:1]


def _lookups(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    wanted = ledger.open_plans() and ledger.unconfirmed() and not ledger.key_refused(now)
    return [FindLostSubmit()] if wanted else []


def submit_candidates(ledger: Ledger, now: float) -> list[Submit]:
    """Queued jobs in submission order (oldest partition first; within a plan, jobs sent back
    to the queue first), as many as there are free slots."""
    order: list[Submit] = []
    for plan in ledger.open_plans():
        for job in plan.ready_jobs(now):
            attempt = job.attempt + (1 if job.api_status == "failed" else 0)
            order.append(Submit(plan.key, job.index, attempt))
        order.extend(Submit(plan.key, i, 1) for i in range(plan.next_index, plan.job_count))
        if len(order) >= ledger.free_slots():
            break
    return order[: ledger.free_slots()]


def _submits(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    facts = ledger.facts
    if not ledger.open_plans() or facts.submits_stopped:
        return []
    if ledger.pause_active(now):
        return [Note(f"submissions paused: {ledger.pause_reason}")]
    candidates = submit_candidates(ledger, now)
    if not candidates:
        return []
    if facts.deadline - now < settings.call_timeout_seconds + settings.call_reserve_seconds:
        return [Note("tick budget reached before submitting")]
    return [candidates[0]]


def _plan_endings(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    actions: list[Action] = []
    for plan in ledger.open_plans():
        if plan.done == plan.job_count:
            text = f"{plan.date}: all {plan.job_count} jobs completed; loading "
            text += settings.contacts_asset
            completed = ev.PlanCompleted(date=plan.date, plan_id=plan.plan_id, description=text)
            actions.append(Record((completed,)))
        elif plan.settled:
            actions.append(Record((plan_failed(plan),)))
    return actions


def plan_failed(plan: PlanState) -> ev.PlanFailed:
    """Some jobs will never deliver: the plan failed, saying why."""
    given_up = len(plan.abandoned) + plan.skipped
    reasons = sorted({j.error or "" for j in plan.abandoned} | {plan.skip_reason or ""})
    message = f"{given_up} of {plan.job_count} jobs not delivered: " + "; ".join(
        r for r in reasons if r
    )
    return ev.PlanFailed(
        date=plan.date, plan_id=plan.plan_id, message=message, description=f"{plan.date}: {message}"
    )


def _load_facts(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    wanted: list[Action] = []
    for plan in ledger.loadable_plans():
        if plan.load_state is None:
            wanted.append(LookUpLoadRun(plan.key, None))
        elif plan.load_state == LoadState.REQUESTED:
            wanted.append(LookUpLoadRun(plan.key, plan.load_attempt))
    return [a for a in wanted if (a.plan_key, a.attempt) not in ledger.facts.load_runs]


def _loads(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    actions: list[Action] = []
    runs = ledger.facts.load_runs
    for plan in ledger.loadable_plans():
        if plan.load_state == LoadState.WAITING:
            actions += retry_when_due(plan, now, settings)
        elif plan.load_state is None:
            run = runs.get((plan.key, None))
            if run is None:
                actions.append(request_load(plan, 1, settings))
            else:
                actions.append(SetLoadState(plan.key, LoadState.REQUESTED, run.attempt))
                actions += settle_load(plan, run.attempt, run, now, settings)
        else:
            run = runs.get((plan.key, plan.load_attempt))
            actions += settle_load(plan, plan.load_attempt, run, now, settings)
    return actions


def settle_load(
    plan: PlanState, attempt: int, run: LoadRun | None, now: float, settings: LifecycleSettings
) -> list[Action]:
    """The requested load attempt's run is `run`: wait, mark loaded, give up or retry."""
    text = f"{plan.date}: load attempt {attempt}"
    if run is None:  # requested, not launched (yet): the same run key, launched once
        return [RequestLoad(plan.key, attempt, None, f"{text} requested again (no run yet)")]
    if run.status == LoadRunStatus.RUNNING:
        return [Note(f"{text} running")]
    if run.status == LoadRunStatus.LOADED:
        note = f"{text} loaded" if attempt > 1 else None
        return [SetLoadState(plan.key, LoadState.LOADED, attempt, note)]
    if run.status == LoadRunStatus.CANCELED:
        stopped = f"{run.reason}; a person stopped it, so it is not retried"
        return [give_up(plan, attempt, stopped, settings)]
    policy = settings.load_policy
    failed_at = run.ended_at or now
    decision = decide_load_retry(attempt, failed_at, now, policy)
    if decision.action == LoadAction.GIVE_UP:
        failed = load_failed(plan, attempt, run.reason, failed_at, None, settings)
        message = f"failed {attempt} times; last error: {run.reason}"
        quit_ = give_up(plan, attempt, message, settings)
        return [Record(failed.events + quit_.events, failed.notes + quit_.notes)]
    retry_at = failed_at + policy.backoff(attempt)
    actions: list[Action] = [load_failed(plan, attempt, run.reason, failed_at, retry_at, settings)]
    if decision.action == LoadAction.REQUEST:
        error = short_reason(run.reason)
        actions.append(request_load(plan, decision.attempt, settings, error))
    return actions


def retry_when_due(plan: PlanState, now: float, settings: LifecycleSettings) -> list[Action]:
    """A failed load: request it again once its backoff is over, or give up."""
    policy = settings.load_policy
    failed_at = plan.load_failed_at if plan.load_failed_at is not None else now
    decision = decide_load_retry(plan.load_attempt, failed_at, now, policy)
    if decision.action == LoadAction.REQUEST:
        return [request_load(plan, decision.attempt, settings, plan.load_error)]
    why = short_reason(plan.load_error or "unknown error", 120)
    if decision.action == LoadAction.GIVE_UP:  # the limit was lowered meanwhile
        message = f"failed {plan.load_attempt} times; last error: {why}"
        return [give_up(plan, plan.load_attempt, message, settings)]
    return [
        Note(
            f"{plan.date}: load attempt {plan.load_attempt} failed ({why}); attempt "
            f"{plan.load_attempt + 1} of {policy.max_attempts} at {clock_text(decision.at)}"
        )
    ]


def request_load(
    plan: PlanState, attempt: int, settings: LifecycleSettings, last_error: str | None = None
) -> RequestLoad:
    text = f"{plan.date}: loading {settings.contacts_asset}, attempt {attempt} of "
    text += f"{settings.load_policy.max_attempts}"
    if attempt > 1 and last_error:
        text += f" (attempt {attempt - 1} failed: {short_reason(last_error, 120)})"
    event = ev.LoadRequested(
        date=plan.date,
        plan_id=plan.plan_id,
        attempt=attempt,
        run_key=load_run_key(plan.date, plan.plan_id, attempt),
        description=text,
    )
    return RequestLoad(plan.key, attempt, event, text if attempt > 1 else None)


def load_failed(
    plan: PlanState,
    attempt: int,
    reason: str,
    failed_at: float,
    retry_at: float | None,
    settings: LifecycleSettings,
) -> Record:
    then = "the last" if retry_at is None else f"attempt {attempt + 1} at {clock_text(retry_at)}"
    text = f"{plan.date}: load attempt {attempt} of {settings.load_policy.max_attempts} failed "
    text += f"({then}): {short_reason(reason)}"
    event = ev.LoadFailed(
        date=plan.date,
        plan_id=plan.plan_id,
        attempt=attempt,
        message=short_reason(reason),
        failed_at=failed_at,
        retry_at=retry_at,
        description=text,
    )
    return Record((event,), (text,))


def give_up(plan: PlanState, attempt: int, message: str, settings: LifecycleSettings) -> Record:
    text = (
        f"{plan.date}: load given up after attempt {attempt}: "
        f"{short_reason(message)}. Materialise {settings.contacts_asset}[{plan.date}] to load it."
    )
    event = ev.LoadGivenUp(
        date=plan.date,
        plan_id=plan.plan_id,
        attempt=attempt,
        message=short_reason(message),
        description=text,
    )
    return Record((event,), (text,))


def _borrower_notes(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Action]:
    """Say which plans wait for URLs borrowed from other partitions' running plans."""
    notes: list[Action] = []
    for plan in ledger.plans.values():
        lenders = ledger.open_lenders(plan)
        if plan.outcome in (None, "completed", "failed") and lenders:
            dates = ", ".join(sorted({lender.date for lender in lenders}))
            notes.append(
                Note(
                    f"{plan.date}: {plan.borrowed} URLs borrowed from plans still running "
                    f"({dates}); loads when they are settled"
                )
            )
    return notes


def superseded(old: PlanState, new_plan_id: str) -> ev.PlanSuperseded:
    """A newer plan of the same date replaces `old`."""
    text = f"superseded by plan {new_plan_id}"
    if old.load_pending:
        text += "; its load is not requested again"
    return ev.PlanSuperseded(date=old.date, plan_id=old.plan_id, description=text)


def not_submitted_erased(plan: PlanState, index: int, attempt: int, erased: int) -> ev.PlanEvent:
    """A job whose every URL was erased is not sent: done with nothing to deliver, so the plan
    still completes and its load expects no row for them."""
    return ev.JobNotSubmittedErased(
        **job_fields(plan, index, attempt),
        url_count=0,
        erased_not_submitted=erased,
        description=f"{label(plan, index)}: not submitted: all {erased} of its URLs were erased "
        "with `crust-assets forget` since it was planned; nothing to buy or deliver",
    )


def submitting(
    plan: PlanState, index: int, attempt: int, sent: int, erased: int, now: float
) -> ev.JobSubmitting:
    """The intent, recorded before the POST: a tick that dies after it looks the job up."""
    note = f"; {erased} erased since planning, not sent" if erased else ""
    return ev.JobSubmitting(
        **job_fields(plan, index, attempt),
        window_start=now,
        url_count=sent,
        erased_not_submitted=erased,
        description=f"{label(plan, index)}: submitting {sent} URLs (attempt {attempt}){note}",
    )


def summary(ledger: Ledger, calls: int, notes: list[str]) -> str:
    """The tick's one line: what the UI shows on the sensor's page, and tests read."""
    queued = done = 0
    for plan in ledger.open_plans():
        queued += plan.job_count - plan.next_index + len(plan.ready_jobs(float("inf")))
        done += plan.done
    active = len(ledger.slot_holders())
    text = f"jobs queued {queued}, active {active}, done {done}; API calls {calls}"
    return text + "".join(f"; {note}" for note in notes)


def clock_text(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%S UTC")

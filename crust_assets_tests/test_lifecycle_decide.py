"""The submitter's rules on a fake clock: one test per row of the README's "What the sensor does
with trouble" table, and the rules around it. No emulator, no instance: the API's answers are
values (the client's documents and exceptions), and a tiny loop stands in for the executor."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crust_assets.crustdata.errors import (
    AmbiguousSubmissionError,
    AuthenticationError,
    CrustdataError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TooManyActiveJobsError,
    TransportError,
)
from crust_assets.crustdata.models import BatchStatus, SubmitResponse
from crust_assets.lifecycle import answers, decide
from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.decide import (
    FindLostSubmit,
    LookUpLoadRun,
    Note,
    Poll,
    Record,
    RequestLoad,
    SetLoadState,
    Submit,
)
from crust_assets.lifecycle.ledger import JobState, Ledger, LoadState, Outcome, Phase, PlanState
from crust_assets.lifecycle.settings import LifecycleSettings
from crust_assets.load_retry import LoadRetryPolicy, LoadRun, LoadRunStatus

DAY = "2026-11-20"
SETTINGS = LifecycleSettings(
    max_job_attempts=3,
    retry_cooldown_seconds=60.0,
    load_policy=LoadRetryPolicy(3, 60.0, 1800.0),
)
T0 = 1_790_000_000.0


def batch_id(n: int) -> str:
    return f"0f0e0d0c-aaaa-bbbb-cccc-{n:012d}"


def make_ledger(jobs: int = 2, date: str = DAY, plan_id: str = "p1") -> Ledger:
    ledger = Ledger()
    ledger.add_plan(PlanState(date, plan_id, jobs, 300 * jobs, ["business_email"], "p", 1))
    ledger.facts.poll_due = True
    return ledger


def record(
    ledger: Ledger, events: tuple[ev.PlanEvent, ...] | list[ev.PlanEvent], now: float
) -> None:
    for event in events:
        ledger.apply(event, now)


def submit(ledger: Ledger, action: Submit, answer: object, now: float) -> answers.Answer:
    """What the executor does with one Submit: the intent, the call's answer, its events."""
    plan = ledger.plans[action.plan_key]
    sent = plan.job_size(action.job_index)
    record(ledger, [decide.submitting(plan, action.job_index, action.attempt, sent, 0, now)], now)
    result = answers.submit_answer(plan, plan.jobs[str(action.job_index)], answer, now)  # type: ignore[arg-type]
    record(ledger, result.events, now)
    return result


def no_answer() -> AmbiguousSubmissionError:
    """The client's error for a submit whose answer never arrived (a read timeout)."""
    sent = datetime.fromtimestamp(T0, tz=timezone.utc)
    return AmbiguousSubmissionError(
        "read timeout", window_start=sent, window_end=sent, identifier_count=300, fields=[]
    )


def accepted(n: int, urls: int = 300) -> SubmitResponse:
    return SubmitResponse(batch_id=batch_id(n), status="pending", identifier_count=urls)


def status(n: int, state: str, **fields: object) -> BatchStatus:
    return BatchStatus(batch_id=batch_id(n), status=state, identifier_count=300, **fields)  # type: ignore[arg-type]


def next_submit(ledger: Ledger, now: float) -> Submit | None:
    ledger.facts.finished |= {Phase.POLL, Phase.LOOKUP}
    actions = decide.decide(ledger, now, SETTINGS)
    return actions[0] if actions and isinstance(actions[0], Submit) else None


def job(ledger: Ledger, index: int, plan_id: str = "p1"):  # type: ignore[no-untyped-def]
    return ledger.plans[f"{DAY}/{plan_id}"].jobs[str(index)]


# ---- the trouble table --------------------------------------------------------------------
def test_429_five_active_jobs_leaves_the_job_queued_for_a_later_tick() -> None:
    ledger = make_ledger()
    first = next_submit(ledger, T0)
    assert first == Submit(f"{DAY}/p1", 0, 1)
    result = submit(ledger, first, TooManyActiveJobsError("5 active"), T0)
    assert result.stop and [type(e) for e in result.events] == [ev.JobDeferred]
    assert job(ledger, 0).state == JobState.WAITING and ledger.free_slots() == 5
    again = make_tick(ledger)
    assert next_submit(again, T0 + 30) == Submit(f"{DAY}/p1", 0, 1)  # same attempt: not billed


@pytest.mark.parametrize(
    "error",
    [RateLimitedError("429 after retries"), ServerError("503"), TransportError("refused")],
)
def test_rate_limits_5xx_and_connection_errors_after_the_clients_retries_keep_it_queued(
    error: CrustdataError,
) -> None:
    ledger = make_ledger()
    result = submit(ledger, next_submit(ledger, T0), error, T0)  # type: ignore[arg-type]
    assert result.stop and result.pause is None
    [deferred] = result.events
    assert isinstance(deferred, ev.JobDeferred) and "submit failed, will retry" in str(
        deferred.message
    )
    assert job(ledger, 0).state == JobState.WAITING and job(ledger, 0).retry_at == T0


def test_a_failed_job_is_resubmitted_after_the_cooldown_then_the_plan_fails() -> None:
    ledger = make_ledger(jobs=1)
    now = T0
    for attempt in (1, 2, 3):
        action = next_submit(make_tick(ledger), now)
        assert action == Submit(f"{DAY}/p1", 0, attempt)
        submit(ledger, action, accepted(attempt), now)
        plan, active = ledger.plans[f"{DAY}/p1"], job(ledger, 0)
        failed = status(attempt, "failed", error_message="bad input file")
        result = answers.poll_answer(plan, active, failed, now, SETTINGS)
        record(ledger, result.events, now)
        if attempt < 3:
            assert next_submit(make_tick(ledger), now + 59) is None  # cooling down
            now += 60
    assert [type(e) for e in result.events] == [ev.JobFailed, ev.JobAbandoned]
    [ending] = decide.decide(make_tick(ledger, finished=Phase.SUBMIT), now, SETTINGS)
    assert isinstance(ending, Record)
    [failed_plan] = ending.events
    assert isinstance(failed_plan, ev.PlanFailed)
    assert "bad input file" in str(failed_plan.message) and "1 of 1 jobs" in str(
        failed_plan.message
    )


@pytest.mark.parametrize(
    "error", [InsufficientCreditsError("402 no credits"), InsufficientCreditsError("403 credits")]
)
def test_out_of_credits_stops_submitting_and_reports_unsent_jobs(error: CrustdataError) -> None:
    ledger = make_ledger(jobs=4)
    submit(ledger, next_submit(ledger, T0), accepted(1), T0)  # job 0 runs
    result = submit(ledger, next_submit(ledger, T0), error, T0)  # type: ignore[arg-type]
    assert result.stop and result.credits_exhausted == str(error)
    record(ledger, answers.credits_exhausted(ledger, str(error), SETTINGS), T0)
    plan = ledger.plans[f"{DAY}/p1"]
    assert job(ledger, 0).state == JobState.ACTIVE  # running jobs still deliver
    assert job(ledger, 1).state == JobState.ABANDONED
    assert plan.abandoned_reasons().keys() == {1, 2, 3}
    assert next_submit(make_tick(ledger), T0 + 600) is None
    delivered = answers.poll_answer(plan, job(ledger, 0), status(1, "completed"), T0, SETTINGS)
    record(ledger, delivered.events, T0)
    [ending] = decide.decide(make_tick(ledger, finished=Phase.SUBMIT), T0, SETTINGS)
    assert isinstance(ending, Record) and "3 of 4 jobs not delivered" in str(
        ending.events[0].metadata()["message"]
    )


@pytest.mark.parametrize("error", [AuthenticationError("401"), PermissionDeniedError("403")])
def test_a_refused_key_pauses_submissions_for_five_minutes(error: CrustdataError) -> None:
    ledger = make_ledger()
    result = submit(ledger, next_submit(ledger, T0), error, T0)  # type: ignore[arg-type]
    assert result.pause == f"the API refused the key: {error}" and result.stop
    ledger.pause(T0 + SETTINGS.pause_seconds, result.pause)
    tick = make_tick(ledger)
    assert decide.decide(tick, T0 + 299, SETTINGS) == [Note(f"submissions paused: {result.pause}")]
    assert next_submit(make_tick(ledger), T0 + 300) == Submit(f"{DAY}/p1", 0, 1)


def test_a_401_while_polling_pauses_and_ends_the_polls() -> None:
    ledger = make_ledger()
    submit(ledger, next_submit(ledger, T0), accepted(1), T0)
    plan = ledger.plans[f"{DAY}/p1"]
    result = answers.poll_answer(plan, job(ledger, 0), AuthenticationError("401"), T0, SETTINGS)
    assert result.stop and result.pause == "API key refused: 401" and result.events == ()


def test_a_submit_with_no_answer_is_looked_up_never_resubmitted() -> None:
    ledger = make_ledger(jobs=1)
    sent_at = datetime.fromtimestamp(T0, tz=timezone.utc)
    result = submit(ledger, next_submit(ledger, T0), no_answer(), T0)
    assert result.stop and job(ledger, 0).state == JobState.UNCONFIRMED
    tick = make_tick(ledger)  # no batch id: nothing to poll, the look-up comes first
    assert decide.decide(tick, T0 + 30, SETTINGS) == [FindLostSubmit()]
    tick.facts.finished.add(Phase.LOOKUP)
    assert next_submit(tick, T0 + 30) is None  # its slot is held; it is never sent again
    found = status(7, "processing", created_at=sent_at)
    mine = answers.lost_submit_answer(ledger.unconfirmed(), [found], set(), SETTINGS)
    [confirmed] = mine.events
    assert isinstance(confirmed, ev.JobSubmitted) and confirmed.reconciled
    assert confirmed.batch_id == batch_id(7)


def test_a_lost_submit_several_jobs_could_be_is_given_up() -> None:
    ledger = make_ledger(jobs=1)
    submit(ledger, next_submit(ledger, T0), no_answer(), T0)
    sent_at = datetime.fromtimestamp(T0 + 1, tz=timezone.utc)
    twins = [status(7, "pending", created_at=sent_at), status(8, "pending", created_at=sent_at)]
    [given_up] = answers.lost_submit_answer(ledger.unconfirmed(), twins, set(), SETTINGS).events
    assert isinstance(given_up, ev.JobAbandoned) and "2 jobs in GET /batch" in str(given_up.message)
    known = {batch_id(8)}  # a job we already hold is never the lost one
    [found] = answers.lost_submit_answer(ledger.unconfirmed(), twins, known, SETTINGS).events
    assert isinstance(found, ev.JobSubmitted) and found.batch_id == batch_id(7)


def test_a_lost_submit_not_found_is_given_up_after_the_last_look_up() -> None:
    ledger = make_ledger(jobs=1)
    submit(ledger, next_submit(ledger, T0), no_answer(), T0)
    too_late = status(7, "pending", created_at=datetime.fromtimestamp(T0 + 60, tz=timezone.utc))
    for tries in (1, 2):
        [event] = answers.lost_submit_answer(
            ledger.unconfirmed(), [too_late], set(), SETTINGS
        ).events
        assert isinstance(event, ev.JobSubmissionUnconfirmed) and event.reconcile_tries == tries
        record(ledger, [event], T0)
    [last] = answers.lost_submit_answer(ledger.unconfirmed(), [too_late], set(), SETTINGS).events
    assert isinstance(last, ev.JobAbandoned) and "not resubmitted" in str(last.message)


def test_a_failed_load_is_requested_again_with_backoff_then_given_up() -> None:
    ledger = loaded_plan_ledger()
    key = f"{DAY}/p1"
    run = LoadRun("r1", 1, LoadRunStatus.FAILED, ended_at=T0, reason="store down")
    [failed] = load_actions(ledger, run, T0 + 10)  # attempt 2 waits for its backoff
    assert isinstance(failed, Record) and isinstance(failed.events[0], ev.LoadFailed)
    assert failed.events[0].retry_at == T0 + 60
    record(ledger, failed.events, T0 + 10)
    assert load_actions(ledger, None, T0 + 59)[0] == Note(
        f"{DAY}: load attempt 1 failed (store down); attempt 2 of 3 at {decide.clock_text(T0 + 60)}"
    )
    [again] = decide.decide(make_tick(ledger, finished=Phase.LOAD_FACTS), T0 + 60, SETTINGS)
    assert isinstance(again, RequestLoad) and again.attempt == 2 and again.event is not None
    assert again.event.run_key == f"enriched_contacts:{DAY}:p1:attempt-2"
    record(ledger, [again.event], T0 + 60)
    second = LoadRun("r2", 2, LoadRunStatus.FAILED, ended_at=T0 + 70, reason="store down")
    [failed] = load_actions(ledger, second, T0 + 70)
    assert failed.events[0].retry_at == T0 + 70 + 120  # doubled
    record(ledger, failed.events, T0 + 70)
    record(ledger, [decide.request_load(ledger.plans[key], 3, SETTINGS).event], T0 + 200)
    third = LoadRun("r3", 3, LoadRunStatus.FAILED, ended_at=T0 + 210, reason="store down")
    [given_up] = load_actions(ledger, third, T0 + 210)
    assert [type(e) for e in given_up.events] == [ev.LoadFailed, ev.LoadGivenUp]
    record(ledger, given_up.events, T0 + 210)
    assert ledger.plans[key].load_state == LoadState.GIVEN_UP and ledger.loadable_plans() == []


def test_a_canceled_load_is_not_retried_and_a_loaded_one_is_marked() -> None:
    ledger = loaded_plan_ledger()
    canceled = LoadRun("r1", 1, LoadRunStatus.CANCELED, ended_at=T0, reason="run r1 was canceled")
    [given_up] = load_actions(ledger, canceled, T0)
    assert isinstance(given_up.events[0], ev.LoadGivenUp)
    assert "a person stopped it" in str(given_up.events[0].message)
    loaded = LoadRun("r1", 1, LoadRunStatus.LOADED, ended_at=T0)
    assert load_actions(ledger, loaded, T0) == [SetLoadState(f"{DAY}/p1", LoadState.LOADED, 1)]


def test_a_new_plan_of_the_day_stops_the_load_retries() -> None:
    ledger = loaded_plan_ledger()
    run = LoadRun("r1", 1, LoadRunStatus.FAILED, ended_at=T0, reason="store down")
    record(ledger, load_actions(ledger, run, T0)[0].events, T0)
    old = ledger.plans[f"{DAY}/p1"]
    newer = PlanState(DAY, "p2", 1, 10, ["business_email"], "p", 2)
    assert ledger.add_plan(newer) == [old]
    superseded = decide.superseded(old, "p2")
    assert "its load is not requested again" in superseded.description
    record(ledger, [superseded], T0)
    assert [p.plan_id for p in ledger.loadable_plans()] == []


# ---- the rules around the table -----------------------------------------------------------
def test_a_400_gives_the_job_up_and_submitting_goes_on() -> None:
    ledger = make_ledger()
    result = submit(ledger, next_submit(ledger, T0), InvalidRequestError("bad field"), T0)  # type: ignore[arg-type]
    assert not result.stop and isinstance(result.events[0], ev.JobAbandoned)
    assert next_submit(make_tick(ledger), T0) == Submit(f"{DAY}/p1", 1, 1)


def test_a_batch_the_api_forgot_counts_as_a_failed_attempt() -> None:
    ledger = make_ledger(jobs=1)
    submit(ledger, next_submit(ledger, T0), accepted(1), T0)
    plan = ledger.plans[f"{DAY}/p1"]
    result = answers.poll_answer(plan, job(ledger, 0), NotFoundError("404"), T0, SETTINGS)
    [failed] = result.events
    assert isinstance(failed, ev.JobFailed) and failed.retry_at == T0 + 60
    assert "no longer knows" in str(failed.message)


def test_processing_is_recorded_once_and_a_poll_error_is_only_a_note() -> None:
    ledger = make_ledger(jobs=1)
    submit(ledger, next_submit(ledger, T0), accepted(1), T0)
    plan, active = ledger.plans[f"{DAY}/p1"], job(ledger, 0)
    first = answers.poll_answer(plan, active, status(1, "processing"), T0, SETTINGS)
    record(ledger, first.events, T0)
    again = answers.poll_answer(plan, active, status(1, "processing"), T0, SETTINGS)
    assert len(first.events) == 1 and again.events == ()
    broken = answers.poll_answer(plan, active, ServerError("502"), T0, SETTINGS)
    assert broken.events == () and broken.notes == (f"could not poll {batch_id(1)}: 502",)


def test_at_most_five_jobs_hold_slots_oldest_partition_first() -> None:
    ledger = make_ledger(jobs=4, date="2026-11-21", plan_id="late")
    ledger.add_plan(PlanState(DAY, "early", 3, 900, ["business_email"], "p", 2))
    sent = []
    while (action := next_submit(ledger, T0)) is not None:
        submit(ledger, action, accepted(len(sent) + 1), T0)
        sent.append((action.plan_key, action.job_index))
    assert sent == [(f"{DAY}/early", i) for i in range(3)] + [
        ("2026-11-21/late", 0),
        ("2026-11-21/late", 1),
    ]
    assert ledger.free_slots() == 0


def test_polls_come_first_one_at_a_time_and_only_when_due() -> None:
    ledger = make_ledger(jobs=2)
    for n in (1, 2):
        submit(ledger, next_submit(ledger, T0), accepted(n), T0)
    tick = make_tick(ledger)
    step = decide.next_step(tick, T0, SETTINGS)
    assert step.actions == [Poll(f"{DAY}/p1", 0, batch_id(1))] and step.finishes == set()
    tick.facts.polled.add((f"{DAY}/p1", 0))
    assert decide.decide(tick, T0, SETTINGS) == [Poll(f"{DAY}/p1", 1, batch_id(2))]
    tick.facts.deadline = T0 + SETTINGS.call_reserve_seconds
    assert decide.decide(tick, T0, SETTINGS) == [Note("tick budget reached while polling")]
    tick.facts.poll_due = False
    assert decide.decide(tick, T0, SETTINGS) == []


def test_the_tick_budget_stops_submitting() -> None:
    ledger = make_ledger()
    ledger.facts.deadline = T0 + SETTINGS.call_timeout_seconds + 1
    ledger.facts.finished |= {Phase.POLL, Phase.LOOKUP}
    assert decide.decide(ledger, T0, SETTINGS) == [Note("tick budget reached before submitting")]


def test_a_completed_plan_requests_its_load_once_the_instance_was_asked() -> None:
    ledger = make_ledger(jobs=1)
    submit(ledger, next_submit(ledger, T0), accepted(1), T0)
    plan = ledger.plans[f"{DAY}/p1"]
    record(
        ledger,
        answers.poll_answer(plan, job(ledger, 0), status(1, "completed"), T0, SETTINGS).events,
        T0,
    )
    tick = make_tick(ledger, finished=Phase.SUBMIT)
    [ending] = decide.decide(tick, T0, SETTINGS)
    assert isinstance(ending.events[0], ev.PlanCompleted)  # type: ignore[union-attr]
    record(ledger, ending.events, T0)  # type: ignore[union-attr]
    tick.facts.finished.add(Phase.FINISH)
    assert decide.decide(tick, T0, SETTINGS) == [LookUpLoadRun(plan.key, None)]
    tick.facts.load_runs[(plan.key, None)] = None
    tick.facts.finished.add(Phase.LOAD_FACTS)
    [request] = decide.decide(tick, T0, SETTINGS)
    assert isinstance(request, RequestLoad) and request.attempt == 1 and request.note is None
    assert request.event is not None and request.event.run_key == f"enriched_contacts:{DAY}:p1"
    assert plan.outcome == Outcome.COMPLETED


def test_a_plan_waiting_for_its_lenders_is_not_loaded_and_is_named() -> None:
    ledger = make_ledger(jobs=1, date="2026-11-19", plan_id="lender")
    borrower = PlanState(DAY, "b", 0, 0, ["business_email"], "p", 2, lenders=["2026-11-19/lender"])
    borrower.borrowed = 7
    ledger.add_plan(borrower)
    tick = make_tick(ledger, finished=Phase.SUBMIT)
    tick.facts.finished |= {Phase.FINISH, Phase.LOAD_FACTS}
    assert decide.decide(tick, T0, SETTINGS) == [
        Note(
            f"{DAY}: 7 URLs borrowed from plans still running (2026-11-19); "
            "loads when they are settled"
        )
    ]


# ---- helpers ------------------------------------------------------------------------------
def make_tick(ledger: Ledger, finished: Phase | None = None) -> Ledger:
    """The same ledger at the start of a new tick (a tick's facts do not carry over)."""
    ledger.facts = type(ledger.facts)(poll_due=True)
    if finished is not None:  # every phase up to and including `finished` is over
        ledger.facts.finished = set(list(Phase)[: list(Phase).index(finished) + 1])
    return ledger


def loaded_plan_ledger() -> Ledger:
    ledger = make_ledger(jobs=0)
    record(ledger, [decide.request_load(ledger.plans[f"{DAY}/p1"], 1, SETTINGS).event], T0 - 60)
    return ledger


def load_actions(ledger: Ledger, run: LoadRun | None, now: float) -> list:  # type: ignore[type-arg]
    """The load phase's actions, given the newest run of the plan's attempt."""
    tick = make_tick(ledger, finished=Phase.LOAD_FACTS)
    plan = ledger.plans[f"{DAY}/p1"]
    tick.facts.load_runs[(plan.key, plan.load_attempt)] = run
    return decide.decide(tick, now, SETTINGS)

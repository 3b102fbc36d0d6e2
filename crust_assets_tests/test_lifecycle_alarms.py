"""What fails the submitter's tick, on a fake clock: the alarm rules over the ledger.

Each case folds the events the executor would record (the answers' own, then `consequences`)
and asks `alarms`; each also folds the same events into a fresh ledger, as the tick after a
failed one does (Dagster keeps no cursor of a failed tick), and expects the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest

from crust_assets.crustdata.errors import (
    AmbiguousSubmissionError,
    AuthenticationError,
    CrustdataError,
    InsufficientCreditsError,
    PermissionDeniedError,
    ServerError,
    TransportError,
)
from crust_assets.crustdata.models import SubmitResponse
from crust_assets.lifecycle import alarms, answers, decide
from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.alarms import AlarmKind
from crust_assets.lifecycle.decide import Note, Poll
from crust_assets.lifecycle.ledger import Ledger, Outcome, Phase, PlanState
from crust_assets.lifecycle.settings import LifecycleSettings

DAY = "2026-11-20"
KEY = f"{DAY}/p1"
T0 = 1_790_000_000.0
SETTINGS = LifecycleSettings(api_down_alert_minutes=30.0, plan_wait_alert_hours=24.0)
BATCH = "0f0e0d0c-aaaa-bbbb-cccc-000000000001"


class Log:
    """The event log of one test: what the executor records, folded as it records."""

    def __init__(self, jobs: int = 2, planned_at: float | None = T0) -> None:
        self.plans = [PlanState(DAY, "p1", jobs, 300 * jobs, ["business_email"], "p", 1)]
        self.plans[0].planned_at = planned_at
        self.events: list[ev.PlanEvent] = []
        self.ledger = self.replayed()

    def replayed(self) -> Ledger:
        """A ledger of the same plans with every recorded event folded in again."""
        ledger = Ledger()
        for plan in self.plans:
            ledger.add_plan(PlanState(**{**plan.__dict__, "jobs": {}}))
        for event in self.events:
            ledger.apply(event, T0)
        return ledger

    def record(self, events: Iterable[ev.PlanEvent], now: float = T0) -> None:
        for event in events:
            self.events.append(event)
            self.ledger.apply(event, now)

    @property
    def plan(self) -> PlanState:
        return self.ledger.plans[KEY]

    def submit(self, index: int, raw: object, now: float = T0) -> answers.Answer:
        """One submit as the executor runs it: intent, answer, consequences."""
        self.record([decide.submitting(self.plan, index, 1, 300, 0, now)], now)
        answer = answers.submit_answer(self.plan, self.plan.jobs[str(index)], raw, now)  # type: ignore[arg-type]
        self.apply(answer, raw, now)
        return answer

    def apply(self, answer: answers.Answer, raw: object, now: float = T0) -> None:
        self.record(answer.events, now)
        then = answers.consequences(self.ledger, self.plan, answer, raw, now, SETTINGS)
        self.record(then.events, now)

    def kinds(self, now: float, ledger: Ledger | None = None) -> list[AlarmKind]:
        return [a.kind for a in alarms.alarms(ledger or self.ledger, now, SETTINGS)]


def accepted(urls: int = 300) -> SubmitResponse:
    return SubmitResponse(batch_id=BATCH, status="pending", identifier_count=urls)


def tick(ledger: Ledger, now: float, finished: Iterable[Phase] = ()) -> Ledger:
    ledger.start_tick(now, float("inf"), poll_due=True)
    ledger.facts.finished |= set(finished)
    return ledger


# ---- 401 / 403: a pause that fails every tick while it lasts, recorded as an event -----------
def test_a_refused_key_fails_every_tick_of_its_pause_and_the_replay_keeps_it() -> None:
    log = Log()
    log.submit(0, accepted())
    log.submit(1, AuthenticationError("401 invalid key"))
    [paused] = [e for e in log.events if isinstance(e, ev.SubmissionsPaused)]
    assert paused.cause == ev.PauseCause.KEY_REFUSED and paused.until == T0 + 300
    for ledger in (log.ledger, log.replayed()):  # the failed tick's cursor is lost: same state
        assert [a.kind for a in alarms.alarms(ledger, T0 + 30, SETTINGS)] == [AlarmKind.KEY_REFUSED]
        [alarm] = alarms.alarms(ledger, T0 + 30, SETTINGS)
        assert "401 invalid key" in alarm.text and "CRUSTDATA_API_KEY" in alarm.text
        assert alarm.pending is None  # a condition: nothing to mark as reported
        # No call while it lasts: no poll, no submit, only a note.
        assert decide.decide(tick(ledger, T0 + 30), T0 + 30, SETTINGS) == [
            Note(f"submissions paused: {paused.message}")
        ]
    # The pause is over: the next tick tries again, and fails no more unless refused again.
    later = tick(log.replayed(), T0 + 301)
    assert log.kinds(T0 + 301, later) == []
    assert decide.decide(later, T0 + 301, SETTINGS) == [Poll(KEY, 0, BATCH)]


def test_a_401_while_polling_pauses_too() -> None:
    log = Log()
    log.submit(0, accepted())
    answer = answers.poll_answer(
        log.plan, log.plan.jobs["0"], AuthenticationError("401"), T0, SETTINGS
    )
    log.apply(answer, AuthenticationError("401"))
    assert log.kinds(T0 + 1) == log.kinds(T0 + 1, log.replayed()) == [AlarmKind.KEY_REFUSED]


def test_403_no_access_fails_the_tick_but_polls_go_on() -> None:
    log = Log()
    log.submit(0, accepted())
    log.submit(1, PermissionDeniedError("403 plan has no contact enrichment"))
    [alarm] = alarms.alarms(log.ledger, T0 + 1, SETTINGS)
    assert alarm.kind == AlarmKind.NO_ACCESS and "enable" in alarm.text
    assert decide.decide(tick(log.replayed(), T0 + 1), T0 + 1, SETTINGS) == [Poll(KEY, 0, BATCH)]


# ---- 402: a one-off fact, failed once --------------------------------------------------------
@pytest.mark.parametrize(
    "error", [InsufficientCreditsError("402 no credits"), InsufficientCreditsError("403 credits")]
)
def test_out_of_credits_fails_one_tick_then_is_reported(error: CrustdataError) -> None:
    log = Log(jobs=3)
    log.submit(0, accepted())
    log.submit(1, error)
    found = alarms.alarms(log.ledger, T0 + 1, SETTINGS)
    assert [a.kind for a in found] == [AlarmKind.CREDITS_EXHAUSTED]
    assert "Add credits" in found[0].text and str(error) in found[0].text
    assert log.kinds(T0 + 1, log.replayed()) == [AlarmKind.CREDITS_EXHAUSTED]
    log.record(alarms.reported(found, SETTINGS))  # what the failing tick records before it raises
    assert log.kinds(T0 + 2) == log.kinds(T0 + 2, log.replayed()) == []


def test_credits_exhausted_is_news_for_a_new_cursor_but_an_old_plan_failure_is_history() -> None:
    """The very first tick recorded credits_exhausted and died before reporting it: the next
    tick, on a new cursor too, still fails with it; a plan failure in the log is history."""
    log = Log(jobs=3)
    log.submit(0, accepted())
    log.submit(1, InsufficientCreditsError("402 no credits"))
    log.record([ev.PlanFailed(date=DAY, plan_id="p1", message="an older version's failure")])
    fresh = log.replayed()
    assert sorted(log.kinds(T0 + 1, fresh)) == [AlarmKind.CREDITS_EXHAUSTED, AlarmKind.PLAN_FAILED]
    fresh.plan_failures_as_history()
    assert log.kinds(T0 + 1, fresh) == [AlarmKind.CREDITS_EXHAUSTED]


# ---- the API unreachable: since when, durably -------------------------------------------------
@pytest.mark.parametrize("error", [TransportError("connection refused"), ServerError("503")])
def test_an_unreachable_api_fails_ticks_after_the_bound_while_there_is_work(
    error: CrustdataError,
) -> None:
    log = Log()
    log.submit(0, error)
    log.submit(0, error, T0 + 600)  # still down: no new event, the first failure counts
    assert [type(e) for e in log.events].count(ev.ApiUnreachable) == 1
    assert log.kinds(T0 + 30 * 60) == []  # not longer than the bound yet
    for ledger in (log.ledger, log.replayed()):
        [alarm] = alarms.alarms(ledger, T0 + 31 * 60, SETTINGS)
        assert alarm.kind == AlarmKind.API_UNREACHABLE and str(error) in alarm.text
        assert "31 min" in alarm.text and "CRUST_API_DOWN_ALERT_MINUTES=30" in alarm.text
    log.submit(0, accepted(), T0 + 32 * 60)  # it answers: the alarm clears
    assert isinstance(log.events[-1], ev.ApiReachable)
    assert log.kinds(T0 + 33 * 60) == log.kinds(T0 + 33 * 60, log.replayed()) == []


def test_a_lost_answer_says_nothing_about_reachability_and_no_work_no_alarm() -> None:
    log = Log(jobs=1)
    log.submit(0, TransportError("refused"))
    sent = log.ledger.api_down_since
    lost = AmbiguousSubmissionError(
        "read timeout",
        window_start=None,
        window_end=None,
        identifier_count=300,
        fields=[],  # type: ignore[arg-type]
    )
    assert answers.reachability(log.ledger, log.plan, lost, T0 + 60) == ()
    assert log.ledger.api_down_since == sent
    log.plan.outcome = Outcome.SUPERSEDED  # nothing left for the API to do
    assert log.kinds(T0 + 3600) == []


# ---- a plan reported failed: once ------------------------------------------------------------
def test_a_failed_plan_fails_one_tick_and_names_the_check() -> None:
    log = Log(jobs=1)
    failed = ev.PlanFailed(date=DAY, plan_id="p1", message="1 of 1 jobs not delivered: boom")
    log.record([failed])
    [alarm] = alarms.alarms(log.ledger, T0, SETTINGS)
    assert alarm.kind == AlarmKind.PLAN_FAILED and alarm.pending is not None
    assert "one_row_per_submitted_url" in alarm.text and f"contact_enrichment_batch[{DAY}]" in (
        alarm.text
    )
    raised = alarms.reported([alarm], SETTINGS)
    assert [(e.alert, e.date, e.plan_id) for e in raised] == [("plan_failed", DAY, "p1")]
    # A copy's texts name its own asset and sensor (the executor passes them in).
    copy = replace(
        SETTINGS,
        batch_asset="sales/contact_enrichment_batch",
        contacts_asset="sales/enriched_contacts",
        submitter_sensor="sales_contact_enrichment_sensor",
    )
    [named] = alarms.alarms(log.ledger, T0, copy)
    assert f"sales/contact_enrichment_batch[{DAY}]" in named.text
    assert f"sales/enriched_contacts[{DAY}]" in named.text
    [event] = alarms.reported([named], copy)
    assert "failed tick of sales_contact_enrichment_sensor" in event.description
    log.record(raised)
    assert log.kinds(T0) == log.kinds(T0, log.replayed()) == []
    # The pending alert survives the cursor (a tick that requested runs reports it next).
    pending = Log(jobs=1)
    pending.record([failed])
    assert Ledger.from_cursor(pending.ledger.to_cursor()).alerts == pending.ledger.alerts


# ---- a plan waiting too long ----------------------------------------------------------------
def test_a_plan_waiting_for_its_jobs_longer_than_the_bound() -> None:
    log = Log(jobs=2)
    log.submit(0, accepted())
    assert log.kinds(T0 + 24 * 3600) == []
    [alarm] = alarms.alarms(log.ledger, T0 + 25 * 3600, SETTINGS)
    assert alarm.kind == AlarmKind.PLAN_WAITING
    assert "waited 25.0 h" in alarm.text and "0 of 2 done, 1 submitted, 1 queued" in alarm.text
    assert "replace_unfinished_plan" in alarm.text
    log.plan.outcome = Outcome.COMPLETED
    assert log.kinds(T0 + 25 * 3600) == []
    log.plans[0].planned_at = None  # a plan of a cursor that did not know when: not judged
    assert log.kinds(T0 + 99 * 3600, log.replayed()) == []


def test_a_borrower_waiting_for_its_lender_longer_than_the_bound() -> None:
    ledger = Ledger()
    lender = PlanState("2026-11-19", "lend", 1, 300, ["business_email"], "p", 1, planned_at=T0)
    borrower = PlanState(DAY, "b", 0, 0, ["business_email"], "p", 2, planned_at=T0)
    borrower.lenders, borrower.borrowed = [lender.key], 40
    ledger.add_plan(lender)
    ledger.add_plan(borrower)  # no jobs of its own: completed at once, waits for the lender
    found = alarms.alarms(ledger, T0 + 25 * 3600, SETTINGS)
    texts = sorted(a.text for a in found)
    assert [a.kind for a in found] == [AlarmKind.PLAN_WAITING] * 2
    assert f"borrowed 40 URLs from ({lender.key})" in texts[1]


def test_the_message_names_five_alarms_and_counts_the_rest() -> None:
    ledger = Ledger()
    for n in range(7):
        ledger.add_plan(PlanState(f"2026-11-{n + 1:02d}", "p", 1, 300, [], "p", n))
        ledger.apply(ev.PlanFailed(date=f"2026-11-{n + 1:02d}", plan_id="p", message="x"), T0)
    text = alarms.message(alarms.alarms(ledger, T0, SETTINGS))
    assert text.count("\n") == 5 and text.endswith("... and 2 more alarms")


def test_the_cursor_keeps_the_pause_cause_and_the_down_time_and_reads_older_ones() -> None:
    log = Log()
    log.submit(0, TransportError("refused"))
    log.submit(0, PermissionDeniedError("403"), T0 + 5)
    again = Ledger.from_cursor(log.ledger.to_cursor())
    assert (again.pause_cause, again.api_down_since) == ("no_access", None)  # 403 answered
    older = '{"v":3,"ow":1,"pw":1,"paused_until":1000.0,"pause_reason":"key","plans":[]}'
    old = Ledger.from_cursor(older)
    assert old.pause_cause is None and old.key_refused(999.0) and old.alerts == {}
    assert [a.kind for a in alarms.alarms(old, 999.0, SETTINGS)] == [AlarmKind.KEY_REFUSED]


# ---- a tick that requests runs ----------------------------------------------------------------
def test_a_first_load_request_holds_alarms_back_but_re_requests_do_not() -> None:
    log = Log(jobs=1)
    log.record([ev.PlanFailed(date=DAY, plan_id="p1", message="boom")])
    found = alarms.alarms(log.ledger, T0, SETTINGS)
    first = decide.request_load(log.plan, 1, SETTINGS)
    again = decide.RequestLoad(log.plan.key, 1, None, "load attempt 1 requested again")
    assert first.event is not None
    assert not alarms.tick_fails(found, [first])  # reported by the next tick
    assert not alarms.tick_fails(found, [again, first])
    # A run that stays missing is requested again every tick: the alarms are not held back.
    assert alarms.tick_fails(found, [again])
    assert alarms.tick_fails(found, [])
    assert not alarms.tick_fails([], [again])

"""The ledger: one fold of the job events, for the sensor (its cursor) and for the assets
(a plan's outcome, its deliveries, its lenders). Plain values, no instance."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.ledger import (
    CURSOR_VERSION,
    Job,
    JobState,
    Ledger,
    LoadState,
    Outcome,
    PlanState,
)
from crust_assets.table import covers_columns, requested_columns

DAY, OLDER, NEWER = "2026-11-20", "2026-11-19", "2026-11-21"
BATCH = "0f0e0d0c-aaaa-bbbb-cccc-00000000000{}"

# Cursors written by the sensor before the lifecycle package (version 2: the load fields;
# version 1: without them, nor the jobs' sent URL counts). Job 0 active, 1 unconfirmed (then
# called "ambiguous"), 2 failed and cooling down; the older plan's load is being retried.
CURSOR_V2 = (
    '{"v":2,"ow":41,"pw":7,"paused_until":1000.0,"pause_reason":"API key refused",'
    '"last_poll_at":900.0,"plans":[{"date":"2026-11-20","plan_id":"p1","job_count":4,'
    '"url_count":1000,"fields":["business_email"],"plan_path":"plans/2026-11-20/p1.parquet",'
    '"storage_id":7,"next_index":3,"done":0,"skipped":0,"skip_reason":null,"outcome":null,'
    '"failure":null,"lenders":["2026-11-19/p0"],"borrowed":12,"load_state":null,'
    '"load_attempt":0,"load_failed_at":null,"load_retry_at":null,"load_error":null,"jobs":['
    '{"index":0,"state":"active","attempt":1,"batch_id":"0f0e0d0c-aaaa-bbbb-cccc-000000000001",'
    '"status":"processing","since":101.0,"retry_at":null,"window_start":100.0,'
    '"reconcile_tries":0,"error":null,"url_count":300},{"index":1,"state":"ambiguous",'
    '"attempt":1,"batch_id":null,"status":null,"since":102.0,"retry_at":null,'
    '"window_start":102.0,"reconcile_tries":1,"error":"submit sent, no answer received",'
    '"url_count":299},{"index":2,"state":"waiting","attempt":1,"batch_id":null,'
    '"status":"failed","since":104.0,"retry_at":400.0,"window_start":103.0,'
    '"reconcile_tries":0,"error":"boom","url_count":300}]},{"date":"2026-11-19","plan_id":"p0",'
    '"job_count":1,"url_count":10,"fields":["business_email"],'
    '"plan_path":"plans/2026-11-19/p0.parquet","storage_id":5,"next_index":0,"done":0,'
    '"skipped":0,"skip_reason":null,"outcome":"completed","failure":null,"lenders":[],'
    '"borrowed":0,"load_state":"waiting","load_attempt":1,"load_failed_at":12.0,'
    '"load_retry_at":72.0,"load_error":"503","jobs":[]}]}'
)


def cursor_v1() -> str:
    data = json.loads(CURSOR_V2)
    data["v"] = 1
    for plan in data["plans"]:
        for name in ("load_state", "load_attempt", "load_failed_at", "load_retry_at"):
            plan.pop(name)
        plan.pop("load_error")
        for job in plan["jobs"]:
            job.pop("url_count")
    return json.dumps(data, separators=(",", ":"))


def plan(date: str = DAY, plan_id: str = "p1", jobs: int = 4, storage_id: int = 7) -> PlanState:
    fields = ["business_email"]
    return PlanState(date, plan_id, jobs, 300 * jobs - 1, fields, "p.parquet", storage_id)


def job_event(kind: type[ev.JobEvent], index: int, p: PlanState, **fields: object) -> ev.JobEvent:
    return kind(date=p.date, plan_id=p.plan_id, job_index=index, job_count=p.job_count, **fields)  # type: ignore[arg-type]


def fold(ledger: Ledger, *events: ev.PlanEvent) -> Ledger:
    for t, event in enumerate(events):
        ledger.apply(event, float(t))
    return ledger


# ---- cursors ------------------------------------------------------------------------------
@pytest.mark.parametrize("cursor", [CURSOR_V2, cursor_v1()], ids=["v2", "v1"])
def test_cursors_written_before_load_as_the_same_state(cursor: str) -> None:
    ledger = Ledger.from_cursor(cursor)
    assert (ledger.observation_watermark, ledger.plan_watermark) == (41, 7)
    assert ledger.paused_until == 1000.0 and ledger.pause_reason == "API key refused"
    jobs = ledger.plans[f"{DAY}/p1"].jobs
    assert [jobs[k].state for k in "012"] == [
        JobState.ACTIVE,
        JobState.UNCONFIRMED,
        JobState.WAITING,
    ]
    assert (jobs["0"].api_status, jobs["2"].api_status) == ("processing", "failed")
    assert [j.index for _, j in ledger.unconfirmed()] == [1]
    assert ledger.free_slots() == 3  # the active and the unconfirmed job hold slots
    older = ledger.plans[f"{OLDER}/p0"]
    assert older.outcome == Outcome.COMPLETED
    if cursor == CURSOR_V2:
        assert older.load_state == LoadState.WAITING and older.load_retry_at == 72.0
        assert ledger.plans[f"{DAY}/p1"].sent_size(jobs["1"]) == 299
    else:
        assert older.load_state is None
        assert ledger.plans[f"{DAY}/p1"].sent_size(jobs["1"]) == 300


def test_a_cursor_round_trips_and_names_its_version() -> None:
    ledger = Ledger.from_cursor(CURSOR_V2)
    written = ledger.to_cursor()
    assert json.loads(written)["v"] == CURSOR_VERSION == 3
    assert '"ambiguous"' not in written and '"api_status":"processing"' in written
    again = Ledger.from_cursor(written)
    assert again.to_cursor() == written
    assert again.plans == ledger.plans
    with pytest.raises(ValueError, match="version 4"):
        Ledger.from_cursor(written.replace('"v":3', '"v":4'))


def test_deliveries_stay_out_of_the_cursor() -> None:
    p = plan(jobs=1)
    ledger = Ledger(record_deliveries=True)
    ledger.add_plan(p)
    fold(
        ledger,
        job_event(ev.JobSubmitting, 0, p),
        job_event(ev.JobSubmitted, 0, p, batch_id=BATCH.format(1)),
        job_event(ev.JobCompleted, 0, p, batch_id=BATCH.format(1)),
    )
    assert p.delivered == {0: BATCH.format(1)}
    assert "delivered" not in ledger.to_cursor()


# ---- the fold -----------------------------------------------------------------------------
def test_a_job_life_folds_to_its_state() -> None:
    p = plan()
    ledger = Ledger(record_deliveries=True)
    ledger.add_plan(p)
    fold(ledger, job_event(ev.JobSubmitting, 0, p, window_start=5.0, url_count=299))
    job = p.jobs["0"]
    assert (job.state, job.window_start, p.next_index, ledger.free_slots()) == (
        JobState.SUBMITTING,
        5.0,
        1,
        4,
    )
    fold(ledger, job_event(ev.JobSubmitted, 0, p, batch_id=BATCH.format(1)))
    assert (job.state, job.api_status, job.batch_id) == (
        JobState.ACTIVE,
        "pending",
        BATCH.format(1),
    )
    fold(ledger, job_event(ev.JobFailed, 0, p, message="boom", retry_at=60.0))
    assert (job.state, job.api_status, job.batch_id) == (JobState.WAITING, "failed", None)
    assert p.ready_jobs(59.0) == [] and p.ready_jobs(60.0) == [job]
    assert ledger.free_slots() == 5
    fold(ledger, job_event(ev.JobSubmitting, 0, p, attempt=2))
    fold(ledger, job_event(ev.JobSubmitted, 0, p, attempt=2, batch_id=BATCH.format(2)))
    fold(ledger, job_event(ev.JobCompleted, 0, p, attempt=2, batch_id=BATCH.format(2)))
    assert p.jobs == {} and p.done == 1 and p.delivered == {0: BATCH.format(2)}


def test_a_job_of_erased_people_counts_done_and_each_job_keeps_its_sent_count() -> None:
    p = PlanState(DAY, "p1", job_count=2, url_count=301, fields=[], plan_path="p", storage_id=1)
    ledger = Ledger()
    ledger.add_plan(p)
    fold(
        ledger,
        job_event(ev.JobSubmitting, 0, p, url_count=299),
        job_event(ev.JobNotSubmittedErased, 1, p, url_count=0, erased_not_submitted=1),
    )
    restored = Ledger.from_cursor(ledger.to_cursor()).plans[p.key]
    assert restored.next_index == 2 and restored.done == 1 and list(restored.jobs) == ["0"]
    assert restored.sent_size(restored.jobs["0"]) == 299 and restored.job_size(0) == 300
    assert restored.sent_size(Job(0, JobState.SUBMITTING)) == 300  # count not kept: plan rows


def test_events_of_plans_not_tracked_are_ignored() -> None:
    ledger = Ledger()
    fold(ledger, ev.PlanCompleted(date=DAY, plan_id="gone"))
    assert ledger.plans == {}


def test_a_plan_outcome_names_deliveries_and_reasons_for_what_was_given_up() -> None:
    p = plan()
    ledger = Ledger(record_deliveries=True)
    ledger.add_plan(p)
    fold(
        ledger,
        job_event(ev.JobSubmitting, 0, p),
        job_event(ev.JobSubmitted, 0, p, batch_id=BATCH.format(1)),
        job_event(ev.JobCompleted, 0, p, batch_id=BATCH.format(1)),
        job_event(ev.JobNotSubmittedErased, 1, p, url_count=0),
        job_event(ev.JobSubmitting, 2, p),
        job_event(ev.JobAbandoned, 2, p, message="the API rejected the job"),
        ev.JobsNotSubmitted(date=DAY, plan_id="p1", first_job_index=3, message="no credits"),
        ev.PlanFailed(date=DAY, plan_id="p1", message="2 of 4 jobs not delivered"),
    )
    assert p.delivered == {0: BATCH.format(1), 1: None}  # erased: done, nothing delivered
    assert p.abandoned_reasons() == {2: "the API rejected the job", 3: "no credits"}
    assert p.outcome == Outcome.FAILED and p.failure == "2 of 4 jobs not delivered"
    assert p.settled and p.skipped == 1


# ---- borrowing ----------------------------------------------------------------------------
def test_a_plan_waits_for_open_lenders_and_settled_lenders_release_it() -> None:
    lender = plan(OLDER, "a", jobs=1, storage_id=1)
    borrower = plan(NEWER, "b", jobs=0, storage_id=2)
    borrower.lenders, borrower.borrowed = [lender.key], 5
    ledger = Ledger()
    ledger.add_plan(lender)
    ledger.add_plan(borrower)  # no jobs of its own: completed at once, but waits for the lender
    assert borrower.outcome == Outcome.COMPLETED
    assert ledger.waits_for_lenders(borrower) and ledger.loadable_plans() == []
    assert ledger.open_lenders(borrower) == [lender]
    ledger.forget_finished()
    restored = Ledger.from_cursor(ledger.to_cursor())
    assert restored.waits_for_lenders(restored.plans[borrower.key])
    fold(restored, ev.PlanCompleted(date=OLDER, plan_id="a"))
    assert restored.open_lenders(restored.plans[borrower.key]) == []
    assert [p.plan_id for p in restored.loadable_plans()] == ["a", "b"]


def test_a_lender_no_longer_tracked_is_not_waited_for() -> None:
    borrower = plan(NEWER, "b", jobs=0, storage_id=2)
    borrower.lenders = [f"{OLDER}/forgotten"]
    ledger = Ledger()
    ledger.add_plan(borrower)
    assert not ledger.waits_for_lenders(borrower) and ledger.loadable_plans() == [borrower]


def test_a_new_plan_supersedes_open_waiting_and_load_pending_plans_of_its_day() -> None:
    ledger = Ledger()
    lender = plan(OLDER, "a", jobs=1, storage_id=1)
    waiting = plan(NEWER, "b", jobs=0, storage_id=2)
    waiting.lenders = [lender.key]
    ledger.add_plan(lender)
    ledger.add_plan(waiting)
    replacement = plan(NEWER, "c", jobs=1, storage_id=3)
    assert ledger.add_plan(replacement) == [waiting]  # its run is never requested
    assert ledger.add_plan(replacement) == []  # seen already
    fold(ledger, ev.PlanSuperseded(date=NEWER, plan_id="b"))
    ledger.forget_finished()
    assert sorted(ledger.plans) == [lender.key, replacement.key]


def test_which_plans_lend_and_which_of_their_jobs() -> None:
    ledger = Ledger(record_deliveries=True)
    old_of_day = plan(OLDER, "a0", jobs=2, storage_id=1)
    lender = plan(OLDER, "a", jobs=3, storage_id=2)  # the day's newest plan: it lends
    same_day = plan(DAY, "d", jobs=1, storage_id=3)  # the borrower's own day: never
    fewer_fields = plan("2026-11-15", "f", jobs=1, storage_id=4)
    fewer_fields.fields = ["personal_contact_info.phone_numbers"]
    loaded = plan("2026-11-16", "l", jobs=1, storage_id=5)
    superseded = plan("2026-11-17", "s", jobs=1, storage_id=6)
    empty = plan("2026-11-18", "e", jobs=0, storage_id=7)
    for p in (old_of_day, lender, same_day, fewer_fields, loaded, superseded, empty):
        ledger.plans[p.key] = p
    fold(
        ledger,
        job_event(ev.JobSubmitting, 1, lender),
        job_event(ev.JobAbandoned, 1, lender, message="failed 3 times"),
        ev.PlanSuperseded(date="2026-11-17", plan_id="s"),
    )
    wanted = requested_columns(["business_email"])
    lenders = ledger.lenders_for(
        DAY, lambda fields: wanted <= requested_columns(fields), loaded={loaded.key}
    )
    assert [(p.plan_id, abandoned) for p, abandoned in lenders] == [("a", {1})]


def test_reused_and_borrowed_rows_must_cover_the_requested_fields() -> None:
    rows = pa.table(
        {
            "business_emails": pa.array([[], None, []], pa.list_(pa.string())),
            "phone_numbers": pa.array([["+1"], ["+2"], None], pa.list_(pa.string())),
        }
    )
    assert covers_columns(rows, ["business_emails"]).to_pylist() == [True, False, True]
    both = ["business_emails", "phone_numbers"]
    assert covers_columns(rows, both).to_pylist() == [True, False, False]
    assert covers_columns(rows, []).to_pylist() == [True, True, True]

"""Sensors: the one job submitter, and the watcher that starts a partition when its list lands.

`contact_enrichment_sensor` is the ONLY code that submits jobs: the account allows 5 active jobs
in total, and a single writer (the daemon serialises a sensor's ticks) is what keeps a 30-day
backfill from fighting over the slots or billing a job twice. See `crust_assets.job_queue`.
"""

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import PurePath

import dagster as dg
import pyarrow.parquet as pq

from crust_assets.crustdata import (
    AmbiguousSubmissionError,
    AuthenticationError,
    CrustdataClient,
    CrustdataError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TooManyActiveJobsError,
)
from crust_assets.crustdata.lost_submit import find_lost_submit
from crust_assets.crustdata.redact import SecretScrubber
from crust_assets.defs.job_events import (
    iter_job_events,
    iter_plan_records,
    latest_observation_storage_id,
    plan_from_record,
    record_job_event,
)
from crust_assets.defs.jobs import (
    PIPELINE_RUN_TAGS,
    enriched_contacts_job,
    plan_contact_enrichment_job,
)
from crust_assets.defs.loads import LoadTracker
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.pools import ensure_planner_pool_limit
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.erasure import erased_urls
from crust_assets.job_queue import JobEvent, JobState, PlanState, QueueState
from crust_assets.storage import DataLayout
from crust_assets.webhook_hints import consume_hints

DEFAULT_POLL_INTERVAL_SECONDS = 30
# A job whose submit gets no answer is looked for in GET /batch on this many ticks before we
# give up on it (and never resubmit it: that could bill the same URLs twice).
MAX_RECONCILE_TRIES = 3
# How long to stop submitting after the API refused the key or the account's credits.
PAUSE_SECONDS = 300.0
# Server clocks are not ours: accept a job created this much outside the submit window.
CLOCK_SKEW_SECONDS = 5.0
# Don't start a new API call when less than this is left of the tick budget.
CALL_RESERVE_SECONDS = 2.0
# One API call's read timeout inside a tick, and its retry budget.
SENSOR_CALL_TIMEOUT_SECONDS = 10.0
SENSOR_RETRY_SECONDS = 5.0


def poll_interval_seconds() -> int:
    """env CRUST_POLL_INTERVAL_SECONDS (default 30), read when the code location loads."""
    return int(os.environ.get("CRUST_POLL_INTERVAL_SECONDS", DEFAULT_POLL_INTERVAL_SECONDS))


def sensor_interval_seconds() -> int:
    """With job-complete callbacks (CRUST_WEBHOOK_URL) the sensor ticks every 5 s, the daemon's
    floor, so a callback is acted on at once; polling keeps its own interval (`_poll_due`)."""
    return 5 if os.environ.get("CRUST_WEBHOOK_URL") else poll_interval_seconds()


class SubmitterTick:
    """One evaluation of the submitter: poll, reconcile, submit, request runs, in a time budget."""

    def __init__(
        self,
        context: dg.SensorEvaluationContext,
        client: CrustdataClient,
        settings: EnrichmentSettings,
        data_root: DataRoot,
        *,
        call_timeout: float = SENSOR_CALL_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        secrets: Sequence[str | None] = (),
    ) -> None:
        self.client_timeout = call_timeout
        self.context = context
        self.instance = context.instance
        self.client = client
        self.settings = settings
        self.layout = data_root.layout()
        self.clock = clock
        self.deadline = clock() + settings.tick_budget_seconds
        self.state = QueueState.from_cursor(context.cursor)
        self.calls = 0
        self.notes: list[str] = []
        self.erased: frozenset[str] | None = None  # read at the first submit (`_urls_to_send`)
        # A failed run's text goes into events and the summary: the key and token stay out.
        scrubber = SecretScrubber(settings.webhook_url, *secrets)
        self.loads = LoadTracker(
            self.instance,
            self.state,
            settings.load_retry_policy(),
            self._emit,
            self.notes,
            clock,
            scrubber,
        )

    # ---- the tick --------------------------------------------------------------------------
    def run(self) -> dg.SensorResult:
        if warning := ensure_planner_pool_limit(self.instance):
            self.notes.append(warning)
        self._discover_plans()
        self._replay_events()
        if self.state.open_plans():
            if self._poll_due():
                self._poll_active()
                self.state.last_poll_at = self.clock()
            self._reconcile_unconfirmed()
            self._submit_ready()
        else:
            self._drop_stale_hints("no plan is open")
        run_requests = self._finish_plans()
        self._note_borrowers()
        summary = self._summary()
        self.state.observation_watermark = max(
            self.state.observation_watermark, latest_observation_storage_id(self.instance)
        )
        self.state.forget_finished()
        self.context.log.info(summary)
        return dg.SensorResult(
            run_requests=run_requests,
            cursor=self.state.to_cursor(),
            skip_reason=None if run_requests else summary,
        )

    def _poll_due(self) -> bool:
        """Poll every tick, unless callbacks are configured: then the sensor ticks every ~5 s
        (so a hint acts at once) but polls on its own only every CRUST_POLL_INTERVAL_SECONDS."""
        if not self.settings.webhook_url:
            self._drop_stale_hints("CRUST_WEBHOOK_URL is not set")
            return True
        active = {job.batch_id for _, job in self.state.slot_holders() if job.batch_id}
        hints, problem = hinted_batch_ids(self.layout)
        if problem:
            self.notes.append(problem)
        hinted = active & hints  # the poll below confirms each with GET /batch
        if hinted:
            self.notes.append(f"{len(hinted)} job(s) hinted by webhook")
            return True
        return self.clock() - self.state.last_poll_at >= poll_interval_seconds() - 1.0

    def _drop_stale_hints(self, why: str) -> None:
        """Delete the hints no job can use, so leftover or forged ones never pile up in the
        store; one that cannot be read is a note only when callbacks are on."""
        dropped, problem = hinted_batch_ids(self.layout)
        if dropped:
            self.notes.append(f"{len(dropped)} stale webhook hint(s) deleted: {why}")
        elif problem and self.settings.webhook_url:
            self.notes.append(problem)

    def _time_left(self) -> float:
        return self.deadline - self.clock()

    def _has_time(self) -> bool:
        return self._time_left() > CALL_RESERVE_SECONDS

    # ---- state ---------------------------------------------------------------------------
    def _discover_plans(self) -> None:
        for record in iter_plan_records(self.instance, after_storage_id=self.state.plan_watermark):
            self.state.plan_watermark = record.storage_id
            plan = plan_from_record(record)
            if plan is None:
                continue
            for old in self.state.add_plan(plan):
                if old.load_pending and self.loads.loaded(old):
                    continue  # its run loaded it already: nothing to stop
                text = f"superseded by plan {plan.plan_id}"
                if old.load_pending:
                    text += "; its load is not requested again"
                self._emit(old, JobEvent.PLAN_SUPERSEDED, text)

    def _replay_events(self) -> None:
        """Fold in events written after the cursor's snapshot (a tick that died before saving)."""
        for record, event in iter_job_events(
            self.instance, after_storage_id=self.state.observation_watermark
        ):
            self.state.apply(event, record.timestamp)
            self.state.observation_watermark = record.storage_id

    def _emit(
        self,
        plan: PlanState,
        name: str,
        description: str,
        job: JobState | None = None,
        **fields: object,
    ) -> None:
        event: dict[str, object] = {"event": name, "date": plan.date, "plan_id": plan.plan_id}
        if job is not None:
            event.update(job_index=job.index, attempt=job.attempt, job_count=plan.job_count)
        event.update(fields)
        record_job_event(self.instance, plan.date, event, description)
        self.state.apply({k: v for k, v in event.items() if v is not None}, self.clock())

    def _job_label(self, plan: PlanState, job: JobState) -> str:
        return f"{plan.date} job {job.index + 1}/{plan.job_count}"

    # ---- polling -------------------------------------------------------------------------
    def _poll_active(self) -> None:
        for plan, job in self.state.slot_holders():
            if job.state != "active" or not job.batch_id:
                continue
            if not self._has_time():
                self.notes.append("tick budget reached while polling")
                return
            try:
                self.calls += 1
                status = self.client.status(job.batch_id)
            except NotFoundError:
                self._job_failed(plan, job, "the API no longer knows this batch id")
                continue
            except AuthenticationError as error:
                self._pause(f"API key refused: {error}")
                return
            except CrustdataError as error:
                self.notes.append(f"could not poll {job.batch_id}: {error}")
                continue
            label = self._job_label(plan, job)
            if status.status == "completed":
                self._emit(
                    plan,
                    JobEvent.COMPLETED,
                    f"{label} completed: batch {job.batch_id}, "
                    f"{status.entities_fulfilled} of {status.identifier_count} profiles fulfilled",
                    job,
                    batch_id=job.batch_id,
                    status="completed",
                    result_count=status.result_count,
                    entities_fulfilled=status.entities_fulfilled,
                    completed_at=status.completed_at.isoformat() if status.completed_at else None,
                )
            elif status.status == "failed":
                self._job_failed(plan, job, status.error_message or "the API reported failed")
            elif status.status == "processing" and job.status != "processing":
                self._emit(
                    plan,
                    JobEvent.PROCESSING,
                    f"{label} processing: batch {job.batch_id}",
                    job,
                    batch_id=job.batch_id,
                    status="processing",
                )

    def _job_failed(self, plan: PlanState, job: JobState, message: str) -> None:
        label = self._job_label(plan, job)
        if job.attempt < self.settings.max_job_attempts:
            retry_at = self.clock() + self.settings.retry_cooldown_seconds
            self._emit(
                plan,
                JobEvent.FAILED,
                f"{label} failed (attempt {job.attempt}): {message}; resubmitting after "
                f"{self.settings.retry_cooldown_seconds:.0f} s",
                job,
                batch_id=job.batch_id,
                status="failed",
                message=message,
                retry_at=retry_at,
            )
        else:
            self._emit(
                plan,
                JobEvent.FAILED,
                f"{label} failed (attempt {job.attempt}, the last): {message}",
                job,
                batch_id=job.batch_id,
                status="failed",
                message=message,
            )
            self._emit(
                plan,
                JobEvent.ABANDONED,
                f"{label} given up after {job.attempt} attempts: {message}",
                job,
                message=f"failed {job.attempt} times; last error: {message}",
            )

    # ---- unconfirmed submissions ---------------------------------------------------------
    def _reconcile_unconfirmed(self) -> None:
        """Find jobs whose submit got no answer in GET /batch, instead of submitting again."""
        unconfirmed = [
            (plan, job)
            for plan, job in self.state.slot_holders()
            if job.state in ("submitting", "ambiguous")
        ]
        if not unconfirmed:
            return
        # Every batch id our events ever named is ours and not the lost one, including jobs that
        # already finished and left the cursor: a job of the same size completed a moment
        # earlier must not make the look-up ambiguous (fault matrix: lost-submit-reconciled).
        known = {job.batch_id for _, job in self.state.slot_holders() if job.batch_id is not None}
        earliest = min((job.window_start or job.since) for _, job in unconfirmed)
        known |= recorded_batch_ids(self.instance, earliest - CLOCK_SKEW_SECONDS - 60.0)
        try:
            self.calls += 1
            recent = list(self.client.list_batches(limit=100))
        except CrustdataError as error:
            self.notes.append(f"could not list batches to reconcile: {error}")
            return
        for plan, job in unconfirmed:
            sent_from = datetime.fromtimestamp(job.window_start or job.since, tz=timezone.utc)
            sent_until = datetime.fromtimestamp(
                max(job.since, job.window_start or 0) + self.client_timeout, tz=timezone.utc
            )
            size = plan.sent_size(job)
            lookup = find_lost_submit(
                recent,
                sent_from=sent_from,
                sent_until=sent_until,
                identifier_count=size,
                skew_seconds=CLOCK_SKEW_SECONDS,
                known_ids=known,
            )
            label = self._job_label(plan, job)
            if lookup.match is not None:
                known.add(lookup.match.batch_id)
                self._emit(
                    plan,
                    JobEvent.SUBMITTED,
                    f"{label} confirmed through GET /batch: batch {lookup.match.batch_id}",
                    job,
                    batch_id=lookup.match.batch_id,
                    status=lookup.match.status,
                    reconciled=True,
                )
                continue
            tries = job.reconcile_tries + 1
            if lookup.ambiguous:
                ids = ", ".join(b.batch_id for b in lookup.candidates)
                message = (
                    f"its submit got no answer and {len(lookup.candidates)} jobs in GET /batch "
                    "could be it "
                    f"({ids}); not resubmitted, so as not to pay twice"
                )
            elif tries >= MAX_RECONCILE_TRIES:
                message = (
                    f"its submit got no answer and no job in GET /batch matches it ({size} URLs, "
                    f"sent at {sent_from.isoformat()}); not resubmitted, so as not to pay twice. "
                    "Check the account's jobs, then re-materialise contact_enrichment_batch for "
                    "this date"
                )
            else:
                self._emit(
                    plan,
                    JobEvent.SUBMISSION_UNCONFIRMED,
                    f"{label}: submission not confirmed yet (look-up {tries} of "
                    f"{MAX_RECONCILE_TRIES})",
                    job,
                    reconcile_tries=tries,
                    message="submit sent, no answer received",
                )
                continue
            self._emit(
                plan, JobEvent.ABANDONED, f"{label} given up: {message}", job, message=message
            )

    # ---- submission ----------------------------------------------------------------------
    def _candidates(self) -> list[tuple[PlanState, JobState | None, int]]:
        """(plan, job or None for a new one, index) in submission order: oldest partition first."""
        now = self.clock()
        order: list[tuple[PlanState, JobState | None, int]] = []
        for plan in self.state.open_plans():
            order.extend((plan, job, job.index) for job in plan.ready_jobs(now))
            order.extend((plan, None, i) for i in range(plan.next_index, plan.job_count))
            if len(order) >= self.state.free_slots():
                break
        return order

    def _submit_ready(self) -> None:
        if self.state.paused_until and self.clock() < self.state.paused_until:
            self.notes.append(f"submissions paused: {self.state.pause_reason}")
            return
        self.state.paused_until = self.state.pause_reason = None
        for plan, job, index in self._candidates():
            if self.state.free_slots() == 0:
                return
            if self._time_left() < self.client_timeout + CALL_RESERVE_SECONDS:
                self.notes.append("tick budget reached before submitting")
                return
            if not self._submit_one(plan, job, index):
                return

    def _submit_one(self, plan: PlanState, job: JobState | None, index: int) -> bool:
        """Submit one job; False when submitting should stop for this tick."""
        attempt = 1 if job is None else job.attempt + (1 if job.status == "failed" else 0)
        if (sending := self._urls_to_send(plan, index)) is None:
            return False
        urls, erased = sending
        placeholder = job or JobState(index=index, state="submitting", attempt=attempt)
        placeholder.attempt = attempt
        if not urls:
            return self._all_erased(plan, placeholder, erased)
        label = self._job_label(plan, placeholder)
        note = f"; {erased} erased since planning, not sent" if erased else ""
        self._emit(
            plan,
            JobEvent.SUBMITTING,
            f"{label}: submitting {len(urls)} URLs (attempt {attempt}){note}",
            placeholder,
            window_start=self.clock(),
            url_count=len(urls),
            erased_not_submitted=erased,
        )
        job = plan.jobs[str(index)]
        try:
            self.calls += 1
            response = self.client.submit(urls, plan.fields, webhook_url=self.settings.webhook_url)
        except AmbiguousSubmissionError as error:
            self._emit(
                plan,
                JobEvent.SUBMISSION_UNCONFIRMED,
                f"{label}: submit sent but no answer; will look for it in GET /batch",
                job,
                reconcile_tries=0,
                message=str(error),
            )
            return False
        except TooManyActiveJobsError:
            self._defer(plan, job, "the account already has 5 active jobs")
            return False
        except InsufficientCreditsError as error:
            self._defer(plan, job, f"insufficient credits: {error}")
            self._credits_exhausted(str(error))
            return False
        except (AuthenticationError, PermissionDeniedError) as error:
            self._defer(plan, job, str(error))
            self._pause(f"the API refused the key: {error}")
            return False
        except InvalidRequestError as error:
            message = f"the API rejected the job: {error}"
            self._emit(
                plan, JobEvent.ABANDONED, f"{label} given up: {message}", job, message=message
            )
            return True
        except CrustdataError as error:
            self._defer(plan, job, f"submit failed, will retry: {error}")
            return False
        self._emit(
            plan,
            JobEvent.SUBMITTED,
            f"{label} submitted: batch {response.batch_id} ({response.identifier_count} URLs)",
            job,
            batch_id=response.batch_id,
            status=response.status,
            url_count=response.identifier_count,
        )
        return True

    def _all_erased(self, plan: PlanState, job: JobState, erased: int) -> bool:
        """A job whose every URL was erased is not sent: recorded as done with nothing to
        deliver, so the plan still completes and its load expects no row for them."""
        self._emit(
            plan,
            JobEvent.NOT_SUBMITTED_ERASED,
            f"{self._job_label(plan, job)}: not submitted: all {erased} of its URLs were erased "
            "with `crust-assets forget` since it was planned; nothing to buy or deliver",
            job,
            url_count=0,
            erased_not_submitted=erased,
        )
        return True

    def _urls_to_send(self, plan: PlanState, index: int) -> tuple[list[str], int] | None:
        """Job `index`'s URLs without the people erased since the plan was made (a plan made
        before a `forget` must not buy them), unless re-enriching erased people is allowed, and
        how many were left out. The log is read once per tick, at the first submit. None (send
        nothing this tick) when the log cannot be read: sending a person who asked to be
        forgotten is worse than waiting.
        """
        urls = read_job_urls(
            self.layout.plan_files_at(plan.plan_path).submit,
            index,
            plan.job_size(index),
            self.layout,
        )
        if self.settings.allow_reenrich_erased:
            return urls, 0
        if self.erased is None:
            try:
                self.erased = frozenset(erased_urls(self.layout))
            except Exception as error:  # a bucket raises botocore's own errors, not OSError
                self.notes.append(
                    f"erasure log unreadable ({type(error).__name__}); not submitting this tick"
                )
                return None
        kept = [url for url in urls if url not in self.erased]
        return kept, len(urls) - len(kept)

    def _defer(self, plan: PlanState, job: JobState, reason: str) -> None:
        self._emit(
            plan,
            JobEvent.DEFERRED,
            f"{self._job_label(plan, job)} not accepted, back in the queue: {reason}",
            job,
            message=reason,
            retry_at=self.clock(),
        )

    def _pause(self, reason: str) -> None:
        self.state.paused_until = self.clock() + PAUSE_SECONDS
        self.state.pause_reason = reason
        self.context.log.error(f"contact_enrichment_sensor: submissions paused: {reason}")
        self.notes.append(f"submissions paused: {reason}")

    def _credits_exhausted(self, error: str) -> None:
        """Stop spending: give up every job not yet accepted; running jobs still deliver."""
        message = (
            f"not submitted: the account ran out of credits ({error}). Delivered jobs are kept; "
            "add credits, then re-materialise contact_enrichment_batch for this date: only URLs "
            "not enriched yet will be submitted"
        )
        self.context.log.error(f"contact_enrichment_sensor: {message}")
        for plan in self.state.open_plans():
            for job in list(plan.jobs.values()):
                if job.state == "waiting":
                    self._emit(
                        plan,
                        JobEvent.ABANDONED,
                        f"{self._job_label(plan, job)} {message}",
                        job,
                        message=message,
                    )
            if plan.next_index < plan.job_count:
                self._emit(
                    plan,
                    JobEvent.JOBS_NOT_SUBMITTED,
                    f"{plan.date}: jobs {plan.next_index + 1}-{plan.job_count} {message}",
                    first_job_index=plan.next_index,
                    message=message,
                )

    # ---- plan completion -----------------------------------------------------------------
    def _finish_plans(self) -> list[dg.RunRequest]:
        for plan in self.state.open_plans():
            if plan.done == plan.job_count:
                self._emit(
                    plan,
                    JobEvent.PLAN_COMPLETED,
                    f"{plan.date}: all {plan.job_count} jobs completed; loading enriched_contacts",
                )
            elif plan.settled:
                given_up = len(plan.abandoned) + plan.skipped
                reasons = sorted({j.error or "" for j in plan.abandoned} | {plan.skip_reason or ""})
                message = f"{given_up} of {plan.job_count} jobs not delivered: " + "; ".join(
                    r for r in reasons if r
                )
                self._emit(plan, JobEvent.PLAN_FAILED, f"{plan.date}: {message}", message=message)
        return self.loads.run_requests()

    def _note_borrowers(self) -> None:
        """Say which plans wait for URLs borrowed from other partitions' running plans."""
        for plan in self.state.plans.values():
            lenders = self.state.open_lenders(plan)
            if plan.outcome in (None, "completed", "failed") and lenders:
                dates = ", ".join(sorted({lender.date for lender in lenders}))
                self.notes.append(
                    f"{plan.date}: {plan.borrowed} URLs borrowed from plans still running "
                    f"({dates}); loads when they are settled"
                )

    def _summary(self) -> str:
        queued = active = done = 0
        for plan in self.state.open_plans():
            queued += plan.job_count - plan.next_index + len(plan.ready_jobs(float("inf")))
            done += plan.done
        active = len(self.state.slot_holders())
        text = f"jobs queued {queued}, active {active}, done {done}; API calls {self.calls}"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def hinted_batch_ids(layout: DataLayout) -> tuple[set[str], str | None]:
    """Batch ids the webhook receiver hinted (consumed), and why none could be read, if so.

    Hints only save latency, and polling covers for them, so no failure to read them may fail
    the tick: an unreachable bucket raises botocore's own errors, not OSError.
    """
    try:
        return consume_hints(layout), None
    except Exception as error:  # any failure: see above
        return set(), f"webhook hints unreadable ({type(error).__name__}); polling instead"


def recorded_batch_ids(instance: dg.DagsterInstance, since: float) -> set[str]:
    """Batch ids named by job events written after `since` (unix seconds): jobs known to be ours."""
    return {
        str(event["batch_id"])
        for _, event in iter_job_events(instance, after_timestamp=since)
        if event.get("batch_id")
    }


def read_job_urls(
    plan_file: PurePath, index: int, expected: int, layout: DataLayout | None = None
) -> list[str]:
    """The URLs of job `index`: row group `index` of the plan file (one row group per job).

    Read through `layout`'s filesystem (local disk when None): on S3, two ranged GETs.
    """
    parquet = layout.parquet_file(plan_file) if layout else pq.ParquetFile(plan_file)
    table = parquet.read_row_group(index, columns=["job_index", "profile_url"])
    indexes = set(table.column("job_index").to_pylist())
    if indexes != {index} or table.num_rows != expected:
        raise RuntimeError(
            f"plan file {plan_file} is inconsistent at job {index}: "
            f"{table.num_rows} rows, job indexes {sorted(indexes)[:5]}"
        )
    return table.column("profile_url").to_pylist()


@dg.sensor(
    name="contact_enrichment_sensor",
    job=enriched_contacts_job,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "The only job submitter: keeps up to 5 Crustdata jobs active across all partitions "
        "(oldest first), polls them, records each job's life on contact_enrichment_batch, and "
        "requests enriched_contacts[date] when a partition's jobs are all done (again, with "
        "backoff, if that run fails before loading)."
    ),
)
def contact_enrichment_sensor(
    context: dg.SensorEvaluationContext,
    crustdata: CrustdataResource,
    enrichment: EnrichmentSettings,
    data_root: DataRoot,
) -> dg.SensorResult:
    # Short per-call retry budget: the whole tick must end well inside Dagster's 60 s limit. A
    # shorter read timeout configured on the resource wins; the tick's reconcile window must use
    # the timeout the client really had, so it is passed on.
    timeout = min(crustdata.timeout_seconds, SENSOR_CALL_TIMEOUT_SECONDS)
    # The webhook URL holds the receiver's token: the client masks it in every server text
    # (an echoed webhook_url in a 400, a failed job's error_message), even on ticks that only poll.
    with crustdata.client(
        timeout=timeout,
        max_retry_seconds=SENSOR_RETRY_SECONDS,
        secrets=(enrichment.webhook_url,),
    ) as client:
        return SubmitterTick(
            context,
            client,
            enrichment,
            data_root,
            call_timeout=timeout,
            secrets=(crustdata.api_key,),
        ).run()


INPUT_FILE_PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv$")


@dg.sensor(
    name="contact_url_list_file_sensor",
    job=plan_contact_enrichment_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Starts a partition when a new or changed <data>/input/<YYYY-MM-DD>.csv appears. Stopped "
        "by default: turning it on spends credits on every list that lands."
    ),
)
def contact_url_list_file_sensor(
    context: dg.SensorEvaluationContext, data_root: DataRoot
) -> dg.SensorResult:
    layout = data_root.layout()
    input_dir = layout.input_dir
    watermark, seen_at_watermark = parse_file_cursor(context.cursor)
    newest, seen_at_newest = watermark, set(seen_at_watermark)
    requests = []
    valid_keys = set(daily_partitions.get_partition_keys())
    # Listed through the data root's filesystem: on S3 the time is the object's LastModified,
    # in whole seconds, so a list landing in the second of the watermark is told apart by name.
    for name, modified in layout.list_files(input_dir):
        match = INPUT_FILE_PATTERN.match(name)
        if not match:
            continue
        if modified < watermark or (modified == watermark and name in seen_at_watermark):
            continue
        if modified > newest:
            newest, seen_at_newest = modified, set()
        if modified == newest:
            seen_at_newest.add(name)
        date = match.group(1)
        if date not in valid_keys:
            context.log.warning(f"{name}: {date} is not a partition of this pipeline")
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{date}:{modified}", partition_key=date, tags={"crust/input": name}
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        cursor=file_cursor(newest, seen_at_newest),
        skip_reason=None if requests else f"no new list in {layout.url(input_dir)}",
    )


def file_cursor(mtime_ns: int, names: set[str]) -> str:
    """The watermark, plus the (few) names already seen at exactly that time."""
    if not names:
        return str(mtime_ns)
    return json.dumps({"mtime_ns": mtime_ns, "names": sorted(names)})


def parse_file_cursor(cursor: str | None) -> tuple[int, set[str]]:
    """Reads both forms: a bare watermark (older cursors) and the watermark with names."""
    if not cursor:
        return 0, set()
    if cursor.lstrip().startswith("{"):
        value = json.loads(cursor)
        return int(value["mtime_ns"]), set(value["names"])
    return int(cursor), set()


# contact_coverage and contacts_latest carry automation conditions; this sensor evaluates them
# (on by default, so they follow enriched_contacts without anyone clicking).
contact_automation_sensor = dg.AutomationConditionSensorDefinition(
    "contact_automation_sensor",
    target=dg.AssetSelection.assets(
        "contact_coverage", "contacts_latest", "contacts_duckdb", "enriched_list"
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=poll_interval_seconds(),
    run_tags=PIPELINE_RUN_TAGS,
    description="Updates contact_coverage, contacts_latest and enriched_list when "
    "enriched_contacts changes.",
)

"""The submitter's executor: one tick of `contact_enrichment_sensor`.

It reads the events written since its cursor, asks `crust_assets.lifecycle.decide` what to do,
runs each action against the API and records what happened. Every event is written to the
event log before it is folded into the ledger, so a tick that dies mid-way replays to the
same state on the next tick, and an accepted job is never submitted again.

When `crust_assets.lifecycle.alarms` finds something alarming (a refused key, the API down too
long, a failed plan...), the tick fails with `SubmitterAlarm` once its events are recorded:
Dagster keeps neither the cursor nor the run requests of a failed tick, so a tick that requests
runs reports its alarms on the next one, and everything the next tick needs is in the event log.
"""

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

import dagster as dg

from crust_assets.crustdata import CrustdataClient, CrustdataError
from crust_assets.crustdata.redact import SecretScrubber
from crust_assets.defs import job_events as log
from crust_assets.defs.hints import poll_due
from crust_assets.defs.job_urls import JobUrls
from crust_assets.defs.loads import latest_load_run, load_run_request, pending_load_done
from crust_assets.defs.pools import ensure_planner_pool_limit
from crust_assets.defs.resources import DataRoot, EnrichmentSettings
from crust_assets.lifecycle import alarms, answers, decide
from crust_assets.lifecycle.events import PlanEvent
from crust_assets.lifecycle.ledger import Ledger, PlanState
from crust_assets.lifecycle.settings import SENSOR_CALL_TIMEOUT_SECONDS
from crust_assets.names import current

T = TypeVar("T")


class SubmitterAlarm(dg.DagsterError):
    """Fails the tick with what is wrong and what to do (a DagsterError, so Dagster shows this
    text as the tick's error instead of wrapping it)."""


class SubmitterTick:
    """One evaluation of the submitter: poll, look up, submit, finish, load, in a time budget."""

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
        self.context, self.instance, self.client = context, context.instance, client
        self.webhook_url, self.layout, self.clock = settings.webhook_url, data_root.layout(), clock
        names = current()  # the texts name this copy's assets and sensor
        self.rules = replace(
            settings.lifecycle_settings(call_timeout),
            batch_asset=names.batch_key.to_user_string(),
            contacts_asset=names.contacts_key.to_user_string(),
            submitter_sensor=names.submitter_sensor,
        )
        self.deadline = clock() + settings.tick_budget_seconds
        self.ledger = Ledger.from_cursor(context.cursor)
        self.calls, self.notes, self.run_requests = 0, list[str](), list[dg.RunRequest]()
        self.load_requests: list[decide.RequestLoad] = []
        self.urls = JobUrls(self.layout, settings.allow_reenrich_erased)
        # A failed run's text goes into events and the summary: the key and token stay out.
        self.scrubber = SecretScrubber(settings.webhook_url, *secrets)

    def run(self) -> dg.SensorResult:
        if warning := ensure_planner_pool_limit(self.instance):
            self.notes.append(warning)
        loaded = functools.partial(pending_load_done, self.instance)
        superseding = log.discover_plans(self.instance, self.ledger, loaded)
        log.replay_events(self.instance, self.ledger)
        self._record(*self.ledger.not_superseded_yet(superseding))
        if not self.context.cursor:
            self.ledger.plan_failures_as_history()
        now = self.clock()
        due = poll_due(self.layout, self.ledger, self.webhook_url, now, self.notes)
        facts = self.ledger.start_tick(now, self.deadline, due)
        while True:
            step = decide.next_step(self.ledger, self.clock(), self.rules)
            if not step.actions:
                break
            for action in step.actions:
                self._act(action)
            facts.finished |= step.finishes
        found = alarms.alarms(self.ledger, self.clock(), self.rules)
        fails = alarms.tick_fails(found, self.load_requests)
        if found and not fails:  # a failed tick's run requests would be dropped
            self.notes.append(f"{len(found)} alarms, reported by the next tick")
        summary = decide.summary(self.ledger, self.calls, self.notes)
        latest = log.latest_observation_storage_id(self.instance)
        self.ledger.observation_watermark = max(self.ledger.observation_watermark, latest)
        self.ledger.forget_finished()
        self.context.log.info(summary)
        result = dg.SensorResult(
            run_requests=self.run_requests,
            cursor=self.ledger.to_cursor(),
            skip_reason=None if self.run_requests else summary,
        )
        if fails:
            # First the log: a one-off fails one tick.
            self._record(*alarms.reported(found, self.rules))
            raise SubmitterAlarm(alarms.message(found))
        return result

    def _record(self, *events: PlanEvent) -> None:
        for event in events:
            log.record_event(self.instance, event)  # first the log, the truth; then the fold
            self.ledger.apply(event, self.clock())

    def _act(self, action: decide.Action) -> None:
        plans, facts = self.ledger.plans, self.ledger.facts
        match action:
            case decide.Poll(key, index, batch_id):
                facts.polled.add((key, index))
                answer = self._call(lambda: self.client.status(batch_id))
                job = plans[key].jobs[str(index)]
                result = answers.poll_answer(plans[key], job, answer, self.clock(), self.rules)
                facts.polls_stopped = result.stop
                self._apply(result, plans[key], answer)
            case decide.FindLostSubmit():
                self._find_lost_submits()
            case decide.Submit(key, index, attempt):
                self._submit(plans[key], index, attempt)
            case decide.Record(events, notes):
                self._record(*events)
                self.notes.extend(notes)
            case decide.Note(text):
                self.notes.append(text)
            case decide.LookUpLoadRun(key, attempt):
                run = latest_load_run(self.instance, plans[key].plan_id, attempt, self.scrubber)
                facts.load_runs[(key, attempt)] = run
            case decide.SetLoadState(key, state, attempt, note):
                plans[key].load_state, plans[key].load_attempt = state, attempt
                self.notes.extend([note] if note else [])
            case decide.RequestLoad(key, attempt, event, note):
                self._record(*([event] if event else []))
                self.notes.extend([note] if note else [])
                self.run_requests.append(load_run_request(plans[key], attempt))
                self.load_requests.append(action)

    def _call(self, call: Callable[[], T]) -> T | CrustdataError:
        """One API call: its answer, or the client's error as a value."""
        self.calls += 1
        try:
            return call()
        except CrustdataError as error:
            return error

    def _apply(self, answer: answers.Answer, plan: PlanState, raw: object) -> None:
        """Record what the call's answer (`raw`, read as `answer`) means, then what follows."""
        self._record(*answer.events)
        then = answers.consequences(self.ledger, plan, answer, raw, self.clock(), self.rules)
        self._record(*then.events)
        self.notes.extend(answer.notes + then.notes)

    def _find_lost_submits(self) -> None:
        known = log.known_batch_ids(self.instance, self.ledger, self.rules.clock_skew_seconds + 60)
        listed = self._call(lambda: list(self.client.list_batches(limit=100)))
        unconfirmed = self.ledger.unconfirmed()
        answer = answers.Answer(notes=(f"could not list batches to reconcile: {listed}",))
        if not isinstance(listed, CrustdataError):
            answer = answers.lost_submit_answer(unconfirmed, listed, known, self.rules)
        self._apply(answer, unconfirmed[0][0], listed)

    def _submit(self, plan: PlanState, index: int, attempt: int) -> None:
        if (sending := self.urls.to_send(plan, index)) is None:
            self.notes.append(str(self.urls.problem))
            self.ledger.facts.submits_stopped = True
            return
        urls, erased = sending
        if not urls:
            self._record(decide.not_submitted_erased(plan, index, attempt, erased))
            return
        self._record(decide.submitting(plan, index, attempt, len(urls), erased, self.clock()))
        sent = self._call(
            lambda: self.client.submit(urls, plan.fields, webhook_url=self.webhook_url)
        )
        answer = answers.submit_answer(plan, plan.jobs[str(index)], sent, self.clock())
        self.ledger.facts.submits_stopped = answer.stop
        self._apply(answer, plan, sent)

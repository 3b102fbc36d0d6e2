"""What is alarming: a pure function of the ledger, the clock and the settings.

The sensor fails its tick (a Dagster failure, which alert policies and the Slack sensor see)
while an alarm holds, with a message that says what is wrong and what to do. Two kinds:

- conditions, which fail every tick while they hold and stop once they clear: the key refused
  (401) or access denied (403), both while submissions are paused after the refusal; the API not
  answering for longer than CRUST_API_DOWN_ALERT_MINUTES while there is work for it; a plan
  waiting longer than CRUST_PLAN_WAIT_ALERT_HOURS for its jobs or for the plans it borrowed from;
- one-off facts, which fail one tick: a plan failed (jobs not delivered), the account ran out of
  credits. They are pending in the ledger from their event until an `alert_raised` event says a
  failed tick reported them.

Every input is folded from recorded events, so a tick that fails (Dagster keeps no cursor of a
failed tick) and the replay after it reach the same alarms. No Dagster here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum

from crust_assets.lifecycle import events as ev
from crust_assets.lifecycle.decide import RequestLoad
from crust_assets.lifecycle.ledger import SLOT_STATES, Ledger, PendingAlert, PlanState
from crust_assets.lifecycle.settings import LifecycleSettings

# A message names this many alarms, then says how many more there are.
MAX_ALARMS_NAMED = 5


class AlarmKind(StrEnum):
    KEY_REFUSED = "key_refused"
    NO_ACCESS = "no_access"
    CREDITS_EXHAUSTED = "credits_exhausted"
    API_UNREACHABLE = "api_unreachable"
    PLAN_FAILED = "plan_failed"
    PLAN_WAITING = "plan_waiting"


@dataclass(frozen=True)
class Alarm:
    kind: AlarmKind
    text: str  # what is wrong, and what to do
    pending: PendingAlert | None = None  # a one-off fact: reported once


def alarms(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Alarm]:
    """Everything alarming at `now`, the conditions first."""
    found = _paused(ledger, now) + _api_down(ledger, now, settings)
    found += [a for p in ledger.plans.values() if (a := plan_waiting(ledger, p, now, settings))]
    return found + [_one_off(alert, settings) for alert in ledger.alerts.values()]


def tick_fails(found: list[Alarm], requests: list[RequestLoad]) -> bool:
    """Whether the tick fails with `found`. Dagster drops a failed tick's run requests, so a
    tick that requests a load for the first time reports its alarms on the next tick instead;
    a load requested again (its run is not there yet) has a run key the daemon has seen and
    skips anyway, so such a tick fails: a run that stays missing cannot hide every alarm."""
    return bool(found) and all(request.event is None for request in requests)


def message(found: list[Alarm]) -> str:
    """The failed tick's text: one line per alarm."""
    lines = [alarm.text for alarm in found[:MAX_ALARMS_NAMED]]
    if len(found) > MAX_ALARMS_NAMED:
        lines.append(f"... and {len(found) - MAX_ALARMS_NAMED} more alarms")
    return "\n".join(lines)


def reported(found: list[Alarm], settings: LifecycleSettings) -> list[ev.AlertRaised]:
    """The events that mark the one-off facts as reported, recorded before the tick fails."""
    return [
        ev.AlertRaised(
            date=a.pending.date,
            plan_id=a.pending.plan_id,
            alert=a.pending.kind,
            description=f"reported by a failed tick of {settings.submitter_sensor}: {a.text}",
        )
        for a in found
        if a.pending is not None
    ]


def _paused(ledger: Ledger, now: float) -> list[Alarm]:
    if not ledger.pause_active(now):
        return []
    until = clock(ledger.paused_until)
    if ledger.key_refused(now):
        return [
            Alarm(
                AlarmKind.KEY_REFUSED,
                f"Crustdata refused the API key ({ledger.pause_reason}). Submitting and polling "
                f"are paused until {until}, then tried again; no job is lost, queued jobs stay "
                "queued. Set CRUSTDATA_API_KEY to a valid key (`crust-assets doctor` checks it "
                "without spending a credit).",
            )
        ]
    return [
        Alarm(
            AlarmKind.NO_ACCESS,
            f"Crustdata denied this key access ({ledger.pause_reason}). Submitting is paused "
            f"until {until}, then tried again; queued jobs stay queued. Use a key whose plan "
            "includes batch contact enrichment, or ask Crustdata to enable it.",
        )
    ]


def _api_down(ledger: Ledger, now: float, settings: LifecycleSettings) -> list[Alarm]:
    """Only while there is work for the API: a down time with nothing to do is not news."""
    since = ledger.api_down_since
    bound = settings.api_down_alert_minutes
    if since is None or now - since <= bound * 60 or not ledger.open_plans():
        return []
    minutes = (now - since) / 60
    return [
        Alarm(
            AlarmKind.API_UNREACHABLE,
            f"The Crustdata API has not answered since {clock(since)} ({minutes:.0f} min, more "
            f"than CRUST_API_DOWN_ALERT_MINUTES={bound:g}): {ledger.api_error}. No job is lost: "
            "queued jobs stay queued and running ones are polled once it answers. Check the "
            "network from the Dagster daemon to CRUSTDATA_BASE_URL, and Crustdata's status.",
        )
    ]


def plan_waiting(
    ledger: Ledger, plan: PlanState, now: float, settings: LifecycleSettings
) -> Alarm | None:
    """An open plan with jobs not done, or a finished one still waiting for its lenders,
    planned longer than the bound ago (a plan from a cursor without `planned_at` is not
    judged)."""
    bound = settings.plan_wait_alert_hours
    if plan.planned_at is None or now - plan.planned_at <= bound * 3600:
        return None
    head = (
        f"{plan.date}: plan {plan.plan_id} has waited {(now - plan.planned_at) / 3600:.1f} h "
        f"(more than CRUST_PLAN_WAIT_ALERT_HOURS={bound:g})"
    )
    if plan.outcome is None and plan.done < plan.job_count:
        active = sum(1 for j in plan.jobs.values() if j.state in SLOT_STATES)
        queued = plan.job_count - plan.next_index + len(plan.ready_jobs(math.inf))
        text = (
            f"{head} for its jobs: {plan.done} of {plan.job_count} done, {active} submitted, "
            f"{queued} queued. The sensor keeps submitting and polling: look for the reason "
            "above or in the tick log, and at the jobs in your Crustdata account. To give up "
            f"on it, materialise {settings.batch_asset}[{plan.date}] with config "
            "replace_unfinished_plan: true (its running jobs are still billed)."
        )
        return Alarm(AlarmKind.PLAN_WAITING, text)
    if lenders := ledger.open_lenders(plan):
        keys = ", ".join(lender.key for lender in lenders)
        text = (
            f"{head} for the plans it borrowed {plan.borrowed} URLs from ({keys}), which are "
            "not settled. It is loaded once they are: see why they wait (their own alarm)."
        )
        return Alarm(AlarmKind.PLAN_WAITING, text)
    return None


def _one_off(alert: PendingAlert, settings: LifecycleSettings) -> Alarm:
    if alert.kind == ev.EventName.CREDITS_EXHAUSTED:
        text = (
            f"{alert.date}: the Crustdata account is out of credits ({alert.message}). Jobs not "
            "yet accepted were given up; running jobs still deliver and are loaded. Add "
            f"credits, then re-materialise {settings.batch_asset} for each day reported "
            "failed: only URLs not enriched yet are submitted."
        )
        return Alarm(AlarmKind.CREDITS_EXHAUSTED, text, alert)
    text = (
        f"{alert.date}: plan {alert.plan_id} failed: {alert.message}. The delivered rows are "
        f"loaded and {settings.contacts_asset}[{alert.date}]'s check one_row_per_submitted_url "
        f"fails for the rest. Re-materialise {settings.batch_asset}[{alert.date}]: only the "
        "missing URLs are submitted."
    )
    return Alarm(AlarmKind.PLAN_FAILED, text, alert)


def clock(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

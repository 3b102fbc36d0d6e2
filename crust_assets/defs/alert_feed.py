"""What the Slack sensor posts: failed checks and submitter ticks read from the instance, in
order, each turned into a post or not by `crust_assets.alert_reminders`, with what was posted
remembered post by post.

Why the memory is in the instance's key-value store and not in the sensor's cursor: Dagster keeps
no cursor of a failed tick, so a Slack error after three posts of five would post those three
again on the next tick. Here the state is written after each post; the tick then fails, visibly,
and the next one carries on after the last post that went out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from crust_assets import alert_reminders as rules
from crust_assets.alerts import (
    check_failure_message,
    cleared_message,
    reminder_message,
    safe_text,
    tick_failure_message,
)

SUBMITTER = "contact_enrichment_sensor"


@dataclass(frozen=True)
class Outcome:
    """One check evaluation or submitter tick, as the rules see it, and how to post it."""

    seen: rules.Seen
    subject: str  # e.g. "Sensor contact_enrichment_sensor"
    first: str | None  # the message of a new failure; None when it passed
    mark: tuple[str, str, float]  # ("checks", check, record id) or ("ticks", "", timestamp)


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def message(post: rules.Post, outcome: Outcome) -> str:
    if post.kind is rules.Kind.CLEARED:
        return cleared_message(outcome.subject, stamp(post.since), stamp(outcome.seen.at))
    if post.kind is rules.Kind.REMINDER:
        since, when = stamp(post.since), stamp(outcome.seen.at)
        return reminder_message(outcome.subject, since, when, outcome.seen.failure or "")
    return outcome.first or ""


def _check_outcome(key: dg.AssetCheckKey, record: Any, failed: bool, secrets: list) -> Outcome:
    entry = record.event
    evaluation = entry.dagster_event.event_specific_data if entry and entry.dagster_event else None
    metadata = getattr(evaluation, "metadata", None) or {}
    partition = getattr(metadata.get("partition"), "value", None) or record.partition
    asset, where = key.asset_key.to_user_string(), f"[{partition}]" if partition else ""
    text = getattr(evaluation, "description", None) or "failed"
    at = entry.timestamp if entry else record.create_timestamp
    name = key.to_user_string()
    return Outcome(
        rules.Seen(f"check:{name}{where}", at, safe_text(text, secrets) if failed else None),
        f"Check {key.name} of {asset}{where}",
        check_failure_message(asset, key.name, partition, text, secrets) if failed else None,
        ("checks", name, float(record.id)),
    )


def check_outcomes(
    instance: dg.DagsterInstance,
    keys: list[dg.AssetCheckKey],
    seen: dict[str, float],
    secrets: list,
) -> Iterator[Outcome]:
    """Evaluations after `seen` (check -> last record id), up to one whose run still runs."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    for key in keys:
        name = key.to_user_string()
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        for record in sorted((r for r in records if r.id > seen.get(name, 0)), key=lambda r: r.id):
            if record.status == Status.PLANNED:
                run = instance.get_run_by_id(record.run_id)
                if run is not None and not run.is_finished:
                    break  # its outcome is not known yet: read it on a later tick
                continue  # its run ended without evaluating it: neither failed nor passed
            yield _check_outcome(key, record, record.status == Status.FAILED, secrets)


def tick_outcomes(instance: dg.DagsterInstance, after: float, secrets: list) -> Iterator[Outcome]:
    """The submitter's ticks after `after`: failed, or passed (a tick that launched runs says
    nothing, as it holds its alarms for the next tick), up to one still running."""
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    for state in (s for s in states if s.instigator_name == SUBMITTER):
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after)
        for tick in sorted(ticks, key=lambda t: t.timestamp):
            if tick.status == TickStatus.STARTED:
                break
            failed = tick.status == TickStatus.FAILURE
            if not failed and (tick.run_ids or tick.run_keys):
                continue
            yield _tick_outcome(tick.timestamp, tick.error if failed else None, failed, secrets)


def _tick_outcome(at: float, error: Any, failed: bool, secrets: list) -> Outcome:
    text = (error.message if error else None) or "failed"
    return Outcome(
        rules.Seen(f"tick:{SUBMITTER}", at, safe_text(text, secrets) if failed else None),
        f"Sensor {SUBMITTER}",
        tick_failure_message(SUBMITTER, stamp(at), text, secrets) if failed else None,
        ("ticks", "", at),
    )


def _note_history(
    instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey], checks: dict[str, float]
) -> None:
    """A check not followed yet (alerts just turned on, a new check) starts after its newest
    evaluation: its history is not news."""
    for key in keys:
        name = key.to_user_string()
        if name not in checks:
            records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
            checks[name] = float(max((r.id for r in records), default=0))


def _key(sensor_name: str) -> str:
    return f"crust_assets/slack_alerts/{sensor_name}"


def load_state(context: dg.SensorEvaluationContext, sensor: str) -> dict[str, Any] | None:
    """What was posted, from the instance (or, the first time, the older sensor cursor)."""
    key = _key(sensor)
    stored = context.instance.run_storage.get_cursor_values({key}).get(key)
    raw = stored or context.cursor
    return json.loads(raw) if raw else None


def save_state(context: dg.SensorEvaluationContext, sensor: str, state: dict[str, Any]) -> None:
    key = _key(sensor)
    context.instance.run_storage.set_cursor_values({key: json.dumps(state)})


def post_new(
    context: dg.SensorEvaluationContext,
    sensor: str,
    post: Callable[[str], None],
    reminder: float,
    secrets: list,
) -> int:
    """Posts what the checks and ticks since the saved state call for; the state is saved after
    each post, so a Slack error (raised, failing the tick) never makes one go out twice."""
    state = load_state(context, sensor)
    keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=str)
    if state is None:  # the first evaluation: history is not news
        state = {"checks": {}, "tick_after": datetime.now(timezone.utc).timestamp()}
    _note_history(context.instance, keys, state.setdefault("checks", {}))
    standing = rules.from_json(state.get("standing", {}))
    outcomes = [
        *check_outcomes(context.instance, keys, state["checks"], secrets),
        *tick_outcomes(context.instance, float(state.get("tick_after", 0.0)), secrets),
    ]
    posted = 0
    try:
        for outcome in outcomes:
            decided, standing_after = rules.step(standing, outcome.seen, reminder)
            if decided is not None:
                post(message(decided, outcome))
                posted += 1
            standing = standing_after
            kind, name, mark = outcome.mark
            if kind == "checks":
                state["checks"][name] = mark
            else:
                state["tick_after"] = mark
            if decided is not None:
                state["standing"] = rules.to_json(standing)
                save_state(context, sensor, state)
    finally:  # also what a Slack error leaves: everything before the post that failed
        state["standing"] = rules.to_json(standing)
        save_state(context, sensor, state)
    return posted

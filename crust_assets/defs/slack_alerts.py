"""Slack alerts (the `slack` extra): run failures, failed checks and failed submitter ticks.

Off unless CRUST_SLACK_CHANNEL and SLACK_TOKEN are both set; then the code location gets two
sensors, on by default. The client is dagster-slack's `SlackResource` client, at a base URL
(CRUST_SLACK_API_URL, Slack's by default): dagster-slack's `make_slack_on_run_failure_sensor`
builds its own client at Slack's fixed address, which neither a GovSlack workspace, a proxy nor
a local test receiver can use, so run failures go through Dagster's `run_failure_sensor` (the
decorator that factory wraps), built the same way. Every text passes through
`crust_assets.alerts`, so no key, webhook token, pre-signed URL or contact value is posted.
"""

import json
import os
from datetime import datetime, timezone
from importlib.util import find_spec
from typing import Any

import dagster as dg
from pydantic import Field

from crust_assets.alerts import (
    check_failure_message,
    env_secrets,
    run_failure_message,
    tick_failure_message,
)

CHANNEL_ENV = "CRUST_SLACK_CHANNEL"
TOKEN_ENV = "SLACK_TOKEN"
API_URL_ENV = "CRUST_SLACK_API_URL"
SLACK_API_URL = "https://slack.com/api/"
SUBMITTER = "contact_enrichment_sensor"


def slack_enabled() -> bool:
    return bool(os.environ.get(CHANNEL_ENV, "").strip() and os.environ.get(TOKEN_ENV, "").strip())


def _secrets() -> list[str | None]:
    """Values no alert may contain, read when the alert is written (they may be rotated)."""
    return env_secrets(os.environ)


def slack_client(token: str, base_url: str) -> Any:
    """dagster-slack's `SlackResource` client (a slack_sdk `WebClient`), at `base_url`."""
    from dagster_slack import SlackResource
    from slack_sdk.web.client import WebClient

    class CrustSlackResource(SlackResource):
        base_url: str = Field(default=SLACK_API_URL, description=f"env {API_URL_ENV}")

        def get_client(self) -> WebClient:
            return WebClient(token=self.token, base_url=self.base_url)

    return CrustSlackResource(token=token, base_url=base_url).get_client()


def _check_text(key: dg.AssetCheckKey, record: Any) -> str:
    entry = record.event
    evaluation = entry.dagster_event.event_specific_data if entry and entry.dagster_event else None
    metadata = getattr(evaluation, "metadata", None) or {}
    partition = getattr(metadata.get("partition"), "value", None) or getattr(
        record, "partition", None
    )
    text = getattr(evaluation, "description", None) or "failed"
    return check_failure_message(
        key.asset_key.to_user_string(), key.name, partition, text, _secrets()
    )


def _new_check_failures(
    instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey], seen: dict[str, int]
) -> tuple[list[str], dict[str, int]]:
    """Messages for check evaluations that failed since `seen` (check key -> last record id).

    A check not in `seen` yet only has its newest id noted: its history is not news."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus as Status,
    )

    messages, now_seen = [], dict(seen)
    for key in keys:
        name = key.to_user_string()
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=50)
        for record in sorted(records, key=lambda r: r.id):
            if name in seen and record.id > seen[name] and record.status == Status.FAILED:
                messages.append(_check_text(key, record))
        now_seen[name] = max([seen.get(name, 0), *(r.id for r in records)])
    return messages, now_seen


def _new_tick_failures(instance: dg.DagsterInstance, after: float) -> tuple[list[str], float]:
    """Messages for the submitter's ticks that failed after `after` (a timestamp)."""
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    messages, newest = [], after
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    for state in (s for s in states if s.instigator_name == SUBMITTER):
        ticks = instance.get_ticks(
            state.instigator_origin_id,
            state.selector_id,
            after=after,
            statuses=[TickStatus.FAILURE],
        )
        for tick in sorted(ticks, key=lambda t: t.timestamp):
            when = datetime.fromtimestamp(tick.timestamp, timezone.utc)
            error = tick.error.message if tick.error else "failed"
            stamp = when.strftime("%Y-%m-%d %H:%M:%S UTC")
            messages.append(tick_failure_message(SUBMITTER, stamp, error, _secrets()))
            newest = max(newest, tick.timestamp)
    return messages, newest


def new_failures(context: dg.SensorEvaluationContext) -> tuple[list[str], str]:
    """Failed checks and submitter ticks since the cursor, and the next cursor.

    The first evaluation posts nothing: it notes where the history ends, so turning alerts on
    does not replay old failures.
    """
    state = json.loads(context.cursor) if context.cursor else {}
    keys = sorted(context.repository_def.asset_graph.asset_check_keys, key=str)
    checks, seen = _new_check_failures(context.instance, keys, state.get("checks", {}))
    if "tick_after" in state:
        ticks, after = _new_tick_failures(context.instance, float(state["tick_after"]))
    else:
        ticks, after = [], datetime.now(timezone.utc).timestamp()
    return [*checks, *ticks], json.dumps({"checks": seen, "tick_after": after})


def _step_reason(event: dg.DagsterEvent) -> str:
    """A failed step's own words: a `dg.Failure`'s description, else the error's message."""
    data = event.step_failure_data
    described = data.user_failure_data.description if data.user_failure_data else None
    if described:
        return described
    message = data.error.message if data.error else "failed"
    return message.split(": ", 1)[1] if message.startswith("dagster.") else message


def make_slack_alert_sensors(
    channel: str, token: str, base_url: str = SLACK_API_URL
) -> list[dg.SensorDefinition]:
    """The two alert sensors, posting to `channel` (as dagster-slack's sensor factory does)."""
    client = slack_client(token, base_url)

    def post(text: str) -> None:
        client.chat_postMessage(channel=channel, text=text)

    @dg.run_failure_sensor(
        name="crust_slack_on_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts a failed run of this code location to CRUST_SLACK_CHANNEL.",
    )
    def slack_on_run_failure(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        steps = context.get_step_failure_events()
        reason = _step_reason(steps[0]) if steps else context.failure_event.message or "failed"
        partition = run.tags.get("dagster/partition")
        post(run_failure_message(run.job_name, run.run_id, partition, reason, _secrets()))

    @dg.sensor(
        name="crust_slack_on_check_or_tick_failure",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Posts failed checks of this code location's assets and failed ticks of "
            "contact_enrichment_sensor to CRUST_SLACK_CHANNEL, once each."
        ),
    )
    def slack_on_check_or_tick_failure(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        texts, cursor = new_failures(context)
        for text in texts:
            post(text)
        context.update_cursor(cursor)
        return dg.SkipReason(f"posted {len(texts)} alerts")

    return [slack_on_run_failure, slack_on_check_or_tick_failure]


def slack_alerts() -> list[dg.SensorDefinition]:
    """The alert sensors when CRUST_SLACK_CHANNEL and SLACK_TOKEN are set; none otherwise."""
    if not slack_enabled():
        return []
    if find_spec("dagster_slack") is None:
        raise ModuleNotFoundError(
            f"{CHANNEL_ENV} and {TOKEN_ENV} are set but dagster-slack is not installed: "
            "pip install 'crust_assets[slack]' (or unset them to turn alerts off)"
        )
    return make_slack_alert_sensors(
        os.environ[CHANNEL_ENV].strip(),
        os.environ[TOKEN_ENV].strip(),
        os.environ.get(API_URL_ENV, "").strip() or SLACK_API_URL,
    )

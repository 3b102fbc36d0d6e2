"""Slack alerts (the `slack` extra): run failures, failed checks and failed submitter ticks.

Off unless CRUST_SLACK_CHANNEL and SLACK_TOKEN are both set; then the code location gets two
sensors, on by default. The client is dagster-slack's `SlackResource` client, at a base URL
(CRUST_SLACK_API_URL, Slack's by default): dagster-slack's `make_slack_on_run_failure_sensor`
builds its own client at Slack's fixed address, which neither a GovSlack workspace, a proxy nor
a local test receiver can use, so run failures go through Dagster's `run_failure_sensor` (the
decorator that factory wraps), built the same way. Every text passes through
`crust_assets.alerts`, so no key, webhook token, pre-signed URL or contact value is posted.
"""

import os
from importlib.util import find_spec
from typing import Any

import dagster as dg
from pydantic import Field

from crust_assets.alert_reminders import DEFAULT_REMINDER_MINUTES, REMINDER_ENV, reminder_seconds
from crust_assets.alerts import env_secrets, run_failure_message
from crust_assets.defs.alert_feed import post_new

CHANNEL_ENV = "CRUST_SLACK_CHANNEL"
TOKEN_ENV = "SLACK_TOKEN"
API_URL_ENV = "CRUST_SLACK_API_URL"
SLACK_API_URL = "https://slack.com/api/"


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


def _step_reason(event: dg.DagsterEvent) -> str:
    """A failed step's own words: a `dg.Failure`'s description, else the error's message."""
    data = event.step_failure_data
    described = data.user_failure_data.description if data.user_failure_data else None
    if described:
        return described
    message = data.error.message if data.error else "failed"
    return message.split(": ", 1)[1] if message.startswith("dagster.") else message


def make_slack_alert_sensors(
    channel: str,
    token: str,
    base_url: str = SLACK_API_URL,
    reminder: float = DEFAULT_REMINDER_MINUTES * 60,
) -> list[dg.SensorDefinition]:
    """The two alert sensors, posting to `channel` (as dagster-slack's sensor factory does);
    a failure that lasts is posted again every `reminder` seconds."""
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

    watcher_name = "crust_slack_on_check_or_tick_failure"

    @dg.sensor(
        name=watcher_name,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Posts failed checks of this code location's assets and failed ticks of "
            "contact_enrichment_sensor to CRUST_SLACK_CHANNEL: a new failure at once, a lasting "
            f"one again every {reminder / 60:g} min ({REMINDER_ENV}), and its end."
        ),
    )
    def slack_on_check_or_tick_failure(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        posted = post_new(context, watcher_name, post, reminder, _secrets())
        return dg.SkipReason(f"posted {posted} alerts")

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
        reminder_seconds(os.environ.get(REMINDER_ENV)),
    )

"""Slack alerts through dagster-slack's client, posted to a local Slack API receiver on 127.0.0.1.

A real run fails, a real check fails (the freshness check, recorded by its sensor), and the
submitter's tick fails (recorded in the instance as the daemon records one); the alert sensors are
evaluated for real and the receiver keeps what Slack would have received: the token, the channel
and the text. No text may hold the API key, a contact value or a pre-signed URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    SensorInstigatorData,
    TickData,
    TickStatus,
)
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster_shared.error import SerializableErrorInfo

from crust_assets.defs.freshness import enriched_contacts_freshness_sensor
from crust_assets.defs.resources import DataRoot
from crust_assets.defs.slack_alerts import make_slack_alert_sensors, slack_alerts

TOKEN = "xoxb-test-7d1e2f"
KEY = "sk-live-alerts-9c8b7a"
CHANNEL = "#revops-alerts"


class SlackReceiver(ThreadingHTTPServer):
    """Answers chat.postMessage as Slack does and keeps each request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[dict[str, Any]] = []
        self.refuse_post = 0  # the n-th post (1-based) is answered ok=false, once

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        if "json" in (self.headers.get("content-type") or ""):
            fields = json.loads(body)
        else:
            fields = {k: v[0] for k, v in parse_qs(body).items()}
        server: SlackReceiver = self.server  # type: ignore[assignment]
        if server.refuse_post == len(server.posts) + 1:  # Slack refuses this one post
            server.refuse_post = 0
            answer = json.dumps({"ok": False, "error": "internal_error"}).encode()
        else:
            server.posts.append(
                {"path": self.path, "auth": self.headers.get("authorization"), **fields}
            )
            answer = json.dumps({"ok": True, "channel": "C01", "ts": "1.0"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    server = SlackReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_alerts_are_off_unless_channel_and_token_are_both_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CRUST_SLACK_CHANNEL", raising=False)
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    assert slack_alerts() == []
    names = {s.name for s in __import__("crust_assets.definitions").definitions.defs.sensors}
    assert not any(name.startswith("crust_slack") for name in names)


def test_with_both_set_the_code_location_has_the_alert_sensors() -> None:
    env = {**os.environ, "CRUST_SLACK_CHANNEL": CHANNEL, "SLACK_TOKEN": TOKEN}
    script = (
        "from crust_assets.definitions import defs; print(sorted(s.name for s in defs.sensors))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "crust_slack_on_run_failure" in done.stdout
    assert "crust_slack_on_check_or_tick_failure" in done.stdout
    assert TOKEN not in done.stdout + done.stderr


def _workspace_repo(instance: dg.DagsterInstance) -> tuple[WorkspaceProcessContext, Any]:
    origin = LoadableTargetOrigin(
        executable_path=sys.executable, module_name="crust_assets.definitions"
    )
    context = WorkspaceProcessContext(
        instance, InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    )
    location = next(iter(context.create_request_context().code_locations))
    return context, next(iter(location.get_repositories().values()))


def _submitter_state(instance: dg.DagsterInstance, repo: Any) -> Any:
    """What the daemon stores at a default-on sensor's first tick; the submitter's handle."""
    sensor = repo.get_sensor("contact_enrichment_sensor")
    instance.add_instigator_state(
        InstigatorState(
            sensor.get_remote_origin(),
            InstigatorType.SENSOR,
            InstigatorStatus.DECLARED_IN_CODE,
            SensorInstigatorData(min_interval=sensor.min_interval_seconds),
        )
    )
    return sensor


def _record_tick(
    instance: dg.DagsterInstance, sensor: Any, at: float, error: str | None = None
) -> None:
    """A tick of contact_enrichment_sensor, failed with `error` or skipped, as the daemon
    records one."""
    instance.create_tick(
        TickData(
            instigator_origin_id=sensor.get_remote_origin_id(),
            instigator_name=sensor.name,
            instigator_type=InstigatorType.SENSOR,
            status=TickStatus.FAILURE if error else TickStatus.SKIPPED,
            timestamp=at,
            selector_id=sensor.selector_id,
            error=SerializableErrorInfo(message=error, stack=[], cls_name="SubmitterAlarm")
            if error
            else None,
        )
    )


def _fail_a_submitter_tick(instance: dg.DagsterInstance, repo: Any) -> None:
    """A failed tick of contact_enrichment_sensor, recorded as the sensor daemon records one."""
    message = (
        f"Crustdata refused the key (401) sending Bearer {KEY} for "
        "https://www.linkedin.com/in/ana-lopez-42; set CRUSTDATA_API_KEY"
    )
    _record_tick(
        instance,
        _submitter_state(instance, repo),
        datetime.now(timezone.utc).timestamp(),
        message,
    )


def _late_day_check(instance: dg.DagsterInstance, data: Path) -> None:
    """The freshness check fails for real: schedule on, no list for 1 December after 10:00."""
    (data / "input").mkdir(parents=True)
    context = dg.build_sensor_context(
        instance=instance, resources={"data_root": DataRoot(data_dir=str(data))}
    )
    with freeze_time(datetime(2026, 12, 1, 10, 30, tzinfo=timezone.utc)):
        result = enriched_contacts_freshness_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)


def test_failures_reach_slack_without_secrets_or_contact_values(
    slack: SlackReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRUSTDATA_API_KEY", KEY)
    from crust_assets.definitions import build_definitions

    sensors = {s.name: s for s in make_slack_alert_sensors(CHANNEL, TOKEN, slack.url)}
    from crust_assets.defs.resources import build_resources

    data_root = DataRoot(data_dir=str(tmp_path / "data"))
    defs = build_definitions({**build_resources(), "data_root": data_root})
    repo_def = defs.get_repository_def()
    watcher = sensors["crust_slack_on_check_or_tick_failure"]
    with dg.instance_for_test() as instance:
        workspace, repo = _workspace_repo(instance)
        with workspace:
            context = dg.build_sensor_context(instance=instance, repository_def=repo_def)
            watcher(context)  # the first tick notes where the history ends
            assert slack.posts == []
            instance.start_schedule(repo.get_schedule("daily_contact_enrichment_schedule"))
            _late_day_check(instance, tmp_path / "data")
            _fail_a_submitter_tick(instance, repo)
            context = dg.build_sensor_context(
                instance=instance, repository_def=repo_def, cursor=context.cursor
            )
            watcher(context)
            watcher(
                dg.build_sensor_context(
                    instance=instance, repository_def=repo_def, cursor=context.cursor
                )
            )

        day = "2026-11-30"
        run = defs.resolve_job_def("plan_contact_enrichment").execute_in_process(
            instance=instance, partition_key=day, raise_on_error=False
        )
        assert not run.success
        failure = run.get_run_failure_event()
        sensors["crust_slack_on_run_failure"](
            dg.build_run_status_sensor_context(
                sensor_name="crust_slack_on_run_failure",
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=run.dagster_run,
            ).for_run_failure()
        )

    texts = [post["text"] for post in slack.posts]
    assert len(texts) == 3, texts  # each failure once, however many ticks
    assert all(p["path"] == "/api/chat.postMessage" for p in slack.posts)
    assert all(p["auth"] == f"Bearer {TOKEN}" and p["channel"] == CHANNEL for p in slack.posts)
    check, tick, run_text = texts
    assert check.startswith(
        ":warning: Check enriched_contacts_on_time of enriched_contacts[2026-12-01] failed: "
        "enriched_contacts[2026-12-01] is late (due 2026-12-01 10:00 UTC): no input file at"
    )
    assert tick.startswith(":red_circle: Sensor contact_enrichment_sensor failed its tick at ")
    assert "Crustdata refused the key (401) sending Bearer <redacted> for <profile URL>" in tick
    assert run_text.startswith(f":red_circle: Run {run.run_id[:8]} of plan_contact_enrichment")
    assert f"for {day} failed: No input list for {day}" in run_text
    for text in texts:
        assert KEY not in text and TOKEN not in text and "linkedin.com/in" not in text


def test_a_lasting_failure_is_posted_when_new_then_per_reminder_and_when_it_clears(
    slack: SlackReceiver, tmp_path: Path
) -> None:
    """Eleven ticks, 30 s apart, fail for a refused key (the pause's end moves every 5 min);
    with a 2-minute reminder that is one post, two reminders, and one when a tick passes. Slack
    refuses the second post: the watcher's tick fails, and the next one posts the rest, none
    twice."""
    from crust_assets.definitions import build_definitions
    from crust_assets.defs.resources import build_resources

    sensors = {s.name: s for s in make_slack_alert_sensors(CHANNEL, TOKEN, slack.url, 120.0)}
    watcher = sensors["crust_slack_on_check_or_tick_failure"]
    defs = build_definitions(
        {**build_resources(), "data_root": DataRoot(data_dir=str(tmp_path / "data"))}
    )
    repo_def = defs.get_repository_def()
    with dg.instance_for_test() as instance:
        workspace, repo = _workspace_repo(instance)
        with workspace:
            submitter = _submitter_state(instance, repo)
        watcher(dg.build_sensor_context(instance=instance, repository_def=repo_def))
        start = datetime.now(timezone.utc).timestamp() + 1
        for n in range(11):
            until = datetime.fromtimestamp(start + 300 + n // 10 * 300, timezone.utc)
            error = (
                f"Crustdata refused the API key (401 Unauthorized). Submitting and polling are "
                f"paused until {until:%Y-%m-%d %H:%M:%S} UTC, then tried again."
            )
            _record_tick(instance, submitter, start + 30 * n, error if n < 10 else None)
        slack.refuse_post = 2
        with pytest.raises(Exception, match="internal_error"):
            watcher(dg.build_sensor_context(instance=instance, repository_def=repo_def))
        assert len(slack.posts) == 1
        watcher(dg.build_sensor_context(instance=instance, repository_def=repo_def))
        watcher(dg.build_sensor_context(instance=instance, repository_def=repo_def))

    texts = [post["text"] for post in slack.posts]
    assert len(texts) == 4, texts
    first, *reminders, cleared = texts
    assert first.startswith(":red_circle: Sensor contact_enrichment_sensor failed its tick at ")
    assert all(
        ":repeat: Sensor contact_enrichment_sensor still failing since" in r for r in reminders
    )
    assert cleared.startswith(":large_green_circle: Sensor contact_enrichment_sensor no longer")
    assert len(set(texts)) == 4


def test_a_check_failing_again_alike_is_not_posted_again_and_its_pass_is(
    slack: SlackReceiver, tmp_path: Path
) -> None:
    """The same late day evaluated three times (its count changing) is one post; the day
    passing is one more; another day is its own failure."""
    from crust_assets.definitions import build_definitions
    from crust_assets.defs.resources import build_resources

    sensors = {s.name: s for s in make_slack_alert_sensors(CHANNEL, TOKEN, slack.url)}
    watcher = sensors["crust_slack_on_check_or_tick_failure"]
    defs = build_definitions(
        {**build_resources(), "data_root": DataRoot(data_dir=str(tmp_path / "data"))}
    )
    repo_def = defs.get_repository_def()
    check = dg.AssetCheckKey(dg.AssetKey("enriched_contacts"), "enriched_contacts_on_time")

    def evaluate(day: str, late: str | None) -> None:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=check.asset_key,
                check_name=check.name,
                passed=late is None,
                metadata={"partition": day},
                description=late,
            )
        )
        watcher(dg.build_sensor_context(instance=instance, repository_def=repo_def))

    with dg.instance_for_test() as instance:
        watcher(dg.build_sensor_context(instance=instance, repository_def=repo_def))
        for done in (0, 1, 2):
            evaluate("2026-12-01", f"enriched_contacts[2026-12-01] is late: {done} of 3 jobs done")
        evaluate("2026-12-02", "enriched_contacts[2026-12-02] is late: no input file")
        evaluate("2026-12-01", None)

    texts = [post["text"] for post in slack.posts]
    assert len(texts) == 3, texts
    assert texts[0].endswith("is late: 0 of 3 jobs done")
    assert "[2026-12-02] failed" in texts[1]
    assert texts[2].startswith(
        ":large_green_circle: Check enriched_contacts_on_time of enriched_contacts[2026-12-01] "
        "no longer failing"
    )

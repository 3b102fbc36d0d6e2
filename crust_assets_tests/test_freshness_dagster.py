"""Freshness on a real instance: what open-source Dagster evaluates, and what our check adds.

Dagster's own freshness daemon is run on the real code location with Dagster's frozen clock: it
does evaluate `FreshnessPolicy.cron` and shows the asset late, but on the newest materialisation
of any partition, so a backfill of an old day hides a missing day and no partition is named.
`enriched_contacts_on_time`, recorded by its sensor, names the due partition and its cause.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

from crust_assets.defs.freshness import ON_TIME, enriched_contacts_freshness_sensor
from crust_assets.defs.resources import DataRoot
from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

ASSET = dg.AssetKey("enriched_contacts")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The project's code location, loaded as the daemon loads it (in this process)."""
    origin = LoadableTargetOrigin(
        executable_path=sys.executable, module_name="crust_assets.definitions"
    )
    target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with WorkspaceProcessContext(instance, target) as context:
        yield context


def _loaded(instance: dg.DagsterInstance, day: str, when: str) -> None:
    with freeze_time(at(when)):
        instance.report_runless_asset_event(dg.AssetMaterialization(ASSET, partition=day))


def _dagster_freshness(
    instance: dg.DagsterInstance, workspace: WorkspaceProcessContext, when: str
) -> FreshnessState:
    with freeze_time(at(when)):
        list(FreshnessDaemon().run_iteration(workspace))
    return instance.get_freshness_state_records([ASSET])[ASSET].freshness_state


def test_open_source_dagster_evaluates_the_policy_but_not_per_partition(
    instance: dg.DagsterInstance, workspace: WorkspaceProcessContext
) -> None:
    _loaded(instance, "2026-11-30", "2026-11-30T08:00:00")
    assert _dagster_freshness(instance, workspace, "2026-11-30T11:00:00") == FreshnessState.PASS
    # 1 December is not loaded by its 10:00 deadline: Dagster shows the asset late...
    assert _dagster_freshness(instance, workspace, "2026-12-01T10:30:00") == FreshnessState.FAIL
    # ...until a backfill of an old day lands: then it passes, while 1 December is still missing.
    _loaded(instance, "2026-11-02", "2026-12-01T11:00:00")
    assert _dagster_freshness(instance, workspace, "2026-12-01T11:05:00") == FreshnessState.PASS


def _start_schedule(instance: dg.DagsterInstance, workspace: WorkspaceProcessContext) -> None:
    location = next(iter(workspace.create_request_context().code_locations))
    repo = next(iter(location.get_repositories().values()))
    instance.start_schedule(repo.get_schedule("daily_contact_enrichment_schedule"))


def _tick(instance: dg.DagsterInstance, data: Path, cursor: str | None, when: str) -> tuple:
    """One real evaluation of the sensor; its check evaluations recorded as the daemon does."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"data_root": DataRoot(data_dir=str(data))}
    )
    with freeze_time(at(when)):
        result = enriched_contacts_freshness_sensor(context)
    if isinstance(result, dg.SkipReason):
        return None, cursor, result.skip_message
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result.asset_events, result.cursor, None


def _latest_check(instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(ASSET, ON_TIME))
    assert record is not None and record.event is not None
    return record.event.dagster_event.event_specific_data  # type: ignore[union-attr]


def test_the_check_names_the_late_partition_and_its_cause_once_per_change(
    instance: dg.DagsterInstance, workspace: WorkspaceProcessContext, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "input").mkdir(parents=True)
    # The schedule off and no list: no day is expected, nothing is recorded (the demo's case).
    events, cursor, skipped = _tick(instance, data, None, "2026-12-01T10:05:00")
    assert events is None and "not expected" in skipped
    assert (
        instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(ASSET, ON_TIME)) is None
    )

    _start_schedule(instance, workspace)
    _loaded(instance, "2026-11-02", "2026-12-01T10:10:00")  # Dagster's policy would pass now
    events, cursor, _ = _tick(instance, data, cursor, "2026-12-01T10:15:00")
    check = _latest_check(instance)
    assert not check.passed
    assert check.description == (
        "enriched_contacts[2026-12-01] is late (due 2026-12-01 10:00 UTC): no input file at "
        f"{data.resolve() / 'input' / '2026-12-01.csv'}"
    )
    assert check.metadata["partition"].value == "2026-12-01"
    assert check.metadata["cause"].value == "no_input_file"

    # Unchanged on the next tick: nothing new in the event log.
    events, cursor, skipped = _tick(instance, data, cursor, "2026-12-01T10:20:00")
    assert events is None and skipped.startswith("unchanged")

    (data / "input" / "2026-12-01.csv").write_text("profile_url\n")
    _tick(instance, data, cursor, "2026-12-01T10:25:00")
    assert _latest_check(instance).metadata["cause"].value == "plan_not_made"

    _loaded(instance, "2026-12-01", "2026-12-01T11:00:00")
    events, cursor, _ = _tick(instance, data, cursor, "2026-12-01T11:05:00")
    check = _latest_check(instance)
    assert check.passed and check.metadata["cause"].value == "loaded"


def test_a_day_not_due_yet_is_not_judged(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "input").mkdir(parents=True)
    (data / "input" / "2026-12-01.csv").write_text("profile_url\n")
    # 09:00: 1 December is not due before 10:00, and 30 November had no list and no schedule.
    events, _, skipped = _tick(instance, data, None, "2026-12-01T09:00:00")
    assert events is None and "2026-11-30" in skipped


def test_a_planned_day_whose_jobs_run_past_the_deadline_says_so(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """A real plan (emulator, real planning run), its jobs not done at 10:00: jobs running."""
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    pipeline.write_list("2026-11-30", make_urls("late-day", 350))  # two jobs
    assert pipeline.plan("2026-11-30").success
    events, _, _ = _tick(pipeline.instance, tmp_path / "data", None, "2026-11-30T10:30:00")
    [evaluation] = events
    assert not evaluation.passed and evaluation.metadata["cause"].value == "jobs_running"
    assert "0 of 2 jobs done" in evaluation.description

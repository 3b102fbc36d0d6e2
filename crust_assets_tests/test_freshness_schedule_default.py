"""A copy whose schedule starts on expects every day: a list that never arrives makes the day late.

A day is judged only when it is expected: the schedule is on, or the day has a list or a plan.
The schedule's state comes from the instance, and where the instance records none (a schedule
never toggled) from the copy's code default, which a Component sets with `schedule_on`. Each copy
here is evaluated on a real instance, past the day's deadline, with no input file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from crust_assets.defs.freshness import ON_TIME
from crust_assets.defs.pipeline import PipelineOptions, build_pipeline
from crust_assets.defs.resources import CrustdataResource, DataRoot, EnrichmentSettings
from crust_assets.names import Names

NAMES = Names("sales")
AFTER_DEADLINE = datetime(2026, 12, 1, 10, 15, tzinfo=timezone.utc)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(
    instance: dg.DagsterInstance, data: Path, *, schedule_on: bool
) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of the copy's freshness sensor, built as build_pipeline builds it."""
    data_root = DataRoot(data_dir=str(data))
    resources = {
        "crustdata": CrustdataResource(api_key="k", base_url="http://127.0.0.1:9"),
        "enrichment": EnrichmentSettings(),
        "data_root": data_root,
    }
    defs = build_pipeline(NAMES, resources, PipelineOptions(schedule_on=schedule_on))
    sensor = defs.resolve_sensor_def(NAMES.freshness_sensor)
    context = dg.build_sensor_context(instance=instance, resources={NAMES.data_root: data_root})
    with freeze_time(AFTER_DEADLINE):
        result = sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def test_a_copy_with_its_schedule_on_reports_a_missing_list_late(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "input").mkdir(parents=True)
    result = evaluate(instance, data, schedule_on=True)
    assert isinstance(result, dg.SensorResult)
    [check] = result.asset_events
    assert isinstance(check, dg.AssetCheckEvaluation)
    assert check.asset_key == NAMES.contacts_key and check.check_name == ON_TIME
    assert not check.passed
    assert check.metadata["cause"].value == "no_input_file"  # type: ignore[union-attr]
    assert check.description == (
        "enriched_contacts[2026-12-01] is late (due 2026-12-01 10:00 UTC): no input file at "
        f"{data.resolve() / 'input' / '2026-12-01.csv'}"
    )


def test_a_copy_with_its_schedule_off_expects_no_day_without_a_list(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "input").mkdir(parents=True)
    result = evaluate(instance, data, schedule_on=False)
    assert isinstance(result, dg.SkipReason)
    assert "not expected" in (result.skip_message or "")

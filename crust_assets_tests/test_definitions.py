"""The code location as `dagster dev` loads it: names users and checks rely on, and validation."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from crust_assets.crustdata import DEFAULT_BASE_URL
from crust_assets.defs.resources import (
    EMULATOR_BASE_URL,
    CrustdataResource,
    EnrichmentSettings,
)
from crust_assets_tests.pipeline_harness import Pipeline

REPO = Path(__file__).resolve().parent.parent


def test_asset_graph_sensors_and_schedule_are_as_documented() -> None:
    from crust_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "contact_url_list",
        "contact_enrichment_batch",
        "enriched_contacts",
        "contact_coverage",
        "contacts_latest",
        "contacts_duckdb",
        "enriched_list",
    }
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents["contact_enrichment_batch"] == {"contact_url_list"}
    assert parents["enriched_contacts"] == {"contact_enrichment_batch"}
    assert parents["contacts_latest"] == {"enriched_contacts"}
    assert parents["contacts_duckdb"] == {"contacts_latest", "contact_coverage"}
    assert parents["enriched_list"] == {"contact_url_list", "enriched_contacts"}
    sensor = defs.resolve_sensor_def("contact_enrichment_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("daily_contact_enrichment_schedule")
    assert schedule.job_name == "plan_contact_enrichment"
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {
        "one_row_per_submitted_url",
        "unique_profile_url",
        "schema_as_contracted",
        "every_input_line_once",
        "enriched_contacts_on_time",
    }
    freshness = defs.resolve_sensor_def("enriched_contacts_freshness_sensor")
    assert freshness.default_status == dg.DefaultSensorStatus.RUNNING
    policy = graph.get(dg.AssetKey("enriched_contacts")).freshness_policy
    assert policy == dg.FreshnessPolicy.cron(
        deadline_cron="0 10 * * *", lower_bound_delta=timedelta(hours=4), timezone="UTC"
    )


def test_dagster_definitions_validate_passes_with_every_setting_from_env(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "CRUSTDATA_API_KEY": "sk-validate-not-real",
        "CRUSTDATA_BASE_URL": "http://127.0.0.1:9",
        "CRUST_DATA_DIR": str(tmp_path / "data"),
        "CRUST_FIELDS": "business_email",
        "CRUST_CREDIT_BUDGET": "100",
        "CRUST_REENRICH_WINDOW_DAYS": "7",
        "CRUST_MAX_JOB_ATTEMPTS": "2",
        "CRUST_RETRY_COOLDOWN_SECONDS": "10",
        "CRUST_POLL_INTERVAL_SECONDS": "15",
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            str(REPO / "workspace.yaml"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sk-validate-not-real" not in result.stdout + result.stderr


def test_base_url_defaults_to_the_emulator_without_a_key() -> None:
    assert CrustdataResource().resolved_base_url() == EMULATOR_BASE_URL
    assert CrustdataResource(api_key="k").resolved_base_url() == DEFAULT_BASE_URL
    assert (
        CrustdataResource(api_key="k", base_url="http://x:1/").resolved_base_url() == "http://x:1"
    )


def test_a_typo_in_fields_fails_planning_clearly() -> None:
    with pytest.raises(dg.Failure, match="CRUST_FIELDS must be"):
        EnrichmentSettings(fields="business_emails").api_fields()


def test_file_sensor_starts_a_partition_once_per_new_list(tmp_path: Path) -> None:
    from crust_assets.defs.sensors import contact_url_list_file_sensor

    pipeline = Pipeline(tmp_path / "data", "http://127.0.0.1:9")
    context = dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.resources)
    first = contact_url_list_file_sensor(context)
    assert not first.run_requests
    pipeline.write_list("2026-11-06", ["https://www.linkedin.com/in/a"])
    (pipeline.layout.input_dir / "notes.txt").write_text("ignored")
    context = dg.build_sensor_context(
        instance=pipeline.instance, resources=pipeline.resources, cursor=first.cursor
    )
    second = contact_url_list_file_sensor(context)
    assert [r.partition_key for r in second.run_requests] == ["2026-11-06"]
    context = dg.build_sensor_context(
        instance=pipeline.instance, resources=pipeline.resources, cursor=second.cursor
    )
    assert not contact_url_list_file_sensor(context).run_requests  # unchanged: nothing new


def test_schedule_skips_naming_the_file_until_the_list_lands(tmp_path: Path) -> None:
    from crust_assets.defs.schedules import daily_contact_enrichment_schedule

    pipeline = Pipeline(tmp_path / "data", "http://127.0.0.1:9")
    when = dg.build_schedule_context(
        instance=pipeline.instance,
        resources=pipeline.resources,
        scheduled_execution_time=__import__("datetime").datetime(2026, 11, 7, 6, 0),
    )
    skipped = daily_contact_enrichment_schedule(when)
    assert isinstance(skipped, dg.SkipReason)
    assert str(pipeline.layout.input_file("2026-11-07")) in skipped.skip_message
    pipeline.write_list("2026-11-07", ["https://www.linkedin.com/in/a"])
    request = daily_contact_enrichment_schedule(when)
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2026-11-07"

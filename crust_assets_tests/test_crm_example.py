"""The shipped second code location, `examples/crm_analytics`, in a real `dagster dev`.

One workspace holds both locations, as a user would run them. The sample CRM export (and a
second day made of some of its people plus new ones) goes through the pipeline against the
emulator, launched through GraphQL like the UI; then the example's two assets are materialised
through GraphQL too, and their figures are checked against the `enriched_list` files, computed
here independently with pyarrow.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crust_assets.demo import (
    REPO_ROOT,
    demo_environment,
    graphql,
    launch_partition,
    start_dagster_dev,
)
from crust_assets.demo_progress import wait_for_partition
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.enriched_list import ENRICHED_LIST_SCHEMA
from crust_assets.table_reader import FrameKind, to_frame
from crust_assets_tests.pipeline_harness import make_urls

EXAMPLE_DIR = REPO_ROOT / "examples" / "crm_analytics"
SAMPLE = REPO_ROOT / "data" / "input" / "2026-11-28.csv"
DAY_ONE, DAY_TWO = "2026-11-28", "2026-11-29"  # a Saturday and a Sunday: one ISO week
LOOKED_UP = {"enriched", "not_found", "duplicate"}

ASSET_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
REPOSITORIES = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }
"""


def example_metrics() -> Any:
    """The example's pure module, imported as its code location imports it."""
    if str(EXAMPLE_DIR) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_DIR))
    import crm_analytics.metrics

    return crm_analytics.metrics


def lines_frame(rows: list[dict[str, Any]]) -> Any:
    """enriched_list rows as the IO manager hands them to a pandas asset."""
    schema = pa.schema(
        [pa.field("owner", pa.string()), pa.field("source", pa.string()), *ENRICHED_LIST_SCHEMA]
    ).append(pa.field("date", pa.date32()))
    base = {"line_number": 2, "status": "enriched", "matched": False}
    table = pa.Table.from_pylist([{**base, **row} for row in rows], schema=schema)
    return to_frame(table, FrameKind.PANDAS)


def email(address: str, status: str = "deliverable") -> dict[str, str]:
    return {"email": address, "status": status}


def test_weekly_figures_per_source_in_milliseconds() -> None:
    monday, sunday, next_monday = (
        dt.date(2026, 11, 23),
        dt.date(2026, 11, 29),
        dt.date(2026, 11, 30),
    )
    frame = lines_frame(
        [
            {
                "date": monday,
                "source": "webinar",
                "matched": True,
                "business_emails": [email("a@x")],
            },
            {"date": sunday, "source": "webinar", "status": "not_found", "business_emails": []},
            {"date": sunday, "source": "webinar", "status": "rejected", "business_emails": None},
            {"date": sunday, "source": "webinar", "business_emails": None},  # not asked
            {
                "date": next_monday,
                "source": None,
                "matched": True,
                "business_emails": [email("b@x")],
            },
        ]
    )
    table = example_metrics().weekly_coverage_by_source(frame)
    rows = {(r["week"], r["source"]): r for r in table.to_dict(orient="records")}
    first = rows[(monday, "webinar")]
    assert (first["lines"], first["matched"], first["match_rate"]) == (3, 1, round(1 / 3, 4))
    assert first["business_emails_fill_rate"] == 0.5  # of the two lines that asked
    assert rows[(next_monday, "(none)")]["match_rate"] == 1.0


def test_new_deliverable_emails_per_owner_in_milliseconds() -> None:
    day, before = dt.date(2026, 11, 29), dt.date(2026, 11, 28)
    frame = lines_frame(
        [
            {"date": before, "owner": "ana", "business_emails": [email("old@x")]},
            {"date": before, "owner": "ana", "business_emails": [email("risky@x", "catch_all")]},
            {"date": day, "owner": "ben", "business_emails": [email("old@x"), email("new@x")]},
            {"date": day, "owner": "ben", "business_emails": [email("risky@x")]},
            {"date": day, "owner": "ana", "business_emails": [email("bad@x", "invalid")]},
            {"date": day, "owner": "cy", "business_emails": None},
        ]
    )
    table = example_metrics().new_deliverable_emails_by_owner(frame, day)
    assert dict(zip(table["owner"], table["new_deliverable_emails"], strict=True)) == {
        "ana": 0,
        "ben": 2,  # new@x, and risky@x which was not deliverable the day before
        "cy": 0,
    }


def write_day_two(data_dir: Path) -> None:
    """40 people of the sample list again (same owners) and 30 new people."""
    with SAMPLE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    again = rows[:40]
    new = [
        {"crm_id": f"9{i:08d}", "profile_url": url, "owner": "new.owner", "source": "webinar"}
        for i, url in enumerate(make_urls("crmday2", 30))
    ]
    with (data_dir / "input" / f"{DAY_TWO}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows([*again, *({k: r.get(k, "") for k in header} for r in new)])


def launch_assets(url: str, keys: list[str], partition: str | None) -> str:
    """Materialise assets of the crm_analytics location as the UI's Materialize button does."""
    nodes = graphql(url, REPOSITORIES)["repositoriesOrError"]["nodes"]
    repository = next(n["name"] for n in nodes if n["location"]["name"] == "crm_analytics")
    tags = [{"key": "dagster/partition", "value": partition}] if partition else []
    params = {
        "selector": {
            "repositoryLocationName": "crm_analytics",
            "repositoryName": repository,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in keys],
        },
        "runConfigData": {},
        "executionMetadata": {"tags": tags},
    }
    result = graphql(url, ASSET_LAUNCH, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return str(result["run"]["runId"])


def wait_run(instance: dg.DagsterInstance, run_id: str, timeout: float = 180) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return run
        time.sleep(1.0)
    raise TimeoutError(f"run {run_id} not finished after {timeout} s")


def wait_materialized(
    instance: dg.DagsterInstance, key: str, partition: str, timeout: float = 180
) -> None:
    """enriched_list is made by the automation sensor after each load: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]),
            limit=1,
        ).records
        if records:
            return
        time.sleep(1.0)
    raise TimeoutError(f"{key}[{partition}] not materialised after {timeout} s")


def latest_metadata(instance: dg.DagsterInstance, key: str) -> dict[str, Any]:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
    assert records, f"{key} was never materialised"
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


def read_lines(data_dir: Path, day: str) -> list[dict[str, Any]]:
    path = data_dir / "warehouse" / "enriched_list" / f"date={day}" / "data.parquet"
    return pq.read_table(path).to_pylist()


def expected_weekly(data_dir: Path) -> dict[str, dict[str, Any]]:
    """By source, over both days: lines looked up, matched, fill rates (null = not asked)."""
    out: dict[str, dict[str, Any]] = {}
    for day in (DAY_ONE, DAY_TWO):
        for line in read_lines(data_dir, day):
            if line["status"] not in LOOKED_UP:
                continue
            figures = out.setdefault(line["source"], {"lines": 0, "matched": 0, "asked": 0, "b": 0})
            figures["lines"] += 1
            figures["matched"] += bool(line["matched"])
            if line["business_emails"] is not None:
                figures["asked"] += 1
                figures["b"] += len(line["business_emails"]) > 0
    return out


def deliverable(lines: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in lines:
        for email in line["business_emails"] or []:
            if email["status"] == "deliverable":
                found.setdefault(line["owner"], set()).add(email["email"])
    return found


def run_example(tmp_path: Path, data_dir: Path) -> tuple[dg.DagsterInstance, dict[str, Any]]:
    """Both days through the pipeline, then the example's assets, all in one `dagster dev`."""
    home = tmp_path / "dagster_home"
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.5, processing_seconds=1.0
    ) as emulator:
        env = demo_environment(emulator.base_url, data_dir, 2)
        dev = start_dagster_dev(home, env, cwd=EXAMPLE_DIR)
        try:
            dev.wait_ready()
            instance = dg.DagsterInstance.from_config(str(home))
            for day in (DAY_ONE, DAY_TWO):
                run_id = launch_partition(dev.url, "plan_contact_enrichment", day)
                wait_for_partition(
                    day, plan_run_id=run_id, timeout=300, echo=lambda _: None, instance=instance
                )
                wait_materialized(instance, "enriched_list", day)
            runs = {
                "weekly": launch_assets(dev.url, ["weekly_source_coverage"], None),
                DAY_TWO: launch_assets(dev.url, ["new_deliverable_emails"], DAY_TWO),
                DAY_ONE: launch_assets(dev.url, ["new_deliverable_emails"], DAY_ONE),
            }
            finished = {name: wait_run(instance, run_id) for name, run_id in runs.items()}
        finally:
            dev.stop()
    for name, run in finished.items():
        assert run.status == dg.DagsterRunStatus.SUCCESS, (name, dev.log_path.read_text()[-3000:])
    return instance, finished


def loaded_dates(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The days the IO manager says it loaded, from the run's LOADED_INPUT event."""
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value == "LOADED_INPUT":
            return event.event_specific_data.metadata["partition_dates"].value  # type: ignore[union-attr]
    raise AssertionError(f"run {run_id} loaded no input")


def check_weekly(instance: dg.DagsterInstance, data_dir: Path) -> None:
    rows = latest_metadata(instance, "weekly_source_coverage")["by_week_and_source"]
    assert {r["week"] for r in rows} == {"2026-11-23"}
    expected = expected_weekly(data_dir)
    assert {r["source"] for r in rows} == set(expected)
    for row in rows:
        figures = expected[row["source"]]
        assert row["lines"] == figures["lines"]
        assert row["matched"] == figures["matched"]
        assert row["match_rate"] == round(figures["matched"] / figures["lines"], 4)
        assert row["business_emails_fill_rate"] == round(figures["b"] / figures["asked"], 4)
    assert 0 < sum(r["matched"] for r in rows) < sum(r["lines"] for r in rows)


def new_by_owner(instance: dg.DagsterInstance, day: str) -> dict[str, int]:
    """The example's figure for `day`, without the owners that have none."""
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("new_deliverable_emails"), asset_partitions=[day]
        ),
        limit=1,
    ).records[0]
    found = record.asset_materialization.metadata["by_owner"].value  # type: ignore[union-attr]
    return {owner: count for owner, count in found.items() if count}


@pytest.mark.slow
def test_crm_analytics_location_reads_the_pipelines_tables(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    shutil.copy(SAMPLE, data_dir / "input" / f"{DAY_ONE}.csv")
    write_day_two(data_dir)
    instance, runs = run_example(tmp_path, data_dir)

    assert loaded_dates(instance, runs["weekly"].run_id) == [DAY_ONE, DAY_TWO]
    check_weekly(instance, data_dir)

    before = deliverable(read_lines(data_dir, DAY_ONE))
    today = deliverable(read_lines(data_dir, DAY_TWO))
    known = set().union(*before.values())
    want = {owner: len(emails - known) for owner, emails in today.items()}
    assert new_by_owner(instance, DAY_TWO) == {k: v for k, v in want.items() if v}
    assert set(new_by_owner(instance, DAY_TWO)) == {"new.owner"}  # the 40 others were known
    # No day before the first: every deliverable email of the day is new.
    assert new_by_owner(instance, DAY_ONE) == {k: len(v) for k, v in before.items() if v}

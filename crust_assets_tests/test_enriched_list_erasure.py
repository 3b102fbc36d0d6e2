"""enriched_list and erasure races: a real forget at the writer's pause points, local and bucket."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crust_assets import erasure
from crust_assets.defs.enriched_list_asset import csv_path
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.storage import DataLayout
from crust_assets_tests.pipeline_harness import Pipeline, make_urls
from crust_assets_tests.test_erasure_races import forget_cli, run_forget
from crust_assets_tests.test_object_store import bucket, object_store  # noqa: F401 (fixtures)

DATE = "2026-11-23"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path / "emulator", pending_seconds=0.1, processing_seconds=0.2) as e:
        yield e


def loaded(pipeline: Pipeline, urls: list[str]) -> None:
    """A list with a CRM column and a duplicate of the first person, loaded."""
    layout = pipeline.layout
    text = "profile_url,crm_id\n" + "".join(f"{u},C{i}\n" for i, u in enumerate(urls))
    text += urls[0].replace("https://www.", "http://") + ",dup\n"
    layout.fs.pipe_file(str(layout.input_file(DATE)), text.encode())
    pipeline.plan(DATE)
    [run] = pipeline.drive(until_runs=1)
    assert run.success


def person_lines(layout: DataLayout, person: str) -> tuple[list[dict], list[dict]]:
    """The person's rows in the Parquet file and the same rows of the CSV."""
    rows = layout.read_table(layout.warehouse_partition("enriched_list", DATE)).to_pylist()
    text = layout.read_bytes(csv_path(layout, DATE)).decode()
    lines = list(csv.DictReader(io.StringIO(text)))
    picked = [i for i, row in enumerate(rows) if row["profile_url"] == person]
    return [rows[i] for i in picked], [lines[i] for i in picked]


def assert_erased(layout: DataLayout, person: str, count: int) -> None:
    rows, lines = person_lines(layout, person)
    assert len(rows) == count
    for row, line in zip(rows, lines, strict=True):
        assert row["status"] == line["status"] == "erased"
        assert row["business_emails"] is None and row["phone_numbers"] is None
        assert line["business_email"] == line["all_business_emails"] == line["phone_numbers"] == ""


def test_a_forget_while_enriched_list_is_written_does_not_let_the_person_back(
    tmp_path: Path, emulator: EmulatorProcess, hooks: list
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("list-race", 15)
    loaded(pipeline, urls)
    person, seen = urls[0], []

    def hook(name: str, at: str) -> None:
        if name == f"enriched_list[{DATE}]" and at == "staged":
            seen.append(run_forget(pipeline.layout.root, person))

    hooks.append(hook)
    result = pipeline.materialize("enriched_list", partition=DATE)
    [(code, output)] = seen
    # forget saw the writer's private files on disk (they held the person) and said so
    assert result.success and code == 1 and ".data.parquet.tmp-" in output
    assert_erased(pipeline.layout, person, count=2)  # the line and its duplicate
    meta = pipeline.latest_materialization("enriched_list", DATE).metadata
    assert meta["lines_erased_at_publish"].value == 2 and meta["lines_erased"].value == 2

    other = urls[1]  # and a forget after publishing blanks both files, verified
    code, output = run_forget(pipeline.layout.root, other)
    assert code == 0, output
    assert f"enriched_list/date={DATE}/{DATE}.enriched.csv" in str(
        erasure.erasure_log(pipeline.layout).to_pylist()[-1]["files"]
    )
    assert_erased(pipeline.layout, other, count=1)


@pytest.mark.objectstore
def test_on_a_bucket_enriched_list_uploaded_after_a_forget_recorded_fixes_itself(
    request: pytest.FixtureRequest, emulator: EmulatorProcess, hooks: list
) -> None:
    """No lock: the writer re-read the log (without the person) and is about to upload when a
    forget records the erasure; it reads the log again after its upload and uploads both files
    again with the person blanked."""
    root = f"s3://{request.getfixturevalue('bucket')}/crust"
    pipeline = Pipeline(root, emulator.base_url)
    layout = pipeline.layout
    urls = make_urls("s3-list", 12)
    loaded(pipeline, urls)
    person, started = urls[0], []

    def hook(name: str, at: str) -> None:
        if name == f"enriched_list[{DATE}]" and at == "fenced":
            started.append(
                forget_cli(layout.url(layout.root), person, extra=("--settle-seconds", "4"))
            )
            deadline = time.monotonic() + 60
            while person not in erasure.erased_urls(layout):
                assert time.monotonic() < deadline and started[0].poll() is None
                time.sleep(0.05)

    hooks.append(hook)
    assert pipeline.materialize("enriched_list", partition=DATE).success
    out, err = started[0].communicate(timeout=120)
    assert started[0].returncode == 0, out + err
    assert_erased(layout, person, count=2)

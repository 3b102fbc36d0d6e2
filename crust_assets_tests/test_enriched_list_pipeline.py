"""enriched_list through real materialisations: a CRM export in, the same rows back, enriched."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.cli import main
from crust_assets.defs.enriched_list_asset import csv_path
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.erasure import forget
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-21"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("emulator")
    with EmulatorProcess(root, pending_seconds=0.1, processing_seconds=0.2) as process:
        yield process


def crm_export(urls: list[str]) -> str:
    """A CRM export: id, the URL, an owner, a source, with the mess real lists have."""
    rows = [["crm_id", "profile_url", "owner", "source", "", "owner"]]
    for i, url in enumerate(urls):
        rows.append([f"C{i:03d}", url, f"rep{i % 3}", "webinar", "", "x"])
    rows.append(["C900", urls[0].replace("https://www.", "http://") + "/", "dup", "event", "", ""])
    rows.append(["C901", "https://www.linkedin.com/company/acme", '=HYPERLINK("x")', "", "", ""])
    rows.append(["C902", urls[1], "@SUM(1)", "-2+3+cmd|' /C calc'!A0", "", "", "extra,cell"])
    rows.append(["C903"])  # short row: no URL
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def load(pipeline: Pipeline, date: str, text: str) -> dg.ExecuteInProcessResult:
    Path(pipeline.layout.input_file(date)).write_text(text, encoding="utf-8")
    pipeline.plan(date)
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    return pipeline.materialize("enriched_list", partition=date)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_line_comes_back_with_its_columns(tmp_path: Path, emulator: EmulatorProcess) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("crm", 12)
    result = load(pipeline, DATE, crm_export(urls))
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"every_input_line_once": True}

    target = pipeline.layout.warehouse_partition("enriched_list", DATE)
    rows = pq.read_table(target).to_pylist()
    assert [r["line_number"] for r in rows] == list(range(2, 2 + len(urls) + 4))
    assert [r["crm_id"] for r in rows] == [f"C{i:03d}" for i in range(12)] + [
        "C900",
        "C901",
        "C902",
        "C903",
    ]
    contacts = {r["profile_url"]: r for r in pipeline.table(DATE)}
    for row in rows[:12]:
        assert row["status"] in {"enriched", "not_found"}
        expected = contacts[row["profile_url"]]
        for name in ("business_emails", "phone_numbers", "batch_id", "crustdata_person_id"):
            assert row[name] == expected[name]
        assert row["status"] == ("enriched" if expected["matched"] else "not_found")
    duplicate, rejected, extra, short = rows[12:]
    assert duplicate["status"] == "duplicate" and duplicate["duplicate_of_line"] == 2
    assert duplicate["business_emails"] == rows[0]["business_emails"]
    assert rejected["status"] == "rejected" and rejected["reason"] == "not_a_profile"
    assert extra["status"] == "duplicate" and extra["extra_cells"] == '"extra,cell"'
    assert short["status"] == "rejected" and short["reason"] == "empty"
    assert short["owner"] is None and short["input_profile_url"] == ""
    # blank and repeated header names are renamed, not dropped
    assert rows[0]["column_5"] == "" and rows[0]["owner_2"] == "x"

    meta = pipeline.latest_materialization("enriched_list", DATE).metadata
    assert meta["dagster/row_count"].value == 16
    assert meta["lines_duplicate"].value == 2 and meta["lines_rejected"].value == 2
    preview = meta["preview"].value
    first_email = rows[0]["primary_business_email"] or next(
        r["primary_business_email"] for r in rows if r["primary_business_email"]
    )
    assert first_email not in preview and "***@" in preview
    names = [c.name for c in meta["dagster/column_schema"].value.columns]
    assert names[:3] == ["crm_id", "input_profile_url", "owner"] and "status" in names

    # the CSV beside it: owner-only, the user's header, formula-safe
    csv_file = Path(csv_path(pipeline.layout, DATE))
    assert csv_file.name == f"{DATE}.enriched.csv" and csv_file.parent == Path(target).parent
    assert stat.S_IMODE(os.stat(csv_file).st_mode) == 0o600
    lines = read_csv(csv_file)
    assert list(lines[0])[:4] == ["crm_id", "profile_url", "owner", "source"]
    assert list(lines[0])[-7:] == [
        "business_email",
        "business_email_status",
        "all_business_emails",
        "personal_emails",
        "phone_numbers",
        "status",
        "reason",
    ]
    assert lines[13]["owner"] == '\'=HYPERLINK("x")'
    assert lines[14]["owner"] == "'@SUM(1)" and lines[14]["source"].startswith("'-2+3+cmd")
    with_phone = [line for line in lines if line["phone_numbers"]]
    assert with_phone and all(line["phone_numbers"].startswith("+") for line in with_phone)


def test_a_new_load_brings_enriched_list_through_the_automation(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    date = "2026-11-22"
    Path(pipeline.layout.input_file(date)).write_text(crm_export(make_urls("auto", 5)))
    pipeline.plan(date)
    before = dg.evaluate_automation_conditions(defs=pipeline.defs, instance=pipeline.instance)
    requested = {r.key.to_user_string(): r.true_subset.size for r in before.results}
    assert requested["enriched_list"] == 0  # a list alone waits for its contacts
    pipeline.drive(until_runs=1)
    after = dg.evaluate_automation_conditions(
        defs=pipeline.defs, instance=pipeline.instance, cursor=before.cursor
    )
    requested = {r.key.to_user_string(): r.true_subset.size for r in after.results}
    assert requested["enriched_list"] == 1


def test_forget_blanks_the_person_in_parquet_and_csv_and_records_them(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("forgetme", 6)
    load(pipeline, DATE, crm_export(urls))
    target = pipeline.layout.warehouse_partition("enriched_list", DATE)
    before = pq.read_table(target).to_pylist()
    person = urls[0]
    report = forget(pipeline.layout, [person.replace("https://www.", "http://")])
    assert report.complete
    rows = pq.read_table(target).to_pylist()
    assert len(rows) == len(before)
    for row in rows:
        if row["profile_url"] == person:
            assert row["status"] == "erased" and row["business_emails"] is None
            assert row["phone_numbers"] is None and row["primary_business_email"] is None
        else:
            assert row == next(b for b in before if b["line_number"] == row["line_number"])
    lines = read_csv(Path(csv_path(pipeline.layout, DATE)))
    erased = [line for line, row in zip(lines, rows, strict=True) if row["profile_url"] == person]
    assert len(erased) == 2  # the line and its duplicate
    for line in erased:
        assert line["status"] == "erased"
        assert line["business_email"] == line["phone_numbers"] == line["all_business_emails"] == ""
    files = report.erasures[0].files
    assert f"warehouse/enriched_list/date={DATE}/data.parquet" in files
    assert f"warehouse/enriched_list/date={DATE}/{DATE}.enriched.csv" in files

    # a later materialisation keeps them erased
    pipeline.materialize("enriched_list", partition=DATE)
    again = {r["line_number"]: r for r in pq.read_table(target).to_pylist()}
    assert {again[r["line_number"]]["status"] for r in rows if r["profile_url"] == person} == {
        "erased"
    }


def test_export_writes_the_same_file_elsewhere(
    tmp_path: Path, emulator: EmulatorProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    load(pipeline, DATE, crm_export(make_urls("export", 4)))
    out = tmp_path / "out.csv"
    data_dir = str(pipeline.layout.root)
    assert main(["export", DATE, "--data-dir", data_dir, "--out", str(out)]) == 0
    assert out.read_bytes() == Path(csv_path(pipeline.layout, DATE)).read_bytes()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    parquet = tmp_path / "out.parquet"
    assert (
        main(["export", DATE, "--data-dir", data_dir, "--format", "parquet", "--out", str(parquet)])
        == 0
    )
    assert pq.read_table(parquet).equals(
        pq.read_table(pipeline.layout.warehouse_partition("enriched_list", DATE))
    )
    capsys.readouterr()
    assert main(["export", "2026-01-01", "--data-dir", data_dir]) == 2
    error = capsys.readouterr().err
    assert "2026-01-01" in error and "enriched_list" in error


def test_csv_export_can_be_turned_off(tmp_path: Path, emulator: EmulatorProcess) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"export_csv": False})
    result = load(pipeline, DATE, crm_export(make_urls("nocsv", 3)))
    assert result.success
    assert pipeline.layout.exists(pipeline.layout.warehouse_partition("enriched_list", DATE))
    assert not Path(csv_path(pipeline.layout, DATE)).exists()


def test_lines_of_a_failed_job_are_not_delivered_and_not_billed(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"max_job_attempts": 1})
    urls = make_urls("halfdone", 310)  # two jobs: 300 URLs, then 10
    emulator.admin.set_faults(fail_next_jobs=1)  # the first job fails, once, and is given up
    Path(pipeline.layout.input_file(DATE)).write_text(crm_export(urls))
    plan = pipeline.plan(DATE).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert plan.metadata["urls_to_submit"].value == 310  # duplicates and rejects cost nothing
    [run] = pipeline.drive(until_runs=1)
    assert pipeline.check_results(run)["one_row_per_submitted_url"] is False
    result = pipeline.materialize("enriched_list", partition=DATE)
    assert result.success
    rows = pq.read_table(pipeline.layout.warehouse_partition("enriched_list", DATE)).to_pylist()
    statuses = [r["status"] for r in rows]
    assert statuses[:300] == ["not_delivered"] * 300
    assert set(statuses[300:310]) <= {"enriched", "not_found"}
    assert rows[0]["business_emails"] is None and "contact_enrichment_batch" in rows[0]["detail"]
    meta = pipeline.latest_materialization("enriched_list", DATE).metadata
    assert meta["lines_not_delivered"].value == 300


def test_the_url_column_setting_reaches_contact_url_list(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings={"url_column": "CRM Link"})
    urls = make_urls("setting", 3)
    text = "linkedin_url,CRM Link\n" + "".join(f"junk,{u}\n" for u in urls)
    Path(pipeline.layout.input_file(DATE)).write_text(text)
    plan = pipeline.plan(DATE).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert plan.metadata["urls_to_submit"].value == 3
    meta = pipeline.latest_materialization("contact_url_list", DATE).metadata
    assert meta["input_columns"].value == ["linkedin_url", "CRM Link"]
    assert meta["header_notes"].value == "none"

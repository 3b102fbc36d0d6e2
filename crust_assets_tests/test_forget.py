"""Personal data: owner-only files by default, and `crust-assets forget` with real files.

The pipeline runs for real (harness: real instance, real sensor ticks, real runs, the emulator over
HTTP); the erasure is done through the CLI entry point; then everything that holds contact rows is
read back from disk.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crust_assets import cli
from crust_assets.defs.assets import PARTITIONED_CONTACTS_SCHEMA
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.erasure import LATEST_SCHEMA, erasure_log
from crust_assets.storage import (
    DataLayout,
    configured_dir_mode,
    configured_file_mode,
    write_parquet_atomic,
    write_table_atomic,
)
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

FIRST, SECOND = "2026-11-21", "2026-11-22"


@pytest.fixture
def emulator(tmp_path: Path):
    with EmulatorProcess(tmp_path / "emulator", pending_seconds=0.1, processing_seconds=0.2) as e:
        yield e


@pytest.fixture
def permissive_umask():
    """A typical umask (022): files would be world-readable unless the pipeline says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes_under(*roots: Path) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {"files": set(), "dirs": set()}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            kind = "dirs" if path.is_dir() else "files"
            found[kind].add(stat.S_IMODE(path.stat().st_mode))
    return found


def urls_in(path: Path, schema: pa.Schema) -> list[str]:
    return pq.read_table(path, schema=schema).column("profile_url").to_pylist()


# ---- file modes ---------------------------------------------------------------------------------
def test_pipeline_writes_owner_only_files_and_dirs_by_default(
    tmp_path: Path, emulator: EmulatorProcess, permissive_umask: None
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    pipeline.write_list(FIRST, make_urls("modes", 20))
    pipeline.plan(FIRST)
    [run] = pipeline.drive(until_runs=1)
    assert run.success
    layout = pipeline.layout
    found = modes_under(layout.root / "warehouse", layout.root / "staging")
    assert found == {"files": {0o600}, "dirs": {0o700}}


def test_modes_are_configurable_with_octal_env_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, permissive_umask: None
) -> None:
    monkeypatch.setenv("CRUST_FILE_MODE", "0640")
    monkeypatch.setenv("CRUST_DIR_MODE", "0o750")
    assert (configured_file_mode(), configured_dir_mode()) == (0o640, 0o750)
    target = tmp_path / "warehouse" / "t" / "date=2026-11-21" / "data.parquet"
    write_table_atomic(target, pa.table({"a": [1]}))
    write_parquet_atomic(target.with_name("b.parquet"), [], pa.schema([("a", pa.int64())]))
    assert modes_under(tmp_path / "warehouse") == {"files": {0o640}, "dirs": {0o750}}


@pytest.mark.parametrize("value", ["rw-r-----", "0800", "1777", "-1"])
def test_a_bad_mode_value_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.setenv("CRUST_FILE_MODE", value)
    with pytest.raises(ValueError, match="CRUST_FILE_MODE"):
        write_table_atomic(tmp_path / "x.parquet", pa.table({"a": [1]}))
    assert list(tmp_path.iterdir()) == []  # nothing half-created


def test_temp_file_is_owner_only_while_it_is_written(
    tmp_path: Path, permissive_umask: None
) -> None:
    seen: list[int] = []
    target = tmp_path / "d" / "data.parquet"

    def batches():
        [temp] = target.parent.glob(".data.parquet.tmp-*")
        seen.append(stat.S_IMODE(temp.stat().st_mode))
        yield pa.record_batch({"a": [1]})

    write_parquet_atomic(target, batches(), pa.schema([("a", pa.int64())]))
    assert seen == [0o600]


# ---- forget -------------------------------------------------------------------------------------
def contact_values(row: dict) -> list[str]:
    values = [e["email"] for key in ("business_emails", "personal_emails") for e in row[key] or []]
    return values + list(row["phone_numbers"] or [])


def test_forget_removes_a_person_everywhere_and_refuses_to_buy_them_again(
    tmp_path: Path, emulator: EmulatorProcess, permissive_umask: None
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    layout = pipeline.layout
    shared = make_urls("forget", 30)
    pipeline.write_list(FIRST, shared)
    pipeline.plan(FIRST)
    pipeline.drive(until_runs=1)
    pipeline.write_list(SECOND, [*shared, *make_urls("other", 10)])  # shared rows are reused
    pipeline.plan(SECOND)
    pipeline.drive(until_runs=1)
    pipeline.materialize("contacts_latest")
    person = shared[3]
    rows = {r["profile_url"]: r for r in pipeline.table(FIRST)}
    secrets = [v.encode() for v in contact_values(rows[person])]
    assert secrets, "pick a person with contact values"
    [reused_file] = layout.root.glob(f"staging/contact_enrichment_batch/date={SECOND}/*.reused.*")
    assert person in urls_in(reused_file, ENRICHED_CONTACTS_SCHEMA)
    latest = layout.warehouse_dataset("contacts_latest") / "data.parquet"

    # Any pasted form of the URL finds the person; a second person is erased in the same call.
    messy = person.replace("https://www.", "http://uk.").upper() + "/?trk=public_profile#x"
    code = cli.main(["forget", messy, shared[7], "--data-dir", str(layout.root)])
    assert code == 0

    for date, count in ((FIRST, 28), (SECOND, 38)):
        path = layout.warehouse_partition("enriched_contacts", date)
        assert pq.read_schema(path).remove_metadata().equals(ENRICHED_CONTACTS_SCHEMA)
        remaining = urls_in(path, ENRICHED_CONTACTS_SCHEMA)
        assert len(remaining) == count and person not in remaining and shared[7] not in remaining
    assert person not in urls_in(latest, LATEST_SCHEMA)
    assert len(urls_in(latest, LATEST_SCHEMA)) == 38
    assert pq.read_schema(latest).remove_metadata().equals(LATEST_SCHEMA)
    assert person not in urls_in(reused_file, ENRICHED_CONTACTS_SCHEMA)
    # Rewritten atomically: no temp file left, modes still owner-only, no contact value anywhere.
    assert not [p for p in layout.root.rglob(".*") if p.is_file()]
    assert modes_under(layout.root / "warehouse", layout.root / "erasures") == {
        "files": {0o600},
        "dirs": {0o700},
    }
    for path in layout.root.rglob("*.parquet"):
        data = path.read_bytes()
        assert not [s for s in secrets if s in data], path

    log = erasure_log(layout).to_pylist()
    assert [r["profile_url"] for r in log] == [person, shared[7]]
    assert log[0]["partitions"] == [FIRST, SECOND]
    assert len(log[0]["files"]) == 4  # two partitions, contacts_latest, the reused rows
    assert log[0]["erased_at"] is not None

    # Re-planning skips the erased people (no submit), and the partition is still consistent.
    submitted_before = len(emulator.admin.submissions())
    pipeline.write_list(FIRST, [*shared, "https://www.linkedin.com/in/forget-new-one"])
    plan = pipeline.plan(FIRST).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert plan.metadata["urls_refused_erased"].value == 2
    assert plan.metadata["urls_to_submit"].value == 1  # only the new URL; 28 reused
    [run] = pipeline.drive(until_runs=1)
    assert run.success and pipeline.check_results(run)["one_row_per_submitted_url"]
    new_submissions = emulator.admin.submissions()[submitted_before:]
    assert [s["urls"] for s in new_submissions] == [["https://www.linkedin.com/in/forget-new-one"]]
    assert person not in urls_in(
        layout.warehouse_partition("enriched_contacts", FIRST), ENRICHED_CONTACTS_SCHEMA
    )

    # Explicitly allowed: the person is enriched again.
    allowed = Pipeline(
        layout.root,
        emulator.base_url,
        instance=pipeline.instance,
        settings={"allow_reenrich_erased": True},
    )
    plan = allowed.plan(FIRST).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert plan.metadata["urls_refused_erased"].value == 0
    assert plan.metadata["urls_to_submit"].value == 2


def test_forget_refuses_values_that_are_not_profiles_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = DataLayout(tmp_path / "data")
    code = cli.main(
        [
            "forget",
            "https://www.linkedin.com/in/valid-person",
            "https://www.linkedin.com/company/acme",
            "--data-dir",
            str(layout.root),
        ]
    )
    assert code == 2
    assert "company/acme" in capsys.readouterr().err
    assert not (layout.root / "erasures").exists()


def test_forget_before_any_enrichment_still_prevents_it(tmp_path: Path) -> None:
    """A root the pipeline has not written yet is accepted when the user says it is new."""
    data = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crust_assets.cli",
            "forget",
            "linkedin.com/in/Not-Yet",
            "--new-root",
        ],
        env={**os.environ, "CRUST_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "https://www.linkedin.com/in/not-yet: 0 rows removed" in result.stdout
    log = erasure_log(DataLayout(data)).to_pylist()
    assert log[0]["profile_url"] == "https://www.linkedin.com/in/not-yet"
    assert log[0]["partitions"] == []


def test_latest_schema_is_the_assets_schema() -> None:
    assert LATEST_SCHEMA.equals(PARTITIONED_CONTACTS_SCHEMA)


def test_forget_notes_a_plan_whose_results_are_not_loaded_yet_and_is_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Planned (jobs queued or running), not loaded: its unsent jobs leave the person out and its
    # load drops their row, so the erasure is complete; the plan is named as a note.
    pipeline = Pipeline(tmp_path / "data", "http://127.0.0.1:9")  # planning makes no API call
    person = "https://www.linkedin.com/in/in-flight-person"
    pipeline.write_list(FIRST, [person, *make_urls("flight", 3)])
    pipeline.plan(FIRST)
    code = cli.main(["forget", person, "--data-dir", str(pipeline.layout.root)])
    assert code == 0
    out, err = capsys.readouterr()
    assert f"date={FIRST}" in out and "note:" in out and "drops their row" in out
    assert "warning" not in err and "would write" not in out + err
    assert erasure_log(pipeline.layout).num_rows == 1


def test_forget_deletes_temp_files_left_by_dead_writers_and_reports_live_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = DataLayout(tmp_path / "data")
    partition = layout.warehouse_partition("enriched_contacts", FIRST)
    write_parquet_atomic(partition, [], ENRICHED_CONTACTS_SCHEMA)
    dead = partition.parent / ".data.parquet.tmp-dead"  # a run SIGKILLed mid-write, long ago
    dead.write_bytes(b"PAR1 half a file with someone's phone number")
    os.utime(dead, (time.time() - 7200, time.time() - 7200))
    code = cli.main(["forget", "linkedin.com/in/someone", "--data-dir", str(layout.root)])
    assert code == 0 and not dead.exists()
    assert "removed warehouse/enriched_contacts" in capsys.readouterr().out

    live = partition.parent / ".data.parquet.tmp-live"  # a write going on right now
    live.write_bytes(b"PAR1")
    code = cli.main(["forget", "linkedin.com/in/someone", "--data-dir", str(layout.root)])
    assert code == 1 and live.exists()
    assert ".data.parquet.tmp-live is being written" in capsys.readouterr().err

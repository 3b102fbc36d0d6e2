"""The whole flow with CRUST_DATA_DIR on an S3-compatible object store (moto server over HTTP).

Input read from the bucket, plan and sensor ticks, enriched_contacts written to the bucket
atomically (a watcher lists the bucket all along: no temporary object ever shows up and the table
appears only whole), contacts_latest materialised, and read back with DuckDB from `s3://`.

Needs s3fs and moto[server] (the dev extras). Without them these tests FAIL, saying so. A
developer may skip them locally with `-m "not objectstore"` or CRUST_SKIP_OBJECTSTORE=1 (reported
as a skip, with the reason); CI refuses the variable.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, TypeVar

import dagster as dg
import pyarrow as pa
import pytest

from crust_assets import cli
from crust_assets.defs.resources import DataRoot
from crust_assets.defs.sensors import contact_url_list_file_sensor
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.emulator.synth import synthetic_contacts
from crust_assets.erasure import (
    LATEST_SCHEMA,
    ErasureSettings,
    erased_urls,
    erasure_log,
    forget,
)
from crust_assets.lifecycle.ledger import Ledger
from crust_assets.storage import DataLayout, upload_atomic
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA, empty_row
from crust_assets.webhook import read_hints
from crust_assets_tests.object_store import BucketWatcher, MotoServer, aws_env
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-21"
NEXT_DATE = "2026-11-22"
FIELDS = ["business_email", "personal_contact_info"]
T = TypeVar("T")
# What may ever be seen in the bucket: finished files under their final names.
ALLOWED_KEY = re.compile(
    r"^crust/(input/\d{4}-\d{2}-\d{2}\.csv"
    r"|staging/[a-z_]+/date=\d{4}-\d{2}-\d{2}/[0-9a-f-]+(\.reused|\.borrowed)?\.parquet"
    r"|staging/contact_url_list/date=\d{4}-\d{2}-\d{2}/(data|lines)\.parquet"
    r"|warehouse/enriched_list/date=\d{4}-\d{2}-\d{2}/[^/]+\.enriched\.csv"
    r"|warehouse/[a-z_]+/date=\d{4}-\d{2}-\d{2}/data\.parquet"
    r"|warehouse/contacts_latest/data\.parquet"
    r"|warehouse/contacts\.duckdb)$"
)


@pytest.fixture(scope="module")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto S3 server on 127.0.0.1, with this process's AWS env pointed at it."""
    if os.environ.get("CRUST_SKIP_OBJECTSTORE") == "1":
        if os.environ.get("CI"):
            pytest.fail("CRUST_SKIP_OBJECTSTORE=1 is for local runs only: CI runs these tests")
        pytest.skip("object-store tests skipped by CRUST_SKIP_OBJECTSTORE=1 (never in CI)")
    missing = [m for m in ("s3fs", "moto", "boto3", "flask") if not _importable(m)]
    if missing:
        pytest.fail(
            f"object-store tests need {', '.join(missing)}: pip install -e '.[dev]' (s3fs, "
            "moto[server]); to skip them locally: -m 'not objectstore' or CRUST_SKIP_OBJECTSTORE=1"
        )
    import s3fs

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        with aws_env(server.endpoint_url):
            s3fs.S3FileSystem.clear_instance_cache()  # none may point at another endpoint
            yield server
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def bucket(object_store: MotoServer, request: pytest.FixtureRequest) -> str:
    import s3fs

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    s3fs.S3FileSystem().mkdir(name)
    return name


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local spool (tempfile's directory), here a fresh one the test can look into."""
    directory = tmp_path / "spool"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.objectstore
def test_whole_flow_reads_and_writes_the_bucket(
    bucket: str, emulator: EmulatorProcess, spool: Path
) -> None:
    import duckdb
    import s3fs

    fs = s3fs.S3FileSystem()
    root = f"s3://{bucket}/crust"
    pipeline = Pipeline(root, emulator.base_url)
    assert not pipeline.layout.is_local
    assert pipeline.layout.url(pipeline.layout.input_dir) == f"{root}/input"

    with BucketWatcher(bucket) as watcher:
        urls = make_urls("s3", 650)  # 3 jobs: the sensor reads 3 row groups by ranged GETs
        pipeline.write_list(DATE, [*urls, "https://www.linkedin.com/company/acme"])

        # The file sensor lists the input prefix through the store; the time is LastModified.
        first = _file_sensor(pipeline, None)
        assert [r.partition_key for r in first.run_requests] == [DATE]
        assert not _file_sensor(pipeline, first.cursor).run_requests  # nothing new
        time.sleep(1.1)  # S3 times are whole seconds: a rewrite must land in a later one
        pipeline.write_list(DATE, [*urls, "https://www.linkedin.com/company/acme"])
        again = _file_sensor(pipeline, first.cursor)
        assert [r.partition_key for r in again.run_requests] == [DATE]
        assert again.run_requests[0].run_key != first.run_requests[0].run_key

        plan = pipeline.plan(DATE).asset_materializations_for_node("contact_enrichment_batch")
        assert plan[0].metadata["job_count"].value == 3
        url_list = pipeline.latest_materialization("contact_url_list", DATE).metadata
        assert url_list["input_file"].value == f"{root}/input/{DATE}.csv"
        assert url_list["rejected"].value == 1

        target_key = f"crust/warehouse/enriched_contacts/date={DATE}/data.parquet"
        watcher.watch_for.add(target_key)
        assert not fs.exists(f"{bucket}/{target_key}")
        [run] = pipeline.drive(until_runs=1)
        assert run.success
        assert pipeline.check_results(run) == {
            "one_row_per_submitted_url": True,
            "unique_profile_url": True,
            "schema_as_contracted": True,
        }

        for selection, partition in (("contact_coverage", DATE), ("contacts_latest", None)):
            result = pipeline.materialize(selection, partition=partition)
            assert result.success
        duckdb_run = pipeline.materialize("contacts_duckdb")
        assert duckdb_run.success

    # Atomic: every key ever listed is a finished file under its final name, and the table was
    # absent, then present whole (one size only), never partly written.
    assert watcher.listings > 20
    assert [k for k in watcher.sizes if not ALLOWED_KEY.match(k)] == []
    final_size = fs.info(f"{bucket}/{target_key}")["size"]
    assert watcher.absent.get(target_key, 0) > 0
    assert watcher.sizes[target_key] == {final_size}
    assert list(spool.glob("crust-spool-*")) == []  # the local spool is cleaned up

    # Every asset wrote to the bucket and named its file by URL; nothing under a local data/.
    meta = pipeline.latest_materialization("enriched_contacts", DATE).metadata
    assert meta["file"].value == f"{root}/warehouse/enriched_contacts/date={DATE}/data.parquet"
    assert meta["dagster/row_count"].value == 650
    rows = {r["profile_url"]: r for r in pipeline.table(DATE)}
    assert set(rows) == set(urls)
    for url in urls[::50]:
        data = synthetic_contacts(url, FIELDS)
        assert rows[url]["crustdata_person_id"] == data["internal_id"]
        assert rows[url]["business_emails"] == data["data"].get("business_email")

    # Read back with DuckDB straight from s3:// (the fsspec filesystem registered).
    connection = duckdb.connect()
    try:
        connection.register_filesystem(fs)
        latest = connection.execute(
            "SELECT count(*), count(DISTINCT profile_url), min(date), max(date) "
            f"FROM read_parquet('{root}/warehouse/contacts_latest/data.parquet')"
        ).fetchone()
        assert latest == (650, 650, DATE, DATE)
        per_day = connection.execute(
            "SELECT date::VARCHAR, count(*) FROM read_parquet("
            f"'{root}/warehouse/enriched_contacts/*/*.parquet', hive_partitioning = true) "
            "GROUP BY 1"
        ).fetchall()
        assert per_day == [(DATE, 650)]
    finally:
        connection.close()

    # contacts_duckdb put its database beside the warehouse; its views read s3:// themselves.
    database = spool.parent / "contacts.duckdb"
    fs.get_file(f"{bucket}/crust/warehouse/contacts.duckdb", str(database))
    connection = duckdb.connect(str(database), read_only=True)
    try:
        connection.register_filesystem(fs)
        assert connection.execute("SELECT count(*) FROM contacts_latest").fetchone() == (650,)
        assert connection.execute("SELECT count(*) FROM rejected_urls").fetchone() == (1,)
        assert connection.execute("SELECT requested FROM contact_coverage").fetchone() == (650,)
    finally:
        connection.close()
    duckdb_meta = pipeline.latest_materialization("contacts_duckdb").metadata
    assert duckdb_meta["rows_contacts_latest"].value == 650
    assert "register_filesystem" in duckdb_meta["open_with"].value


@pytest.mark.objectstore
def test_a_failed_write_uploads_nothing_and_a_rewrite_replaces_whole(
    bucket: str, spool: Path
) -> None:
    import s3fs

    fs = s3fs.S3FileSystem()
    layout = DataRoot(data_dir=f"s3://{bucket}/crust").layout()
    target = layout.warehouse_partition("enriched_contacts", DATE)

    def batches(fail: bool, count: int) -> Iterator[pa.RecordBatch]:
        table = _contacts(count)
        yield from table.to_batches(max_chunksize=100)
        if fail:
            raise RuntimeError("download failed mid-partition")

    with pytest.raises(RuntimeError, match="mid-partition"):
        layout.write_batches(target, batches(True, 500), ENRICHED_CONTACTS_SCHEMA)
    assert fs.find(bucket) == []  # not even a partial or temporary object
    assert list(spool.glob("crust-spool-*")) == []

    assert layout.write_batches(target, batches(False, 300), ENRICHED_CONTACTS_SCHEMA) == 300
    assert layout.read_table(target).num_rows == 300
    with pytest.raises(RuntimeError):
        layout.write_batches(target, batches(True, 50), ENRICHED_CONTACTS_SCHEMA)
    assert layout.read_table(target).num_rows == 300  # the old version stays, whole
    assert layout.write_batches(target, batches(False, 40), ENRICHED_CONTACTS_SCHEMA) == 40
    assert layout.read_table(target, schema=ENRICHED_CONTACTS_SCHEMA).num_rows == 40
    assert fs.find(bucket) == [str(target)]  # only the table, under its final name


def test_a_filesystem_without_atomic_uploads_gets_a_hidden_temp_and_a_rename(
    tmp_path: Path,
) -> None:
    """Non-object stores (sftp, hdfs...) write in place: the upload goes beside, then moves."""
    from fsspec.implementations.local import LocalFileSystem

    source = tmp_path / "local.bin"
    source.write_bytes(b"x" * 1000)
    target = tmp_path / "remote" / "data.parquet"
    upload_atomic(LocalFileSystem(), source, str(target))
    assert target.read_bytes() == b"x" * 1000
    assert [p.name for p in target.parent.iterdir()] == ["data.parquet"]


def test_local_roots_stay_paths_and_urls_are_parsed() -> None:
    local = DataLayout.from_location("data")
    assert local.is_local and isinstance(local.root, Path) and local.root.is_absolute()
    assert DataLayout.from_location(f"file://{local.root}").root == local.root
    memory = DataLayout.from_location("memory://crust-layout/root/")
    assert not memory.is_local and isinstance(memory.root, PurePosixPath)
    assert memory.url(memory.input_file(DATE)).endswith(f"crust-layout/root/input/{DATE}.csv")


def test_file_sensor_sees_a_list_landing_in_the_watermark_s_second(tmp_path: Path) -> None:
    """S3 times are whole seconds: a second list with the same time must still start a run."""
    pipeline = Pipeline(tmp_path / "data", "http://127.0.0.1:9")
    same_second = 1_790_000_000
    first_path = Path(pipeline.write_list("2026-11-08", ["https://www.linkedin.com/in/a"]))
    os.utime(first_path, (same_second, same_second))
    first = _file_sensor(pipeline, None)
    assert [r.partition_key for r in first.run_requests] == ["2026-11-08"]
    second_path = Path(pipeline.write_list("2026-11-09", ["https://www.linkedin.com/in/b"]))
    os.utime(second_path, (same_second, same_second))
    second = _file_sensor(pipeline, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-11-09"]
    assert not _file_sensor(pipeline, second.cursor).run_requests
    assert not _file_sensor(pipeline, str(same_second * 10**9 + 1)).run_requests  # old cursors


def _file_sensor(pipeline: Pipeline, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=pipeline.instance, resources=pipeline.resources, cursor=cursor
    )
    result = contact_url_list_file_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _contacts(count: int) -> pa.Table:
    now = datetime.now(timezone.utc)
    columns = {"business_emails", "personal_emails", "phone_numbers"}
    return pa.Table.from_pylist(
        [
            empty_row(url, columns=columns, batch_id="b", enriched_at=now)
            for url in make_urls("atomic", count)
        ],
        schema=ENRICHED_CONTACTS_SCHEMA,
    )


# ---- the webhook receiver and the sensor share only the bucket ---------------------------------
@pytest.mark.objectstore
def test_webhook_hints_go_through_the_bucket_to_the_sensor(
    bucket: str,
    emulator: EmulatorProcess,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """As in production: the receiver (its own process, as its own pod) writes hints to s3://,
    the sensor tick reads, acts on and deletes them; polling alone would take an hour here."""
    import s3fs

    from crust_assets_tests.test_webhook import TOKEN, running_receiver

    monkeypatch.setenv("CRUST_POLL_INTERVAL_SECONDS", "3600")
    root = f"s3://{bucket}/crust"
    with running_receiver(root) as receiver_url:
        hook = f"{receiver_url}/hooks/crustdata/{TOKEN}"
        pipeline = Pipeline(root, emulator.base_url, settings={"webhook_url": hook})
        layout = pipeline.layout
        pipeline.write_list(DATE, make_urls("s3-hook", 20))
        pipeline.plan(DATE)
        first = pipeline.tick()  # submits the one job; its poll is now an hour away
        assert not first.run_requests
        [job] = [job for _, job in Ledger.from_cursor(pipeline.cursor).slot_holders()]

        hints = _wait_for(lambda: read_hints(layout), timeout=30)
        assert set(hints) == {job.batch_id}
        hint = json.loads(layout.read_bytes(hints[job.batch_id]))
        assert hint == {"batch_id": job.batch_id}  # the id alone: nothing else a caller sent

        capfd.readouterr()
        second = pipeline.tick()
        assert "1 job(s) hinted by webhook" in capfd.readouterr().err  # the tick's summary
        assert [r.partition_key for r in second.run_requests] == [DATE]
        assert read_hints(layout) == {}  # consumed
        assert s3fs.S3FileSystem().find(f"{bucket}/crust/webhooks") == []
        [run] = pipeline.run_requests(second)
    assert run.success and len(pipeline.table(DATE)) == 20


# ---- crust-assets forget on a bucket -------------------------------------------------------------
@pytest.mark.objectstore
def test_forget_erases_a_person_from_every_object_and_refuses_to_buy_them_again(
    bucket: str, emulator: EmulatorProcess, spool: Path
) -> None:
    import s3fs

    from crust_assets_tests.test_forget import contact_values

    fs = s3fs.S3FileSystem()
    root = f"s3://{bucket}/crust"
    pipeline = Pipeline(root, emulator.base_url)
    layout = pipeline.layout
    shared = make_urls("s3-forget", 30)
    for date, urls in ((DATE, shared), (NEXT_DATE, [*shared, *make_urls("s3-other", 10)])):
        pipeline.write_list(date, urls)  # the next day's shared rows are reused, not bought
        pipeline.plan(date)
        time.sleep(1.1)  # whole-second S3 times: the load must come a second after the plan
        [run] = pipeline.drive(until_runs=1)
        assert run.success
    latest_run = pipeline.materialize("contacts_latest")
    assert latest_run.success
    person, other = shared[3], shared[7]
    secrets = set(contact_values({r["profile_url"]: r for r in pipeline.table(DATE)}[person]))
    assert secrets, "pick a person with contact values"
    staging = layout.root / "staging" / "contact_enrichment_batch" / f"date={NEXT_DATE}"
    [reused] = layout.find(staging, "*.reused.parquet")
    holding = [
        layout.warehouse_partition("enriched_contacts", DATE),
        layout.warehouse_partition("enriched_contacts", NEXT_DATE),
        layout.warehouse_dataset("contacts_latest") / "data.parquet",
        reused,
    ]
    assert all(_count_url(layout, path, person) == 1 for path in holding)

    messy = person.replace("https://www.", "http://uk.").upper() + "/?trk=public_profile#x"
    assert cli.main(["forget", messy, other, "--data-dir", root, "--settle-seconds", "1"]) == 0

    # Gone from every file, which keeps its contract schema and everybody else.
    for path, rows in zip(holding, (28, 38, 38, 28), strict=True):
        assert _count_url(layout, path, person) == 0 and _count_url(layout, path, other) == 0
        assert layout.read_table(path).num_rows == rows
        schema = LATEST_SCHEMA if "contacts_latest" in str(path) else ENRICHED_CONTACTS_SCHEMA
        assert layout.read_schema(path).remove_metadata().equals(schema)
    for key in fs.find(bucket):
        assert "/." not in key and ".tmp" not in key, key  # never a temp object
        path = PurePosixPath(key)
        if key.endswith(".parquet") and "business_emails" in layout.read_schema(path).names:
            found = layout.read_table(path).to_pylist()
            assert not [r for r in found if secrets & set(_values(r))], key
    assert list(spool.glob("crust-spool-*")) == []

    log = erasure_log(layout).to_pylist()
    assert [r["profile_url"] for r in log] == [person, other]
    assert log[0]["partitions"] == [DATE, NEXT_DATE]
    assert sorted(log[0]["files"]) == sorted(str(p.relative_to(layout.root)) for p in holding)

    # Re-planning refuses the erased people: only the new URL is submitted.
    submitted_before = len(emulator.admin.submissions())
    newcomer = "https://www.linkedin.com/in/s3-forget-newcomer"
    pipeline.write_list(DATE, [*shared, newcomer])
    plan = pipeline.plan(DATE).asset_materializations_for_node("contact_enrichment_batch")[0]
    assert plan.metadata["urls_refused_erased"].value == 2
    assert plan.metadata["urls_to_submit"].value == 1
    [run] = pipeline.drive(until_runs=1)
    assert run.success and pipeline.check_results(run)["one_row_per_submitted_url"]
    assert [s["urls"] for s in emulator.admin.submissions()[submitted_before:]] == [[newcomer]]
    assert _count_url(layout, layout.warehouse_partition("enriched_contacts", DATE), person) == 0


@pytest.mark.objectstore
def test_forget_on_a_bucket_reports_a_recent_temp_object_and_removes_a_stale_one(
    bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our writers never leave temp objects; one copied in (say, from a local root) is handled
    as on disk: reported while it may be a live write, deleted once it is an hour old."""
    root = f"s3://{bucket}/crust"
    layout = DataLayout.from_location(root)
    partition = layout.warehouse_partition("enriched_contacts", DATE)
    layout.write_batches(partition, [], ENRICHED_CONTACTS_SCHEMA)
    temp = partition.parent / ".data.parquet.tmp-copied"
    layout.fs.pipe_file(str(temp), b"PAR1 half a file with someone's phone number")

    args = ["forget", "linkedin.com/in/someone", "--data-dir", root, "--settle-seconds", "1"]
    assert cli.main(args) == 1
    assert ".data.parquet.tmp-copied is being written" in capsys.readouterr().err
    assert layout.exists(temp)

    later = datetime.now(timezone.utc) + timedelta(hours=2)
    report = forget(
        layout, ["linkedin.com/in/someone"], now=later, settings=ErasureSettings(settle_seconds=1)
    )
    assert report.complete
    assert report.removed_temp_files == [str(temp.relative_to(layout.root))]
    assert not layout.exists(temp)
    assert erased_urls(layout) == {"https://www.linkedin.com/in/someone"}


def _wait_for(probe: Callable[[], T], timeout: float) -> T:
    """The first truthy value `probe` returns, polling until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing after {timeout} s")
        time.sleep(0.1)
    return value


def _count_url(layout: DataLayout, path: PurePath, url: str) -> int:
    """Rows of `url` in one file, counted by DuckDB reading s3:// itself."""
    import duckdb

    connection = duckdb.connect()
    try:
        connection.register_filesystem(layout.fs)
        row = connection.execute(
            "SELECT count(*) FROM read_parquet(?) WHERE profile_url = ?",
            [layout.url(path), url],
        ).fetchone()
    finally:
        connection.close()
    assert row is not None
    return int(row[0])


def _values(row: dict[str, Any]) -> list[str]:
    emails = [e["email"] for k in ("business_emails", "personal_emails") for e in row[k] or []]
    return emails + list(row["phone_numbers"] or [])

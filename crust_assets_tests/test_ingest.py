"""The fast ingest path (`crust_assets.ingest`) against the client's record parser, the emulator,
and the `crust-assets ingest` command.

The reference for every row is the client's Python parser (`parse_result_line`) with
`record_to_row`, and for per-job bookkeeping the record-by-record loop `ContactsLoader` ran before
the fast path existed (`reference_job`, kept here verbatim). Nothing of ours is mocked: jobs run on
the emulator over HTTP, files are real files, the CLI runs in-process and as a subprocess.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crust_assets.cli import main as cli_main
from crust_assets.crustdata import (
    BatchStatus,
    CrustdataClient,
    ResultParseError,
    parse_result_line,
)
from crust_assets.emulator import EmulatorProcess, synthetic_contacts, synthetic_profile
from crust_assets.emulator.synth import to_flat
from crust_assets.ingest import (
    JobLedger,
    PartStats,
    coalesce_batches,
    empty_batch,
    job_batches,
    load_part,
)
from crust_assets.table import (
    ENRICHED_CONTACTS_SCHEMA,
    empty_row,
    record_to_row,
    requested_columns,
    rows_to_batches,
)

WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
ALL_FIELDS = ["business_email", "personal_contact_info"]
FIELD_SETS = [
    ALL_FIELDS,
    ["business_email"],
    ["personal_contact_info"],
    ["personal_contact_info.phone_numbers"],
    ["business_email", "personal_contact_info.personal_emails"],
]


def urls(prefix: str, n: int) -> list[str]:
    return [f"https://www.linkedin.com/in/{prefix}-{i:04d}" for i in range(n)]


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def synthetic_lines(prefix: str, n: int, fields: list[str] = ALL_FIELDS) -> list[bytes]:
    return [line(synthetic_contacts(u, fields)) for u in urls(prefix, n)]


def load(data: bytes, *, force_python: bool = False, **kw: Any) -> tuple[str, pa.Table]:
    """(mode, table) of one part given as decompressed bytes."""
    loaded = load_part(
        io.BytesIO(data),
        batch_id="b-1",
        part="part-000.jsonl.gz",
        enriched_at=WHEN,
        force_python=force_python,
        **kw,
    )
    table = pa.Table.from_batches(list(loaded.batches()), schema=ENRICHED_CONTACTS_SCHEMA)
    return loaded.mode, table


def reference_rows(data: bytes, batch_id: str = "b-1") -> pa.Table:
    """The client's parser, line by line, straight into `record_to_row`."""
    rows = [
        record_to_row(
            parse_result_line(raw, batch_id=batch_id, part="p", line_number=n),
            batch_id=batch_id,
            enriched_at=WHEN,
        )
        for n, raw in enumerate(data.splitlines(keepends=True), start=1)
        if raw.strip()
    ]
    return pa.Table.from_pylist(rows, schema=ENRICHED_CONTACTS_SCHEMA)


# ---- one part: fast path == reference parser ----------------------------------------------------
@pytest.mark.parametrize("fields", FIELD_SETS, ids=lambda f: "+".join(f))
def test_envelope_records_take_the_fast_path_and_equal_the_reference(fields: list[str]) -> None:
    data = b"".join(synthetic_lines("fast", 400, fields))
    mode, fast = load(data)
    _, python = load(data, force_python=True)
    assert mode == "arrow"
    assert fast.num_rows == 400
    assert fast.equals(python)
    assert fast.equals(reference_rows(data))


def test_many_blocks_and_spilling_give_the_same_table() -> None:
    data = b"".join(synthetic_lines("blocks", 3000))
    _, reference = load(data, force_python=True)
    # 16 KiB blocks: ~60 blocks read by the helper thread; 64 KiB spill limit: IPC temp file.
    mode, fast = load(data, block_bytes=16 * 1024, spill_bytes=64 * 1024)
    assert mode == "arrow"
    assert fast.equals(reference)


def _record(url: str, **data: Any) -> dict[str, Any]:
    return {"original_identifier": url, "internal_id": 7, "data": data}


EMAIL = {"email": "ada@acme.example", "status": "deliverable"}
U = "https://www.linkedin.com/in/variant"

# (variant line, the mode the part must be read in). Each is placed among good envelope records.
VARIANTS: dict[str, tuple[bytes, str]] = {
    "flat record": (line(to_flat(synthetic_contacts(U, ALL_FIELDS))), "python"),
    "bare-string business email": (line(_record(U, business_email=["ada@acme.example"])), "python"),
    "single email object, not a list": (line(_record(U, business_email=EMAIL)), "python"),
    "single phone string": (
        line(_record(U, personal_contact_info={"phone_numbers": "+14155550123"})),
        "python",
    ),
    "phone as a number": (
        line(_record(U, personal_contact_info={"phone_numbers": [14155550123]})),
        "python",
    ),
    "empty-string phone": (
        line(_record(U, personal_contact_info={"phone_numbers": ["", "+14155550123"]})),
        "python",
    ),
    "explicit null business_email": (line(_record(U, business_email=None)), "python"),
    "explicit null personal_contact_info": (
        line(_record(U, business_email=[EMAIL], personal_contact_info=None)),
        "python",
    ),
    "empty personal_contact_info object": (
        line(_record(U, business_email=[], personal_contact_info={})),
        "python",
    ),
    "null entry in a list": (line(_record(U, business_email=[None, EMAIL])), "python"),
    "email under 'address'": (
        line(_record(U, business_email=[{"address": "a@b.example"}])),
        "python",
    ),
    "numeric email status": (
        line(_record(U, business_email=[{"email": "a@b.example", "status": 1}])),
        "python",
    ),
    "internal_id as a string": (
        line({"original_identifier": U, "internal_id": "42", "data": {}}),
        "python",
    ),
    "person_id instead of internal_id": (
        line({"original_identifier": U, "person_id": 42, "data": {"business_email": []}}),
        "python",
    ),
    "blank identifier, URL under another key": (
        line({"original_identifier": "  ", "professional_network_url": U, "data": {}}),
        "python",
    ),
    "escaped key written as null": (
        b'{"original_identifier":"' + U.encode() + b'","data":{"busin\\u0065ss_email":null}}\n',
        "python",
    ),
    "data without contact keys": (line(_record(U)), "arrow"),
    "only phone numbers requested": (
        line(_record(U, personal_contact_info={"phone_numbers": ["+14155550123"]})),
        "arrow",
    ),
    "null and missing email status": (
        line(_record(U, business_email=[{"email": "a@b.example", "status": None}, {"email": "c"}])),
        "arrow",
    ),
    "unknown keys everywhere": (
        line(
            {
                "original_identifier": U,
                "internal_id": None,
                "extra": {"a": [1, None]},
                "data2": None,
                "data": {"business_email": [{**EMAIL, "verified_at": None}], "other": None},
            }
        ),
        "arrow",
    ),
    "blank and whitespace-only lines": (b"\n   \n" + line(_record(U)) + b"\t\n", "arrow"),
}


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_record_variants_read_exactly_as_the_reference_parser_reads_them(variant: str) -> None:
    odd, expected_mode = VARIANTS[variant]
    good = synthetic_lines("variant", 10)
    data = b"".join(good[:5]) + odd + b"".join(good[5:])
    mode, fast = load(data)
    _, python = load(data, force_python=True)
    assert mode == expected_mode
    assert fast.equals(python)
    assert fast.equals(reference_rows(data))


def test_null_means_requested_and_absent_means_not_requested() -> None:
    data = line(_record("https://www.linkedin.com/in/a", business_email=None)) + line(
        _record("https://www.linkedin.com/in/b")
    )
    _, table = load(data)
    assert table.column("business_emails").to_pylist() == [[], None]
    assert table.column("matched").to_pylist() == [False, False]


def test_crlf_files_take_the_fast_path() -> None:
    data = b"".join(synthetic_lines("crlf", 50)).replace(b"\n", b"\r\n")
    mode, fast = load(data)
    assert mode == "arrow"
    assert fast.equals(load(data, force_python=True)[1])


def test_primary_email_prefers_the_first_deliverable() -> None:
    emails = [
        [{"email": "x@a", "status": "invalid"}, {"email": "y@a", "status": "deliverable"}],
        [{"email": "z@a", "status": "unknown"}],
        [],
        [{"email": "p@a", "status": "deliverable"}, {"email": "q@a", "status": "deliverable"}],
    ]
    data = b"".join(
        line(_record(f"https://www.linkedin.com/in/p{i}", business_email=e))
        for i, e in enumerate(emails)
    )
    mode, table = load(data)
    assert mode == "arrow"
    assert table.column("primary_business_email").to_pylist() == ["y@a", "z@a", None, "p@a"]


@pytest.mark.parametrize(
    "layout",
    [
        b'{"original_identifier":"https://www.linkedin.com/in/x",\n"data":{}}\n',
        b'{"original_identifier":"a","data":{}} {"original_identifier":"b","data":{}}\n',
        b'{"original_identifier":"a","data":{"business_email":[{"email":"a@b"',
        b"not json at all\n",
    ],
    ids=["object over two lines", "two objects on a line", "cut in half", "not json"],
)
def test_malformed_parts_raise_the_parse_error_before_any_row(layout: bytes) -> None:
    good = synthetic_lines("bad", 6)
    data = b"".join(good[:3]) + layout + b"".join(good[3:])
    with pytest.raises(ResultParseError) as info:
        load_part(io.BytesIO(data), batch_id="b-1", part="part-007", enriched_at=WHEN)
    assert info.value.part == "part-007"
    assert info.value.line_number == 4


def _streamed(data: bytes) -> tuple[Any, list[pa.RecordBatch]]:
    loaded = load_part(
        io.BytesIO(data),
        batch_id="b-1",
        part="part-000.jsonl.gz",
        enriched_at=WHEN,
        verify_first=False,
        block_bytes=16 * 1024,
    )
    return loaded, list(loaded.batches())


def test_a_streamed_part_hands_the_rest_to_the_reference_parser_at_the_odd_block() -> None:
    good = synthetic_lines("stream", 600)
    flat = line(to_flat(synthetic_contacts(U, ALL_FIELDS)))
    data = b"".join(good[:450]) + flat + b"".join(good[450:])
    loaded, batches = _streamed(data)
    assert (loaded.mode, loaded.rows) == ("arrow+python", 601)
    assert pa.Table.from_batches(batches, schema=ENRICHED_CONTACTS_SCHEMA).equals(
        reference_rows(data)
    )


def test_a_streamed_part_names_the_right_line_of_a_bad_record() -> None:
    good = synthetic_lines("stream-bad", 600)
    data = b"".join(good[:499]) + b'{"original_identifier": "cut\n' + b"".join(good[500:])
    with pytest.raises(ResultParseError) as info:
        _streamed(data)
    assert info.value.line_number == 500


# ---- per job: bookkeeping -----------------------------------------------------------------------
def reference_job(
    client: CrustdataClient, status: BatchStatus, job_urls: list[str], columns: set[str]
) -> tuple[pa.Table, dict[str, Any]]:
    """ContactsLoader._job_rows as it was before the fast path (record by record)."""
    counts: dict[str, Any] = {"duplicates": 0, "unexpected": 0, "missing": []}
    rows: list[dict] = []
    pending = dict.fromkeys(job_urls, True)
    if (status.result_count or 0) == 0:
        rows = [
            empty_row(u, columns=columns, batch_id=status.batch_id, enriched_at=status.completed_at)
            for u in pending
        ]
    else:
        delivered: set[str] = set()
        for record in client.iter_results(status):
            url = record.profile_url
            if url in delivered:
                counts["duplicates"] += 1
                continue
            if url not in pending:
                counts["unexpected"] += 1
                continue
            del pending[url]
            delivered.add(url)
            rows.append(
                record_to_row(record, batch_id=status.batch_id, enriched_at=status.completed_at)
            )
        counts["missing"] = list(pending)
    batches = list(rows_to_batches(rows))
    return pa.Table.from_batches(batches, schema=ENRICHED_CONTACTS_SCHEMA), counts


def fast_job(
    client: CrustdataClient, status: BatchStatus, job_urls: list[str], columns: set[str]
) -> tuple[pa.Table, dict[str, Any], PartStats]:
    ledger = JobLedger(job_urls)
    stats = PartStats()
    batches = list(job_batches(client, status, ledger, columns=columns, stats=stats))
    table = pa.Table.from_batches(batches, schema=ENRICHED_CONTACTS_SCHEMA)
    counts = {
        "duplicates": ledger.duplicates,
        "unexpected": ledger.unexpected,
        "missing": ledger.missing(),
    }
    return table, counts, stats


def run_job(client: CrustdataClient, job_urls: list[str], fields: list[str]) -> BatchStatus:
    batch_id = client.submit(job_urls, fields).batch_id
    return client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=20)


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    return emulator_factory(part_size=40)


@pytest.mark.parametrize(
    ("faults", "fields", "expected_mode"),
    [
        ({}, ALL_FIELDS, "arrow"),
        ({}, ["business_email"], "arrow"),
        ({"flat_records": True}, ALL_FIELDS, "python"),
        ({"duplicate_records_per_job": 7, "drop_records_per_job": 3}, ALL_FIELDS, "arrow"),
        (
            {"flat_records": True, "duplicate_records_per_job": 4, "drop_records_per_job": 2},
            ["personal_contact_info.phone_numbers"],
            "python",
        ),
    ],
    ids=["envelope", "business-only", "flat", "dups-and-drops", "flat-dups-drops-phones"],
)
def test_job_through_the_emulator_matches_the_record_by_record_loop(
    emulator: EmulatorProcess, faults: dict[str, Any], fields: list[str], expected_mode: str
) -> None:
    submitted = urls("job", 130)  # 4 parts of <= 40 records
    if faults:
        emulator.admin.set_faults(**faults)
    # The plan expects 125 of the submitted URLs plus one that was never submitted: the other 5
    # come back as unexpected records, the stranger is missing.
    expected = [*submitted[:125], "https://www.linkedin.com/in/never-submitted"]
    columns = requested_columns(fields)
    with CrustdataClient(emulator.api_key, emulator.base_url, timeout=5.0) as client:
        status = run_job(client, submitted, fields)
        assert status.status == "completed" and (status.result_count or 0) > 0
        fast, fast_counts, stats = fast_job(client, status, expected, columns)
        reference, reference_counts = reference_job(client, status, expected, columns)
    assert fast.equals(reference)
    assert fast_counts == reference_counts
    assert fast_counts["unexpected"] >= 5 - faults.get("drop_records_per_job", 0)
    assert "https://www.linkedin.com/in/never-submitted" in fast_counts["missing"]
    if faults.get("duplicate_records_per_job"):
        assert 0 < fast_counts["duplicates"] <= faults["duplicate_records_per_job"]
    assert stats.arrow_parts + stats.python_parts == 4
    assert (stats.arrow_parts if expected_mode == "arrow" else stats.python_parts) == 4


def test_a_corrupt_later_part_raises_before_any_of_its_rows(
    emulator: EmulatorProcess,
) -> None:
    submitted = urls("corrupt", 70)  # parts of 40 and 30 records
    with CrustdataClient(emulator.api_key, emulator.base_url, timeout=5.0) as client:
        status = run_job(client, submitted, ALL_FIELDS)
        ledger = JobLedger(submitted)
        batches = job_batches(client, status, ledger, columns=requested_columns(ALL_FIELDS))
        first = next(batches)  # all of part-000 (one block)
        emulator.admin.set_faults(corrupt_next_downloads=1)
        with pytest.raises(ResultParseError) as info:
            next(batches)
    assert first.num_rows == 40
    assert info.value.part == "part-001.jsonl.gz"
    assert int(ledger.delivered.sum()) == 40  # nothing of the bad part was admitted


@pytest.mark.parametrize("fields", [ALL_FIELDS, ["business_email"]], ids=["all", "business"])
def test_a_job_with_no_result_file_gives_empty_rows_for_every_url(
    emulator: EmulatorProcess, fields: list[str]
) -> None:
    nobody = [
        u
        for u in (f"https://www.linkedin.com/in/nobody-{i}" for i in range(80))
        if synthetic_profile(u).is_empty
    ][:4]
    assert len(nobody) == 4
    columns = requested_columns(fields)
    with CrustdataClient(emulator.api_key, emulator.base_url, timeout=5.0) as client:
        status = run_job(client, nobody, fields)
        assert status.result_count == 0
        fast, fast_counts, _ = fast_job(client, status, nobody, columns)
        reference, reference_counts = reference_job(client, status, nobody, columns)
    assert fast.equals(reference)
    assert fast_counts == reference_counts == {"duplicates": 0, "unexpected": 0, "missing": []}


@pytest.mark.parametrize("fields", FIELD_SETS, ids=lambda f: "+".join(f))
def test_empty_batch_equals_empty_rows(fields: list[str]) -> None:
    columns = requested_columns(fields)
    job_urls = urls("empty", 5)
    batch = empty_batch(pa.array(job_urls), columns=columns, batch_id="b", enriched_at=WHEN)
    rows = [empty_row(u, columns=columns, batch_id="b", enriched_at=WHEN) for u in job_urls]
    assert pa.Table.from_batches([batch]).equals(
        pa.Table.from_pylist(rows, schema=ENRICHED_CONTACTS_SCHEMA)
    )


def test_ledger_counts_like_the_loop_it_replaces() -> None:
    rng = random.Random(5)
    expected = urls("ledger", 50)
    strangers = urls("stranger", 10)
    stream = [rng.choice(expected + strangers) for _ in range(400)]
    ledger = JobLedger(expected)
    kept: list[str] = []
    for start in range(0, len(stream), 37):
        chunk = stream[start : start + 37]
        batch = pa.RecordBatch.from_pydict(
            {"profile_url": chunk, "n": list(range(start, start + len(chunk)))}
        )
        kept += ledger.admit(batch).column("profile_url").to_pylist()
    pending = dict.fromkeys(expected, True)
    seen: list[str] = []
    duplicates = unexpected = 0
    for url in stream:
        if url in seen:
            duplicates += 1
        elif url not in pending:
            unexpected += 1
        else:
            del pending[url]
            seen.append(url)
    assert kept == seen
    assert (ledger.duplicates, ledger.unexpected, ledger.missing()) == (
        duplicates,
        unexpected,
        list(pending),
    )


def test_coalesce_keeps_rows_and_order() -> None:
    batches = [
        pa.RecordBatch.from_pydict({"x": list(range(i * 10, i * 10 + 10))}) for i in range(25)
    ]
    out = list(coalesce_batches(iter(batches), rows=64))
    assert [b.num_rows for b in out] == [70, 70, 70, 40]
    assert pa.Table.from_batches(out).column("x").to_pylist() == list(range(250))


# ---- the CLI ------------------------------------------------------------------------------------
def write_gzip(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as out:
        out.write(b"".join(lines))
    return path


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | None, str]:
    code = cli_main(["ingest", *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_cli_round_trip_gzip_and_plain_envelope_flat_and_bare_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = synthetic_lines("cli-a", 30, ["business_email"])
    gz = write_gzip(tmp_path / "RESULTS-A.jsonl.gz", envelope)
    odd = [line(to_flat(synthetic_contacts(u, ALL_FIELDS))) for u in urls("cli-b", 8)] + [
        line(_record("https://www.linkedin.com/in/bare", business_email=["x@y.example"]))
    ]
    plain = tmp_path / "results-b.jsonl"  # no gzip: detected by the missing magic bytes
    plain.write_bytes(b"".join(odd))
    out = tmp_path / "out" / "contacts.parquet"
    code, report, _ = run_cli(
        str(gz),
        str(plain),
        "--out",
        str(out),
        "--enriched-at",
        "2026-11-20T12:00:00Z",
        capsys=capsys,
    )
    assert code == 0 and report is not None
    assert (report["rows"], report["arrow_parts"], report["python_parts"]) == (39, 1, 1)
    table = pq.read_table(out, schema=ENRICHED_CONTACTS_SCHEMA)
    expected = pa.concat_tables(
        [
            reference_rows(b"".join(envelope), batch_id="RESULTS-A"),
            reference_rows(b"".join(odd), batch_id="results-b"),
        ]
    )
    assert table.equals(expected)
    assert table.column("primary_business_email").to_pylist()[-1] == "x@y.example"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_cli_duplicates_urls_and_batch_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = synthetic_lines("cli-d", 20)
    part0 = write_gzip(tmp_path / "part-000.jsonl.gz", lines[:12])
    part1 = write_gzip(tmp_path / "part-001.jsonl.gz", lines[10:])  # 2 repeated across parts
    out = tmp_path / "d.parquet"
    code, report, _ = run_cli(str(part0), str(part1), "--out", str(out), capsys=capsys)
    assert code == 0 and report is not None
    assert (report["records"], report["rows"], report["duplicates"]) == (22, 20, 2)
    assert pq.read_table(out).column("batch_id").to_pylist()[:1] == ["part-000"]

    code, report, _ = run_cli(
        str(part0), str(part1), "--out", str(out), "--keep-duplicates", capsys=capsys
    )
    assert code == 0 and report is not None and report["rows"] == 22

    expected = [*urls("cli-d", 20)[2:], "https://www.linkedin.com/in/never"]
    url_file = tmp_path / "urls.csv"
    url_file.write_text("profile_url\n" + "\n".join(expected) + "\n")
    code, report, _ = run_cli(
        str(part0),
        str(part1),
        "--out",
        str(out),
        "--urls",
        str(url_file),
        "--batch-id",
        "job-7",
        capsys=capsys,
    )
    assert code == 0 and report is not None
    assert (report["rows"], report["duplicates"], report["unexpected"]) == (18, 2, 2)
    assert report["missing_sample"] == ["https://www.linkedin.com/in/never"]
    assert set(pq.read_table(out).column("batch_id").to_pylist()) == {"job-7"}


def test_cli_truncated_gzip_fails_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = gzip.compress(b"".join(synthetic_lines("cli-t", 200)))
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "t.parquet"
    code, _, err = run_cli(str(bad), "--out", str(out), capsys=capsys)
    assert code == 1
    assert "truncated" in err and "bad.jsonl.gz" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_cli_runs_as_a_command(tmp_path: Path) -> None:
    source = write_gzip(tmp_path / "r.jsonl.gz", synthetic_lines("cli-cmd", 5))
    out = tmp_path / "r.parquet"
    completed = subprocess.run(
        [sys.executable, "-m", "crust_assets.cli", "ingest", str(source), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["rows"] == 5
    assert pq.read_table(out).num_rows == 5


# ---- the benchmark's quick path, for correctness only (no timing is asserted) -------------------
def test_quick_bench_sections_run_and_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crust_assets.bench import __main__ as bench
    from crust_assets.bench.slots import model_figures

    monkeypatch.setenv("CRUST_BENCH_CACHE", str(tmp_path / "cache"))
    tiny = {
        "ingest_records": 2_000,
        "ingest_small": 600,
        "ingest_rounds": 1,
        "normalise": 2_000,
        "normalise_repeat": 1,
        "tick_partitions": 6,
        "ticks": 2,
        "plan_urls": 2_000,
        "latest_partitions": 3,
        "latest_rows": 200,
        "latest_rounds": 1,
        "ingest_rss": False,  # six child processes: the figure, not its correctness
    }
    for key, value in tiny.items():
        monkeypatch.setitem(bench.QUICK, key, value)
    # Section 1 (the real daemon, ~2 minutes) runs in `make bench` only; its model runs here.
    report = bench.run(quick=True, only=["2", "3", "4", "5"], work_dir=tmp_path / "work")
    assert "errors" not in report.figures, report.figures.get("errors")
    figures = report.figures
    ingest = figures["ingest"]
    assert set(ingest["rows"].values()) == {2_000}
    assert set(ingest["small_rows"].values()) == {600}
    assert ingest["fast_equals_reference"] and ingest["asset_paths_equal"]
    assert ingest["job_rows"] == {"old": 600, "new": 600}
    assert figures["normalisation"]["vectorised_equals_scalar"]
    tick = figures["sensor_tick"]
    assert tick["first_tick"]["submitted"] == 5
    assert tick["refill"]["all_within_call_budget"] and tick["steady"]["all_within_call_budget"]
    assert tick["steady"]["calls_max"] == 5
    plan = figures["scale_plan"]
    assert plan["jobs"] == 7 and plan["jobs_measured"] >= 5 and plan["bytes_per_job"] > 0
    assert figures["scale_latest"]["rows_equal"]
    assert "MISSED" in report.render() or "ok" in report.render()
    model = model_figures(jobs=200)
    assert all(0 < value <= 1 for value in model.values())
    assert model["real_120_180s_webhook"] >= model["real_120_180s"]

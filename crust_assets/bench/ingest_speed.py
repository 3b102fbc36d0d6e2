"""Measurement 2: result files -> `enriched_contacts` Parquet, against pyarrow and pandas.

What is compared, on the same gzipped JSONL file of envelope records with realistic fill (the
emulator's `synthetic_contacts`, cached under `cache_dir()` because generating 1,000,000 records
takes about a minute):

* ours: `crust_assets.ingest.ingest_files` (`crust-assets ingest --keep-duplicates`): the
  asset's per-part code (`load_part`: blocks, fast path, fallback checks, the table's derived
  columns), streamed, into atomic zstd Parquet; also the CLI's default (plus an exact duplicate
  check over all URLs: a Python set) and the file taken as one part the way the asset takes a
  part (everything checked before the first row; no overlap with writing; spills to disk);
* (a) `pyarrow.json.read_json` with the documented envelope as explicit schema +
  `pyarrow.parquet.write_table` (it reads the whole file into memory and derives nothing);
* (b) `pandas.read_json(lines=True)` + `DataFrame.to_parquet`, on the smaller file (pandas on
  1,000,000 records takes minutes; the ratio is same-size);
* the previous asset path (the client's per-record parser, `record_to_row`, `rows_to_batches`),
  on the smaller file, as 300-record job parts, which is also where the fast path is checked to
  give a table equal to the reference parser's.

Peak RSS is measured in a fresh child process per size (its own `ru_maxrss`).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from crust_assets.bench.common import (
    cache_dir,
    child_peak_rss,
    interleaved,
    self_peak_rss_mib,
)
from crust_assets.crustdata import parse_result_line
from crust_assets.emulator.synth import synthetic_contacts
from crust_assets.ingest import (
    JobLedger,
    coalesce_batches,
    ingest_files,
    load_part,
    open_result_file,
)
from crust_assets.storage import write_parquet_atomic
from crust_assets.table import EMAIL_TYPE, ENRICHED_CONTACTS_SCHEMA, record_to_row, rows_to_batches

FIELDS = ("business_email", "personal_contact_info")
FILE_VERSION = 1
WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
JOB_SIZE = 300

#: The documented envelope, as baseline (a) is given it (no alias detection, nothing derived).
DOCUMENTED_ENVELOPE = pa.schema(
    [
        pa.field("original_identifier", pa.string()),
        pa.field("internal_id", pa.int64()),
        pa.field(
            "data",
            pa.struct(
                [
                    pa.field("business_email", pa.list_(EMAIL_TYPE)),
                    pa.field(
                        "personal_contact_info",
                        pa.struct(
                            [
                                pa.field("personal_emails", pa.list_(EMAIL_TYPE)),
                                pa.field("phone_numbers", pa.list_(pa.string())),
                            ]
                        ),
                    ),
                ]
            ),
        ),
    ]
)


def bench_url(index: int) -> str:
    return f"https://www.linkedin.com/in/bench-{index:07d}"


def _jsonl(bounds: tuple[int, int]) -> bytes:
    start, stop = bounds
    return "".join(
        json.dumps(
            synthetic_contacts(bench_url(i), FIELDS), ensure_ascii=False, separators=(",", ":")
        )
        + "\n"
        for i in range(start, stop)
    ).encode()


def results_file(records: int) -> Path:
    """A cached `results-N.jsonl.gz` of N envelope records (generated on two cores once)."""
    path = cache_dir() / f"results-v{FILE_VERSION}-{records}.jsonl.gz"
    if path.exists():
        return path
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    step = 20_000
    chunks = [(s, min(records, s + step)) for s in range(0, records, step)]
    with get_context("fork").Pool(2) as pool, gzip.open(temp, "wb", compresslevel=6) as out:
        for data in pool.imap(_jsonl, chunks):
            out.write(data)
    os.replace(temp, path)
    return path


# ---- the contenders -----------------------------------------------------------------------------
def baseline_arrow(path: Path, out: Path) -> int:
    table = pajson.read_json(
        path, parse_options=pajson.ParseOptions(explicit_schema=DOCUMENTED_ENVELOPE)
    )
    pq.write_table(table, out)
    return table.num_rows


def baseline_pandas(path: Path, out: Path) -> int:
    import pandas as pd

    frame = pd.read_json(path, lines=True, compression="gzip")
    frame.to_parquet(out)
    return len(frame)


def ours(path: Path, out: Path, *, dedupe: bool = True, force_python: bool = False) -> int:
    report = ingest_files(
        [path], out, batch_id="bench", enriched_at=WHEN, dedupe=dedupe, force_python=force_python
    )
    return report.rows


def one_part_verified(path: Path, out: Path) -> int:
    """The whole file as one part the way the asset takes a part: all checked, then handed out.

    Nothing overlaps parsing with writing here, and a part this big spills to an IPC temp file;
    real parts (<= 300 records per job) fit in one block and never spill.
    """
    with open_result_file(path) as stream:
        loaded = load_part(stream, batch_id="bench", part=path.name, enriched_at=WHEN)
        return write_parquet_atomic(out, loaded.batches(), ENRICHED_CONTACTS_SCHEMA)


def job_parts(path: Path) -> list[tuple[list[str], bytes]]:
    """The file cut into 300-record gzip parts with each job's URLs: a partition's jobs."""
    parts = []
    with gzip.open(path, "rb") as stream:
        lines = stream.readlines()
    for start in range(0, len(lines), JOB_SIZE):
        chunk = lines[start : start + JOB_SIZE]
        urls = [bench_url(i) for i in range(start, start + len(chunk))]
        parts.append((urls, gzip.compress(b"".join(chunk), compresslevel=6)))
    return parts


def asset_path_new(parts: list[tuple[list[str], bytes]], out: Path) -> int:
    """Per job: the client's kind of stream -> load_part -> JobLedger -> coalesced batches."""

    def batches() -> Iterator[pa.RecordBatch]:
        for index, (urls, data) in enumerate(parts):
            ledger = JobLedger(urls)
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                loaded = load_part(
                    stream, batch_id=f"job-{index}", part="part-000", enriched_at=WHEN
                )
                for batch in loaded.batches():
                    yield ledger.admit(batch)

    return write_parquet_atomic(out, coalesce_batches(batches()), ENRICHED_CONTACTS_SCHEMA)


def asset_path_old(parts: list[tuple[list[str], bytes]], out: Path) -> int:
    """The loop ContactsLoader ran before: one pydantic record and one row dict per line."""

    def rows() -> Iterator[dict]:
        for index, (urls, data) in enumerate(parts):
            pending = dict.fromkeys(urls, True)
            delivered: set[str] = set()
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
                for number, line in enumerate(stream, start=1):
                    if not line.strip():
                        continue
                    record = parse_result_line(
                        line, batch_id=f"job-{index}", part="part-000", line_number=number
                    )
                    url = record.profile_url
                    if url in delivered or url not in pending:
                        continue
                    del pending[url]
                    delivered.add(url)
                    yield record_to_row(record, batch_id=f"job-{index}", enriched_at=WHEN)

    return write_parquet_atomic(out, rows_to_batches(rows()), ENRICHED_CONTACTS_SCHEMA)


# ---- whole process: start-up included ------------------------------------------------------------
#: The plain pyarrow script a user would write instead of `crust-assets ingest`.
ARROW_SCRIPT = """
import sys
import pyarrow as pa, pyarrow.json as pajson, pyarrow.parquet as pq
envelope = pa.ipc.read_schema(pa.memory_map(sys.argv[1]))
table = pajson.read_json(sys.argv[2], parse_options=pajson.ParseOptions(explicit_schema=envelope))
pq.write_table(table, sys.argv[3])
"""


def _run(argv: list[str]) -> int:
    subprocess.run(argv, check=True, capture_output=True)
    return 0


def bench_whole_process(records: int, *, rounds: int, work_dir: Path) -> dict[str, Any]:
    """`crust-assets ingest` as a user runs it (a fresh process) vs the plain pyarrow script.

    In-process figures leave out what a command pays before it reads a byte: its imports. This
    one counts them, for both contenders, in separate interpreters started the same way.
    """
    path = results_file(records)
    out = work_dir / "process"
    out.mkdir(parents=True, exist_ok=True)
    ours_argv = [sys.executable, "-m", "crust_assets.cli", "ingest", str(path)]
    ours_argv += ["--out", str(out / "ours.parquet"), "--keep-duplicates", "--batch-id", "bench"]
    schema = out / "envelope.arrow-schema"
    schema.write_bytes(DOCUMENTED_ENVELOPE.serialize().to_pybytes())
    arrow_argv = [sys.executable, "-c", ARROW_SCRIPT, str(schema), str(path)]
    arrow_argv.append(str(out / "arrow.parquet"))
    timings, _ = interleaved(
        {"arrow": lambda: _run(arrow_argv), "ours": lambda: _run(ours_argv)}, rounds
    )
    return {
        "records": records,
        "wall": {name: t.wall for name, t in timings.items()},
        "speed_vs_arrow": timings["arrow"].wall / timings["ours"].wall,
    }


# ---- memory, in a child process -----------------------------------------------------------------
def _child(argv: list[str]) -> None:
    """`python -m crust_assets.bench.ingest_speed rss MODE PATH OUT`: run once, print peak RSS."""
    _, mode, path, out = argv
    source, target = Path(path), Path(out)
    if mode == "ours":
        rows = ours(source, target, dedupe=False)
    elif mode == "ours-dedupe":
        rows = ours(source, target)
    elif mode == "verify-first":
        rows = one_part_verified(source, target)
    elif mode == "arrow":
        rows = baseline_arrow(source, target)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps({"rows": rows, "peak_rss_mib": self_peak_rss_mib()}))


def peak_rss(mode: str, path: Path, out: Path) -> float:
    result = child_peak_rss(["crust_assets.bench.ingest_speed", "rss", mode, str(path), str(out)])
    return float(result["peak_rss_mib"])


# ---- the measurement ----------------------------------------------------------------------------
def bench_ingest(
    records: int = 1_000_000,
    small: int = 100_000,
    *,
    rounds: int = 3,
    work_dir: Path,
    rss: bool = True,
) -> dict[str, Any]:
    """All figures of measurement 2 as a dict (seconds, ratios, MiB)."""
    big_file = results_file(records)
    small_file = results_file(small)
    out = work_dir / "ingest"
    out.mkdir(parents=True, exist_ok=True)

    timings, rows = interleaved(
        {
            "arrow": lambda: baseline_arrow(big_file, out / "arrow.parquet"),
            "ours": lambda: ours(big_file, out / "ours.parquet", dedupe=False),
            "ours_dedupe": lambda: ours(big_file, out / "ours-d.parquet"),
            "ours_verify_first": lambda: one_part_verified(big_file, out / "ours-v.parquet"),
        },
        rounds,
    )
    small_timings, small_rows = interleaved(
        {
            "pandas": lambda: baseline_pandas(small_file, out / "pandas.parquet"),
            "ours": lambda: ours(small_file, out / "ours-small.parquet", dedupe=False),
        },
        max(1, rounds - 1),
    )
    # Correctness on the same data: the reference parser for every part vs the fast path.
    ours(small_file, out / "reference.parquet", force_python=True)
    reference = pq.read_table(out / "reference.parquet")
    fast = pq.read_table(out / "ours-small.parquet")

    parts = job_parts(small_file)
    job_timings, job_rows = interleaved(
        {
            "old": lambda: asset_path_old(parts, out / "asset-old.parquet"),
            "new": lambda: asset_path_new(parts, out / "asset-new.parquet"),
        },
        max(1, rounds - 1),
    )
    asset_equal = pq.read_table(out / "asset-old.parquet").equals(
        pq.read_table(out / "asset-new.parquet")
    )

    # The whole command, start-up included, on the file size the README quotes (600k records).
    process = bench_whole_process(min(records, 600_000), rounds=rounds, work_dir=out)
    peaks = {
        f"{mode}@{n}": peak_rss(mode, path, out / f"rss-{mode}-{n}.parquet")
        for n, path in ((small, small_file), (records, big_file))
        for mode in ("ours", "ours-dedupe", "verify-first", "arrow")
        if rss
    }
    return {
        "records": records,
        "small_records": small,
        "file_mib": big_file.stat().st_size / 2**20,
        "rows": rows,
        "wall": {name: t.wall for name, t in timings.items()},
        "cpu": {name: t.cpu for name, t in timings.items()},
        "speed_vs_arrow": timings["arrow"].wall / timings["ours"].wall,
        "speed_vs_arrow_cpu": timings["arrow"].cpu / timings["ours"].cpu,
        "speed_vs_arrow_dedupe": timings["arrow"].wall / timings["ours_dedupe"].wall,
        "speed_vs_arrow_verify_first": timings["arrow"].wall / timings["ours_verify_first"].wall,
        "process_records": process["records"],
        "process_wall": process["wall"],
        "speed_vs_arrow_process": process["speed_vs_arrow"],
        "small_wall": {name: t.wall for name, t in small_timings.items()},
        "small_rows": small_rows,
        "speed_vs_pandas": small_timings["pandas"].wall / small_timings["ours"].wall,
        "fast_equals_reference": fast.equals(reference),
        "job_parts": len(parts),
        "job_wall": {name: t.wall for name, t in job_timings.items()},
        "job_rows": job_rows,
        "speed_vs_old_asset_path": job_timings["old"].wall / job_timings["new"].wall,
        "asset_paths_equal": asset_equal,
        "peak_rss_mib": peaks,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "rss":
        _child(sys.argv[1:])
    else:
        raise SystemExit("usage: python -m crust_assets.bench.ingest_speed rss MODE PATH OUT")

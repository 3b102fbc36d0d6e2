"""Erasure: remove a person from the warehouse, and remember it so they are not bought again.

`crust-assets forget <profile_url>...` calls `forget()`. Each value is normalised exactly as the
pipeline normalises its input lists, so any form a user pastes finds the stored rows. The person
is removed from every partition of `enriched_contacts`, from `contacts_latest` and from the staged
"reused rows" files that a running plan would copy back into a partition; each file is rewritten
atomically with its contract schema (readers see the old file or the new one, never a mix).

The erasure is recorded in `<data>/erasures/erasures.parquet` (the URL, when, which partitions and
files held it: never the contact values). It is recorded *before* the files are rewritten: if the
rewrite is interrupted, re-planning is already refused and running `forget` again finishes it.
`contact_enrichment_batch` reads the record and does not submit an erased URL again unless
`CRUST_ALLOW_REENRICH_ERASED=true`. A plan that names the person and whose results are not loaded
yet is reported (`Erasure.unloaded_plans`; the CLI warns and exits 1): its enriched_contacts run
would write the person's row back, so `forget` has to be run again after it.

Every read, listing, rewrite and delete goes through `DataLayout`, so the data root may be local
or an object store (`s3://bucket/prefix`); the steps and their order are the same on both.

Leftovers of writers killed mid-write, which may hold anybody's rows:
- Local disk (and filesystems that write in place, such as sftp or hdfs, where an upload goes to a
  hidden name and is renamed): hidden temp files (`.<name>.tmp-<hex>`) beside the files. Those
  older than an hour are deleted; younger ones are reported (they may be a live write).
- Object stores: there are no half-written objects to find. A file is written to a local spool
  directory outside the data root and uploaded in one request, and an object exists only once its
  upload completed. The same scan runs (it finds nothing unless such files were copied into the
  bucket). What a killed writer can leave is outside this tool's reach: its spool directory
  (`crust-spool-*`) in its own machine's temp directory (gone with a pod's ephemeral disk), and,
  for files over 100 MiB, the parts of an unfinished multipart upload, never listed or readable
  as an object but stored until aborted: give the bucket a lifecycle rule that aborts incomplete
  multipart uploads after a day.

Times on an object store are whole seconds (S3 LastModified): a plan written in the same second as
its partition's load is reported as not loaded yet (a needless warning rather than a missed one).

Not touched, by design: the input lists (the user's own files), the plan files of past runs (they
name the URLs each job was sent, and the sensor relies on them), rejected_urls, and Dagster's event
log; none of them holds contact values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePath

import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.profile_urls import normalize_profile_url
from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

# A hidden temp file this old belongs to a writer that died (killed mid-write): it may hold
# anybody's contact rows, so `forget` deletes it. Younger ones may be a live write: reported.
STALE_TEMP_SECONDS = 3600
ERASURES_DIR = "erasures"
ERASURES_FILE = "erasures.parquet"
# contacts_latest carries the partition date as a column (same as assets.PARTITIONED_...).
LATEST_SCHEMA = ENRICHED_CONTACTS_SCHEMA.append(pa.field("date", pa.string()))
ERASURES_SCHEMA = pa.schema(
    [
        pa.field("profile_url", pa.string(), nullable=False),
        pa.field("erased_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("partitions", pa.list_(pa.string())),  # enriched_contacts dates that held it
        pa.field("files", pa.list_(pa.string())),  # files rewritten, relative to the data root
    ]
)


class ErasureInputError(ValueError):
    """Some values are not profile URLs: nothing was erased (the message lists them)."""


@dataclass
class Erasure:
    """What `forget` did for one person."""

    profile_url: str
    partitions: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rows_removed: int = 0
    # Plans naming this URL that enriched_contacts has not loaded yet: their run would write the
    # person's row again (its results are already bought), so `forget` must be run after it.
    unloaded_plans: list[str] = field(default_factory=list)


@dataclass
class ForgetReport:
    """What one `forget` call did."""

    erasures: list[Erasure]
    removed_temp_files: list[str] = field(default_factory=list)
    live_temp_files: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """False when something may still write the people back or still holds their data."""
        return not self.live_temp_files and not any(e.unloaded_plans for e in self.erasures)


def erasures_path(layout: DataLayout) -> PurePath:
    return layout.root / ERASURES_DIR / ERASURES_FILE


def normalise_urls(values: Iterable[str]) -> list[str]:
    """Canonical URLs, in order, without repeats; raises ErasureInputError listing bad values."""
    canonical: list[str] = []
    problems: list[str] = []
    for value in values:
        result = normalize_profile_url(value)
        if result.canonical is None:
            problems.append(f"{value[:200]!r}: {result.reason} ({result.message})")
        elif result.canonical not in canonical:
            canonical.append(result.canonical)
    if problems:
        raise ErasureInputError("not profile URLs, nothing erased:\n  " + "\n  ".join(problems))
    return canonical


def erased_urls(layout: DataLayout) -> set[str]:
    """Every profile URL ever erased under this data root (empty when nothing was)."""
    path = erasures_path(layout)
    if not layout.exists(path):
        return set()
    return set(layout.read_table(path, columns=["profile_url"]).column(0).to_pylist())


def forget(
    layout: DataLayout, values: Sequence[str], *, now: datetime | None = None
) -> ForgetReport:
    """Remove the people behind `values` from the warehouse and record the erasure."""
    urls = normalise_urls(values)
    if not urls:
        return ForgetReport([])
    now = now or datetime.now(timezone.utc)
    targets = pa.array(urls, pa.string())
    erasures = {url: Erasure(url) for url in urls}
    rewrites: list[tuple[PurePath, pa.Schema, pa.Table]] = []
    for path, schema, date in _files_holding_people(layout):
        table = layout.read_table(path, schema=schema)
        hit = pc.is_in(table.column("profile_url"), value_set=targets)
        found = table.filter(hit).column("profile_url").to_pylist()
        if not found:
            continue
        relative = str(path.relative_to(layout.root))
        for url in found:
            erasure = erasures[url]
            erasure.rows_removed += 1
            if relative not in erasure.files:
                erasure.files.append(relative)
            if date is not None and date not in erasure.partitions:
                erasure.partitions.append(date)
        rewrites.append((path, schema, table.filter(pc.invert(hit))))
    _record(layout, list(erasures.values()), now)  # first: an interrupted rewrite is resumable
    for path, schema, kept in rewrites:
        layout.write_batches(path, kept.to_batches(), schema)
    _note_unloaded_plans(layout, targets, erasures)
    report = ForgetReport(list(erasures.values()))
    _clean_temp_files(layout, now, report)
    return report


def _note_unloaded_plans(
    layout: DataLayout, targets: pa.Array, erasures: dict[str, Erasure]
) -> None:
    """Name, on each erasure, the plans not loaded yet whose run would write the person back."""
    for plan in _unloaded_plans(layout):
        planned = layout.read_table(plan, columns=["profile_url"]).column(0)
        for url in set(planned.filter(pc.is_in(planned, value_set=targets)).to_pylist()):
            erasures[url].unloaded_plans.append(str(plan.relative_to(layout.root)))


def _clean_temp_files(layout: DataLayout, now: datetime, report: ForgetReport) -> None:
    """Delete dead writers' temp files (over an hour old); report younger ones as live."""
    for temp in _temp_files(layout):
        relative = str(temp.relative_to(layout.root))
        age_seconds = now.timestamp() - layout.modified_ns(temp) / 1e9
        if age_seconds > STALE_TEMP_SECONDS:
            layout.remove(temp)
            report.removed_temp_files.append(relative)
        else:
            report.live_temp_files.append(relative)


def _temp_files(layout: DataLayout) -> list[PurePath]:
    """Hidden temp files (`storage.atomic_path`) where files with contact rows are written."""
    places = [
        (layout.warehouse_dataset("enriched_contacts"), "date=*/.*.tmp-*"),
        (layout.warehouse_dataset("contacts_latest"), ".*.tmp-*"),
        (_staging_plans(layout), "date=*/.*.reused.parquet.tmp-*"),
    ]
    return sorted(
        {path for directory, pattern in places for path in layout.find(directory, pattern)}
    )


def _staging_plans(layout: DataLayout) -> PurePath:
    return layout.root / "staging" / "contact_enrichment_batch"


def _unloaded_plans(layout: DataLayout) -> list[PurePath]:
    """Plan files newer than their partition's enriched_contacts file (or with none yet).

    Same-time counts as not loaded: with whole-second store times the order is unknown, and a
    needless warning is better than a missed one. Local times are in ns, so that never happens.
    """
    plans = []
    for plan in layout.find(_staging_plans(layout), "date=*/*.parquet"):
        if plan.name.endswith(".reused.parquet"):
            continue
        date = plan.parent.name.removeprefix("date=")
        loaded = layout.warehouse_partition("enriched_contacts", date)
        if not layout.exists(loaded) or layout.modified_ns(loaded) <= layout.modified_ns(plan):
            plans.append(plan)
    return plans


def _files_holding_people(layout: DataLayout) -> list[tuple[PurePath, pa.Schema, str | None]]:
    """(file, its contract schema, partition date or None) for every file with contact rows."""
    files: list[tuple[PurePath, pa.Schema, str | None]] = []
    enriched = layout.warehouse_dataset("enriched_contacts")
    for path in layout.find(enriched, "date=*/*.parquet"):
        files.append((path, ENRICHED_CONTACTS_SCHEMA, path.parent.name.removeprefix("date=")))
    for path in layout.find(layout.warehouse_dataset("contacts_latest"), "*.parquet"):
        files.append((path, LATEST_SCHEMA, None))
    for path in layout.find(_staging_plans(layout), "date=*/*.reused.parquet"):
        files.append((path, ENRICHED_CONTACTS_SCHEMA, None))
    return files


def _record(layout: DataLayout, erasures: list[Erasure], now: datetime) -> None:
    """Append to the erasure log (read, extend, rewrite atomically: it stays small)."""
    path = erasures_path(layout)
    rows = pa.Table.from_pylist(
        [
            {
                "profile_url": e.profile_url,
                "erased_at": now,
                "partitions": sorted(e.partitions),
                "files": sorted(e.files),
            }
            for e in erasures
        ],
        schema=ERASURES_SCHEMA,
    )
    if layout.exists(path):
        rows = pa.concat_tables([layout.read_table(path, schema=ERASURES_SCHEMA), rows])
    layout.write_batches(path, rows.to_batches(), ERASURES_SCHEMA)

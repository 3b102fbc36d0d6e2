"""Erasure: remove a person from the warehouse, and remember it so they are not bought again.

`crust-assets forget <profile_url>...` calls `forget()`. Each value is normalised exactly as the
pipeline normalises its input lists, so any form a user pastes finds the stored rows. The person
is removed from every partition of `enriched_contacts`, from `contacts_latest` and from the staged
"reused rows" files that a running plan would copy back into a partition; each file is rewritten
atomically with its contract schema (readers see the old file or the new one, never a mix). In
`enriched_list` (one row per input line) and its CSV the person's lines stay, blanked: status
`erased`, every contact value null. Every input line must stay in that table exactly once, and a
CRM that imports the file learns which of its records lost their data; the CSV is made again from
the rewritten Parquet file (and a CSV that no longer matches its Parquet file is rewritten too).

The erasure log. Each `forget` run writes one new, immutable file
`<data>/erasures/runs/<time>-<random>.parquet` (the URLs, when, which partitions and files held
them: never the contact values), and readers take the union of all of them plus the single
`<data>/erasures/erasures.parquet` that older versions appended to (still read, never written).
One file per run means two runs never overwrite each other's record, with or without a lock and
on any store. Older pipelines read only the single file, so the pipeline must be upgraded before
(or with) the CLI that runs `forget` (README, "Personal data"); the old file is not appended to,
since only a local root has a lock to make that safe. It is written *before* the files are
rewritten: if the rewrite is interrupted, re-planning is already refused and running `forget`
again finishes it. `contact_enrichment_batch` does not plan an erased URL again, and the submitter
leaves it out of a job planned before the erasure and not sent yet, unless
`CRUST_ALLOW_REENRICH_ERASED=true`. A plan that names the person
and whose results are not loaded yet is only noted (`Erasure.unloaded_plans`, printed as a note):
its jobs not sent yet leave the person out, and its load drops their row as it publishes (the
fence below), so it does not make the erasure incomplete. What cannot be undone is a job sent
before the erasure: that person was already bought.

Why a race cannot undo an erasure: a writer of contact rows (an `enriched_contacts` load,
`contacts_latest`, `enriched_list` with its CSV, a plan's reused rows and its URLs to submit or
borrow) reads the warehouse
long before it publishes. So every writer passes its output through the *erasure fence* as it
publishes (`publish_contacts`, `erasure_fence`): it reads the erasure log at the last moment,
drops the people it names from what it is about to publish, and publishes.
- Local root: the fence is an exclusive `flock` on `<data>/erasures/lock`, held by each writer
  for its filter-and-rename only (the slow work happens before), and by `forget` for its record
  and rewrite. A writer is therefore wholly before a `forget` (whose rewrite then sees and cleans
  its file) or wholly after it (and reads the record). `forget` runs are serialised too. A
  `forget` that cannot enter within the lock timeout has done nothing (`ErasureNotStarted`).
- Object store (no lock exists): the fence is time-based. A writer re-reads the log right before
  its upload; `publish_contacts` (the large files) reads it again right after, and if someone was
  erased in between it scrubs and uploads again (a plan's small files are left to `forget`'s
  verify pass). `forget` records first, rewrites, then waits `CRUST_ERASURE_SETTLE_SECONDS`
  (default 15) so that every writer that read the log before the record has finished its upload,
  and verifies.
  This holds as long as a writer's fenced step (log read to upload done) is shorter than the
  settle time; a slower writer still cleans its own file when it re-reads the log afterwards.
  On either store `forget` re-reads every file after rewriting and checks that none of the erased
  URLs remain; if one does, it rewrites again (up to `CRUST_ERASURE_VERIFY_ROUNDS`, default 5)
  and, if it still cannot, says so: `ForgetReport.unverified` names the files (CLI exit 1).
  One limit on an object store: a load that publishes a file while `forget` rewrites that same
  file can lose to `forget`'s copy (the older rows minus the person); run the load again.

Wrong roots: a root with no `warehouse/` is refused (`ErasureRefused`): a typo must not report
"0 rows removed" and start an erasure log nobody reads; a new root is accepted with
`new_root=True` (`--new-root`). Files that are symbolic links are refused, naming the file and
its target: an atomic rewrite would replace the link by a plain file and leave the person in the
target. Nothing is recorded or rewritten when a refusal is raised.

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
its partition's load is reported as not loaded yet (a needless note rather than a missed one).

Not touched, by design: the input lists (the user's own files) and their per-line staging copy
(`staging/contact_url_list/date=*/lines.parquet`: the user's own cells, read back into
`enriched_list`, which marks erased people from the log when it is built), the plan files of past
runs (they name the URLs each job was sent, and the sensor relies on them), rejected_urls, and
Dagster's event log; none of them holds contact values.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crust_assets.profile_urls import normalize_profile_url
from crust_assets.storage import (
    DataLayout,
    LockTimeout,
    PlanFiles,
    ensure_dir,
    file_lock,
    write_parquet_atomic,
)
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

# A hidden temp file this old belongs to a writer that died (killed mid-write): it may hold
# anybody's contact rows, so `forget` deletes it. Younger ones may be a live write: reported.
STALE_TEMP_SECONDS = 3600
ERASURES_DIR = "erasures"
ERASURES_FILE = "erasures.parquet"  # the log of older versions: read, never written
RUNS_DIR = "runs"  # one immutable file per forget run
LOCK_FILE = "lock"
READ_ATTEMPTS = 5  # reads of a file that writers keep replacing while it is read
LOCK_TIMEOUT_ENV = "CRUST_ERASURE_LOCK_TIMEOUT_SECONDS"
SETTLE_ENV = "CRUST_ERASURE_SETTLE_SECONDS"
ROUNDS_ENV = "CRUST_ERASURE_VERIFY_ROUNDS"
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
# Called as hook(writer, moment) by every writer of contact rows, at "staged" (its rows are read
# and written to a private file, the fence is not entered yet) and at "fenced" (it holds the
# fence, has re-read the log, and publishes next); and by `forget` (writer FORGET) at "verifying",
# before each verify pass. Empty in production; it exists so that tests can make a race happen at
# exactly the instant it needs (run a real `forget` there), instead of hoping for it.
publish_hooks: list[Callable[[str, str], None]] = []
FORGET = "crust-assets forget"  # how forget names itself to the fence and the hooks


class ErasureInputError(ValueError):
    """Some values are not profile URLs: nothing was erased (the message lists them)."""


class ErasureRefused(ValueError):
    """The data root is not one to erase in (no warehouse/, a symlinked file): nothing done."""


class ErasureNotStarted(LockTimeout):
    """Writers held the fence past the lock timeout before `forget` entered it: nothing was
    erased or recorded (a timeout later, in a verify pass, is a plain LockTimeout)."""


@dataclass(frozen=True)
class ErasureSettings:
    """How long the fence may be waited for, and how `forget` verifies on an object store."""

    lock_timeout_seconds: float = 600.0  # waiting for the local lock, then a clear error
    settle_seconds: float = 15.0  # object store: longest fenced step of a writer
    verify_rounds: int = 5  # verify passes (each rewriting what it found) before giving up

    @classmethod
    def from_env(cls) -> ErasureSettings:
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name, "").strip()
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {raw!r}")
            return value

        rounds = number(ROUNDS_ENV, cls.verify_rounds)
        if rounds < 1 or rounds != int(rounds):
            raise ValueError(f"{ROUNDS_ENV} must be a whole number of at least 1")
        lock_timeout = number(LOCK_TIMEOUT_ENV, cls.lock_timeout_seconds)
        return cls(lock_timeout, number(SETTLE_ENV, cls.settle_seconds), int(rounds))


@dataclass
class Erasure:
    """What `forget` did for one person."""

    profile_url: str
    partitions: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rows_removed: int = 0
    # Plans naming this URL that enriched_contacts has not loaded yet. Noted only: their jobs
    # not sent yet leave the person out and their load drops the row (see module doc).
    unloaded_plans: list[str] = field(default_factory=list)


@dataclass
class ForgetReport:
    """What one `forget` call did."""

    erasures: list[Erasure]
    removed_temp_files: list[str] = field(default_factory=list)
    live_temp_files: list[str] = field(default_factory=list)
    record: str = ""  # the erasure log file this run wrote, relative to the data root
    verify_passes: int = 0
    # file -> erased URLs still in it after the last verify pass: the erasure is NOT complete
    unverified: dict[str, list[str]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """False when something may still hold the people's data (an unloaded plan does not:
        its load drops them as it publishes)."""
        return not self.live_temp_files and not self.unverified


def erasures_path(layout: DataLayout) -> PurePath:
    """The erasure log of older versions (one file, appended to by rewriting): read only."""
    return layout.root / ERASURES_DIR / ERASURES_FILE


def erasure_runs_dir(layout: DataLayout) -> PurePath:
    return layout.root / ERASURES_DIR / RUNS_DIR


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


def erasure_log(layout: DataLayout) -> pa.Table:
    """Every erasure recorded under this root: the old single file, then each run's, in order."""
    paths = [erasures_path(layout)] if layout.exists(erasures_path(layout)) else []
    paths += layout.find(erasure_runs_dir(layout), "*.parquet")  # named by time: sorted
    tables = [layout.read_table(path, schema=ERASURES_SCHEMA) for path in paths]
    return pa.concat_tables(tables) if tables else ERASURES_SCHEMA.empty_table()


def erased_urls(layout: DataLayout) -> set[str]:
    """Every profile URL ever erased under this data root (empty when nothing was)."""
    return set(erasure_log(layout).column("profile_url").to_pylist())


# ---- the fence: what writers of contact rows go through ------------------------------------------
def _pause(writer: str, moment: str) -> None:
    for hook in list(publish_hooks):
        hook(writer, moment)


@contextlib.contextmanager
def erasure_fence(
    layout: DataLayout, writer: str, settings: ErasureSettings | None = None
) -> Iterator[frozenset[str]]:
    """Enter the fence (the local lock; nothing to hold on an object store) and yield the erased
    URLs as of now. Publish inside the block, and only what is not erased."""
    settings = settings or ErasureSettings.from_env()
    _pause(writer, "staged")
    if layout.is_local:
        lock = file_lock(
            Path(layout.root) / ERASURES_DIR / LOCK_FILE,
            timeout=settings.lock_timeout_seconds,
            holder=writer,
        )
    else:
        lock = contextlib.nullcontext()
    with lock:
        erased = frozenset(erased_urls(layout))
        _pause(writer, "fenced")
        yield erased


@dataclass(frozen=True)
class Published:
    rows: int  # rows in the published file
    dropped: int  # rows of people erased while the writer worked, dropped at publish time


def publish_contacts(
    layout: DataLayout,
    target: PurePath,
    write: Callable[[Path], int],
    writer: str,
    settings: ErasureSettings | None = None,
) -> Published:
    """Publish a file of contact rows through the erasure fence.

    `write` fills a private local Parquet file (with `profile_url`) and returns its row count: the
    slow part, outside the fence. Inside it, the people erased by then are dropped from that file
    and it is renamed or uploaded. On an object store the log is read again after the upload and
    the file scrubbed and uploaded again if someone was erased meanwhile (see the module doc).
    """
    settings = settings or ErasureSettings.from_env()
    with layout.staged(target) as staged:
        rows = write(staged.path)
        with erasure_fence(layout, writer, settings) as erased:
            dropped = scrub_file(staged.path, erased)
            staged.commit()
        for _ in range(0 if layout.is_local else settings.verify_rounds):
            later = frozenset(erased_urls(layout))
            if later <= erased:
                break
            erased = later
            again = scrub_file(staged.path, erased)
            if again:
                dropped += again
                staged.commit()
    return Published(rows - dropped, dropped)


def scrub_file(path: Path, erased: frozenset[str] | set[str]) -> int:
    """Drop the rows of `erased` people from a local Parquet file; returns how many."""
    if not erased:
        return 0
    targets = pa.array(sorted(erased), pa.string())
    hit = pc.is_in(pq.read_table(path, columns=["profile_url"]).column(0), value_set=targets)
    dropped = pc.sum(hit).as_py() or 0
    if dropped:
        table = pq.read_table(path)
        kept = table.filter(pc.invert(hit))
        write_parquet_atomic(path, kept.to_batches(), table.schema)
    return dropped


# ---- forget -------------------------------------------------------------------------------------
@dataclass
class _Rewrite:
    path: PurePath
    schema: pa.Schema
    date: str | None
    found: list[str]
    kept: pa.Table
    csv: PurePath | None = None  # an enriched_list CSV made from this file, rewritten with it


def forget(
    layout: DataLayout,
    values: Sequence[str],
    *,
    now: datetime | None = None,
    settings: ErasureSettings | None = None,
    new_root: bool = False,
) -> ForgetReport:
    """Remove the people behind `values` from the warehouse, record it, and verify it."""
    settings = settings or ErasureSettings.from_env()
    urls = normalise_urls(values)
    check_root(layout, new_root=new_root)
    if not urls:
        return ForgetReport([])
    now = now or datetime.now(timezone.utc)
    targets = pa.array(urls, pa.string())
    erasures = {url: Erasure(url) for url in urls}
    report = ForgetReport(list(erasures.values()))
    with contextlib.ExitStack() as fence:
        try:
            fence.enter_context(erasure_fence(layout, FORGET, settings))
        except LockTimeout as error:
            raise ErasureNotStarted(
                f"{error}. Nothing was erased or recorded; run forget again when that writer is "
                "done (or with a longer --lock-timeout)"
            ) from None
        rewrites = _scan(layout, targets)
        _count(layout, rewrites, erasures)
        report.record = _record(layout, report.erasures, now)  # first: a rewrite is resumable
        _write(layout, rewrites)
    _verify(layout, targets, erasures, settings, report)
    _note_unloaded_plans(layout, targets, erasures)
    _clean_temp_files_fenced(layout, now, report, settings)
    return report


def check_root(layout: DataLayout, *, new_root: bool = False) -> None:
    """Refuse a root the pipeline never wrote (a typo) and symlinked data files; see module doc."""
    warehouse = layout.warehouse_dir
    if not layout.is_dir(warehouse):
        if not new_root:
            raise ErasureRefused(
                f"{layout.url(layout.root)} has no warehouse/ directory, so it is not a data "
                "root the pipeline has written to (a typo in --data-dir or CRUST_DATA_DIR?). "
                "Nothing was erased or recorded. To record erasures in a root the pipeline has "
                "not run in yet, pass --new-root."
            )
        if layout.is_local:
            ensure_dir(Path(warehouse))  # owner-only, like every directory the pipeline makes
    links = _symlinked_files(layout)
    if links:
        named = "\n  ".join(f"{path} -> {target}" for path, target in links)
        raise ErasureRefused(
            "these data files are symbolic links; rewriting one would replace the link with a "
            "plain file and leave the person in its target. Nothing was erased or recorded. "
            f"Replace each link with the file it points to, then run forget again:\n  {named}"
        )


def _symlinked_files(layout: DataLayout) -> list[tuple[str, str]]:
    if not layout.is_local:
        return []  # object stores have no links
    found = []
    lists = Path(layout.warehouse_dataset("enriched_list"))
    places = [(d, p) for d, p, _schema in _holding_places(layout)]
    places += [(lists, "date=*/*.parquet"), (lists, "date=*/*.enriched.csv")]
    for directory, pattern in places:
        for path in sorted(Path(directory).glob(pattern)):
            if path.is_symlink():
                found.append((str(path.relative_to(layout.root)), os.readlink(path)))
    return found


def _scan(layout: DataLayout, targets: pa.Array) -> list[_Rewrite]:
    """Every file holding any of `targets`, with its rows without them."""
    rewrites = []
    for path, schema, date in _files_holding_people(layout):
        table = _read_whole(layout, path, schema)
        if table is None:
            continue
        hit = pc.is_in(table.column("profile_url"), value_set=targets)
        found = table.filter(hit).column("profile_url").to_pylist()
        if found:
            rewrites.append(_Rewrite(path, schema, date, found, table.filter(pc.invert(hit))))
    return rewrites + _scan_lists(layout, targets)


def _scan_lists(layout: DataLayout, targets: pa.Array) -> list[_Rewrite]:
    """enriched_list files holding any of `targets` with contact values, each with its CSV.

    Their lines stay (every input line is in the file once, and the CRM learns which records
    lost their data): the person's lines are blanked and marked `erased` instead. A CSV that no
    longer matches its Parquet file (a race wrote one and not the other) is rewritten too.
    """
    from crust_assets.enriched_list import csv_bytes, mark_erased

    rewrites = []
    for path in layout.find(layout.warehouse_dataset("enriched_list"), "date=*/*.parquet"):
        table = _read_whole(layout, path, None)
        if table is None:
            continue
        kept, found = mark_erased(table, targets.to_pylist())
        holds = pc.any(pc.is_in(kept.column("profile_url"), value_set=targets)).as_py()
        csv = next(iter(layout.find(path.parent, "*.enriched.csv")), None) if holds else None
        if csv is not None and not found and layout.read_bytes(csv) == csv_bytes(kept):
            csv = None  # the CSV matches its blanked Parquet file: nothing to do
        if found or csv is not None:
            date = path.parent.name.removeprefix("date=")
            rewrites.append(_Rewrite(path, kept.schema, date, found, kept, csv))
    return rewrites


def _read_whole(layout: DataLayout, path: PurePath, schema: pa.Schema | None) -> pa.Table | None:
    """One version of the file, whole: None if it is gone. A writer may replace it while it is
    read (s3fs then raises FileExpired, an OSError, rather than mix two versions): read again."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return layout.read_table(path, schema=schema)
        except FileNotFoundError:
            return None
        except OSError:
            if attempt == READ_ATTEMPTS - 1 or not layout.exists(path):
                raise
            time.sleep(0.1 * (attempt + 1))
    return None


def _count(layout: DataLayout, rewrites: list[_Rewrite], erasures: dict[str, Erasure]) -> None:
    """Add what `rewrites` remove to each erasure. A file already counted for a person (a verify
    pass found them put back in it) adds no rows: each row is counted once, not once a round."""
    for rewrite in rewrites:
        relative = [str(rewrite.path.relative_to(layout.root))]
        if rewrite.csv is not None:
            relative.append(str(rewrite.csv.relative_to(layout.root)))
        counted = {url for url in rewrite.found if relative[0] in erasures[url].files}
        for url in rewrite.found:
            erasure = erasures[url]
            if url not in counted:
                erasure.rows_removed += 1
            erasure.files.extend(r for r in relative if r not in erasure.files)
            if rewrite.date is not None and rewrite.date not in erasure.partitions:
                erasure.partitions.append(rewrite.date)


def _write(layout: DataLayout, rewrites: list[_Rewrite]) -> None:
    for rewrite in rewrites:
        layout.write_batches(rewrite.path, rewrite.kept.to_batches(), rewrite.schema)
        if rewrite.csv is not None:
            from crust_assets.enriched_list import csv_bytes

            layout.write_bytes(rewrite.csv, csv_bytes(rewrite.kept))


def _verify(
    layout: DataLayout,
    targets: pa.Array,
    erasures: dict[str, Erasure],
    settings: ErasureSettings,
    report: ForgetReport,
) -> None:
    """Re-read every file until none holds the people, rewriting what a race put back."""
    for attempt in range(1, settings.verify_rounds + 1):
        if not layout.is_local:
            time.sleep(settings.settle_seconds)  # writers that read the log before our record
        _pause(FORGET, "verifying")
        report.verify_passes = attempt
        dirty = _scan(layout, targets)
        if not dirty:
            report.unverified = {}
            return
        report.unverified = {str(r.path.relative_to(layout.root)): r.found for r in dirty}
        if attempt == settings.verify_rounds:
            return
        with erasure_fence(layout, FORGET, settings):
            again = _scan(layout, targets)
            _count(layout, again, erasures)
            _write(layout, again)


def _note_unloaded_plans(
    layout: DataLayout, targets: pa.Array, erasures: dict[str, Erasure]
) -> None:
    """Name, on each erasure, the plans not loaded yet that name the person (a note)."""
    for plan in _unloaded_plans(layout):
        planned = layout.read_table(plan, columns=["profile_url"]).column(0)
        for url in set(planned.filter(pc.is_in(planned, value_set=targets)).to_pylist()):
            erasures[url].unloaded_plans.append(str(plan.relative_to(layout.root)))


def _clean_temp_files_fenced(
    layout: DataLayout, now: datetime, report: ForgetReport, settings: ErasureSettings
) -> None:
    """Scan for temp files inside the fence: another `forget` rewriting files at the same moment
    holds it, so its own short-lived temp files are never taken for a live writer's."""
    try:
        with erasure_fence(layout, FORGET, settings):
            _clean_temp_files(layout, now, report)
    except LockTimeout:  # the erasure is recorded and verified; report what is there
        _clean_temp_files(layout, now, report)


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
        (layout.warehouse_dataset("enriched_list"), "date=*/.*.tmp-*"),
        (layout.warehouse_dataset("contacts_latest"), ".*.tmp-*"),
        (layout.plans_dir, PlanFiles.REUSED_TEMP_GLOB),
    ]
    return sorted(
        {path for directory, pattern in places for path in layout.find(directory, pattern)}
    )


def _unloaded_plans(layout: DataLayout) -> list[PurePath]:
    """Plan files newer than their partition's enriched_contacts file (or with none yet).

    Same-time counts as not loaded: with whole-second store times the order is unknown, and a
    needless note is better than a missed one. Local times are in ns, so that never happens.
    """
    plans = []
    for plan in layout.find(layout.plans_dir, PlanFiles.ALL_GLOB):
        if PlanFiles.is_reused(plan):  # contact rows, not URLs; a borrowed file counts
            continue
        date = plan.parent.name.removeprefix("date=")
        loaded = layout.warehouse_partition("enriched_contacts", date)
        if not layout.exists(loaded) or layout.modified_ns(loaded) <= layout.modified_ns(plan):
            plans.append(plan)
    return plans


def _holding_places(layout: DataLayout) -> list[tuple[PurePath, str, pa.Schema]]:
    """(directory, pattern, contract schema) of every kind of file with contact rows."""
    return [
        (
            layout.warehouse_dataset("enriched_contacts"),
            "date=*/*.parquet",
            ENRICHED_CONTACTS_SCHEMA,
        ),
        (layout.warehouse_dataset("contacts_latest"), "*.parquet", LATEST_SCHEMA),
        (layout.plans_dir, PlanFiles.REUSED_GLOB, ENRICHED_CONTACTS_SCHEMA),
    ]


def _files_holding_people(layout: DataLayout) -> list[tuple[PurePath, pa.Schema, str | None]]:
    """(file, its contract schema, partition date or None) for every file with contact rows."""
    files: list[tuple[PurePath, pa.Schema, str | None]] = []
    for directory, pattern, schema in _holding_places(layout):
        partitioned = directory == layout.warehouse_dataset("enriched_contacts")
        for path in layout.find(directory, pattern):
            date = path.parent.name.removeprefix("date=") if partitioned else None
            files.append((path, schema, date))
    return files


def _record(layout: DataLayout, erasures: list[Erasure], now: datetime) -> str:
    """Write this run's erasures to a new file of its own (never rewritten: see module doc)."""
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
    name = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}.parquet"
    path = erasure_runs_dir(layout) / name
    layout.write_batches(path, rows.to_batches(), ERASURES_SCHEMA)
    return str(path.relative_to(layout.root))

"""Where the pipeline's files live, and how they are written so that none is ever seen half-done.

Every Parquet file is written to a hidden temporary name in its final directory, flushed to disk,
then renamed over the target: readers see the previous version or the new one, never a mix.
Hidden names (leading dot, no `.parquet` suffix) are skipped by pyarrow, pandas, DuckDB globs and
Spark alike, so a crashed writer's leftovers never show up in a query.

The data root may also be an fsspec URL (`s3://bucket/prefix`, credentials and endpoint from the
usual AWS env vars). An object store has no rename, so there the file is written to a local spool
file *outside* the data root, then uploaded in one request (a PUT, or a multipart upload above
100 MiB): the object appears only when the upload completes, and a failed write uploads nothing.
Every read, listing and existence check goes through `DataLayout`, which knows the filesystem.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    # Imported where used: pyarrow.dataset imports pandas and fsspec imports asyncio, which
    # `crust-assets ingest` (a process of its own that only writes Parquet through
    # `write_parquet_atomic`) would otherwise pay for at start-up.
    import fsspec
    import pyarrow.dataset as ds

DEFAULT_DIR_MODE = 0o700
DEFAULT_FILE_MODE = 0o600
# Octal strings (e.g. "0640"): the modes of the files and directories the pipeline creates.
FILE_MODE_ENV = "CRUST_FILE_MODE"
DIR_MODE_ENV = "CRUST_DIR_MODE"
PARTITION_FILE = "data.parquet"
PLANS_DATASET = "contact_enrichment_batch"  # the staging directory of the plans
T = TypeVar("T")


def _mode_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw, 8)
    except ValueError:
        raise ValueError(f"{name} must be an octal mode such as 0600, got {raw!r}") from None
    if not 0 <= value <= 0o777:
        raise ValueError(f"{name} must be a permission mode between 0000 and 0777, got {raw!r}")
    return value


def configured_file_mode() -> int:
    """Mode of written files: env CRUST_FILE_MODE, default 0600 (owner only: personal data)."""
    return _mode_from_env(FILE_MODE_ENV, DEFAULT_FILE_MODE)


def configured_dir_mode() -> int:
    """Mode of created directories: env CRUST_DIR_MODE, default 0700 (owner only)."""
    return _mode_from_env(DIR_MODE_ENV, DEFAULT_DIR_MODE)


@dataclass(frozen=True)
class PlanFiles:
    """Every file one plan writes, named in one place.

    The names are fixed, since existing data roots hold them: `<plan_id>.parquet` (the URLs to
    submit, one row group per job; events record its path), `<plan_id>.reused.parquet` (rows
    copied from loaded partitions) and `<plan_id>.borrowed.parquet` (URLs other plans are
    buying). The globs are relative to `DataLayout.plans_dir`, where `forget` looks for them.
    """

    submit: PurePath
    reused: PurePath
    borrowed: PurePath

    REUSED_SUFFIX: ClassVar[str] = ".reused.parquet"
    BORROWED_SUFFIX: ClassVar[str] = ".borrowed.parquet"
    #: every plan's files of every day, and the reused-rows files alone (contact data)
    ALL_GLOB: ClassVar[str] = "date=*/*.parquet"
    REUSED_GLOB: ClassVar[str] = "date=*/*" + REUSED_SUFFIX
    #: the hidden temp file a reused-rows file is written through (`atomic_path`)
    REUSED_TEMP_GLOB: ClassVar[str] = "date=*/.*" + REUSED_SUFFIX + ".tmp-*"

    @classmethod
    def of(cls, submit: PurePath) -> PlanFiles:
        """The files of the plan whose URLs-to-submit file is `submit`."""
        stem = submit.name.removesuffix(".parquet")
        return cls(
            submit,
            submit.with_name(stem + cls.REUSED_SUFFIX),
            submit.with_name(stem + cls.BORROWED_SUFFIX),
        )

    @classmethod
    def is_reused(cls, path: PurePath) -> bool:
        return path.name.endswith(cls.REUSED_SUFFIX)


def _local_fs() -> type[fsspec.AbstractFileSystem]:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem


@dataclass(frozen=True)
class DataLayout:
    """The data root's layout (design.md: input/, warehouse/), plus the pipeline's own staging.

    `root` is a `Path` on the local disk (read and written exactly as before), or, with a remote
    `fs`, a `PurePosixPath` in that filesystem's own terms (`bucket/prefix`): a pure path has no
    I/O methods, so nothing can reach a remote root except through this class's methods.
    """

    root: PurePath
    fs: fsspec.AbstractFileSystem = field(default_factory=lambda: _local_fs()(), compare=False)

    @classmethod
    def from_location(cls, location: str | os.PathLike[str]) -> DataLayout:
        """A local directory, or any fsspec URL (`s3://bucket/prefix`, `memory://...`)."""
        text = os.fspath(location)
        if "://" not in text:
            return cls(Path(text).expanduser().resolve())
        import fsspec

        fs, path = fsspec.core.url_to_fs(text)
        if isinstance(fs, _local_fs()):
            return cls(Path(path).resolve())
        return cls(PurePosixPath(path.rstrip("/") or "/"), fs)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, _local_fs())

    @property
    def input_dir(self) -> PurePath:
        return self.root / "input"

    def input_file(self, date: str) -> PurePath:
        return self.input_dir / f"{date}.csv"

    @property
    def warehouse_dir(self) -> PurePath:
        return self.root / "warehouse"

    def warehouse_dataset(self, dataset: str) -> PurePath:
        return self.warehouse_dir / dataset

    def warehouse_partition(self, dataset: str, date: str) -> PurePath:
        return self.warehouse_dataset(dataset) / f"date={date}" / PARTITION_FILE

    def staging_partition(self, dataset: str, date: str, name: str = PARTITION_FILE) -> PurePath:
        return self.root / "staging" / dataset / f"date={date}" / name

    @property
    def plans_dir(self) -> PurePath:
        return self.root / "staging" / PLANS_DATASET

    def plan_files(self, date: str, plan_id: str) -> PlanFiles:
        """The files a new plan of `date` writes."""
        return PlanFiles.of(self.staging_partition(PLANS_DATASET, date, f"{plan_id}.parquet"))

    def plan_files_at(self, plan_path: str) -> PlanFiles:
        """The files of a recorded plan: `plan_path` is relative to the root, as events hold it."""
        return PlanFiles.of(self.root / plan_path)

    # ---- the filesystem ------------------------------------------------------------------
    def url(self, path: PurePath) -> str:
        """What a person (or DuckDB) uses to name `path`: the local path, or `s3://bucket/...`."""
        return str(path) if self.is_local else self.fs.unstrip_protocol(str(path))

    @cached_property
    def arrow_fs(self) -> pafs.FileSystem | None:
        """The filesystem pyarrow reads through: None (its own local one) or the fsspec one."""
        return None if self.is_local else pafs.PyFileSystem(pafs.FSSpecHandler(self.fs))

    def _fresh(self, path: PurePath) -> str:
        # fsspec caches listings per process; another process may have written since.
        self.fs.invalidate_cache(str(path))
        return str(path)

    def exists(self, path: PurePath) -> bool:
        return Path(path).exists() if self.is_local else self.fs.exists(self._fresh(path))

    def is_file(self, path: PurePath) -> bool:
        return Path(path).is_file() if self.is_local else self.fs.isfile(self._fresh(path))

    def is_dir(self, path: PurePath) -> bool:
        return Path(path).is_dir() if self.is_local else self.fs.isdir(self._fresh(path))

    def glob(self, directory: PurePath, pattern: str) -> list[str]:
        """Names (as `url` gives them) of the files matching `pattern` under `directory`."""
        if self.is_local:
            return sorted(str(p) for p in Path(directory).glob(pattern) if p.is_file())
        found = self.fs.glob(self._fresh(directory) + "/" + pattern, detail=True)
        return sorted(self.fs.unstrip_protocol(n) for n, i in found.items() if i["type"] == "file")

    def list_files(self, directory: PurePath) -> list[tuple[str, int]]:
        """(name, modification time in ns) of each file directly in `directory`, by name.

        The time comes from the store (S3: LastModified, whole seconds); [] when it is absent.
        """
        if self.is_local:
            if not Path(directory).is_dir():
                return []
            entries = [(e.name, e) for e in os.scandir(directory) if e.is_file()]
            return sorted((name, e.stat().st_mtime_ns) for name, e in entries)
        try:
            entries = self.fs.ls(self._fresh(directory), detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            (PurePosixPath(e["name"]).name, self._mtime_ns(e))
            for e in entries
            if e.get("type") == "file"
        )

    def _mtime_ns(self, entry: dict[str, Any]) -> int:
        for key in ("LastModified", "last_modified", "mtime", "updated", "created"):
            value = entry.get(key)
            if isinstance(value, str) and value:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if isinstance(value, datetime):
                return int(value.timestamp() * 1_000_000) * 1000
            if isinstance(value, int | float) and value:
                return int(value * 1_000_000) * 1000
        return int(self.fs.modified(entry["name"]).timestamp() * 1_000_000) * 1000

    def read_bytes(self, path: PurePath) -> bytes:
        return Path(path).read_bytes() if self.is_local else self.fs.cat_file(str(path))

    def size(self, path: PurePath) -> int:
        """Bytes in `path` (a stat, or the store's metadata): known before a byte is read."""
        return Path(path).stat().st_size if self.is_local else int(self.fs.size(self._fresh(path)))

    def open_binary(self, path: PurePath) -> Any:
        """A seekable binary file object, to read a large file piece by piece (ranged GETs)."""
        return open(path, "rb") if self.is_local else self.fs.open(str(path), "rb")

    def find(self, directory: PurePath, pattern: str) -> list[PurePath]:
        """Files matching `pattern` under `directory`, as layout paths (unlike `glob`'s URLs).

        For code that goes on to read, rewrite or remove them through this class; hidden names
        match too (`.*.tmp-*`), as they do with pathlib.
        """
        if self.is_local:
            return sorted(p for p in Path(directory).glob(pattern) if p.is_file())
        found = self.fs.glob(self._fresh(directory) + "/" + pattern, detail=True)
        return sorted(PurePosixPath(n) for n, i in found.items() if i["type"] == "file")

    def modified_ns(self, path: PurePath) -> int:
        """Modification time in ns: exact locally; on S3 LastModified, whole seconds."""
        if self.is_local:
            return Path(path).stat().st_mtime_ns
        return self._mtime_ns(self.fs.info(self._fresh(path)))

    def remove(self, path: PurePath) -> None:
        """Delete one file; one that is already gone is fine (another reader took it)."""
        if self.is_local:
            Path(path).unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(str(path))
        self.fs.invalidate_cache(str(path))

    def write_bytes(self, target: PurePath, data: bytes) -> None:
        """Write a small file whole, so a reader never sees part of it (see `publish`).

        Locally the temp file is created owner-only (CRUST_FILE_MODE) before any byte is written,
        and its directories get CRUST_DIR_MODE; on an object store it is one upload.
        """
        if self.is_local:
            with atomic_path(Path(target), create=True) as temp:
                temp.write_bytes(data)  # reuses the file created with the final mode
            return
        self.publish(target, lambda local: local.write_bytes(data))

    # ---- Parquet through the filesystem --------------------------------------------------
    def _source(self, path: PurePath) -> str | Path:
        # Remote: forget any cached listing first. s3fs pins a read to the ETag it last listed,
        # so a file another process rewrote since would fail to read (FileExpired).
        return Path(path) if self.is_local else self._fresh(path)

    def read_table(self, path: PurePath, **kwargs: Any) -> pa.Table:
        return pq.read_table(self._source(path), filesystem=self.arrow_fs, **kwargs)

    def read_schema(self, path: PurePath) -> pa.Schema:
        return pq.read_schema(self._source(path), filesystem=self.arrow_fs)

    def parquet_file(self, path: PurePath) -> pq.ParquetFile:
        """Random access (footer, then one row group): on S3 these are ranged GETs."""
        return pq.ParquetFile(self._source(path), filesystem=self.arrow_fs)

    def dataset(self, path: PurePath, **kwargs: Any) -> ds.Dataset:
        import pyarrow.dataset as ds

        return ds.dataset(self._source(path), filesystem=self.arrow_fs, **kwargs)

    def write_table(self, target: PurePath, table: pa.Table, **kwargs: Any) -> int:
        """`write_table_atomic`, on whatever filesystem the root is on."""
        if self.is_local:
            return write_table_atomic(Path(target), table, **kwargs)
        return self.publish(target, lambda local: write_table_atomic(local, table, **kwargs))

    def write_batches(
        self,
        target: PurePath,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
        *,
        row_group_size: int | None = None,
    ) -> int:
        """`write_parquet_atomic`, on whatever filesystem the root is on."""
        if self.is_local:
            return write_parquet_atomic(
                Path(target), batches, schema, row_group_size=row_group_size
            )
        return self.publish(
            target,
            lambda local: write_parquet_atomic(
                local, batches, schema, row_group_size=row_group_size
            ),
        )

    def publish(self, target: PurePath, write: Callable[[Path], T]) -> T:
        """Let `write` fill a local file, then make it `target` in one step (see module doc).

        Local root: `write` gets a hidden temp path beside the target (fsync + rename). Remote:
        `write` gets a path in a private local spool directory, outside the data root, and the
        finished file is uploaded; on an error nothing is uploaded.
        """
        with self.staged(target) as staged:
            result = write(staged.path)
            staged.commit()
        return result

    @contextlib.contextmanager
    def staged(self, target: PurePath) -> Iterator[StagedFile]:
        """`publish` in two steps (`publish` is this with nothing between them): fill `path`,
        look at it (or rewrite it), then `commit()`.

        For writers that must decide at the last moment what goes out (the erasure fence in
        erasure.py): the slow write happens first, and only the check and the rename (or the
        upload) happen while the fence is held. Leaving the block without `commit()` publishes
        nothing, and the local file is removed either way.
        """
        if self.is_local:
            final = Path(target)
            ensure_dir(final.parent)
            temp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
            try:
                yield StagedFile(temp, lambda: _replace(temp, final, configured_file_mode()))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
            return
        with tempfile.TemporaryDirectory(prefix="crust-spool-") as spool:
            local = Path(spool) / PurePosixPath(target).name
            yield StagedFile(local, lambda: upload_atomic(self.fs, local, str(target)))


@dataclass(frozen=True)
class StagedFile:
    """A file written but not published yet (`DataLayout.staged`)."""

    path: Path  # local: fill it (e.g. with write_parquet_atomic), rewrite it at will
    commit: Callable[[], None]  # makes it the target in one step


class LockTimeout(TimeoutError):
    """A lock stayed held longer than the caller was willing to wait (the message says by whom)."""


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float, holder: str) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created owner-only), waiting up to `timeout` s.

    Why flock: the kernel drops it when its holder dies, however it dies, so a killed process
    never leaves the lock taken. The holder's description is written into the file, so a waiter
    that gives up can say who holds it. Local filesystems only (an object store has no lock).
    """
    ensure_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, configured_file_mode())
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held_by = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise LockTimeout(
                        f"{path} is still held after {timeout:g} s (by {held_by})"
                    ) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder}, pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


# Filesystems on which an upload becomes visible, whole, only when it completes (S3 PUT and
# multipart, GCS resumable uploads, Azure block lists, fsspec's in-memory store).
OBJECT_STORE_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2", "memory"}
)


def upload_atomic(fs: fsspec.AbstractFileSystem, local: Path, target: str) -> None:
    """Copy a finished local file to `target` so that readers never see part of it.

    Object stores: one upload straight to the target key (a single PUT below 100 MiB with s3fs,
    else a multipart upload that s3fs aborts on error: invisible until completed). Anything else
    (sftp, hdfs, ...) writes files in place, so there the upload goes to a hidden name beside the
    target and is then renamed over it, as on local disk.
    """
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & OBJECT_STORE_PROTOCOLS:
        fs.put_file(str(local), target)
    else:
        parent, name = fs._parent(target), PurePosixPath(target).name
        fs.makedirs(parent, exist_ok=True)
        temp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"
        try:
            fs.put_file(str(local), temp)
            fs.mv(temp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                if fs.exists(temp):
                    fs.rm_file(temp)
    fs.invalidate_cache(target)


def ensure_dir(path: Path, mode: int | None = None) -> None:
    """Create a directory tree with owner-only permissions (or CRUST_DIR_MODE): personal data.

    The mode is set explicitly after mkdir, so the process umask neither widens nor narrows it.
    Directories that already exist are left as they are.
    """
    mode = configured_dir_mode() if mode is None else mode
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(directory, mode)


@contextlib.contextmanager
def atomic_path(
    target: Path, file_mode: int | None = None, *, create: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` atomically.

    `create=True` creates the (empty) temp file here, with the final mode, before any byte is
    written: a writer that opens it reuses the file, so personal data is never readable by others
    even mid-write (the Parquet writers below do). Writers that insist on a new file (DuckDB) leave
    it False; their temp file gets the mode when it is complete.
    """
    mode = configured_file_mode() if file_mode is None else file_mode
    ensure_dir(target.parent)
    temp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    if create:
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    try:
        yield temp
        _replace(temp, target, mode)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _replace(temp: Path, target: Path, mode: int) -> None:
    """Give a finished temp file its mode, flush it, and rename it over `target` (durably)."""
    os.chmod(temp, mode)
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(
    target: Path,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    *,
    file_mode: int | None = None,
    row_group_size: int | None = None,
    use_dictionary: bool | list[str] = True,
) -> int:
    """Stream record batches into `target` with the explicit schema; returns rows written.

    `use_dictionary`: the columns to dictionary-encode (all by default); naming only those with
    few distinct values saves the writer building, then dropping, a dictionary per row group for
    the unique ones.
    """
    rows = 0
    with (
        atomic_path(target, file_mode, create=True) as temp,
        pq.ParquetWriter(temp, schema, compression="zstd", use_dictionary=use_dictionary) as writer,
    ):
        for batch in batches:
            if batch.schema != schema:
                batch = batch.cast(schema)
            writer.write_batch(batch, row_group_size=row_group_size)
            rows += batch.num_rows
    return rows


def write_table_atomic(
    target: Path, table: pa.Table, *, file_mode: int | None = None, **kwargs: object
) -> int:
    """Write a whole table atomically (small tables: lists, rejects, plans)."""
    with atomic_path(target, file_mode, create=True) as temp:
        pq.write_table(table, temp, compression="zstd", **kwargs)  # type: ignore[arg-type]
    return table.num_rows


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read one file with the contract schema, so empty lists never come back as list<null>."""
    return pq.read_table(path, schema=schema)

"""Where the pipeline's files live, and how they are written so that none is ever seen half-done.

Every Parquet file is written to a hidden temporary name in its final directory, flushed to disk,
then renamed over the target: readers see the previous version or the new one, never a mix.
Hidden names (leading dot, no `.parquet` suffix) are skipped by pyarrow, pandas, DuckDB globs and
Spark alike, so a crashed writer's leftovers never show up in a query.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_DIR_MODE = 0o700
DEFAULT_FILE_MODE = 0o600
# Octal strings (e.g. "0640"): the modes of the files and directories the pipeline creates.
FILE_MODE_ENV = "CRUST_FILE_MODE"
DIR_MODE_ENV = "CRUST_DIR_MODE"
PARTITION_FILE = "data.parquet"


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
class DataLayout:
    """The data root's layout (design.md: input/, warehouse/), plus the pipeline's own staging."""

    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    def input_file(self, date: str) -> Path:
        return self.input_dir / f"{date}.csv"

    def warehouse_dataset(self, dataset: str) -> Path:
        return self.root / "warehouse" / dataset

    def warehouse_partition(self, dataset: str, date: str) -> Path:
        return self.warehouse_dataset(dataset) / f"date={date}" / PARTITION_FILE

    def staging_partition(self, dataset: str, date: str, name: str = PARTITION_FILE) -> Path:
        return self.root / "staging" / dataset / f"date={date}" / name


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
        os.chmod(temp, mode)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


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
) -> int:
    """Stream record batches into `target` with the explicit schema; returns rows written."""
    rows = 0
    with (
        atomic_path(target, file_mode, create=True) as temp,
        pq.ParquetWriter(temp, schema, compression="zstd") as writer,
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

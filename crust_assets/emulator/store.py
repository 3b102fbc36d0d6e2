"""Durable emulator state: jobs, credits and the signing secret, under one directory.

Why SQLite (WAL) and not memory: the pipeline's crash-recovery story ("a
restart resumes jobs instead of resubmitting them") can only be tested if
the *API* also survives a restart, keeping job ids, timings, billing and
already-written results. A job's whole future (timings, success or failure,
faults to apply) is fixed when it is submitted and stored here, so its
status is a pure function of the stored row and the clock, and results are
never regenerated differently.

Layout of a state dir::

    emulator.sqlite3 (+ -wal, -shm)   jobs, meta (credits)
    signing.key                        random secret, mode 0600
    results/<batch_id>/part-000.jsonl.gz ...

API keys are never stored: jobs are owned by an HMAC of the key. The dir is still private
(0700, its SQLite files 0600, whatever the umask): it holds the submitted profile URLs and
each job's webhook URL, whose path is the receiver's token.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_NAME = "emulator.sqlite3"
SECRET_NAME = "signing.key"
LOCK_NAME = "emulator.lock"
RESULTS_DIR = "results"
DIR_MODE = 0o700
FILE_MODE = 0o600

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
STATUSES: tuple[str, ...] = (PENDING, PROCESSING, COMPLETED, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL NOT NULL,
    terminal_at REAL NOT NULL,
    identifier_count INTEGER NOT NULL,
    fields TEXT NOT NULL,
    urls TEXT NOT NULL,
    urls_sha256 TEXT NOT NULL,
    webhook_url TEXT,
    verified INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,
    error_message TEXT,
    flat_records INTEGER NOT NULL DEFAULT 0,
    drop_records INTEGER NOT NULL DEFAULT 0,
    duplicate_records INTEGER NOT NULL DEFAULT 0,
    part_size INTEGER NOT NULL,
    finalized_at REAL,
    result_count INTEGER,
    entities_fulfilled INTEGER,
    part_count INTEGER,
    credits_billed INTEGER,
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_delivered_at REAL,
    webhook_last_error TEXT,
    first_download_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_owner_seq ON jobs (owner, seq);
CREATE INDEX IF NOT EXISTS jobs_unfinalized ON jobs (terminal_at) WHERE finalized_at IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateDirInUseError(RuntimeError):
    """Another emulator process is serving from the same state dir."""


def urls_sha256(urls: Sequence[str]) -> str:
    """Fingerprint of a submission's URL list: sha256 of the URLs joined by newlines.

    Exposed on ``/_emulator/submissions`` so a test can prove a list was
    submitted exactly once without comparing whole lists.
    """
    return hashlib.sha256("\n".join(urls).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Job:
    """One stored job. Its status is derived from the clock, never stored."""

    seq: int
    batch_id: str
    owner: str
    created_at: float
    started_at: float
    terminal_at: float
    identifier_count: int
    fields: tuple[str, ...]
    urls: tuple[str, ...]
    urls_sha256: str
    webhook_url: str | None
    verified: bool
    outcome: str
    error_message: str | None
    flat_records: bool
    drop_records: int
    duplicate_records: int
    part_size: int
    finalized_at: float | None
    result_count: int | None
    entities_fulfilled: int | None
    part_count: int | None
    credits_billed: int | None
    webhook_attempts: int
    webhook_delivered_at: float | None
    webhook_last_error: str | None
    first_download_at: float | None

    def status(self, now: float) -> str:
        if now < self.started_at:
            return PENDING
        if now < self.terminal_at:
            return PROCESSING
        return self.outcome

    def is_terminal(self, now: float) -> bool:
        return now >= self.terminal_at

    @property
    def is_finalized(self) -> bool:
        return self.finalized_at is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values: dict[str, Any] = dict(row)
        values["fields"] = tuple(json.loads(values["fields"]))
        values["urls"] = tuple(json.loads(values["urls"]))
        for flag in ("verified", "flat_records"):
            values[flag] = bool(values[flag])
        return cls(**values)


@dataclass(frozen=True)
class NewJob:
    """Everything decided at submit time."""

    batch_id: str
    owner: str
    created_at: float
    started_at: float
    terminal_at: float
    fields: tuple[str, ...]
    urls: tuple[str, ...]
    webhook_url: str | None
    verified: bool
    outcome: str
    error_message: str | None
    flat_records: bool
    drop_records: int
    duplicate_records: int
    part_size: int


def _private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700, also when it already existed."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def _private_file(path: Path) -> None:
    """Create ``path`` empty if missing, and make it 0600 (SQLite gives its -wal, -shm and
    journal files the mode of the database file, so this covers them too)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)


def _load_or_create_secret(path: Path) -> bytes:
    """Read the signing secret, creating it 0600 on first use (never world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


class Store:
    """SQLite-backed job store.

    Used from the server's single event-loop thread only (sync calls, no
    awaits in between), which makes every method atomic with respect to the
    request handlers and the finaliser task without further locking.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        _private_dir(self.state_dir)
        # One server per state dir: two would both finalise and bill the same jobs.
        # The kernel drops the lock when the process dies, even on SIGKILL.
        _private_file(self.state_dir / LOCK_NAME)
        self._lock = open(self.state_dir / LOCK_NAME, "a+b")  # noqa: SIM115 (held for life)
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateDirInUseError(
                f"state dir {self.state_dir} is in use by another emulator process"
            ) from None
        _private_dir(self.state_dir / RESULTS_DIR)
        self._secret = _load_or_create_secret(self.state_dir / SECRET_NAME)
        _private_file(self.state_dir / DB_NAME)
        for suffix in ("-wal", "-shm", "-journal"):  # left by an older emulator: tighten them
            leftover = self.state_dir / f"{DB_NAME}{suffix}"
            if leftover.exists():
                os.chmod(leftover, FILE_MODE)
        self._db = sqlite3.connect(
            self.state_dir / DB_NAME, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._add_missing_columns()

    def __repr__(self) -> str:
        return f"Store(state_dir={str(self.state_dir)!r})"

    def _add_missing_columns(self) -> None:
        """A state dir made by an older emulator lacks columns added since; add them (NULL)."""
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, kind in (("first_download_at", "REAL"),):
            if column not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        self._lock.close()

    # -- secrets --------------------------------------------------------------
    def derived_key(self, purpose: str) -> bytes:
        """A purpose-specific key derived from the state dir's secret."""
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    def owner_of(self, api_key: str) -> str:
        """Stable, non-reversible owner id for an API key (the key itself is never stored)."""
        return hmac.new(self.derived_key("owner"), api_key.encode(), hashlib.sha256).hexdigest()

    def results_dir(self, batch_id: str) -> Path:
        return self.state_dir / RESULTS_DIR / batch_id

    # -- credits ----------------------------------------------------------------
    def _meta_int(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row["value"]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def init_balance(self, credits: int) -> None:
        """Set the starting balance the first time a state dir is used; keep it afterwards."""
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('balance', ?)", (str(credits),)
        )
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('credits_used', '0')")

    def billing(self) -> dict[str, int]:
        return {
            "credits_used": self._meta_int("credits_used", 0),
            "balance": self._meta_int("balance", 0),
        }

    def set_balance(self, balance: int) -> dict[str, int]:
        self._set_meta("balance", balance)
        return self.billing()

    # -- jobs -------------------------------------------------------------------
    def insert_job(self, job: NewJob) -> Job:
        self._db.execute(
            "INSERT INTO jobs (batch_id, owner, created_at, started_at, terminal_at,"
            " identifier_count, fields, urls, urls_sha256, webhook_url, verified, outcome,"
            " error_message, flat_records, drop_records, duplicate_records, part_size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.batch_id,
                job.owner,
                job.created_at,
                job.started_at,
                job.terminal_at,
                len(job.urls),
                json.dumps(list(job.fields)),
                json.dumps(list(job.urls)),
                urls_sha256(job.urls),
                job.webhook_url,
                int(job.verified),
                job.outcome,
                job.error_message,
                int(job.flat_records),
                job.drop_records,
                job.duplicate_records,
                job.part_size,
            ),
        )
        stored = self.get_job(job.batch_id)
        assert stored is not None
        return stored

    def get_job(self, batch_id: str) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE batch_id = ?", (batch_id,)).fetchone()
        return Job.from_row(row) if row else None

    def count_active(self, owner: str, now: float) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) AS n FROM jobs WHERE owner = ? AND terminal_at > ?", (owner, now)
        ).fetchone()
        return int(row["n"])

    def list_jobs(
        self, owner: str, now: float, *, status: str | None, before_seq: int | None, limit: int
    ) -> list[Job]:
        """Jobs of one owner, most recent first, optionally filtered by derived status."""
        clauses = ["owner = ?"]
        params: list[Any] = [owner]
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        if status == PENDING:
            clauses.append("started_at > ?")
            params.append(now)
        elif status == PROCESSING:
            clauses.append("started_at <= ? AND terminal_at > ?")
            params.extend((now, now))
        elif status in (COMPLETED, FAILED):
            clauses.append("terminal_at <= ? AND outcome = ?")
            params.extend((now, status))
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        return [Job.from_row(row) for row in self._db.execute(sql, params)]

    def unfinalized_terminal(self, now: float) -> list[Job]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE finalized_at IS NULL AND terminal_at <= ? ORDER BY seq",
            (now,),
        )
        return [Job.from_row(row) for row in rows]

    def mark_finalized(
        self,
        batch_id: str,
        *,
        now: float,
        result_count: int,
        entities_fulfilled: int,
        part_count: int,
        credits_billed: int,
    ) -> Job:
        """Record a job's results and bill it, in one transaction (never twice)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            updated = self._db.execute(
                "UPDATE jobs SET finalized_at = ?, result_count = ?, entities_fulfilled = ?,"
                " part_count = ?, credits_billed = ? WHERE batch_id = ? AND finalized_at IS NULL",
                (now, result_count, entities_fulfilled, part_count, credits_billed, batch_id),
            ).rowcount
            if updated and credits_billed:
                used = self._meta_int("credits_used", 0) + credits_billed
                balance = max(0, self._meta_int("balance", 0) - credits_billed)
                self._set_meta("credits_used", used)
                self._set_meta("balance", balance)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        job = self.get_job(batch_id)
        assert job is not None
        return job

    def pending_webhooks(self, max_attempts: int) -> list[Job]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE finalized_at IS NOT NULL AND webhook_url IS NOT NULL"
            " AND webhook_delivered_at IS NULL AND webhook_attempts < ? ORDER BY seq",
            (max_attempts,),
        )
        return [Job.from_row(row) for row in rows]

    def record_webhook_attempt(
        self, batch_id: str, *, delivered_at: float | None, error: str | None
    ) -> None:
        self._db.execute(
            "UPDATE jobs SET webhook_attempts = webhook_attempts + 1,"
            " webhook_delivered_at = ?, webhook_last_error = ? WHERE batch_id = ?",
            (delivered_at, error, batch_id),
        )

    def record_download(self, batch_id: str, at: float) -> None:
        """Keep when a job's results were first fetched: the end of its completion latency."""
        self._db.execute(
            "UPDATE jobs SET first_download_at = ?"
            " WHERE batch_id = ? AND first_download_at IS NULL",
            (at, batch_id),
        )

    def all_jobs(self) -> list[Job]:
        """Every job of every owner, oldest first (the admin submissions log)."""
        return [Job.from_row(row) for row in self._db.execute("SELECT * FROM jobs ORDER BY seq")]

"""A throwaway PostgreSQL server for tests: Debian's binaries, a temp dir, a free loopback port.

Why a real server and not a mock: production keeps Dagster's runs, events and sensor state in
Postgres (`deploy/dagster.yaml`), and the pipeline's job queue lives in that event log. The test
that proves the flow works there needs the real engine.

PostgreSQL refuses to run as root, and this machine (and CI) run as root: the server then runs
as the `postgres` OS user (created by Debian's `postgresql` package), through `runuser` for
initdb and `setpriv` for the server, in a temp dir that user owns; as any other user, it runs as
that user. It listens on 127.0.0.1 only, with password (SCRAM) authentication. The server is a
child of this process: `stop()` (also called on any start error) shuts it down, reaps it and
removes the temp dir.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

# What to tell a developer or CI when the server cannot be started.
INSTALL_HINT = (
    "install Debian's PostgreSQL server (`apt-get install -y postgresql`; CI's .ci/run does), "
    "or skip these tests explicitly with `-m 'not postgres'` or CRUST_SKIP_POSTGRES=1"
)
SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or no OS user to run them as: the message says what to do."""


def find_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/<major>/bin` that has `initdb` and `pg_ctl`, if any."""

    def major(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/bin", path)
        return int(match.group(1)) if match else -1

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    for candidate in candidates:
        bin_dir = Path(candidate)
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One PostgreSQL cluster in a temp dir; `with PostgresServer() as pg:` starts and stops it.

    `database` is created empty; `username`/`password` own it. `dagster_env()` gives the
    `DAGSTER_PG_*` variables that `deploy/dagster.yaml` reads.
    """

    database: str = "dagster"
    username: str = "dagster"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    host: str = "127.0.0.1"
    port: int = 0
    bin_dir: Path | None = None
    root: Path | None = None
    _started: bool = field(default=False, init=False)
    _run_as: pwd.struct_passwd | None = field(default=None, init=False, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    # ----------------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 60.0) -> PostgresServer:
        bin_dir = self.bin_dir or find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(
                f"no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
            )
        self.bin_dir = bin_dir
        self._run_as = self._service_user()
        # Not under pytest's tmp_path: its parents are root-only (0700), which `postgres` cannot
        # traverse. mkdtemp makes a fresh 0700 dir in /tmp that is then handed to the user.
        self.root = Path(tempfile.mkdtemp(prefix="crust-pg-"))
        if self._run_as is not None:
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)
        try:
            self._initdb()
            self._start_server(timeout)
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Fast shutdown, then SIGKILL if it hangs; removes the temp dir. Safe to call twice."""
        self._stop_process()
        self._started = False
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- access
    @property
    def url(self) -> str:
        """A SQLAlchemy / libpq URL with the password (for tests only; never log it)."""
        return (
            f"postgresql://{self.username}:{self.password}@{self.host}:{self.port}/{self.database}"
        )

    def dagster_env(self) -> dict[str, str]:
        """The connection settings as the env vars `deploy/dagster.yaml` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.username,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    def connect(self):  # -> psycopg2 connection; psycopg2 comes with dagster-postgres
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            dbname=self.database,
        )

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement and return its rows (autocommit, a fresh connection)."""
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def dump(self) -> str:
        """`pg_dump` of the database as SQL text (to search what was stored)."""
        result = subprocess.run(
            [
                str(self._bin("pg_dump")),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.username,
                "--no-owner",
                self.database,
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    @property
    def log_path(self) -> Path | None:
        return self.root / "postgres.log" if self.root else None

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no server log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ----------------------------------------------------------------------------- internals
    @staticmethod
    def _service_user() -> pwd.struct_passwd | None:
        """None when we may run postgres ourselves; the `postgres` user's entry when root."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVICE_USER)
        except KeyError as error:
            raise PostgresUnavailable(
                f"running as root, and PostgreSQL refuses root; no {SERVICE_USER!r} OS user to "
                f"run it as (Debian's postgresql package creates one): {INSTALL_HINT}"
            ) from error

    def _bin(self, name: str) -> Path:
        assert self.bin_dir is not None
        return self.bin_dir / name

    def _pg(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program as the service user (or as ourselves when not root)."""
        command = [str(self._bin(name)), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as.pw_name, "--", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,  # a dir the service user can enter
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, command, result.stdout, result.stderr
            )
        return result

    def _write_private(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _initdb(self) -> None:
        assert self.root is not None
        pwfile = self.root / "pwfile"
        self._write_private(pwfile, self.password + "\n")
        try:
            self._pg(
                "initdb",
                "-D",
                str(self.root / "data"),
                "-U",
                self.username,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # a throwaway cluster: no need to fsync it
                timeout=120,
            )
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"initdb failed: {error.stderr or error.stdout}") from error
        finally:
            pwfile.unlink(missing_ok=True)

    def _start_server(self, timeout: float) -> None:
        """Start the postmaster as our own child (not daemonised by pg_ctl): we stop and reap it."""
        assert self.root is not None
        requested = self.port
        last_error = ""
        for _ in range(5):  # a free port can be taken between probing it and binding it
            self.port = requested or _free_port()
            command = [
                str(self._bin("postgres")),
                "-D",
                str(self.root / "data"),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                f"unix_socket_directories={self.root}",
                # Throwaway data: trade durability for speed.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            if self._run_as is not None:
                # setpriv execs (no fork): the Popen is the postmaster itself, so signals reach it
                # and wait() reaps it.
                command = [
                    "setpriv",
                    f"--reuid={self._run_as.pw_uid}",
                    f"--regid={self._run_as.pw_gid}",
                    "--init-groups",
                    "--",
                    *command,
                ]
            assert self.log_path is not None
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    command,
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
                    start_new_session=True,
                )
            if self._wait_accepting(timeout):
                self._started = True
                return
            last_error = self.log_tail()
            self._stop_process()
            if requested:
                break
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def _wait_accepting(self, timeout: float) -> bool:
        """True once the server accepts a login; False if it exited (a port clash, say)."""
        import psycopg2

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                psycopg2.connect(
                    host=self.host,
                    port=self.port,
                    user=self.username,
                    password=self.password,
                    dbname="postgres",
                    connect_timeout=2,
                ).close()
                return True
            except psycopg2.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(
            f"PostgreSQL not accepting on {self.host}:{self.port}: {self.log_tail()}"
        )

    def _stop_process(self, grace: float = 20.0) -> None:
        """SIGINT = PostgreSQL's fast shutdown (disconnects clients); SIGKILL after a grace."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._process = None

    def _create_database(self) -> None:
        import psycopg2

        connection = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.username,
            password=self.password,
            dbname="postgres",
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()

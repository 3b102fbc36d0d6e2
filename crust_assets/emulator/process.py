"""``EmulatorProcess``: run ``crust-assets emulator`` as a child process.

Why a real subprocess and not an in-process app: the client must reach the
emulator over real HTTP exactly as it reaches the real API, and a restart
must be a real restart (new process, same state dir, same port) to prove
that jobs survive it. Tests, the demo and the benchmarks all use this.

The child runs in its own session (``start_new_session=True``) so stopping
it signals only its process group, and a hung child is SIGKILLed after a
grace period. Its stdout/stderr go to a log file in the state dir (a pipe
nobody reads would eventually block it); the tail of that log is put in the
exception when the emulator fails to come up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from crust_assets.emulator.admin import EmulatorAdmin

# A key that works when the emulator accepts any key (no CRUSTDATA_API_KEY given).
DEFAULT_TEST_API_KEY = "emulator-test-key"
LOG_NAME = "emulator.log"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class EmulatorStartError(RuntimeError):
    """The emulator process did not become healthy; the message holds its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _private_opener(path: str, flags: int) -> int:
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Last-resort cleanup if an EmulatorProcess is garbage-collected while running."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


class EmulatorProcess:
    """A ``crust-assets emulator`` child process on 127.0.0.1.

    ``api_key``: the key the emulator requires (its ``CRUSTDATA_API_KEY``);
    None (default) removes that variable from the child's environment so any
    non-empty key is accepted, even if the parent has a real key set. Either
    way ``.api_key`` is a key that works. ``env`` entries override the
    child's environment (a None value removes a variable).

    Clock/size/credit/fault arguments left as None use the CLI defaults.
    Usable as a context manager; ``restart()`` keeps the port and state dir.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        api_key: str | None = None,
        pending_seconds: float | None = None,
        processing_seconds: float | None = None,
        processing_jitter_seconds: float | None = None,
        part_size: int | None = None,
        url_expiry_seconds: int | None = None,
        credits: int | None = None,
        faults: Mapping[str, Any] | None = None,
        insufficient_credits_status: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
        startup_timeout: float = 20.0,
        stop_grace_seconds: float = 5.0,
    ) -> None:
        self._owns_state_dir = state_dir is None
        self.state_dir = Path(
            tempfile.mkdtemp(prefix="crust-emulator-") if state_dir is None else state_dir
        )
        self.host = host
        self._port = port
        self._auto_port = port is None
        self.startup_timeout = startup_timeout
        self.stop_grace_seconds = stop_grace_seconds
        self._options: list[str] = []
        for flag, value in (
            ("--pending-seconds", pending_seconds),
            ("--processing-seconds", processing_seconds),
            ("--processing-jitter-seconds", processing_jitter_seconds),
            ("--part-size", part_size),
            ("--url-expiry-seconds", url_expiry_seconds),
            ("--credits", credits),
            ("--insufficient-credits-status", insufficient_credits_status),
        ):
            if value is not None:
                self._options += [flag, str(value)]
        if faults:
            self._options += ["--faults", json.dumps(dict(faults))]
        self._options += list(extra_args)
        self._env = self._child_env(api_key, env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @staticmethod
    def _child_env(
        api_key: str | None, overrides: Mapping[str, str | None] | None
    ) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("CRUSTDATA_API_KEY", None)
        if api_key:
            env["CRUSTDATA_API_KEY"] = api_key
        for name, value in (overrides or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env["PYTHONUNBUFFERED"] = "1"
        # Importable even when the project is not installed (e.g. a fresh checkout).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        return env

    def __repr__(self) -> str:
        return (
            f"EmulatorProcess(base_url={self.base_url!r}, state_dir={str(self.state_dir)!r},"
            f" running={self.is_running})"
        )

    # -- properties -----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            self._port = free_port(self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1")
        return self._port

    @property
    def base_url(self) -> str:
        connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{connect_host}:{self.port}"

    @property
    def admin(self) -> EmulatorAdmin:
        """The admin API, with a key this emulator accepts (required when it has a fixed key)."""
        return EmulatorAdmin(self.base_url, api_key=self.api_key)

    @property
    def api_key(self) -> str:
        """A bearer key this emulator accepts."""
        return self._env.get("CRUSTDATA_API_KEY") or DEFAULT_TEST_API_KEY

    @property
    def requires_fixed_key(self) -> bool:
        return bool(self._env.get("CRUSTDATA_API_KEY"))

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_NAME

    def log_text(self) -> str:
        """Everything the emulator wrote to stdout/stderr so far (all its runs)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def command(self) -> list[str]:
        """The argv the child is started with."""
        return [
            sys.executable,
            "-m",
            "crust_assets.cli",
            "emulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            *self._options,
        ]

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> EmulatorProcess:
        """Start the child and wait until ``/_emulator/health`` answers."""
        if self.is_running:
            raise RuntimeError(f"{self!r} is already running")
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # the child makes it 0700
        attempts = 3 if self._auto_port and self._proc is None else 1
        for attempt in range(attempts):
            try:
                self._launch_and_wait()
                return self
            except EmulatorStartError:
                # An auto-picked port can be taken by someone else in between: pick again.
                if attempt + 1 < attempts and "address already in use" in self._log_tail().lower():
                    self._port = None
                    continue
                raise
        raise AssertionError("unreachable")

    def _launch_and_wait(self) -> None:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        # 0600 like the rest of the state dir, whatever the umask (opener: mode at creation).
        with open(self.log_path, "ab", opener=_private_opener) as log_file:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        self._finalizer = weakref.finalize(self, _kill_group, self._proc)
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=0.5, trust_env=False) as client:
            while True:
                if self._proc.poll() is not None:
                    raise EmulatorStartError(
                        f"emulator exited with code {self._proc.returncode} before becoming"
                        f" healthy; log:\n{self._log_tail(log_offset)}"
                    )
                try:
                    response = client.get(f"{self.base_url}/_emulator/health")
                    if (
                        response.status_code == 200
                        and response.json().get("ok") is True
                        and response.headers.get("x-emulator-pid") == str(self._proc.pid)
                    ):
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmulatorStartError(
                        f"emulator not healthy within {self.startup_timeout:g}s;"
                        f" log:\n{self._log_tail(log_offset)}"
                    )
                time.sleep(0.05)

    def _log_tail(self, offset: int = 0, limit: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-limit:] or "(empty log)"

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM the child's process group, SIGKILL after ``grace`` s; returns its exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            grace = self.stop_grace_seconds if grace is None else grace
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        return proc.returncode

    def restart(self) -> EmulatorProcess:
        """Stop and start again on the same port with the same state dir."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and delete the state dir if this object created it."""
        self.stop()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> EmulatorProcess:
        if not self.is_running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""The job-complete callback receiver: `crust-assets webhook --port ...` (a small ASGI app).

Crustdata calls the `webhook_url` given at submit when a job finishes; its payload and signature
are not documented, so nothing in the body is trusted. The URL itself carries a secret token
(`POST /hooks/crustdata/<token>`): a wrong token is a 401, any other path a 404 (another method on
a known path a 405). A valid callback only drops a *hint* into `<data>/webhooks/`: a file named
after the batch id, holding nothing else. The submitter sensor then confirms the job's state with
`GET /batch/{id}` on its next tick instead of waiting for its polling interval, and deletes every
hint it reads. Polling stays the fallback: a lost or refused callback only costs latency.

The hints go through `DataLayout`, so `<data>` is whatever `CRUST_DATA_DIR` names: a local
directory or an object store (`s3://bucket/prefix`). In production the receiver and the sensor run
in different pods and share only the object store; a hint is one small object there (a single
PUT, never seen half-written), and the sensor lists, reads and deletes them through the same
layout.

The receiver faces the internet, so everything a client can hold is bounded (`ReceiverLimits`):
the time to send the request head and the body, the callbacks handled at once, and the hints
kept. It is served by Hypercorn rather than Uvicorn because Uvicorn has no deadline for the
request head: a client sending a header line now and then holds its connection forever.
Hypercorn's idle timer (`keep_alive_timeout`) runs from the moment a connection is accepted until
the head is complete, whatever trickles in, so it is that deadline.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crust_assets.crustdata.models import is_batch_id
from crust_assets.storage import DataLayout
from crust_assets.webhook_hints import HINT_SUFFIX as HINT_SUFFIX
from crust_assets.webhook_hints import HINTS_DIR as HINTS_DIR
from crust_assets.webhook_hints import add_hint as add_hint
from crust_assets.webhook_hints import consume_hints as consume_hints
from crust_assets.webhook_hints import hints_dir as hints_dir
from crust_assets.webhook_hints import read_hints as read_hints
from crust_assets.webhook_hints import write_hint as write_hint

MAX_BODY_BYTES = 64 * 1024
#: The receiver reads only `batch_id`; a number longer than this is an attack, not a payload.
MAX_NUMBER_CHARS = 64


@dataclass(frozen=True)
class ReceiverLimits:
    """What one client, or many, may hold of the receiver; each is an env var and a CLI flag."""

    header_timeout: float = 10.0  # seconds from accept until the request head is complete
    body_timeout: float = 10.0  # seconds from the head until the whole body is in
    max_concurrent: int = 100  # callbacks being handled at once; more get a 503
    max_hints: int = 1000  # hints waiting for the sensor; a new one beyond it gets a 503

    ENV: ClassVar[dict[str, str]] = {
        "header_timeout": "CRUST_WEBHOOK_HEADER_TIMEOUT_SECONDS",
        "body_timeout": "CRUST_WEBHOOK_BODY_TIMEOUT_SECONDS",
        "max_concurrent": "CRUST_WEBHOOK_MAX_CONCURRENT",
        "max_hints": "CRUST_WEBHOOK_MAX_HINTS",
    }

    def __post_init__(self) -> None:
        for name in self.ENV:
            if not getattr(self, name) > 0:
                raise ValueError(f"{self.ENV[name]} must be above 0, not {getattr(self, name)}")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] = os.environ, **overrides: float | None
    ) -> ReceiverLimits:
        """Limits from the environment; `overrides` (CLI flags, None = not given) win."""
        values: dict[str, Any] = {}
        for name, variable in cls.ENV.items():
            kind = int if name.startswith("max_") else float
            given = overrides.get(name)
            if given is not None:
                values[name] = kind(given)
            elif environ.get(variable, "").strip():
                try:
                    values[name] = kind(environ[variable])
                except ValueError:
                    raise ValueError(f"{variable} is not a number: {environ[variable]!r}") from None
        return cls(**values)


class BadCallback(ValueError):
    """A callback body the receiver refuses with a 400; the message says why."""


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise BadCallback(f"a number longer than {MAX_NUMBER_CHARS} characters")
        return kind(text)

    return parse


def batch_id_from_body(body: bytes) -> str:
    """The batch id a callback body names; `BadCallback` for anything else.

    Bounded work whatever the body: numbers are refused by length before any conversion (a
    60,000-digit one would otherwise cost quadratic time, or raise deep in `int`), and nesting
    deeper than the interpreter allows is a refusal, not a crash.
    """
    try:
        payload = json.loads(body, parse_int=_number(int), parse_float=_number(float))
    except BadCallback:
        raise
    except RecursionError:
        raise BadCallback("body is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise BadCallback("body is not JSON") from None
    batch_id = payload.get("batch_id") if isinstance(payload, dict) else None
    if not is_batch_id(batch_id):
        raise BadCallback("no valid batch_id (a UUID)")
    return str(batch_id)


def _refusal(message: str, status_code: int) -> JSONResponse:
    """An error that also ends the connection: the client may still be holding a body."""
    headers = {"connection": "close"}
    if status_code == 503:
        headers["retry-after"] = "5"
    return JSONResponse({"message": message}, status_code=status_code, headers=headers)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def create_app(layout: DataLayout, token: str, limits: ReceiverLimits | None = None) -> Starlette:
    """The receiver. `token` must be long and random; it is compared in constant time."""
    if len(token) < 16:
        raise ValueError("the webhook token must be at least 16 characters")
    limits = limits or ReceiverLimits()
    expected = token.encode()
    in_flight = 0
    hint_lock = asyncio.Lock()  # one count-then-write at a time, so the cap holds exactly

    async def handle(request: Request) -> JSONResponse:
        try:
            body = await asyncio.wait_for(_read_body(request), limits.body_timeout)
        except asyncio.TimeoutError:
            return _refusal("body not received in time", 408)
        except ClientDisconnect:  # nobody is left to answer; not a server error
            return _refusal("client went away", 400)
        if body is None:
            return _refusal("body too large", 413)
        try:
            batch_id = batch_id_from_body(body)
        except BadCallback as error:
            return _refusal(str(error), 400)
        async with hint_lock:  # blocking I/O (a PUT on an object store): off the event loop
            added = await run_in_threadpool(add_hint, layout, batch_id, limits.max_hints)
        if not added:
            return _refusal("too many hints waiting; the job is polled anyway", 503)
        return JSONResponse({"accepted": batch_id}, status_code=202)

    async def receive(request: Request) -> JSONResponse:
        nonlocal in_flight
        given = str(request.path_params["token"]).encode()
        if not hmac.compare_digest(given, expected):
            return _refusal("unauthorized", 401)
        if in_flight >= limits.max_concurrent:
            return _refusal("busy", 503)
        in_flight += 1
        try:
            return await handle(request)
        finally:
            in_flight -= 1

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/hooks/crustdata/{token}", receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def server_config(host: str, port: int, limits: ReceiverLimits) -> Any:
    """Hypercorn's settings for the receiver; no access log (the path carries the token)."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    # Runs from accept until the request head is complete (and between keep-alive requests):
    # trickled header lines do not reset it. The app enforces the body's total deadline.
    config.keep_alive_timeout = limits.header_timeout
    config.accesslog = None
    config.loglevel = "WARNING"
    return config


def serve(host: str, port: int, layout: DataLayout, token: str, limits: ReceiverLimits) -> None:
    """Run the receiver with Hypercorn until SIGINT or SIGTERM."""
    from hypercorn.asyncio import serve as hypercorn_serve

    app = create_app(layout, token, limits)
    asyncio.run(hypercorn_serve(app, server_config(host, port, limits)))  # type: ignore[arg-type]

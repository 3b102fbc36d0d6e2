"""The emulator's HTTP application: the batch contact-enrich API plus its admin API.

Why an emulator at all: the real API is paid, slow (minutes per job), rate
limited and cannot be made to fail on purpose. The pipeline, its tests, CI
and the benchmarks need the same wire contract (``/tmp/crust_spec.md``,
"Wire contract") locally, with a fast clock and injectable faults.

Design points:

* A job's lifecycle is a pure function of stored timestamps; nothing ticks.
  A background task only *finalises* jobs that became terminal (write
  result parts, bill, call the webhook), and any request that observes a
  terminal-but-unfinalised job finalises it first, so results never lag
  the status.
* Everything runs on the event-loop thread; the store and the finaliser are
  synchronous and never await in the middle, so there are no races between
  a poll and the background task.
* Nothing secret is ever logged: the access log prints method, path (never
  the query string) and status, API keys are only compared, never kept, and a
  webhook URL is logged as scheme and host only (its path is the token).
* With a fixed key, the admin API (``/_emulator/*`` but ``health``) requires it
  too; ``/openapi.json`` stays open (a static description, no state).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import math
import os
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crust_assets.emulator import echo, results
from crust_assets.emulator.faults import FaultConfigError, FaultState
from crust_assets.emulator.openapi import openapi_document
from crust_assets.emulator.store import (
    COMPLETED,
    FAILED,
    STATUSES,
    Job,
    NewJob,
    Store,
)
from crust_assets.emulator.synth import FIELDS

log = logging.getLogger("crust_assets.emulator")
access_log = logging.getLogger("crust_assets.emulator.access")

API_VERSION = "2025-11-01"
MAX_IDENTIFIERS = 300
MAX_ACTIVE_JOBS = 5
FINALISER_INTERVAL_SECONDS = 0.2
JOB_FAILURE_MESSAGE = "Batch processing failed: the enrichment provider returned an internal error"

_PROFILE_URL = re.compile(
    r"^https?://([a-z0-9-]+\.)?linkedin\.com/in/[^/?#\s]+/?([?#]\S*)?$", re.IGNORECASE
)
_BATCH_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class EmulatorConfig:
    """Settings of one emulator server. The four clock/size values can change at run time.

    ``api_key`` is the single accepted key (from ``CRUSTDATA_API_KEY``); None
    accepts any non-empty key. It is excluded from ``repr`` on purpose.
    """

    pending_seconds: float = 1.0
    processing_seconds: float = 2.0
    # Real jobs do not all take the same time: each job's processing time is
    # processing_seconds plus up to this much, drawn from its batch id (reproducible).
    processing_jitter_seconds: float = 0.0
    part_size: int = 1000
    url_expiry_seconds: int = 432_000
    credits: int = 1_000_000
    insufficient_credits_status: int = 402
    faults: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)
    webhook_max_attempts: int = 4
    webhook_timeout_seconds: float = 5.0


class ConfigError(ValueError):
    """An invalid emulator setting (CLI or ``PATCH /_emulator/config``)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_config_changes(changes: Any) -> dict[str, Any]:
    """Check run-time-changeable settings; raises ConfigError on anything else."""
    if not isinstance(changes, Mapping):
        raise ConfigError("config must be a JSON object")
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("pending_seconds", "processing_seconds", "processing_jitter_seconds"):
            if not _is_number(value) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number")
            clean[name] = float(value)
        elif name == "part_size":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError("part_size must be a positive integer")
            clean[name] = value
        elif name == "url_expiry_seconds":
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 1 <= value <= results.MAX_URL_EXPIRY_SECONDS
            ):
                raise ConfigError(
                    f"url_expiry_seconds must be an integer 1..{results.MAX_URL_EXPIRY_SECONDS}"
                )
            clean[name] = value
        elif name == "insufficient_credits_status":
            if value not in (402, 403) or isinstance(value, bool):
                raise ConfigError("insufficient_credits_status must be 402 or 403")
            clean[name] = value
        else:
            raise ConfigError(
                f"unknown or read-only setting {name!r}; changeable: pending_seconds,"
                " processing_seconds, processing_jitter_seconds, part_size, url_expiry_seconds,"
                " insufficient_credits_status"
            )
    return clean


def iso(ts: float) -> str:
    """ISO-8601 UTC with a ``Z`` and microseconds (exact: clients match on created_at)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _message(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    metadata: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"type": type_, "message": message, "metadata": dict(metadata or {})}}
    return JSONResponse(body, status_code=status, headers=headers)


def _s3_error(status: int, code: str, message: str, resource: str) -> Response:
    request_id = uuid.uuid4().hex[:16].upper()
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>{request_id}</RequestId></Error>"
    )
    return Response(xml, status_code=status, media_type="application/xml")


def _redacted(url: str) -> str:
    """scheme://host of a URL, for logs: a webhook URL's path is the receiver's token and a
    query string may hold signatures, so neither is ever printed (nor any user-info)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}" + ("/<redacted>" if parts.path or parts.query else "")


class _Rejection(Exception):
    """Raised inside a handler to answer with a prepared error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class AccessLogMiddleware:
    """Logs ``METHOD /path STATUS duration``: never the query string, never headers.

    Replaces uvicorn's access log, which prints the full request line (and
    with it the signature of every pre-signed URL).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )


class Emulator:
    """State and handlers of one running emulator (one store, one config, one fault set)."""

    def __init__(self, state_dir: Path, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(Path(state_dir))
        self.store.init_balance(config.credits)
        self.faults = FaultState.from_mapping(config.faults)
        self._signing_key = self.store.derived_key("presign")
        self._webhooks_in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"Emulator(state_dir={str(self.store.state_dir)!r}, config={self.config!r})"

    # -- lifecycle ------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._http = httpx.AsyncClient(timeout=self.config.webhook_timeout_seconds, trust_env=False)
        loop_task = asyncio.create_task(self._finaliser_loop(), name="emulator-finaliser")
        try:
            yield
        finally:
            loop_task.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(loop_task, *self._tasks, return_exceptions=True)
            await self._http.aclose()
            self.store.close()

    async def _finaliser_loop(self) -> None:
        while True:
            try:
                self.finalise_due()
                self._start_pending_webhooks()
            except Exception:  # keep finalising other jobs; the error is logged
                log.exception("finaliser pass failed")
            await asyncio.sleep(FINALISER_INTERVAL_SECONDS)

    def finalise_due(self) -> None:
        for job in self.store.unfinalized_terminal(time.time()):
            self._finalise(job)

    def _ensure_finalised(self, job: Job, now: float) -> Job:
        """Finalise a terminal job synchronously, so a poll never sees results lag."""
        if job.is_terminal(now) and not job.is_finalized:
            return self._finalise(job)
        return job

    def _finalise(self, job: Job) -> Job:
        if job.outcome == FAILED:
            summary = results.ResultSummary(0, 0, 0, 0)
        else:
            records = results.build_records(
                job.batch_id,
                job.urls,
                job.fields,
                flat=job.flat_records,
                drop=job.drop_records,
                duplicate=job.duplicate_records,
            )
            summary = results.write_results(
                self.store.results_dir(job.batch_id), records, job.part_size
            )
        done = self.store.mark_finalized(
            job.batch_id,
            now=time.time(),
            result_count=summary.result_count,
            entities_fulfilled=summary.entities_fulfilled,
            part_count=summary.part_count,
            credits_billed=summary.credits_billed,
        )
        log.info(
            "batch %s %s: %d records, %d part(s), %d credits",
            job.batch_id,
            job.outcome,
            summary.result_count,
            summary.part_count,
            summary.credits_billed,
        )
        self._start_pending_webhooks()
        return done

    # -- webhooks ---------------------------------------------------------------------
    def _start_pending_webhooks(self) -> None:
        if self._http is None:
            return
        for job in self.store.pending_webhooks(self.config.webhook_max_attempts):
            if job.batch_id in self._webhooks_in_flight:
                continue
            self._webhooks_in_flight.add(job.batch_id)
            task = asyncio.get_running_loop().create_task(self._deliver_webhook(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver_webhook(self, job: Job) -> None:
        """POST the status document (without download URLs), retrying a few times."""
        assert self._http is not None and job.webhook_url is not None
        attempts = job.webhook_attempts
        try:
            while attempts < self.config.webhook_max_attempts:
                if attempts:
                    await asyncio.sleep(min(0.25 * 2 ** (attempts - 1), 4.0))
                current = self.store.get_job(job.batch_id) or job
                payload = self.status_doc(current, time.time(), base_url=None)
                error: str | None = None
                try:
                    response = await self._http.post(
                        job.webhook_url,
                        json=payload,
                        headers={"user-agent": "crustdata-emulator-webhook/1"},
                    )
                    if not response.is_success:
                        error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                attempts += 1
                delivered = time.time() if error is None else None
                self.store.record_webhook_attempt(job.batch_id, delivered_at=delivered, error=error)
                if error is None:
                    log.info("webhook for batch %s delivered", job.batch_id)
                    return
                log.warning(
                    "webhook for batch %s to %s failed (attempt %d): %s",
                    job.batch_id,
                    _redacted(job.webhook_url),
                    attempts,
                    error,
                )
        finally:
            self._webhooks_in_flight.discard(job.batch_id)

    # -- documents --------------------------------------------------------------------
    def _part_urls(self, job: Job, base_url: str, now: float) -> list[str]:
        expires = self.config.url_expiry_seconds
        return [
            results.presign(
                base_url,
                f"/_files/{job.batch_id}/{results.part_name(i)}",
                self._signing_key,
                now=now,
                expires=expires,
            )
            for i in range(max(1, job.part_count or 0))
        ]

    def status_doc(self, job: Job, now: float, *, base_url: str | None) -> dict[str, Any]:
        """The ``GET /batch/{id}`` body; fresh pre-signed URLs every call.

        ``base_url=None`` leaves the URL fields out entirely (webhook payload).
        """
        status = job.status(now)
        terminal = job.is_terminal(now)
        completed = status == COMPLETED
        doc: dict[str, Any] = {
            "batch_id": job.batch_id,
            "status": status,
            "entity": "person",
            "action": "contact_enrich",
            "identifier_count": job.identifier_count,
            "result_count": (job.result_count or 0) if completed else 0,
            "entities_requested": job.identifier_count,
            "entities_fulfilled": (job.entities_fulfilled or 0) if completed else 0,
            "created_at": iso(job.created_at),
            "completed_at": iso(job.terminal_at) if terminal else None,
            "download_url": None,
            "download_urls": None,
            "error_message": job.error_message if status == FAILED else None,
        }
        if base_url is None:
            del doc["download_url"], doc["download_urls"]
        elif completed:
            urls = self._part_urls(job, base_url, now)
            doc["download_url"] = urls[0]
            doc["download_urls"] = urls
        return doc

    @staticmethod
    def _base_url(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    # -- API plumbing -------------------------------------------------------------------
    async def _apply_call_faults(self) -> None:
        """Latency, hangs, 5xx and 429 bursts: applied to every API call before anything else."""
        faults = self.faults.faults
        if faults.latency_seconds:
            await asyncio.sleep(faults.latency_seconds)
        if self.faults.take("hang_next_calls"):
            await asyncio.sleep(faults.hang_seconds)
        status = self.faults.server_error_status()
        if status == 502:
            raise _Rejection(
                Response(
                    "<html><head><title>502 Bad Gateway</title></head>"
                    "<body><h1>502 Bad Gateway</h1></body></html>",
                    status_code=502,
                    media_type="text/html",
                )
            )
        if status == 503:
            raise _Rejection(_message(503, "Service temporarily unavailable"))
        if status is not None:
            raise _Rejection(_message(500, "Internal server error"))
        if self.faults.take("rate_limit_burst"):
            reset = faults.rate_limit_reset_seconds
            reset_text = str(int(reset)) if float(reset).is_integer() else f"{reset:g}"
            raise _Rejection(
                _error(
                    429,
                    "Rate limit exceeded",
                    type_="rate_limit_exceeded",
                    metadata={"retry_after_seconds": reset},
                    headers={
                        "x-ratelimit-limit": "60",
                        "x-ratelimit-remaining": "0",
                        "x-ratelimit-reset": reset_text,
                        "retry-after": str(max(1, math.ceil(reset))),
                    },
                )
            )

    def _authenticate(self, request: Request) -> str:
        """Owner id for the request's bearer key, or a 401 rejection."""
        header = request.headers.get("authorization", "").strip()
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if not header or (scheme.lower() == "bearer" and not key):
            raise _Rejection(_message(401, "Missing API key in request"))
        if scheme.lower() != "bearer":
            raise _Rejection(_message(401, "Invalid API key in request"))
        expected = self.config.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            raise _Rejection(_message(401, "Invalid API key in request"))
        return self.store.owner_of(key)

    def authorize_admin(self, request: Request) -> None:
        """With a fixed key, ``/_emulator/*`` (but health) asks for it like the API does: the
        submissions log shows every URL and webhook token, and faults and credits steer the
        server. With no fixed key (any key works) the admin API stays open."""
        if self.config.api_key is not None:
            self._authenticate(request)

    def _api(
        self, handler: Callable[[Request, str], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap an API endpoint: call faults, then auth, then the handler."""

        async def endpoint(request: Request) -> Response:
            try:
                await self._apply_call_faults()
                owner = self._authenticate(request)
                return await handler(request, owner)
            except _Rejection as rejection:
                return rejection.response

        return endpoint

    # -- API endpoints ----------------------------------------------------------------
    async def submit(self, request: Request, owner: str) -> Response:
        """Create a job; under the echo_secrets fault a 400 echoes the caller's secrets."""
        try:
            response = await self._submit(request, owner)
        except _Rejection as rejection:
            response = rejection.response
        if response.status_code == 400 and self.faults.faults.echo_secrets:
            authorization = request.headers.get("authorization", "")
            return echo.echo_rejection(response, await request.body(), authorization)
        return response

    def _echoed(self, request: Request, job: Job, doc: dict[str, Any]) -> dict[str, Any]:
        """A status document, its error_message echoing secrets under the echo_secrets fault."""
        if self.faults.faults.echo_secrets:
            echo.echo_failure(doc, request.headers.get("authorization", ""), job.webhook_url)
        return doc

    @staticmethod
    async def _submit_body(request: Request) -> dict[str, Any]:
        """The submit's JSON object, after the version header check (400s as rejections)."""
        version = request.headers.get("x-api-version")
        if version is None:
            raise _Rejection(_message(400, "Missing required header: x-api-version"))
        if version.strip() != API_VERSION:
            raise _Rejection(
                _message(
                    400, f"Unsupported x-api-version: {version[:40]!r}; supported: {API_VERSION}"
                )
            )
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _Rejection(_error(400, "Request body is not valid JSON")) from None
        if not isinstance(body, dict):
            raise _Rejection(_error(400, "Request body must be a JSON object"))
        return body

    def _check_capacity(self, owner: str, now: float) -> None:
        """Refuse a new job: no contact access (403), no credits (402/403), five active (429)."""
        if self.faults.faults.deny_contact_access:
            raise _Rejection(
                _error(
                    403,
                    "Your plan does not include access to contact enrichment",
                    type_="permission_denied",
                    metadata={"required_access": "contact_enrichment"},
                )
            )
        balance = self.store.billing()["balance"]
        if balance <= 0:
            status = (
                self.faults.faults.insufficient_credits_status
                or self.config.insufficient_credits_status
            )
            raise _Rejection(
                _error(
                    status,
                    "Insufficient credits",
                    type_="insufficient_credits",
                    metadata={"balance": max(0, balance)},
                )
            )
        active = self.store.count_active(owner, now)
        if active >= MAX_ACTIVE_JOBS:
            raise _Rejection(
                _error(
                    429,
                    f"Too many active batch jobs (max {MAX_ACTIVE_JOBS} per user)",
                    type_="too_many_active_jobs",
                    metadata={"active_jobs": active, "max_active_jobs": MAX_ACTIVE_JOBS},
                )
            )

    async def _submit(self, request: Request, owner: str) -> Response:
        body = await self._submit_body(request)
        urls = self._parse_urls(body.get("professional_network_profile_urls"))
        fields = self._parse_fields(body.get("fields"))
        webhook_url = body.get("webhook_url")
        if webhook_url is not None and not _valid_webhook(webhook_url):
            return _error(
                400,
                "webhook_url must be an absolute http(s) URL",
                metadata={"parameter": "webhook_url"},
            )
        verified = body.get("verified")
        if verified is not None and not isinstance(verified, bool):
            return _error(400, "verified must be a boolean", metadata={"parameter": "verified"})
        if self.faults.take("reject_next_submits"):
            return _error(
                400, "webhook_url is not reachable", metadata={"parameter": "webhook_url"}
            )

        now = time.time()
        self._check_capacity(owner, now)
        failed = self.faults.decide_job_failure()
        faults = self.faults.faults
        started = now + self.config.pending_seconds
        batch_id = str(uuid.uuid4())
        job = self.store.insert_job(
            NewJob(
                batch_id=batch_id,
                owner=owner,
                created_at=now,
                started_at=started,
                terminal_at=started + self._processing_seconds(batch_id),
                fields=fields,
                urls=urls,
                webhook_url=webhook_url,
                verified=bool(verified),
                outcome=FAILED if failed else COMPLETED,
                error_message=JOB_FAILURE_MESSAGE if failed else None,
                flat_records=faults.flat_records,
                drop_records=faults.drop_records_per_job,
                duplicate_records=faults.duplicate_records_per_job,
                part_size=self.config.part_size,
            )
        )
        log.info("batch %s accepted: %d URLs, fields %s", job.batch_id, len(urls), list(fields))
        if self.faults.take("delay_next_submits"):
            await asyncio.sleep(faults.submit_delay_seconds)
        return JSONResponse(
            {
                "batch_id": job.batch_id,
                "status": "pending",
                "entity": "person",
                "action": "contact_enrich",
                "identifier_count": job.identifier_count,
                "entities_requested": job.identifier_count,
                "status_url": f"/batch/{job.batch_id}",
            }
        )

    def _processing_seconds(self, batch_id: str) -> float:
        jitter = self.config.processing_jitter_seconds
        extra = random.Random(batch_id).uniform(0.0, jitter) if jitter > 0 else 0.0
        return self.config.processing_seconds + extra

    @staticmethod
    def _parse_urls(raw: Any) -> tuple[str, ...]:
        if raw is None:
            urls: list[str] = []
        elif isinstance(raw, str):
            urls = [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(raw, list) and all(isinstance(u, str) for u in raw):
            urls = list(raw)
        else:
            raise _Rejection(
                _error(
                    400,
                    "professional_network_profile_urls must be a list of strings"
                    " or a comma-separated string",
                    metadata={"max_identifiers": MAX_IDENTIFIERS},
                )
            )
        if not urls:
            raise _Rejection(
                _error(
                    400,
                    "professional_network_profile_urls is required and must contain"
                    " at least one profile URL",
                    metadata={"max_identifiers": MAX_IDENTIFIERS},
                )
            )
        if len(urls) > MAX_IDENTIFIERS:
            raise _Rejection(
                _error(
                    400,
                    f"Too many identifiers: {len(urls)} (max {MAX_IDENTIFIERS} per batch)",
                    metadata={"max_identifiers": MAX_IDENTIFIERS, "identifier_count": len(urls)},
                )
            )
        invalid = [u for u in urls if not _PROFILE_URL.match(u.strip())]
        if invalid:
            raise _Rejection(
                _error(
                    400,
                    f"{len(invalid)} identifier(s) are not professional network profile URLs",
                    metadata={"invalid_identifiers": invalid, "max_identifiers": MAX_IDENTIFIERS},
                )
            )
        return tuple(urls)

    @staticmethod
    def _parse_fields(raw: Any) -> tuple[str, ...]:
        if isinstance(raw, str):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list) or not raw or not all(isinstance(f, str) for f in raw):
            raise _Rejection(
                _error(
                    400,
                    "fields is required: a non-empty list of contact fields",
                    metadata={"available_fields": list(FIELDS)},
                )
            )
        invalid = [f for f in raw if f not in FIELDS]
        if invalid:
            raise _Rejection(
                _error(
                    400,
                    f"Invalid field(s): {', '.join(invalid)}",
                    metadata={"available_fields": list(FIELDS), "invalid_fields": invalid},
                )
            )
        return tuple(dict.fromkeys(raw))

    async def get_batch(self, request: Request, owner: str) -> Response:
        batch_id = request.path_params["batch_id"]
        job = self.store.get_job(batch_id)
        if job is None or not hmac.compare_digest(job.owner, owner):
            return _message(404, "Batch not found")
        now = time.time()
        job = self._ensure_finalised(job, now)
        doc = self.status_doc(job, now, base_url=self._base_url(request))
        return JSONResponse(self._echoed(request, job, doc))

    async def list_batches(self, request: Request, owner: str) -> Response:
        params = request.query_params
        limit_text = params.get("limit", "20")
        try:
            limit = int(limit_text)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _error(
                400, "limit must be an integer between 1 and 100", metadata={"parameter": "limit"}
            )
        status = params.get("status") or None
        if status is not None and status not in STATUSES:
            return _error(
                400,
                f"status must be one of {', '.join(STATUSES)}",
                metadata={"parameter": "status", "allowed_values": list(STATUSES)},
            )
        before: int | None = None
        cursor = params.get("cursor")
        if cursor:
            try:
                before = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["before"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return _error(400, "cursor is invalid", metadata={"parameter": "cursor"})
        now = time.time()
        jobs = self.store.list_jobs(owner, now, status=status, before_seq=before, limit=limit + 1)
        has_more = len(jobs) > limit
        page = [self._ensure_finalised(job, now) for job in jobs[:limit]]
        next_cursor = (
            base64.urlsafe_b64encode(json.dumps({"before": page[-1].seq}).encode()).decode()
            if has_more
            else None
        )
        base_url = self._base_url(request)
        return JSONResponse(
            {
                "jobs": [
                    self._echoed(request, job, self.status_doc(job, now, base_url=base_url))
                    for job in page
                ],
                "next_cursor": next_cursor,
                "has_more": has_more,
            }
        )

    # -- object store ---------------------------------------------------------------------
    async def download(self, request: Request) -> Response:
        batch_id = request.path_params["batch_id"]
        part = request.path_params["part"]
        path = f"/_files/{batch_id}/{part}"
        resource = f"/{batch_id}/{part}"
        if "authorization" in request.headers:
            return _s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter,"
                " Signature query string parameter or the Authorization header should be"
                " specified",
                resource,
            )
        now = time.time()
        try:
            results.verify_presigned(self._signing_key, path, request.query_params, now=now)
        except results.SignatureProblem as problem:
            status = 400 if problem.code == "AuthorizationQueryParametersError" else 403
            return _s3_error(status, problem.code, problem.message, resource)
        job = self.store.get_job(batch_id) if _BATCH_ID.match(batch_id) else None
        match = results.PART_NAME.match(part)
        if job is None or match is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", resource)
        job = self._ensure_finalised(job, now)
        if self.faults.store_down(job.terminal_at, now):
            return _s3_error(503, "SlowDown", "Please reduce your request rate.", resource)
        file = self.store.results_dir(batch_id) / part
        if not file.is_file():
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.", resource)
        data = file.read_bytes()
        spoiled = self.faults.spoil_first_download(batch_id, part)
        if spoiled or self.faults.take("truncate_next_downloads"):
            data = results.truncated(data)
        elif self.faults.take("corrupt_next_downloads"):
            data = results.corrupted(data)
        self.store.record_download(batch_id, now)
        return Response(data, media_type="application/octet-stream")

    # -- admin --------------------------------------------------------------------------
    async def health(self, _request: Request) -> Response:
        # The pid header lets EmulatorProcess tell its own child from another
        # server that happens to hold the same port.
        return JSONResponse({"ok": True}, headers={"x-emulator-pid": str(os.getpid())})

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def submissions(self, _request: Request) -> Response:
        self.finalise_due()
        now = time.time()
        return JSONResponse(
            {
                "submissions": [
                    {
                        "batch_id": job.batch_id,
                        "created_at": iso(job.created_at),
                        "terminal_at": iso(job.terminal_at),
                        "first_download_at": (
                            iso(job.first_download_at) if job.first_download_at else None
                        ),
                        "identifier_count": job.identifier_count,
                        "fields": list(job.fields),
                        "urls_sha256": job.urls_sha256,
                        "urls": list(job.urls),
                        "status": job.status(now),
                        "credits_billed": job.credits_billed,
                        "result_count": job.result_count,
                        "flat_records": job.flat_records,
                        "dropped_records": job.drop_records,
                        "duplicated_records": job.duplicate_records,
                        "webhook_url": job.webhook_url,
                        "webhook_attempts": job.webhook_attempts,
                        "webhook_delivered": job.webhook_delivered_at is not None,
                        "webhook_delivered_at": (
                            iso(job.webhook_delivered_at) if job.webhook_delivered_at else None
                        ),
                    }
                    for job in self.store.all_jobs()
                ]
            }
        )

    async def billing(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _json_body(request)
            balance = body.get("balance") if isinstance(body, dict) else None
            if not isinstance(balance, int) or isinstance(balance, bool):
                return _error(400, "balance must be an integer", metadata={"parameter": "balance"})
            return JSONResponse(self.store.set_balance(balance))
        self.finalise_due()
        return JSONResponse(self.store.billing())

    async def faults_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse(self.faults.reset())
        if request.method == "PATCH":
            try:
                return JSONResponse(self.faults.update(await _json_body(request)))
            except FaultConfigError as exc:
                return _error(400, str(exc))
        return JSONResponse(self.faults.as_dict())

    def config_doc(self) -> dict[str, Any]:
        doc = asdict(self.config)
        doc.pop("api_key")
        doc.pop("faults")
        doc.update(
            auth="fixed key" if self.config.api_key else "any non-empty key",
            max_active_jobs=MAX_ACTIVE_JOBS,
            max_identifiers=MAX_IDENTIFIERS,
            api_version=API_VERSION,
            state_dir=str(self.store.state_dir),
        )
        return doc

    async def config_endpoint(self, request: Request) -> Response:
        if request.method == "PATCH":
            try:
                changes = validate_config_changes(await _json_body(request))
            except ConfigError as exc:
                return _error(400, str(exc))
            for name, value in changes.items():
                setattr(self.config, name, value)
        return JSONResponse(self.config_doc())


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise _Rejection(_error(400, "Request body is not valid JSON")) from None


def _valid_webhook(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _admin(
    emulator: Emulator,
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """An admin endpoint: the fixed key when there is one, then the handler."""

    async def endpoint(request: Request) -> Response:
        try:
            emulator.authorize_admin(request)
            return await handler(request)
        except _Rejection as rejection:
            return rejection.response

    return endpoint


async def _http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"message": exc.detail}, status_code=exc.status_code, headers=exc.headers or None
    )


async def _server_error(_request: Request, exc: Exception) -> Response:
    log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse({"message": "Internal server error"}, status_code=500)


def create_app(state_dir: Path | str, config: EmulatorConfig | None = None) -> Starlette:
    """Build the ASGI app for a state dir (the server's entry point wraps it in uvicorn)."""
    emulator = Emulator(Path(state_dir), config or EmulatorConfig())
    routes = [
        Route("/batch/person/contact/enrich", emulator._api(emulator.submit), methods=["POST"]),
        Route("/batch", emulator._api(emulator.list_batches), methods=["GET"]),
        Route("/batch/{batch_id}", emulator._api(emulator.get_batch), methods=["GET"]),
        Route("/_files/{batch_id}/{part}", emulator.download, methods=["GET"]),
        Route("/openapi.json", emulator.openapi, methods=["GET"]),
        Route("/_emulator/health", emulator.health, methods=["GET"]),
        Route("/_emulator/submissions", _admin(emulator, emulator.submissions), methods=["GET"]),
        Route("/_emulator/billing", _admin(emulator, emulator.billing), methods=["GET", "POST"]),
        Route(
            "/_emulator/faults",
            _admin(emulator, emulator.faults_endpoint),
            methods=["GET", "PATCH", "DELETE"],
        ),
        Route(
            "/_emulator/config",
            _admin(emulator, emulator.config_endpoint),
            methods=["GET", "PATCH"],
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=emulator.lifespan,
        exception_handlers={HTTPException: _http_exception, Exception: _server_error},
    )
    app.state.emulator = emulator
    return app


def wrap_with_access_log(app: ASGIApp) -> ASGIApp:
    """The app as served: with the redacting access log outside everything else."""
    return AccessLogMiddleware(app)

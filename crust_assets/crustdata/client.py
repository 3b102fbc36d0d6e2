"""Typed HTTP client for the Crustdata batch contact-enrich API.

Pure Python + httpx + pydantic; knows nothing of Dagster or of the emulator.
What it guarantees, and why:

* **One pooled connection set.** A single ``httpx.Client`` is reused for all API
  calls (keep-alive), with explicit connect/read/write/pool timeouts, and the
  ``x-api-version``, ``authorization`` and ``user-agent`` headers on every call.
  Downloads use a second client with *no* credentials (see ``download.py``).
* **Retries only where they are safe.** 5xx, rate-limit 429s, connection
  failures and read timeouts of GETs are retried with full-jitter backoff inside
  ``max_attempts`` and ``max_retry_seconds``. 400/401/402/403/404 and the
  five-active-jobs 429 are never retried. A submit whose request may have
  reached the server is never retried either (it would create and bill a second
  job): it raises :class:`AmbiguousSubmissionError` for the caller to look up in
  :meth:`CrustdataClient.list_batches` with :func:`~.lost_submit.find_lost_submit`.
* **No secret in any text.** The key lives in a ``SecretStr`` and is only put on
  the wire by an ``httpx.Auth`` hook; ``repr``, exception messages and logs never
  see it. Pre-signed URLs are redacted wherever we format them, and a log filter
  redacts them in httpx's own request logs. Text a server wrote (error messages and
  metadata, a failed job's ``error_message``) is scrubbed of the key and of the webhook
  URL's token, which a server may echo back.
* **Batch ids are UUIDs.** An id from the API goes into request paths and file names, so a
  document whose id is not a canonical UUID is refused as an unexpected response shape.
"""

from __future__ import annotations

import importlib.metadata
import logging
import random
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr, ValidationError

from .download import PartFile, fetch_part, shown_part_name
from .errors import (
    AmbiguousSubmissionError,
    AuthenticationError,
    CrustdataError,
    DownloadError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TooManyActiveJobsError,
    TransportError,
)
from .limits import DownloadLimits
from .models import FIELDS, MAX_URLS_PER_JOB, BatchStatus, ResultRecord, SubmitResponse, is_batch_id
from .records import normalise_result_line, parse_result_line
from .redact import SecretScrubber, install_log_redaction, redact_url
from .retry import RetryPolicy, parse_retry_after
from .urlcheck import UrlGuard

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "MAX_URLS_PER_JOB",
    "CrustdataClient",
]

logger = logging.getLogger(__name__)

API_VERSION = "2025-11-01"
DEFAULT_BASE_URL = "https://api.crustdata.com"
MAX_PAGE_SIZE = 100
SUBMIT_PATH = "/batch/person/contact/enrich"


def _default_user_agent() -> str:
    try:
        version = importlib.metadata.version("crust_assets")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"crust-assets/{version} python-httpx/{httpx.__version__}"


DEFAULT_USER_AGENT = _default_user_agent()

_ERROR_MESSAGE_LIMIT = 500
_ERROR_TYPE_LIMIT = 80
# Free-text fields of the API's documents, written by the server: scrubbed before use.
_SERVER_TEXT_FIELDS = ("status", "entity", "action", "error_message", "status_url")
_Doc = TypeVar("_Doc", SubmitResponse, BatchStatus)


class _BearerAuth(httpx.Auth):
    """Adds ``authorization: Bearer <key>`` to each API request at send time.

    Keeping the key out of the client's default headers means no headers dump of
    the client (or of ``vars(client)``) can show it.
    """

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(key='***')"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _download_client(
    timeouts: httpx.Timeout, limits: httpx.Limits, user_agent: str
) -> httpx.Client:
    """The HTTP client of result downloads, apart from the API's.

    Pre-signed URLs carry their own credential: no auth, no API headers. Redirects are followed
    by download.py, which checks every hop (urlcheck.UrlGuard); only gzip may be asked for,
    since httpx decodes other encodings without a bound on the output.
    """
    return httpx.Client(
        timeout=timeouts,
        limits=limits,
        headers={"user-agent": user_agent, "accept-encoding": "gzip"},
        follow_redirects=False,
    )


class CrustdataClient:
    """Client for ``/batch/person/contact/enrich``, ``/batch/{id}``, ``/batch`` and result files.

    Use as a context manager (or call :meth:`close`) so pooled connections are
    released. Not meant to be shared across processes; one per run/tick is fine.

    ``timeout`` is the read/write/pool timeout of each request, ``connect_timeout``
    the TCP/TLS connect timeout. ``max_attempts`` counts the first attempt;
    ``max_retry_seconds`` bounds the time one call may spend including retries.
    ``secrets`` are values besides the key that must never reach an exception or a returned
    value, e.g. the configured webhook URL (its token is masked wherever a server echoes it).
    """

    def __init__(
        self,
        api_key: str | SecretStr | None,
        base_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        tmp_dir: str | None = None,
        secrets: Iterable[str | None] = (),
        download_limits: DownloadLimits | None = None,
    ) -> None:
        if isinstance(api_key, SecretStr):
            api_key = api_key.get_secret_value()
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError("api_key must be a str, a pydantic SecretStr or None")
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, got {redact_url(base_url)!r}")
        self.base_url = base_url.rstrip("/")
        key = (api_key or "").strip()
        self._api_key: SecretStr | None = SecretStr(key) if key else None
        self._scrubber = SecretScrubber(key, *secrets)  # masked in all text a server wrote
        self._policy = RetryPolicy(
            max_attempts=max_attempts,
            max_retry_seconds=max_retry_seconds,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        self._tmp_dir = tmp_dir
        self.download_limits = download_limits or DownloadLimits()
        self._url_guard = UrlGuard.for_base_url(self.base_url, self.download_limits.allowed_hosts)
        self._rng = random.Random()
        timeouts = httpx.Timeout(connect=connect_timeout, read=timeout, write=timeout, pool=timeout)
        limits = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=4.0)
        install_log_redaction()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeouts,
            limits=limits,
            headers={
                "user-agent": user_agent,
                "x-api-version": API_VERSION,
                "accept": "application/json",
            },
            auth=_BearerAuth(self._api_key) if self._api_key is not None else None,
            follow_redirects=False,
        )
        self._download_http = _download_client(timeouts, limits, user_agent)

    # ------------------------------------------------------------------ basics

    def __repr__(self) -> str:
        key = "'***'" if self._api_key is not None else "None"
        return f"CrustdataClient(base_url={redact_url(self.base_url)!r}, api_key={key})"

    def close(self) -> None:
        """Close both connection pools. Idempotent."""
        self._http.close()
        self._download_http.close()

    def __enter__(self) -> CrustdataClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --------------------------------------------------------------- API calls

    def submit(
        self, urls: Sequence[str], fields: Sequence[str], webhook_url: str | None = None
    ) -> SubmitResponse:
        """Create one batch job for 1..300 profile URLs and the requested ``fields``.

        Validates inputs locally first (``ValueError``). Never retried once the
        request may have reached the server: raises :class:`AmbiguousSubmissionError`
        if the answer is lost. Raises :class:`TooManyActiveJobsError` at the
        five-active-jobs limit, :class:`InsufficientCreditsError` when out of credits.
        """
        url_list = _validate_urls(urls)
        field_list = _validate_fields(fields)
        body: dict[str, Any] = {
            "professional_network_profile_urls": url_list,
            "fields": field_list,
        }
        if webhook_url is not None:
            if urlsplit(webhook_url).scheme not in ("http", "https"):
                raise ValueError("webhook_url must be an http(s) URL")
            body["webhook_url"] = webhook_url
            self._scrubber.add(webhook_url)  # an error may echo it: its token must not show
        ambiguity = (len(url_list), tuple(field_list))
        response, sent_at = self._request("POST", SUBMIT_PATH, json_body=body, submit=ambiguity)
        try:
            submitted = self._scrubbed(SubmitResponse.model_validate(response.json()))
        except (ValueError, ValidationError) as exc:
            # 200 means the job exists, but we cannot tell (or use) its id: a lost answer.
            shape = self._shape_problems(exc) if isinstance(exc, ValidationError) else None
            raise self._ambiguous(
                "the submit was accepted (HTTP 200) but its body is not a batch document"
                + (f": unexpected response shape ({shape})" if shape else ""),
                sent_at,
                ambiguity,
                status_code=response.status_code,
            ) from None
        logger.info(
            "submitted batch %s (%d URLs, fields=%s)",
            submitted.batch_id,
            len(url_list),
            ",".join(field_list),
        )
        return submitted

    def status(self, batch_id: str) -> BatchStatus:
        """``GET /batch/{batch_id}``. Each call returns freshly signed download URLs.

        ``batch_id`` must be a UUID (``ValueError`` otherwise): it goes into the request path,
        so ``..`` or ``a/b`` must never get there, whoever supplied it.
        """
        if not is_batch_id(batch_id):
            shown = repr(batch_id)[:50] if isinstance(batch_id, str) else type(batch_id).__name__
            raise ValueError(f"batch_id must be a UUID (8-4-4-4-12 hex digits), got {shown}")
        path = f"/batch/{quote(batch_id, safe='')}"
        return self._parse(BatchStatus, self._get_json(path), path)

    def wait_until_terminal(
        self, batch_id: str, *, poll_interval: float = 2.0, timeout: float = 600.0
    ) -> BatchStatus:
        """Poll :meth:`status` until the job is completed or failed (``TimeoutError`` after
        ``timeout`` s). For scripts and tests; the pipeline's sensor polls on its own."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.status(batch_id)
            if batch.is_terminal:
                return batch
            if time.monotonic() + poll_interval > deadline:
                raise TimeoutError(f"batch {batch_id} still {batch.status} after {timeout:.0f} s")
            time.sleep(poll_interval)

    def list_batches(
        self, status: str | None = None, limit: int | None = None, page_size: int = 100
    ) -> Iterator[BatchStatus]:
        """Iterate the account's jobs, most recent first, following ``next_cursor``.

        Lazy: a page is fetched only when the previous one is used up. ``limit``
        caps the total number yielded (None = all); ``page_size`` is the per-request
        ``limit`` (1..100). Arguments are checked now, requests happen on iteration.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be in 1..{MAX_PAGE_SIZE}, got {page_size}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0 or None, got {limit}")
        return self._iter_batches(status, limit, page_size)

    def _iter_batches(
        self, status: str | None, limit: int | None, page_size: int
    ) -> Iterator[BatchStatus]:
        remaining = limit
        cursor: str | None = None
        seen_cursors: set[str] = set()
        while remaining is None or remaining > 0:
            params: dict[str, str | int] = {
                "limit": page_size if remaining is None else min(page_size, remaining)
            }
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            page = self._get_json("/batch", params=params)
            jobs = page.get("jobs") if isinstance(page, dict) else None
            if not isinstance(jobs, list):
                raise CrustdataError("GET /batch: response has no 'jobs' list")
            for job in jobs:
                yield self._parse(BatchStatus, job, "/batch")
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return
            cursor = page.get("next_cursor")
            has_more = page.get("has_more", bool(cursor))
            if not jobs or not cursor or not has_more:
                return
            if cursor in seen_cursors:
                raise CrustdataError("GET /batch: the server repeated a cursor; stopping")
            seen_cursors.add(cursor)

    # ------------------------------------------------------------------ results

    def open_result_parts(self, batch: BatchStatus) -> Iterator[tuple[str, IO[bytes]]]:
        """Yield ``(part name, decompressed byte stream)`` for each result part, in order.

        One part at a time: a part is downloaded to a temp file and verified end
        to end before it is yielded, and its stream and file are closed when the
        iterator moves on. ``result_count == 0`` yields nothing (the file was
        never written). An expired/rejected pre-signed URL (400/403) triggers one
        :meth:`status` call for fresh URLs; a part that arrives truncated or corrupt is
        fetched again (``DownloadLimits.part_attempts``). Every URL and redirect hop is
        checked (``UrlGuard``) and every part is bounded (``DownloadLimits``).
        """
        if batch.status != "completed":
            raise ValueError(
                f"batch {batch.batch_id} is {batch.status!r}; only completed jobs have results"
            )
        if batch.result_count == 0:
            return iter(())
        return self._iter_parts(batch)

    def _iter_parts(self, batch: BatchStatus) -> Iterator[tuple[str, IO[bytes]]]:
        urls = batch.part_urls
        if not urls:
            raise DownloadError(
                f"batch {batch.batch_id} is completed with result_count="
                f"{batch.result_count} but has no download_url",
                batch_id=batch.batch_id,
                part="-",
            )
        for index in range(len(urls)):
            name = shown_part_name(urls[index], index)
            part = self._download_part(batch.batch_id, index, name, urls)
            try:
                stream = part.open()
                try:
                    yield name, stream
                finally:
                    stream.close()
            finally:
                part.close()

    def _download_part(self, batch_id: str, index: int, name: str, urls: list[str]) -> PartFile:
        """Download and verify part ``index``, fetching it again while it arrives broken.

        On 400/403 (expired signature) ``urls`` is refreshed in place, once, through
        :meth:`status`, so later parts use the fresh signatures too.
        """

        def refresh() -> None:
            fresh = self.status(batch_id).part_urls
            names = [shown_part_name(u, i) for i, u in enumerate(fresh)]
            if name not in names:
                raise DownloadError(
                    f"download of batch {batch_id} {name} failed: the download URL was refused "
                    "and the refreshed status no longer lists this part",
                    batch_id=batch_id,
                    part=name,
                )
            urls[:] = fresh
            position[0] = names.index(name)

        position = [index]
        return fetch_part(
            self._download_http,
            lambda: urls[position[0]],
            refresh,
            batch_id=batch_id,
            part=name,
            policy=self._policy,
            limits=self.download_limits,
            guard=self._url_guard,
            tmp_dir=self._tmp_dir,
        )

    def iter_results(self, batch: BatchStatus) -> Iterator[ResultRecord]:
        """Yield every result record of a completed job, part by part, in file order.

        Constant memory: one part on disk at a time, one line in memory at a time.
        All-or-nothing per part: a part is downloaded and gzip-verified, then every
        line is parsed once *without* yielding, and only then parsed again and
        yielded. So :class:`DownloadError` and :class:`ResultParseError` (which
        names batch, part and line) are raised before any record of the bad part
        is yielded; a caller that retries never sees a record of that part twice.
        (Parsing twice costs a few microseconds per record; a job has <= 300.)
        Blank lines are skipped.
        """
        parts = self.open_result_parts(batch)  # validates now, downloads lazily
        return self._iter_records(batch.batch_id, parts)

    @staticmethod
    def _iter_records(
        batch_id: str, parts: Iterator[tuple[str, IO[bytes]]]
    ) -> Iterator[ResultRecord]:
        for name, stream in parts:
            # Pass 1: check every line, yield nothing.
            for line_number, line in enumerate(stream, start=1):
                if line.strip():
                    normalise_result_line(
                        line, batch_id=batch_id, part=name, line_number=line_number
                    )
            # Pass 2: the part is known good; parse again and yield.
            stream.seek(0)
            for line_number, line in enumerate(stream, start=1):
                if line.strip():
                    yield parse_result_line(
                        line, batch_id=batch_id, part=name, line_number=line_number
                    )

    # ---------------------------------------------------------------- plumbing

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response, _ = self._request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise CrustdataError(
                f"GET {path}: response is not JSON (HTTP {response.status_code})",
                status_code=response.status_code,
            ) from None

    def _parse(self, model: type[BatchStatus], data: Any, path: str) -> BatchStatus:
        """Validate a status document (ids must be UUIDs) and scrub its server-written text."""
        try:
            return self._scrubbed(model.model_validate(data))
        except ValidationError as exc:
            problems = self._shape_problems(exc)
            raise CrustdataError(f"GET {path}: unexpected response shape ({problems})") from None

    def _shape_problems(self, exc: ValidationError) -> str:
        """``field: problem`` for the first few errors; never the offending values themselves."""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        return self._scrubber.text(problems, limit=_ERROR_MESSAGE_LIMIT)

    def _scrubbed(self, doc: _Doc) -> _Doc:
        """``doc`` with the free text a server wrote (``error_message``, ``status``...) scrubbed.

        Callers put these into events and exceptions; an API that echoes the key or the
        webhook URL into a failed job's ``error_message`` must not leak them that way.
        """
        changes: dict[str, str] = {}
        for name in _SERVER_TEXT_FIELDS:
            value = getattr(doc, name, None)
            if isinstance(value, str):
                clean = self._scrubber.text(value, limit=_ERROR_MESSAGE_LIMIT)
                if clean != value:
                    changes[name] = clean
        return doc.model_copy(update=changes) if changes else doc

    def _ambiguous(
        self,
        reason: str,
        sent_at: datetime,
        ambiguity: tuple[int, tuple[str, ...]],
        status_code: int | None = None,
    ) -> AmbiguousSubmissionError:
        count, fields = ambiguity
        end = _utcnow()
        return AmbiguousSubmissionError(
            f"POST {SUBMIT_PATH}: {reason}; the job may or may not exist "
            f"({count} identifiers, sent {sent_at.isoformat()}, gave up {end.isoformat()}); "
            "not retried - reconcile with list_batches",
            window_start=sent_at,
            window_end=end,
            identifier_count=count,
            fields=fields,
            status_code=status_code,
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        submit: tuple[int, tuple[str, ...]] | None = None,
    ) -> tuple[httpx.Response, datetime]:
        """Send one logical API call with retries; return the 2xx response and send time.

        ``submit`` marks the non-idempotent submit call: anything that may have
        reached the server turns into AmbiguousSubmissionError instead of a retry.
        """
        budget = self._policy.start()
        where = f"{method} {path}"
        while True:
            budget.note_attempt()
            sent_at = _utcnow()
            error: CrustdataError
            try:
                response = self._http.request(method, path, params=params, json=json_body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the server: retrying is safe, even for submit.
                error = TransportError(f"{where}: could not connect ({type(exc).__name__})")
                delay = self._policy.backoff(budget.attempts, self._rng)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                # Read/write timeout, reset, server hung up: the request may have been processed.
                if submit is not None:
                    raise self._ambiguous(
                        f"no response ({type(exc).__name__})", sent_at, submit
                    ) from None
                error = TransportError(f"{where}: no response ({type(exc).__name__})")
                if method != "GET":
                    raise error from None
                delay = self._policy.backoff(budget.attempts, self._rng)
            except httpx.HTTPError as exc:
                # Invalid URL, unsupported protocol, local protocol errors: not transient.
                raise TransportError(f"{where}: request failed ({type(exc).__name__})") from None
            else:
                if response.is_success:
                    return response, sent_at
                error = self._error_from_response(response, where)
                if isinstance(error, RateLimitedError):
                    delay = self._policy.rate_limit_delay(error.retry_after or 0.0, self._rng)
                elif isinstance(error, ServerError):
                    if submit is not None and response.status_code == 504:
                        # A gateway timeout says nothing about whether the backend created the job.
                        raise self._ambiguous(
                            "gateway timeout (HTTP 504)", sent_at, submit, status_code=504
                        ) from None
                    delay = self._policy.backoff(budget.attempts, self._rng)
                else:
                    raise error from None
            if not budget.can_retry(delay):
                error.message += (
                    f" (gave up after {budget.attempts} attempt(s) in {budget.elapsed:.1f} s)"
                )
                error.args = (error.message,)
                raise error from None
            logger.warning("%s failed (%s); retry in %.2f s", where, error.message, delay)
            time.sleep(delay)

    def _error_from_response(self, response: httpx.Response, where: str) -> CrustdataError:
        """Map an error response to the exception class the caller acts on."""
        status = response.status_code
        error_type, message, metadata = _parse_error_body(response)
        message = self._scrub(message or response.reason_phrase or "")
        if error_type is not None:
            error_type = self._scrubber.text(error_type, limit=_ERROR_TYPE_LIMIT)
        details = self._scrubber.value(metadata)  # an echoed key or webhook URL stays out
        text = f"{where} -> HTTP {status}" + (f" {error_type}" if error_type else "")
        text += f": {message}" if message else ""
        kw: dict[str, Any] = {"status_code": status, "error_type": error_type, "details": details}
        lowered = f"{error_type or ''} {message}".lower()
        if status == 400:
            return InvalidRequestError(text, **kw)
        if status == 401:
            return AuthenticationError(text, **kw)
        if status == 402 or (status == 403 and "credit" in lowered):
            return InsufficientCreditsError(text, **kw)
        if status == 403:
            return PermissionDeniedError(text, **kw)
        if status == 404:
            return NotFoundError(text, **kw)
        if status == 429:
            retry_after = parse_retry_after(response.headers)
            active_jobs = "active" in lowered and "job" in lowered
            if active_jobs or retry_after is None:
                return TooManyActiveJobsError(text, **kw)
            return RateLimitedError(
                f"{text} (server asks to wait {retry_after:.1f} s)", retry_after=retry_after, **kw
            )
        if 500 <= status <= 599:
            return ServerError(text, **kw)
        return CrustdataError(text, **kw)

    def _scrub(self, text: str) -> str:
        """Server-supplied text, safe to show: no key or webhook token (even if echoed), no URL
        queries, at most ``_ERROR_MESSAGE_LIMIT`` characters."""
        return self._scrubber.text(text, limit=_ERROR_MESSAGE_LIMIT)


def _parse_error_body(response: httpx.Response) -> tuple[str | None, str | None, dict[str, Any]]:
    """(type, message, metadata) from ``{"message"}`` or ``{"error": {type, message, metadata}}``.

    Falls back to a snippet of a non-JSON body (e.g. an HTML page from a proxy).
    """
    try:
        body = response.json()
    except ValueError:
        snippet = " ".join(response.text[:200].split())
        return None, snippet or None, {}
    if not isinstance(body, dict):
        return None, None, {}
    error_type: str | None = None
    message: str | None = None
    metadata: dict[str, Any] = {}
    inner = body.get("error")
    if isinstance(inner, dict):
        error_type = _str_or_none(inner.get("type") or inner.get("code"))
        message = _str_or_none(inner.get("message") or inner.get("detail"))
        meta = inner.get("metadata") or inner.get("details")
        if isinstance(meta, dict):
            metadata = dict(meta)
    elif isinstance(inner, str):
        message = inner
    if message is None:
        message = _str_or_none(body.get("message") or body.get("detail"))
    if error_type is None:
        error_type = _str_or_none(body.get("type"))
    if not metadata:
        meta = body.get("metadata") or body.get("details")
        if isinstance(meta, dict):
            metadata = dict(meta)
    return error_type, message, metadata


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _validate_urls(urls: Sequence[str]) -> list[str]:
    if isinstance(urls, (str, bytes)):
        raise ValueError("urls must be a sequence of profile URLs, not a single string")
    url_list = list(urls)
    if not url_list:
        raise ValueError("urls is empty: a job needs 1 to 300 profile URLs")
    if len(url_list) > MAX_URLS_PER_JOB:
        raise ValueError(
            f"{len(url_list)} URLs given: a job takes at most {MAX_URLS_PER_JOB}; split the list"
        )
    for i, url in enumerate(url_list):
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"urls[{i}] is not a non-empty string")
    return url_list


def _validate_fields(fields: Sequence[str]) -> list[str]:
    if isinstance(fields, (str, bytes)):
        raise ValueError("fields must be a sequence of field names, not a single string")
    field_list = list(dict.fromkeys(fields))  # drop repeats, keep order
    if not field_list:
        raise ValueError(f"fields is empty: choose from {', '.join(FIELDS)}")
    unknown = [f for f in field_list if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; allowed: {', '.join(FIELDS)}")
    return field_list

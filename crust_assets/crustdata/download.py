"""Download one pre-signed result part to a temp file, verify it, then decode it lazily.

Design (why it looks like this):

* **Constant memory.** The body is streamed in 64 KiB chunks into a ``SpooledTemporaryFile``
  (kept in RAM up to 8 MiB, then spilled to disk), and decompressed later with
  ``gzip.GzipFile`` one buffered block at a time. No step holds a whole part.
* **Verify before yielding.** After the download, the whole gzip stream is read through once
  (CRC and length trailer included). A truncated or corrupt file is therefore a
  :class:`DownloadError` *before* the first record of the part is yielded, so a retry of the
  part never yields a record twice. The cost is decompressing twice.
* **Heal per part.** A part that arrives truncated or corrupt is fetched again, up to
  ``DownloadLimits.part_attempts`` downloads with full-jitter exponential backoff (downloads
  are free); URLs rejected as expired (400/403) are refreshed once through ``status()``. Only
  when the part's own attempts run out does its :class:`DownloadError` reach the caller.
* **Bounded cost.** Every part has caps (``limits.py``): bytes read (reading stops at the cap,
  a ``Content-Length`` above it is refused unread), bytes decoded (each gzip layer counted),
  line length and line count (a gzip of newlines stops within a few MB), and a total deadline
  that also clips each read's timeout (a body trickling one byte at a time ends on time).
  A cap exceeded is final: the file really is that large, fetching it again costs the same.
* **One gzip layer, two only when announced.** The object store serves ``.jsonl.gz`` as
  ``application/octet-stream`` with no ``Content-Encoding``: one layer. A store that says
  ``Content-Encoding: gzip`` on that file sends two (its own around the file's); the raw bytes
  are stored and both unwrapped. Anything deeper is refused. Other encodings are refused too:
  httpx decodes them a whole chunk at a time, with no bound on the output.
* **Every URL checked, every hop.** Redirects are followed here, not by httpx, so each hop is
  checked by the client's ``UrlGuard`` (``urlcheck.py``) before it is requested.
* **No credentials, nothing echoed.** Downloads go through a separate ``httpx.Client`` without
  the API key. Of an error body only an S3-style ``<Code>`` is kept, and its ``<Message>`` only
  from the store's own host (redacted): a redirect to another service can never copy that
  service's answer into an error text.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import random
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, cast

import httpx

from .errors import DownloadError
from .gzipped import GZIP_MAGIC, open_decoded
from .gzipped import LimitExceeded as _LimitExceeded
from .gzipped import Wrap as _Wrap
from .limits import DownloadLimits, limit_text
from .models import part_name
from .redact import REDACTED, redact_text, redact_url
from .retry import RetryPolicy
from .urlcheck import UrlGuard

__all__ = [
    "GZIP_MAGIC",
    "Deadline",
    "PartFile",
    "download_part",
    "fetch_part",
    "open_decoded",
    "part_retry_delay",
    "shown_part_name",
    "verify_part",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
SPOOL_MAX_BYTES = 8 * 1024 * 1024
_ERROR_BODY_LIMIT = 4096
_SHOWN_URL_LIMIT = 200
_RAW_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Statuses of a pre-signed download that a fresh URL may cure: 403 = expired or bad signature
# (AccessDenied / SignatureDoesNotMatch), 400 = malformed/ambiguous auth.
REFRESHABLE_STATUSES = frozenset({400, 403})
_XML_TAG = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")
# AWS access-key ids (AKIA long-term, ASIA temporary, ...): masked in anything we keep.
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{12,}\b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

DEFAULT_LIMITS = DownloadLimits()


@dataclass
class Deadline:
    """The moment a part's download must be over; ``clock`` is injectable for tests."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()


@dataclass
class PartFile:
    """A downloaded, verified part: its raw bytes and how many gzip layers to unwrap."""

    file: IO[bytes]
    layers: int

    def open(self) -> IO[bytes]:
        """The decoded stream (close it, then :meth:`close` this)."""
        return open_decoded(self.file, max_layers=self.layers)

    def close(self) -> None:
        self.file.close()


@dataclass
class _Where:
    """What every error of one part names: batch, part and the (redacted) URL."""

    batch_id: str
    part: str
    url: str
    limits: DownloadLimits = field(default=DEFAULT_LIMITS)

    def error(
        self,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        limit: str | None = None,
    ) -> DownloadError:
        return DownloadError(
            f"download of batch {self.batch_id} {self.part} failed: {reason} ({self.url})",
            batch_id=self.batch_id,
            part=self.part,
            url=self.url,
            status_code=status,
            error_type=code,
            retryable=retryable,
            limit=limit,
        )

    def over(self, limit: str, what: str) -> DownloadError:
        return self.error(f"{what}: {limit_text(self.limits, limit)}", limit=limit)


def shown_part_name(url: str, index: int) -> str:
    """A part's file name for texts: ``part_name``, or ``part-<index>`` if it is odd or long."""
    name = part_name(url, index)
    if _CONTROL.search(name) or len(name) > 120:
        return f"part-{index:03d}"
    return name


def shown_url(url: object) -> str:
    """A URL as it may appear in text: redacted, no control characters, at most 200 chars."""
    text = _CONTROL.sub("?", redact_url(url))
    return text if len(text) <= _SHOWN_URL_LIMIT else text[:_SHOWN_URL_LIMIT] + "..."


# ---- the per-part retry loop ----------------------------------------------------------------
def part_retry_delay(
    error: DownloadError,
    attempt: int,
    limits: DownloadLimits,
    remaining: float,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before downloading the part again, or None to give up.

    Only failures the store may not repeat (a truncated or corrupt body) are retried, at most
    ``limits.part_attempts`` downloads in all, and only if the wait ends before the deadline.
    """
    if not error.retryable or attempt >= limits.part_attempts:
        return None
    delay = policy.backoff(attempt, rng)
    return delay if delay < remaining else None


def fetch_part(
    http: httpx.Client,
    url_of: Callable[[], str],
    refresh: Callable[[], None],
    *,
    batch_id: str,
    part: str,
    policy: RetryPolicy,
    limits: DownloadLimits = DEFAULT_LIMITS,
    guard: UrlGuard | None = None,
    tmp_dir: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PartFile:
    """Download and verify one part, fetching it again while it arrives broken.

    ``url_of()`` gives the part's current URL; ``refresh()`` asks the API for fresh ones (once,
    on 400/403) and raises DownloadError if the part is no longer listed.
    """
    deadline = Deadline.after(limits.deadline_seconds)
    attempt = 0
    refreshed = False
    while True:
        attempt += 1
        try:
            return download_part(
                http,
                url_of(),
                batch_id=batch_id,
                part=part,
                policy=policy,
                limits=limits,
                guard=guard,
                deadline=deadline,
                tmp_dir=tmp_dir,
                sleep=sleep,
            )
        except DownloadError as err:
            if err.status_code in REFRESHABLE_STATUSES and not refreshed:
                logger.info(
                    "download of batch %s %s refused (%s); fetching fresh URLs",
                    batch_id,
                    part,
                    err.error_type or err.status_code,
                )
                refresh()
                refreshed = True
                attempt -= 1  # a refused URL is not a broken download
                continue
            delay = part_retry_delay(err, attempt, limits, deadline.remaining(), policy)
            if delay is None:
                raise _final(err, attempt, refreshed) from None
            logger.warning("%s; fetching the part again in %.2f s", err.message, delay)
            sleep(delay)


def _final(err: DownloadError, attempts: int, refreshed: bool) -> DownloadError:
    if err.retryable:
        err.message += f" (gave up after {attempts} download(s) of this part)"
    if refreshed:
        err.message += " [after refreshing the download URLs]"
    err.args = (err.message,)
    return err


# ---- one download (transport retries inside the client's policy) -----------------------------
def download_part(
    http: httpx.Client,
    url: str,
    *,
    batch_id: str,
    part: str,
    policy: RetryPolicy,
    limits: DownloadLimits = DEFAULT_LIMITS,
    guard: UrlGuard | None = None,
    deadline: Deadline | None = None,
    tmp_dir: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PartFile:
    """Fetch ``url`` into a verified temp file.

    5xx, 429 and connection trouble are retried inside ``policy`` (and the deadline); every
    attempt starts a fresh temp file. Any other HTTP status raises :class:`DownloadError` with
    ``status_code`` set. A body that is not a complete gzip or UTF-8 JSONL file raises a
    ``retryable`` DownloadError (retried by :func:`fetch_part`, not here). The caller owns (and
    must close) the returned part.
    """
    where = _Where(batch_id, part, shown_url(url), limits)
    deadline = deadline or Deadline.after(limits.deadline_seconds)
    target = _parse_url(url)
    if target is None:  # raised outside the except: no httpx error in the chain
        raise where.error("invalid download URL")
    budget = policy.start()
    while True:
        budget.note_attempt()
        # Not a `with`: on success the open file is handed to the caller, who closes it.
        fh: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MAX_BYTES, dir=tmp_dir
        )
        try:
            failure, delay, layers = _fetch_into(http, target, fh, where, guard, deadline)
            if failure is None:
                return PartFile(fh, _verify(fh, where, layers, deadline))
        except BaseException:
            fh.close()
            raise
        fh.close()
        delay = policy.backoff(budget.attempts) if delay is None else delay
        if not budget.can_retry(delay) or delay >= deadline.remaining():
            failure.message += f" (gave up after {budget.attempts} attempt(s))"
            failure.args = (failure.message,)
            raise failure
        why = failure.error_type or failure.status_code or "transport error"
        logger.warning(
            "download of batch %s %s failed (%s); retrying in %.2f s",
            where.batch_id,
            where.part,
            why,
            delay,
        )
        sleep(delay)


def _fetch_into(
    http: httpx.Client,
    url: httpx.URL,
    fh: IO[bytes],
    where: _Where,
    guard: UrlGuard | None,
    deadline: Deadline,
) -> tuple[DownloadError | None, float | None, int]:
    """One GET (redirects followed and checked) into ``fh``.

    Returns ``(None, None, layers)`` on success (``layers`` = gzip layers allowed), ``(error,
    delay, 0)`` for a failure the client's policy retries (``delay`` None = backoff), and
    raises DownloadError when final.
    """
    # A timeout is the deadline's when the deadline is nearer than the client's own timeouts.
    clipped = deadline.remaining() < max(t or 0.0 for t in _timeouts(http.timeout))
    final: DownloadError | None = None
    try:
        with _guarded_get(http, url, where, guard, deadline) as (response, from_store):
            if response.status_code != 200:
                return (*_http_failure(response, where, from_store, deadline), 0)
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in _RAW_ENCODINGS:
                raise where.error(f"unsupported Content-Encoding {encoding[:40]!r}")
            _check_length(response, where)
            # No chunk_size: httpx would hold bytes back until it has that many, and a body
            # trickling one byte at a time would never reach the deadline check below.
            _copy_body(response.iter_raw(), fh, where, deadline)
            layers = 2 if encoding in ("gzip", "x-gzip") else 1
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL):
        final = where.error("invalid download URL")
    except httpx.TransportError as exc:
        if (clipped and isinstance(exc, httpx.TimeoutException)) or deadline.remaining() <= 0:
            final = where.over("deadline_seconds", "the part took too long")
        else:
            # Connection refused/reset, timeouts, a body cut short: retryable. The exception
            # text is not kept (it can quote the URL).
            return where.error(f"transport error {type(exc).__name__}"), None, 0
    except httpx.HTTPError as exc:
        final = where.error(type(exc).__name__)
    if final is not None:  # raised here, not in the except: no httpx error in the chain
        raise final
    if fh.tell() == 0:
        raise where.error("empty response body", retryable=True)
    return None, None, layers


@contextmanager
def _guarded_get(
    http: httpx.Client,
    url: httpx.URL,
    where: _Where,
    guard: UrlGuard | None,
    deadline: Deadline,
) -> Iterator[tuple[httpx.Response, bool]]:
    """The final response of a GET, each hop checked by ``guard``.

    Yields ``(response, from_store)``: ``from_store`` is False after any redirect (the answer
    then comes from a server the API did not name). Each hop's timeouts are cut to what is left
    of the deadline.
    """
    for hop in range(where.limits.max_redirects + 1):
        why = guard.refusal(url) if guard is not None else None
        if why is not None:
            shown = "" if hop == 0 else f" (redirect {hop} to {shown_url(url)})"
            raise where.error(f"download URL refused: {why}{shown}")
        timeout = _timeout(http.timeout, deadline)
        if timeout is None:
            raise where.over("deadline_seconds", "the part took too long")
        request = http.build_request("GET", url, timeout=timeout)
        response = http.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                yield response, hop == 0
                return
            url = url.join(location)
        finally:
            response.close()
    raise where.over("max_redirects", "too many redirects")


def _parse_url(url: str) -> httpx.URL | None:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None


def _timeouts(base: httpx.Timeout) -> tuple[float | None, ...]:
    return (base.connect, base.read, base.write, base.pool)


def _timeout(base: httpx.Timeout, deadline: Deadline) -> httpx.Timeout | None:
    """The client's timeouts, none longer than what is left of the deadline (None = none left)."""
    left = deadline.remaining()
    if left <= 0:
        return None
    connect, read, write, pool = (left if t is None or t > left else t for t in _timeouts(base))
    return httpx.Timeout(connect=connect, read=read, write=write, pool=pool)


def _check_length(response: httpx.Response, where: _Where) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > where.limits.max_bytes:
        raise where.over("max_bytes", f"the body is {declared} bytes long")


def _copy_body(chunks: Iterator[bytes], fh: IO[bytes], where: _Where, deadline: Deadline) -> None:
    """Write the body to ``fh``, stopping at the byte cap (nothing past it is spooled)."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > where.limits.max_bytes:
            raise where.over("max_bytes", "the body is larger than allowed")
        fh.write(chunk)
        if deadline.remaining() <= 0:
            raise where.over("deadline_seconds", "the part took too long")


def _http_failure(
    response: httpx.Response, where: _Where, from_store: bool, deadline: Deadline
) -> tuple[DownloadError, float | None]:
    """A non-200 answer: ``(error, delay)`` if the policy retries it, else raises the error."""
    status = response.status_code
    code, message = _store_error(response, where, deadline)
    reason = f"HTTP {status}" + (f" {code}" if code else "")
    if message and from_store:
        reason += f": {message}"
    err = where.error(reason, status=status, code=code)
    if status >= 500 or status in (408, 429):
        retry_after = response.headers.get("retry-after", "")
        try:
            return err, float(retry_after) if retry_after else None
        except ValueError:
            return err, None
    raise err


def _store_error(
    response: httpx.Response, where: _Where, deadline: Deadline
) -> tuple[str | None, str | None]:
    """(Code, Message) of an S3-style XML error body, read at most a few KiB; else (None, None).

    Any other body (an internal service's page, JSON with a key in it) is dropped unread. The
    part's deadline bounds the reading too: each read has its own timeout, so an error body
    trickling one byte at a time would otherwise hold the attempt for hours.
    """
    body = b""
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT or deadline.remaining() <= 0:
                break
    except httpx.HTTPError:
        pass
    if deadline.remaining() <= 0:
        status = response.status_code
        raise where.over("deadline_seconds", f"the HTTP {status} error body took too long")
    text = body[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
    if "<Error>" not in text:
        return None, None
    found = dict(m.groups() for m in _XML_TAG.finditer(text))
    return _clean(found.get("Code")), _clean(found.get("Message"))


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return _KEY_ID.sub(REDACTED, redact_text(_CONTROL.sub(" ", value)))


# ---- decoding and verification --------------------------------------------------------------
class _Counted:
    """A readable stream that raises once more than ``cap`` bytes came out of it (or time is up)."""

    def __init__(
        self,
        inner: IO[bytes],
        cap: int,
        deadline: Deadline | None,
        limit: str = "max_decompressed_bytes",
    ) -> None:
        self.inner = inner
        self.cap = cap
        self.deadline = deadline
        self.limit = limit
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.total += len(data)
        if self.total > self.cap:
            raise _LimitExceeded(self.limit, "the part is too large")
        if self.deadline is not None and self.deadline.remaining() <= 0:
            raise _LimitExceeded("deadline_seconds", "the part took too long")
        return data


def _counter(limits: DownloadLimits, deadline: Deadline | None) -> _Wrap:
    """The ``counted`` of :func:`open_decoded` for verification: every stream against its cap.

    The raw bytes of a gzip are counted too: for a gzip of thousands of empty members, GzipFile
    loops inside one read() without producing output, and only its input reads see the deadline.
    """

    def counted(stream: IO[bytes], decoded: bool) -> IO[bytes]:
        if decoded:
            return cast(IO[bytes], _Counted(stream, limits.max_decompressed_bytes, deadline))
        return cast(IO[bytes], _Counted(stream, limits.max_bytes, deadline, "max_bytes"))

    return counted


class _LineCheck:
    """Counts line breaks and measures the current line, block by block, in C where it can.

    A block shorter than what is left of the line cap needs no per-line work; only a block that
    could hold an over-long line is walked line by line (at most ``max_lines`` steps in all).
    """

    def __init__(self, limits: DownloadLimits) -> None:
        self.max_line = limits.max_line_bytes
        self.max_lines = limits.max_lines
        self.lines = 0
        self.current = 0  # bytes of the line being read, without its line break

    def feed(self, block: bytes) -> None:
        newlines = block.count(b"\n")
        number = self.lines + 1  # the line being read where this block starts
        self.lines += newlines
        if self.lines > self.max_lines:
            raise _LimitExceeded("max_lines", f"the part has more than {self.max_lines} lines")
        if not newlines:
            self.current += len(block)
        elif self.current + len(block) <= self.max_line:
            self.current = len(block) - block.rfind(b"\n") - 1
        else:
            start = 0
            while (end := block.find(b"\n", start)) >= 0:
                self._check(self.current + end - start, number)
                self.current, start, number = 0, end + 1, number + 1
            self.current = len(block) - start
        self._check(self.current, number)

    def _check(self, length: int, number: int) -> None:
        if length > self.max_line:
            raise _LimitExceeded("max_line_bytes", f"line {number} is too long")


def verify_part(
    fh: IO[bytes],
    *,
    batch_id: str,
    part: str,
    url: str,
    limits: DownloadLimits = DEFAULT_LIMITS,
    max_layers: int = 2,
    deadline: Deadline | None = None,
) -> int:
    """Read the whole decoded part once; raise DownloadError if it is broken or over a cap.

    For gzip this checks every block, the CRC-32 and the length trailer; for a plain body that
    the text is valid UTF-8. Caps are checked as the bytes come out, so a bomb stops at its cap.
    Returns the number of gzip layers. A broken body is ``retryable``; a cap exceeded is not.
    """
    return _verify(fh, _Where(batch_id, part, url, limits), max_layers, deadline)


def _verify(fh: IO[bytes], where: _Where, max_layers: int, deadline: Deadline | None) -> int:
    limits = where.limits
    opened: list[gzip.GzipFile] = []
    try:
        stream = open_decoded(fh, max_layers, counted=_counter(limits, deadline), opened=opened)
        _scan(stream, plain=not opened, limits=limits)
    except _LimitExceeded as exc:
        if exc.shown is not None:
            raise where.error(f"{exc.what}: {exc.shown}", limit=exc.limit) from None
        raise where.over(exc.limit, exc.what) from None
    except EOFError:
        reason = "gzip stream is truncated (ends before its end-of-stream marker)"
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        reason = f"gzip stream is corrupt ({type(exc).__name__}: {str(exc)[:100]})"
    except UnicodeDecodeError:
        reason = "body is neither gzip nor UTF-8 JSONL"
    else:
        return len(opened)
    finally:
        for gz in reversed(opened):
            gz.close()
        fh.seek(0)
    raise where.error(reason, retryable=True)


def _scan(stream: IO[bytes], *, plain: bool, limits: DownloadLimits) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")() if plain else None
    lines = _LineCheck(limits)
    while block := stream.read(CHUNK_SIZE):
        lines.feed(block)
        if decoder is not None:
            decoder.decode(block)
    if decoder is not None:
        decoder.decode(b"", final=True)

"""Download one pre-signed result part to a temp file, verify it, then decode it lazily.

Design (why it looks like this):

* **Constant memory.** A part of a large job can hold hundreds of thousands of
  records. The body is streamed in 64 KiB chunks into a ``SpooledTemporaryFile``
  (kept in RAM up to 8 MiB, then spilled to disk), and decompressed later with
  ``gzip.GzipFile`` one buffered block at a time. No step holds a whole part.
* **Verify before yielding.** After the download, the whole gzip stream is read
  through once (CRC and length trailer included). A truncated or corrupt file
  is therefore a :class:`DownloadError` *before* the first record of the part is
  yielded, so a retry of the part (or of the whole batch) never yields a record
  twice. The cost is decompressing twice (gzip inflates at hundreds of MB/s).
* **gzip by magic bytes, not headers.** The object store serves ``.jsonl.gz``
  as ``application/octet-stream`` with no ``Content-Encoding``; a different store
  might say ``Content-Encoding: gzip``. The raw (undecoded) bytes are stored when
  the encoding is gzip/identity/absent, then each gzip layer is detected by its
  ``1f 8b`` magic and unwrapped. Other encodings (br, deflate, zstd) are decoded
  by httpx first. A body without the magic is taken as plain JSONL (UTF-8 checked).
* **No credentials.** Downloads go through a separate ``httpx.Client`` that has
  no ``authorization`` header and shares no cookies with the API client: a
  pre-signed URL is its own credential, and the store rejects a second one.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import re
import tempfile
import time
import zlib
from collections.abc import Callable
from typing import IO

import httpx

from .errors import DownloadError
from .redact import redact_url
from .retry import RetryPolicy

__all__ = ["GZIP_MAGIC", "download_part", "open_decoded", "verify_part"]

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_SIZE = 64 * 1024
SPOOL_MAX_BYTES = 8 * 1024 * 1024
_MAX_GZIP_LAYERS = 3
_ERROR_BODY_LIMIT = 4096
_RAW_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})
_XML_TAG = re.compile(r"<(Code|Message)>([^<]{0,200})</\1>")


def download_part(
    http: httpx.Client,
    url: str,
    *,
    batch_id: str,
    part: str,
    policy: RetryPolicy,
    tmp_dir: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IO[bytes]:
    """Fetch ``url`` into a verified temp file and return it (positioned anywhere).

    5xx, 429 and connection trouble are retried inside ``policy``; every attempt
    starts a fresh temp file, so a retry restarts the part cleanly. Any other
    HTTP status raises :class:`DownloadError` with ``status_code`` set (the
    caller refreshes URLs on 400/403). A body that is not a complete gzip or
    UTF-8 JSONL file raises :class:`DownloadError` (not retried here).
    The caller owns (and must close) the returned file.
    """
    safe_url = redact_url(url)
    budget = policy.start()
    while True:
        budget.note_attempt()
        # Not a `with`: on success the open file is handed to the caller, who closes it.
        fh: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MAX_BYTES, dir=tmp_dir
        )
        try:
            failure, delay = _fetch_into(http, url, fh, batch_id=batch_id, part=part)
            if failure is None:
                verify_part(fh, batch_id=batch_id, part=part, url=safe_url)
                fh.seek(0)
                return fh
        except BaseException:
            fh.close()
            raise
        fh.close()
        if delay is None:
            delay = policy.backoff(budget.attempts)
        if not budget.can_retry(delay):
            failure.message += f" (gave up after {budget.attempts} attempt(s))"
            failure.args = (failure.message,)
            raise failure
        logger.warning(
            "download of batch %s %s failed (%s); retrying in %.2f s",
            batch_id,
            part,
            failure.error_type or failure.status_code or "transport error",
            delay,
        )
        sleep(delay)


def _fetch_into(
    http: httpx.Client, url: str, fh: IO[bytes], *, batch_id: str, part: str
) -> tuple[DownloadError | None, float | None]:
    """One GET of ``url`` into ``fh``.

    Returns ``(None, None)`` on success, ``(error, delay)`` for a retryable
    failure (``delay`` None = use backoff), raises DownloadError when final.
    """
    safe_url = redact_url(url)

    def error(reason: str, status: int | None = None, code: str | None = None) -> DownloadError:
        return DownloadError(
            f"download of batch {batch_id} {part} failed: {reason} ({safe_url})",
            batch_id=batch_id,
            part=part,
            url=safe_url,
            status_code=status,
            error_type=code,
        )

    try:
        with http.stream("GET", url) as response:
            status = response.status_code
            if status != 200:
                code, message = _store_error(response)
                reason = f"HTTP {status}" + (f" {code}" if code else "")
                reason += f": {message}" if message else ""
                err = error(reason, status, code)
                if status >= 500 or status in (408, 429):
                    retry_after = response.headers.get("retry-after")
                    try:
                        return err, float(retry_after) if retry_after else None
                    except ValueError:
                        return err, None
                raise err
            encoding = response.headers.get("content-encoding", "").strip().lower()
            chunks = (
                response.iter_raw(CHUNK_SIZE)
                if encoding in _RAW_ENCODINGS
                else response.iter_bytes(CHUNK_SIZE)
            )
            size = 0
            for chunk in chunks:
                fh.write(chunk)
                size += len(chunk)
    except httpx.TransportError as exc:
        # Connection refused/reset, timeouts, a body cut short (content-length
        # mismatch): retryable. The exception text is not kept (from None above us).
        return error(f"transport error {type(exc).__name__}"), None
    except httpx.HTTPError as exc:  # e.g. DecodingError of an unusual content-encoding
        raise error(f"{type(exc).__name__}") from None
    if size == 0:
        raise error("empty response body")
    return None, None


def _store_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(Code, Message) of an S3-style XML error body, read at most a few KiB."""
    body = b""
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    text = body[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
    found = dict(m.groups() for m in _XML_TAG.finditer(text))
    code = found.get("Code")
    message = found.get("Message")
    if message is not None:
        message = redact_url(message) if "://" in message else message
    return code, message


def open_decoded(fh: IO[bytes]) -> IO[bytes]:
    """A readable stream of the decoded bytes of ``fh`` (gzip layers unwrapped).

    Rewinds ``fh``. Closing the returned stream does not close ``fh`` when it
    is a gzip wrapper, so callers close both.
    """
    fh.seek(0)
    head = fh.read(2)
    fh.seek(0)
    stream: IO[bytes] = fh
    layers = 0
    while head == GZIP_MAGIC and layers < _MAX_GZIP_LAYERS:
        gz = gzip.GzipFile(fileobj=stream, mode="rb")
        stream = gz  # type: ignore[assignment]
        layers += 1
        head = gz.peek(2)[:2]
    return stream


def verify_part(fh: IO[bytes], *, batch_id: str, part: str, url: str) -> None:
    """Read the whole decoded part once; raise DownloadError if it is incomplete or corrupt.

    For gzip this checks every block, the CRC-32 and the length trailer. For a
    plain body it checks that the text is valid UTF-8.
    """
    fh.seek(0)
    is_gzip = fh.read(2) == GZIP_MAGIC
    stream: IO[bytes] | None = None
    try:
        stream = open_decoded(fh)
        decoder = None if is_gzip else codecs.getincrementaldecoder("utf-8")()
        while True:
            block = stream.read(CHUNK_SIZE)
            if not block:
                break
            if decoder is not None:
                decoder.decode(block)
        if decoder is not None:
            decoder.decode(b"", final=True)
    except EOFError:
        reason = "gzip stream is truncated (ends before its end-of-stream marker)"
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        reason = f"gzip stream is corrupt ({type(exc).__name__}: {exc})"
    except UnicodeDecodeError:
        reason = "body is neither gzip nor UTF-8 JSONL"
    else:
        return
    finally:
        if stream is not None and stream is not fh:
            stream.close()
        fh.seek(0)
    raise DownloadError(
        f"download of batch {batch_id} {part} failed: {reason} ({url})",
        batch_id=batch_id,
        part=part,
        url=url,
    )

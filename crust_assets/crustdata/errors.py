"""Exceptions raised by :class:`~crust_assets.crustdata.client.CrustdataClient`.

One class per decision a caller has to make: fix the request (400), fix the key
(401), stop spending (402/403 credits), wait for a slot (429 five-job limit),
reconcile a maybe-submitted job (ambiguous submit), re-download (bad part).
Every message is built by this package from redacted pieces: it never contains
the API key or a pre-signed URL's query string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "AmbiguousSubmissionError",
    "AuthenticationError",
    "CrustdataError",
    "DownloadError",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResultParseError",
    "ServerError",
    "TooManyActiveJobsError",
    "TransportError",
]


class CrustdataError(Exception):
    """Base class. ``status_code`` is the HTTP status when one was received.

    ``error_type`` is the API's ``error.type`` when the body had the structured
    form (e.g. ``invalid_request_error``), ``details`` its ``error.metadata``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_type = error_type
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors break Exception's default pickling; rebuild from state
        # so errors survive multiprocessing / executor boundaries.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[CrustdataError], message: str, state: dict[str, Any]) -> CrustdataError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class InvalidRequestError(CrustdataError):
    """400: the request itself is wrong (bad field, too many URLs, bad header).

    ``details`` carries the API's metadata, e.g. ``available_fields`` or
    ``invalid_identifiers``. Never retried.
    """


class AuthenticationError(CrustdataError):
    """401: missing or unknown API key. Never retried."""


class PermissionDeniedError(CrustdataError):
    """403: the key may not do this (plan without contact access, ...). Never retried."""


class InsufficientCreditsError(PermissionDeniedError):
    """402, or a 403 whose body says credits: spending must stop. Never retried."""


class NotFoundError(CrustdataError):
    """404: unknown batch id (or another key's job)."""


class TooManyActiveJobsError(CrustdataError):
    """429 from the five-active-jobs limit.

    Not retried by the client: the slot frees only when one of the account's
    jobs finishes, which can take minutes; the caller (the sensor) keeps the job
    queued and tries again on a later tick.
    """


class RateLimitedError(CrustdataError):
    """429 with rate-limit headers, still limited after the client's retries.

    ``retry_after`` is the server's last advice in seconds (None if absent).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(CrustdataError):
    """5xx that persisted through the retry budget."""


class TransportError(CrustdataError):
    """Connection trouble (refused, reset, timed out) that persisted through retries."""


class AmbiguousSubmissionError(CrustdataError):
    """A submit was sent but its answer never arrived: the job may or may not exist.

    Retrying blindly could create (and bill) the job twice, so the client does not.
    Look it up instead: :func:`~crust_assets.crustdata.lost_submit.find_lost_submit` finds,
    among the listed jobs, one created between ``window_start`` (just before the request
    was sent) and ``window_end`` (when the client gave up) with the same ``identifier_count``.
    """

    def __init__(
        self,
        message: str,
        *,
        window_start: datetime,
        window_end: datetime,
        identifier_count: int,
        fields: Sequence[str],
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.window_start = window_start
        self.window_end = window_end
        self.identifier_count = identifier_count
        self.fields: tuple[str, ...] = tuple(fields)


class DownloadError(CrustdataError):
    """A result part could not be downloaded, is not a complete gzip/JSONL file, or is over a cap.

    Raised before any record of that part was yielded, so the caller can retry
    the whole batch download without seeing duplicates. ``url`` is redacted.
    ``retryable`` marks a body that arrived broken (the client already fetched it
    again as often as allowed); ``limit`` names the ``DownloadLimits`` field of a
    cap that was exceeded, or ``gzip_layers`` for the fixed gzip nesting (None otherwise).
    """

    def __init__(
        self,
        message: str,
        *,
        batch_id: str,
        part: str,
        url: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        retryable: bool = False,
        limit: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_type=error_type)
        self.batch_id = batch_id
        self.part = part
        self.url = url
        self.retryable = retryable
        self.limit = limit


class ResultParseError(CrustdataError):
    """A result line is not a JSON object with an identifier.

    The message names the batch, the part and the 1-based line number.
    """

    def __init__(self, message: str, *, batch_id: str, part: str, line_number: int) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.part = part
        self.line_number = line_number

"""Crustdata batch contact-enrich API client (pure Python + httpx; no Dagster here).

Public names are re-exported from the modules: ``client`` (CrustdataClient),
``models`` (documents and FIELDS), ``records`` (result line parser), ``errors``,
``redact`` (URL/log redaction).
"""

from typing import TYPE_CHECKING, Any

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
    ResultParseError,
    ServerError,
    TooManyActiveJobsError,
    TransportError,
)
from .limits import DownloadLimits
from .lost_submit import LostSubmitLookup, find_lost_submit
from .models import (
    BATCH_ID_PATTERN,
    FIELD_CREDITS,
    FIELDS,
    MAX_URLS_PER_JOB,
    BatchStatus,
    Email,
    ResultRecord,
    SubmitResponse,
    is_batch_id,
    leaf_fields,
    max_credits_per_record,
)
from .records import parse_result_line
from .redact import SecretScrubber, install_log_redaction, redact_text, redact_url

if TYPE_CHECKING:
    from .client import API_VERSION, DEFAULT_BASE_URL, CrustdataClient

#: Names of the HTTP client, imported on first use: the result parser, the models and the
#: limits are read without a connection (`crust-assets ingest` of local files), so importing
#: them through this package must not pay for httpx.
_CLIENT_NAMES = frozenset({"API_VERSION", "DEFAULT_BASE_URL", "CrustdataClient"})


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "API_VERSION",
    "BATCH_ID_PATTERN",
    "DEFAULT_BASE_URL",
    "FIELDS",
    "FIELD_CREDITS",
    "MAX_URLS_PER_JOB",
    "AmbiguousSubmissionError",
    "AuthenticationError",
    "BatchStatus",
    "CrustdataClient",
    "CrustdataError",
    "DownloadError",
    "DownloadLimits",
    "Email",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "LostSubmitLookup",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResultParseError",
    "ResultRecord",
    "SecretScrubber",
    "ServerError",
    "SubmitResponse",
    "TooManyActiveJobsError",
    "TransportError",
    "find_lost_submit",
    "install_log_redaction",
    "is_batch_id",
    "leaf_fields",
    "max_credits_per_record",
    "parse_result_line",
    "redact_text",
    "redact_url",
]

# Redact pre-signed URLs in httpx/httpcore logs as soon as this package is imported
# (each CrustdataClient installs it again; it is idempotent).
install_log_redaction()

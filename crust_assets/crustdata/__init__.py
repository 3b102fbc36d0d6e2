"""Crustdata batch contact-enrich API client (pure Python + httpx; no Dagster here).

Public names are re-exported from the modules: ``client`` (CrustdataClient),
``models`` (documents and FIELDS), ``records`` (result line parser), ``errors``,
``redact`` (URL/log redaction).
"""

import importlib
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
from .redact import SecretScrubber, install_log_redaction, redact_text, redact_url

if TYPE_CHECKING:
    from .client import API_VERSION, DEFAULT_BASE_URL, CrustdataClient
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

#: Names imported from their module on first use. The HTTP client (httpx) and the documents
#: (pydantic) take a few hundred ms to import; `crust-assets ingest` of local files needs
#: neither until a part falls back to the record parser, and it is a process of its own.
_LAZY = {
    **dict.fromkeys(("API_VERSION", "DEFAULT_BASE_URL", "CrustdataClient"), "client"),
    **dict.fromkeys(("LostSubmitLookup", "find_lost_submit"), "lost_submit"),
    **dict.fromkeys(
        (
            "BATCH_ID_PATTERN",
            "FIELD_CREDITS",
            "FIELDS",
            "MAX_URLS_PER_JOB",
            "BatchStatus",
            "Email",
            "ResultRecord",
            "SubmitResponse",
            "is_batch_id",
            "leaf_fields",
            "max_credits_per_record",
        ),
        "models",
    ),
    "parse_result_line": "records",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


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

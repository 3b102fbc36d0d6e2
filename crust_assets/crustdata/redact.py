"""Keep secrets (API keys, pre-signed URL signatures) out of text we show anyone.

Two things can leak a credential here:

* The ``authorization: Bearer <key>`` header. The client never formats it, but a
  server could echo it back in an error body, so error texts are scrubbed too.
* Pre-signed download URLs: their query string (``X-Amz-Signature=...``) *is* a
  credential for five days. httpx logs every request URL at INFO on the ``httpx``
  logger, so a plain ``logging.basicConfig(level=INFO)`` would write signatures
  to the run logs. :class:`RedactingLogFilter` rewrites those log records.

Everything that turns a URL into text for humans goes through :func:`redact_url`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "RedactingLogFilter",
    "install_log_redaction",
    "redact_text",
    "redact_url",
]

REDACTED = "<redacted>"

# A URL inside free text: scheme://... up to whitespace or a quote/bracket.
_URL_IN_TEXT = re.compile(r"""(?i)\b[a-z][a-z0-9+.\-]*://[^\s'"<>`]+""")
# Signature-like query parameters that appear without a scheme (e.g. a bare path).
_SECRET_PARAM = re.compile(
    r"""(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|"""
    r"""token|api_key|apikey|access_token)=([^&\s'"<>]+)"""
)
_BEARER = re.compile(r"""(?i)\b(bearer)\s+[^\s'",;]+""")


def redact_url(url: object) -> str:
    """Return ``url`` as text with its query string and any user-info masked.

    ``https://bucket.s3.amazonaws.com/b/part-000.jsonl.gz?X-Amz-Signature=abc``
    becomes ``https://bucket.s3.amazonaws.com/b/part-000.jsonl.gz?<redacted>``:
    the path still tells a human which job and part it was, the signature is gone.
    Accepts ``str`` or anything with a ``str()`` (e.g. ``httpx.URL``).
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        # Unparseable (e.g. a broken IPv6 literal): cut at the first '?' to be safe.
        head, sep, _ = text.partition("?")
        return f"{head}?{REDACTED}" if sep else head
    netloc = parts.netloc
    if "@" in netloc:
        # Credentials in the authority part ("user:pass@host"): drop them.
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Mask every URL query string, bearer token and signature-like parameter in ``text``."""
    if not text:
        return text
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    out = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", out)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", out)


class RedactingLogFilter(logging.Filter):
    """A logging filter that rewrites a record's message with :func:`redact_text`.

    Attached to the ``httpx`` / ``httpcore.*`` loggers (the ones that log request
    URLs). Logger-level filters run before the record propagates to any handler,
    so pytest's caplog, a Dagster handler or a root ``basicConfig`` handler all
    see the redacted text. It never drops records.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix; leave it alone
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


# Loggers that may carry URLs: httpx logs "HTTP Request: GET <url> ..." at INFO;
# httpcore logs connection and header events at DEBUG on per-module children.
# Logger filters do not apply to records of child loggers, so name each one.
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def install_log_redaction(extra_loggers: tuple[str, ...] = ()) -> None:
    """Attach one :class:`RedactingLogFilter` to each HTTP library logger (idempotent).

    Called by every ``CrustdataClient`` constructor; safe to call any number of
    times. Also covers any other ``httpcore.*`` logger that already exists.
    """
    names = set(_HTTP_LOGGERS) | set(extra_loggers)
    names |= {
        name
        for name in list(logging.root.manager.loggerDict)
        if name.startswith(("httpcore.", "httpx."))
    }
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingLogFilter) for f in logger.filters):
            logger.addFilter(RedactingLogFilter())

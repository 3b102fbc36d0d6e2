"""Keep secrets (API keys, pre-signed URL signatures) out of text we show anyone.

Two things can leak a credential here:

* The ``authorization: Bearer <key>`` header. The client never formats it, but a
  server could echo it back in an error body, so error texts are scrubbed too.
* Pre-signed download URLs: their query string (``X-Amz-Signature=...``) *is* a
  credential for five days. httpx logs every request URL at INFO on the ``httpx``
  logger, so a plain ``logging.basicConfig(level=INFO)`` would write signatures
  to the run logs. :class:`RedactingLogFilter` rewrites those log records.

Everything that turns a URL into text for humans goes through :func:`redact_url`.

A third kind of secret is only known to the caller: the webhook URL, whose *path* holds the
receiver's token (``.../hooks/crustdata/<token>``). A server that echoes the submitted
``webhook_url`` in an error would put the token into our exception texts, and from there into
Dagster events. :class:`SecretScrubber` holds every value the client knows to be secret (the key,
the webhook URL) and masks them in any text or JSON value that came from a server.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "REDACTED",
    "RedactingLogFilter",
    "SecretScrubber",
    "install_log_redaction",
    "redact_text",
    "redact_url",
    "url_secrets",
]

REDACTED = "<redacted>"
#: What a known secret value (an API key, a webhook token) is replaced with.
MASK = "***"
# Parts of a secret URL shorter than this are ordinary words ("hooks"), not tokens: masking
# them everywhere would mangle every message. The receiver's tokens are >= 16 characters.
_MIN_TOKEN_CHARS = 8

# A URL inside free text: scheme://... up to whitespace or a quote/bracket.
_URL_IN_TEXT = re.compile(r"""(?i)\b[a-z][a-z0-9+.\-]*://[^\s'"<>`]+""")
# Signature-like query parameters that appear without a scheme (e.g. a bare path).
_SECRET_PARAM = re.compile(
    r"""(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|"""
    r"""token|api_key|apikey|access_token)=([^&\s'"<>]+)"""
)
_BEARER = re.compile(r"""(?i)\b(bearer)\s+[^\s'",;]+""")
# A URL quoted inside JSON (``https:\/\/...``) or percent-encoded (``https%3A%2F%2F...``), as an
# echoed request body holds one: its query (``?`` or ``%3F`` onwards) is masked like a plain one's.
_ESCAPED_URL_QUERY = re.compile(
    r"""(?i)\b([a-z][a-z0-9+.\-]*(?::\\/\\/|%3A%2F%2F)[^\s'"<>`?]*?)(\?|%3F)[^\s'"<>`]+"""
)


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
    """Mask every URL query string (plain, JSON-escaped or percent-encoded URLs), bearer token
    and signature-like parameter in ``text``."""
    if not text:
        return text
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    out = _ESCAPED_URL_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", out)
    out = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", out)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", out)


def url_secrets(url: str) -> list[tuple[str, str]]:
    """``(needle, replacement)`` pairs that hide a secret URL's credentials in any text.

    The whole path (``/hooks/crustdata/<token>`` -> ``/***``) covers short tokens where the
    path appears whole; the last path segment, query values and a user-info password cover
    the token when it appears alone (percent-encoded or JSON-escaped echoes keep it intact).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [(url, MASK)]
    pairs: list[tuple[str, str]] = []
    path = parts.path.rstrip("/")
    if path:
        pairs.append((path, f"/{MASK}"))
    candidates = [path.rpartition("/")[2], *(value for _, value in parse_qsl(parts.query))]
    if parts.password:
        candidates.append(parts.password)
    pairs += [(c, MASK) for c in candidates if len(c) >= _MIN_TOKEN_CHARS]
    return pairs


class SecretScrubber:
    """Masks the secret values a client knows (API key, webhook URL token) in server text.

    Why a value list and not only patterns: :func:`redact_text` recognises the *shape* of a
    credential (a query string, ``Bearer ...``), but an echoed key or a token inside a URL
    path has no shape; only the exact value can be found. Longer needles are replaced first,
    so a whole path is masked before its token.
    """

    def __init__(self, *values: str | None) -> None:
        self._pairs: dict[str, str] = {}
        for value in values:
            self.add(value)

    def __repr__(self) -> str:
        return f"SecretScrubber({len(self._pairs)} value(s))"

    def add(self, value: str | None) -> None:
        """Remember a secret; a URL (``scheme://...``) contributes its token-bearing parts."""
        value = (value or "").strip()
        if not value:
            return
        if "://" in value:  # the host stays readable; the parts that authenticate do not
            self._pairs.update(url_secrets(value))
        else:
            self._pairs[value] = MASK

    def text(self, text: str, limit: int | None = None) -> str:
        """``text`` with every known secret masked, URL queries redacted, cut to ``limit``."""
        for needle in sorted(self._pairs, key=len, reverse=True):
            if needle in text:
                text = text.replace(needle, self._pairs[needle])
        text = redact_text(text)
        if limit is not None and len(text) > limit:
            text = text[:limit] + "..."
        return text

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string in it scrubbed (dict keys too), recursively."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value


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

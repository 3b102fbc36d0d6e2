"""The ``echo_secrets`` fault: an API that carelessly echoes what the caller sent.

Why: real APIs do echo request values in errors ("webhook_url ... is not reachable",
metadata holding the request's parameters), and some proxies echo the authorization
header. The client must scrub those echoes before they become exception texts and
Dagster events; this fault produces them on demand, over real HTTP.

Pure functions over response bodies; the echoed values are taken from the request being
answered and are never stored (the state dir holds no API key).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse, Response


def bearer_key(authorization: str) -> str:
    """The key of an ``authorization: Bearer <key>`` header ('' when there is none)."""
    scheme, _, key = authorization.strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def submitted_webhook_url(body: bytes) -> str | None:
    """The ``webhook_url`` string of a submit body, if it has one."""
    try:
        doc = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    value = doc.get("webhook_url") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def echo_rejection(response: Response, body: bytes, authorization: str) -> Response:
    """A submit's 400, rewritten to name the submitted webhook URL and carry it and the key.

    Keeps the status, the error type and the original message (with the URL appended) and
    adds ``webhook_url``, ``api_key`` and ``authorization`` to ``error.metadata``.
    """
    try:
        original = json.loads(bytes(response.body))
    except (ValueError, UnicodeDecodeError):
        original = {}
    inner = original.get("error") if isinstance(original.get("error"), dict) else {}
    message = str(inner.get("message") or original.get("message") or "Bad request")
    metadata: dict[str, Any] = dict(inner.get("metadata") or {})
    webhook_url = submitted_webhook_url(body)
    if webhook_url is not None:
        message = f"{message} (webhook_url: {webhook_url})"
    metadata.update(
        webhook_url=webhook_url,
        api_key=bearer_key(authorization),
        authorization=authorization,
    )
    error = {
        "type": inner.get("type") or "invalid_request_error",
        "message": message,
        "metadata": metadata,
    }
    return JSONResponse({"error": error}, status_code=response.status_code)


def echo_failure(doc: dict[str, Any], authorization: str, webhook_url: str | None) -> None:
    """Append the caller's key and the job's webhook URL to a failed job's ``error_message``."""
    if doc.get("error_message"):
        doc["error_message"] = (
            f"{doc['error_message']} (request key {bearer_key(authorization)},"
            f" callback {webhook_url or 'none'})"
        )

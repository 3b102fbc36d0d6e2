"""The job-complete callback receiver: `crust-assets webhook --port ...` (a small ASGI app).

Crustdata calls the `webhook_url` given at submit when a job finishes; its payload and signature
are not documented, so nothing in the body is trusted. The URL itself carries a secret token
(`/hooks/crustdata/<token>`): any other path is a 401. A valid callback only drops a *hint* (the
batch id) into `<data>/webhooks/`; the submitter sensor then confirms the job's state with
`GET /batch/{id}` on its next tick instead of waiting for its polling interval. Polling stays
the fallback: a lost callback only costs latency.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import time
import uuid
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_BODY_BYTES = 64 * 1024
BATCH_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
HINTS_DIR = "webhooks"


def hints_dir(data_dir: Path) -> Path:
    return data_dir / HINTS_DIR


def write_hint(data_dir: Path, batch_id: str, status: str | None) -> Path:
    """Record that `batch_id` may have finished; atomic, so the sensor never reads half a file."""
    directory = hints_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"{batch_id}.json"
    temp = directory / f".{batch_id}.{uuid.uuid4().hex}.tmp"
    temp.write_text(json.dumps({"batch_id": batch_id, "status": status, "at": time.time()}))
    os.replace(temp, target)
    return target


def read_hints(data_dir: Path) -> dict[str, Path]:
    """Batch ids hinted so far (file per id: repeated callbacks collapse into one hint)."""
    directory = hints_dir(data_dir)
    if not directory.is_dir():
        return {}
    return {
        path.stem: path
        for path in directory.glob("*.json")
        if BATCH_ID.match(path.stem) is not None
    }


def create_app(data_dir: Path, token: str) -> Starlette:
    """The receiver. `token` must be long and random; it is compared in constant time."""
    if len(token) < 16:
        raise ValueError("the webhook token must be at least 16 characters")
    expected = token.encode()

    async def receive(request: Request) -> JSONResponse:
        given = str(request.path_params["token"]).encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return JSONResponse({"message": "body too large"}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"message": "body too large"}, status_code=413)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"message": "body is not JSON"}, status_code=400)
        batch_id = payload.get("batch_id") if isinstance(payload, dict) else None
        if not isinstance(batch_id, str) or BATCH_ID.match(batch_id) is None:
            return JSONResponse({"message": "no valid batch_id"}, status_code=400)
        status = payload.get("status")
        write_hint(data_dir, batch_id, status if isinstance(status, str) else None)
        return JSONResponse({"accepted": batch_id}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/hooks/crustdata/{token}", receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def serve(host: str, port: int, data_dir: Path, token: str) -> None:
    """Run the receiver with uvicorn; no access log (the path carries the token)."""
    import uvicorn

    uvicorn.run(
        create_app(data_dir, token), host=host, port=port, access_log=False, log_level="warning"
    )

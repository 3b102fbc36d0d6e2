"""The job-complete callback receiver: `crust-assets webhook --port ...` (a small ASGI app).

Crustdata calls the `webhook_url` given at submit when a job finishes; its payload and signature
are not documented, so nothing in the body is trusted. The URL itself carries a secret token
(`/hooks/crustdata/<token>`): any other path is a 401. A valid callback only drops a *hint* (the
batch id) into `<data>/webhooks/`; the submitter sensor then confirms the job's state with
`GET /batch/{id}` on its next tick instead of waiting for its polling interval. Polling stays
the fallback: a lost callback only costs latency.

The hints go through `DataLayout`, so `<data>` is whatever `CRUST_DATA_DIR` names: a local
directory or an object store (`s3://bucket/prefix`). In production the receiver and the sensor run
in different pods and share only the object store; a hint is one small object there (a single
PUT, never seen half-written), and the sensor lists, reads and deletes them through the same
layout.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from pathlib import PurePath

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crust_assets.storage import DataLayout

MAX_BODY_BYTES = 64 * 1024
BATCH_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
HINTS_DIR = "webhooks"
HINT_SUFFIX = ".json"


def hints_dir(layout: DataLayout) -> PurePath:
    return layout.root / HINTS_DIR


def write_hint(layout: DataLayout, batch_id: str, status: str | None) -> PurePath:
    """Record that `batch_id` may have finished; written whole, so the sensor never reads half.

    One file per id: repeated callbacks for a job overwrite one hint instead of piling up.
    """
    if BATCH_ID.fullmatch(batch_id) is None:  # it names a file: never let a body pick a path
        raise ValueError(f"not a batch id: {batch_id[:80]!r}")
    target = hints_dir(layout) / f"{batch_id}{HINT_SUFFIX}"
    record = {"batch_id": batch_id, "status": status, "at": time.time()}
    layout.write_bytes(target, json.dumps(record).encode())
    return target


def read_hints(layout: DataLayout) -> dict[str, PurePath]:
    """Batch ids hinted so far, with their files; temp files and foreign names are ignored."""
    directory = hints_dir(layout)
    hints: dict[str, PurePath] = {}
    for name, _ in layout.list_files(directory):
        batch_id = name.removesuffix(HINT_SUFFIX)
        if name.endswith(HINT_SUFFIX) and BATCH_ID.fullmatch(batch_id) is not None:
            hints[batch_id] = directory / name
    return hints


def consume_hints(layout: DataLayout) -> set[str]:
    """Batch ids hinted so far, deleting their hints: the caller confirms each with GET /batch.

    A callback landing between the listing and the delete is lost; that costs only latency
    (polling is the fallback), which is cheaper than tracking hint versions.
    """
    hints = read_hints(layout)
    for path in hints.values():
        layout.remove(path)
    return set(hints)


def create_app(layout: DataLayout, token: str) -> Starlette:
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
        if not isinstance(batch_id, str) or BATCH_ID.fullmatch(batch_id) is None:
            return JSONResponse({"message": "no valid batch_id"}, status_code=400)
        status = payload.get("status")
        # Blocking I/O (an HTTP PUT on an object store): off the event loop.
        await run_in_threadpool(
            write_hint, layout, batch_id, status if isinstance(status, str) else None
        )
        return JSONResponse({"accepted": batch_id}, status_code=202)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/hooks/crustdata/{token}", receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def serve(host: str, port: int, layout: DataLayout, token: str) -> None:
    """Run the receiver with uvicorn; no access log (the path carries the token)."""
    import uvicorn

    uvicorn.run(
        create_app(layout, token), host=host, port=port, access_log=False, log_level="warning"
    )

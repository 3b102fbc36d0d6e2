"""Result files and pre-signed download URLs.

Why this mirrors an object store so closely: the client must cope with the
real store's habits (gzip served without ``Content-Encoding``, URLs that
expire, a second auth mechanism rejected, a ``download_url`` whose object was
never written), and those habits only get exercised if the emulator has them.

Files are written once per job, atomically (temp file + ``os.replace``), and
byte-for-byte reproducibly (gzip ``mtime=0``, deterministic record order and
fault choices), so even a crash in the middle of writing cannot make a
restarted emulator deliver different results.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from crust_assets.emulator.synth import (
    delivered_fields,
    record_credits,
    synthetic_contacts,
    to_flat,
)

PART_NAME = re.compile(r"^part-(\d{3,})\.jsonl\.gz$")
SIGNING_ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_URL_EXPIRY_SECONDS = 7 * 24 * 3600  # what S3 allows for SigV4 pre-signed URLs


def part_name(index: int) -> str:
    return f"part-{index:03d}.jsonl.gz"


def _ranked_indices(batch_id: str, label: str, count: int) -> list[int]:
    """Record indices in a stable pseudo-random order derived from the batch id."""

    def rank(i: int) -> bytes:
        return hashlib.blake2b(f"{batch_id}|{label}|{i}".encode(), digest_size=8).digest()

    return sorted(range(count), key=rank)


def build_records(
    batch_id: str,
    urls: Sequence[str],
    fields: Sequence[str],
    *,
    flat: bool = False,
    drop: int = 0,
    duplicate: int = 0,
) -> list[dict[str, Any]]:
    """The records a job delivers, in file order: one per submitted URL, faults applied.

    ``drop`` records go missing and ``duplicate`` records appear twice
    (right after themselves), chosen deterministically from the batch id.
    """
    records = [synthetic_contacts(url, fields) for url in urls]
    dropped = set(_ranked_indices(batch_id, "drop", len(records))[:drop])
    remaining = [i for i in _ranked_indices(batch_id, "dup", len(records)) if i not in dropped]
    duplicated = set(remaining[:duplicate])
    out: list[dict[str, Any]] = []
    for index, record in enumerate(records):
        if index in dropped:
            continue
        shaped = to_flat(record) if flat else record
        out.append(shaped)
        if index in duplicated:
            out.append(shaped)
    return out


@dataclass(frozen=True)
class ResultSummary:
    """What finalising a job produced."""

    result_count: int
    entities_fulfilled: int
    part_count: int
    credits_billed: int


def _gzip_jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        for record in records:
            gz.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
            gz.write(b"\n")
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_results(
    directory: Path, records: Sequence[Mapping[str, Any]], part_size: int
) -> ResultSummary:
    """Write a job's parts; if no record has any value, write nothing (``result_count: 0``).

    The all-empty case reproduces the real API's quirk: the job completes,
    its status carries a ``download_url``, and that object does not exist.
    """
    fulfilled = sum(1 for record in records if delivered_fields(record))
    if fulfilled == 0:
        return ResultSummary(result_count=0, entities_fulfilled=0, part_count=1, credits_billed=0)
    directory.mkdir(parents=True, exist_ok=True)
    chunks = [records[i : i + part_size] for i in range(0, len(records), part_size)]
    for index, chunk in enumerate(chunks):
        _write_atomically(directory / part_name(index), _gzip_jsonl(chunk))
    return ResultSummary(
        result_count=len(records),
        entities_fulfilled=fulfilled,
        part_count=len(chunks),
        credits_billed=sum(record_credits(record) for record in records),
    )


# -- pre-signed URLs -----------------------------------------------------------------


def sign_path(key: bytes, path: str, amz_date: str, expires: int) -> str:
    """The ``X-Amz-Signature`` of ``path``; the secret scan recomputes every one it issued."""
    message = f"{SIGNING_ALGORITHM}\nGET\n{path}\n{amz_date}\n{expires}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def presign(base_url: str, path: str, key: bytes, *, now: float, expires: int) -> str:
    """An S3-style pre-signed URL for ``path`` valid ``expires`` seconds from ``now``."""
    amz_date = time.strftime(AMZ_DATE_FORMAT, time.gmtime(now))
    query = urlencode(
        {
            "X-Amz-Algorithm": SIGNING_ALGORITHM,
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires),
            "X-Amz-Signature": sign_path(key, path, amz_date, expires),
        }
    )
    return f"{base_url.rstrip('/')}{path}?{query}"


class SignatureProblem(Exception):
    """Why a pre-signed request is refused: an S3 error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify_presigned(key: bytes, path: str, query: Mapping[str, str], *, now: float) -> None:
    """Raise ``SignatureProblem`` unless the query is a valid, unexpired signature of ``path``."""
    try:
        algorithm = query["X-Amz-Algorithm"]
        amz_date = query["X-Amz-Date"]
        expires_text = query["X-Amz-Expires"]
        signature = query["X-Amz-Signature"]
    except KeyError:
        raise SignatureProblem(
            "AccessDenied",
            "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Date,"
            " X-Amz-Expires and X-Amz-Signature parameters",
        ) from None
    if algorithm != SIGNING_ALGORITHM:
        raise SignatureProblem("AuthorizationQueryParametersError", "Unsupported algorithm")
    try:
        expires = int(expires_text)
        signed_at = calendar.timegm(time.strptime(amz_date, AMZ_DATE_FORMAT))
    except ValueError:
        raise SignatureProblem(
            "AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed"
        ) from None
    expected = sign_path(key, path, amz_date, expires)
    if not hmac.compare_digest(expected, signature.lower()):
        raise SignatureProblem(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if now >= signed_at + expires:
        raise SignatureProblem("AccessDenied", "Request has expired")


# -- download faults -----------------------------------------------------------------


def truncated(data: bytes) -> bytes:
    """The first half of a gzip file: the stream ends early (an interrupted transfer)."""
    return data[: max(1, len(data) // 2)]


def corrupted(data: bytes) -> bytes:
    """Valid gzip whose middle JSONL line is cut in half (a parse error, not a gzip error)."""
    lines = gzip.decompress(data).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        return data
    middle = len(lines) // 2
    lines[middle] = lines[middle][: max(1, len(lines[middle]) // 2)]
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        gz.write(b"\n".join(lines) + b"\n")
    return buffer.getvalue()

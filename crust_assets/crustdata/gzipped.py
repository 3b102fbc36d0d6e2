"""Unwrapping the gzip layers of a result part or file: the one loop every reader uses.

Why apart from `download`: `crust-assets ingest` reads local files through this loop and must
not import the HTTP stack to do so; verification (in `download`) passes its byte counters in.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import IO, cast

__all__ = ["GZIP_MAGIC", "LimitExceeded", "Wrap", "open_decoded"]

GZIP_MAGIC = b"\x1f\x8b"


class LimitExceeded(Exception):
    """A cap was hit while decoding; turned into a DownloadError by the caller.

    ``shown`` is the limit's text when it is not a ``DownloadLimits`` field (the gzip layers).
    """

    def __init__(self, limit: str, what: str, shown: str | None = None) -> None:
        super().__init__(limit)
        self.limit = limit
        self.what = what
        self.shown = shown


# (stream, decoded) -> the stream, counted against its cap; see open_decoded.
Wrap = Callable[[IO[bytes], bool], IO[bytes]]


def open_decoded(
    fh: IO[bytes],
    max_layers: int = 2,
    *,
    counted: Wrap | None = None,
    opened: list[gzip.GzipFile] | None = None,
) -> IO[bytes]:
    """A readable stream of the decoded bytes of ``fh`` (up to ``max_layers`` gzip layers).

    Rewinds ``fh``. Closing the returned stream does not close ``fh`` when it is a gzip
    wrapper, so callers close both (each layer opened is appended to ``opened`` if given).

    Without ``counted`` (a verified part, a local file) decoding stops after ``max_layers``.
    Verification passes ``counted(stream, decoded)``, which wraps the raw bytes and every
    layer's output against the caps (``decoded``: the bytes are the part's text); a layer
    past ``max_layers`` is then refused.
    """
    fh.seek(0)
    head = fh.read(2)
    fh.seek(0)
    layers: list[gzip.GzipFile] = [] if opened is None else opened
    stream = fh if counted is None else counted(fh, head != GZIP_MAGIC)
    while head == GZIP_MAGIC:
        if len(layers) == max_layers:
            if counted is None:
                break
            raise LimitExceeded(
                "gzip_layers",
                f"more than {max_layers} gzip layer(s)",
                f"limit gzip_layers={max_layers} (one layer, two when the store sends "
                "Content-Encoding: gzip; not settable: deeper nesting only hides a bomb)",
            )
        gz = gzip.GzipFile(fileobj=stream, mode="rb")
        layers.append(gz)
        decoded = cast(IO[bytes], gz)
        stream = decoded if counted is None else counted(decoded, True)
        head = gz.peek(2)[:2]
    return stream

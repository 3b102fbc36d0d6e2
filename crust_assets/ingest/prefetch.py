"""Run an iterator in a helper thread a few items ahead of its consumer.

Why: inflating gzip (zlib), parsing JSON (Arrow) and writing Parquet all release the GIL, so on
two cores the next block can be read while this one is parsed, and parsing can run while the
previous batches are written. The queue is short, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")


def in_thread(make: Callable[[], Iterator[T]], depth: int = 2) -> Iterator[T]:
    """Run the iterator `make()` in a helper thread, `depth` items ahead of the consumer.

    Exceptions are raised in the consumer. Closing this generator (or an exception in the
    consumer) stops the helper, which closes its iterator in its own thread, before returning.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = make()
        try:
            for item in iterator:
                if not put("item", item):
                    return
            put("end", None)
        except BaseException as error:  # handed to the consumer, raised there
            put("error", error)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="crust-ingest", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.05)
        thread.join()

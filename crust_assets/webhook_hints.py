"""The webhook's hints on the data root: written by the receiver, consumed by the sensor.

A hint is one small file (or object) named after a batch id that may have finished. This module
is apart from the receiver (`crust_assets.webhook`) because the submitter sensor reads hints in
the code location, which must load without the receiver's server stack (starlette, hypercorn:
the `webhook` extra).
"""

from __future__ import annotations

import json
from pathlib import PurePath

from crust_assets.crustdata.models import is_batch_id
from crust_assets.storage import DataLayout

HINTS_DIR = "webhooks"
HINT_SUFFIX = ".json"


def hints_dir(layout: DataLayout) -> PurePath:
    return layout.root / HINTS_DIR


def write_hint(layout: DataLayout, batch_id: str) -> PurePath:
    """Record that `batch_id` may have finished; written whole, so the sensor never reads half.

    One file per id, holding only the id: repeated callbacks for a job overwrite one hint, and
    nothing a caller sent beyond a valid id is ever stored.
    """
    if not is_batch_id(batch_id):  # it names a file: never let a body pick a path
        raise ValueError(f"not a batch id: {batch_id[:80]!r}")
    target = hints_dir(layout) / f"{batch_id}{HINT_SUFFIX}"
    layout.write_bytes(target, json.dumps({"batch_id": batch_id}).encode())
    return target


def add_hint(layout: DataLayout, batch_id: str, max_hints: int) -> bool:
    """Write the hint unless `max_hints` other hints are already waiting (False then).

    Refusing the newest rather than dropping the oldest keeps this one listing and one write,
    and loses nothing the sensor needs: it deletes every hint on each tick, and polls anyway.
    """
    waiting = read_hints(layout)
    if batch_id not in waiting and len(waiting) >= max_hints:
        return False
    write_hint(layout, batch_id)
    return True


def read_hints(layout: DataLayout) -> dict[str, PurePath]:
    """Batch ids hinted so far, with their files; temp files and foreign names are ignored."""
    directory = hints_dir(layout)
    hints: dict[str, PurePath] = {}
    for name, _ in layout.list_files(directory):
        batch_id = name.removesuffix(HINT_SUFFIX)
        if name.endswith(HINT_SUFFIX) and is_batch_id(batch_id):
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

"""Whether a day's input list was already read, as the file is now, by `contact_url_list`.

Dagster keeps a sensor's cursor, its on/off state and the run keys it has used per code-location
name. Under a new name (the location renamed, a deployment moved) the file sensor starts with no
cursor and no run key, and would plan every list in `input/` again: every URL outside the
re-enrichment window would be bought again. The event log is kept per asset key, whatever the
location is called, so the sensor asks it instead: `contact_url_list`'s latest materialisation of
a day records which file it read and that file's modification time (`input_modified_ns`, taken
before the first byte is read, so a file changed during the read counts as changed). Older
materialisations record the file but not its time: for them the file counts as read when it was
last modified no later than the materialisation was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

#: contact_url_list's metadata key for the input file's modification time, in ns.
INPUT_MODIFIED_NS = "input_modified_ns"
_INPUT_FILE = "input_file"


@dataclass(frozen=True)
class ListRead:
    """What contact_url_list's latest materialisation of a day says of the file it read."""

    input_url: str | None  # the file read; None if not recorded
    modified_ns: int | None  # the file's modification time then; None before it was recorded
    recorded_ns: int  # when the materialisation was recorded


def already_read(url: str, modified_ns: int, last: ListRead | None) -> bool:
    """True when `last` read the file at `url` as it is now (modified at `modified_ns`): planning
    the day again would read the same list and buy nothing new the plan does not already hold."""
    if last is None:
        return False
    if last.input_url is not None and last.input_url != url:
        return False  # another file (the data root moved): this one was never read
    if last.modified_ns is not None:
        return last.modified_ns == modified_ns
    return modified_ns <= last.recorded_ns


def last_read(instance: dg.DagsterInstance, key: dg.AssetKey, date: str) -> ListRead | None:
    """contact_url_list's latest materialisation of `date` (`key` is the copy's), as a ListRead."""
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[date])
    records = instance.fetch_materializations(records_filter, limit=1).records
    if not records:
        return None
    record = records[0]
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization is not None else {}
    url = metadata.get(_INPUT_FILE)
    modified = metadata.get(INPUT_MODIFIED_NS)
    return ListRead(
        input_url=str(url.value) if url is not None else None,
        modified_ns=int(modified.value) if modified is not None else None,  # type: ignore[arg-type]
        recorded_ns=int(record.timestamp * 1_000_000) * 1000,
    )

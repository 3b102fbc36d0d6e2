"""Every partition of enriched_contacts read as one table, and its newest row per profile.

Planning reuses a recent row instead of buying it again, and `contacts_latest` publishes the
newest row of each person: both ask the same question of the same dataset, so they share it.
"""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

PARTITIONED_CONTACTS_SCHEMA = ENRICHED_CONTACTS_SCHEMA.append(pa.field("date", pa.string()))


def contacts_dataset(layout: DataLayout) -> ds.Dataset | None:
    """All partitions of enriched_contacts, with `date` from the directory names."""
    root = layout.warehouse_dataset("enriched_contacts")
    if not layout.is_dir(root):
        return None
    return layout.dataset(
        root,
        format="parquet",
        schema=PARTITIONED_CONTACTS_SCHEMA,
        partitioning=ds.partitioning(pa.schema([pa.field("date", pa.string())]), flavor="hive"),
    )


def newest_per_profile(table: pa.Table) -> pa.Table:
    """Keep one row per profile_url: the latest enriched_at (then the latest partition)."""
    if table.num_rows == 0:
        return table
    sort_keys = [("profile_url", "ascending"), ("enriched_at", "descending")]
    if "date" in table.column_names:
        sort_keys.append(("date", "descending"))
    ordered = table.sort_by(sort_keys)
    urls = ordered.column("profile_url").combine_chunks()
    first = pa.array([True])
    changed = pc.not_equal(urls[1:], urls[:-1]) if len(urls) > 1 else pa.array([], pa.bool_())
    return ordered.filter(pa.concat_arrays([first, changed.cast(pa.bool_())]))


def all_contacts(layout: DataLayout) -> pa.Table:
    """Every row of every partition, with its `date` (empty when nothing is loaded yet)."""
    dataset = contacts_dataset(layout)
    return dataset.to_table() if dataset is not None else PARTITIONED_CONTACTS_SCHEMA.empty_table()


def partition_count(table: pa.Table) -> int:
    """How many partitions rows of `table` (with `date`) come from."""
    return len(pc.unique(table.column("date"))) if table.num_rows else 0

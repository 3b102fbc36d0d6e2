"""The IO manager with the data root on an S3-compatible store (moto server over real HTTP).

The partitions are uploaded the way the pipeline uploads them (`DataLayout.write_table`), and
the downstream assets are materialised with `data_dir="s3://bucket/data"`: listing the days,
reading the mapped files with pruning, and the contract types all go through s3fs.
"""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from crust_assets.storage import DataLayout
from crust_assets_tests import test_object_store
from crust_assets_tests.tables_io_data import DAYS, write_contacts
from crust_assets_tests.test_tables_io import (
    KINDS,
    LAST_DAY,
    SEVEN_DAYS,
    assert_contract_types,
    expected,
    loaded_metadata,
    run,
    urls_by_day,
)

pytestmark = pytest.mark.objectstore

# The moto server and fresh buckets of test_object_store (which says what they need).
object_store = test_object_store.object_store
bucket = test_object_store.bucket


@pytest.fixture
def s3_root(bucket: str) -> str:
    """A fresh bucket on the shared moto server, holding the test days."""
    root = f"s3://{bucket}/data"
    write_contacts(DataLayout.from_location(root), DAYS)
    return root


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_frame_type_from_s3(s3_root: str, kind: str) -> None:
    frame, result = run(s3_root, KINDS[kind], partition=LAST_DAY)
    assert result.success
    assert urls_by_day(frame) == expected([LAST_DAY])
    assert_contract_types(frame, kind)

    frame, result = run(s3_root, KINDS[kind], partition=LAST_DAY, partition_mapping=SEVEN_DAYS)
    assert result.success
    assert urls_by_day(frame) == expected(DAYS[-7:])

    frame, result = run(s3_root, KINDS[kind], partition=None)
    assert result.success
    assert urls_by_day(frame) == expected(DAYS)
    assert loaded_metadata(result)["source"] == f"{s3_root}/warehouse/enriched_contacts"


def test_missing_partition_and_projection_on_s3(s3_root: str) -> None:
    layout = DataLayout.from_location(s3_root)
    layout.remove(layout.warehouse_partition("enriched_contacts", DAYS[-3]))
    _, result = run(s3_root, pd.DataFrame, partition=LAST_DAY, partition_mapping=SEVEN_DAYS)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert (
        f"enriched_contacts has no files for 1 of the partitions this input maps to: {DAYS[-3]}"
        in str(failure.event_specific_data.error)
    )
    frame, result = run(s3_root, pl.LazyFrame, partition=None, metadata={"columns": ["batch_id"]})
    assert result.success
    assert frame.collect().columns == ["batch_id", "date"]
    assert loaded_metadata(result)["partition_dates"] == [d for d in DAYS if d != DAYS[-3]]
    frame, result = run(s3_root, pa.Table, partition=DAYS[0])
    assert result.success and frame.num_rows == 3


def test_env_root_points_at_the_bucket(s3_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRUST_DATA_DIR", s3_root)
    from crust_assets import ContactTablesIOManager

    layout = ContactTablesIOManager().layout()
    assert not layout.is_local
    assert layout.url(layout.root) == s3_root

"""Downstream assets load the warehouse tables through `ContactTablesIOManager`, for real.

Each test materialises a downstream asset with `dg.materialize` on a real instance, reading real
Parquet files written the way the pipeline writes them, through the project's own table assets
(their `io_manager_key`). What the asset received is checked as a user would: which days, which
rows, which columns, and the types the README promises for each frame type.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from crust_assets import ContactTablesIOManager
from crust_assets.defs.assets import contacts_latest, enriched_contacts
from crust_assets.defs.partitions import daily_partitions
from crust_assets.defs.resources import CrustdataResource, DataRoot
from crust_assets.defs.table_metadata import TABLE_IO_MANAGER_KEY
from crust_assets.storage import DataLayout
from crust_assets.table import EMAIL_TYPE
from crust_assets_tests.tables_io_data import (
    DAYS,
    EMPTY_DAY,
    contact_rows,
    write_contacts,
    write_latest,
    write_list,
)

KINDS: dict[str, Any] = {
    "pandas": pd.DataFrame,
    "polars": pl.DataFrame,
    "lazy": pl.LazyFrame,
    "arrow": pa.Table,
}
SEVEN_DAYS = dg.TimeWindowPartitionMapping(start_offset=-6)
LAST_DAY = DAYS[-1]


@pytest.fixture
def root(tmp_path: Path) -> DataLayout:
    layout = DataLayout.from_location(tmp_path / "data")
    write_contacts(layout, DAYS)
    return layout


def resources(data_dir: str | Path) -> dict[str, Any]:
    """What the project's table assets need to be part of a job, and the IO manager on the root."""
    return {
        "crustdata": CrustdataResource(),
        "data_root": DataRoot(data_dir=str(data_dir)),
        TABLE_IO_MANAGER_KEY: ContactTablesIOManager(data_dir=str(data_dir)),
    }


def as_arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if isinstance(frame, pl.DataFrame):
        return frame.to_arrow()
    if isinstance(frame, pd.DataFrame):
        return pa.Table.from_pandas(frame, preserve_index=False)
    return frame


def run(
    data_dir: str | Path, annotation: Any, *, partition: str | None, **asset_in: Any
) -> tuple[Any, dg.ExecuteInProcessResult]:
    """Materialise one downstream asset of enriched_contacts; what it got, and the run."""
    got: dict[str, Any] = {}

    def body(enriched_contacts: Any) -> None:
        got["frame"] = enriched_contacts

    if annotation is not None:
        body.__annotations__ = {"enriched_contacts": annotation, "return": None}
    downstream = dg.asset(
        name="downstream",
        partitions_def=daily_partitions if partition else None,
        ins={"enriched_contacts": dg.AssetIn(**asset_in)},
    )(body)
    result = dg.materialize(
        [enriched_contacts, downstream],
        selection=[downstream],
        partition_key=partition,
        resources=resources(data_dir),
        raise_on_error=False,
    )
    return got.get("frame"), result


def loaded_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    events = [e for e in result.all_events if e.event_type_value == "LOADED_INPUT"]
    assert len(events) == 1
    return {k: v.value for k, v in events[0].event_specific_data.metadata.items()}


def assert_contract_types(frame: Any, kind: str) -> None:
    """The types the README promises, as each library shows them."""
    if kind == "pandas":
        assert frame["date"].dtype == pd.ArrowDtype(pa.date32())
        assert isinstance(frame["date"].iloc[0], dt.date)
        assert isinstance(frame["enriched_at"].dtype, pd.DatetimeTZDtype)
        assert str(frame["enriched_at"].dtype.tz) == "UTC"
        assert frame["business_emails"].dtype == pd.ArrowDtype(pa.list_(EMAIL_TYPE))
        assert frame["phone_numbers"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
        first = frame.loc[frame["date"] != dt.date.fromisoformat(EMPTY_DAY)].iloc[0]
        assert isinstance(first["business_emails"], list)
        assert set(first["business_emails"][0]) == {"email", "status"}
        assert isinstance(first["phone_numbers"][0], str)
        return
    if kind in ("polars", "lazy"):
        schema = frame.collect_schema() if kind == "lazy" else frame.schema
        assert schema["date"] == pl.Date
        assert schema["enriched_at"] == pl.Datetime("us", "UTC")
        assert schema["business_emails"] == pl.List(
            pl.Struct({"email": pl.String, "status": pl.String})
        )
        assert schema["phone_numbers"] == pl.List(pl.String)
        return
    assert frame.schema.field("date").type == pa.date32()
    assert frame.schema.field("enriched_at").type == pa.timestamp("us", tz="UTC")
    assert frame.schema.field("business_emails").type == pa.list_(EMAIL_TYPE)
    assert frame.schema.field("phone_numbers").type == pa.list_(pa.string())


def urls_by_day(frame: Any) -> dict[str, set[str]]:
    table = as_arrow(frame)
    out: dict[str, set[str]] = {}
    for row in table.select(["date", "profile_url"]).to_pylist():
        out.setdefault(row["date"].isoformat(), set()).add(row["profile_url"])
    return out


def expected(days: list[str]) -> dict[str, set[str]]:
    return {d: {r["profile_url"] for r in contact_rows(d, 3)} for d in days}


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_partition_same_day(root: DataLayout, kind: str) -> None:
    frame, result = run(root.root, KINDS[kind], partition=LAST_DAY)
    assert result.success
    assert isinstance(frame, KINDS[kind])
    assert urls_by_day(frame) == expected([LAST_DAY])
    assert_contract_types(frame, kind)


@pytest.mark.parametrize("kind", list(KINDS))
def test_seven_day_window(root: DataLayout, kind: str) -> None:
    frame, result = run(root.root, KINDS[kind], partition=LAST_DAY, partition_mapping=SEVEN_DAYS)
    assert result.success
    assert urls_by_day(frame) == expected(DAYS[-7:])  # 22..28 Nov, not the two days before
    assert_contract_types(frame, kind)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unpartitioned_downstream_gets_every_partition(root: DataLayout, kind: str) -> None:
    frame, result = run(root.root, KINDS[kind], partition=None)
    assert result.success
    assert urls_by_day(frame) == expected(DAYS)
    assert_contract_types(frame, kind)
    metadata = loaded_metadata(result)
    assert metadata["partition_dates"] == DAYS
    assert metadata["partitions_loaded"] == len(DAYS)
    assert metadata["dagster/row_count"] == 3 * len(DAYS)


def test_a_backfill_run_over_a_range_gets_exactly_that_range(root: DataLayout) -> None:
    """One run for several days (a ranged backfill): the mapped days, not every day."""
    got: dict[str, Any] = {}

    @dg.asset(partitions_def=daily_partitions)
    def per_day(enriched_contacts: pa.Table) -> None:
        got["frame"] = enriched_contacts

    result = dg.materialize(
        [enriched_contacts, per_day],
        selection=[per_day],
        tags={
            "dagster/asset_partition_range_start": DAYS[2],
            "dagster/asset_partition_range_end": DAYS[4],
        },
        resources=resources(root.root),
    )
    assert result.success
    assert urls_by_day(got["frame"]) == expected(DAYS[2:5])


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_day_written_with_an_older_schema_still_loads(root: DataLayout, kind: str) -> None:
    """A file without a column the contract has now (and with one it no longer has) loads with
    the contract's columns: the missing one is null for that day."""
    path = root.warehouse_partition("enriched_contacts", DAYS[-2])
    old = root.read_table(path).drop_columns(["primary_business_email"])
    root.write_table(path, old.append_column("legacy", pa.array(["x"] * old.num_rows)))
    frame, result = run(root.root, KINDS[kind], partition=LAST_DAY, partition_mapping=SEVEN_DAYS)
    assert result.success
    table = as_arrow(frame)
    assert "legacy" not in table.column_names
    rows = table.select(["date", "primary_business_email"]).to_pylist()
    old_day = [r for r in rows if r["date"].isoformat() == DAYS[-2]]
    assert old_day and all(r["primary_business_email"] is None for r in old_day)
    assert any(r["primary_business_email"] for r in rows if r["date"].isoformat() == LAST_DAY)


def test_no_annotation_gives_pandas(root: DataLayout) -> None:
    frame, result = run(root.root, None, partition=LAST_DAY)
    assert result.success
    assert isinstance(frame, pd.DataFrame)
    assert_contract_types(frame, "pandas")


def test_a_missing_partition_in_the_window_fails_naming_it(root: DataLayout) -> None:
    gone = [DAYS[-4], DAYS[-2]]
    for day in gone:
        Path(root.warehouse_partition("enriched_contacts", day)).unlink()
    _, result = run(root.root, pd.DataFrame, partition=LAST_DAY, partition_mapping=SEVEN_DAYS)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data.error)
    assert "MissingPartitionsError" in text
    assert f"{gone[0]}, {gone[1]}" in text
    assert "Materialise enriched_contacts" in text

    frame, result = run(
        root.root,
        pd.DataFrame,
        partition=LAST_DAY,
        partition_mapping=SEVEN_DAYS,
        metadata={"allow_missing_partitions": True},
    )
    assert result.success
    assert set(urls_by_day(frame)) == set(DAYS[-7:]) - set(gone)


def test_projection_reads_only_the_named_columns(root: DataLayout) -> None:
    columns = ["profile_url", "primary_business_email"]
    for kind, annotation in KINDS.items():
        frame, result = run(root.root, annotation, partition=None, metadata={"columns": columns})
        assert result.success, kind
        assert as_arrow(frame).column_names == [*columns, "date"], kind
        assert loaded_metadata(result)["columns_read"] == [*columns, "date"]


def test_days_outside_the_mapping_are_never_opened(root: DataLayout) -> None:
    """The reader prunes by partition: a broken file of another day does not matter."""
    Path(root.warehouse_partition("enriched_contacts", DAYS[0])).write_bytes(b"not parquet")
    frame, result = run(root.root, pl.DataFrame, partition=LAST_DAY, partition_mapping=SEVEN_DAYS)
    assert result.success
    assert set(urls_by_day(frame)) == set(DAYS[-7:])
    _, result = run(root.root, pl.DataFrame, partition=None)
    assert not result.success  # every partition includes the broken one


def test_an_unknown_column_is_a_clear_error(root: DataLayout) -> None:
    _, result = run(
        root.root, pa.Table, partition=LAST_DAY, metadata={"columns": ["profile_url", "emial"]}
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "enriched_contacts has no column 'emial'" in str(failure.event_specific_data.error)


def test_enriched_list_with_its_users_columns(tmp_path: Path) -> None:
    """Partitions with different user columns come back as one frame; a partition whose lists
    were all empty (stored as list<null>) still arrives with the contract's list types."""
    layout = DataLayout.from_location(tmp_path / "data")
    write_list(layout, DAYS[0], ["crm_id", "owner"])
    write_list(layout, DAYS[1], ["crm_id", "owner", "source"])
    stored = layout.read_schema(layout.warehouse_partition("enriched_list", DAYS[0]))
    assert stored.field("business_emails").type == pa.list_(pa.null())
    spec = dg.AssetSpec("enriched_list", partitions_def=daily_partitions).with_io_manager_key(
        TABLE_IO_MANAGER_KEY
    )
    got: dict[str, Any] = {}

    @dg.asset
    def per_owner(enriched_list: pl.DataFrame) -> None:
        got["frame"] = enriched_list

    result = dg.materialize(
        [spec, per_owner],
        selection=[per_owner],
        resources={TABLE_IO_MANAGER_KEY: ContactTablesIOManager(data_dir=str(layout.root))},
    )
    assert result.success
    frame = got["frame"]
    assert frame.height == 4
    assert {"crm_id", "owner", "source", "status", "line_number"} <= set(frame.columns)
    assert frame.schema["business_emails"] == pl.List(
        pl.Struct({"email": pl.String, "status": pl.String})
    )
    assert frame.filter(pl.col("date") == dt.date.fromisoformat(DAYS[0]))["source"].is_null().all()


def test_contacts_latest_single_file_has_a_date(tmp_path: Path) -> None:
    layout = DataLayout.from_location(tmp_path / "data")
    write_latest(layout, DAYS[:2])
    got: dict[str, Any] = {}

    @dg.asset
    def crm_sync(contacts_latest: pd.DataFrame) -> None:
        got["frame"] = contacts_latest

    result = dg.materialize(
        [contacts_latest, crm_sync],
        selection=[crm_sync],
        resources=resources(layout.root),
    )
    assert result.success
    frame = got["frame"]
    assert len(frame) == 4
    assert frame["date"].dtype == pd.ArrowDtype(pa.date32())
    assert sorted({d.isoformat() for d in frame["date"]}) == DAYS[:2]


def test_data_dir_defaults_to_crust_data_dir(root: DataLayout, monkeypatch: Any) -> None:
    monkeypatch.setenv("CRUST_DATA_DIR", str(root.root))
    assert ContactTablesIOManager().layout().root == root.root


def test_polars_without_polars_says_how_to_install(root: DataLayout) -> None:
    """In a process where polars cannot be imported, a polars input names the extra."""
    script = (
        "import sys; sys.modules['polars'] = None\n"
        "import pyarrow as pa\n"
        "from crust_assets.table_reader import FrameKind, frame_kind, to_frame\n"
        "try:\n"
        "    to_frame(pa.table({'a': [1]}), frame_kind('pl.DataFrame'))\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'crust_assets[polars]'" in out


def test_table_assets_store_nothing(root: DataLayout) -> None:
    """handle_output writes no file: the assets keep their own atomic writes."""
    before = sorted(p for p in Path(root.root).rglob("*"))

    @dg.asset(io_manager_key=TABLE_IO_MANAGER_KEY)
    def returns_a_value() -> int:
        return 1

    result = dg.materialize(
        [returns_a_value],
        resources={TABLE_IO_MANAGER_KEY: ContactTablesIOManager(data_dir=str(root.root))},
        raise_on_error=False,
    )
    assert not result.success  # a value would be silently dropped: refused instead
    assert sorted(p for p in Path(root.root).rglob("*")) == before

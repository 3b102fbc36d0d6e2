"""Reading warehouse tables from the data root into pandas, polars or Arrow, with contract types.

Which partitions exist is read from the files (`date=<d>/data.parquet`), never from a Dagster
instance: a second deployment, a script and a test all see the same thing. The reader does the
pruning: one pyarrow dataset over exactly the wanted files, a partition filter on `date` and the
projected columns, so columns and days not asked for are never read. The same code reads a local
root and an object store (`DataLayout` knows the filesystem).

Types a user can rely on, whatever the frame: `date` is a date, `enriched_at` is UTC-aware, list
columns hold lists of dicts (emails) or lists of strings (phones). pandas gets the list and date
columns as Arrow-backed dtypes (`pd.ArrowDtype`): no Python object is built per row while loading,
and a value taken out (`.iloc[0]`, `.tolist()`) is a plain list of dicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import Enum
from pathlib import PurePath
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from crust_assets.storage import PARTITION_FILE, DataLayout
from crust_assets.warehouse_tables import DATE_TYPE, WarehouseTable

POLARS_INSTALL_HINT = "pip install 'crust_assets[polars]'"


class FrameKind(str, Enum):
    """What a downstream parameter asked for."""

    PANDAS = "pandas.DataFrame"
    POLARS = "polars.DataFrame"
    POLARS_LAZY = "polars.LazyFrame"
    ARROW = "pyarrow.Table"


POLARS_KINDS = (FrameKind.POLARS, FrameKind.POLARS_LAZY)


class TableReadError(ValueError):
    """A load that cannot be served as asked (unknown columns, unsupported annotation)."""


class MissingPartitionsError(FileNotFoundError):
    """Mapped partitions with no files: the message names the dates and what to materialise."""


def frame_kind(annotation: object) -> FrameKind:
    """The frame type for a parameter's annotation; no annotation (Any, object) means pandas.

    Decided on the type's module and name, so asking does not import polars.
    """
    if annotation is None or annotation is Any or annotation is object:
        return FrameKind.PANDAS
    name = getattr(annotation, "__name__", None)
    root = str(getattr(annotation, "__module__", "")).split(".")[0]
    if isinstance(annotation, str):  # an annotation left as text ("pl.LazyFrame")
        root, _, name = annotation.rpartition(".")
        root = {"pd": "pandas", "pl": "polars", "pa": "pyarrow"}.get(root, root)
    for kind in FrameKind:
        kind_root, kind_name = kind.value.split(".")
        if root == kind_root and name == kind_name:
            return kind
    supported = ", ".join(k.value for k in FrameKind)
    raise TableReadError(
        f"Cannot load a warehouse table as {annotation!r}: annotate the parameter with one of "
        f"{supported} (no annotation gives pandas)."
    )


def import_polars() -> Any:
    """polars, or an error that says how to install it (it is an optional extra)."""
    try:
        import polars
    except ImportError as error:
        raise ImportError(
            f"A polars input needs polars, which is not installed: {POLARS_INSTALL_HINT}"
        ) from error
    return polars


# ---- which partitions exist ---------------------------------------------------------------------
def _partition_date(path: PurePath) -> str | None:
    key, _, value = path.parent.name.partition("=")
    if key != "date":
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def existing_partitions(layout: DataLayout, name: str) -> list[str]:
    """The dates with a `warehouse/<name>/date=<d>/data.parquet`, oldest first."""
    root = layout.warehouse_dataset(name)
    if not layout.is_dir(root):
        return []
    found = (_partition_date(p) for p in layout.find(root, f"date=*/{PARTITION_FILE}"))
    return sorted({d for d in found if d is not None})


def single_file(layout: DataLayout, name: str) -> PurePath:
    return layout.warehouse_dataset(name) / PARTITION_FILE


def missing_partitions_message(
    name: str, missing: Sequence[str], location: str, shown: int = 10
) -> str:
    more = len(missing) - shown
    listed = ", ".join(missing[:shown]) + (f" and {more} more" if more > 0 else "")
    return (
        f"{name} has no files for {len(missing)} of the partitions this input maps to: {listed} "
        f"(looked under {location}). Materialise {name} for those dates first, or load what "
        "exists with AssetIn(metadata={'allow_missing_partitions': True})."
    )


# ---- reading ------------------------------------------------------------------------------------
def _file_schema(layout: DataLayout, table: WarehouseTable, files: Sequence[PurePath]) -> pa.Schema:
    """The contract schema, or (user columns) the files' own schemas unified, with every column
    the pipeline adds given its contract type: an all-empty list stays a list of emails."""
    if table.schema is not None:
        return table.schema
    unified = pa.unify_schemas(
        [layout.read_schema(f).remove_metadata() for f in files], promote_options="permissive"
    )
    known = table.column_types()
    return pa.schema(
        [known.field(f.name) if f.name in known.names else f for f in unified if f.name != "date"]
    )


def _projection(schema: pa.Schema, columns: Sequence[str] | None, name: str) -> list[str] | None:
    if columns is None:
        return None
    unknown = [c for c in columns if c not in schema.names]
    if unknown:
        raise TableReadError(
            f"{name} has no column {', '.join(map(repr, unknown))}; its columns are "
            f"{', '.join(schema.names)}"
        )
    return list(dict.fromkeys(columns))


def read_partitions(
    layout: DataLayout,
    table: WarehouseTable,
    dates: Sequence[str],
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Rows of `dates` (which must exist) as one Arrow table with a `date` column (a date)."""
    root = layout.warehouse_dataset(table.name)
    files = [root / f"date={d}" / PARTITION_FILE for d in dates]
    schema = _file_schema(layout, table, files).append(pa.field("date", DATE_TYPE))
    wanted = _projection(schema, columns, table.name)
    if wanted is not None and "date" not in wanted:
        wanted.append("date")
    if not files:
        return schema.empty_table().select(wanted) if wanted else schema.empty_table()
    dataset = ds.dataset(
        [str(f) for f in files],
        schema=schema,
        format="parquet",
        filesystem=layout.arrow_fs,
        partitioning=ds.partitioning(pa.schema([pa.field("date", DATE_TYPE)]), flavor="hive"),
        partition_base_dir=str(root),
    )
    days = pa.array([dt.date.fromisoformat(d) for d in dates], DATE_TYPE)
    return dataset.to_table(columns=wanted, filter=ds.field("date").isin(days))


def read_single(
    layout: DataLayout, table: WarehouseTable, columns: Sequence[str] | None = None
) -> pa.Table:
    """An unpartitioned table's one file; a text `date` column comes back as a date."""
    path = single_file(layout, table.name)
    schema = _file_schema(layout, table, [path])
    wanted = _projection(schema, columns, table.name)
    read = layout.read_table(path, schema=schema, columns=wanted)
    if "date" in read.column_names and read.schema.field("date").type != DATE_TYPE:
        index = read.column_names.index("date")
        read = read.set_column(index, "date", read.column("date").cast(DATE_TYPE))
    return read


def native_polars_scan_fits(layout: DataLayout, table: WarehouseTable) -> bool:
    """polars reads a local root itself (faster than through Arrow, and lazily) when every file
    has the contract schema; an object store or a table with user columns goes through Arrow."""
    return layout.is_local and table.schema is not None


def scan_partitions_polars(
    layout: DataLayout,
    table: WarehouseTable,
    dates: Sequence[str],
    columns: Sequence[str] | None = None,
) -> Any:
    """`read_partitions` as a polars LazyFrame: polars' own scan, with the contract schema, the
    date from the directory names, only the wanted files and columns (pushed down to the scan)."""
    polars = import_polars()
    assert table.schema is not None
    schema = table.schema.append(pa.field("date", DATE_TYPE))
    wanted = _projection(schema, columns, table.name) or list(schema.names)
    if "date" not in wanted:
        wanted.append("date")
    contract = polars.from_arrow(table.schema.empty_table()).schema
    root = layout.warehouse_dataset(table.name)
    files = [str(root / f"date={d}" / PARTITION_FILE) for d in dates]
    if not files:
        empty = polars.from_arrow(schema.empty_table()).lazy()
        return empty.select(wanted)
    scan = polars.scan_parquet(
        files,
        schema=contract,
        hive_partitioning=True,
        hive_schema={"date": polars.Date},
        # As the Arrow path: a file written before a column existed reads it as null, and a
        # column the contract does not have is left out.
        missing_columns="insert",
        extra_columns="ignore",
    )
    days = [dt.date.fromisoformat(d) for d in dates]
    return scan.filter(polars.col("date").is_in(days)).select(wanted)


def frame_shape(frame: Any) -> tuple[int, list[str]]:
    """Rows and column names of any of the frames (a LazyFrame counts from the file footers)."""
    if type(frame).__name__ == "LazyFrame":
        polars = import_polars()
        return int(frame.select(polars.len()).collect().item()), list(frame.collect_schema())
    if isinstance(frame, pa.Table):
        return frame.num_rows, frame.column_names
    return len(frame), [str(c) for c in frame.columns]


# ---- frames -------------------------------------------------------------------------------------
def _pandas_type(arrow_type: pa.DataType) -> Any:
    """Arrow-backed dtypes for lists, structs and dates; numpy/pandas defaults for the rest
    (so `enriched_at` is `datetime64[us, UTC]`)."""
    if pa.types.is_list(arrow_type) or pa.types.is_struct(arrow_type) or arrow_type == DATE_TYPE:
        import pandas as pd

        return pd.ArrowDtype(arrow_type)
    return None


def to_frame(table: pa.Table, kind: FrameKind) -> Any:
    """The Arrow table as the frame type asked for (Arrow itself as it is)."""
    if kind is FrameKind.ARROW:
        return table
    if kind is FrameKind.PANDAS:
        return table.to_pandas(types_mapper=_pandas_type)
    polars = import_polars()
    frame = polars.from_arrow(table, rechunk=False)
    return frame.lazy() if kind is FrameKind.POLARS_LAZY else frame

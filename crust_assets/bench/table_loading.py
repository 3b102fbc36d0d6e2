"""Loading enriched_contacts through `ContactTablesIOManager` vs reading the same files directly.

The IO manager lists the partitions from the files, reads them with the contract schema and
converts to the asked frame type; the baselines are what a user would write by hand on the same
directory: `pd.read_parquet(dir)` and `pl.scan_parquet(...).collect()`. Both sides run in this
process, interleaved (see `common.py`). Peak memory of a two-column projection against all columns
is measured in fresh child processes, each loading through the IO manager.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from crust_assets.bench.common import cache_dir, child_peak_rss, interleaved, self_peak_rss_mib
from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

FIRST_DAY = date(2026, 1, 1)
PROJECTION = ["profile_url", "primary_business_email"]


def partition_table(day: str, rows: int) -> pa.Table:
    """`rows` contacts of one day: six in ten matched, with one or two emails and a phone."""
    stamp = datetime.fromisoformat(day).replace(hour=6, tzinfo=timezone.utc)
    records = []
    for i in range(rows):
        matched = i % 10 < 6
        email = f"person{i}@company{i % 997}.example.com"
        records.append(
            {
                "profile_url": f"https://www.linkedin.com/in/bench-{day}-{i:06d}",
                "business_emails": [{"email": email, "status": "deliverable"}] if matched else [],
                "personal_emails": [{"email": f"p{i}@mail.example", "status": "unknown"}]
                if i % 4 == 0
                else [],
                "phone_numbers": [f"+1555{i:07d}"] if i % 3 == 0 else [],
                "crustdata_person_id": i,
                "batch_id": f"batch-{day}-{i // 300}",
                "enriched_at": stamp,
                "matched": matched,
                "primary_business_email": email if matched else None,
            }
        )
    return pa.Table.from_pylist(records, schema=ENRICHED_CONTACTS_SCHEMA)


def build_warehouse(partitions: int, rows: int) -> Path:
    """A data root with `partitions` days of `rows` rows each (cached between runs)."""
    root = cache_dir() / f"tables-{partitions}x{rows}"
    layout = DataLayout.from_location(root)
    done = root / ".complete"
    if done.exists():
        return root
    for n in range(partitions):
        day = (FIRST_DAY + timedelta(days=n)).isoformat()
        layout.write_table(
            layout.warehouse_partition("enriched_contacts", day), partition_table(day, rows)
        )
    done.write_text("ok")
    return root


def input_context(partitions: int, annotation: Any, columns: list[str] | None = None) -> Any:
    """The context Dagster gives the IO manager for a downstream mapped to `partitions` days.

    Built once per measured function: building it creates a Dagster instance, which is the
    harness's cost, not the load's.
    """
    import dagster as dg

    from crust_assets.defs.partitions import daily_partitions

    last = (FIRST_DAY + timedelta(days=partitions - 1)).isoformat()
    return dg.build_input_context(
        asset_key="enriched_contacts",
        dagster_type=dg.PythonObjectDagsterType(annotation),
        definition_metadata={"columns": columns} if columns else None,
        partition_key=last,
        asset_partitions_def=daily_partitions,
        asset_partition_key_range=dg.PartitionKeyRange(FIRST_DAY.isoformat(), last),
    )


def load_through_io_manager(data_dir: Path, context: Any) -> Any:
    """What the downstream asset gets: the IO manager's `load_input`."""
    from crust_assets.tables_io import ContactTablesIOManager

    return ContactTablesIOManager(data_dir=str(data_dir)).load_input(context)


def bench_table_loading(partitions: int, rows: int, rounds: int) -> dict[str, Any]:
    import pandas as pd
    import polars as pl

    root = build_warehouse(partitions, rows)
    dataset = root / "warehouse" / "enriched_contacts"
    pandas_context = input_context(partitions, pd.DataFrame)
    polars_context = input_context(partitions, pl.DataFrame)
    functions = {
        "pandas_direct": lambda: pd.read_parquet(dataset),
        "pandas_io": lambda: load_through_io_manager(root, pandas_context),
        "polars_direct": lambda: pl.scan_parquet(
            str(dataset / "**" / "*.parquet"), hive_partitioning=True
        ).collect(),
        "polars_io": lambda: load_through_io_manager(root, polars_context),
    }
    timings, results = interleaved(functions, rounds)
    lengths = {name: len(frame) for name, frame in results.items()}
    memory = {
        mode: child_peak_rss(
            ["crust_assets.bench.table_loading", "--child", mode, str(root), str(partitions)]
        )
        for mode in ("baseline", "projection", "all")
    }
    return {
        "partitions": partitions,
        "rows_per_partition": rows,
        "rows": lengths,
        "seconds": {name: t.wall for name, t in timings.items()},
        "cpu_seconds": {name: t.cpu for name, t in timings.items()},
        "pandas_speed": timings["pandas_direct"].wall / timings["pandas_io"].wall,
        "polars_speed": timings["polars_direct"].wall / timings["polars_io"].wall,
        "peak_rss_mib": {mode: figures["peak_rss_mib"] for mode, figures in memory.items()},
    }


def _child(mode: str, data_dir: str, partitions: int) -> None:
    """One load in a fresh process; prints its own peak RSS (see `self_peak_rss_mib`)."""
    import dagster as dg  # imported first in every mode: the baseline is the imports alone
    import pandas as pd

    from crust_assets.tables_io import ContactTablesIOManager

    del dg, ContactTablesIOManager
    rows = 0
    if mode != "baseline":
        context = input_context(
            partitions, pd.DataFrame, PROJECTION if mode == "projection" else None
        )
        rows = len(load_through_io_manager(Path(data_dir), context))
    print(json.dumps({"peak_rss_mib": self_peak_rss_mib(), "rows": rows}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["baseline", "projection", "all"], required=True)
    parser.add_argument("data_dir")
    parser.add_argument("partitions", type=int)
    args = parser.parse_args()
    _child(args.child, args.data_dir, args.partitions)

"""A CRM export of 100,000 lines with 20 extra columns, through contact_url_list and enriched_list.

What it measures, each in a fresh child process (so the peak RSS is that work alone):

* ours: exactly what the two asset bodies do (the streamed read keeping every cell, the
  normalisation and dedupe, the staging files; then the per-line table from the staged lines and
  the partition's `enriched_contacts`, published with its CSV through the erasure fence);
* the baseline: `pyarrow.csv.read_csv` of the same file, a left join with the contacts on
  `profile_url` (their non-list columns: Arrow's join takes no list columns) and one Parquet
  write, i.e. the least any tool must do to give the rows back with something joined.

Time is reported as ours / baseline. Memory is reported at half and at the full size: it should
grow with the partition (about twice as much at twice the lines), not faster.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from crust_assets.bench.common import child_peak_rss, self_peak_rss_mib

DATE = "2026-10-01"
EXTRA_COLUMNS = 20


def write_input(data_dir: Path, lines: int, seed: int = 5) -> Path:
    """The list: about 5% duplicate people (other spellings), 2% rejects, 20 CRM columns."""
    rng = random.Random(seed)
    path = data_dir / "input" / f"{DATE}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["profile_url", *[f"crm_field_{i:02d}" for i in range(EXTRA_COLUMNS)]]
    with open(path, "w", encoding="utf-8") as out:
        out.write(",".join(header) + "\n")
        for n in range(lines):
            draw = rng.random()
            if draw < 0.02:
                url = f"https://www.linkedin.com/company/acme-{n}"
            elif draw < 0.07:
                url = f"http://linkedin.com/in/bench-{rng.randrange(max(n, 1)):07d}/?utm=x"
            else:
                url = f"https://www.linkedin.com/in/bench-{n:07d}"
            cells = [f"v{n}-{i}-{rng.randrange(10**6)}" for i in range(EXTRA_COLUMNS)]
            if n % 97 == 0:
                cells[3] = '"Acme, Inc."'
            out.write(",".join([url, *cells]) + "\n")
    return path


def write_contacts(data_dir: Path, lines: int) -> Path:
    """The partition's enriched_contacts: one row per person, emails for about 60%."""
    from crust_assets.storage import DataLayout
    from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

    now = datetime(2026, 10, 1, tzinfo=timezone.utc)
    rows = []
    for n in range(lines):
        found = n % 5 < 3
        email = f"person{n}@company{n % 500}.com"
        rows.append(
            {
                "profile_url": f"https://www.linkedin.com/in/bench-{n:07d}",
                "business_emails": [{"email": email, "status": "deliverable"}] if found else [],
                "personal_emails": [],
                "phone_numbers": [f"+1555{n:07d}"] if n % 4 == 0 else [],
                "crustdata_person_id": n,
                "batch_id": "00000000-0000-4000-8000-000000000000",
                "enriched_at": now,
                "matched": found or n % 4 == 0,
                "primary_business_email": email if found else None,
            }
        )
    layout = DataLayout.from_location(data_dir)
    target = layout.warehouse_partition("enriched_contacts", DATE)
    layout.write_table(target, pa.Table.from_pylist(rows, schema=ENRICHED_CONTACTS_SCHEMA))
    return Path(target)


def run_ours(data_dir: str) -> dict[str, Any]:
    """The two asset bodies' work, with the same functions, on one partition."""
    from crust_assets.defs.enriched_list_asset import csv_path, publish_enriched_list
    from crust_assets.enriched_list import build_enriched_list
    from crust_assets.erasure import erased_urls
    from crust_assets.storage import DataLayout
    from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
    from crust_assets.url_lists import LINES_FILE, prepare_url_list, read_url_list

    layout = DataLayout.from_location(data_dir)
    started = time.perf_counter()
    prepared = prepare_url_list(read_url_list(Path(layout.input_file(DATE))))
    layout.write_table(layout.staging_partition("contact_url_list", DATE), prepared.valid)
    layout.write_table(layout.warehouse_partition("rejected_urls", DATE), prepared.rejects)
    lines_file = layout.staging_partition("contact_url_list", DATE, LINES_FILE)
    layout.write_table(lines_file, prepared.lines)
    del prepared
    listed = time.perf_counter()
    lines = layout.read_table(lines_file)
    contacts = layout.read_table(
        layout.warehouse_partition("enriched_contacts", DATE), schema=ENRICHED_CONTACTS_SCHEMA
    )
    table = build_enriched_list(lines, contacts, erased_urls(layout))
    target = layout.warehouse_partition("enriched_list", DATE)
    publish_enriched_list(layout, target, csv_path(layout, DATE), table, "bench")
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "contact_url_list_seconds": listed - started,
        "enriched_list_seconds": done - listed,
        "rows": table.num_rows,
        "columns": table.num_columns,
    }


def run_baseline(data_dir: str) -> dict[str, Any]:
    """pyarrow.csv.read_csv + a left join on profile_url + one Parquet write."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    root = Path(data_dir)
    table = pacsv.read_csv(root / "input" / f"{DATE}.csv")
    contacts = pq.read_table(
        root / "warehouse" / "enriched_contacts" / f"date={DATE}" / "data.parquet",
        columns=["profile_url", "primary_business_email", "crustdata_person_id", "matched"],
    )
    joined = table.join(contacts, "profile_url", join_type="left outer")
    pq.write_table(joined, root / "baseline.parquet")
    return {"seconds": time.perf_counter() - started, "rows": joined.num_rows}


def _child(mode: str, data_dir: str) -> None:
    result = run_ours(data_dir) if mode == "ours" else run_baseline(data_dir)
    result["peak_rss_mib"] = self_peak_rss_mib()
    print(json.dumps(result))


def bench_enriched_list(work: Path, lines: int = 100_000, rounds: int = 3) -> dict[str, Any]:
    """Best of `rounds` interleaved child runs at `lines`, and one of each at half the size."""
    figures: dict[str, Any] = {"lines": lines, "extra_columns": EXTRA_COLUMNS}
    for size in (lines // 2, lines):
        data_dir = work / f"lines-{size}"
        input_file = write_input(data_dir, size)
        write_contacts(data_dir, size)
        figures[f"input_mib@{size}"] = input_file.stat().st_size / 2**20
        best: dict[str, dict[str, Any]] = {}
        for _ in range(rounds if size == lines else 1):
            for mode in ("baseline", "ours"):
                run = child_peak_rss(["crust_assets.bench.enriched_list", mode, str(data_dir)])
                if mode not in best or run["seconds"] < best[mode]["seconds"]:
                    best[mode] = run
        figures[f"ours@{size}"], figures[f"baseline@{size}"] = best["ours"], best["baseline"]
    ours, base = figures[f"ours@{lines}"], figures[f"baseline@{lines}"]
    half = figures[f"ours@{lines // 2}"]
    figures["time_vs_baseline"] = ours["seconds"] / base["seconds"]
    figures["rss_growth_half_to_full"] = ours["peak_rss_mib"] / half["peak_rss_mib"]
    figures["rows_equal_lines"] = ours["rows"] == lines
    return figures


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])

"""What importing the ingest code, and running `crust-assets ingest`, loads into a fresh process.

The command is a process of its own: every module it imports is paid for before it reads a
byte, and pandas, httpx and Dagster together cost about a second. None of them is needed to
turn local result files into Parquet, so importing the package loads none of them, and the
command loads none before it opens its input (nor httpx or Dagster at all). Each check runs in
a fresh interpreter: this test process has imported them all already.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

HEAVY = ("pandas", "httpx", "dagster")

INGEST_MODULES = (
    "crust_assets.ingest",
    "crust_assets.ingest.fast",
    "crust_assets.ingest.parse",
    "crust_assets.ingest.prefetch",
    "crust_assets.ingest.ledger",
    "crust_assets.ingest.jobs",
    "crust_assets.ingest.files",
)


def loaded_after(code: str) -> list[str]:
    """The heavy top-level packages in `sys.modules` after `code` ran in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    modules = json.loads(completed.stdout.strip().splitlines()[-1])
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


def test_importing_every_ingest_module_loads_no_pandas_httpx_or_dagster() -> None:
    code = "\n".join(f"import {name}" for name in INGEST_MODULES)
    assert loaded_after(code) == []


def test_the_ingest_command_loads_none_of_them_before_it_reads_its_file(tmp_path: Path) -> None:
    source = tmp_path / "RESULTS.jsonl.gz"
    records = [
        {
            "original_identifier": f"https://www.linkedin.com/in/person-{i}",
            "internal_id": i,
            "data": {"business_email": [{"email": f"p{i}@example.com", "status": "deliverable"}]},
        }
        for i in range(3)
    ]
    source.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    out = tmp_path / "out.parquet"
    # An audit hook notes what is loaded when the command opens its input; after the run, pandas
    # may be there (pyarrow looks for it when it first converts a Python value), the others not.
    code = f"""
import sys
at_open = []
def hook(event, args):
    if event == "open" and args[0] == {str(source)!r} and not at_open:
        at_open.append(sorted({{m.split(".")[0] for m in sys.modules}} & {set(HEAVY)!r}))
sys.addaudithook(hook)
from crust_assets.cli import main
assert main(["ingest", {str(source)!r}, "--out", {str(out)!r}]) == 0
assert at_open == [[]], at_open
"""
    assert set(loaded_after(code)) <= {"pandas"}
    table = pq.read_table(out)
    assert table.column("profile_url").to_pylist() == [r["original_identifier"] for r in records]
    assert table.num_rows == 3


def test_the_check_sees_a_heavy_import() -> None:
    assert loaded_after("import crust_assets.crustdata.client") == ["httpx"]

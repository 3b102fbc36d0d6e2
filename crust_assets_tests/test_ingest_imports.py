"""What importing the ingest code, and running `crust-assets ingest`, loads into a fresh process.

The command is a process of its own: every module it imports is paid for before it reads a
byte, and pandas, httpx and Dagster together cost about a second. None of them is needed to
turn local result files into Parquet, so importing the package loads none of them, and the
command loads none, neither before it opens its input nor while it converts and writes (pyarrow
would load pandas the first time it is given a Python value; see `crust_assets.ingest.buffers`).
Each check runs in a fresh interpreter: this test process has imported them all already.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

HEAVY = ("pandas", "httpx", "dagster")

INGEST_MODULES = (
    "crust_assets.ingest",
    "crust_assets.ingest.fast",
    "crust_assets.ingest.parse",
    "crust_assets.ingest.prefetch",
    "crust_assets.ingest.ledger",
    "crust_assets.ingest.jobs",
    "crust_assets.ingest.files",
    "crust_assets.ingest.buffers",
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


@pytest.mark.parametrize(
    "options", [[], ["--keep-duplicates"], ["--urls", "URLS"]], ids=["dedupe", "keep", "urls"]
)
def test_the_ingest_command_loads_none_of_them(tmp_path: Path, options: list[str]) -> None:
    source = tmp_path / "RESULTS.jsonl.gz"
    records = [
        {
            "original_identifier": f"https://www.linkedin.com/in/person-{i}",
            "internal_id": i,
            "data": {"business_email": [{"email": f"p{i}@example.com", "status": "deliverable"}]},
        }
        for i in (0, 1, 2, 1)  # a duplicate: the paths that drop rows run too
    ]
    source.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    urls = tmp_path / "urls.txt"
    urls.write_text("\n".join(str(r["original_identifier"]) for r in records[:3]) + "\n")
    options = [str(urls) if o == "URLS" else o for o in options]
    out = tmp_path / "out.parquet"
    # An audit hook notes what is loaded when the command opens its input.
    code = f"""
import sys
at_open = []
def hook(event, args):
    if event == "open" and args[0] == {str(source)!r} and not at_open:
        at_open.append(sorted({{m.split(".")[0] for m in sys.modules}} & {set(HEAVY)!r}))
sys.addaudithook(hook)
from crust_assets.cli import main
assert main(["ingest", {str(source)!r}, "--out", {str(out)!r}, *{options!r}]) == 0
assert at_open == [[]], at_open
"""
    assert loaded_after(code) == []
    table = pq.read_table(out)
    expected = [r["original_identifier"] for r in records]
    kept = expected if options == ["--keep-duplicates"] else expected[:3]
    assert table.column("profile_url").to_pylist() == kept


def test_the_check_sees_a_heavy_import() -> None:
    assert loaded_after("import crust_assets.crustdata.client") == ["httpx"]

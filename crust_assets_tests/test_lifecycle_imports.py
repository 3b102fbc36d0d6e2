"""The job lifecycle's core loads neither Dagster nor an HTTP client: its rules are tested, and
could be reused, without an instance or a server. Checked in a fresh interpreter, since this
test process has imported both already."""

from __future__ import annotations

import json
import subprocess
import sys

LIFECYCLE_MODULES = (
    "crust_assets.lifecycle",
    "crust_assets.lifecycle.events",
    "crust_assets.lifecycle.ledger",
    "crust_assets.lifecycle.settings",
    "crust_assets.lifecycle.answers",
    "crust_assets.lifecycle.decide",
    "crust_assets.lifecycle.alarms",
)


def test_importing_the_lifecycle_loads_no_dagster_or_httpx() -> None:
    code = "\n".join(f"import {name}" for name in LIFECYCLE_MODULES)
    code += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    modules = json.loads(completed.stdout.strip().splitlines()[-1])
    loaded = {name.split(".")[0] for name in modules}
    assert "crust_assets.lifecycle.decide" in modules
    assert loaded & {"dagster", "httpx"} == set()

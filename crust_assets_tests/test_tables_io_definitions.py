"""The catalog knows the tables before their first run: read from the loaded code location.

Loads `crust_assets.definitions` in a fresh process with CRUST_DATA_DIR set (as `dagster dev`
would), and reads each table asset's definition metadata and IO manager key there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from crust_assets.enriched_list import ENRICHED_LIST_SCHEMA
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets.warehouse_tables import COVERAGE_SCHEMA

TABLES = ["enriched_contacts", "contact_coverage", "contacts_latest", "enriched_list"]

READ_DEFINITIONS = """
import json, sys
import crust_assets.definitions as code_location
out = {}
for name in sys.argv[1:]:
    assets = code_location.defs.resolve_assets_def(name)
    spec = next(iter(assets.specs))
    meta = spec.metadata
    lineage = meta.get("dagster/column_lineage")
    out[name] = {
        "io_manager_key": assets.get_io_manager_key_for_asset_key(spec.key),
        "columns": [(c.name, c.type, c.description) for c in meta["dagster/column_schema"].columns],
        "table_name": meta["dagster/table_name"],
        "uri": meta["dagster/uri"],
        "lineage": None if lineage is None else {
            column: [(d.asset_key.to_user_string(), d.column_name) for d in deps]
            for column, deps in lineage.deps_by_column.items()
        },
    }
print(json.dumps(out))
"""


def load(data_dir: str) -> dict:
    env = {"CRUST_DATA_DIR": data_dir, "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    done = subprocess.run(
        [sys.executable, "-c", READ_DEFINITIONS, *TABLES],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_table_assets_declare_schema_name_and_uri(tmp_path: Path) -> None:
    found = load(str(tmp_path / "data"))
    expected_columns = {
        "enriched_contacts": [*ENRICHED_CONTACTS_SCHEMA.names, "date"],
        "contact_coverage": [*COVERAGE_SCHEMA.names, "date"],
        "contacts_latest": [*ENRICHED_CONTACTS_SCHEMA.names, "date"],
        # The user's columns vary: the catalog lists the pipeline's own.
        "enriched_list": [*ENRICHED_LIST_SCHEMA.names, "date"],
    }
    for name in TABLES:
        table = found[name]
        assert table["io_manager_key"] == "contact_tables_io_manager"
        assert [c[0] for c in table["columns"]] == expected_columns[name]
        assert all(description for _, _, description in table["columns"]), name
        assert table["table_name"] == name
        assert table["uri"] == str(tmp_path / "data" / "warehouse" / name)
    types = dict((c[0], c[1]) for c in found["enriched_contacts"]["columns"])
    assert types["enriched_at"] == str(pa.timestamp("us", tz="UTC"))
    assert types["date"] == "date32"


def test_contacts_latest_declares_lineage_from_enriched_contacts(tmp_path: Path) -> None:
    lineage = load(str(tmp_path / "data"))["contacts_latest"]["lineage"]
    assert set(lineage) == {*ENRICHED_CONTACTS_SCHEMA.names, "date"}
    assert lineage["business_emails"] == [["enriched_contacts", "business_emails"]]
    assert found_sources(lineage) == {"enriched_contacts"}


def found_sources(lineage: dict) -> set[str]:
    return {asset for deps in lineage.values() for asset, _ in deps}


def test_uri_on_an_object_store_names_the_bucket() -> None:
    found = load("s3://analytics-bucket/crust/")
    assert (
        found["enriched_contacts"]["uri"]
        == "s3://analytics-bucket/crust/warehouse/enriched_contacts"
    )

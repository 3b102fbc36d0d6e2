"""Owners, tags and personal-data column marks: what alert policies and the catalog filter on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from crust_assets.defs.catalog_tags import OwnersError, parse_owners

PII_ASSETS = {
    "contact_url_list",
    "contact_enrichment_batch",
    "enriched_contacts",
    "contacts_latest",
    "contacts_duckdb",
    "enriched_list",
}


def test_owners_are_teams_and_emails_in_order_each_once() -> None:
    text = " team:revops, ana@example.com,,team:revops , ops.lead@corp.example.org "
    assert parse_owners(text) == ["team:revops", "ana@example.com", "ops.lead@corp.example.org"]
    assert parse_owners(None) == []
    assert parse_owners("  ") == []


@pytest.mark.parametrize("bad", ["revops", "team:", "ana@", "ana example@x.com", "@x.com"])
def test_a_wrong_owner_is_named_with_the_forms_that_work(bad: str) -> None:
    with pytest.raises(OwnersError) as raised:
        parse_owners(f"team:ok,{bad}")
    assert repr(bad) in str(raised.value)
    assert "CRUST_OWNERS" in str(raised.value) and "team:<name>" in str(raised.value)


def _load_in_fresh_interpreter(owners: str) -> subprocess.CompletedProcess[str]:
    """CRUST_OWNERS is read when the code location loads: load it as Dagster would, anew."""
    script = (
        "import json; from crust_assets.definitions import defs\n"
        "graph = defs.resolve_asset_graph()\n"
        "out = {}\n"
        "for key in graph.get_all_asset_keys():\n"
        "    node = graph.get(key)\n"
        "    out[key.to_user_string()] = {'owners': list(node.owners), 'tags': dict(node.tags)}\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "CRUST_OWNERS": owners}
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


def test_every_asset_has_the_owners_domain_and_pii_tags_dagster_plus_routes_on() -> None:
    done = _load_in_fresh_interpreter("team:revops, ana@example.com")
    assert done.returncode == 0, done.stderr[-2000:]
    assets = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(assets) >= PII_ASSETS | {"contact_coverage"}
    for name, spec in assets.items():
        assert spec["owners"] == ["team:revops", "ana@example.com"], name
        assert spec["tags"].get("domain") == "revops", name
        assert spec["tags"].get("pii") == ("true" if name in PII_ASSETS else None), name


def test_a_wrong_owner_stops_the_code_location_from_loading_with_its_name() -> None:
    done = _load_in_fresh_interpreter("team:revops,revops-oncall")
    assert done.returncode != 0
    assert "'revops-oncall' is not an owner" in done.stderr


def _column_tags(schema: dg.TableSchema) -> dict[str, dict[str, str]]:
    return {column.name: dict(column.tags or {}) for column in schema.columns}


def test_personal_data_columns_are_marked_in_the_catalogs_column_schema() -> None:
    from crust_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    contacts = _column_tags(
        graph.get(dg.AssetKey("enriched_contacts")).metadata["dagster/column_schema"]
    )
    for column in ("profile_url", "business_emails", "personal_emails", "phone_numbers"):
        assert contacts[column] == {"pii": "true"}, column
    for column in ("batch_id", "enriched_at", "date"):
        assert contacts[column] == {}, column
    coverage = _column_tags(
        graph.get(dg.AssetKey("contact_coverage")).metadata["dagster/column_schema"]
    )
    assert all(not tags for tags in coverage.values())
    lines_schema = graph.get(dg.AssetKey("enriched_list")).metadata["dagster/column_schema"]
    per_line = _column_tags(lines_schema)
    assert per_line["profile_url"] == {"pii": "true"}
    assert per_line["status"] == {}


def test_the_materialised_column_schema_marks_them_too() -> None:
    from crust_assets.defs.metadata import column_schema

    tags = _column_tags(column_schema(with_date=True))
    assert tags["personal_emails"] == {"pii": "true"} and tags["date"] == {}

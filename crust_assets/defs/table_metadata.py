"""Definition metadata of the table assets: the catalog knows their columns before a first run.

`dagster/column_schema`, `dagster/table_name` and `dagster/uri` are what Dagster's catalog (and
Dagster+ search and lineage) read from an asset's definition. The URI is computed from
CRUST_DATA_DIR when the code location loads, by string work only (no store is contacted).
"""

from __future__ import annotations

import os

import dagster as dg

from crust_assets.defaults import DATA_DIR_ENV, DEFAULT_DATA_DIR
from crust_assets.defs.catalog_tags import column_tags
from crust_assets.warehouse_tables import DATE_DESCRIPTION, dataset_uri, table_for

TABLE_IO_MANAGER_KEY = "contact_tables_io_manager"
USER_COLUMNS_NOTE = "Plus every column of the input file, as text, named as in its header."


def table_column_schema(name: str) -> dg.TableSchema:
    """The table's columns with their Arrow types and a description each (`date` included)."""
    table = table_for(name)
    columns = [
        dg.TableColumn(
            name=f.name,
            type=str(f.type) if f.name != "date" else "date32",
            description=table.descriptions.get(f.name, f.name),
            constraints=dg.TableColumnConstraints(nullable=f.nullable),
            tags=column_tags(f.name),
        )
        for f in table.column_types()
        if f.name != "date"
    ]
    date_text = table.descriptions.get("date", DATE_DESCRIPTION)
    columns.append(dg.TableColumn("date", "date32", date_text))
    return dg.TableSchema(columns=columns)


def table_definition_metadata(name: str, data_dir: str | None = None) -> dict[str, object]:
    """`dagster/column_schema`, `dagster/table_name` and `dagster/uri` of a warehouse table (under
    `data_dir`, default CRUST_DATA_DIR)."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    metadata: dict[str, object] = {
        "dagster/column_schema": table_column_schema(name),
        "dagster/table_name": name,
        "dagster/uri": dataset_uri(data_dir, name),
    }
    if table_for(name).schema is None:
        metadata["user_columns"] = USER_COLUMNS_NOTE
    return metadata


def latest_column_lineage(source: dg.AssetKey | None = None) -> dg.TableColumnLineage:
    """contacts_latest: every column is the same column of enriched_contacts' newest row."""
    source = source or dg.AssetKey("enriched_contacts")
    return dg.TableColumnLineage(
        deps_by_column={
            column.name: [dg.TableColumnDep(asset_key=source, column_name=column.name)]
            for column in table_column_schema("contacts_latest").columns
        }
    )

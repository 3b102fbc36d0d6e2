"""A second code location that reads crust_assets' tables: RevOps figures per source list and
per CRM owner, computed with pandas.

The tables belong to the `crust_assets` code location; here they are declared as `dg.AssetSpec`s
(same keys, same daily partitions), so the catalog draws the lineage across both locations and
Dagster maps partitions between them. `ContactTablesIOManager` loads them from the data root
(CRUST_DATA_DIR, a directory or an s3:// URL) into the annotated frame type; nothing here knows
where or how the files are written.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from crm_analytics.metrics import new_deliverable_emails_by_owner, weekly_coverage_by_source
from crust_assets import ContactTablesIOManager
from crust_assets.defs.partitions import daily_partitions

TABLES = "contact_tables_io_manager"


def crust_table(name: str, description: str, *, partitioned: bool = True) -> dg.AssetSpec:
    """One of crust_assets' tables, as this location sees it: loadable, not materialisable."""
    return dg.AssetSpec(
        name, partitions_def=daily_partitions if partitioned else None, description=description
    ).with_io_manager_key(TABLES)


enriched_list = crust_table("enriched_list", "crust_assets: one row per line of the CRM export.")
enriched_contacts = crust_table("enriched_contacts", "crust_assets: one row per person and day.")
contacts_latest = crust_table(
    "contacts_latest", "crust_assets: newest record per person.", partitioned=False
)

WEEKLY_COLUMNS = ["source", "status", "matched", "business_emails", "personal_emails"]


@dg.asset(
    ins={"enriched_list": dg.AssetIn(metadata={"columns": [*WEEKLY_COLUMNS, "phone_numbers"]})},
    group_name="crm_analytics",
    kinds={"pandas"},
    description="Per week and source list: lines looked up, match rate, fill rate per field.",
)
def weekly_source_coverage(
    context: dg.AssetExecutionContext, enriched_list: pd.DataFrame
) -> pd.DataFrame:
    # Unpartitioned: every day of enriched_list that exists (the run's input metadata lists them).
    table = weekly_coverage_by_source(enriched_list)
    context.add_output_metadata(
        {
            "dagster/row_count": len(table),
            "weeks": dg.MetadataValue.json(sorted({str(w) for w in table["week"]})),
            "by_week_and_source": dg.MetadataValue.json(
                table.assign(week=table["week"].astype(str)).to_dict(orient="records")
            ),
            "preview": dg.MetadataValue.md(table.to_markdown(index=False)),
        }
    )
    return table


@dg.asset(
    partitions_def=daily_partitions,
    ins={
        "enriched_list": dg.AssetIn(
            # The day and the day before; on the first day there is no day before.
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1),
            metadata={
                "columns": ["owner", "business_emails"],
                "allow_missing_partitions": True,
            },
        )
    },
    group_name="crm_analytics",
    kinds={"pandas"},
    description="Per CRM owner: deliverable business emails new since the previous day's list.",
)
def new_deliverable_emails(
    context: dg.AssetExecutionContext, enriched_list: pd.DataFrame
) -> pd.DataFrame:
    day = dt.date.fromisoformat(context.partition_key)
    if not (enriched_list["date"] == day).any():
        raise dg.Failure(
            description=f"enriched_list[{day}] has no rows: materialise it first.",
            allow_retries=False,
        )
    table = new_deliverable_emails_by_owner(enriched_list, day)
    context.add_output_metadata(
        {
            "dagster/row_count": len(table),
            "new_total": int(table["new_deliverable_emails"].sum()),
            "by_owner": dg.MetadataValue.json(
                dict(zip(table["owner"], map(int, table["new_deliverable_emails"]), strict=True))
            ),
        }
    )
    return table


defs = dg.Definitions(
    assets=[
        enriched_list,
        enriched_contacts,
        contacts_latest,
        weekly_source_coverage,
        new_deliverable_emails,
    ],
    # data_dir unset: CRUST_DATA_DIR of the run's environment, else data/.
    resources={TABLES: ContactTablesIOManager()},
)

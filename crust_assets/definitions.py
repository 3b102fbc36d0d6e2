"""The one `Definitions` object that workspace.yaml (and `dagster dev -m`) loads."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from crust_assets.defs.assets import (
    contact_coverage,
    contact_enrichment_batch,
    contact_url_list,
    contacts_duckdb,
    contacts_latest,
    enriched_contacts,
)
from crust_assets.defs.enriched_list_asset import enriched_list
from crust_assets.defs.freshness import (
    enriched_contacts_freshness_sensor,
    enriched_contacts_on_time,
)
from crust_assets.defs.jobs import enriched_contacts_job, plan_contact_enrichment_job
from crust_assets.defs.resources import DataRoot, build_resources
from crust_assets.defs.schedules import daily_contact_enrichment_schedule
from crust_assets.defs.sensors import (
    contact_automation_sensor,
    contact_enrichment_sensor,
    contact_url_list_file_sensor,
)
from crust_assets.defs.slack_alerts import slack_alerts
from crust_assets.defs.table_metadata import TABLE_IO_MANAGER_KEY
from crust_assets.tables_io import ContactTablesIOManager

ALL_ASSETS = [
    contact_url_list,
    contact_enrichment_batch,
    enriched_contacts,
    contact_coverage,
    contacts_latest,
    contacts_duckdb,
    enriched_list,
]


def with_table_io_manager(resources: Mapping[str, object]) -> dict[str, object]:
    """The given resources, plus the tables' IO manager on the same data root if they lack one."""
    out = dict(resources)
    if TABLE_IO_MANAGER_KEY not in out:
        data_root = out.get("data_root")
        out[TABLE_IO_MANAGER_KEY] = ContactTablesIOManager(
            data_dir=data_root.data_dir if isinstance(data_root, DataRoot) else None
        )
    return out


def build_definitions(resources: Mapping[str, object] | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources and get exactly the same wiring."""
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=[enriched_contacts_on_time],
        jobs=[plan_contact_enrichment_job, enriched_contacts_job],
        sensors=[
            contact_enrichment_sensor,
            contact_url_list_file_sensor,
            contact_automation_sensor,
            enriched_contacts_freshness_sensor,
            *slack_alerts(),  # none unless CRUST_SLACK_CHANNEL and SLACK_TOKEN are set
        ],
        schedules=[daily_contact_enrichment_schedule],
        resources=with_table_io_manager(resources) if resources is not None else build_resources(),
        # No executor here: the jobs carry their own (defs/jobs.py), so these Definitions merge
        # with a project's that sets one, and that project's jobs keep theirs.
    )


defs = build_definitions()

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
from crust_assets.defs.pipeline import build_pipeline, copy_resources
from crust_assets.defs.resources import build_resources
from crust_assets.defs.slack_alerts import slack_alerts
from crust_assets.names import DEFAULT_NAMES

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
    return copy_resources(DEFAULT_NAMES, resources)


def build_definitions(resources: Mapping[str, object] | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources and get exactly the same wiring.

    It is the unprefixed copy of the pipeline (`crust_assets.defs.pipeline`): the asset keys,
    job, sensor, schedule, pool and resource names it has always had. No executor here: the
    jobs carry their own (defs/jobs.py), so these Definitions merge with a project's that sets
    one, and that project's jobs keep theirs.
    """
    return build_pipeline(
        DEFAULT_NAMES,
        resources if resources is not None else build_resources(),
        assets=ALL_ASSETS,
        extra_sensors=slack_alerts(),  # none unless CRUST_SLACK_CHANNEL and SLACK_TOKEN are set
    )


defs = build_definitions()

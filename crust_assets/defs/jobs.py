"""Asset jobs: what the schedule / file sensor launch, and what the submitter sensor requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from crust_assets.defs.freshness import ON_TIME
from crust_assets.names import DEFAULT_NAMES, Names

if TYPE_CHECKING:  # what define_asset_job returns; Dagster does not export its name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

# Every run of this pipeline carries this tag: deploy/dagster.yaml limits them by it.
PIPELINE_RUN_TAGS = {"crust/pipeline": "contact_enrichment"}

# One process per run, not per step: the steps are I/O-bound and few, and a process per step
# roughly doubled launch-to-finish time here. It is set on the jobs, not on Definitions, so the
# code location merges into a project that has its own executor, and does not impose this one
# on that project's jobs. Partitioning is inferred from the selected (daily) assets.
PIPELINE_EXECUTOR = dg.in_process_executor


def pipeline_jobs(
    names: Names,
) -> tuple[UnresolvedAssetJobDefinition, UnresolvedAssetJobDefinition]:
    """The copy's plan job (the first two assets of a partition: read the list, plan and enqueue
    its jobs, no API call) and load job (requested by the submitter sensor when every job of a
    partition has finished)."""
    plan = dg.define_asset_job(
        name=names.plan_job,
        selection=dg.AssetSelection.assets(names.url_list_key, names.batch_key),
        run_tags=PIPELINE_RUN_TAGS,
        executor_def=PIPELINE_EXECUTOR,
        description=(
            "Read a day's URL list and enqueue its Crustdata jobs (the sensor submits them)."
        ),
    )
    load = dg.define_asset_job(
        name=names.load_job,
        # Not the freshness check: it judges the day due now, and its sensor records it.
        selection=dg.AssetSelection.assets(names.contacts_key)
        - dg.AssetSelection.checks(dg.AssetCheckKey(names.contacts_key, ON_TIME)),
        run_tags=PIPELINE_RUN_TAGS,
        executor_def=PIPELINE_EXECUTOR,
        description="Download a partition's job results and write enriched_contacts[date].",
    )
    return plan, load


# The unprefixed code location's jobs.
plan_contact_enrichment_job, enriched_contacts_job = pipeline_jobs(DEFAULT_NAMES)

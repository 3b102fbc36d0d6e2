"""Asset jobs: what the schedule / file sensor launch, and what the submitter sensor requests."""

import dagster as dg

# Every run of this pipeline carries this tag: deploy/dagster.yaml limits them by it.
PIPELINE_RUN_TAGS = {"crust/pipeline": "contact_enrichment"}

# One process per run, not per step: the steps are I/O-bound and few, and a process per step
# roughly doubled launch-to-finish time here. It is set on the jobs, not on Definitions, so the
# code location merges into a project that has its own executor, and does not impose this one
# on that project's jobs. Partitioning is inferred from the selected (daily) assets.
PIPELINE_EXECUTOR = dg.in_process_executor

# The first two assets of a partition: read the list, plan and enqueue its jobs (no API call).
plan_contact_enrichment_job = dg.define_asset_job(
    name="plan_contact_enrichment",
    selection=dg.AssetSelection.assets("contact_url_list", "contact_enrichment_batch"),
    run_tags=PIPELINE_RUN_TAGS,
    executor_def=PIPELINE_EXECUTOR,
    description="Read a day's URL list and enqueue its Crustdata jobs (the sensor submits them).",
)

# Requested by contact_enrichment_sensor when every job of a partition has finished.
enriched_contacts_job = dg.define_asset_job(
    name="load_enriched_contacts",
    # Not the freshness check: it judges the day due now, and its sensor records it.
    selection=dg.AssetSelection.assets("enriched_contacts")
    - dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey("enriched_contacts"), "enriched_contacts_on_time")
    ),
    run_tags=PIPELINE_RUN_TAGS,
    executor_def=PIPELINE_EXECUTOR,
    description="Download a partition's job results and write enriched_contacts[date].",
)
